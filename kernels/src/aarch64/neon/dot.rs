//! Quantized dot products with base NEON.
//!
//! Weights are unpacked to signed bytes, multiplied with the activation
//! bytes by `smull`/`smull2` (i8 x i8 -> i16, exact: |w x| <= 128 * 127) and
//! pairwise accumulated into i32 by `sadalp`; the block scale is applied
//! with one FMA on four f32 lanes.

use core::arch::aarch64::*;

use crate::quant::{
    unpack_scales_mins_k4, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1,
};

// Helpers are `#[inline(always)]` and only called from the
// `target_feature` kernels below.

/// 16 bytes from a reference to 16 bytes.
///
/// # Safety
///
/// `p` must hold at least 16 one-byte elements (checked in debug builds).
/// Call only where NEON is enabled (from this module's `target_feature`
/// kernels).
#[inline(always)]
unsafe fn load16<T>(p: &[T]) -> int8x16_t {
    debug_assert!(core::mem::size_of::<T>() == 1 && p.len() >= 16);
    // SAFETY: at least 16 readable one-byte elements.
    vld1q_s8(p.as_ptr().cast())
}

/// Exact `Σ x_i y_i` over 16 signed bytes, as 4 i32 lanes.
///
/// # Safety
///
/// Call only where NEON is enabled (from this module's `target_feature`
/// kernels).
#[inline(always)]
unsafe fn dot16(x: int8x16_t, y: int8x16_t) -> int32x4_t {
    let lo = vmull_s8(vget_low_s8(x), vget_low_s8(y));
    let hi = vmull_high_s8(x, y);
    vpadalq_s16(vpaddlq_s16(lo), hi)
}

/// Low and high nibbles of 16 packed bytes, as unsigned values in signed
/// bytes: (weights 0..16, weights 16..32).
///
/// # Safety
///
/// Call only where NEON is enabled (from this module's `target_feature`
/// kernels).
#[inline(always)]
unsafe fn nibbles(qs: &[u8; 16]) -> (int8x16_t, int8x16_t) {
    // SAFETY: 16 readable bytes.
    let b = vld1q_u8(qs.as_ptr());
    let lo = vandq_u8(b, vdupq_n_u8(0x0f));
    let hi = vshrq_n_u8::<4>(b);
    (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi))
}

/// Bytes 0x10 where bit `i` of the 16-bit `bits` is set.
///
/// # Safety
///
/// Call only where NEON is enabled (from this module's `target_feature`
/// kernels).
#[inline(always)]
unsafe fn fifth_bits(bits: u16) -> uint8x16_t {
    let [b0, b1] = bits.to_le_bytes();
    let v = vcombine_u8(vdup_n_u8(b0), vdup_n_u8(b1));
    const SEL: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    // SAFETY: 16 readable bytes.
    let set = vtstq_u8(v, vld1q_u8(SEL.as_ptr()));
    vandq_u8(set, vdupq_n_u8(0x10))
}

/// Dot product of blocks: `Σ_b scale(b) * Σ int(b)` with two accumulators.
macro_rules! block_dot {
    ($x:expr, $y:expr, |$bx:ident, $by:ident| $isum:expr, $scale:expr) => {{
        let (x, y) = ($x, $y);
        assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
        let mut acc0 = vdupq_n_f32(0.0);
        let mut acc1 = vdupq_n_f32(0.0);
        let mut pairs_x = x.chunks_exact(2);
        let mut pairs_y = y.chunks_exact(2);
        for (px, py) in (&mut pairs_x).zip(&mut pairs_y) {
            {
                let ($bx, $by) = (&px[0], &py[0]);
                acc0 = vfmaq_f32(acc0, vcvtq_f32_s32($isum), vdupq_n_f32($scale));
            }
            {
                let ($bx, $by) = (&px[1], &py[1]);
                acc1 = vfmaq_f32(acc1, vcvtq_f32_s32($isum), vdupq_n_f32($scale));
            }
        }
        for ($bx, $by) in pairs_x.remainder().iter().zip(pairs_y.remainder()) {
            acc0 = vfmaq_f32(acc0, vcvtq_f32_s32($isum), vdupq_n_f32($scale));
        }
        vaddvq_f32(vaddq_f32(acc0, acc1))
    }};
}

/// # Safety
///
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    block_dot!(
        x,
        y,
        |bx, by| {
            let (lo, hi) = nibbles(&bx.qs);
            let eight = vdupq_n_s8(8);
            vaddq_s32(
                dot16(vsubq_s8(lo, eight), load16(&by.qs[..16])),
                dot16(vsubq_s8(hi, eight), load16(&by.qs[16..])),
            )
        },
        bx.d.to_f32() * by.d.to_f32()
    )
}

/// # Safety
///
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    let main = block_dot!(
        x,
        y,
        |bx, by| {
            let (lo, hi) = nibbles(&bx.qs);
            vaddq_s32(dot16(lo, load16(&by.qs[..16])), dot16(hi, load16(&by.qs[16..])))
        },
        bx.d.to_f32() * by.d.to_f32()
    );
    let mut summ = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        summ += bx.m.to_f32() * by.s.to_f32();
    }
    main + summ
}

