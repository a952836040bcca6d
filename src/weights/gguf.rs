//! GGUF, llama.cpp's model file format: read and validated before use.
//!
//! Where this sits: bytes (a memory map on native, a `Uint8Array` from
//! JavaScript in the browser) → [`Gguf::parse`] → typed metadata ([`Value`])
//! and tensor infos ([`TensorInfo`]: name, dims, [`GgmlType`], absolute byte
//! range) → the model loader, which borrows each tensor's bytes with
//! [`Gguf::tensor_bytes`]. Parsing copies the metadata (small, apart from the
//! tokenizer's arrays) and never the tensor data.
//!
//! # The format (versions 2 and 3, little-endian)
//!
//! ```text
//! magic "GGUF" | version: u32 | tensor_count: u64 | metadata_kv_count: u64
//! metadata_kv_count × { key: string, value_type: u32, value }
//! tensor_count      × { name: string, n_dims: u32, dims: [u64; n_dims],
//!                       ggml_type: u32, offset: u64 }
//! zero padding up to a multiple of `general.alignment` (default 32)
//! tensor data: tensor i at data_start + offset_i (a multiple of the alignment)
//!
//! string = len: u64, then len bytes of UTF-8
//! value  = u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64 (type ids 0..=12)
//! array  = element_type: u32, len: u64, then len values of that type
//! ```
//!
//! `dims` are in GGML order: `dims[0]` is the row length (the fastest-varying
//! index), so a `[rows, cols]` matrix is stored with `dims = [cols, rows]`.
//!
//! # Input safety
//!
//! A GGUF file is untrusted input. Every count, length, type id, dimension,
//! offset and extent is checked against the bytes that are actually there
//! (and against [`Limits`]) before it is used, with checked arithmetic. A
//! truncated, oversized or inconsistent file is an [`Error`] naming the field
//! and its byte offset — never a panic, an overflow, or an allocation sized by
//! a number in the file. Counts are capped by the bytes left (a `u64::MAX`
//! string length or array length fails before any allocation), array nesting
//! is capped, and the memory a parse takes is at most a small multiple of the
//! input's size: scalar arrays are stored as packed `Vec`s (exactly their
//! encoded size), string arrays as one text buffer plus one offset per string
//! (at most the 8 bytes of the string's encoded length).
//!
//! Beyond the format itself, parsing checks what a loader relies on: keys and
//! tensor names are non-empty, valid UTF-8 and unique; bools are 0 or 1;
//! `general.alignment` is a `u32` power of two; a tensor has at most four
//! dimensions, a known [`GgmlType`], a row length that is a multiple of the
//! type's block, an element count below 2^63, an aligned offset, and its data
//! lies inside the input without overlapping another tensor's.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use crate::error::{ErrorKind, ShownBytes};
use crate::Error;

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";

/// The tensor data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u32 = 32;

/// The most dimensions a GGML tensor has (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// The metadata key that sets the tensor data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// Array nesting is read recursively; whatever [`Limits::max_array_depth`]
/// says, recursion never goes deeper than this.
const HARD_MAX_ARRAY_DEPTH: u32 = 64;

/// Smallest encoding of one metadata pair: key length, a one-byte key, the
/// value type, a one-byte value.
const MIN_KV_BYTES: u64 = 8 + 1 + 4 + 1;

/// Smallest encoding of one tensor info: name length, a one-byte name,
/// `n_dims`, `ggml_type`, `offset`.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 1 + 4 + 4 + 8;

/// Limits on what a GGUF file may make the parser do, beyond the input's own
/// size (which always caps every count and length).
///
/// Every field documents its default and what it bounds. The defaults accept
/// every model llama.cpp writes; lower them to parse hostile input with less
/// work (the fuzz target does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of tensors. Default 65,536 (a Llama-family model has
    /// about 9 per layer; merged-expert MoE files a few thousand). Each costs
    /// about 100 bytes plus its name.
    pub max_tensors: u64,
    /// Maximum number of metadata key-value pairs. Default 65,536 (models
    /// have 20 to 50). Each costs about 100 bytes plus its key and value.
    pub max_metadata_kvs: u64,
    /// Maximum length in bytes of one metadata string (keys included).
    /// Default 16 MiB (chat templates are a few KiB).
    pub max_string_len: u64,
    /// Maximum number of elements of one metadata array. Default 2^24
    /// (Gemma 3's vocabulary has 262,144 tokens).
    pub max_array_len: u64,
    /// Maximum nesting of metadata arrays: 1 allows arrays of scalars and
    /// strings, 2 arrays of such arrays, and so on; 0 refuses arrays.
    /// Default 4 (llama.cpp writes no nested arrays). Never more than 64 in
    /// effect: nesting is read recursively. An element array costs about
    /// 56 bytes of memory for its 12 bytes of input.
    pub max_array_depth: u32,
    /// Maximum length in bytes of a tensor name. Default 256 (GGML's own
    /// limit is 63).
    pub max_tensor_name_len: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_tensors: 1 << 16,
            max_metadata_kvs: 1 << 16,
            max_string_len: 16 << 20,
            max_array_len: 1 << 24,
            max_array_depth: 4,
            max_tensor_name_len: 256,
        }
    }
}

/// A GGML tensor element type: how a tensor's elements are encoded, in blocks
/// of [`block_len`](GgmlType::block_len) elements taking
/// [`block_bytes`](GgmlType::block_bytes) bytes each.
///
/// The i-quants (`iq2_xxs`, …), ternary and FP4 types are not listed: a file
/// that uses them is refused at parse time, naming the type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GgmlType {
    /// 32-bit float (id 0).
    F32,
    /// IEEE half float (id 1).
    F16,
    /// 32 weights: f16 scale, 16 bytes of 4-bit quants (id 2).
    Q4_0,
    /// 32 weights: f16 scale and min, 16 bytes of 4-bit quants (id 3).
    Q4_1,
    /// 32 weights: f16 scale, 4 bytes of high bits, 16 bytes of low nibbles (id 6).
    Q5_0,
    /// 32 weights: f16 scale and min, high bits, low nibbles (id 7).
    Q5_1,
    /// 32 weights: f16 scale, 32 signed bytes (id 8).
    Q8_0,
    /// 32 weights: f16 scale and sum, 32 signed bytes (id 9).
    Q8_1,
    /// 256-weight super-block of 2-bit quants (id 10).
    Q2K,
    /// 256-weight super-block of 3-bit quants (id 11).
    Q3K,
    /// 256-weight super-block of 4-bit quants (id 12).
    Q4K,
    /// 256-weight super-block of 5-bit quants (id 13).
    Q5K,
    /// 256-weight super-block of 6-bit quants (id 14).
    Q6K,
    /// 256-weight super-block of 8-bit quants with f32 scale and block sums (id 15).
    Q8K,
    /// Signed 8-bit integer (id 24).
    I8,
    /// Signed 16-bit integer (id 25).
    I16,
    /// Signed 32-bit integer (id 26).
    I32,
    /// Signed 64-bit integer (id 27).
    I64,
    /// 64-bit float (id 28).
    F64,
    /// bfloat16 (id 30).
    BF16,
}

