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
// A tile of 2 rows x 4 vectors: each weight block is used against four
// activation blocks, and the two rows' weights stay in L1 while the loop
// runs over every vector, so the matrix is read from memory once per batch
// instead of once per token. Each (row, vector) pair keeps the arithmetic of
// the GEMV kernels above — the same integer lanes, the same `d_w * d_x`
// product, one FMA per block in block order, the same final reduction — so
// a batched product equals the per-token GEMV bit for bit (prefill and
// decode see identical numbers).
//
// Work that does not depend on the vector is done once per row group, not
// once per tile: the weight blocks are unpacked to bytes (and, for signed
// formats, their absolute values taken: the sign trick's per-weight half),
// the scales converted from f16 and stored as 8 copies (a plain load for the
// `d_w * d_x` product). The activation scales are converted once per call.
// What is left per (row, vector, block) is `vpmaddubsw`, `vpmaddwd`, the
// scale product, the conversion and the FMA.
//
// Q4_1's offsets `Σ_b m_w s_x` are summed per row group for eight vectors at
// once: the activations' `s` are stored transposed (eight vectors side by
// side per block), so one multiply and one add per row and block do eight
// pairs' scalar steps — lane by lane the multiply and add, from zero, in
// block order, that the GEMV kernel's odd lanes do.
//
// No closures here (`map`, `extend`, `array::from_fn`): a closure that the
// compiler does not inline is compiled without AVX2 and its intrinsics
// become calls (it happened to `Vec::extend(iter.map(..))`, at 2x the time
// of the whole product).

/// Rows per tile.
const TR: usize = 2;
/// Vectors per tile.
const TV: usize = 4;

/// A weight format with its activation format, as the batched kernel sees
/// them.
trait Batched {
    /// Weight block.
    type W;
    /// Activation block.
    type A;
    /// A weight block ready to multiply: its bytes, and for signed formats
    /// their absolute values.
    type Prepared: Copy;
    /// Whether blocks carry an offset (`m_w s_x`, Q4_1).
    const OFFSET: bool;

    /// # Safety
    ///
    /// AVX2, FMA and F16C.
    unsafe fn prepare(w: &Self::W) -> Self::Prepared;
    /// The 8 i32 lanes the GEMV kernel computes for this block pair.
    ///
    /// # Safety
    ///
    /// AVX2, FMA and F16C.
    unsafe fn ints(q: Self::Prepared, y: __m256i) -> __m256i;
    /// The weight scale `d`, converted.
    ///
    /// # Safety
    ///
    /// AVX2, FMA and F16C.
    unsafe fn w_d(w: &Self::W) -> f32;
    /// The weight offset `m` (0 for formats without one).
    ///
    /// # Safety
    ///
    /// AVX2, FMA and F16C.
    unsafe fn w_m(w: &Self::W) -> f32;
    /// The activation quants.
    fn a_qs(a: &Self::A) -> &[i8; 32];
    /// The activation scale `d`, converted.
    ///
    /// # Safety
    ///
    /// AVX2, FMA and F16C.
    unsafe fn a_d(a: &Self::A) -> f32;
    /// The activation block sum `s` (0 for formats without one).
    ///
    /// # Safety
    ///
    /// AVX2, FMA and F16C.
    unsafe fn a_s(a: &Self::A) -> f32;
}

/// Signed weight bytes with their absolute values (the sign trick's
/// per-weight half, see [`dot_i8`]).
#[derive(Clone, Copy)]
struct Signed {
    q: __m256i,
    abs: __m256i,
}

macro_rules! batched_d_only {
    ($fmt:ident, $w:ty, |$bx:ident| $bytes:expr) => {
        struct $fmt;

        impl Batched for $fmt {
            type W = $w;
            type A = BlockQ8_0;
            type Prepared = Signed;
            const OFFSET: bool = false;

            #[inline(always)]
            unsafe fn prepare($bx: &$w) -> Signed {
                let q = $bytes;
                Signed { q, abs: _mm256_sign_epi8(q, q) }
            }
            #[inline(always)]
            unsafe fn ints(q: Signed, y: __m256i) -> __m256i {
                // `dot_i8(q.q, y)`, with `|q|` computed once per block.
                _mm256_madd_epi16(_mm256_maddubs_epi16(q.abs, _mm256_sign_epi8(y, q.q)), _mm256_set1_epi16(1))
            }
            #[inline(always)]
            unsafe fn w_d(w: &$w) -> f32 {
                dot::f16_to_f32(w.d)
            }
            #[inline(always)]
            unsafe fn w_m(_: &$w) -> f32 {
                0.0
            }
            #[inline(always)]
            fn a_qs(a: &BlockQ8_0) -> &[i8; 32] {
                &a.qs
            }
            #[inline(always)]
            unsafe fn a_d(a: &BlockQ8_0) -> f32 {
                dot::f16_to_f32(a.d)
            }
            #[inline(always)]
            unsafe fn a_s(_: &BlockQ8_0) -> f32 {
                0.0
            }
        }
    };
}

