//! Matrix-vector products with AVX2: several rows at a time.
//!
//! A decode-step GEMV is a few hundred short rows (SmolLM2: 18 blocks of 32
//! per row). Computing `R = 4` rows together shares each activation block's
//! load and scale conversion, converts the four rows' f16 scales with one
//! `vcvtph2ps`, and gives the core four independent FMA chains. Each row's
//! own arithmetic is the same whatever `R` (one accumulator per row, blocks
//! in order, the same final reduction), so a row's result does not depend on
//! how rows are grouped or split between threads — and the single-row dot
//! product (`R = 1`) gives the same value too.
//!
//! The K-quant formats (256-weight super-blocks, already long inner loops)
//! run their dot product row by row.

use core::arch::x86_64::*;

use super::dot::{self, dot_i8, dot_u8, hsum, load32, nibbles, q4_0_bytes, q5_0_bytes};
use crate::dispatch::{check_gemm, check_gemv};
use crate::quant::{BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1};
use alloc::vec::Vec;

/// Rows per group in the multi-row kernels.
const R: usize = 4;

/// Four little-endian u32 read from `R` places, as the eight halves they
/// hold converted to f32: `[lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3]`.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
unsafe fn halves_x4(v: [u32; 4]) -> __m256 {
    _mm256_cvtph_ps(_mm_setr_epi32(v[0] as i32, v[1] as i32, v[2] as i32, v[3] as i32))
}

/// The u32 made of the first four bytes at `p` (a block header: `d`, or
/// `d` and `m`/`s`).
///
/// # Safety
///
/// `p` must point to a readable block of at least 4 bytes.
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
unsafe fn header_u32<T>(p: *const T) -> u32 {
    // SAFETY (caller): `p` points to a block of at least 4 bytes; blocks have
    // alignment 1, hence the unaligned read.
    core::ptr::read_unaligned(p.cast::<u32>())
}

/// The header's first f16 only (`d` of a Q8_0 or Q4_0/Q5_0 block; the next
/// two bytes are quants, not a scale).
///
/// # Safety
///
/// `p` must point to a readable block of at least 2 bytes.
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
unsafe fn header_d<T>(p: *const T) -> u32 {
    // SAFETY (caller): `p` points to a block of at least 2 bytes.
    u32::from(core::ptr::read_unaligned(p.cast::<u16>()))
}

/// Prefetches the block `R` rows below `p` (the same column of the next row
/// group), a group's worth of time ahead of its use.
///
/// Why: a group reads four streams `cols` bytes apart, advancing one block
/// per step; the hardware prefetchers do not run far enough ahead of that
/// pattern, and on weights that come from DRAM (the vocabulary projection,
/// or any layer once the model exceeds the L3) the kernel became
/// latency-bound at a third of the streaming bandwidth. The address may lie
/// past the end of the matrix (last group): `wrapping_add` keeps the pointer
/// arithmetic defined and a prefetch never faults.
///
/// # Safety
///
/// None beyond the CPU features: the address is never dereferenced.
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
unsafe fn prefetch_next_group<T>(p: *const T, nb: usize) {
    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(2 * R * nb).cast::<i8>());
}

/// `out[r] = row r · y` for the `N <= R` rows of `w` (row-major, `y.len()`
/// blocks each), for formats whose value is `d * q` (Q4_0, Q5_0, Q8_0).
/// `$ints(x_block, y_vec)` gives the 8 i32 lanes of `Σ q_x q_y`.
macro_rules! rows_d_only {
    ($name:ident, $w:ty, $a:ty, |$bx:ident, $qy:ident| $ints:expr) => {
        /// `out[r] = row r · y` for `N <= 4` rows (see the module doc).
        ///
        /// # Safety
        ///
        /// AVX2, FMA and F16C; `w.len() == N * y.len()`, `out.len() == N`
        /// (checked).
        #[inline(always)]
        pub(super) unsafe fn $name<const N: usize>(w: &[$w], y: &[$a], out: &mut [f32]) {
            let nb = y.len();
            assert!(N <= R && w.len() == N * nb && out.len() == N);
            let mut acc = [_mm256_setzero_ps(); N];
            for b in 0..nb {
                // SAFETY: b < nb = y.len().
                let by = &*y.as_ptr().add(b);
                let $qy = load32(&by.qs);
                let dy = _mm256_set1_ps(_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(header_d(by) as i32))));
                let mut heads = [0u32; 4];
                for (r, h) in heads.iter_mut().enumerate().take(N) {
                    // SAFETY: r < N and b < nb, so r * nb + b < w.len().
                    *h = header_d(w.as_ptr().add(r * nb + b));
                }
                // [d0, 0, d1, 0, …] * dy
                let scales = _mm256_mul_ps(halves_x4(heads), dy);
                for (r, a) in acc.iter_mut().enumerate() {
                    // SAFETY: as above.
                    let $bx = &*w.as_ptr().add(r * nb + b);
                    prefetch_next_group($bx, nb);
                    let p = $ints;
                    let s = _mm256_permutevar8x32_ps(scales, _mm256_set1_epi32(2 * r as i32));
                    *a = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), *a);
                }
            }
            for (o, a) in out.iter_mut().zip(acc) {
                *o = hsum(a);
            }
        }
    };
}

