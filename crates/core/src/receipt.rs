//! Send receipts: how deliver learns that a channel took a message whose answer was lost.
//!
//! SES v2 `SendEmail` takes no idempotency key. When the connection drops after the request went out
//! (a timeout, a reset, a response cut short), the message may or may not be on its way, and sending
//! again may send it twice. So the email sender tags every message with its delivery's receipt tag
//! ([`TAG_NAME`] = [`tag`] of the delivery id) and sends it through the stack's configuration set,
//! whose event destination publishes a `Send` event for every message SES accepts, tags included, to
//! an SNS topic the email deliver function is subscribed to. That function records the event as a
//! receipt: a completed claim under [`key`] of the tag. A send whose answer was lost fails with the
//! class [`UNCONFIRMED`]; deliver then looks for its receipt for a while before it tries again, and
//! any later invocation of the job looks for it before sending. A receipt that comes too late still
//! leaves at most a second copy, never a lost page.
//!
//! SMS through AWS End User Messaging works the same way: the message's `Context` carries the tag,
//! and every event End User Messaging publishes about the message (`TEXT_QUEUED`, `TEXT_SUCCESSFUL`,
//! `TEXT_DELIVERED`, ... and the failures: any of them means it took the request) carries it back.
//! SMS through SNS has no such path: `Publish` takes no tag that comes back.
//!
//! The events' shapes are the services' ("Examples of event data that Amazon SES publishes to
//! Amazon SNS"; End User Messaging's "SMS example log"; samples in `events/receipts/`). The topics
//! only take the services' publishes (their policies), but the text is still read as untrusted: one
//! line of reason for what does not parse.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

use crate::model::stable_id;
use crate::record::{ClaimStatus, DedupRecord};
use crate::text::one_line;

/// The message tag that carries a delivery's receipt tag.
pub const TAG_NAME: &str = "tocsin-delivery";

/// The [`crate::ports::SendError`] class of a send that may have gone out: its answer was lost.
pub const UNCONFIRMED: &str = "unconfirmed";

/// A delivery id as a message tag value: SES takes only letters, digits, `_` and `-` (at most 256),
/// and a delivery id is whatever the job says, so the tag is a digest of it (hex).
pub fn tag(delivery_id: &str) -> String {
    stable_id(&["receipt", delivery_id])
}

/// The claim key a receipt is recorded under.
pub fn key(tag: &str) -> String {
    format!("receipt#{tag}")
}

/// A send the channel reports it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    /// The delivery's receipt tag.
    pub tag: String,
    /// The channel's id of the message (SES message id): its first 128 characters, as one line.
    pub message_id: String,
    /// When the channel took it.
    pub at: DateTime<Utc>,
}

impl SendReceipt {
    /// The receipt's item: a completed claim under [`key`] of its tag, kept 7 days, whose outcome
    /// names the message (`sent (<message id>), by its send receipt`).
    pub fn record(&self) -> DedupRecord {
        DedupRecord {
            event_id: key(&self.tag),
            status: ClaimStatus::Completed,
            expires_at: self.at + chrono::TimeDelta::days(7),
            in_progress_until: self.at,
            transport: "receipt".into(),
            claimed_at: self.at,
            alert_id: None,
            outcome: Some(format!("sent ({}), by its send receipt", self.message_id)),
        }
    }
}

#[derive(Deserialize)]
struct SesEvent {
    #[serde(rename = "eventType")]
    event_type: String,
    mail: SesMail,
}

#[derive(Deserialize)]
struct SesMail {
    timestamp: DateTime<Utc>,
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(default)]
    tags: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct EumEvent {
    #[serde(rename = "eventType")]
    event_type: String,
    #[serde(rename = "eventTimestamp")]
    event_timestamp: i64,
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(default)]
    context: BTreeMap<String, String>,
}

/// Whether an SNS message's text is a channel's event record rather than a delivery job (both reach
/// the deliver function): it names an `eventType` (SES's and End User Messaging's records do; a
/// delivery job does not).
pub fn is_send_event(text: &str) -> bool {
    read_send_event(text).is_some()
}

/// Reads an SNS message's text once: `None` when it is not a channel's event record (a delivery
/// job), else what [`parse_send_event`] makes of it.
pub fn read_send_event(text: &str) -> Option<Result<Option<SendReceipt>, String>> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("eventType")
        .is_some_and(Value::is_string)
        .then(|| from_value(v))
}

/// Reads a channel's event record, SES's or End User Messaging's (see [`parse_ses_event`] and
/// [`parse_eum_event`]), told apart by the `mail` of SES's.
pub fn parse_send_event(text: &str) -> Result<Option<SendReceipt>, String> {
    from_value(serde_json::from_str(text).map_err(|e| not_a("a send event", &e))?)
}

const SES: &str = "an SES event";
const EUM: &str = "an End User Messaging event";

/// The one-line reason a text is not `what` record (JSON that does not parse, or not in its shape).
fn not_a(what: &str, e: &serde_json::Error) -> String {
    format!("not {what} record: {}", one_line(&e.to_string()))
}

fn from_value(v: Value) -> Result<Option<SendReceipt>, String> {
    if v.get("mail").is_some() {
        ses_receipt(v)
    } else {
        eum_receipt(v)
    }
}

/// Reads an End User Messaging event record: the receipt of any `TEXT_` event whose `Context`
/// carries a receipt tag (any event of the message means the service took it); `None` for voice or
/// media events or a message sent without the tag; a one-line reason for a record that is not one.
pub fn parse_eum_event(text: &str) -> Result<Option<SendReceipt>, String> {
    eum_receipt(serde_json::from_str(text).map_err(|e| not_a(EUM, &e))?)
}

