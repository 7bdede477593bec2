//! The router's dedup under a real race, against DynamoDB at `AWS_ENDPOINT_URL` (moto, under
//! `scripts/with-moto.sh`): one transition delivered 64 times at once, half through SNS and half
//! through EventBridge, to one router on a `DynamoStore`, pages once. Without an endpoint the test says
//! it was skipped, unless `TOCSIN_REQUIRE_AWS=1`, where it fails.
//!
//! The requests reach moto through `support/fault_proxy.rs` one at a time: moto does not apply a
//! conditional write atomically (two concurrent claims of one key can both succeed, about once in 30
//! runs here, and then the race opens the alert twice), where DynamoDB does. The 64 invocations still
//! interleave freely between their requests, which is the race the router has to get right.

// Test code: a failed step is a panic that names it.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use support::{Options, moto_table};
use tocsin_aws::DynamoStore;
use tocsin_core::ports::AlertStore;
use tocsin_core::record::{Action, AuditEntry, Timer};
use tocsin_core::router::{Router, RouterError, RouterSettings};
use tocsin_core::{Alert, Transport};
use tocsin_local::{LocalBus, VirtualClock, VirtualScheduler};

/// Calls made at once.
const RACERS: usize = 64;
/// A loser that finds the winner still at work fails with `InProgress`; the platform (SNS,
/// EventBridge, Lambda's async retries) redelivers later. Modelled as this many tries, this far apart.
const PLATFORM_TRIES: u32 = 200;
const PLATFORM_RETRY_AFTER: Duration = Duration::from_millis(50);

