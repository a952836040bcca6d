//! Token mask kernels with NEON: 4 logits per vector, one mask word per 32
//! logits, all-ones and all-zeros words on a fast path, the partial last
//! word in scalar code. Bit-exact with `scalar::mask`.

use core::arch::aarch64::*;

use crate::scalar;

/// Lane `i` all ones iff bit `i` of `bits` (low 4 bits) is set.
///
/// # Safety
///
/// Call only where NEON is enabled (from this module's `target_feature`
/// kernels).
#[inline(always)]
unsafe fn lane_mask(bits: u32) -> uint32x4_t {
    const SEL: [u32; 4] = [1, 2, 4, 8];
    // SAFETY: 4 readable u32.
    vtstq_u32(vdupq_n_u32(bits), vld1q_u32(SEL.as_ptr()))
}

/// # Safety
///
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn apply_mask_f32(logits: &mut [f32], mask: &[u32]) {
    let full = logits.len() / 32;
    let neg_inf = vdupq_n_f32(f32::NEG_INFINITY);
    for (w, chunk) in logits.chunks_exact_mut(32).enumerate() {
        let word = mask.get(w).copied().unwrap_or(0);
        if word == u32::MAX {
            continue;
        }
        let p = chunk.as_mut_ptr();
        for g in 0..8 {
            // SAFETY: `chunk` has 32 elements; lanes 4g..4g+4 in bounds.
            let v = if word == 0 {
                neg_inf
            } else {
                vbslq_f32(lane_mask(word >> (4 * g)), vld1q_f32(p.add(4 * g)), neg_inf)
            };
            vst1q_f32(p.add(4 * g), v);
        }
    }
    let rest = mask.get(full..).unwrap_or(&[]);
    scalar::apply_mask_f32(&mut logits[32 * full..], rest);
}

/// # Safety
///
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn masked_argmax(logits: &[f32], mask: &[u32]) -> Option<usize> {
    let full = (logits.len() / 32).min(mask.len());
    let neg_inf = vdupq_n_f32(f32::NEG_INFINITY);
    // Pass 1: maximum over allowed logits. `fmaxnm` ignores a NaN operand.
    let mut vmax = neg_inf;
    for (w, chunk) in logits.chunks_exact(32).take(full).enumerate() {
        let word = mask[w];
        if word == 0 {
            continue;
        }
        let p = chunk.as_ptr();
        for g in 0..8 {
            // SAFETY: `chunk` has 32 elements.
            let mut v = vld1q_f32(p.add(4 * g));
            if word != u32::MAX {
                v = vbslq_f32(lane_mask(word >> (4 * g)), v, neg_inf);
            }
            vmax = vmaxnmq_f32(vmax, v);
        }
    }
    let mut max = vmaxnmvq_f32(vmax);
    let tail = scalar::AllowedTokens::in_range(mask, 32 * full, logits.len());
    for i in tail.clone() {
        if logits[i] > max {
            max = logits[i];
        }
    }
    // Pass 2: first allowed index equal to the maximum.
    let vm = vdupq_n_f32(max);
    const BITS: [u32; 4] = [1, 2, 4, 8];
    // SAFETY: 4 readable u32.
    let bits = vld1q_u32(BITS.as_ptr());
    for (w, chunk) in logits.chunks_exact(32).take(full).enumerate() {
        let word = mask[w];
        if word == 0 {
            continue;
        }
        let p = chunk.as_ptr();
        let mut eq = 0u32;
        for g in 0..8 {
            // SAFETY: as in pass 1.
            let c = vceqq_f32(vld1q_f32(p.add(4 * g)), vm);
            eq |= vaddvq_u32(vandq_u32(c, bits)) << (4 * g);
        }
        let hits = eq & word;
        if hits != 0 {
            return Some(32 * w + hits.trailing_zeros() as usize);
        }
    }
    let mut tail = tail;
    tail.find(|&i| logits[i] == max)
}
