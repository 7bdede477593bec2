//! The ingest handler, generic over its ports: raw event bytes in (an SNS event, an EventBridge event or
//! a CloudWatch alarm-action payload, all to the one function), canonical alerts published for the
//! router. Pages of paged AWS Health events are held in a [`PageStore`] and published joined once the
//! last one is in; the first page of an event schedules its sweep ([`SweepTimer`]), which invokes this
//! function with `{"health_pages_flush": {"key": ...}}` and publishes what came of an event that never
//! completed (`tocsin_core::pages` draws the timeline and says why one alert goes out per event).
//!
//! Nothing bad is dropped: an event that cannot be read at all, or one with some unreadable records, fails
//! the invocation with a one-line reason (after publishing what could be read; the router deduplicates
//! the republish on retry), so Lambda's retries and its on-failure destination keep the event and why.
//! A store, timer or bus failure fails the invocation too; every step is safe to repeat. [`handle`] is
//! one invocation, its failure a [`FunctionError`]: permanent for what cannot be read, retryable for
//! a failed dependency.

use thiserror::Error;
use tocsin_core::Alert;
use tocsin_core::pages::{Added, PageStore, SWEEP_AFTER, SweepClaim, SweepTimer};
use tocsin_core::ports::{Bus, BusError, Clock, SchedulerError, StoreError, SystemClock};
use tocsin_core::source::{
    HEALTH_PAGES_LABEL as PAGES_LABEL, HealthPage, ParseError, join_pages, parse_all,
};
use tocsin_core::text::one_line;
use tocsin_lambda::FunctionError;

/// Why an ingest invocation failed.
#[derive(Debug, Error)]
pub enum IngestError {
    /// The event as a whole could not be read.
    #[error("rejected event: {0}")]
    Invalid(ParseError),
    /// Some records could not be read; the others were published.
    #[error("{rejected} of {total} records rejected; first: {first}")]
    PartlyRejected {
        /// How many records were rejected.
        rejected: usize,
        /// How many records the event had.
        total: usize,
        /// The first rejection's reason.
        first: ParseError,
    },
    /// Publishing to the router failed (retryable).
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The page store failed (retryable).
    #[error("health pages: {0}")]
    Store(#[from] StoreError),
    /// Scheduling a sweep failed (retryable).
    #[error("health pages sweep: {0}")]
    Timer(#[from] SchedulerError),
}

impl From<IngestError> for FunctionError {
    /// Permanent: the event, or some of its records, cannot be read (a retry reads the same bytes).
    /// Retryable: the bus, the page store or the sweep timer failed.
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Invalid(_) | IngestError::PartlyRejected { .. } => {
                FunctionError::permanent(e)
            }
            IngestError::Bus(_) | IngestError::Store(_) | IngestError::Timer(_) => {
                FunctionError::retryable(e)
            }
        }
    }
}

/// One invocation: the payload as received (any of the sources, or a sweep); answers what it did
/// (`{"published": n, "held": m}`).
pub async fn handle<B: Bus, P: PageStore, T: SweepTimer, C: Clock>(
    ingest: &Ingest<B, P, T, C>,
    payload: &[u8],
) -> Result<serde_json::Value, FunctionError> {
    let out = ingest.handle(payload).await?;
    Ok(serde_json::json!({ "published": out.published, "held": out.held }))
}

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Alerts published.
    pub published: usize,
    /// Pages of paged Health events held for the rest of their event.
    pub held: usize,
}

/// The sweep's key when `payload` is a sweep, not an event. Looked at before any source parser, so a
/// sweep is never read as an unknown event; only an object whose keys are `health_pages_flush` (and
/// the trace header the schedule carries) is one, so a real event that merely mentions the word is
/// parsed as usual.
/// With the key, the trace header the schedule carries (`trace_header`), if any.
fn sweep_key(payload: &[u8]) -> Option<(String, Option<String>)> {
    /// `tocsin_core::pages::SweepInput` as the schedule carries it: with the trace header when there is one.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sweep {
        health_pages_flush: tocsin_core::pages::SweepRequest,
        #[serde(default)]
        trace_header: Option<String>,
    }
    let rest = payload.trim_ascii_start().strip_prefix(b"{")?;
    if !rest
        .trim_ascii_start()
        .starts_with(b"\"health_pages_flush\"")
    {
        return None;
    }
    serde_json::from_slice::<Sweep>(payload)
        .ok()
        .map(|s| (s.health_pages_flush.key, s.trace_header))
}

