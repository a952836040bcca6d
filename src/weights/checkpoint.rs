//! Hugging Face checkpoints (a directory with `config.json` and safetensors
//! weights) converted on load into the GGUF the model code reads.
//!
//! One source of truth for model loading: a checkpoint becomes an in-memory
//! GGUF file ([`crate::weights::gguf_write`]) with the metadata keys and
//! tensor names llama.cpp's converter would give it, and the model loads
//! that exactly as it loads a GGUF file. Matrices are quantized on load
//! ([`Quantize`]; the kernels compute with quantized weights only); norms
//! and biases stay f32.
//!
//! Supported: `model_type` `llama` (Llama, SmolLM2; `rope_scaling` none,
//! `linear` or `llama3`) and `qwen2` (Qwen2, Qwen2.5). Weights in F32, F16
//! or BF16, in `model.safetensors` or sharded
//! (`model.safetensors.index.json`).
//!
//! ## What the conversion does
//!
//! - `config.json` → `general.architecture` and the `{arch}.*` keys
//!   (`block_count`, `context_length`, `embedding_length`,
//!   `feed_forward_length`, `attention.head_count`, `head_count_kv`,
//!   `key_length`/`value_length` when `head_dim` is given,
//!   `attention.layer_norm_rms_epsilon`, `rope.freq_base`, rope scaling).
//! - Tensor names: `model.embed_tokens.weight` → `token_embd.weight`,
//!   `model.layers.N.self_attn.q_proj.weight` → `blk.N.attn_q.weight`, and so
//!   on; `lm_head.weight` → `output.weight`, left out when the embeddings are
//!   tied.
//! - Llama's Q and K rows: Hugging Face's checkpoints order each head's rows
//!   as two halves (the rotate-half RoPE); formwork's `llama` RoPE rotates
//!   interleaved pairs, as Meta's original weights and GGUF files are laid
//!   out. Row `2i + j` of a head is taken from row `j * head_dim / 2 + i`.
//!   (Qwen2 uses rotate-half RoPE in formwork too: no reordering.)
//! - Every tensor the checkpoint holds must be used (apart from
//!   `rotary_emb.inv_freq` buffers), and every tensor the model needs must be
//!   present with the shape `config.json` implies; errors name the tensor.
//!
//! The converted size is known from the headers before any tensor is
//! converted ([`Conversion::tensor_data_len`],
//! [`Conversion::memory_estimate`]): a memory budget is checked before the
//! allocation.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::error::{Error, ErrorKind};
use crate::kernels::quant::{blocks_as_bytes, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ8_0, QK};
use crate::kernels::scalar;

use super::gguf::shown;
use super::gguf_write::GgufWriter;
use super::safetensors::{to_f32, Safetensors, TensorInfo};
use super::{GgmlType, KvCacheShape, MemoryEstimate, Value, WeightFile};

/// The weight format matrices are quantized to on load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quantize {
    /// 8-bit (34 bytes per 32 weights): closest to the checkpoint.
    #[default]
    Q8_0,
    /// 4-bit with a scale (18 bytes per 32 weights).
    Q4_0,
    /// 4-bit with a scale and a minimum (20 bytes per 32 weights).
    Q4_1,
    /// 5-bit with a scale (22 bytes per 32 weights).
    Q5_0,
}

impl Quantize {
    /// The GGUF type of the quantized matrices.
    pub fn ggml_type(self) -> GgmlType {
        match self {
            Quantize::Q8_0 => GgmlType::Q8_0,
            Quantize::Q4_0 => GgmlType::Q4_0,
            Quantize::Q4_1 => GgmlType::Q4_1,
            Quantize::Q5_0 => GgmlType::Q5_0,
        }
    }

