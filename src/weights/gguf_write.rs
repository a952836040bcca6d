//! Writing GGUF files: the encoder the safetensors converter uses to build a
//! model in memory, and that tests use to write valid and malformed files.
//!
//! Two levels:
//!
//! - [`GgufWriter`]: a valid GGUF v3 file. Metadata and tensor descriptions
//!   are declared first; the file's exact size is known before anything is
//!   allocated ([`GgufWriter::file_len`]); [`GgufWriter::write`] allocates the
//!   file once and lets the caller fill each tensor's bytes in place.
//! - The `put_*` functions: the encoding of each header piece, raw (a tensor
//!   info takes any type id and offset), for tests that write files which
//!   lie.
//!
//! ```
//! # fn main() -> Result<(), formwork::Error> {
//! use formwork::weights::gguf_write::GgufWriter;
//! use formwork::weights::{GgmlType, Gguf, Value};
//!
//! let mut w = GgufWriter::new();
//! w.metadata("general.architecture", Value::String("llama".into()));
//! w.tensor("norm.weight", &[3], GgmlType::F32)?;
//! let bytes = w.write(|_, out| {
//!     for (chunk, v) in out.chunks_exact_mut(4).zip([1.0f32, 2.0, 3.0]) {
//!         chunk.copy_from_slice(&v.to_le_bytes());
//!     }
//!     Ok(())
//! })?;
//! assert_eq!(bytes.len() as u64, w.file_len());
//! let g = Gguf::parse(&bytes)?;
//! assert_eq!(g.tensor_bytes(&bytes, "norm.weight")?, &bytes[bytes.len() - 12..]);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;

use crate::error::{Error, ErrorKind};

use super::gguf::{Array, GgmlType, Value, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};

