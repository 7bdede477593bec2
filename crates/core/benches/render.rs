//! Placeholder while the renderers are written.
fn main() {}
