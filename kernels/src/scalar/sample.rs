//! Sampling over the allowed tokens only: softmax with temperature, top-k,
//! top-p, inverse-CDF draw.
//!
//! Where it sits: after the forward pass produced logits and the grammar
//! produced a token mask, the generator picks a token. With a grammar the
//! allowed set is often tiny (a digit, a closing quote), so everything here
//! costs O(vocab / 32) to scan the mask words plus O(allowed) for the rest —
//! never O(vocab) exponentials or a sort of the whole vocabulary.
//!
//! The randomness comes from the caller (`u`, uniform in `[0, 1)`), so that
//! the root crate owns the seeded generator and runs are reproducible: the
//! same logits, mask, parameters and `u` give the same token, on every
//! platform and with every kernel set (ties between equal probabilities go to
//! the smaller token id).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::mask::AllowedTokens;

/// How to pick a token from a distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature. `<= 0` (or NaN) means greedy: the allowed token
    /// with the largest logit.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 disables.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches
    /// `top_p`; `>= 1` disables.
    pub top_p: f32,
}

impl Default for SamplingParams {
    /// Greedy.
    fn default() -> Self {
        SamplingParams { temperature: 0.0, top_k: 0, top_p: 1.0 }
    }
}

/// One candidate token: its id and its logit or probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Token id.
    pub id: u32,
    /// Logit before [`Candidates::softmax`], probability after.
    pub value: f32,
}

/// Decreasing value, then increasing id: a total order, so every selection
/// and sort below is deterministic.
fn by_value_desc(a: &Candidate, b: &Candidate) -> Ordering {
    b.value.total_cmp(&a.value).then(a.id.cmp(&b.id))
}

/// Heap order for top-k selection: the *worst* candidate is the greatest, so
/// it sits at the top of a `BinaryHeap`, ready to be evicted.
#[derive(Clone, Copy, Debug)]
struct Worst(Candidate);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        by_value_desc(&self.0, &other.0)
    }
}

/// A reusable buffer of candidate tokens (allowed ids with their logits, then
/// probabilities). Keep one per sequence to avoid reallocating every step.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    items: Vec<Candidate>,
    heap: BinaryHeap<Worst>,
    is_probability: bool,
}

impl Candidates {
    /// An empty buffer.
    pub fn new() -> Candidates {
        Candidates::default()
    }

    /// Loads the allowed tokens (mask layout as in [`crate::apply_mask_f32`])
    /// with their logits, skipping NaN logits. Cost proportional to the mask
    /// words plus the allowed tokens.
    pub fn fill_masked(&mut self, logits: &[f32], mask: &[u32]) {
        self.items.clear();
        self.is_probability = false;
        for i in AllowedTokens::new(mask, logits.len()) {
            let value = logits[i];
            if !value.is_nan() {
                self.items.push(Candidate { id: i as u32, value });
            }
        }
    }

    /// Loads only the `k` allowed tokens with the largest logits (all of
    /// them when `k == 0`), in decreasing order — the same set as
    /// [`fill_masked`](Self::fill_masked) followed by [`top_k`](Self::top_k),
    /// at O(allowed + k log k) with a bounded heap instead of a selection
    /// over every allowed token: most tokens are rejected by one comparison
    /// with the current k-th best.
    pub fn fill_masked_top_k(&mut self, logits: &[f32], mask: &[u32], k: usize) {
        if k == 0 {
            return self.fill_masked(logits, mask);
        }
        self.items.clear();
        self.heap.clear();
        self.is_probability = false;
        for i in AllowedTokens::new(mask, logits.len()) {
            let value = logits[i];
            if value.is_nan() {
                continue;
            }
            let c = Worst(Candidate { id: i as u32, value });
            if self.heap.len() < k {
                self.heap.push(c);
            } else if let Some(mut worst) = self.heap.peek_mut() {
                if c < *worst {
                    *worst = c;
                }
            }
        }
        self.items.extend(self.heap.drain().map(|w| w.0));
        self.items.sort_unstable_by(by_value_desc);
    }

    /// Loads every token (no mask), skipping NaN logits.
    pub fn fill_all(&mut self, logits: &[f32]) {
        self.items.clear();
        self.is_probability = false;
        self.items.extend(
            logits.iter().enumerate().filter(|(_, v)| !v.is_nan()).map(|(i, &value)| Candidate { id: i as u32, value }),
        );
    }

