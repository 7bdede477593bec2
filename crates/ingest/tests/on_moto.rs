//! The ingest handler wired as `main.rs` wires it — SNS alerts bus, DynamoDB page store in the store's
//! table, EventBridge Scheduler sweep timer targeting the function's own ARN — against moto
//! (`scripts/with-moto.sh`). What was published is read back from an SQS queue subscribed to the alerts
//! topic (raw delivery, as the router's subscription reads it); the sweep's schedule is read back from
//! moto's Scheduler. Without `AWS_ENDPOINT_URL` the tests say they were skipped, unless
//! `TOCSIN_REQUIRE_AWS=1` (as `make test` sets), where skipping would hide a broken harness.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use tocsin_aws::emulator::{self, unique_name};
use tocsin_aws::{DynamoPages, DynamoStore, EventBridgeScheduler, SnsBus};
use tocsin_core::Alert;
use tocsin_core::pages::sweep_name;
use tocsin_core::ports::SystemClock;
use tocsin_ingest::Ingest;

const INGEST_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:tocsin-IngestFunction-x";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/tocsin-scheduler";

type Live = Ingest<SnsBus, DynamoPages, EventBridgeScheduler, SystemClock>;

struct World {
    ingest: Live,
    sqs: aws_sdk_sqs::Client,
    queue: String,
    scheduler: aws_sdk_scheduler::Client,
    group: String,
}

async fn world(test: &str) -> Option<World> {
    let endpoint = emulator::endpoint(test)?;
    let sdk = emulator::sdk_config(&endpoint).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), unique_name("ingest"));
    store.create_table_if_missing().await.unwrap();
    let scheduler = aws_sdk_scheduler::Client::new(&sdk);
    let group = unique_name("sweeps");
    scheduler
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name(unique_name("alerts"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs
        .create_queue()
        .queue_name(unique_name("router"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    let ingest = Ingest {
        bus: SnsBus::alerts(sns, topic),
        pages: DynamoPages::new(aws_sdk_dynamodb::Client::new(&sdk), store.table()),
        // As main.rs builds it per invocation, with the ARN the invocation's context names.
        timer: EventBridgeScheduler::new(scheduler.clone(), &group, INGEST_ARN, ROLE_ARN, None)
            .unwrap(),
        clock: SystemClock,
    };
    Some(World {
        ingest,
        sqs,
        queue,
        scheduler,
        group,
    })
}

impl World {
    /// Every alert on the alerts topic so far (moto delivers during the publish call).
    async fn published(&self) -> Vec<Alert> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut all = Vec::new();
        while Instant::now() < deadline {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            if out.messages().is_empty() {
                break;
            }
            for m in out.messages() {
                all.push(serde_json::from_str(m.body().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        all
    }
}

fn fixture(path: &str) -> Vec<u8> {
    let p = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_on_dynamodb_publish_one_joined_alert_on_the_alerts_topic() {
    let Some(w) = world("ingest-pages").await else {
        return;
    };
    let out = w
        .ingest
        .handle(&fixture("health/paged/page-2-of-2.json"))
        .await
        .unwrap();
    assert_eq!((out.published, out.held), (0, 1));
    assert!(
        w.published().await.is_empty(),
        "nothing before the last page"
    );
    let out = w
        .ingest
        .handle(&fixture("health/paged/page-1-of-2.json"))
        .await
        .unwrap();
    assert_eq!(out.published, 1);
    let got = w.published().await;
    assert_eq!(got.len(), 1, "{got:?}");
    let a = &got[0];
    assert!(
        !a.labels.contains_key("health_pages"),
        "whole: {:?}",
        a.labels
    );
    let one = tocsin_core::source::parse(&fixture("health/paged/page-1-of-2.json")).unwrap();
    let two = tocsin_core::source::parse(&fixture("health/paged/page-2-of-2.json")).unwrap();
    let count = |a: &Alert| a.labels["affected_entity_count"].parse::<usize>().unwrap();
    assert_eq!(
        count(a),
        count(&one[0]) + count(&two[0]),
        "every page's entities"
    );
    assert_eq!(a.event_id, one[0].event_id);
    // A redelivered page after the event went out publishes nothing.
    let out = w
        .ingest
        .handle(&fixture("health/paged/page-2-of-2.json"))
        .await
        .unwrap();
    assert_eq!(out.published, 0);
    assert!(w.published().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_page_alone_schedules_a_sweep_of_itself_and_the_sweep_publishes_what_came() {
    let Some(w) = world("ingest-sweep").await else {
        return;
    };
    let page = fixture("health/paged/page-1-of-2.json");
    let key = tocsin_core::source::parse_all(&page).unwrap().pages[0]
        .key
        .clone();
    let before = chrono::Utc::now();
    w.ingest.handle(&page).await.unwrap();
    let schedule = w
        .scheduler
        .get_schedule()
        .group_name(&w.group)
        .name(sweep_name(&key))
        .send()
        .await
        .unwrap();
    let target = schedule.target().unwrap();
    assert_eq!(target.arn(), INGEST_ARN, "the sweep invokes ingest itself");
    assert_eq!(target.role_arn(), ROLE_ARN);
    let input: serde_json::Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(
        input,
        serde_json::json!({"health_pages_flush": {"key": key}})
    );
    let expression = schedule.schedule_expression().unwrap();
    let at = chrono::NaiveDateTime::parse_from_str(
        expression.trim_start_matches("at(").trim_end_matches(')'),
        "%Y-%m-%dT%H:%M:%S",
    )
    .unwrap()
    .and_utc();
    let wait = at - before;
    assert!(
        wait >= chrono::TimeDelta::minutes(15) && wait <= chrono::TimeDelta::minutes(16),
        "{expression}, {wait}"
    );

    // Moto never fires schedules: invoke ingest with the schedule's input, as Scheduler would.
    let out = w
        .ingest
        .handle(target.input().unwrap().as_bytes())
        .await
        .unwrap();
    assert_eq!(out.published, 1);
    let got = w.published().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels["health_pages"], "received 1 of 2");
    assert_eq!(got[0].event_id, key);
}
