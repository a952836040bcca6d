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
//!     budget check: a valid ending must still fit the remaining tokens,
//!         else undo t and forced, place the shortest ending's first token
//!     grammar complete -> stop; budget spent -> stop
//!     feed = [t] + forced                               (one batched forward)
//! }
//! ```
//!
//! Sample-first ([`MaskStrategy::SampleFirst`]) skips the mask: `t` is drawn
//! from all tokens and kept if the matcher takes it; only a rejected `t`
//! builds the mask and is drawn again among the allowed tokens (the same
//! distribution, see [`MaskStrategy`]).
//!
//! Budget steering ([`GenerateOptions::budget_steering`]) keeps the
//! invariant "from the current state, some valid ending fits the tokens
//! left": checked after every step with the grammar's lower bound on the
//! ending's bytes (a token spells at least one byte), and with a built and
//! checked ending when the bound alone does not show it. When a step would
//! break the invariant, the step is undone and the first token of the
//! ending known to fit (built from the state before the step, which
//! satisfied the invariant) is placed instead. If no ending fits even at
//! the start, the answer runs unsteered into [`Finish::Budget`] and reports
//! the tokens closing it would have needed.

use std::ops::ControlFlow;
use std::time::Duration;

use formwork_grammar::{Matcher, Vocabulary};
use formwork_kernels::{log_sum_exp, sample_masked, Candidates, SamplingParams};

use super::fields::JsonTracker;
use super::rng::SplitMix64;
use super::{Finish, GenerateOptions, MaskStrategy, Progress};
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
    /// Tokens budget steering placed instead of the model's choice.
    pub(crate) steered: usize,
    /// Grammar masks built (one per step with mask-first; only on
    /// rejections with sample-first).
    pub(crate) masks: usize,
    /// See [`Generation::tokens_to_close`](super::Generation::tokens_to_close).
    pub(crate) tokens_to_close: Option<usize>,
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

/// Whether a valid completion fits `room` more tokens; the checked
/// completion's tokens when one had to be built.
enum Fit {
    /// It fits; `Some` when a completion was built to show it.
    Yes(Option<Vec<u32>>),
    /// It does not (or no completion could be built).
    No,
}

/// Largest completion built while steering, in bytes.
const MAX_COMPLETION_BYTES: usize = 1 << 16;

fn fits(m: &mut Matcher, room: usize) -> Result<Fit, Error> {
    // Every token spells at least one byte: a completion of `lb` bytes
    // never takes more than `lb` tokens.
    let lb = m.min_completion_bytes()?;
    if lb <= room as u64 {
        return Ok(Fit::Yes(None));
    }
    let max = room.saturating_mul(64).clamp(256, MAX_COMPLETION_BYTES);
    Ok(match m.shortest_completion(max)? {
        Some(c) if c.tokens.len() <= room => Fit::Yes(Some(c.tokens)),
        _ => Fit::No,
    })
}

