//! Noise control on the virtual clock: grouping with delta notifications, maintenance windows,
//! silences, inhibition, flap damping, and `explain`. Every decision names the rule that made it.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{DateTime, Utc};
use tocsin_core::explain::explain;
use tocsin_core::model::{AlarmState, Alert};
use tocsin_core::noise::NewSilence;
use tocsin_core::record::{Action, AuditEntry, DeliveryKind};
use tocsin_local::Embedded;
use tocsin_tests::{cloudwatch_alarm as alarm, config_from, t};

const CONFIG: &str = r##"
services:
  - {name: checkout, team: payments, tier: 1, match: ['alarm_name =~ "checkout-.*"']}
  - {name: search, team: discovery, tier: 2, match: ['alarm_name =~ "search-.*"']}
  - {name: payments, team: payments, tier: 2, match: ['alarm_name =~ "payments-.*"']}
  - {name: flappy, match: ['alarm_name =~ "flappy-.*"']}
severity_rules:
  - severity: critical
    match: ['alarm_name =~ ".*-5xx.*"']
channels:
  ops-slack: {type: slack, webhook_url: {env: SLACK_WEBHOOK_URL}, default_to: ["#ops"]}
  oncall-sms: {type: sms}
people:
  alice: {email: alice@example.com, phone: "+447700900001"}
  bob: {email: bob@example.com, phone: "+447700900002"}
escalation_policies:
  critical:
    levels:
      - delay: 15m
        targets: [{person: bob}]
        channels: [oncall-sms]
maintenance_windows:
  search-deploy:
    match: ['service = search']
    start: 2026-11-20T02:00:00Z
    end: 2026-11-20T02:30:00Z
inhibit_rules:
  - name: composite-mutes-children
    source_match: ['kind = composite']
    target_match: ['kind != composite']
    equal: [service]
flap_damping: {max_changes: 4, window: 10m, match: ['alarm_name =~ ".*-(flappy|disk).*"']}
silence_reminder: {before: 15m, notify: [{channel: ops-slack}]}
route:
  notify: [{channel: ops-slack}]
  routes:
    - name: critical
      match: ['severity = critical']
      notify: [{channel: oncall-sms, to: [{person: alice}]}]
      escalation: critical
      continue: true
    - name: checkout-grouped
      match: ['service = checkout']
      group_by: [service]
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 1h
      group_bypass: [critical]
    - name: everything
"##;

fn firing(name: &str, at: &str) -> Alert {
    alarm(name, AlarmState::Alarm, at)
}

fn ok(name: &str, at: &str) -> Alert {
    alarm(name, AlarmState::Ok, at)
}

/// The `i`-th change of `flappy-disk`, which flaps every 10 seconds from 02:00:00: firing on even `i`,
/// resolved on odd.
fn flappy_disk_change(i: u32) -> Alert {
    let at = format!("2026-11-20T02:{:02}:{:02}Z", i / 6, (i % 6) * 10);
    if i % 2 == 0 {
        firing("flappy-disk", &at)
    } else {
        ok("flappy-disk", &at)
    }
}

fn pipeline() -> Embedded {
    Embedded::new(config_from(CONFIG), t("2026-11-20T01:00:00Z"))
}

/// Silences `alarm_name` from the pipeline's now until `until`, by alice; returns its id.
async fn silence_alarm(p: &Embedded, alarm_name: &str, until: &str) -> String {
    let (s, _) = p
        .router
        .create_silence(NewSilence {
            matchers: vec![format!("alarm_name = {alarm_name}")],
            created_by: "alice".into(),
            comment: "known".into(),
            starts_at: None,
            ends_at: t(until),
        })
        .await
        .unwrap();
    s.id
}

fn of(entries: &[AuditEntry], action: Action) -> Vec<&AuditEntry> {
    entries.iter().filter(|e| e.action == action).collect()
}

fn notifications_for<'a>(entries: &'a [AuditEntry], alarm_name: &str) -> Vec<&'a AuditEntry> {
    entries
        .iter()
        .filter(|e| e.action == Action::Notify && e.alarm_name == alarm_name)
        .collect()
}

async fn feed(p: &Embedded, alerts: Vec<Alert>) -> Vec<AuditEntry> {
    let mut out = Vec::new();
    for a in alerts {
        out.extend(p.ingest(a).await.unwrap());
    }
    out
}

