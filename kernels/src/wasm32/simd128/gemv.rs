//! Matrix-vector products with wasm `simd128`: four rows at a time.
//!
//! As in the AVX2 set (see `x86_64/avx2/gemv.rs`): the activation block is
//! loaded once per group of rows, the rows' f16 headers are converted four
//! at a time (wasm has no f16 conversion instruction: the same bit
//! manipulation as [`crate::f16`], on four lanes), and each row keeps its
//! own accumulator with the same arithmetic whatever the group size, so a
//! row's value does not depend on grouping or threads.
//!
//! Integer core per 32 weights: `i16x8.extmul_{low,high}_i8x16` products,
//! summed in i16 as far as the format's range allows (4 products for 4- and
//! 5-bit weights: at most 4 * 16 * 127 = 8,128; 2 for Q8_0: 2 * 128 * 127 =
//! 32,512), then one or two `i32x4.extadd_pairwise_i16x8`.

use core::arch::wasm32::*;

use super::dot::{self, fifth_bits, hsum_f32, load16, nibbles};
use crate::dispatch::check_gemv;
use crate::quant::{BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1};

/// Rows per group.
const R: usize = 4;

/// Four halves (low 16 bits of each u32 lane) to f32, exactly as
/// `f16::f16_bits_to_f32` does it, lane-wise.
#[inline(always)]
fn f16x4_to_f32(h: v128) -> v128 {
    let sign = i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16);
    let em = i32x4_shl(v128_and(h, u32x4_splat(0x7fff)), 13);
    let scaled = f32x4_mul(em, f32x4_splat(f32::from_bits(0x7780_0000)));
    let inf_nan = u32x4_ge(em, u32x4_splat(0x0f80_0000));
    let special = v128_or(em, u32x4_splat(0x7f80_0000));
    v128_or(v128_bitselect(special, scaled, inf_nan), sign)
}

/// Lane `r` of `v` in all four lanes.
#[inline(always)]
fn splat_lane(v: v128, r: usize) -> v128 {
    match r {
        0 => i32x4_shuffle::<0, 0, 0, 0>(v, v),
        1 => i32x4_shuffle::<1, 1, 1, 1>(v, v),
        2 => i32x4_shuffle::<2, 2, 2, 2>(v, v),
        _ => i32x4_shuffle::<3, 3, 3, 3>(v, v),
    }
}

/// The first four bytes of each of `N` blocks, one per u32 lane.
///
/// # Safety
///
/// `w.len() == N * nb` and `b < nb`.
/// Call only in `simd128` builds (from this module's kernels).
#[inline(always)]
unsafe fn headers<T, const N: usize>(w: &[T], nb: usize, b: usize) -> v128 {
    let mut h = [0u32; 4];
    for (r, v) in h.iter_mut().enumerate().take(N) {
        // SAFETY (caller): r < N, b < nb and w.len() == N * nb, so the block
        // exists; blocks have alignment 1 and at least 4 bytes.
        *v = core::ptr::read_unaligned(w.as_ptr().add(r * nb + b).cast::<u32>());
    }
    u32x4(h[0], h[1], h[2], h[3])
}

/// Σ of 32 products of small weights (|w| <= 16) by activations: the four
/// i16 product vectors are summed in i16 (<= 8,128 per lane), then widened.
#[inline(always)]
fn dot32_small(lo: v128, hi: v128, y_lo: v128, y_hi: v128) -> v128 {
    let a = i16x8_add(i16x8_extmul_low_i8x16(lo, y_lo), i16x8_extmul_low_i8x16(hi, y_hi));
    let b = i16x8_add(i16x8_extmul_high_i8x16(lo, y_lo), i16x8_extmul_high_i8x16(hi, y_hi));
    i32x4_extadd_pairwise_i16x8(i16x8_add(a, b))
}

