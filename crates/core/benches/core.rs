//! Benchmarks of the core hot paths.
fn main() {}
