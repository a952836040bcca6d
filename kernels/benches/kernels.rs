//! Kernel benchmarks: GEMV at SmolLM2-135M's shapes (scalar vs the best
//! vectorized set, 1 and 2 threads; throughput = bytes of weights read), and
//! the logit path over a 49,152-token vocabulary.
//!
//! ```text
//! cargo bench -p formwork-kernels -- --quick
//! cargo bench -p formwork-kernels -- gemv/q4_1_576x576
//! ```
//!
//! Benchmark names: `gemv/<type>_<rows>x<cols>/<kernels>/<threads>t`,
//! `gemm/<type>_<rows>x<cols>_<n>tok/<kernels>/<threads>t` (throughput in
//! tokens), `gemm_qkv/<type>_<n>tok/{separate,many}/2t` (three prefill
//! products as three pool jobs or one), `quantize/…`,
//! `mask/<kernel>/<kernels>/<DENSITY>`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use formwork_kernels::dispatch::{available, Kernels};
use formwork_kernels::quant::{blocks_as_bytes, BlockQ4_1, BlockQ8_0, QuantType};
use formwork_kernels::{
    gemm_parallel_many, gemm_parallel_with, gemm_with, gemv_parallel_with, gemv_with, sample_masked, Candidates,
    GemvTask, QuantMatrix, QuantizedVector, SamplingParams, ThreadPool, F16,
};

/// SplitMix64, for reproducible inputs.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn sym(&mut self, a: f32) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        core::array::from_fn(|_| self.next() as u8)
    }
}

fn weights(ty: QuantType, rows: usize, cols: usize, g: &mut Gen) -> Vec<u8> {
    let n = rows * cols / ty.block_weights();
    match ty {
        QuantType::Q4_1 => {
            let b: Vec<BlockQ4_1> = (0..n)
                .map(|_| BlockQ4_1 { d: F16::from_f32(g.sym(0.01)), m: F16::from_f32(g.sym(0.05)), qs: g.bytes() })
                .collect();
            blocks_as_bytes(&b).to_vec()
        }
        QuantType::Q8_0 => {
            let b: Vec<BlockQ8_0> = (0..n)
                .map(|_| BlockQ8_0 { d: F16::from_f32(g.sym(0.001)), qs: g.bytes::<32>().map(|v| v as i8) })
                .collect();
            blocks_as_bytes(&b).to_vec()
        }
        other => panic!("no benchmark weights for {other}"),
    }
}

fn bench_gemv(c: &mut Criterion) {
    let pool2 = ThreadPool::new(2);
    let pool1 = ThreadPool::new(1);
    let mut g = Gen(42);
    // SmolLM2-135M: attention projections 576x576, MLP gate/up 1536x576,
    // MLP down 576x1536, the tied vocabulary projection 49152x576 (Q8_0;
    // 576x576 Q8_0 shows the same kernel on cache-resident weights).
    let shapes = [
        (QuantType::Q4_1, 576, 576),
        (QuantType::Q4_1, 1536, 576),
        (QuantType::Q4_1, 576, 1536),
        (QuantType::Q8_0, 576, 576),
        (QuantType::Q8_0, 49152, 576),
    ];
    for (ty, rows, cols) in shapes {
        let bytes = weights(ty, rows, cols, &mut g);
        let w = QuantMatrix::from_bytes(ty, rows, cols, &bytes).unwrap();
        let x: Vec<f32> = (0..cols).map(|_| g.sym(2.0)).collect();
        let xq = QuantizedVector::quantize(ty.activation(), &x);
        let mut out = vec![0.0f32; rows];
        let mut group = c.benchmark_group(format!("gemv/{}_{rows}x{cols}", ty.name()));
        group.throughput(Throughput::Bytes(w.byte_len() as u64));
        for k in available() {
            for (threads, pool) in [(1, &pool1), (2, &pool2)] {
                let id = BenchmarkId::new(k.name(), format!("{threads}t"));
                group.bench_function(id, |b| {
                    b.iter(|| {
                        if threads == 1 {
                            gemv_with(k, black_box(&w), black_box(&xq), &mut out);
                        } else {
                            gemv_parallel_with(pool, k, black_box(&w), black_box(&xq), &mut out);
                        }
                        black_box(&out);
                    })
                });
            }
        }
        group.finish();
    }
}

fn bench_gemm(c: &mut Criterion) {
    let pool2 = ThreadPool::new(2);
    let mut g = Gen(43);
    // Prefills through SmolLM2's MLP up-projection: 8 tokens (a few forced
    // tokens plus the sampled one), 32 (a short uncached prompt), 64.
    let (ty, rows, cols) = (QuantType::Q4_1, 1536, 576);
    let bytes = weights(ty, rows, cols, &mut g);
    let w = QuantMatrix::from_bytes(ty, rows, cols, &bytes).unwrap();
    for tokens in [8, 32, 64] {
        let x: Vec<f32> = (0..cols * tokens).map(|_| g.sym(2.0)).collect();
        let xq = QuantizedVector::quantize(ty.activation(), &x);
        let mut out = vec![0.0f32; rows * tokens];
        let mut group = c.benchmark_group(format!("gemm/{}_{rows}x{cols}_{tokens}tok", ty.name()));
        group.throughput(Throughput::Elements(tokens as u64));
        for k in available() {
            group.bench_function(BenchmarkId::new(k.name(), "1t"), |b| {
                b.iter(|| gemm_with(k, black_box(&w), black_box(&xq), &mut out))
            });
            group.bench_function(BenchmarkId::new(k.name(), "2t"), |b| {
                b.iter(|| gemm_parallel_with(&pool2, k, black_box(&w), black_box(&xq), &mut out))
            });
        }
        group.finish();
    }
}

