//! Gemma 3 (`gemma3` GGUF files) against an independent implementation, on
//! small synthetic models written here (no network, no real model).
//!
//! The oracle. candle-transformers 0.11.1's `quantized_gemma3` cannot be
//! compared with formwork directly, because it departs from Gemma 3 (and
//! from llama.cpp) in three places: its MLP uses SiLU where Gemma uses GELU
//! (tanh approximation); its sliding window lets a query see `window + 1`
//! positions where llama.cpp and Hugging Face let it see `window` (the
//! query's own included); and it applies the window only inside a prefill
//! batch that starts at position 0 (never in a decode step). So the test
//! writes its own reference, [`Reference`]: plain Rust for norms, RoPE and
//! attention, and candle's quantized matrix products (`QMatMul`, which
//! quantizes activations to Q8_0 as formwork's kernels do) on the same GGUF
//! bytes. The reference is first checked against candle-transformers'
//! `quantized_gemma3` with candle's three conventions switched on
//! ([`Semantics::Candle`], compared over prefills from position 0, where
//! candle applies its window), then formwork is checked against the
//! reference with Gemma's own conventions ([`Semantics::Gemma`]) at every
//! position of a 12-token prompt, with a window of 4 so that the window
//! matters.
//!
//! Tolerances: logits are compared relative to each position's logit range
//! (max − min). Reference vs candle-transformers: both run candle's products
//! on the same activations, so they can differ only by f32 rounding in
//! norms, RoPE and softmax, which may move an 8-bit activation by one step:
//! [`REFERENCE_MAX_REL`]. Formwork vs reference: formwork's kernels quantize
//! activations to Q8_0 as candle's do, but its sums run in another order and
//! its norms/RoPE round differently, so an activation may land on the other
//! side of a rounding step: [`FORMWORK_MAX_REL`]. On this model both
//! differences are observed to be 0 (bit-identical logits); the limits are
//! far below what a wrong window or activation changes (see
//! `the_window_and_the_activation_matter`).
//!
//! Also: batched prefill equals single steps exactly, truncating the cache
//! (below and across a window) and re-running reproduces the logits
//! exactly, a cloned cache continues identically, final soft-capping, the
//! memory budget, and malformed files refused with errors that name the key
//! or tensor.

#![cfg(not(target_arch = "wasm32"))]

mod support;
use support::{compare, Rng};

use formwork::kernels::quant::{blocks_as_bytes, BlockQ5_0, BlockQ8_0};
use formwork::kernels::scalar;
use formwork::model::{Architecture, Model, ModelOptions};
use formwork::weights::gguf::{GgmlType, Value};
use formwork::weights::gguf_write::GgufWriter;

// ---------------------------------------------------------------------------
// A small GGUF writer and synthetic Gemma 3 models.
// ---------------------------------------------------------------------------

struct Tensor {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    data: Vec<u8>,
}

/// A GGUF v3 file (the library's writer; alignment 32).
fn write_gguf(meta: &[(String, Value)], tensors: &[Tensor]) -> Vec<u8> {
    let mut w = GgufWriter::new();
    for (k, v) in meta {
        w.metadata(k.as_str(), v.clone());
    }
    for t in tensors {
        w.tensor(&t.name, &t.dims, t.ty).expect("distinct, non-empty tensor names");
    }
    w.write(|i, out| {
        out.copy_from_slice(&tensors[i].data);
        Ok(())
    })
    .expect("tensor data of the declared sizes")
}

fn encode(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    match ty {
        GgmlType::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::Q5_0 => {
            let mut b = vec![BlockQ5_0::default(); x.len() / 32];
            scalar::quantize_q5_0(x, &mut b);
            blocks_as_bytes(&b).to_vec()
        }
        GgmlType::Q8_0 => {
            let mut b = vec![BlockQ8_0::default(); x.len() / 32];
            scalar::quantize_q8_0(x, &mut b);
            blocks_as_bytes(&b).to_vec()
        }
        other => panic!("the test does not encode {other}"),
    }
}

