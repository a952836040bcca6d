//! Helpers shared by the model tests (`tests/model.rs`, `tests/gemma.rs`):
//! reproducible random weights and the comparison of logits with a
//! reference implementation.

/// Deterministic pseudo-random numbers in [-1, 1).
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// `n` numbers scaled by `scale`.
    pub fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

/// How two rows of logits differ, relative to the reference's range
/// (max − min): (max |diff|, the reference's drop from its best logit to the
/// logit of our argmax — 0 when the argmaxes agree).
pub fn compare(ours: &[f32], reference: &[f32]) -> (f32, f32) {
    assert_eq!(ours.len(), reference.len());
    let max = reference.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let min = reference.iter().copied().fold(f32::INFINITY, f32::min);
    let diff = ours.iter().zip(reference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0);
    let (a, b) = (argmax(ours), argmax(reference));
    (diff / (max - min), (reference[b] - reference[a]) / (max - min))
}
