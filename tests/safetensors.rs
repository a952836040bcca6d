//! Safetensors checkpoints: the reader against malformed files (each error
//! names the file and field, never a panic), the Hugging Face → GGUF
//! conversion against malformed checkpoints, and a round trip through the
//! default model: SmolLM2-135M's GGUF dequantized, written as a Hugging Face
//! checkpoint (bf16 matrices, HF tensor names and Q/K row order, sharded
//! with an index), loaded back with Q8_0 quantization, and compared with the
//! GGUF model.

#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use formwork::kernels::quant::QuantType;
use formwork::kernels::QuantMatrix;
use formwork::model::{Model, ModelOptions};
use formwork::weights::safetensors::{Dtype, Safetensors};
use formwork::weights::{Checkpoint, GgmlType, Quantize, SafetensorsOptions};

// ---------------------------------------------------------------------------
// A safetensors writer (tests only) and a tiny Llama checkpoint.
// ---------------------------------------------------------------------------

/// One tensor: name, dtype, shape, raw little-endian bytes.
struct T {
    name: String,
    dtype: Dtype,
    shape: Vec<u64>,
    data: Vec<u8>,
}

/// A valid safetensors file holding `tensors` in order.
fn write_safetensors(tensors: &[T]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut at = 0u64;
    for t in tensors {
        let end = at + t.data.len() as u64;
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": t.dtype.name(), "shape": t.shape, "data_offsets": [at, end]}),
        );
        at = end;
    }
    let mut json = serde_json::to_string(&header).unwrap();
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    for t in tensors {
        out.extend_from_slice(&t.data);
    }
    out
}

fn bf16_bytes(values: &[f32]) -> Vec<u8> {
    // Round to nearest even (values here are finite).
    values
        .iter()
        .flat_map(|v| {
            let b = v.to_bits();
            let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
            (rounded as u16).to_le_bytes()
        })
        .collect()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Deterministic values in [-scale, scale).
fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

const D: u64 = 64;
const FF: u64 = 96;
const HEADS: u64 = 4;
const KV_HEADS: u64 = 2;
const VOCAB: u64 = 40;
const LAYERS: u64 = 2;

fn tiny_config() -> serde_json::Value {
    serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": D,
        "intermediate_size": FF,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": true,
        "vocab_size": VOCAB,
        "torch_dtype": "bfloat16"
    })
}

/// A tiny Llama checkpoint's tensors (bf16 matrices, f32 norms).
fn tiny_tensors() -> Vec<T> {
    let hd = D / HEADS;
    let mut shapes: Vec<(String, Vec<u64>)> = vec![("model.embed_tokens.weight".into(), vec![VOCAB, D])];
    for i in 0..LAYERS {
        let l = |s: &str| format!("model.layers.{i}.{s}");
        shapes.extend([
            (l("input_layernorm.weight"), vec![D]),
            (l("self_attn.q_proj.weight"), vec![HEADS * hd, D]),
            (l("self_attn.k_proj.weight"), vec![KV_HEADS * hd, D]),
            (l("self_attn.v_proj.weight"), vec![KV_HEADS * hd, D]),
            (l("self_attn.o_proj.weight"), vec![D, HEADS * hd]),
            (l("post_attention_layernorm.weight"), vec![D]),
            (l("mlp.gate_proj.weight"), vec![FF, D]),
            (l("mlp.up_proj.weight"), vec![FF, D]),
            (l("mlp.down_proj.weight"), vec![D, FF]),
        ]);
    }
    shapes.push(("model.norm.weight".into(), vec![D]));
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n: u64 = shape.iter().product();
            if shape.len() == 1 {
                let v: Vec<f32> = values(i as u64, n as usize, 0.1).iter().map(|x| 1.0 + x).collect();
                T { name, dtype: Dtype::F32, shape, data: f32_bytes(&v) }
            } else {
                T { name, dtype: Dtype::BF16, shape, data: bf16_bytes(&values(i as u64, n as usize, 0.3)) }
            }
        })
        .collect()
}

fn checkpoint(config: &serde_json::Value, tensors: &[T]) -> Result<Checkpoint, formwork::Error> {
    Checkpoint::from_bytes(
        config.to_string().as_bytes(),
        vec![("model.safetensors".to_owned(), write_safetensors(tensors))],
    )
}

