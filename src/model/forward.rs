//! The forward pass: embedding → blocks (RMSNorm, attention with RoPE and
//! grouped-query heads, gated MLP) → final norm → logits. The few
//! architecture switches (biases, per-head Q/K norms, post-norms, the MLP's
//! activation, sliding windows, soft-capping) are decided once per layer,
//! never inside the per-element loops.
//!
//! One code path serves a single decode token and a batch (prefill): every
//! per-token operation (norm, RoPE, attention of query `t` over positions
//! `0..=pos0 + t`) is computed the same way whatever the batch, and the
//! kernels' batched product equals the single-vector one bit for bit, so
//! running `N` tokens at once gives exactly the logits of `N` single steps.

use std::cell::RefCell;
use std::sync::Mutex;

use crate::kernels::quant::ActivationType;
use crate::kernels::{dispatch::best, gemm_parallel_many, gemv_parallel_many, GemvTask, ThreadPool};

use super::cache::{sized, Acts, KvCache, Scratch};
use super::config::{MlpActivation, ModelConfig};
use super::weights::{Layer, Matrix};
use super::Model;

/// Where the logits go.
pub(crate) enum Logits<'a> {
    /// The last token's, into a `vocab_size` slice.
    Last(&'a mut [f32]),
    /// Every token's, `[T, vocab_size]`.
    All(&'a mut Vec<f32>),
}

/// The distinct activation formats a set of matrices multiplies with (at
/// most three: Q8_0, Q8_1, Q8_K), without allocating.
struct Kinds {
    list: [ActivationType; 3],
    n: usize,
}

impl Kinds {
    fn of(ms: &[&Matrix]) -> Kinds {
        let mut k = Kinds { list: [ActivationType::Q8_0; 3], n: 0 };
        for m in ms {
            let a = m.activation();
            if !k.list[..k.n].contains(&a) {
                k.list[k.n] = a;
                k.n += 1;
            }
        }
        k
    }

    fn as_slice(&self) -> &[ActivationType] {
        &self.list[..self.n]
    }
}

/// Products of `N` matrices with the same input (already quantized in
/// `acts`) for `t` tokens, in one pool job (one wake-up for q/k/v, or for
/// gate/up): matrix-vector products for a single token, batched products
/// for several.
fn linear<const N: usize>(pool: &ThreadPool, data: &[u8], acts: &Acts, t: usize, jobs: [(&Matrix, &mut [f32]); N]) {
    let mut tasks = jobs.map(|(m, out)| GemvTask { w: m.view(data), x: acts.get(m.activation()), out });
    if t == 1 {
        gemv_parallel_many(pool, best(), &mut tasks);
    } else {
        gemm_parallel_many(pool, best(), &mut tasks);
    }
}

/// `1 / rms(x)`, with `eps` added to the mean square.
fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let ss: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    (1.0 / (ss / x.len() as f64 + f64::from(eps)).sqrt()) as f32
}

/// `out = x / rms(x) * w`, row by row (`x` and `out` are `[T, w.len()]`).
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let n = w.len();
    for (xr, or) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let scale = inv_rms(xr, eps);
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = v * scale * g;
        }
    }
}

/// [`rms_norm`] in place: every `w.len()` values of `x` (a row, or one head
/// of a row).
fn rms_norm_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    for xr in x.chunks_exact_mut(w.len()) {
        let scale = inv_rms(xr, eps);
        for (v, &g) in xr.iter_mut().zip(w) {
            *v = *v * scale * g;
        }
    }
}

/// Dot product with eight independent sums (so that the compiler can keep
/// them in vector registers).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Rotates each head of `row` (heads of `head_dim`, the first `cos.len() *
/// 2` elements of each) by the angles whose cosines and sines are given.
fn rope(row: &mut [f32], head_dim: usize, cos: &[f32], sin: &[f32], neox: bool) {
    let half = cos.len();
    for head in row.chunks_exact_mut(head_dim) {
        if neox {
            let (a, b) = head[..2 * half].split_at_mut(half);
            for i in 0..half {
                let (x0, x1) = (a[i], b[i]);
                a[i] = x0 * cos[i] - x1 * sin[i];
                b[i] = x0 * sin[i] + x1 * cos[i];
            }
        } else {
            for (i, pair) in head[..2 * half].chunks_exact_mut(2).enumerate() {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * cos[i] - x1 * sin[i];
                pair[1] = x0 * sin[i] + x1 * cos[i];
            }
        }
    }
}

