//! The SES email and SNS SMS senders against moto (`scripts/with-moto.sh`): a message rendered from the
//! metric-alarm fixture is sent, then read back from what moto recorded (its `/moto-api/data.json`
//! dump of every model instance: `ses.Message`, `sns.SMS`). Without `AWS_ENDPOINT_URL` the tests say
//! they were skipped, unless `TOCSIN_REQUIRE_AWS=1`, where skipping would hide a broken harness.

// Test code: a failed step is a panic that names it.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use serde_json::Value;
use tocsin_aws::emulator;
use tocsin_aws::{SesEmail, SnsSms};
use tocsin_core::config::ChannelKind;
use tocsin_core::ports::Notifier;
use tocsin_core::record::{DeliveryJob, DeliveryKind, Status, Target};
use tocsin_core::render::{self, Context, Links, Rendered};

fn fixture_job(channel_kind: ChannelKind, address: Option<String>) -> DeliveryJob {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/sns/metric-alarm.json"
    );
    let alert = tocsin_core::source::parse(&std::fs::read(path).unwrap())
        .unwrap()
        .remove(0);
    let at: DateTime<Utc> = "2024-03-01T10:15:01Z".parse().unwrap();
    DeliveryJob {
        delivery_id: emulator::unique_name("delivery"),
        alert_id: "a-0001".into(),
        kind: DeliveryKind::Trigger,
        target: Target {
            channel: format!("oncall-{}", channel_kind.as_str()),
            channel_kind,
            target: "alice".into(),
            address,
        },
        level: None,
        alert,
        status: Status::Open,
        created_at: at,
        thread: None,
    }
}

fn rendered(job: &DeliveryJob) -> Rendered {
    let links = Links {
        ack: Some("https://tocsin.example/a/ack-token".into()),
        view: Some("https://tocsin.example/alerts/a-0001".into()),
        ack_code: Some("K7Q2".into()),
        ..Links::default()
    };
    let ctx = Context {
        job,
        links: &links,
        now: job.created_at,
    };
    render::render(job.target.channel_kind, &ctx)
}

async fn moto_data(endpoint: &str) -> Value {
    emulator::moto_data(endpoint).await.unwrap()
}

use emulator::recorded;

/// A sender address moto knows, made a verified identity through SES v2 itself.
async fn verified_sender(client: &aws_sdk_sesv2::Client) -> String {
    let sender = format!("{}@alerts.example.com", emulator::unique_name("from"));
    client
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
    sender
}

#[tokio::test]
async fn a_rendered_email_reaches_ses_with_its_subject_and_html_body() {
    let test = "a_rendered_email_reaches_ses_with_its_subject_and_html_body";
    let Some(endpoint) = emulator::endpoint(test) else {
        return;
    };
    let client = aws_sdk_sesv2::Client::new(&emulator::sdk_config(&endpoint).await);
    let sender = verified_sender(&client).await;
    let ses = SesEmail::new(client, format!("Tocsin <{sender}>"))
        .unwrap()
        .with_reply_to("oncall@example.com")
        .unwrap();
    let to = format!("{}@example.com", emulator::unique_name("alice"));
    let job = fixture_job(ChannelKind::Email, Some(to.clone()));
    let message = rendered(&job);
    let Rendered::Email { subject, html, .. } = &message else {
        panic!("the email renderer made {message:?}");
    };

    let sent = ses.send(&job, &message).await.unwrap();

    let id = sent.provider_id.expect("SES returns a message id");
    let data = moto_data(&endpoint).await;
    let [recorded] = recorded(&data, "ses", "Message", "id", &id)[..] else {
        panic!("moto recorded no single SES message {id}");
    };
    assert_eq!(
        recorded["destinations"]["ToAddresses"],
        serde_json::json!([to])
    );
    assert_eq!(recorded["subject"], subject.as_str());
    assert!(subject.contains("orders-db"), "{subject}");
    // moto keeps one body part, the HTML one when both are sent.
    assert_eq!(recorded["body"], html.as_str());
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
}