fn fixture(name: &str) -> Alert {
    let path = format!(
        "{}/../../events/scenario/incident/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap();
    let mut alerts = tocsin_core::source::parse(&bytes).unwrap();
    assert_eq!(alerts.len(), 1, "{name} holds one transition");
    alerts.remove(0)
}

fn config() -> Arc<tocsin_core::config::Config> {
    let path = format!("{}/../../infra/tocsin.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    Arc::new(tocsin_core::config::load(&text).unwrap())
}

type DynRouter = Router<DynamoStore, LocalBus, VirtualScheduler, VirtualClock>;

/// One delivery of the event, retried the way the platform retries a function that failed with
/// `InProgress`. Returns the decisions and how many tries it took.
async fn deliver(router: Arc<DynRouter>, alert: Alert) -> (Vec<AuditEntry>, u32) {
    for attempt in 1..=PLATFORM_TRIES {
        match router.handle(alert.clone()).await {
            Ok(entries) => return (entries, attempt),
            Err(RouterError::InProgress(_)) => tokio::time::sleep(PLATFORM_RETRY_AFTER).await,
            Err(e) => panic!("via {}: attempt {attempt}: {e}", alert.transport.as_str()),
        }
    }
    panic!("still in progress after {PLATFORM_TRIES} tries: the winner never completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_deliveries_of_one_transition_via_sns_and_eventbridge_page_once() {
    // Through the proxy, one request at a time (see the module doc).
    let Some(moto) = moto_table("router-race", Options::PROXIED).await else {
        return;
    };
    let store = &moto.store;
    let via_sns = fixture("01-checkout-5xx-alarm.sns.json");
    let via_eventbridge = fixture("02-checkout-5xx-alarm.eventbridge.json");
    assert_eq!(via_sns.transport, Transport::Sns);
    assert_eq!(via_eventbridge.transport, Transport::Eventbridge);
    assert_eq!(via_sns.event_id, via_eventbridge.event_id, "one transition");
    assert_eq!(via_sns.fingerprint, via_eventbridge.fingerprint);
    let event_id = via_sns.event_id.clone();
    let fingerprint = via_sns.fingerprint.clone();

    let bus = LocalBus::new();
    let scheduler = VirtualScheduler::new();
    let router = Arc::new(Router {
        config: config(),
        store: store.clone(),
        bus: bus.clone(),
        scheduler: scheduler.clone(),
        clock: VirtualClock::new(via_sns.state_changed_at),
        settings: RouterSettings::default(),
    });

    // Every task waits at the barrier so that the 64 claims leave together.
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..RACERS {
        let alert = if i % 2 == 0 {
            via_sns.clone()
        } else {
            via_eventbridge.clone()
        };
        let (router, start) = (router.clone(), start.clone());
        tasks.spawn(async move {
            start.wait().await;
            deliver(router, alert).await
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.unwrap());
    }

    let (opened, deduped): (Vec<_>, Vec<_>) = results
        .iter()
        .partition(|(entries, _)| entries.iter().any(|e| e.action == Action::Open));
    assert_eq!(
        opened.len(),
        1,
        "exactly one delivery opens the alert; the openers (tries, decisions): {opened:?}"
    );
    assert_eq!(deduped.len(), RACERS - 1);
    for (entries, _) in &deduped {
        assert_eq!(
            entries.len(),
            1,
            "a duplicate decides one thing: {entries:?}"
        );
        assert_eq!(entries[0].action, Action::Dedup);
        assert_eq!(
            entries[0].event_id.as_deref(),
            Some(event_id.as_str()),
            "every dedup names the event"
        );
    }
    let retried = results.iter().filter(|(_, tries)| *tries > 1).count();
    let _ = writeln!(
        std::io::stderr(),
        "{retried} of {RACERS} deliveries found the winner in progress and were retried"
    );

    let open_entries = &opened[0].0;
    let alert_id = open_entries[0].alert.clone();
    let notified = open_entries
        .iter()
        .filter(|e| e.action == Action::Notify)
        .count();
    assert!(
        notified > 0,
        "the example config pages someone: {open_entries:?}"
    );

    // One set of delivery jobs: as many as the open notified, none twice.
    let jobs = bus.take_deliveries();
    let ids: HashSet<&str> = jobs.iter().map(|j| j.delivery_id.as_str()).collect();
    assert_eq!(ids.len(), jobs.len(), "no delivery id twice");
    assert_eq!(jobs.len(), notified, "one job per notify entry of the open");
    assert!(jobs.iter().all(|j| j.alert_id == alert_id));
    assert_eq!(
        scheduler.pending_where(|t| matches!(t, Timer::Escalation { .. })),
        1,
        "one first-escalation timer"
    );
    // The example config groups Slack by service; the critical alert flushed its group at once, which
    // leaves the group's one repeat timer.
    assert_eq!(
        scheduler.pending_where(|t| matches!(t, Timer::GroupFlush { .. })),
        1,
        "one group timer"
    );

    // The trail: the winner's decisions once, and a dedup line for each loser that came by the
    // other way (half of them: the same transition via SNS and via EventBridge is the alarm's
    // story). A loser that came the winner's way is the same message delivered again: it wrote
    // nothing but its failed claim, and its line (returned above) went to the log.
    let trail = store.audit(&alert_id).await.unwrap();
    let count = |a: Action| trail.iter().filter(|e| e.action == a).count();
    assert_eq!(count(Action::Open), 1);
    assert_eq!(count(Action::Notify), notified);
    // (The winner's own escalation level 1, folded into the opening because the opening paged its
    // targets already, is a dedup line of its own: it carries its level and names no event.)
    let dedups: Vec<&AuditEntry> = trail
        .iter()
        .filter(|e| e.action == Action::Dedup && e.level.is_none())
        .collect();
    assert_eq!(
        dedups.len(),
        RACERS / 2,
        "one dedup entry per loser by the other way"
    );
    assert!(
        dedups
            .iter()
            .all(|e| e.event_id.as_deref() == Some(event_id.as_str())),
        "every dedup entry names the event"
    );

    let latest = store.latest_alert(&fingerprint).await.unwrap().unwrap();
    assert_eq!(latest.id, alert_id);
    assert_eq!(latest.occurrences, 1, "duplicates are not repeats");
    // The only write after the open: the clearing of the outbox the open was written with (nothing
    // is left owed).
    assert!(latest.pending.is_empty(), "nothing is left owed");
    assert_eq!(
        latest.version, 2,
        "no duplicate updated the alert after it opened"
    );
}

/// One alert of `service`'s group, named `name`, firing at the fixture's time.
fn grouped(name: &str) -> Alert {
    let mut a = fixture("04-search-latency-p99-alarm.eventbridge.json");
    a.alarm_name = name.to_string();
    a.fingerprint = tocsin_core::model::stable_id(&["race", name]);
    a.event_id = tocsin_core::model::stable_id(&["race", name, "ALARM"]);
    a
}

/// Routes `alert`, retrying whatever fails the way the platform retries a failed invocation.
async fn route(router: Arc<DynRouter>, alert: Alert) -> Vec<AuditEntry> {
    for _ in 1..=PLATFORM_TRIES {
        match router.handle(alert.clone()).await {
            Ok(entries) => return entries,
            Err(_) => tokio::time::sleep(PLATFORM_RETRY_AFTER).await,
        }
    }
    panic!("{} never routed", alert.alarm_name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_alerts_joining_one_group_at_once_all_end_in_it_and_two_flushes_send_one_notification()
 {
    let Some(moto) = moto_table("group-race", Options::PROXIED).await else {
        return;
    };
    let first = grouped("search-race-0");
    let bus = LocalBus::new();
    let scheduler = VirtualScheduler::new();
    let clock = VirtualClock::new(first.state_changed_at);
    let router = Arc::new(Router {
        config: config(),
        store: moto.store.clone(),
        bus: bus.clone(),
        scheduler: scheduler.clone(),
        clock: clock.clone(),
        settings: RouterSettings::default(),
    });
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..RACERS {
        let (router, start) = (router.clone(), start.clone());
        let alert = grouped(&format!("search-race-{i}"));
        tasks.spawn(async move {
            start.wait().await;
            route(router, alert).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    // Every join ended in the group: its members, read back from DynamoDB, are the 64 alerts.
    let group = tocsin_core::noise::group_key(
        "everything",
        &std::collections::BTreeMap::from([("service".to_string(), "search".to_string())]),
    );
    let members = moto.store.group_members(&group, None, 1000).await.unwrap();
    let mut names: Vec<String> = members.iter().map(|m| m.alarm_name.clone()).collect();
    names.sort();
    let mut want: Vec<String> = (0..RACERS).map(|i| format!("search-race-{i}")).collect();
    want.sort();
    assert_eq!(names, want, "every alert joined the group once");
    assert!(members.iter().all(|m| m.firing));

    // The group's flush timer fires twice at once (Scheduler's at-least-once): one notification.
    assert!(
        bus.take_deliveries().is_empty(),
        "nothing sent before group_wait"
    );
    let (at, _, tick) = scheduler
        .pop_due(DateTime::<Utc>::MAX_UTC)
        .expect("the group's flush timer");
    clock.set(at);
    let (a, b) = tokio::join!(router.on_timer(&tick), router.on_timer(&tick));
    a.unwrap();
    b.unwrap();
    // The flush that lost the write found the winner's outbox and may have carried it out too: the
    // same delivery id, which deliver sends once.
    let sent = bus.take_deliveries();
    let ids: HashSet<&str> = sent.iter().map(|j| j.delivery_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "one notification: {sent:?}");
    assert!(
        sent[0]
            .alert
            .reason
            .starts_with(&format!("+{RACERS} firing")),
        "{}",
        sent[0].alert.reason
    );
    assert!(
        sent[0]
            .alert
            .reason
            .contains(&format!("+{} more", RACERS - 10)),
        "the notification names ten and counts the rest: {}",
        sent[0].alert.reason
    );
}
