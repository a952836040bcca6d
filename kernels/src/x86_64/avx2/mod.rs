//! The AVX2 + FMA + F16C kernel set.
//!
//! [`Avx2`] is a token: holding one proves the CPU has the three features,
//! which is what makes its safe [`Kernels`] methods sound. Get it with
//! [`Avx2::get`] (checks the CPU, cached by the standard library) — never
//! by compiling with `target-cpu=native`, so the same binary runs scalar
//! code on older CPUs.
//!
//! Files mirror the other ISA folders: `dot.rs` (quantized dot products),
//! `gemv.rs` (multi-row matrix-vector kernels), `mask.rs` (logit masking).

mod dot;
mod gemv;
mod mask;

use crate::dispatch::{sealed::Sealed, Kernels};
use crate::quant::{BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1};

/// Proof that the CPU supports AVX2, FMA and F16C.
#[derive(Clone, Copy, Debug)]
pub struct Avx2 {
    _private: (),
}

static AVX2: Avx2 = Avx2 { _private: () };

impl Avx2 {
    /// Whether this CPU supports AVX2, FMA and F16C (run-time detection
    /// with `std`; without it, whether the build enables them).
    #[inline]
    pub fn is_available() -> bool {
        #[cfg(feature = "std")]
        {
            std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
        }
        #[cfg(not(feature = "std"))]
        {
            cfg!(all(target_feature = "avx2", target_feature = "fma", target_feature = "f16c"))
        }
    }

    /// The kernel set, if this CPU can run it.
    #[inline]
    pub fn get() -> Option<&'static Avx2> {
        if Avx2::is_available() {
            Some(&AVX2)
        } else {
            None
        }
    }

    /// The kernel set, without checking the CPU.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2, FMA and F16C; calling any method otherwise
    /// is undefined behavior.
    #[inline]
    pub unsafe fn get_unchecked() -> &'static Avx2 {
        &AVX2
    }
}

impl Sealed for Avx2 {}

// SAFETY (every method below): an `Avx2` value exists only through `get`
// (which checked the CPU) or `get_unchecked` (whose caller promised it), so
// the `target_feature` functions called here run on a CPU that has AVX2, FMA
// and F16C. Memory safety of the kernels themselves rests on slice bounds,
// argued at each load.
impl Kernels for Avx2 {
    fn name(&self) -> &'static str {
        "avx2"
    }

    fn dot_q4_0_q8_0(&self, x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
        // SAFETY: see the impl comment.
        unsafe { dot::dot_q4_0_q8_0(x, y) }
    }
    fn dot_q4_1_q8_1(&self, x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
        // SAFETY: see the impl comment.
        unsafe { dot::dot_q4_1_q8_1(x, y) }
    }
    fn dot_q5_0_q8_0(&self, x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
        // SAFETY: see the impl comment.
        unsafe { dot::dot_q5_0_q8_0(x, y) }
    }
    fn dot_q8_0_q8_0(&self, x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
        // SAFETY: see the impl comment.
        unsafe { dot::dot_q8_0_q8_0(x, y) }
    }
    fn dot_q4k_q8k(&self, x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
        // SAFETY: see the impl comment.
        unsafe { dot::dot_q4k_q8k(x, y) }
    }
    fn dot_q5k_q8k(&self, x: &[BlockQ5K], y: &[BlockQ8K]) -> f32 {
        // SAFETY: see the impl comment.
        unsafe { dot::dot_q5k_q8k(x, y) }
    }
    fn dot_q6k_q8k(&self, x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
        // SAFETY: see the impl comment.
        unsafe { dot::dot_q6k_q8k(x, y) }
    }

    fn gemv_q4_0(&self, w: &[BlockQ4_0], x: &[BlockQ8_0], out: &mut [f32]) {
        // SAFETY: see the impl comment.
        unsafe { gemv::gemv_q4_0(w, x, out) }
    }
    fn gemv_q4_1(&self, w: &[BlockQ4_1], x: &[BlockQ8_1], out: &mut [f32]) {
        // SAFETY: see the impl comment.
        unsafe { gemv::gemv_q4_1(w, x, out) }
    }
    fn gemv_q5_0(&self, w: &[BlockQ5_0], x: &[BlockQ8_0], out: &mut [f32]) {
        // SAFETY: see the impl comment.
        unsafe { gemv::gemv_q5_0(w, x, out) }
    }
    fn gemv_q8_0(&self, w: &[BlockQ8_0], x: &[BlockQ8_0], out: &mut [f32]) {
        // SAFETY: see the impl comment.
        unsafe { gemv::gemv_q8_0(w, x, out) }
    }
    fn gemv_q4k(&self, w: &[BlockQ4K], x: &[BlockQ8K], out: &mut [f32]) {
        // SAFETY: see the impl comment.
        unsafe { gemv::gemv_q4k(w, x, out) }
    }
    fn gemv_q5k(&self, w: &[BlockQ5K], x: &[BlockQ8K], out: &mut [f32]) {
        // SAFETY: see the impl comment.
        unsafe { gemv::gemv_q5k(w, x, out) }
    }
    fn gemv_q6k(&self, w: &[BlockQ6K], x: &[BlockQ8K], out: &mut [f32]) {
        // SAFETY: see the impl comment.
        unsafe { gemv::gemv_q6k(w, x, out) }
    }

    fn gemm_q4_0(&self, w: &[BlockQ4_0], x: &[BlockQ8_0], nb: usize, out: &mut [f32]) {
        // SAFETY: see the impl comment.
        unsafe { gemv::gemm_q4_0(w, x, nb, out) }
    }
    fn gemm_q4_1(&self, w: &[BlockQ4_1], x: &[BlockQ8_1], nb: usize, out: &mut [f32]) {
        // SAFETY: see the impl comment.
        unsafe { gemv::gemm_q4_1(w, x, nb, out) }
    }
    fn gemm_q5_0(&self, w: &[BlockQ5_0], x: &[BlockQ8_0], nb: usize, out: &mut [f32]) {
        // SAFETY: see the impl comment.
        unsafe { gemv::gemm_q5_0(w, x, nb, out) }
    }
    fn gemm_q8_0(&self, w: &[BlockQ8_0], x: &[BlockQ8_0], nb: usize, out: &mut [f32]) {
        // SAFETY: see the impl comment.
        unsafe { gemv::gemm_q8_0(w, x, nb, out) }
    }

    fn apply_mask_f32(&self, logits: &mut [f32], mask: &[u32]) {
        // SAFETY: see the impl comment.
        unsafe { mask::apply_mask_f32(logits, mask) }
    }
    fn masked_argmax(&self, logits: &[f32], mask: &[u32]) -> Option<usize> {
        // SAFETY: see the impl comment.
        unsafe { mask::masked_argmax(logits, mask) }
    }
}
