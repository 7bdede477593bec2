//! The router handler, generic over the router's ports: an SNS event from the alerts topic (each
//! message one canonical alert, as ingest published it) in; the router's decisions out. A message that
//! is not an alert is a permanent failure naming its record; a router failure says whether a retry can
//! help ([`FunctionError`]).

use aws_lambda_events::event::sns::SnsEvent;
use chrono::{DateTime, Utc};
use tocsin_core::Alert;
use tocsin_core::ports::{AlertStore, Bus, Clock, Scheduler};
use tocsin_core::record::AuditEntry;
use tocsin_core::router::Router;
use tocsin_core::text::one_line;
use tocsin_lambda::FunctionError;

/// Routes every alert of the event, in order, within an invocation that ends at `deadline` (the
/// claims on its events end then, so the retry of an invocation that dies takes them over).
pub async fn handle<S, B, K, C>(
    router: &Router<S, B, K, C>,
    event: SnsEvent,
    deadline: Option<DateTime<Utc>>,
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
        let entries = router.handle_until(alert, deadline).await?;
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

    #[tokio::test]
    async fn alerts_from_the_topic_are_routed_and_a_redelivery_is_deduplicated() {
        let alert = alert_from("sns/metric-alarm.json");
        let p = Embedded::new(config(), alert.state_changed_at);
        let msg = serde_json::to_string(&alert).unwrap();
        let first = handle(&p.router, sns_of(std::slice::from_ref(&msg)), None)
            .await
            .unwrap();
        assert_eq!(first[0].action, Action::Open);
        // The example config groups Slack by service: a medium alert is paged by its group's timer.
        assert!(
            first
                .iter()
                .any(|e| matches!(e.action, Action::Notify | Action::Group))
        );
        let again = handle(&p.router, sns_of(&[msg]), None).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].action, Action::Dedup);
    }

    #[tokio::test]
    async fn a_message_that_is_not_an_alert_fails_for_good_naming_the_record() {
        let alert = alert_from("sns/metric-alarm.json");
        let p = Embedded::new(config(), alert.state_changed_at);
        let err = handle(&p.router, sns_of(&["{\"x\":1}".to_string()]), None)
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
        let err = handle(&p.router, sns_of(&[msg]), None).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