    /// Quantizes one row (a multiple of 32 values) into `out`.
    fn row(self, x: &[f32], out: &mut [u8]) {
        fn go<B: Default + Clone + crate::kernels::quant::Block>(x: &[f32], out: &mut [u8], q: fn(&[f32], &mut [B])) {
            let mut blocks = vec![B::default(); x.len() / QK];
            q(x, &mut blocks);
            out.copy_from_slice(blocks_as_bytes(&blocks));
        }
        match self {
            Quantize::Q8_0 => go::<BlockQ8_0>(x, out, scalar::quantize_q8_0),
            Quantize::Q4_0 => go::<BlockQ4_0>(x, out, scalar::quantize_q4_0),
            Quantize::Q4_1 => go::<BlockQ4_1>(x, out, scalar::quantize_q4_1),
            Quantize::Q5_0 => go::<BlockQ5_0>(x, out, scalar::quantize_q5_0),
        }
    }
}

/// How to convert a checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SafetensorsOptions {
    /// The format of the matrices (the token embedding included).
    pub quantize: Quantize,
}

/// The bytes of one safetensors file.
#[derive(Debug)]
enum Bytes {
    #[cfg(not(target_arch = "wasm32"))]
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn get(&self) -> &[u8] {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

#[derive(Debug)]
struct Shard {
    header: Safetensors,
    bytes: Bytes,
}

/// A Hugging Face checkpoint: `config.json` and the parsed safetensors
/// files (memory-mapped on native targets).
#[derive(Debug)]
pub struct Checkpoint {
    config: Json,
    shards: Vec<Shard>,
    /// Tensor name → shard index.
    tensors: BTreeMap<String, usize>,
}

fn err(file: &str, field: impl Into<String>, problem: impl Into<String>) -> Error {
    ErrorKind::Checkpoint { file: file.to_owned(), field: field.into(), problem: problem.into() }.into()
}

const CONFIG: &str = "config.json";
const INDEX: &str = "model.safetensors.index.json";
const SINGLE: &str = "model.safetensors";

impl Checkpoint {
    /// Opens a checkpoint: a directory holding `config.json` and
    /// `model.safetensors` or `model.safetensors.index.json` with its shards,
    /// or a `.safetensors` file whose directory holds `config.json`.
    ///
    /// # Errors
    ///
    /// When a file cannot be read, or is malformed (see
    /// [`crate::weights::safetensors`]); when the index names a shard outside
    /// the directory, or a tensor in a shard that does not hold it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Checkpoint, Error> {
        use super::safetensors::MappedSafetensors;
        let io = |p: &std::path::Path| {
            let p = p.to_owned();
            move |source| -> Error { ErrorKind::Io { path: p, source }.into() }
        };
        let (dir, files): (std::path::PathBuf, Vec<String>) = if path.is_dir() {
            let index = path.join(INDEX);
            if index.is_file() {
                let text = std::fs::read(&index).map_err(io(&index))?;
                (path.to_owned(), shard_names(&text)?)
            } else {
                (path.to_owned(), vec![SINGLE.to_owned()])
            }
        } else {
            let dir = path.parent().unwrap_or(std::path::Path::new(".")).to_owned();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (dir, vec![name])
        };
        let config_path = dir.join(CONFIG);
        let config = std::fs::read(&config_path).map_err(io(&config_path))?;
        let mut shards = Vec::with_capacity(files.len());
        for name in &files {
            let m = MappedSafetensors::open(&dir.join(name))?;
            let (header, map) = m.into_parts();
            shards.push(Shard { header, bytes: Bytes::Mapped(map) });
        }
        Checkpoint::assemble(&config, shards)
    }

    /// A checkpoint held in memory: `config.json`'s bytes and each
    /// safetensors file as (file name, bytes).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn from_bytes(config_json: &[u8], files: Vec<(String, Vec<u8>)>) -> Result<Checkpoint, Error> {
        let mut shards = Vec::with_capacity(files.len());
        for (name, bytes) in files {
            let header = Safetensors::parse_named(&bytes, &name)?;
            shards.push(Shard { header, bytes: Bytes::Owned(bytes) });
        }
        Checkpoint::assemble(config_json, shards)
    }

