//! The safetensors format: a validating reader, and f32/f16/bf16 → f32
//! conversion.
//!
//! A safetensors file is an 8-byte little-endian header length `N`, `N`
//! bytes of JSON, and a data section. The JSON maps each tensor name to
//! `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to
//! the data section), plus an optional `"__metadata__"` object of strings.
//!
//! ## Input safety
//!
//! [`Safetensors::parse`] checks everything before use, and every error
//! names the file and the field or tensor at fault:
//!
//! - the header length fits in the input and is at most
//!   [`MAX_HEADER_LEN`] (nothing is allocated for it beyond the JSON read
//!   from the input itself);
//! - the header is UTF-8 JSON, an object whose entries are tensors (exactly
//!   the three fields, of the right JSON types) or `__metadata__` (strings);
//! - dtypes are known; the element count (the shape's product) times the
//!   dtype size, computed with overflow checks, equals `end - begin`;
//! - the tensors tile the data section exactly, as the format requires: in
//!   offset order each begins where the previous ended, the first at 0, the
//!   last at the end of the file — so no two overlap, nothing points past
//!   the end, and no bytes are unaccounted for.
//!
//! ```
//! # fn main() -> Result<(), formwork::Error> {
//! use formwork::weights::safetensors::{Dtype, Safetensors};
//!
//! let header = br#"{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#;
//! let mut file = (header.len() as u64).to_le_bytes().to_vec();
//! file.extend_from_slice(header);
//! file.extend_from_slice(&[0x80, 0x3f, 0x00, 0xc0]); // bf16 1.0, -2.0
//! let st = Safetensors::parse(&file)?;
//! assert_eq!(st.tensor("w").map(|t| t.dtype()), Some(Dtype::BF16));
//! assert_eq!(st.tensor_f32(&file, "w")?, [1.0, -2.0]);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::Value as Json;

use crate::error::{Error, ErrorKind};
use crate::kernels::F16;

use super::gguf::shown;

/// The largest header accepted (100 MB; real headers are kilobytes to a few
/// megabytes).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// The header key holding free-form string metadata.
pub const METADATA_KEY: &str = "__metadata__";

/// A tensor element type of the safetensors format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the names are the format's
pub enum Dtype {
    Bool,
    U8,
    I8,
    F8E5M2,
    F8E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

const DTYPES: &[(Dtype, &str, u64)] = &[
    (Dtype::Bool, "BOOL", 1),
    (Dtype::U8, "U8", 1),
    (Dtype::I8, "I8", 1),
    (Dtype::F8E5M2, "F8_E5M2", 1),
    (Dtype::F8E4M3, "F8_E4M3", 1),
    (Dtype::I16, "I16", 2),
    (Dtype::U16, "U16", 2),
    (Dtype::F16, "F16", 2),
    (Dtype::BF16, "BF16", 2),
    (Dtype::I32, "I32", 4),
    (Dtype::U32, "U32", 4),
    (Dtype::F32, "F32", 4),
    (Dtype::F64, "F64", 8),
    (Dtype::I64, "I64", 8),
    (Dtype::U64, "U64", 8),
];

impl Dtype {
    /// The dtype called `name` in a header (`"F16"`, `"BF16"`, …).
    pub fn from_name(name: &str) -> Option<Dtype> {
        DTYPES.iter().find(|d| d.1 == name).map(|d| d.0)
    }

    fn entry(self) -> &'static (Dtype, &'static str, u64) {
        // Every variant is listed in `DTYPES` (the unit test checks it).
        DTYPES.iter().find(|d| d.0 == self).unwrap_or(&DTYPES[0])
    }

    /// The header name.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        self.entry().2
    }

    /// Whether [`to_f32`] converts this type (F32, F16, BF16).
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F32 | Dtype::F16 | Dtype::BF16)
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor of a parsed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    name: String,
    dtype: Dtype,
    shape: Vec<u64>,
    /// Absolute byte range in the file.
    range: Range<usize>,
}

