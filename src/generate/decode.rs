//! The constrained decode loop, independent of any particular model or
//! tokenizer: token ids in, token ids out.
//!
//! ```text
//! feed = prompt tokens not yet in the cache + what the grammar forces first
//! loop {
//!     forward(feed) || mask = matcher.compute_mask()   (two threads on native)
//!     p(allowed) = Σ softmax(logits) over the mask      (how much the mask removed)
//!     t = sample(logits restricted to the mask)
//!     EOS -> stop; consume t; forced = matcher.forced_tokens(); consume forced
//!     grammar complete -> stop; budget spent -> stop (incomplete)
//!     feed = [t] + forced                               (one batched forward)
//! }
//! ```

use std::ops::ControlFlow;
use std::time::Duration;

use formwork_grammar::{Matcher, Vocabulary};
use formwork_kernels::{log_sum_exp, sample_masked, Candidates, SamplingParams};

use super::fields::JsonTracker;
use super::rng::SplitMix64;
use super::{Finish, GenerateOptions, Progress};
use crate::error::ErrorKind;
use crate::Error;

/// What the decode loop needs from a model: a forward pass over new tokens
/// that extends a cache and yields the next token's logits.
///
/// [`Model`](crate::model::Model) implements it; tests use toy models.
pub trait LanguageModel: Sync {
    /// Per-sequence state (keys and values of the tokens seen so far).
    type Cache: Clone + Send;
    /// Number of logits `forward` writes.
    fn vocab_size(&self) -> usize;
    /// Most tokens a cache can hold.
    fn context_len(&self) -> usize;
    /// An empty cache.
    fn new_cache(&self) -> Self::Cache;
    /// Tokens in `cache`.
    fn cache_len(&self, cache: &Self::Cache) -> usize;
    /// Forgets all but the first `len` tokens of `cache`.
    fn truncate_cache(&self, cache: &mut Self::Cache, len: usize);
    /// Runs `tokens` after those in `cache`, appends them to it and writes
    /// the logits that follow the last one.
    ///
    /// # Errors
    ///
    /// Empty `tokens`, an id out of range, a full context.
    fn forward(&self, tokens: &[u32], cache: &mut Self::Cache, logits: &mut [f32]) -> Result<(), Error>;
}

/// The loop's output, before text decoding and JSON parsing.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) tokens: Vec<u32>,
    pub(crate) bytes: Vec<u8>,
    pub(crate) finish: Finish,
    pub(crate) accepted: bool,
    pub(crate) sampled: usize,
    pub(crate) forced: usize,
    pub(crate) logprob: f64,
    pub(crate) mask_removed: Vec<f32>,
    pub(crate) tracker: JsonTracker,
    pub(crate) prefill: Duration,
    pub(crate) first_token: Duration,
    pub(crate) decode: Duration,
    pub(crate) mask_time: Duration,
    /// Tokens fed to the model (the prompt suffix and the output, EOS not
    /// included), in the cache on return.
    pub(crate) fed: Vec<u32>,
}

/// Runs `model` on `feed` (after what `cache` holds) and, meanwhile, the
/// grammar's next mask. On native targets the mask is computed on a second
/// thread while the forward pass runs.
fn forward_and_mask<M: LanguageModel>(
    model: &M,
    feed: &[u32],
    cache: &mut M::Cache,
    logits: &mut [f32],
    matcher: Option<&mut Matcher>,
    mask: &mut [u32],
) -> Result<Duration, Error> {
    let Some(matcher) = matcher else {
        model.forward(feed, cache, logits)?;
        return Ok(Duration::ZERO);
    };
    let time_mask = |matcher: &mut Matcher, mask: &mut [u32]| {
        let t = crate::clock::Instant::now();
        matcher.compute_mask(mask).map(|()| t.elapsed())
    };
    #[cfg(not(target_arch = "wasm32"))]
    {
        let (fwd, masked) = std::thread::scope(|s| {
            let h = s.spawn(|| time_mask(matcher, mask));
            let fwd = model.forward(feed, cache, logits);
            let masked = match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            (fwd, masked)
        });
        fwd?;
        Ok(masked?)
    }
    #[cfg(target_arch = "wasm32")]
    {
        model.forward(feed, cache, logits)?;
        Ok(time_mask(matcher, mask)?)
    }
}