    fn assemble(config_json: &[u8], shards: Vec<Shard>) -> Result<Checkpoint, Error> {
        let config: Json =
            serde_json::from_slice(config_json).map_err(|e| err(CONFIG, "file", format!("not valid JSON: {e}")))?;
        if !config.is_object() {
            return Err(err(CONFIG, "file", "not a JSON object"));
        }
        let mut tensors = BTreeMap::new();
        for (i, s) in shards.iter().enumerate() {
            for t in s.header.tensors() {
                if let Some(j) = tensors.insert(t.name().to_owned(), i) {
                    return Err(err(
                        s.header.file_name(),
                        format!("tensor `{}`", shown(t.name())),
                        format!("also in {}", shards[j].header.file_name()),
                    ));
                }
            }
        }
        Ok(Checkpoint { config, shards, tensors })
    }

    /// Every tensor name, with its info.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorInfo> + '_ {
        self.shards.iter().flat_map(|s| s.header.tensors())
    }

    fn tensor(&self, name: &str) -> Option<(&TensorInfo, &Shard)> {
        let s = &self.shards[*self.tensors.get(name)?];
        Some((s.header.tensor(name)?, s))
    }

    /// Plans the conversion: reads `config.json`, maps every tensor and
    /// checks its shape and dtype; converts nothing yet.
    ///
    /// # Errors
    ///
    /// When `model_type` is not supported, a `config.json` key is missing,
    /// mistyped or inconsistent (the error names it), a tensor is missing,
    /// unexpected, of the wrong shape or not F32/F16/BF16, or a matrix row is
    /// not whole blocks of the chosen format.
    pub fn plan(&self, opts: &SafetensorsOptions) -> Result<Conversion<'_>, Error> {
        let c = HfConfig::read(&self.config)?;
        let arch = c.arch;
        let mut w = GgufWriter::new();
        let mut sources = Vec::new();
        let key = |s: &str| format!("{arch}.{s}");
        w.metadata("general.architecture", Value::String(arch.to_owned()));
        w.metadata(key("block_count"), Value::U32(c.n_layer));
        if let Some(ctx) = c.context_len {
            w.metadata(key("context_length"), Value::U32(ctx));
        }
        w.metadata(key("embedding_length"), Value::U32(c.n_embd));
        w.metadata(key("feed_forward_length"), Value::U32(c.n_ff));
        w.metadata(key("attention.head_count"), Value::U32(c.n_head));
        w.metadata(key("attention.head_count_kv"), Value::U32(c.n_head_kv));
        if c.head_dim_given {
            w.metadata(key("attention.key_length"), Value::U32(c.head_dim));
            w.metadata(key("attention.value_length"), Value::U32(c.head_dim));
        }
        w.metadata(key("attention.layer_norm_rms_epsilon"), Value::F32(c.rms_eps));
        w.metadata(key("rope.freq_base"), Value::F32(c.rope_theta));
        if let Rope::Linear(f) = c.rope {
            w.metadata(key("rope.scaling.type"), Value::String("linear".to_owned()));
            w.metadata(key("rope.scaling.factor"), Value::F32(f));
        }

        let (d, ff, hd) = (u64::from(c.n_embd), u64::from(c.n_ff), u64::from(c.head_dim));
        let (q, kv) = (u64::from(c.n_head) * hd, u64::from(c.n_head_kv) * hd);
        let quant = opts.quantize;
        let mut used = Vec::new();
        let mut add = |w: &mut GgufWriter, hf: &str, gguf: &str, shape: &[u64], kind: Kind| -> Result<(), Error> {
            let (info, _) = self.tensor(hf).ok_or_else(|| {
                err(CONFIG, format!("tensor `{hf}`"), "missing from the checkpoint (a model of this config needs it)")
            })?;
            let (file, field) = (self.file_of(hf), format!("tensor `{hf}`"));
            if info.shape() != shape {
                return Err(err(
                    &file,
                    field,
                    format!("shape {:?}, expected {shape:?} from config.json", info.shape()),
                ));
            }
            if !info.dtype().is_float() {
                return Err(err(&file, field, format!("dtype {} (formwork converts F32, F16, BF16)", info.dtype())));
            }
            let ty = match kind {
                Kind::Vector => GgmlType::F32,
                Kind::Matrix { .. } => {
                    if shape[1] % QK as u64 != 0 {
                        return Err(err(
                            &file,
                            field,
                            format!(
                                "rows of {} values are not whole blocks of {QK} for {}",
                                shape[1],
                                quant.ggml_type()
                            ),
                        ));
                    }
                    quant.ggml_type()
                }
            };
            // GGML order: row length first.
            let dims: Vec<u64> = shape.iter().rev().copied().collect();
            w.tensor(gguf, &dims, ty)?;
            sources.push(Source { hf: hf.to_owned(), kind });
            used.push(hf.to_owned());
            Ok(())
        };
        let vocab = self
            .tensor("model.embed_tokens.weight")
            .and_then(|(t, _)| t.shape().first().copied())
            .ok_or_else(|| err(CONFIG, "tensor `model.embed_tokens.weight`", "missing from the checkpoint"))?;
        if let Some(v) = c.vocab_size {
            if v != vocab {
                return Err(err(
                    CONFIG,
                    "`vocab_size`",
                    format!("{v} but `model.embed_tokens.weight` has {vocab} rows"),
                ));
            }
        }
        let plain = Kind::Matrix { permute_heads: None };
        add(&mut w, "model.embed_tokens.weight", "token_embd.weight", &[vocab, d], plain)?;
        for i in 0..c.n_layer {
            let hf = |s: &str| format!("model.layers.{i}.{s}");
            let g = |s: &str| format!("blk.{i}.{s}");
            let (pq, pk) = if arch == "llama" { (Some(c.n_head), Some(c.n_head_kv)) } else { (None, None) };
            add(&mut w, &hf("input_layernorm.weight"), &g("attn_norm.weight"), &[d], Kind::Vector)?;
            add(
                &mut w,
                &hf("self_attn.q_proj.weight"),
                &g("attn_q.weight"),
                &[q, d],
                Kind::Matrix { permute_heads: pq },
            )?;
            add(
                &mut w,
                &hf("self_attn.k_proj.weight"),
                &g("attn_k.weight"),
                &[kv, d],
                Kind::Matrix { permute_heads: pk },
            )?;
            add(&mut w, &hf("self_attn.v_proj.weight"), &g("attn_v.weight"), &[kv, d], plain)?;
            if arch == "qwen2" {
                add(&mut w, &hf("self_attn.q_proj.bias"), &g("attn_q.bias"), &[q], Kind::Vector)?;
                add(&mut w, &hf("self_attn.k_proj.bias"), &g("attn_k.bias"), &[kv], Kind::Vector)?;
                add(&mut w, &hf("self_attn.v_proj.bias"), &g("attn_v.bias"), &[kv], Kind::Vector)?;
            }
            add(&mut w, &hf("self_attn.o_proj.weight"), &g("attn_output.weight"), &[d, q], plain)?;
            add(&mut w, &hf("post_attention_layernorm.weight"), &g("ffn_norm.weight"), &[d], Kind::Vector)?;
            add(&mut w, &hf("mlp.gate_proj.weight"), &g("ffn_gate.weight"), &[ff, d], plain)?;
            add(&mut w, &hf("mlp.up_proj.weight"), &g("ffn_up.weight"), &[ff, d], plain)?;
            add(&mut w, &hf("mlp.down_proj.weight"), &g("ffn_down.weight"), &[d, ff], plain)?;
        }
        add(&mut w, "model.norm.weight", "output_norm.weight", &[d], Kind::Vector)?;
        if c.tied {
            // The same matrix as the embedding: not stored twice.
            if self.tensor("lm_head.weight").is_some() {
                used.push("lm_head.weight".to_owned());
            }
        } else if self.tensor("lm_head.weight").is_some() {
            add(&mut w, "lm_head.weight", "output.weight", &[vocab, d], plain)?;
        } else {
            return Err(err(
                CONFIG,
                "`tie_word_embeddings`",
                "false, but the checkpoint has no `lm_head.weight` (the output matrix)",
            ));
        }
        let rope_freqs = match c.rope {
            Rope::Llama3 { factor, low_freq_factor, high_freq_factor, original_context } => {
                let half = c.head_dim / 2;
                w.tensor("rope_freqs.weight", &[u64::from(half)], GgmlType::F32)?;
                Some(llama3_rope_factors(
                    c.rope_theta,
                    c.head_dim,
                    factor,
                    low_freq_factor,
                    high_freq_factor,
                    original_context,
                ))
            }
            _ => None,
        };
        used.sort();
        if let Some(extra) =
            self.tensors.keys().find(|k| used.binary_search(k).is_err() && !k.ends_with("rotary_emb.inv_freq"))
        {
            return Err(err(
                &self.file_of(extra),
                format!("tensor `{}`", shown(extra)),
                format!("not part of a `{arch}` model as formwork runs it (unexpected tensor)"),
            ));
        }
        let kv_shape = KvCacheShape {
            block_count: u64::from(c.n_layer),
            head_count_kv: u64::from(c.n_head_kv),
            key_length: hd,
            value_length: hd,
        };
        Ok(Conversion { checkpoint: self, writer: w, sources, rope_freqs, kv_shape, context_len: c.context_len, quant })
    }

    fn file_of(&self, name: &str) -> String {
        self.tensors.get(name).map_or_else(|| CONFIG.to_owned(), |&i| self.shards[i].header.file_name().to_owned())
    }
}

