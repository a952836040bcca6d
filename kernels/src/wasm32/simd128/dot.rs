//! Quantized dot products with wasm `simd128`.
//!
//! Weights are unpacked to signed bytes and multiplied with the activation
//! bytes by `i16x8.extmul_{low,high}_i8x16` (exact: |w x| <= 128 * 127),
//! pairs summed into i32 by `i32x4.extadd_pairwise_i16x8`; the block scale
//! is applied on four f32 lanes (wasm has no FMA: multiply then add).

use core::arch::wasm32::*;

use crate::quant::{
    unpack_scales_mins_k4, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1,
};

/// 16 bytes from a slice of at least 16 one-byte elements.
///
/// # Safety
///
/// `p` must hold at least 16 one-byte elements (checked in debug builds).
/// Call only in `simd128` builds (from this module's kernels).
#[inline(always)]
pub(super) unsafe fn load16<T>(p: &[T]) -> v128 {
    debug_assert!(core::mem::size_of::<T>() == 1 && p.len() >= 16);
    // SAFETY: at least 16 readable bytes; wasm loads need no alignment.
    v128_load(p.as_ptr().cast())
}

/// Exact `Σ x_i y_i` over 16 signed bytes, as 4 i32 lanes.
#[inline(always)]
fn dot16(x: v128, y: v128) -> v128 {
    let lo = i16x8_extmul_low_i8x16(x, y);
    let hi = i16x8_extmul_high_i8x16(x, y);
    i32x4_add(i32x4_extadd_pairwise_i16x8(lo), i32x4_extadd_pairwise_i16x8(hi))
}

#[inline(always)]
pub(super) fn hsum_f32(v: v128) -> f32 {
    (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
        + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v))
}

#[inline(always)]
fn hsum_i32(v: v128) -> i32 {
    i32x4_extract_lane::<0>(v)
        .wrapping_add(i32x4_extract_lane::<1>(v))
        .wrapping_add(i32x4_extract_lane::<2>(v))
        .wrapping_add(i32x4_extract_lane::<3>(v))
}

/// Low and high nibbles of 16 packed bytes: (weights 0..16, weights 16..32).
///
/// # Safety
///
/// Call only in `simd128` builds (from this module's kernels).
#[inline(always)]
pub(super) unsafe fn nibbles(qs: &[u8; 16]) -> (v128, v128) {
    let b = load16(qs);
    (v128_and(b, u8x16_splat(0x0f)), u8x16_shr(b, 4))
}

/// Bytes 0x10 where bit `i` of the 16-bit `bits` is set.
#[inline(always)]
pub(super) fn fifth_bits(bits: u16) -> v128 {
    let [b0, b1] = bits.to_le_bytes();
    let spread = 0x0101_0101_0101_0101u64;
    let v = u64x2(u64::from(b0) * spread, u64::from(b1) * spread);
    let sel = u64x2(0x8040_2010_0804_0201, 0x8040_2010_0804_0201);
    let set = u8x16_ne(v128_and(v, sel), u8x16_splat(0));
    v128_and(set, u8x16_splat(0x10))
}

/// The single-row case of the GEMV kernel (same arithmetic as a GEMV row).
///
/// # Safety
///
/// The module must be built with simd128.
#[target_feature(enable = "simd128")]
pub(crate) unsafe fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut out = [0.0f32];
    super::gemv::rows_q4_0::<1>(x, y, &mut out);
    out[0]
}

/// The single-row case of the GEMV kernel (same arithmetic as a GEMV row).
///
/// # Safety
///
/// The module must be built with simd128.
#[target_feature(enable = "simd128")]
pub(crate) unsafe fn dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut out = [0.0f32];
    super::gemv::rows_q4_1::<1>(x, y, &mut out);
    out[0]
}

/// The single-row case of the GEMV kernel (same arithmetic as a GEMV row).
///
/// # Safety
///
/// The module must be built with simd128.
#[target_feature(enable = "simd128")]
pub(crate) unsafe fn dot_q5_0_q8_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut out = [0.0f32];
    super::gemv::rows_q5_0::<1>(x, y, &mut out);
    out[0]
}

/// The single-row case of the GEMV kernel (same arithmetic as a GEMV row).
///
/// # Safety
///
/// The module must be built with simd128.
#[target_feature(enable = "simd128")]
pub(crate) unsafe fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut out = [0.0f32];
    super::gemv::rows_q8_0::<1>(x, y, &mut out);
    out[0]
}

