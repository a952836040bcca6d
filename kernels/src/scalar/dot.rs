//! Quantized dot products, scalar: the oracles every vectorized version is
//! tested against.
//!
//! Each function takes a row of weight blocks and the activation quantized
//! to the paired 8-bit format, with the same number of blocks, and returns
//! `Σ w_i x_i` in f32. Within a block the products are summed exactly in
//! integers; the block's scales are applied in f32 and the blocks' partial
//! sums added in order. Vectorized versions differ only in that last float
//! accumulation order (see `docs/kernels.md` for the tolerance).

use crate::quant::{
    unpack_scales_mins_k4, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1,
};

use super::quantize::q6k_quads;

#[inline(always)]
fn check(nx: usize, ny: usize) {
    assert_eq!(nx, ny, "dot product of {nx} weight blocks with {ny} activation blocks");
}

/// `Σ w x` for Q4_0 weights and Q8_0 activations.
///
/// # Panics
///
/// When `x.len() != y.len()`.
pub fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    check(x.len(), y.len());
    let mut sum = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let mut isum = 0i32;
        for j in 0..16 {
            let lo = i32::from(bx.qs[j] & 0x0f) - 8;
            let hi = i32::from(bx.qs[j] >> 4) - 8;
            isum += lo * i32::from(by.qs[j]) + hi * i32::from(by.qs[j + 16]);
        }
        sum += bx.d.to_f32() * by.d.to_f32() * isum as f32;
    }
    sum
}

/// `Σ w x` for Q4_1 weights and Q8_1 activations:
/// `Σ_blocks d_w d_x Σ q_w q_x + m_w s_x`.
///
/// # Panics
///
/// When `x.len() != y.len()`.
pub fn dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    check(x.len(), y.len());
    let mut sum = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let mut isum = 0i32;
        for j in 0..16 {
            let lo = i32::from(bx.qs[j] & 0x0f);
            let hi = i32::from(bx.qs[j] >> 4);
            isum += lo * i32::from(by.qs[j]) + hi * i32::from(by.qs[j + 16]);
        }
        sum += bx.d.to_f32() * by.d.to_f32() * isum as f32 + bx.m.to_f32() * by.s.to_f32();
    }
    sum
}

/// `Σ w x` for Q5_0 weights and Q8_0 activations.
///
/// # Panics
///
/// When `x.len() != y.len()`.
pub fn dot_q5_0_q8_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    check(x.len(), y.len());
    let mut sum = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let qh = u32::from_le_bytes(bx.qh);
        let mut isum = 0i32;
        for j in 0..16 {
            let lo = (u32::from(bx.qs[j] & 0x0f) | (((qh >> j) & 1) << 4)) as i32 - 16;
            let hi = (u32::from(bx.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) as i32 - 16;
            isum += lo * i32::from(by.qs[j]) + hi * i32::from(by.qs[j + 16]);
        }
        sum += bx.d.to_f32() * by.d.to_f32() * isum as f32;
    }
    sum
}

/// `Σ w x` for Q8_0 weights and Q8_0 activations.
///
/// # Panics
///
/// When `x.len() != y.len()`.
pub fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    check(x.len(), y.len());
    let mut sum = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let isum: i32 = bx.qs.iter().zip(&by.qs).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum();
        sum += bx.d.to_f32() * by.d.to_f32() * isum as f32;
    }
    sum
}

/// The integer parts of a Q4_K/Q5_K super-block: `(Σ_j sc[j] Σ q x, Σ_j m[j] Σ x)`.
///
/// `q(c, l)` gives the quants of weights `64c + l` and `64c + 32 + l`.
#[inline(always)]
fn k4_sums(scales: &[u8; 12], by: &BlockQ8K, q: impl Fn(usize, usize) -> (u8, u8)) -> (i32, i32) {
    let (sc, m) = unpack_scales_mins_k4(scales);
    let mut sumi = 0i32;
    for c in 0..4 {
        let (mut s1, mut s2) = (0i32, 0i32);
        for l in 0..32 {
            let (lo, hi) = q(c, l);
            s1 += i32::from(lo) * i32::from(by.qs[64 * c + l]);
            s2 += i32::from(hi) * i32::from(by.qs[64 * c + 32 + l]);
        }
        sumi += i32::from(sc[2 * c]) * s1 + i32::from(sc[2 * c + 1]) * s2;
    }
    let summ: i32 =
        (0..8).map(|j| i32::from(m[j]) * (i32::from(by.bsums[2 * j]) + i32::from(by.bsums[2 * j + 1]))).sum();
    (sumi, summ)
}

/// `Σ w x` for Q4_K weights and Q8_K activations.
///
/// # Panics
///
/// When `x.len() != y.len()`.
pub fn dot_q4k_q8k(x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    check(x.len(), y.len());
    let mut sum = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let (sumi, summ) = k4_sums(&bx.scales, by, |c, l| {
            let b = bx.qs[32 * c + l];
            (b & 0x0f, b >> 4)
        });
        sum += by.d * (bx.d.to_f32() * sumi as f32 - bx.dmin.to_f32() * summ as f32);
    }
    sum
}

/// `Σ w x` for Q5_K weights and Q8_K activations.
///
/// # Panics
///
/// When `x.len() != y.len()`.
pub fn dot_q5k_q8k(x: &[BlockQ5K], y: &[BlockQ8K]) -> f32 {
    check(x.len(), y.len());
    let mut sum = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let (sumi, summ) = k4_sums(&bx.scales, by, |c, l| {
            let b = bx.qs[32 * c + l];
            let h = bx.qh[l] >> (2 * c);
            ((b & 0x0f) | ((h & 1) << 4), (b >> 4) | (((h >> 1) & 1) << 4))
        });
        sum += by.d * (bx.d.to_f32() * sumi as f32 - bx.dmin.to_f32() * summ as f32);
    }
    sum
}

/// `Σ w x` for Q6_K weights and Q8_K activations.
///
/// # Panics
///
/// When `x.len() != y.len()`.
pub fn dot_q6k_q8k(x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    check(x.len(), y.len());
    let mut sum = 0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let mut groups = [0i32; 16];
        for h in 0..2 {
            for l in 0..32 {
                let q = q6k_quads(bx, h, l);
                for (k, &qk) in q.iter().enumerate() {
                    let i = 128 * h + 32 * k + l;
                    groups[i / 16] += (i32::from(qk) - 32) * i32::from(by.qs[i]);
                }
            }
        }
        let sumi: i32 = groups.iter().zip(&bx.scales).map(|(&g, &s)| g * i32::from(s)).sum();
        sum += bx.d.to_f32() * by.d * sumi as f32;
    }
    sum
}