/// The shard file names of an index (`weight_map` values), deduplicated in
/// order; each must be a plain file name ending in `.safetensors`.
fn shard_names(index: &[u8]) -> Result<Vec<String>, Error> {
    let json: Json = serde_json::from_slice(index).map_err(|e| err(INDEX, "file", format!("not valid JSON: {e}")))?;
    let Some(Json::Object(map)) = json.get("weight_map") else {
        return Err(err(INDEX, "`weight_map`", "missing or not an object"));
    };
    let mut names: Vec<String> = Vec::new();
    for (tensor, file) in map {
        let field = || format!("`weight_map`.`{}`", shown(tensor));
        let Json::String(f) = file else {
            return Err(err(INDEX, field(), "not a string"));
        };
        let plain = !f.contains(['/', '\\']) && f != ".." && f.ends_with(".safetensors");
        if !plain {
            return Err(err(
                INDEX,
                field(),
                format!("`{}` is not a .safetensors file name in the directory", shown(f)),
            ));
        }
        if !names.contains(f) {
            names.push(f.clone());
        }
    }
    if names.is_empty() {
        return Err(err(INDEX, "`weight_map`", "empty"));
    }
    Ok(names)
}

/// How a tensor is converted.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// To f32.
    Vector,
    /// Quantized row by row; `permute_heads`: reorder each of that many
    /// heads' rows from rotate-half to interleaved order.
    Matrix { permute_heads: Option<u32> },
}

