//! The deliver handler on the embedded store and bus, with a channel that answers from a script:
//! idempotent delivery ids, attempts on record across invocations, final failure to the fallback.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tocsin_core::config::ChannelKind;
use tocsin_core::ports::{AlertStore, Clock, Notifier, SendError, Sent};
use tocsin_core::record::{Action, DeliveryJob, DeliveryKind, Status, Target};
use tocsin_core::render::Rendered;
use tocsin_core::retry::{RetryPolicy, Sleeper};
use tocsin_deliver::{
    DeliverError, Deliverer, Input, LinkSettings, NoThrottle, Settings, Throttle,
};
use tocsin_local::{
    FaultMode, Faults, FaultyStore, LocalBus, LocalFlushTimer, MemoryHold, MemoryStore,
    VirtualClock,
};

/// The one-click key of the tests (32 bytes or more, as every key must be).
const LINK_KEY: &[u8] = b"link-signing-key-0123456789abcdef";

/// A channel answering each send with the next scripted reply (then success), recording what it got.
#[derive(Clone, Default)]
struct Scripted {
    replies: Arc<Mutex<VecDeque<Result<Sent, SendError>>>>,
    sent: Arc<Mutex<Vec<Rendered>>>,
    threads: Arc<Mutex<Vec<Option<String>>>>,
    /// Calls, whatever they answered.
    calls: Arc<std::sync::atomic::AtomicU32>,
    /// Whether the channel sends receipts (as SES through a configuration set does).
    receipts: Arc<std::sync::atomic::AtomicBool>,
}

impl Scripted {
    fn with(replies: Vec<Result<Sent, SendError>>) -> Self {
        Scripted {
            replies: Arc::new(Mutex::new(replies.into())),
            sent: Arc::default(),
            threads: Arc::default(),
            calls: Arc::default(),
            receipts: Arc::default(),
        }
    }
}

impl Notifier for Scripted {
    async fn send(&self, job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        self.threads.lock().unwrap().push(job.thread.clone());
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let r = self.replies.lock().unwrap().pop_front().unwrap_or(Ok(Sent {
            provider_id: Some("m-1".into()),
        }));
        if r.is_ok() {
            self.sent.lock().unwrap().push(message.clone());
        }
        r
    }

    fn sends_receipts(&self) -> bool {
        self.receipts.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[derive(Clone, Default)]
struct NoWait(Arc<Mutex<Vec<Duration>>>);

impl Sleeper for NoWait {
    async fn sleep(&self, d: Duration) {
        self.0.lock().unwrap().push(d);
    }
}

fn err(retryable: bool, class: &str) -> Result<Sent, SendError> {
    Err(SendError {
        retryable,
        retry_after: None,
        class: class.into(),
        reason: format!("{class} from receiver"),
    })
}

const CONFIG: &str = r##"
channels:
  oncall-sms: {type: sms, fallback: oncall-email}
  oncall-email: {type: email, from: "tocsin@example.com", default_to: ["oncall@example.com"]}
people:
  alice: {phone: "+447700900001", email: alice@example.com}
  bob: {phone: "+447700900002", email: bob@example.com}
route: {notify: [{channel: oncall-email}]}
"##;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T02:10:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn job(severity: tocsin_core::Severity) -> DeliveryJob {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/sns/metric-alarm.json"
    ))
    .unwrap();
    let mut alert = tocsin_core::source::parse(&bytes).unwrap().remove(0);
    alert.severity = severity;
    DeliveryJob {
        delivery_id: "d-1".into(),
        alert_id: "a-1".into(),
        kind: DeliveryKind::Trigger,
        target: Target {
            channel: "oncall-sms".into(),
            channel_kind: ChannelKind::Sms,
            target: "alice".into(),
            address: Some("+447700900001".into()),
        },
        level: None,
        alert,
        status: Status::Open,
        created_at: t0(),
        thread: None,
    }
}

struct Rig<H = tocsin_deliver::NoThrottle, T = tocsin_deliver::NoThrottle, S = MemoryStore> {
    d: Deliverer<S, LocalBus, Scripted, VirtualClock, NoWait, H, T>,
}

fn rig(replies: Vec<Result<Sent, SendError>>) -> Rig {
    rig_with(replies, None)
}

/// A rig whose SMS channel holds what a recipient gets within a minute of their last message.
fn throttled(replies: Vec<Result<Sent, SendError>>) -> Rig<MemoryHold, LocalFlushTimer> {
    rig_with(
        replies,
        Some(Throttle {
            hold: MemoryHold::new(),
            timer: LocalFlushTimer::new(),
            window: Duration::from_secs(60),
        }),
    )
}

fn rig_with<H, T>(
    replies: Vec<Result<Sent, SendError>>,
    throttle: Option<Throttle<H, T>>,
) -> Rig<H, T> {
    rig_on(MemoryStore::new(), replies, throttle)
}

/// A rig whose store fails the call `Faults` says.
fn faulty(faults: &Faults) -> Rig<NoThrottle, NoThrottle, FaultyStore<MemoryStore>> {
    let store = FaultyStore {
        inner: MemoryStore::new(),
        faults: faults.clone(),
    };
    rig_on(store, vec![], None)
}

fn rig_on<S, H, T>(
    store: S,
    replies: Vec<Result<Sent, SendError>>,
    throttle: Option<Throttle<H, T>>,
) -> Rig<H, T, S> {
    let config = Arc::new(tocsin_core::config::load(CONFIG).unwrap());
    Rig {
        d: Deliverer {
            config,
            store,
            bus: LocalBus::new(),
            notifier: Scripted::with(replies),
            clock: VirtualClock::new(t0()),
            sleeper: NoWait::default(),
            settings: Settings {
                policy: RetryPolicy {
                    max_attempts: 3,
                    jitter: false,
                    ..RetryPolicy::default()
                },
                invocations: 3,
                receipt_wait: Duration::from_secs(2),
                deferrals: 6,
                links: LinkSettings {
                    base_url: "https://tocsin.example".into(),
                    keys: tocsin_core::token::KeyRing::single("k1", LINK_KEY.to_vec()).unwrap(),
                    ttl: Duration::from_secs(3600),
                },
            },
            throttle,
        },
    }
}