batched_d_only!(Q4_0, BlockQ4_0, |bx| q4_0_bytes(bx));
batched_d_only!(Q5_0, BlockQ5_0, |bx| q5_0_bytes(bx));
batched_d_only!(Q8_0, BlockQ8_0, |bx| load32(&bx.qs));

struct Q4_1;

impl Batched for Q4_1 {
    type W = BlockQ4_1;
    type A = BlockQ8_1;
    type Prepared = __m256i;
    const OFFSET: bool = true;

    #[inline(always)]
    unsafe fn prepare(w: &BlockQ4_1) -> __m256i {
        nibbles(&w.qs)
    }
    #[inline(always)]
    unsafe fn ints(q: __m256i, y: __m256i) -> __m256i {
        dot_u8(q, y)
    }
    #[inline(always)]
    unsafe fn w_d(w: &BlockQ4_1) -> f32 {
        dot::f16_to_f32(w.d)
    }
    #[inline(always)]
    unsafe fn w_m(w: &BlockQ4_1) -> f32 {
        dot::f16_to_f32(w.m)
    }
    #[inline(always)]
    fn a_qs(a: &BlockQ8_1) -> &[i8; 32] {
        &a.qs
    }
    #[inline(always)]
    unsafe fn a_d(a: &BlockQ8_1) -> f32 {
        dot::f16_to_f32(a.d)
    }
    #[inline(always)]
    unsafe fn a_s(a: &BlockQ8_1) -> f32 {
        dot::f16_to_f32(a.s)
    }
}

/// The FMA part of a tile: `acc[r][t] = Σ_b (d_r d_t) Σ q_r q_t`, lanes not
/// yet summed, for `N <= TR` rows and `V <= TV` vectors.
///
/// `wq[r * nb + b]` is row `r`'s block `b` prepared, `wd[r * nb + b]` its
/// scale (8 copies), `dy[t * nb + b]` vector `t`'s scale.
///
/// # Safety
///
/// AVX2, FMA and F16C; `wq.len() >= N * nb`, `wd.len() >= N * nb`,
/// `x.len() >= V * nb`, `dy.len() >= V * nb` (checked).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // (row, vector) indices address the tile
unsafe fn tile<F: Batched, const N: usize, const V: usize>(
    wq: &[F::Prepared],
    wd: &[__m256],
    x: &[F::A],
    dy: &[f32],
    nb: usize,
) -> [[__m256; V]; N] {
    assert!(wq.len() >= N * nb && wd.len() >= N * nb && x.len() >= V * nb && dy.len() >= V * nb);
    let mut acc = [[_mm256_setzero_ps(); V]; N];
    for b in 0..nb {
        let mut q = [*wq.as_ptr(); N];
        for (r, q) in q.iter_mut().enumerate() {
            // SAFETY: r < N and b < nb, so r * nb + b < wq.len().
            *q = *wq.as_ptr().add(r * nb + b);
        }
        for t in 0..V {
            // SAFETY: t < V and b < nb, so t * nb + b < x.len(), dy.len().
            let y = load32(F::a_qs(&*x.as_ptr().add(t * nb + b)));
            let d_t = _mm256_broadcast_ss(&*dy.as_ptr().add(t * nb + b));
            for r in 0..N {
                let p = F::ints(q[r], y);
                // SAFETY: r * nb + b < wd.len().
                let s = _mm256_mul_ps(*wd.as_ptr().add(r * nb + b), d_t);
                acc[r][t] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc[r][t]);
            }
        }
    }
    acc
}

/// Vectors per group of offset sums (one register of f32 lanes).
const OV: usize = 8;
const _: () = assert!(OV % TV == 0, "a tile's vectors must lie in one offset group");

/// Q4_1's offsets for the rows of one group and the `OV` vectors of one
/// vector group: lane `t` of result `r` is `Σ_b m_r s_t`, summed from zero
/// in block order (one multiply and one add per block, as the GEMV kernel's
/// odd lanes do). `wm[r * nb + b]` is row `r`'s `m` for block `b`;
/// `sy[b * OV + t]` vector `t`'s `s`.
///
/// # Safety
///
/// AVX2, FMA and F16C; `wm.len() >= nr * nb`, `sy.len() >= OV * nb`
/// (checked).
#[inline(always)]
unsafe fn row_offsets(wm: &[f32], sy: &[f32], nr: usize, nb: usize, out: &mut [[f32; OV]]) {
    assert!(wm.len() >= nr * nb && sy.len() >= OV * nb && out.len() >= nr);
    for (r, o) in out.iter_mut().enumerate().take(nr) {
        let mut acc = _mm256_setzero_ps();
        for b in 0..nb {
            // SAFETY: r < nr, b < nb: in bounds by the assertion; unaligned
            // load of OV floats.
            let m = _mm256_set1_ps(*wm.as_ptr().add(r * nb + b));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(m, _mm256_loadu_ps(sy.as_ptr().add(b * OV))));
        }
        // SAFETY: OV = 8 writable floats.
        _mm256_storeu_ps(o.as_mut_ptr(), acc);
    }
}

