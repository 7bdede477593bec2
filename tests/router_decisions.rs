//! The router's decisions on the embedded default: dedup, one open alert per fingerprint, resolution to
//! the same targets, INSUFFICIENT_DATA as configured, muting windows, escalation on the virtual clock.
//! Every decision carries its reason.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;

use chrono::Duration;
use tocsin_core::config::Config;
use tocsin_core::model::{AlarmState, Severity};
use tocsin_core::ports::AlertStore;
use tocsin_core::record::{Action, AuditEntry, DeliveryKind, EscalationTick, Status};
use tocsin_core::router::{alert_id_for, timer_name};
use tocsin_local::Embedded;
use tocsin_tests::{alert, cloudwatch_alarm as alarm, config_from, example_config, t};

const CONFIG: &str = r##"
defaults:
  insufficient_data: ignore
services:
  - name: checkout
    team: payments
    tier: 1
    match: ['alarm_name =~ "checkout-.*"']
severity_rules:
  - severity: critical
    match: ['alarm_name =~ ".*-5xx.*"']
channels:
  ops-slack: {type: slack, webhook_url: {env: SLACK_WEBHOOK_URL}, default_to: ["#ops"]}
  oncall-sms: {type: sms}
  oncall-email: {type: email, from: "tocsin@example.com"}
people:
  alice: {email: alice@example.com, phone: "+447700900001"}
  bob: {email: bob@example.com, phone: "+447700900002"}
time_windows:
  never: {weekdays: [sat], times: ["00:00-00:01"]}
  always: {times: ["00:00-23:59"]}
escalation_policies:
  critical:
    levels:
      - delay: 0m
        targets: [{person: alice}]
        channels: [oncall-sms]
      - delay: 15m
        targets: [{person: bob}]
        channels: [oncall-sms, oncall-email]
route:
  notify: [{channel: ops-slack}]
  routes:
    - name: critical
      match: ['severity = critical']
      notify: [{channel: oncall-email, to: [{person: alice}]}]
      escalation: critical
      continue: true
    - name: muted-search
      match: ['alarm_name =~ "search-.*"']
      muted_during: [always]
"##;

fn pipeline(config: Arc<Config>) -> Embedded {
    Embedded::new(config, t("2026-11-20T02:00:00Z"))
}

fn actions(entries: &[AuditEntry]) -> Vec<Action> {
    entries.iter().map(|e| e.action).collect()
}

fn targets(entries: &[AuditEntry], action: Action) -> Vec<(String, String)> {
    entries
        .iter()
        .filter(|e| e.action == action)
        .map(|e| (e.channel.clone().unwrap(), e.target.clone().unwrap()))
        .collect()
}

#[tokio::test]
async fn the_same_message_delivered_again_writes_only_its_failed_claim_and_stays_off_the_trail() {
    let p = tocsin_local::FaultyEmbedded::new(example_config(), t("2026-11-20T02:00:00Z"));
    let via_sns = alert("scenario/incident/01-checkout-5xx-alarm.sns.json");
    let first = p.router.handle(via_sns.clone()).await.unwrap();
    let id = first[0].alert.clone();
    p.faults.clear();
    let again = p.router.handle(via_sns.clone()).await.unwrap();
    assert_eq!(actions(&again), vec![Action::Dedup], "{again:?}");
    assert!(again[0].reason.contains("already processed (first via sns"));
    let writes: Vec<&str> = p.faults.writes().iter().map(|(w, _)| *w).collect();
    assert_eq!(writes, vec!["store.claim_event"], "the failed claim only");
    let trail = p.store.audit(&id).await.unwrap();
    assert!(
        !trail
            .iter()
            .any(|e| e.action == Action::Dedup && e.event_id.is_some()),
        "a redelivery is the platform's, not the alarm's: {trail:?}"
    );
    // The same transition by another way is the alarm's story: on the trail.
    let via_eb = alert("scenario/incident/02-checkout-5xx-alarm.eventbridge.json");
    p.router.handle(via_eb).await.unwrap();
    let trail = p.store.audit(&id).await.unwrap();
    let dedups: Vec<&AuditEntry> = trail
        .iter()
        .filter(|e| e.action == Action::Dedup && e.event_id.is_some())
        .collect();
    assert_eq!(dedups.len(), 1, "{trail:?}");
    assert!(dedups[0].reason.contains("first via sns"));
}

