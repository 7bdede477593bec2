//! What the router does with what CloudWatch says about an alarm besides its state (issue 19):
//! alarm mute rules (`muted_by`, the window) and multi-time-series alarms (a parent alarm and its
//! contributors, `alarm_role`). The parsers put both on the alert as labels
//! (`tocsin_core::source::alarm_meta`); these tests feed alerts that carry them through the embedded
//! pipeline with the example config.

use chrono::TimeDelta;
use tocsin_core::Alert;
use tocsin_core::model::AlarmState;
use tocsin_core::record::{Action, AuditEntry};
use tocsin_core::source::{
    CONTRIBUTOR_LABEL, MUTE_END_LABEL, MUTE_START_LABEL, MUTED_BY_LABEL, PARENT_LABEL, ROLE_LABEL,
};
use tocsin_local::Embedded;
use tocsin_tests::{cloudwatch_alarm, config_from, example_config, t};

const RULE: &str = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm-mute-rule:friday-deploys";
const T0: &str = "2026-11-20T02:10:00Z";

fn muted(state: AlarmState, at: &str, end: Option<&str>) -> Alert {
    let mut a = cloudwatch_alarm("checkout-api-5xx", state, at);
    a.labels.insert(MUTED_BY_LABEL.into(), RULE.into());
    a.labels
        .insert(MUTE_START_LABEL.into(), "2026-11-20T02:00:00.000Z".into());
    if let Some(end) = end {
        a.labels.insert(MUTE_END_LABEL.into(), end.into());
    }
    a
}

fn pipeline() -> Embedded {
    Embedded::new(example_config(), t("2026-11-20T02:00:00Z"))
}

fn say(entries: &[AuditEntry], action: Action) -> Vec<&str> {
    entries
        .iter()
        .filter(|e| e.action == action)
        .map(|e| e.reason.as_str())
        .collect()
}

#[tokio::test]
async fn a_muted_alarm_is_recorded_not_paged_and_pages_when_the_window_ends_if_still_firing() {
    let p = pipeline();
    let opened = p
        .ingest(muted(
            AlarmState::Alarm,
            T0,
            Some("2026-11-20T02:40:00.000Z"),
        ))
        .await
        .unwrap();
    let held = say(&opened, Action::Suppress);
    assert!(
        held.iter()
            .any(|r| r.contains(RULE) && r.contains("2026-11-20T02:40:00.000Z")),
        "the audit names the rule and its window: {held:?}"
    );
    assert!(
        p.bus.take_deliveries().is_empty(),
        "nobody paged while muted"
    );
    let later = p.run_timers(Some(t("2026-11-20T02:41:00Z"))).await.unwrap();
    let jobs = p.bus.take_deliveries();
    assert!(
        jobs.iter().any(|j| j.target.channel == "oncall-sms"),
        "paged when the window ended: {later:?}"
    );
}

/// With no maintenance window, silence or inhibit rule configured (a group's flush then skips its
/// check for held members), an alarm CloudWatch mutes still stays out of its group: a held alert joins
/// its groups only once it is paged.
#[tokio::test]
async fn a_muted_alarm_stays_out_of_its_groups_notification_when_nothing_else_could_hold_it() {
    let full = std::fs::read_to_string(tocsin_tests::root().join("infra/tocsin.yaml")).unwrap();
    let (head, rest) = full.split_once("maintenance_windows:\n").unwrap();
    let (_, tail) = rest.split_once("flap_damping:").unwrap();
    let p = Embedded::new(
        config_from(&format!("{head}flap_damping:{tail}")),
        t("2026-11-20T02:00:00Z"),
    );
    let end = Some("2026-11-20T02:40:00.000Z");
    p.ingest(muted(AlarmState::Alarm, T0, end)).await.unwrap();
    p.run_timers(Some(t("2026-11-20T02:39:00Z"))).await.unwrap();
    let told: Vec<String> = p
        .bus
        .take_deliveries()
        .iter()
        .map(|j| format!("{} {:?}", j.target.channel, j.kind))
        .collect();
    assert!(told.is_empty(), "nobody told while muted: {told:?}");
    p.run_timers(Some(t("2026-11-20T02:46:00Z"))).await.unwrap();
    let channels: Vec<String> = p
        .bus
        .take_deliveries()
        .iter()
        .map(|j| j.target.channel.clone())
        .collect();
    assert!(
        channels.iter().any(|c| c == "oncall-sms") && channels.iter().any(|c| c == "ops-slack"),
        "paged and the group told once the window ended: {channels:?}"
    );
}

#[tokio::test]
async fn a_muted_alarm_that_recovers_inside_its_window_pages_nobody() {
    let p = pipeline();
    let end = Some("2026-11-20T02:40:00.000Z");
    p.ingest(muted(AlarmState::Alarm, T0, end)).await.unwrap();
    p.ingest(muted(AlarmState::Ok, "2026-11-20T02:20:00Z", end))
        .await
        .unwrap();
    p.run_timers(Some(t("2026-11-20T03:00:00Z"))).await.unwrap();
    assert!(p.bus.take_deliveries().is_empty(), "nothing to tell anyone");
}