impl TensorInfo {
    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Shape, outermost dimension first (row-major: a matrix is
    /// `[rows, cols]`).
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Number of elements (the shape's product; checked not to overflow).
    pub fn element_count(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Byte range in the whole file (not relative to the data section).
    pub fn byte_range(&self) -> Range<usize> {
        self.range.clone()
    }
}

/// A parsed safetensors header: tensor infos and metadata, validated against
/// the input's size (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Safetensors {
    file: String,
    tensors: Vec<TensorInfo>,
    by_name: BTreeMap<String, usize>,
    metadata: BTreeMap<String, String>,
    data_start: usize,
    file_len: usize,
}

fn err(file: &str, field: impl Into<String>, problem: impl Into<String>) -> Error {
    ErrorKind::Checkpoint { file: file.to_owned(), field: field.into(), problem: problem.into() }.into()
}

impl Safetensors {
    /// Parses a safetensors file held in memory; errors call it
    /// `safetensors`.
    ///
    /// # Errors
    ///
    /// When the input is not a valid safetensors file; see the module docs.
    pub fn parse(bytes: &[u8]) -> Result<Safetensors, Error> {
        Safetensors::parse_named(bytes, "safetensors")
    }

    /// Parses a safetensors file held in memory; errors call it `file`.
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse).
    pub fn parse_named(bytes: &[u8], file: &str) -> Result<Safetensors, Error> {
        let len = bytes.len() as u64;
        let Some(prefix) = bytes.first_chunk::<8>() else {
            return Err(err(
                file,
                "header length at byte 0",
                format!("needs 8 bytes but the file has {len} (truncated file?)"),
            ));
        };
        let header_len = u64::from_le_bytes(*prefix);
        if header_len > MAX_HEADER_LEN {
            return Err(err(
                file,
                "header length at byte 0",
                format!("{header_len} bytes is more than the limit of {MAX_HEADER_LEN} (not a safetensors file?)"),
            ));
        }
        if header_len > len - 8 {
            return Err(err(
                file,
                "header length at byte 0",
                format!("{header_len} bytes of JSON but only {} bytes follow (truncated file?)", len - 8),
            ));
        }
        // Both fit: `header_len <= len - 8`.
        let data_start = 8 + header_len as usize;
        let text = std::str::from_utf8(&bytes[8..data_start])
            .map_err(|e| err(file, "header", format!("not UTF-8: {e} (from byte 8)")))?;
        let json: Json = serde_json::from_str(text).map_err(|e| err(file, "header", format!("not valid JSON: {e}")))?;
        let Json::Object(entries) = json else {
            return Err(err(file, "header", "not a JSON object"));
        };
        let data_len = bytes.len() - data_start;
        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::with_capacity(entries.len());
        for (name, entry) in &entries {
            if name == METADATA_KEY {
                let Json::Object(m) = entry else {
                    return Err(err(file, METADATA_KEY, "not a JSON object"));
                };
                for (k, v) in m {
                    let Json::String(s) = v else {
                        return Err(err(file, format!("{METADATA_KEY}.{}", shown(k)), "not a string"));
                    };
                    metadata.insert(k.clone(), s.clone());
                }
                continue;
            }
            tensors.push(tensor_info(file, name, entry, data_start)?);
        }
        check_tiling(file, &mut tensors, data_start, data_len)?;
        let by_name = tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        Ok(Safetensors { file: file.to_owned(), tensors, by_name, metadata, data_start, file_len: bytes.len() })
    }

    /// The name errors give the file.
    pub fn file_name(&self) -> &str {
        &self.file
    }

    /// The tensors, in data order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The `__metadata__` strings.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Where the data section starts (8 + header length).
    pub fn data_offset(&self) -> usize {
        self.data_start
    }

    /// The bytes of the tensor called `name` in `data`, the buffer the header
    /// was parsed from.
    ///
    /// # Errors
    ///
    /// When there is no such tensor, or `data` is not that buffer (its
    /// length differs).
    pub fn tensor_bytes<'d>(&self, data: &'d [u8], name: &str) -> Result<&'d [u8], Error> {
        let t = self.tensor(name).ok_or_else(|| err(&self.file, format!("tensor `{}`", shown(name)), "missing"))?;
        if data.len() != self.file_len {
            return Err(ErrorKind::WrongBuffer { expected: self.file_len as u64, actual: data.len() as u64 }.into());
        }
        // In range: checked against `file_len` by `parse`.
        Ok(&data[t.byte_range()])
    }

    /// The tensor called `name` converted to f32 (from F32, F16 or BF16).
    ///
    /// # Errors
    ///
    /// As [`tensor_bytes`](Self::tensor_bytes), or when its dtype is not a
    /// float type [`to_f32`] converts.
    pub fn tensor_f32(&self, data: &[u8], name: &str) -> Result<Vec<f32>, Error> {
        let bytes = self.tensor_bytes(data, name)?;
        // `tensor_bytes` found it.
        let dtype = self.tensor(name).map_or(Dtype::U8, |t| t.dtype);
        let mut out = vec![0.0; bytes.len() / dtype.size() as usize];
        to_f32(dtype, bytes, &mut out).map_err(|p| err(&self.file, format!("tensor `{}`", shown(name)), p))?;
        Ok(out)
    }
}

