//! Shared Lambda glue: configuration from the environment (read once at start-up, failing fast with the
//! variable's name), the routing config, JSON logs through `tracing` with the invocation's X-Ray trace
//! id, the messages of an SNS event ([`sns`]), the invocation's deadline, and the one error type,
//! [`FunctionError`], that every function's handler fails with and that says whether a failed
//! invocation is worth retrying.

pub mod sns;
pub mod trace;

use std::time::Duration;

use chrono::{DateTime, Utc};
use tocsin_core::router::RouterError;
use tocsin_core::text::one_line;

use thiserror::Error;
use tocsin_core::config::{self, Config};

/// The routing config deployed with the functions: compiled in from `infra/tocsin.yaml`, so a config
/// change is a `sam build && sam deploy` and a broken config fails the build's tests, not a page.
pub const DEPLOYED_CONFIG: &str = include_str!("../../../infra/tocsin.yaml");

/// The config could not be loaded at start-up.
#[derive(Debug, Error)]
pub enum ConfigLoadError {
    /// `TOCSIN_CONFIG` names a file that cannot be read.
    #[error("TOCSIN_CONFIG={path}: {reason}")]
    Unreadable {
        /// The path.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The config has problems (every one, `LINE:COL: message`, joined by `; `).
    #[error("{source_name}: {problems}")]
    Invalid {
        /// Where the config came from.
        source_name: String,
        /// The problems.
        problems: String,
    },
}

/// Loads the routing config: the file named by `TOCSIN_CONFIG` (e.g. from a layer) if set, else the
/// deployed one.
pub fn load_config(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigLoadError> {
    let (name, text) = match get("TOCSIN_CONFIG").filter(|p| !p.trim().is_empty()) {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigLoadError::Unreadable {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            (path, text)
        }
        None => ("deployed config".to_string(), DEPLOYED_CONFIG.to_string()),
    };
    config::load(&text).map_err(|errs| ConfigLoadError::Invalid {
        source_name: name,
        problems: errs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// Why an invocation failed, and whether the platform's retry can help. Either way the invocation
/// fails (so the event ends in the dead-letter destination with this reason, never swallowed); the
/// prefix (`retryable:` / `permanent:`) tells whoever reads the dead letter which it was.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FunctionError {
    /// A dependency failed or is busy (throttled, a conflict, another invocation holds the item):
    /// the same event may well succeed later.
    #[error("retryable: {0}")]
    Retryable(String),
    /// The event itself is wrong, or the failure is final: retrying sends the same thing again.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl FunctionError {
    /// Whether the platform's retry can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, FunctionError::Retryable(_))
    }

    /// A retryable failure whose reason is `e`, on one line.
    pub fn retryable(e: impl std::fmt::Display) -> Self {
        FunctionError::Retryable(one_line(&e.to_string()).into_owned())
    }

    /// A permanent failure whose reason is `e`, on one line.
    pub fn permanent(e: impl std::fmt::Display) -> Self {
        FunctionError::Permanent(one_line(&e.to_string()).into_owned())
    }
}

impl From<RouterError> for FunctionError {
    /// Permanent: a person's command the alert's status does not allow, and a message or timer the
    /// bus or the scheduler refused as it is, which no retry changes. Retryable: everything else
    /// (another invocation holds the event; the store, bus or timers failed, a lost conditional
    /// write included: the retry reads the item again), and so any failure added later, since a
    /// retry that fails again still ends in the dead-letter queue.
    fn from(e: RouterError) -> Self {
        if matches!(e, RouterError::Illegal(_)) || e.is_refused() {
            FunctionError::permanent(e)
        } else {
            FunctionError::retryable(e)
        }
    }
}

/// When the invocation must be done by: its context's deadline (epoch milliseconds). The router's
/// claims on its events end then, so the retry of an invocation that dies takes them over.
pub fn deadline(ctx: &lambda_runtime::Context) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(i64::try_from(ctx.deadline).ok()?)
}

/// How long the invocation has left (ten seconds when the deadline is unknown or past, so a send's
/// retry layer still has a budget to stop within).
pub fn time_left(ctx: &lambda_runtime::Context) -> Duration {
    ctx.deadline()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::from_secs(10))
}

/// A required environment variable is missing or empty.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("environment variable {0} is not set")]
pub struct MissingEnv(pub String);

/// Reads a required variable from `get` (the process environment in `main`, a map in tests).
pub fn required(get: impl Fn(&str) -> Option<String>, name: &str) -> Result<String, MissingEnv> {
    get(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| MissingEnv(name.to_string()))
}

/// Reads a required variable from the process environment.
pub fn env(name: &str) -> Result<String, MissingEnv> {
    required(|n| std::env::var(n).ok(), name)
}

/// JSON logs on stdout (CloudWatch Logs), level from `RUST_LOG` (default `info`), no ANSI colours, no
/// timestamps (CloudWatch adds its own). Every line logged during an invocation lists the runtime's
/// span, so it carries the request id and the X-Ray trace id (`xrayTraceId`).
pub fn init_tracing() {
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout));
}

