//! The deliver handler wired as `main.rs` wires it — DynamoDB store and hold, SNS SMS and SES senders,
//! EventBridge Scheduler flush timer, SNS deliveries bus — against moto (`scripts/with-moto.sh`), on
//! the virtual clock. What was sent is read back from moto's recorded state. Without
//! `AWS_ENDPOINT_URL` the tests say they were skipped, unless `TOCSIN_REQUIRE_AWS=1` (as `make test`
//! sets), where skipping would hide a broken harness.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_aws::emulator::{self, recorded};
use tocsin_aws::{DynamoHold, DynamoStore, EventBridgeScheduler, SesEmail, SnsBus, SnsSms};
use tocsin_channels::TokioSleeper;
use tocsin_core::config::ChannelKind;
use tocsin_core::ports::{AlertStore, Clock, Notifier, SendError, Sent};
use tocsin_core::record::{Action, DeliveryJob, DeliveryKind, Status, Target};
use tocsin_core::render::Rendered;
use tocsin_core::retry::RetryPolicy;
use tocsin_deliver::{Deliverer, Input, LinkSettings, Settings, Throttle};
use tocsin_local::VirtualClock;

/// The one-click key of the tests (32 bytes or more, as every key must be).
const LINK_KEY: &[u8] = b"link-signing-key-0123456789abcdef";

/// The config, with alice reachable at `phone` and `email` (deliver sends only to destinations the
/// config gives the channel).
fn config(phone: &str, email: &str) -> String {
    format!(
        r##"
channels:
  oncall-sms: {{type: sms, default_to: ["+15550100000"]}}
  oncall-email: {{type: email, from: "tocsin@example.com"}}
people:
  alice: {{phone: "{phone}", email: "{email}"}}
route: {{notify: [{{channel: oncall-sms}}]}}
"##
    )
}

/// SES or SNS SMS, as the deployed function picks by its channel's kind.
enum Sender {
    Email(SesEmail),
    Sms(SnsSms),
}

impl Notifier for Sender {
    async fn send(&self, job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        match self {
            Sender::Email(n) => n.send(job, message).await,
            Sender::Sms(n) => n.send(job, message).await,
        }
    }
}

type Live = Deliverer<
    DynamoStore,
    SnsBus,
    Sender,
    VirtualClock,
    TokioSleeper,
    DynamoHold,
    EventBridgeScheduler,
>;

struct World {
    endpoint: String,
    store: DynamoStore,
    scheduler: aws_sdk_scheduler::Client,
    group: String,
    sdk: aws_config::SdkConfig,
    clock: VirtualClock,
}

async fn world(test: &str) -> Option<World> {
    let endpoint = emulator::endpoint(test)?;
    let sdk = emulator::sdk_config(&endpoint).await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        emulator::unique_name("deliver"),
    );
    store.create_table_if_missing().await.unwrap();
    let scheduler = aws_sdk_scheduler::Client::new(&sdk);
    let group = emulator::unique_name("sms");
    scheduler
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    Some(World {
        endpoint,
        store,
        scheduler,
        group,
        sdk,
        clock: VirtualClock::new(Utc::now()),
    })
}

impl World {
    async fn deliverer(&self, sender: Sender, phone: &str, email: &str) -> Live {
        let sns = aws_sdk_sns::Client::new(&self.sdk);
        let topic = sns
            .create_topic()
            .name(emulator::unique_name("deliveries"))
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        Deliverer {
            config: Arc::new(tocsin_core::config::load(&config(phone, email)).unwrap()),
            store: self.store.clone(),
            bus: SnsBus::deliveries(sns, topic),
            notifier: sender,
            clock: self.clock.clone(),
            sleeper: TokioSleeper,
            settings: Settings {
                policy: RetryPolicy::default(),
                invocations: 3,
                receipt_wait: Duration::from_secs(2),
                deferrals: 6,
                links: LinkSettings {
                    base_url: "https://tocsin.example".into(),
                    keys: tocsin_core::token::KeyRing::single("k1", LINK_KEY.to_vec()).unwrap(),
                    ttl: Duration::from_secs(3600),
                },
            },
            throttle: Some(Throttle {
                hold: DynamoHold::new(aws_sdk_dynamodb::Client::new(&self.sdk), self.store.table()),
                timer: EventBridgeScheduler::new(
                    self.scheduler.clone(),
                    self.group.clone(),
                    "arn:aws:lambda:us-east-1:123456789012:function:tocsin-deliver-oncall-sms",
                    "arn:aws:iam::123456789012:role/tocsin-scheduler",
                    None,
                )
                .unwrap(),
                window: Duration::from_secs(60),
            }),
        }
    }

    /// The SMS moto recorded for `number`, in order.
    async fn texts_to(&self, number: &str) -> Vec<String> {
        let data = emulator::moto_data(&self.endpoint).await.unwrap();
        recorded(&data, "sns", "SMS", "phone_number", number)
            .iter()
            .map(|m| m["message"].as_str().unwrap().to_string())
            .collect()
    }
}

fn job(
    id: &str,
    name: &str,
    severity: tocsin_core::Severity,
    kind: ChannelKind,
    to: &str,
    at: DateTime<Utc>,
) -> DeliveryJob {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/sns/metric-alarm.json"
    ))
    .unwrap();
    let mut alert = tocsin_core::source::parse(&bytes).unwrap().remove(0);
    alert.alarm_name = name.into();
    alert.severity = severity;
    DeliveryJob {
        delivery_id: emulator::unique_name(id),
        alert_id: emulator::unique_name("alert"),
        kind: DeliveryKind::Trigger,
        target: Target {
            channel: format!("oncall-{}", kind.as_str()),
            channel_kind: kind,
            target: "alice".into(),
            address: Some(to.into()),
        },
        level: None,
        alert,
        status: Status::Open,
        created_at: at,
        thread: None,
    }
}