/// Plans and writes the conversion; the error's message.
fn convert_error(config: &serde_json::Value, tensors: &[T]) -> String {
    match checkpoint(config, tensors).and_then(|c| c.plan(&SafetensorsOptions::default())?.write().map(drop)) {
        Ok(()) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn contains_all(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "{msg:?} lacks {n:?}");
    }
}

// ---------------------------------------------------------------------------
// The reader.
// ---------------------------------------------------------------------------

#[test]
fn truncation_and_byte_mutations_never_panic() {
    let bytes = write_safetensors(&tiny_tensors()[..4]);
    let st = Safetensors::parse(&bytes).expect("valid");
    assert_eq!(st.tensors().len(), 4);
    let header_end = st.data_offset();
    // Truncated anywhere: an error (every cut loses data the header counts).
    for n in 0..bytes.len() {
        let e = Safetensors::parse(&bytes[..n]).err().unwrap_or_else(|| panic!("cut at {n} parsed"));
        assert!(e.to_string().starts_with("safetensors: "), "{e}");
    }
    // Every byte of the header and the first data bytes changed: an error or
    // a valid parse, never a panic; a parse still tiles the file.
    for i in 0..header_end + 16 {
        for delta in [1u8, 0x80, 0xff] {
            let mut m = bytes.clone();
            m[i] = m[i].wrapping_add(delta);
            if let Ok(st) = Safetensors::parse(&m) {
                let covered: usize = st.tensors().iter().map(|t| t.byte_range().len()).sum();
                assert_eq!(covered, m.len() - st.data_offset());
            }
        }
    }
}

#[test]
fn malformed_files_name_the_field() {
    let with_header = |h: &str, data_len: usize| {
        let mut f = (h.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(h.as_bytes());
        f.resize(f.len() + data_len, 0);
        f
    };
    let one = |dtype: &str, shape: &str, offsets: &str| {
        format!(r#"{{"w":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}}}"#)
    };
    let e = |b: &[u8]| Safetensors::parse(b).unwrap_err().to_string();
    contains_all(&e(&(1u64 << 40).to_le_bytes()), &["header length at byte 0", "limit"]);
    contains_all(&e(&with_header("{", 0)), &["header", "not valid JSON"]);
    contains_all(&e(&with_header(&one("F4", "[1]", "[0,1]"), 1)), &["tensor `w` `dtype`", "unknown dtype `F4`"]);
    contains_all(&e(&with_header(&one("F16", "[3]", "[0,4]"), 4)), &["tensor `w` `shape`", "needs 6 bytes", "span 4"]);
    contains_all(&e(&with_header(&one("F32", "[1]", "[0,4]"), 2)), &["tensor `w`", "ends past the data section"]);
    contains_all(&e(&with_header(&one("F32", "[1]", "[0,4]"), 6)), &["data section", "trailing bytes"]);
    let overlap =
        r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#;
    contains_all(&e(&with_header(overlap, 4)), &["tensor `b` `data_offsets`", "overlaps", "`a`"]);
    let named = Safetensors::parse_named(&with_header("{", 0), "model-00001-of-00002.safetensors").unwrap_err();
    contains_all(&named.to_string(), &["model-00001-of-00002.safetensors: header"]);
}

#[test]
fn dtypes_convert_exactly() {
    // Exact in all three types.
    let values = [1.0f32, -2.5, 0.099609375, 61440.0, -0.0];
    let mut tensors = vec![
        T { name: "f32".into(), dtype: Dtype::F32, shape: vec![5], data: f32_bytes(&values) },
        T { name: "bf16".into(), dtype: Dtype::BF16, shape: vec![5], data: bf16_bytes(&values) },
    ];
    // f16 bits of the same values.
    let f16: [u16; 5] = [0x3c00, 0xc100, 0x2e60, 0x7b80, 0x8000];
    tensors.push(T {
        name: "f16".into(),
        dtype: Dtype::F16,
        shape: vec![5],
        data: f16.iter().flat_map(|h| h.to_le_bytes()).collect(),
    });
    let bytes = write_safetensors(&tensors);
    let st = Safetensors::parse(&bytes).unwrap();
    for name in ["f32", "bf16", "f16"] {
        let got = st.tensor_f32(&bytes, name).unwrap();
        assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), values.map(f32::to_bits), "{name}");
    }
}

// ---------------------------------------------------------------------------
// The conversion.
// ---------------------------------------------------------------------------

