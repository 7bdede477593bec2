//! PagerDuty Events v2: `trigger` (with a payload), `acknowledge` and `resolve`, all keyed by the alarm's
//! fingerprint so PagerDuty folds them into one incident. The routing key is a secret the sender adds;
//! it never appears in a rendered (and possibly logged or previewed) message.

use serde_json::{Map, Value, json};

use super::{Context, Rendered, clean_line, safe_url, title, truncate_chars};
use crate::model::{Severity, format_time};
use crate::record::DeliveryKind;

/// PagerDuty's limit on `dedup_key`, in characters.
pub const DEDUP_KEY_MAX: usize = 255;
/// PagerDuty's limit on `payload.summary`, in characters.
pub const SUMMARY_MAX: usize = 1024;

/// Renders the Events v2 body for `ctx`, without `routing_key`.
pub fn render(ctx: &Context) -> Rendered {
    let job = ctx.job;
    let a = &job.alert;
    let action = match job.kind {
        DeliveryKind::Trigger | DeliveryKind::Escalation => "trigger",
        DeliveryKind::Acknowledge => "acknowledge",
        DeliveryKind::Resolve => "resolve",
    };
    // Cut without an ellipsis: the key is an identifier, and the same fingerprint must always cut the
    // same way.
    let dedup_key: String = a.fingerprint.chars().take(DEDUP_KEY_MAX).collect();
    let mut body = json!({
        "event_action": action,
        "dedup_key": dedup_key,
    });
    if action != "trigger" {
        return Rendered::Pagerduty { payload: body };
    }

    let severity = match a.severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "info",
    };
    let summary = match &a.region {
        Some(r) => format!("{} in {r}: {}", title(job), a.reason),
        None => format!("{}: {}", title(job), a.reason),
    };
    let source = a
        .alarm_arn
        .clone()
        .or_else(|| match (&a.account_id, &a.region) {
            (Some(acct), Some(r)) => Some(format!("{acct}/{r}")),
            _ => None,
        })
        .unwrap_or_else(|| a.source.as_str().to_string());
    let mut details = Map::new();
    details.insert("alert_id".into(), json!(job.alert_id));
    details.insert("state".into(), json!(a.state));
    details.insert("previous_state".into(), json!(a.previous_state));
    details.insert("reason".into(), json!(a.reason));
    details.insert("description".into(), json!(a.description));
    details.insert("account_id".into(), json!(a.account_id));
    details.insert("region".into(), json!(a.region));
    details.insert("namespace".into(), json!(a.namespace));
    details.insert("metric_name".into(), json!(a.metric_name));
    details.insert("dimensions".into(), json!(a.dimensions));
    details.insert("threshold".into(), json!(a.threshold));
    details.insert("labels".into(), json!(a.labels));
    if let Some(l) = job.level {
        details.insert("escalation_level".into(), json!(l));
    }
    let mut payload = json!({
        "summary": truncate_chars(&clean_line(&summary), SUMMARY_MAX),
        "source": clean_line(&source),
        "severity": severity,
        "timestamp": format_time(&a.state_changed_at),
        "class": a.metric_name.as_deref().unwrap_or(&a.kind),
        "custom_details": details,
    });
    if let Some(c) = a.labels.get("service").or(a.namespace.as_ref()) {
        payload["component"] = json!(c);
    }
    if let Some(g) = a.labels.get("team").or(a.account_id.as_ref()) {
        payload["group"] = json!(g);
    }
    body["payload"] = payload;
    body["client"] = json!("tocsin");
    let l = ctx.links;
    if let Some(view) = l.view.as_deref().and_then(safe_url) {
        body["client_url"] = json!(view);
    }
    let links: Vec<Value> = [
        ("View in tocsin", l.view.as_deref()),
        ("Runbook", l.runbook.as_deref()),
    ]
    .into_iter()
    .filter_map(|(text, url)| Some(json!({"href": url.and_then(safe_url)?, "text": text})))
    .collect();
    body["links"] = json!(links);
    Rendered::Pagerduty { payload: body }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::super::testing::*;
    use super::*;
    use crate::config::ChannelKind;

    fn event(kind: DeliveryKind, alert: crate::model::Alert) -> Value {
        let job = job(alert, kind, ChannelKind::Pagerduty);
        match render(&ctx(&job, &links())) {
            Rendered::Pagerduty { payload } => payload,
            other => panic!("not pagerduty: {other:?}"),
        }
    }

    #[test]
    fn a_trigger_carries_a_payload_and_never_a_routing_key() {
        let e = event(DeliveryKind::Trigger, fixture_alert());
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["dedup_key"], fixture_alert().fingerprint);
        assert!(e.get("routing_key").is_none());
        assert_eq!(e["payload"]["severity"], "warning");
        assert_eq!(e["payload"]["timestamp"], "2024-03-01T10:15:00.123Z");
        assert_eq!(e["payload"]["component"], "AWS/RDS");
        assert_eq!(e["client"], "tocsin");
        assert_eq!(
            e["links"][1]["href"],
            "https://runbooks.example.com/orders-db/cpu"
        );
    }

    #[test]
    fn acknowledge_and_resolve_carry_only_the_action_and_key() {
        for (kind, action) in [
            (DeliveryKind::Acknowledge, "acknowledge"),
            (DeliveryKind::Resolve, "resolve"),
        ] {
            let e = event(kind, fixture_alert());
            assert_eq!(e["event_action"], action);
            assert!(e.get("payload").is_none() && e.get("routing_key").is_none());
        }
    }

    #[test]
    fn severities_map_to_pagerdutys_four() {
        let cases = [
            (Severity::Critical, "critical"),
            (Severity::High, "error"),
            (Severity::Medium, "warning"),
            (Severity::Low, "info"),
            (Severity::Info, "info"),
        ];
        for (s, want) in cases {
            let a = crate::model::Alert {
                severity: s,
                ..fixture_alert()
            };
            assert_eq!(event(DeliveryKind::Trigger, a)["payload"]["severity"], want);
        }
    }

    #[test]
    fn long_keys_and_summaries_are_cut_on_character_boundaries() {
        let mut a = hostile_alert();
        a.fingerprint = "é".repeat(300);
        a.reason = "🔥".repeat(2000);
        let e = event(DeliveryKind::Trigger, a);
        assert_eq!(
            e["dedup_key"].as_str().unwrap().chars().count(),
            DEDUP_KEY_MAX
        );
        let summary = e["payload"]["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), SUMMARY_MAX);
        assert!(summary.starts_with("<script>") && !summary.contains('\u{202E}'));
    }
}
