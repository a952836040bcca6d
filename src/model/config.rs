//! [`ModelConfig`]: the hyper-parameters of a Llama-family model (Llama,
//! Qwen2, Gemma 3), read from a GGUF file's `{arch}.*` metadata and checked
//! for consistency.

use crate::error::{Error, ErrorKind};
use crate::weights::Gguf;

/// The architectures the model code runs, as named by `general.architecture`.
pub(crate) const SUPPORTED: &str = "llama, qwen2, gemma3";

/// Every sixth Gemma 3 layer is global (llama.cpp's `set_swa_pattern(6)`).
const GEMMA3_SLIDING_PATTERN: usize = 6;

/// A model's family, which decides the few places the Llama recipe varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Architecture {
    /// `llama` (Llama 2/3, SmolLM, Mistral-style files): interleaved-pair
    /// RoPE (llama.cpp's "normal" mode, matching its permuted Q/K weights),
    /// no attention biases.
    Llama,
    /// `qwen2` (Qwen2, Qwen2.5): like Llama, plus biases on the query, key
    /// and value projections, and NEOX RoPE (pairs `i` and `i + d/2`).
    Qwen2,
    /// `gemma3` (Gemma 3 text models): NEOX RoPE; embeddings scaled by
    /// `sqrt(n_embd)`; RMSNorm of each query and key head before RoPE;
    /// "sandwich" norms (the attention and MLP outputs are normalized again
    /// before they join the residual); a GELU-gated MLP; sliding-window
    /// attention on five layers of every six, with their own RoPE base
    /// ([`SlidingWindow`]). The GGUF norm weights already hold Gemma's
    /// `1 + w` (llama.cpp's converter adds the 1), so the norms are plain
    /// RMSNorms.
    Gemma3,
}

/// The MLP's gate non-linearity: `down(act(gate x) * up x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MlpActivation {
    /// `x * sigmoid(x)` (SwiGLU: Llama, Qwen2).
    Silu,
    /// GELU, tanh approximation (GeGLU: Gemma).
    GeluTanh,
}

impl Architecture {
    /// The `general.architecture` string, also the prefix of the metadata
    /// keys.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Gemma3 => "gemma3",
        }
    }

    fn from_name(name: &str) -> Option<Architecture> {
        match name {
            "llama" => Some(Architecture::Llama),
            "qwen2" => Some(Architecture::Qwen2),
            "gemma3" => Some(Architecture::Gemma3),
            _ => None,
        }
    }

    /// Whether RoPE rotates pairs `(i, i + d/2)` (NEOX) rather than
    /// `(2i, 2i + 1)`.
    pub fn rope_neox(self) -> bool {
        matches!(self, Architecture::Qwen2 | Architecture::Gemma3)
    }

    /// Whether the Q, K and V projections carry biases.
    pub fn qkv_bias(self) -> bool {
        matches!(self, Architecture::Qwen2)
    }

    /// Whether each query and key head is RMS-normalized (over the head's
    /// elements, `blk.N.attn_q_norm` / `attn_k_norm` weights) before RoPE.
    pub fn qk_norm(self) -> bool {
        matches!(self, Architecture::Gemma3)
    }

    /// Whether the attention and MLP outputs are RMS-normalized before they
    /// join the residual (`blk.N.post_attention_norm`, `blk.N.post_ffw_norm`).
    pub fn post_norms(self) -> bool {
        matches!(self, Architecture::Gemma3)
    }

    /// The MLP's gate non-linearity.
    pub fn mlp_activation(self) -> MlpActivation {
        match self {
            Architecture::Llama | Architecture::Qwen2 => MlpActivation::Silu,
            Architecture::Gemma3 => MlpActivation::GeluTanh,
        }
    }
}

/// Sliding-window attention (Gemma 3): on most layers a query attends only
/// to the last `window` positions (itself included), and RoPE uses its own
/// base there; every `pattern`-th layer attends to the whole context with
/// the model's main RoPE base (and linear RoPE scaling, if any).
///
/// The KV cache still keeps every position of every layer (so the memory
/// budget counts the full context for all layers, as for a Llama model):
/// simple, and truncating the cache to any length stays exact.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct SlidingWindow {
    /// Positions a sliding-window layer sees, the query's own included
    /// (`{arch}.attention.sliding_window`; llama.cpp's "standard" window: a
    /// key at position `p0` is visible from `p1` when `p1 - p0 < window`).
    pub window: usize,
    /// Layer `l` is global when `(l + 1) % pattern == 0`, sliding otherwise
    /// (6 for Gemma 3, as llama.cpp sets it: layers 5, 11, 17, ... global).
    pub pattern: usize,
    /// RoPE base of the sliding layers (`{arch}.rope.freq_base_swa`,
    /// default 10,000).
    pub rope_theta: f32,
}