#[derive(Debug)]
struct Source {
    hf: String,
    kind: Kind,
}

/// A planned conversion: the GGUF header is laid out, sizes are known.
#[derive(Debug)]
pub struct Conversion<'c> {
    checkpoint: &'c Checkpoint,
    writer: GgufWriter,
    sources: Vec<Source>,
    rope_freqs: Option<Vec<f32>>,
    kv_shape: KvCacheShape,
    context_len: Option<u32>,
    quant: Quantize,
}

impl Conversion<'_> {
    /// Bytes of converted tensor data (without the padding between
    /// tensors: the figure [`crate::weights::Gguf::tensor_data_len`] gives
    /// for the converted file).
    pub fn tensor_data_len(&self) -> u64 {
        self.writer.tensors().iter().map(|t| t.len).sum()
    }

    /// Bytes of the GGUF file [`write`](Self::write) produces.
    pub fn file_len(&self) -> u64 {
        self.writer.file_len()
    }

    /// What the converted model needs in memory for `context_len` tokens
    /// (capped at the trained context, as the model does) with
    /// `kv_element_bytes`-byte KV cache elements: the figure
    /// [`crate::weights::Gguf::memory_estimate`] gives for the converted
    /// file, known before converting.
    ///
    /// # Errors
    ///
    /// When the KV cache size overflows a `u64`.
    pub fn memory_estimate(&self, context_len: u64, kv_element_bytes: u64) -> Result<MemoryEstimate, Error> {
        let ctx = self.context_len.map_or(context_len, |t| context_len.min(u64::from(t)));
        let kv_cache = self.kv_shape.bytes(ctx, kv_element_bytes).ok_or_else(|| {
            err(CONFIG, "`num_hidden_layers`", format!("the KV cache for {ctx} tokens overflows a u64 byte count"))
        })?;
        Ok(MemoryEstimate { weights: self.tensor_data_len(), kv_cache })
    }

    /// Converts every tensor into a GGUF file in memory.
    ///
    /// # Errors
    ///
    /// When a value is not finite (the error names the tensor and element),
    /// or the file does not fit the address space.
    pub fn write(&self) -> Result<Vec<u8>, Error> {
        let mut row = Vec::new();
        self.writer.write(|i, out| {
            let Some(src) = self.sources.get(i) else {
                // The one tensor not from the checkpoint: rope_freqs.
                for (o, v) in out.chunks_exact_mut(4).zip(self.rope_freqs.iter().flatten()) {
                    o.copy_from_slice(&v.to_le_bytes());
                }
                return Ok(());
            };
            // Planned from these tensors: both lookups succeed.
            let Some((info, shard)) = self.checkpoint.tensor(&src.hf) else {
                return Err(err(CONFIG, format!("tensor `{}`", src.hf), "missing"));
            };
            let bytes = shard.header.tensor_bytes(shard.bytes.get(), &src.hf)?;
            let fail = |p: String| err(shard.header.file_name(), format!("tensor `{}`", shown(&src.hf)), p);
            let size = info.dtype().size() as usize;
            match src.kind {
                Kind::Vector => {
                    let n = out.len() / 4;
                    row.resize(n, 0.0);
                    to_f32(info.dtype(), bytes, &mut row).map_err(fail)?;
                    check_finite(&row, 0).map_err(fail)?;
                    for (o, v) in out.chunks_exact_mut(4).zip(&row) {
                        o.copy_from_slice(&v.to_le_bytes());
                    }
                }
                Kind::Matrix { permute_heads } => {
                    let (rows, cols) = (info.shape()[0] as usize, info.shape()[1] as usize);
                    if rows == 0 {
                        return Ok(());
                    }
                    let out_row = out.len() / rows;
                    let head = permute_heads.map(|h| rows / h as usize);
                    if head.is_some_and(|h| h % 2 != 0 || h == 0) {
                        return Err(fail(format!("{rows} rows do not split into heads of an even size")));
                    }
                    row.resize(cols, 0.0);
                    for r in 0..rows {
                        let from = match head {
                            // Row 2i + j of a head ← row j * half + i.
                            Some(h) => {
                                let (base, k) = (r / h * h, r % h);
                                base + (k % 2) * (h / 2) + k / 2
                            }
                            None => r,
                        };
                        let src_row = &bytes[from * cols * size..(from + 1) * cols * size];
                        to_f32(info.dtype(), src_row, &mut row).map_err(fail)?;
                        check_finite(&row, from * cols).map_err(fail)?;
                        self.quant.row(&row, &mut out[r * out_row..(r + 1) * out_row]);
                    }
                }
            }
            Ok(())
        })
    }

    /// Converts and parses: the model's input.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn into_weight_file(self) -> Result<WeightFile, Error> {
        WeightFile::from_bytes(self.write()?)
    }
}

