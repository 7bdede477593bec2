//! tocsin-ingest.
fn main() {}
