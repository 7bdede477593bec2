//! The reminder before an AWS Health scheduled change starts (issue 9, `crates/core/src/remind.rs`),
//! on the virtual clock: set when the change is announced, sent to everyone told, and not sent when
//! the change was cancelled, started or moved.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::Duration;
use tocsin_core::model::{AlarmState, Alert, format_time, stable_id};
use tocsin_core::record::{Action, AuditEntry};
use tocsin_core::remind::REMINDER_LABEL;
use tocsin_local::Embedded;
use tocsin_tests::{alert, config_from, t};

const CONFIG: &str = r##"
defaults:
  health_reminder: 24h
channels:
  ops-slack: {type: slack, webhook_url: {env: SLACK_WEBHOOK_URL}, default_to: ["#ops"]}
  oncall-email: {type: email, from: "tocsin@example.com"}
people:
  alice: {email: alice@example.com}
route:
  notify: [{channel: ops-slack}]
  routes:
    - name: health
      match: ['source = health']
      notify: [{channel: oncall-email, to: [{person: alice}]}]
      continue: true
    - name: everything
"##;

/// The fixture's start: Thu, 3 Dec 2026 02:00:00 GMT.
const START: &str = "2026-12-03T02:00:00.000Z";

fn upcoming() -> Alert {
    alert("health/scheduled-change-upcoming.json")
}

/// A later update of the same event at `at`, as Health sends one: a new `lastUpdatedTime` (so a new
/// event id), the same digest unless the caller changes what it covers.
fn update(base: &Alert, at: &str, edit: impl FnOnce(&mut Alert)) -> Alert {
    let mut a = base.clone();
    a.state_changed_at = t(at);
    a.event_id = stable_id(&["test-update", &base.event_id, at]);
    edit(&mut a);
    a
}

fn pipeline(config: &str) -> Embedded {
    Embedded::new(config_from(config), t("2026-11-20T06:00:00Z"))
}

fn of(entries: &[AuditEntry], action: Action) -> Vec<&AuditEntry> {
    entries.iter().filter(|e| e.action == action).collect()
}

#[tokio::test]
async fn an_announced_change_reminds_everyone_told_a_day_before_it_starts() {
    let p = pipeline(CONFIG);
    let open = p.ingest(upcoming()).await.unwrap();
    let first = p.bus.take_deliveries();
    assert_eq!(first.len(), 2, "slack and alice's email: {open:?}");
    let note = of(&open, Action::Note);
    assert_eq!(note.len(), 1, "{open:?}");
    assert!(
        note[0]
            .reason
            .contains("reminder set for 2026-12-02T02:00:00.000Z"),
        "{}",
        note[0].reason
    );
    assert_eq!(p.scheduler.pending(), 1);

    let fired = p.run_timers(None).await.unwrap();
    let sent = of(&fired, Action::Notify);
    assert_eq!(sent.len(), 2, "{fired:?}");
    assert!(sent.iter().all(|e| e.at == t("2026-12-02T02:00:00Z")));
    assert!(
        sent[0].reason.contains("starts in 24h00m"),
        "{}",
        sent[0].reason
    );
    let jobs = p.bus.take_deliveries();
    let mut told: Vec<_> = jobs.iter().map(|j| j.target.clone()).collect();
    let mut before: Vec<_> = first.iter().map(|j| j.target.clone()).collect();
    told.sort_by(|a, b| (&a.channel, &a.target).cmp(&(&b.channel, &b.target)));
    before.sort_by(|a, b| (&a.channel, &a.target).cmp(&(&b.channel, &b.target)));
    assert_eq!(told, before, "the reminder goes to everyone told");
    for j in &jobs {
        assert!(first.iter().all(|f| f.delivery_id != j.delivery_id));
        assert_eq!(j.alert.labels[REMINDER_LABEL], START);
        assert!(
            j.alert
                .reason
                .starts_with("Reminder: scheduled change starts at")
        );
    }
}

#[tokio::test]
async fn a_change_cancelled_before_its_reminder_sends_none() {
    let p = pipeline(CONFIG);
    let a = upcoming();
    p.ingest(a.clone()).await.unwrap();
    p.bus.take_deliveries();
    let closed = update(&a, "2026-11-25T10:00:00Z", |c| {
        c.state = AlarmState::Ok;
        c.labels.insert("status_code".into(), "closed".into());
    });
    let out = p.ingest(closed).await.unwrap();
    assert_eq!(of(&out, Action::Resolve).len(), 1, "{out:?}");
    assert_eq!(p.scheduler.pending(), 0, "the reminder is cancelled");
    p.bus.take_deliveries();
    assert!(p.run_timers(None).await.unwrap().is_empty());
    assert!(p.bus.take_deliveries().is_empty());
}

