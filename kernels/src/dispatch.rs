//! Choosing an implementation: the [`Kernels`] trait, the detection of the
//! best set for this CPU, and the safe free functions that use it.
//!
//! Every kernel set implements [`Kernels`]: [`Scalar`](crate::scalar::Scalar)
//! always, `Avx2` on x86-64 CPUs with AVX2+FMA+F16C, `Neon` on aarch64,
//! `Simd128` on wasm32 built with `+simd128`. A set overrides the kernels it
//! has and inherits the scalar version of the others, so a partial port is
//! still a complete, correct set.
//!
//! Selection:
//!
//! - x86-64 with the `std` feature: the CPU is asked once, at the first call
//!   (`is_x86_feature_detected!`), and the answer cached in an atomic. A plain
//!   `cargo build --release` (no `target-cpu=native`) therefore runs AVX2 code
//!   on every AVX2 machine and scalar code elsewhere, from the same binary.
//!   Without `std`, AVX2 is used only if the build enables it.
//! - aarch64: NEON is part of the base architecture; always used.
//! - wasm32: `Simd128` when compiled with `-C target-feature=+simd128` (a wasm
//!   module cannot detect features at run time; the build picks).
//! - Setting the environment variable `FORMWORK_KERNELS=scalar` (read once,
//!   `std` only) forces the scalar set, to measure or to rule out a kernel bug.

use crate::quant::{BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1};
use crate::scalar;

/// One implementation of every kernel. Methods default to the scalar
/// reference; implementations override what they vectorize.
///
/// Length contracts (all methods panic when broken, like slice indexing):
/// dot products take as many weight blocks as activation blocks; `gemv_*`
/// take a row-major matrix of `out.len()` rows of `x.len()` blocks each;
/// quantizers take `block_len * out.len()` values.
///
/// Sealed: the implementations are this crate's.
pub trait Kernels: Sync + Send + core::fmt::Debug + sealed::Sealed {
    /// `"scalar"`, `"avx2"`, `"neon"` or `"simd128"`.
    fn name(&self) -> &'static str;

    /// See [`scalar::dot_q4_0_q8_0`].
    fn dot_q4_0_q8_0(&self, x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
        scalar::dot_q4_0_q8_0(x, y)
    }
    /// See [`scalar::dot_q4_1_q8_1`].
    fn dot_q4_1_q8_1(&self, x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
        scalar::dot_q4_1_q8_1(x, y)
    }
    /// See [`scalar::dot_q5_0_q8_0`].
    fn dot_q5_0_q8_0(&self, x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
        scalar::dot_q5_0_q8_0(x, y)
    }
    /// See [`scalar::dot_q8_0_q8_0`].
    fn dot_q8_0_q8_0(&self, x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
        scalar::dot_q8_0_q8_0(x, y)
    }
    /// See [`scalar::dot_q4k_q8k`].
    fn dot_q4k_q8k(&self, x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
        scalar::dot_q4k_q8k(x, y)
    }
    /// See [`scalar::dot_q5k_q8k`].
    fn dot_q5k_q8k(&self, x: &[BlockQ5K], y: &[BlockQ8K]) -> f32 {
        scalar::dot_q5k_q8k(x, y)
    }
    /// See [`scalar::dot_q6k_q8k`].
    fn dot_q6k_q8k(&self, x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
        scalar::dot_q6k_q8k(x, y)
    }

    /// `out[r] = dot(row r of w, x)` for Q4_0 weights.
    fn gemv_q4_0(&self, w: &[BlockQ4_0], x: &[BlockQ8_0], out: &mut [f32]) {
        gemv_by_rows(w, x, out, |r, x| self.dot_q4_0_q8_0(r, x))
    }
    /// `out[r] = dot(row r of w, x)` for Q4_1 weights.
    fn gemv_q4_1(&self, w: &[BlockQ4_1], x: &[BlockQ8_1], out: &mut [f32]) {
        gemv_by_rows(w, x, out, |r, x| self.dot_q4_1_q8_1(r, x))
    }
    /// `out[r] = dot(row r of w, x)` for Q5_0 weights.
    fn gemv_q5_0(&self, w: &[BlockQ5_0], x: &[BlockQ8_0], out: &mut [f32]) {
        gemv_by_rows(w, x, out, |r, x| self.dot_q5_0_q8_0(r, x))
    }
    /// `out[r] = dot(row r of w, x)` for Q8_0 weights.
    fn gemv_q8_0(&self, w: &[BlockQ8_0], x: &[BlockQ8_0], out: &mut [f32]) {
        gemv_by_rows(w, x, out, |r, x| self.dot_q8_0_q8_0(r, x))
    }
    /// `out[r] = dot(row r of w, x)` for Q4_K weights.
    fn gemv_q4k(&self, w: &[BlockQ4K], x: &[BlockQ8K], out: &mut [f32]) {
        gemv_by_rows(w, x, out, |r, x| self.dot_q4k_q8k(r, x))
    }
    /// `out[r] = dot(row r of w, x)` for Q5_K weights.
    fn gemv_q5k(&self, w: &[BlockQ5K], x: &[BlockQ8K], out: &mut [f32]) {
        gemv_by_rows(w, x, out, |r, x| self.dot_q5k_q8k(r, x))
    }
    /// `out[r] = dot(row r of w, x)` for Q6_K weights.
    fn gemv_q6k(&self, w: &[BlockQ6K], x: &[BlockQ8K], out: &mut [f32]) {
        gemv_by_rows(w, x, out, |r, x| self.dot_q6k_q8k(r, x))
    }

