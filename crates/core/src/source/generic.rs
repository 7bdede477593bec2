//! tocsin's own generic JSON alert (`"version": "tocsin/v1"`), for anything that can POST JSON: one
//! alert, or a batch under `alerts`. Its fields are documented in `docs/sources.md`. Being our own
//! format, it is read strictly: an unknown status or severity is an error, not a guess.

use std::collections::BTreeMap;

use super::loose::{copy_labels, opt_nonempty, opt_str, req_name, req_str, req_time};
use super::region::region_code;
use super::text::{check_name, clean_text, quote};
use super::{Entry, Event, ParseError, Parsed};
use crate::model::{AlarmState, Alert, Severity, Source, Transport, format_time, stable_id_pair};

/// The only version this reader knows.
const VERSION: &str = "tocsin/v1";

/// Reads one alert or a batch; in a batch, a bad alert is rejected alone (`alerts[1].time`).
pub(crate) fn parse(
    ev: Event<'_>,
    transport: Transport,
    out: &mut Parsed,
) -> Result<(), ParseError> {
    check_version(req_str(ev.version.as_ref(), "version")?)?;
    if let Some(alerts) = &ev.alerts {
        let alerts = alerts.get("alerts")?;
        if alerts.is_empty() {
            return Err(ParseError::new(
                "alerts",
                "empty: the batch carries no alerts",
            ));
        }
        for (i, entry) in alerts.iter().enumerate() {
            let one = || -> Result<Alert, ParseError> {
                let entry = entry.get("")?;
                if let Some(version) = opt_str(entry.version.as_ref(), "version")? {
                    check_version(version)?;
                }
                alert(entry, transport)
            };
            match one() {
                Ok(alert) => out.alerts.push(alert),
                Err(e) => out.rejected.push(e.within(&format!("alerts[{i}]"))),
            }
        }
        return Ok(());
    }
    let entry = Entry {
        name: ev.name,
        status: ev.status,
        time: ev.time,
        severity: ev.severity,
        description: ev.description,
        reason: ev.reason,
        key: ev.key,
        account_id: ev.account_id,
        region: ev.region,
        labels: ev.labels,
        ..Entry::default()
    };
    out.alerts.push(alert(&entry, transport)?);
    Ok(())
}

fn check_version(version: &str) -> Result<(), ParseError> {
    if version == VERSION {
        Ok(())
    } else {
        Err(ParseError::new(
            "version",
            format!(
                "unsupported version {} (expected \"{VERSION}\")",
                quote(version)
            ),
        ))
    }
}

fn alert(e: &Entry<'_>, transport: Transport) -> Result<Alert, ParseError> {
    let name = req_name(e.name.as_ref(), "name")?;
    let key = match opt_nonempty(e.key.as_ref(), "key")? {
        Some(key) => {
            check_name(key).map_err(|reason| ParseError::new("key", reason))?;
            key
        }
        None => name,
    };
    let status = req_str(e.status.as_ref(), "status")?;
    let state = state(status).ok_or_else(|| {
        ParseError::new(
            "status",
            format!(
                "unknown status {} (expected firing, resolved or unknown, or ALARM, OK or \
                 INSUFFICIENT_DATA)",
                quote(status)
            ),
        )
    })?;
    let changed_at = req_time(e.time.as_ref(), "time")?;

    let mut labels = BTreeMap::new();
    if let Some(l) = &e.labels {
        copy_labels(l.get("labels")?, "labels", "", &mut labels)?;
    }
    let severity = match opt_nonempty(e.severity.as_ref(), "severity")? {
        None => Severity::Medium,
        Some(text) => {
            let severity = Severity::parse(text).ok_or_else(|| {
                ParseError::new(
                    "severity",
                    format!(
                        "unknown severity {} (expected critical, high, medium, low or info)",
                        quote(text)
                    ),
                )
            })?;
            labels.insert("severity".to_owned(), clean_text(text));
            severity
        }
    };
    let (fingerprint, event_id) = stable_id_pair(
        &["generic", key],
        &[state.as_str(), &format_time(&changed_at)],
    );
    let region = opt_nonempty(e.region.as_ref(), "region")?;
    Ok(Alert {
        event_id,
        fingerprint,
        source: Source::Generic,
        transport,
        alarm_name: name.to_owned(),
        alarm_arn: None,
        account_id: opt_nonempty(e.account_id.as_ref(), "account_id")?.map(str::to_owned),
        region: region.map(|r| region_code(r).unwrap_or(r).to_owned()),
        state,
        previous_state: None,
        state_changed_at: changed_at,
        reason: opt_str(e.reason.as_ref(), "reason")?
            .map(clean_text)
            .unwrap_or_default(),
        kind: "generic".to_owned(),
        namespace: None,
        metric_name: None,
        dimensions: BTreeMap::new(),
        threshold: None,
        severity,
        description: opt_str(e.description.as_ref(), "description")?
            .map(clean_text)
            .unwrap_or_default(),
        labels,
    })
}

/// Prometheus words or CloudWatch states, in any case.
fn state(status: &str) -> Option<AlarmState> {
    let is = |word: &str| status.eq_ignore_ascii_case(word);
    if is("firing") || is("alarm") {
        Some(AlarmState::Alarm)
    } else if is("resolved") || is("ok") {
        Some(AlarmState::Ok)
    } else if is("unknown") || is("insufficient_data") {
        Some(AlarmState::InsufficientData)
    } else {
        None
    }
}
