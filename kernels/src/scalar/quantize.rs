//! Quantization (f32 -> blocks) and dequantization (blocks -> f32), scalar.
//!
//! Where it sits: activations are quantized once per matrix-vector product
//! (`quantize_q8_*`), weights are dequantized only by tests, by debugging
//! tools and by code that needs f32 rows (an embedding lookup). Rounding is
//! to nearest, ties to even, everywhere (GGML's `nearest_int`).

use crate::f16::F16;
use crate::quant::{
    unpack_scales_mins_k4, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1, QK, QK_K,
};

/// Rounds to the nearest integer, ties to even, for `|x| < 2^22`.
///
/// Adding 1.5 * 2^23 puts the integer part in the low mantissa bits and lets
/// the FPU round (to nearest even, Rust's only rounding mode); works in
/// `no_std`, where `f32::round_ties_even` is unavailable. NaN gives an
/// unspecified value in the valid range of the call sites, never UB.
#[inline(always)]
pub(crate) fn round_i32(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

fn check_len(n_values: usize, n_blocks: usize, per_block: usize) {
    assert_eq!(n_values, n_blocks * per_block, "{n_values} values do not fill {n_blocks} blocks of {per_block}");
}

/// Largest absolute value (NaN-ignoring).
#[inline(always)]
fn abs_max(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Quantizes `x` to Q8_0: per block of 32, `d = max|x| / 127`,
/// `q = round(x / d)`.
///
/// # Panics
///
/// When `x.len() != 32 * out.len()`.
pub fn quantize_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    check_len(x.len(), out.len(), QK);
    for (xb, ob) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let d = abs_max(xb) / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        ob.d = F16::from_f32(d);
        for (q, &v) in ob.qs.iter_mut().zip(xb) {
            *q = round_i32(v * id).clamp(-127, 127) as i8;
        }
    }
}

/// Quantizes `x` to Q8_1: Q8_0 plus `s = d * Σ q` per block.
///
/// # Panics
///
/// When `x.len() != 32 * out.len()`.
pub fn quantize_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    check_len(x.len(), out.len(), QK);
    for (xb, ob) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let d = abs_max(xb) / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in ob.qs.iter_mut().zip(xb) {
            let qi = round_i32(v * id).clamp(-127, 127);
            sum += qi;
            *q = qi as i8;
        }
        ob.d = F16::from_f32(d);
        ob.s = F16::from_f32(d * sum as f32);
    }
}

/// Quantizes `x` to Q8_K: per block of 256, `d = max|x| / 127` (kept as
/// f32), `q = round(x / d)`, and the sums of each group of 16 quants.
///
/// # Panics
///
/// When `x.len() != 256 * out.len()`.
pub fn quantize_q8k(x: &[f32], out: &mut [BlockQ8K]) {
    check_len(x.len(), out.len(), QK_K);
    for (xb, ob) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let amax = abs_max(xb);
        if amax == 0.0 {
            *ob = BlockQ8K::default();
            continue;
        }
        let id = 127.0 / amax;
        for (q, &v) in ob.qs.iter_mut().zip(xb) {
            *q = round_i32(v * id).clamp(-127, 127) as i8;
        }
        for (g, s) in ob.bsums.iter_mut().enumerate() {
            *s = ob.qs[16 * g..16 * g + 16].iter().map(|&q| i16::from(q)).sum();
        }
        ob.d = 1.0 / id;
    }
}

/// Quantizes weights to Q4_0 the way GGML's reference does (`d` from the
/// signed value of largest magnitude, mapped to -8).
///
/// # Panics
///
/// When `x.len() != 32 * out.len()`.
pub fn quantize_q4_0(x: &[f32], out: &mut [BlockQ4_0]) {
    check_len(x.len(), out.len(), QK);
    for (xb, ob) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let max = signed_abs_max(xb);
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        ob.d = F16::from_f32(d);
        for j in 0..QK / 2 {
            let lo = ((xb[j] * id + 8.5) as i32).clamp(0, 15) as u8;
            let hi = ((xb[j + QK / 2] * id + 8.5) as i32).clamp(0, 15) as u8;
            ob.qs[j] = lo | (hi << 4);
        }
    }
}

