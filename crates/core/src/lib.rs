//! tocsin's domain, free of the AWS SDK and of Lambda: the canonical alert, source parsers, the routing
//! config, routing and the router's decisions, and the ports (traits) adapters implement.

pub mod config;
pub mod model;
pub mod source;

pub use model::{AlarmState, Alert, Severity, Source, Transport};