/// `Σ_j sc[j] Σ q x` of a Q4_K (`qh = None`) or Q5_K super-block, and
/// `Σ_j m[j] (bsums[2j] + bsums[2j+1])`.
///
/// # Safety
///
/// Call only in `simd128` builds (from this module's kernels).
#[inline(always)]
unsafe fn k4_sums(scales: &[u8; 12], qs: &[u8; 128], qh: Option<&[u8; 32]>, by: &BlockQ8K) -> (i32, i32) {
    let (sc, m) = unpack_scales_mins_k4(scales);
    let low4 = u8x16_splat(0x0f);
    let one = u8x16_splat(1);
    let mut sumi = 0i32;
    for c in 0..4 {
        let mut s = [i32x4_splat(0); 2];
        for half in 0..2 {
            let b = load16(&qs[32 * c + 16 * half..]);
            let mut lo = v128_and(b, low4);
            let mut hi = u8x16_shr(b, 4);
            if let Some(qh) = qh {
                let h = load16(&qh[16 * half..]);
                let h_lo = v128_and(u8x16_shr(h, 2 * c as u32), one);
                let h_hi = v128_and(u8x16_shr(h, 2 * c as u32 + 1), one);
                lo = v128_or(lo, i8x16_shl(h_lo, 4));
                hi = v128_or(hi, i8x16_shl(h_hi, 4));
            }
            s[0] = i32x4_add(s[0], dot16(lo, load16(&by.qs[64 * c + 16 * half..])));
            s[1] = i32x4_add(s[1], dot16(hi, load16(&by.qs[64 * c + 32 + 16 * half..])));
        }
        sumi += i32::from(sc[2 * c]) * hsum_i32(s[0]) + i32::from(sc[2 * c + 1]) * hsum_i32(s[1]);
    }
    let summ = (0..8).map(|j| i32::from(m[j]) * (i32::from(by.bsums[2 * j]) + i32::from(by.bsums[2 * j + 1]))).sum();
    (sumi, summ)
}

/// # Safety
///
/// The module must be built with simd128.
#[target_feature(enable = "simd128")]
pub(crate) unsafe fn dot_q4k_q8k(x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut sum = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let (sumi, summ) = k4_sums(&bx.scales, &bx.qs, None, by);
        sum += by.d * (bx.d.to_f32() * sumi as f32 - bx.dmin.to_f32() * summ as f32);
    }
    sum
}

/// # Safety
///
/// The module must be built with simd128.
#[target_feature(enable = "simd128")]
pub(crate) unsafe fn dot_q5k_q8k(x: &[BlockQ5K], y: &[BlockQ8K]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut sum = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let (sumi, summ) = k4_sums(&bx.scales, &bx.qs, Some(&bx.qh), by);
        sum += by.d * (bx.d.to_f32() * sumi as f32 - bx.dmin.to_f32() * summ as f32);
    }
    sum
}

/// # Safety
///
/// The module must be built with simd128.
#[target_feature(enable = "simd128")]
pub(crate) unsafe fn dot_q6k_q8k(x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let low4 = u8x16_splat(0x0f);
    let low2 = u8x16_splat(0x03);
    let thirty_two = i8x16_splat(32);
    let mut sum = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let mut sumi = 0i32;
        for h in 0..2 {
            for half in 0..2 {
                let off = 16 * half;
                let ql0 = load16(&bx.ql[64 * h + off..]);
                let ql1 = load16(&bx.ql[64 * h + 32 + off..]);
                let qh = load16(&bx.qh[32 * h + off..]);
                let q = [
                    v128_or(v128_and(ql0, low4), i8x16_shl(v128_and(qh, low2), 4)),
                    v128_or(v128_and(ql1, low4), i8x16_shl(v128_and(u8x16_shr(qh, 2), low2), 4)),
                    v128_or(u8x16_shr(ql0, 4), i8x16_shl(v128_and(u8x16_shr(qh, 4), low2), 4)),
                    v128_or(u8x16_shr(ql1, 4), i8x16_shl(u8x16_shr(qh, 6), 4)),
                ];
                for (k, &qk) in q.iter().enumerate() {
                    // Weights 128h + 32k + off .. +16: one group of 16.
                    let i = 128 * h + 32 * k + off;
                    let s = hsum_i32(dot16(i8x16_sub(qk, thirty_two), load16(&by.qs[i..])));
                    sumi += i32::from(bx.scales[i / 16]) * s;
                }
            }
        }
        sum += bx.d.to_f32() * by.d * sumi as f32;
    }
    sum
}
