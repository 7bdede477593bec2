//! The canonical alert: the one shape every source format is turned into, and the only one the router,
//! the channels and the audit trail know. Field names and meanings follow `DESIGN.md`.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where an alert came from. The model is source-neutral: CloudWatch alarms come first, not alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A CloudWatch alarm state change.
    Cloudwatch,
    /// An AWS Health event.
    Health,
    /// A Prometheus Alertmanager webhook alert.
    Alertmanager,
    /// tocsin's documented generic JSON alert, and EventBridge events of no known kind.
    Generic,
    /// A CloudWatch Synthetics canary run or status change.
    Synthetics,
    /// An ECS deployment, service action or stopped task.
    Ecs,
    /// An RDS DB instance or cluster event.
    Rds,
    /// An EC2 instance state change or Spot interruption warning.
    Ec2,
    /// An EC2 Auto Scaling launch, terminate or instance refresh failure.
    Autoscaling,
    /// An Amazon GuardDuty finding.
    Guardduty,
    /// An AWS Security Hub finding.
    Securityhub,
}

impl Source {
    /// The name used in JSON, matchers and the timeline.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cloudwatch => "cloudwatch",
            Source::Health => "health",
            Source::Alertmanager => "alertmanager",
            Source::Generic => "generic",
            Source::Synthetics => "synthetics",
            Source::Ecs => "ecs",
            Source::Rds => "rds",
            Source::Ec2 => "ec2",
            Source::Autoscaling => "autoscaling",
            Source::Guardduty => "guardduty",
            Source::Securityhub => "securityhub",
        }
    }
}

/// How the event reached tocsin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// An SNS notification (a CloudWatch alarm action on a topic).
    Sns,
    /// An EventBridge event ("CloudWatch Alarm State Change" and other detail types).
    Eventbridge,
    /// A CloudWatch alarm invoking a Lambda function directly (`alarmData`).
    LambdaAction,
    /// An HTTP POST (Alertmanager webhook, generic JSON).
    Http,
}

impl Transport {
    /// The name used in JSON and the timeline.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Sns => "sns",
            Transport::Eventbridge => "eventbridge",
            Transport::LambdaAction => "lambda_action",
            Transport::Http => "http",
        }
    }
}

/// The alarm's state in its source: firing, resolved or unknown, whatever the source calls them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlarmState {
    /// Firing.
    #[serde(rename = "ALARM")]
    Alarm,
    /// Resolved.
    #[serde(rename = "OK")]
    Ok,
    /// Not enough data to tell.
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    /// The CloudWatch spelling, used in JSON and matchers.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Alarm => "ALARM",
            AlarmState::Ok => "OK",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    /// Parses the CloudWatch spelling exactly (`ALARM`, `OK`, `INSUFFICIENT_DATA`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ALARM" => Some(AlarmState::Alarm),
            "OK" => Some(AlarmState::Ok),
            "INSUFFICIENT_DATA" => Some(AlarmState::InsufficientData),
            _ => None,
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is, most urgent first (so `Ord` sorts critical first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Wake someone up.
    Critical,
    /// Page in working hours, soon otherwise.
    High,
    /// The default.
    Medium,
    /// Worth a look.
    Low,
    /// For the record.
    Info,
}

