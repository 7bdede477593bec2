//! Prometheus Alertmanager webhooks (payload version 4): one alert per entry of `alerts`, firing as
//! `ALARM` and resolved as `OK`. An alert is identified by its label set, as Alertmanager itself
//! identifies it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::loose::{Val, copy_labels, opt_str, req_name, req_str, req_time};
use super::text::{clean_text, parse_time, quote};
use super::{Entry, Event, ParseError, Parsed};
use crate::model::{AlarmState, Alert, Severity, Source, Transport, format_time, stable_id};

/// Reads every entry; a bad entry is rejected alone, naming it (`alerts[1].labels.alertname`).
pub(crate) fn parse(
    ev: &Event<'_>,
    transport: Transport,
    out: &mut Parsed,
) -> Result<(), ParseError> {
    if let Some(version) = opt_str(ev.version.as_ref(), "version")? {
        if version != "4" {
            return Err(ParseError::new(
                "version",
                format!(
                    "unsupported Alertmanager webhook version {} (expected \"4\")",
                    quote(version)
                ),
            ));
        }
    }
    let Some(alerts) = &ev.alerts else {
        return Err(ParseError::new("alerts", "required field is missing"));
    };
    let alerts = alerts.get("alerts")?;
    if alerts.is_empty() {
        return Err(ParseError::new(
            "alerts",
            "empty: the webhook carries no alerts",
        ));
    }
    // Some senders leave each alert's `status` out and give only the group's.
    let group_status = opt_str(ev.status.as_ref(), "status")?;
    for (i, entry) in alerts.iter().enumerate() {
        match entry
            .get("")
            .and_then(|e| alert(e, group_status, transport))
        {
            Ok(alert) => out.alerts.push(alert),
            Err(e) => out.rejected.push(e.within(&format!("alerts[{i}]"))),
        }
    }
    Ok(())
}

/// Go's zero time, which Alertmanager writes for an `endsAt` it does not know.
fn is_go_zero_time(v: Option<&Val<'_>>) -> bool {
    v.and_then(Val::as_str)
        .is_some_and(|s| s.trim_start().starts_with("0001-01-01"))
}

/// A time as the webhook writes it (RFC 3339), or as a Go template prints a `time.Time`
/// (`2024-03-11 09:14:37.118 +0000 UTC`), which is what Amazon Managed Service for Prometheus's
/// JSON template for SNS puts in `startsAt` and `endsAt`.
fn alert_time(v: Option<&Val<'_>>, at: &str) -> Result<DateTime<Utc>, ParseError> {
    req_time(v, at).or_else(|e| {
        let s = v.and_then(Val::as_str).ok_or_else(|| e.clone())?;
        let mut parts = s.split_ascii_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(date), Some(time), Some(offset)) => {
                parse_time(&format!("{date}T{time}{offset}")).ok_or(e)
            }
            _ => Err(e),
        }
    })
}

fn alert(
    e: &Entry<'_>,
    group_status: Option<&str>,
    transport: Transport,
) -> Result<Alert, ParseError> {
    let status = match (opt_str(e.status.as_ref(), "status")?, group_status) {
        (Some(own), _) => own,
        (None, Some(group)) => group,
        (None, None) => req_str(e.status.as_ref(), "status")?,
    };
    // A resolved alert whose end is Go's zero time says nothing of when it ended; its start is the
    // one real time it carries.
    let resolved_at = if is_go_zero_time(e.ends_at.as_ref()) {
        ("startsAt", e.starts_at.as_ref())
    } else {
        ("endsAt", e.ends_at.as_ref())
    };
    let (state, time_at, time) = match status {
        "firing" => (AlarmState::Alarm, "startsAt", e.starts_at.as_ref()),
        "resolved" => (AlarmState::Ok, resolved_at.0, resolved_at.1),
        other => {
            return Err(ParseError::new(
                "status",
                format!(
                    "unknown status {} (expected firing or resolved)",
                    quote(other)
                ),
            ));
        }
    };
    let changed_at = alert_time(time, time_at)?;
    let source_labels = e
        .labels
        .as_ref()
        .ok_or_else(|| ParseError::new("labels", "required field is missing"))?
        .get("labels")?;
    let name = req_name(source_labels.get("alertname"), "labels.alertname")?;

    let mut labels = BTreeMap::new();
    copy_labels(source_labels, "labels", "", &mut labels)?;
    let annotations = match &e.annotations {
        None => None,
        Some(a) => Some(a.get("annotations")?),
    };
    if let Some(a) = annotations {
        copy_labels(a, "annotations", "annotation.", &mut labels)?;
    }
    let annotation = |key: &str| {
        annotations
            .and_then(|a| a.get(key))
            .and_then(|v| v.as_str())
            .filter(|s| !s.trim().is_empty())
    };
    let summary = annotation("summary");
    let description = annotation("description").or(summary);
    let severity = labels
        .get("severity")
        .and_then(|s| Severity::parse(s))
        .unwrap_or(Severity::Medium);

    // Alertmanager identifies an alert by its label set; `labels` is sorted, so this is stable.
    let mut parts: Vec<&str> = Vec::with_capacity(1 + 2 * labels.len());
    parts.push("alertmanager");
    for (k, v) in labels.iter().filter(|(k, _)| !k.starts_with("annotation.")) {
        parts.push(k);
        parts.push(v);
    }
    let fingerprint = stable_id(&parts);
    let event_id = stable_id(&[
        "alertmanager",
        &fingerprint,
        state.as_str(),
        &format_time(&changed_at),
    ]);
    Ok(Alert {
        event_id,
        fingerprint,
        source: Source::Alertmanager,
        transport,
        alarm_name: name.to_owned(),
        alarm_arn: None,
        account_id: labels.get("account_id").cloned(),
        region: labels.get("region").cloned(),
        state,
        previous_state: None,
        state_changed_at: changed_at,
        reason: summary.map(clean_text).unwrap_or_default(),
        kind: "prometheus".to_owned(),
        namespace: None,
        metric_name: None,
        dimensions: BTreeMap::new(),
        threshold: None,
        severity,
        description: description.map(clean_text).unwrap_or_default(),
        labels,
    })
}
