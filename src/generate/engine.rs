//! [`Engine`]: a model, its tokenizer, compiled shapes and the prefix cache.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use formwork_grammar::json_schema::{self, JsonSchemaOptions};
use formwork_grammar::{gbnf, lark, CompiledGrammar, Limits};

use super::decode::{decode, LanguageModel};
use super::{GenerateOptions, Generation, Progress, Timings};
use crate::error::ErrorKind;
use crate::model::{KvCache, Model};
use crate::tokenizer::{Message, Tokenizer};
use crate::Error;

/// The shape an answer must have.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// Free text: no constraint (stops at EOS, a stop string or the budget).
    Text,
    /// A JSON Schema (any of drafts 4 to 2020-12) and how to compile it.
    JsonSchema {
        /// The schema.
        schema: serde_json::Value,
        /// Strict or lenient, whitespace, property order, ….
        options: JsonSchemaOptions,
    },
    /// A grammar in llama.cpp's GBNF.
    Gbnf(String),
    /// A grammar in the Lark-like format.
    Lark(String),
    /// A regular expression the whole answer must match.
    Regex(String),
    /// One of these strings, exactly.
    Choices(Vec<String>),
}

impl Shape {
    /// A JSON Schema with the options for generation: strict, flexible
    /// whitespace, the schema's property order, integers written without a
    /// fraction (`5`, never `5.0`; see
    /// [`JsonSchemaOptions::integer_zero_fraction`]).
    pub fn json_schema(schema: serde_json::Value) -> Shape {
        Shape::JsonSchema { schema, options: Shape::generation_options() }
    }

    /// A JSON Schema as [`Shape::json_schema`], with compact whitespace
    /// (fewer tokens to generate).
    pub fn json_schema_compact(schema: serde_json::Value) -> Shape {
        let options = JsonSchemaOptions { whitespace: json_schema::Whitespace::Compact, ..Shape::generation_options() };
        Shape::JsonSchema { schema, options }
    }

    /// The JSON Schema options every generation shape starts from: the
    /// compiler's defaults, but integers without a zero fraction.
    pub fn generation_options() -> JsonSchemaOptions {
        JsonSchemaOptions { integer_zero_fraction: false, ..JsonSchemaOptions::default() }
    }

    /// The schema of a Rust type (through `schemars`), compact whitespace,
    /// and no properties the type does not declare (serde would drop them:
    /// the model need not write them).
    pub fn of_type<T: schemars::JsonSchema>() -> Shape {
        let schema = schemars::schema_for!(T).to_value();
        let options = JsonSchemaOptions {
            whitespace: json_schema::Whitespace::Compact,
            allow_extra_properties: false,
            ..Shape::generation_options()
        };
        Shape::JsonSchema { schema, options }
    }

    fn key(&self) -> String {
        format!("{self:?}")
    }

    /// Compiles the shape for a tokenizer's vocabulary (`None` for free
    /// text).
    ///
    /// # Errors
    ///
    /// The shape's own errors (a schema keyword that cannot be enforced, a
    /// grammar syntax error, …), naming where.
    pub fn compile(&self, tokenizer: &Tokenizer) -> Result<Option<CompiledGrammar>, Error> {
        let grammar = match self {
            Shape::Text => return Ok(None),
            Shape::JsonSchema { schema, options } => json_schema::compile(schema, options).map(|(g, _)| g),
            Shape::Gbnf(text) => gbnf::parse(text),
            Shape::Lark(text) => lark::parse(text),
            Shape::Regex(re) => formwork_grammar::regex(re),
            Shape::Choices(options) => formwork_grammar::choices(options),
        }
        .map_err(ErrorKind::Shape)?;
        let compiled = CompiledGrammar::new(&grammar, Arc::clone(tokenizer.vocabulary()), Limits::default())
            .map_err(ErrorKind::Shape)?;
        Ok(Some(compiled))
    }
}