rows_d_only!(rows_q4_0, BlockQ4_0, BlockQ8_0, |bx, qy| dot_i8(q4_0_bytes(bx), qy));
rows_d_only!(rows_q5_0, BlockQ5_0, BlockQ8_0, |bx, qy| dot_i8(q5_0_bytes(bx), qy));
rows_d_only!(rows_q8_0, BlockQ8_0, BlockQ8_0, |bx, qy| dot_i8(load32(&bx.qs), qy));

/// `out[r] = row r · y` for `N <= 4` Q4_1 rows: `Σ_b d_w d_y Σ q q_y` on
/// FMA chains, `Σ_b m_w s_y` on the odd lanes of one more vector (the
/// even lanes of that vector collect unused `d_w d_y` sums).
///
/// # Safety
///
/// AVX2, FMA and F16C; `w.len() == N * y.len()`, `out.len() == N` (checked).
#[inline(always)]
pub(super) unsafe fn rows_q4_1<const N: usize>(w: &[BlockQ4_1], y: &[BlockQ8_1], out: &mut [f32]) {
    let nb = y.len();
    assert!(N <= R && w.len() == N * nb && out.len() == N);
    let mut acc = [_mm256_setzero_ps(); N];
    let mut msum = _mm256_setzero_ps();
    for b in 0..nb {
        // SAFETY: b < nb = y.len().
        let by = &*y.as_ptr().add(b);
        let qy = load32(&by.qs);
        // [d_y, s_y] in every pair of lanes.
        let ys = _mm256_cvtph_ps(_mm_set1_epi32(header_u32(by) as i32));
        let mut heads = [0u32; 4];
        for (r, h) in heads.iter_mut().enumerate().take(N) {
            // SAFETY: r < N and b < nb, so r * nb + b < w.len().
            *h = header_u32(w.as_ptr().add(r * nb + b));
        }
        // [d0 d_y, m0 s_y, d1 d_y, m1 s_y, …]
        let prod = _mm256_mul_ps(halves_x4(heads), ys);
        msum = _mm256_add_ps(msum, prod);
        for (r, a) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let bx = &*w.as_ptr().add(r * nb + b);
            prefetch_next_group(bx, nb);
            let p = dot_u8(nibbles(&bx.qs), qy);
            let s = _mm256_permutevar8x32_ps(prod, _mm256_set1_epi32(2 * r as i32));
            *a = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), *a);
        }
    }
    let mut m = [0.0f32; 8];
    // SAFETY: 8 writable floats.
    _mm256_storeu_ps(m.as_mut_ptr(), msum);
    for (r, (o, a)) in out.iter_mut().zip(acc).enumerate() {
        *o = hsum(a) + m[2 * r + 1];
    }
}

