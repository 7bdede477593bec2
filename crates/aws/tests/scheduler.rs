//! The EventBridge Scheduler adapter against moto (`scripts/with-moto.sh`): what `schedule` creates is
//! read back with `GetSchedule`, and the port's idempotence (schedule twice, cancel twice) holds on the
//! service's answers. Moto stores schedules but never fires them. Without `AWS_ENDPOINT_URL` the tests
//! say they were skipped, unless `TOCSIN_REQUIRE_AWS=1`, where skipping would hide a broken harness, so
//! they fail.

// Test code: a failed step is a panic that names it.
#![allow(clippy::unwrap_used)]

use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use tocsin_aws::EventBridgeScheduler;
use tocsin_aws::scheduler::{DEFAULT_MAX_EVENT_AGE_S, DEFAULT_MAX_RETRY_ATTEMPTS, schedule_name};
use tocsin_core::ports::Scheduler;
use tocsin_core::record::Timer;
use tocsin_core::router::timer_name;

const TARGET: &str = "arn:aws:lambda:us-east-1:123456789012:function:tocsin-escalate";
const ROLE: &str = "arn:aws:iam::123456789012:role/tocsin-scheduler";
const DLQ: &str = "arn:aws:sqs:us-east-1:123456789012:tocsin-escalate-dlq";

/// A client for moto, or None (after saying so) when no endpoint is set.
async fn client(test: &str) -> Option<aws_sdk_scheduler::Client> {
    let sdk = tocsin_aws::emulator::config_for(test).await?;
    Some(aws_sdk_scheduler::Client::new(&sdk))
}

/// A schedule group no other test run on the same moto server has used, created as the stack would.
async fn fresh_group(client: &aws_sdk_scheduler::Client, test: &str) -> String {
    // Group names are at most 64 characters.
    let group = tocsin_aws::emulator::unique_name(test);
    client
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    group
}

fn tick(step: u32) -> Timer {
    Timer::Escalation {
        alert_id: "0123456789abcdef0123456789abcdef".into(),
        step,
    }
}