/// One query head over `kv_len` cached positions: `out = softmax(q·K /
/// sqrt(d)) V`. `scores` is working memory.
fn attend(q: &[f32], keys: &[f32], values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    let d = q.len();
    let kv_len = keys.len() / d;
    let s = sized(scores, kv_len);
    let mut max = f32::NEG_INFINITY;
    for (sj, kj) in s.iter_mut().zip(keys.chunks_exact(d)) {
        *sj = dot(q, kj) * scale;
        max = max.max(*sj);
    }
    let mut sum = 0.0f32;
    for sj in s.iter_mut() {
        *sj = (*sj - max).exp();
        sum += *sj;
    }
    out.fill(0.0);
    for (&p, vj) in s.iter().zip(values.chunks_exact(d)) {
        for (o, &v) in out.iter_mut().zip(vj) {
            *o += p * v;
        }
    }
    let inv = 1.0 / sum;
    for o in out.iter_mut() {
        *o *= inv;
    }
}

thread_local! {
    /// Attention scores of the head a pool thread is working on.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Multiply-adds below which attention runs on the calling thread (a pool
/// wake-up costs about as much as this much work).
const PARALLEL_ATTENTION_WORK: usize = 1 << 17;

/// The cached positions query position `pos` attends to: all up to itself,
/// or the last `window` of them.
fn visible(pos: usize, window: Option<usize>) -> std::ops::Range<usize> {
    let end = pos + 1;
    window.map_or(0, |w| end.saturating_sub(w))..end
}

/// Attention of `t` queries (`q` is `[t, n_head * head_dim]`, query `i` at
/// position `pos0 + i`) over layer `layer` of the cache, which already holds
/// their own keys and values; with a `window`, each query sees only the
/// last `window` positions up to its own. Writes `att` (`[t, n_head *
/// head_dim]`).
#[allow(clippy::too_many_arguments)]
fn attention(
    pool: &ThreadPool,
    c: &ModelConfig,
    cache: &KvCache,
    layer: usize,
    window: Option<usize>,
    q: &[f32],
    att: &mut [f32],
    scores: &mut Vec<f32>,
    t: usize,
    pos0: usize,
) {
    let d = c.head_dim;
    let group = c.n_head / c.n_head_kv;
    let scale = c.attention_scale;
    // Unit `u` = (token u / n_head, head u % n_head): its query and output
    // are the `u`-th `d` values of `q` and `att`.
    let inputs = |u: usize| {
        let (i, h) = (u / c.n_head, u % c.n_head);
        let r = visible(pos0 + i, window);
        let slot = layer * c.n_head_kv + h / group;
        let kv = r.start * d..r.end * d;
        (&q[u * d..(u + 1) * d], &cache.keys[slot][kv.clone()], &cache.values[slot][kv])
    };
    let units = t * c.n_head;
    let work: usize = (0..t).map(|i| visible(pos0 + i, window).len() * c.n_head * d).sum();
    if pool.threads() <= 1 || work < PARALLEL_ATTENTION_WORK {
        for (u, out) in att.chunks_exact_mut(d).enumerate().take(units) {
            let (qh, k, v) = inputs(u);
            attend(qh, k, v, scale, scores, out);
        }
        return;
    }
    // Each unit writes its own output slice; the mutexes are never contended
    // (the pool runs each unit once) and only make the disjointness safe.
    let outs: Vec<Mutex<&mut [f32]>> = att.chunks_exact_mut(d).take(units).map(Mutex::new).collect();
    pool.run(units, &|u| {
        let (qh, k, v) = inputs(u);
        let mut out = outs[u].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        SCORES.with(|s| attend(qh, k, v, scale, &mut s.borrow_mut(), &mut out));
    });
}

fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// `gate = gelu(gate) * up`, GELU's tanh approximation: `x / 2 * (1 +
/// tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))`.
fn gelu_mul(gate: &mut [f32], up: &[f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = 0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x)).tanh()) * u;
    }
}