#[tokio::test]
async fn a_mute_whose_window_end_cannot_be_read_pages_at_once_and_says_so() {
    let p = pipeline();
    let opened = p.ingest(muted(AlarmState::Alarm, T0, None)).await.unwrap();
    assert!(
        p.bus
            .take_deliveries()
            .iter()
            .any(|j| j.target.channel == "oncall-sms"),
        "fails open: paged now"
    );
    assert!(
        opened
            .iter()
            .any(|e| e.reason.contains(RULE) && e.reason.contains("paged")),
        "the mute is on record: {opened:?}"
    );
}

fn contributor(id: &str, state: AlarmState, at: &str) -> Alert {
    let mut a = cloudwatch_alarm("checkout-api-5xx", state, at);
    a.fingerprint = format!("{}-{id}", a.fingerprint);
    a.event_id = format!("{}-{id}", a.event_id);
    a.labels.insert(ROLE_LABEL.into(), "contributor".into());
    a.labels.insert(CONTRIBUTOR_LABEL.into(), id.into());
    a.labels
        .insert(PARENT_LABEL.into(), "checkout-api-5xx".into());
    a.labels
        .insert("contributor.TableName".into(), format!("orders-{id}"));
    a
}

fn parent(state: AlarmState, at: &str) -> Alert {
    let mut a = cloudwatch_alarm("checkout-api-5xx", state, at);
    a.labels.insert(ROLE_LABEL.into(), "parent".into());
    a
}

#[tokio::test]
async fn by_default_contributors_page_grouped_by_their_parent_and_the_parent_does_not() {
    let p = pipeline();
    let from_parent = p.ingest(parent(AlarmState::Alarm, T0)).await.unwrap();
    assert!(
        say(&from_parent, Action::Suppress)
            .iter()
            .any(|r| r.contains("multi_time_series")),
        "{from_parent:?}"
    );
    assert!(
        p.bus.take_deliveries().is_empty(),
        "the parent pages nobody"
    );
    p.ingest(contributor("a", AlarmState::Alarm, T0))
        .await
        .unwrap();
    p.ingest(contributor("b", AlarmState::Alarm, "2026-11-20T02:10:05Z"))
        .await
        .unwrap();
    p.run_timers(Some(t("2026-11-20T02:12:00Z"))).await.unwrap();
    let sms: Vec<_> = p
        .bus
        .take_deliveries()
        .into_iter()
        .filter(|j| j.target.channel == "oncall-sms" && j.level.is_none())
        .collect();
    assert!(!sms.is_empty(), "contributors page the on-call person");
    assert!(
        sms.iter().all(|j| j
            .alert
            .labels
            .get("group")
            .is_some_and(|g| g.contains("parent_alarm"))),
        "grouped by their parent: {sms:?}"
    );
    assert!(
        sms.len() < 2 * 2,
        "two contributors of one parent make fewer pages than one each per channel: {}",
        sms.len()
    );
}

#[tokio::test]
async fn a_contributor_recovers_on_its_own_and_the_others_stay_open() {
    let p = pipeline();
    p.ingest(contributor("a", AlarmState::Alarm, T0))
        .await
        .unwrap();
    p.ingest(contributor("b", AlarmState::Alarm, T0))
        .await
        .unwrap();
    let ok = p
        .ingest(contributor("a", AlarmState::Ok, "2026-11-20T02:20:00Z"))
        .await
        .unwrap();
    assert_eq!(say(&ok, Action::Resolve).len(), 1, "{ok:?}");
    let open = p
        .store
        .alerts()
        .into_iter()
        .filter(|r| r.status.is_live())
        .count();
    assert_eq!(open, 1, "b is still firing");
}

#[tokio::test]
async fn multi_time_series_parent_pages_the_parent_and_not_its_contributors() {
    let text = std::fs::read_to_string(tocsin_tests::root().join("infra/tocsin.yaml"))
        .unwrap()
        .replace(
            "  insufficient_data: ignore\n",
            "  insufficient_data: ignore\n  multi_time_series: parent\n",
        );
    let p = Embedded::new(config_from(&text), t("2026-11-20T02:00:00Z"));
    p.ingest(contributor("a", AlarmState::Alarm, T0))
        .await
        .unwrap();
    assert!(
        p.bus.take_deliveries().is_empty(),
        "a contributor pages nobody"
    );
    p.ingest(parent(AlarmState::Alarm, "2026-11-20T02:10:01Z"))
        .await
        .unwrap();
    assert!(
        p.bus
            .take_deliveries()
            .iter()
            .any(|j| j.target.channel == "oncall-sms"),
        "the parent pages"
    );
    let _ = TimeDelta::zero();
}