/// The ingest function's ports: where alerts go, where pages wait, the sweep timer and the clock.
pub struct Ingest<B, P, T, C> {
    /// The alerts topic (the router's input).
    pub bus: B,
    /// Pages of paged Health events.
    pub pages: P,
    /// Schedules an event's sweep.
    pub timer: T,
    /// When "now" is (the sweep is due [`SWEEP_AFTER`] after the first page).
    pub clock: C,
}

impl<B, P, T> Ingest<B, P, T, SystemClock> {
    /// The deployed function's: on the system clock.
    pub fn deployed(bus: B, pages: P, timer: T) -> Self {
        Ingest {
            bus,
            pages,
            timer,
            clock: SystemClock,
        }
    }
}

impl<B: Bus, P: PageStore, T: SweepTimer, C: Clock> Ingest<B, P, T, C> {
    /// Handles one invocation: a sweep, or an event whose alerts are published and whose Health pages
    /// are held or joined.
    pub async fn handle(&self, payload: &[u8]) -> Result<Ingested, IngestError> {
        if let Some((key, trace)) = sweep_key(payload) {
            // The trace of the invocation that held the first page (Scheduler starts its own).
            return tocsin_lambda::trace::carrying(trace, self.sweep(&key)).await;
        }
        let parsed = parse_all(payload).map_err(IngestError::Invalid)?;
        for a in &parsed.alerts {
            self.publish(a, "alert published").await?;
        }
        let mut published = parsed.alerts.len();
        let mut held = 0;
        for page in &parsed.pages {
            match self.add(page).await? {
                Some(true) => published += 1,
                Some(false) => {}
                None => held += 1,
            }
        }
        for s in &parsed.skipped {
            tracing::info!(reason = %one_line(&s.to_string()), "event skipped");
        }
        let mut rejected = parsed.rejected.into_iter();
        match rejected.next() {
            None => Ok(Ingested { published, held }),
            Some(first) => {
                let n = 1 + rejected.count();
                Err(IngestError::PartlyRejected {
                    rejected: n,
                    total: n + parsed.alerts.len() + parsed.pages.len(),
                    first,
                })
            }
        }
    }

    /// Holds one page; publishes its event when the page completes it. `None`: held, waiting for the
    /// others; `Some(published)` otherwise.
    async fn add(&self, page: &HealthPage) -> Result<Option<bool>, IngestError> {
        let key = page.key.as_str();
        match self.pages.add_page(page).await? {
            Added::Waiting {
                received,
                total,
                first,
            } => {
                if first {
                    let at = self.clock.now() + SWEEP_AFTER;
                    self.timer.schedule_sweep(key, at).await?;
                }
                tracing::info!(
                    event_id = %key,
                    page = page.page,
                    received,
                    total,
                    sweep_scheduled = first,
                    "AWS Health page held"
                );
                Ok(None)
            }
            Added::Complete { by_this_page } => {
                tracing::info!(event_id = %key, page = page.page, by_this_page, "AWS Health pages complete");
                self.publish_held(key).await.map(|_| Some(true))
            }
            Added::Published => {
                tracing::info!(event_id = %key, page = page.page, "AWS Health page of an event published already");
                Ok(Some(false))
            }
            Added::Swept => {
                // The event went out without it when its sweep ran; the router would deduplicate a
                // republish (same event id), so the entities of this page are not in the alert.
                tracing::warn!(
                    event_id = %key,
                    page = page.page,
                    "AWS Health page arrived after its event was swept; its entities are not in the alert"
                );
                Ok(Some(false))
            }
        }
    }