/// Σ of 32 products of full-range bytes: pairs summed in i16 (<= 32,512).
#[inline(always)]
fn dot32_full(x0: v128, x1: v128, y0: v128, y1: v128) -> v128 {
    let a = i16x8_add(i16x8_extmul_low_i8x16(x0, y0), i16x8_extmul_low_i8x16(x1, y1));
    let b = i16x8_add(i16x8_extmul_high_i8x16(x0, y0), i16x8_extmul_high_i8x16(x1, y1));
    i32x4_add(i32x4_extadd_pairwise_i16x8(a), i32x4_extadd_pairwise_i16x8(b))
}

/// `out[r] = row r · y` for `N <= 4` rows of a format whose value is
/// `d * q`; `$ints(x_block, y_lo, y_hi)` gives the i32x4 partial sums.
macro_rules! rows_d_only {
    ($name:ident, $w:ty, $a:ty, |$bx:ident, $ylo:ident, $yhi:ident| $ints:expr) => {
        /// `out[r] = row r · y` for `N <= 4` rows (see the module doc).
        ///
        /// # Safety
        ///
        /// simd128; `w.len() == N * y.len()`, `out.len() == N` (checked).
        #[inline(always)]
        pub(super) unsafe fn $name<const N: usize>(w: &[$w], y: &[$a], out: &mut [f32]) {
            let nb = y.len();
            assert!(N <= R && w.len() == N * nb && out.len() == N);
            let mut acc = [f32x4_splat(0.0); N];
            for (b, by) in y.iter().enumerate() {
                let $ylo = load16(&by.qs[..16]);
                let $yhi = load16(&by.qs[16..]);
                let d = f16x4_to_f32(v128_and(headers::<_, N>(w, nb, b), u32x4_splat(0xffff)));
                let scales = f32x4_mul(d, f32x4_splat(by.d.to_f32()));
                for (r, a) in acc.iter_mut().enumerate() {
                    // SAFETY: r < N, b < nb.
                    let $bx = &*w.as_ptr().add(r * nb + b);
                    let s = f32x4_convert_i32x4($ints);
                    *a = f32x4_add(*a, f32x4_mul(s, splat_lane(scales, r)));
                }
            }
            for (o, a) in out.iter_mut().zip(acc) {
                *o = hsum_f32(a);
            }
        }
    };
}

rows_d_only!(rows_q4_0, BlockQ4_0, BlockQ8_0, |bx, y_lo, y_hi| {
    let (lo, hi) = nibbles(&bx.qs);
    let eight = i8x16_splat(8);
    dot32_small(i8x16_sub(lo, eight), i8x16_sub(hi, eight), y_lo, y_hi)
});

rows_d_only!(rows_q5_0, BlockQ5_0, BlockQ8_0, |bx, y_lo, y_hi| {
    let (lo, hi) = nibbles(&bx.qs);
    let qh = u32::from_le_bytes(bx.qh);
    let sixteen = i8x16_splat(16);
    let lo = i8x16_sub(v128_or(lo, fifth_bits(qh as u16)), sixteen);
    let hi = i8x16_sub(v128_or(hi, fifth_bits((qh >> 16) as u16)), sixteen);
    dot32_small(lo, hi, y_lo, y_hi)
});

rows_d_only!(rows_q8_0, BlockQ8_0, BlockQ8_0, |bx, y_lo, y_hi| {
    dot32_full(load16(&bx.qs[..16]), load16(&bx.qs[16..]), y_lo, y_hi)
});