#[tokio::test]
async fn group_wait_batches_alerts_into_one_notification_that_counts_them() {
    let p = pipeline();
    let entries = feed(
        &p,
        vec![
            firing("checkout-latency", "2026-11-20T02:00:00Z"),
            firing("checkout-errors", "2026-11-20T02:00:10Z"),
            firing("checkout-queue", "2026-11-20T02:00:20Z"),
        ],
    )
    .await;
    assert!(of(&entries, Action::Notify).is_empty(), "{entries:#?}");
    let grouped = of(&entries, Action::Group);
    assert_eq!(grouped.len(), 3);
    assert!(
        grouped[0]
            .reason
            .contains(r#"grouped on route "checkout-grouped" by {service="checkout"}"#)
            && grouped[0]
                .reason
                .contains("at 2026-11-20T02:00:30.000Z (group_wait 30s)"),
        "{}",
        grouped[0].reason
    );
    assert!(
        p.bus.take_deliveries().is_empty(),
        "nothing sent during group_wait"
    );

    let flushed = p.run_timers(Some(t("2026-11-20T02:00:30Z"))).await.unwrap();
    let notes = of(&flushed, Action::Notify);
    assert_eq!(
        notes.len(),
        1,
        "one group notification to #ops: {flushed:#?}"
    );
    assert_eq!(notes[0].at, t("2026-11-20T02:00:30Z"));
    assert!(
        notes[0]
            .reason
            .starts_with("+3 firing: group {service=\"checkout\"}"),
        "{}",
        notes[0].reason
    );
    let jobs = p.bus.take_deliveries();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].target.target, "#ops");
    assert!(
        jobs[0].alert.reason.starts_with("+3 firing"),
        "{}",
        jobs[0].alert.reason
    );
    assert_eq!(jobs[0].alert.labels["group"], "{service=\"checkout\"}");
    // The two alerts not named on the notification say where they went.
    assert_eq!(
        of(&flushed, Action::Group)
            .iter()
            .filter(|e| e.reason.starts_with("in group notification under alert"))
            .count(),
        2
    );
}

#[tokio::test]
async fn later_changes_wait_for_group_interval_and_say_only_what_changed() {
    let p = pipeline();
    feed(
        &p,
        vec![
            firing("checkout-latency", "2026-11-20T02:00:00Z"),
            firing("checkout-errors", "2026-11-20T02:00:05Z"),
        ],
    )
    .await;
    p.run_timers(Some(t("2026-11-20T02:00:30Z"))).await.unwrap();
    p.bus.take_deliveries();
    let entries = feed(
        &p,
        vec![
            firing("checkout-queue", "2026-11-20T02:02:00Z"),
            ok("checkout-latency", "2026-11-20T02:03:00Z"),
        ],
    )
    .await;
    assert!(of(&entries, Action::Notify).is_empty(), "{entries:#?}");
    assert!(
        of(&entries, Action::Group)
            .iter()
            .any(|e| e.reason.contains("resolution goes out with group")),
        "{entries:#?}"
    );
    // Not before group_interval (5m) after the first notification.
    assert!(
        p.run_timers(Some(t("2026-11-20T02:05:29Z")))
            .await
            .unwrap()
            .is_empty()
    );
    let flushed = p.run_timers(Some(t("2026-11-20T02:05:30Z"))).await.unwrap();
    let notes = of(&flushed, Action::Notify);
    assert_eq!(notes.len(), 1, "{flushed:#?}");
    assert!(
        notes[0].reason.starts_with("+1 firing, 1 resolved: group {service=\"checkout\"} on route \"checkout-grouped\", 2 firing; new: checkout-queue; resolved: checkout-latency"),
        "{}",
        notes[0].reason
    );
}

#[tokio::test]
async fn a_group_with_nothing_new_repeats_after_repeat_interval_only() {
    let p = pipeline();
    feed(&p, vec![firing("checkout-latency", "2026-11-20T02:00:00Z")]).await;
    p.run_timers(Some(t("2026-11-20T02:00:30Z"))).await.unwrap();
    assert!(
        of(
            &p.run_timers(Some(t("2026-11-20T03:00:29Z"))).await.unwrap(),
            Action::Notify
        )
        .is_empty()
    );
    let again = p.run_timers(Some(t("2026-11-20T03:00:30Z"))).await.unwrap();
    let notes = of(&again, Action::Notify);
    assert_eq!(notes.len(), 1, "{again:#?}");
    assert!(
        notes[0]
            .reason
            .starts_with("still firing, nothing changed for 1h00m (repeat_interval)"),
        "{}",
        notes[0].reason
    );
    // Once everything resolved and was told, the group stops.
    feed(&p, vec![ok("checkout-latency", "2026-11-20T03:10:00Z")]).await;
    let last = p.run_timers(None).await.unwrap();
    assert_eq!(of(&last, Action::Notify).len(), 1);
    assert!(
        of(&last, Action::Notify)[0]
            .reason
            .starts_with("1 resolved")
    );
    assert_eq!(
        p.scheduler.pending(),
        0,
        "no timer left once the group is empty"
    );
}