/// A synthetic Gemma 3: the real 270M's layout (Q8_0 tied embedding, Q5_0
/// and Q8_0 matrices, f32 norms, one KV head, a head size that is not
/// `n_embd / n_head`) at toy sizes. Seven layers: 0–4 and 6 slide, 5 is
/// global.
#[derive(Clone)]
struct Spec {
    vocab: usize,
    n_embd: usize,
    n_head: usize,
    n_head_kv: usize,
    head_dim: usize,
    n_ff: usize,
    n_layer: usize,
    window: usize,
    context: usize,
    /// `gemma3.final_logit_softcapping`, if written.
    softcap: Option<f32>,
    seed: u64,
}

const ROPE_BASE: f32 = 1_000_000.0;
const ROPE_BASE_LOCAL: f32 = 10_000.0;
const RMS_EPS: f32 = 1e-6;

impl Spec {
    fn small() -> Spec {
        Spec {
            vocab: 300,
            n_embd: 64,
            n_head: 4,
            n_head_kv: 1,
            head_dim: 32,
            n_ff: 128,
            n_layer: 7,
            window: 4,
            context: 64,
            softcap: None,
            seed: 0x6e33_a5a5_0123_4567,
        }
    }

    fn metadata(&self) -> Vec<(String, Value)> {
        let mut m = vec![("general.architecture".to_owned(), Value::String("gemma3".into()))];
        let mut u = |k: &str, v: usize| m.push((format!("gemma3.{k}"), Value::U32(v as u32)));
        u("context_length", self.context);
        u("embedding_length", self.n_embd);
        u("block_count", self.n_layer);
        u("feed_forward_length", self.n_ff);
        u("attention.head_count", self.n_head);
        u("attention.head_count_kv", self.n_head_kv);
        u("attention.key_length", self.head_dim);
        u("attention.value_length", self.head_dim);
        u("attention.sliding_window", self.window);
        m.push(("gemma3.attention.layer_norm_rms_epsilon".to_owned(), Value::F32(RMS_EPS)));
        m.push(("gemma3.rope.freq_base".to_owned(), Value::F32(ROPE_BASE)));
        if let Some(cap) = self.softcap {
            m.push(("gemma3.final_logit_softcapping".to_owned(), Value::F32(cap)));
        }
        m
    }

    fn tensors(&self) -> Vec<Tensor> {
        let mut rng = Rng(self.seed);
        let (d, ff, hd) = (self.n_embd, self.n_ff, self.head_dim);
        let (q, kv) = (self.n_head * hd, self.n_head_kv * hd);
        let mut out = Vec::new();
        let mut matrix = |out: &mut Vec<Tensor>, name: String, rows: usize, cols: usize, ty: GgmlType, scale: f32| {
            let data = encode(ty, &rng.values(rows * cols, scale));
            out.push(Tensor { name, dims: vec![cols as u64, rows as u64], ty, data });
        };
        // Gemma's embeddings are small (they are scaled up by sqrt(n_embd)).
        matrix(&mut out, "token_embd.weight".to_owned(), self.vocab, d, GgmlType::Q8_0, 0.25);
        let wscale = |cols: usize| 1.5 / (cols as f32).sqrt();
        use GgmlType::{Q5_0, Q8_0};
        for l in 0..self.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}");
            matrix(&mut out, n("attn_q.weight"), q, d, Q5_0, 2.0 * wscale(d));
            matrix(&mut out, n("attn_k.weight"), kv, d, Q5_0, 2.0 * wscale(d));
            matrix(&mut out, n("attn_v.weight"), kv, d, Q8_0, wscale(d));
            matrix(&mut out, n("attn_output.weight"), d, q, Q5_0, wscale(q));
            matrix(&mut out, n("ffn_gate.weight"), ff, d, Q5_0, 2.0 * wscale(d));
            matrix(&mut out, n("ffn_up.weight"), ff, d, Q5_0, wscale(d));
            matrix(&mut out, n("ffn_down.weight"), d, ff, Q8_0, wscale(ff));
        }
        // Norm weights as the GGUF holds them: Gemma's `1 + w`, around 1.
        let mut rng = Rng(self.seed ^ 0xffff);
        let mut vector = |out: &mut Vec<Tensor>, name: String, len: usize| {
            let values: Vec<f32> = rng.values(len, 0.4).iter().map(|v| 1.0 + v).collect();
            out.push(Tensor { name, dims: vec![len as u64], ty: GgmlType::F32, data: encode(GgmlType::F32, &values) });
        };
        for l in 0..self.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}");
            vector(&mut out, n("attn_norm.weight"), d);
            vector(&mut out, n("attn_q_norm.weight"), hd);
            vector(&mut out, n("attn_k_norm.weight"), hd);
            vector(&mut out, n("post_attention_norm.weight"), d);
            vector(&mut out, n("ffn_norm.weight"), d);
            vector(&mut out, n("post_ffw_norm.weight"), d);
        }
        vector(&mut out, "output_norm.weight".to_owned(), d);
        out
    }

    fn bytes(&self) -> Vec<u8> {
        write_gguf(&self.metadata(), &self.tensors())
    }

    fn tokens(&self, n: usize) -> Vec<u32> {
        let mut rng = Rng(self.seed ^ 0x1234);
        (0..n).map(|_| ((rng.next() + 1.0) / 2.0 * self.vocab as f32) as u32 % self.vocab as u32).collect()
    }
}

