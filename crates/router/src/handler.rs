//! The router handler, generic over the router's ports: an SNS event from the alerts topic (each
//! message one canonical alert, as ingest published it) in; the router's decisions out. A message that
//! is not an alert is a permanent failure naming its record; a router failure says whether a retry can
//! help ([`FunctionError`]).

use std::time::Duration;

use aws_lambda_events::event::sns::SnsEvent;
use chrono::{DateTime, TimeDelta, Utc};
use tocsin_core::Alert;
use tocsin_core::ports::{AlertStore, Bus, Clock, Scheduler};
use tocsin_core::record::AuditEntry;
use tocsin_core::retry::Sleeper;
use tocsin_core::router::{Router, RouterError};
use tocsin_core::text::one_line;
use tocsin_lambda::FunctionError;

/// How long an invocation that finds its event claimed by another waits before it looks again.
pub const HOLDER_POLL: Duration = Duration::from_secs(5);
/// How much of its time an invocation keeps for routing the event itself once the holder is gone:
/// it stops waiting when less than this is left.
pub const ROUTE_RESERVE: TimeDelta = TimeDelta::seconds(15);

/// Routes every alert of the event, in order, within an invocation that ends at `deadline` (the
/// claims on its events end then, so the retry of an invocation that dies takes them over).
///
/// An event another invocation is routing (the same transition from SNS and EventBridge at once, or
/// a retry while a slow first try still runs) is waited for, looking again every [`HOLDER_POLL`]
/// while [`ROUTE_RESERVE`] of the invocation is left: the holder finishes (a duplicate, nothing
/// sent) or its claim ends with its invocation (this one takes the event over). Failing at once
/// instead left it to the platform's retries, which can fall in step with the holder's own and end
/// in the dead-letter queue (the chaos run found 13 such).
pub async fn handle<S, B, K, C>(
    router: &Router<S, B, K, C>,
    event: SnsEvent,
    deadline: Option<DateTime<Utc>>,
    sleeper: &impl Sleeper,
) -> Result<Vec<AuditEntry>, FunctionError>
where
    S: AlertStore,
    B: Bus,
    K: Scheduler,
    C: Clock,
{
    let alerts: Vec<Alert> = tocsin_lambda::sns::messages(&event, "a canonical alert")?;
    let mut out = Vec::new();
    for alert in alerts {
        let entries = loop {
            match router.handle_until(alert.clone(), deadline).await {
                Err(RouterError::InProgress(event_id))
                    if deadline.is_some_and(|d| {
                        router.clock.now()
                            + TimeDelta::from_std(HOLDER_POLL).unwrap_or_default()
                            + ROUTE_RESERVE
                            <= d
                    }) =>
                {
                    tracing::info!(event = %event_id, "event claimed by another invocation: waiting for it");
                    sleeper.sleep(HOLDER_POLL).await;
                }
                done => break done?,
            }
        };
        for e in &entries {
            tracing::info!(
                alert = %e.alert,
                action = e.action.as_str(),
                channel = e.channel.as_deref().unwrap_or(""),
                target = %one_line(e.target.as_deref().unwrap_or("")),
                reason = %one_line(&e.reason),
                "decision"
            );
        }
        out.extend(entries);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tocsin_core::record::Action;
    use tocsin_local::Embedded;

    fn config() -> Arc<tocsin_core::config::Config> {
        let p = format!("{}/../../infra/tocsin.yaml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(p).unwrap();
        Arc::new(tocsin_core::config::load(&text).unwrap())
    }

    fn alert_from(path: &str) -> Alert {
        let p = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
        tocsin_core::source::parse(&std::fs::read(p).unwrap())
            .unwrap()
            .remove(0)
    }

    fn sns_of(messages: &[String]) -> SnsEvent {
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                serde_json::json!({
                    "EventSource": "aws:sns", "EventVersion": "1.0",
                    "EventSubscriptionArn": "arn:aws:sns:eu-west-1:123456789012:tocsin-alerts:1",
                    "Sns": {
                        "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:tocsin-alerts",
                        "Subject": null, "Message": m, "Timestamp": "2026-11-20T02:10:01.000Z",
                        "SignatureVersion": "1", "Signature": "x", "SigningCertUrl": "https://x", "UnsubscribeUrl": "https://x",
                        "MessageAttributes": {}
                    }
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    /// A sleeper for tests that never wait.
    struct NoSleep;
    impl Sleeper for NoSleep {
        async fn sleep(&self, _: Duration) {}
    }

    /// Waits on the pipeline's virtual clock, counting the waits.
    struct Advance(tocsin_local::VirtualClock, std::sync::atomic::AtomicU32);
    impl Sleeper for Advance {
        async fn sleep(&self, d: Duration) {
            use tocsin_core::ports::Clock;
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.set(self.0.now() + TimeDelta::from_std(d).unwrap());
        }
    }

    /// Claims `alert`'s event as an invocation would that is still running (or died) until `until`.
    async fn held(p: &Embedded, alert: &Alert, until: DateTime<Utc>) {
        use tocsin_core::ports::{AlertStore, Claim, Clock};
        use tocsin_core::record::{ClaimStatus, DedupRecord};
        let now = p.clock.now();
        let claim = DedupRecord {
            event_id: alert.event_id.clone(),
            status: ClaimStatus::InProgress,
            expires_at: now + TimeDelta::days(7),
            in_progress_until: until,
            transport: "sns".into(),
            claimed_at: now,
            alert_id: None,
            outcome: None,
        };
        assert_eq!(p.store.claim_event(&claim).await.unwrap(), Claim::Claimed);
    }

    #[tokio::test]
    async fn an_event_held_by_an_invocation_that_died_is_waited_for_and_taken_over() {
        use tocsin_core::ports::Clock;
        let alert = alert_from("sns/metric-alarm.json");
        let p = Embedded::new(config(), alert.state_changed_at);
        let now = p.clock.now();
        // Its holder's claim ends 8 s from now; this invocation has 30 s.
        held(&p, &alert, now + TimeDelta::seconds(8)).await;
        let sleeper = Advance(p.clock.clone(), Default::default());
        let msg = serde_json::to_string(&alert).unwrap();
        let routed = handle(
            &p.router,
            sns_of(&[msg]),
            Some(now + TimeDelta::seconds(30)),
            &sleeper,
        )
        .await
        .unwrap();
        assert_eq!(routed[0].action, Action::Open, "{routed:?}");
        assert_eq!(
            sleeper.1.load(std::sync::atomic::Ordering::Relaxed),
            2,
            "looked again at 5 s (still held) and 10 s (claim over: taken over)"
        );
    }

    #[tokio::test]
    async fn an_event_held_past_the_time_this_invocation_has_is_left_to_the_platforms_retry() {
        use tocsin_core::ports::Clock;
        let alert = alert_from("sns/metric-alarm.json");
        let p = Embedded::new(config(), alert.state_changed_at);
        let now = p.clock.now();
        held(&p, &alert, now + TimeDelta::seconds(40)).await;
        let sleeper = Advance(p.clock.clone(), Default::default());
        let msg = serde_json::to_string(&alert).unwrap();
        let err = handle(
            &p.router,
            sns_of(&[msg]),
            Some(now + TimeDelta::seconds(30)),
            &sleeper,
        )
        .await
        .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("being processed"), "{err}");
        // Looked again at 5, 10 and 15 s (15 s of routing time still left then), then gave up.
        assert_eq!(sleeper.1.load(std::sync::atomic::Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn alerts_from_the_topic_are_routed_and_a_redelivery_is_deduplicated() {
        let alert = alert_from("sns/metric-alarm.json");
        let p = Embedded::new(config(), alert.state_changed_at);
        let msg = serde_json::to_string(&alert).unwrap();
        let first = handle(
            &p.router,
            sns_of(std::slice::from_ref(&msg)),
            None,
            &NoSleep,
        )
        .await
        .unwrap();
        assert_eq!(first[0].action, Action::Open);
        // The example config groups Slack by service: a medium alert is paged by its group's timer.
        assert!(
            first
                .iter()
                .any(|e| matches!(e.action, Action::Notify | Action::Group))
        );
        let again = handle(&p.router, sns_of(&[msg]), None, &NoSleep)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].action, Action::Dedup);
    }

    #[tokio::test]
    async fn a_message_that_is_not_an_alert_fails_for_good_naming_the_record() {
        let alert = alert_from("sns/metric-alarm.json");
        let p = Embedded::new(config(), alert.state_changed_at);
        let err = handle(
            &p.router,
            sns_of(&["{\"x\":1}".to_string()]),
            None,
            &NoSleep,
        )
        .await
        .unwrap_err();
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .starts_with("permanent: Records[0].Sns.Message is not a canonical alert"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_store_that_fails_makes_the_invocation_retryable() {
        let alert = alert_from("sns/metric-alarm.json");
        let p = tocsin_local::FaultyEmbedded::new(config(), alert.state_changed_at);
        p.faults.fail_at(0, tocsin_local::FaultMode::Error);
        let msg = serde_json::to_string(&alert).unwrap();
        let err = handle(&p.router, sns_of(&[msg]), None, &NoSleep)
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