#[test]
fn tiny_checkpoint_converts_and_runs() {
    let tensors = tiny_tensors();
    let ckpt = checkpoint(&tiny_config(), &tensors).unwrap();
    for q in [Quantize::Q8_0, Quantize::Q4_0, Quantize::Q4_1, Quantize::Q5_0] {
        let plan = ckpt.plan(&SafetensorsOptions { quantize: q }).unwrap();
        let bytes = plan.write().unwrap();
        assert_eq!(bytes.len() as u64, plan.file_len());
        let model = Model::from_bytes(bytes, &ModelOptions { threads: 1, ..ModelOptions::default() }).unwrap();
        let g = model.gguf();
        assert_eq!(g.tensor("blk.1.ffn_up.weight").unwrap().ggml_type(), q.ggml_type());
        assert_eq!(g.tensor("blk.1.ffn_up.weight").unwrap().dims(), [D, FF]);
        assert_eq!(g.tensor("blk.0.attn_norm.weight").unwrap().ggml_type(), GgmlType::F32);
        assert!(g.tensor("output.weight").is_none(), "tied: not stored twice");
        assert_eq!(g.tensor_data_len(), plan.tensor_data_len());
        let c = model.config();
        assert_eq!((c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.vocab_size), (2, 64, 4, 2, 40));
        assert_eq!(c.trained_context_len, Some(256));
        let logits = model.forward_all(&[1, 5, 39], &mut model.new_cache()).unwrap();
        assert!(logits.iter().all(|v| v.is_finite()));
    }
}

/// The norms are copied exactly and the Q rows land in interleaved order.
#[test]
fn norms_are_exact_and_q_rows_are_reordered() {
    let mut tensors = tiny_tensors();
    // q_proj of layer 0: row r holds the value r in every column.
    let hd = D / HEADS;
    let q = tensors.iter_mut().find(|t| t.name == "model.layers.0.self_attn.q_proj.weight").unwrap();
    let rows: Vec<f32> = (0..HEADS * hd).flat_map(|r| std::iter::repeat_n(r as f32, D as usize)).collect();
    q.data = bf16_bytes(&rows);
    let ckpt = checkpoint(&tiny_config(), &tensors).unwrap();
    let bytes = ckpt.plan(&SafetensorsOptions::default()).unwrap().write().unwrap();
    let g = formwork::weights::Gguf::parse(&bytes).unwrap();
    let norm = g.tensor_bytes(&bytes, "blk.1.ffn_norm.weight").unwrap();
    let want = &tensors.iter().find(|t| t.name == "model.layers.1.post_attention_layernorm.weight").unwrap().data;
    assert_eq!(norm, &want[..]);
    let m = QuantMatrix::from_bytes(
        QuantType::Q8_0,
        (HEADS * hd) as usize,
        D as usize,
        g.tensor_bytes(&bytes, "blk.0.attn_q.weight").unwrap(),
    )
    .unwrap();
    let mut row = vec![0.0; D as usize];
    let half = hd / 2;
    for r in 0..HEADS * hd {
        m.dequantize_row(r as usize, &mut row);
        let (h, k) = (r / hd, r % hd);
        let from = h * hd + (k % 2) * half + k / 2;
        // Q8_0 of a constant row is exact (127 * d = value, d in f16).
        assert!((row[0] - from as f32).abs() <= from as f32 * 1e-3, "row {r}: {} from {from}", row[0]);
    }
}