impl GgmlType {
    /// Every supported type.
    pub const ALL: [GgmlType; 20] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2K,
        GgmlType::Q3K,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
        GgmlType::Q8K,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::BF16,
    ];

    /// The type with this `ggml_type` id, if supported.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        GgmlType::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The `ggml_type` id stored in GGUF tensor infos.
    pub fn id(self) -> u32 {
        self.traits().0
    }

    /// GGML's name for the type (`"f32"`, `"q4_0"`, `"q4_K"`, …).
    pub fn name(self) -> &'static str {
        self.traits().1
    }

    /// Elements per block.
    pub fn block_len(self) -> u64 {
        self.traits().2
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> u64 {
        self.traits().3
    }

    /// The `formwork-kernels` weight format with this layout, if the kernels
    /// compute with it directly.
    pub fn quant_type(self) -> Option<crate::kernels::quant::QuantType> {
        crate::kernels::quant::QuantType::from_ggml_id(self.id())
    }

    /// Bytes of `elements` elements, or `None` when `elements` is not a
    /// multiple of the block length or the size overflows.
    pub fn bytes_for(self, elements: u64) -> Option<u64> {
        if elements % self.block_len() != 0 {
            return None;
        }
        (elements / self.block_len()).checked_mul(self.block_bytes())
    }

    /// (id, name, block length, block bytes), as in GGML's `type_traits`.
    fn traits(self) -> (u32, &'static str, u64, u64) {
        const QK: u64 = 32;
        const QK_K: u64 = 256;
        match self {
            GgmlType::F32 => (0, "f32", 1, 4),
            GgmlType::F16 => (1, "f16", 1, 2),
            GgmlType::Q4_0 => (2, "q4_0", QK, 2 + QK / 2),
            GgmlType::Q4_1 => (3, "q4_1", QK, 2 * 2 + QK / 2),
            GgmlType::Q5_0 => (6, "q5_0", QK, 2 + 4 + QK / 2),
            GgmlType::Q5_1 => (7, "q5_1", QK, 2 * 2 + 4 + QK / 2),
            GgmlType::Q8_0 => (8, "q8_0", QK, 2 + QK),
            GgmlType::Q8_1 => (9, "q8_1", QK, 2 * 2 + QK),
            // scales[16], qs[64], d, dmin
            GgmlType::Q2K => (10, "q2_K", QK_K, QK_K / 16 + QK_K / 4 + 2 * 2),
            // hmask[32], qs[64], scales[12], d
            GgmlType::Q3K => (11, "q3_K", QK_K, QK_K / 8 + QK_K / 4 + 12 + 2),
            // d, dmin, scales[12], qs[128]
            GgmlType::Q4K => (12, "q4_K", QK_K, 2 * 2 + 12 + QK_K / 2),
            // d, dmin, scales[12], qh[32], qs[128]
            GgmlType::Q5K => (13, "q5_K", QK_K, 2 * 2 + 12 + QK_K / 8 + QK_K / 2),
            // ql[128], qh[64], scales[16], d
            GgmlType::Q6K => (14, "q6_K", QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2),
            // d: f32, qs[256], bsums: [i16; 16]
            GgmlType::Q8K => (15, "q8_K", QK_K, 4 + QK_K + QK_K / 16 * 2),
            GgmlType::I8 => (24, "i8", 1, 1),
            GgmlType::I16 => (25, "i16", 1, 2),
            GgmlType::I32 => (26, "i32", 1, 4),
            GgmlType::I64 => (27, "i64", 1, 8),
            GgmlType::F64 => (28, "f64", 1, 8),
            GgmlType::BF16 => (30, "bf16", 1, 2),
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// GGML's name for a type id this reader does not support (for messages).
fn unsupported_ggml_type_name(id: u32) -> Option<&'static str> {
    Some(match id {
        4 => "q4_2, removed from GGML",
        5 => "q4_3, removed from GGML",
        16 => "iq2_xxs",
        17 => "iq2_xs",
        18 => "iq3_xxs",
        19 => "iq1_s",
        20 => "iq4_nl",
        21 => "iq3_s",
        22 => "iq2_s",
        23 => "iq4_xs",
        29 => "iq1_m",
        31 => "q4_0_4_4, removed from GGUF",
        32 => "q4_0_4_8, removed from GGUF",
        33 => "q4_0_8_8, removed from GGUF",
        34 => "tq1_0",
        35 => "tq2_0",
        36 => "iq4_nl_4_4, removed from GGUF",
        37 => "iq4_nl_4_8, removed from GGUF",
        38 => "iq4_nl_8_8, removed from GGUF",
        39 => "mxfp4",
        40 => "nvfp4",
        41 => "q1_0",
        _ => return None,
    })
}

/// A metadata value.
///
/// Integers keep the width the file gave them; the `as_*` accessors (and
/// [`Gguf::get_u32`] and friends) convert between integer widths whenever the
/// value fits, since writers disagree on widths (`u32` or `i32` for a count).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Type id 0.
    U8(u8),
    /// Type id 1.
    I8(i8),
    /// Type id 2.
    U16(u16),
    /// Type id 3.
    I16(i16),
    /// Type id 4.
    U32(u32),
    /// Type id 5.
    I32(i32),
    /// Type id 6.
    F32(f32),
    /// Type id 7 (a byte that must be 0 or 1).
    Bool(bool),
    /// Type id 8 (UTF-8).
    String(String),
    /// Type id 9.
    Array(Array),
    /// Type id 10.
    U64(u64),
    /// Type id 11.
    I64(i64),
    /// Type id 12.
    F64(f64),
}

impl Value {
    /// The GGUF name of the value's type: `"u32"`, `"string"`, `"array"`, ….
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::F32(_) => "f32",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
        }
    }

    /// An integer of any width, as `i128` (which holds them all).
    fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// The value as a `u32`, if it is an integer that fits.
    pub fn as_u32(&self) -> Option<u32> {
        self.as_integer().and_then(|v| u32::try_from(v).ok())
    }

    /// The value as a `u64`, if it is an integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_integer().and_then(|v| u64::try_from(v).ok())
    }

    /// The value as an `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_integer().and_then(|v| i64::try_from(v).ok())
    }

    /// The value as an `f32`, if it is an `f32`.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The value as an `f64`, if it is an `f32` or an `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a `bool`, if it is a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(v) => Some(v),
            _ => None,
        }
    }

    /// The value as an array, if it is one.
    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }

    /// A short description for error messages: the type, and the value when
    /// it is a scalar (`"i32 -1"`, `"string"`, `"array of 3 u32"`).
    fn describe(&self) -> String {
        match self {
            Value::String(_) => "string".to_owned(),
            Value::Array(a) => format!("array of {} {}", a.len(), a.element_type_name()),
            Value::F32(v) => format!("f32 {v}"),
            Value::F64(v) => format!("f64 {v}"),
            Value::Bool(v) => format!("bool {v}"),
            other => match other.as_integer() {
                Some(v) => format!("{} {v}", other.type_name()),
                None => other.type_name().to_owned(),
            },
        }
    }
}