fn one_thread() -> ModelOptions {
    ModelOptions { threads: 1, ..ModelOptions::default() }
}

fn load(bytes: Vec<u8>) -> Model {
    Model::from_bytes(bytes, &one_thread()).expect("the synthetic gemma3 model loads")
}

// ---------------------------------------------------------------------------
// The reference.
// ---------------------------------------------------------------------------

/// Whose conventions the reference follows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Semantics {
    /// Gemma 3 as llama.cpp (and Hugging Face) run it: GELU-tanh MLP, a
    /// window of `window` positions at every position.
    Gemma,
    /// candle-transformers 0.11.1's `quantized_gemma3`: SiLU MLP, a window
    /// of `window + 1` positions (its mask keeps `j + window >= i`).
    Candle,
    /// Gemma, but no layer masks by the window (to show that the window
    /// matters).
    NoWindow,
    /// Gemma, but a SiLU MLP (to show that the activation matters).
    Silu,
}

struct RefLayer {
    wq: candle_core::quantized::QMatMul,
    wk: candle_core::quantized::QMatMul,
    wv: candle_core::quantized::QMatMul,
    wo: candle_core::quantized::QMatMul,
    gate: candle_core::quantized::QMatMul,
    up: candle_core::quantized::QMatMul,
    down: candle_core::quantized::QMatMul,
    attn_norm: Vec<f32>,
    q_norm: Vec<f32>,
    k_norm: Vec<f32>,
    post_attn_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
    post_ffn_norm: Vec<f32>,
}

/// Gemma 3's forward pass over a whole sequence (no cache), written from
/// llama.cpp's graph: candle reads the GGUF and runs the quantized products;
/// everything else is plain f32 (f64 sums) here.
struct Reference {
    spec: Spec,
    embedding: Vec<f32>,
    layers: Vec<RefLayer>,
    output_norm: Vec<f32>,
    output: candle_core::quantized::QMatMul,
}

