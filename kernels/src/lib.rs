//! # formwork-kernels
//!
//! The hot numeric loops of a quantized small-model decoder, on plain
//! slices: quantized dot products and matrix-vector products (GEMV) over
//! GGUF's block formats, activation quantization, and the logit path of
//! constrained decoding (apply a token bitmask, masked argmax, sampling over
//! the allowed tokens only). No ML framework, no dependencies.
//!
//! Every kernel has a scalar reference in [`scalar`] and, where it pays, a
//! vectorized version per architecture: x86-64 AVX2+FMA+F16C (chosen at run
//! time), aarch64 NEON, wasm32 `simd128`. The free functions at the crate
//! root use the best set for the running machine ([`dispatch`]).
//!
//! ## One decode step, in kernels
//!
//! ```
//! use formwork_kernels::{
//!     gemv, masked_argmax, quant::{ActivationType, BlockQ4_1, QuantType},
//!     scalar, QuantMatrix, QuantizedVector,
//! };
//!
//! // A 64 x 64 Q4_1 weight matrix (in a model: borrowed from the GGUF file
//! // with `QuantMatrix::from_bytes`).
//! let (rows, cols) = (64, 64);
//! let weights: Vec<f32> = (0..rows * cols).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
//! let mut blocks = vec![BlockQ4_1::default(); rows * cols / 32];
//! scalar::quantize_q4_1(&weights, &mut blocks);
//! let w = QuantMatrix::new(formwork_kernels::WeightBlocks::Q4_1(&blocks), rows, cols).unwrap();
//!
//! // Quantize the activation once, in the format Q4_1 pairs with (Q8_1).
//! let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.1).sin()).collect();
//! let xq = QuantizedVector::quantize(QuantType::Q4_1.activation(), &x);
//! assert_eq!(xq.kind(), ActivationType::Q8_1);
//!
//! // logits = W x
//! let mut logits = vec![0.0f32; rows];
//! gemv(&w, &xq, &mut logits);
//!
//! // The grammar allows tokens 3, 5 and 40: bit i of word i / 32.
//! let mask = [(1u32 << 3) | (1 << 5), 1 << (40 - 32)];
//! let token = masked_argmax(&logits, &mask).unwrap();
//! assert!([3, 5, 40].contains(&token));
//! ```
//!
//! ## Key types and functions
//!
//! - [`quant`]: the block structs ([`quant::BlockQ4_1`], …), `#[repr(C)]`
//!   and byte-identical to GGML's, viewable in place in any byte buffer
//!   ([`quant::cast_blocks`]); [`quant::QuantType`] and the activation
//!   format each weight type pairs with.
//! - [`QuantMatrix`] (a borrowed `rows x cols` view of weight blocks),
//!   [`QuantizedVector`] (an activation quantized to Q8_0, Q8_1 or Q8_K),
//!   [`gemv`]; [`gemm`] for a batch of vectors (prefill: the weights are
//!   read once per batch, results equal to [`gemv`] bit for bit); with
//!   `std`, [`ThreadPool`], [`gemv_parallel`], [`gemv_parallel_many`]
//!   (several products in one pool wake-up), [`gemm_parallel`] and
//!   [`gemm_parallel_many`].
//! - Dot products on block slices: [`dot_q4_0_q8_0`], [`dot_q4_1_q8_1`],
//!   [`dot_q5_0_q8_0`], [`dot_q8_0_q8_0`], [`dot_q4k_q8k`], [`dot_q5k_q8k`],
//!   [`dot_q6k_q8k`].
//! - The logit path: [`apply_mask_f32`], [`masked_argmax`],
//!   [`scalar::AllowedTokens`]; with `std`, [`Candidates`] and
//!   [`sample_masked`] (temperature, top-k, top-p over the allowed set only).
//! - [`dispatch::Kernels`]: one implementation of everything; get the best
//!   with [`dispatch::best`], or a specific one ([`scalar::Scalar`],
//!   `x86_64::avx2::Avx2::get()`, …) to compare or benchmark.
//!
//! ## The token mask
//!
//! A mask is a `&[u32]`: token `i` is allowed iff bit `i % 32` of word
//! `i / 32` is set (the layout of `formwork-grammar`'s `TokenMask`; this
//! crate does not depend on it). Tokens at or beyond `32 * mask.len()` are
//! disallowed; bits at or beyond the number of logits are ignored. The mask
//! kernels are bit-exact across implementations: `apply_mask_f32` writes
//! `-inf` to exactly the disallowed logits, `masked_argmax` returns the
//! same index (largest allowed logit, smallest index on ties, NaN never).
//!
//! ## Dispatch
//!
//! On x86-64 with the `std` feature the CPU is asked once whether it has
//! AVX2, FMA and F16C (`is_x86_feature_detected!`), the answer is cached,
//! and the same binary runs the AVX2 kernels there and the scalar ones
//! elsewhere: a plain `cargo build --release` is fast, `target-cpu=native`
//! is never needed. NEON is always present on aarch64; `simd128` is chosen
//! by the build for wasm32 (`-C target-feature=+simd128`).
//! `FORMWORK_KERNELS=scalar` in the environment forces the scalar set.
//!
//! ## Tolerances
//!
//! Within a block, every implementation sums the integer products exactly;
//! they differ only in how the per-block (or per-lane) f32 terms are scaled
//! and added. For `n` blocks and `M = Σ |w_i x_i|`, the tests hold every
//! vectorized dot product and GEMV row to `(n + 16) * 2^-22 * M` of the
//! scalar one, and the scalar one to the same bound of an f64 dot product of
//! the dequantized values (plus the f16 rounding of Q8_1's `s` for Q4_1).
//! In practice the differences are a few ulps of the largest term. GEMV rows
//! do not depend on how rows are grouped, so [`gemv_parallel`] equals
//! [`gemv`] bit for bit. Mask kernels and activation quantizers are exact.
//! `docs/kernels.md` derives the bound.
//!
//! ## Cargo features
//!
//! - `std` (default): run-time CPU detection, the thread pool, the
//!   parallel GEMV and the sampler (which needs `exp`). Without it the crate
//!   is `no_std` + `alloc`.
//!
//! ## Unsafe code
//!
//! This crate uses `unsafe` for three things, and only in these places:
//! SIMD intrinsics (in `x86_64/`, `aarch64/`, `wasm32/`: each kernel is an
//! `unsafe fn` with `#[target_feature]` whose `# Safety` section states the
//! CPU requirement, called only through a token type that proves it),
//! viewing byte buffers as blocks ([`quant::cast_blocks`], sound because
//! every block type has alignment 1 and no invalid bit patterns), and the
//! thread pool's lifetime-erased job pointer plus the disjoint output
//! slices of the parallel GEMV. Every `unsafe` block carries a `SAFETY:`
//! comment. The workspace warns on `unsafe_code`; this crate allows it.

