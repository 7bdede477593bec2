//! tocsin-router.
fn main() {}
