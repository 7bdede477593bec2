//! Contract suites: the behaviour every adapter of a port must show, written once and run against each
//! adapter (the memory store in `tocsin-local`, the DynamoDB store against moto), so they cannot drift.
//! Each check uses ids under a caller-given prefix, so one store (one table) can run them all.

// Test code: a failed check is a panic that names the broken behaviour.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::config::ChannelKind;
use crate::model::{AlarmState, Alert, Severity, Source, Transport};
use crate::noise::{GroupState, InhibitState, NoiseBody, NoiseState, Silence};
use crate::ports::{AlertStore, Claim, StoreError};
use crate::record::{Action, AlertRecord, AuditEntry, ClaimStatus, DedupRecord, Status, Target};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T02:10:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A dedup claim for `event_id` made at `at`.
pub fn claim(event_id: &str, at: DateTime<Utc>) -> DedupRecord {
    DedupRecord {
        event_id: event_id.to_string(),
        status: ClaimStatus::InProgress,
        expires_at: at + Duration::hours(1),
        in_progress_until: at + Duration::minutes(5),
        transport: "sns".into(),
        claimed_at: at,
        alert_id: None,
        outcome: None,
    }
}

/// A small alert record for the checks.
pub fn record(id: &str, fingerprint: &str, previous: Option<&str>) -> AlertRecord {
    let alert = Alert {
        event_id: format!("{id}-event"),
        fingerprint: fingerprint.to_string(),
        source: Source::Cloudwatch,
        transport: Transport::Sns,
        alarm_name: "contract-alarm".into(),
        alarm_arn: None,
        account_id: Some("123456789012".into()),
        region: Some("eu-west-1".into()),
        state: AlarmState::Alarm,
        previous_state: Some(AlarmState::Ok),
        state_changed_at: t0(),
        reason: "Threshold crossed".into(),
        kind: "metric".into(),
        namespace: Some("AWS/EC2".into()),
        metric_name: Some("CPUUtilization".into()),
        dimensions: BTreeMap::from([("InstanceId".to_string(), "i-0abc".to_string())]),
        threshold: Some(80.0),
        severity: Severity::High,
        description: "cpu <b>high</b> & \"quoted\"".into(),
        labels: BTreeMap::from([("service".to_string(), "checkout".to_string())]),
    };
    AlertRecord {
        pending: Default::default(),
        id: id.to_string(),
        fingerprint: fingerprint.to_string(),
        status: Status::Open,
        alert,
        severity: Severity::High,
        opened_at: t0(),
        updated_at: t0(),
        acknowledged: None,
        assignee: None,
        resolved_at: None,
        occurrences: 1,
        routes: vec!["root".into()],
        group_notified: Vec::new(),
        notified: vec![Target {
            channel: "ops-slack".into(),
            channel_kind: ChannelKind::Slack,
            target: "#ops".into(),
            address: Some("#ops".into()),
        }],
        initial_targets: 1,
        escalation: Some("critical".into()),
        escalation_step: 0,
        ack_timer: None,
        previous: previous.map(str::to_string),
        version: 1,
        suppressed: None,
        groups: Vec::new(),
    }
}

fn audit(alert: &str, at: DateTime<Utc>, action: Action, reason: &str) -> AuditEntry {
    AuditEntry {
        at,
        alert: alert.to_string(),
        alarm_name: "contract-alarm".into(),
        action,
        reason: reason.to_string(),
        event_id: None,
        channel: None,
        target: None,
        level: None,
        severity: Severity::High,
        attempt: None,
        told_under: None,
    }
}

/// Runs every `AlertStore` check. Panics (as a test failure) naming the first broken behaviour.
pub async fn alert_store<S: AlertStore>(store: &S, prefix: &str) {
    first_claim_wins_and_the_loser_gets_the_winners_record(store, prefix).await;
    expired_and_stale_claims_can_be_taken_over(store, prefix).await;
    released_claim_can_be_claimed_again(store, prefix).await;
    a_claim_reads_back_as_it_was_last_written(store, prefix).await;
    only_one_live_alert_per_fingerprint(store, prefix).await;
    an_alert_owing_its_opening_is_listed_once_written_without_it(store, prefix).await;
    updates_are_conditional_on_the_version(store, prefix).await;
    audit_reads_back_in_time_order(store, prefix).await;
    the_audit_since_a_time_is_the_trail_from_then_on(store, prefix).await;
    one_append_about_two_alerts_reads_back_whole_for_each(store, prefix).await;
    missing_items_read_as_none(store, prefix).await;
    many_alerts_read_at_once_are_those_that_exist(store, prefix).await;
    // --- Queries of the api function (issue 6). ---
    alerts_list_by_status_most_severe_first(store, prefix).await;
    // Noise control (issue 7). Keep these last.
    silences_are_stored_listed_and_expired(store, prefix).await;
    only_silences_not_ended_are_read_and_at_most_the_limit(store, prefix).await;
    noise_state_writes_are_conditional_on_the_version(store, prefix).await;
    group_members_are_items_read_in_pages(store, prefix).await;
}

