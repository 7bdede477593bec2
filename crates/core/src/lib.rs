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
pub mod packed;
pub mod pages;
pub mod ports;
pub mod receipt;
pub mod record;
pub mod render;
pub mod retry;
pub mod router;
pub mod routing;
pub mod secret;
pub mod source;
pub mod status;
pub mod text;
pub mod throttle;
pub mod token;
pub mod update;

pub use model::{AlarmState, Alert, Severity, Source, Transport};

/// The noise-control entry points under their earlier path (`router::mute`).
pub mod suppress {
    pub use crate::router::mute::{SilenceCommandError, silence_audit_id};
}

/// The Health reminders under their earlier path (`router::remind`).
pub mod remind {
    pub use crate::router::remind::{
        REMINDER_LABEL, SCHEDULED_CHANGE_KIND, reminder_timer_name, scheduled_start,
    };
}