    /// The candidates, in id order until [`top_k`](Self::top_k) or
    /// [`top_p`](Self::top_p) reorder them.
    pub fn as_slice(&self) -> &[Candidate] {
        &self.items
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// No candidate.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether values are probabilities (after [`softmax`](Self::softmax)).
    pub fn is_probability(&self) -> bool {
        self.is_probability
    }

    /// Keeps the `k` candidates with the largest values (logits or
    /// probabilities: the order is the same), in decreasing order. O(n + k log k).
    pub fn top_k(&mut self, k: usize) {
        if k == 0 || k >= self.items.len() {
            return;
        }
        self.items.select_nth_unstable_by(k - 1, by_value_desc);
        self.items.truncate(k);
        self.items.sort_unstable_by(by_value_desc);
        if self.is_probability {
            self.renormalize();
        }
    }

    /// Turns logits into probabilities: `exp((l - max) / temperature)`,
    /// normalized. `temperature` must be positive and finite. Candidates
    /// whose logit is `-inf` get probability 0; if all are `-inf`, each
    /// gets the same probability.
    pub fn softmax(&mut self, temperature: f32) {
        assert!(temperature > 0.0 && temperature.is_finite(), "temperature {temperature}");
        let max = self.items.iter().fold(f32::NEG_INFINITY, |m, c| m.max(c.value));
        if max.is_infinite() {
            // No finite reference point: uniform over the maximal ones.
            for c in &mut self.items {
                c.value = if c.value == max { 1.0 } else { 0.0 };
            }
        } else {
            let inv_t = 1.0 / temperature;
            for c in &mut self.items {
                c.value = ((c.value - max) * inv_t).exp();
            }
        }
        self.is_probability = true;
        self.renormalize();
    }

    fn renormalize(&mut self) {
        let total: f32 = self.items.iter().map(|c| c.value).sum();
        if total > 0.0 {
            let inv = 1.0 / total;
            for c in &mut self.items {
                c.value *= inv;
            }
        }
    }

    /// Nucleus filtering: keeps the smallest prefix of the most likely
    /// candidates whose total probability is at least `p`, renormalized, in
    /// decreasing order. Needs probabilities ([`softmax`](Self::softmax)).
    ///
    /// Sorts only as much as needed: it partitions out the top 64, then 256,
    /// … candidates until their mass reaches `p`, so a peaked distribution
    /// over a large vocabulary costs O(n), not O(n log n).
    ///
    /// # Panics
    ///
    /// When called before `softmax`.
    pub fn top_p(&mut self, p: f32) {
        assert!(self.is_probability, "top_p needs probabilities: call softmax first");
        if p >= 1.0 || p.is_nan() || self.items.is_empty() {
            return;
        }
        let n = self.items.len();
        let mut k = 64.min(n);
        loop {
            if k < n {
                self.items.select_nth_unstable_by(k - 1, by_value_desc);
            }
            self.items[..k].sort_unstable_by(by_value_desc);
            let mut cum = 0.0f32;
            for i in 0..k {
                cum += self.items[i].value;
                if cum >= p {
                    self.items.truncate(i + 1);
                    self.renormalize();
                    return;
                }
            }
            if k == n {
                // Rounding left the total just under p: keep everything.
                return;
            }
            k = (k * 4).min(n);
        }
    }

    /// Draws a token by inverse CDF with `u` uniform in `[0, 1)`, over the
    /// current order. `None` when there is no candidate. Needs
    /// probabilities.
    ///
    /// # Panics
    ///
    /// When called before `softmax`.
    pub fn sample(&self, u: f32) -> Option<u32> {
        assert!(self.is_probability, "sample needs probabilities: call softmax first");
        let total: f32 = self.items.iter().map(|c| c.value).sum();
        let target = u.clamp(0.0, 1.0) * total;
        let mut cum = 0.0f32;
        let mut last = None;
        for c in &self.items {
            if c.value <= 0.0 {
                continue;
            }
            cum += c.value;
            last = Some(c.id);
            if target < cum {
                return Some(c.id);
            }
        }
        // u * total can reach total through rounding: the last positive one.
        last.or_else(|| self.items.first().map(|c| c.id))
    }

    /// The value (probability after `softmax`) of token `id`, if it is a
    /// candidate. O(n).
    pub fn value_of(&self, id: u32) -> Option<f32> {
        self.items.iter().find(|c| c.id == id).map(|c| c.value)
    }
}

/// Picks a token among the allowed ones: greedy when
/// `params.temperature <= 0`, otherwise top-k, softmax with temperature,
/// top-p, and an inverse-CDF draw with `u` uniform in `[0, 1)`.
///
/// `scratch` is reused between calls; after the call it holds the final
/// distribution (empty for greedy), so the caller can read the chosen token's
/// probability for a confidence score. `None` when no token is allowed.
pub fn sample_masked(
    logits: &[f32],
    mask: &[u32],
    params: &SamplingParams,
    u: f32,
    scratch: &mut Candidates,
) -> Option<usize> {
    // Greedy is the hot case: use the dispatched (vectorized) argmax.
    let sampling = params.temperature > 0.0; // false for NaN too
    if !sampling {
        scratch.items.clear();
        return crate::masked_argmax(logits, mask);
    }
    scratch.fill_masked_top_k(logits, mask, params.top_k);
    scratch.softmax(params.temperature);
    scratch.top_p(params.top_p);
    scratch.sample(u).map(|id| id as usize)
}

/// `ln Σ exp(l_i)` over the allowed tokens (all tokens when `mask` is
/// `None`), computed stably; `-inf` when nothing is allowed. The difference
/// between the unmasked and masked values is how much probability the mask
/// removed: `1 - exp(masked - all)`.
pub fn log_sum_exp(logits: &[f32], mask: Option<&[u32]>) -> f32 {
    fn lse(values: impl Iterator<Item = f32> + Clone) -> f32 {
        let max = values.clone().filter(|v| !v.is_nan()).fold(f32::NEG_INFINITY, f32::max);
        if max.is_infinite() {
            return max;
        }
        let sum: f32 = values.filter(|v| !v.is_nan()).map(|v| (v - max).exp()).sum();
        max + sum.ln()
    }
    match mask {
        None => lse(logits.iter().copied()),
        Some(mask) => lse(AllowedTokens::new(mask, logits.len()).map(|i| logits[i])),
    }
}
