//! Mask benchmarks (being written).
fn main() {}
