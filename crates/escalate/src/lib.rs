//! The escalate function's handler, as a library so that its tests on moto (`tests/firing.rs`) drive
//! it the way `main.rs` does.

mod handler;

pub use handler::handle;
