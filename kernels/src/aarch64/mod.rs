//! aarch64 kernels: [`neon`] (part of the base architecture, always used).

pub mod neon;