#[tokio::test]
async fn a_critical_alert_bypasses_group_wait_and_escalates_on_its_own() {
    let p = pipeline();
    feed(&p, vec![firing("checkout-latency", "2026-11-20T02:00:00Z")]).await;
    let entries = feed(&p, vec![firing("checkout-api-5xx", "2026-11-20T02:00:05Z")]).await;
    let notes = of(&entries, Action::Notify);
    let targets: Vec<(&str, &str, DateTime<Utc>)> = notes
        .iter()
        .map(|e| {
            (
                e.channel.as_deref().unwrap(),
                e.target.as_deref().unwrap(),
                e.at,
            )
        })
        .collect();
    assert_eq!(
        targets,
        [
            ("oncall-sms", "alice", t("2026-11-20T02:00:05Z")),
            ("ops-slack", "#ops", t("2026-11-20T02:00:05Z")),
        ],
        "{entries:#?}"
    );
    assert!(
        notes[1].reason.starts_with("+2 firing"),
        "the bypass flushes the whole group: {}",
        notes[1].reason
    );
    assert!(
        of(&entries, Action::Group)[0]
            .reason
            .contains("severity critical bypasses group_wait")
    );
    // The group_wait timer has nothing left to say; escalation stays per alert.
    let later = p.run_timers(Some(t("2026-11-20T02:16:00Z"))).await.unwrap();
    let esc = of(&later, Action::Escalate);
    assert_eq!(esc.len(), 1, "{later:#?}");
    assert_eq!(esc[0].alarm_name, "checkout-api-5xx");
    assert!(of(&later, Action::Notify).is_empty(), "{later:#?}");
}

#[tokio::test]
async fn an_alert_opening_in_a_maintenance_window_is_recorded_and_paged_when_the_window_ends() {
    let p = pipeline();
    let entries = feed(&p, vec![firing("search-latency", "2026-11-20T02:10:00Z")]).await;
    let sup = of(&entries, Action::Suppress);
    assert_eq!(sup.len(), 1, "{entries:#?}");
    assert_eq!(
        sup[0].reason,
        "in maintenance window \"search-deploy\" until 2026-11-20T02:30:00.000Z; paged then if still firing"
    );
    assert!(of(&entries, Action::Notify).is_empty());
    assert!(p.bus.take_deliveries().is_empty());
    let rec = p.store.alerts().into_iter().next().unwrap();
    assert_eq!(
        rec.suppressed.as_deref(),
        Some("maintenance window \"search-deploy\"")
    );

    assert!(
        p.run_timers(Some(t("2026-11-20T02:29:59Z")))
            .await
            .unwrap()
            .is_empty()
    );
    let end = p.run_timers(Some(t("2026-11-20T02:30:00Z"))).await.unwrap();
    let notes = of(&end, Action::Notify);
    assert_eq!(notes.len(), 1, "{end:#?}");
    assert_eq!(notes[0].at, t("2026-11-20T02:30:00Z"));
    assert!(
        notes[0].reason.starts_with(
            "maintenance window \"search-deploy\" no longer holds it and it still fires"
        ),
        "{}",
        notes[0].reason
    );
    assert_eq!(p.bus.take_deliveries().len(), 1);
}

#[tokio::test]
async fn resolutions_are_never_hidden_by_a_window_and_an_alert_resolved_inside_one_never_pages() {
    let p = pipeline();
    // Paged before the window; resolves inside it: the resolution still goes out.
    let before = feed(&p, vec![firing("search-errors", "2026-11-20T01:50:00Z")]).await;
    assert_eq!(notifications_for(&before, "search-errors").len(), 1);
    let resolved = feed(&p, vec![ok("search-errors", "2026-11-20T02:10:00Z")]).await;
    let notes = notifications_for(&resolved, "search-errors");
    assert_eq!(notes.len(), 1, "{resolved:#?}");
    assert_eq!(notes[0].reason, "resolution");
    // Opened and resolved inside the window: nobody paged, ever, and the resolve says why.
    feed(&p, vec![firing("search-latency", "2026-11-20T02:05:00Z")]).await;
    let inside = feed(&p, vec![ok("search-latency", "2026-11-20T02:20:00Z")]).await;
    let r = of(&inside, Action::Resolve);
    assert!(
        r[0].reason.ends_with(
            "it was held by maintenance window \"search-deploy\", so nobody was paged for it"
        ),
        "{}",
        r[0].reason
    );
    let after = p.run_timers(None).await.unwrap();
    assert!(
        notifications_for(&after, "search-latency").is_empty(),
        "{after:#?}"
    );
}