/// Decodes after `prompt` (whose first `cache` tokens are already in
/// `cache`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn decode<M: LanguageModel>(
    model: &M,
    cache: &mut M::Cache,
    prompt: &[u32],
    mut matcher: Option<&mut Matcher>,
    vocab: &Vocabulary,
    opts: &GenerateOptions,
    on_progress: &mut dyn FnMut(&Progress<'_>) -> ControlFlow<()>,
) -> Result<Decoded, Error> {
    let start = crate::clock::Instant::now();
    let n = model.vocab_size();
    if vocab.len() > n {
        return Err(ErrorKind::Generate {
            problem: format!("the vocabulary has {} tokens but the model only {n} logits", vocab.len()),
        }
        .into());
    }
    let cached = model.cache_len(cache);
    if cached >= prompt.len() {
        return Err(ErrorKind::Generate {
            problem: "the prompt must have at least one token that is not cached".to_string(),
        }
        .into());
    }
    let words = n.div_ceil(32);
    let mut logits = vec![0f32; n];
    let mut mask = vec![0u32; words];
    // Without a grammar every non-special token and EOS are allowed.
    let free_mask = matcher.is_none().then(|| {
        let mut m = vec![0u32; words];
        for t in 0..vocab.len() as u32 {
            if !vocab.is_special(t) || vocab.eos().contains(&t) {
                m[t as usize / 32] |= 1 << (t % 32);
            }
        }
        m
    });
    let params = SamplingParams {
        temperature: opts.sampling.temperature,
        top_k: opts.sampling.top_k,
        top_p: opts.sampling.top_p,
    };
    let mut rng = SplitMix64::new(opts.sampling.seed);
    let mut scratch = Candidates::new();

    let mut out = Decoded {
        tokens: Vec::new(),
        bytes: Vec::new(),
        finish: Finish::Budget,
        accepted: false,
        sampled: 0,
        forced: 0,
        logprob: 0.0,
        mask_removed: Vec::new(),
        tracker: JsonTracker::new(),
        prefill: Duration::ZERO,
        first_token: Duration::ZERO,
        decode: Duration::ZERO,
        mask_time: Duration::ZERO,
        fed: prompt[cached..].to_vec(),
    };
    let mut feed: Vec<u32> = prompt[cached..].to_vec();
    // What the grammar forces before the first choice (`{"category":"`)
    // joins the prompt's forward pass instead of costing sampled steps.
    if fast_forward(matcher.as_deref_mut(), vocab, opts, &mut out, &mut feed, on_progress)?.is_break() {
        // Nothing reached the model: the cache holds what it held before.
        out.finish = Finish::Cancelled;
        out.fed.clear();
        return Ok(out);
    }
    out.fed = feed.clone();
    let mut first = true;
    let decode_start;
    {
        // Prefill, with the first mask computed meanwhile.
        out.mask_time += forward_and_mask(model, &feed, cache, &mut logits, matcher.as_deref_mut(), &mut mask)?;
        out.prefill = start.elapsed();
        decode_start = crate::clock::Instant::now();
    }
    loop {
        if first && out.tokens.len() >= opts.max_tokens {
            // The forced start already spent the budget.
            out.finish = Finish::Budget;
            break;
        }
        let allowed: &[u32] = match &free_mask {
            Some(m) => m,
            None => &mask,
        };
        let lse_all = log_sum_exp(&logits, None);
        let lse_allowed = log_sum_exp(&logits, Some(allowed));
        if lse_allowed == f32::NEG_INFINITY {
            // The grammar allows nothing (it accepted and ended, or the
            // vocabulary cannot spell any continuation).
            out.finish = Finish::Grammar;
            break;
        }
        let u = rng.next_f32();
        let Some(t) = sample_masked(&logits, allowed, &params, u, &mut scratch) else {
            out.finish = Finish::Grammar;
            break;
        };
        let t = t as u32;
        let lp = f64::from(logits[t as usize] - lse_allowed);
        out.logprob += lp;
        out.mask_removed.push((1.0 - (lse_allowed - lse_all).exp()).max(0.0));
        out.sampled += 1;
        if first {
            out.first_token = start.elapsed();
            first = false;
        }
        if vocab.eos().contains(&t) {
            out.finish = Finish::Eos;
            if let Some(m) = matcher.as_deref_mut() {
                m.consume_token(t)?;
            }
            break;
        }
        feed.clear();
        feed.push(t);
        if let Some(m) = matcher.as_deref_mut() {
            m.consume_token(t)?;
        }
        let bytes = vocab.token_bytes(t);
        out.tracker.push_token(bytes, Some(lp));
        out.tokens.push(t);
        out.bytes.extend_from_slice(bytes);
        let flow =
            on_progress(&Progress { tokens: &[t], bytes, forced: false, text: &out.bytes, tracker: &out.tracker });
        if flow.is_break() {
            out.finish = Finish::Cancelled;
            break;
        }
        if let Some(stop) = opts.stop.iter().find(|s| !s.is_empty() && out.bytes.ends_with(s.as_bytes())) {
            let cut = out.bytes.len() - stop.len();
            out.bytes.truncate(cut);
            out.finish = Finish::Stop;
            break;
        }
        if fast_forward(matcher.as_deref_mut(), vocab, opts, &mut out, &mut feed, on_progress)?.is_break() {
            out.finish = Finish::Cancelled;
            break;
        }
        if let Some(m) = matcher.as_deref_mut() {
            if m.is_stopped()? {
                out.finish = Finish::Grammar;
                break;
            }
        }
        if out.tokens.len() >= opts.max_tokens {
            out.finish = Finish::Budget;
            break;
        }
        if model.cache_len(cache) + feed.len() > model.context_len() {
            out.finish = Finish::Context;
            break;
        }
        out.fed.extend_from_slice(&feed);
        out.mask_time += forward_and_mask(model, &feed, cache, &mut logits, matcher.as_deref_mut(), &mut mask)?;
    }
    out.accepted = match matcher {
        Some(m) => out.finish == Finish::Eos || m.is_accepting()?,
        None => true,
    };
    out.decode = decode_start.elapsed();
    Ok(out)
}