/// A metadata array: its elements stored packed by type.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    /// Elements of type id 0.
    U8(Vec<u8>),
    /// Elements of type id 1.
    I8(Vec<i8>),
    /// Elements of type id 2.
    U16(Vec<u16>),
    /// Elements of type id 3.
    I16(Vec<i16>),
    /// Elements of type id 4.
    U32(Vec<u32>),
    /// Elements of type id 5.
    I32(Vec<i32>),
    /// Elements of type id 6.
    F32(Vec<f32>),
    /// Elements of type id 7.
    Bool(Vec<bool>),
    /// Elements of type id 8 (a tokenizer's `tokens` and `merges`).
    String(Strings),
    /// Elements of type id 9: nested arrays, each with its own element type.
    Array(Vec<Array>),
    /// Elements of type id 10.
    U64(Vec<u64>),
    /// Elements of type id 11.
    I64(Vec<i64>),
    /// Elements of type id 12.
    F64(Vec<f64>),
}

// An element of a nested array takes at most this much memory for its 12
// bytes of input (the bound documented on `Limits::max_array_depth`).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Array>() <= 56);

impl Array {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The GGUF name of the element type (`"u32"`, `"string"`, `"array"`, …).
    pub fn element_type_name(&self) -> &'static str {
        match self {
            Array::U8(_) => "u8",
            Array::I8(_) => "i8",
            Array::U16(_) => "u16",
            Array::I16(_) => "i16",
            Array::U32(_) => "u32",
            Array::I32(_) => "i32",
            Array::F32(_) => "f32",
            Array::Bool(_) => "bool",
            Array::String(_) => "string",
            Array::Array(_) => "array",
            Array::U64(_) => "u64",
            Array::I64(_) => "i64",
            Array::F64(_) => "f64",
        }
    }

    /// The strings, if this is an array of strings.
    pub fn as_strings(&self) -> Option<&Strings> {
        match self {
            Array::String(v) => Some(v),
            _ => None,
        }
    }

    /// The elements, if this is an array of `u32`.
    pub fn as_u32(&self) -> Option<&[u32]> {
        match self {
            Array::U32(v) => Some(v),
            _ => None,
        }
    }

    /// The elements, if this is an array of `i32` (a tokenizer's `token_type`).
    pub fn as_i32(&self) -> Option<&[i32]> {
        match self {
            Array::I32(v) => Some(v),
            _ => None,
        }
    }

    /// The elements, if this is an array of `f32` (a tokenizer's `scores`).
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            Array::F32(v) => Some(v),
            _ => None,
        }
    }
}

/// An array of strings stored as one text buffer and one end offset per
/// string: 49,152 tokens are two allocations, not 49,152.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Strings {
    text: String,
    /// `ends[i]` is the end of string `i` in `text`; it starts where string
    /// `i - 1` ends (or at 0). Every end is a char boundary, since each
    /// string was pushed whole.
    ends: Vec<usize>,
}

impl Strings {
    fn with_capacity(n: usize) -> Strings {
        Strings { text: String::new(), ends: Vec::with_capacity(n) }
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no strings.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// String `i`, if `i < len()`.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)?,
            None => 0,
        };
        self.text.get(start..end)
    }

    /// The strings in order.
    pub fn iter(&self) -> StringsIter<'_> {
        StringsIter { strings: self, next: 0 }
    }
}

impl<S: AsRef<str>> FromIterator<S> for Strings {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Strings {
        let mut out = Strings::default();
        for s in iter {
            out.push(s.as_ref());
        }
        out
    }
}

impl fmt::Debug for Strings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Strings {
    type Item = &'a str;
    type IntoIter = StringsIter<'a>;

    fn into_iter(self) -> StringsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Strings`].
#[derive(Clone, Debug)]
pub struct StringsIter<'a> {
    strings: &'a Strings,
    next: usize,
}

impl<'a> Iterator for StringsIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.strings.get(self.next)?;
        self.next += 1;
        Some(s)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.strings.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for StringsIter<'_> {}

/// One tensor's description: where its data is and how to read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    name: String,
    n_dims: u8,
    dims: [u64; MAX_DIMS],
    ggml_type: GgmlType,
    offset: u64,
    range: Range<usize>,
}

impl TensorInfo {
    /// The tensor's name (`"blk.0.attn_q.weight"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dimensions in GGML order: `dims()[0]` is the row length.
    pub fn dims(&self) -> &[u64] {
        &self.dims[..usize::from(self.n_dims)]
    }

    /// The element type.
    pub fn ggml_type(&self) -> GgmlType {
        self.ggml_type
    }

    /// Number of elements (the product of the dims; below 2^63).
    pub fn element_count(&self) -> u64 {
        // Checked at parse time: the product fits in an i64.
        self.dims.iter().product()
    }

    /// The data's offset from the start of the data section, as stored.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The data's absolute byte range in the input (inside it: checked).
    pub fn byte_range(&self) -> Range<usize> {
        self.range.clone()
    }

    /// The data's length in bytes.
    pub fn byte_len(&self) -> usize {
        self.range.len()
    }
}

/// A parsed, validated GGUF header: metadata and tensor infos.
///
/// It holds no tensor data: [`Gguf::tensor_bytes`] borrows a tensor's bytes
/// from the buffer the header was parsed from. On native targets
/// [`Gguf::open`] memory-maps a file and keeps the map with the header.
#[derive(Clone, Debug)]
pub struct Gguf {
    version: u32,
    alignment: u32,
    metadata: Vec<(String, Value)>,
    metadata_index: BTreeMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: BTreeMap<String, usize>,
    data_offset: usize,
    file_len: usize,
}

impl Gguf {
    /// Parses and validates a GGUF file held in memory, with the default
    /// [`Limits`].
    ///
    /// # Errors
    ///
    /// When the input is not a valid GGUF v2/v3 file; the error names the
    /// field at fault and its byte offset (see the [module docs](self)).
    pub fn parse(bytes: &[u8]) -> Result<Gguf, Error> {
        Gguf::parse_with_limits(bytes, &Limits::default())
    }

    /// Parses and validates a GGUF file held in memory, within `limits`.
    ///
    /// # Errors
    ///
    /// As [`Gguf::parse`], and when the file exceeds a limit.
    pub fn parse_with_limits(bytes: &[u8], limits: &Limits) -> Result<Gguf, Error> {
        Parser { c: Cursor { bytes, pos: 0 }, limits }.parse()
    }

    /// Memory-maps the file at `path` and parses it with the default
    /// [`Limits`]. Not available in wasm32, where bytes come from JavaScript.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or mapped, or as [`Gguf::parse`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<MappedGguf, Error> {
        MappedGguf::open_with_limits(path.as_ref(), &Limits::default())
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The tensor data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u32 {
        self.alignment
    }

    /// The absolute offset where the tensor data section starts.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// The length of the input the header was parsed from.
    pub fn file_len(&self) -> usize {
        self.file_len
    }

    /// The metadata pairs, in file order.
    pub fn metadata(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> + '_ {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let &i = self.metadata_index.get(key)?;
        self.metadata.get(i).map(|(_, v)| v)
    }

    fn require(&self, key: &str) -> Result<&Value, Error> {
        self.get(key).ok_or_else(|| ErrorKind::MissingMetadata { key: key.to_owned() }.into())
    }