async fn first_claim_wins_and_the_loser_gets_the_winners_record<S: AlertStore>(s: &S, p: &str) {
    let id = format!("{p}-ev-1");
    let first = claim(&id, t0());
    assert_eq!(s.claim_event(&first).await.unwrap(), Claim::Claimed);
    let mut second = claim(&id, t0() + Duration::seconds(1));
    second.transport = "eventbridge".into();
    match s.claim_event(&second).await.unwrap() {
        Claim::Duplicate(r) => {
            assert_eq!(r.status, ClaimStatus::InProgress);
            assert_eq!(r.transport, "sns", "the loser sees the winner's record");
        }
        other => panic!("a second claim of a held event must lose: {other:?}"),
    }
    let mut done = first.clone();
    done.status = ClaimStatus::Completed;
    done.alert_id = Some("a-1".into());
    done.outcome = Some("open (2 notifications)".into());
    s.complete_event(&done).await.unwrap();
    match s.claim_event(&second).await.unwrap() {
        Claim::Duplicate(r) => {
            assert_eq!(r.status, ClaimStatus::Completed);
            assert_eq!(r.outcome.as_deref(), Some("open (2 notifications)"));
            assert_eq!(r.alert_id.as_deref(), Some("a-1"));
            assert_eq!(r.claimed_at, t0());
        }
        other => panic!("a completed, unexpired event must deduplicate: {other:?}"),
    }
}

async fn expired_and_stale_claims_can_be_taken_over<S: AlertStore>(s: &S, p: &str) {
    let id = format!("{p}-ev-2");
    assert_eq!(
        s.claim_event(&claim(&id, t0())).await.unwrap(),
        Claim::Claimed
    );
    // The holder's in-progress deadline (5 min) has passed: it crashed, take over, and see the
    // record taken over (whose alert a delivery's send may be on record under).
    let later = claim(&id, t0() + Duration::minutes(6));
    match s.claim_event(&later).await.unwrap() {
        Claim::TookOver(old) => {
            assert_eq!(old.claimed_at, t0());
            assert_eq!(old.status, ClaimStatus::InProgress);
        }
        other => panic!("a lapsed claim is taken over: {other:?}"),
    }
    let mut done = later.clone();
    done.status = ClaimStatus::Completed;
    s.complete_event(&done).await.unwrap();
    let within = claim(&id, t0() + Duration::minutes(30));
    assert!(matches!(
        s.claim_event(&within).await.unwrap(),
        Claim::Duplicate(_)
    ));
    // Past the dedup expiry (1 h after the second claim), the id is free again.
    let expired = claim(&id, t0() + Duration::minutes(67));
    match s.claim_event(&expired).await.unwrap() {
        Claim::TookOver(old) => assert_eq!(old.status, ClaimStatus::Completed),
        other => panic!("an expired claim is taken over: {other:?}"),
    }
}

async fn a_claim_reads_back_as_it_was_last_written<S: AlertStore>(s: &S, p: &str) {
    let id = format!("{p}-ev-read");
    assert_eq!(s.get_event(&id).await.unwrap(), None, "no claim yet");
    let first = claim(&id, t0());
    assert_eq!(s.claim_event(&first).await.unwrap(), Claim::Claimed);
    assert_eq!(s.get_event(&id).await.unwrap(), Some(first.clone()));
    // A record written whole (as a send receipt is) reads back whole, outcome and all.
    let mut done = first;
    done.status = ClaimStatus::Completed;
    done.outcome = Some("sent (ses 0100018c-receipt)".into());
    s.complete_event(&done).await.unwrap();
    assert_eq!(s.get_event(&id).await.unwrap(), Some(done));
    s.release_event(&id).await.unwrap();
    assert!(
        s.get_event(&id).await.unwrap().is_some(),
        "a completed claim is not released"
    );
}

