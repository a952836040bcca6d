//! The Llama-family decoder over quantized GGUF weights, its KV cache and
//! batched prefill.
