//! The logit path, scalar: apply a token bitmask, masked argmax, iterate the
//! allowed tokens.
//!
//! Mask layout (the contract with `formwork-grammar`'s `TokenMask`): a
//! `&[u32]`, token `i` allowed iff bit `i % 32` of word `i / 32` is set.
//! Tokens beyond `32 * mask.len()` are disallowed (a mask built for a
//! tokenizer whose vocabulary is smaller than the model's logit vector
//! forbids the padding rows); bits beyond `logits.len()` are ignored.

/// Sets every disallowed logit to `-inf`; allowed logits are untouched.
pub fn apply_mask_f32(logits: &mut [f32], mask: &[u32]) {
    for (w, chunk) in logits.chunks_mut(32).enumerate() {
        let word = mask.get(w).copied().unwrap_or(0);
        if word == u32::MAX {
            continue;
        }
        for (i, l) in chunk.iter_mut().enumerate() {
            if (word >> i) & 1 == 0 {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}

/// The allowed token with the largest logit; ties go to the smallest index.
///
/// NaN logits are never chosen. `-inf` is a value like any other: when every
/// allowed logit is `-inf`, the first allowed token is returned. `None` when
/// no token below `logits.len()` is allowed (or all allowed logits are NaN).
///
/// Cost: one test per 32-token word plus one comparison per allowed token.
pub fn masked_argmax(logits: &[f32], mask: &[u32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for i in AllowedTokens::new(mask, logits.len()) {
        let v = logits[i];
        match best {
            _ if v.is_nan() => {}
            Some((_, b)) if v <= b => {}
            _ => best = Some((i, v)),
        }
    }
    best.map(|(i, _)| i)
}

/// Number of allowed tokens below `vocab`.
pub fn count_allowed(mask: &[u32], vocab: usize) -> usize {
    let full = vocab / 32;
    let mut n: usize = mask.iter().take(full).map(|w| w.count_ones() as usize).sum();
    if vocab % 32 != 0 {
        if let Some(&w) = mask.get(full) {
            n += (w & ((1u32 << (vocab % 32)) - 1)).count_ones() as usize;
        }
    }
    n
}

/// The allowed token ids below `vocab`, in increasing order.
///
/// Skips zero words and walks set bits with `trailing_zeros`, so a sparse mask
/// costs one load per 32 tokens plus O(1) per allowed token.
#[derive(Clone, Debug)]
pub struct AllowedTokens<'a> {
    mask: &'a [u32],
    vocab: usize,
    word_index: usize,
    word: u32,
}

impl<'a> AllowedTokens<'a> {
    /// Iterates the set bits of `mask` below `vocab`.
    pub fn new(mask: &'a [u32], vocab: usize) -> AllowedTokens<'a> {
        AllowedTokens::in_range(mask, 0, vocab)
    }

    /// Iterates the set bits of `mask` in `start..vocab`.
    pub fn in_range(mask: &'a [u32], start: usize, vocab: usize) -> AllowedTokens<'a> {
        let words = vocab.div_ceil(32).min(mask.len());
        let mask = &mask[..words];
        let word_index = start / 32;
        let word = match mask.get(word_index) {
            Some(&w) if start < vocab => w & (u32::MAX << (start % 32)),
            _ => 0,
        };
        AllowedTokens { mask, vocab, word_index: word_index.min(mask.len()), word }
    }
}

impl Iterator for AllowedTokens<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.word == 0 {
            self.word_index += 1;
            self.word = *self.mask.get(self.word_index)?;
        }
        let bit = self.word.trailing_zeros() as usize;
        self.word &= self.word - 1;
        let i = self.word_index * 32 + bit;
        if i < self.vocab {
            Some(i)
        } else {
            // Only the last word can hold bits at or beyond `vocab`, and they
            // come after every valid bit of that word.
            self.word = 0;
            self.word_index = self.mask.len();
            None
        }
    }
}
