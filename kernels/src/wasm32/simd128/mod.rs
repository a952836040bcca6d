//! The wasm `simd128` kernel set.
//!
//! A wasm module cannot ask the engine which instructions it supports: a
//! module using SIMD fails to validate on an engine without it. So this set
//! is chosen by the build (`-C target-feature=+simd128`, set for wasm32 in
//! the workspace's `.cargo/config.toml`), and this module only exists in
//! such builds. Every browser shipped since 2021 and Node.js 16+ run it.
//!
//! wasm SIMD has no `pmaddubsw`; the dot products widen with
//! `i16x8.extmul_{low,high}_i8x16` and sum pairs with
//! `i32x4.extadd_pairwise_i16x8`.
//!
//! Files mirror the other ISA folders: `dot.rs`, `gemv.rs`, `mask.rs`.

mod dot;
mod gemv;
mod mask;

use crate::dispatch::{sealed::Sealed, Kernels};
use crate::quant::{BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1};

/// Proof that the module was built with `simd128` (always, where this type
/// exists).
#[derive(Clone, Copy, Debug)]
pub struct Simd128 {
    _private: (),
}

static SIMD128: Simd128 = Simd128 { _private: () };

impl Simd128 {
    /// Always true: this module is only compiled with `simd128`.
    #[inline]
    pub fn is_available() -> bool {
        true
    }

    /// The kernel set.
    #[inline]
    pub fn get() -> &'static Simd128 {
        &SIMD128
    }
}

impl Sealed for Simd128 {}

// SAFETY (every method below): this module compiles only with the
// `simd128` target feature, which the engine validated when it loaded the
// module. Memory safety of the kernels rests on slice bounds, argued at each
// load.
impl Kernels for Simd128 {
    fn name(&self) -> &'static str {
        "simd128"
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