async fn released_claim_can_be_claimed_again<S: AlertStore>(s: &S, p: &str) {
    let id = format!("{p}-ev-3");
    assert_eq!(
        s.claim_event(&claim(&id, t0())).await.unwrap(),
        Claim::Claimed
    );
    s.release_event(&id).await.unwrap();
    assert_eq!(
        s.claim_event(&claim(&id, t0())).await.unwrap(),
        Claim::Claimed
    );
    s.release_event(&format!("{p}-never-claimed"))
        .await
        .unwrap();
}

async fn only_one_live_alert_per_fingerprint<S: AlertStore>(s: &S, p: &str) {
    let fp = format!("{p}-fp-1");
    let a1 = record(&format!("{p}-a1"), &fp, None);
    s.create_alert(&a1).await.unwrap();
    assert_eq!(s.latest_alert(&fp).await.unwrap().as_ref(), Some(&a1));
    let a2 = record(&format!("{p}-a2"), &fp, Some(&a1.id));
    assert!(
        matches!(s.create_alert(&a2).await, Err(StoreError::Conflict(_))),
        "a second occurrence while one is live must conflict"
    );
    let mut resolved = a1.clone();
    resolved.status = Status::Resolved;
    resolved.version = 2;
    s.update_alert(&resolved).await.unwrap();
    let stale = record(&format!("{p}-a3"), &fp, None);
    assert!(
        matches!(s.create_alert(&stale).await, Err(StoreError::Conflict(_))),
        "creating with a stale view of the latest occurrence must conflict"
    );
    s.create_alert(&a2).await.unwrap();
    let latest = s.latest_alert(&fp).await.unwrap().unwrap();
    assert_eq!(latest.id, a2.id);
    assert_eq!(latest.previous.as_deref(), Some(a1.id.as_str()));
    assert_eq!(
        s.get_alert(&a1.id).await.unwrap().unwrap().status,
        Status::Resolved
    );
}

async fn an_alert_owing_its_opening_is_listed_once_written_without_it<S: AlertStore>(
    s: &S,
    p: &str,
) {
    let mut owing = record(&format!("{p}-owing"), &format!("{p}-fp-owing"), None);
    owing.pending.at = Some(t0());
    owing.pending.cancel.push(format!("{p}-a-timer"));
    assert!(owing.opening_owed());
    s.create_alert(&owing).await.unwrap();
    let listed = |v: Vec<AlertRecord>| v.iter().any(|r| r.id == owing.id);
    assert!(
        !listed(s.list_alerts(Status::Open, 1000).await.unwrap()),
        "an alert whose opening effects are owed is not listed"
    );
    assert_eq!(
        s.latest_alert(&owing.fingerprint).await.unwrap().as_ref(),
        Some(&owing),
        "but it is its fingerprint's latest, owed effects and all, for whoever comes next to finish"
    );
    let mut settled = owing.clone();
    settled.pending = Default::default();
    settled.version = 2;
    s.update_alert(&settled).await.unwrap();
    assert!(
        listed(s.list_alerts(Status::Open, 1000).await.unwrap()),
        "written again without them, it is listed"
    );
}

async fn updates_are_conditional_on_the_version<S: AlertStore>(s: &S, p: &str) {
    let a = record(&format!("{p}-b1"), &format!("{p}-fp-2"), None);
    s.create_alert(&a).await.unwrap();
    let mut v2 = a.clone();
    v2.occurrences = 2;
    v2.version = 2;
    s.update_alert(&v2).await.unwrap();
    let mut also_v2 = a.clone();
    also_v2.status = Status::Acknowledged;
    also_v2.version = 2;
    assert!(
        matches!(s.update_alert(&also_v2).await, Err(StoreError::Conflict(_))),
        "a write based on a stale version must lose"
    );
    assert_eq!(s.get_alert(&a.id).await.unwrap().unwrap(), v2);
    let ghost = record(&format!("{p}-ghost"), &format!("{p}-fp-3"), None);
    let mut ghost2 = ghost.clone();
    ghost2.version = 2;
    assert!(
        s.update_alert(&ghost2).await.is_err(),
        "updating a missing alert fails"
    );
}

