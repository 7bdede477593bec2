//! DynamoDB failing under the store and the router: throttling and internal errors injected between
//! the SDK and moto (`support/fault_proxy.rs`), with the SDK's own retries off so that the fault
//! reaches our code. A failure must stay a backend error (never a conflict, which the router would
//! read as a decision), say itself in one line, and leave nothing half-written, so that the platform's
//! retry of the event does the work once. Runs against `AWS_ENDPOINT_URL` (moto, under
//! `scripts/with-moto.sh`); without it the tests say they were skipped, unless `TOCSIN_REQUIRE_AWS=1`,
//! where they fail.

// Test code: a failed step is a panic that names it.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use support::fault_proxy::{Fault, Seen};
use support::{Moto, Options, moto_table};
use tocsin_aws::DynamoStore;
use tocsin_core::Alert;
use tocsin_core::contract;
use tocsin_core::noise::{InhibitState, NoiseBody, NoiseState};
use tocsin_core::ports::{AlertStore, Bus, BusError, Claim, StoreError};
use tocsin_core::record::{Action, DeliveryJob, Status, Timer};
use tocsin_core::router::{Router, RouterError, RouterSettings};
use tocsin_local::{LocalBus, VirtualClock, VirtualScheduler};

/// Through the one-at-a-time proxy (atomic writes, as DynamoDB's), with the SDK's retries off: one
/// attempt, the fault reaches the store.
const FAULTS: Options = Options {
    sdk_retries: false,
    ..Options::PROXIED
};

fn t0() -> DateTime<Utc> {
    "2026-11-20T02:10:00Z".parse().unwrap()
}

/// Whether the store lists alert `id` among the open ones.
async fn listed(h: &Moto, id: &str) -> bool {
    let open = h.store.list_alerts(Status::Open, 1000).await.unwrap();
    open.iter().any(|r| r.id == id)
}

fn operations(seen: &[Seen]) -> Vec<&str> {
    seen.iter().map(|s| s.operation.as_str()).collect()
}

/// The store failed as a backend, in one line naming the operation and DynamoDB's error code.
fn assert_backend_line<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    operation: &str,
    code: &str,
) {
    let message = match result {
        Err(StoreError::Backend(message)) => message,
        other => panic!("{operation}: expected a backend error, got {other:?}"),
    };
    assert!(!message.contains(['\n', '\r']), "one line: {message:?}");
    assert!(
        message.contains(operation) && message.contains(code),
        "names {operation} and {code}: {message}"
    );
}

