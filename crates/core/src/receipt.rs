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
//! The event's shape is SES's ("Examples of event data that Amazon SES publishes to Amazon SNS"; a
//! sample in `events/receipts/ses-send.json`). The topic only takes SES's publishes (its policy), but
//! the text is still read as untrusted: one line of reason for what does not parse.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

use crate::model::stable_id;
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

/// Whether an SNS message's text is an SES event record rather than a delivery job (both reach the
/// email deliver function): it names an `eventType` and a `mail`.
pub fn is_ses_event(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| {
        v.get("eventType").is_some_and(serde_json::Value::is_string) && v.get("mail").is_some()
    })
}

/// Reads an SES event record: the receipt of a `Send` event that carries a receipt tag; `None` for
/// any other event (deliveries, bounces, opens) or a message sent without the tag; a one-line reason
/// for a record that is not an SES event.
pub fn parse_ses_event(text: &str) -> Result<Option<SendReceipt>, String> {
    let event: SesEvent = serde_json::from_str(text)
        .map_err(|e| format!("not an SES event record: {}", one_line(&e.to_string())))?;
    if event.event_type != "Send" {
        return Ok(None);
    }
    let Some(tag) = event.mail.tags.get(TAG_NAME).and_then(|v| v.first()) else {
        return Ok(None);
    };
    if tag.is_empty()
        || tag.len() > 256
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "SES send event {}: its {TAG_NAME} tag is not a tag value",
            one_line(&event.mail.message_id.chars().take(128).collect::<String>())
        ));
    }
    Ok(Some(SendReceipt {
        tag: tag.clone(),
        message_id: one_line(&event.mail.message_id.chars().take(128).collect::<String>())
            .into_owned(),
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

    #[test]
    fn a_send_event_with_the_tag_is_the_receipt_of_that_delivery() {
        let text = sample();
        assert!(is_ses_event(&text));
        let r = parse_ses_event(&text).unwrap().unwrap();
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
        assert!(!is_ses_event("{\"delivery_id\": \"d-1\"}"));
        assert!(!is_ses_event("not json"));
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
