//! Token mask kernels with AVX2: 8 logits per vector, one mask word per 32
//! logits. Words that are all ones or all zeros take a fast path (no lane
//! masks); the partial word at the end of the vocabulary goes to the scalar
//! code. Results are bit-exact with `scalar::mask`.

use core::arch::x86_64::*;

use crate::scalar;

/// Lane `i` all ones iff bit `i` of `bits` (the low 8 bits) is set.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
unsafe fn lane_mask(bits: u32) -> __m256 {
    let sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let b = _mm256_and_si256(_mm256_set1_epi32(bits as i32), sel);
    _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, sel))
}

/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn apply_mask_f32(logits: &mut [f32], mask: &[u32]) {
    let full = logits.len() / 32;
    let neg_inf = _mm256_set1_ps(f32::NEG_INFINITY);
    for (w, chunk) in logits.chunks_exact_mut(32).enumerate() {
        let word = mask.get(w).copied().unwrap_or(0);
        if word == u32::MAX {
            continue;
        }
        let p = chunk.as_mut_ptr();
        for g in 0..4 {
            // SAFETY: `chunk` has 32 elements, lanes 8g..8g+8 are in bounds;
            // unaligned load and store.
            let v = if word == 0 {
                neg_inf
            } else {
                _mm256_blendv_ps(neg_inf, _mm256_loadu_ps(p.add(8 * g)), lane_mask(word >> (8 * g)))
            };
            _mm256_storeu_ps(p.add(8 * g), v);
        }
    }
    let rest = mask.get(full..).unwrap_or(&[]);
    scalar::apply_mask_f32(&mut logits[32 * full..], rest);
}

/// Whether `word` has at most two bits set (zero included).
#[inline(always)]
fn at_most_two_bits(word: u32) -> bool {
    let rest = word & word.wrapping_sub(1);
    rest & rest.wrapping_sub(1) == 0
}

/// Largest of the 8 lanes (no NaN lanes).
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
unsafe fn hmax(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_movehdup_ps(m));
    _mm_cvtss_f32(m)
}

/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn masked_argmax(logits: &[f32], mask: &[u32]) -> Option<usize> {
    let full = (logits.len() / 32).min(mask.len());
    let neg_inf = _mm256_set1_ps(f32::NEG_INFINITY);

    // Pass 1: the maximum over allowed, non-NaN logits. `max_ps(v, acc)`
    // returns `acc` when `v` is NaN, so NaN lanes never enter. Words with
    // one or two allowed tokens (common under a grammar) are cheaper bit by
    // bit; `v > smax` is false for NaN too.
    let mut vmax = neg_inf;
    let mut smax = f32::NEG_INFINITY;
    for (w, chunk) in logits.chunks_exact(32).take(full).enumerate() {
        let word = mask[w];
        if at_most_two_bits(word) {
            let mut bits = word;
            while bits != 0 {
                let v = chunk[bits.trailing_zeros() as usize];
                if v > smax {
                    smax = v;
                }
                bits &= bits - 1;
            }
            continue;
        }
        let p = chunk.as_ptr();
        for g in 0..4 {
            // SAFETY: `chunk` has 32 elements; unaligned load.
            let mut v = _mm256_loadu_ps(p.add(8 * g));
            if word != u32::MAX {
                v = _mm256_blendv_ps(neg_inf, v, lane_mask(word >> (8 * g)));
            }
            vmax = _mm256_max_ps(v, vmax);
        }
    }
    let mut max = hmax(vmax).max(smax);
    let tail_start = 32 * full;
    let tail = scalar::AllowedTokens::in_range(mask, tail_start, logits.len());
    for i in tail.clone() {
        let v = logits[i];
        if v > max {
            max = v;
        }
    }

    // Pass 2: the first allowed index holding that maximum (NaN compares
    // unequal to everything, so it is never found).
    let vm = _mm256_set1_ps(max);
    for (w, chunk) in logits.chunks_exact(32).take(full).enumerate() {
        let word = mask[w];
        if at_most_two_bits(word) {
            let mut bits = word;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                if chunk[i] == max {
                    return Some(32 * w + i);
                }
                bits &= bits - 1;
            }
            continue;
        }
        let p = chunk.as_ptr();
        let mut eq = 0u32;
        for g in 0..4 {
            // SAFETY: as in pass 1.
            let c = _mm256_cmp_ps(_mm256_loadu_ps(p.add(8 * g)), vm, _CMP_EQ_OQ);
            eq |= (_mm256_movemask_ps(c) as u32) << (8 * g);
        }
        let hits = eq & word;
        if hits != 0 {
            return Some(32 * w + hits.trailing_zeros() as usize);
        }
    }
    let mut tail = tail;
    tail.find(|&i| logits[i] == max)
}
