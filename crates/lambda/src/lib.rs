//! Shared Lambda glue: configuration from the environment (read once at start-up, failing fast with the
//! variable's name), and JSON logs through `tracing`.

use thiserror::Error;

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
/// timestamps (CloudWatch adds its own).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_current_span(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

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