/// A phone number no other run on the same moto server has texted.
fn fresh_number() -> String {
    let nanos = Utc::now().timestamp_subsec_nanos() as u64 + std::process::id() as u64;
    format!("+1555{:07}", nanos % 10_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_storm_to_one_phone_is_one_text_then_one_summary_from_the_schedule_it_made() {
    let Some(w) = world("deliver_sms_throttle").await else {
        return;
    };
    let number = fresh_number();
    let d = w
        .deliverer(
            Sender::Sms(SnsSms::new(aws_sdk_sns::Client::new(&w.sdk))),
            &number,
            "alice@example.com",
        )
        .await;
    let left = Duration::from_secs(30);
    let t0 = w.clock.now();
    let first = job(
        "d1",
        "disk-full",
        tocsin_core::Severity::Medium,
        ChannelKind::Sms,
        &number,
        t0,
    );
    d.deliver(&first, left).await.unwrap();
    let second = job(
        "d2",
        "api-5xx",
        tocsin_core::Severity::High,
        ChannelKind::Sms,
        &number,
        t0,
    );
    let third = job(
        "d3",
        "orders-db-down",
        tocsin_core::Severity::Critical,
        ChannelKind::Sms,
        &number,
        t0,
    );
    w.clock.set(t0 + TimeDelta::seconds(5));
    d.deliver(&second, left).await.unwrap();
    d.deliver(&third, left).await.unwrap();
    // SNS redelivers a job: nothing is sent again.
    d.deliver(&first, left).await.unwrap();
    assert_eq!(w.texts_to(&number).await.len(), 1, "one text in the minute");

    // The throttle made one schedule, targeting this function with the flush as its input.
    let listed = w
        .scheduler
        .list_schedules()
        .group_name(&w.group)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = listed.schedules().iter().filter_map(|s| s.name()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let schedule = w
        .scheduler
        .get_schedule()
        .group_name(&w.group)
        .name(names[0])
        .send()
        .await
        .unwrap();
    let target = schedule.target().unwrap();
    assert_eq!(
        target.arn(),
        "arn:aws:lambda:us-east-1:123456789012:function:tocsin-deliver-oncall-sms"
    );
    let Input::Flush { flush, .. } =
        serde_json::from_str::<Input>(target.input().unwrap()).unwrap()
    else {
        panic!("the schedule's input is not a flush: {:?}", target.input());
    };

    // Scheduler fires it after the window: the function runs the flush.
    w.clock.set(flush.due);
    d.flush(&flush, left).await.unwrap();
    let texts = w.texts_to(&number).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[1].starts_with(
            "2 alerts: CRIT orders-db-down; HIGH api-5xx. Ack: https://tocsin.example/a/"
        ),
        "{}",
        texts[1]
    );
    // A doubled firing sends nothing more.
    d.flush(&flush, left).await.unwrap();
    assert_eq!(w.texts_to(&number).await.len(), 2);
    let audit = w.store.audit(&second.alert_id).await.unwrap();
    let actions: Vec<Action> = audit.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [Action::Suppress, Action::Notify],
        "held, then sent in the summary: {audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_job_is_sent_through_ses_once_and_its_attempt_is_on_record() {
    let Some(w) = world("deliver_email").await else {
        return;
    };
    let ses_client = aws_sdk_sesv2::Client::new(&w.sdk);
    let sender = format!("{}@alerts.example.com", emulator::unique_name("from"));
    ses_client
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
    let to = format!("{}@example.com", emulator::unique_name("alice"));
    let d = w
        .deliverer(
            Sender::Email(SesEmail::new(ses_client, sender).unwrap()),
            "+15550100001",
            &to,
        )
        .await;
    let j = job(
        "e1",
        "orders-db-down",
        tocsin_core::Severity::Critical,
        ChannelKind::Email,
        &to,
        w.clock.now(),
    );
    let entries = d.deliver(&j, Duration::from_secs(30)).await.unwrap();
    let again = d.deliver(&j, Duration::from_secs(30)).await.unwrap();
    assert_eq!(again[0].action, Action::Dedup, "{again:?}");

    let id = entries[0]
        .attempt
        .as_ref()
        .unwrap()
        .provider_id
        .clone()
        .expect("SES message id on record");
    let data = emulator::moto_data(&w.endpoint).await.unwrap();
    let [sent] = recorded(&data, "ses", "Message", "id", &id)[..] else {
        panic!("moto recorded no single SES message {id}");
    };
    assert_eq!(sent["destinations"]["ToAddresses"][0], to.as_str());
    let to_alice = data["ses"]["Message"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destinations"]["ToAddresses"][0] == to.as_str())
        .count();
    assert_eq!(to_alice, 1, "a redelivered job sends nothing again");
    let audit = w.store.audit(&j.alert_id).await.unwrap();
    assert_eq!(
        audit.iter().filter(|e| e.action == Action::Attempt).count(),
        1
    );
    // The redelivery's dedup line went to the log (returned above), not the trail.
    assert_eq!(
        audit.iter().filter(|e| e.action == Action::Dedup).count(),
        0
    );
}