impl Reference {
    fn new(spec: &Spec, gguf: &[u8]) -> Reference {
        use candle_core::quantized::{gguf_file::Content, QMatMul};
        use candle_core::Device;
        let mut reader = std::io::Cursor::new(gguf);
        let content = Content::read(&mut reader).expect("candle reads the GGUF");
        let mut qt = |name: &str| content.tensor(&mut reader, name, &Device::Cpu).expect(name);
        let values = |t: candle_core::quantized::QTensor| -> Vec<f32> {
            t.dequantize(&Device::Cpu).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).expect("values")
        };
        let embedding = values(qt("token_embd.weight"));
        let output_norm = values(qt("output_norm.weight"));
        let layers = (0..spec.n_layer)
            .map(|l| {
                let n = |s: &str| format!("blk.{l}.{s}");
                RefLayer {
                    attn_norm: values(qt(&n("attn_norm.weight"))),
                    q_norm: values(qt(&n("attn_q_norm.weight"))),
                    k_norm: values(qt(&n("attn_k_norm.weight"))),
                    post_attn_norm: values(qt(&n("post_attention_norm.weight"))),
                    ffn_norm: values(qt(&n("ffn_norm.weight"))),
                    post_ffn_norm: values(qt(&n("post_ffw_norm.weight"))),
                    wq: QMatMul::from_qtensor(qt(&n("attn_q.weight"))).expect("wq"),
                    wk: QMatMul::from_qtensor(qt(&n("attn_k.weight"))).expect("wk"),
                    wv: QMatMul::from_qtensor(qt(&n("attn_v.weight"))).expect("wv"),
                    wo: QMatMul::from_qtensor(qt(&n("attn_output.weight"))).expect("wo"),
                    gate: QMatMul::from_qtensor(qt(&n("ffn_gate.weight"))).expect("gate"),
                    up: QMatMul::from_qtensor(qt(&n("ffn_up.weight"))).expect("up"),
                    down: QMatMul::from_qtensor(qt(&n("ffn_down.weight"))).expect("down"),
                }
            })
            .collect();
        let output = QMatMul::from_qtensor(qt("token_embd.weight")).expect("tied output");
        Reference { spec: spec.clone(), embedding, layers, output_norm, output }
    }

    /// `x` (`[t, cols]`) times the matrix's transpose: `[t, rows]`.
    fn product(m: &candle_core::quantized::QMatMul, x: &[f32], t: usize) -> Vec<f32> {
        use candle_core::Module;
        let input = candle_core::Tensor::from_slice(x, (t, x.len() / t), &candle_core::Device::Cpu).expect("input");
        m.forward(&input).and_then(|y| y.flatten_all()).and_then(|y| y.to_vec1()).expect("product")
    }

    /// RMSNorm of every `w.len()` values of `x`, in place.
    fn norm(x: &mut [f32], w: &[f32]) {
        for row in x.chunks_exact_mut(w.len()) {
            let ms = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / row.len() as f64;
            let inv = 1.0 / (ms + f64::from(RMS_EPS)).sqrt();
            for (v, &g) in row.iter_mut().zip(w) {
                *v = (f64::from(*v) * inv * f64::from(g)) as f32;
            }
        }
    }

    /// NEOX RoPE of every head of `x` (`[t, heads * head_dim]`), position = row.
    fn rope(x: &mut [f32], head_dim: usize, theta: f32, t: usize) {
        let half = head_dim / 2;
        for (pos, row) in x.chunks_exact_mut(x.len() / t).enumerate() {
            for head in row.chunks_exact_mut(head_dim) {
                for j in 0..half {
                    let freq = 1.0 / f64::from(theta).powf(2.0 * j as f64 / head_dim as f64);
                    let (sin, cos) = (pos as f64 * freq).sin_cos();
                    let (a, b) = (f64::from(head[j]), f64::from(head[j + half]));
                    head[j] = (a * cos - b * sin) as f32;
                    head[j + half] = (a * sin + b * cos) as f32;
                }
            }
        }
    }

    /// The logits of every position of `tokens`, `[t][vocab]`.
    fn logits(&self, tokens: &[u32], semantics: Semantics) -> Vec<Vec<f32>> {
        let s = &self.spec;
        let (t, d, hd) = (tokens.len(), s.n_embd, s.head_dim);
        let (qd, kvd) = (s.n_head * hd, s.n_head_kv * hd);
        let scale = (d as f32).sqrt();
        let mut x: Vec<f32> = tokens
            .iter()
            .flat_map(|&tok| self.embedding[tok as usize * d..(tok as usize + 1) * d].iter().map(|v| v * scale))
            .collect();
        for (l, w) in self.layers.iter().enumerate() {
            let sliding = (l + 1) % 6 != 0;
            let visible = match semantics {
                Semantics::Candle => s.window + 1,
                Semantics::NoWindow => usize::MAX,
                Semantics::Gemma | Semantics::Silu => s.window,
            };
            let mut xn = x.clone();
            Self::norm(&mut xn, &w.attn_norm);
            let mut q = Self::product(&w.wq, &xn, t);
            let mut k = Self::product(&w.wk, &xn, t);
            let v = Self::product(&w.wv, &xn, t);
            Self::norm(&mut q, &w.q_norm);
            Self::norm(&mut k, &w.k_norm);
            let theta = if sliding { ROPE_BASE_LOCAL } else { ROPE_BASE };
            Self::rope(&mut q, hd, theta, t);
            Self::rope(&mut k, hd, theta, t);
            let mut att = vec![0.0f32; t * qd];
            let group = s.n_head / s.n_head_kv;
            for i in 0..t {
                for h in 0..s.n_head {
                    let kh = h / group;
                    let qh = &q[i * qd + h * hd..i * qd + (h + 1) * hd];
                    let first = if sliding { (i + 1).saturating_sub(visible) } else { 0 };
                    let scores: Vec<f64> = (first..=i)
                        .map(|j| {
                            let kj = &k[j * kvd + kh * hd..j * kvd + (kh + 1) * hd];
                            qh.iter().zip(kj).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let sum: f64 = exps.iter().sum();
                    for (e, j) in exps.iter().zip(first..=i) {
                        let vj = &v[j * kvd + kh * hd..j * kvd + (kh + 1) * hd];
                        for (o, &vv) in att[i * qd + h * hd..i * qd + (h + 1) * hd].iter_mut().zip(vj) {
                            *o += (e / sum * f64::from(vv)) as f32;
                        }
                    }
                }
            }
            let mut o = Self::product(&w.wo, &att, t);
            Self::norm(&mut o, &w.post_attn_norm);
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);

            let mut xn = x.clone();
            Self::norm(&mut xn, &w.ffn_norm);
            let gate = Self::product(&w.gate, &xn, t);
            let up = Self::product(&w.up, &xn, t);
            let hidden: Vec<f32> = gate
                .iter()
                .zip(&up)
                .map(|(&g, &u)| {
                    let g = f64::from(g);
                    let act = match semantics {
                        Semantics::Candle | Semantics::Silu => g / (1.0 + (-g).exp()),
                        Semantics::Gemma | Semantics::NoWindow => {
                            0.5 * g * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (g + 0.044715 * g * g * g)).tanh())
                        }
                    };
                    (act * f64::from(u)) as f32
                })
                .collect();
            let mut o = Self::product(&w.down, &hidden, t);
            Self::norm(&mut o, &w.post_ffn_norm);
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
        }
        Self::norm(&mut x, &self.output_norm);
        let logits = Self::product(&self.output, &x, t);
        logits
            .chunks_exact(s.vocab)
            .map(|row| match s.softcap {
                Some(cap) => row.iter().map(|v| cap * (v / cap).tanh()).collect(),
                None => row.to_vec(),
            })
            .collect()
    }
}