/// Quantizes weights to Q4_1 (GGML's reference: `m = min`, `d = range / 15`).
///
/// # Panics
///
/// When `x.len() != 32 * out.len()`.
pub fn quantize_q4_1(x: &[f32], out: &mut [BlockQ4_1]) {
    check_len(x.len(), out.len(), QK);
    for (xb, ob) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let min = xb.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let max = xb.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        ob.d = F16::from_f32(d);
        ob.m = F16::from_f32(min);
        for j in 0..QK / 2 {
            let lo = (((xb[j] - min) * id + 0.5) as i32).clamp(0, 15) as u8;
            let hi = (((xb[j + QK / 2] - min) * id + 0.5) as i32).clamp(0, 15) as u8;
            ob.qs[j] = lo | (hi << 4);
        }
    }
}

/// Quantizes weights to Q5_0 (GGML's reference: the signed extreme maps to
/// -16).
///
/// # Panics
///
/// When `x.len() != 32 * out.len()`.
pub fn quantize_q5_0(x: &[f32], out: &mut [BlockQ5_0]) {
    check_len(x.len(), out.len(), QK);
    for (xb, ob) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let max = signed_abs_max(xb);
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        ob.d = F16::from_f32(d);
        let mut qh = 0u32;
        for j in 0..QK / 2 {
            let lo = ((xb[j] * id + 16.5) as i32).clamp(0, 31) as u32;
            let hi = ((xb[j + QK / 2] * id + 16.5) as i32).clamp(0, 31) as u32;
            ob.qs[j] = ((lo & 0x0f) | ((hi & 0x0f) << 4)) as u8;
            qh |= ((lo >> 4) << j) | ((hi >> 4) << (j + QK / 2));
        }
        ob.qh = qh.to_le_bytes();
    }
}

/// The value of largest magnitude, with its sign.
fn signed_abs_max(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    max
}

macro_rules! check_dequant_len {
    ($blocks:expr, $out:expr, $n:expr) => {
        assert_eq!(
            $out.len(),
            $blocks.len() * $n,
            "output of {} values for {} blocks of {}",
            $out.len(),
            $blocks.len(),
            $n
        )
    };
}

/// Dequantizes Q4_0 blocks into `out` (`32 * blocks.len()` values).
///
/// # Panics
///
/// When the lengths disagree.
pub fn dequantize_q4_0(blocks: &[BlockQ4_0], out: &mut [f32]) {
    check_dequant_len!(blocks, out, QK);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for j in 0..QK / 2 {
            o[j] = d * (i32::from(b.qs[j] & 0x0f) - 8) as f32;
            o[j + QK / 2] = d * (i32::from(b.qs[j] >> 4) - 8) as f32;
        }
    }
}

/// Dequantizes Q4_1 blocks.
///
/// # Panics
///
/// When the lengths disagree.
pub fn dequantize_q4_1(blocks: &[BlockQ4_1], out: &mut [f32]) {
    check_dequant_len!(blocks, out, QK);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        for j in 0..QK / 2 {
            o[j] = d * f32::from(b.qs[j] & 0x0f) + m;
            o[j + QK / 2] = d * f32::from(b.qs[j] >> 4) + m;
        }
    }
}

/// Dequantizes Q5_0 blocks.
///
/// # Panics
///
/// When the lengths disagree.
pub fn dequantize_q5_0(blocks: &[BlockQ5_0], out: &mut [f32]) {
    check_dequant_len!(blocks, out, QK);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        let qh = u32::from_le_bytes(b.qh);
        for j in 0..QK / 2 {
            let lo = u32::from(b.qs[j] & 0x0f) | (((qh >> j) & 1) << 4);
            let hi = u32::from(b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            o[j] = d * (lo as i32 - 16) as f32;
            o[j + QK / 2] = d * (hi as i32 - 16) as f32;
        }
    }
}

/// Dequantizes Q8_0 blocks.
///
/// # Panics
///
/// When the lengths disagree.
pub fn dequantize_q8_0(blocks: &[BlockQ8_0], out: &mut [f32]) {
    check_dequant_len!(blocks, out, QK);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (v, &q) in o.iter_mut().zip(&b.qs) {
            *v = d * f32::from(q);
        }
    }
}

