//! Matrix-vector products over quantized weights: `out = W x`.
//!
//! Where it sits: every linear layer of a decode step is one GEMV. The
//! weights stay in their file format ([`QuantMatrix`] is a view: rows of
//! blocks, borrowed from the GGUF bytes); the activation `x` is quantized
//! once into the 8-bit format the weight type pairs with
//! ([`QuantizedVector`]), then each output is one quantized dot product.
//!
//! Decoding is bound by reading the weights, so the figure of merit is bytes
//! of weights per second; `benches/kernels.rs` reports it. With the `std`
//! feature, [`gemv_parallel`] splits the rows over a [`ThreadPool`]
//! (see [`crate::pool`] for why it never spins), and
//! [`gemv_parallel_many`] runs several products that share one pool wake-up
//! (q, k and v of an attention layer; gate and up of an MLP).

use alloc::vec::Vec;
use core::ops::Range;

use crate::dispatch::{best, Kernels};
use crate::error::Error;
use crate::quant::{
    cast_blocks, ActivationType, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1, QuantType,
};
use crate::scalar;

/// The blocks of a weight matrix, typed by format.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum WeightBlocks<'a> {
    /// Q4_0 blocks.
    Q4_0(&'a [BlockQ4_0]),
    /// Q4_1 blocks.
    Q4_1(&'a [BlockQ4_1]),
    /// Q5_0 blocks.
    Q5_0(&'a [BlockQ5_0]),
    /// Q8_0 blocks.
    Q8_0(&'a [BlockQ8_0]),
    /// Q4_K blocks.
    Q4K(&'a [BlockQ4K]),
    /// Q5_K blocks.
    Q5K(&'a [BlockQ5K]),
    /// Q6_K blocks.
    Q6K(&'a [BlockQ6K]),
}

impl<'a> WeightBlocks<'a> {
    /// The format.
    pub fn quant_type(&self) -> QuantType {
        match self {
            WeightBlocks::Q4_0(_) => QuantType::Q4_0,
            WeightBlocks::Q4_1(_) => QuantType::Q4_1,
            WeightBlocks::Q5_0(_) => QuantType::Q5_0,
            WeightBlocks::Q8_0(_) => QuantType::Q8_0,
            WeightBlocks::Q4K(_) => QuantType::Q4K,
            WeightBlocks::Q5K(_) => QuantType::Q5K,
            WeightBlocks::Q6K(_) => QuantType::Q6K,
        }
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        match self {
            WeightBlocks::Q4_0(b) => b.len(),
            WeightBlocks::Q4_1(b) => b.len(),
            WeightBlocks::Q5_0(b) => b.len(),
            WeightBlocks::Q8_0(b) => b.len(),
            WeightBlocks::Q4K(b) => b.len(),
            WeightBlocks::Q5K(b) => b.len(),
            WeightBlocks::Q6K(b) => b.len(),
        }
    }

    /// No blocks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Views `bytes` as blocks of format `ty`; `None` when the length is
    /// not a whole number of blocks.
    pub fn from_bytes(ty: QuantType, bytes: &'a [u8]) -> Option<WeightBlocks<'a>> {
        Some(match ty {
            QuantType::Q4_0 => WeightBlocks::Q4_0(cast_blocks(bytes)?),
            QuantType::Q4_1 => WeightBlocks::Q4_1(cast_blocks(bytes)?),
            QuantType::Q5_0 => WeightBlocks::Q5_0(cast_blocks(bytes)?),
            QuantType::Q8_0 => WeightBlocks::Q8_0(cast_blocks(bytes)?),
            QuantType::Q4K => WeightBlocks::Q4K(cast_blocks(bytes)?),
            QuantType::Q5K => WeightBlocks::Q5K(cast_blocks(bytes)?),
            QuantType::Q6K => WeightBlocks::Q6K(cast_blocks(bytes)?),
        })
    }

    fn slice(&self, r: Range<usize>) -> WeightBlocks<'a> {
        match *self {
            WeightBlocks::Q4_0(b) => WeightBlocks::Q4_0(&b[r]),
            WeightBlocks::Q4_1(b) => WeightBlocks::Q4_1(&b[r]),
            WeightBlocks::Q5_0(b) => WeightBlocks::Q5_0(&b[r]),
            WeightBlocks::Q8_0(b) => WeightBlocks::Q8_0(&b[r]),
            WeightBlocks::Q4K(b) => WeightBlocks::Q4K(&b[r]),
            WeightBlocks::Q5K(b) => WeightBlocks::Q5K(&b[r]),
            WeightBlocks::Q6K(b) => WeightBlocks::Q6K(&b[r]),
        }
    }
}

/// A row-major matrix of quantized weights, borrowed: `rows` rows of
/// `cols` weights, each row `cols / block_weights` consecutive blocks (the
/// GGUF layout of a 2-D tensor with `ne = [cols, rows]`).
#[derive(Clone, Copy, Debug)]
pub struct QuantMatrix<'a> {
    blocks: WeightBlocks<'a>,
    rows: usize,
    cols: usize,
}

impl<'a> QuantMatrix<'a> {
    /// A `rows x cols` matrix over `blocks`.
    ///
    /// Errors when `cols` is not a multiple of the block size or the number
    /// of blocks is not `rows * cols / block_weights`.
    pub fn new(blocks: WeightBlocks<'a>, rows: usize, cols: usize) -> Result<Self, Error> {
        let ty = blocks.quant_type();
        let bw = ty.block_weights();
        if cols % bw != 0 {
            return Err(Error::cols_not_block_multiple(cols, bw));
        }
        let expected = (cols / bw).checked_mul(rows).ok_or_else(|| Error::size_overflow(rows, cols))?;
        if blocks.len() != expected {
            return Err(Error::wrong_byte_length(expected, blocks.len()));
        }
        Ok(QuantMatrix { blocks, rows, cols })
    }

    /// A `rows x cols` matrix of format `ty` over raw bytes (for instance a
    /// tensor's extent in an mmapped GGUF file; any alignment).
    pub fn from_bytes(ty: QuantType, rows: usize, cols: usize, bytes: &'a [u8]) -> Result<Self, Error> {
        let row_bytes = ty.row_bytes(cols).ok_or_else(|| {
            if cols % ty.block_weights() != 0 {
                Error::cols_not_block_multiple(cols, ty.block_weights())
            } else {
                Error::size_overflow(rows, cols)
            }
        })?;
        let expected = row_bytes.checked_mul(rows).ok_or_else(|| Error::size_overflow(rows, cols))?;
        if bytes.len() != expected {
            return Err(Error::wrong_byte_length(expected, bytes.len()));
        }
        let blocks =
            WeightBlocks::from_bytes(ty, bytes).ok_or_else(|| Error::wrong_byte_length(expected, bytes.len()))?;
        QuantMatrix::new(blocks, rows, cols)
    }

    /// Number of rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The weight format.
    pub fn quant_type(&self) -> QuantType {
        self.blocks.quant_type()
    }

    /// The blocks.
    pub fn blocks(&self) -> WeightBlocks<'a> {
        self.blocks
    }

    /// Bytes of weights (what one GEMV reads).
    pub fn byte_len(&self) -> usize {
        self.blocks.len() * self.quant_type().block_bytes()
    }

    pub(crate) fn blocks_per_row(&self) -> usize {
        self.cols / self.quant_type().block_weights()
    }

    /// The sub-matrix of rows `r` (for splitting work, or a fused QKV
    /// tensor into its parts).
    ///
    /// # Panics
    ///
    /// When `r` is out of bounds.
    pub fn row_range(&self, r: Range<usize>) -> QuantMatrix<'a> {
        assert!(r.start <= r.end && r.end <= self.rows, "rows {r:?} of {}", self.rows);
        let bpr = self.blocks_per_row();
        QuantMatrix { blocks: self.blocks.slice(r.start * bpr..r.end * bpr), rows: r.end - r.start, cols: self.cols }
    }

    /// Dequantizes row `r` into `out` (`cols` values): an embedding lookup
    /// on a quantized token-embedding matrix.
    ///
    /// # Panics
    ///
    /// When `r >= rows` or `out.len() != cols`.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        assert!(r < self.rows, "row {r} of {}", self.rows);
        let bpr = self.blocks_per_row();
        match self.blocks.slice(r * bpr..(r + 1) * bpr) {
            WeightBlocks::Q4_0(b) => scalar::dequantize_q4_0(b, out),
            WeightBlocks::Q4_1(b) => scalar::dequantize_q4_1(b, out),
            WeightBlocks::Q5_0(b) => scalar::dequantize_q5_0(b, out),
            WeightBlocks::Q8_0(b) => scalar::dequantize_q8_0(b, out),
            WeightBlocks::Q4K(b) => scalar::dequantize_q4k(b, out),
            WeightBlocks::Q5K(b) => scalar::dequantize_q5k(b, out),
            WeightBlocks::Q6K(b) => scalar::dequantize_q6k(b, out),
        }
    }
}

/// An activation vector quantized for a dot product with weights.
///
/// Reuse one per activation format across steps:
/// [`quantize_from`](Self::quantize_from) keeps the allocation.
#[derive(Clone, Debug, PartialEq)]
pub enum QuantizedVector {
    /// Q8_0 blocks (for Q4_0, Q5_0, Q8_0 weights).
    Q8_0(Vec<BlockQ8_0>),
    /// Q8_1 blocks (for Q4_1 weights).
    Q8_1(Vec<BlockQ8_1>),
    /// Q8_K blocks (for K-quant weights).
    Q8K(Vec<BlockQ8K>),
}

impl QuantizedVector {
    /// An empty vector of format `kind`.
    pub fn new(kind: ActivationType) -> QuantizedVector {
        match kind {
            ActivationType::Q8_0 => QuantizedVector::Q8_0(Vec::new()),
            ActivationType::Q8_1 => QuantizedVector::Q8_1(Vec::new()),
            ActivationType::Q8K => QuantizedVector::Q8K(Vec::new()),
        }
    }

    /// `x` quantized to `kind` (best kernel set).
    ///
    /// # Panics
    ///
    /// When `x.len()` is not a multiple of the block length (32 or 256).
    pub fn quantize(kind: ActivationType, x: &[f32]) -> QuantizedVector {
        let mut v = QuantizedVector::new(kind);
        v.quantize_from(x);
        v
    }

    /// Replaces the contents with `x` quantized (same format; the allocation
    /// is reused).
    ///
    /// # Panics
    ///
    /// When `x.len()` is not a multiple of the block length (32 or 256).
    pub fn quantize_from(&mut self, x: &[f32]) {
        self.quantize_from_with(best(), x)
    }

    /// [`quantize_from`](Self::quantize_from) with a chosen kernel set.
    ///
    /// # Panics
    ///
    /// When `x.len()` is not a multiple of the block length (32 or 256).
    pub fn quantize_from_with(&mut self, kernels: &dyn Kernels, x: &[f32]) {
        let n = self.kind().block_len();
        assert!(x.len() % n == 0, "{} values are not a whole number of blocks of {n}", x.len());
        match self {
            QuantizedVector::Q8_0(v) => {
                v.resize(x.len() / n, BlockQ8_0::default());
                kernels.quantize_q8_0(x, v);
            }
            QuantizedVector::Q8_1(v) => {
                v.resize(x.len() / n, BlockQ8_1::default());
                kernels.quantize_q8_1(x, v);
            }
            QuantizedVector::Q8K(v) => {
                v.resize(x.len() / n, BlockQ8K::default());
                kernels.quantize_q8k(x, v);
            }
        }
    }

    /// The format.
    pub fn kind(&self) -> ActivationType {
        match self {
            QuantizedVector::Q8_0(_) => ActivationType::Q8_0,
            QuantizedVector::Q8_1(_) => ActivationType::Q8_1,
            QuantizedVector::Q8K(_) => ActivationType::Q8K,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        let blocks = match self {
            QuantizedVector::Q8_0(v) => v.len(),
            QuantizedVector::Q8_1(v) => v.len(),
            QuantizedVector::Q8K(v) => v.len(),
        };
        blocks * self.kind().block_len()
    }

    /// No values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn check_shapes(w: &QuantMatrix<'_>, x: &QuantizedVector, out: &[f32]) {
    assert_eq!(
        w.quant_type().activation(),
        x.kind(),
        "{} weights need {:?} activations",
        w.quant_type(),
        w.quant_type().activation()
    );
    assert_eq!(x.len(), w.cols(), "activation of {} values for {} columns", x.len(), w.cols());
    assert_eq!(out.len(), w.rows(), "output of {} values for {} rows", out.len(), w.rows());
}

/// `out = W x` on the calling thread, best kernel set.
///
/// # Panics
///
/// When `x` is not in the format `w`'s type pairs with
/// ([`QuantType::activation`]), `x.len() != w.cols()` or
/// `out.len() != w.rows()`.
pub fn gemv(w: &QuantMatrix<'_>, x: &QuantizedVector, out: &mut [f32]) {
    gemv_with(best(), w, x, out)
}

/// [`gemv`] with a chosen kernel set.
///
/// # Panics
///
/// As [`gemv`].
pub fn gemv_with(kernels: &dyn Kernels, w: &QuantMatrix<'_>, x: &QuantizedVector, out: &mut [f32]) {
    check_shapes(w, x, out);
    gemv_unchecked_shapes(kernels, w, x, out)
}

fn gemv_unchecked_shapes(k: &dyn Kernels, w: &QuantMatrix<'_>, x: &QuantizedVector, out: &mut [f32]) {
    use QuantizedVector as V;
    use WeightBlocks as W;
    match (w.blocks, x) {
        (W::Q4_0(b), V::Q8_0(v)) => k.gemv_q4_0(b, v, out),
        (W::Q4_1(b), V::Q8_1(v)) => k.gemv_q4_1(b, v, out),
        (W::Q5_0(b), V::Q8_0(v)) => k.gemv_q5_0(b, v, out),
        (W::Q8_0(b), V::Q8_0(v)) => k.gemv_q8_0(b, v, out),
        (W::Q4K(b), V::Q8K(v)) => k.gemv_q4k(b, v, out),
        (W::Q5K(b), V::Q8K(v)) => k.gemv_q5k(b, v, out),
        (W::Q6K(b), V::Q8K(v)) => k.gemv_q6k(b, v, out),
        _ => unreachable!("formats checked by check_shapes"),
    }
}

/// Batched product `out[t * rows + r] = row r · x_t` for the
/// `T = x.len() / cols` activation vectors stored back to back in `x`
/// (quantize a `[T, cols]` row-major batch with one
/// [`QuantizedVector::quantize`]; blocks never straddle vectors). The output
/// is `[T, rows]` row-major. This is a prefill's linear layer: the weights
/// are read once for the whole batch, and every value equals what [`gemv`]
/// gives for that vector, bit for bit.
///
/// # Panics
///
/// When `x` is not in `w`'s activation format, `cols == 0`, `x.len()` is not
/// a multiple of `cols` or `out.len() != T * rows`.
pub fn gemm(w: &QuantMatrix<'_>, x: &QuantizedVector, out: &mut [f32]) {
    gemm_with(best(), w, x, out)
}

/// [`gemm`] with a chosen kernel set.
///
/// # Panics
///
/// As [`gemm`].
pub fn gemm_with(kernels: &dyn Kernels, w: &QuantMatrix<'_>, x: &QuantizedVector, out: &mut [f32]) {
    check_gemm_shapes(w, x, out);
    gemm_unchecked_shapes(kernels, w, x, out)
}

/// Number of vectors in a batched product, after checking the shapes.
fn check_gemm_shapes(w: &QuantMatrix<'_>, x: &QuantizedVector, out: &[f32]) -> usize {
    assert_eq!(
        w.quant_type().activation(),
        x.kind(),
        "{} weights need {:?} activations",
        w.quant_type(),
        w.quant_type().activation()
    );
    assert!(w.cols() > 0, "gemm over a matrix with no columns");
    assert!(x.len() % w.cols() == 0, "{} activation values are not vectors of {}", x.len(), w.cols());
    let vectors = x.len() / w.cols();
    assert_eq!(out.len(), vectors * w.rows(), "output of {} for {vectors} x {} rows", out.len(), w.rows());
    vectors
}

fn gemm_unchecked_shapes(k: &dyn Kernels, w: &QuantMatrix<'_>, x: &QuantizedVector, out: &mut [f32]) {
    use QuantizedVector as V;
    use WeightBlocks as W;
    let nb = w.blocks_per_row();
    match (w.blocks, x) {
        (W::Q4_0(b), V::Q8_0(v)) => k.gemm_q4_0(b, v, nb, out),
        (W::Q4_1(b), V::Q8_1(v)) => k.gemm_q4_1(b, v, nb, out),
        (W::Q5_0(b), V::Q8_0(v)) => k.gemm_q5_0(b, v, nb, out),
        (W::Q8_0(b), V::Q8_0(v)) => k.gemm_q8_0(b, v, nb, out),
        (W::Q4K(b), V::Q8K(v)) => k.gemm_q4k(b, v, nb, out),
        (W::Q5K(b), V::Q8K(v)) => k.gemm_q5k(b, v, nb, out),
        (W::Q6K(b), V::Q8K(v)) => k.gemm_q6k(b, v, nb, out),
        _ => unreachable!("formats checked by check_gemm_shapes"),
    }
}

#[cfg(feature = "std")]
pub use parallel::{
    gemm_parallel, gemm_parallel_many, gemm_parallel_with, gemv_parallel, gemv_parallel_many, gemv_parallel_with,
    GemvTask,
};

#[cfg(feature = "std")]
mod parallel {
    use super::*;
    use crate::pool::ThreadPool;

    /// One product of a [`gemv_parallel_many`] or [`gemm_parallel_many`]
    /// batch.
    #[derive(Debug)]
    pub struct GemvTask<'w, 'b> {
        /// The weights.
        pub w: QuantMatrix<'w>,
        /// The quantized activation.
        pub x: &'b QuantizedVector,
        /// Where the results go: `w.rows()` values for a GEMV, `[T,
        /// w.rows()]` row-major for a batched product of `T` vectors.
        pub out: &'b mut [f32],
    }

    /// `out = W x` with the rows split over `pool`'s threads, best kernel set.
    ///
    /// Results are identical to [`gemv`] (each row is computed by the same
    /// kernel, whichever thread runs it).
    ///
    /// # Panics
    ///
    /// As [`gemv`].
    pub fn gemv_parallel(pool: &ThreadPool, w: &QuantMatrix<'_>, x: &QuantizedVector, out: &mut [f32]) {
        gemv_parallel_with(pool, best(), w, x, out)
    }

    /// [`gemv_parallel`] with a chosen kernel set.
    ///
    /// # Panics
    ///
    /// As [`gemv`].
    pub fn gemv_parallel_with(
        pool: &ThreadPool,
        kernels: &dyn Kernels,
        w: &QuantMatrix<'_>,
        x: &QuantizedVector,
        out: &mut [f32],
    ) {
        gemv_parallel_many(pool, kernels, &mut [GemvTask { w: *w, x, out }])
    }

    /// Raw output pointer shared by the chunks of one pool job.
    struct OutPtr(*mut f32);
    // SAFETY: the pointer is only used to build disjoint sub-slices, one per
    // chunk, each chunk run exactly once (see `gemv_parallel_many`).
    unsafe impl Sync for OutPtr {}
    // SAFETY: as above; f32 is Send.
    unsafe impl Send for OutPtr {}

    impl OutPtr {
        /// The pointer (a method, so that closures capture the whole
        /// `Sync` wrapper rather than its raw field).
        fn get(&self) -> *mut f32 {
            self.0
        }
    }

    /// Largest chunk: ~64 KiB of weights, a few microseconds of work — the
    /// most a chunk started by a thread that then gets preempted can hold
    /// the step back (once that thread runs again).
    const MAX_CHUNK_BYTES: usize = 64 << 10;
    /// Smallest chunk worth an atomic claim.
    const MIN_CHUNK_BYTES: usize = 4 << 10;

    /// Splits the rows of all tasks into chunks `(task, rows)`, "guided":
    /// each chunk takes `1 / (2 * threads)` of the bytes still unassigned,
    /// clamped to `[MIN_CHUNK_BYTES, MAX_CHUNK_BYTES]`, in whole groups of 4
    /// rows (the multi-row kernels' width). Early chunks are large (few
    /// claims), the last ones small, so that when the caller runs out of
    /// chunks the one a worker is still finishing is short — usually done
    /// before the caller would have to park.
    fn guided_chunks(tasks: &[GemvTask<'_, '_>], threads: usize) -> Vec<(usize, Range<usize>)> {
        let mut remaining: usize = tasks.iter().map(|t| t.w.byte_len()).sum();
        let mut chunks = Vec::new();
        for (i, t) in tasks.iter().enumerate() {
            let rows = t.w.rows();
            let row_bytes = (t.w.byte_len() / rows.max(1)).max(1);
            let mut r0 = 0;
            while r0 < rows {
                let target = (remaining / (2 * threads)).clamp(MIN_CHUNK_BYTES, MAX_CHUNK_BYTES);
                let n = (target / row_bytes).max(1).div_ceil(4) * 4;
                let r1 = (r0 + n).min(rows);
                remaining = remaining.saturating_sub((r1 - r0) * row_bytes);
                chunks.push((i, r0..r1));
                r0 = r1;
            }
        }
        chunks
    }

    /// Several products in one pool job: the threads wake once and take
    /// chunks of rows from all of them. Use it for products that share an
    /// input (q/k/v, gate/up).
    ///
    /// # Panics
    ///
    /// When a task's shapes or formats disagree (as [`gemv`]).
    pub fn gemv_parallel_many(pool: &ThreadPool, kernels: &dyn Kernels, tasks: &mut [GemvTask<'_, '_>]) {
        for t in tasks.iter() {
            check_shapes(&t.w, t.x, t.out);
        }
        if pool.threads() <= 1 {
            for t in tasks.iter_mut() {
                gemv_unchecked_shapes(kernels, &t.w, t.x, t.out);
            }
            return;
        }
        let chunks = guided_chunks(tasks, pool.threads());
        let per_task: Vec<_> = tasks.iter_mut().map(|t| (t.w, t.x, OutPtr(t.out.as_mut_ptr()))).collect();
        let run_chunk = |c: usize| {
            let (i, ref rows) = chunks[c];
            let (w, x, ref out) = per_task[i];
            // SAFETY: `out` points to task i's output of `w.rows()` floats,
            // mutably borrowed (through `tasks`) for the whole call; `rows`
            // is in bounds, and the chunks of a task cover disjoint row
            // ranges; the pool runs each chunk index exactly once and returns
            // only after all have finished, so no two live slices overlap.
            let o = unsafe { core::slice::from_raw_parts_mut(out.get().add(rows.start), rows.len()) };
            gemv_unchecked_shapes(kernels, &w.row_range(rows.clone()), x, o);
        };
        pool.run(chunks.len(), &run_chunk);
    }

    /// [`gemm`] with the rows split over `pool`'s threads (best kernel set).
    /// Identical results to [`gemm`].
    ///
    /// # Panics
    ///
    /// As [`gemm`].
    pub fn gemm_parallel(pool: &ThreadPool, w: &QuantMatrix<'_>, x: &QuantizedVector, out: &mut [f32]) {
        gemm_parallel_with(pool, best(), w, x, out)
    }

    /// [`gemm_parallel`] with a chosen kernel set.
    ///
    /// # Panics
    ///
    /// As [`gemm`].
    pub fn gemm_parallel_with(
        pool: &ThreadPool,
        kernels: &dyn Kernels,
        w: &QuantMatrix<'_>,
        x: &QuantizedVector,
        out: &mut [f32],
    ) {
        gemm_parallel_many(pool, kernels, &mut [GemvTask { w: *w, x, out }])
    }

    /// Several batched products ([`gemm`]) in one pool job: the threads wake
    /// once and take chunks of rows from all of them (q, k and v of a
    /// prefill's attention layer; gate and up of its MLP). Each task's `out`
    /// is `[T, w.rows()]` for the `T` vectors of its `x`. Identical results
    /// to [`gemm`] per task.
    ///
    /// Each chunk of rows computes all its task's vectors into its own
    /// buffer, then writes its columns of the task's output.
    ///
    /// ```
    /// use formwork_kernels::dispatch::best;
    /// use formwork_kernels::quant::{ActivationType, QuantType};
    /// use formwork_kernels::{gemm, gemm_parallel_many, GemvTask, QuantMatrix, QuantizedVector, ThreadPool};
    ///
    /// // Two 2 x 32 Q8_0 matrices (34-byte blocks: an f16 scale, 32 quants).
    /// let mut bytes = vec![0u8; 2 * 34];
    /// for (i, block) in bytes.chunks_exact_mut(34).enumerate() {
    ///     block[..2].copy_from_slice(&0x3c00u16.to_le_bytes()); // d = 1.0
    ///     block[2..].fill(i as u8 + 1);
    /// }
    /// let a = QuantMatrix::from_bytes(QuantType::Q8_0, 2, 32, &bytes).unwrap();
    /// let b = QuantMatrix::from_bytes(QuantType::Q8_0, 1, 32, &bytes[34..]).unwrap();
    /// // Three vectors of 32 values.
    /// let xs: Vec<f32> = (0..96).map(|i| (i % 7) as f32 - 3.0).collect();
    /// let x = QuantizedVector::quantize(ActivationType::Q8_0, &xs);
    /// let (mut out_a, mut out_b) = (vec![0.0; 3 * 2], vec![0.0; 3]);
    /// let pool = ThreadPool::new(2);
    /// gemm_parallel_many(
    ///     &pool,
    ///     best(),
    ///     &mut [GemvTask { w: a, x: &x, out: &mut out_a }, GemvTask { w: b, x: &x, out: &mut out_b }],
    /// );
    /// let mut want = vec![0.0; 3 * 2];
    /// gemm(&a, &x, &mut want);
    /// assert_eq!(out_a, want);
    /// assert_eq!(out_b, [want[1], want[3], want[5]]);
    /// ```
    ///
    /// # Panics
    ///
    /// When a task's shapes or formats disagree (as [`gemm`]).
    pub fn gemm_parallel_many(pool: &ThreadPool, kernels: &dyn Kernels, tasks: &mut [GemvTask<'_, '_>]) {
        let vectors: Vec<usize> = tasks.iter().map(|t| check_gemm_shapes(&t.w, t.x, t.out)).collect();
        if pool.threads() <= 1 {
            for t in tasks.iter_mut() {
                gemm_unchecked_shapes(kernels, &t.w, t.x, t.out);
            }
            return;
        }
        // Guided chunks over the work (weight bytes x vectors), as for GEMV,
        // in whole groups of 16 rows: each chunk writes `rows`-strided
        // pieces of every vector's output, and 16 floats are a cache line,
        // so two threads rarely write the same line (false sharing).
        let row_work = |i: usize| {
            let t = &tasks[i];
            (t.w.byte_len() / t.w.rows().max(1)).max(1) * vectors[i]
        };
        let mut remaining: usize = (0..tasks.len()).map(|i| row_work(i) * tasks[i].w.rows()).sum();
        let mut chunks = Vec::new();
        for (i, t) in tasks.iter().enumerate() {
            let (rows, work) = (t.w.rows(), row_work(i));
            if vectors[i] == 0 {
                continue;
            }
            let mut r0 = 0;
            while r0 < rows {
                let target = (remaining / (2 * pool.threads())).clamp(MIN_CHUNK_BYTES, 4 * MAX_CHUNK_BYTES);
                let n = (target / work).max(1).div_ceil(16) * 16;
                let r1 = (r0 + n).min(rows);
                remaining = remaining.saturating_sub((r1 - r0) * work);
                chunks.push((i, r0..r1));
                r0 = r1;
            }
        }
        let per_task: Vec<_> = tasks.iter_mut().map(|t| (t.w, t.x, OutPtr(t.out.as_mut_ptr()))).collect();
        let run_chunk = |c: usize| {
            let (i, ref r) = chunks[c];
            let (w, x, ref out) = per_task[i];
            let rows = w.rows();
            let mut local = vec![0.0f32; vectors[i] * r.len()];
            gemm_unchecked_shapes(kernels, &w.row_range(r.clone()), x, &mut local);
            for (t, vals) in local.chunks_exact(r.len()).enumerate() {
                for (j, &v) in vals.iter().enumerate() {
                    // SAFETY: task i's `out` has `vectors[i] * rows` floats
                    // and is mutably borrowed (through `tasks`) for the
                    // whole call; `t * rows + r.start + j` is in bounds, and
                    // the chunks of a task own disjoint row ranges, so no
                    // two chunks write the same element; the pool runs each
                    // chunk once and returns after all.
                    unsafe { out.get().add(t * rows + r.start + j).write(v) };
                }
            }
        };
        pool.run(chunks.len(), &run_chunk);
    }
}