#[tokio::test]
async fn a_silence_holds_matching_alerts_reminds_before_it_ends_and_releases_what_still_fires() {
    let p = pipeline();
    p.clock.set(t("2026-11-20T02:00:00Z"));
    let (silence, created) = p
        .router
        .create_silence(NewSilence {
            matchers: vec!["alarm_name = payments-db".into()],
            created_by: "alice".into(),
            comment: "db failover".into(),
            starts_at: None,
            ends_at: t("2026-11-20T03:00:00Z"),
        })
        .await
        .unwrap();
    assert!(created[0].reason.starts_with(&format!(
        "created: silence {} by alice (db failover)",
        silence.id
    )));
    let held = feed(&p, vec![firing("payments-db", "2026-11-20T02:10:00Z")]).await;
    let sup = of(&held, Action::Suppress);
    assert!(
        sup[0].reason.starts_with(&format!(
            "silenced: silence {} by alice (db failover) until 2026-11-20T03:00:00.000Z",
            silence.id
        )),
        "{}",
        sup[0].reason
    );
    // Another alert is not held.
    let other = feed(&p, vec![firing("payments-api", "2026-11-20T02:11:00Z")]).await;
    assert_eq!(notifications_for(&other, "payments-api").len(), 1);
    p.bus.take_deliveries();

    let reminder = p.run_timers(Some(t("2026-11-20T02:45:00Z"))).await.unwrap();
    let notes = of(&reminder, Action::Notify);
    assert_eq!(notes.len(), 1, "{reminder:#?}");
    assert_eq!(notes[0].alert, format!("silence-{}", silence.id));
    assert!(
        notes[0]
            .reason
            .starts_with(&format!("reminder: silence {} ends in 15m00s", silence.id))
    );
    assert_eq!(p.bus.take_deliveries()[0].target.target, "#ops");

    let end = p.run_timers(Some(t("2026-11-20T03:00:00Z"))).await.unwrap();
    let paged = notifications_for(&end, "payments-db");
    assert_eq!(paged.len(), 1, "{end:#?}");
    assert!(
        paged[0]
            .reason
            .starts_with(&format!("silence {} no longer holds it", silence.id))
    );
}

#[tokio::test]
async fn expiring_a_silence_early_pages_what_it_held_at_once_and_bad_requests_are_refused() {
    let p = pipeline();
    p.clock.set(t("2026-11-20T02:00:00Z"));
    let bad = p
        .router
        .create_silence(NewSilence {
            matchers: vec!["alarm_name =~ \"(\"".into()],
            created_by: "alice".into(),
            comment: String::new(),
            starts_at: None,
            ends_at: t("2026-11-20T03:00:00Z"),
        })
        .await
        .unwrap_err();
    assert!(
        bad.to_string().starts_with("matcher 1: invalid regex `(`"),
        "{bad}"
    );
    let past = p
        .router
        .create_silence(NewSilence {
            matchers: vec!["alarm_name = x".into()],
            created_by: "alice".into(),
            comment: String::new(),
            starts_at: None,
            ends_at: t("2026-11-20T01:00:00Z"),
        })
        .await
        .unwrap_err();
    assert!(
        past.to_string().contains("must end after it starts"),
        "{past}"
    );

    let (silence, _) = p
        .router
        .create_silence(NewSilence {
            matchers: vec!["service = payments".into()],
            created_by: "alice".into(),
            comment: "maintenance".into(),
            starts_at: None,
            ends_at: t("2026-11-20T04:00:00Z"),
        })
        .await
        .unwrap();
    feed(&p, vec![firing("payments-db", "2026-11-20T02:10:00Z")]).await;
    p.clock.set(t("2026-11-20T02:20:00Z"));
    let (expired, _) = p.router.expire_silence(&silence.id, "bob").await.unwrap();
    assert_eq!(expired.expired_at, Some(t("2026-11-20T02:20:00Z")));
    let released = p.run_timers(Some(t("2026-11-20T02:20:00Z"))).await.unwrap();
    let paged = notifications_for(&released, "payments-db");
    assert_eq!(paged.len(), 1, "{released:#?}");
    assert_eq!(paged[0].at, t("2026-11-20T02:20:00Z"));
    assert!(p.router.list_silences(true).await.unwrap().is_empty());
    assert_eq!(p.router.list_silences(false).await.unwrap().len(), 1);
    // The reminder went with the silence.
    let rest = p.run_timers(None).await.unwrap();
    assert!(of(&rest, Action::Notify).is_empty(), "{rest:#?}");
}