/// `out[r] = row r · y` for `N <= 4` Q4_1 rows: `d_w d_y Σ q q_y` per row
/// accumulator, `m_w s_y` in lane `r` of one more vector.
///
/// # Safety
///
/// simd128; `w.len() == N * y.len()`, `out.len() == N` (checked).
#[inline(always)]
pub(super) unsafe fn rows_q4_1<const N: usize>(w: &[BlockQ4_1], y: &[BlockQ8_1], out: &mut [f32]) {
    let nb = y.len();
    assert!(N <= R && w.len() == N * nb && out.len() == N);
    let mut acc = [f32x4_splat(0.0); N];
    let mut msum = f32x4_splat(0.0);
    for (b, by) in y.iter().enumerate() {
        let y_lo = load16(&by.qs[..16]);
        let y_hi = load16(&by.qs[16..]);
        let heads = headers::<_, N>(w, nb, b);
        let d = f16x4_to_f32(v128_and(heads, u32x4_splat(0xffff)));
        let m = f16x4_to_f32(u32x4_shr(heads, 16));
        let scales = f32x4_mul(d, f32x4_splat(by.d.to_f32()));
        msum = f32x4_add(msum, f32x4_mul(m, f32x4_splat(by.s.to_f32())));
        for (r, a) in acc.iter_mut().enumerate() {
            // SAFETY: r < N, b < nb.
            let bx = &*w.as_ptr().add(r * nb + b);
            let (lo, hi) = nibbles(&bx.qs);
            let s = f32x4_convert_i32x4(dot32_small(lo, hi, y_lo, y_hi));
            *a = f32x4_add(*a, f32x4_mul(s, splat_lane(scales, r)));
        }
    }
    let mut m = [0.0f32; 4];
    // SAFETY: 16 writable bytes; wasm stores need no alignment.
    v128_store(m.as_mut_ptr().cast(), msum);
    for (r, (o, a)) in out.iter_mut().zip(acc).enumerate() {
        *o = hsum_f32(a) + m[r];
    }
}

macro_rules! gemv_multi_row {
    ($name:ident, $w:ty, $a:ty, $rows:ident) => {
        /// `out[r] = dot(row r of w, x)`, four rows at a time.
        ///
        /// # Safety
        ///
        /// The module must be built with simd128.
        #[target_feature(enable = "simd128")]
        pub(crate) unsafe fn $name(w: &[$w], x: &[$a], out: &mut [f32]) {
            check_gemv(w.len(), x.len(), out.len());
            let nb = x.len();
            if nb == 0 {
                out.fill(0.0);
                return;
            }
            let rows = out.len();
            let full = rows - rows % R;
            for (g, o) in out[..full].chunks_exact_mut(R).enumerate() {
                $rows::<R>(&w[g * R * nb..(g + 1) * R * nb], x, o);
            }
            for r in full..rows {
                $rows::<1>(&w[r * nb..(r + 1) * nb], x, &mut out[r..r + 1]);
            }
        }
    };
}

gemv_multi_row!(gemv_q4_0, BlockQ4_0, BlockQ8_0, rows_q4_0);
gemv_multi_row!(gemv_q4_1, BlockQ4_1, BlockQ8_1, rows_q4_1);
gemv_multi_row!(gemv_q5_0, BlockQ5_0, BlockQ8_0, rows_q5_0);
gemv_multi_row!(gemv_q8_0, BlockQ8_0, BlockQ8_0, rows_q8_0);

macro_rules! gemv_by_rows {
    ($name:ident, $w:ty, $a:ty, $dot:path) => {
        /// `out[r] = dot(row r of w, x)`.
        ///
        /// # Safety
        ///
        /// The module must be built with simd128.
        #[target_feature(enable = "simd128")]
        pub(crate) unsafe fn $name(w: &[$w], x: &[$a], out: &mut [f32]) {
            check_gemv(w.len(), x.len(), out.len());
            if x.is_empty() {
                out.fill(0.0);
                return;
            }
            for (row, o) in w.chunks_exact(x.len()).zip(out.iter_mut()) {
                *o = $dot(row, x);
            }
        }
    };
}

gemv_by_rows!(gemv_q4k, BlockQ4K, BlockQ8K, dot::dot_q4k_q8k);
gemv_by_rows!(gemv_q5k, BlockQ5K, BlockQ8K, dot::dot_q5k_q8k);
gemv_by_rows!(gemv_q6k, BlockQ6K, BlockQ8K, dot::dot_q6k_q8k);
