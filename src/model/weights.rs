//! The model's tensors, located and checked once at load time.
//!
//! Quantized matrices are not copied: a [`Matrix`] records where its bytes
//! are in the file and its shape, and [`Matrix::view`] builds the kernels'
//! zero-copy [`QuantMatrix`] over the file's bytes when a forward pass needs
//! it (a few comparisons, no allocation). Small f32/f16/bf16 vectors (norm
//! weights, biases, RoPE frequency factors) are converted to `Vec<f32>` once.

use std::ops::Range;

use crate::error::{Error, ErrorKind};
use crate::kernels::quant::{ActivationType, QuantType};
use crate::kernels::{QuantMatrix, F16};
use crate::weights::{GgmlType, Gguf, TensorInfo};

use super::config::ModelConfig;

fn tensor_error(tensor: &str, problem: String) -> Error {
    ErrorKind::ModelTensor { tensor: tensor.to_owned(), problem }.into()
}

/// `dims` with trailing 1s dropped (some writers store a vector as `[n, 1]`).
fn trimmed(dims: &[u64]) -> &[u64] {
    let mut d = dims;
    while let [rest @ .., 1] = d {
        if rest.is_empty() {
            break;
        }
        d = rest;
    }
    d
}

/// A quantized `rows x cols` weight matrix in the file.
#[derive(Clone, Debug)]
pub(crate) struct Matrix {
    range: Range<usize>,
    ty: QuantType,
    rows: usize,
    cols: usize,
}

impl Matrix {
    /// Locates `name`, checks it is `rows x cols` (GGUF dims `[cols, rows]`)
    /// in a type the kernels compute with, and that a view can be built.
    pub(crate) fn load(gguf: &Gguf, data: &[u8], name: &str, rows: usize, cols: usize) -> Result<Matrix, Error> {
        let info = find(gguf, name)?;
        Matrix::from_info(info, data, rows, cols)
    }

    fn from_info(info: &TensorInfo, data: &[u8], rows: usize, cols: usize) -> Result<Matrix, Error> {
        let name = info.name();
        check_dims(info, &[cols as u64, rows as u64])?;
        let ty = info.ggml_type().quant_type().ok_or_else(|| {
            tensor_error(
                name,
                format!(
                    "element type {} is not supported for a matrix (formwork computes with q4_0, q4_1, q5_0, q8_0, \
                     q4_K, q5_K, q6_K)",
                    info.ggml_type()
                ),
            )
        })?;
        let m = Matrix { range: info.byte_range(), ty, rows, cols };
        let bytes = data.get(m.range.clone()).ok_or_else(|| tensor_error(name, "data beyond the buffer".to_owned()))?;
        QuantMatrix::from_bytes(ty, rows, cols, bytes).map_err(|e| tensor_error(name, e.to_string()))?;
        Ok(m)
    }

    /// The kernels' view of the matrix over `data`, the buffer it was loaded
    /// from.
    pub(crate) fn view<'d>(&self, data: &'d [u8]) -> QuantMatrix<'d> {
        // `load` built this very view from the same range of the same bytes
        // (the model owns them, immutably, for its whole life), so neither
        // the slice nor the view can fail here.
        let bytes = &data[self.range.clone()];
        QuantMatrix::from_bytes(self.ty, self.rows, self.cols, bytes)
            .expect("checked by Matrix::load on the same bytes and shape")
    }

    /// The activation format this matrix multiplies with.
    pub(crate) fn activation(&self) -> ActivationType {
        self.ty.activation()
    }

    /// Bytes read by one product.
    pub(crate) fn byte_len(&self) -> usize {
        self.range.len()
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }
}

fn find<'g>(gguf: &'g Gguf, name: &str) -> Result<&'g TensorInfo, Error> {
    gguf.tensor(name).ok_or_else(|| ErrorKind::MissingTensor { name: name.to_owned() }.into())
}

fn check_dims(info: &TensorInfo, expected: &[u64]) -> Result<(), Error> {
    if trimmed(info.dims()) != trimmed(expected) {
        return Err(tensor_error(
            info.name(),
            format!("dims {:?}, expected {:?} (GGML order: row length first)", info.dims(), expected),
        ));
    }
    Ok(())
}