#[tokio::test]
async fn a_job_is_sent_once_and_a_redelivered_job_sends_nothing_again() {
    let r = rig(vec![]);
    let j = job(tocsin_core::Severity::High);
    let first = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].action, Action::Attempt);
    assert_eq!(
        first[0].attempt.as_ref().unwrap().outcome,
        tocsin_core::retry::AttemptOutcome::Sent
    );
    let again = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again[0].action, Action::Dedup);
    assert!(
        again[0].reason.contains("already sent (sent (m-1))"),
        "{}",
        again[0].reason
    );
    assert_eq!(
        r.d.notifier.sent.lock().unwrap().len(),
        1,
        "one message, not two"
    );
}

/// A store failure at each call of a delivery in turn (the claim, the audit read, the records of the
/// send), then the platform's retries (Lambda async: two): the channel gets the message once, and
/// the job ends on record as sent. Before the claim of a sent job was never released, a failure
/// writing its record released the claim and the retry sent the message again.
#[tokio::test]
async fn a_store_failure_at_any_call_of_a_delivery_never_sends_it_twice() {
    let j = job(tocsin_core::Severity::High);
    let faults = Faults::new();
    let clean = faulty(&faults);
    clean.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    let calls = faults.calls();
    assert_eq!(
        calls,
        vec![
            "store.claim_event",
            "store.audit_since",
            "store.append_audit"
        ]
    );
    for (k, call) in calls.iter().enumerate() {
        let faults = Faults::new();
        let r = faulty(&faults);
        faults.fail_at(k, FaultMode::Error);
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            let result = r.d.deliver(&j, Duration::from_secs(60)).await;
            outcomes.push(result.as_ref().map(|_| ()).map_err(ToString::to_string));
            if result.is_ok() {
                break;
            }
        }
        assert_eq!(
            r.d.notifier.sent.lock().unwrap().len(),
            1,
            "a failure of call {k} ({call}): one message, not two or none; invocations: {outcomes:?}"
        );
        let again = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
        assert_eq!(
            again[0].action,
            Action::Dedup,
            "call {k} ({call}): {again:?}"
        );
    }
}

/// A delivery the channel takes writes its claim and appends its attempts: two writes. The claim
/// stays in progress; the attempts are what says it was sent.
#[tokio::test]
async fn a_sent_delivery_writes_its_claim_and_its_attempts() {
    let j = job(tocsin_core::Severity::High);
    let faults = Faults::new();
    let r = faulty(&faults);
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    let writes: Vec<_> = faults.writes().into_iter().map(|(w, _)| w).collect();
    assert_eq!(writes, vec!["store.claim_event", "store.append_audit"]);
}

/// An invocation that died holding the claim before the channel took anything (a timeout, a kill):
/// once its claim lapses, the platform's retry takes it over, finds no send on record, and sends.
#[tokio::test]
async fn a_claim_left_by_an_invocation_that_died_before_sending_is_taken_over_and_sent() {
    let r = rig(vec![]);
    let j = job(tocsin_core::Severity::High);
    let dead = tocsin_core::record::DedupRecord {
        event_id: format!("delivery#{}", j.delivery_id),
        status: tocsin_core::record::ClaimStatus::InProgress,
        expires_at: t0() + chrono::TimeDelta::days(7),
        in_progress_until: t0() + chrono::TimeDelta::seconds(90),
        transport: j.target.channel.clone(),
        claimed_at: t0(),
        alert_id: Some(j.alert_id.clone()),
        outcome: None,
    };
    r.d.store.claim_event(&dead).await.unwrap();
    let held = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(held, DeliverError::InProgress(_)), "{held}");
    assert!(r.d.notifier.sent.lock().unwrap().is_empty());
    r.d.clock.set(t0() + chrono::TimeDelta::minutes(2));
    let sent = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(sent[0].action, Action::Attempt, "{sent:?}");
    assert_eq!(r.d.notifier.sent.lock().unwrap().len(), 1);
}

/// A redelivery that cannot read whether the job was sent (the trail's read fails) fails, and leaves
/// the claim alone: it is the first invocation's, whose message is out; released, the next
/// redelivery would claim the id afresh and send again.
#[tokio::test]
async fn a_redelivery_that_cannot_read_the_trail_leaves_the_claim_and_sends_nothing() {
    let j = job(tocsin_core::Severity::High);
    let faults = Faults::new();
    let r = faulty(&faults);
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    faults.clear();
    // The redelivery's calls: its claim (0), the trail's read (1).
    faults.fail_at(1, FaultMode::Error);
    let e = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(e, DeliverError::Store(_)), "{e}");
    assert!(
        !faults.calls().contains(&"store.release_event"),
        "{:?}",
        faults.calls()
    );
    let again = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again[0].action, Action::Dedup, "{again:?}");
    assert_eq!(r.d.notifier.sent.lock().unwrap().len(), 1, "one message");
}

/// A redelivered job (SNS delivers at least once) costs one write, its failed claim: its `dedup`
/// line is returned for the log, not appended to the alert's trail.
#[tokio::test]
async fn a_redelivered_job_writes_nothing_but_its_failed_claim() {
    let j = job(tocsin_core::Severity::High);
    let faults = Faults::new();
    let r = faulty(&faults);
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    let trail = r.d.store.inner.audit("a-1").await.unwrap().len();
    faults.clear();
    let again = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again[0].action, Action::Dedup);
    let writes: Vec<_> = faults.writes().into_iter().map(|(w, _)| w).collect();
    assert_eq!(writes, vec!["store.claim_event"]);
    assert_eq!(r.d.store.inner.audit("a-1").await.unwrap().len(), trail);
}

/// Found by the chaos run (2026-12-04): one delivery id published under two alerts (two flushes
/// of one group at one instant shared an id, each under its representative alert; the router no
/// longer gives them one, `two_flushes_of_one_group_at_one_instant_are_two_deliveries`). The
/// second job, after the first invocation's deadline, takes the lapsed claim over and finds the
/// send on record in the trail of the alert whose job claimed it, and marks the claim sent, so a
/// third under yet another alert stops at the claim. When the second looked only in its own
/// alert's trail, it sent the message again.
#[tokio::test]
async fn one_delivery_id_published_under_two_alerts_is_sent_once() {
    let r = rig(vec![]);
    let first = job(tocsin_core::Severity::High);
    r.d.deliver(&first, Duration::from_secs(60)).await.unwrap();
    for (minutes, alert) in [(10, "a-2"), (20, "a-3")] {
        r.d.clock.set(t0() + chrono::TimeDelta::minutes(minutes));
        let other = DeliveryJob {
            alert_id: alert.into(),
            ..first.clone()
        };
        let again = r.d.deliver(&other, Duration::from_secs(60)).await.unwrap();
        assert_eq!(again[0].action, Action::Dedup, "{alert}: {again:?}");
    }
    assert_eq!(r.d.notifier.sent.lock().unwrap().len(), 1, "one message");
}

