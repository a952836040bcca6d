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
    /// Close the answer within `max_tokens` (default true): when the
    /// budget runs low, steer to the shortest valid completion so the output
    /// still parses and validates (see [`Finish::BudgetClosed`]). Shapes
    /// only; free text is cut at the budget as before.
    ///
    /// How: after every step the grammar reports the fewest bytes a valid
    /// ending needs from there (a lower bound; tokens are at least a byte,
    /// so it bounds the tokens too). While that fits the remaining budget
    /// nothing changes. When the model's token would leave too little room,
    /// that token (and what was fast-forwarded after it) is taken back and
    /// the first token of the shortest completion is placed instead: the
    /// shortest completion's bytes, built from the grammar and checked by
    /// the matcher, tokenized greedily. The model keeps choosing whenever
    /// its token still fits, so a tight budget shortens the answer (a
    /// string closed early, no further array item) rather than cutting it.
    pub budget_steering: bool,
    /// When the grammar mask is built (default [`MaskStrategy::MaskFirst`]).
    pub mask_strategy: MaskStrategy,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            sampling: Sampling::default(),
            max_tokens: 256,
            stop: Vec::new(),
            fast_forward: true,
            budget_steering: true,
            mask_strategy: MaskStrategy::MaskFirst,
        }
    }
}

/// When the set of allowed tokens (the mask) is computed.
///
/// Both strategies draw from exactly the same distribution: the model's,
/// restricted to the tokens the grammar allows. Sample-first draws from the
/// whole distribution and keeps the token if the grammar allows it (a
/// single-token check); otherwise it builds the mask and draws again among
/// the allowed tokens. A token `a` of the allowed set `A` then comes out
/// with probability `p(a) + (1 - P(A)) p(a) / P(A) = p(a) / P(A)`, the
/// masked probability; greedy picks the overall argmax if allowed, which is
/// then the allowed argmax. Top-k and top-p must truncate the *allowed*
/// tokens, so with either of them sample-first falls back to mask-first.
///
/// What sample-first gives up: on a step where the sampled token was
/// allowed the mask is never built, so the probability mass the grammar
/// removed is unknown. Such a step records `NaN` in
/// [`Generation::mask_removed`], and its confidence uses the token's
/// probability over the whole vocabulary — a lower bound of the constrained
/// probability mask-first reports (the two agree when the model put all its
/// mass on allowed tokens).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MaskStrategy {
    /// Build the mask every step, then sample among the allowed tokens
    /// (exact confidences; on native the mask is built on a second thread
    /// while the forward pass runs, so it is usually free).
    #[default]
    MaskFirst,
    /// Sample first, build the mask only when the grammar rejects the
    /// sampled token. Saves the mask's time where it cannot overlap the
    /// forward pass (a single thread, as on wasm32).
    SampleFirst,
    /// Sample-first where there is no second thread to hide the mask
    /// behind (wasm32), mask-first elsewhere.
    Auto,
}

impl MaskStrategy {
    /// The strategy `Auto` stands for on this target.
    pub fn resolve(self) -> MaskStrategy {
        match self {
            MaskStrategy::Auto if cfg!(target_arch = "wasm32") => MaskStrategy::SampleFirst,
            MaskStrategy::Auto => MaskStrategy::MaskFirst,
            s => s,
        }
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
    /// `max_tokens` were generated without closing the answer (or free
    /// text reached the budget). With a shape this happens only when even
    /// the shortest valid completion did not fit (or steering was off):
    /// [`Generation::tokens_to_close`] tells how many more tokens closing
    /// it needed.
    Budget,
    /// The budget ran low and [budget steering](GenerateOptions::budget_steering)
    /// placed some tokens (see [`Generation::steered_tokens`]) to close
    /// the answer within `max_tokens`: it is complete and valid, but shorter
    /// than the model wanted.
    BudgetClosed,
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
    /// Tokens placed by budget steering instead of the model's choice
    /// (see [`GenerateOptions::budget_steering`]); `sampled_tokens +
    /// forced_tokens + steered_tokens` is the output plus a final EOS.
    pub steered_tokens: usize,
    /// Grammar masks computed: one per sampling step with
    /// [`MaskStrategy::MaskFirst`], only for rejected samples with
    /// [`MaskStrategy::SampleFirst`].
    pub masks_built: usize,
    /// When the budget ran out before the shape was complete: the tokens
    /// the shortest valid completion from where the output stopped would
    /// have needed (so `max_tokens` must grow by at least about this much).
    /// `None` otherwise, or when no completion could be built.
    pub tokens_to_close: Option<usize>,
    /// Prompt tokens, and how many of them came from the prefix cache.
    pub prompt_tokens: usize,
    /// Prompt tokens reused from the prefix cache.
    pub cached_prompt_tokens: usize,
    /// For each sampling step (a sampled or steered token), the
    /// probability mass the grammar removed (`0` = the model agreed with the
    /// shape; near `1` = the model wanted something the shape forbids: the
    /// prompt fights the schema). `NaN` for a step where
    /// [`MaskStrategy::SampleFirst`] never built the mask.
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