#[tokio::test]
async fn a_moved_start_reminds_once_for_the_new_start_and_records_the_stale_timer() {
    let p = pipeline(CONFIG);
    let a = upcoming();
    p.ingest(a.clone()).await.unwrap();
    p.bus.take_deliveries();
    let moved = update(&a, "2026-11-22T09:00:00Z", |c| {
        c.labels
            .insert("start_time".into(), "2026-12-05T02:00:00Z".into());
    });
    let out = p.ingest(moved).await.unwrap();
    assert!(
        of(&out, Action::Note).iter().any(|e| e
            .reason
            .contains("reminder set for 2026-12-04T02:00:00.000Z")),
        "{out:?}"
    );
    assert_eq!(p.scheduler.pending(), 2);
    let fired = p.run_timers(None).await.unwrap();
    let stale = of(&fired, Action::Suppress);
    assert_eq!(stale.len(), 1, "{fired:?}");
    assert_eq!(stale[0].at, t("2026-12-02T02:00:00Z"));
    assert!(
        stale[0]
            .reason
            .contains("a later update moved the start to 2026-12-05T02:00:00.000Z"),
        "{}",
        stale[0].reason
    );
    let sent = of(&fired, Action::Notify);
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|e| e.at == t("2026-12-04T02:00:00Z")));
    let jobs = p.bus.take_deliveries();
    assert!(
        jobs.iter()
            .all(|j| j.alert.labels[REMINDER_LABEL] == "2026-12-05T02:00:00.000Z")
    );
}

#[tokio::test]
async fn a_resent_update_with_the_same_start_sets_nothing_new() {
    let p = pipeline(CONFIG);
    let a = upcoming();
    p.ingest(a.clone()).await.unwrap();
    let again = p
        .ingest(update(&a, "2026-11-21T09:00:00Z", |_| {}))
        .await
        .unwrap();
    assert!(of(&again, Action::Note).is_empty(), "{again:?}");
    assert_eq!(p.scheduler.pending(), 1);
}

#[tokio::test]
async fn a_change_already_under_way_is_not_reminded() {
    let p = pipeline(CONFIG);
    let a = upcoming();
    p.ingest(a.clone()).await.unwrap();
    let started = update(&a, "2026-12-01T23:00:00Z", |c| {
        c.labels.insert("status_code".into(), "open".into());
    });
    p.ingest(started).await.unwrap();
    p.bus.take_deliveries();
    let fired = p.run_timers(None).await.unwrap();
    assert!(of(&fired, Action::Notify).is_empty(), "{fired:?}");
    let skipped = of(&fired, Action::Suppress);
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0]
            .reason
            .contains("no longer upcoming (status open)")
    );
    assert!(p.bus.take_deliveries().is_empty());
}

#[tokio::test]
async fn a_start_inside_the_reminder_window_or_reminders_off_sets_no_timer() {
    // Announced 20 hours ahead: the page that goes out now is the reminder.
    let p = pipeline(CONFIG);
    let mut soon = upcoming();
    soon.labels.insert(
        "start_time".into(),
        format_time(&(soon.state_changed_at + Duration::hours(20))),
    );
    let out = p.ingest(soon).await.unwrap();
    assert!(of(&out, Action::Note).is_empty());
    assert_eq!(p.scheduler.pending(), 0);

    let off = CONFIG.replace("health_reminder: 24h", "health_reminder: 0s");
    assert_ne!(off, CONFIG);
    let p = pipeline(&off);
    p.ingest(upcoming()).await.unwrap();
    assert_eq!(p.scheduler.pending(), 0);
}

#[tokio::test]
async fn the_default_reminder_is_a_day_and_other_health_events_set_none() {
    let default = CONFIG.replace("defaults:\n  health_reminder: 24h\n", "");
    assert_ne!(default, CONFIG);
    let p = pipeline(&default);
    p.ingest(upcoming()).await.unwrap();
    assert_eq!(p.scheduler.pending(), 1);
    let p = pipeline(&default);
    p.ingest(alert("health/issue-open.json")).await.unwrap();
    assert_eq!(p.scheduler.pending(), 0);
}

#[tokio::test]
async fn news_of_an_alert_silenced_after_it_paged_is_recorded_not_told() {
    let p = pipeline(CONFIG);
    let a = alert("health/issue-open.json");
    p.ingest(a.clone()).await.unwrap();
    p.bus.take_deliveries();
    p.clock.set(a.state_changed_at + Duration::minutes(1));
    let (silence, _) = p
        .router
        .create_silence(tocsin_core::noise::NewSilence {
            matchers: vec!["source = health".into()],
            created_by: "alice".into(),
            comment: "AWS is on it".into(),
            starts_at: None,
            ends_at: a.state_changed_at + Duration::hours(6),
        })
        .await
        .unwrap();
    let news = p.ingest(alert("health/issue-updated.json")).await.unwrap();
    assert!(of(&news, Action::Notify).is_empty(), "{news:?}");
    let held = of(&news, Action::Suppress);
    assert_eq!(held.len(), 1, "{news:?}");
    assert!(
        held[0]
            .reason
            .starts_with("content changed (health_digest)")
            && held[0]
                .reason
                .ends_with(&format!("not told: held by silence {}", silence.id)),
        "{}",
        held[0].reason
    );
    assert!(p.bus.take_deliveries().is_empty());
}
