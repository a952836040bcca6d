//! # formwork
//!
//! Small language models that answer in the shape you give them.
//! The grammar engine lives in [`grammar`]; numeric kernels in [`kernels`].

pub use formwork_grammar as grammar;
pub use formwork_kernels as kernels;