/// candle-transformers' `quantized_gemma3` logits for the last token of each
/// prefix `tokens[..=i]`, each run as one prefill from position 0 (where
/// candle applies its sliding-window mask).
fn candle_prefix_logits(gguf: &[u8], tokens: &[u32]) -> Vec<Vec<f32>> {
    use candle_core::{Device, Tensor};
    use candle_transformers::models::quantized_gemma3::ModelWeights;
    let mut reader = std::io::Cursor::new(gguf);
    let content = candle_core::quantized::gguf_file::Content::read(&mut reader).expect("candle reads the GGUF");
    let mut model = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).expect("candle loads the model");
    (1..=tokens.len())
        .map(|n| {
            let input = Tensor::new(&tokens[..n], &Device::Cpu).and_then(|x| x.unsqueeze(0)).expect("input tensor");
            let logits = model.forward(&input, 0).expect("candle forward");
            logits.squeeze(0).and_then(|l| l.to_vec1::<f32>()).expect("logits")
        })
        .collect()
}

/// The worst relative difference over positions, after checking every
/// position against `max_rel` (and the argmax: equal, or a near tie).
fn assert_rows_close(what: &str, ours: &[Vec<f32>], reference: &[Vec<f32>], max_rel: f32) -> f32 {
    assert_eq!(ours.len(), reference.len());
    let rows: Vec<(f32, f32)> = ours.iter().zip(reference).map(|(o, r)| compare(o, r)).collect();
    let shown: Vec<String> = rows.iter().map(|(rel, gap)| format!("{rel:.1e}/{gap:.1e}")).collect();
    println!("{what}: max |diff| / range, argmax gap per position: {}", shown.join(" "));
    for (i, &(rel, gap)) in rows.iter().enumerate() {
        assert!(rel <= max_rel, "{what}, position {i}: max |diff| is {rel} of the logit range (limit {max_rel})");
        assert!(gap <= max_rel / 2.0, "{what}, position {i}: the argmax is {gap} of the range below the best");
    }
    rows.iter().map(|r| r.0).fold(0.0, f32::max)
}

