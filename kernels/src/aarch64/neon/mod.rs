//! The NEON kernel set (aarch64).
//!
//! NEON is part of the aarch64 base architecture, so [`Neon`] is always
//! available where this module compiles (targets with the `neon` feature:
//! every aarch64 target but the soft-float ones). The kernels use only base
//! NEON (`smull` + `sadalp` for the integer dot products), not the
//! optional `dotprod` extension, so they run on every such CPU.
//!
//! Files mirror the other ISA folders: `dot.rs`, `gemv.rs`, `mask.rs`.

mod dot;
mod gemv;
mod mask;

use crate::dispatch::{sealed::Sealed, Kernels};
use crate::quant::{BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1};

/// Proof that the CPU supports NEON (always, on the targets this module is
/// compiled for).
#[derive(Clone, Copy, Debug)]
pub struct Neon {
    _private: (),
}

static NEON: Neon = Neon { _private: () };

impl Neon {
    /// Always true: this module is only compiled with the `neon` target
    /// feature.
    #[inline]
    pub fn is_available() -> bool {
        true
    }

    /// The kernel set.
    #[inline]
    pub fn get() -> &'static Neon {
        &NEON
    }
}

impl Sealed for Neon {}

// SAFETY (every method below): this module compiles only for targets with
// the `neon` feature, so the `target_feature(enable = "neon")` functions
// called here run on a CPU that has it. Memory safety of the kernels rests
// on slice bounds, argued at each load.
impl Kernels for Neon {
    fn name(&self) -> &'static str {
        "neon"
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

    fn apply_mask_f32(&self, logits: &mut [f32], mask: &[u32]) {
        // SAFETY: see the impl comment.
        unsafe { mask::apply_mask_f32(logits, mask) }
    }
    fn masked_argmax(&self, logits: &[f32], mask: &[u32]) -> Option<usize> {
        // SAFETY: see the impl comment.
        unsafe { mask::masked_argmax(logits, mask) }
    }
}