macro_rules! gemv_multi_row {
    ($name:ident, $w:ty, $a:ty, $rows:ident) => {
        /// `out[r] = dot(row r of w, x)`, four rows at a time.
        ///
        /// # Safety
        ///
        /// The CPU must support AVX2, FMA and F16C.
        #[target_feature(enable = "avx2,fma,f16c")]
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
        /// The CPU must support AVX2, FMA and F16C.
        #[target_feature(enable = "avx2,fma,f16c")]
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

// ---------------------------------------------------------------------------
// Batched products (prefill): many activation vectors against one matrix.
// ---------------------------------------------------------------------------
//
// A tile of 2 rows x 4 vectors: each weight block is unpacked once and used
// against four activation blocks, and the two rows' weights stay in L1 while
// the loop runs over every vector, so the matrix is read from memory once per
// batch instead of once per token. Each (row, vector) pair keeps the
// arithmetic of the GEMV kernels above — the same integer lanes, the same
// `d_w * d_x` product, one FMA per block in block order, the same final
// reduction — so a batched product equals the per-token GEMV bit for bit
// (prefill and decode see identical numbers).

/// Rows per tile.
const TR: usize = 2;
/// Vectors per tile.
const TV: usize = 4;

/// One tile of a batched product for formats whose value is `d * q`:
/// `$bytes(block)` gives the weight block as signed bytes.
macro_rules! gemm_d_only {
    ($tile:ident, $gemm:ident, $w:ty, $a:ty, |$bx:ident| $bytes:expr) => {
        /// `res[r][t] = row r · x_t` for `N <= 2` rows and `V <= 4` vectors.
        ///
        /// # Safety
        ///
        /// AVX2, FMA and F16C; `w.len() >= N * nb`, `x.len() >= V * nb`,
        /// `dy.len() >= V * nb` (checked).
        #[inline(always)]
        #[allow(clippy::needless_range_loop)] // (row, vector) indices address the tile
        unsafe fn $tile<const N: usize, const V: usize>(w: &[$w], x: &[$a], dy: &[f32], nb: usize) -> [[f32; V]; N] {
            assert!(w.len() >= N * nb && x.len() >= V * nb && dy.len() >= V * nb);
            let mut acc = [[_mm256_setzero_ps(); V]; N];
            for b in 0..nb {
                let mut q = [_mm256_setzero_si256(); N];
                let mut heads = [0u32; 4];
                for r in 0..N {
                    // SAFETY: r < N, b < nb.
                    let $bx = &*w.as_ptr().add(r * nb + b);
                    q[r] = $bytes;
                    heads[r] = header_d($bx);
                }
                let d = halves_x4(heads);
                for t in 0..V {
                    // SAFETY: t < V, b < nb.
                    let y = load32(&(*x.as_ptr().add(t * nb + b)).qs);
                    let scales = _mm256_mul_ps(d, _mm256_set1_ps(*dy.as_ptr().add(t * nb + b)));
                    for r in 0..N {
                        let p = dot_i8(q[r], y);
                        let s = _mm256_permutevar8x32_ps(scales, _mm256_set1_epi32(2 * r as i32));
                        acc[r][t] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc[r][t]);
                    }
                }
            }
            let mut res = [[0.0f32; V]; N];
            for r in 0..N {
                for t in 0..V {
                    res[r][t] = hsum(acc[r][t]);
                }
            }
            res
        }

        /// `out[t * rows + r] = row r · x_t` (see the section comment).
        ///
        /// # Safety
        ///
        /// The CPU must support AVX2, FMA and F16C.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(crate) unsafe fn $gemm(w: &[$w], x: &[$a], nb: usize, out: &mut [f32]) {
            let (rows, vectors) = check_gemm(w.len(), x.len(), nb, out.len());
            let mut dy = Vec::with_capacity(x.len());
            for b in x {
                dy.push(dot::f16_to_f32(b.d));
            }
            gemm_tiles!(rows, vectors, nb, out, |N, V, r0, t0| $tile::<N, V>(
                &w[r0 * nb..],
                &x[t0 * nb..],
                &dy[t0 * nb..],
                nb
            ));
        }
    };
}

/// Walks the tiles: rows outer (a row pair's weights are read once for the
/// whole batch), vectors inner; edge tiles use smaller `N`, `V`.
macro_rules! gemm_tiles {
    ($rows:expr, $vectors:expr, $nb:expr, $out:expr, |$n:ident, $v:ident, $r0:ident, $t0:ident| $tile:expr) => {{
        let (rows, vectors) = ($rows, $vectors);
        let mut $r0 = 0;
        while $r0 < rows {
            let nr = TR.min(rows - $r0);
            let mut $t0 = 0;
            while $t0 < vectors {
                let nv = TV.min(vectors - $t0);
                macro_rules! run {
                    ($nn:literal, $vv:literal) => {{
                        const $n: usize = $nn;
                        const $v: usize = $vv;
                        let res = $tile;
                        for (r, row) in res.iter().enumerate() {
                            for (t, &val) in row.iter().enumerate() {
                                $out[($t0 + t) * rows + $r0 + r] = val;
                            }
                        }
                    }};
                }
                match (nr, nv) {
                    (2, 4) => run!(2, 4),
                    (2, 3) => run!(2, 3),
                    (2, 2) => run!(2, 2),
                    (2, _) => run!(2, 1),
                    (_, 4) => run!(1, 4),
                    (_, 3) => run!(1, 3),
                    (_, 2) => run!(1, 2),
                    (_, _) => run!(1, 1),
                }
                $t0 += nv;
            }
            $r0 += nr;
        }
    }};
}

