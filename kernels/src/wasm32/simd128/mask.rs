//! Token mask kernels with wasm `simd128`: 4 logits per vector, one mask
//! word per 32 logits, all-ones and all-zeros words on a fast path, the
//! partial last word in scalar code. Bit-exact with `scalar::mask`.

use core::arch::wasm32::*;

use crate::scalar;

/// Lane `i` all ones iff bit `i` of `bits` (low 4 bits) is set.
#[inline(always)]
fn lane_mask(bits: u32) -> v128 {
    let sel = u32x4(1, 2, 4, 8);
    i32x4_ne(v128_and(u32x4_splat(bits), sel), i32x4_splat(0))
}

/// # Safety
///
/// The module must be built with simd128.
#[target_feature(enable = "simd128")]
pub(crate) unsafe fn apply_mask_f32(logits: &mut [f32], mask: &[u32]) {
    let full = logits.len() / 32;
    let neg_inf = f32x4_splat(f32::NEG_INFINITY);
    for (w, chunk) in logits.chunks_exact_mut(32).enumerate() {
        let word = mask.get(w).copied().unwrap_or(0);
        if word == u32::MAX {
            continue;
        }
        let p = chunk.as_mut_ptr().cast::<v128>();
        for g in 0..8 {
            // SAFETY: `chunk` has 32 floats; lanes 4g..4g+4 are in bounds.
            let v = if word == 0 {
                neg_inf
            } else {
                v128_bitselect(v128_load(p.add(g)), neg_inf, lane_mask(word >> (4 * g)))
            };
            v128_store(p.add(g), v);
        }
    }
    let rest = mask.get(full..).unwrap_or(&[]);
    scalar::apply_mask_f32(&mut logits[32 * full..], rest);
}

/// # Safety
///
/// The module must be built with simd128.
#[target_feature(enable = "simd128")]
pub(crate) unsafe fn masked_argmax(logits: &[f32], mask: &[u32]) -> Option<usize> {
    let full = (logits.len() / 32).min(mask.len());
    let neg_inf = f32x4_splat(f32::NEG_INFINITY);
    // Pass 1: maximum over allowed logits. `pmax(acc, v)` is
    // `acc < v ? v : acc`, which keeps `acc` when `v` is NaN.
    let mut vmax = neg_inf;
    for (w, chunk) in logits.chunks_exact(32).take(full).enumerate() {
        let word = mask[w];
        if word == 0 {
            continue;
        }
        let p = chunk.as_ptr().cast::<v128>();
        for g in 0..8 {
            // SAFETY: `chunk` has 32 floats.
            let mut v = v128_load(p.add(g));
            if word != u32::MAX {
                v = v128_bitselect(v, neg_inf, lane_mask(word >> (4 * g)));
            }
            vmax = f32x4_pmax(vmax, v);
        }
    }
    let mut max = f32x4_extract_lane::<0>(vmax)
        .max(f32x4_extract_lane::<1>(vmax))
        .max(f32x4_extract_lane::<2>(vmax))
        .max(f32x4_extract_lane::<3>(vmax));
    let tail = scalar::AllowedTokens::in_range(mask, 32 * full, logits.len());
    for i in tail.clone() {
        if logits[i] > max {
            max = logits[i];
        }
    }
    // Pass 2: first allowed index equal to the maximum.
    let vm = f32x4_splat(max);
    for (w, chunk) in logits.chunks_exact(32).take(full).enumerate() {
        let word = mask[w];
        if word == 0 {
            continue;
        }
        let p = chunk.as_ptr().cast::<v128>();
        let mut eq = 0u32;
        for g in 0..8 {
            // SAFETY: as in pass 1.
            eq |= u32::from(i32x4_bitmask(f32x4_eq(v128_load(p.add(g)), vm))) << (4 * g);
        }
        let hits = eq & word;
        if hits != 0 {
            return Some(32 * w + hits.trailing_zeros() as usize);
        }
    }
    let mut tail = tail;
    tail.find(|&i| logits[i] == max)
}