impl Severity {
    /// Every severity, most urgent first.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    /// The lowercase name used in JSON, config and matchers.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// Parses a severity name, case-insensitively; also accepts common synonyms
    /// (`warning` → medium, `error` → high, `page` → critical, `informational`/`none` → info).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "page" | "p1" | "sev1" => Some(Severity::Critical),
            "high" | "error" | "major" | "p2" | "sev2" => Some(Severity::High),
            "medium" | "warning" | "warn" | "moderate" | "p3" | "sev3" => Some(Severity::Medium),
            "low" | "minor" | "p4" | "sev4" => Some(Severity::Low),
            "info" | "informational" | "none" | "p5" | "sev5" => Some(Severity::Info),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The canonical alert (see `DESIGN.md`). One state transition of one alarm in one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Identifies this transition: the same transition through any transport has the same id.
    pub event_id: String,
    /// Identifies the alarm: every transition of one alarm shares it.
    pub fingerprint: String,
    /// The source system.
    pub source: Source,
    /// How it reached us.
    pub transport: Transport,
    /// The alert's name in its source (alarm name, Health event type code, Alertmanager alertname).
    pub alarm_name: String,
    /// The alarm's ARN where the source has one.
    pub alarm_arn: Option<String>,
    /// The AWS account the alarm belongs to.
    pub account_id: Option<String>,
    /// The impacted region as a code (`eu-west-1`), not the delivery region.
    pub region: Option<String>,
    /// The new state.
    pub state: AlarmState,
    /// The state before this transition, where known.
    pub previous_state: Option<AlarmState>,
    /// When the state changed, UTC.
    #[serde(with = "rfc3339")]
    pub state_changed_at: DateTime<Utc>,
    /// The source's human reason for the transition.
    pub reason: String,
    /// `metric`, `metric_math`, `anomaly_detection`, `composite` for CloudWatch; sources name their own.
    pub kind: String,
    /// The metric namespace, where there is one metric.
    pub namespace: Option<String>,
    /// The metric name, where there is one metric.
    pub metric_name: Option<String>,
    /// The metric's dimensions.
    pub dimensions: BTreeMap<String, String>,
    /// The alarm threshold, where it has a fixed one.
    pub threshold: Option<f64>,
    /// The classified severity.
    pub severity: Severity,
    /// The alarm's description, empty when it has none.
    pub description: String,
    /// The source's other routable facts (statistic, comparison, Alertmanager labels, ...).
    pub labels: BTreeMap<String, String>,
}

impl Alert {
    /// Makes this alert equal to `source` in place, reusing its strings' buffers (and, key by key,
    /// its labels' and dimensions'): what `*self = source.clone()` does, without allocating anew
    /// what is already here. Every field is named, so that a new one cannot be forgotten here.
    pub fn refill_from(&mut self, source: &Alert) {
        let Alert {
            event_id,
            fingerprint,
            source: from,
            transport,
            alarm_name,
            alarm_arn,
            account_id,
            region,
            state,
            previous_state,
            state_changed_at,
            reason,
            kind,
            namespace,
            metric_name,
            dimensions,
            threshold,
            severity,
            description,
            labels,
        } = source;
        self.event_id.clone_from(event_id);
        self.fingerprint.clone_from(fingerprint);
        self.source = *from;
        self.transport = *transport;
        self.alarm_name.clone_from(alarm_name);
        self.alarm_arn.clone_from(alarm_arn);
        self.account_id.clone_from(account_id);
        self.region.clone_from(region);
        self.state = *state;
        self.previous_state = *previous_state;
        self.state_changed_at = *state_changed_at;
        self.reason.clone_from(reason);
        self.kind.clone_from(kind);
        self.namespace.clone_from(namespace);
        self.metric_name.clone_from(metric_name);
        refill_map(&mut self.dimensions, dimensions);
        self.threshold = *threshold;
        self.severity = *severity;
        self.description.clone_from(description);
        refill_map(&mut self.labels, labels);
    }
}

/// `to = from.clone()`, reusing the buffers of the entries whose keys both have (the labels of two
/// transitions of one alarm differ in a few keys when they came by different transports).
fn refill_map(to: &mut BTreeMap<String, String>, from: &BTreeMap<String, String>) {
    if to.len() == from.len() && to.keys().eq(from.keys()) {
        for (t, f) in to.values_mut().zip(from.values()) {
            t.clone_from(f);
        }
        return;
    }
    to.retain(|k, _| from.contains_key(k));
    for (k, v) in from {
        match to.get_mut(k) {
            Some(t) => t.clone_from(v),
            None => {
                to.insert(k.clone(), v.clone());
            }
        }
    }
}

/// RFC 3339 in UTC with millisecond precision and a `Z`, the one timestamp form tocsin writes.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Serde glue for [`format_time`]; reads any RFC 3339 timestamp.
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes `t` as RFC 3339 UTC with milliseconds and `Z`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(t))
    }

    /// Reads an RFC 3339 timestamp into UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| D::Error::custom(format!("invalid timestamp {s:?}: {e}")))
    }
}

/// A stable, short, hex identifier: the first 16 bytes of SHA-256 over the parts, each length-prefixed
/// so that `("ab","c")` and `("a","bc")` differ. Stable across processes, versions and machines.
pub fn stable_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    feed(&mut h, parts);
    hex_id(h)
}