/// Converts `bytes` of `dtype` elements (little-endian) into `out`, exactly:
/// f16 and bf16 values (subnormals, infinities and NaN included) are
/// represented exactly in f32.
///
/// # Errors
///
/// When `dtype` is not F32, F16 or BF16, or `bytes` does not hold exactly
/// `out.len()` elements; the message says which.
pub fn to_f32(dtype: Dtype, bytes: &[u8], out: &mut [f32]) -> Result<(), String> {
    let expected = (out.len() as u64).checked_mul(dtype.size());
    if expected != Some(bytes.len() as u64) {
        return Err(format!("{} bytes do not hold {} {dtype} elements", bytes.len(), out.len()));
    }
    match dtype {
        Dtype::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Dtype::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = F16([b[0], b[1]]).to_f32();
            }
        }
        Dtype::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16);
            }
        }
        other => return Err(format!("dtype {other} is not a float type (F32, F16 and BF16 convert to f32)")),
    }
    Ok(())
}

/// One header entry → a tensor info (offsets made absolute).
fn tensor_info(file: &str, name: &str, entry: &Json, data_start: usize) -> Result<TensorInfo, Error> {
    let field = |f: &str| format!("tensor `{}` {f}", shown(name));
    let Json::Object(fields) = entry else {
        return Err(err(file, field("entry"), "not a JSON object"));
    };
    if let Some(extra) = fields.keys().find(|k| !matches!(k.as_str(), "dtype" | "shape" | "data_offsets")) {
        return Err(err(file, field(&format!("`{}`", shown(extra))), "unknown field"));
    }
    let get = |f: &str| fields.get(f).ok_or_else(|| err(file, field(&format!("`{f}`")), "missing"));
    let dtype = match get("dtype")? {
        Json::String(s) => Dtype::from_name(s).ok_or_else(|| {
            err(
                file,
                field("`dtype`"),
                format!(
                    "unknown dtype `{}` (known: {})",
                    shown(s),
                    DTYPES.iter().map(|d| d.1).collect::<Vec<_>>().join(", ")
                ),
            )
        })?,
        other => return Err(err(file, field("`dtype`"), format!("expected a string, found {}", kind(other)))),
    };
    let Json::Array(dims) = get("shape")? else {
        return Err(err(file, field("`shape`"), "expected an array of non-negative integers"));
    };
    let shape = dims
        .iter()
        .enumerate()
        .map(|(i, d)| {
            d.as_u64().ok_or_else(|| err(file, field(&format!("`shape`[{i}]")), "not a non-negative integer"))
        })
        .collect::<Result<Vec<u64>, Error>>()?;
    let offsets = match get("data_offsets")? {
        Json::Array(o) if o.len() == 2 => o,
        _ => return Err(err(file, field("`data_offsets`"), "expected an array of two integers [begin, end]")),
    };
    let offset = |i: usize| {
        offsets[i]
            .as_u64()
            .ok_or_else(|| err(file, field(&format!("`data_offsets`[{i}]")), "not a non-negative integer"))
    };
    let (begin, end) = (offset(0)?, offset(1)?);
    if begin > end {
        return Err(err(file, field("`data_offsets`"), format!("begin {begin} is after end {end}")));
    }
    let bytes = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d)).and_then(|n| n.checked_mul(dtype.size()));
    if bytes != Some(end - begin) {
        let needs = bytes.map_or_else(|| "more than 2^64".to_owned(), |b| b.to_string());
        return Err(err(
            file,
            field("`shape`"),
            format!(
                "shape {shape:?} of {dtype} needs {needs} bytes but `data_offsets` [{begin}, {end}] span {}",
                end - begin
            ),
        ));
    }
    // The tiling check compares these with the data length; until then keep
    // them saturated rather than wrapped.
    let abs = |o: u64| usize::try_from(o).ok().and_then(|o| o.checked_add(data_start)).unwrap_or(usize::MAX);
    Ok(TensorInfo { name: name.to_owned(), dtype, shape, range: abs(begin)..abs(end) })
}

