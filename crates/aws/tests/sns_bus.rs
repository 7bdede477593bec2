//! The SNS bus against moto (`scripts/with-moto.sh`): what it publishes is read back from SQS queues
//! subscribed the way the stack subscribes them (raw delivery, a filter policy on `channel_kind` per
//! deliver function). Without `AWS_ENDPOINT_URL` the tests say they were skipped, unless
//! `TOCSIN_REQUIRE_AWS=1`, where skipping would hide a broken harness, so they fail.

// Test code: a failed step is a panic that names it.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, MessageAttributeValue, QueueAttributeName};
use chrono::{DateTime, Utc};
use tocsin_aws::SnsBus;
use tocsin_core::config::ChannelKind;
use tocsin_core::contract;
use tocsin_core::ports::Bus;
use tocsin_core::record::{DeliveryJob, DeliveryKind, Status, Target};
use tocsin_core::{Alert, Severity};

use tocsin_aws::emulator::{config_for as sdk_config, unique_name};

/// A name no other test run on the same moto server has used.
fn unique(stem: &str) -> String {
    unique_name(&format!("test-{stem}"))
}

/// A queue subscribed to `topic_arn` with raw delivery and, when given, a filter policy.
async fn subscribed_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic_arn: &str,
    name: &str,
    filter_policy: Option<&str>,
) -> String {
    let url = sqs
        .create_queue()
        .queue_name(unique(name))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs
        .attributes()
        .unwrap()
        .get(&QueueAttributeName::QueueArn)
        .unwrap();
    let mut subscribe = sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", "true")
        .return_subscription_arn(true);
    if let Some(policy) = filter_policy {
        subscribe = subscribe.attributes("FilterPolicy", policy);
    }
    subscribe.send().await.unwrap();
    url
}

/// Everything in the queue: received until a receive comes back empty (moto delivers during the
/// publish call, so nothing more can arrive), or 10 s pass.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Message> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut all = Vec::new();
    while Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        let batch = out.messages().to_vec();
        if batch.is_empty() {
            break;
        }
        all.extend(batch);
    }
    all
}

fn string_attributes(message: &Message) -> HashMap<String, (String, String)> {
    message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, v): (&String, &MessageAttributeValue)| {
            let value = v.string_value().unwrap_or_default().to_string();
            (name.clone(), (v.data_type().to_string(), value))
        })
        .collect()
}

fn alert() -> Alert {
    let mut alert = contract::record("sns-bus", "fp-sns", None).alert;
    // Characters that a re-encoding on the way would mangle.
    alert.description = "disk <b>90%</b> & \"rising\" on naïve-host ✓".into();
    alert.severity = Severity::Critical;
    alert
}

fn job(id: &str, channel: &str, kind: ChannelKind, target: &str) -> DeliveryJob {
    let at: DateTime<Utc> = "2026-11-20T02:10:00Z".parse().unwrap();
    DeliveryJob {
        delivery_id: id.into(),
        alert_id: "al-sns".into(),
        kind: DeliveryKind::Trigger,
        target: Target {
            channel: channel.into(),
            channel_kind: kind,
            target: target.into(),
            address: Some(target.into()),
        },
        level: None,
        alert: alert(),
        status: Status::Open,
        created_at: at,
        thread: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_round_trip_and_each_channel_queue_gets_only_its_kind_of_job() {
    let Some(config) = sdk_config("sns_bus").await else {
        return;
    };
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let mut topics = Vec::new();
    for stem in ["alerts", "deliveries"] {
        let out = sns.create_topic().name(unique(stem)).send().await.unwrap();
        topics.push(out.topic_arn().unwrap().to_string());
    }
    let (alerts_topic, deliveries_topic) = (topics[0].clone(), topics[1].clone());

    let router_queue = subscribed_queue(&sns, &sqs, &alerts_topic, "router", None).await;
    let slack_policy = r#"{"channel_kind": ["slack"]}"#;
    let slack_queue =
        subscribed_queue(&sns, &sqs, &deliveries_topic, "slack", Some(slack_policy)).await;
    let audit_queue = subscribed_queue(&sns, &sqs, &deliveries_topic, "every-job", None).await;

    let bus = SnsBus::new(
        sns.clone(),
        Some(alerts_topic.clone()),
        Some(deliveries_topic.clone()),
    );
    let slack_job = job("dl-slack", "ops-slack", ChannelKind::Slack, "#ops");
    let email_job = job(
        "dl-email",
        "oncall-mail",
        ChannelKind::Email,
        "alice@example.com",
    );
    bus.publish_alert(&alert()).await.unwrap();
    bus.publish_delivery(&slack_job).await.unwrap();
    bus.publish_delivery(&email_job).await.unwrap();

    let alerts = drain(&sqs, &router_queue).await;
    assert_eq!(alerts.len(), 1, "one alert published");
    let back: Alert = serde_json::from_str(alerts[0].body().unwrap()).unwrap();
    assert_eq!(back, alert(), "the raw body is the alert's JSON, as it was");

    let slack = drain(&sqs, &slack_queue).await;
    assert_eq!(slack.len(), 1, "the filter lets only the slack job through");
    let back: DeliveryJob = serde_json::from_str(slack[0].body().unwrap()).unwrap();
    assert_eq!(back, slack_job);
    let attrs = string_attributes(&slack[0]);
    assert_eq!(
        attrs.get("channel_kind"),
        Some(&("String".to_string(), "slack".to_string()))
    );
    assert_eq!(
        attrs.get("channel"),
        Some(&("String".to_string(), "ops-slack".to_string()))
    );

    let every = drain(&sqs, &audit_queue).await;
    let mut seen: Vec<(String, String, String)> = every
        .iter()
        .map(|m| {
            let job: DeliveryJob = serde_json::from_str(m.body().unwrap()).unwrap();
            let attrs = string_attributes(m);
            (
                job.delivery_id,
                attrs["channel_kind"].1.clone(),
                attrs["channel"].1.clone(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("dl-email".into(), "email".into(), "oncall-mail".into()),
            ("dl-slack".into(), "slack".into(), "ops-slack".into()),
        ],
        "an unfiltered subscription sees both jobs, each with its own attributes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_without_the_topic_or_with_a_missing_topic_fails_in_one_line() {
    let Some(config) = sdk_config("sns_bus_errors").await else {
        return;
    };
    let sns = aws_sdk_sns::Client::new(&config);
    let ingest = SnsBus::alerts(sns.clone(), "arn:aws:sns:us-east-1:123456789012:unused");
    let err = ingest
        .publish_delivery(&job("dl-1", "ops-slack", ChannelKind::Slack, "#ops"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bus backend error: sns: this bus has no deliveries topic configured"
    );

    let gone = format!(
        "arn:aws:sns:us-east-1:123456789012:{}",
        unique("never-created")
    );
    let router = SnsBus::deliveries(sns, gone.clone());
    let err = router
        .publish_delivery(&job("dl-2", "ops-slack", ChannelKind::Slack, "#ops"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("bus backend error: sns Publish to {gone}: ")),
        "{err}"
    );
    assert!(!err.contains('\n') && !err.contains("naïve-host"), "{err}");
}
