//! Criterion benchmarks for the root crate (filled as the inference loop lands).
use criterion::{criterion_group, criterion_main, Criterion};

fn noop(_c: &mut Criterion) {}

criterion_group!(benches, noop);
criterion_main!(benches);