fn eum_receipt(v: Value) -> Result<Option<SendReceipt>, String> {
    let event: EumEvent = serde_json::from_value(v).map_err(|e| not_a(EUM, &e))?;
    if !event.event_type.starts_with("TEXT_") {
        return Ok(None);
    }
    let Some(tag) = event.context.get(TAG_NAME) else {
        return Ok(None);
    };
    let message_id = short(&event.message_id);
    if !is_tag_value(tag) {
        return Err(format!(
            "End User Messaging event of message {message_id}: its {TAG_NAME} context is not a tag value"
        ));
    }
    let at = DateTime::<Utc>::from_timestamp_millis(event.event_timestamp).ok_or_else(|| {
        format!("End User Messaging event of message {message_id}: eventTimestamp out of range")
    })?;
    Ok(Some(SendReceipt {
        tag: tag.clone(),
        message_id,
        at,
    }))
}

/// A tag value as the services take it: 1-256 letters, digits, `_` and `-`.
fn is_tag_value(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 256
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A service's message id as one line, its first 128 characters.
fn short(id: &str) -> String {
    one_line(&id.chars().take(128).collect::<String>()).into_owned()
}

/// Reads an SES event record: the receipt of a `Send` event that carries a receipt tag; `None` for
/// any other event (deliveries, bounces, opens) or a message sent without the tag; a one-line reason
/// for a record that is not an SES event.
pub fn parse_ses_event(text: &str) -> Result<Option<SendReceipt>, String> {
    ses_receipt(serde_json::from_str(text).map_err(|e| not_a(SES, &e))?)
}

fn ses_receipt(v: Value) -> Result<Option<SendReceipt>, String> {
    let event: SesEvent = serde_json::from_value(v).map_err(|e| not_a(SES, &e))?;
    if event.event_type != "Send" {
        return Ok(None);
    }
    let Some(tag) = event.mail.tags.get(TAG_NAME).and_then(|v| v.first()) else {
        return Ok(None);
    };
    let message_id = short(&event.mail.message_id);
    if !is_tag_value(tag) {
        return Err(format!(
            "SES send event {message_id}: its {TAG_NAME} tag is not a tag value"
        ));
    }
    Ok(Some(SendReceipt {
        tag: tag.clone(),
        message_id,
        at: event.mail.timestamp,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/receipts/ses-send.json"
        ))
        .unwrap_or_default()
    }

    fn eum_sample() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/receipts/eum-text-successful.json"
        ))
        .unwrap_or_default()
    }

    #[test]
    fn any_text_event_with_the_context_tag_is_the_receipt_of_that_sms() {
        let text = eum_sample();
        assert!(is_send_event(&text));
        let r = parse_send_event(&text).unwrap().unwrap();
        assert_eq!(r.tag, tag("d-0123"));
        assert_eq!(r.message_id, "862a8790-60c0-4430-9b2b-658bdexample");
        assert_eq!(r.at.timestamp_millis(), 1_686_975_103_470);
        let queued = text.replace("TEXT_SUCCESSFUL", "TEXT_QUEUED");
        assert_eq!(
            parse_send_event(&queued).unwrap().unwrap().tag,
            tag("d-0123")
        );
        let voice = text.replace("TEXT_SUCCESSFUL", "VOICE_COMPLETED");
        assert_eq!(parse_send_event(&voice), Ok(None));
        let untagged = text.replace(TAG_NAME, "account");
        assert_eq!(parse_send_event(&untagged), Ok(None));
        let e = parse_send_event("{\"eventType\": \"TEXT_QUEUED\"}").unwrap_err();
        assert!(
            e.starts_with("not an End User Messaging event record"),
            "{e}"
        );
    }

    #[test]
    fn a_send_event_with_the_tag_is_the_receipt_of_that_delivery() {
        let text = sample();
        assert!(is_send_event(&text));
        let r = parse_send_event(&text).unwrap().unwrap();
        assert_eq!(r.tag, tag("d-0123"));
        assert_eq!(
            r.message_id,
            "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"
        );
        assert_eq!(r.at.to_rfc3339(), "2017-08-05T00:40:02.012+00:00");
    }

    #[test]
    fn other_events_and_untagged_sends_are_no_receipt() {
        let text = sample();
        let delivery = text.replace("\"Send\"", "\"Delivery\"");
        assert_eq!(parse_ses_event(&delivery), Ok(None));
        let untagged = text.replace(TAG_NAME, "someone-elses-tag");
        assert_eq!(parse_ses_event(&untagged), Ok(None));
    }

    #[test]
    fn a_bad_record_is_refused_with_one_line() {
        let e = parse_ses_event("{\"eventType\": 1}").unwrap_err();
        assert!(e.starts_with("not an SES event record"), "{e}");
        assert!(!e.contains('\n'));
        let text = sample().replace(&tag("d-0123"), "not a tag\\nvalue");
        let e = parse_ses_event(&text).unwrap_err();
        assert!(e.contains("is not a tag value") && !e.contains('\n'), "{e}");
        assert!(!is_send_event("{\"delivery_id\": \"d-1\"}"));
        assert!(!is_send_event("not json"));
    }

    #[test]
    fn a_tag_is_a_valid_ses_tag_value_whatever_the_delivery_id() {
        for id in ["d-1", "group#ops:2026-12-04T10:00:00Z", "é\n\u{0}", ""] {
            let t = tag(id);
            assert!(
                t.len() <= 256 && t.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{t}"
            );
        }
        assert_ne!(tag("a"), tag("b"));
    }
}