    /// `out[t * rows + r] = dot(row r of w, x_t)` for q4_0 weights and the
    /// `x.len() / nb` activation vectors of `nb` blocks stored back to back
    /// in `x` (a batch: prefill). Equals `gemv_q4_0` per vector, bit for bit.
    fn gemm_q4_0(&self, w: &[BlockQ4_0], x: &[BlockQ8_0], nb: usize, out: &mut [f32]) {
        gemm_by_vectors(w, x, nb, out, |w, x, o| self.gemv_q4_0(w, x, o))
    }
    /// `out[t * rows + r] = dot(row r of w, x_t)` for q4_1 weights and the
    /// `x.len() / nb` activation vectors of `nb` blocks stored back to back
    /// in `x` (a batch: prefill). Equals `gemv_q4_1` per vector, bit for bit.
    fn gemm_q4_1(&self, w: &[BlockQ4_1], x: &[BlockQ8_1], nb: usize, out: &mut [f32]) {
        gemm_by_vectors(w, x, nb, out, |w, x, o| self.gemv_q4_1(w, x, o))
    }
    /// `out[t * rows + r] = dot(row r of w, x_t)` for q5_0 weights and the
    /// `x.len() / nb` activation vectors of `nb` blocks stored back to back
    /// in `x` (a batch: prefill). Equals `gemv_q5_0` per vector, bit for bit.
    fn gemm_q5_0(&self, w: &[BlockQ5_0], x: &[BlockQ8_0], nb: usize, out: &mut [f32]) {
        gemm_by_vectors(w, x, nb, out, |w, x, o| self.gemv_q5_0(w, x, o))
    }
    /// `out[t * rows + r] = dot(row r of w, x_t)` for q8_0 weights and the
    /// `x.len() / nb` activation vectors of `nb` blocks stored back to back
    /// in `x` (a batch: prefill). Equals `gemv_q8_0` per vector, bit for bit.
    fn gemm_q8_0(&self, w: &[BlockQ8_0], x: &[BlockQ8_0], nb: usize, out: &mut [f32]) {
        gemm_by_vectors(w, x, nb, out, |w, x, o| self.gemv_q8_0(w, x, o))
    }
    /// `out[t * rows + r] = dot(row r of w, x_t)` for q4k weights and the
    /// `x.len() / nb` activation vectors of `nb` blocks stored back to back
    /// in `x` (a batch: prefill). Equals `gemv_q4k` per vector, bit for bit.
    fn gemm_q4k(&self, w: &[BlockQ4K], x: &[BlockQ8K], nb: usize, out: &mut [f32]) {
        gemm_by_vectors(w, x, nb, out, |w, x, o| self.gemv_q4k(w, x, o))
    }
    /// `out[t * rows + r] = dot(row r of w, x_t)` for q5k weights and the
    /// `x.len() / nb` activation vectors of `nb` blocks stored back to back
    /// in `x` (a batch: prefill). Equals `gemv_q5k` per vector, bit for bit.
    fn gemm_q5k(&self, w: &[BlockQ5K], x: &[BlockQ8K], nb: usize, out: &mut [f32]) {
        gemm_by_vectors(w, x, nb, out, |w, x, o| self.gemv_q5k(w, x, o))
    }
    /// `out[t * rows + r] = dot(row r of w, x_t)` for q6k weights and the
    /// `x.len() / nb` activation vectors of `nb` blocks stored back to back
    /// in `x` (a batch: prefill). Equals `gemv_q6k` per vector, bit for bit.
    fn gemm_q6k(&self, w: &[BlockQ6K], x: &[BlockQ8K], nb: usize, out: &mut [f32]) {
        gemm_by_vectors(w, x, nb, out, |w, x, o| self.gemv_q6k(w, x, o))
    }
    /// See [`scalar::quantize_q8_0`].
    fn quantize_q8_0(&self, x: &[f32], out: &mut [BlockQ8_0]) {
        scalar::quantize_q8_0(x, out)
    }
    /// See [`scalar::quantize_q8_1`].
    fn quantize_q8_1(&self, x: &[f32], out: &mut [BlockQ8_1]) {
        scalar::quantize_q8_1(x, out)
    }
    /// See [`scalar::quantize_q8k`].
    fn quantize_q8k(&self, x: &[f32], out: &mut [BlockQ8K]) {
        scalar::quantize_q8k(x, out)
    }

