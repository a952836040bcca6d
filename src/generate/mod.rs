//! Constrained generation: prompt -> prefill -> masked decode loop -> result.
//!
//! The entry point is [`Engine`]: a model, its tokenizer, a cache of
//! compiled shapes and a prefix cache (the KV cache of the last prompt, so
//! a fixed system prompt is computed once per process).
//!
//! ```no_run
//! # #[cfg(not(target_arch = "wasm32"))] {
//! use formwork::generate::{Engine, GenerateOptions, Prompt, Shape};
//! use formwork::tokenizer::Message;
//!
//! let mut engine = Engine::load_default()?; // fetches SmolLM2-135M-Instruct once
//! let schema = serde_json::json!({
//!     "type": "object",
//!     "properties": {
//!         "category": {"enum": ["incident", "billing", "inquiry"]},
//!         "urgency": {"type": "integer", "minimum": 1, "maximum": 5}
//!     },
//!     "required": ["category", "urgency"]
//! });
//! let prompt = Prompt::Chat(vec![
//!     Message::system("Classify the support ticket as JSON."),
//!     Message::user("My invoice was charged twice this month."),
//! ]);
//! let out = engine.generate(&prompt, &Shape::json_schema(schema), &GenerateOptions::default())?;
//! println!("{} (confidence {:.2})", out.text, out.confidence);
//! for f in &out.fields {
//!     println!("{}: {:.2}", f.pointer, f.confidence);
//! }
//! # }
//! # Ok::<(), formwork::Error>(())
//! ```
//!
//! What each step costs and why (see also [`Generation`]):
//!
//! - the mask for the next token is computed on a second thread while the
//!   forward pass runs (native), so a cheap mask costs nothing visible;
//! - bytes the grammar forces (`{"category": "` after `{`) are fed to the
//!   model in one batched forward pass instead of one step per token;
//! - confidence is the probability the model gives the chosen tokens
//!   *among those the grammar allows* (temperature 1), per JSON field and
//!   overall: a value the model was unsure about, or that the schema forced
//!   it away from, shows up as low confidence.

mod decode;
mod engine;
mod fields;
mod rng;

use std::time::Duration;

pub use decode::LanguageModel;
pub use engine::{Classification, Engine, Prompt, Shape};
pub use fields::FieldConfidence;

/// How the next token is chosen among those the grammar allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Softmax temperature; `0` (the default) is greedy.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens; 0 (default) keeps all.
    pub top_k: usize,
    /// Keep the most likely tokens whose probabilities reach `top_p`; `1`
    /// (default) keeps all.
    pub top_p: f32,
    /// Seed of the random numbers: the same seed, prompt, shape and model
    /// give the same output.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 }
    }
}

/// Options of one generation.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    /// Sampling parameters (greedy by default).
    pub sampling: Sampling,
    /// Most tokens to generate (sampled and fast-forwarded). Default 256.
    pub max_tokens: usize,
    /// Strings that end generation (the output stops before them). Useful
    /// for free text; a grammar ends generation on its own.
    pub stop: Vec<String>,
    /// Feed tokens the grammar forces in one batched step (default true).
    pub fast_forward: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { sampling: Sampling::default(), max_tokens: 256, stop: Vec::new(), fast_forward: true }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The model chose end-of-sequence (allowed only where the grammar
    /// accepts).
    Eos,
    /// The grammar is complete: it accepts and allows nothing more.
    Grammar,
    /// A stop string was generated.
    Stop,
    /// `max_tokens` were generated.
    Budget,
    /// The model's context is full.
    Context,
    /// The progress callback asked to stop.
    Cancelled,
}

/// What a generation produced and what it cost.
#[derive(Clone, Debug)]
pub struct Generation {
    /// The output text (lossy UTF-8 of the output bytes; a grammar that
    /// only allows UTF-8 guarantees it is exact).
    pub text: String,
    /// The output's token ids (sampled and fast-forwarded, EOS excluded).
    pub tokens: Vec<u32>,
    /// Why generation ended.
    pub finish: Finish,
    /// Whether the output is complete for the shape (the grammar accepts
    /// it). Always true for free text.
    pub complete: bool,
    /// The output parsed as JSON, when it is JSON.
    pub value: Option<serde_json::Value>,
    /// Probability of the whole output among the outputs the shape allows
    /// (product over sampled tokens of the constrained probability).
    pub confidence: f32,
    /// Per JSON value: the constrained probability of the tokens that
    /// chose it (see the `fields` module docs). Empty for non-JSON output.
    pub fields: Vec<FieldConfidence>,
    /// Tokens chosen by sampling.
    pub sampled_tokens: usize,
    /// Tokens the grammar forced, fed without sampling.
    pub forced_tokens: usize,
    /// Prompt tokens, and how many of them came from the prefix cache.
    pub prompt_tokens: usize,
    /// Prompt tokens reused from the prefix cache.
    pub cached_prompt_tokens: usize,
    /// For each sampled token, the probability mass the grammar removed
    /// (`0` = the model agreed with the shape; near `1` = the model wanted
    /// something the shape forbids: the prompt fights the schema).
    pub mask_removed: Vec<f32>,
    /// Timings.
    pub timings: Timings,
}

impl Generation {
    /// Confidence of the value at `pointer` (`"/category"`), if generated.
    pub fn field(&self, pointer: &str) -> Option<f32> {
        self.fields.iter().find(|f| f.pointer == pointer).map(|f| f.confidence)
    }
}

/// Where the time went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timings {
    /// Prompt evaluation (the uncached part), first mask included.
    pub prefill: Duration,
    /// From the call to the first sampled token.
    pub first_token: Duration,
    /// The decode loop after prefill.
    pub decode: Duration,
    /// Time spent computing grammar masks (overlapped with forward passes
    /// on native).
    pub mask: Duration,
    /// Compiling the shape (zero when it came from the cache).
    pub compile: Duration,
    /// The whole call.
    pub total: Duration,
}

impl Timings {
    /// Decode speed: output tokens fed per second of decode loop.
    pub fn tokens_per_second(&self, tokens: usize) -> f64 {
        let s = self.decode.as_secs_f64();
        if s > 0.0 {
            tokens as f64 / s
        } else {
            0.0
        }
    }
}

/// Streaming: what the generator just appended.
pub struct Progress<'a> {
    /// The new tokens (one sampled token, or a run of forced ones).
    pub tokens: &'a [u32],
    /// Their bytes.
    pub bytes: &'a [u8],
    /// Whether the grammar forced them.
    pub forced: bool,
    /// All output bytes so far.
    pub text: &'a [u8],
    tracker: &'a fields::JsonTracker,
}

impl Progress<'_> {
    /// The output so far as a JSON value: an unfinished string closed where
    /// it stands, unfinished containers closed, an unfinished number or key
    /// left out. `None` when nothing complete yet or not JSON.
    pub fn partial_value(&self) -> Option<serde_json::Value> {
        self.tracker.partial_value()
    }
}

#[cfg(test)]
mod tests;