fn fixture(name: &str) -> Alert {
    let path = format!(
        "{}/../../events/scenario/incident/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut alerts = tocsin_core::source::parse(&std::fs::read(path).unwrap()).unwrap();
    alerts.remove(0)
}

type FaultyRouter = Router<DynamoStore, LocalBus, VirtualScheduler, VirtualClock>;

fn router(store: &DynamoStore, at: DateTime<Utc>) -> (FaultyRouter, LocalBus, VirtualScheduler) {
    let path = format!("{}/../../infra/tocsin.yaml", env!("CARGO_MANIFEST_DIR"));
    let config = tocsin_core::config::load(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (bus, scheduler) = (LocalBus::new(), VirtualScheduler::new());
    let router = Router {
        config: Arc::new(config),
        store: store.clone(),
        bus: bus.clone(),
        scheduler: scheduler.clone(),
        clock: VirtualClock::new(at),
        settings: RouterSettings::default(),
    };
    (router, bus, scheduler)
}

/// The raw dedup item of an event (`EVENT#<id>`, see docs/storage.md), which the port does not read.
async fn dedup_item(h: &Moto, event_id: &str) -> Option<String> {
    let out = h
        .client
        .get_item()
        .table_name(h.store.table())
        .key("pk", AttributeValue::S(format!("EVENT#{event_id}")))
        .key("sk", AttributeValue::S("EVENT".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item
        .and_then(|item| item.get("status").and_then(|s| s.as_s().ok()).cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_claim_is_a_one_line_backend_error_and_claims_nothing() {
    let Some(h) = moto_table("fault-claim", FAULTS).await else {
        return;
    };
    let claim = contract::claim("throttled-claim", t0());
    h.proxy()
        .fail_next(1, Some("PutItem"), Fault::ThroughputExceeded);
    assert_backend_line(
        h.store.claim_event(&claim).await,
        "PutItem",
        "ProvisionedThroughputExceededException",
    );
    assert_eq!(dedup_item(&h, "throttled-claim").await, None);
    // The platform's retry claims it.
    assert_eq!(h.store.claim_event(&claim).await.unwrap(), Claim::Claimed);
    let seen = h.proxy().take_seen();
    assert_eq!(operations(&seen), ["PutItem", "GetItem", "PutItem"]);
    assert!(seen[0].faulted && !seen[2].faulted);
}

/// The chaos run's dead letter of 2026-12-04 (third session): a deliver function's claim was applied,
/// its answer lost, and the SDK's retry of the put met the claim it had just written; read as
/// another invocation's, the job failed "being sent by another invocation" on each of the
/// platform's tries while the claim lasted, and the last try ran out before the email was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_answer_was_lost_and_that_the_sdk_sent_again_is_still_ours() {
    let Some(h) = moto_table("fault-claim-lost", Options::PROXIED).await else {
        return;
    };
    let claim = contract::claim("lost-answer-claim", t0());
    h.proxy().fail_next(1, Some("PutItem"), Fault::LostAnswer);
    assert_eq!(h.store.claim_event(&claim).await.unwrap(), Claim::Claimed);
    assert_eq!(
        operations(&h.proxy().take_seen()),
        ["PutItem", "PutItem"],
        "the SDK sent the put again after its answer was lost"
    );
    // Anyone else's claim of the same event still loses to it.
    let other = contract::claim("lost-answer-claim", t0() + chrono::Duration::seconds(1));
    match h.store.claim_event(&other).await.unwrap() {
        Claim::Duplicate(r) => assert_eq!(r, claim),
        c => panic!("a second claim must lose: {c:?}"),
    }
}

/// The chaos run of 2026-12-04 (fourth session): an acknowledgement's write was applied, its answer
/// lost, and the SDK's retry of the put met the version it had just written; read as another
/// invocation's change, the api answered 409 "try again" to an ack that had landed, and left the
/// effects it owed to whoever came next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_write_whose_answer_was_lost_and_that_the_sdk_sent_again_is_still_ours() {
    let Some(h) = moto_table("fault-update-lost", Options::PROXIED).await else {
        return;
    };
    let mut rec = contract::record("lost-answer-update", "fp-lost-answer-update", None);
    h.store.create_alert(&rec).await.unwrap();
    rec.version += 1;
    rec.status = Status::Acknowledged;
    h.proxy().take_seen();
    h.proxy().fail_next(1, Some("PutItem"), Fault::LostAnswer);
    h.store.update_alert(&rec).await.unwrap();
    assert_eq!(
        operations(&h.proxy().take_seen()),
        ["PutItem", "PutItem"],
        "the SDK sent the put again after its answer was lost"
    );
    let stored = h.store.get_alert(&rec.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.status),
        (rec.version, Status::Acknowledged)
    );
    // Anyone else's write of the version it replaced still loses to it.
    let mut other = rec.clone();
    other.status = Status::Resolved;
    assert!(matches!(
        h.store.update_alert(&other).await,
        Err(StoreError::Conflict(_))
    ));
}

/// An opening whose pointer was moved while the answer was lost: the SDK's retry of the pointer's
/// put met the pointer it had just written, which read as another occurrence's, and the opening
/// removed its own alert, which the pointer named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_whose_pointer_answer_was_lost_keeps_its_alert() {
    let Some(h) = moto_table("fault-pointer-lost", Options::PROXIED).await else {
        return;
    };
    let fp = "fp-lost-answer-pointer";
    let rec = contract::record("lost-answer-pointer", fp, None);
    h.proxy().take_seen();
    h.proxy()
        .fail_after(1, 1, Some("PutItem"), Fault::LostAnswer);
    h.store.create_alert(&rec).await.unwrap();
    assert_eq!(
        operations(&h.proxy().take_seen()),
        ["GetItem", "PutItem", "PutItem", "PutItem"],
        "the SDK sent the pointer's put again after its answer was lost"
    );
    assert_eq!(h.store.get_alert(&rec.id).await.unwrap(), Some(rec.clone()));
    assert_eq!(
        h.store.latest_alert(fp).await.unwrap().map(|r| r.id),
        Some(rec.id.clone())
    );
}

/// A noise state's write (a group's, a flap history's) whose answer was lost, sent again by the SDK:
/// its own, at its creation and at a later version; another write of the same version still loses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noise_state_write_whose_answer_was_lost_and_that_the_sdk_sent_again_is_still_ours() {
    let Some(h) = moto_table("fault-noise-lost", Options::PROXIED).await else {
        return;
    };
    let mut state = NoiseState {
        key: "flap/lost-answer".into(),
        version: 1,
        body: NoiseBody::Inhibit(InhibitState::default()),
        pending: Default::default(),
    };
    for version in [1, 2] {
        state.version = version;
        h.proxy().take_seen();
        h.proxy().fail_next(1, Some("PutItem"), Fault::LostAnswer);
        h.store.put_noise_state(&state).await.unwrap();
        assert_eq!(operations(&h.proxy().take_seen()), ["PutItem", "PutItem"]);
    }
    assert_eq!(
        h.store
            .noise_state(&state.key)
            .await
            .unwrap()
            .map(|s| s.version),
        Some(2)
    );
    assert!(matches!(
        h.store.put_noise_state(&state).await,
        Err(StoreError::Conflict(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_create_is_a_backend_error_not_a_conflict_and_the_same_create_then_goes_through()
 {
    let Some(h) = moto_table("fault-create", FAULTS).await else {
        return;
    };
    let mut first = contract::record("fault-create-1", "fp-fault-create", None);
    // Created owing its opening's effects, as the router creates every alert that pages.
    first.pending.at = Some(t0());
    first.pending.cancel.push("fault-create-timer".into());

    // The alert's own put throttled: nothing is written.
    h.proxy().fail_next(1, Some("PutItem"), Fault::Throttling);
    assert_backend_line(
        h.store.create_alert(&first).await,
        "PutItem",
        "ThrottlingException",
    );
    assert_eq!(h.store.get_alert(&first.id).await.unwrap(), None);

    // The pointer's put throttled (a crash between the two puts leaves the same): the alert is
    // written, but nobody points at it and nobody lists it.
    h.proxy()
        .fail_after(1, 1, Some("PutItem"), Fault::ThroughputExceeded);
    assert_backend_line(
        h.store.create_alert(&first).await,
        "PutItem",
        "ProvisionedThroughputExceededException",
    );
    assert!(h.store.get_alert(&first.id).await.unwrap().is_some());
    assert_eq!(
        h.store.latest_alert(&first.fingerprint).await.unwrap(),
        None
    );
    assert!(!listed(&h, &first.id).await);

    // Faults over, the same create (the retry of the same event decides the same id) takes it over.
    h.store.create_alert(&first).await.unwrap();
    assert_eq!(
        h.store.latest_alert(&first.fingerprint).await.unwrap(),
        Some(first.clone())
    );
    // Once its opening is carried out and it is written without it, it is listed.
    let mut settled = first.clone();
    settled.pending = Default::default();
    settled.version = 2;
    h.store.update_alert(&settled).await.unwrap();
    assert!(listed(&h, &first.id).await);
    // A second create of it now is a conflict: it is nobody's leftover any more.
    assert!(matches!(
        h.store.create_alert(&first).await,
        Err(StoreError::Conflict(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_that_loses_the_pointer_to_another_leaves_no_alert_behind() {
    let Some(h) = moto_table("fault-create-race", FAULTS).await else {
        return;
    };
    let fp = "fp-fault-create-race";
    let winner = contract::record("race-winner", fp, None);
    let mut loser = contract::record("race-loser", fp, None);
    loser.pending.at = Some(t0());
    loser.pending.cancel.push("race-timer".into());
    // The loser read "no occurrence yet" and put its alert; the winner moved the pointer first.
    h.store.create_alert(&winner).await.unwrap();
    h.proxy().take_seen();
    assert!(matches!(
        h.store.create_alert(&loser).await,
        Err(StoreError::Conflict(_))
    ));
    // Read the pointer, found it moved: nothing written at all.
    assert_eq!(operations(&h.proxy().take_seen()), ["GetItem"]);
    assert_eq!(h.store.get_alert(&loser.id).await.unwrap(), None);

    // The race proper: the loser's read of the pointer came before the winner's write (played by
    // answering that read "no item"), so it puts its alert, fails to move the pointer, and removes
    // its alert again.
    h.proxy().take_seen();
    h.proxy().fail_next(
        1,
        Some("GetItem"),
        Fault::Custom {
            status: 200,
            body: "{}".into(),
        },
    );
    assert!(matches!(
        h.store.create_alert(&loser).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        operations(&h.proxy().take_seen()),
        ["GetItem", "PutItem", "PutItem", "DeleteItem"]
    );
    assert_eq!(h.store.get_alert(&loser.id).await.unwrap(), None);
    assert_eq!(
        h.store.latest_alert(fp).await.unwrap().map(|r| r.id),
        Some(winner.id.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_transaction_is_a_backend_error_not_a_conflict() {
    let Some(h) = moto_table("fault-transaction", FAULTS).await else {
        return;
    };
    // Silences are the store's one transaction (the silence and its by-end twin).
    let silence = tocsin_core::noise::Silence {
        id: "fault-transaction-silence".into(),
        matchers: vec!["service = checkout".into()],
        created_by: "alice".into(),
        comment: "deploy".into(),
        created_at: t0(),
        starts_at: t0(),
        ends_at: t0() + chrono::Duration::hours(1),
        expired_at: None,
        expired_by: None,
    };
    h.proxy()
        .fail_next(1, Some("TransactWriteItems"), Fault::Throttling);
    assert_backend_line(
        h.store.create_silence(&silence).await,
        "TransactWriteItems",
        "ThrottlingException",
    );
    // How DynamoDB reports a transaction throttled on one item: a cancellation, but not a lost
    // condition, so still worth a retry.
    let cancelled = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons \
                    [None, ThrottlingError]",
        "CancellationReasons": [
            { "Code": "None" },
            { "Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity of \
              your table or index." },
        ],
    });
    h.proxy().fail_next(
        1,
        Some("TransactWriteItems"),
        Fault::Custom {
            status: 400,
            body: cancelled.to_string(),
        },
    );
    assert_backend_line(
        h.store.create_silence(&silence).await,
        "TransactWriteItems",
        "TransactionCanceledException",
    );
    assert!(h.store.silences().await.unwrap().is_empty());
    // Faults over, the same write goes through.
    h.store.create_silence(&silence).await.unwrap();
    assert_eq!(h.store.silences().await.unwrap(), vec![silence]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_update_is_a_backend_error_not_a_conflict_and_changes_nothing() {
    let Some(h) = moto_table("fault-update", FAULTS).await else {
        return;
    };
    let rec = contract::record("fault-update-1", "fp-fault-update", None);
    h.store.create_alert(&rec).await.unwrap();
    let mut next = rec.clone();
    next.occurrences += 1;
    next.version += 1;

    h.proxy()
        .fail_next(1, Some("PutItem"), Fault::ThroughputExceeded);
    assert_backend_line(
        h.store.update_alert(&next).await,
        "PutItem",
        "ProvisionedThroughputExceededException",
    );
    h.proxy()
        .fail_next(1, Some("PutItem"), Fault::InternalServerError);
    assert_backend_line(
        h.store.update_alert(&next).await,
        "PutItem",
        "InternalServerError",
    );
    assert_eq!(h.store.get_alert(&rec.id).await.unwrap(), Some(rec));

    h.store.update_alert(&next).await.unwrap();
    assert_eq!(h.store.get_alert(&next.id).await.unwrap(), Some(next));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_alert_write_during_open_leaves_nothing_half_written_and_the_retry_opens_once()
{
    let Some(h) = moto_table("fault-open", FAULTS).await else {
        return;
    };
    let alert = fixture("01-checkout-5xx-alarm.sns.json");
    let (router, bus, scheduler) = router(&h.store, alert.state_changed_at);

    // Throttled for a while from the alert's own write on (the third PutItem: the claim and the
    // flap state come first): the first try meets one throttle, then the throttling stops.
    h.proxy()
        .fail_after(2, 5, Some("PutItem"), Fault::ThroughputExceeded);
    let failed = router.handle(alert.clone()).await;
    h.proxy().clear();
    let Err(RouterError::Store(StoreError::Backend(message))) = failed else {
        panic!("a throttled open fails the event with a store backend error: {failed:?}");
    };
    assert!(!message.contains('\n'), "{message}");
    let seen = h.proxy().take_seen();
    // The example config has flap damping (the alarm's change is counted: read and write its flap
    // state), silences (listed) and an inhibition rule this alarm is a target of (its state read).
    assert_eq!(
        operations(&seen),
        [
            "PutItem",
            "GetItem",
            "GetItem",
            "PutItem",
            "Query",
            "Query",
            "GetItem",
            "GetItem",
            "PutItem",
            "DeleteItem"
        ],
        "claim, read the latest, count the change for flap damping, look for silences of the \
         previous release (once per process), read the silences not ended, read the inhibition \
         state, read the pointer again as the create does, the failed put of the alert, then the \
         release; nothing else"
    );
    assert!(seen[8].faulted);

    // Nothing half-written: no alert, no pointer, no job, no timer, no trail, and the claim is gone.
    assert_eq!(
        h.store.latest_alert(&alert.fingerprint).await.unwrap(),
        None
    );
    assert!(bus.take_deliveries().is_empty());
    assert_eq!(scheduler.pending(), 0);
    let would_be = tocsin_core::router::alert_id_for(&alert);
    assert_eq!(h.store.get_alert(&would_be).await.unwrap(), None);
    assert!(h.store.audit(&would_be).await.unwrap().is_empty());
    assert_eq!(
        dedup_item(&h, &alert.event_id).await,
        None,
        "claim released"
    );

    // The platform's retry processes the event as if the first try had never happened.
    let entries = router.handle(alert.clone()).await.unwrap();
    assert_eq!(entries[0].action, Action::Open);
    let notified = entries
        .iter()
        .filter(|e| e.action == Action::Notify)
        .count();
    assert!(notified > 0);
    let jobs = bus.take_deliveries();
    let ids: HashSet<&str> = jobs.iter().map(|j| j.delivery_id.as_str()).collect();
    assert_eq!(
        (jobs.len(), ids.len()),
        (notified, notified),
        "one set of jobs"
    );
    let latest = h
        .store
        .latest_alert(&alert.fingerprint)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (latest.id.as_str(), latest.occurrences),
        (entries[0].alert.as_str(), 1)
    );
    // The first escalation step, and the Slack group's repeat timer (the example config groups Slack
    // by service; this critical alert flushed its group at once).
    assert_eq!(
        scheduler.pending_where(|t| matches!(t, Timer::Escalation { .. })),
        1
    );
    assert_eq!(
        scheduler.pending_where(|t| matches!(t, Timer::GroupFlush { .. })),
        1
    );
    let trail = h.store.audit(&latest.id).await.unwrap();
    assert_eq!(trail.iter().filter(|e| e.action == Action::Open).count(), 1);
    assert_eq!(
        dedup_item(&h, &alert.event_id).await.as_deref(),
        Some("completed")
    );

    // And a later redelivery is a duplicate of that one open.
    let again = router.handle(alert).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].action, Action::Dedup);
    assert!(bus.take_deliveries().is_empty());
}

/// Opens `alert` with its pointer's write failing (the fourth PutItem of an opening: claim, flap
/// state, alert, pointer), as a crash between the alert's write and its pointer's would leave it.
async fn open_losing_the_pointer(h: &Moto, router: &FaultyRouter, alert: &Alert) {
    h.proxy()
        .fail_after(3, 1, Some("PutItem"), Fault::InternalServerError);
    let failed = router.handle(alert.clone()).await;
    h.proxy().clear();
    assert!(
        matches!(failed, Err(RouterError::Store(StoreError::Backend(_)))),
        "{failed:?}"
    );
    let id = tocsin_core::router::alert_id_for(alert);
    let left = h.store.get_alert(&id).await.unwrap().unwrap();
    assert!(left.opening_owed(), "the alert is left owing its opening");
    assert!(!listed(h, &id).await, "and nobody lists it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_alert_and_its_pointer_pages_once_on_the_retry() {
    let Some(h) = moto_table("fault-pointer", FAULTS).await else {
        return;
    };
    let alert = fixture("01-checkout-5xx-alarm.sns.json");
    let (router, bus, scheduler) = router(&h.store, alert.state_changed_at);
    open_losing_the_pointer(&h, &router, &alert).await;
    assert!(bus.take_deliveries().is_empty(), "nothing sent yet");
    assert_eq!(scheduler.pending(), 0);

    // The retry of the event takes the alert over and pages once.
    let entries = router.handle(alert.clone()).await.unwrap();
    let notified = entries
        .iter()
        .filter(|e| e.action == Action::Notify)
        .count();
    let jobs = bus.take_deliveries();
    let ids: HashSet<&str> = jobs.iter().map(|j| j.delivery_id.as_str()).collect();
    assert!(notified > 0);
    assert_eq!(
        (jobs.len(), ids.len()),
        (notified, notified),
        "one set of jobs"
    );
    let latest = h
        .store
        .latest_alert(&alert.fingerprint)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, tocsin_core::router::alert_id_for(&alert));
    assert!(!latest.opening_owed());
    assert!(
        listed(&h, &latest.id).await,
        "listed once its opening is carried out"
    );
    let trail = h.store.audit(&latest.id).await.unwrap();
    assert_eq!(trail.iter().filter(|e| e.action == Action::Open).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_left_without_its_pointer_never_pages_once_another_event_opened_the_alarm() {
    let Some(h) = moto_table("fault-pointer-other", FAULTS).await else {
        return;
    };
    let first = fixture("01-checkout-5xx-alarm.sns.json");
    let (router, bus, _scheduler) = router(&h.store, first.state_changed_at);
    open_losing_the_pointer(&h, &router, &first).await;

    // Another transition of the same alarm (another event) arrives before the first one's retry,
    // finds no occurrence and opens one, paging.
    let mut second = first.clone();
    second.event_id = format!("{}-again", first.event_id);
    second.state_changed_at = first.state_changed_at + chrono::Duration::seconds(30);
    router.handle(second.clone()).await.unwrap();
    let paged = bus.take_deliveries();
    assert!(!paged.is_empty());
    let opened = tocsin_core::router::alert_id_for(&second);
    assert!(paged.iter().all(|j| j.alert_id == opened));

    // The first event's retry is a repeat of that occurrence: nobody is paged again, and the alert
    // its first try left behind is never carried out, listed or pointed at.
    router.handle(first.clone()).await.unwrap();
    let again = bus.take_deliveries();
    assert!(again.is_empty(), "no second page: {again:?}");
    let latest = h
        .store
        .latest_alert(&first.fingerprint)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (latest.id.as_str(), latest.occurrences),
        (opened.as_str(), 2)
    );
    let left = tocsin_core::router::alert_id_for(&first);
    assert!(!listed(&h, &left).await);
    assert!(h.store.audit(&left).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_error_on_the_dedup_write_fails_the_event_before_anything_else_happens() {
    let Some(h) = moto_table("fault-dedup", FAULTS).await else {
        return;
    };
    let alert = fixture("01-checkout-5xx-alarm.sns.json");
    let (router, bus, scheduler) = router(&h.store, alert.state_changed_at);

    h.proxy()
        .fail_next(1, Some("PutItem"), Fault::InternalServerError);
    let failed = router.handle(alert.clone()).await;
    let Err(RouterError::Store(StoreError::Backend(message))) = failed else {
        panic!("a 500 on the claim fails the event with a store backend error: {failed:?}");
    };
    assert!(message.contains("InternalServerError"), "{message}");
    let seen = h.proxy().take_seen();
    assert_eq!(
        operations(&seen),
        ["PutItem"],
        "the claim and nothing after it"
    );
    assert!(seen[0].faulted);
    assert!(bus.take_deliveries().is_empty());
    assert_eq!(scheduler.pending(), 0);
    assert_eq!(dedup_item(&h, &alert.event_id).await, None);
    assert_eq!(
        h.store.latest_alert(&alert.fingerprint).await.unwrap(),
        None
    );

    let entries = router.handle(alert).await.unwrap();
    assert_eq!(entries[0].action, Action::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_standard_retry_absorbs_a_single_throttle() {
    let Some(h) = moto_table("fault-sdk-retry", Options::PROXIED).await else {
        return;
    };
    let claim = contract::claim("absorbed", t0());
    h.proxy()
        .fail_next(1, Some("PutItem"), Fault::ThroughputExceeded);
    assert_eq!(h.store.claim_event(&claim).await.unwrap(), Claim::Claimed);
    let seen = h.proxy().take_seen();
    assert_eq!(
        seen,
        [
            Seen {
                operation: "PutItem".into(),
                faulted: true
            },
            Seen {
                operation: "PutItem".into(),
                faulted: false
            },
        ],
        "the SDK sent the claim again after the throttle"
    );
    assert_eq!(
        dedup_item(&h, "absorbed").await.as_deref(),
        Some("in_progress")
    );
}

/// The functions' SDK retry (`tocsin_aws::wiring::retry_config`: 5 attempts, backoff at most 2 s)
/// absorbs four throttles of one call in a row, where the default's 3 attempts fail the call and the
/// whole invocation with it. `make chaos` at 30 % faults with the default dead-lettered 48 of 752
/// deliveries after Lambda's two retries, 26 of them a DynamoDB call failing three times running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_retry_absorbs_four_throttles_of_one_call() {
    let options = Options {
        functions_retry: true,
        ..Options::PROXIED
    };
    let Some(h) = moto_table("fault-fn-retry", options).await else {
        return;
    };
    let claim = contract::claim("absorbed-4", t0());
    h.proxy()
        .fail_next(4, Some("PutItem"), Fault::ThroughputExceeded);
    assert_eq!(h.store.claim_event(&claim).await.unwrap(), Claim::Claimed);
    let seen = h.proxy().take_seen();
    assert_eq!(
        seen.iter().map(|s| s.faulted).collect::<Vec<_>>(),
        [true, true, true, true, false],
        "four throttles, then the claim went through"
    );
}

/// A `LocalBus` whose next publish fails, as SNS does when it throttles.
struct FlakyBus {
    inner: LocalBus,
    fail_next: AtomicBool,
}

impl Bus for FlakyBus {
    async fn publish_alert(&self, alert: &Alert) -> Result<(), BusError> {
        self.inner.publish_alert(alert).await
    }

    async fn publish_delivery(&self, job: &DeliveryJob) -> Result<(), BusError> {
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(BusError::Backend(
                "sns Publish: Throttling: Rate exceeded".into(),
            ));
        }
        self.inner.publish_delivery(job).await
    }
}

// Once the open is written, a failure later in the same invocation (here the first publish) leaves
// the open's outbox on the alert: the retry reads the alert through the executor, which sends what it
// owed, and counts no repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_failure_after_the_open_is_written_still_pages_on_the_retry() {
    let Some(h) = moto_table("fault-publish", FAULTS).await else {
        return;
    };
    let alert = fixture("01-checkout-5xx-alarm.sns.json");
    let (plain, _, _) = router(&h.store, alert.state_changed_at);
    let bus = LocalBus::new();
    let router = Router {
        config: plain.config,
        store: h.store.clone(),
        bus: FlakyBus {
            inner: bus.clone(),
            fail_next: AtomicBool::new(true),
        },
        scheduler: plain.scheduler,
        clock: plain.clock,
        settings: plain.settings,
    };
    let failed = router.handle(alert.clone()).await;
    assert!(matches!(failed, Err(RouterError::Bus(_))), "{failed:?}");
    assert!(bus.take_deliveries().is_empty());
    // The bus down does not hide the alert it opened: listed at once, still owing its pages.
    let id = tocsin_core::router::alert_id_for(&alert);
    assert!(listed(&h, &id).await, "an outage's alerts are listed");
    assert!(
        !h.store
            .get_alert(&id)
            .await
            .unwrap()
            .unwrap()
            .pending
            .is_empty()
    );

    let entries = router.handle(alert.clone()).await.unwrap();
    let latest = h
        .store
        .latest_alert(&alert.fingerprint)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        latest.occurrences, 1,
        "one event, one occurrence: {entries:?}"
    );
    let jobs = bus.take_deliveries();
    assert_eq!(
        jobs.iter()
            .filter(|j| latest.notified.contains(&j.target))
            .count(),
        latest.notified.len(),
        "the retry pages everyone the open recorded as notified"
    );
    assert_eq!(
        jobs.len(),
        latest.notified.len() + 1,
        "and sends its group's notification"
    );
}

// An audit append that fails after the open is written: the open's entries are in its outbox, so
// the retry (once the claim has gone stale) appends them, and the open is on record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_audit_write_after_the_open_keeps_the_open_on_record_after_the_retry() {
    let Some(h) = moto_table("fault-audit", FAULTS).await else {
        return;
    };
    let alert = fixture("01-checkout-5xx-alarm.sns.json");
    let (router, bus, _) = router(&h.store, alert.state_changed_at);
    h.proxy()
        .fail_next(1, Some("BatchWriteItem"), Fault::ThroughputExceeded);
    let failed = router.handle(alert.clone()).await;
    assert!(
        matches!(failed, Err(RouterError::Store(StoreError::Backend(_)))),
        "{failed:?}"
    );
    // What the failed attempt published before the audit append (the direct pages), by target.
    let first: HashMap<(String, String), String> = bus
        .take_deliveries()
        .into_iter()
        .map(|j| ((j.target.channel, j.target.target), j.delivery_id))
        .collect();

    // The platform retries after the claim has gone stale at the latest.
    let stale = RouterSettings::default().in_progress_timeout;
    router
        .clock
        .set(alert.state_changed_at + chrono::TimeDelta::from_std(stale).unwrap());
    router.handle(alert.clone()).await.unwrap();
    let latest = h
        .store
        .latest_alert(&alert.fingerprint)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.occurrences, 1, "one event, one occurrence");
    let trail = h.store.audit(&latest.id).await.unwrap();
    assert_eq!(
        trail.iter().filter(|e| e.action == Action::Open).count(),
        1,
        "the open is on record: {trail:?}"
    );
    // The retry re-sends them under the same ids (deliver sends each id once), and sends what the
    // attempt never reached (the group's notification).
    for j in bus.take_deliveries() {
        if let Some(id) = first.get(&(j.target.channel.clone(), j.target.target.clone())) {
            assert_eq!(&j.delivery_id, id, "re-sent jobs keep their delivery ids");
        }
    }
}
