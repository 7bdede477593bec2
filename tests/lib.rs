//! Helpers shared by the workspace integration tests: fixture paths and the example config.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tocsin_core::Alert;
use tocsin_core::config::Config;
use tocsin_core::model::{AlarmState, Severity, Source, Transport, format_time, stable_id};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Loads a config from YAML text, panicking with every problem.
pub fn config_from(text: &str) -> Arc<Config> {
    match tocsin_core::config::load(text) {
        Ok(c) => Arc::new(c),
        Err(errs) => panic!("config problems: {errs:?}"),
    }
}

/// The example config, `infra/tocsin.yaml`.
pub fn example_config() -> Arc<Config> {
    let text = std::fs::read_to_string(root().join("infra/tocsin.yaml"))
        .unwrap_or_else(|e| panic!("infra/tocsin.yaml: {e}"));
    config_from(&text)
}

/// The alerts of one fixture under `events/`.
pub fn alerts(path: &str) -> Vec<Alert> {
    let p = root().join("events").join(path);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    tocsin_core::source::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The one alert of a fixture.
pub fn alert(path: &str) -> Alert {
    let mut v = alerts(path);
    assert_eq!(v.len(), 1, "{path} should hold one alert");
    v.remove(0)
}

/// An RFC 3339 time, in UTC.
pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// A CloudWatch alarm transition built by hand (an ALB 5XX alarm in eu-west-1 of account
/// 123456789012, through SNS), keyed the way the parsers key them.
pub fn cloudwatch_alarm(name: &str, state: AlarmState, at: &str) -> Alert {
    let arn = format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}");
    let at = t(at);
    Alert {
        event_id: stable_id(&["cloudwatch", &arn, state.as_str(), &format_time(&at)]),
        fingerprint: stable_id(&["cloudwatch", &arn]),
        source: Source::Cloudwatch,
        transport: Transport::Sns,
        alarm_name: name.into(),
        alarm_arn: Some(arn),
        account_id: Some("123456789012".into()),
        region: Some("eu-west-1".into()),
        state,
        previous_state: None,
        state_changed_at: at,
        reason: format!("{name} went {state}"),
        kind: "metric".into(),
        namespace: Some("AWS/ApplicationELB".into()),
        metric_name: Some("HTTPCode_Target_5XX_Count".into()),
        dimensions: Default::default(),
        threshold: Some(10.0),
        severity: Severity::Medium,
        description: String::new(),
        labels: Default::default(),
    }
}
