//! Webhook: the documented JSON body of `docs/webhook.md` (event type, delivery id, the canonical alert,
//! lifecycle status, links), and its Standard Webhooks signature. The body carries untrusted text as JSON
//! strings, unaltered: escaping for display is the receiver's business, and a machine reader must get
//! the alert exactly as tocsin saw it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, json};
use sha2::Sha256;

use super::{Context, Rendered, safe_url};
use crate::model::format_time;
use crate::record::DeliveryKind;

/// Renders the webhook body for `ctx`.
pub fn render(ctx: &Context) -> Rendered {
    let job = ctx.job;
    let event_type = match job.kind {
        DeliveryKind::Trigger => "alert.triggered",
        DeliveryKind::Escalation => "alert.escalated",
        DeliveryKind::Resolve => "alert.resolved",
        DeliveryKind::Acknowledge => "alert.acknowledged",
    };
    let l = ctx.links;
    let mut links = Map::new();
    for (name, url) in [
        ("ack", &l.ack),
        ("resolve", &l.resolve),
        ("view", &l.view),
        ("runbook", &l.runbook),
    ] {
        if let Some(u) = url.as_deref().and_then(safe_url) {
            links.insert(name.into(), json!(u));
        }
    }
    Rendered::Webhook {
        body: json!({
            "type": event_type,
            "id": job.delivery_id,
            "timestamp": format_time(&ctx.now),
            "alert_id": job.alert_id,
            "status": job.status,
            "level": job.level,
            "alert": job.alert,
            "links": links,
        }),
    }
}

/// The Standard Webhooks signature of one message: `v1,` then the base64 of
/// HMAC-SHA256(`secret`, `"{msg_id}.{timestamp}.{body}"`). `secret` is the raw key (the base64 after
/// `whsec_`, decoded); `timestamp` is Unix seconds, the value sent in `webhook-timestamp`.
pub fn sign(secret: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::super::testing::*;
    use super::*;
    use crate::config::ChannelKind;
    use crate::model::Alert;

    fn body(kind: DeliveryKind, alert: Alert) -> serde_json::Value {
        let job = job(alert, kind, ChannelKind::Webhook);
        match render(&ctx(&job, &links())) {
            Rendered::Webhook { body } => body,
            other => panic!("not a webhook: {other:?}"),
        }
    }

    #[test]
    fn the_body_has_the_documented_fields() {
        let b = body(DeliveryKind::Escalation, fixture_alert());
        assert_eq!(b["type"], "alert.escalated");
        assert_eq!(b["id"], "d-0001");
        assert_eq!(b["timestamp"], "2024-03-01T10:15:02.000Z");
        assert_eq!(b["alert_id"], "a-0001");
        assert_eq!(b["status"], "open");
        assert_eq!(b["level"], 2);
        assert_eq!(
            b["links"]["ack"],
            "https://tocsin.example/a/ack-token?x=1&y=2"
        );
        assert_eq!(b["alert"]["alarm_name"], "orders-db-cpu-high");
    }

    #[test]
    fn every_delivery_kind_has_its_event_type() {
        for (kind, t) in [
            (DeliveryKind::Trigger, "alert.triggered"),
            (DeliveryKind::Resolve, "alert.resolved"),
            (DeliveryKind::Acknowledge, "alert.acknowledged"),
        ] {
            assert_eq!(body(kind, fixture_alert())["type"], t);
        }
    }

    #[test]
    fn hostile_text_reaches_the_receiver_unaltered() {
        let a = hostile_alert();
        let b = body(DeliveryKind::Trigger, a.clone());
        let back: Alert = serde_json::from_value(b["alert"].clone()).unwrap();
        assert_eq!(back, a);
        // Serialized JSON escapes quotes and keeps the rest as UTF-8: still one valid document.
        let text = serde_json::to_string(&b).unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
    }

    #[test]
    fn hostile_links_are_left_out() {
        let job = job(fixture_alert(), DeliveryKind::Trigger, ChannelKind::Webhook);
        let Rendered::Webhook { body } = render(&ctx(&job, &hostile_links())) else {
            panic!("not a webhook")
        };
        assert!(body["links"].get("resolve").is_none() && body["links"].get("view").is_none());
    }

    #[test]
    fn signatures_match_the_standard_webhooks_reference() {
        // The example of the Standard Webhooks specification, checked with Python:
        //   key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        //   msg = b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}'
        //   "v1," + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn signatures_cover_the_id_the_timestamp_and_the_body() {
        // python3: hmac.new(b"whsec-test-secret",
        //   b'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W.1674087231.{"type":"alert.triggered"}', hashlib.sha256)
        let body = br#"{"type":"alert.triggered"}"#;
        let sig = sign(
            b"whsec-test-secret",
            "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            1674087231,
            body,
        );
        assert_eq!(sig, "v1,OG6SbxxV3OWwht/rBZ3g9Pyx4xrT7hvS3j4HH1PlHO8=");
        assert_ne!(
            sig,
            sign(b"whsec-test-secret", "msg_other", 1674087231, body)
        );
        assert_ne!(
            sig,
            sign(
                b"whsec-test-secret",
                "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
                1674087232,
                body
            )
        );
    }
}