/// # Safety
///
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_q5_0_q8_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    block_dot!(
        x,
        y,
        |bx, by| {
            let (lo, hi) = nibbles(&bx.qs);
            let qh = u32::from_le_bytes(bx.qh);
            let sixteen = vdupq_n_s8(16);
            let lo = vorrq_s8(lo, vreinterpretq_s8_u8(fifth_bits(qh as u16)));
            let hi = vorrq_s8(hi, vreinterpretq_s8_u8(fifth_bits((qh >> 16) as u16)));
            vaddq_s32(
                dot16(vsubq_s8(lo, sixteen), load16(&by.qs[..16])),
                dot16(vsubq_s8(hi, sixteen), load16(&by.qs[16..])),
            )
        },
        bx.d.to_f32() * by.d.to_f32()
    )
}

/// # Safety
///
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    block_dot!(
        x,
        y,
        |bx, by| vaddq_s32(
            dot16(load16(&bx.qs[..16]), load16(&by.qs[..16])),
            dot16(load16(&bx.qs[16..]), load16(&by.qs[16..]))
        ),
        bx.d.to_f32() * by.d.to_f32()
    )
}

/// `Σ_j sc[j] Σ q x` of a Q4_K (`qh = None`) or Q5_K super-block, and
/// `Σ_j m[j] (bsums[2j] + bsums[2j+1])`.
///
/// # Safety
///
/// Call only where NEON is enabled (from this module's `target_feature`
/// kernels).
#[inline(always)]
unsafe fn k4_sums(scales: &[u8; 12], qs: &[u8; 128], qh: Option<&[u8; 32]>, by: &BlockQ8K) -> (i32, i32) {
    let (sc, m) = unpack_scales_mins_k4(scales);
    let low4 = vdupq_n_u8(0x0f);
    let mut sumi = 0i32;
    for c in 0..4 {
        let mut s = [0i32; 2];
        for half in 0..2 {
            // SAFETY: bytes 32c + 16 half .. +16 of qs (< 128) and of qh (< 32).
            let b = vld1q_u8(qs.as_ptr().add(32 * c + 16 * half));
            let mut lo = vandq_u8(b, low4);
            let mut hi = vshrq_n_u8::<4>(b);
            if let Some(qh) = qh {
                let h = vld1q_u8(qh.as_ptr().add(16 * half));
                let one = vdupq_n_u8(1);
                let h_lo = vandq_u8(vshlq_u8(h, vdupq_n_s8(-(2 * c as i8))), one);
                let h_hi = vandq_u8(vshlq_u8(h, vdupq_n_s8(-(2 * c as i8 + 1))), one);
                lo = vorrq_u8(lo, vshlq_n_u8::<4>(h_lo));
                hi = vorrq_u8(hi, vshlq_n_u8::<4>(h_hi));
            }
            let y_lo = load16(&by.qs[64 * c + 16 * half..]);
            let y_hi = load16(&by.qs[64 * c + 32 + 16 * half..]);
            s[0] += vaddvq_s32(dot16(vreinterpretq_s8_u8(lo), y_lo));
            s[1] += vaddvq_s32(dot16(vreinterpretq_s8_u8(hi), y_hi));
        }
        sumi += i32::from(sc[2 * c]) * s[0] + i32::from(sc[2 * c + 1]) * s[1];
    }
    let summ = (0..8).map(|j| i32::from(m[j]) * (i32::from(by.bsums[2 * j]) + i32::from(by.bsums[2 * j + 1]))).sum();
    (sumi, summ)
}

/// # Safety
///
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
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
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
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
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_q6k_q8k(x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let low4 = vdupq_n_u8(0x0f);
    let low2 = vdupq_n_u8(0x03);
    let mut sum = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let mut sumi = 0i32;
        for h in 0..2 {
            for half in 0..2 {
                let off = 16 * half;
                // SAFETY: ql bytes 64h + off (+32) .. +16 < 128, qh bytes
                // 32h + off .. +16 < 64.
                let ql0 = vld1q_u8(bx.ql.as_ptr().add(64 * h + off));
                let ql1 = vld1q_u8(bx.ql.as_ptr().add(64 * h + 32 + off));
                let qh = vld1q_u8(bx.qh.as_ptr().add(32 * h + off));
                let q = [
                    vorrq_u8(vandq_u8(ql0, low4), vshlq_n_u8::<4>(vandq_u8(qh, low2))),
                    vorrq_u8(vandq_u8(ql1, low4), vshlq_n_u8::<4>(vandq_u8(vshrq_n_u8::<2>(qh), low2))),
                    vorrq_u8(vshrq_n_u8::<4>(ql0), vshlq_n_u8::<4>(vandq_u8(vshrq_n_u8::<4>(qh), low2))),
                    vorrq_u8(vshrq_n_u8::<4>(ql1), vshlq_n_u8::<4>(vshrq_n_u8::<6>(qh))),
                ];
                for (k, &qk) in q.iter().enumerate() {
                    // Weights 128h + 32k + off .. +16: one group of 16.
                    let i = 128 * h + 32 * k + off;
                    let w = vsubq_s8(vreinterpretq_s8_u8(qk), vdupq_n_s8(32));
                    let s = vaddvq_s32(dot16(w, load16(&by.qs[i..])));
                    sumi += i32::from(bx.scales[i / 16]) * s;
                }
            }
        }
        sum += bx.d.to_f32() * by.d * sumi as f32;
    }
    sum
}