/// The time inside an `at(...)` expression.
fn at_time(expression: &str) -> DateTime<Utc> {
    let inner = expression
        .strip_prefix("at(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap();
    NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_is_created_once_read_back_as_sent_and_cancelled_idempotently() {
    let Some(client) = client("scheduler").await else {
        return;
    };
    let group = fresh_group(&client, "sched").await;
    let scheduler = EventBridgeScheduler::new(
        client.clone(),
        group.clone(),
        TARGET,
        ROLE,
        Some(DLQ.to_string()),
    )
    .unwrap();
    let first = tick(2);
    let name = timer_name(first.subject(), 2);
    // Seconds and a fraction: Scheduler's one-minute precision rounds this up to 03:05.
    let at: DateTime<Utc> = "2030-01-02T03:04:05.5Z".parse().unwrap();

    scheduler.schedule(&name, at, &first).await.unwrap();

    let got = client
        .get_schedule()
        .group_name(&group)
        .name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(got.name(), Some(name.as_str()), "the router's name is kept");
    assert_eq!(got.group_name(), Some(group.as_str()));
    assert_eq!(got.schedule_expression(), Some("at(2030-01-02T03:05:00)"));
    assert_eq!(got.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        got.action_after_completion(),
        Some(&ActionAfterCompletion::Delete)
    );
    assert_eq!(
        got.flexible_time_window().map(|w| w.mode()),
        Some(&FlexibleTimeWindowMode::Off)
    );
    let target = got.target().unwrap();
    assert_eq!((target.arn(), target.role_arn()), (TARGET, ROLE));
    let retry = target.retry_policy().unwrap();
    assert_eq!(
        (
            retry.maximum_retry_attempts(),
            retry.maximum_event_age_in_seconds()
        ),
        (
            Some(DEFAULT_MAX_RETRY_ATTEMPTS as i32),
            Some(DEFAULT_MAX_EVENT_AGE_S as i32)
        )
    );
    assert_eq!(target.dead_letter_config().and_then(|d| d.arn()), Some(DLQ));
    assert_eq!(
        scheduler.get_input(&name).await.unwrap(),
        Some(first.clone())
    );

    // The same name again (a retried router) is success, and the first schedule stands.
    scheduler
        .schedule(&name, at + TimeDelta::hours(1), &tick(3))
        .await
        .unwrap();
    assert_eq!(scheduler.get_input(&name).await.unwrap(), Some(first));

    scheduler.cancel(&name).await.unwrap();
    assert_eq!(scheduler.get_input(&name).await.unwrap(), None);
    // Cancelling what is not scheduled (again, or already fired) is success.
    scheduler.cancel(&name).await.unwrap();
    scheduler
        .cancel("tocsin-esc-never-scheduled-1")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_too_long_for_scheduler_is_hashed_and_still_found_by_every_call() {
    let Some(client) = client("scheduler_names").await else {
        return;
    };
    let group = fresh_group(&client, "names").await;
    let scheduler =
        EventBridgeScheduler::new(client.clone(), group.clone(), TARGET, ROLE, None).unwrap();
    let long = format!("tocsin-esc-{}-7", "ab".repeat(40));
    let at: DateTime<Utc> = "2030-01-02T03:04:00Z".parse().unwrap();

    scheduler.schedule(&long, at, &tick(7)).await.unwrap();
    let aws_name = schedule_name(&long);
    assert!(aws_name.len() <= 64, "{aws_name}");
    let got = client
        .get_schedule()
        .group_name(&group)
        .name(&aws_name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.schedule_expression(),
        Some("at(2030-01-02T03:04:00)"),
        "a whole minute stays"
    );
    assert_eq!(
        got.target().and_then(|t| t.dead_letter_config()),
        None,
        "no DLQ configured, none sent"
    );
    assert_eq!(scheduler.get_input(&long).await.unwrap(), Some(tick(7)));
    scheduler.cancel(&long).await.unwrap();
    assert_eq!(scheduler.get_input(&long).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_already_due_is_scheduled_for_the_next_whole_minute() {
    let Some(client) = client("scheduler_late").await else {
        return;
    };
    let group = fresh_group(&client, "late").await;
    let scheduler =
        EventBridgeScheduler::new(client.clone(), group.clone(), TARGET, ROLE, None).unwrap();
    let before = Utc::now();
    let name = timer_name(tick(1).subject(), 1);
    scheduler
        .schedule(&name, before - TimeDelta::minutes(30), &tick(1))
        .await
        .unwrap();
    let after = Utc::now();
    let got = client
        .get_schedule()
        .group_name(&group)
        .name(&name)
        .send()
        .await
        .unwrap();
    let fires = at_time(got.schedule_expression().unwrap());
    // The scheduler keeps a one-second margin before rounding up, so the fire time is at most a
    // minute and a second after the call.
    assert!(
        fires > before && fires <= after + TimeDelta::seconds(61),
        "{fires} not in ({before}, {after} + 61s]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduling_into_a_group_that_does_not_exist_is_an_error_not_success() {
    let Some(client) = client("scheduler_no_group").await else {
        return;
    };
    let scheduler =
        EventBridgeScheduler::new(client, "tocsin-no-such-group", TARGET, ROLE, None).unwrap();
    let at: DateTime<Utc> = "2030-01-02T03:04:00Z".parse().unwrap();
    let err = scheduler
        .schedule("tocsin-esc-x-1", at, &tick(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("scheduler backend error: CreateSchedule tocsin-esc-x-1: "),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
}

// ---- Noise control (issue 7): group timers go through the same adapter.

/// The router on this adapter groups an alert: its group's flush is a one-time schedule whose input is
/// the group-flush tick, at group_wait after the alert (rounded up to Scheduler's whole minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_flush_timer_is_a_scheduler_schedule_carrying_its_tick() {
    use std::sync::Arc;
    use tocsin_core::noise::{group_key, noise_timer_name};
    use tocsin_core::router::{Router, RouterSettings};

    let Some(client) = client("scheduler-group").await else {
        return;
    };
    let group = fresh_group(&client, "grp").await;
    let scheduler =
        EventBridgeScheduler::new(client.clone(), group.clone(), TARGET, ROLE, None).unwrap();
    let config = tocsin_core::config::load(
        "channels: {s: {type: slack, webhook_url: {env: S}, default_to: ['#ops']}}\n\
         route: {notify: [{channel: s}], group_by: [region], group_wait: 90s}\n",
    )
    .unwrap();
    let at: DateTime<Utc> = "2030-01-02T03:04:00Z".parse().unwrap();
    let router = Router {
        config: Arc::new(config),
        store: tocsin_local::MemoryStore::new(),
        bus: tocsin_local::LocalBus::new(),
        scheduler,
        clock: tocsin_local::VirtualClock::new(at),
        settings: RouterSettings::default(),
    };
    let alert = tocsin_core::source::parse(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../events/sns/metric-alarm.json"),
        )
        .unwrap(),
    )
    .unwrap()
    .remove(0);
    let entries = router.handle(alert).await.unwrap();
    assert!(
        entries.iter().any(|e| e
            .reason
            .contains("group notification at 2030-01-02T03:05:30.000Z")),
        "{entries:?}"
    );
    let key = group_key(
        "root",
        &[("region".to_string(), "eu-west-1".to_string())]
            .into_iter()
            .collect(),
    );
    let name = noise_timer_name("grp", &key, 1);
    let got = client
        .get_schedule()
        .group_name(&group)
        .name(&name)
        .send()
        .await
        .unwrap();
    // 03:05:30 rounds up to 03:06: a group waits up to a minute longer on AWS, never less.
    assert_eq!(
        at_time(got.schedule_expression().unwrap()),
        "2030-01-02T03:06:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    let input = router.scheduler.get_input(&name).await.unwrap().unwrap();
    assert_eq!(
        input,
        Timer::GroupFlush {
            group: key,
            seq: 1,
            repeat: false
        }
    );
}