#[tokio::test]
async fn an_unverified_sender_is_a_permanent_rejection() {
    let test = "an_unverified_sender_is_a_permanent_rejection";
    let Some(endpoint) = emulator::endpoint(test) else {
        return;
    };
    let client = aws_sdk_sesv2::Client::new(&emulator::sdk_config(&endpoint).await);
    let sender = format!("{}@unverified.example.net", emulator::unique_name("from"));
    let ses = SesEmail::new(client, sender).unwrap();
    let job = fixture_job(ChannelKind::Email, Some("bob@example.com".into()));

    let err = ses.send(&job, &rendered(&job)).await.unwrap_err();

    assert!(!err.retryable, "{err:?}");
    assert_eq!(err.class, "ses_rejected");
    assert!(
        err.reason.starts_with("MessageRejected: "),
        "{}",
        err.reason
    );
    assert!(!err.reason.contains('\n'));
}

#[tokio::test]
async fn the_email_sender_refuses_an_sms_or_a_job_without_an_address_before_calling() {
    // An endpoint nothing listens on: any call would fail as `connect`, not as `bad_job`.
    let config = emulator::sdk_config("http://127.0.0.1:9").await;
    let ses = SesEmail::new(aws_sdk_sesv2::Client::new(&config), "alerts@example.com").unwrap();
    let job = fixture_job(ChannelKind::Email, Some("bob@example.com".into()));
    let sms = Rendered::Sms { text: "hi".into() };
    let err = ses.send(&job, &sms).await.unwrap_err();
    assert_eq!((err.retryable, err.class.as_str()), (false, "bad_job"));

    let no_address = fixture_job(ChannelKind::Email, None);
    let err = ses
        .send(&no_address, &rendered(&no_address))
        .await
        .unwrap_err();
    assert_eq!((err.retryable, err.class.as_str()), (false, "bad_job"));

    let phone = fixture_job(ChannelKind::Email, Some("+15550100123".into()));
    let err = ses.send(&phone, &rendered(&phone)).await.unwrap_err();
    assert_eq!((err.retryable, err.class.as_str()), (false, "bad_address"));
}

#[tokio::test]
async fn an_unreachable_ses_is_a_retryable_connection_failure() {
    let mut config = emulator::sdk_config("http://127.0.0.1:9")
        .await
        .into_builder();
    // One attempt: the SDK's own retries would only slow the test down.
    config.set_retry_config(Some(aws_config::retry::RetryConfig::disabled()));
    let client = aws_sdk_sesv2::Client::new(&config.build());
    let ses = SesEmail::new(client, "alerts@example.com").unwrap();
    let job = fixture_job(ChannelKind::Email, Some("bob@example.com".into()));

    let err = ses.send(&job, &rendered(&job)).await.unwrap_err();

    assert!(err.retryable, "{err:?}");
    assert_eq!(err.class, "connect");
}

#[tokio::test]
async fn a_rendered_sms_reaches_the_phone_number_through_sns() {
    let test = "a_rendered_sms_reaches_the_phone_number_through_sns";
    let Some(endpoint) = emulator::endpoint(test) else {
        return;
    };
    let client = aws_sdk_sns::Client::new(&emulator::sdk_config(&endpoint).await);
    let sms = SnsSms::new(client)
        .with_sender_id("Tocsin")
        .unwrap()
        .with_origination_number("+15550109999")
        .unwrap();
    let number = "+15550100123";
    let job = fixture_job(ChannelKind::Sms, Some(number.into()));
    let message = rendered(&job);
    let Rendered::Sms { text } = &message else {
        panic!("the SMS renderer made {message:?}");
    };

    let sent = sms.send(&job, &message).await.unwrap();

    let id = sent.provider_id.expect("SNS returns a message id");
    let data = moto_data(&endpoint).await;
    let [recorded] = recorded(&data, "sns", "SMS", "message_id", &id)[..] else {
        panic!("moto recorded no single SMS {id}");
    };
    assert_eq!(recorded["phone_number"], number);
    assert_eq!(recorded["message"], text.as_str());
    assert!(text.contains("K7Q2"), "the ack code is in the text: {text}");
}

