//! The scalar reference implementations, always compiled.
//!
//! These are the oracles: every vectorized kernel is tested against the
//! function of the same name here, and these are tested against plain f32
//! arithmetic on dequantized values. They are also what runs where no
//! vectorized set exists (wasm without `simd128`, other architectures), so
//! they are written to let the compiler vectorize them where it can.

mod dot;
mod mask;
mod quantize;
#[cfg(feature = "std")]
pub mod sample;

pub use dot::{dot_q4_0_q8_0, dot_q4_1_q8_1, dot_q4k_q8k, dot_q5_0_q8_0, dot_q5k_q8k, dot_q6k_q8k, dot_q8_0_q8_0};
pub use mask::{apply_mask_f32, count_allowed, masked_argmax, AllowedTokens};
pub use quantize::{
    dequantize_q4_0, dequantize_q4_1, dequantize_q4k, dequantize_q5_0, dequantize_q5k, dequantize_q6k, dequantize_q8_0,
    dequantize_q8_1, dequantize_q8k, quantize_q4_0, quantize_q4_1, quantize_q5_0, quantize_q8_0, quantize_q8_1,
    quantize_q8k,
};

use crate::dispatch::{sealed::Sealed, Kernels};

/// The scalar kernel set (every [`Kernels`] method at its default).
#[derive(Clone, Copy, Debug, Default)]
pub struct Scalar;

impl Sealed for Scalar {}

impl Kernels for Scalar {
    fn name(&self) -> &'static str {
        "scalar"
    }
}
