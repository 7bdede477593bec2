//! tocsin.
fn main() {}
