//! EventBridge events, told apart by `source` and `detail-type`: CloudWatch alarm state changes,
//! AWS Health events, the availability signals of [`super::signals`], and every other event, which
//! is kept as a generic alert naming its `source` and `detail-type` rather than refused: an event
//! someone routed to tocsin is one they wanted to see.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::loose::{List, Obj, Val, opt_nonempty, req_str, req_time};
use super::text::{clean_text, quote};
use super::{Event, ParseError, Parsed, Skipped, cloudwatch, health, push_one, signals};
use crate::model::{AlarmState, Alert, Severity, Source, Transport, format_time, stable_id_pair};

/// The severity of an EventBridge event of no known kind: it is shown, not escalated.
const UNKNOWN_SEVERITY: Severity = Severity::Low;

/// Reads one EventBridge event into `out`.
pub(crate) fn parse(
    ev: &Event<'_>,
    transport: Transport,
    out: &mut Parsed,
) -> Result<(), ParseError> {
    let source = req_str(ev.source.as_ref(), "source")?;
    let detail_type = req_str(ev.detail_type.as_ref(), "detail-type")?;
    match (source, detail_type) {
        // A contributor's change has the alarm's shape plus `alarmContributor`, and no
        // `previousState` (a time series is new when it first breaches).
        (
            "aws.cloudwatch",
            "CloudWatch Alarm State Change" | "CloudWatch Alarm Contributor State Change",
        ) => {
            let detail: Obj<cloudwatch::AlarmData> = read_detail(required(ev)?)?;
            let alert = cloudwatch::from_eventbridge(ev, detail.get("detail")?, transport)?;
            push_one(out, alert);
            Ok(())
        }
        ("aws.cloudwatch", "CloudWatch Alarm Configuration Change") => {
            out.skipped.push(configuration_change(ev)?);
            Ok(())
        }
        ("aws.health", "AWS Health Event" | "AWS Health Abuse Event") => {
            health::parse(ev, detail_type, required(ev)?, transport, out)
        }
        _ => {
            if !signals::parse(ev, source, detail_type, transport, out)? {
                push_one(out, unknown(ev, source, detail_type, transport)?);
            }
            Ok(())
        }
    }
}

/// An alarm created, updated or deleted: a change someone made, not a problem, so it is skipped,
/// naming the alarm and the operation.
fn configuration_change(ev: &Event<'_>) -> Result<Skipped, ParseError> {
    #[derive(Deserialize)]
    #[serde(bound(deserialize = "'de: 'a"), rename_all = "camelCase")]
    struct Change<'a> {
        alarm_name: Option<Val<'a>>,
        operation: Option<Val<'a>>,
    }
    let change: Obj<Change> = read_detail(required(ev)?)?;
    let change = change.get("detail")?;
    let name = opt_nonempty(change.alarm_name.as_ref(), "detail.alarmName")?;
    let operation = opt_nonempty(change.operation.as_ref(), "detail.operation")?;
    Ok(Skipped {
        at: String::new(),
        reason: format!(
            "CloudWatch Alarm Configuration Change: alarm {} {}: a configuration change, not a \
             state change",
            quote(name.unwrap_or("(unnamed)")),
            match operation {
                Some("create") => "created".to_owned(),
                Some("update") => "updated".to_owned(),
                Some("delete") => "deleted".to_owned(),
                Some(other) => format!("changed ({})", quote(other)),
                None => "changed".to_owned(),
            }
        ),
    })
}

/// The raw `detail`, which every known shape requires.
pub(crate) fn required<'a>(ev: &Event<'a>) -> Result<&'a RawValue, ParseError> {
    ev.detail
        .ok_or_else(|| ParseError::new("detail", "required field is missing"))
}

/// Reads the raw `detail` as `T`. The text was valid JSON when the event was read, so only a
/// duplicate key can fail here.
pub(crate) fn read_detail<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Result<T, ParseError> {
    serde_json::from_str(raw.get()).map_err(|e| ParseError::new("detail", e.to_string()))
}

/// The first entry of `resources`, where the event names one.
pub(crate) fn first_resource<'v>(ev: &'v Event<'_>) -> Result<Option<&'v str>, ParseError> {
    match &ev.resources {
        None => Ok(None),
        Some(resources) => match resources.get("resources")?.first() {
            None => Ok(None),
            Some(first) => opt_nonempty(Some(first), "resources[0]"),
        },
    }
}

/// Every entry of `resources`, comma-joined (empty when there are none).
fn all_resources(resources: Option<&List<Val<'_>>>) -> Result<String, ParseError> {
    let mut joined = String::new();
    if let Some(list) = resources {
        for (i, r) in list.get("resources")?.iter().enumerate() {
            if let Some(r) = opt_nonempty(Some(r), &format!("resources[{i}]"))? {
                if !joined.is_empty() {
                    joined.push(',');
                }
                joined.push_str(r);
            }
        }
    }
    Ok(joined)
}

/// An EventBridge event of no kind tocsin knows: kept as a firing generic alert named after its
/// `detail-type`, so that it is routed and recorded, never dropped. One alert per source,
/// detail-type and resource list; each delivery of the same event (same `id`) deduplicates.
fn unknown(
    ev: &Event<'_>,
    source: &str,
    detail_type: &str,
    transport: Transport,
) -> Result<Alert, ParseError> {
    let name = if detail_type.trim().is_empty() {
        "EventBridge event".to_owned()
    } else {
        clean_text(detail_type)
    };
    let changed_at = req_time(ev.time.as_ref(), "time")?;
    let resources = all_resources(ev.resources.as_ref())?;
    let id = opt_nonempty(ev.id.as_ref(), "id")?.unwrap_or("");
    let account = opt_nonempty(ev.account.as_ref(), "account")?;
    let region = opt_nonempty(ev.region.as_ref(), "region")?;
    let time = format_time(&changed_at);
    let (fingerprint, event_id) = stable_id_pair(
        &["eventbridge", source, detail_type, &resources],
        &[&time, id],
    );
    let mut labels = BTreeMap::new();
    labels.insert("event_source".to_owned(), clean_text(source));
    labels.insert("detail_type".to_owned(), clean_text(detail_type));
    labels.insert("severity".to_owned(), UNKNOWN_SEVERITY.as_str().to_owned());
    if !resources.is_empty() {
        labels.insert("resources".to_owned(), clean_text(&resources));
    }
    Ok(Alert {
        event_id,
        fingerprint,
        source: Source::Generic,
        transport,
        alarm_name: name,
        alarm_arn: first_resource(ev)?.map(clean_text),
        account_id: account.map(clean_text),
        region: region.map(clean_text),
        state: AlarmState::Alarm,
        previous_state: None,
        state_changed_at: changed_at,
        reason: format!(
            "{} from {} (no tocsin reader for this kind of event; kept as it came)",
            clean_text(detail_type),
            clean_text(source)
        ),
        kind: "eventbridge".to_owned(),
        namespace: None,
        metric_name: None,
        dimensions: BTreeMap::new(),
        threshold: None,
        severity: UNKNOWN_SEVERITY,
        description: ev
            .detail
            .map(|d| clean_text(&summary(d.get())))
            .unwrap_or_default(),
        labels,
    })
}

/// The detail's text, cut to a readable length for the description.
fn summary(detail: &str) -> String {
    const MAX_CHARS: usize = 1000;
    match detail.char_indices().nth(MAX_CHARS) {
        None => detail.to_owned(),
        Some((at, _)) => format!("{}…", &detail[..at]),
    }
}