    fn convert<'s, T>(
        &'s self,
        key: &str,
        expected: &'static str,
        f: impl FnOnce(&'s Value) -> Option<T>,
    ) -> Result<T, Error> {
        let value = self.require(key)?;
        f(value)
            .ok_or_else(|| ErrorKind::MetadataType { key: key.to_owned(), expected, found: value.describe() }.into())
    }

    /// The integer at `key` as a `u32` (any integer type whose value fits).
    ///
    /// # Errors
    ///
    /// When the key is absent, or its value is not an integer in range.
    pub fn get_u32(&self, key: &str) -> Result<u32, Error> {
        self.convert(key, "u32", Value::as_u32)
    }

    /// The integer at `key` as a `u64` (any integer type whose value fits).
    ///
    /// # Errors
    ///
    /// When the key is absent, or its value is not a non-negative integer.
    pub fn get_u64(&self, key: &str) -> Result<u64, Error> {
        self.convert(key, "u64", Value::as_u64)
    }

    /// The `f32` at `key`.
    ///
    /// # Errors
    ///
    /// When the key is absent or its value is not an `f32`.
    pub fn get_f32(&self, key: &str) -> Result<f32, Error> {
        self.convert(key, "f32", Value::as_f32)
    }

    /// The bool at `key`.
    ///
    /// # Errors
    ///
    /// When the key is absent or its value is not a bool.
    pub fn get_bool(&self, key: &str) -> Result<bool, Error> {
        self.convert(key, "bool", Value::as_bool)
    }

    /// The string at `key`.
    ///
    /// # Errors
    ///
    /// When the key is absent or its value is not a string.
    pub fn get_str(&self, key: &str) -> Result<&str, Error> {
        self.convert(key, "string", Value::as_str)
    }

    /// The array at `key`.
    ///
    /// # Errors
    ///
    /// When the key is absent or its value is not an array.
    pub fn get_array(&self, key: &str) -> Result<&Array, Error> {
        self.convert(key, "array", Value::as_array)
    }

    /// The array of strings at `key` (`tokenizer.ggml.tokens`).
    ///
    /// # Errors
    ///
    /// When the key is absent or its value is not an array of strings.
    pub fn get_strings(&self, key: &str) -> Result<&Strings, Error> {
        self.convert(key, "array of string", |v| v.as_array().and_then(Array::as_strings))
    }

    /// `general.architecture` (`"llama"`, `"qwen2"`, `"gemma3"`, …): the
    /// prefix of the model's hyper-parameter keys.
    ///
    /// # Errors
    ///
    /// When the key is absent or not a string.
    pub fn architecture(&self) -> Result<&str, Error> {
        self.get_str("general.architecture")
    }

    /// The tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The info of the tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        let &i = self.tensor_index.get(name)?;
        self.tensors.get(i)
    }

    /// The bytes of the tensor called `name`, borrowed from `data`, which
    /// must be the buffer this header was parsed from.
    ///
    /// # Errors
    ///
    /// When there is no such tensor, or `data` has a different length than
    /// the parsed input.
    pub fn tensor_bytes<'d>(&self, data: &'d [u8], name: &str) -> Result<&'d [u8], Error> {
        if data.len() != self.file_len {
            return Err(ErrorKind::WrongBuffer { expected: to_u64(self.file_len), actual: to_u64(data.len()) }.into());
        }
        let info = self.tensor(name).ok_or_else(|| ErrorKind::MissingTensor { name: name.to_owned() })?;
        // The range was checked against `file_len` at parse time; `get`
        // keeps this panic-free regardless.
        data.get(info.byte_range()).ok_or_else(|| {
            ErrorKind::GgufTensorExtent {
                tensor: shown(name),
                start: info.range.start as u128,
                end: info.range.end as u128,
                file_len: to_u64(data.len()),
            }
            .into()
        })
    }

    /// Total bytes of tensor data (the weights as stored).
    pub fn tensor_data_len(&self) -> u64 {
        // Tensors lie inside the input without overlapping, so the sum is at
        // most the input's length.
        self.tensors.iter().map(|t| to_u64(t.byte_len())).sum()
    }

    /// What a Llama-family model in this file needs in memory for a context
    /// of `context_len` tokens: the weights as stored plus a KV cache whose
    /// elements take `kv_element_bytes` bytes (4 for an f32 cache, 2 for
    /// f16). Computed from the header alone, before anything is allocated;
    /// see [`KvCacheShape`].
    ///
    /// # Errors
    ///
    /// When the hyper-parameters are missing or inconsistent, or the KV cache
    /// size overflows a `u64`.
    pub fn memory_estimate(&self, context_len: u64, kv_element_bytes: u64) -> Result<MemoryEstimate, Error> {
        let shape = KvCacheShape::from_gguf(self)?;
        let kv_cache = shape.bytes(context_len, kv_element_bytes).ok_or_else(|| ErrorKind::InvalidMetadata {
            key: shape.block_count_key(self),
            problem: format!(
                "the KV cache for {context_len} tokens of {kv_element_bytes}-byte elements overflows a u64 byte count"
            ),
        })?;
        Ok(MemoryEstimate { weights: self.tensor_data_len(), kv_cache })
    }
}

/// The hyper-parameters that size a Llama-family model's KV cache, read from
/// `{arch}.block_count`, `{arch}.embedding_length`,
/// `{arch}.attention.head_count`, `{arch}.attention.head_count_kv` (default:
/// the head count) and `{arch}.attention.key_length` / `value_length`
/// (default: embedding length / head count), where `{arch}` is
/// `general.architecture`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvCacheShape {
    /// Transformer blocks (layers), each with its own K and V cache.
    pub block_count: u64,
    /// Key-value heads per block (fewer than query heads with grouped-query
    /// attention).
    pub head_count_kv: u64,
    /// Elements of one key head.
    pub key_length: u64,
    /// Elements of one value head.
    pub value_length: u64,
}

impl KvCacheShape {
    /// Reads and checks the hyper-parameters (all non-zero, the query head
    /// count a multiple of the KV head count, the embedding length a multiple
    /// of the head count when the head size is not given).
    ///
    /// # Errors
    ///
    /// When a key is missing, mistyped or inconsistent; the error names it.
    pub fn from_gguf(gguf: &Gguf) -> Result<KvCacheShape, Error> {
        let arch = gguf.architecture()?;
        let key = |suffix: &str| format!("{arch}.{suffix}");
        let positive = |k: String| -> Result<u64, Error> {
            match gguf.get_u64(&k)? {
                0 => Err(ErrorKind::InvalidMetadata { key: k, problem: "must not be 0".to_owned() }.into()),
                v => Ok(v),
            }
        };
        let optional = |k: String| -> Result<Option<u64>, Error> {
            if gguf.get(&k).is_some() {
                positive(k).map(Some)
            } else {
                Ok(None)
            }
        };
        let block_count = positive(key("block_count"))?;
        let embedding_length = positive(key("embedding_length"))?;
        let head_count = positive(key("attention.head_count"))?;
        let head_count_kv = optional(key("attention.head_count_kv"))?.unwrap_or(head_count);
        if head_count % head_count_kv != 0 {
            return Err(ErrorKind::InvalidMetadata {
                key: key("attention.head_count_kv"),
                problem: format!("{head_count_kv} KV heads do not divide {head_count} query heads"),
            }
            .into());
        }
        let default_head_len = || -> Result<u64, Error> {
            if embedding_length % head_count != 0 {
                return Err(ErrorKind::InvalidMetadata {
                    key: key("attention.head_count"),
                    problem: format!("{head_count} heads do not divide the embedding length {embedding_length}"),
                }
                .into());
            }
            Ok(embedding_length / head_count)
        };
        let key_length = match optional(key("attention.key_length"))? {
            Some(v) => v,
            None => default_head_len()?,
        };
        let value_length = match optional(key("attention.value_length"))? {
            Some(v) => v,
            None => default_head_len()?,
        };
        Ok(KvCacheShape { block_count, head_count_kv, key_length, value_length })
    }