#[tokio::test]
async fn the_same_transition_via_sns_and_eventbridge_pages_once() {
    let p = pipeline(example_config());
    let via_sns = alert("scenario/incident/01-checkout-5xx-alarm.sns.json");
    let via_eb = alert("scenario/incident/02-checkout-5xx-alarm.eventbridge.json");
    assert_eq!(via_sns.event_id, via_eb.event_id);
    let first = p.ingest(via_sns).await.unwrap();
    assert_eq!(first[0].action, Action::Open);
    assert!(first.iter().any(|e| e.action == Action::Notify));
    let second = p.ingest(via_eb).await.unwrap();
    // Timer lines (escalation level 1, due at the same instant) carry no event id.
    let dedup: Vec<_> = second.iter().filter(|e| e.event_id.is_some()).collect();
    assert_eq!(dedup.len(), 1, "{second:?}");
    assert_eq!(dedup[0].action, Action::Dedup);
    assert!(
        dedup[0].reason.contains("already processed (first via sns"),
        "{}",
        dedup[0].reason
    );
    assert_eq!(
        dedup[0].alert, first[0].alert,
        "the dedup names the alert it went to"
    );
}

#[tokio::test]
async fn a_repeated_alarm_counts_and_does_not_page_again() {
    let p = pipeline(config_from(CONFIG));
    let open = p
        .ingest(alarm(
            "checkout-api-5xx",
            AlarmState::Alarm,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    let jobs_after_open = p.bus.take_deliveries().len();
    assert!(jobs_after_open > 0);
    let repeat = p
        .ingest(alarm(
            "checkout-api-5xx",
            AlarmState::Alarm,
            "2026-11-20T02:14:00Z",
        ))
        .await
        .unwrap();
    let repeat: Vec<_> = repeat
        .into_iter()
        .filter(|e| e.action != Action::Escalate)
        .collect();
    assert_eq!(actions(&repeat), vec![Action::Repeat]);
    assert!(
        repeat[0].reason.contains("2 firing transitions"),
        "{}",
        repeat[0].reason
    );
    assert_eq!(repeat[0].alert, open[0].alert);
    assert!(
        p.bus
            .take_deliveries()
            .iter()
            .all(|j| j.kind == DeliveryKind::Escalation)
    );
    let rec = p.store.alerts().remove(0);
    assert_eq!(rec.occurrences, 2);
}

#[tokio::test]
async fn ok_resolves_the_alert_and_tells_the_same_targets() {
    let p = pipeline(config_from(CONFIG));
    let open = p
        .ingest(alarm(
            "checkout-api-5xx",
            AlarmState::Alarm,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    let mut paged = targets(&open, Action::Notify);
    // Both levels page before the recovery (02:10 and 02:25).
    let escalated = p.run_timers(Some(t("2026-11-20T02:31:00Z"))).await.unwrap();
    paged.extend(targets(&escalated, Action::Escalate));
    assert_eq!(paged.len(), 4, "{paged:?}");
    p.bus.take_deliveries();
    let ok = p
        .ingest(alarm(
            "checkout-api-5xx",
            AlarmState::Ok,
            "2026-11-20T02:31:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(ok[0].action, Action::Resolve);
    assert!(ok[0].reason.contains("open for 21m00s"), "{}", ok[0].reason);
    let mut told = targets(&ok, Action::Notify);
    told.sort();
    paged.sort();
    assert_eq!(told, paged, "the resolution reaches everyone who was paged");
    let jobs = p.bus.take_deliveries();
    assert!(jobs.iter().all(|j| j.kind == DeliveryKind::Resolve));
    assert_eq!(jobs.len(), told.len());
    assert_eq!(p.store.alerts()[0].status, Status::Resolved);
}

#[tokio::test]
async fn ok_with_nothing_open_is_recorded_not_sent() {
    let p = pipeline(config_from(CONFIG));
    let out = p
        .ingest(alarm(
            "checkout-api-5xx",
            AlarmState::Ok,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(actions(&out), vec![Action::Suppress]);
    assert!(
        out[0].reason.contains("no alert is open"),
        "{}",
        out[0].reason
    );
    assert!(p.bus.take_deliveries().is_empty());
}

#[tokio::test]
async fn insufficient_data_follows_the_config() {
    let ignore = pipeline(config_from(CONFIG));
    let out = ignore
        .ingest(alarm(
            "checkout-db",
            AlarmState::InsufficientData,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(actions(&out), vec![Action::Suppress]);
    assert!(out[0].reason.contains("insufficient_data: ignore"));

    let notify = pipeline(config_from(
        &CONFIG.replace("insufficient_data: ignore", "insufficient_data: notify"),
    ));
    let out = notify
        .ingest(alarm(
            "checkout-db",
            AlarmState::InsufficientData,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(out[0].action, Action::Open);

    let resolve = pipeline(config_from(
        &CONFIG.replace("insufficient_data: ignore", "insufficient_data: resolve"),
    ));
    resolve
        .ingest(alarm(
            "checkout-db",
            AlarmState::Alarm,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    let out = resolve
        .ingest(alarm(
            "checkout-db",
            AlarmState::InsufficientData,
            "2026-11-20T02:12:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(out[0].action, Action::Resolve);
}

#[tokio::test]
async fn an_alarm_after_resolve_opens_a_new_occurrence_linked_to_the_previous() {
    let p = pipeline(config_from(CONFIG));
    let a1 = alarm("checkout-db", AlarmState::Alarm, "2026-11-20T02:10:00Z");
    let first_id = alert_id_for(&a1);
    p.ingest(a1).await.unwrap();
    p.ingest(alarm("checkout-db", AlarmState::Ok, "2026-11-20T02:20:00Z"))
        .await
        .unwrap();
    let again = p
        .ingest(alarm(
            "checkout-db",
            AlarmState::Alarm,
            "2026-11-20T02:30:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(again[0].action, Action::Open);
    assert_ne!(again[0].alert, first_id);
    assert!(
        again[0]
            .reason
            .contains(&format!("follows occurrence {first_id}"))
    );
    let latest = p.store.alerts().remove(0);
    assert_eq!(latest.previous.as_deref(), Some(first_id.as_str()));
}

#[tokio::test]
async fn critical_alerts_take_the_critical_route_and_not_the_parents_own_notify() {
    let p = pipeline(config_from(CONFIG));
    let out = p
        .ingest(alarm(
            "checkout-api-5xx",
            AlarmState::Alarm,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(out[0].severity, Severity::Critical);
    assert!(
        out[0].reason.contains("service checkout"),
        "{}",
        out[0].reason
    );
    assert!(out[0].reason.contains("P1"), "{}", out[0].reason);
    let mut got = targets(&out, Action::Notify);
    got.sort();
    // As in Alertmanager: a node some child takes does not notify on its own; `continue` only lets
    // later siblings take the alert too (here none matches).
    assert_eq!(got, vec![("oncall-email".to_string(), "alice".to_string())]);
    let other = p
        .ingest(alarm(
            "billing-queue-depth",
            AlarmState::Alarm,
            "2026-11-20T02:11:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(
        targets(&other, Action::Notify),
        vec![("ops-slack".to_string(), "#ops".to_string())],
        "an alert no child takes falls to the root's catch-all"
    );
}

#[tokio::test]
async fn a_route_muted_by_a_time_window_pages_nobody_and_says_why() {
    let p = pipeline(config_from(CONFIG));
    let out = p
        .ingest(alarm(
            "search-latency-p99",
            AlarmState::Alarm,
            "2026-11-20T02:16:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(out[0].action, Action::Open);
    assert!(out.iter().all(|e| e.action != Action::Notify));
    let muted: Vec<_> = out
        .iter()
        .filter(|e| e.action == Action::Suppress)
        .collect();
    assert!(
        muted
            .iter()
            .any(|e| e.reason.contains("muted by time window \"always\"")),
        "{out:?}"
    );
    assert!(p.bus.take_deliveries().is_empty());
}

#[tokio::test]
async fn unacknowledged_critical_alerts_escalate_at_their_virtual_times() {
    let p = pipeline(config_from(CONFIG));
    p.ingest(alarm(
        "checkout-api-5xx",
        AlarmState::Alarm,
        "2026-11-20T02:10:00Z",
    ))
    .await
    .unwrap();
    let esc = p.run_timers(None).await.unwrap();
    let lines: Vec<_> = esc
        .iter()
        .map(|e| (e.at, e.level, e.channel.clone(), e.target.clone()))
        .collect();
    let at = t("2026-11-20T02:10:00Z");
    assert_eq!(
        lines,
        vec![
            (at, Some(1), Some("oncall-sms".into()), Some("alice".into())),
            (
                at + Duration::minutes(15),
                Some(2),
                Some("oncall-sms".into()),
                Some("bob".into())
            ),
            (
                at + Duration::minutes(15),
                Some(2),
                Some("oncall-email".into()),
                Some("bob".into())
            ),
        ]
    );
    assert!(
        esc.iter()
            .all(|e| e.action == Action::Escalate && !e.reason.is_empty())
    );
}

/// Level 1 of the example's critical policy comes at once and names the on-call person, whom the
/// critical route pages itself: the opening says so ("already paged, not paged twice"), sets step 1
/// as done and schedules step 2 at its delay. No step-1 timer fires a moment later only to say it
/// (one schedule, one escalate invocation and its writes per critical alert, before).
#[tokio::test]
async fn a_first_level_the_opening_paged_itself_is_done_within_the_opening() {
    let p = pipeline(example_config());
    let opened = p
        .ingest(alert("scenario/incident/01-checkout-5xx-alarm.sns.json"))
        .await
        .unwrap();
    let id = opened[0].alert.clone();
    let l1: Vec<&AuditEntry> = opened
        .iter()
        .filter(|e| e.action == Action::Dedup && e.level == Some(1))
        .collect();
    assert_eq!(l1.len(), 1, "{opened:?}");
    assert!(
        l1[0].reason.contains(
            "level 1: already paged, not paged twice: oncall-sms → carol, oncall-email → carol"
        ),
        "{}",
        l1[0].reason
    );
    let rec = p.store.get_alert(&id).await.unwrap().unwrap();
    assert_eq!(rec.escalation_step, 1);
    let opened_at = rec.opened_at;
    let far = opened_at + Duration::days(1);
    let timers: Vec<(chrono::DateTime<chrono::Utc>, String)> =
        std::iter::from_fn(|| p.scheduler.pop_due(far))
            .map(|(at, name, _)| (at, name))
            .collect();
    assert!(
        !timers.iter().any(|(_, n)| *n == timer_name(&id, 1)),
        "{timers:?}"
    );
    assert!(
        timers.contains(&(opened_at + Duration::minutes(15), timer_name(&id, 2))),
        "{timers:?}"
    );
}

/// A first level that names someone the opening does not page (here alice by SMS, where the route
/// emails her) keeps its own step: its timer fires at once and pages her.
#[tokio::test]
async fn a_first_level_naming_someone_the_opening_did_not_page_keeps_its_step() {
    let p = pipeline(config_from(CONFIG));
    let opened = p
        .ingest(alarm(
            "checkout-api-5xx",
            AlarmState::Alarm,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    let id = opened[0].alert.clone();
    assert!(!opened.iter().any(|e| e.level.is_some()), "{opened:?}");
    let at = t("2026-11-20T02:10:00Z");
    let due: Vec<String> = std::iter::from_fn(|| p.scheduler.pop_due(at))
        .map(|(_, name, _)| name)
        .collect();
    assert_eq!(due, vec![timer_name(&id, 1)]);
}

#[tokio::test]
async fn acknowledging_stops_escalation() {
    let p = pipeline(config_from(CONFIG));
    let open = p
        .ingest(alarm(
            "checkout-api-5xx",
            AlarmState::Alarm,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    p.run_timers(Some(t("2026-11-20T02:10:00Z"))).await.unwrap();
    p.clock.set(t("2026-11-20T02:12:00Z"));
    let ack = p.router.acknowledge(&open[0].alert, "bob").await.unwrap();
    assert_eq!(ack[0].action, Action::Ack);
    assert_eq!(ack[0].reason, "acknowledged by bob");
    // Everyone paged hears who acknowledged (the one who acked is not messaged about it).
    let mut told = targets(&ack, Action::Notify);
    told.sort();
    assert_eq!(
        told,
        vec![
            ("oncall-email".to_string(), "alice".to_string()),
            ("oncall-sms".to_string(), "alice".to_string())
        ]
    );
    let jobs = p.bus.take_deliveries();
    assert_eq!(
        jobs.iter()
            .filter(|j| j.kind == DeliveryKind::Acknowledge)
            .count(),
        2
    );
    let self_ack = p.router.acknowledge(&open[0].alert, "bob").await;
    assert!(p.bus.take_deliveries().is_empty());
    assert_eq!(
        self_ack.unwrap_err().to_string(),
        format!(
            "cannot ack alert {}: it is acknowledged (by bob)",
            open[0].alert
        )
    );
    let rest = p.run_timers(None).await.unwrap();
    assert!(
        rest.iter().all(|e| e.action != Action::Escalate),
        "{rest:?}"
    );
    assert_eq!(p.scheduler.pending(), 0, "the level-2 timer was cancelled");
}

/// The critical alarm opened at 02:10, its level-1 step fired (already paged), its jobs taken.
async fn opened_past_level_one() -> (Embedded, Vec<AuditEntry>) {
    let p = pipeline(config_from(CONFIG));
    let open = p
        .ingest(alarm(
            "checkout-api-5xx",
            AlarmState::Alarm,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    p.run_timers(Some(t("2026-11-20T02:10:00Z"))).await.unwrap();
    p.bus.take_deliveries();
    (p, open)
}

#[tokio::test]
async fn a_late_or_doubled_escalation_timer_pages_once() {
    let (p, open) = opened_past_level_one().await;
    let tick = EscalationTick {
        alert_id: open[0].alert.clone(),
        step: 1,
        ack_timer: None,
        noise: None,
    };
    let again = p.router.on_timer(&tick.into()).await.unwrap();
    assert_eq!(actions(&again), vec![Action::Dedup]);
    assert!(p.bus.take_deliveries().is_empty());
}

#[tokio::test]
async fn every_decision_in_the_demo_incident_carries_a_reason() {
    let p = pipeline(example_config());
    let dir = tocsin_tests::root().join("events/scenario/incident");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        let a = tocsin_core::source::parse(&std::fs::read(&f).unwrap()).unwrap();
        for a in a {
            all.extend(p.ingest(a).await.unwrap());
        }
    }
    all.extend(p.run_timers(None).await.unwrap());
    assert!(all.iter().all(|e| !e.reason.trim().is_empty()));
    let kinds: std::collections::BTreeSet<_> = all.iter().map(|e| e.action).collect();
    for a in [
        Action::Open,
        Action::Notify,
        Action::Dedup,
        Action::Repeat,
        Action::Resolve,
    ] {
        assert!(kinds.contains(&a), "the incident shows {a}: {kinds:?}");
    }
}

fn with_ack_timeout() -> Arc<Config> {
    let text = CONFIG.replace(
        "  critical:\n    levels:",
        "  critical:\n    ack_timeout: 30m\n    levels:",
    );
    assert_ne!(text, CONFIG);
    config_from(&text)
}

#[tokio::test]
async fn an_acknowledgement_left_unresolved_past_the_timeout_retriggers_and_escalation_goes_on() {
    let p = pipeline(with_ack_timeout());
    let open = p
        .ingest(alarm(
            "checkout-api-5xx",
            AlarmState::Alarm,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    let id = open[0].alert.clone();
    p.run_timers(Some(t("2026-11-20T02:10:00Z"))).await.unwrap();
    p.clock.set(t("2026-11-20T02:12:00Z"));
    p.router.acknowledge(&id, "bob").await.unwrap();
    p.bus.take_deliveries();
    let later = p.run_timers(None).await.unwrap();
    let retrigger = later
        .iter()
        .find(|e| e.action == Action::Retrigger)
        .unwrap();
    assert_eq!(
        retrigger.at,
        t("2026-11-20T02:42:00Z"),
        "30 minutes after the ack"
    );
    assert!(
        retrigger.reason.contains("acknowledged by bob"),
        "{}",
        retrigger.reason
    );
    let repaged = targets(&later, Action::Notify);
    assert!(
        repaged.contains(&("oncall-sms".to_string(), "alice".to_string())),
        "{repaged:?}"
    );
    let l2: Vec<_> = later
        .iter()
        .filter(|e| e.action == Action::Escalate)
        .collect();
    assert!(!l2.is_empty());
    assert!(
        l2.iter()
            .all(|e| e.level == Some(2) && e.at == t("2026-11-20T02:57:00Z")),
        "{l2:?}"
    );
    assert_eq!(p.store.alerts()[0].status, Status::Open);
    let ids: std::collections::HashSet<_> = p
        .bus
        .take_deliveries()
        .into_iter()
        .map(|j| j.delivery_id)
        .collect();
    assert!(
        ids.len() >= repaged.len(),
        "re-pages are new deliveries, not deduplicated away"
    );
}

#[tokio::test]
async fn resolving_an_acknowledged_alert_cancels_its_ack_timeout() {
    let p = pipeline(with_ack_timeout());
    let open = p
        .ingest(alarm(
            "checkout-api-5xx",
            AlarmState::Alarm,
            "2026-11-20T02:10:00Z",
        ))
        .await
        .unwrap();
    p.run_timers(Some(t("2026-11-20T02:10:00Z"))).await.unwrap();
    p.clock.set(t("2026-11-20T02:12:00Z"));
    p.router.acknowledge(&open[0].alert, "bob").await.unwrap();
    assert_eq!(p.scheduler.pending(), 1, "the ack timeout is pending");
    p.ingest(alarm(
        "checkout-api-5xx",
        AlarmState::Ok,
        "2026-11-20T02:20:00Z",
    ))
    .await
    .unwrap();
    assert_eq!(p.scheduler.pending(), 0, "resolved: nothing left to fire");
    let rest = p.run_timers(None).await.unwrap();
    assert!(
        rest.iter().all(|e| e.action != Action::Retrigger),
        "{rest:?}"
    );
}

#[tokio::test]
async fn a_round_robin_level_takes_turns_across_repeats_of_the_policy() {
    let text = CONFIG.replace(
        "  critical:\n    levels:\n      - delay: 0m\n        targets: [{person: alice}]\n        channels: [oncall-sms]",
        "  critical:\n    repeat: 2\n    levels:\n      - delay: 0m\n        targets: [{person: alice}, {person: bob}]\n        channels: [oncall-sms]\n        mode: round_robin",
    );
    assert_ne!(text, CONFIG);
    let p = pipeline(config_from(&text));
    p.ingest(alarm(
        "billing-5xx",
        AlarmState::Alarm,
        "2026-11-20T02:10:00Z",
    ))
    .await
    .unwrap();
    let esc = p.run_timers(None).await.unwrap();
    let level1: Vec<_> = esc
        .iter()
        .filter(|e| e.action == Action::Escalate && e.level == Some(1))
        .map(|e| (e.at, e.target.clone().unwrap()))
        .collect();
    let at = t("2026-11-20T02:10:00Z");
    // Round 0 at once (alice); each repeat waits the policy's longest gap (15m) after the level before.
    assert_eq!(
        level1,
        vec![
            (at, "alice".to_string()),
            (at + Duration::minutes(30), "bob".to_string()),
            (at + Duration::minutes(60), "alice".to_string()),
        ]
    );
}

#[tokio::test]
async fn a_health_update_re_notifies_everyone_paged_only_when_its_content_changed() {
    let p = pipeline(config_from(CONFIG));
    let open = p.ingest(alert("health/issue-open.json")).await.unwrap();
    assert_eq!(actions(&open), vec![Action::Open, Action::Notify]);
    let first: Vec<_> = p.bus.take_deliveries();
    assert_eq!(first.len(), 1);

    let updated = p.ingest(alert("health/issue-updated.json")).await.unwrap();
    assert_eq!(actions(&updated), vec![Action::Repeat, Action::Notify]);
    assert!(
        updated[1]
            .reason
            .starts_with("content changed (health_digest)")
    );
    assert_eq!(
        targets(&updated, Action::Notify),
        targets(&open, Action::Notify)
    );
    let update_jobs = p.bus.take_deliveries();
    assert_eq!(update_jobs.len(), 1);
    assert_eq!(update_jobs[0].target, first[0].target);
    assert_ne!(
        update_jobs[0].delivery_id, first[0].delivery_id,
        "not taken for a retry"
    );
    assert_eq!(update_jobs[0].alert.labels["affected_entity_count"], "3");

    let resent = p
        .ingest(alert("health/issue-resent-unchanged.json"))
        .await
        .unwrap();
    assert_eq!(actions(&resent), vec![Action::Repeat]);
    assert!(p.bus.take_deliveries().is_empty());

    let closed = p.ingest(alert("health/issue-closed.json")).await.unwrap();
    assert_eq!(actions(&closed), vec![Action::Resolve, Action::Notify]);
}

#[tokio::test]
async fn a_cloudwatch_repeat_without_a_digest_is_never_re_notified() {
    let p = pipeline(config_from(CONFIG));
    p.ingest(alarm(
        "orders-db-cpu",
        AlarmState::Alarm,
        "2026-11-20T02:10:00Z",
    ))
    .await
    .unwrap();
    p.bus.take_deliveries();
    let mut again = alarm("orders-db-cpu", AlarmState::Alarm, "2026-11-20T02:14:00Z");
    again.description = "a different description".into();
    let repeat = p.ingest(again).await.unwrap();
    assert_eq!(actions(&repeat), vec![Action::Repeat]);
    assert!(p.bus.take_deliveries().is_empty());
}

#[tokio::test]
async fn timers_set_by_the_release_before_timer_was_one_enum_still_fire_after_an_upgrade() {
    use tocsin_core::record::Timer;
    let (p, open) = opened_past_level_one().await;
    // The escalation step 2 timer as the previous release stored it in Scheduler's Input.
    let stored = serde_json::json!({ "alert_id": open[0].alert, "step": 2 });
    let timer = Timer::from_json(stored).unwrap();
    assert_eq!(
        timer,
        Timer::Escalation {
            alert_id: open[0].alert.clone(),
            step: 2
        }
    );
    p.clock.set(t("2026-11-20T02:25:00Z"));
    let fired = p.router.on_timer(&timer).await.unwrap();
    assert_eq!(targets(&fired, Action::Escalate).len(), 2, "{fired:?}");
    // A noise timer of that release (a group flush) reads into its own kind.
    let flush = serde_json::json!({
        "alert_id": "group/everything/{}", "step": 0,
        "noise": { "kind": "group_flush", "group": "group/everything/{}", "seq": 3 }
    });
    assert_eq!(
        Timer::from_json(flush).unwrap(),
        Timer::GroupFlush {
            group: "group/everything/{}".into(),
            seq: 3,
            repeat: false
        }
    );
    // And today's form round-trips tagged.
    let now = serde_json::to_value(&timer).unwrap();
    assert_eq!(now["timer"], "escalation");
    assert_eq!(Timer::from_json(now).unwrap(), timer);
}