impl SlidingWindow {
    /// Whether layer `layer` attends through the window.
    pub fn is_sliding(&self, layer: usize) -> bool {
        (layer + 1) % self.pattern != 0
    }
}

/// A Llama-family model's hyper-parameters.
///
/// Read by [`ModelConfig::from_gguf`] from `general.architecture` and the
/// `{arch}.*` keys (`block_count`, `embedding_length`,
/// `feed_forward_length`, `attention.head_count`, `attention.head_count_kv`,
/// `attention.key_length`, `attention.layer_norm_rms_epsilon`,
/// `rope.dimension_count`, `rope.freq_base`, `rope.scaling.type`,
/// `rope.scaling.factor`, `context_length`; for `gemma3` also
/// `attention.sliding_window`, `rope.freq_base_swa` and
/// `final_logit_softcapping`); the vocabulary size is the row count of
/// `token_embd.weight`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ModelConfig {
    /// The family.
    pub architecture: Architecture,
    /// Tokens in the vocabulary (rows of the embedding and output matrices).
    pub vocab_size: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (fewer than query heads with grouped-query attention;
    /// query head `h` reads KV head `h / (n_head / n_head_kv)`).
    pub n_head_kv: usize,
    /// Elements of one head (of a query, a key and a value).
    pub head_dim: usize,
    /// Width of the MLP's hidden layer.
    pub n_ff: usize,
    /// Tokens the KV cache may hold: the caller's
    /// [`ModelOptions::context_len`](super::ModelOptions::context_len),
    /// capped at the model's `{arch}.context_length` when the file gives one.
    pub context_len: usize,
    /// The context length the model was trained for (`{arch}.context_length`),
    /// if the file says.
    pub trained_context_len: Option<usize>,
    /// RoPE base frequency (`rope.freq_base`, default 10,000).
    pub rope_theta: f32,
    /// Leading elements of each head that RoPE rotates
    /// (`rope.dimension_count`, default the head size; even).
    pub rope_dim: usize,
    /// Linear RoPE scaling: positions are divided by this
    /// (`rope.scaling.type = "linear"`, `rope.scaling.factor`; default 1).
    pub rope_scale: f32,
    /// RMSNorm epsilon (`attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
    /// Factor of the attention scores `q·k`: `1 / sqrt(head_dim)` (Gemma 3
    /// 27B, which llama.cpp recognizes by its 62 layers: `1 /
    /// sqrt(n_embd / n_head)`, Gemma's `query_pre_attn_scalar`).
    pub attention_scale: f32,
    /// Factor the token embeddings are multiplied by: 1, or `sqrt(n_embd)`
    /// for Gemma.
    pub embedding_scale: f32,
    /// Sliding-window attention, if the model uses it (Gemma 3).
    pub sliding_window: Option<SlidingWindow>,
    /// Final logit soft-capping, `logits = cap * tanh(logits / cap)`
    /// (`{arch}.final_logit_softcapping`, when the file has it).
    pub final_logit_softcap: Option<f32>,
}