    /// Bytes of the K and V caches for `context_len` tokens with
    /// `element_bytes`-byte elements, or `None` on overflow.
    pub fn bytes(&self, context_len: u64, element_bytes: u64) -> Option<u64> {
        let per_token_per_block = self.head_count_kv.checked_mul(self.key_length.checked_add(self.value_length)?)?;
        self.block_count.checked_mul(context_len)?.checked_mul(per_token_per_block)?.checked_mul(element_bytes)
    }

    fn block_count_key(&self, gguf: &Gguf) -> String {
        format!("{}.block_count", gguf.architecture().unwrap_or("?"))
    }
}

/// Bytes a model needs in memory, from [`Gguf::memory_estimate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Tensor data as stored in the file (memory-mapped on native, so it
    /// counts against the page cache rather than the heap there).
    pub weights: u64,
    /// The K and V caches for the requested context.
    pub kv_cache: u64,
}

impl MemoryEstimate {
    /// Weights plus KV cache (saturating at `u64::MAX`).
    pub fn total(&self) -> u64 {
        self.weights.saturating_add(self.kv_cache)
    }

    /// Refuses a model that does not fit in `budget` bytes.
    ///
    /// # Errors
    ///
    /// When [`total`](MemoryEstimate::total) exceeds `budget`; the message
    /// gives both parts.
    pub fn check(&self, budget: u64) -> Result<(), Error> {
        if self.total() > budget {
            return Err(ErrorKind::MemoryBudget {
                needed: self.total(),
                weights: self.weights,
                kv_cache: self.kv_cache,
                budget,
            }
            .into());
        }
        Ok(())
    }
}

/// A GGUF file memory-mapped read-only, with its parsed header.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug)]
pub struct MappedGguf {
    gguf: Gguf,
    map: memmap2::Mmap,
}

#[cfg(not(target_arch = "wasm32"))]
impl MappedGguf {
    /// Memory-maps the file at `path` and parses it within `limits`.
    ///
    /// The file must not be modified or truncated while it is mapped (the
    /// usual condition of memory-mapped model files, which llama.cpp shares).
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or mapped, or as [`Gguf::parse`].
    pub fn open_with_limits(path: &std::path::Path, limits: &Limits) -> Result<MappedGguf, Error> {
        let io = |source| ErrorKind::Io { path: path.to_owned(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: `Mmap::map` is unsafe because another process could modify
        // or truncate the file while it is mapped, changing bytes behind a
        // `&[u8]`. The map is read-only and private to this value; model
        // files are not written while loaded (the documented condition of
        // this function). Every byte is validated by `Gguf::parse` before
        // use, and all later accesses go through bounds-checked slicing.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let gguf = Gguf::parse_with_limits(&map, limits)?;
        Ok(MappedGguf { gguf, map })
    }

    /// The parsed header.
    pub fn gguf(&self) -> &Gguf {
        &self.gguf
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The bytes of the tensor called `name`.
    ///
    /// # Errors
    ///
    /// When there is no such tensor.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], Error> {
        self.gguf.tensor_bytes(&self.map, name)
    }
}

/// `usize` → `u64`: lossless on every target Rust supports (≤ 64-bit).
fn to_u64(n: usize) -> u64 {
    n as u64
}

/// Untrusted text for an error message: control characters escaped, cut to
/// 80 characters.
pub(super) fn shown(s: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = s.chars().take(MAX).flat_map(char::escape_debug).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// A position in the input; every read checks the bytes left first.
struct Cursor<'a> {
    bytes: &'a [u8],
    /// Invariant: `pos <= bytes.len()`.
    pos: usize,
}

/// Describes the field being read, lazily (only errors pay for the text).
type Field<'f> = &'f dyn Fn() -> String;

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn offset(&self) -> u64 {
        to_u64(self.pos)
    }

    fn take(&mut self, n: u64, field: Field<'_>) -> Result<&'a [u8], Error> {
        let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
        match usize::try_from(n).ok().and_then(|n| rest.get(..n)) {
            Some(taken) => {
                self.pos += taken.len();
                Ok(taken)
            }
            None => Err(ErrorKind::GgufTruncated {
                field: field(),
                offset: self.offset(),
                needed: n,
                available: to_u64(rest.len()),
            }
            .into()),
        }
    }

    fn array<const N: usize>(&mut self, field: Field<'_>) -> Result<[u8; N], Error> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(to_u64(N), field)?);
        Ok(out)
    }

    fn u32(&mut self, field: Field<'_>) -> Result<u32, Error> {
        self.array(field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, field: Field<'_>) -> Result<u64, Error> {
        self.array(field).map(u64::from_le_bytes)
    }
}

/// The metadata value types (ids 0..=12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        [U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64].get(usize::try_from(id).ok()?).copied()
    }

    fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }

    /// The fewest bytes one value of this type takes in the file: caps array
    /// lengths by the bytes left.
    fn min_encoded_bytes(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
            String => 8,
            Array => 4 + 8,
        }
    }
}

/// Decodes packed little-endian elements (`bytes.len()` is a multiple of `N`).
fn decode<T, const N: usize>(bytes: &[u8], from_le: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|chunk| {
            let mut a = [0; N];
            a.copy_from_slice(chunk);
            from_le(a)
        })
        .collect()
}

struct Parser<'a, 'l> {
    c: Cursor<'a>,
    limits: &'l Limits,
}

/// A tensor info as read, before the data section's start is known.
struct RawTensor {
    name: String,
    n_dims: u8,
    dims: [u64; MAX_DIMS],
    ggml_type: GgmlType,
    offset: u64,
    byte_len: u64,
}