/// Dequantizes Q8_1 blocks (the `s` field is not needed).
///
/// # Panics
///
/// When the lengths disagree.
pub fn dequantize_q8_1(blocks: &[BlockQ8_1], out: &mut [f32]) {
    check_dequant_len!(blocks, out, QK);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (v, &q) in o.iter_mut().zip(&b.qs) {
            *v = d * f32::from(q);
        }
    }
}

/// Dequantizes Q4_K super-blocks.
///
/// # Panics
///
/// When the lengths disagree.
pub fn dequantize_q4k(blocks: &[BlockQ4K], out: &mut [f32]) {
    check_dequant_len!(blocks, out, QK_K);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let (d, dmin) = (b.d.to_f32(), b.dmin.to_f32());
        let (sc, m) = unpack_scales_mins_k4(&b.scales);
        for c in 0..4 {
            let q = &b.qs[32 * c..32 * c + 32];
            let (d1, m1) = (d * f32::from(sc[2 * c]), dmin * f32::from(m[2 * c]));
            let (d2, m2) = (d * f32::from(sc[2 * c + 1]), dmin * f32::from(m[2 * c + 1]));
            for l in 0..32 {
                o[64 * c + l] = d1 * f32::from(q[l] & 0x0f) - m1;
                o[64 * c + 32 + l] = d2 * f32::from(q[l] >> 4) - m2;
            }
        }
    }
}

/// Dequantizes Q5_K super-blocks.
///
/// # Panics
///
/// When the lengths disagree.
pub fn dequantize_q5k(blocks: &[BlockQ5K], out: &mut [f32]) {
    check_dequant_len!(blocks, out, QK_K);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let (d, dmin) = (b.d.to_f32(), b.dmin.to_f32());
        let (sc, m) = unpack_scales_mins_k4(&b.scales);
        for c in 0..4 {
            let q = &b.qs[32 * c..32 * c + 32];
            let (d1, m1) = (d * f32::from(sc[2 * c]), dmin * f32::from(m[2 * c]));
            let (d2, m2) = (d * f32::from(sc[2 * c + 1]), dmin * f32::from(m[2 * c + 1]));
            for l in 0..32 {
                let h1 = (b.qh[l] >> (2 * c)) & 1;
                let h2 = (b.qh[l] >> (2 * c + 1)) & 1;
                o[64 * c + l] = d1 * f32::from((q[l] & 0x0f) | (h1 << 4)) - m1;
                o[64 * c + 32 + l] = d2 * f32::from((q[l] >> 4) | (h2 << 4)) - m2;
            }
        }
    }
}

/// The four 6-bit quants (0..64, offset not yet removed) that Q6_K byte
/// position `l` of half `h` holds, in weight order `128h + l`, `+32`, `+64`,
/// `+96`.
#[inline(always)]
pub(crate) fn q6k_quads(b: &BlockQ6K, h: usize, l: usize) -> [u8; 4] {
    let ql0 = b.ql[64 * h + l];
    let ql1 = b.ql[64 * h + 32 + l];
    let qh = b.qh[32 * h + l];
    [
        (ql0 & 0x0f) | ((qh & 3) << 4),
        (ql1 & 0x0f) | (((qh >> 2) & 3) << 4),
        (ql0 >> 4) | (((qh >> 4) & 3) << 4),
        (ql1 >> 4) | (((qh >> 6) & 3) << 4),
    ]
}

/// Dequantizes Q6_K super-blocks.
///
/// # Panics
///
/// When the lengths disagree.
pub fn dequantize_q6k(blocks: &[BlockQ6K], out: &mut [f32]) {
    check_dequant_len!(blocks, out, QK_K);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        for h in 0..2 {
            for l in 0..32 {
                let q = q6k_quads(b, h, l);
                for (k, &qk) in q.iter().enumerate() {
                    let i = 128 * h + 32 * k + l;
                    let sc = f32::from(b.scales[i / 16]);
                    o[i] = d * sc * (i32::from(qk) - 32) as f32;
                }
            }
        }
    }
}

/// Dequantizes Q8_K blocks.
///
/// # Panics
///
/// When the lengths disagree.
pub fn dequantize_q8k(blocks: &[BlockQ8K], out: &mut [f32]) {
    check_dequant_len!(blocks, out, QK_K);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        for (v, &q) in o.iter_mut().zip(&b.qs) {
            *v = b.d * f32::from(q);
        }
    }
}