fn check_finite(values: &[f32], first: usize) -> Result<(), String> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(format!("element {} is {} (not finite)", first + i, values[i])),
        None => Ok(()),
    }
}

#[derive(Clone, Copy, Debug)]
enum Rope {
    None,
    Linear(f32),
    Llama3 { factor: f32, low_freq_factor: f32, high_freq_factor: f32, original_context: f32 },
}

/// The `config.json` fields the conversion uses.
#[derive(Debug)]
struct HfConfig {
    arch: &'static str,
    n_layer: u32,
    n_embd: u32,
    n_ff: u32,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    head_dim_given: bool,
    context_len: Option<u32>,
    vocab_size: Option<u64>,
    rms_eps: f32,
    rope_theta: f32,
    rope: Rope,
    tied: bool,
}

impl HfConfig {
    fn read(j: &Json) -> Result<HfConfig, Error> {
        let bad = |k: &str, p: String| err(CONFIG, format!("`{k}`"), p);
        let present = |k: &str| j.get(k).filter(|v| !v.is_null());
        let count = |k: &str| -> Result<Option<u32>, Error> {
            present(k)
                .map(|v| match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    Some(0) => Err(bad(k, "must not be 0".to_owned())),
                    Some(n) => Ok(n),
                    None => Err(bad(k, format!("expected a positive integer below 2^32, found {v}"))),
                })
                .transpose()
        };
        let required = |k: &str| count(k)?.ok_or_else(|| bad(k, "missing".to_owned()));
        let float = |k: &str, default: f32| -> Result<f32, Error> {
            match present(k) {
                None => Ok(default),
                Some(v) => match v.as_f64() {
                    Some(x) if x.is_finite() && x > 0.0 => Ok(x as f32),
                    _ => Err(bad(k, format!("expected a positive number, found {v}"))),
                },
            }
        };
        let model_type = present("model_type").and_then(Json::as_str).unwrap_or("");
        let arch = match model_type {
            "llama" => "llama",
            "qwen2" => "qwen2",
            other => {
                return Err(bad(
                    "model_type",
                    format!("`{}` is not supported (formwork converts llama, qwen2)", shown(other)),
                ))
            }
        };
        let n_embd = required("hidden_size")?;
        let n_head = required("num_attention_heads")?;
        let n_head_kv = count("num_key_value_heads")?.unwrap_or(n_head);
        if n_head % n_head_kv != 0 {
            return Err(bad("num_key_value_heads", format!("{n_head_kv} does not divide {n_head} attention heads")));
        }
        let (head_dim, head_dim_given) = match count("head_dim")? {
            Some(h) => (h, u64::from(h) * u64::from(n_head) != u64::from(n_embd)),
            None if n_embd % n_head == 0 => (n_embd / n_head, false),
            None => return Err(bad("num_attention_heads", format!("{n_head} does not divide hidden_size {n_embd}"))),
        };
        if head_dim % 2 != 0 {
            return Err(bad("head_dim", format!("{head_dim} is odd (RoPE rotates pairs)")));
        }
        let rope_theta = float("rope_theta", 10_000.0)?;
        let rope = match present("rope_scaling") {
            None => Rope::None,
            Some(s) => {
                let ty = s.get("rope_type").or_else(|| s.get("type")).and_then(Json::as_str).unwrap_or("");
                let num = |k: &str, default: Option<f32>| -> Result<f32, Error> {
                    match (s.get(k), default) {
                        (None, Some(d)) => Ok(d),
                        (None, None) => Err(bad(&format!("rope_scaling.{k}"), "missing".to_owned())),
                        (Some(v), _) => match v.as_f64() {
                            Some(x) if x.is_finite() && x > 0.0 => Ok(x as f32),
                            _ => {
                                Err(bad(&format!("rope_scaling.{k}"), format!("expected a positive number, found {v}")))
                            }
                        },
                    }
                };
                match ty {
                    "default" => Rope::None,
                    "linear" => Rope::Linear(num("factor", None)?),
                    "llama3" => Rope::Llama3 {
                        factor: num("factor", None)?,
                        low_freq_factor: num("low_freq_factor", Some(1.0))?,
                        high_freq_factor: num("high_freq_factor", Some(4.0))?,
                        original_context: num("original_max_position_embeddings", Some(8192.0))?,
                    },
                    other => {
                        return Err(bad(
                            "rope_scaling",
                            format!("type `{}` is not supported (linear, llama3)", shown(other)),
                        ))
                    }
                }
            }
        };
        if let Rope::Llama3 { low_freq_factor, high_freq_factor, .. } = rope {
            if high_freq_factor <= low_freq_factor {
                return Err(bad("rope_scaling.high_freq_factor", "must exceed low_freq_factor".to_owned()));
            }
        }
        let tied = match present("tie_word_embeddings") {
            None => false,
            Some(Json::Bool(b)) => *b,
            Some(v) => return Err(bad("tie_word_embeddings", format!("expected a boolean, found {v}"))),
        };
        Ok(HfConfig {
            arch,
            n_layer: required("num_hidden_layers")?,
            n_embd,
            n_ff: required("intermediate_size")?,
            n_head,
            n_head_kv,
            head_dim,
            head_dim_given,
            context_len: count("max_position_embeddings")?,
            vocab_size: count("vocab_size")?.map(u64::from),
            rms_eps: float("rms_norm_eps", 1e-6)?,
            rope_theta,
            rope,
            tied,
        })
    }
}

