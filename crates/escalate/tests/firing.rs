//! A simulated Scheduler firing against moto: moto stores schedules but never fires them, so the test
//! does what EventBridge Scheduler would: reads the schedule the router created (its `at()` time and its
//! Input) back from moto and invokes the escalate handler with that Input.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tocsin_aws::emulator::{config_for, unique_name};
use tocsin_aws::{DynamoStore, EventBridgeScheduler};
use tocsin_core::record::{Action, DeliveryKind};
use tocsin_core::router::{Router, RouterSettings, timer_name};
use tocsin_local::{LocalBus, VirtualClock};

const TARGET: &str = "arn:aws:lambda:us-east-1:123456789012:function:tocsin-escalate";
const ROLE: &str = "arn:aws:iam::123456789012:role/tocsin-scheduler";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_read_back_from_moto_fired_into_the_handler_pages_the_next_level_once() {
    let Some(sdk) = config_for("escalate_firing").await else {
        return;
    };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let config = tocsin_core::config::load(
        &std::fs::read_to_string(format!("{root}/infra/tocsin.yaml")).unwrap(),
    )
    .unwrap();
    let sched_client = aws_sdk_scheduler::Client::new(&sdk);
    let group = unique_name("esc");
    sched_client
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), unique_name("esc"));
    store.create_table_if_missing().await.unwrap();
    let scheduler =
        EventBridgeScheduler::new(sched_client.clone(), group.clone(), TARGET, ROLE, None).unwrap();
    let bus = LocalBus::new();
    // In the future: the scheduler moves times already past to the next minute from the real now.
    let start = t("2030-01-07T02:10:00Z");
    let clock = VirtualClock::new(start);
    let router = Router {
        config: Arc::new(config),
        store,
        bus: bus.clone(),
        scheduler: scheduler.clone(),
        clock: clock.clone(),
        settings: RouterSettings::default(),
    };

    // The critical checkout alarm opens: the router pages the on-call person, who is all of the
    // policy's level 1 (no delay), so level 1 is done within the opening ("already paged") and the
    // opening schedules escalation step 2 in moto, at the level-2 delay (15 minutes).
    let bytes = std::fs::read(format!(
        "{root}/events/scenario/incident/01-checkout-5xx-alarm.sns.json"
    ))
    .unwrap();
    let alert = tocsin_core::source::parse(&bytes).unwrap().remove(0);
    let opened = router.handle(alert).await.unwrap();
    let id = opened[0].alert.clone();
    assert!(
        opened
            .iter()
            .any(|e| e.action == Action::Dedup && e.level == Some(1)),
        "{opened:?}"
    );
    bus.take_deliveries();
    assert!(
        scheduler
            .get_input(&timer_name(&id, 1))
            .await
            .unwrap()
            .is_none(),
        "no step 1 to fire only to say it was paged"
    );
    let got = sched_client
        .get_schedule()
        .group_name(&group)
        .name(timer_name(&id, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(got.schedule_expression(), Some("at(2030-01-07T02:25:00)"));
    let step2 = scheduler
        .get_input(&timer_name(&id, 2))
        .await
        .unwrap()
        .unwrap();
    clock.set(start + chrono::TimeDelta::minutes(15));
    let input = serde_json::to_value(&step2).unwrap();
    let paged = tocsin_escalate::handle(&router, input.clone())
        .await
        .unwrap();
    let l2: Vec<_> = paged
        .iter()
        .filter(|e| e.action == Action::Escalate)
        .collect();
    assert!(
        !l2.is_empty() && l2.iter().all(|e| e.level == Some(2)),
        "{paged:?}"
    );
    let jobs = bus.take_deliveries();
    assert_eq!(jobs.len(), l2.len());
    assert!(jobs.iter().all(|j| j.kind == DeliveryKind::Escalation));

    // Scheduler fires at least once: the same Input again pages nobody.
    let again = tocsin_escalate::handle(&router, input).await.unwrap();
    assert!(again.iter().all(|e| e.action == Action::Dedup), "{again:?}");
    assert!(bus.take_deliveries().is_empty());

    // Garbage Input is refused with a one-line reason (Scheduler retries, then dead-letters it).
    let err = tocsin_escalate::handle(&router, serde_json::json!({"nope": 1}))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .starts_with("permanent: input is not a timer: "),
        "{err}"
    );
}