/// Sorts `tensors` by offset and checks they tile the data section exactly.
fn check_tiling(file: &str, tensors: &mut [TensorInfo], data_start: usize, data_len: usize) -> Result<(), Error> {
    tensors.sort_by(|a, b| (a.range.start, a.range.end, &a.name).cmp(&(b.range.start, b.range.end, &b.name)));
    let rel = |o: usize| o.saturating_sub(data_start);
    let mut at = data_start;
    let mut prev: Option<&TensorInfo> = None;
    for t in tensors.iter() {
        let field = format!("tensor `{}` `data_offsets`", shown(&t.name));
        let span = format!("[{}, {}]", rel(t.range.start), rel(t.range.end));
        if t.range.start < at {
            // `prev` is set: `at` only moves past `data_start` after one.
            let p = prev.map_or_else(String::new, |p| {
                format!(" of tensor `{}` [{}, {}]", shown(&p.name), rel(p.range.start), rel(p.range.end))
            });
            return Err(err(file, field, format!("{span} overlaps the data{p}")));
        }
        if t.range.start > at {
            return Err(err(
                file,
                field,
                format!(
                    "{span} leaves bytes {}..{} of the data section unused (holes are not allowed)",
                    rel(at),
                    rel(t.range.start)
                ),
            ));
        }
        if rel(t.range.end) > data_len {
            return Err(err(
                file,
                field,
                format!("{span} ends past the data section of {data_len} bytes (truncated file?)"),
            ));
        }
        at = t.range.end;
        prev = Some(t);
    }
    if rel(at) != data_len {
        return Err(err(
            file,
            "data section",
            format!("{data_len} bytes but the tensors cover {} (trailing bytes are not allowed)", rel(at)),
        ));
    }
    Ok(())
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A safetensors file memory-mapped read-only, with its parsed header.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug)]
pub struct MappedSafetensors {
    header: Safetensors,
    map: memmap2::Mmap,
}

