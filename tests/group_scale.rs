//! State stays small however large a group grows: 50,000 alarms of one service fire into one
//! notification group, and no item the router writes (alert records, the group, its members, the
//! audit, with their outboxes) is over 64 KB, while every alarm ends in the group and the group's
//! notifications name ten alarms and count the rest. Item sizes are the JSON bodies the DynamoDB store
//! writes (`tocsin_local::Faults::largest_write`), measured on the memory store so that the test runs
//! in seconds; `crates/aws/tests/router_race.rs` runs the group on DynamoDB (moto).

use std::collections::BTreeMap;

use chrono::TimeDelta;
use tocsin_core::model::AlarmState;
use tocsin_core::ports::AlertStore;
use tocsin_local::FaultyEmbedded;
use tocsin_tests::{cloudwatch_alarm, example_config, t};

/// How many alarms fire into the group (`TOCSIN_GROUP_ALERTS` to try another size).
fn alarms() -> usize {
    std::env::var("TOCSIN_GROUP_ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}

#[tokio::test]
async fn fifty_thousand_alarms_in_one_group_write_no_item_over_64_kb() {
    let n = alarms();
    let start = t("2026-11-20T02:10:00Z");
    let FaultyEmbedded {
        router,
        faults,
        store,
        bus,
        scheduler,
        clock,
    } = FaultyEmbedded::new(example_config(), start);
    let mut sent = 0;
    // Over ten minutes, so that the group flushes while alarms still join it.
    let step = TimeDelta::milliseconds((600_000 / n.max(1)) as i64);
    for i in 0..n {
        let at = start + step * i as i32;
        while let Some((due, _, tick)) = scheduler.pop_due(at) {
            clock.set(due);
            router.on_timer(&tick).await.unwrap();
        }
        clock.set(at);
        // search-*: medium, service search, grouped on "everything" and paged by nobody directly.
        let mut a = cloudwatch_alarm(
            &format!("search-node-{i:05}"),
            AlarmState::Alarm,
            "2026-11-20T02:10:00Z",
        );
        a.state_changed_at = at;
        router.handle(a).await.unwrap();
        sent += bus.take_deliveries().len();
        faults.clear();
    }
    let end = start + TimeDelta::minutes(30);
    while let Some((due, _, tick)) = scheduler.pop_due(end) {
        clock.set(due);
        router.on_timer(&tick).await.unwrap();
    }
    let jobs = bus.take_deliveries();
    sent += jobs.len();

    let (largest, by) = faults.largest_write();
    assert!(
        largest <= 64 * 1024,
        "{by} wrote an item of {largest} bytes with {n} alarms in one group"
    );
    let group = tocsin_core::noise::group_key(
        "everything",
        &BTreeMap::from([("service".to_string(), "search".to_string())]),
    );
    let mut members = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store
            .group_members(&group, after.as_deref(), 1000)
            .await
            .unwrap();
        members += page.len();
        match page.last() {
            Some(m) if page.len() == 1000 => after = Some(m.alert_id.clone()),
            _ => break,
        }
    }
    assert_eq!(members, n, "every alarm is in the group");
    assert!(
        sent > 0 && sent < 20,
        "a few group notifications, not one per alarm: {sent}"
    );
    assert!(
        jobs.iter()
            .chain(std::iter::empty())
            .all(|j| j.alert.reason.len() < 2_000),
        "a notification names ten alarms and counts the rest"
    );
    eprintln!("{n} alarms in one group: largest item {largest} bytes ({by}), {sent} notifications");
}

/// Opens `checkout-api-5xx-<i>` (critical, service checkout) `i` seconds after `start`, with the
/// fault plan's count cleared first, so that `faults` then holds this opening's calls alone; a
/// critical alarm flushes its group at once.
async fn open_critical(
    p: &FaultyEmbedded,
    start: chrono::DateTime<chrono::Utc>,
    i: i64,
) -> Result<Vec<tocsin_core::record::AuditEntry>, tocsin_core::router::RouterError> {
    let at = start + TimeDelta::seconds(i);
    p.clock.set(at);
    let mut a = cloudwatch_alarm(
        &format!("checkout-api-5xx-{i:02}"),
        AlarmState::Alarm,
        "2026-11-20T02:10:00Z",
    );
    a.state_changed_at = at;
    p.faults.clear();
    let opened = p.router.handle(a).await?;
    assert!(
        opened
            .iter()
            .any(|e| e.reason.contains("bypasses group_wait")),
        "{opened:?}"
    );
    Ok(opened)
}

/// How many of the calls counted since the last clear were `call`.
fn count(faults: &tocsin_local::Faults, call: &str) -> usize {
    faults.calls().iter().filter(|c| **c == call).count()
}

/// A critical storm flushes its group once per alarm that joins (critical bypasses `group_wait`),
/// and each flush looks at whether its members are held. The members of a group share the labels
/// an inhibit rule's `equal` names (the example's rule: `equal: [service]`, the group's own label),
/// so one read of that inhibition serves the whole flush: the last of 40 alarms' opening reads the
/// noise state a handful of times, not once a member (it read 40 before).
#[tokio::test]
async fn a_critical_storms_flush_reads_each_inhibition_once_not_once_a_member() {
    let start = t("2026-11-20T02:10:00Z");
    let p = FaultyEmbedded::new(example_config(), start);
    let n = 40;
    let mut reads = 0;
    for i in 0..n {
        open_critical(&p, start, i).await.unwrap();
        reads = count(&p.faults, "store.noise_state");
    }
    assert!(
        reads < 10,
        "the last opening read the noise state {reads} times with {n} members in its group"
    );
}

/// A critical storm's flushes read no member's alert (only the one a notification is rendered
/// from) while nothing can hold one: the example's
/// windows are closed, no silence is active, and its one inhibit rule (`equal: [service]`, the
/// group's own label) has no source, which one read of the group's inhibition shows, and the one
/// silence is another service's. Every flush
/// read every member's alert before (a storm of N read about N²/2 alerts). A silence the group's
/// labels cannot rule out (one alarm's name) makes the next flush read them again, and hold that
/// member.
#[tokio::test]
async fn a_critical_storms_flushes_read_no_member_alert_until_a_silence_could_hold_one() {
    let start = t("2026-11-20T02:10:00Z");
    let p = FaultyEmbedded::new(example_config(), start);
    let silence = |matcher: &str| {
        p.router.create_silence(tocsin_core::noise::NewSilence {
            matchers: vec![matcher.into()],
            created_by: "alice".into(),
            comment: "test".into(),
            starts_at: None,
            ends_at: start + TimeDelta::hours(1),
        })
    };
    // A silence the group's own label rules out (another service's) changes nothing.
    silence("service = search").await.unwrap();
    let n = 30;
    for i in 0..n {
        open_critical(&p, start, i).await.unwrap();
        // One: the alert the notification is rendered from.
        assert!(
            count(&p.faults, "store.get_alert") <= 1,
            "opening {i} read member alerts: {:?}",
            p.faults.calls()
        );
    }
    p.clock.set(start + TimeDelta::seconds(n));
    silence("alarm_name = checkout-api-5xx-03").await.unwrap();
    let opened = open_critical(&p, start, n + 1).await.unwrap();
    let reads = count(&p.faults, "store.get_alert");
    assert!(
        reads >= n as usize,
        "a silence no label rules out: the flush reads the members ({reads} reads)"
    );
    assert!(
        opened.iter().any(|e| {
            e.reason.contains("left out of group") && e.reason.contains("held by silence")
        }),
        "{opened:?}"
    );
}