    /// See [`scalar::apply_mask_f32`]. Bit-exact in every implementation.
    fn apply_mask_f32(&self, logits: &mut [f32], mask: &[u32]) {
        scalar::apply_mask_f32(logits, mask)
    }
    /// See [`scalar::masked_argmax`]. Same index in every implementation.
    fn masked_argmax(&self, logits: &[f32], mask: &[u32]) -> Option<usize> {
        scalar::masked_argmax(logits, mask)
    }
}

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// The row loop shared by the default `gemv_*` methods.
#[inline(always)]
pub(crate) fn gemv_by_rows<W, A>(w: &[W], x: &[A], out: &mut [f32], dot: impl Fn(&[W], &[A]) -> f32) {
    check_gemv(w.len(), x.len(), out.len());
    if x.is_empty() {
        out.fill(0.0);
        return;
    }
    for (row, o) in w.chunks_exact(x.len()).zip(out.iter_mut()) {
        *o = dot(row, x);
    }
}

/// The vector loop shared by the default `gemm_*` methods: one GEMV per
/// activation vector.
#[inline(always)]
pub(crate) fn gemm_by_vectors<W, A>(
    w: &[W],
    x: &[A],
    nb: usize,
    out: &mut [f32],
    gemv: impl Fn(&[W], &[A], &mut [f32]),
) {
    let (rows, vectors) = check_gemm(w.len(), x.len(), nb, out.len());
    if rows == 0 {
        return;
    }
    for (t, o) in out.chunks_exact_mut(rows).enumerate().take(vectors) {
        gemv(w, &x[t * nb..(t + 1) * nb], o);
    }
}

/// `(rows, vectors)` of a batched product, or a panic when the lengths do
/// not describe `rows x nb` weight blocks, `vectors x nb` activation blocks
/// and `vectors x rows` outputs.
#[inline(always)]
pub(crate) fn check_gemm(w_blocks: usize, x_blocks: usize, nb: usize, out_len: usize) -> (usize, usize) {
    assert!(nb > 0, "gemm: rows of zero blocks");
    assert!(
        w_blocks % nb == 0 && x_blocks % nb == 0,
        "gemm: {w_blocks} weight or {x_blocks} activation blocks are not rows of {nb}"
    );
    let (rows, vectors) = (w_blocks / nb, x_blocks / nb);
    assert_eq!(Some(out_len), rows.checked_mul(vectors), "gemm: output of {out_len} for {vectors} x {rows}");
    (rows, vectors)
}

/// Panics unless `w_blocks == x_blocks * rows`.
#[inline(always)]
pub(crate) fn check_gemv(w_blocks: usize, x_blocks: usize, rows: usize) {
    assert_eq!(
        Some(w_blocks),
        x_blocks.checked_mul(rows),
        "gemv: {w_blocks} weight blocks are not {rows} rows of {x_blocks} blocks"
    );
}

/// The best kernel set for this machine (see the module documentation).
#[inline]
pub fn best() -> &'static dyn Kernels {
    imp::best()
}