/// Found by the chaos run of 2026-12-04 (fourth session): a job whose first copy was being sent
/// failed "being sent by another invocation", and the platform's retry, after the claim lapsed,
/// took it over with a put whose answer was lost. The SDK sent the put again, the store knew the
/// claim for its own (`Claimed`) but not the claim it had replaced, and the message went out
/// twice (an SMS, a group webhook). Played here by removing the claim: the job finds no claim, and
/// must still find the send on record in its alert's trail, send nothing, and mark the claim sent.
#[tokio::test]
async fn a_job_that_claims_afresh_after_a_lost_takeover_answer_finds_the_send_and_sends_nothing() {
    let r = rig(vec![]);
    let j = job(tocsin_core::Severity::High);
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    let key = format!("delivery#{}", j.delivery_id);
    r.d.store.release_event(&key).await.unwrap();
    assert!(r.d.store.get_event(&key).await.unwrap().is_none());
    r.d.clock.set(t0() + chrono::TimeDelta::minutes(2));
    let again = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again[0].action, Action::Dedup, "{again:?}");
    assert_eq!(r.d.notifier.sent.lock().unwrap().len(), 1, "one message");
    let claim = r.d.store.get_event(&key).await.unwrap().unwrap();
    assert_eq!(claim.status, tocsin_core::record::ClaimStatus::Completed);
}

#[tokio::test]
async fn retryable_failures_fail_the_invocation_and_the_next_invocation_counts_tries_on() {
    let r = rig(vec![
        err(true, "http_500"),
        err(true, "http_500"),
        err(true, "http_503"),
    ]);
    let j = job(tocsin_core::Severity::High);
    let e = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap_err();
    assert!(
        matches!(e, DeliverError::Retryable { invocation: 1, .. }),
        "{e}"
    );
    // The platform retries: this time the channel answers.
    let ok = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        ok[0].attempt.as_ref().unwrap().try_number,
        4,
        "tries continue across invocations"
    );
    let audit = r.d.store.audit("a-1").await.unwrap();
    let classes: Vec<_> = audit
        .iter()
        .filter_map(|e| e.attempt.as_ref())
        .map(|a| (a.try_number, a.outcome.as_str(), a.error_class.clone()))
        .collect();
    assert_eq!(
        classes,
        vec![
            (1, "retryable", Some("http_500".into())),
            (2, "retryable", Some("http_500".into())),
            (3, "retryable", Some("http_503".into())),
            (4, "sent", None),
        ]
    );
    assert_eq!(
        r.d.sleeper.0.lock().unwrap().len(),
        2,
        "two waits between three tries"
    );
}

#[tokio::test]
async fn a_permanent_failure_of_a_critical_alert_goes_to_the_fallback_and_is_dead_lettered() {
    let r = rig(vec![err(false, "http_400")]);
    let j = job(tocsin_core::Severity::Critical);
    let e = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(e, DeliverError::Failed { .. }), "{e}");
    let fallback = r.d.bus.take_deliveries();
    assert_eq!(fallback.len(), 1);
    assert_eq!(fallback[0].target.channel, "oncall-email");
    assert_eq!(
        fallback[0].target.address.as_deref(),
        Some("oncall@example.com")
    );
    assert_ne!(fallback[0].delivery_id, j.delivery_id);
    // Redelivery by the platform: nothing is sent or re-published; it fails again with the reason.
    let again = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap_err();
    assert!(
        again
            .to_string()
            .contains("failed for good: failed: http_400"),
        "{again}"
    );
    assert!(r.d.bus.take_deliveries().is_empty());
    let audit = r.d.store.audit("a-1").await.unwrap();
    assert!(audit.iter().any(|e| e.action == Action::Notify
        && e.channel.as_deref() == Some("oncall-email")
        && e.reason.starts_with("fallback from oncall-sms")));
}

#[tokio::test]
async fn still_failing_on_the_platforms_last_retry_is_final_and_reported_on_the_fallback() {
    let failures = (0..9).map(|_| err(true, "timeout")).collect();
    let r = rig(failures);
    let j = job(tocsin_core::Severity::Medium);
    for invocation in 1..=2 {
        let e = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap_err();
        assert!(
            matches!(e, DeliverError::Retryable { invocation: i, .. } if i == invocation),
            "{e}"
        );
        assert!(r.d.bus.take_deliveries().is_empty());
    }
    let last = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(last, DeliverError::Failed { .. }), "{last}");
    assert_eq!(
        r.d.bus.take_deliveries().len(),
        1,
        "the final failure is reported elsewhere"
    );
}

#[tokio::test]
async fn messages_carry_one_click_links_signed_for_the_target() {
    let r = rig(vec![]);
    let j = job(tocsin_core::Severity::High);
    let links = r.d.links(&j, t0());
    let ack = links.ack.unwrap();
    let token = ack.strip_prefix("https://tocsin.example/a/").unwrap();
    let claims = tocsin_core::token::verify(
        &tocsin_core::token::KeyRing::single("k1", LINK_KEY.to_vec()).unwrap(),
        token,
        t0(),
    )
    .unwrap();
    assert_eq!(
        (
            claims.alert_id.as_str(),
            claims.action.as_str(),
            claims.recipient.as_str()
        ),
        ("a-1", "ack", "alice")
    );
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    let sent = r.d.notifier.sent.lock().unwrap();
    match &sent[0] {
        Rendered::Sms { text } => {
            assert!(
                text.contains("https://tocsin.example/a/"),
                "the SMS carries the ack link: {text}"
            );
            assert!(text.chars().count() <= 1600, "{text}");
        }
        other => panic!("an sms channel renders sms, got {other:?}"),
    }
}

