//! Placeholder until the kernel benchmarks land.
fn main() {}