#[test]
fn bad_checkpoints_name_the_key_or_tensor() {
    let mut config = tiny_config();
    config["model_type"] = "gpt2".into();
    contains_all(&convert_error(&config, &tiny_tensors()), &["config.json: `model_type`: `gpt2` is not supported"]);

    let mut config = tiny_config();
    config.as_object_mut().unwrap().remove("hidden_size");
    contains_all(&convert_error(&config, &tiny_tensors()), &["config.json: `hidden_size`: missing"]);

    let mut config = tiny_config();
    config["num_key_value_heads"] = 3.into();
    contains_all(&convert_error(&config, &tiny_tensors()), &["`num_key_value_heads`", "does not divide"]);

    let mut config = tiny_config();
    config["vocab_size"] = 41.into();
    contains_all(&convert_error(&config, &tiny_tensors()), &["`vocab_size`", "40 rows"]);

    let mut config = tiny_config();
    config["tie_word_embeddings"] = false.into();
    contains_all(&convert_error(&config, &tiny_tensors()), &["`tie_word_embeddings`", "no `lm_head.weight`"]);

    let mut config = tiny_config();
    config["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0});
    contains_all(&convert_error(&config, &tiny_tensors()), &["`rope_scaling`", "`yarn` is not supported"]);

    let mut t = tiny_tensors();
    t.retain(|t| t.name != "model.layers.1.mlp.up_proj.weight");
    contains_all(&convert_error(&tiny_config(), &t), &["`model.layers.1.mlp.up_proj.weight`", "missing"]);

    let mut t = tiny_tensors();
    t.push(T {
        name: "model.layers.0.self_attn.q_proj.bias".into(),
        dtype: Dtype::F32,
        shape: vec![D],
        data: vec![0; 256],
    });
    contains_all(
        &convert_error(&tiny_config(), &t),
        &["model.safetensors: tensor `model.layers.0.self_attn.q_proj.bias`", "unexpected"],
    );

    let mut t = tiny_tensors();
    let up = t.iter_mut().find(|t| t.name == "model.layers.0.mlp.up_proj.weight").unwrap();
    up.shape = vec![D, FF];
    contains_all(
        &convert_error(&tiny_config(), &t),
        &["`model.layers.0.mlp.up_proj.weight`", "shape [64, 96], expected [96, 64]"],
    );

    let mut t = tiny_tensors();
    let norm = t.iter_mut().find(|t| t.name == "model.norm.weight").unwrap();
    norm.dtype = Dtype::I32;
    contains_all(&convert_error(&tiny_config(), &t), &["`model.norm.weight`", "dtype I32"]);

    let mut t = tiny_tensors();
    let v = t.iter_mut().find(|t| t.name == "model.layers.1.self_attn.v_proj.weight").unwrap();
    v.data[2 * 70..2 * 70 + 2].copy_from_slice(&0x7fc0u16.to_le_bytes()); // NaN
    contains_all(
        &convert_error(&tiny_config(), &t),
        &["`model.layers.1.self_attn.v_proj.weight`", "element 70 is NaN"],
    );

    // A dimension that is not whole quantization blocks.
    let mut config = tiny_config();
    config["intermediate_size"] = 40.into();
    let mut t = tiny_tensors();
    for t in t.iter_mut().filter(|t| t.name.contains("mlp.")) {
        t.shape = if t.name.contains("down") { vec![D, 40] } else { vec![40, D] };
        t.data.truncate(40 * D as usize * 2);
    }
    contains_all(&convert_error(&config, &t), &["`model.layers.0.mlp.down_proj.weight`", "not whole blocks of 32"]);

    // The same tensor in two shards.
    let tensors = tiny_tensors();
    let shard = write_safetensors(&tensors[..1]);
    let e = Checkpoint::from_bytes(
        tiny_config().to_string().as_bytes(),
        vec![("a.safetensors".into(), shard.clone()), ("b.safetensors".into(), shard)],
    )
    .unwrap_err();
    contains_all(&e.to_string(), &["b.safetensors: tensor `model.embed_tokens.weight`", "also in a.safetensors"]);

    let e = Checkpoint::from_bytes(b"{", vec![]).unwrap_err();
    contains_all(&e.to_string(), &["config.json", "not valid JSON"]);
}

#[test]
fn memory_budget_is_checked_before_converting() {
    let dir = TempDir::new("budget");
    std::fs::write(dir.0.join("config.json"), tiny_config().to_string()).unwrap();
    std::fs::write(dir.0.join("model.safetensors"), write_safetensors(&tiny_tensors())).unwrap();
    let ckpt = Checkpoint::open(&dir.0).unwrap();
    let plan = ckpt.plan(&SafetensorsOptions::default()).unwrap();
    let est = plan.memory_estimate(100, 4).unwrap();
    assert_eq!(est.weights, plan.tensor_data_len());
    // 2 layers * 100 tokens * 2 KV heads * (16 + 16) * 4 bytes.
    assert_eq!(est.kv_cache, 2 * 100 * 2 * 32 * 4);
    let opts = |budget| ModelOptions { threads: 1, context_len: 100, memory_budget: Some(budget) };
    let convert = SafetensorsOptions::default();
    let e = Model::open_safetensors(&dir.0, &opts(est.total() - 1), &convert).unwrap_err();
    contains_all(&e.to_string(), &["memory budget"]);
    Model::open_safetensors(&dir.0, &opts(est.total()), &convert).expect("fits exactly");
    // The context is capped at the trained 256 tokens, as the model does.
    assert_eq!(plan.memory_estimate(10_000, 4).unwrap(), plan.memory_estimate(256, 4).unwrap());
}

// ---------------------------------------------------------------------------
// The round trip through the default model.
// ---------------------------------------------------------------------------

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let p = std::env::temp_dir().join(format!("formwork-safetensors-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The GGUF tensor as f32 rows (`[rows, cols]`, row-major).
fn dequantize(model: &Model, bytes: &[u8], name: &str) -> (Vec<u64>, Vec<f32>) {
    let g = model.gguf();
    let info = g.tensor(name).unwrap_or_else(|| panic!("{name}"));
    let data = g.tensor_bytes(bytes, name).unwrap();
    let dims = info.dims();
    match info.ggml_type() {
        GgmlType::F32 => {
            (vec![dims[0]], data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())
        }
        ty => {
            let (cols, rows) = (dims[0] as usize, dims[1] as usize);
            let m = QuantMatrix::from_bytes(ty.quant_type().unwrap(), rows, cols, data).unwrap();
            let mut out = vec![0.0; rows * cols];
            for (r, row) in out.chunks_exact_mut(cols).enumerate() {
                m.dequantize_row(r, row);
            }
            (vec![rows as u64, cols as u64], out)
        }
    }
}

/// GGUF (interleaved) → Hugging Face (rotate-half) row order of Q or K.
fn to_hf_order(rows: &[f32], cols: usize, heads: usize) -> Vec<f32> {
    let n = rows.len() / cols;
    let hd = n / heads;
    let mut out = vec![0.0; rows.len()];
    for r in 0..n {
        let (h, k) = (r / hd, r % hd);
        // HF row h*hd + j*half + i holds GGUF row h*hd + 2i + j.
        let (i, j) = (k / 2, k % 2);
        let hf = h * hd + j * (hd / 2) + i;
        out[hf * cols..(hf + 1) * cols].copy_from_slice(&rows[r * cols..(r + 1) * cols]);
    }
    out
}

/// Writes the default model as a sharded Hugging Face checkpoint.
fn write_hf_checkpoint(model: &Model, bytes: &[u8], dir: &Path) {
    let c = model.config();
    let mut shards: Vec<Vec<T>> = vec![Vec::new(), Vec::new()];
    let mut weight_map = serde_json::Map::new();
    let mut put = |shard: usize, hf: String, gguf: &str, permute: Option<usize>| {
        let (shape, mut v) = dequantize(model, bytes, gguf);
        if let Some(heads) = permute {
            v = to_hf_order(&v, shape[1] as usize, heads);
        }
        let name = format!("model-0000{}-of-00002.safetensors", shard + 1);
        weight_map.insert(hf.clone(), name.into());
        let t = if shape.len() == 1 {
            T { name: hf, dtype: Dtype::F32, shape, data: f32_bytes(&v) }
        } else {
            T { name: hf, dtype: Dtype::BF16, shape, data: bf16_bytes(&v) }
        };
        shards[shard].push(t);
    };
    put(0, "model.embed_tokens.weight".into(), "token_embd.weight", None);
    for i in 0..c.n_layer {
        let shard = usize::from(i >= c.n_layer / 2);
        let hf = |s: &str| format!("model.layers.{i}.{s}");
        let g = |s: &str| format!("blk.{i}.{s}");
        put(shard, hf("input_layernorm.weight"), &g("attn_norm.weight"), None);
        put(shard, hf("self_attn.q_proj.weight"), &g("attn_q.weight"), Some(c.n_head));
        put(shard, hf("self_attn.k_proj.weight"), &g("attn_k.weight"), Some(c.n_head_kv));
        put(shard, hf("self_attn.v_proj.weight"), &g("attn_v.weight"), None);
        put(shard, hf("self_attn.o_proj.weight"), &g("attn_output.weight"), None);
        put(shard, hf("post_attention_layernorm.weight"), &g("ffn_norm.weight"), None);
        put(shard, hf("mlp.gate_proj.weight"), &g("ffn_gate.weight"), None);
        put(shard, hf("mlp.up_proj.weight"), &g("ffn_up.weight"), None);
        put(shard, hf("mlp.down_proj.weight"), &g("ffn_down.weight"), None);
    }
    put(1, "model.norm.weight".into(), "output_norm.weight", None);
    assert!(model.gguf().tensor("output.weight").is_none(), "SmolLM2 ties its embeddings");
    for (i, s) in shards.iter().enumerate() {
        std::fs::write(dir.join(format!("model-0000{}-of-00002.safetensors", i + 1)), write_safetensors(s)).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let g = model.gguf();
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": c.n_embd,
        "intermediate_size": c.n_ff,
        "num_hidden_layers": c.n_layer,
        "num_attention_heads": c.n_head,
        "num_key_value_heads": c.n_head_kv,
        "max_position_embeddings": c.trained_context_len,
        "rms_norm_eps": g.get_f32("llama.attention.layer_norm_rms_epsilon").unwrap(),
        "rope_theta": g.get_f32("llama.rope.freq_base").unwrap(),
        "rope_scaling": null,
        "tie_word_embeddings": true,
        "vocab_size": c.vocab_size,
        "torch_dtype": "bfloat16"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

/// Max |diff| of the converted model's logits from the GGUF model's, as a
/// fraction of each position's logit range. Observed on the 19-token prompt
/// below: 0.067, with the argmax equal at all 19 positions. The weights
/// differ (Q4_1 → bf16 → Q8_0: bf16 rounding plus Q8_0's grid) and so do
/// the activations (Q8_1 for Q4_1 weights, Q8_0 for Q8_0); tests/model.rs
/// measures 0.04 for activation quantization alone against candle. A wrong
/// Q/K row order or tensor mapping gives differences of the order of the
/// range itself.
const ROUND_TRIP_MAX_REL: f32 = 0.1;

#[test]
fn default_model_round_trips_through_a_checkpoint() {
    let path = match formwork::fetch::default_model_path() {
        Ok(p) => p,
        Err(e) => {
            println!("the default model is not available ({e}): this test did not run");
            return;
        }
    };
    let opts = ModelOptions { threads: 2, ..ModelOptions::default() };
    let gguf_model = Model::open(&path, &opts).expect("loads the GGUF");
    let bytes = std::fs::read(&path).unwrap();
    let dir = TempDir::new("smollm2");
    write_hf_checkpoint(&gguf_model, &bytes, &dir.0);

    let model = Model::open_safetensors(&dir.0, &opts, &SafetensorsOptions { quantize: Quantize::Q8_0 })
        .expect("loads the checkpoint");
    assert_eq!(model.config(), gguf_model.config());
    assert_eq!(model.gguf().tensor("blk.3.attn_k.weight").unwrap().ggml_type(), GgmlType::Q8_0);

    let tok = formwork::tokenizer::Tokenizer::from_json_file(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("grammar/testdata/tokenizers/smollm2-135m.json"),
    )
    .unwrap();
    let prompt = tok.encode("The quick brown fox jumps over the lazy dog. In 1905, Albert Einstein").unwrap();
    let a = gguf_model.forward_all(&prompt, &mut gguf_model.new_cache()).unwrap();
    let b = model.forward_all(&prompt, &mut model.new_cache()).unwrap();
    let vocab = model.config().vocab_size;
    let mut worst = 0.0f32;
    let mut argmax_equal = 0;
    for (pa, pb) in a.chunks_exact(vocab).zip(b.chunks_exact(vocab)) {
        let range =
            pa.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) - pa.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let diff = pa.iter().zip(pb).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        worst = worst.max(diff / range);
        let am = |p: &[f32]| (0..p.len()).max_by(|&i, &j| p[i].total_cmp(&p[j])).unwrap();
        argmax_equal += usize::from(am(pa) == am(pb));
    }
    println!(
        "round trip: {} positions, worst max|diff| / range = {worst:e}, argmax equal at {argmax_equal}",
        prompt.len()
    );
    assert!(worst < ROUND_TRIP_MAX_REL, "worst {worst}");
    assert!(argmax_equal * 10 >= prompt.len() * 8, "argmax equal at {argmax_equal} of {}", prompt.len());

    let mut cache = model.new_cache();
    let mut logits = vec![0.0; vocab];
    model.forward(&tok.encode("The capital of France is").unwrap(), &mut cache, &mut logits).unwrap();
    let mut out = Vec::new();
    for _ in 0..4 {
        let next = (0..vocab).max_by(|&i, &j| logits[i].total_cmp(&logits[j])).unwrap() as u32;
        out.push(next);
        model.forward(&[next], &mut cache, &mut logits).unwrap();
    }
    let text = tok.decode(&out);
    println!("greedy continuation: {text:?}");
    assert!(text.starts_with(" Paris"), "{text:?}");
}