/// A prompt: raw text, or chat messages rendered with the model's template.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// Used as is (no template, no BOS).
    Text(String),
    /// Rendered with the tokenizer's chat template, ending where the
    /// assistant's answer begins.
    Chat(Vec<Message>),
}

/// The probability of each label, from [`Engine::classify`].
#[derive(Clone, Debug, PartialEq)]
pub struct Classification {
    /// Labels with their probabilities (summing to 1), most likely first.
    pub labels: Vec<(String, f32)>,
    /// Time taken.
    pub elapsed: Duration,
}

impl Classification {
    /// The most likely label and its probability.
    pub fn best(&self) -> (&str, f32) {
        // `classify` refuses an empty label list, so there is a first.
        self.labels.first().map(|(l, p)| (l.as_str(), *p)).unwrap_or(("", 0.0))
    }
}

impl LanguageModel for Model {
    type Cache = KvCache;

    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }

    fn context_len(&self) -> usize {
        self.config().context_len
    }

    fn new_cache(&self) -> KvCache {
        Model::new_cache(self)
    }

    fn cache_len(&self, cache: &KvCache) -> usize {
        cache.len()
    }

    fn truncate_cache(&self, cache: &mut KvCache, len: usize) {
        cache.truncate(len);
    }

    fn forward(&self, tokens: &[u32], cache: &mut KvCache, logits: &mut [f32]) -> Result<(), Error> {
        Model::forward(self, tokens, cache, logits)
    }
}

/// A loaded model ready to answer: model, tokenizer, compiled shapes, and
/// the KV cache of the last request (its longest common prefix with the
/// next prompt is reused, so a fixed system prompt is computed once).
pub struct Engine {
    model: Model,
    tokenizer: Tokenizer,
    grammars: HashMap<String, Option<CompiledGrammar>>,
    /// Tokens in `cache` (the last prompt and answer).
    cached_tokens: Vec<u32>,
    cache: KvCache,
    load_time: Duration,
}

impl Engine {
    /// An engine over a loaded model, with the tokenizer its GGUF carries.
    ///
    /// # Errors
    ///
    /// When the GGUF's tokenizer metadata cannot be read.
    pub fn new(model: Model) -> Result<Engine, Error> {
        let tokenizer = Tokenizer::from_gguf(model.gguf())?;
        Ok(Engine::with_tokenizer(model, tokenizer))
    }

    /// An engine over a model and a tokenizer of the same vocabulary.
    pub fn with_tokenizer(model: Model, tokenizer: Tokenizer) -> Engine {
        let cache = model.new_cache();
        Engine {
            model,
            tokenizer,
            grammars: HashMap::new(),
            cached_tokens: Vec::new(),
            cache,
            load_time: Duration::ZERO,
        }
    }

