//! The End User Messaging SMS sender (`SendTextMessage`, `pinpoint-sms-voice-v2`). moto has no End User
//! Messaging, so these tests run against a local server that speaks the service's documented JSON
//! protocol (`stand_in`: AWS JSON 1.0, `X-Amz-Target: PinpointSMSVoiceV2.SendTextMessage`, a
//! `MessageId` answer, errors as `__type` bodies), and check what the sender puts on the wire and how
//! it reads the answers: the receipt tag in the message's `Context`, a lost answer not sent again by
//! the SDK, and the classification of the service's errors.

// Test code: a failed step is a panic that names it.
#![allow(clippy::unwrap_used)]

#[path = "stand_in/mod.rs"]
mod stand_in;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tocsin_aws::EumSms;
use tocsin_aws::emulator;
use tocsin_core::config::ChannelKind;
use tocsin_core::ports::Notifier;
use tocsin_core::receipt;
use tocsin_core::record::{DeliveryJob, DeliveryKind, Status, Target};
use tocsin_core::render::Rendered;

fn job(address: &str) -> DeliveryJob {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/sns/metric-alarm.json"
    );
    let alert = tocsin_core::source::parse(&std::fs::read(path).unwrap())
        .unwrap()
        .remove(0);
    let at: DateTime<Utc> = "2024-03-01T10:15:01Z".parse().unwrap();
    DeliveryJob {
        delivery_id: "d-eum-1".into(),
        alert_id: "a-0001".into(),
        kind: DeliveryKind::Trigger,
        target: Target {
            channel: "oncall-sms".into(),
            channel_kind: ChannelKind::Sms,
            target: "alice".into(),
            address: Some(address.into()),
        },
        level: None,
        alert,
        status: Status::Open,
        created_at: at,
        thread: None,
    }
}

fn sms() -> Rendered {
    Rendered::Sms {
        text: "CRIT orders-db-down. Ack: https://tocsin.example/a/t".into(),
    }
}

async fn sender(url: &str, with_set: bool) -> EumSms {
    let config = emulator::sdk_config(url).await;
    let s = EumSms::new(aws_sdk_pinpointsmsvoicev2::Client::new(&config))
        .with_origination_identity("pool-0123456789abcdef")
        .unwrap();
    if with_set {
        s.with_configuration_set("tocsin-sms").unwrap()
    } else {
        s
    }
}

#[tokio::test]
async fn a_text_goes_out_transactional_with_its_deliverys_receipt_tag_in_its_context() {
    let (url, seen) = stand_in::start(|_| {
        Some((
            200,
            r#"{"MessageId":"862a8790-60c0-4430-9b2b-658bdexample"}"#.into(),
        ))
    })
    .await;
    let s = sender(&url, true).await;
    assert!(s.sends_receipts());
    let j = job("+447700900001");

    let sent = s.send(&j, &sms()).await.unwrap();

    assert_eq!(
        sent.provider_id.as_deref(),
        Some("862a8790-60c0-4430-9b2b-658bdexample")
    );
    let request = seen.lock().unwrap()[0].clone();
    assert!(
        request
            .head
            .to_ascii_lowercase()
            .contains("x-amz-target: pinpointsmsvoicev2.sendtextmessage"),
        "{}",
        request.head
    );
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["DestinationPhoneNumber"], "+447700900001");
    assert_eq!(body["MessageType"], "TRANSACTIONAL");
    assert_eq!(body["OriginationIdentity"], "pool-0123456789abcdef");
    assert_eq!(body["ConfigurationSetName"], "tocsin-sms");
    assert_eq!(
        body["Context"],
        json!({receipt::TAG_NAME: receipt::tag(&j.delivery_id)})
    );
    assert!(
        body["MessageBody"]
            .as_str()
            .unwrap()
            .starts_with("CRIT orders-db-down")
    );

    // Without a set, no event comes back, so no tag is sent and no receipt is waited for.
    let plain = sender(&url, false).await;
    assert!(!plain.sends_receipts());
    plain.send(&j, &sms()).await.unwrap();
    let body: Value = serde_json::from_str(&seen.lock().unwrap()[1].body).unwrap();
    assert!(body.get("Context").is_none() && body.get("ConfigurationSetName").is_none());
}

#[tokio::test]
async fn a_lost_answer_through_a_configuration_set_is_unconfirmed_and_not_sent_again_by_the_sdk() {
    let (url, seen) = stand_in::start(|_| None).await;
    let err = sender(&url, true)
        .await
        .send(&job("+447700900001"), &sms())
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert_eq!(err.class, receipt::UNCONFIRMED);
    assert_eq!(seen.lock().unwrap().len(), 1, "one request: no SDK retry");
}

#[tokio::test]
async fn throttling_and_a_spent_quota_are_retryable_an_opted_out_number_is_not() {
    let (url, _) = stand_in::start(|r| {
        let kind = if r.body.contains("+447700900002") {
            "ThrottlingException"
        } else if r.body.contains("+447700900003") {
            "ServiceQuotaExceededException"
        } else {
            "ConflictException"
        };
        Some((
            400,
            format!(r#"{{"__type":"{kind}","Message":"refused for the test","Reason":"DESTINATION_PHONE_NUMBER_OPTED_OUT"}}"#),
        ))
    })
    .await;
    // Without a set the SDK retries the first two itself; the outcome is what the layer sees after.
    let s = sender(&url, true).await;
    let throttled = s.send(&job("+447700900002"), &sms()).await.unwrap_err();
    assert_eq!(
        (throttled.retryable, throttled.class.as_str()),
        (true, "eum_throttled")
    );
    let quota = s.send(&job("+447700900003"), &sms()).await.unwrap_err();
    assert_eq!(
        (quota.retryable, quota.class.as_str()),
        (true, "eum_quota_exceeded")
    );
    let opted_out = s.send(&job("+447700900004"), &sms()).await.unwrap_err();
    assert_eq!(
        (opted_out.retryable, opted_out.class.as_str()),
        (false, "eum_conflict")
    );
    assert!(
        opted_out.reason.contains("refused for the test") && !opted_out.reason.contains('\n'),
        "{}",
        opted_out.reason
    );
}

#[tokio::test]
async fn a_number_not_in_e164_or_a_message_not_an_sms_is_refused_before_calling() {
    let (url, seen) = stand_in::start(|_| Some((200, r#"{"MessageId":"m"}"#.into()))).await;
    let s = sender(&url, true).await;
    let e = s.send(&job("07700 900001"), &sms()).await.unwrap_err();
    assert_eq!((e.retryable, e.class.as_str()), (false, "bad_address"));
    assert!(
        !e.reason.contains("07700"),
        "the number is not echoed: {}",
        e.reason
    );
    let email = Rendered::Email {
        subject: "s".into(),
        html: "h".into(),
        text: "t".into(),
    };
    let e = s.send(&job("+447700900001"), &email).await.unwrap_err();
    assert_eq!((e.retryable, e.class.as_str()), (false, "bad_job"));
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the service"
    );
}