/// Appends a little-endian `u32`.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a little-endian `u64`.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a GGUF string: its byte length as `u64`, then its bytes.
pub fn put_string(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The GGUF value type id of `v` (0 = u8 … 12 = f64).
pub fn value_type_id(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

/// The GGUF value type id of `a`'s elements.
pub fn array_type_id(a: &Array) -> u32 {
    match a {
        Array::U8(_) => 0,
        Array::I8(_) => 1,
        Array::U16(_) => 2,
        Array::I16(_) => 3,
        Array::U32(_) => 4,
        Array::I32(_) => 5,
        Array::F32(_) => 6,
        Array::Bool(_) => 7,
        Array::String(_) => 8,
        Array::Array(_) => 9,
        Array::U64(_) => 10,
        Array::I64(_) => 11,
        Array::F64(_) => 12,
    }
}

/// Appends a value's payload (without its type id).
pub fn put_payload(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_string(out, s),
        Value::Array(a) => put_array(out, a),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

/// Appends an array payload: element type id, length, elements.
pub fn put_array(out: &mut Vec<u8>, a: &Array) {
    put_u32(out, array_type_id(a));
    put_u64(out, a.len() as u64);
    macro_rules! each {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => each!(v),
        Array::U16(v) => each!(v),
        Array::I16(v) => each!(v),
        Array::U32(v) => each!(v),
        Array::I32(v) => each!(v),
        Array::F32(v) => each!(v),
        Array::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        Array::String(v) => v.iter().for_each(|s| put_string(out, s)),
        Array::Array(v) => v.iter().for_each(|inner| put_array(out, inner)),
        Array::U64(v) => each!(v),
        Array::I64(v) => each!(v),
        Array::F64(v) => each!(v),
    }
}

/// Appends one metadata pair: key, value type id, payload.
pub fn put_metadata(out: &mut Vec<u8>, key: &str, v: &Value) {
    put_string(out, key);
    put_u32(out, value_type_id(v));
    put_payload(out, v);
}

/// Appends one tensor info, every field as given (nothing is checked: tests
/// use this to write files that lie).
pub fn put_tensor_info(out: &mut Vec<u8>, name: &str, dims: &[u64], type_id: u32, offset: u64) {
    put_string(out, name);
    put_u32(out, dims.len() as u32);
    dims.iter().for_each(|&d| put_u64(out, d));
    put_u32(out, type_id);
    put_u64(out, offset);
}

/// Appends the fixed header start: magic, version, tensor and metadata
/// counts.
pub fn put_header_start(out: &mut Vec<u8>, version: u32, tensor_count: u64, metadata_count: u64) {
    out.extend_from_slice(&MAGIC);
    put_u32(out, version);
    put_u64(out, tensor_count);
    put_u64(out, metadata_count);
}

/// A tensor declared to a [`GgufWriter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTensor {
    /// Its name.
    pub name: String,
    /// Dimensions in GGML order (row length first).
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Offset from the start of the data section (aligned).
    pub offset: u64,
    /// Bytes of data.
    pub len: u64,
}

/// Builds a valid GGUF v3 file: metadata, then tensors laid out one after
/// another at the file's alignment. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct GgufWriter {
    alignment: u32,
    metadata: Vec<(String, Value)>,
    tensors: Vec<PlannedTensor>,
    names: BTreeSet<String>,
    data_len: u64,
}

impl Default for GgufWriter {
    fn default() -> GgufWriter {
        GgufWriter::new()
    }
}

impl GgufWriter {
    /// An empty file with the default alignment (32).
    pub fn new() -> GgufWriter {
        GgufWriter {
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            tensors: Vec::new(),
            names: BTreeSet::new(),
            data_len: 0,
        }
    }

    /// Adds a metadata pair (in order; a key given twice is written twice,
    /// which readers refuse).
    pub fn metadata(&mut self, key: impl Into<String>, value: Value) {
        self.metadata.push((key.into(), value));
    }

    /// Declares a tensor; returns its index (the first argument of the
    /// `fill` callback of [`write`](Self::write)).
    ///
    /// # Errors
    ///
    /// When the name is empty or taken, there are more than four dimensions,
    /// or the element count is not whole blocks of `ggml_type` or overflows.
    pub fn tensor(&mut self, name: &str, dims: &[u64], ggml_type: GgmlType) -> Result<usize, Error> {
        let problem = |problem: String| -> Error { ErrorKind::ModelTensor { tensor: name.to_owned(), problem }.into() };
        if name.is_empty() || self.names.contains(name) {
            return Err(problem("the name is empty or already used".to_owned()));
        }
        if dims.len() > super::gguf::MAX_DIMS {
            return Err(problem(format!("{} dimensions (GGUF allows at most 4)", dims.len())));
        }
        let elements = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        let len = elements
            .and_then(|n| ggml_type.bytes_for(n))
            .ok_or_else(|| problem(format!("dims {dims:?} are not whole {ggml_type} blocks or overflow")))?;
        let offset = self.data_len.next_multiple_of(u64::from(self.alignment));
        let end = offset.checked_add(len).ok_or_else(|| problem("the data section overflows".to_owned()))?;
        self.names.insert(name.to_owned());
        self.tensors.push(PlannedTensor { name: name.to_owned(), dims: dims.to_vec(), ggml_type, offset, len });
        self.data_len = end;
        Ok(self.tensors.len() - 1)
    }

    /// The tensors declared so far.
    pub fn tensors(&self) -> &[PlannedTensor] {
        &self.tensors
    }

    /// Bytes of tensor data, padding between tensors included.
    pub fn tensor_data_len(&self) -> u64 {
        self.data_len
    }

    fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_header_start(&mut out, 3, self.tensors.len() as u64, self.metadata.len() as u64);
        for (k, v) in &self.metadata {
            put_metadata(&mut out, k, v);
        }
        for t in &self.tensors {
            put_tensor_info(&mut out, &t.name, &t.dims, t.ggml_type.id(), t.offset);
        }
        if !self.tensors.is_empty() {
            out.resize(out.len().next_multiple_of(self.alignment as usize), 0);
        }
        out
    }

    /// The size of the file [`write`](Self::write) will produce.
    pub fn file_len(&self) -> u64 {
        (self.header().len() as u64).saturating_add(self.data_len)
    }

    /// Writes the file: allocates it once (zeroed), encodes the header, and
    /// calls `fill(i, bytes)` for each declared tensor `i` in order with its
    /// exact byte range to fill.
    ///
    /// The metadata is written as given: it is not checked to match
    /// `general.alignment` (the writer always uses the default alignment and
    /// so should not be given that key).
    ///
    /// # Errors
    ///
    /// When the file does not fit in memory's address space, `general.alignment`
    /// was given, or `fill` fails.
    pub fn write(&self, mut fill: impl FnMut(usize, &mut [u8]) -> Result<(), Error>) -> Result<Vec<u8>, Error> {
        if self.metadata.iter().any(|(k, _)| k == ALIGNMENT_KEY) {
            return Err(ErrorKind::InvalidMetadata {
                key: ALIGNMENT_KEY.to_owned(),
                problem: "the writer lays tensors out at the default alignment".to_owned(),
            }
            .into());
        }
        let mut out = self.header();
        let start = out.len();
        let too_large = || -> Error {
            ErrorKind::ModelOption { option: "GGUF output", problem: "larger than the address space".to_owned() }.into()
        };
        let total = usize::try_from(self.data_len).ok().and_then(|d| d.checked_add(start)).ok_or_else(too_large)?;
        out.resize(total, 0);
        for (i, t) in self.tensors.iter().enumerate() {
            // In range: offsets and lengths were summed into `data_len`
            // without overflow, and `start + data_len` fits a usize.
            let from = start + t.offset as usize;
            fill(i, &mut out[from..from + t.len as usize])?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::Gguf;

    #[test]
    fn writes_what_the_reader_reads() {
        let mut w = GgufWriter::new();
        w.metadata("general.architecture", Value::String("llama".into()));
        w.metadata("x", Value::Array(Array::U32(vec![1, 2, 3])));
        w.tensor("a", &[32, 2], GgmlType::Q8_0).unwrap();
        w.tensor("b", &[3], GgmlType::F32).unwrap();
        w.tensor("c", &[0], GgmlType::F16).unwrap();
        assert_eq!(w.tensors()[1].offset, 96); // 2 * 34 = 68, padded to 96
        let bytes = w
            .write(|i, out| {
                out.fill(i as u8 + 1);
                Ok(())
            })
            .unwrap();
        assert_eq!(bytes.len() as u64, w.file_len());
        let g = Gguf::parse(&bytes).unwrap();
        assert_eq!(g.get_array("x").unwrap().as_u32(), Some(&[1, 2, 3][..]));
        assert_eq!(g.tensor_bytes(&bytes, "a").unwrap(), &[1u8; 68][..]);
        assert_eq!(g.tensor_bytes(&bytes, "b").unwrap(), &[2u8; 12][..]);
        assert!(g.tensor_bytes(&bytes, "c").unwrap().is_empty());
    }

    #[test]
    fn bad_declarations_are_named() {
        let mut w = GgufWriter::new();
        w.tensor("a", &[32], GgmlType::Q8_0).unwrap();
        assert!(w.tensor("a", &[32], GgmlType::Q8_0).unwrap_err().to_string().contains("`a`"));
        assert!(w.tensor("b", &[31], GgmlType::Q8_0).unwrap_err().to_string().contains("whole q8_0 blocks"));
        assert!(w.tensor("c", &[u64::MAX, 2], GgmlType::F32).is_err());
        assert!(w.tensor("d", &[1, 1, 1, 1, 1], GgmlType::F32).is_err());
        w.metadata(ALIGNMENT_KEY, Value::U32(64));
        assert!(w.write(|_, _| Ok(())).unwrap_err().to_string().contains(ALIGNMENT_KEY));
    }
}