#[test]
fn secret_settings_resolve_from_the_channel_secret_never_the_environment() {
    use tocsin_core::config::Setting;
    use tocsin_core::secret::SecretMap;
    use tocsin_deliver::resolve_setting;
    let secrets = SecretMap::from_pairs([("pagerduty-routing-key", "R0ut1ngK3y")]);
    // The environment holds the old variable: it is not read.
    let env = |n: &str| {
        (n == "TOCSIN_SECRET_TEAMS_WEBHOOK" || n == "SLACK_WEBHOOK_URL")
            .then(|| "from-env".to_string())
    };
    assert_eq!(
        resolve_setting(
            &Setting::Secret("pagerduty-routing-key".into()),
            env,
            &secrets
        ),
        Ok("R0ut1ngK3y".to_string())
    );
    assert_eq!(
        resolve_setting(&Setting::Secret("teams-webhook".into()), env, &secrets),
        Err("secret teams-webhook".to_string())
    );
    assert_eq!(
        resolve_setting(
            &Setting::Literal("tocsin@example.com".into()),
            env,
            &secrets
        ),
        Ok("tocsin@example.com".into())
    );
    assert_eq!(
        resolve_setting(&Setting::Env("SLACK_WEBHOOK_URL".into()), env, &secrets),
        Ok("from-env".into())
    );
    let missing = resolve_setting(&Setting::Env("HOOK_URL".into()), env, &secrets).unwrap_err();
    assert_eq!(missing, "HOOK_URL");
}

#[tokio::test]
async fn a_follow_up_to_the_same_target_carries_the_first_messages_id_and_others_do_not() {
    let r = rig(vec![
        Ok(Sent {
            provider_id: Some("C0OPS/1700000000.000100".into()),
        }),
        Ok(Sent {
            provider_id: Some("C0OPS/1700000000.000100".into()),
        }),
        Ok(Sent {
            provider_id: Some("C0OPS/1700000099.000900".into()),
        }),
    ]);
    let first = job(tocsin_core::Severity::High);
    r.d.deliver(&first, Duration::from_secs(60)).await.unwrap();

    let mut resolved = first.clone();
    resolved.delivery_id = "d-2".into();
    resolved.kind = DeliveryKind::Resolve;
    let entries =
        r.d.deliver(&resolved, Duration::from_secs(60))
            .await
            .unwrap();
    assert_eq!(
        entries[0].attempt.as_ref().unwrap().provider_id.as_deref(),
        Some("C0OPS/1700000000.000100"),
        "the audit keeps the receiver's message id"
    );

    let mut other_target = first.clone();
    other_target.delivery_id = "d-3".into();
    other_target.target.target = "bob".into();
    other_target.target.address = Some("+447700900002".into());
    r.d.deliver(&other_target, Duration::from_secs(60))
        .await
        .unwrap();

    assert_eq!(
        *r.d.notifier.threads.lock().unwrap(),
        vec![None, Some("C0OPS/1700000000.000100".into()), None],
        "the first message starts the thread; the resolution follows it; bob's is his own"
    );
}

/// A job for alice's phone about alarm `name`, made `secs` after t0.
fn sms_job(id: &str, name: &str, severity: tocsin_core::Severity, secs: i64) -> DeliveryJob {
    let mut j = job(severity);
    j.delivery_id = id.into();
    j.alert_id = format!("alert-{id}");
    j.alert.alarm_name = name.into();
    j.created_at = t0() + chrono::TimeDelta::seconds(secs);
    j
}

impl Rig<MemoryHold, LocalFlushTimer> {
    /// Delivers an SMS job for alice (see [`sms_job`]); it must not fail.
    async fn sms(
        &self,
        id: &str,
        name: &str,
        severity: tocsin_core::Severity,
        secs: i64,
    ) -> Vec<tocsin_core::record::AuditEntry> {
        self.d
            .deliver(&sms_job(id, name, severity, secs), Duration::from_secs(60))
            .await
            .unwrap()
    }

    fn timer(&self) -> &LocalFlushTimer {
        &self.d.throttle.as_ref().unwrap().timer
    }
}

fn texts(r: &Rig<MemoryHold, LocalFlushTimer>) -> Vec<String> {
    r.d.notifier
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|m| match m {
            Rendered::Sms { text } => text.clone(),
            other => panic!("not an sms: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_recipient_gets_one_sms_a_minute_and_the_rest_in_one_summary_when_the_minute_ends() {
    let r = throttled(vec![]);
    let left = Duration::from_secs(60);
    let clock = &r.d.clock;
    let at = |secs| t0() + chrono::TimeDelta::seconds(secs);
    r.sms("d-1", "disk-full", tocsin_core::Severity::Medium, 0)
        .await;
    clock.set(at(10));
    let held = r
        .sms("d-2", "api-5xx", tocsin_core::Severity::High, 10)
        .await;
    assert_eq!(held[0].action, Action::Suppress);
    assert!(
        held[0].reason.contains("throttled") && held[0].reason.contains("2026-11-20T02:11:00"),
        "{}",
        held[0].reason
    );
    clock.set(at(30));
    r.sms("d-3", "orders-db-down", tocsin_core::Severity::Critical, 30)
        .await;
    assert_eq!(
        texts(&r).len(),
        1,
        "only the first message went out in the minute"
    );
    assert!(
        r.d.throttle
            .as_ref()
            .unwrap()
            .timer
            .take_due(t0() + chrono::TimeDelta::seconds(59))
            .is_empty()
    );

    clock.set(at(60));
    let due = r.d.throttle.as_ref().unwrap().timer.take_due(clock.now());
    assert_eq!(due.len(), 1, "two held messages, one flush");
    r.d.flush(&due[0], left).await.unwrap();
    let sent = texts(&r);
    assert_eq!(sent.len(), 2);
    assert!(
        // One segment: the link (with its key id) leaves room to name the most severe alert only.
        sent[1].starts_with(
            "2 alerts: CRIT orders-db-down; +1 more. Ack: https://tocsin.example/a/k1."
        ),
        "{}",
        sent[1]
    );
    // Each held alert's own trail says how it was finally sent.
    for id in ["alert-d-2", "alert-d-3"] {
        let audit = r.d.store.audit(id).await.unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == Action::Notify && e.reason.contains("in one message of 2")),
            "{id}: {audit:?}"
        );
    }
    // A flush fired twice sends nothing more; so does a redelivered held job.
    r.d.flush(&due[0], left).await.unwrap();
    r.sms("d-2", "api-5xx", tocsin_core::Severity::High, 10)
        .await;
    assert_eq!(texts(&r).len(), 2);
}