#[tokio::test]
async fn a_composite_alarm_inhibits_its_services_children_until_it_resolves() {
    let p = pipeline();
    // Another service's alarm is not inhibited: the equal labels differ.
    let other = feed(&p, vec![firing("search-api", "2026-11-20T01:55:00Z")]).await;
    let mut composite = firing("payments-composite", "2026-11-20T02:00:00Z");
    composite.kind = "composite".into();
    let opened = feed(&p, vec![composite]).await;
    assert_eq!(notifications_for(&opened, "payments-composite").len(), 1);
    let child = feed(&p, vec![firing("payments-latency", "2026-11-20T02:01:00Z")]).await;
    let sup = of(&child, Action::Suppress);
    assert_eq!(
        sup[0].reason,
        "inhibited by rule \"composite-mutes-children\": payments-composite is firing with equal {service=\"payments\"}; paged when it resolves if still firing"
    );
    assert!(notifications_for(&child, "payments-latency").is_empty());
    assert_eq!(notifications_for(&other, "search-api").len(), 1);

    let mut recovered = ok("payments-composite", "2026-11-20T02:10:00Z");
    recovered.kind = "composite".into();
    let resolved = feed(&p, vec![recovered]).await;
    assert!(resolved.iter().any(|e| {
        e.reason
            .starts_with("inhibit rule \"composite-mutes-children\" lets go of 1 held alert")
    }));
    let released = p.run_timers(Some(t("2026-11-20T02:10:00Z"))).await.unwrap();
    let paged = notifications_for(&released, "payments-latency");
    assert_eq!(paged.len(), 1, "{released:#?}");
    assert!(
        paged[0]
            .reason
            .starts_with("inhibit rule \"composite-mutes-children\" no longer holds it")
    );
}

#[tokio::test]
async fn a_flapping_alarm_pages_once_as_flapping_and_once_when_it_settles() {
    let p = pipeline();
    let mut all = Vec::new();
    for i in 0..10 {
        let at = format!("2026-11-20T02:0{i}:00Z");
        let a = if i % 2 == 0 {
            firing("flappy-disk", &at)
        } else {
            ok("flappy-disk", &at)
        };
        all.extend(p.ingest(a).await.unwrap());
    }
    let notes = notifications_for(&all, "flappy-disk");
    // Four changes act as usual (open, resolve, open, resolve: four pages); the fifth pages as flapping.
    assert_eq!(notes.len(), 5, "{all:#?}");
    assert!(
        notes[4].reason.starts_with("flapping: 5 changes in 10m00s"),
        "{}",
        notes[4].reason
    );
    assert_eq!(notes[4].at, t("2026-11-20T02:04:00Z"));
    let damped: Vec<_> = of(&all, Action::Suppress)
        .into_iter()
        .filter(|e| {
            e.reason
                .starts_with("flapping since 2026-11-20T02:04:00.000Z")
        })
        .collect();
    assert_eq!(damped.len(), 5, "02:05 to 02:09 are recorded, not acted on");
    assert!(
        damped.iter().all(|e| e.alert == notes[4].alert),
        "the flapping episode's decisions share one trail"
    );
    // Settles 10 minutes after the last change, resolved: one page.
    let settled = p.run_timers(None).await.unwrap();
    let notes = notifications_for(&settled, "flappy-disk");
    assert_eq!(notes.len(), 1, "{settled:#?}");
    assert_eq!(notes[0].at, t("2026-11-20T02:19:00Z"));
    assert!(
        notes[0]
            .reason
            .starts_with("settled resolved after flapping since 2026-11-20T02:04:00.000Z"),
        "{}",
        notes[0].reason
    );
    assert_eq!(
        p.bus.take_deliveries().last().unwrap().kind,
        DeliveryKind::Resolve
    );
    // A change after settling counts afresh: it acts as usual.
    let fresh = feed(&p, vec![firing("flappy-disk", "2026-11-20T02:40:00Z")]).await;
    assert_eq!(of(&fresh, Action::Open).len(), 1);
}