/// A prefill's q, k and v projections (576x576, 2 x 192x576) for 6 tokens on
/// two threads: three pool jobs, or one ([`gemm_parallel_many`]).
fn bench_gemm_qkv(c: &mut Criterion) {
    let pool2 = ThreadPool::new(2);
    let k = formwork_kernels::dispatch::best();
    let mut g = Gen(44);
    let (ty, cols, tokens) = (QuantType::Q4_1, 576, 6);
    let bytes: Vec<Vec<u8>> = [576, 192, 192].iter().map(|&rows| weights(ty, rows, cols, &mut g)).collect();
    let ws: Vec<QuantMatrix> = bytes
        .iter()
        .zip([576, 192, 192])
        .map(|(b, rows)| QuantMatrix::from_bytes(ty, rows, cols, b).unwrap())
        .collect();
    let x: Vec<f32> = (0..cols * tokens).map(|_| g.sym(2.0)).collect();
    let xq = QuantizedVector::quantize(ty.activation(), &x);
    let mut outs: Vec<Vec<f32>> = ws.iter().map(|w| vec![0.0f32; w.rows() * tokens]).collect();
    let mut group = c.benchmark_group(format!("gemm_qkv/{}_{tokens}tok", ty.name()));
    group.throughput(Throughput::Elements(tokens as u64));
    group.bench_function(BenchmarkId::new("separate", "2t"), |b| {
        b.iter(|| {
            for (w, out) in ws.iter().zip(outs.iter_mut()) {
                gemm_parallel_with(&pool2, k, black_box(w), black_box(&xq), out);
            }
        })
    });
    group.bench_function(BenchmarkId::new("many", "2t"), |b| {
        b.iter(|| {
            let mut tasks: Vec<GemvTask> =
                ws.iter().zip(outs.iter_mut()).map(|(w, out)| GemvTask { w: *w, x: black_box(&xq), out }).collect();
            gemm_parallel_many(&pool2, k, &mut tasks);
        })
    });
    group.finish();
}

fn bench_quantize(c: &mut Criterion) {
    let mut g = Gen(7);
    let x: Vec<f32> = (0..1536).map(|_| g.sym(2.0)).collect();
    let mut group = c.benchmark_group("quantize/1536");
    group.throughput(Throughput::Elements(x.len() as u64));
    for k in available() {
        let mut q = QuantizedVector::new(QuantType::Q4_1.activation());
        group.bench_function(BenchmarkId::new("q8_1", k.name()), |b| b.iter(|| q.quantize_from_with(k, black_box(&x))));
    }
    group.finish();
}

fn bench_mask(c: &mut Criterion) {
    let vocab = 49152;
    let mut g = Gen(9);
    let logits: Vec<f32> = (0..vocab).map(|_| g.sym(10.0)).collect();
    // DENSE: half the tokens; SPARSE: about 1 in 500 (inside a number or a
    // keyword); ALL: unconstrained.
    let dense: Vec<u32> = (0..vocab / 32).map(|_| g.next() as u32).collect();
    let sparse: Vec<u32> = (0..vocab / 32).map(|_| if g.next() % 16 == 0 { 1 << (g.next() % 32) } else { 0 }).collect();
    let all = vec![u32::MAX; vocab / 32];
    let mut group = c.benchmark_group("mask");
    group.throughput(Throughput::Elements(vocab as u64));
    for (name, mask) in [("DENSE", &dense), ("SPARSE", &sparse), ("ALL", &all)] {
        for k in available() {
            let k: &dyn Kernels = k;
            let mut buf = logits.clone();
            group.bench_function(BenchmarkId::new(format!("apply/{}", k.name()), name), |b| {
                b.iter(|| {
                    buf.copy_from_slice(&logits);
                    k.apply_mask_f32(black_box(&mut buf), black_box(mask));
                })
            });
            group.bench_function(BenchmarkId::new(format!("argmax/{}", k.name()), name), |b| {
                b.iter(|| k.masked_argmax(black_box(&logits), black_box(mask)))
            });
        }
        let mut scratch = Candidates::new();
        let params = SamplingParams { temperature: 0.8, top_k: 40, top_p: 0.95 };
        group.bench_function(BenchmarkId::new("sample_top_k_top_p", name), |b| {
            b.iter(|| sample_masked(black_box(&logits), black_box(mask), &params, 0.5, &mut scratch))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = bench_gemv, bench_gemm, bench_gemm_qkv, bench_quantize, bench_mask
}
criterion_main!(benches);
