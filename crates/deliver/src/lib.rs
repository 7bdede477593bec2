//! The deliver function's handler, as a library so that its tests (`tests/deliver.rs` on the embedded
//! adapters, `tests/on_moto.rs` on moto) drive it the way `main.rs` does.

mod handler;

pub use handler::*;