    /// The sweep of `key`: publishes what came, unless the joined alert went out.
    async fn sweep(&self, key: &str) -> Result<Ingested, IngestError> {
        let published = match self.pages.sweep(key).await? {
            SweepClaim::Publish => {
                self.publish_held(key).await?;
                1
            }
            SweepClaim::Done => {
                tracing::info!(event_id = %key, "AWS Health pages sweep: published joined already");
                0
            }
            SweepClaim::Unknown => {
                tracing::warn!(event_id = %key, "AWS Health pages sweep: no pages held (expired?)");
                0
            }
        };
        Ok(Ingested { published, held: 0 })
    }

    /// Joins and publishes the pages held under `key`; marks the event published when it is whole.
    async fn publish_held(&self, key: &str) -> Result<(), IngestError> {
        let pages = self.pages.pages(key).await?;
        let Some(alert) = join_pages(pages) else {
            return Err(StoreError::NotFound(format!("health pages of {key}")).into());
        };
        let whole = !alert.labels.contains_key(PAGES_LABEL);
        self.publish(&alert, "AWS Health pages published").await?;
        if whole {
            self.pages.mark_joined(key).await?;
        }
        Ok(())
    }

    async fn publish(&self, a: &Alert, what: &'static str) -> Result<(), IngestError> {
        self.bus.publish_alert(a).await?;
        tracing::info!(
            event_id = %a.event_id,
            fingerprint = %a.fingerprint,
            alarm = %one_line(&a.alarm_name),
            state = %a.state,
            transport = a.transport.as_str(),
            pages = a.labels.get(PAGES_LABEL).map_or("", String::as_str),
            "{what}"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use serde_json::Value;
    use tocsin_core::Transport;
    use tocsin_core::pages::sweep_name;
    use tocsin_core::source::Reassembly;
    use tocsin_local::{LocalBus, LocalSweepTimer, MemoryPages, VirtualClock};

    type Local = Ingest<LocalBus, MemoryPages, LocalSweepTimer, VirtualClock>;

    fn now() -> DateTime<Utc> {
        "2026-11-20T14:00:30Z".parse().unwrap()
    }

    fn ingest() -> Local {
        Ingest {
            bus: LocalBus::new(),
            pages: MemoryPages::new(),
            timer: LocalSweepTimer::new(),
            clock: VirtualClock::new(now()),
        }
    }

    fn fixture(path: &str) -> Vec<u8> {
        let p = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// Page `page` of `total` of the paged fixture's event, with entities of its own.
    fn page(page: u32, total: u32) -> Vec<u8> {
        let mut v: Value =
            serde_json::from_slice(&fixture("health/paged/page-1-of-2.json")).unwrap();
        let d = &mut v["detail"];
        d["page"] = page.to_string().into();
        d["totalPages"] = total.to_string().into();
        d["communicationId"] = format!("7a1f7a1f7a1f7a1f7a1f7a1f7a1f7a1f-{page}").into();
        d["affectedEntities"] = serde_json::json!([
            {"entityValue": format!("i-page{page}-a"), "status": "IMPAIRED"},
            {"entityValue": format!("i-page{page}-b")},
        ]);
        serde_json::to_vec(&v).unwrap()
    }

    fn sweep_of(key: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"health_pages_flush": {"key": key}})).unwrap()
    }

    fn key_of(event: &[u8]) -> String {
        parse_all(event).unwrap().pages[0].key.clone()
    }

    #[tokio::test]
    async fn one_function_accepts_sns_eventbridge_and_alarm_action_shapes() {
        let i = ingest();
        for (f, t) in [
            ("sns/metric-alarm.json", Transport::Sns),
            ("eventbridge/metric-alarm.json", Transport::Eventbridge),
            ("lambda-action/metric-alarm.json", Transport::LambdaAction),
        ] {
            assert_eq!(
                i.handle(&fixture(f)).await.unwrap(),
                Ingested {
                    published: 1,
                    held: 0
                }
            );
            let got = i.bus.take_alerts();
            assert_eq!(got.len(), 1, "{f}");
            assert_eq!(got[0].transport, t, "{f}");
        }
    }

    #[tokio::test]
    async fn an_sns_event_with_several_records_publishes_each() {
        let i = ingest();
        let out = i.handle(&fixture("sns/multi-record.json")).await.unwrap();
        assert_eq!(out.published, 3);
        assert_eq!(i.bus.take_alerts().len(), 3);
    }

