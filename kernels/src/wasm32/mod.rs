//! wasm32 kernels: [`simd128`], compiled when the build enables the
//! `simd128` target feature (wasm has no run-time feature detection).

pub mod simd128;
