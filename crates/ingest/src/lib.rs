//! The ingest function's handler, as a library so that its tests on moto (`tests/on_moto.rs`) wire it
//! the way `main.rs` does.

mod handler;

pub use handler::{Ingest, IngestError, Ingested, handle};