impl ModelConfig {
    /// Reads and checks the hyper-parameters. `context_len` is the caller's
    /// requested context (capped at the model's trained context).
    ///
    /// # Errors
    ///
    /// When the architecture is not supported, a key is missing or mistyped,
    /// or the values are inconsistent (zero sizes, heads that do not divide,
    /// an odd or too large RoPE dimension, an unknown RoPE scaling); the
    /// error names the key. When `token_embd.weight` is missing.
    pub fn from_gguf(gguf: &Gguf, context_len: usize) -> Result<ModelConfig, Error> {
        let arch_name = gguf.architecture()?;
        let architecture = Architecture::from_name(arch_name).ok_or_else(|| ErrorKind::UnsupportedArchitecture {
            architecture: arch_name.chars().take(80).collect(),
            supported: SUPPORTED,
        })?;
        let arch = architecture.name();
        let key = |suffix: &str| format!("{arch}.{suffix}");
        let invalid = |k: String, problem: String| -> Error { ErrorKind::InvalidMetadata { key: k, problem }.into() };
        let count = |k: String| -> Result<usize, Error> {
            let v = gguf.get_u32(&k)?;
            if v == 0 {
                return Err(invalid(k, "must not be 0".to_owned()));
            }
            // u32 -> usize: lossless on the 32- and 64-bit targets formwork builds for.
            Ok(v as usize)
        };
        let optional_count = |k: String| -> Result<Option<usize>, Error> {
            if gguf.get(&k).is_some() {
                count(k).map(Some)
            } else {
                Ok(None)
            }
        };
        let optional_f32 = |k: String, default: f32| -> Result<f32, Error> {
            match gguf.get(&k) {
                None => Ok(default),
                Some(_) => {
                    let v = gguf.get_f32(&k)?;
                    if !(v.is_finite() && v > 0.0) {
                        return Err(invalid(k, format!("{v} is not a positive finite number")));
                    }
                    Ok(v)
                }
            }
        };

        let n_layer = count(key("block_count"))?;
        let n_embd = count(key("embedding_length"))?;
        let n_ff = count(key("feed_forward_length"))?;
        let n_head = count(key("attention.head_count"))?;
        let n_head_kv = optional_count(key("attention.head_count_kv"))?.unwrap_or(n_head);
        if n_head % n_head_kv != 0 {
            return Err(invalid(
                key("attention.head_count_kv"),
                format!("{n_head_kv} KV heads do not divide {n_head} query heads"),
            ));
        }
        let head_dim = match optional_count(key("attention.key_length"))? {
            Some(d) => d,
            None => {
                if n_embd % n_head != 0 {
                    return Err(invalid(
                        key("attention.head_count"),
                        format!("{n_head} heads do not divide the embedding length {n_embd}"),
                    ));
                }
                n_embd / n_head
            }
        };
        if let Some(dv) = optional_count(key("attention.value_length"))? {
            if dv != head_dim {
                return Err(invalid(
                    key("attention.value_length"),
                    format!("{dv} differs from the key length {head_dim} (not supported)"),
                ));
            }
        }
        let rms_eps = optional_f32(key("attention.layer_norm_rms_epsilon"), 1e-5)?;
        let rope_theta = optional_f32(key("rope.freq_base"), 10_000.0)?;
        let rope_dim = optional_count(key("rope.dimension_count"))?.unwrap_or(head_dim);
        if rope_dim % 2 != 0 || rope_dim > head_dim {
            return Err(invalid(
                key("rope.dimension_count"),
                format!("{rope_dim} must be even and at most the head size {head_dim}"),
            ));
        }
        let scaling_key = key("rope.scaling.type");
        let rope_scale = match gguf.get(&scaling_key) {
            None => 1.0,
            Some(_) => match gguf.get_str(&scaling_key)? {
                "none" => 1.0,
                "linear" => optional_f32(key("rope.scaling.factor"), 1.0)?,
                other => {
                    return Err(invalid(
                        scaling_key,
                        format!("RoPE scaling `{}` is not supported (none, linear)", other.escape_debug()),
                    ))
                }
            },
        };
        let gemma = architecture == Architecture::Gemma3;
        let sliding_window = if gemma {
            Some(SlidingWindow {
                window: count(key("attention.sliding_window"))?,
                pattern: GEMMA3_SLIDING_PATTERN,
                rope_theta: optional_f32(key("rope.freq_base_swa"), 10_000.0)?,
            })
        } else {
            None
        };
        // llama.cpp's rule: Gemma 3 27B (62 layers) scales by the embedding
        // width per head, every other size by the head size.
        let scale_dim = if gemma && n_layer == 62 { n_embd / n_head } else { head_dim };
        let attention_scale = 1.0 / (scale_dim as f32).sqrt();
        let embedding_scale = if gemma { (n_embd as f32).sqrt() } else { 1.0 };
        let final_logit_softcap = match gguf.get(&key("final_logit_softcapping")) {
            None => None,
            Some(_) => Some(optional_f32(key("final_logit_softcapping"), 1.0)?),
        };
        let attn_cap_key = key("attn_logit_softcapping");
        if gguf.get(&attn_cap_key).is_some() {
            return Err(invalid(attn_cap_key, "attention logit soft-capping is not supported".to_owned()));
        }

        let trained_context_len = optional_count(key("context_length"))?;
        if context_len == 0 {
            return Err(ErrorKind::ModelOption { option: "context_len", problem: "must not be 0".to_owned() }.into());
        }
        let context_len = trained_context_len.map_or(context_len, |t| context_len.min(t));

        let embd = gguf
            .tensor("token_embd.weight")
            .ok_or_else(|| ErrorKind::MissingTensor { name: "token_embd.weight".to_owned() })?;
        let vocab_size = match embd.dims() {
            [cols, rows] if *cols == n_embd as u64 && *rows > 0 => usize::try_from(*rows).ok(),
            _ => None,
        }
        .ok_or_else(|| ErrorKind::ModelTensor {
            tensor: "token_embd.weight".to_owned(),
            problem: format!("dims {:?}, expected [{n_embd} (embedding length), vocabulary size]", embd.dims()),
        })?;

        Ok(ModelConfig {
            architecture,
            vocab_size,
            n_layer,
            n_embd,
            n_head,
            n_head_kv,
            head_dim,
            n_ff,
            context_len,
            trained_context_len,
            rope_theta,
            rope_dim,
            rope_scale,
            rms_eps,
            attention_scale,
            embedding_scale,
            sliding_window,
            final_logit_softcap,
        })
    }

    /// Width of all query heads together (`n_head * head_dim`).
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// Width of all key (or value) heads together (`n_head_kv * head_dim`).
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
}