    #[tokio::test]
    async fn an_unreadable_event_fails_with_its_reason_and_publishes_nothing() {
        let i = ingest();
        let err = i
            .handle(&fixture("bad/message-not-json.json"))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("Message"), "{msg}");
        assert!(!msg.contains('\n'));
        assert!(i.bus.take_alerts().is_empty());
    }

    #[tokio::test]
    async fn good_records_are_published_and_the_bad_one_fails_the_invocation() {
        let good: Value = serde_json::from_slice(&fixture("sns/multi-record.json")).unwrap();
        let mut event = good.clone();
        let records = event["Records"].as_array_mut().unwrap();
        records[1]["Sns"]["Message"] = Value::String("{not json".into());
        let i = ingest();
        let err = i.handle(event.to_string().as_bytes()).await.unwrap_err();
        match &err {
            IngestError::PartlyRejected {
                rejected,
                total,
                first,
            } => {
                assert_eq!((*rejected, *total), (1, 3));
                assert!(first.to_string().contains("Records[1]"), "{first}");
            }
            other => panic!("expected a partial rejection, got {other}"),
        }
        assert_eq!(i.bus.take_alerts().len(), 2);
    }

    #[tokio::test]
    async fn pages_in_any_order_and_repeated_publish_one_alert_with_every_pages_entities() {
        let i = ingest();
        let held = Ingested {
            published: 0,
            held: 1,
        };
        assert_eq!(i.handle(&page(3, 3)).await.unwrap(), held);
        assert_eq!(i.handle(&page(1, 3)).await.unwrap(), held);
        assert_eq!(
            i.handle(&page(3, 3)).await.unwrap(),
            held,
            "a repeat holds nothing more"
        );
        assert!(
            i.bus.take_alerts().is_empty(),
            "nothing before the last page"
        );
        let out = i.handle(&page(2, 3)).await.unwrap();
        assert_eq!(out.published, 1);
        let got = i.bus.take_alerts();
        assert_eq!(got.len(), 1);
        let a = &got[0];
        assert_eq!(
            a.labels["affected_entities"],
            "i-page1-a,i-page1-b,i-page2-a,i-page2-b,i-page3-a,i-page3-b",
            "every page's entities, in page order"
        );
        assert_eq!(a.labels["affected_entity_count"], "6");
        assert!(!a.labels.contains_key("health_pages"), "whole, not partial");
        assert_eq!(a.event_id, key_of(&page(1, 3)));
        // The same join as `tocsin replay`'s reassembly.
        let mut r = Reassembly::new();
        let replayed = [3, 1, 2]
            .into_iter()
            .find_map(|n| r.add(parse_all(&page(n, 3)).unwrap().pages.remove(0)));
        assert_eq!(replayed.as_ref(), Some(a));
        // A page redelivered after the event went out publishes nothing.
        let out = i.handle(&page(1, 3)).await.unwrap();
        assert_eq!(
            out,
            Ingested {
                published: 0,
                held: 0
            }
        );
        assert!(i.bus.take_alerts().is_empty());
    }

    #[tokio::test]
    async fn the_first_page_schedules_one_sweep_fifteen_minutes_on() {
        let i = ingest();
        i.handle(&page(2, 3)).await.unwrap();
        i.handle(&page(1, 3)).await.unwrap();
        let key = key_of(&page(1, 3));
        let pending = i.timer.pending();
        assert_eq!(pending.len(), 1, "{pending:?}");
        let sweep = &pending[&sweep_name(&key)];
        assert_eq!(sweep.key, key);
        assert_eq!(sweep.at, now() + chrono::TimeDelta::minutes(15));
    }

    #[tokio::test]
    async fn the_sweep_of_an_incomplete_event_publishes_what_came_and_a_late_page_nothing() {
        let i = ingest();
        i.handle(&page(1, 3)).await.unwrap();
        i.handle(&page(3, 3)).await.unwrap();
        let key = key_of(&page(1, 3));
        let due = i.timer.take_due(now() + chrono::TimeDelta::minutes(15));
        assert_eq!(due.len(), 1);
        let out = i.handle(&sweep_of(&due[0].key)).await.unwrap();
        assert_eq!(out.published, 1);
        let got = i.bus.take_alerts();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels["health_pages"], "received 2 of 3");
        assert_eq!(
            got[0].labels["affected_entities"],
            "i-page1-a,i-page1-b,i-page3-a,i-page3-b"
        );
        assert_eq!(got[0].event_id, key, "the partial alert is the event's");
        // The missing page arrives late: the event went out, nothing more is published.
        let out = i.handle(&page(2, 3)).await.unwrap();
        assert_eq!(out.published, 0);
        assert!(i.bus.take_alerts().is_empty());
    }

    #[tokio::test]
    async fn a_sweep_after_completion_publishes_nothing() {
        let i = ingest();
        i.handle(&page(1, 2)).await.unwrap();
        i.handle(&page(2, 2)).await.unwrap();
        assert_eq!(i.bus.take_alerts().len(), 1);
        let out = i.handle(&sweep_of(&key_of(&page(1, 2)))).await.unwrap();
        assert_eq!(out.published, 0);
        assert!(i.bus.take_alerts().is_empty());
    }

    #[tokio::test]
    async fn a_sweep_is_routed_before_parsing_and_an_unknown_key_publishes_nothing() {
        let i = ingest();
        let out = i
            .handle(b" { \"health_pages_flush\": {\"key\": \"nope\"}}")
            .await
            .unwrap();
        assert_eq!(out.published, 0);
        // Anything more than the sweep's one key is an event, read (and here refused) as one.
        let err = i
            .handle(br#"{"health_pages_flush": {"key": "k"}, "source": "x"}"#)
            .await
            .unwrap_err();
        assert!(matches!(err, IngestError::Invalid(_)), "{err}");
        assert!(i.bus.take_alerts().is_empty());
    }

    /// The sweep's schedule carries the trace of the invocation that held the first page (Scheduler
    /// starts a trace of its own): a sweep with it is still a sweep, and the trace comes with it.
    #[test]
    fn a_sweep_carrying_its_trace_header_is_still_a_sweep() {
        let h = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
        let input = format!(r#"{{"health_pages_flush": {{"key": "k"}}, "trace_header": "{h}"}}"#);
        assert_eq!(
            sweep_key(input.as_bytes()),
            Some(("k".to_string(), Some(h.to_string())))
        );
        assert_eq!(
            sweep_key(br#"{"health_pages_flush": {"key": "k"}}"#),
            Some(("k".to_string(), None))
        );
    }

    #[tokio::test]
    async fn the_shipped_two_page_fixtures_join_and_a_backup_copy_is_skipped() {
        let i = ingest();
        i.handle(&fixture("health/paged/page-2-of-2.json"))
            .await
            .unwrap();
        i.handle(&fixture("health/paged/page-1-of-2.json"))
            .await
            .unwrap();
        let got = i.bus.take_alerts();
        assert_eq!(got.len(), 1);
        assert!(!got[0].labels.contains_key("health_pages"));
        let out = i
            .handle(&fixture("health/backup-region-copy.json"))
            .await
            .unwrap();
        assert_eq!(out.published, 0);
        assert!(i.bus.take_alerts().is_empty());
    }

    #[tokio::test]
    async fn an_invocation_answers_its_counts_and_fails_for_good_on_an_unreadable_event() {
        let i = ingest();
        let out = handle(&i, &fixture("sns/metric-alarm.json")).await.unwrap();
        assert_eq!(out, serde_json::json!({"published": 1, "held": 0}));
        let err = handle(&i, b"not json").await.unwrap_err();
        assert!(!err.is_retryable());
        assert!(
            err.to_string().starts_with("permanent: rejected event: "),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_bus_that_fails_makes_the_invocation_retryable() {
        let faults = tocsin_local::Faults::new();
        let i = Ingest {
            bus: tocsin_local::FaultyBus {
                inner: LocalBus::new(),
                faults: faults.clone(),
            },
            pages: MemoryPages::new(),
            timer: LocalSweepTimer::new(),
            clock: VirtualClock::new(now()),
        };
        faults.fail_at(0, tocsin_local::FaultMode::Error);
        let err = handle(&i, &fixture("sns/metric-alarm.json"))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
