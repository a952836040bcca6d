//! Model throughput: one decode step at a short context, and a prefill of
//! 64 tokens, at 1 and 2 threads.
//!
//! Runs the default model (`formwork::fetch::default_model_path`: the file
//! `FORMWORK_MODEL` names, else the cached or downloaded SmolLM2-135M-Instruct
//! Q4_1): `cargo bench -p formwork --bench model`. When no model can be had
//! the benchmark prints that it did not run.
//!
//! The decode group's throughput is in bytes of weights read per step
//! ([`Model::weight_bytes`]), so criterion's "thrpt" is the achieved memory
//! bandwidth; tokens/s is 1 / time. The prefill group's throughput is in
//! tokens.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use formwork::model::{Model, ModelOptions};

/// Tokens in the context before the benchmarked step.
const CONTEXT: usize = 16;
/// Tokens in the benchmarked prefill.
const PREFILL: usize = 64;

fn tokens(n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919 + 13) % vocab) as u32).collect()
}

fn bench_model(c: &mut Criterion) {
    let path = match formwork::fetch::default_model_path() {
        Ok(p) => p,
        Err(e) => {
            println!("the default model is not available ({e}): the model benchmark did not run");
            return;
        }
    };
    for threads in [1, 2] {
        let opts = ModelOptions { threads, ..ModelOptions::default() };
        let model = match Model::open(&path, &opts) {
            Ok(m) => m,
            Err(e) => {
                println!("cannot load {}: {e}", path.display());
                return;
            }
        };
        let vocab = model.config().vocab_size;
        let mut logits = vec![0.0; vocab];

        let mut group = c.benchmark_group("decode_step");
        group.throughput(Throughput::Bytes(model.weight_bytes()));
        group.measurement_time(Duration::from_secs(8));
        let mut cache = model.new_cache();
        model.forward(&tokens(CONTEXT, vocab), &mut cache, &mut logits).expect("prefill");
        group.bench_function(BenchmarkId::new(format!("ctx{CONTEXT}"), format!("{threads}t")), |b| {
            b.iter(|| {
                model.forward(black_box(&[42]), &mut cache, &mut logits).expect("step");
                cache.truncate(CONTEXT);
                black_box(logits[0])
            })
        });
        group.finish();

        let mut group = c.benchmark_group("prefill");
        group.throughput(Throughput::Elements(PREFILL as u64));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(8));
        let prompt = tokens(PREFILL, vocab);
        let mut cache = model.new_cache();
        group.bench_function(BenchmarkId::new(format!("{PREFILL}tok"), format!("{threads}t")), |b| {
            b.iter(|| {
                cache.clear();
                model.forward(black_box(&prompt), &mut cache, &mut logits).expect("prefill");
                black_box(logits[0])
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_model);
criterion_main!(benches);
