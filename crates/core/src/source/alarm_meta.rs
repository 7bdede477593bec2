//! What CloudWatch added to its alarm payloads in 2025 and 2026, read alike from all three
//! transports (SNS message, EventBridge `detail`, Lambda action `alarmData`): the contributor of a
//! multi-time-series (Metrics Insights) alarm, the mute rule that muted the alarm's actions, and
//! the alarm's own tags when tag propagation is on.
//!
//! None of these changes what the transition *is*; each becomes labels the router reads
//! (`docs/sources.md`, "CloudWatch alarms: contributors, mute rules, tags"):
//! - contributor: `alarm_role: contributor`, `contributor_id`, `parent_alarm` (the alarm's name),
//!   `contributor.ATTR` per attribute; the alert's fingerprint is the alarm's plus the contributor
//!   id, so each time series opens and resolves on its own;
//! - mute rule: `muted_by` (the rule's ARN), `mute_window_start`, `mute_window_end` (RFC 3339 UTC);
//! - tags: `tag.KEY` per tag, and `alarm_tags_status` when CloudWatch says the list is not whole.
//!
//! The payloads are small and optional, so they are read as `serde_json::Value`, with the key
//! spelled as each transport spells it (SNS capitalises, EventBridge and Lambda do not).

use std::collections::BTreeMap;

use serde_json::Value;

use super::ParseError;
use super::signals::describe;
use super::text::{clean_text, parse_time};
use crate::model::format_time;

/// The label saying which part of a multi-time-series alarm an alert is.
pub const ROLE_LABEL: &str = "alarm_role";
/// The label holding a contributor's id.
pub const CONTRIBUTOR_LABEL: &str = "contributor_id";
/// The label naming the alarm a contributor belongs to.
pub const PARENT_LABEL: &str = "parent_alarm";
/// The label holding the ARN of the mute rule that muted the alarm's actions.
pub const MUTED_BY_LABEL: &str = "muted_by";
/// The labels holding the mute window, RFC 3339 UTC.
pub const MUTE_START_LABEL: &str = "mute_window_start";
/// See [`MUTE_START_LABEL`].
pub const MUTE_END_LABEL: &str = "mute_window_end";

/// The most attributes or tags copied into labels; CloudWatch allows 150 attributes and 50 tags.
const MAX_ENTRIES: usize = 200;

/// A contributor of a multi-time-series alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contributor {
    pub(crate) id: String,
    pub(crate) attributes: Vec<(String, String)>,
}

fn get<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().find_map(|k| v.get(*k)).filter(|x| !x.is_null())
}

/// A scalar as label text; `None` for objects and arrays.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads `{"id": .., "attributes": {..}}` (EventBridge, Lambda) or `{"Id": .., "Attributes": ..}`
/// (SNS).
pub(crate) fn contributor(v: &Value, at: &str) -> Result<Contributor, ParseError> {
    if !v.is_object() {
        return Err(ParseError::new(
            at,
            format!("expected an object, found {}", describe(v)),
        ));
    }
    let id = match get(v, &["id", "Id"]) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.as_str(),
        Some(other) => {
            return Err(ParseError::new(
                format!("{at}.id"),
                format!("expected a string, found {}", describe(other)),
            ));
        }
        None => {
            return Err(ParseError::new(
                format!("{at}.id"),
                "required field is missing",
            ));
        }
    };
    let mut attributes = Vec::new();
    if let Some(a) = get(v, &["attributes", "Attributes"]) {
        attributes = pairs(a, &format!("{at}.attributes"))?;
    }
    Ok(Contributor {
        id: clean_text(id),
        attributes,
    })
}

/// Key-value pairs from an object (`{"team": "db"}`) or a list of `{"Key": .., "Value": ..}`
/// (either case), as CloudWatch's APIs write tags. Values that are not scalars are left out.
fn pairs(v: &Value, at: &str) -> Result<Vec<(String, String)>, ParseError> {
    let mut out = Vec::new();
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter().take(MAX_ENTRIES) {
                if let Some(s) = scalar(val) {
                    out.push((clean_text(k), clean_text(&s)));
                }
            }
        }
        Value::Array(list) => {
            for (i, item) in list.iter().take(MAX_ENTRIES).enumerate() {
                let key = get(item, &["Key", "key"]).and_then(Value::as_str);
                let value = get(item, &["Value", "value"]).and_then(scalar);
                match (key, value) {
                    (Some(k), Some(val)) => out.push((clean_text(k), clean_text(&val))),
                    (Some(_), None) => {}
                    (None, _) => {
                        return Err(ParseError::new(
                            format!("{at}[{i}]"),
                            "expected an object with a string Key",
                        ));
                    }
                }
            }
        }
        other => {
            return Err(ParseError::new(
                at,
                format!("expected an object or an array, found {}", describe(other)),
            ));
        }
    }
    Ok(out)
}

