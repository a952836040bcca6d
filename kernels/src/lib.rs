//! # formwork-kernels
//!
//! Hot numeric loops (quantized dot products, GEMV, logit masking, sampling)
//! with a scalar reference and per-architecture vectorized versions.
