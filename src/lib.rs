//! # formwork
//!
//! Small language models that answer in the shape you give them.
//!
//! The grammar engine lives in [`grammar`] (the `formwork-grammar` crate);
//! numeric kernels in [`kernels`] (`formwork-kernels`). The inference loop,
//! model loading and the CLI arrive in this crate as they land.

pub use formwork_grammar as grammar;
pub use formwork_kernels as kernels;

mod clock;
mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod fetch;
pub mod generate;
pub mod model;
pub mod tasks;
pub mod tokenizer;
pub mod weights;

pub use error::Error;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