/// Adds the contributor's labels.
pub(crate) fn contributor_labels(
    c: &Contributor,
    alarm_name: &str,
    labels: &mut BTreeMap<String, String>,
) {
    labels.insert(ROLE_LABEL.to_owned(), "contributor".to_owned());
    labels.insert(CONTRIBUTOR_LABEL.to_owned(), c.id.clone());
    labels.insert(PARENT_LABEL.to_owned(), clean_text(alarm_name));
    for (k, v) in &c.attributes {
        labels.insert(format!("contributor.{k}"), v.clone());
    }
}

/// Adds the labels of a `muteDetail` (`MuteDetail` in SNS): the rule's ARN and its window. The
/// times are rewritten to RFC 3339 UTC so that the router can compare them; one that cannot be read
/// is kept as it came.
pub(crate) fn mute_labels(
    v: &Value,
    at: &str,
    labels: &mut BTreeMap<String, String>,
) -> Result<(), ParseError> {
    if !v.is_object() {
        return Err(ParseError::new(
            at,
            format!("expected an object, found {}", describe(v)),
        ));
    }
    let fields = [
        (&["mutedByArn", "MutedByArn"][..], MUTED_BY_LABEL, false),
        (
            &["muteWindowStart", "MuteWindowStart"][..],
            MUTE_START_LABEL,
            true,
        ),
        (
            &["muteWindowEnd", "MuteWindowEnd"][..],
            MUTE_END_LABEL,
            true,
        ),
    ];
    for (keys, label, is_time) in fields {
        match get(v, keys) {
            None => {}
            Some(Value::String(s)) if s.trim().is_empty() => {}
            Some(Value::String(s)) => {
                let text = match parse_time(s) {
                    Some(t) if is_time => format_time(&t),
                    _ => clean_text(s),
                };
                labels.insert(label.to_owned(), text);
            }
            Some(other) => {
                return Err(ParseError::new(
                    format!("{at}.{}", keys[0]),
                    format!("expected a string, found {}", describe(other)),
                ));
            }
        }
    }
    if !labels.contains_key(MUTED_BY_LABEL) {
        // A mute without its rule still mutes: the router must see it.
        labels.insert(MUTED_BY_LABEL.to_owned(), "unknown mute rule".to_owned());
    }
    Ok(())
}

/// Adds `tag.KEY` for each propagated tag, and `alarm_tags_status` unless CloudWatch says the list
/// is whole (`SUCCESS`), so that a route can tell "no tag" from "tags not known".
pub(crate) fn tag_labels(
    tags: Option<&Value>,
    status: Option<&Value>,
    at: &str,
    labels: &mut BTreeMap<String, String>,
) -> Result<(), ParseError> {
    if let Some(t) = tags {
        for (k, v) in pairs(t, at)? {
            labels.insert(format!("tag.{k}"), v);
        }
    }
    if let Some(Value::String(s)) = status {
        if !s.eq_ignore_ascii_case("SUCCESS") && !s.trim().is_empty() {
            labels.insert("alarm_tags_status".to_owned(), clean_text(s));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_are_read_as_an_object_or_as_a_key_value_list() {
        let mut labels = BTreeMap::new();
        tag_labels(
            Some(&json!({"team": "db", "tier": 1})),
            Some(&json!("SUCCESS")),
            "alarmTags",
            &mut labels,
        )
        .unwrap();
        tag_labels(
            Some(&json!([{"Key": "service", "Value": "checkout"}])),
            Some(&json!("PARTIAL")),
            "AlarmTags",
            &mut labels,
        )
        .unwrap();
        assert_eq!(labels["tag.team"], "db");
        assert_eq!(labels["tag.tier"], "1");
        assert_eq!(labels["tag.service"], "checkout");
        assert_eq!(labels["alarm_tags_status"], "PARTIAL");
    }

    #[test]
    fn a_tag_list_entry_without_a_key_is_refused_with_its_path() {
        let mut labels = BTreeMap::new();
        let e = tag_labels(
            Some(&json!([{"Value": "x"}])),
            None,
            "AlarmTags",
            &mut labels,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "AlarmTags[0]: expected an object with a string Key"
        );
    }

    #[test]
    fn mute_window_times_become_rfc3339_utc() {
        let mut labels = BTreeMap::new();
        mute_labels(
            &json!({"mutedByArn": "arn:r", "muteWindowStart": "2026-01-01T10:00:00.000+0000",
                    "muteWindowEnd": "2026-01-01T12:00:00.000+0200"}),
            "muteDetail",
            &mut labels,
        )
        .unwrap();
        assert_eq!(labels[MUTED_BY_LABEL], "arn:r");
        assert_eq!(labels[MUTE_START_LABEL], "2026-01-01T10:00:00.000Z");
        assert_eq!(labels[MUTE_END_LABEL], "2026-01-01T10:00:00.000Z");
    }

    #[test]
    fn a_contributor_needs_an_id() {
        let e = contributor(&json!({"attributes": {}}), "alarmContributor").unwrap_err();
        assert_eq!(
            e.to_string(),
            "alarmContributor.id: required field is missing"
        );
        let c = contributor(
            &json!({"Id": "abc", "Attributes": {"TableName": "t"}}),
            "AlarmContributor",
        )
        .unwrap();
        assert_eq!(c.id, "abc");
        assert_eq!(c.attributes, vec![("TableName".to_owned(), "t".to_owned())]);
    }
}