fn formwork_rows(model: &Model, tokens: &[u32]) -> Vec<Vec<f32>> {
    let mut cache = model.new_cache();
    let all = model.forward_all(tokens, &mut cache).expect("forward_all");
    all.chunks_exact(model.config().vocab_size).map(<[f32]>::to_vec).collect()
}

/// Observed: 0 (bit-identical logits: at these sizes every 8-bit activation
/// rounds the same on both sides). The limit leaves room for a rounding
/// step flipping in a model with other weights.
const REFERENCE_MAX_REL: f32 = 0.005;

/// Observed: 0, as above (formwork's f32 norms and RoPE differ from the
/// reference's f64 ones by far less than an 8-bit quantization step). The
/// limit is ten times below the smallest effect it must catch (a SiLU MLP
/// instead of GELU: 0.099 of the range; no window: 0.62).
const FORMWORK_MAX_REL: f32 = 0.01;

const PROMPT_LEN: usize = 12;

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

#[test]
fn reference_matches_candle_quantized_gemma3_under_its_conventions() {
    let spec = Spec::small();
    let bytes = spec.bytes();
    let tokens = spec.tokens(PROMPT_LEN);
    let reference = Reference::new(&spec, &bytes).logits(&tokens, Semantics::Candle);
    let candle = candle_prefix_logits(&bytes, &tokens);
    assert_rows_close("reference (candle's conventions) vs quantized_gemma3", &reference, &candle, REFERENCE_MAX_REL);
}

#[test]
fn formwork_matches_the_reference_at_every_position() {
    let spec = Spec::small();
    let bytes = spec.bytes();
    let tokens = spec.tokens(PROMPT_LEN);
    let reference = Reference::new(&spec, &bytes).logits(&tokens, Semantics::Gemma);
    let model = load(bytes);
    assert_eq!(model.config().architecture, Architecture::Gemma3);
    let ours = formwork_rows(&model, &tokens);
    assert_rows_close("formwork vs reference", &ours, &reference, FORMWORK_MAX_REL);
}

/// The comparison above would catch a missing window or the wrong
/// activation: each changes the logits by far more than the tolerance.
#[test]
fn the_window_and_the_activation_matter() {
    let spec = Spec::small();
    let bytes = spec.bytes();
    let tokens = spec.tokens(PROMPT_LEN);
    let reference = Reference::new(&spec, &bytes);
    let gemma = reference.logits(&tokens, Semantics::Gemma);
    for other in [Semantics::NoWindow, Semantics::Silu, Semantics::Candle] {
        let logits = reference.logits(&tokens, other);
        let worst = logits.iter().zip(&gemma).map(|(a, b)| compare(a, b).0).fold(0.0, f32::max);
        println!("{other:?} vs Gemma: worst max |diff| / range {worst:.4}");
        assert!(worst > 5.0 * FORMWORK_MAX_REL, "{other:?} differs from Gemma by only {worst} of the range");
        // Within the window, the window changes nothing.
        if other == Semantics::NoWindow {
            for (i, (a, b)) in logits.iter().zip(&gemma).take(spec.window).enumerate() {
                assert_eq!(a, b, "position {i} is within the window");
            }
        }
    }
}