#![cfg_attr(not(feature = "std"), no_std)]
// The crate's purpose is SIMD and zero-copy views; see "Unsafe code" above.
#![allow(unsafe_code)]

extern crate alloc;

pub mod dispatch;
mod error;
pub mod f16;
mod gemv;
#[cfg(feature = "std")]
pub mod pool;
pub mod quant;
pub mod scalar;

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub mod aarch64;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod wasm32;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(test)]
mod tests;

pub use dispatch::{
    apply_mask_f32, dot_q4_0_q8_0, dot_q4_1_q8_1, dot_q4k_q8k, dot_q5_0_q8_0, dot_q5k_q8k, dot_q6k_q8k, dot_q8_0_q8_0,
    masked_argmax, Kernels,
};
pub use error::Error;
pub use f16::F16;
pub use gemv::{gemm, gemm_with, gemv, gemv_with, QuantMatrix, QuantizedVector, WeightBlocks};
#[cfg(feature = "std")]
pub use gemv::{
    gemm_parallel, gemm_parallel_many, gemm_parallel_with, gemv_parallel, gemv_parallel_many, gemv_parallel_with,
    GemvTask,
};
#[cfg(feature = "std")]
pub use pool::ThreadPool;
#[cfg(feature = "std")]
pub use scalar::sample::{log_sum_exp, sample_masked, Candidate, Candidates, SamplingParams};