#[tokio::test]
async fn a_flapping_alarm_sets_no_timer_per_change_and_still_settles_after_its_last_change() {
    let p = pipeline();
    // Five changes: flapping from the fifth (02:00:40), which arms the settle timer.
    feed(&p, (0..5).map(flappy_disk_change).collect()).await;
    let armed = p.scheduler.set_so_far();
    // Forty more changes every 10 seconds, to 02:07:20: recorded, and not one more timer set (on AWS
    // each would have been a DeleteSchedule and a CreateSchedule).
    let damped = feed(&p, (5..45).map(flappy_disk_change).collect()).await;
    assert_eq!(of(&damped, Action::Suppress).len(), 40, "{damped:#?}");
    assert_eq!(p.scheduler.set_so_far(), armed);
    // The timer armed for 02:10:40 finds the changes and waits on to 02:17:20, ten minutes after the
    // last change (02:07:20): one more timer, and it settles firing (i = 44 is even) with nothing
    // open, so the alert opens then and pages its one target.
    let settled = p.run_timers(None).await.unwrap();
    assert_eq!(
        p.scheduler.set_so_far() - armed,
        1,
        "the settle timer, set once more (route everything escalates to no one)"
    );
    let opened = of(&settled, Action::Open);
    assert_eq!(opened.len(), 1, "{settled:#?}");
    assert_eq!(opened[0].at, t("2026-11-20T02:17:20Z"));
    assert!(
        opened[0]
            .reason
            .starts_with("settled firing after flapping since 2026-11-20T02:00:40.000Z"),
        "{}",
        opened[0].reason
    );
    assert_eq!(
        notifications_for(&settled, "flappy-disk").len(),
        1,
        "{settled:#?}"
    );
}

#[tokio::test]
async fn a_flapping_alarms_state_keeps_only_the_changes_that_can_decide() {
    use tocsin_core::noise::{NoiseBody, flap_key};
    use tocsin_core::ports::AlertStore;
    let p = pipeline();
    let changes: Vec<Alert> = (0..45).map(flappy_disk_change).collect();
    let key = flap_key(&changes[0].fingerprint);
    let damped = feed(&p, changes).await;
    // Flapping from the fifth change (more than 4 in 10 minutes); every later one is damped.
    assert_eq!(of(&damped, Action::Suppress).len(), 41, "{damped:#?}");
    let state = p.store.noise_state(&key).await.unwrap().unwrap();
    let NoiseBody::Flap(flap) = state.body else {
        panic!("not a flap state: {state:?}")
    };
    // 45 changes in 7 minutes 20 seconds, all inside the 10-minute window: only the latest
    // max_changes + 1 = 5 are kept.
    let kept: Vec<DateTime<Utc>> = ["02:06:40", "02:06:50", "02:07:00", "02:07:10", "02:07:20"]
        .iter()
        .map(|hms| t(&format!("2026-11-20T{hms}Z")))
        .collect();
    assert_eq!(flap.changes, kept);
}

#[tokio::test]
async fn explain_says_why_an_alert_did_or_did_not_page() {
    let p = pipeline();
    let mut all = feed(
        &p,
        vec![
            firing("search-errors", "2026-11-20T01:50:00Z"),
            firing("search-latency", "2026-11-20T02:10:00Z"),
            ok("search-latency", "2026-11-20T02:20:00Z"),
        ],
    )
    .await;
    all.extend(p.run_timers(None).await.unwrap());
    let held = explain(&all, "search-latency");
    assert_eq!(held.len(), 1);
    assert!(!held[0].paged);
    assert!(
        held[0]
            .verdict
            .starts_with("not paged: suppress — in maintenance window \"search-deploy\""),
        "{}",
        held[0].verdict
    );
    let paged = explain(&all, "search-errors");
    assert!(paged[0].paged);
    assert!(
        paged[0]
            .verdict
            .starts_with("paged: 1 notification(s), first at 2026-11-20T01:50:00.000Z"),
        "{}",
        paged[0].verdict
    );
    // By id prefix too.
    let by_id = explain(&all, &paged[0].alert[..8]);
    assert_eq!(by_id[0].alert, paged[0].alert);
    assert!(explain(&all, "no-such-alarm").is_empty());
}