#[cfg(not(target_arch = "wasm32"))]
impl MappedSafetensors {
    /// Memory-maps and parses the file at `path` (errors name it by its file
    /// name).
    ///
    /// The file must not be modified or truncated while it is mapped.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or mapped, or as
    /// [`Safetensors::parse`].
    pub fn open(path: &std::path::Path) -> Result<MappedSafetensors, Error> {
        let io = |source| ErrorKind::Io { path: path.to_owned(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: as in `MappedGguf::open_with_limits`: the map is read-only
        // and private to this value, model files are not written while
        // loaded (the documented condition), every byte is validated by
        // `Safetensors::parse_named` before use and later accesses are
        // bounds-checked slices.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let header = Safetensors::parse_named(&map, &name)?;
        Ok(MappedSafetensors { header, map })
    }

    /// The parsed header.
    pub fn header(&self) -> &Safetensors {
        &self.header
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The parsed header and the map.
    pub fn into_parts(self) -> (Safetensors, memmap2::Mmap) {
        (self.header, self.map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(header.as_bytes());
        f.extend_from_slice(data);
        f
    }

    #[track_caller]
    fn fails(bytes: &[u8], needles: &[&str]) {
        let e = Safetensors::parse(bytes).expect_err("must not parse").to_string();
        for n in needles {
            assert!(e.contains(n), "{e:?} lacks {n:?}");
        }
    }

    #[test]
    fn every_dtype_is_listed_once() {
        for &(d, name, size) in DTYPES {
            assert_eq!(Dtype::from_name(name), Some(d));
            assert_eq!(d.name(), name);
            assert_eq!(d.size(), size);
        }
        assert_eq!(DTYPES.len(), 15);
        assert_eq!(Dtype::from_name("f16"), None);
    }

    #[test]
    fn conversions_are_exact() {
        // f16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), -0, inf.
        let f16: [u16; 6] = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00];
        let bytes: Vec<u8> = f16.iter().flat_map(|h| h.to_le_bytes()).collect();
        let mut out = [0.0f32; 6];
        to_f32(Dtype::F16, &bytes, &mut out).unwrap();
        assert_eq!(out[..4], [1.0, -2.0, 65504.0, 2f32.powi(-24)]);
        assert!(out[4] == 0.0 && out[4].is_sign_negative());
        assert_eq!(out[5], f32::INFINITY);
        // bf16: the top half of the f32 bits.
        let bf16: [u16; 4] = [0x3f80, 0xc2f7, 0x0001, 0xff80];
        let bytes: Vec<u8> = bf16.iter().flat_map(|h| h.to_le_bytes()).collect();
        let mut out = [0.0f32; 4];
        to_f32(Dtype::BF16, &bytes, &mut out).unwrap();
        assert_eq!(out[..3], [1.0, -123.5, f32::from_bits(0x0001_0000)]);
        assert_eq!(out[3], f32::NEG_INFINITY);
        let mut out = [0.0f32; 2];
        to_f32(Dtype::F32, &[0, 0, 0xc0, 0x3f, 0x01, 0, 0, 0], &mut out).unwrap();
        assert_eq!(out, [1.5, f32::from_bits(1)]);
        assert!(to_f32(Dtype::F32, &[0; 7], &mut out).unwrap_err().contains("7 bytes"));
        assert!(to_f32(Dtype::I64, &[0; 16], &mut out).unwrap_err().contains("I64 is not a float"));
    }

    #[test]
    fn reads_tensors_and_metadata() {
        let h = r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},
                   "a":{"dtype":"I8","shape":[2,2],"data_offsets":[0,4]},"e":{"dtype":"F16","shape":[0],"data_offsets":[12,12]}}  "#;
        let bytes = file(h, &[1, 2, 3, 4, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
        let st = Safetensors::parse(&bytes).unwrap();
        assert_eq!(st.metadata().get("format").map(String::as_str), Some("pt"));
        let names: Vec<&str> = st.tensors().iter().map(|t| t.name()).collect();
        assert_eq!(names, ["a", "b", "e"]);
        assert_eq!(st.tensor("a").unwrap().shape(), [2, 2]);
        assert_eq!(st.tensor_bytes(&bytes, "a").unwrap(), [1, 2, 3, 4]);
        assert_eq!(st.tensor_f32(&bytes, "b").unwrap(), [1.0, 2.0]);
        assert!(st.tensor_f32(&bytes, "e").unwrap().is_empty());
        assert!(st.tensor_f32(&bytes, "a").unwrap_err().to_string().contains("not a float"));
        assert!(st.tensor_bytes(&bytes, "z").unwrap_err().to_string().contains("`z`"));
        assert!(st.tensor_bytes(&bytes[1..], "a").is_err());
    }

    #[test]
    fn malformed_headers_are_named() {
        let t = |s: &str| format!(r#"{{"t":{s}}}"#);
        fails(&[1, 0, 0], &["header length at byte 0", "needs 8 bytes"]);
        fails(&u64::MAX.to_le_bytes(), &["header length", "limit"]);
        fails(&file("{}", b"")[..9], &["header length", "only 1 bytes follow"]);
        fails(&file("{\"a\":", b""), &["header", "not valid JSON"]);
        fails(&file("[]", b""), &["not a JSON object"]);
        let mut bad_utf8 = file("{\"\"}", b"");
        bad_utf8[9] = 0xff;
        fails(&bad_utf8, &["not UTF-8"]);
        fails(
            &file(&t(r#"{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}"#), &[0]),
            &["`t` `dtype`", "unknown dtype `Q4`"],
        );
        fails(
            &file(&t(r#"{"dtype":5,"shape":[1],"data_offsets":[0,1]}"#), &[0]),
            &["expected a string, found a number"],
        );
        fails(&file(&t(r#"{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}"#), &[0]), &["`shape`[0]"]);
        fails(&file(&t(r#"{"dtype":"U8","data_offsets":[0,1]}"#), &[0]), &["`t` `shape`", "missing"]);
        fails(&file(&t(r#"{"dtype":"U8","shape":[1],"data_offsets":[0]}"#), &[0]), &["`data_offsets`", "two integers"]);
        fails(&file(&t(r#"{"dtype":"U8","shape":[1],"data_offsets":[1,0]}"#), &[0]), &["begin 1 is after end 0"]);
        fails(&file(&t(r#"{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}"#), &[0]), &["`x`", "unknown field"]);
        fails(&file(&t(r#"{"dtype":"F32","shape":[2],"data_offsets":[0,4]}"#), &[0; 4]), &["needs 8 bytes", "span 4"]);
        fails(
            &file(&t(r#"{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}"#), &[0; 4]),
            &["more than 2^64"],
        );
        fails(&file(r#"{"__metadata__":{"a":1}}"#, b""), &["__metadata__.a", "not a string"]);
    }

    #[test]
    fn tensors_must_tile_the_data_section() {
        let two = |a: [u64; 2], b: [u64; 2]| {
            format!(
                r#"{{"a":{{"dtype":"U8","shape":[{}],"data_offsets":[{},{}]}},"b":{{"dtype":"U8","shape":[{}],"data_offsets":[{},{}]}}}}"#,
                a[1] - a[0],
                a[0],
                a[1],
                b[1] - b[0],
                b[0],
                b[1]
            )
        };
        assert!(Safetensors::parse(&file(&two([0, 2], [2, 4]), &[0; 4])).is_ok());
        fails(&file(&two([0, 3], [2, 4]), &[0; 4]), &["`b` `data_offsets`", "[2, 4] overlaps", "`a` [0, 3]"]);
        fails(&file(&two([0, 2], [3, 4]), &[0; 4]), &["`b`", "bytes 2..3", "holes"]);
        fails(&file(&two([1, 2], [2, 4]), &[0; 4]), &["`a`", "bytes 0..1"]);
        fails(&file(&two([0, 2], [2, 5]), &[0; 4]), &["`b`", "ends past the data section of 4 bytes"]);
        fails(&file(&two([0, 2], [2, 3]), &[0; 4]), &["data section", "cover 3"]);
        let huge = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]}}"#;
        fails(&file(huge, &[0]), &["`a`"]);
    }

    #[test]
    fn truncation_at_every_offset_is_an_error() {
        let h = r#"{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[6,8]}}"#;
        let bytes = file(h, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(Safetensors::parse(&bytes).is_ok());
        for n in 0..bytes.len() {
            assert!(Safetensors::parse(&bytes[..n]).is_err(), "truncated to {n} bytes");
        }
    }
}
