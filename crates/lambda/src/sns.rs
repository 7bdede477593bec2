//! The messages of an SNS event, read one way for every function that a topic invokes: each record's
//! `Sns.Message` as JSON of the type the function takes. A record that is not one is a permanent
//! error naming the record (`Records[2].Sns.Message`) and where in it the JSON went wrong, never its
//! text (a delivery job carries addresses).

use aws_lambda_events::event::sns::SnsEvent;
use serde::de::DeserializeOwned;

use crate::FunctionError;

/// Every record's message as a `T`, in order; `what` names `T` in the error (`a delivery job`).
pub fn messages<T: DeserializeOwned>(
    event: &SnsEvent,
    what: &str,
) -> Result<Vec<T>, FunctionError> {
    event
        .records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            serde_json::from_str(&record.sns.message).map_err(|e| {
                FunctionError::Permanent(format!(
                    "Records[{i}].Sns.Message is not {what} ({:?} error at line {} column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(messages: &[&str]) -> SnsEvent {
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| serde_json::json!({"EventSource": "aws:sns", "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:1",
                "Sns": {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
                    "Message": m, "Timestamp": "2026-11-20T02:10:00.000Z", "SignatureVersion": "1",
                    "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "", "MessageAttributes": {}}}))
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).expect("an SNS event")
    }

    #[test]
    fn every_record_is_read_in_order_and_a_bad_one_is_permanent_without_its_text() {
        let ok: Vec<u32> = messages(&event(&["1", "2"]), "a number").unwrap();
        assert_eq!(ok, vec![1, 2]);
        let e = messages::<u32>(&event(&["1", "\"+447700900001\""]), "a number").unwrap_err();
        assert!(!e.is_retryable());
        let text = e.to_string();
        assert!(
            text.starts_with("permanent: Records[1].Sns.Message is not a number"),
            "{text}"
        );
        assert!(!text.contains("+4477"), "{text}");
    }
}