/// Llama 3's per-frequency RoPE divisors (`rope_freqs.weight`): 1 for
/// wavelengths shorter than `original_context / high_freq_factor`, `factor`
/// for those longer than `original_context / low_freq_factor`, a smooth
/// blend between.
fn llama3_rope_factors(theta: f32, head_dim: u32, factor: f32, low: f32, high: f32, original: f32) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| {
            let freq = 1.0 / f64::from(theta).powf(f64::from(2 * i) / f64::from(head_dim));
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            let (factor, low, high, original) =
                (f64::from(factor), f64::from(low), f64::from(high), f64::from(original));
            let f = if wavelen < original / high {
                1.0
            } else if wavelen > original / low {
                factor
            } else {
                let smooth = (original / wavelen - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            };
            f as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_factors_blend_between_one_and_factor() {
        let f = llama3_rope_factors(500_000.0, 64, 32.0, 1.0, 4.0, 8192.0);
        assert_eq!(f.len(), 32);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[31], 32.0);
        assert!(f.windows(2).all(|w| w[0] <= w[1]), "{f:?}");
        assert!(f.iter().any(|&x| x > 1.0 && x < 32.0), "{f:?}");
    }

    #[test]
    fn shard_names_must_stay_in_the_directory() {
        let ok = br#"{"weight_map":{"a":"x-1.safetensors","b":"x-2.safetensors","c":"x-1.safetensors"}}"#;
        assert_eq!(shard_names(ok).unwrap(), ["x-1.safetensors", "x-2.safetensors"]);
        for bad in [
            r#"{"weight_map":{"a":"../x.safetensors"}}"#,
            r#"{"weight_map":{"a":"x.bin"}}"#,
            r#"{"weight_map":{}}"#,
            "{}",
        ] {
            assert!(shard_names(bad.as_bytes()).unwrap_err().to_string().contains("weight_map"), "{bad}");
        }
    }
}