impl<'a> Parser<'a, '_> {
    fn parse(mut self) -> Result<Gguf, Error> {
        let magic = self.c.take(4, &|| "header magic".to_owned())?;
        if magic != MAGIC {
            return Err(ErrorKind::GgufMagic { found: ShownBytes(magic.to_vec()) }.into());
        }
        let version = self.c.u32(&|| "header version".to_owned())?;
        if !(2..=3).contains(&version) {
            return Err(ErrorKind::GgufVersion { version }.into());
        }
        let tensor_count_at = self.c.offset();
        let tensor_count = self.c.u64(&|| "header tensor_count".to_owned())?;
        let kv_count_at = self.c.offset();
        let kv_count = self.c.u64(&|| "header metadata_kv_count".to_owned())?;
        self.check_count(
            "header tensor_count",
            tensor_count_at,
            tensor_count,
            (self.limits.max_tensors, "max_tensors"),
            (MIN_TENSOR_INFO_BYTES, "tensor infos"),
        )?;
        self.check_count(
            "header metadata_kv_count",
            kv_count_at,
            kv_count,
            (self.limits.max_metadata_kvs, "max_metadata_kvs"),
            (MIN_KV_BYTES, "key-value pairs"),
        )?;

        // Capacities are capped by the bytes left (checked above) and by a
        // constant, so a large count costs memory only as it is read.
        let mut metadata = Vec::with_capacity(usize::try_from(kv_count.min(256)).unwrap_or(0));
        let mut metadata_index = BTreeMap::new();
        let mut alignment = DEFAULT_ALIGNMENT;
        for i in 0..kv_count {
            let key_at = self.c.offset();
            let key = self.string(&|| format!("metadata #{i} key"), self.limits.max_string_len)?;
            if key.is_empty() {
                return Err(invalid(format!("metadata #{i} key"), key_at, "the key is empty".to_owned()));
            }
            if let Some(first) = metadata_index.get(key) {
                return Err(invalid(
                    format!("metadata #{i} key `{}`", shown(key)),
                    key_at,
                    format!("duplicate key (first defined by metadata #{first})"),
                ));
            }
            let key_shown = shown(key);
            let field = || format!("metadata `{key_shown}`");
            let type_at = self.c.offset();
            let type_id = self.c.u32(&|| format!("{} value type", field()))?;
            let value = self.value(type_id, type_at, &field, 0)?;
            if key == ALIGNMENT_KEY {
                alignment = match value {
                    Value::U32(a) if a.is_power_of_two() => a,
                    Value::U32(a) => {
                        return Err(invalid(field(), type_at, format!("alignment {a} is not a power of two")));
                    }
                    ref other => {
                        return Err(invalid(
                            field(),
                            type_at,
                            format!("the alignment must be a u32, found {}", other.describe()),
                        ));
                    }
                };
            }
            metadata_index.insert(key.to_owned(), metadata.len());
            metadata.push((key.to_owned(), value));
        }

        let mut raw = Vec::with_capacity(usize::try_from(tensor_count.min(4096)).unwrap_or(0));
        let mut tensor_index = BTreeMap::new();
        for i in 0..tensor_count {
            let t = self.tensor_info(i, alignment, &tensor_index)?;
            tensor_index.insert(t.name.clone(), raw.len());
            raw.push(t);
        }

        // The data section starts at the next multiple of the alignment.
        // With no tensors there is nothing to find there, and llama.cpp
        // does not require the padding.
        let header_end = self.c.offset();
        let file_len = self.c.bytes.len();
        if tensor_count > 0 {
            // At most `alignment - 1` bytes past `header_end`: no overflow.
            let aligned = header_end.div_ceil(u64::from(alignment)) * u64::from(alignment);
            self.c.take(aligned - header_end, &|| format!("padding before the tensor data (alignment {alignment})"))?;
        }
        let data_offset = self.c.pos;

        let mut tensors = Vec::with_capacity(raw.len());
        for t in raw {
            let start = data_offset as u128 + u128::from(t.offset);
            let end = start + u128::from(t.byte_len);
            if end > file_len as u128 {
                return Err(ErrorKind::GgufTensorExtent {
                    tensor: shown(&t.name),
                    start,
                    end,
                    file_len: to_u64(file_len),
                }
                .into());
            }
            // Both ends are at most `file_len`, a usize.
            let range = start as usize..end as usize;
            tensors.push(TensorInfo {
                name: t.name,
                n_dims: t.n_dims,
                dims: t.dims,
                ggml_type: t.ggml_type,
                offset: t.offset,
                range,
            });
        }
        check_overlaps(&tensors)?;

        Ok(Gguf { version, alignment, metadata, metadata_index, tensors, tensor_index, data_offset, file_len })
    }

    /// Refuses a count above its limit or above what the bytes left can
    /// hold at `min_bytes` per item.
    fn check_count(
        &self,
        field: &str,
        offset: u64,
        count: u64,
        (limit, limit_name): (u64, &str),
        (min_bytes, items): (u64, &str),
    ) -> Result<(), Error> {
        let too_large =
            |limit: String| ErrorKind::GgufTooLarge { field: field.to_owned(), offset, value: count, limit };
        if count > limit {
            return Err(too_large(format!("Limits::{limit_name} is {limit}")).into());
        }
        let left = to_u64(self.c.remaining());
        if count.checked_mul(min_bytes).is_none_or(|need| need > left) {
            return Err(too_large(format!(
                "the {left} bytes left hold at most {} {items} ({min_bytes} bytes each at least)",
                left / min_bytes
            ))
            .into());
        }
        Ok(())
    }

    /// A string: `len: u64` then `len` bytes of UTF-8, borrowed from the input.
    fn string(&mut self, field: Field<'_>, max_len: u64) -> Result<&'a str, Error> {
        let len_at = self.c.offset();
        let len = self.c.u64(&|| format!("{} length", field()))?;
        if len > max_len {
            return Err(ErrorKind::GgufTooLarge {
                field: format!("{} length", field()),
                offset: len_at,
                value: len,
                limit: format!("the limit is {max_len} bytes"),
            }
            .into());
        }
        let text_at = self.c.offset();
        let bytes = self.c.take(len, field)?;
        std::str::from_utf8(bytes).map_err(|e| {
            invalid(field(), text_at, format!("invalid UTF-8 after {} bytes of the string", e.valid_up_to()))
        })
    }

    /// One metadata value of type `type_id` (read at `type_at`).
    fn value(&mut self, type_id: u32, type_at: u64, field: Field<'_>, depth: u32) -> Result<Value, Error> {
        let ty = ValueType::from_id(type_id).ok_or_else(|| {
            invalid(
                format!("{} value type", field()),
                type_at,
                format!("unknown metadata value type {type_id} (known: 0 to 12)"),
            )
        })?;
        let value_field = || format!("{} value", field());
        let c = &mut self.c;
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(c.array(&value_field)?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(c.array(&value_field)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(c.array(&value_field)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(c.array(&value_field)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(c.array(&value_field)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(c.array(&value_field)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(c.array(&value_field)?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(c.array(&value_field)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(c.array(&value_field)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(c.array(&value_field)?)),
            ValueType::Bool => {
                let at = c.offset();
                let [b] = c.array(&value_field)?;
                Value::Bool(to_bool(b).ok_or_else(|| invalid(value_field(), at, bad_bool(b)))?)
            }
            ValueType::String => Value::String(self.string(&value_field, self.limits.max_string_len)?.to_owned()),
            ValueType::Array => Value::Array(self.array(field, depth + 1)?),
        })
    }

    /// An array at nesting `depth` (1 for a top-level array).
    fn array(&mut self, field: Field<'_>, depth: u32) -> Result<Array, Error> {
        let at = self.c.offset();
        let max_depth = self.limits.max_array_depth.min(HARD_MAX_ARRAY_DEPTH);
        if depth > max_depth {
            return Err(ErrorKind::GgufTooLarge {
                field: format!("{} array nesting", field()),
                offset: at,
                value: depth.into(),
                limit: format!("the limit on array nesting is {max_depth}"),
            }
            .into());
        }
        let type_id = self.c.u32(&|| format!("{} array element type", field()))?;
        let ty = ValueType::from_id(type_id).ok_or_else(|| {
            invalid(
                format!("{} array element type", field()),
                at,
                format!("unknown metadata value type {type_id} (known: 0 to 12)"),
            )
        })?;
        let len_at = self.c.offset();
        let len = self.c.u64(&|| format!("{} array length", field()))?;
        let too_large = |limit: String| -> Error {
            ErrorKind::GgufTooLarge { field: format!("{} array length", field()), offset: len_at, value: len, limit }
                .into()
        };
        if len > self.limits.max_array_len {
            return Err(too_large(format!("Limits::max_array_len is {}", self.limits.max_array_len)));
        }
        let min = ty.min_encoded_bytes();
        let left = to_u64(self.c.remaining());
        let Some(min_total) = len.checked_mul(min).filter(|&need| need <= left) else {
            return Err(too_large(format!(
                "the {left} bytes left hold at most {} elements of type {} ({min} bytes each at least)",
                left / min,
                ty.name()
            )));
        };
        // `len * min <= left <= usize::MAX`.
        let n = usize::try_from(len).unwrap_or(usize::MAX);
        let elements = || format!("{} array elements", field());
        let c = &mut self.c;
        Ok(match ty {
            ValueType::U8 => Array::U8(c.take(min_total, &elements)?.to_vec()),
            ValueType::I8 => Array::I8(decode(c.take(min_total, &elements)?, i8::from_le_bytes)),
            ValueType::U16 => Array::U16(decode(c.take(min_total, &elements)?, u16::from_le_bytes)),
            ValueType::I16 => Array::I16(decode(c.take(min_total, &elements)?, i16::from_le_bytes)),
            ValueType::U32 => Array::U32(decode(c.take(min_total, &elements)?, u32::from_le_bytes)),
            ValueType::I32 => Array::I32(decode(c.take(min_total, &elements)?, i32::from_le_bytes)),
            ValueType::F32 => Array::F32(decode(c.take(min_total, &elements)?, f32::from_le_bytes)),
            ValueType::U64 => Array::U64(decode(c.take(min_total, &elements)?, u64::from_le_bytes)),
            ValueType::I64 => Array::I64(decode(c.take(min_total, &elements)?, i64::from_le_bytes)),
            ValueType::F64 => Array::F64(decode(c.take(min_total, &elements)?, f64::from_le_bytes)),
            ValueType::Bool => {
                let start = c.offset();
                let bytes = c.take(min_total, &elements)?;
                let mut out = Vec::with_capacity(n);
                for (i, &b) in bytes.iter().enumerate() {
                    let bool = to_bool(b)
                        .ok_or_else(|| invalid(format!("{}[{i}]", field()), start + to_u64(i), bad_bool(b)))?;
                    out.push(bool);
                }
                Array::Bool(out)
            }
            ValueType::String => {
                let mut out = Strings::with_capacity(n);
                for i in 0..n {
                    out.push(self.string(&|| format!("{}[{i}]", field()), self.limits.max_string_len)?);
                }
                Array::String(out)
            }
            ValueType::Array => {
                let mut out = Vec::with_capacity(n.min(1024));
                for i in 0..n {
                    out.push(self.array(&|| format!("{}[{i}]", field()), depth + 1)?);
                }
                Array::Array(out)
            }
        })
    }

    /// Tensor info `i`: everything but where the data section starts.
    fn tensor_info(&mut self, i: u64, alignment: u32, seen: &BTreeMap<String, usize>) -> Result<RawTensor, Error> {
        let name_at = self.c.offset();
        let name = self.string(&|| format!("tensor #{i} name"), self.limits.max_tensor_name_len)?;
        if name.is_empty() {
            return Err(invalid(format!("tensor #{i} name"), name_at, "the name is empty".to_owned()));
        }
        if let Some(first) = seen.get(name) {
            return Err(invalid(
                format!("tensor #{i} name `{}`", shown(name)),
                name_at,
                format!("duplicate tensor name (first used by tensor #{first})"),
            ));
        }
        let tensor = format!("tensor `{}`", shown(name));

        let n_dims_at = self.c.offset();
        let n_dims = self.c.u32(&|| format!("{tensor} n_dims"))?;
        let n_dims = match u8::try_from(n_dims) {
            Ok(n) if usize::from(n) <= MAX_DIMS => n,
            _ => {
                return Err(ErrorKind::GgufTooLarge {
                    field: format!("{tensor} n_dims"),
                    offset: n_dims_at,
                    value: n_dims.into(),
                    limit: format!("GGML tensors have at most {MAX_DIMS} dimensions"),
                }
                .into());
            }
        };
        let dims_at = self.c.offset();
        let mut dims = [1u64; MAX_DIMS];
        for (d, dim) in dims.iter_mut().enumerate().take(usize::from(n_dims)) {
            let at = self.c.offset();
            let field = || format!("{tensor} dims[{d}]");
            *dim = self.c.u64(&field)?;
            if *dim > i64::MAX as u64 {
                return Err(ErrorKind::GgufTooLarge {
                    field: field(),
                    offset: at,
                    value: *dim,
                    limit: "GGML dimensions are at most 2^63 - 1".to_owned(),
                }
                .into());
            }
        }
        let shape = || format!("{:?}", &dims[..usize::from(n_dims)]);
        let elements =
            dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= i64::MAX as u64).ok_or_else(
                || invalid(format!("{tensor} dims"), dims_at, format!("shape {} has 2^63 or more elements", shape())),
            )?;

        let type_at = self.c.offset();
        let type_id = self.c.u32(&|| format!("{tensor} ggml type"))?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| ErrorKind::GgufTensorType {
            tensor: shown(name),
            offset: type_at,
            type_id,
            name: unsupported_ggml_type_name(type_id),
        })?;
        if dims[0] % ggml_type.block_len() != 0 {
            return Err(invalid(
                format!("{tensor} dims[0]"),
                dims_at,
                format!(
                    "row length {} is not a multiple of the {} block length {}",
                    dims[0],
                    ggml_type,
                    ggml_type.block_len()
                ),
            ));
        }
        let byte_len = ggml_type.bytes_for(elements).ok_or_else(|| {
            invalid(
                format!("{tensor} dims"),
                dims_at,
                format!("{} {ggml_type} elements overflow a u64 byte count", shape()),
            )
        })?;

        let offset_at = self.c.offset();
        let offset = self.c.u64(&|| format!("{tensor} offset"))?;
        if offset % u64::from(alignment) != 0 {
            return Err(invalid(
                format!("{tensor} offset"),
                offset_at,
                format!("offset {offset} is not a multiple of the alignment {alignment}"),
            ));
        }
        Ok(RawTensor { name: name.to_owned(), n_dims, dims, ggml_type, offset, byte_len })
    }
}

/// Refuses two tensors whose (non-empty) data ranges share a byte.
fn check_overlaps(tensors: &[TensorInfo]) -> Result<(), Error> {
    let mut order: Vec<&TensorInfo> = tensors.iter().filter(|t| !t.range.is_empty()).collect();
    order.sort_by_key(|t| (t.range.start, t.range.end));
    // The tensor reaching furthest so far: any later start below its end
    // overlaps it.
    let mut furthest: Option<&TensorInfo> = None;
    for t in order {
        if let Some(prev) = furthest {
            if t.range.start < prev.range.end {
                return Err(ErrorKind::GgufTensorOverlap {
                    first: shown(&prev.name),
                    first_start: to_u64(prev.range.start),
                    first_end: to_u64(prev.range.end),
                    second: shown(&t.name),
                    second_start: to_u64(t.range.start),
                    second_end: to_u64(t.range.end),
                }
                .into());
            }
        }
        if furthest.is_none_or(|prev| t.range.end > prev.range.end) {
            furthest = Some(t);
        }
    }
    Ok(())
}

fn invalid(field: String, offset: u64, problem: String) -> Error {
    ErrorKind::GgufInvalid { field, offset, problem }.into()
}

fn to_bool(b: u8) -> Option<bool> {
    match b {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

fn bad_bool(b: u8) -> String {
    format!("a bool must be 0 or 1, found {b}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::quant::QuantType;

    #[test]
    fn ggml_type_ids_round_trip_and_block_sizes_match_ggml() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
            assert!(unsupported_ggml_type_name(t.id()).is_none(), "{t} is listed as unsupported");
        }
        // Sizes from GGML's type_traits.
        let expected: [(GgmlType, u64, u64); 6] = [
            (GgmlType::Q4_0, 32, 18),
            (GgmlType::Q8_1, 32, 36),
            (GgmlType::Q2K, 256, 84),
            (GgmlType::Q3K, 256, 110),
            (GgmlType::Q8K, 256, 292),
            (GgmlType::BF16, 1, 2),
        ];
        for (t, len, bytes) in expected {
            assert_eq!((t.block_len(), t.block_bytes()), (len, bytes), "{t}");
        }
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(unsupported_ggml_type_name(20), Some("iq4_nl"));
    }

    #[test]
    fn ggml_types_agree_with_the_kernels_block_structs() {
        for q in QuantType::ALL {
            let t = GgmlType::from_id(q.ggml_id()).expect("every kernel type is a GGUF type");
            assert_eq!(t.quant_type(), Some(q));
            assert_eq!(t.block_len(), q.block_weights() as u64, "{t}");
            assert_eq!(t.block_bytes(), q.block_bytes() as u64, "{t}");
            assert_eq!(t.name(), q.name());
        }
        assert_eq!(GgmlType::F32.quant_type(), None);
    }

    #[test]
    fn bytes_for_needs_whole_blocks_and_checks_overflow() {
        assert_eq!(GgmlType::Q4K.bytes_for(512), Some(288));
        assert_eq!(GgmlType::Q4K.bytes_for(100), None);
        assert_eq!(GgmlType::F32.bytes_for(u64::MAX / 2), None);
        assert_eq!(GgmlType::F32.bytes_for(0), Some(0));
    }

    #[test]
    fn integer_values_convert_when_they_fit() {
        assert_eq!(Value::I32(7).as_u32(), Some(7));
        assert_eq!(Value::I32(-7).as_u32(), None);
        assert_eq!(Value::U64(1 << 40).as_u32(), None);
        assert_eq!(Value::U64(u64::MAX).as_i64(), None);
        assert_eq!(Value::I8(-1).as_i64(), Some(-1));
        assert_eq!(Value::F32(1.0).as_u32(), None);
        assert_eq!(Value::F32(0.5).as_f64(), Some(0.5));
        assert_eq!(Value::F64(0.5).as_f32(), None);
        assert_eq!(Value::I16(-3).describe(), "i16 -3");
        assert_eq!(Value::Array(Array::String(["a"].iter().collect())).describe(), "array of 1 string");
    }

    #[test]
    fn strings_store_pieces_back_to_back() {
        let s: Strings = ["", "ab", "", "日本", "c"].iter().collect();
        assert_eq!(s.len(), 5);
        assert_eq!(s.iter().len(), 5);
        assert_eq!(s.iter().collect::<Vec<_>>(), ["", "ab", "", "日本", "c"]);
        assert_eq!(s.get(3), Some("日本"));
        assert_eq!(s.get(5), None);
        assert_eq!(format!("{s:?}"), r#"["", "ab", "", "日本", "c"]"#);
        assert!(Strings::default().is_empty());
    }

    #[test]
    fn shown_escapes_and_cuts_untrusted_text() {
        assert_eq!(shown("a\nb`"), "a\\nb`");
        let long = "x".repeat(200);
        assert_eq!(shown(&long).chars().count(), 81);
        assert!(shown(&long).ends_with('…'));
        assert_eq!(shown(&"é".repeat(80)), "é".repeat(80));
    }

    #[test]
    fn cursor_reports_what_is_missing() {
        let mut c = Cursor { bytes: &[1, 0, 0, 0, 9], pos: 0 };
        assert_eq!(c.u32(&|| "a".to_owned()).unwrap(), 1);
        let e = c.u64(&|| "the field".to_owned()).unwrap_err().to_string();
        assert!(e.contains("the field at byte 4: needs 8 bytes but only 1 remain"), "{e}");
        let e = c.take(u64::MAX, &|| "big".to_owned()).unwrap_err().to_string();
        assert!(e.contains("needs 18446744073709551615 bytes"), "{e}");
        assert_eq!(c.take(1, &|| "last".to_owned()).unwrap(), [9]);
        assert_eq!(c.remaining(), 0);
    }

    #[test]
    fn value_type_ids_and_minimum_sizes() {
        for id in 0..=12 {
            let t = ValueType::from_id(id).unwrap();
            assert!(t.min_encoded_bytes() >= 1);
        }
        assert_eq!(ValueType::from_id(13), None);
        assert_eq!(ValueType::from_id(u32::MAX), None);
        assert_eq!(ValueType::from_id(9).map(ValueType::name), Some("array"));
    }

    #[test]
    fn overlap_check_ignores_empty_ranges_and_finds_nested_ones() {
        let t = |name: &str, range: Range<usize>| TensorInfo {
            name: name.to_owned(),
            n_dims: 1,
            dims: [range.len() as u64, 1, 1, 1],
            ggml_type: GgmlType::I8,
            offset: range.start as u64,
            range,
        };
        assert!(check_overlaps(&[t("a", 0..10), t("b", 10..20), t("e", 5..5)]).is_ok());
        // `c` lies inside `a`, after `b` (which lies inside `a` too) ended.
        let e = check_overlaps(&[t("a", 0..100), t("b", 10..20), t("c", 30..40)]).unwrap_err().to_string();
        assert!(e.contains("overlaps tensor `a`"), "{e}");
        let e = check_overlaps(&[t("a", 0..10), t("b", 9..20)]).unwrap_err().to_string();
        assert!(e.contains("tensor `b` data [9, 20) overlaps tensor `a` data [0, 10)"), "{e}");
    }
}