/// The JSON subscriber of [`init_tracing`], writing to `writer`.
fn subscriber<W>(
    writer: W,
) -> tracing_subscriber::FmtSubscriber<
    tracing_subscriber::fmt::format::JsonFields,
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json, ()>,
    tracing_subscriber::EnvFilter,
    W,
>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_current_span(false)
        .with_span_list(true)
        .with_writer(writer)
        .finish()
}

/// Waiting on tokio's timer, for the functions (the retry layer's and the router's waits).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl tocsin_core::retry::Sleeper for TokioSleeper {
    async fn sleep(&self, d: std::time::Duration) {
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_core::ports::{SchedulerError, StoreError};

    #[test]
    fn a_router_failure_is_retryable_unless_the_command_is_illegal() {
        let busy = FunctionError::from(RouterError::InProgress("e1".into()));
        assert_eq!(
            busy,
            FunctionError::Retryable("event e1 is being processed by another invocation".into())
        );
        let lost = FunctionError::from(RouterError::Store(StoreError::Conflict("a\nb".into())));
        assert!(lost.is_retryable());
        assert!(!lost.to_string().contains('\n'), "{lost}");
        assert!(
            FunctionError::from(RouterError::Scheduler(SchedulerError::Backend("x".into())))
                .is_retryable()
        );
        assert!(
            !FunctionError::from(RouterError::Bus(tocsin_core::ports::BusError::Refused(
                "too large".into()
            )))
            .is_retryable(),
            "a message the bus refuses as it is fails the same way on every retry"
        );
        let illegal = tocsin_core::lifecycle::IllegalTransition {
            alert: "a1".into(),
            command: "ack",
            status: "closed",
            detail: String::new(),
        };
        let refused = FunctionError::from(RouterError::Illegal(illegal));
        assert_eq!(
            refused,
            FunctionError::Permanent("cannot ack alert a1: it is closed".into())
        );
    }

    #[test]
    fn the_deployed_config_loads_and_a_broken_one_names_every_problem() {
        assert!(load_config(|_| None).is_ok());
        let dir = std::env::temp_dir().join(format!("tocsin-lambda-cfg-{}", std::process::id()));
        std::fs::write(&dir, "route:\n  bogus: 1\nextra: 2\n").unwrap();
        let path = dir.to_string_lossy().into_owned();
        let err = load_config(|n| (n == "TOCSIN_CONFIG").then(|| path.clone())).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("2:3") && msg.contains("3:1"), "{msg}");
        let _ = std::fs::remove_file(&dir);
        let missing = load_config(|_| Some("/nonexistent/tocsin.yaml".into())).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("TOCSIN_CONFIG=/nonexistent/tocsin.yaml: ")
        );
    }

    #[test]
    fn every_log_line_of_an_invocation_carries_its_trace_id() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let mut ctx = lambda_runtime::Context::default();
        ctx.request_id = "req-1".into();
        ctx.xray_trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into());
        tracing::subscriber::with_default(subscriber(move || buf.clone()), || {
            let _span = lambda_runtime::layers::trace::request_span(&ctx).entered();
            tracing::info!(alert = "a1", "decision");
            tracing::warn!("something else");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in &lines {
            assert_eq!(
                line["spans"][0]["xrayTraceId"],
                "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
                "{line}"
            );
            assert_eq!(line["spans"][0]["requestId"], "req-1", "{line}");
        }
    }

    #[test]
    fn missing_or_blank_variables_fail_with_their_name() {
        let get = |n: &str| match n {
            "SET" => Some("x".to_string()),
            "BLANK" => Some("  ".to_string()),
            _ => None,
        };
        assert_eq!(required(get, "SET"), Ok("x".to_string()));
        assert_eq!(required(get, "BLANK"), Err(MissingEnv("BLANK".into())));
        assert_eq!(
            required(get, "NOPE").unwrap_err().to_string(),
            "environment variable NOPE is not set"
        );
    }
}