#[test]
fn config_reads_the_gemma3_keys() {
    let spec = Spec::small();
    let model = load(spec.bytes());
    let c = model.config();
    assert_eq!((c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.n_ff), (7, 64, 4, 1, 32, 128));
    assert_eq!(c.vocab_size, spec.vocab);
    assert_eq!(c.context_len, spec.context);
    assert_eq!(c.rope_theta, ROPE_BASE);
    assert_eq!(c.rms_eps, RMS_EPS);
    assert_eq!(c.attention_scale, 1.0 / 32f32.sqrt());
    assert_eq!(c.embedding_scale, 8.0);
    assert_eq!(c.final_logit_softcap, None);
    assert!(c.architecture.rope_neox() && c.architecture.qk_norm() && c.architecture.post_norms());
    let sw = c.sliding_window.expect("gemma3 slides");
    assert_eq!((sw.window, sw.pattern, sw.rope_theta), (4, 6, ROPE_BASE_LOCAL));
    let sliding: Vec<bool> = (0..7).map(|l| sw.is_sliding(l)).collect();
    assert_eq!(sliding, [true, true, true, true, true, false, true]);
}

#[test]
fn prefill_equals_single_steps() {
    let spec = Spec::small();
    let model = load(spec.bytes());
    let tokens = spec.tokens(PROMPT_LEN);
    let batched = formwork_rows(&model, &tokens);
    let mut cache = model.new_cache();
    let vocab = model.config().vocab_size;
    let mut logits = vec![0.0; vocab];
    for (i, &tok) in tokens.iter().enumerate() {
        model.forward(&[tok], &mut cache, &mut logits).expect("step");
        assert_eq!(logits, batched[i], "position {i}: a single step differs from the batch");
    }
    // Mixed: a prefill of 7, then batches of 2 and 3.
    let mut cache = model.new_cache();
    let mut rows = formwork_rows(&model, &tokens[..7]);
    model.forward_all(&tokens[..7], &mut cache).expect("prefill");
    for chunk in [&tokens[7..9], &tokens[9..12]] {
        let out = model.forward_all(chunk, &mut cache).expect("batch");
        rows.extend(out.chunks_exact(vocab).map(<[f32]>::to_vec));
    }
    assert_eq!(rows, batched);
}

#[test]
fn truncate_and_clone_reproduce_logits_with_sliding_windows() {
    let spec = Spec::small();
    let model = load(spec.bytes());
    let tokens = spec.tokens(PROMPT_LEN);
    let full = formwork_rows(&model, &tokens);
    let vocab = model.config().vocab_size;
    let mut cache = model.new_cache();
    model.forward_all(&tokens, &mut cache).expect("prompt");
    // Back to within the first window, then to past it: re-running the rest
    // reproduces every position exactly.
    for keep in [2, 9, 5] {
        cache.truncate(keep);
        assert_eq!(cache.len(), keep);
        let rerun = model.forward_all(&tokens[keep..], &mut cache).expect("rerun");
        for (i, row) in rerun.chunks_exact(vocab).enumerate() {
            assert_eq!(row, &full[keep + i][..], "after truncating to {keep}, position {}", keep + i);
        }
    }
    // A clone taken after 6 tokens continues like the original.
    let mut cache = model.new_cache();
    model.forward_all(&tokens[..6], &mut cache).expect("prefix");
    let mut branch = cache.clone();
    let a = model.forward_all(&tokens[6..], &mut cache).expect("original");
    let b = model.forward_all(&tokens[6..], &mut branch).expect("clone");
    assert_eq!(a, b);
    assert_eq!(&a[a.len() - vocab..], &full[PROMPT_LEN - 1][..]);
}

#[test]
fn final_logit_softcapping_applies_when_the_file_has_it() {
    let spec = Spec::small();
    let tokens = spec.tokens(5);
    let plain = formwork_rows(&load(spec.bytes()), &tokens);
    let cap = 3.0f32;
    let capped_spec = Spec { softcap: Some(cap), ..spec };
    let capped_model = load(capped_spec.bytes());
    assert_eq!(capped_model.config().final_logit_softcap, Some(cap));
    let capped = formwork_rows(&capped_model, &tokens);
    let mut beyond = 0;
    for (p, c) in plain.iter().flatten().zip(capped.iter().flatten()) {
        assert_eq!(*c, cap * (p / cap).tanh());
        assert!(c.abs() < cap);
        beyond += usize::from(p.abs() > cap);
    }
    assert!(beyond > 0, "no logit exceeds the cap: the test would not show capping");
    let reference = Reference::new(&capped_spec, &capped_spec.bytes()).logits(&tokens, Semantics::Gemma);
    assert_rows_close("formwork vs reference, soft-capped", &capped, &reference, FORMWORK_MAX_REL);
}