#[tokio::test]
async fn an_invalid_phone_number_is_refused_without_calling_sns() {
    // An endpoint nothing listens on: had the sender called, the error would be `connect`.
    let config = emulator::sdk_config("http://127.0.0.1:9").await;
    let sms = SnsSms::new(aws_sdk_sns::Client::new(&config));
    for number in ["5550100123", "+1 555 0100", "+1555", "alice@example.com"] {
        let job = fixture_job(ChannelKind::Sms, Some(number.into()));
        let err = sms.send(&job, &rendered(&job)).await.unwrap_err();
        assert_eq!(
            (err.retryable, err.class.as_str()),
            (false, "bad_address"),
            "{number}"
        );
        assert!(!err.reason.contains(number), "{}", err.reason);
    }
    let no_number = fixture_job(ChannelKind::Sms, None);
    let err = sms
        .send(&no_number, &rendered(&no_number))
        .await
        .unwrap_err();
    assert_eq!((err.retryable, err.class.as_str()), (false, "bad_job"));
    let job = fixture_job(ChannelKind::Sms, Some("+15550100123".into()));
    let email = rendered(&fixture_job(
        ChannelKind::Email,
        Some("a@example.com".into()),
    ));
    let err = sms.send(&job, &email).await.unwrap_err();
    assert_eq!((err.retryable, err.class.as_str()), (false, "bad_job"));
}

#[path = "stand_in/mod.rs"]
mod stand_in;

#[tokio::test]
async fn through_a_configuration_set_each_email_carries_its_deliverys_receipt_tag() {
    let (url, seen) = stand_in::start(|_| Some((200, r#"{"MessageId":"ses-0001"}"#.into()))).await;
    let config = emulator::sdk_config(&url).await;
    let ses = SesEmail::new(aws_sdk_sesv2::Client::new(&config), "alerts@example.com")
        .unwrap()
        .with_configuration_set("tocsin-email")
        .unwrap();
    assert!(ses.sends_receipts());
    let job = fixture_job(ChannelKind::Email, Some("bob@example.com".into()));

    let sent = ses.send(&job, &rendered(&job)).await.unwrap();

    assert_eq!(sent.provider_id.as_deref(), Some("ses-0001"));
    let body: Value = serde_json::from_str(&seen.lock().unwrap()[0].body).unwrap();
    assert_eq!(body["ConfigurationSetName"], "tocsin-email");
    assert_eq!(
        body["EmailTags"],
        serde_json::json!([{"Name": "tocsin-delivery",
            "Value": tocsin_core::receipt::tag(&job.delivery_id)}])
    );
    let plain = SesEmail::new(aws_sdk_sesv2::Client::new(&config), "alerts@example.com").unwrap();
    assert!(
        !plain.sends_receipts(),
        "no set, no send events, no receipts"
    );
}

#[tokio::test]
async fn a_lost_answer_through_a_configuration_set_is_unconfirmed_and_not_sent_again_by_the_sdk() {
    let (url, seen) = stand_in::start(|_| None).await;
    let config = emulator::sdk_config(&url).await;
    let job = fixture_job(ChannelKind::Email, Some("bob@example.com".into()));

    let ses = SesEmail::new(aws_sdk_sesv2::Client::new(&config), "alerts@example.com")
        .unwrap()
        .with_configuration_set("tocsin-email")
        .unwrap();
    let err = ses.send(&job, &rendered(&job)).await.unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert_eq!(err.class, tocsin_core::receipt::UNCONFIRMED);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the SDK did not send it again: deliver looks for its receipt first"
    );

    // Without a set there is no receipt to look for, and the SDK's own retries send it again.
    seen.lock().unwrap().clear();
    let plain = SesEmail::new(aws_sdk_sesv2::Client::new(&config), "alerts@example.com").unwrap();
    let err = plain.send(&job, &rendered(&job)).await.unwrap_err();
    assert_ne!(err.class, tocsin_core::receipt::UNCONFIRMED);
    assert!(seen.lock().unwrap().len() > 1, "the SDK retried");
}