async fn the_audit_since_a_time_is_the_trail_from_then_on<S: AlertStore>(s: &S, p: &str) {
    let id = format!("{p}-since");
    let at = |m: i64| t0() + Duration::minutes(m);
    for (m, why) in [
        (0, "opened"),
        (10, "paged"),
        (20, "tried again"),
        (200, "resolved"),
    ] {
        s.append_audit(&[audit(&id, at(m), Action::Notify, why)])
            .await
            .unwrap();
    }
    let reasons = |v: Vec<AuditEntry>| v.into_iter().map(|e| e.reason).collect::<Vec<_>>();
    assert_eq!(
        reasons(s.audit_since(&id, at(10)).await.unwrap()),
        ["paged", "tried again", "resolved"],
        "from the time on, in time order, the entry at that very time included"
    );
    assert_eq!(
        reasons(s.audit_since(&id, at(11)).await.unwrap()),
        ["tried again", "resolved"]
    );
    assert!(s.audit_since(&id, at(201)).await.unwrap().is_empty());
    assert_eq!(
        s.audit_since(&id, at(0)).await.unwrap(),
        s.audit(&id).await.unwrap()
    );
}

async fn audit_reads_back_in_time_order<S: AlertStore>(s: &S, p: &str) {
    let id = format!("{p}-c1");
    let later = audit(&id, t0() + Duration::minutes(5), Action::Resolve, "second");
    let first = audit(&id, t0(), Action::Open, "first");
    let mut same_time = audit(&id, t0(), Action::Attempt, "sms to alice");
    same_time.channel = Some("oncall-sms".into());
    same_time.target = Some("alice".into());
    same_time.attempt = Some(crate::record::AttemptRecord {
        delivery_id: "d-1".into(),
        try_number: 2,
        invocation: 1,
        outcome: crate::retry::AttemptOutcome::Retryable,
        latency_ms: 1_250,
        error_class: Some("http_429".into()),
        provider_id: None,
    });
    s.append_audit(std::slice::from_ref(&later)).await.unwrap();
    s.append_audit(&[first.clone(), same_time.clone()])
        .await
        .unwrap();
    s.append_audit(&[audit(&format!("{p}-other"), t0(), Action::Open, "x")])
        .await
        .unwrap();
    let got = s.audit(&id).await.unwrap();
    assert_eq!(got, vec![first, same_time, later]);
}

/// One append of 300 entries about two alerts, more than one item's worth (the DynamoDB store writes
/// an append's entries about one alert as few items of up to 32 KB): each alert's trail reads back
/// whole, in order, with none of the other's.
async fn one_append_about_two_alerts_reads_back_whole_for_each<S: AlertStore>(s: &S, p: &str) {
    let (a, b) = (format!("{p}-many-a"), format!("{p}-many-b"));
    let batch: Vec<AuditEntry> = (0..300)
        .map(|i: i64| {
            let alert = if i % 3 == 0 { &b } else { &a };
            let reason = format!("{i:04} {}", "x".repeat(300));
            audit(
                alert,
                t0() + Duration::seconds(i / 10),
                Action::Notify,
                &reason,
            )
        })
        .collect();
    s.append_audit(&batch).await.unwrap();
    for id in [&a, &b] {
        let want: Vec<AuditEntry> = batch.iter().filter(|e| e.alert == *id).cloned().collect();
        assert_eq!(s.audit(id).await.unwrap(), want, "{id}");
    }
}

