//! Differential and property tests: every kernel set against the scalar
//! reference, the scalar reference against f64 arithmetic written
//! independently from the format descriptions.
//!
//! Shared here: a seeded generator ([`Gen`]), random blocks of every format,
//! f64 reference dequantizers, and the tolerance of `docs/kernels.md`.

mod dot;
mod f16;
mod gemv;
mod mask;
#[cfg(feature = "std")]
mod pool;
mod quant;
#[cfg(feature = "std")]
mod sample;

use alloc::vec::Vec;

use crate::dispatch::{available, Kernels};
use crate::f16::F16;
use crate::quant::*;
use crate::scalar;

/// SplitMix64: tiny, seeded, good enough to make test data.
#[derive(Clone, Debug)]
pub(crate) struct Gen(u64);

impl Gen {
    pub(crate) fn new(seed: u64) -> Gen {
        Gen(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub(crate) fn bytes<const N: usize>(&mut self) -> [u8; N] {
        core::array::from_fn(|_| self.byte())
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [-a, a).
    pub(crate) fn sym(&mut self, a: f32) -> f32 {
        (self.unit() * 2.0 - 1.0) * a
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A random scale: mostly ordinary magnitudes, sometimes tiny or zero.
    pub(crate) fn scale(&mut self) -> F16 {
        match self.below(16) {
            0 => F16::ZERO,
            1 => F16::from_f32(self.sym(1e-6)),
            _ => F16::from_f32(self.sym(0.05)),
        }
    }

    /// Activation-like values: a few outliers among small values.
    pub(crate) fn activations(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| if self.below(32) == 0 { self.sym(20.0) } else { self.sym(2.0) }).collect()
    }
}

pub(crate) fn q4_0_blocks(rng: &mut Gen, n: usize) -> Vec<BlockQ4_0> {
    (0..n).map(|_| BlockQ4_0 { d: rng.scale(), qs: rng.bytes() }).collect()
}

pub(crate) fn q4_1_blocks(rng: &mut Gen, n: usize) -> Vec<BlockQ4_1> {
    (0..n).map(|_| BlockQ4_1 { d: rng.scale(), m: rng.scale(), qs: rng.bytes() }).collect()
}

pub(crate) fn q5_0_blocks(rng: &mut Gen, n: usize) -> Vec<BlockQ5_0> {
    (0..n).map(|_| BlockQ5_0 { d: rng.scale(), qh: rng.bytes(), qs: rng.bytes() }).collect()
}

/// Weight-side Q8_0: any byte, including -128.
pub(crate) fn q8_0_blocks(rng: &mut Gen, n: usize) -> Vec<BlockQ8_0> {
    (0..n).map(|_| BlockQ8_0 { d: rng.scale(), qs: rng.bytes::<32>().map(|b| b as i8) }).collect()
}

pub(crate) fn q4k_blocks(rng: &mut Gen, n: usize) -> Vec<BlockQ4K> {
    (0..n).map(|_| BlockQ4K { d: rng.scale(), dmin: rng.scale(), scales: rng.bytes(), qs: rng.bytes() }).collect()
}

pub(crate) fn q5k_blocks(rng: &mut Gen, n: usize) -> Vec<BlockQ5K> {
    (0..n)
        .map(|_| BlockQ5K { d: rng.scale(), dmin: rng.scale(), scales: rng.bytes(), qh: rng.bytes(), qs: rng.bytes() })
        .collect()
}

pub(crate) fn q6k_blocks(rng: &mut Gen, n: usize) -> Vec<BlockQ6K> {
    (0..n)
        .map(|_| BlockQ6K {
            ql: rng.bytes(),
            qh: rng.bytes(),
            scales: rng.bytes::<16>().map(|b| b as i8),
            d: rng.scale(),
        })
        .collect()
}

pub(crate) fn q8_0_activation(rng: &mut Gen, n_blocks: usize) -> (Vec<f32>, Vec<BlockQ8_0>) {
    let x = rng.activations(n_blocks * QK);
    let mut q = alloc::vec![BlockQ8_0::default(); n_blocks];
    scalar::quantize_q8_0(&x, &mut q);
    (x, q)
}

pub(crate) fn q8_1_activation(rng: &mut Gen, n_blocks: usize) -> (Vec<f32>, Vec<BlockQ8_1>) {
    let x = rng.activations(n_blocks * QK);
    let mut q = alloc::vec![BlockQ8_1::default(); n_blocks];
    scalar::quantize_q8_1(&x, &mut q);
    (x, q)
}

pub(crate) fn q8k_activation(rng: &mut Gen, n_blocks: usize) -> (Vec<f32>, Vec<BlockQ8K>) {
    let x = rng.activations(n_blocks * QK_K);
    let mut q = alloc::vec![BlockQ8K::default(); n_blocks];
    scalar::quantize_q8k(&x, &mut q);
    (x, q)
}

// ---------------------------------------------------------------------------
// f64 references, written from the format descriptions (not from `scalar`).
// Each returns, per weight, the terms whose sum is the weight (a K-quant
// weight is `d*sc*q - dmin*m`: two terms, kept apart so that the tolerance
// can count their magnitudes).
// ---------------------------------------------------------------------------

pub(crate) fn f(h: F16) -> f64 {
    f64::from(h.to_f32())
}

fn nib(qs: &[u8], i: usize, half: usize) -> u32 {
    // Weight i of a 32-weight block: low nibble of byte i, or high nibble of
    // byte i - half.
    if i < half {
        u32::from(qs[i] & 0xf)
    } else {
        u32::from(qs[i - half] >> 4)
    }
}

pub(crate) fn ref_q4_0(b: &[BlockQ4_0]) -> Vec<[f64; 2]> {
    b.iter().flat_map(|b| (0..32).map(move |i| [f(b.d) * (f64::from(nib(&b.qs, i, 16)) - 8.0), 0.0])).collect()
}

pub(crate) fn ref_q4_1(b: &[BlockQ4_1]) -> Vec<[f64; 2]> {
    b.iter().flat_map(|b| (0..32).map(move |i| [f(b.d) * f64::from(nib(&b.qs, i, 16)), f(b.m)])).collect()
}

pub(crate) fn ref_q5_0(b: &[BlockQ5_0]) -> Vec<[f64; 2]> {
    b.iter()
        .flat_map(|b| {
            (0..32).map(move |i| {
                let bit = (u32::from_le_bytes(b.qh) >> i) & 1;
                let q = nib(&b.qs, i, 16) + 16 * bit;
                [f(b.d) * (f64::from(q) - 16.0), 0.0]
            })
        })
        .collect()
}

pub(crate) fn ref_q8_0(b: &[BlockQ8_0]) -> Vec<[f64; 2]> {
    b.iter().flat_map(|b| b.qs.iter().map(move |&q| [f(b.d) * f64::from(q), 0.0])).collect()
}

/// The 6-bit scale and min of sub-block j, read bit by bit from the
/// description: bits 0..6 of byte j / j+4 for j < 4; for j >= 4, the low four
/// bits from the nibbles of byte j+4 and the high two bits from bits 6..8 of
/// bytes j-4 (scale) and j (min).
fn k4_scale_min(s: &[u8; 12], j: usize) -> (f64, f64) {
    let (sc, m) = if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    };
    (f64::from(sc), f64::from(m))
}

pub(crate) fn ref_q4k(b: &[BlockQ4K]) -> Vec<[f64; 2]> {
    b.iter()
        .flat_map(|b| {
            (0..256).map(move |i| {
                let (c, r) = (i / 64, i % 64);
                let byte = b.qs[32 * c + r % 32];
                let q = if r < 32 { byte & 15 } else { byte >> 4 };
                let (sc, m) = k4_scale_min(&b.scales, i / 32);
                [f(b.d) * sc * f64::from(q), -f(b.dmin) * m]
            })
        })
        .collect()
}

pub(crate) fn ref_q5k(b: &[BlockQ5K]) -> Vec<[f64; 2]> {
    b.iter()
        .flat_map(|b| {
            (0..256).map(move |i| {
                let (c, r) = (i / 64, i % 64);
                let byte = b.qs[32 * c + r % 32];
                let low = if r < 32 { byte & 15 } else { byte >> 4 };
                let bit = (b.qh[r % 32] >> (i / 32)) & 1;
                let q = low | (bit << 4);
                let (sc, m) = k4_scale_min(&b.scales, i / 32);
                [f(b.d) * sc * f64::from(q), -f(b.dmin) * m]
            })
        })
        .collect()
}

pub(crate) fn ref_q6k(b: &[BlockQ6K]) -> Vec<[f64; 2]> {
    b.iter()
        .flat_map(|b| {
            (0..256).map(move |i| {
                let (h, r) = (i / 128, i % 128);
                let (k, l) = (r / 32, r % 32);
                // Quads 0 and 2 use byte l of the half's first 32 ql bytes,
                // quads 1 and 3 byte 32 + l; quads 0, 1 the low nibble.
                let ql = b.ql[64 * h + 32 * (k % 2) + l];
                let low = if k < 2 { ql & 15 } else { ql >> 4 };
                let high = (b.qh[32 * h + l] >> (2 * k)) & 3;
                let q = i32::from(low | (high << 4)) - 32;
                [f(b.d) * f64::from(b.scales[i / 16]) * f64::from(q), 0.0]
            })
        })
        .collect()
}

pub(crate) fn ref_q8_0_act(b: &[BlockQ8_0]) -> Vec<f64> {
    b.iter().flat_map(|b| b.qs.iter().map(move |&q| f(b.d) * f64::from(q))).collect()
}

pub(crate) fn ref_q8_1_act(b: &[BlockQ8_1]) -> Vec<f64> {
    b.iter().flat_map(|b| b.qs.iter().map(move |&q| f(b.d) * f64::from(q))).collect()
}

pub(crate) fn ref_q8k_act(b: &[BlockQ8K]) -> Vec<f64> {
    b.iter().flat_map(|b| b.qs.iter().map(move |&q| f64::from(b.d) * f64::from(q))).collect()
}

/// `(Σ w x, Σ |terms of w| |x|)` in f64.
pub(crate) fn ref_dot(w: &[[f64; 2]], x: &[f64]) -> (f64, f64) {
    assert_eq!(w.len(), x.len());
    let mut sum = 0.0;
    let mut mag = 0.0;
    for (t, &xi) in w.iter().zip(x) {
        sum += (t[0] + t[1]) * xi;
        mag += (t[0].abs() + t[1].abs()) * xi.abs();
    }
    (sum, mag)
}

/// The stated tolerance between two f32 evaluations of one dot product (or
/// an f32 and an f64 one): `(n_blocks + 16) * 2^-22 * magnitude`, plus
/// `extra` (the Q8_1 `s` rounding), plus a denormal floor. See
/// `docs/kernels.md`.
pub(crate) fn tolerance(n_blocks: usize, magnitude: f64, extra: f64) -> f64 {
    (n_blocks as f64 + 16.0) * f64::from(f32::EPSILON) * 2.0 * magnitude + extra + 1e-30
}

/// The kernel sets to compare with scalar (scalar included: it must agree
/// with itself through the trait, too).
pub(crate) fn kernel_sets() -> Vec<&'static dyn Kernels> {
    available().collect()
}