    /// Loads a GGUF file with default options.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, is not a supported model, or its
    /// tokenizer cannot be built.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: &std::path::Path, options: &crate::model::ModelOptions) -> Result<Engine, Error> {
        let t = crate::clock::Instant::now();
        let model = Model::open(path, options)?;
        let mut e = Engine::new(model)?;
        e.load_time = t.elapsed();
        Ok(e)
    }

    /// Loads the default model (SmolLM2-135M-Instruct Q4_1), fetching it on
    /// first use; see [`crate::fetch::default_model_path`].
    ///
    /// # Errors
    ///
    /// As [`crate::fetch::default_model_path`] and [`Engine::load`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_default() -> Result<Engine, Error> {
        Engine::load(&crate::fetch::default_model_path()?, &crate::model::ModelOptions::default())
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Time [`Engine::load`] took (zero for other constructors).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Forgets the prefix cache.
    pub fn clear_cache(&mut self) {
        self.cache.clear();
        self.cached_tokens.clear();
    }

    /// The prompt's token ids.
    ///
    /// # Errors
    ///
    /// A chat prompt for a tokenizer without a chat template.
    pub fn encode_prompt(&self, prompt: &Prompt) -> Result<Vec<u32>, Error> {
        let text = match prompt {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(messages) => {
                let template = self.tokenizer.chat_template().ok_or_else(|| ErrorKind::Generate {
                    problem: "the tokenizer has no chat template: use Prompt::Text".to_string(),
                })?;
                template.render(messages, true)
            }
        };
        let ids = self.tokenizer.encode(&text)?;
        if ids.is_empty() {
            return Err(ErrorKind::Generate { problem: "the prompt is empty".to_string() }.into());
        }
        Ok(ids)
    }

    /// Compiles `shape` for this tokenizer, or takes it from the cache.
    ///
    /// # Errors
    ///
    /// As [`Shape::compile`].
    pub fn compile(&mut self, shape: &Shape) -> Result<Option<CompiledGrammar>, Error> {
        let key = shape.key();
        if let Some(g) = self.grammars.get(&key) {
            return Ok(g.clone());
        }
        let g = shape.compile(&self.tokenizer)?;
        self.grammars.insert(key, g.clone());
        Ok(g)
    }

    /// Reuses the cached KV of the longest common prefix of `prompt` and
    /// the previous request (at least one prompt token is left to run, for
    /// its logits). Returns how many prompt tokens were reused.
    fn reuse_prefix(&mut self, prompt: &[u32]) -> usize {
        let common = self.cached_tokens.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        let keep = common.min(prompt.len().saturating_sub(1)).min(self.cache.len());
        self.cache.truncate(keep);
        self.cached_tokens.truncate(keep);
        keep
    }

    /// Generates an answer of the given shape.
    ///
    /// # Errors
    ///
    /// A shape that does not compile, a prompt that does not fit the
    /// context, a model error.
    pub fn generate(&mut self, prompt: &Prompt, shape: &Shape, options: &GenerateOptions) -> Result<Generation, Error> {
        self.generate_streaming(prompt, shape, options, |_| ControlFlow::Continue(()))
    }

    /// [`Engine::generate`], calling `on_progress` after every token (or run
    /// of forced tokens); return `ControlFlow::Break` to stop early.
    ///
    /// # Errors
    ///
    /// As [`Engine::generate`].
    pub fn generate_streaming(
        &mut self,
        prompt: &Prompt,
        shape: &Shape,
        options: &GenerateOptions,
        mut on_progress: impl FnMut(&Progress<'_>) -> ControlFlow<()>,
    ) -> Result<Generation, Error> {
        let start = crate::clock::Instant::now();
        let compiled = self.grammars.contains_key(&shape.key());
        let grammar = self.compile(shape)?;
        let compile = if compiled { Duration::ZERO } else { start.elapsed() };
        let ids = self.encode_prompt(prompt)?;
        if ids.len() + 1 > self.model.config().context_len {
            return Err(ErrorKind::Generate {
                problem: format!(
                    "the prompt has {} tokens; the context holds {}",
                    ids.len(),
                    self.model.config().context_len
                ),
            }
            .into());
        }
        let reused = self.reuse_prefix(&ids);
        let mut matcher = grammar.as_ref().map(|g| g.matcher()).transpose().map_err(ErrorKind::Shape)?;
        let vocab = Arc::clone(self.tokenizer.vocabulary());
        let result = decode(&self.model, &mut self.cache, &ids, matcher.as_mut(), &vocab, options, &mut on_progress);
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                // The cache may hold part of a step: forget it.
                self.clear_cache();
                return Err(e);
            }
        };
        self.cached_tokens.extend_from_slice(&out.fed);
        debug_assert_eq!(self.cached_tokens.len(), self.cache.len());
        let text = String::from_utf8_lossy(&out.bytes).into_owned();
        let value = serde_json::from_slice(&out.bytes).ok();
        let fields = if value.is_some() { out.tracker.fields() } else { Vec::new() };
        Ok(Generation {
            text,
            tokens: out.tokens,
            finish: out.finish,
            complete: out.accepted,
            value,
            confidence: out.logprob.exp() as f32,
            fields,
            sampled_tokens: out.sampled,
            forced_tokens: out.forced,
            steered_tokens: out.steered,
            masks_built: out.masks,
            tokens_to_close: out.tokens_to_close,
            prompt_tokens: ids.len(),
            cached_prompt_tokens: reused,
            mask_removed: out.mask_removed,
            timings: Timings {
                prefill: out.prefill,
                first_token: out.first_token + compile,
                decode: out.decode,
                mask: out.mask_time,
                compile,
                total: start.elapsed(),
            },
        })
    }

    /// Generates a value of type `T`: the schema comes from `T`'s
    /// `schemars::JsonSchema`, the answer is deserialized with serde.
    ///
    /// # Errors
    ///
    /// As [`Engine::generate`]; an incomplete answer (budget spent) or one
    /// that does not deserialize (a schema `schemars` derives more loosely
    /// than serde reads) is an error naming the text.
    pub fn generate_typed<T>(&mut self, prompt: &Prompt, options: &GenerateOptions) -> Result<(T, Generation), Error>
    where
        T: serde::de::DeserializeOwned + schemars::JsonSchema,
    {
        let g = self.generate(prompt, &Shape::of_type::<T>(), options)?;
        if !g.complete {
            let short = g.tokens_to_close.map_or(String::new(), |n| format!(", {n} more tokens would have closed it"));
            return Err(ErrorKind::Generate {
                problem: format!("the answer is incomplete ({:?}{short}): {}", g.finish, g.text),
            }
            .into());
        }
        let value: T = serde_json::from_str(&g.text).map_err(|e| ErrorKind::Generate {
            problem: format!("the answer does not deserialize into the type: {e}: {}", g.text),
        })?;
        Ok((value, g))
    }

    /// The probability of each label as the whole answer (the model's
    /// probability of the label's tokens followed by end-of-turn, normalized
    /// over the labels): an exact classifier, one batched forward pass per
    /// label after the prompt.
    ///
    /// # Errors
    ///
    /// No labels, an empty label, a model error.
    pub fn classify<S: AsRef<str>>(&mut self, prompt: &Prompt, labels: &[S]) -> Result<Classification, Error> {
        let start = crate::clock::Instant::now();
        if labels.is_empty() || labels.iter().any(|l| l.as_ref().is_empty()) {
            return Err(ErrorKind::Generate { problem: "classify needs non-empty labels".to_string() }.into());
        }
        let ids = self.encode_prompt(prompt)?;
        let reused = self.reuse_prefix(&ids);
        let n = self.model.config().vocab_size;
        let mut logits = vec![0f32; n];
        let r = self.model.forward(&ids[reused..], &mut self.cache, &mut logits);
        if let Err(e) = r {
            self.clear_cache();
            return Err(e);
        }
        self.cached_tokens.extend_from_slice(&ids[reused..]);
        let prompt_len = self.cache.len();
        let first = log_softmax(&logits);
        let eos = self.tokenizer.eos();
        let mut scores = Vec::with_capacity(labels.len());
        for label in labels {
            let mut toks = self.tokenizer.encode(label.as_ref())?;
            toks.push(eos);
            let mut lp = first[toks[0] as usize];
            // Logits after each label token but the end-of-turn.
            let all = self.model.forward_all(&toks[..toks.len() - 1], &mut self.cache);
            self.cache.truncate(prompt_len);
            let all = all?;
            for (i, &next) in toks[1..].iter().enumerate() {
                let row = &all[i * n..(i + 1) * n];
                lp += log_softmax(row)[next as usize];
            }
            scores.push((label.as_ref().to_string(), lp));
        }
        let max = scores.iter().map(|s| s.1).fold(f32::NEG_INFINITY, f32::max);
        let z: f32 = scores.iter().map(|s| (s.1 - max).exp()).sum();
        let mut labels: Vec<(String, f32)> = scores.into_iter().map(|(l, s)| (l, (s - max).exp() / z)).collect();
        labels.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(Classification { labels, elapsed: start.elapsed() })
    }
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let lse = formwork_kernels::log_sum_exp(logits, None);
    logits.iter().map(|&l| l - lse).collect()
}