/// [`stable_id`] of `prefix`, and of `prefix` followed by `rest`, hashing the prefix once: an alert's
/// fingerprint and its event id (the fingerprint's parts, then the transition's), which every parser
/// makes for every alert.
pub fn stable_id_pair(prefix: &[&str], rest: &[&str]) -> (String, String) {
    let mut h = Sha256::new();
    feed(&mut h, prefix);
    let short = hex_id(h.clone());
    feed(&mut h, rest);
    (short, hex_id(h))
}

fn feed(h: &mut Sha256, parts: &[&str]) {
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
}

fn hex_id(h: Sha256) -> String {
    let digest = h.finalize();
    // By hand rather than `write!` per byte: this runs twice for every alert parsed.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in &digest[..16] {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_of_ids_is_the_two_ids_made_apart() {
        let (short, long) = stable_id_pair(
            &["cloudwatch", "arn:x"],
            &["ALARM", "2026-11-20T02:00:00.000Z"],
        );
        assert_eq!(short, stable_id(&["cloudwatch", "arn:x"]));
        assert_eq!(
            long,
            stable_id(&["cloudwatch", "arn:x", "ALARM", "2026-11-20T02:00:00.000Z"])
        );
        // Pinned (computed apart: SHA-256 of the length-prefixed parts): ids are stored (dedup
        // records, alert fingerprints) and must not change from one version to the next.
        assert_eq!(short, "1bef19645734807277687ad4d76ab609");
    }

    fn sample(name: &str, labels: &[(&str, &str)]) -> Alert {
        Alert {
            event_id: stable_id(&[name, "e"]),
            fingerprint: stable_id(&[name]),
            source: Source::Cloudwatch,
            transport: Transport::Sns,
            alarm_name: name.into(),
            alarm_arn: Some(format!("arn:aws:cloudwatch:eu-west-1:1:alarm:{name}")),
            account_id: Some("1".into()),
            region: None,
            state: AlarmState::Alarm,
            previous_state: Some(AlarmState::Ok),
            state_changed_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            reason: format!("{name} fired"),
            kind: "metric".into(),
            namespace: None,
            metric_name: Some("Errors".into()),
            dimensions: BTreeMap::from([("Service".into(), name.into())]),
            threshold: Some(1.0),
            severity: Severity::High,
            description: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn refill_from_makes_an_equal_alert_whether_the_labels_keys_match_or_not() {
        let from = Alert {
            region: Some("eu-west-1".into()),
            state: AlarmState::Ok,
            ..sample("b", &[("service", "b"), ("tier", "1")])
        };
        for start in [
            sample("a", &[("service", "a"), ("tier", "2")]),
            sample("a", &[("team", "x")]),
            sample("a", &[]),
        ] {
            let mut to = start;
            to.refill_from(&from);
            assert_eq!(to, from);
        }
        let mut same_keys = sample("a", &[("service", "a-much-longer-value"), ("tier", "2")]);
        let buffer = same_keys.labels["service"].as_ptr();
        same_keys.refill_from(&from);
        assert_eq!(same_keys, from);
        assert_eq!(
            same_keys.labels["service"].as_ptr(),
            buffer,
            "the buffer is reused"
        );
    }

    #[test]
    fn stable_id_separates_parts_unambiguously() {
        assert_ne!(stable_id(&["ab", "c"]), stable_id(&["a", "bc"]));
        assert_eq!(stable_id(&["x", "y"]), stable_id(&["x", "y"]));
        assert_eq!(stable_id(&["x"]).len(), 32);
        // Pinned (sha256 of 8-byte big-endian length 1 then "a", first 16 bytes): ids are stored and
        // compared across versions, so their form must never change.
        assert_eq!(stable_id(&["a"]), "3b196fd4907bedf51c3090e9835f2f7c");
    }

    #[test]
    fn severity_orders_most_urgent_first_and_parses_synonyms() {
        assert!(Severity::Critical < Severity::Info);
        assert_eq!(Severity::parse("WARNING"), Some(Severity::Medium));
        assert_eq!(Severity::parse("bogus"), None);
    }

    #[test]
    fn timestamps_are_written_in_utc_with_z() {
        let t = DateTime::parse_from_rfc3339("2024-03-01T10:00:00.5+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_time(&t), "2024-03-01T09:00:00.500Z");
    }
}
