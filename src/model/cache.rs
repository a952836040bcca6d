//! [`KvCache`]: the keys and values of the tokens seen so far, and the
//! scratch buffers of the forward pass.

use crate::kernels::quant::ActivationType;
use crate::kernels::QuantizedVector;

use super::config::ModelConfig;

/// The keys and values of every token a model has run so far, for one
/// sequence. Made by [`Model::new_cache`](super::Model::new_cache).
///
/// Layout: one growable buffer per (layer, KV head), holding that head's
/// rows position after position (`head_dim` f32 each), so attention reads
/// each head's keys and values contiguously. The buffers grow as tokens are
/// appended (they are not sized for the whole context up front), so a cache
/// holding a short prefix is small and cheap to [`clone`](Clone::clone):
/// clone it after a shared prompt, then continue each clone separately.
///
/// The cache also carries the forward pass's scratch buffers, so that a
/// decode step allocates nothing once they have grown; a clone starts with
/// empty scratch.
#[derive(Debug)]
pub struct KvCache {
    len: usize,
    n_layer: usize,
    n_head_kv: usize,
    head_dim: usize,
    /// `keys[layer * n_head_kv + head]`: `len * head_dim` values.
    pub(crate) keys: Vec<Vec<f32>>,
    /// As `keys`, for values.
    pub(crate) values: Vec<Vec<f32>>,
    pub(crate) scratch: Scratch,
}

impl Clone for KvCache {
    fn clone(&self) -> KvCache {
        KvCache {
            len: self.len,
            n_layer: self.n_layer,
            n_head_kv: self.n_head_kv,
            head_dim: self.head_dim,
            keys: self.keys.clone(),
            values: self.values.clone(),
            scratch: Scratch::default(),
        }
    }
}

impl KvCache {
    pub(crate) fn new(c: &ModelConfig) -> KvCache {
        let heads = c.n_layer * c.n_head_kv;
        KvCache {
            len: 0,
            n_layer: c.n_layer,
            n_head_kv: c.n_head_kv,
            head_dim: c.head_dim,
            keys: vec![Vec::new(); heads],
            values: vec![Vec::new(); heads],
            scratch: Scratch::default(),
        }
    }

    /// Whether this cache has the shape of `c`'s model.
    pub(crate) fn fits(&self, c: &ModelConfig) -> bool {
        (self.n_layer, self.n_head_kv, self.head_dim) == (c.n_layer, c.n_head_kv, c.head_dim)
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every token from position `len` on (keeps the first `len`);
    /// no effect when `len >= self.len()`. Running the forgotten tokens
    /// again reproduces them exactly.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.len = len;
        let n = len * self.head_dim;
        for b in self.keys.iter_mut().chain(self.values.iter_mut()) {
            b.truncate(n);
        }
    }

    /// Forgets every token (keeps the allocations).
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Bytes allocated for keys and values (capacity, which may exceed what
    /// [`len`](Self::len) tokens use; scratch buffers not counted).
    pub fn bytes(&self) -> usize {
        self.keys.iter().chain(&self.values).map(|b| b.capacity() * std::mem::size_of::<f32>()).sum()
    }

    /// Appends the keys and values of `rows` tokens, given as `[rows,
    /// n_head_kv * head_dim]` row-major for `layer`. The caller bumps `len`
    /// once every layer has been appended ([`KvCache::commit`]).
    pub(crate) fn append(&mut self, layer: usize, k: &[f32], v: &[f32]) {
        let d = self.head_dim;
        let row = self.n_head_kv * d;
        for h in 0..self.n_head_kv {
            let i = layer * self.n_head_kv + h;
            let (kb, vb) = (&mut self.keys[i], &mut self.values[i]);
            kb.truncate(self.len * d);
            vb.truncate(self.len * d);
            for (kr, vr) in k.chunks_exact(row).zip(v.chunks_exact(row)) {
                kb.extend_from_slice(&kr[h * d..(h + 1) * d]);
                vb.extend_from_slice(&vr[h * d..(h + 1) * d]);
            }
        }
    }

    /// Records that `added` more tokens are now in every layer.
    pub(crate) fn commit(&mut self, added: usize) {
        self.len += added;
    }
}

/// Activation vectors quantized for the weight formats of a model, one per
/// format, reused across calls.
#[derive(Debug)]
pub(crate) struct Acts {
    q8_0: QuantizedVector,
    q8_1: QuantizedVector,
    q8k: QuantizedVector,
}

impl Default for Acts {
    fn default() -> Acts {
        Acts {
            q8_0: QuantizedVector::new(ActivationType::Q8_0),
            q8_1: QuantizedVector::new(ActivationType::Q8_1),
            q8k: QuantizedVector::new(ActivationType::Q8K),
        }
    }
}

impl Acts {
    /// Quantizes `x` into each format in `kinds`.
    pub(crate) fn quantize(&mut self, kinds: &[ActivationType], x: &[f32]) {
        for &k in kinds {
            match k {
                ActivationType::Q8_0 => self.q8_0.quantize_from(x),
                ActivationType::Q8_1 => self.q8_1.quantize_from(x),
                ActivationType::Q8K => self.q8k.quantize_from(x),
            }
        }
    }

    /// The vector in format `k` (as last quantized).
    pub(crate) fn get(&self, k: ActivationType) -> &QuantizedVector {
        match k {
            ActivationType::Q8_0 => &self.q8_0,
            ActivationType::Q8_1 => &self.q8_1,
            ActivationType::Q8K => &self.q8k,
        }
    }
}

/// The forward pass's working memory, sized for the largest batch seen.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Residual stream, `[T, n_embd]`.
    pub(crate) x: Vec<f32>,
    /// Normalized input of a sub-layer, `[T, n_embd]`.
    pub(crate) xn: Vec<f32>,
    pub(crate) q: Vec<f32>,
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
    /// Attention output, `[T, n_head * head_dim]`.
    pub(crate) att: Vec<f32>,
    /// A projection's output before it joins the residual, `[T, n_embd]`.
    pub(crate) proj: Vec<f32>,
    pub(crate) gate: Vec<f32>,
    pub(crate) up: Vec<f32>,
    /// Attention scores of one query head (single-threaded attention).
    pub(crate) scores: Vec<f32>,
    /// RoPE cosines and sines, `[T, rope_dim / 2]`.
    pub(crate) cos: Vec<f32>,
    pub(crate) sin: Vec<f32>,
    /// As `cos` and `sin`, for the sliding-window layers' RoPE base.
    pub(crate) cos_local: Vec<f32>,
    pub(crate) sin_local: Vec<f32>,
    pub(crate) acts: Acts,
}

/// Resizes `v` to `n` values (contents unspecified; the caller overwrites).
pub(crate) fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}