/// Reads an f32, f16 or bf16 tensor of `len` elements into a `Vec<f32>`.
pub(crate) fn load_vector(gguf: &Gguf, data: &[u8], name: &str, len: usize) -> Result<Vec<f32>, Error> {
    let info = find(gguf, name)?;
    check_dims(info, &[len as u64])?;
    let bytes = data.get(info.byte_range()).ok_or_else(|| tensor_error(name, "data beyond the buffer".to_owned()))?;
    let values: Vec<f32> = match info.ggml_type() {
        GgmlType::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        GgmlType::F16 => bytes.chunks_exact(2).map(|b| F16([b[0], b[1]]).to_f32()).collect(),
        GgmlType::BF16 => {
            bytes.chunks_exact(2).map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)).collect()
        }
        other => {
            return Err(tensor_error(
                name,
                format!("element type {other} is not supported for a vector (f32, f16, bf16)"),
            ))
        }
    };
    if values.len() != len {
        return Err(tensor_error(name, format!("{} elements of data, expected {len}", values.len())));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(tensor_error(name, format!("element {i} is {} (not finite)", values[i])));
    }
    Ok(values)
}

/// The token embedding: one row is dequantized (or converted) per token.
#[derive(Clone, Debug)]
pub(crate) enum Embedding {
    /// A quantized matrix (`dequantize_row`).
    Quant(Matrix),
    /// Plain f32 or f16 rows.
    Plain { range: Range<usize>, ty: GgmlType, cols: usize },
}

impl Embedding {
    pub(crate) fn load(gguf: &Gguf, data: &[u8], vocab: usize, n_embd: usize) -> Result<Embedding, Error> {
        let name = "token_embd.weight";
        let info = find(gguf, name)?;
        match info.ggml_type() {
            GgmlType::F32 | GgmlType::F16 => {
                check_dims(info, &[n_embd as u64, vocab as u64])?;
                let ty = info.ggml_type();
                let expected = (vocab as u64).checked_mul(n_embd as u64).and_then(|n| ty.bytes_for(n));
                if expected != Some(info.byte_len() as u64) || data.get(info.byte_range()).is_none() {
                    return Err(tensor_error(name, "data length does not match its dims".to_owned()));
                }
                Ok(Embedding::Plain { range: info.byte_range(), ty, cols: n_embd })
            }
            _ => Ok(Embedding::Quant(Matrix::from_info(info, data, vocab, n_embd)?)),
        }
    }

    /// Writes row `token` (checked `< vocab` by the caller) into `out`.
    pub(crate) fn row(&self, data: &[u8], token: usize, out: &mut [f32]) {
        match self {
            Embedding::Quant(m) => m.view(data).dequantize_row(token, out),
            Embedding::Plain { range, ty, cols } => {
                // In range: `load` checked the byte length for vocab x cols
                // elements and the caller checked `token < vocab`.
                let width = if *ty == GgmlType::F32 { 4 } else { 2 };
                let start = range.start + token * cols * width;
                let bytes = &data[start..start + cols * width];
                if *ty == GgmlType::F32 {
                    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                        *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    }
                } else {
                    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                        *o = F16([b[0], b[1]]).to_f32();
                    }
                }
            }
        }
    }
}

/// One transformer block.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    pub(crate) attn_norm: Vec<f32>,
    pub(crate) wq: Matrix,
    pub(crate) wk: Matrix,
    pub(crate) wv: Matrix,
    /// Q, K, V biases (qwen2).
    pub(crate) bias: Option<[Vec<f32>; 3]>,
    /// Per-head query and key RMSNorm weights, `head_dim` each (gemma3).
    pub(crate) qk_norm: Option<[Vec<f32>; 2]>,
    pub(crate) wo: Matrix,
    /// RMSNorm weights of the attention output and of the MLP output
    /// before each joins the residual (gemma3).
    pub(crate) post_norms: Option<[Vec<f32>; 2]>,
    pub(crate) ffn_norm: Vec<f32>,
    pub(crate) gate: Matrix,
    pub(crate) up: Matrix,
    pub(crate) down: Matrix,
    /// Attention window of this layer (positions, the query's own
    /// included); `None`: the whole context.
    pub(crate) window: Option<usize>,
}

/// Every tensor of the model.
#[derive(Clone, Debug)]
pub(crate) struct Weights {
    pub(crate) embedding: Embedding,
    pub(crate) layers: Vec<Layer>,
    pub(crate) output_norm: Vec<f32>,
    /// `output.weight`, or the token embedding when the file ties them.
    pub(crate) output: Matrix,
    /// Per-frequency RoPE divisors (`rope_freqs.weight`, Llama 3), if any.
    pub(crate) rope_freqs: Option<Vec<f32>>,
}

