//! The Llama-family decoder (Llama, Qwen2, Gemma 3) over quantized GGUF
//! weights, its KV cache and batched prefill.
//!
//! Where this sits: between the weights ([`crate::weights`]: a validated GGUF
//! header and the file's bytes) and the generator ([`crate::generate`]),
//! which calls [`Model::forward`] once per step and masks the logits it
//! returns. The numeric work is done by [`crate::kernels`].
//!
//! - [`Model`]: loads a model ([`Model::open`] memory-maps a file on native
//!   targets; [`Model::from_bytes`] takes bytes, as in wasm32), checks every
//!   tensor's shape and type against the hyper-parameters
//!   ([`ModelConfig`]), and runs tokens: [`Model::forward`] for the logits
//!   of the last token, [`Model::forward_all`] for every position's.
//! - [`KvCache`]: one sequence's keys and values; clone it to branch a
//!   sequence (a shared prompt computed once), truncate it to rewind.
//!
//! ## The computation
//!
//! Architectures `llama` (SmolLM2, Llama 3.2, Mistral-style files) and
//! `qwen2` (Qwen2.5: Q/K/V biases, NEOX RoPE). Per block: RMSNorm, Q/K/V
//! projections, RoPE (llama.cpp's interleaved-pair rotation for `llama`,
//! whose GGUF Q/K weights are stored permuted for it; NEOX for `qwen2`;
//! optional Llama 3 `rope_freqs` factors and linear scaling), causal
//! grouped-query attention over the cache, output projection and residual;
//! RMSNorm, SwiGLU MLP (`down(silu(gate x) * up x)`) and residual. Then the
//! final RMSNorm and the output matrix (the token embedding when the file
//! has no `output.weight`).
//!
//! `gemma3` (Gemma 3) switches on, per [`Architecture`]: embeddings scaled
//! by `sqrt(n_embd)`; NEOX RoPE; per-head RMSNorm of queries and keys before
//! RoPE; RMSNorm of the attention and MLP outputs before the residual
//! ("sandwich" norms); a GELU-gated MLP; and sliding-window attention
//! ([`SlidingWindow`]: five layers of six see only the last
//! `attention.sliding_window` positions and use RoPE base 10,000). Final
//! logit soft-capping applies when the file has
//! `{arch}.final_logit_softcapping`. Gemma's large tied embedding stays
//! quantized: one row is dequantized per token, and the output product runs
//! on the quantized matrix. The KV cache keeps every position of every
//! layer (sliding layers too), which the memory budget counts.
//!
//! Weights stay quantized and in place: every matrix is a zero-copy view of
//! the file's bytes (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K). Activations
//! are quantized once per product input into the 8-bit format each weight
//! type pairs with. For one token, the Q/K/V products run as one thread-pool
//! job, and gate/up as another; a batch of tokens (prefill) uses the
//! batched product, which reads each matrix once for the whole batch and
//! gives bit-identical results, so a prefill of `N` tokens yields exactly
//! the logits of `N` single steps. The KV cache is f32.
//!
//! ## Correctness
//!
//! `tests/model.rs` compares every position's logits with
//! candle-transformers' quantized Llama on the default model, checks that
//! batched prefill equals single steps, that truncating and re-running
//! reproduces logits exactly, that a cloned cache continues identically,
//! and that malformed files are refused with errors naming the tensor.
//! `tests/gemma.rs` does the same for Gemma 3 on synthetic files, against a
//! reference built on candle's quantized products.
//!
//! ```no_run
//! # fn main() -> Result<(), formwork::Error> {
//! use formwork::model::{Model, ModelOptions};
//!
//! let model = Model::open(std::path::Path::new("model.gguf"), &ModelOptions::default())?;
//! let mut cache = model.new_cache();
//! let mut logits = vec![0.0; model.config().vocab_size];
//! model.forward(&[1, 504, 3458], &mut cache, &mut logits)?; // the prompt, in one batch
//! let next = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap_or(0);
//! model.forward(&[next as u32], &mut cache, &mut logits)?; // one decode step
//! # Ok(())
//! # }
//! ```

mod cache;
mod config;
mod forward;
mod weights;

pub use cache::KvCache;
pub use config::{Architecture, MlpActivation, ModelConfig, SlidingWindow};