#[tokio::test]
async fn a_lone_held_sms_goes_out_as_itself_and_other_recipients_are_not_held() {
    let r = throttled(vec![]);
    let left = Duration::from_secs(60);
    r.sms("d-1", "disk-full", tocsin_core::Severity::Medium, 0)
        .await;
    let mut bob = sms_job("d-b", "disk-full", tocsin_core::Severity::Medium, 0);
    bob.target.target = "bob".into();
    bob.target.address = Some("+447700900002".into());
    r.d.deliver(&bob, left).await.unwrap();
    r.sms("d-2", "api-5xx", tocsin_core::Severity::High, 5)
        .await;
    assert_eq!(
        texts(&r).len(),
        2,
        "alice's first and bob's; alice's second is held"
    );

    r.d.clock.set(t0() + chrono::TimeDelta::seconds(61));
    let due = r.timer().take_due(r.d.clock.now());
    r.d.flush(&due[0], left).await.unwrap();
    let sent = texts(&r);
    assert!(sent[2].starts_with("HIGH api-5xx ALARM"), "{}", sent[2]);
}

#[tokio::test]
async fn a_flush_that_finds_the_window_taken_again_waits_for_its_end() {
    let r = throttled(vec![]);
    let left = Duration::from_secs(60);
    r.sms("d-1", "disk-full", tocsin_core::Severity::Medium, 0)
        .await;
    r.sms("d-2", "api-5xx", tocsin_core::Severity::High, 5)
        .await;
    let timer = &r.d.throttle.as_ref().unwrap().timer;
    r.d.clock.set(t0() + chrono::TimeDelta::seconds(60));
    let first = timer.take_due(r.d.clock.now());
    // Another message takes the new window before the flush runs.
    r.sms("d-3", "cpu-high", tocsin_core::Severity::Low, 60)
        .await;
    r.d.flush(&first[0], left).await.unwrap();
    assert_eq!(texts(&r).len(), 2, "the flush waited");
    assert_eq!(
        timer.next_due(),
        Some(t0() + chrono::TimeDelta::seconds(120)),
        "rescheduled for the end of the window it found"
    );
    r.d.clock.set(t0() + chrono::TimeDelta::seconds(120));
    let again = timer.take_due(r.d.clock.now());
    r.d.flush(&again[0], left).await.unwrap();
    assert!(texts(&r)[2].starts_with("HIGH api-5xx"), "{:?}", texts(&r));
}

