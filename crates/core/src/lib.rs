//! tocsin's domain, free of the AWS SDK and of Lambda: the canonical alert, source parsers, the routing
//! config, classification, routing, on-call math, the router's decisions, and the ports (traits)
//! adapters implement.

pub mod classify;
pub mod config;
pub mod contract;
pub mod destination;
pub mod explain;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod noise;
pub mod oncall;
pub mod pages;
pub mod ports;
pub mod record;
pub mod remind;
pub mod render;
pub mod retry;
pub mod router;
pub mod routing;
pub mod secret;
pub mod source;
pub mod status;
pub mod suppress;
pub mod text;
pub mod throttle;
pub mod token;
pub mod update;

pub use model::{AlarmState, Alert, Severity, Source, Transport};
