//! Classification: which service an alert belongs to (team, tier), how severe it is, and its
//! business-impact priority. Runs once per alert, after parsing and before routing.
//!
//! Severity, first that applies: the first `severity_rules` entry that matches; a `[critical]`-style tag
//! in the description (when `defaults.severity_tags`); the severity the source itself stated (the
//! `severity` label parsers set); `defaults.severity`.
//!
//! Priority `P1`..`P5`: the severity's rank (critical = 0) plus a tier penalty (tier 1 and 2: 0, tier 3:
//! 1, tier 4: 2; no service: 0), capped at P5. A critical alert of a tier-1 service is P1, a medium one of
//! a tier-4 service is P5.

use crate::config::{Config, Field, Matcher};
use crate::model::{Alert, Severity};

/// The value a matcher's field reads on an alert; `None` when the alert lacks it.
pub fn field_value<'a>(alert: &'a Alert, field: &Field) -> Option<&'a str> {
    match field {
        Field::Severity => Some(alert.severity.as_str()),
        Field::Source => Some(alert.source.as_str()),
        Field::Transport => Some(alert.transport.as_str()),
        Field::Account => alert.account_id.as_deref(),
        Field::Region => alert.region.as_deref(),
        Field::AlarmName => Some(&alert.alarm_name),
        Field::Namespace => alert.namespace.as_deref(),
        Field::Metric => alert.metric_name.as_deref(),
        Field::State => Some(alert.state.as_str()),
        Field::Kind => Some(&alert.kind),
        Field::Description => Some(&alert.description),
        Field::Service => alert.labels.get("service").map(String::as_str),
        Field::Team => alert.labels.get("team").map(String::as_str),
        Field::Tier => alert.labels.get("tier").map(String::as_str),
        Field::Priority => alert.labels.get("priority").map(String::as_str),
        Field::Dimension(name) => alert.dimensions.get(name).map(String::as_str),
        Field::Label(name) => alert.labels.get(name).map(String::as_str),
    }
}

/// Whether every matcher holds for the alert (an empty list holds).
pub fn matches_all(matchers: &[Matcher], alert: &Alert) -> bool {
    matchers
        .iter()
        .all(|m| m.matches_value(field_value(alert, &m.field)))
}

/// A `[critical]`, `[SEV1]`, `[p2]`... tag anywhere in the text, the first one that names a severity.
pub fn severity_tag(text: &str) -> Option<Severity> {
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let word = &after[..close];
        if word.len() <= 16 {
            if let Some(s) = Severity::parse(word) {
                return Some(s);
            }
        }
        rest = &after[close..];
    }
    None
}

/// Classifies the alert in place: `severity`, and the labels `service`, `team`, `tier`, `priority`.
pub fn classify(config: &Config, alert: &mut Alert) {
    let service = config
        .services
        .iter()
        .find(|s| matches_all(&s.matchers, alert));
    let tier = service.map(|s| s.tier);
    if let Some(s) = service {
        alert.labels.insert("service".into(), s.name.clone());
        if let Some(team) = &s.team {
            alert.labels.insert("team".into(), team.clone());
        }
        alert.labels.insert("tier".into(), s.tier.to_string());
    }

    let by_rule = config
        .severity_rules
        .iter()
        .find(|r| matches_all(&r.matchers, alert))
        .map(|r| r.severity);
    let by_tag = || {
        if config.defaults.severity_tags {
            severity_tag(&alert.description)
        } else {
            None
        }
    };
    let by_source = || {
        alert
            .labels
            .get("severity")
            .and_then(|s| Severity::parse(s))
    };
    alert.severity = by_rule
        .or_else(by_tag)
        .or_else(by_source)
        .unwrap_or(config.defaults.severity);

    let rank = Severity::ALL
        .iter()
        .position(|s| *s == alert.severity)
        .unwrap_or(2);
    let penalty = match tier {
        Some(3) => 1,
        Some(t) if t >= 4 => 2,
        _ => 0,
    };
    let p = (rank + penalty).min(4) + 1;
    alert.labels.insert("priority".into(), format!("P{p}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_tag_finds_the_first_tag_that_names_a_severity() {
        assert_eq!(
            severity_tag("[prod] [Critical] checkout down"),
            Some(Severity::Critical)
        );
        assert_eq!(severity_tag("disk [sev3] filling"), Some(Severity::Medium));
        assert_eq!(severity_tag("no tag here [unclosed"), None);
        assert_eq!(severity_tag("[]"), None);
    }
}