use crate::error::{Error, ErrorKind};
use crate::kernels::ThreadPool;
use crate::weights::{Gguf, WeightFile};

use forward::Logits;
use weights::Weights;

/// How to load and run a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelOptions {
    /// Threads for the matrix products: 0 means the machine's available
    /// parallelism on native targets, 1 in wasm32.
    pub threads: usize,
    /// Tokens the KV cache may hold (prompt plus generated), capped at the
    /// model's trained context. Default 2048.
    pub context_len: usize,
    /// Refuse to load a model whose weights plus a full f32 KV cache for
    /// `context_len` tokens exceed this many bytes. `None`: no limit.
    pub memory_budget: Option<u64>,
}

impl Default for ModelOptions {
    fn default() -> ModelOptions {
        ModelOptions { threads: 0, context_len: 2048, memory_budget: None }
    }
}

impl ModelOptions {
    fn resolved_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            std::thread::available_parallelism().map_or(1, usize::from)
        }
        #[cfg(target_arch = "wasm32")]
        {
            1
        }
    }
}

/// A loaded Llama-family model: its weights (owned: a memory map or a byte
/// vector), hyper-parameters and a thread pool. `Send + Sync`: one model can
/// serve several sequences (each with its own [`KvCache`]) from several
/// threads; concurrent forward passes share the pool (a pass that finds it
/// busy runs on its own thread).
#[derive(Debug)]
pub struct Model {
    file: WeightFile,
    config: ModelConfig,
    weights: Weights,
    pool: ThreadPool,
    /// RoPE inverse frequencies, `rope_dim / 2` of them.
    inv_freq: Vec<f32>,
    /// Those of the sliding-window layers (empty without sliding windows).
    inv_freq_local: Vec<f32>,
    weight_bytes: u64,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Model>();
    assert_send_sync::<KvCache>();
};