/// Every kernel set that runs on this machine, scalar first. For tests and
/// benchmarks that compare implementations.
#[allow(unused_mut)] // only some targets have a second set
pub fn available() -> impl Iterator<Item = &'static dyn Kernels> {
    let mut sets: [Option<&'static dyn Kernels>; 2] = [Some(&scalar::Scalar), None];
    #[cfg(target_arch = "x86_64")]
    {
        sets[1] = crate::x86_64::avx2::Avx2::get().map(|k| k as &'static dyn Kernels);
    }
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    {
        sets[1] = Some(crate::aarch64::neon::Neon::get());
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        sets[1] = Some(crate::wasm32::simd128::Simd128::get());
    }
    sets.into_iter().flatten()
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
mod imp {
    use super::Kernels;
    use crate::scalar::Scalar;
    use crate::x86_64::avx2::Avx2;
    use core::sync::atomic::{AtomicU8, Ordering};

    const UNKNOWN: u8 = 0;
    const SCALAR: u8 = 1;
    const AVX2: u8 = 2;

    static CHOICE: AtomicU8 = AtomicU8::new(UNKNOWN);

    #[cold]
    fn detect() -> u8 {
        let forced_scalar = std::env::var_os("FORMWORK_KERNELS").is_some_and(|v| v == "scalar");
        let choice = if !forced_scalar && Avx2::is_available() { AVX2 } else { SCALAR };
        // Racing threads compute the same answer; any store wins.
        CHOICE.store(choice, Ordering::Relaxed);
        choice
    }

    #[inline]
    pub(super) fn best() -> &'static dyn Kernels {
        let mut choice = CHOICE.load(Ordering::Relaxed);
        if choice == UNKNOWN {
            choice = detect();
        }
        if choice == AVX2 {
            if let Some(k) = Avx2::get() {
                return k;
            }
        }
        &Scalar
    }
}

#[cfg(all(target_arch = "x86_64", not(feature = "std")))]
mod imp {
    use super::Kernels;

    #[inline]
    pub(super) fn best() -> &'static dyn Kernels {
        match crate::x86_64::avx2::Avx2::get() {
            Some(k) => k,
            None => &crate::scalar::Scalar,
        }
    }
}

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod imp {
    use super::Kernels;

    #[inline]
    pub(super) fn best() -> &'static dyn Kernels {
        #[cfg(feature = "std")]
        {
            if super::forced_scalar() {
                return &crate::scalar::Scalar;
            }
        }
        crate::aarch64::neon::Neon::get()
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use super::Kernels;

    #[inline]
    pub(super) fn best() -> &'static dyn Kernels {
        crate::wasm32::simd128::Simd128::get()
    }
}

#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon"),
    all(target_arch = "wasm32", target_feature = "simd128")
)))]
mod imp {
    use super::Kernels;

    #[inline]
    pub(super) fn best() -> &'static dyn Kernels {
        &crate::scalar::Scalar
    }
}

/// `FORMWORK_KERNELS=scalar`, read once.
#[cfg(all(target_arch = "aarch64", target_feature = "neon", feature = "std"))]
fn forced_scalar() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| std::env::var_os("FORMWORK_KERNELS").is_some_and(|v| v == "scalar"))
}

// ---------------------------------------------------------------------------
// The safe public API: free functions over the best kernel set.
// ---------------------------------------------------------------------------

/// `Σ w x` for a Q4_0 weight row and a Q8_0 activation (best kernel set).
///
/// # Panics
///
/// When `x.len() != y.len()`.
#[inline]
pub fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    best().dot_q4_0_q8_0(x, y)
}

/// `Σ w x` for a Q4_1 weight row and a Q8_1 activation (best kernel set).
///
/// # Panics
///
/// When `x.len() != y.len()`.
#[inline]
pub fn dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    best().dot_q4_1_q8_1(x, y)
}

/// `Σ w x` for a Q5_0 weight row and a Q8_0 activation (best kernel set).
///
/// # Panics
///
/// When `x.len() != y.len()`.
#[inline]
pub fn dot_q5_0_q8_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    best().dot_q5_0_q8_0(x, y)
}

/// `Σ w x` for a Q8_0 weight row and a Q8_0 activation (best kernel set).
///
/// # Panics
///
/// When `x.len() != y.len()`.
#[inline]
pub fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    best().dot_q8_0_q8_0(x, y)
}

/// `Σ w x` for a Q4_K weight row and a Q8_K activation (best kernel set).
///
/// # Panics
///
/// When `x.len() != y.len()`.
#[inline]
pub fn dot_q4k_q8k(x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    best().dot_q4k_q8k(x, y)
}

/// `Σ w x` for a Q5_K weight row and a Q8_K activation (best kernel set).
///
/// # Panics
///
/// When `x.len() != y.len()`.
#[inline]
pub fn dot_q5k_q8k(x: &[BlockQ5K], y: &[BlockQ8K]) -> f32 {
    best().dot_q5k_q8k(x, y)
}

/// `Σ w x` for a Q6_K weight row and a Q8_K activation (best kernel set).
///
/// # Panics
///
/// When `x.len() != y.len()`.
#[inline]
pub fn dot_q6k_q8k(x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    best().dot_q6k_q8k(x, y)
}

/// Sets the logits of disallowed tokens to `-inf` (best kernel set;
/// bit-exact with [`scalar::apply_mask_f32`]).
///
/// Token `i` is allowed iff bit `i % 32` of `mask[i / 32]` is set; tokens
/// beyond `32 * mask.len()` are disallowed.
#[inline]
pub fn apply_mask_f32(logits: &mut [f32], mask: &[u32]) {
    best().apply_mask_f32(logits, mask)
}

/// The allowed token with the largest logit, ties to the smallest index,
/// NaN never chosen (best kernel set; same answer as
/// [`scalar::masked_argmax`]).
#[inline]
pub fn masked_argmax(logits: &[f32], mask: &[u32]) -> Option<usize> {
    best().masked_argmax(logits, mask)
}