#[tokio::test]
async fn a_flapping_alarm_on_a_grouping_route_is_told_of_in_its_groups_next_notification() {
    let p = pipeline();
    let mut all = Vec::new();
    for i in 0..5 {
        let at = format!("2026-11-20T02:0{i}:00Z");
        let a = if i % 2 == 0 {
            firing("checkout-disk", &at)
        } else {
            ok("checkout-disk", &at)
        };
        all.extend(p.ingest(a).await.unwrap());
    }
    let flap = of(&all, Action::Group)
        .into_iter()
        .find(|e| e.reason.starts_with("flapping: 5 changes"))
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert!(
        flap.reason.ends_with("told in the next notification of group {service=\"checkout\"} on route \"checkout-grouped\" at 2026-11-20T02:05:30.000Z"),
        "{}",
        flap.reason
    );
    let later = p.run_timers(Some(t("2026-11-20T02:05:30Z"))).await.unwrap();
    let notes = of(&later, Action::Notify);
    assert_eq!(notes.len(), 1, "{later:#?}");
    assert!(
        notes[0]
            .reason
            .starts_with("1 resolved, 1 flapping: group {service=\"checkout\"}")
            && notes[0]
                .reason
                .ends_with("; resolved: checkout-disk; flapping: checkout-disk"),
        "{}",
        notes[0].reason
    );
}

#[tokio::test]
async fn a_silence_made_after_an_alert_paged_holds_its_escalation_until_the_silence_ends() {
    let p = pipeline();
    let opened = feed(&p, vec![firing("payments-5xx", "2026-11-20T02:00:00Z")]).await;
    assert_eq!(of(&opened, Action::Notify).len(), 2, "{opened:?}");
    p.bus.take_deliveries();
    p.clock.set(t("2026-11-20T02:05:00Z"));
    let silence = silence_alarm(&p, "payments-5xx", "2026-11-20T02:40:00Z").await;
    let fired = p.run_timers(Some(t("2026-11-20T02:39:00Z"))).await.unwrap();
    assert!(of(&fired, Action::Escalate).is_empty(), "{fired:?}");
    let held = of(&fired, Action::Suppress);
    assert_eq!(held.len(), 1, "{fired:?}");
    assert_eq!(held[0].at, t("2026-11-20T02:15:00Z"));
    assert!(
        held[0]
            .reason
            .starts_with(&format!("escalation step 1 held by silence {}", silence)),
        "{}",
        held[0].reason
    );
    assert!(
        held[0]
            .reason
            .ends_with("tried again at 2026-11-20T02:40:00.000Z")
    );
    let sent = p.bus.take_deliveries();
    assert!(
        sent.iter().all(|j| j.alert.alarm_name != "payments-5xx"),
        "nobody paged while silenced (the silence's own reminder may go out): {sent:?}"
    );

    let after = p.run_timers(Some(t("2026-11-20T02:41:00Z"))).await.unwrap();
    let esc = of(&after, Action::Escalate);
    assert_eq!(esc.len(), 1, "{after:?}");
    assert_eq!(esc[0].at, t("2026-11-20T02:40:00Z"));
    assert_eq!(esc[0].target.as_deref(), Some("bob"));
}

#[tokio::test]
async fn an_escalation_held_by_a_silence_ends_when_the_alert_resolves_meanwhile() {
    let p = pipeline();
    feed(&p, vec![firing("payments-5xx", "2026-11-20T02:00:00Z")]).await;
    p.clock.set(t("2026-11-20T02:05:00Z"));
    silence_alarm(&p, "payments-5xx", "2026-11-20T02:40:00Z").await;
    feed(&p, vec![ok("payments-5xx", "2026-11-20T02:30:00Z")]).await;
    p.bus.take_deliveries();
    let rest = p.run_timers(Some(t("2026-11-20T03:00:00Z"))).await.unwrap();
    assert!(of(&rest, Action::Escalate).is_empty(), "{rest:?}");
    assert!(p.bus.take_deliveries().is_empty());
}

