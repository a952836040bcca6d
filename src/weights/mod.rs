//! Model files → named tensors and metadata.
//!
//! Where this sits: the first stage of the model side. A file's bytes (a
//! memory map on native, bytes handed over by JavaScript in wasm32) are
//! parsed into a validated header — metadata and tensor infos — from which
//! the tokenizer reads its vocabulary and the model loader borrows each
//! tensor's bytes without copying them.
//!
//! - [`gguf`]: llama.cpp's GGUF (versions 2 and 3), the format of the
//!   default model. Parsing validates every field against the input's size
//!   before use; see the module's "Input safety" section.
//! - [`gguf_write`]: the GGUF encoder (a valid file built in memory, or raw
//!   header pieces for tests).
//! - [`safetensors`]: the safetensors format (F32/F16/BF16 checkpoints),
//!   validated like GGUF.
//! - [`checkpoint`]: a Hugging Face checkpoint directory (`config.json` +
//!   safetensors) converted on load into the GGUF the model reads,
//!   quantizing its matrices.
//!
//! The memory a model will need (weights plus KV cache for a context length)
//! is known from the header alone: [`Gguf::memory_estimate`].

pub mod checkpoint;
pub mod gguf;
pub mod gguf_write;
pub mod safetensors;

#[cfg(not(target_arch = "wasm32"))]
pub use gguf::MappedGguf;
pub use gguf::{Array, GgmlType, Gguf, KvCacheShape, MemoryEstimate, Strings, TensorInfo, Value};

mod storage;

pub use checkpoint::{Checkpoint, Quantize, SafetensorsOptions};
pub use storage::WeightFile;