impl Weights {
    pub(crate) fn load(gguf: &Gguf, data: &[u8], c: &ModelConfig) -> Result<Weights, Error> {
        let (d, q, kv, ff) = (c.n_embd, c.q_dim(), c.kv_dim(), c.n_ff);
        let embedding = Embedding::load(gguf, data, c.vocab_size, d)?;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let n = |s: &str| format!("blk.{i}.{s}");
            let bias = if c.architecture.qkv_bias() {
                Some([
                    load_vector(gguf, data, &n("attn_q.bias"), q)?,
                    load_vector(gguf, data, &n("attn_k.bias"), kv)?,
                    load_vector(gguf, data, &n("attn_v.bias"), kv)?,
                ])
            } else {
                None
            };
            let qk_norm = if c.architecture.qk_norm() {
                Some([
                    load_vector(gguf, data, &n("attn_q_norm.weight"), c.head_dim)?,
                    load_vector(gguf, data, &n("attn_k_norm.weight"), c.head_dim)?,
                ])
            } else {
                None
            };
            let post_norms = if c.architecture.post_norms() {
                Some([
                    load_vector(gguf, data, &n("post_attention_norm.weight"), d)?,
                    load_vector(gguf, data, &n("post_ffw_norm.weight"), d)?,
                ])
            } else {
                None
            };
            layers.push(Layer {
                attn_norm: load_vector(gguf, data, &n("attn_norm.weight"), d)?,
                wq: Matrix::load(gguf, data, &n("attn_q.weight"), q, d)?,
                wk: Matrix::load(gguf, data, &n("attn_k.weight"), kv, d)?,
                wv: Matrix::load(gguf, data, &n("attn_v.weight"), kv, d)?,
                bias,
                qk_norm,
                wo: Matrix::load(gguf, data, &n("attn_output.weight"), d, q)?,
                post_norms,
                ffn_norm: load_vector(gguf, data, &n("ffn_norm.weight"), d)?,
                gate: Matrix::load(gguf, data, &n("ffn_gate.weight"), ff, d)?,
                up: Matrix::load(gguf, data, &n("ffn_up.weight"), ff, d)?,
                down: Matrix::load(gguf, data, &n("ffn_down.weight"), d, ff)?,
                window: c.sliding_window.filter(|s| s.is_sliding(i)).map(|s| s.window),
            });
        }
        let output_norm = load_vector(gguf, data, "output_norm.weight", d)?;
        let output = match gguf.tensor("output.weight") {
            Some(_) => Matrix::load(gguf, data, "output.weight", c.vocab_size, d)?,
            None => match &embedding {
                Embedding::Quant(m) => m.clone(),
                Embedding::Plain { ty, .. } => {
                    return Err(tensor_error(
                        "token_embd.weight",
                        format!(
                            "the file has no output.weight, so the embedding doubles as the output matrix, but its \
                             element type {ty} is not a quantized type the kernels multiply with"
                        ),
                    ))
                }
            },
        };
        let rope_freqs = match gguf.tensor("rope_freqs.weight") {
            None => None,
            Some(_) => {
                let f = load_vector(gguf, data, "rope_freqs.weight", c.rope_dim / 2)?;
                if let Some(i) = f.iter().position(|&v| v <= 0.0) {
                    return Err(tensor_error("rope_freqs.weight", format!("element {i} is {} (not positive)", f[i])));
                }
                Some(f)
            }
        };
        Ok(Weights { embedding, layers, output_norm, output, rope_freqs })
    }

    /// Bytes of weights one decode step reads: every matrix once, the norm
    /// vectors, one embedding row.
    pub(crate) fn step_bytes(&self) -> u64 {
        let mut total = self.output.byte_len() as u64 + 4 * self.output_norm.len() as u64;
        for l in &self.layers {
            for m in [&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down] {
                total += m.byte_len() as u64;
            }
            total += 4 * (l.attn_norm.len() + l.ffn_norm.len()) as u64;
            let vectors =
                l.bias.iter().flatten().chain(l.qk_norm.iter().flatten()).chain(l.post_norms.iter().flatten());
            total += 4 * vectors.map(Vec::len).sum::<usize>() as u64;
        }
        let row = match &self.embedding {
            Embedding::Quant(m) => m.byte_len() / m.rows().max(1),
            Embedding::Plain { ty, cols, .. } => cols * if *ty == GgmlType::F32 { 4 } else { 2 },
        };
        total + row as u64
    }
}