#[tokio::test]
async fn a_grouped_alert_silenced_before_its_group_speaks_is_left_out_and_told_when_the_silence_ends()
 {
    let p = pipeline();
    feed(
        &p,
        vec![
            firing("checkout-latency", "2026-11-20T02:00:00Z"),
            firing("checkout-errors", "2026-11-20T02:00:05Z"),
        ],
    )
    .await;
    p.clock.set(t("2026-11-20T02:00:10Z"));
    let silence = silence_alarm(&p, "checkout-latency", "2026-11-20T02:20:00Z").await;
    let first = p.run_timers(Some(t("2026-11-20T02:01:00Z"))).await.unwrap();
    let told = of(&first, Action::Notify);
    assert_eq!(told.len(), 1, "{first:?}");
    assert!(
        told[0].reason.starts_with("+1 firing"),
        "{}",
        told[0].reason
    );
    assert!(told[0].reason.contains("new: checkout-errors"));
    assert!(
        !told[0].reason.contains("checkout-latency"),
        "{}",
        told[0].reason
    );
    let left: Vec<_> = of(&first, Action::Suppress)
        .into_iter()
        .filter(|e| e.alarm_name == "checkout-latency")
        .collect();
    assert_eq!(left.len(), 1, "{first:?}");
    assert_eq!(
        left[0].reason,
        format!(
            "left out of group {{service=\"checkout\"}} notification: held by silence {}; told when the hold ends if still firing",
            silence
        )
    );

    let later = p.run_timers(Some(t("2026-11-20T02:21:00Z"))).await.unwrap();
    let told: Vec<_> = of(&later, Action::Notify)
        .into_iter()
        .filter(|e| e.reason.contains("checkout-latency"))
        .collect();
    assert_eq!(told.len(), 1, "{later:?}");
    assert_eq!(told[0].at, t("2026-11-20T02:20:00Z"));
    assert!(
        told[0].reason.starts_with("+1 firing"),
        "{}",
        told[0].reason
    );
}

/// A hold a group's flush finds beyond silences: an inhibition begun after its members joined. The
/// rule's `equal` is the group's own label, so the flush reads that inhibition and, finding a
/// source, reads the members' alerts to see which it holds (a flush that finds none reads no
/// member's alert: `tests/group_scale.rs`).
#[tokio::test]
async fn grouped_alerts_inhibited_after_joining_are_left_out_of_their_groups_notification() {
    let p = pipeline();
    feed(
        &p,
        vec![
            firing("checkout-latency", "2026-11-20T02:00:00Z"),
            firing("checkout-errors", "2026-11-20T02:00:01Z"),
        ],
    )
    .await;
    let mut composite = firing("checkout-composite", "2026-11-20T02:00:10Z");
    composite.kind = "composite".into();
    feed(&p, vec![composite]).await;
    let first = p.run_timers(Some(t("2026-11-20T02:01:00Z"))).await.unwrap();
    let told = of(&first, Action::Notify);
    assert_eq!(told.len(), 1, "{first:?}");
    assert!(
        told[0].reason.contains("checkout-composite"),
        "{}",
        told[0].reason
    );
    for held in ["checkout-latency", "checkout-errors"] {
        assert!(!told[0].reason.contains(held), "{}", told[0].reason);
        let left: Vec<_> = of(&first, Action::Suppress)
            .into_iter()
            .filter(|e| e.alarm_name == held && e.reason.starts_with("left out of group"))
            .collect();
        assert_eq!(left.len(), 1, "{held}: {first:?}");
        assert!(
            left[0]
                .reason
                .contains("held by inhibit rule \"composite-mutes-children\""),
            "{}",
            left[0].reason
        );
    }
}

/// Two critical alarms of one service at the same instant each flush their group at once
/// (critical bypasses group_wait): two notifications saying different things, with different
/// delivery ids. With one id (the group and the instant) the second was taken for the first by the
/// deliver function's claim and never sent, and its alarm was never told in the group.
#[tokio::test]
async fn two_flushes_of_one_group_at_one_instant_are_two_deliveries() {
    let p = pipeline();
    p.clock.set(t("2026-11-20T02:00:00Z"));
    feed(
        &p,
        vec![
            firing("checkout-5xx-a", "2026-11-20T02:00:00Z"),
            firing("checkout-5xx-b", "2026-11-20T02:00:00Z"),
        ],
    )
    .await;
    let group: Vec<_> = p
        .bus
        .take_deliveries()
        .into_iter()
        .filter(|j| j.target.channel == "ops-slack" && j.alert.reason.contains("group"))
        .collect();
    assert_eq!(group.len(), 2, "{group:#?}");
    assert!(
        group[1].alert.reason.contains("new: checkout-5xx-b"),
        "{}",
        group[1].alert.reason
    );
    assert_ne!(group[0].delivery_id, group[1].delivery_id);
}