#[tokio::test]
async fn a_failed_summary_keeps_the_held_messages_for_the_next_try() {
    let r = throttled(vec![
        Ok(Sent::default()),
        err(true, "sns_throttled"),
        err(true, "sns_throttled"),
        err(true, "sns_throttled"),
    ]);
    let left = Duration::from_secs(60);
    r.sms("d-1", "disk-full", tocsin_core::Severity::Medium, 0)
        .await;
    r.sms("d-2", "api-5xx", tocsin_core::Severity::High, 5)
        .await;
    r.sms("d-3", "cpu-high", tocsin_core::Severity::Low, 6)
        .await;
    r.d.clock.set(t0() + chrono::TimeDelta::seconds(60));
    let due = r.timer().take_due(r.d.clock.now());
    let failed = r.d.flush(&due[0], left).await;
    assert!(
        matches!(failed, Err(DeliverError::Retryable { .. })),
        "{failed:?}"
    );
    let hold = &r.d.throttle.as_ref().unwrap().hold;
    use tocsin_core::throttle::HoldStore;
    assert_eq!(
        hold.held(&due[0].key).await.unwrap().len(),
        2,
        "nothing lost"
    );
    // The platform retries the flush later; the window has passed again by then.
    r.d.clock.set(t0() + chrono::TimeDelta::seconds(130));
    r.d.flush(&due[0], left).await.unwrap();
    assert!(
        texts(&r)[1].starts_with("2 alerts: HIGH api-5xx; LOW cpu-high"),
        "{:?}",
        texts(&r)
    );
    assert!(hold.held(&due[0].key).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_deferred_sms_is_not_held_in_the_window_its_own_first_try_took() {
    // Its first try took alice's window and lost its answer; the deferred job, a second later, is
    // the same message: held for the summary, it would go out again when the minute ended, beside
    // the first try's, which its receipt says is out.
    let r = throttled(vec![lost_answer()]);
    r.d.notifier
        .receipts
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let j = sms_job("d-1", "disk-full", tocsin_core::Severity::Medium, 0);
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    let again = r.d.bus.take_deliveries();
    assert_eq!(again.len(), 1, "deferred");
    r.d.clock.set(t0() + chrono::TimeDelta::seconds(1));
    r.d.record_receipt(&receipt_of(&j)).await.unwrap();
    let entries =
        r.d.deliver(&again[0], Duration::from_secs(60))
            .await
            .unwrap();
    says_sent_by_its_receipt(&entries[0]);
    assert!(
        r.timer()
            .take_due(t0() + chrono::TimeDelta::minutes(2))
            .is_empty(),
        "nothing held, no flush"
    );
    assert_eq!(
        r.d.notifier
            .calls
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn a_deliver_function_takes_sns_deliveries_and_its_own_flush_schedules() {
    let sns = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/sns/metric-alarm.json"
    ))
    .unwrap();
    assert!(matches!(
        serde_json::from_slice::<Input>(&sns).unwrap(),
        Input::Sns(_)
    ));
    let flush = r#"{"flush":{"channel":"oncall-sms","key":"sms#oncall-sms#+447700900001","due":"2026-11-20T02:11:00Z"}}"#;
    match serde_json::from_str::<Input>(flush).unwrap() {
        Input::Flush {
            flush,
            trace_header,
        } => {
            assert_eq!(flush.key, "sms#oncall-sms#+447700900001");
            assert_eq!(trace_header, None);
        }
        other => panic!("{other:?}"),
    }
    // A flush scheduled within a traced invocation carries its trace (Scheduler starts its own).
    let traced = r#"{"flush":{"channel":"oncall-sms","key":"k","due":"2026-11-20T02:11:00Z"},"trace_header":"Root=1-5759e988-bd862e3fe1be46a994272793"}"#;
    match serde_json::from_str::<Input>(traced).unwrap() {
        Input::Flush { trace_header, .. } => assert_eq!(
            trace_header.as_deref(),
            Some("Root=1-5759e988-bd862e3fe1be46a994272793")
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        serde_json::from_str::<Input>(r#"{"hello":1}"#).is_err(),
        "anything else is refused"
    );
}

#[tokio::test]
async fn a_job_for_a_number_the_config_does_not_give_the_channel_is_refused_and_on_record() {
    let r = rig(vec![]);
    let mut j = job(tocsin_core::Severity::Critical);
    // Someone who may publish to the deliveries topic names a premium-rate number.
    j.target.target = "+19005550100".into();
    j.target.address = Some("+19005550100".into());
    let entries = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, Action::Suppress);
    assert!(
        entries[0].reason.starts_with(tocsin_deliver::REFUSED),
        "{}",
        entries[0].reason
    );
    assert!(
        !entries[0].reason.contains("+1900"),
        "{}",
        entries[0].reason
    );
    assert!(r.d.notifier.sent.lock().unwrap().is_empty(), "nothing sent");
    let audit = r.d.store.audit("a-1").await.unwrap();
    assert_eq!(audit, entries, "the refusal is in the alert's audit");
    // The same person at another number: refused too.
    j.target.target = "alice".into();
    let again = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert!(again[0].reason.starts_with(tocsin_deliver::REFUSED));
    assert!(r.d.notifier.sent.lock().unwrap().is_empty());
}

// --- Send receipts (tocsin_core::receipt): a send whose answer was lost. ---

fn lost_answer() -> Result<Sent, SendError> {
    err(true, tocsin_core::receipt::UNCONFIRMED)
}

/// An email job, on a channel that sends receipts.
fn email_job() -> DeliveryJob {
    let mut j = job(tocsin_core::Severity::Critical);
    j.target = Target {
        channel: "oncall-email".into(),
        channel_kind: ChannelKind::Email,
        target: "alice".into(),
        address: Some("alice@example.com".into()),
    };
    j
}

/// A rig whose channel sends receipts (as SES through a configuration set does).
fn with_receipts(replies: Vec<Result<Sent, SendError>>) -> Rig {
    let r = rig(replies);
    r.d.notifier
        .receipts
        .store(true, std::sync::atomic::Ordering::Relaxed);
    r
}

/// The channel's sends, whatever they answered.
fn calls(r: &Rig) -> u32 {
    r.d.notifier
        .calls
        .load(std::sync::atomic::Ordering::Relaxed)
}

fn receipt_of(j: &DeliveryJob) -> tocsin_core::receipt::SendReceipt {
    tocsin_core::receipt::SendReceipt {
        tag: tocsin_core::receipt::tag(&j.delivery_id),
        message_id: "ses-0001".into(),
        at: t0(),
    }
}

fn attempts(r: &Rig, alert: &str) -> Vec<(u32, String, Option<String>)> {
    let audit = futures_lite(r.d.store.audit(alert)).unwrap();
    audit
        .iter()
        .filter_map(|e| e.attempt.as_ref())
        .map(|a| {
            (
                a.try_number,
                a.outcome.as_str().to_string(),
                a.error_class.clone(),
            )
        })
        .collect()
}

/// Runs a future of the memory store (never pending) to its end.
fn futures_lite<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[tokio::test]
async fn a_send_whose_answer_was_lost_is_confirmed_by_its_receipt_and_not_sent_again() {
    let r = with_receipts(vec![lost_answer()]);
    let j = email_job();
    // SES took it: its send event came back as the delivery's receipt.
    r.d.record_receipt(&receipt_of(&j)).await.unwrap();
    let entries = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(calls(&r), 1, "one send: the lost answer is not sent again");
    let a = entries[0].attempt.as_ref().unwrap();
    assert_eq!(a.outcome, tocsin_core::retry::AttemptOutcome::Sent);
    assert_eq!(a.provider_id.as_deref(), Some("ses-0001"));
    assert!(
        entries[0]
            .reason
            .contains("its send receipt says the channel took it"),
        "{}",
        entries[0].reason
    );
    let again = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        again[0].action,
        Action::Dedup,
        "a redelivery stops at the record"
    );
    assert_eq!(calls(&r), 1);
}

/// The jobs the deliverer published again (deferred), in order.
fn republished(r: &Rig) -> Vec<DeliveryJob> {
    r.d.bus.take_deliveries()
}

/// The claim of `j`'s delivery, as it stands.
fn claim_of(r: &Rig, j: &DeliveryJob) -> Option<tocsin_core::record::DedupRecord> {
    futures_lite(r.d.store.get_event(&format!("delivery#{}", j.delivery_id))).unwrap()
}

#[tokio::test]
async fn a_lost_answer_with_no_receipt_in_the_wait_defers_the_job_and_its_new_message_looks_again()
{
    // The chaos run at 1,000 transitions doubled emails and texts whose receipts came late (the
    // receipt's own invocation failed, or waited for a busy function) when the invocation sent
    // again at once; now the job is published again and the invocation ends, and the new
    // message's invocation looks first.
    let r = with_receipts(vec![lost_answer()]);
    let j = email_job();
    let entries = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(calls(&r), 1, "not sent again within the invocation");
    assert_eq!(
        attempts(&r, "a-1"),
        vec![(1, "retryable".into(), Some("unconfirmed".into()))]
    );
    let last = entries.last().unwrap();
    assert_eq!(last.action, Action::Suppress);
    assert!(
        last.reason
            .starts_with(&format!("delivery {} deferred (1 of 6)", j.delivery_id)),
        "{}",
        last.reason
    );
    assert_eq!(
        republished(&r),
        vec![j.clone()],
        "published again as it was"
    );
    assert_eq!(
        claim_of(&r, &j),
        None,
        "its claim released for the new message"
    );
    // It looked for the receipt every half second through the 2 s wait (four waits), and made no
    // backoff for a second try.
    let waits = r.d.sleeper.0.lock().unwrap().clone();
    assert_eq!(waits, vec![Duration::from_millis(500); 4]);
    // The receipt comes before the new message's invocation: it sends nothing.
    r.d.record_receipt(&receipt_of(&j)).await.unwrap();
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(calls(&r), 1, "one message");
    assert_eq!(attempts(&r, "a-1").last().unwrap().1, "sent");
    assert!(republished(&r).is_empty());
}

#[tokio::test]
async fn a_job_deferred_as_often_as_allowed_is_sent_again_never_lost() {
    // The first try loses its answer and no receipt ever comes (the request never arrived): the
    // job is deferred twice (the second new message looking through the wait, sending nothing),
    // then sent again.
    let mut r = with_receipts(vec![lost_answer()]);
    r.d.settings.deferrals = 2;
    let j = email_job();
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    let again = republished(&r);
    assert_eq!(again.len(), 1);
    let entries =
        r.d.deliver(&again[0], Duration::from_secs(60))
            .await
            .unwrap();
    assert_eq!(calls(&r), 1, "the second round looked and sent nothing");
    assert!(
        entries[0]
            .reason
            .contains("deferred (2 of 2): an earlier try's answer was lost"),
        "{}",
        entries[0].reason
    );
    let again = republished(&r);
    assert_eq!(again.len(), 1);
    r.d.deliver(&again[0], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(calls(&r), 2, "the third round sends again");
    assert!(republished(&r).is_empty());
    assert_eq!(
        attempts(&r, "a-1"),
        vec![
            (1, "retryable".into(), Some("unconfirmed".into())),
            (2, "sent".into(), None)
        ]
    );
    assert_eq!(
        claim_of(&r, &j).unwrap().status,
        tocsin_core::record::ClaimStatus::InProgress,
        "sent: the claim stays, the attempts say sent"
    );
}

#[tokio::test]
async fn a_lost_answer_on_the_platforms_last_try_of_an_old_job_is_deferred_not_sent_again() {
    // Deferring no longer leaves the resend to the platform's retry, so neither the job's age nor
    // the count of tries on record decides it: the chaos runs sent again at once (and doubled) the
    // texts and emails of jobs that waited minutes for a busy function, or whose last try the
    // count of tries on record took for an earlier one.
    let mut r = with_receipts(vec![lost_answer()]);
    r.d.settings.invocations = 1;
    r.d.clock.set(t0() + chrono::TimeDelta::minutes(10));
    let j = email_job();
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(calls(&r), 1, "not sent again");
    assert_eq!(republished(&r), vec![j]);
}

/// `d` with `bus` and `sleeper` instead of its own; the rest as it was (its store too, so what it
/// wrote stays).
fn swapped<B, Z, B2, Z2>(
    d: Deliverer<MemoryStore, B, Scripted, VirtualClock, Z>,
    bus: B2,
    sleeper: Z2,
) -> Deliverer<MemoryStore, B2, Scripted, VirtualClock, Z2> {
    Deliverer {
        config: d.config,
        store: d.store,
        bus,
        notifier: d.notifier,
        clock: d.clock,
        sleeper,
        settings: d.settings,
        throttle: d.throttle,
    }
}

/// A bus that refuses every publish, counting the deliveries it was given.
#[derive(Default)]
struct DownBus(std::sync::atomic::AtomicU32);

impl tocsin_core::ports::Bus for DownBus {
    async fn publish_alert(
        &self,
        _: &tocsin_core::Alert,
    ) -> Result<(), tocsin_core::ports::BusError> {
        Err(tocsin_core::ports::BusError::Backend("sns down".into()))
    }

    async fn publish_delivery(&self, _: &DeliveryJob) -> Result<(), tocsin_core::ports::BusError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Err(tocsin_core::ports::BusError::Backend("sns down".into()))
    }
}

#[tokio::test]
async fn a_deferral_that_cannot_be_published_fails_the_invocation_and_the_retry_looks_first() {
    let r = with_receipts(vec![lost_answer()]);
    let j = email_job();
    let sleeper = r.d.sleeper.clone();
    let d = swapped(r.d, DownBus::default(), sleeper);
    let e = d.deliver(&j, Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(e, DeliverError::Bus(_)), "{e}");
    assert!(tocsin_lambda::FunctionError::from(e).is_retryable());
    assert_eq!(
        d.bus.0.load(std::sync::atomic::Ordering::Relaxed),
        5,
        "the publish tried five times"
    );
    // The platform's retry finds the lost try and the deferral on record, and the claim free: it
    // looks for the receipt first, and the receipt says the message is out.
    let sleeper = d.sleeper.clone();
    let r = Rig {
        d: swapped(d, LocalBus::new(), sleeper),
    };
    r.d.record_receipt(&receipt_of(&j)).await.unwrap();
    let entries = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(calls(&r), 1, "nothing sent again");
    says_sent_by_its_receipt(&entries[0]);
}

/// `e` says the send was confirmed by the receipt of `receipt_of`.
fn says_sent_by_its_receipt(e: &tocsin_core::record::AuditEntry) {
    assert!(
        e.reason.contains("sent (ses-0001), by its send receipt"),
        "{}",
        e.reason
    );
}

/// An email job whose first invocation lost its answer, found no receipt in the wait, and
/// deferred the job: the job as published again.
async fn gave_up_after_a_lost_answer() -> (Rig, DeliveryJob) {
    let r = with_receipts(vec![lost_answer()]);
    r.d.deliver(&email_job(), Duration::from_secs(60))
        .await
        .unwrap();
    let mut again = republished(&r);
    assert_eq!(again.len(), 1, "deferred");
    (r, again.remove(0))
}

#[tokio::test]
async fn the_deferred_job_finds_the_receipt_of_a_lost_answer_and_sends_nothing() {
    let (r, j) = gave_up_after_a_lost_answer().await;
    // The receipt comes after the invocation gave up: the new message's invocation finds it.
    r.d.record_receipt(&receipt_of(&j)).await.unwrap();
    let entries = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(calls(&r), 1, "nothing sent by the retry");
    says_sent_by_its_receipt(&entries[0]);
    assert_eq!(attempts(&r, "a-1").last().unwrap().1, "sent");
    assert_eq!(
        entries[0].attempt.as_ref().unwrap().provider_id.as_deref(),
        Some("ses-0001"),
        "the message id the receipt named"
    );
    let again = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again[0].action, Action::Dedup);
}

#[tokio::test]
async fn a_channel_without_receipts_sends_again_at_once_after_a_lost_answer() {
    let r = rig(vec![lost_answer()]);
    let j = email_job();
    r.d.record_receipt(&receipt_of(&j)).await.unwrap();
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        calls(&r),
        2,
        "a channel that sends no receipts is not waited for"
    );
    let waits = r.d.sleeper.0.lock().unwrap().clone();
    assert_eq!(waits.len(), 1, "only the backoff: {waits:?}");
}