gemm_d_only!(tile_q4_0, gemm_q4_0, BlockQ4_0, BlockQ8_0, |bx| q4_0_bytes(bx));
gemm_d_only!(tile_q5_0, gemm_q5_0, BlockQ5_0, BlockQ8_0, |bx| q5_0_bytes(bx));
gemm_d_only!(tile_q8_0, gemm_q8_0, BlockQ8_0, BlockQ8_0, |bx| load32(&bx.qs));

/// Q4_1 tile: `res[r][t] = row r · x_t` for `N <= 2` rows, `V <= 4` vectors;
/// `m_w s_x` summed per pair in block order, as the GEMV kernel does.
///
/// # Safety
///
/// AVX2, FMA and F16C; `w.len() >= N * nb`, `x.len() >= V * nb`, `dy` and
/// `sy` at least `V * nb` (checked).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // (row, vector) indices address the tile
unsafe fn tile_q4_1<const N: usize, const V: usize>(
    w: &[BlockQ4_1],
    x: &[BlockQ8_1],
    dy: &[f32],
    sy: &[f32],
    nb: usize,
) -> [[f32; V]; N] {
    assert!(w.len() >= N * nb && x.len() >= V * nb && dy.len() >= V * nb && sy.len() >= V * nb);
    let mut acc = [[_mm256_setzero_ps(); V]; N];
    for b in 0..nb {
        let mut q = [_mm256_setzero_si256(); N];
        let mut heads = [0u32; 4];
        for r in 0..N {
            // SAFETY: r < N, b < nb.
            let bx = w.as_ptr().add(r * nb + b);
            q[r] = nibbles(&(*bx).qs);
            heads[r] = header_u32(bx);
        }
        // [d0, m0, d1, m1, …] converted at once (a full-register move, no
        // merge into a live register).
        let dm = halves_x4(heads);
        for t in 0..V {
            // SAFETY: t < V, b < nb.
            let y = load32(&(*x.as_ptr().add(t * nb + b)).qs);
            let scales = _mm256_mul_ps(dm, _mm256_set1_ps(*dy.as_ptr().add(t * nb + b)));
            for r in 0..N {
                let p = dot_u8(q[r], y);
                let s = _mm256_permutevar8x32_ps(scales, _mm256_set1_epi32(2 * r as i32));
                acc[r][t] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc[r][t]);
            }
        }
    }
    // The offsets, in a separate pass (keeping 8 more scalar chains out of
    // the main loop's registers), each summed in block order from zero as
    // the GEMV kernel does.
    let mut msum = [[0.0f32; V]; N];
    for (r, ms) in msum.iter_mut().enumerate() {
        for b in 0..nb {
            // SAFETY: r < N, b < nb.
            let m = dot::f16_to_f32((*w.as_ptr().add(r * nb + b)).m);
            for (t, acc_m) in ms.iter_mut().enumerate() {
                *acc_m += m * *sy.as_ptr().add(t * nb + b);
            }
        }
    }
    let mut res = [[0.0f32; V]; N];
    for r in 0..N {
        for t in 0..V {
            res[r][t] = hsum(acc[r][t]) + msum[r][t];
        }
    }
    res
}

/// `out[t * rows + r] = row r · x_t` for Q4_1 (see the section comment).
///
/// # Safety
///
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemm_q4_1(w: &[BlockQ4_1], x: &[BlockQ8_1], nb: usize, out: &mut [f32]) {
    let (rows, vectors) = check_gemm(w.len(), x.len(), nb, out.len());
    let mut dy = Vec::with_capacity(x.len());
    let mut sy = Vec::with_capacity(x.len());
    for b in x {
        dy.push(dot::f16_to_f32(b.d));
        sy.push(dot::f16_to_f32(b.s));
    }
    gemm_tiles!(rows, vectors, nb, out, |N, V, r0, t0| tile_q4_1::<N, V>(
        &w[r0 * nb..],
        &x[t0 * nb..],
        &dy[t0 * nb..],
        &sy[t0 * nb..],
        nb
    ));
}