impl Model {
    /// Memory-maps and loads the GGUF model at `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or is not valid GGUF, the architecture is
    /// not supported, a hyper-parameter or tensor is missing or inconsistent
    /// (the error names the key or tensor), or the model does not fit
    /// `opts.memory_budget`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path, opts: &ModelOptions) -> Result<Model, Error> {
        Model::load(WeightFile::open(path)?, opts)
    }

    /// Loads a GGUF model held in memory (the bytes are kept, not copied).
    ///
    /// # Errors
    ///
    /// As [`Model::open`].
    pub fn from_bytes(bytes: Vec<u8>, opts: &ModelOptions) -> Result<Model, Error> {
        Model::load(WeightFile::from_bytes(bytes)?, opts)
    }

    /// Loads a model from a parsed file.
    ///
    /// # Errors
    ///
    /// As [`Model::open`].
    pub fn load(file: WeightFile, opts: &ModelOptions) -> Result<Model, Error> {
        let gguf = file.gguf();
        let config = ModelConfig::from_gguf(gguf, opts.context_len)?;
        if let Some(budget) = opts.memory_budget {
            gguf.memory_estimate(config.context_len as u64, std::mem::size_of::<f32>() as u64)?.check(budget)?;
        }
        let weights = Weights::load(gguf, file.bytes(), &config)?;
        let half = config.rope_dim / 2;
        let inv_freq_of = |theta: f32, factors: Option<&Vec<f32>>| -> Vec<f32> {
            (0..half)
                .map(|i| {
                    let base = 1.0 / theta.powf((2 * i) as f32 / config.rope_dim as f32);
                    factors.map_or(base, |f| base / f[i])
                })
                .collect()
        };
        let inv_freq = inv_freq_of(config.rope_theta, weights.rope_freqs.as_ref());
        let inv_freq_local = config.sliding_window.map_or_else(Vec::new, |s| inv_freq_of(s.rope_theta, None));
        let weight_bytes = weights.step_bytes();
        let pool = ThreadPool::new(opts.resolved_threads());
        Ok(Model { file, config, weights, pool, inv_freq, inv_freq_local, weight_bytes })
    }

    /// The parsed GGUF header (metadata for the tokenizer, tensor infos).
    pub fn gguf(&self) -> &Gguf {
        self.file.gguf()
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Threads the matrix products run on (the caller's included).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Bytes of weights one decode step reads (every matrix, including the
    /// output matrix, plus norms and one embedding row): divide by the step
    /// time for the achieved memory bandwidth.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// An empty KV cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(&self.config)
    }

    fn check(&self, tokens: &[u32], cache: &KvCache) -> Result<(), Error> {
        let problem = |problem: String| -> Error { ErrorKind::ForwardInput { problem }.into() };
        let c = &self.config;
        if tokens.is_empty() {
            return Err(problem("no tokens to run".to_owned()));
        }
        if !cache.fits(c) {
            return Err(problem("the KV cache was made by a model of another shape".to_owned()));
        }
        if let Some((i, &tok)) = tokens.iter().enumerate().find(|(_, &t)| t as usize >= c.vocab_size) {
            return Err(problem(format!("token {i} has id {tok}, beyond the vocabulary of {}", c.vocab_size)));
        }
        if cache.len() + tokens.len() > c.context_len {
            return Err(problem(format!(
                "{} cached + {} new tokens exceed the context length {}",
                cache.len(),
                tokens.len(),
                c.context_len
            )));
        }
        Ok(())
    }

    /// Runs `tokens` at positions `cache.len()..`, appends their keys and
    /// values to `cache`, and writes the logits of the last token into
    /// `logits` (`vocab_size` values). Several tokens run as one batch
    /// (prefill: the weights are read once for the batch).
    ///
    /// # Errors
    ///
    /// When `tokens` is empty, an id is not below `vocab_size`, the context
    /// would overflow, `logits` has the wrong length, or `cache` belongs to a
    /// model of another shape. The cache is unchanged then.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, logits: &mut [f32]) -> Result<(), Error> {
        self.check(tokens, cache)?;
        if logits.len() != self.config.vocab_size {
            return Err(ErrorKind::ForwardInput {
                problem: format!("logits buffer of {} values, expected {}", logits.len(), self.config.vocab_size),
            }
            .into());
        }
        forward::run(self, tokens, cache, Logits::Last(logits));
        Ok(())
    }

    /// As [`forward`](Self::forward), but returns the logits of every
    /// position: `tokens.len() x vocab_size`, row-major.
    ///
    /// # Errors
    ///
    /// As [`forward`](Self::forward) (there is no logits buffer to get
    /// wrong).
    pub fn forward_all(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Vec<f32>, Error> {
        self.check(tokens, cache)?;
        let mut out = Vec::new();
        forward::run(self, tokens, cache, Logits::All(&mut out));
        Ok(out)
    }

    /// Loads a Hugging Face checkpoint — a directory with `config.json` and
    /// `model.safetensors` (or a sharded `model.safetensors.index.json`), or
    /// one `.safetensors` file next to its `config.json` — converting it on
    /// load into the GGUF form [`Model::load`] reads, with its matrices
    /// quantized to `convert.quantize` (see [`crate::weights::checkpoint`]).
    /// `opts.memory_budget` is checked against the converted size before
    /// anything is converted. The tokenizer is not part of the weights: read
    /// the directory's `tokenizer.json` with
    /// [`crate::tokenizer::Tokenizer::from_json_file`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), formwork::Error> {
    /// use formwork::model::{Model, ModelOptions};
    /// use formwork::weights::{Quantize, SafetensorsOptions};
    ///
    /// let convert = SafetensorsOptions { quantize: Quantize::Q8_0 };
    /// let model = Model::open_safetensors("SmolLM2-135M-Instruct".as_ref(), &ModelOptions::default(), &convert)?;
    /// assert_eq!(model.gguf().architecture()?, "llama");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When a file cannot be read or is malformed, `config.json` describes a
    /// model formwork does not run, a tensor is missing, unexpected or of the
    /// wrong shape or dtype (errors name the file and the key or tensor), or
    /// the converted model does not fit `opts.memory_budget`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_safetensors(
        path: &std::path::Path,
        opts: &ModelOptions,
        convert: &crate::weights::SafetensorsOptions,
    ) -> Result<Model, Error> {
        let checkpoint = crate::weights::Checkpoint::open(path)?;
        let conversion = checkpoint.plan(convert)?;
        if let Some(budget) = opts.memory_budget {
            conversion.memory_estimate(opts.context_len as u64, std::mem::size_of::<f32>() as u64)?.check(budget)?;
        }
        Model::load(conversion.into_weight_file()?, opts)
    }
}