#[tokio::test]
async fn a_channel_without_receipts_is_not_deferred_by_an_earlier_tries_lost_answer() {
    // The first invocation loses one answer, then fails twice more: the platform's retry sends,
    // since there is no receipt to wait for.
    let r = rig(vec![
        lost_answer(),
        err(true, "http-500"),
        err(true, "http-500"),
    ]);
    let j = email_job();
    let e = r.d.deliver(&j, Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(e, DeliverError::Retryable { .. }), "{e}");
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(calls(&r), 4, "sent by the retry");
    assert!(r.d.bus.take_deliveries().is_empty(), "never deferred");
}

fn sns_of(messages: &[String]) -> Input {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({"EventSource": "aws:sns", "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:eu-west-1:111122223333:email-events:1",
                "Sns": {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:eu-west-1:111122223333:email-events",
                    "Message": m, "Timestamp": "2026-11-20T02:10:00.000Z", "SignatureVersion": "1",
                    "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "", "MessageAttributes": {}}})
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn an_ses_send_event_is_recorded_as_the_receipt_of_its_delivery() {
    let r = rig(vec![]);
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/receipts/ses-send.json"
    ))
    .unwrap();
    let key = tocsin_core::receipt::key(&tocsin_core::receipt::tag("d-0123"));
    assert_eq!(r.d.store.get_event(&key).await.unwrap(), None);
    let delivery = text.replace("\"Send\"", "\"Delivery\"");
    let out = tocsin_deliver::handle(&r.d, sns_of(&[text, delivery]), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(out["receipts"], 1, "{out}");
    assert_eq!(out["delivered"], 0, "{out}");
    let rec = r.d.store.get_event(&key).await.unwrap().unwrap();
    assert_eq!(
        rec.outcome.as_deref(),
        Some(
            "sent (EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000), by its send receipt"
        )
    );
    // A record that names an event but is not one: refused for good, in one line.
    let bad = r#"{"eventType": "Send", "mail": {"messageId": 7}}"#.to_string();
    let e = tocsin_deliver::handle(&r.d, sns_of(&[bad]), Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("not an SES event record"), "{e}");
    assert!(!e.to_string().contains('\n'));
}

#[tokio::test]
async fn a_lost_answer_at_the_end_of_the_invocation_waits_no_longer_than_its_deadline() {
    let r = with_receipts(vec![lost_answer()]);
    let j = email_job();
    // 6 s left: all of it is the retry layer's margin for recording the outcome.
    r.d.deliver(&j, Duration::from_secs(6)).await.unwrap();
    assert!(
        r.d.sleeper.0.lock().unwrap().is_empty(),
        "no wait for the receipt past the deadline"
    );
    assert_eq!(
        attempts(&r, "a-1"),
        vec![(1, "retryable".into(), Some("unconfirmed".into()))],
        "the try is on record, so the deferred job looks for its receipt first"
    );
    assert_eq!(republished(&r), vec![j]);
}

#[tokio::test]
async fn an_invocation_waits_for_receipts_once_however_many_of_its_tries_lose_their_answer() {
    // Three tries lose their answer and no receipt comes (the requests never arrived): the 2 s
    // wait is spent on the first; the others look once and go on, so the last try still fits.
    // On a job deferred as often as it may be (the only one that sends again within itself).
    let mut r = with_receipts(vec![lost_answer(), lost_answer()]);
    r.d.settings.deferrals = 0;
    let j = email_job();
    r.d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(calls(&r), 3, "sent on the third try");
    let waits = r.d.sleeper.0.lock().unwrap().clone();
    let polls = waits
        .iter()
        .filter(|w| **w == Duration::from_millis(500))
        .count();
    // Four half-second looks in all, plus the retry layer's two backoffs (500 ms and 1 s).
    assert_eq!(polls, 5, "{waits:?}");
    assert_eq!(waits.len(), 6, "{waits:?}");
}

/// A receipt whose writes fail is tried again within its invocation: recorded only at the
/// platform's retry a minute later, it could come after the job's own retry had looked for it and
/// sent the message again (the late receipts of the 1,000-transition chaos run).
#[tokio::test]
async fn a_receipt_whose_store_calls_fail_is_recorded_within_its_invocation() {
    let j = email_job();
    let faults = Faults::new();
    let r = faulty(&faults);
    // Its write (after the read that finds no receipt yet) fails once.
    faults.fail_at(1, FaultMode::Error);
    r.d.record_receipt(&receipt_of(&j)).await.unwrap();
    let key = tocsin_core::receipt::key(&tocsin_core::receipt::tag(&j.delivery_id));
    let rec = r.d.store.inner.get_event(&key).await.unwrap().unwrap();
    assert_eq!(
        rec.outcome.as_deref(),
        Some("sent (ses-0001), by its send receipt")
    );
    assert_eq!(
        faults.calls(),
        vec![
            "store.get_event",
            "store.complete_event",
            "store.get_event",
            "store.complete_event"
        ],
        "read and written again after a backoff"
    );
    assert_eq!(r.d.sleeper.0.lock().unwrap().len(), 1, "one backoff");
}

/// A sleeper that records a send receipt in the store once it has slept `after` times: the receipt
/// of an earlier try, whose own invocation the platform retried, coming in while a later
/// invocation waits.
struct ReceiptLater {
    store: MemoryStore,
    receipt: tocsin_core::record::DedupRecord,
    after: usize,
    slept: Arc<Mutex<Vec<Duration>>>,
}

impl Sleeper for ReceiptLater {
    async fn sleep(&self, d: Duration) {
        let n = {
            let mut s = self.slept.lock().unwrap();
            s.push(d);
            s.len()
        };
        if n == self.after {
            self.store.complete_event(&self.receipt).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_later_invocation_waits_for_an_earlier_tries_receipt_before_sending_again() {
    let (r, j) = gave_up_after_a_lost_answer().await;
    // The next invocation: the receipt comes on its third look, a second after the first.
    let slept = Arc::new(Mutex::new(Vec::new()));
    let (bus, store) = (r.d.bus.clone(), r.d.store.clone());
    let d = swapped(
        r.d,
        bus,
        ReceiptLater {
            store,
            receipt: receipt_of(&j).record(),
            after: 2,
            slept: slept.clone(),
        },
    );
    let entries = d.deliver(&j, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        d.notifier.calls.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "not sent again: the receipt came while it looked"
    );
    says_sent_by_its_receipt(&entries[0]);
    assert_eq!(*slept.lock().unwrap(), vec![Duration::from_millis(500); 2]);
}