async fn missing_items_read_as_none<S: AlertStore>(s: &S, p: &str) {
    assert!(s.get_alert(&format!("{p}-nope")).await.unwrap().is_none());
    assert!(
        s.latest_alert(&format!("{p}-nofp"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.audit(&format!("{p}-nope")).await.unwrap().is_empty());
}

/// `get_alerts`: every alert named that exists, once, whatever the order, missing ones left out;
/// more than one `BatchGetItem` request's worth (100) on DynamoDB.
async fn many_alerts_read_at_once_are_those_that_exist<S: AlertStore>(s: &S, p: &str) {
    let mut ids = Vec::new();
    for i in 0..130 {
        let r = record(
            &format!("{p}-many-{i:03}"),
            &format!("{p}-fp-many-{i:03}"),
            None,
        );
        s.create_alert(&r).await.unwrap();
        ids.push(r.id);
    }
    let mut asked = ids.clone();
    asked.push(format!("{p}-many-none"));
    // One named twice comes back once. (DynamoDB's BatchGetItem refuses a request that names a key
    // twice, so the store asks for each once; moto accepts it, so on moto this checks the answer.)
    asked.push(ids[7].clone());
    asked.reverse();
    let mut got: Vec<String> = s
        .get_alerts(&asked)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    got.sort();
    assert_eq!(got, ids);
    assert!(s.get_alerts(&[]).await.unwrap().is_empty());
}

// --- Queries of the api function (issue 6). ---

async fn alerts_list_by_status_most_severe_first<S: AlertStore>(s: &S, p: &str) {
    let id = |n: &str| format!("{p}-list-{n}");
    let mut low = record(&id("low"), &id("fp-low"), None);
    low.severity = Severity::Low;
    let mut crit_search = record(&id("crit-search"), &id("fp-cs"), None);
    crit_search.severity = Severity::Critical;
    crit_search
        .alert
        .labels
        .insert("service".into(), "search".into());
    let mut crit_checkout = record(&id("crit-checkout"), &id("fp-cc"), None);
    crit_checkout.severity = Severity::Critical;
    let mut crit_checkout_later = record(&id("crit-checkout-later"), &id("fp-ccl"), None);
    crit_checkout_later.severity = Severity::Critical;
    crit_checkout_later.opened_at = t0() + Duration::minutes(3);
    let acked = record(&id("acked"), &id("fp-acked"), None);
    for r in [
        &low,
        &crit_search,
        &crit_checkout,
        &crit_checkout_later,
        &acked,
    ] {
        s.create_alert(r).await.unwrap();
    }
    let mut ack = acked.clone();
    ack.status = Status::Acknowledged;
    ack.acknowledged = Some(("2026-11-20T02:20:00.000Z".into(), "alice".into()));
    ack.version = 2;
    s.update_alert(&ack).await.unwrap();
    let mine = |v: Vec<AlertRecord>| -> Vec<String> {
        v.into_iter()
            .map(|r| r.id)
            .filter(|i| i.starts_with(&id("")))
            .collect()
    };
    assert_eq!(
        mine(s.list_alerts(Status::Open, 1000).await.unwrap()),
        vec![
            crit_checkout.id.clone(),
            crit_checkout_later.id.clone(),
            crit_search.id.clone(),
            low.id.clone(),
        ],
        "open alerts: most severe first, then by service, then by opening time; the acknowledged one apart"
    );
    let acks = s.list_alerts(Status::Acknowledged, 1000).await.unwrap();
    let got = acks.iter().find(|r| r.id == ack.id);
    assert_eq!(
        got,
        Some(&ack),
        "the list carries whole records, as updated"
    );
    assert_eq!(
        mine(s.list_alerts(Status::Resolved, 1000).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        s.list_alerts(Status::Open, 2).await.unwrap().len(),
        2,
        "the limit caps the list"
    );
    let mut resolved = crit_search.clone();
    resolved.status = Status::Resolved;
    resolved.version = 2;
    s.update_alert(&resolved).await.unwrap();
    assert!(
        !mine(s.list_alerts(Status::Open, 1000).await.unwrap()).contains(&resolved.id),
        "an alert leaves its old status's list when it changes status"
    );
    assert!(mine(s.list_alerts(Status::Resolved, 1000).await.unwrap()).contains(&resolved.id));
}

// ---- Noise control (issue 7): silences and noise-control state. Keep this block last.

fn silence(id: &str, starts: DateTime<Utc>, ends: DateTime<Utc>) -> Silence {
    Silence {
        id: id.to_string(),
        matchers: vec![
            "service = checkout".into(),
            "alarm_name =~ \"checkout-.*\"".into(),
        ],
        created_by: "alice".into(),
        comment: "deploy <b>&</b> \"migration\"".into(),
        created_at: starts,
        starts_at: starts,
        ends_at: ends,
        expired_at: None,
        expired_by: None,
    }
}

async fn silences_are_stored_listed_and_expired<S: AlertStore>(s: &S, p: &str) {
    let later = silence(
        &format!("{p}-s2"),
        t0() + Duration::hours(1),
        t0() + Duration::hours(3),
    );
    let first = silence(&format!("{p}-s1"), t0(), t0() + Duration::hours(2));
    s.create_silence(&later).await.unwrap();
    s.create_silence(&first).await.unwrap();
    assert!(
        matches!(s.create_silence(&first).await, Err(StoreError::Conflict(_))),
        "a silence id is created once"
    );
    let mine = |all: Vec<Silence>| -> Vec<Silence> {
        all.into_iter()
            .filter(|x| x.id.starts_with(&format!("{p}-s")))
            .collect()
    };
    assert_eq!(
        mine(s.silences().await.unwrap()),
        vec![first.clone(), later.clone()],
        "silences list by start time, whole"
    );
    let at = t0() + Duration::minutes(30);
    let expired = s.expire_silence(&first.id, at, "bob").await.unwrap();
    assert_eq!(expired.expired_at, Some(at));
    assert_eq!(expired.expired_by.as_deref(), Some("bob"));
    assert_eq!(expired.end(), at);
    // Expiring again later changes nothing: it already ended.
    let again = s
        .expire_silence(&first.id, at + Duration::minutes(5), "carol")
        .await
        .unwrap();
    assert_eq!(again, expired);
    assert_eq!(mine(s.silences().await.unwrap())[0], expired);
    assert!(
        matches!(
            s.expire_silence(&format!("{p}-no-such"), at, "bob").await,
            Err(StoreError::NotFound(_))
        ),
        "expiring a missing silence is NotFound"
    );
}

/// What the router reads for every alert: the silences not ended (active or pending), bounded, the
/// soonest-ending first past the bound; an early expiry takes a silence out at once.
async fn only_silences_not_ended_are_read_and_at_most_the_limit<S: AlertStore>(s: &S, p: &str) {
    // Clear of the other steps' silences (those ended long before).
    let base = t0() + Duration::days(30);
    let ended = silence(
        &format!("{p}-live-ended"),
        base - Duration::hours(2),
        base - Duration::hours(1),
    );
    let a = silence(&format!("{p}-live-a"), base, base + Duration::hours(2));
    let b = silence(
        &format!("{p}-live-b"),
        base + Duration::hours(1),
        base + Duration::hours(3),
    );
    let pending = silence(
        &format!("{p}-live-c"),
        base + Duration::hours(5),
        base + Duration::hours(6),
    );
    for x in [&pending, &b, &ended, &a] {
        s.create_silence(x).await.unwrap();
    }
    let ids = |v: Vec<Silence>| -> Vec<String> {
        v.into_iter()
            .filter(|x| x.id.starts_with(&format!("{p}-live-")))
            .map(|x| x.id)
            .collect()
    };
    let (a_id, b_id, c_id) = (a.id.clone(), b.id.clone(), pending.id.clone());
    let at = base + Duration::minutes(30);
    assert_eq!(
        ids(s.active_silences(at, 10).await.unwrap()),
        [a_id.clone(), b_id.clone(), c_id.clone()],
        "the silences not ended, active or pending, by start time; never one that ended"
    );
    assert_eq!(s.active_silences(at, 10).await.unwrap()[0], a, "read whole");
    assert_eq!(
        ids(s.active_silences(at, 2).await.unwrap()),
        [a_id.clone(), b_id],
        "past the limit, the soonest-ending ones"
    );
    assert_eq!(s.active_silences(at, 0).await.unwrap(), []);
    s.expire_silence(&b.id, base + Duration::minutes(40), "bob")
        .await
        .unwrap();
    assert_eq!(
        ids(s
            .active_silences(base + Duration::minutes(45), 10)
            .await
            .unwrap()),
        [a_id, c_id.clone()],
        "an expired silence is not read any more"
    );
    assert_eq!(
        ids(s
            .active_silences(base + Duration::hours(2), 10)
            .await
            .unwrap()),
        [c_id],
        "a silence ending now has ended"
    );
    assert_eq!(
        ids(s
            .active_silences(base + Duration::hours(6), 10)
            .await
            .unwrap()),
        Vec::<String>::new()
    );
    assert!(
        ids(s.silences().await.unwrap()).contains(&ended.id),
        "ended silences are still listed for the record"
    );
}

async fn noise_state_writes_are_conditional_on_the_version<S: AlertStore>(s: &S, p: &str) {
    let key = format!("group/{p}-route/{{service=\"checkout\"}}");
    assert_eq!(s.noise_state(&key).await.unwrap(), None);
    let mut group = GroupState {
        route: format!("{p}-route"),
        labels: BTreeMap::from([("service".to_string(), "checkout".to_string())]),
        members: BTreeMap::new(),
        last_flush: None,
        last_sent: None,
        timer_at: Some(t0()),
        seq: 1,
        told_upto: 0,
        firing: 0,
    };
    let v1 = NoiseState {
        pending: Default::default(),
        key: key.clone(),
        version: 1,
        body: NoiseBody::Group(group.clone()),
    };
    s.put_noise_state(&v1).await.unwrap();
    assert!(
        matches!(s.put_noise_state(&v1).await, Err(StoreError::Conflict(_))),
        "version 1 is a create, once"
    );
    group.seq = 2;
    let v2 = NoiseState {
        pending: Default::default(),
        key: key.clone(),
        version: 2,
        body: NoiseBody::Group(group.clone()),
    };
    s.put_noise_state(&v2).await.unwrap();
    let stale = NoiseState {
        version: 2,
        body: NoiseBody::Inhibit(InhibitState::default()),
        ..v2.clone()
    };
    assert!(
        matches!(
            s.put_noise_state(&stale).await,
            Err(StoreError::Conflict(_))
        ),
        "a write based on a stale version loses"
    );
    assert_eq!(s.noise_state(&key).await.unwrap(), Some(v2));
    let skip = NoiseState {
        pending: Default::default(),
        key: format!("flap/{p}-never"),
        version: 3,
        body: NoiseBody::Inhibit(InhibitState::default()),
    };
    assert!(
        matches!(s.put_noise_state(&skip).await, Err(StoreError::Conflict(_))),
        "a write over a version that does not exist loses"
    );
}

async fn group_members_are_items_read_in_pages<S: AlertStore>(s: &S, p: &str) {
    use crate::noise::GroupMember;
    let key = format!("group/{p}-members/{{service=\"search\"}}");
    let member = |i: usize| GroupMember {
        alert_id: format!("{p}-alert-{i:03}"),
        alarm_name: format!("alarm-{i}"),
        severity: crate::model::Severity::Medium,
        firing: true,
        notified: false,
        note: None,
        seq: i as u64,
        told_firing: false,
        cloudwatch_muted: Some(i % 2 == 0),
    };
    assert_eq!(
        s.group_member(&key, &member(1).alert_id).await.unwrap(),
        None
    );
    for i in 0..25 {
        s.put_group_member(&key, &member(i)).await.unwrap();
    }
    // A member written again is replaced, not added.
    let mut changed = member(3);
    changed.firing = false;
    s.put_group_member(&key, &changed).await.unwrap();
    assert_eq!(
        s.group_member(&key, &changed.alert_id).await.unwrap(),
        Some(changed)
    );
    let mut read = Vec::new();
    loop {
        let after = read.last().map(|m: &GroupMember| m.alert_id.clone());
        let page = s.group_members(&key, after.as_deref(), 10).await.unwrap();
        assert!(page.len() <= 10, "a page holds at most its limit");
        let done = page.len() < 10;
        read.extend(page);
        if done {
            break;
        }
    }
    let ids: Vec<String> = read.iter().map(|m| m.alert_id.clone()).collect();
    let want: Vec<String> = (0..25).map(|i| member(i).alert_id).collect();
    assert_eq!(ids, want, "every member once, in alert id order");
    s.remove_group_member(&key, &member(0).alert_id)
        .await
        .unwrap();
    s.remove_group_member(&key, "never-joined").await.unwrap();
    assert_eq!(s.group_members(&key, None, 100).await.unwrap().len(), 24);
    assert!(
        s.group_members(&format!("{key}-other"), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "another group's members are its own"
    );
}

// ---- The shared status page (issue 18, item 4).

/// Runs every `StatusSnapshots` check, under audiences named with `prefix`.
pub async fn status_snapshots<S: crate::ports::StatusSnapshots>(store: &S, prefix: &str) {
    one_refresh_claim_wins_per_interval(store, prefix).await;
    a_snapshot_is_stored_under_its_own_claim_only(store, prefix).await;
    a_snapshot_too_large_for_an_item_is_not_stored(store, prefix).await;
}

fn snapshot(at: DateTime<Utc>, text: &str) -> crate::ports::StatusSnapshot {
    crate::ports::StatusSnapshot {
        built_at: at,
        json: format!("{{\"page\": \"{text}\"}}"),
        html: format!("<p>{text} &amp; \"more\"</p>"),
    }
}

async fn one_refresh_claim_wins_per_interval<S: crate::ports::StatusSnapshots>(s: &S, p: &str) {
    let aud = format!("{p}-claims");
    let every = Duration::seconds(30);
    assert_eq!(s.status_snapshot(&aud).await.unwrap(), None, "none yet");
    assert!(s.claim_status_refresh(&aud, t0(), every).await.unwrap());
    assert!(
        !s.claim_status_refresh(&aud, t0(), every).await.unwrap(),
        "a second claim at the same time loses"
    );
    assert!(
        !s.claim_status_refresh(&aud, t0() + Duration::milliseconds(29_999), every)
            .await
            .unwrap(),
        "so does one within the interval"
    );
    assert!(
        !s.claim_status_refresh(&aud, t0() - Duration::seconds(5), every)
            .await
            .unwrap(),
        "and one from a sandbox whose clock is behind"
    );
    assert!(
        s.claim_status_refresh(&aud, t0() + every, every)
            .await
            .unwrap(),
        "one a whole interval later wins"
    );
    // Audiences are apart.
    assert!(
        s.claim_status_refresh(&format!("{p}-claims-other"), t0(), every)
            .await
            .unwrap()
    );
}

async fn a_snapshot_is_stored_under_its_own_claim_only<S: crate::ports::StatusSnapshots>(
    s: &S,
    p: &str,
) {
    use crate::ports::SnapshotPut;
    let aud = format!("{p}-put");
    let every = Duration::seconds(30);
    assert!(s.claim_status_refresh(&aud, t0(), every).await.unwrap());
    let first = snapshot(t0(), "first");
    assert_eq!(
        s.put_status_snapshot(&aud, &first).await.unwrap(),
        SnapshotPut::Stored
    );
    assert_eq!(s.status_snapshot(&aud).await.unwrap(), Some(first.clone()));
    // A build under a claim that never was (or was taken over) does not replace it.
    let stray = snapshot(t0() + Duration::seconds(1), "stray");
    assert_eq!(
        s.put_status_snapshot(&aud, &stray).await.unwrap(),
        SnapshotPut::Superseded
    );
    // A slow build: claimed at t0+30s, taken over at t0+60s; the slow one's page is refused, the
    // newer one is kept, and claiming does not lose the page stored meanwhile.
    let slow_at = t0() + every;
    assert!(s.claim_status_refresh(&aud, slow_at, every).await.unwrap());
    assert_eq!(s.status_snapshot(&aud).await.unwrap(), Some(first));
    let new_at = slow_at + every;
    assert!(s.claim_status_refresh(&aud, new_at, every).await.unwrap());
    let newer = snapshot(new_at, "newer");
    assert_eq!(
        s.put_status_snapshot(&aud, &newer).await.unwrap(),
        SnapshotPut::Stored
    );
    assert_eq!(
        s.put_status_snapshot(&aud, &snapshot(slow_at, "slow"))
            .await
            .unwrap(),
        SnapshotPut::Superseded
    );
    assert_eq!(s.status_snapshot(&aud).await.unwrap(), Some(newer));
}

async fn a_snapshot_too_large_for_an_item_is_not_stored<S: crate::ports::StatusSnapshots>(
    s: &S,
    p: &str,
) {
    use crate::ports::{STATUS_SNAPSHOT_MAX_BYTES, SnapshotPut};
    let aud = format!("{p}-large");
    assert!(
        s.claim_status_refresh(&aud, t0(), Duration::seconds(30))
            .await
            .unwrap()
    );
    let mut big = snapshot(t0(), "big");
    big.html = "x".repeat(STATUS_SNAPSHOT_MAX_BYTES + 1 - big.json.len());
    assert_eq!(
        s.put_status_snapshot(&aud, &big).await.unwrap(),
        SnapshotPut::TooLarge
    );
    assert_eq!(s.status_snapshot(&aud).await.unwrap(), None);
    big.html.pop();
    assert_eq!(big.size(), STATUS_SNAPSHOT_MAX_BYTES);
    assert_eq!(
        s.put_status_snapshot(&aud, &big).await.unwrap(),
        SnapshotPut::Stored,
        "the largest size kept fits in one item"
    );
    assert_eq!(s.status_snapshot(&aud).await.unwrap(), Some(big));
}