/// The shortest completion's tokens if they fit `room`.
fn plan_within(m: &mut Matcher, room: usize) -> Result<Option<Vec<u32>>, Error> {
    let max = room.saturating_mul(64).clamp(256, MAX_COMPLETION_BYTES);
    Ok(m.shortest_completion(max)?.map(|c| c.tokens).filter(|t| t.len() <= room))
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
    let params = SamplingParams {
        temperature: opts.sampling.temperature,
        top_k: opts.sampling.top_k,
        top_p: opts.sampling.top_p,
    };
    // Sample-first is exact only without truncation (see MaskStrategy).
    let sample_first = matcher.is_some()
        && opts.mask_strategy.resolve() == MaskStrategy::SampleFirst
        && params.top_k == 0
        && params.top_p >= 1.0;
    let words = n.div_ceil(32);
    let mut logits = vec![0f32; n];
    let mut mask = vec![0u32; words];
    // Every non-special token and EOS: what free text allows, and what
    // sample-first draws from before the grammar's check.
    let free_mask = (matcher.is_none() || sample_first).then(|| {
        let mut m = vec![0u32; words];
        for t in 0..vocab.len() as u32 {
            if !vocab.is_special(t) || vocab.eos().contains(&t) {
                m[t as usize / 32] |= 1 << (t % 32);
            }
        }
        m
    });
    let mut rng = SplitMix64::new(opts.sampling.seed);
    let mut scratch = Candidates::new();

    let mut out = Decoded {
        tokens: Vec::new(),
        bytes: Vec::new(),
        finish: Finish::Budget,
        accepted: false,
        sampled: 0,
        forced: 0,
        steered: 0,
        masks: 0,
        tokens_to_close: None,
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
    // Budget steering: on while the shortest completion fits. `fallback`
    // is a completion (tokens) known to fit from the current state, when
    // one was built.
    let mut steering = false;
    let mut fallback: Option<Vec<u32>> = None;
    if let (Some(m), true) = (matcher.as_deref_mut(), opts.budget_steering) {
        if let Fit::Yes(plan) = fits(m, opts.max_tokens.saturating_sub(out.tokens.len()))? {
            steering = true;
            fallback = plan;
        }
    }
    let mut first = true;
    let decode_start;
    {
        // Prefill, with the first mask computed meanwhile.
        let m = matcher.as_deref_mut().filter(|_| !sample_first);
        out.masks += usize::from(m.is_some());
        out.mask_time += forward_and_mask(model, &feed, cache, &mut logits, m, &mut mask)?;
        out.prefill = start.elapsed();
        decode_start = crate::clock::Instant::now();
    }
    loop {
        if first && out.tokens.len() >= opts.max_tokens {
            // The forced start already spent the budget.
            out.finish = Finish::Budget;
            break;
        }
        let lse_all = log_sum_exp(&logits, None);
        // The sampled token, and whether sample-first already consumed it.
        let mut chosen: Option<(u32, bool)> = None;
        if let (true, Some(m), Some(base)) = (sample_first, matcher.as_deref_mut(), free_mask.as_deref()) {
            let u = rng.next_f32();
            if let Some(t) = sample_masked(&logits, base, &params, u, &mut scratch) {
                let t = t as u32;
                if vocab.eos().contains(&t) {
                    if m.is_accepting()? {
                        chosen = Some((t, false));
                    }
                } else if m.try_consume_token(t)? {
                    chosen = Some((t, true));
                }
            }
            if chosen.is_none() {
                let t0 = crate::clock::Instant::now();
                m.compute_mask(&mut mask)?;
                out.mask_time += t0.elapsed();
                out.masks += 1;
            }
        }
        // With the mask built this step: ln of the allowed mass.
        let (mut t, consumed, lse_allowed) = match chosen {
            Some((t, consumed)) => (t, consumed, None),
            None => {
                let allowed: &[u32] = match (&free_mask, sample_first) {
                    (Some(m), false) => m,
                    _ => &mask,
                };
                let lse = log_sum_exp(&logits, Some(allowed));
                if lse == f32::NEG_INFINITY {
                    // The grammar allows nothing (it accepted and ended, or
                    // the vocabulary cannot spell any continuation).
                    out.finish = Finish::Grammar;
                    break;
                }
                let u = rng.next_f32();
                let Some(t) = sample_masked(&logits, allowed, &params, u, &mut scratch) else {
                    out.finish = Finish::Grammar;
                    break;
                };
                (t as u32, false, Some(lse))
            }
        };
        // Without the mask, the whole-vocabulary probability: a lower bound
        // of the constrained one (documented on MaskStrategy).
        let lse_step = lse_allowed.unwrap_or(lse_all);
        out.mask_removed.push(lse_allowed.map_or(f32::NAN, |l| (1.0 - (l - lse_all).exp()).max(0.0)));
        if first {
            out.first_token = start.elapsed();
            first = false;
        }
        if vocab.eos().contains(&t) {
            out.logprob += f64::from(logits[t as usize] - lse_step);
            out.sampled += 1;
            out.finish = Finish::Eos;
            if let Some(m) = matcher.as_deref_mut() {
                m.consume_token(t)?;
            }
            break;
        }
        let mut forced: Vec<u32> = Vec::new();
        let mut steered = false;
        if let Some(m) = matcher.as_deref_mut() {
            if !consumed {
                m.consume_token(t)?;
            }
            // Fast-forward what the grammar forces, within the budget.
            if opts.fast_forward {
                let room = opts.max_tokens.saturating_sub(out.tokens.len() + 1);
                forced = m.forced_tokens()?;
                forced.truncate(room);
                m.consume_tokens(&forced)?;
            }
            if steering {
                let before = opts.max_tokens.saturating_sub(out.tokens.len());
                let room = before.saturating_sub(1 + forced.len());
                match fits(m, room)? {
                    Fit::Yes(plan) => fallback = plan,
                    Fit::No => {
                        // Take the step back; close along the shortest
                        // completion from before it (it fit: checked on the
                        // previous step).
                        m.rollback(1 + forced.len())?;
                        let plan = match fallback.take() {
                            Some(p) => Some(p),
                            None => plan_within(m, before)?,
                        };
                        match plan {
                            Some(p) if p.is_empty() => {
                                // It accepts here: end the answer now.
                                out.finish = Finish::BudgetClosed;
                                break;
                            }
                            Some(p) => {
                                t = p[0];
                                m.consume_token(t)?;
                                fallback = Some(p[1..].to_vec());
                                forced.clear();
                                steered = true;
                            }
                            None => {
                                // No completion could be built: keep the
                                // model's step, stop steering.
                                m.consume_token(t)?;
                                m.consume_tokens(&forced)?;
                                steering = false;
                            }
                        }
                    }
                }
            }
        }
        let lp = f64::from(logits[t as usize] - lse_step);
        out.logprob += lp;
        if steered {
            out.steered += 1;
        } else {
            out.sampled += 1;
        }
        feed.clear();
        feed.push(t);
        let bytes = vocab.token_bytes(t);
        out.tracker.push_token(bytes, Some(lp));
        out.tokens.push(t);
        out.bytes.extend_from_slice(bytes);
        let flow =
            on_progress(&Progress { tokens: &[t], bytes, forced: false, text: &out.bytes, tracker: &out.tracker });
        let stop = opts.stop.iter().find(|s| !s.is_empty() && out.bytes.ends_with(s.as_bytes()));
        if flow.is_break() || stop.is_some() {
            // The forced tokens after `t` are not part of the output.
            if let Some(m) = matcher.as_deref_mut() {
                m.rollback(forced.len())?;
            }
            if let Some(stop) = stop.filter(|_| !flow.is_break()) {
                let cut = out.bytes.len() - stop.len();
                out.bytes.truncate(cut);
                out.finish = Finish::Stop;
            } else {
                out.finish = Finish::Cancelled;
            }
            break;
        }
        if emit_forced(&forced, vocab, &mut out, &mut feed, on_progress).is_break() {
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
        let m = matcher.as_deref_mut().filter(|_| !sample_first);
        out.masks += usize::from(m.is_some());
        out.mask_time += forward_and_mask(model, &feed, cache, &mut logits, m, &mut mask)?;
    }
    out.accepted = match matcher {
        Some(m) => {
            let accepted = out.finish == Finish::Eos || m.is_accepting()?;
            if out.steered > 0 && accepted && matches!(out.finish, Finish::Eos | Finish::Grammar | Finish::Budget) {
                out.finish = Finish::BudgetClosed;
            }
            if !accepted && out.finish == Finish::Budget {
                out.tokens_to_close = m.shortest_completion(MAX_COMPLETION_BYTES)?.map(|c| c.tokens.len());
            }
            accepted
        }
        None => true,
    };
    out.decode = decode_start.elapsed();
    Ok(out)
}

/// Feeds what the grammar forces at the start, within the token budget:
/// consumes the forced tokens and emits them (see [`emit_forced`]).
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
    m.consume_tokens(&forced)?;
    Ok(emit_forced(&forced, vocab, out, feed, on_progress))
}

/// Appends forced tokens (already consumed by the matcher) to the output
/// and to `feed` (the next forward pass) and reports them to
/// `on_progress`, whose answer it returns.
fn emit_forced(
    forced: &[u32],
    vocab: &Vocabulary,
    out: &mut Decoded,
    feed: &mut Vec<u32>,
    on_progress: &mut dyn FnMut(&Progress<'_>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    if forced.is_empty() {
        return ControlFlow::Continue(());
    }
    let start_bytes = out.bytes.len();
    for &f in forced {
        let b = vocab.token_bytes(f);
        out.tracker.push_token(b, None);
        out.bytes.extend_from_slice(b);
    }
    out.tokens.extend_from_slice(forced);
    out.forced += forced.len();
    feed.extend_from_slice(forced);
    on_progress(&Progress {
        tokens: forced,
        bytes: &out.bytes[start_bytes..],
        forced: true,
        text: &out.bytes,
        tracker: &out.tracker,
    })
}