/// `out[t * rows + r] = row r · x_t` (see the section comment).
///
/// # Safety
///
/// AVX2, FMA and F16C.
#[inline(always)]
unsafe fn gemm<F: Batched>(w: &[F::W], x: &[F::A], nb: usize, out: &mut [f32]) {
    let (rows, vectors) = check_gemm(w.len(), x.len(), nb, out.len());
    let mut dy = Vec::with_capacity(x.len());
    for a in x {
        dy.push(F::a_d(a));
    }
    // Activation sums, OV vectors side by side per block (zeros past the
    // last vector).
    let groups = if F::OFFSET { vectors.div_ceil(OV) } else { 0 };
    let mut sy = vec![0.0f32; groups * nb * OV];
    if F::OFFSET {
        for (i, a) in x.iter().enumerate() {
            let (t, b) = (i / nb, i % nb);
            sy[((t / OV) * nb + b) * OV + t % OV] = F::a_s(a);
        }
    }
    // The row group's blocks prepared, scales converted (reused by every
    // vector), and its offsets for every vector (`offsets[g * TR + r]`).
    let mut wq: Vec<F::Prepared> = Vec::with_capacity(TR * nb);
    let mut wd: Vec<__m256> = Vec::with_capacity(TR * nb);
    let mut wm = vec![0.0f32; if F::OFFSET { TR * nb } else { 0 }];
    let mut offsets = vec![[0.0f32; OV]; groups * TR];
    let mut r0 = 0;
    while r0 < rows {
        let nr = TR.min(rows - r0);
        let wr = &w[r0 * nb..(r0 + nr) * nb];
        wq.clear();
        wd.clear();
        // SAFETY: both have capacity TR * nb >= wr.len(); the first
        // `wr.len()` elements are written before `set_len` (index loops,
        // not `push`, keep the capacity checks out of this loop).
        for (i, bw) in wr.iter().enumerate() {
            wq.as_mut_ptr().add(i).write(F::prepare(bw));
            wd.as_mut_ptr().add(i).write(_mm256_set1_ps(F::w_d(bw)));
        }
        wq.set_len(wr.len());
        wd.set_len(wr.len());
        if F::OFFSET {
            for (m, bw) in wm.iter_mut().zip(wr) {
                *m = F::w_m(bw);
            }
            for (g, o) in offsets.chunks_exact_mut(TR).enumerate() {
                row_offsets(&wm, &sy[g * nb * OV..], nr, nb, o);
            }
        }
        let mut t0 = 0;
        while t0 < vectors {
            let nv = TV.min(vectors - t0);
            macro_rules! run {
                ($n:literal, $v:literal) => {{
                    let acc = tile::<F, $n, $v>(&wq, &wd, &x[t0 * nb..], &dy[t0 * nb..], nb);
                    // The tile's vectors lie in one offset group: t0 is a
                    // multiple of TV, which divides OV.
                    let (g, l0) = (t0 / OV, t0 % OV);
                    for (r, row) in acc.iter().enumerate() {
                        let offs = if F::OFFSET { offsets[g * TR + r] } else { [0.0; OV] };
                        for (t, &a) in row.iter().enumerate() {
                            // Formats without offsets add nothing (not even
                            // a zero, which would turn -0.0 into 0.0).
                            // SAFETY (both): l0 + t <= OV - TV + V - 1 < OV;
                            // t0 + t < vectors and r0 + r < rows, and
                            // `out.len() == rows * vectors` (check_gemm).
                            let v = if F::OFFSET { hsum(a) + *offs.get_unchecked(l0 + t) } else { hsum(a) };
                            *out.as_mut_ptr().add((t0 + t) * rows + r0 + r) = v;
                        }
                    }
                }};
            }
            macro_rules! vectors {
                ($n:literal; $($v:literal)+) => {
                    match nv {
                        $($v => run!($n, $v),)+
                        // nv = TV.min(..) is in 1..=TV (t0 < vectors).
                        _ => unreachable!("tile of {nv} vectors"),
                    }
                };
            }
            match nr {
                1 => vectors!(1; 1 2 3 4),
                // nr = TR.min(..) is in 1..=TR (r0 < rows).
                _ => vectors!(2; 1 2 3 4),
            }
            t0 += nv;
        }
        r0 += nr;
    }
}

macro_rules! gemm_entry {
    ($name:ident, $fmt:ident, $w:ty, $a:ty) => {
        /// `out[t * rows + r] = row r · x_t` (see the section comment).
        ///
        /// # Safety
        ///
        /// The CPU must support AVX2, FMA and F16C.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(crate) unsafe fn $name(w: &[$w], x: &[$a], nb: usize, out: &mut [f32]) {
            gemm::<$fmt>(w, x, nb, out)
        }
    };
}

gemm_entry!(gemm_q4_0, Q4_0, BlockQ4_0, BlockQ8_0);
gemm_entry!(gemm_q4_1, Q4_1, BlockQ4_1, BlockQ8_1);
gemm_entry!(gemm_q5_0, Q5_0, BlockQ5_0, BlockQ8_0);
gemm_entry!(gemm_q8_0, Q8_0, BlockQ8_0, BlockQ8_0);