/// Fills `cos` and `sin` (`[t, inv_freq.len()]`) for positions `pos0..pos0
/// + t`, each divided by `scale`.
fn rope_tables(inv_freq: &[f32], pos0: usize, t: usize, scale: f32, cos: &mut Vec<f32>, sin: &mut Vec<f32>) {
    let half = inv_freq.len();
    let (cos, sin) = (sized(cos, t * half), sized(sin, t * half));
    for i in 0..t {
        let pos = (pos0 + i) as f32 / scale;
        for (j, &f) in inv_freq.iter().enumerate() {
            let angle = pos * f;
            cos[i * half + j] = angle.cos();
            sin[i * half + j] = angle.sin();
        }
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Final logit soft-capping, when the model has it.
fn softcap(c: &ModelConfig, logits: &mut [f32]) {
    if let Some(cap) = c.final_logit_softcap {
        for v in logits {
            *v = cap * (*v / cap).tanh();
        }
    }
}

/// Runs `tokens` (checked by the caller: non-empty, in the vocabulary,
/// fitting the context, a cache of this model) and writes the logits.
pub(crate) fn run(model: &Model, tokens: &[u32], cache: &mut KvCache, logits: Logits<'_>) {
    let c = &model.config;
    let w = &model.weights;
    let data = model.file.bytes();
    let pool = &model.pool;
    let t = tokens.len();
    let pos0 = cache.len();
    let (d, qd, kvd, ff) = (c.n_embd, c.q_dim(), c.kv_dim(), c.n_ff);

    // The scratch is moved out so that the cache's keys and values can be
    // borrowed next to it; it goes back at the end.
    let mut s = std::mem::take(&mut cache.scratch);
    let Scratch { x, xn, q, k, v, att, proj, gate, up, scores, cos, sin, cos_local, sin_local, acts } = &mut s;
    let x = sized(x, t * d);
    for (row, &tok) in x.chunks_exact_mut(d).zip(tokens) {
        w.embedding.row(data, tok as usize, row);
    }
    if c.embedding_scale != 1.0 {
        x.iter_mut().for_each(|v| *v *= c.embedding_scale);
    }

    let half = c.rope_dim / 2;
    rope_tables(&model.inv_freq, pos0, t, c.rope_scale, cos, sin);
    // The sliding-window layers' RoPE: their own base, no scaling.
    rope_tables(&model.inv_freq_local, pos0, t, 1.0, cos_local, sin_local);

    let xn = sized(xn, t * d);
    let (q, k, v) = (sized(q, t * qd), sized(k, t * kvd), sized(v, t * kvd));
    let (att, proj) = (sized(att, t * qd), sized(proj, t * d));
    let (gate, up) = (sized(gate, t * ff), sized(up, t * ff));
    let neox = c.architecture.rope_neox();
    let activation = c.architecture.mlp_activation();

    for (l, layer) in w.layers.iter().enumerate() {
        let Layer { attn_norm, wq, wk, wv, bias, qk_norm, wo, post_norms, ffn_norm, gate: wg, up: wu, down, window } =
            layer;
        let (cos, sin) = if window.is_some() { (&*cos_local, &*sin_local) } else { (&*cos, &*sin) };

        rms_norm(x, attn_norm, c.rms_eps, xn);
        acts.quantize(Kinds::of(&[wq, wk, wv]).as_slice(), xn);
        linear(pool, data, acts, t, [(wq, &mut *q), (wk, &mut *k), (wv, &mut *v)]);
        if let Some([bq, bk, bv]) = bias {
            for (out, b) in [(&mut *q, bq), (&mut *k, bk), (&mut *v, bv)] {
                for row in out.chunks_exact_mut(b.len()) {
                    add(row, b);
                }
            }
        }
        if let Some([qn, kn]) = qk_norm {
            rms_norm_in_place(q, qn, c.rms_eps);
            rms_norm_in_place(k, kn, c.rms_eps);
        }
        for i in 0..t {
            let (cs, sn) = (&cos[i * half..(i + 1) * half], &sin[i * half..(i + 1) * half]);
            rope(&mut q[i * qd..(i + 1) * qd], c.head_dim, cs, sn, neox);
            rope(&mut k[i * kvd..(i + 1) * kvd], c.head_dim, cs, sn, neox);
        }
        cache.append(l, k, v);
        attention(pool, c, cache, l, *window, q, att, scores, t, pos0);

        acts.quantize(Kinds::of(&[wo]).as_slice(), att);
        linear(pool, data, acts, t, [(wo, &mut *proj)]);
        if let Some([post_attn, _]) = post_norms {
            rms_norm_in_place(proj, post_attn, c.rms_eps);
        }
        add(x, proj);

        rms_norm(x, ffn_norm, c.rms_eps, xn);
        acts.quantize(Kinds::of(&[wg, wu]).as_slice(), xn);
        linear(pool, data, acts, t, [(wg, &mut *gate), (wu, &mut *up)]);
        match activation {
            MlpActivation::Silu => silu_mul(gate, up),
            MlpActivation::GeluTanh => gelu_mul(gate, up),
        }
        acts.quantize(Kinds::of(&[down]).as_slice(), gate);
        linear(pool, data, acts, t, [(down, &mut *proj)]);
        if let Some([_, post_ffn]) = post_norms {
            rms_norm_in_place(proj, post_ffn, c.rms_eps);
        }
        add(x, proj);
    }
    cache.commit(t);

    let out_kind = [w.output.activation()];
    match logits {
        Logits::Last(out) => {
            let last = &x[(t - 1) * d..];
            let xn = &mut xn[..d];
            rms_norm(last, &w.output_norm, c.rms_eps, xn);
            acts.quantize(&out_kind, xn);
            linear(pool, data, acts, 1, [(&w.output, &mut *out)]);
            softcap(c, out);
        }
        Logits::All(out) => {
            rms_norm(x, &w.output_norm, c.rms_eps, xn);
            acts.quantize(&out_kind, xn);
            out.clear();
            out.resize(t * c.vocab_size, 0.0);
            linear(pool, data, acts, t, [(&w.output, &mut out[..])]);
            softcap(c, out);
        }
    }
    cache.scratch = s;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum() {
        let a: Vec<f32> = (0..67).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..67).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        assert!((f64::from(dot(&a, &b)) - plain).abs() < 1e-5, "{} vs {plain}", dot(&a, &b));
    }

    #[test]
    fn rope_rotates_pairs_by_their_angles() {
        // One head of 4 with both frequencies rotating by 90 degrees.
        let (cos, sin) = ([0.0, 0.0], [1.0, 1.0]);
        let mut normal = [1.0, 2.0, 3.0, 4.0];
        rope(&mut normal, 4, &cos, &sin, false);
        assert_eq!(normal, [-2.0, 1.0, -4.0, 3.0]);
        let mut neox = [1.0, 2.0, 3.0, 4.0];
        rope(&mut neox, 4, &cos, &sin, true);
        assert_eq!(neox, [-3.0, -4.0, 1.0, 2.0]);
        // Partial rotation leaves the tail alone.
        let mut partial = [1.0, 2.0, 3.0, 4.0];
        rope(&mut partial, 4, &cos[..1], &sin[..1], false);
        assert_eq!(partial, [-2.0, 1.0, 3.0, 4.0]);
    }

    #[test]
    fn attention_weights_values_by_softmax() {
        // Two positions, d = 2: scores q·k / sqrt(2) = [0, ln 3] → weights 1/4, 3/4.
        let s2 = 2f32.sqrt();
        let q = [1.0, 0.0];
        let keys = [0.0, 0.0, 3f32.ln() * s2, 0.0];
        let values = [4.0, 0.0, 0.0, 8.0];
        let mut out = [0.0; 2];
        attend(&q, &keys, &values, 1.0 / s2, &mut Vec::new(), &mut out);
        assert!((out[0] - 1.0).abs() < 1e-5 && (out[1] - 6.0).abs() < 1e-5, "{out:?}");
    }

    #[test]
    fn rms_norm_scales_rows_to_unit_rms() {
        let x = [3.0, 4.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0];
        let w = [1.0, 2.0, 1.0, 1.0];
        let mut out = [0.0; 8];
        rms_norm(&x, &w, 0.0, &mut out);
        // rms of the first row = sqrt(25 / 4) = 2.5.
        assert_eq!(out, [1.2, 3.2, 0.0, 0.0, -1.0, -2.0, -1.0, -1.0]);
    }
}