/// Feeds what the grammar forces next, within the token budget: consumes
/// the forced tokens, appends them to the output and to `feed` (the next
/// forward pass), and reports them to `on_progress`, whose answer it
/// returns.
fn fast_forward(
    matcher: Option<&mut Matcher>,
    vocab: &Vocabulary,
    opts: &GenerateOptions,
    out: &mut Decoded,
    feed: &mut Vec<u32>,
    on_progress: &mut dyn FnMut(&Progress<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, Error> {
    let Some(m) = matcher.filter(|_| opts.fast_forward) else {
        return Ok(ControlFlow::Continue(()));
    };
    let room = opts.max_tokens.saturating_sub(out.tokens.len());
    let mut forced = m.forced_tokens()?;
    forced.truncate(room);
    if forced.is_empty() {
        return Ok(ControlFlow::Continue(()));
    }
    m.consume_tokens(&forced)?;
    let start_bytes = out.bytes.len();
    for &f in &forced {
        let b = vocab.token_bytes(f);
        out.tracker.push_token(b, None);
        out.bytes.extend_from_slice(b);
    }
    out.tokens.extend_from_slice(&forced);
    out.forced += forced.len();
    feed.extend_from_slice(&forced);
    Ok(on_progress(&Progress {
        tokens: &forced,
        bytes: &out.bytes[start_bytes..],
        forced: true,
        text: &out.bytes,
        tracker: &out.tracker,
    }))
}