#[test]
fn memory_budget_counts_weights_and_the_full_kv_cache() {
    let spec = Spec::small();
    let bytes = spec.bytes();
    let weights: u64 = {
        let g = formwork::weights::gguf::Gguf::parse(&bytes).expect("parses");
        g.tensor_data_len()
    };
    // Every layer (sliding ones too) may hold the whole context.
    let kv = 2 * spec.n_layer as u64 * spec.context as u64 * (spec.n_head_kv * spec.head_dim) as u64 * 4;
    let opts = |budget: u64| ModelOptions { threads: 1, context_len: spec.context, memory_budget: Some(budget) };
    Model::from_bytes(bytes.clone(), &opts(weights + kv)).expect("fits exactly");
    let e = Model::from_bytes(bytes, &opts(weights + kv - 1)).expect_err("one byte short").to_string();
    assert!(e.contains(&(weights + kv).to_string()), "{e}");
}

fn load_error(bytes: Vec<u8>) -> String {
    Model::from_bytes(bytes, &one_thread()).expect_err("the file is malformed").to_string()
}

fn assert_mentions(message: &str, needles: &[&str]) {
    for n in needles {
        assert!(message.contains(n), "error {message:?} does not mention {n:?}");
    }
}

#[test]
fn malformed_gemma3_headers_are_named() {
    let spec = Spec::small();
    // A missing hyper-parameter.
    let meta: Vec<_> = spec.metadata().into_iter().filter(|(k, _)| k != "gemma3.attention.sliding_window").collect();
    let e = load_error(write_gguf(&meta, &spec.tensors()));
    assert_mentions(&e, &["gemma3.attention.sliding_window"]);
    // A zero window.
    let mut meta = spec.metadata();
    meta.iter_mut().filter(|(k, _)| k == "gemma3.attention.sliding_window").for_each(|(_, v)| *v = Value::U32(0));
    assert_mentions(&load_error(write_gguf(&meta, &spec.tensors())), &["gemma3.attention.sliding_window", "0"]);
    // Attention soft-capping (Gemma 2's) is refused, not ignored.
    let mut meta = spec.metadata();
    meta.push(("gemma3.attn_logit_softcapping".to_owned(), Value::F32(50.0)));
    assert_mentions(&load_error(write_gguf(&meta, &spec.tensors())), &["gemma3.attn_logit_softcapping"]);
    // A missing Gemma tensor.
    let tensors: Vec<_> = spec.tensors().into_iter().filter(|t| t.name != "blk.3.post_ffw_norm.weight").collect();
    assert_mentions(&load_error(write_gguf(&spec.metadata(), &tensors)), &["blk.3.post_ffw_norm.weight"]);
    // A per-head norm of the embedding width instead of the head size.
    let mut tensors = spec.tensors();
    let t = tensors.iter_mut().find(|t| t.name == "blk.0.attn_k_norm.weight").expect("present");
    t.dims = vec![64];
    t.data = encode(GgmlType::F32, &[1.0; 64]);
    assert_mentions(&load_error(write_gguf(&spec.metadata(), &tensors)), &["blk.0.attn_k_norm.weight", "[64]", "[32]"]);
    // A head size (key_length) that the tensors do not have: the first
    // tensor sized by it is named.
    let mut meta = spec.metadata();
    for (k, v) in &mut meta {
        if k == "gemma3.attention.key_length" || k == "gemma3.attention.value_length" {
            *v = Value::U32(16);
        }
    }
    assert_mentions(&load_error(write_gguf(&meta, &spec.tensors())), &["blk.0.attn_q_norm.weight", "[32]", "[16]"]);
}
