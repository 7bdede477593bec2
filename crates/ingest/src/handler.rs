//! The ingest handler, generic over the bus: raw event bytes in (an SNS event, an EventBridge event or a
//! CloudWatch alarm-action payload, all to the one function), canonical alerts published for the router.
//!
//! Nothing bad is dropped: an event that cannot be read at all, or one with some unreadable records, fails
//! the invocation with a one-line reason (after publishing what could be read; the router deduplicates
//! the republish on retry), so Lambda's retries and its on-failure destination keep the event and why.

use thiserror::Error;
use tocsin_core::ports::{Bus, BusError};
use tocsin_core::source::{ParseError, parse_all};
use tocsin_core::text::one_line;

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
}

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Alerts published.
    pub published: usize,
}

/// Parses one event and publishes its alerts.
pub async fn handle<B: Bus>(bus: &B, payload: &[u8]) -> Result<Ingested, IngestError> {
    let parsed = parse_all(payload).map_err(IngestError::Invalid)?;
    for a in &parsed.alerts {
        bus.publish_alert(a).await?;
        tracing::info!(
            event_id = %a.event_id,
            fingerprint = %a.fingerprint,
            alarm = %one_line(&a.alarm_name),
            state = %a.state,
            transport = a.transport.as_str(),
            "alert published"
        );
    }
    // A page of a paged AWS Health event: no reassembly is kept here yet (docs/sources.md says what
    // the store needs for it), so each page goes on alone, its entity list marked partial
    // (`labels.health_pages`); the pages share the event's id, so the router pages once.
    let pages = parsed.pages.len();
    for page in parsed.pages {
        let a = page.into_alert();
        bus.publish_alert(&a).await?;
        tracing::warn!(
            event_id = %a.event_id,
            alarm = %one_line(&a.alarm_name),
            pages = %a.labels.get("health_pages").map_or("?", String::as_str),
            "AWS Health page published alone (not reassembled)"
        );
    }
    for s in &parsed.skipped {
        tracing::info!(reason = %one_line(&s.to_string()), "event skipped");
    }
    let published = parsed.alerts.len() + pages;
    let mut rejected = parsed.rejected.into_iter();
    match rejected.next() {
        None => Ok(Ingested { published }),
        Some(first) => {
            let n = 1 + rejected.count();
            Err(IngestError::PartlyRejected {
                rejected: n,
                total: n + published,
                first,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_core::Transport;
    use tocsin_local::LocalBus;

    fn fixture(path: &str) -> Vec<u8> {
        let p = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[tokio::test]
    async fn one_function_accepts_sns_eventbridge_and_alarm_action_shapes() {
        let bus = LocalBus::new();
        for (f, t) in [
            ("sns/metric-alarm.json", Transport::Sns),
            ("eventbridge/metric-alarm.json", Transport::Eventbridge),
            ("lambda-action/metric-alarm.json", Transport::LambdaAction),
        ] {
            assert_eq!(
                handle(&bus, &fixture(f)).await.unwrap(),
                Ingested { published: 1 }
            );
            let got = bus.take_alerts();
            assert_eq!(got.len(), 1, "{f}");
            assert_eq!(got[0].transport, t, "{f}");
        }
    }

    #[tokio::test]
    async fn an_sns_event_with_several_records_publishes_each() {
        let bus = LocalBus::new();
        let out = handle(&bus, &fixture("sns/multi-record.json"))
            .await
            .unwrap();
        assert_eq!(out.published, 3);
        assert_eq!(bus.take_alerts().len(), 3);
    }

    #[tokio::test]
    async fn an_unreadable_event_fails_with_its_reason_and_publishes_nothing() {
        let bus = LocalBus::new();
        let err = handle(&bus, &fixture("bad/message-not-json.json"))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("Message"), "{msg}");
        assert!(!msg.contains('\n'));
        assert!(bus.take_alerts().is_empty());
    }

    #[tokio::test]
    async fn good_records_are_published_and_the_bad_one_fails_the_invocation() {
        let good: serde_json::Value =
            serde_json::from_slice(&fixture("sns/multi-record.json")).unwrap();
        let mut event = good.clone();
        let records = event["Records"].as_array_mut().unwrap();
        records[1]["Sns"]["Message"] = serde_json::Value::String("{not json".into());
        let bus = LocalBus::new();
        let err = handle(&bus, event.to_string().as_bytes())
            .await
            .unwrap_err();
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
        assert_eq!(bus.take_alerts().len(), 2);
    }

    #[tokio::test]
    async fn a_health_page_is_published_alone_marked_partial_and_a_backup_copy_is_not() {
        let bus = LocalBus::new();
        let out = handle(&bus, &fixture("health/paged/page-1-of-2.json"))
            .await
            .unwrap();
        assert_eq!(out.published, 1);
        let got = bus.take_alerts();
        assert_eq!(got[0].labels["health_pages"], "1 of 2");
        let out = handle(&bus, &fixture("health/backup-region-copy.json"))
            .await
            .unwrap();
        assert_eq!(out.published, 0);
        assert!(bus.take_alerts().is_empty());
    }
}
