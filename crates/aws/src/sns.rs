//! The SNS adapter of the [`Bus`] port: the two hand-offs of the flow on AWS. Ingest publishes canonical
//! alerts to the alerts topic (the router subscribes); the router and escalate publish delivery jobs to
//! the deliveries topic, which fans out to one deliver function per channel. Every message body is the
//! record's JSON as it is, so a subscriber with `RawMessageDelivery` reads back exactly what
//! `serde_json` wrote.
//!
//! A delivery job also carries two message attributes, `channel_kind` (`slack`, `email`, ...) and
//! `channel` (the config's channel name), so that each deliver function's subscription selects its jobs
//! with a filter policy on the topic rather than by receiving and discarding everyone else's.
//!
//! SNS refuses a message over 256 KiB, counting the body and every attribute's name, type and value.
//! The bus checks that itself before calling: the refusal then names the record (its id and size), not
//! the service's bare `InvalidParameter`, and the body never appears in an error or a log line.

use crate::sdk_error::{bounded, describe, is_refused};
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use thiserror::Error;
use tocsin_core::Alert;
use tocsin_core::ports::{Bus, BusError};
use tocsin_core::record::DeliveryJob;
use tracing::debug;

/// The largest message SNS accepts: 256 KiB, body and attributes together.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// The delivery-job attribute holding the channel's kind, in its config spelling (`slack`, `email`, ...).
pub const CHANNEL_KIND_ATTRIBUTE: &str = "channel_kind";
/// The delivery-job attribute holding the config's channel name.
pub const CHANNEL_ATTRIBUTE: &str = "channel";

/// SNS's data type for the attributes the bus sets; it counts towards the size limit too.
const STRING_TYPE: &str = "String";

/// Why the SNS bus could not publish. Each is one line and never contains the message body; at the
/// [`Bus`] port it becomes a [`BusError`] carrying this line.
#[derive(Debug, Error)]
pub enum SnsBusError {
    /// This bus was built without the topic the record goes to (an ingest bus asked for a job, say).
    #[error("sns: this bus has no {topic} topic configured")]
    NoTopic {
        /// `alerts` or `deliveries`.
        topic: &'static str,
    },
    /// The message is over SNS's limit; retrying cannot help.
    #[error(
        "sns: {record} {id} is {bytes} bytes with its attributes, over the SNS limit of {limit}"
    )]
    TooLarge {
        /// `alert` or `delivery job`.
        record: &'static str,
        /// The alert's event id or the job's delivery id.
        id: String,
        /// The message size as SNS counts it.
        bytes: usize,
        /// [`MAX_MESSAGE_BYTES`].
        limit: usize,
    },
    /// The record could not be turned into a message.
    #[error("sns: cannot encode {record} {id}: {reason}")]
    Encode {
        /// `alert` or `delivery job`.
        record: &'static str,
        /// The alert's event id or the job's delivery id.
        id: String,
        /// One line from the encoder.
        reason: String,
    },
    /// SNS refused the publish or could not be reached.
    #[error("sns Publish to {topic_arn}: {detail}")]
    Publish {
        /// The topic.
        topic_arn: String,
        /// One line: the service's error code and message, or the transport failure.
        detail: String,
        /// Whether SNS refused the message as it is (an invalid parameter): sending it again fails
        /// the same way.
        refused: bool,
    },
}

impl From<SnsBusError> for BusError {
    /// A message over the limit or not encodable, or one SNS refused, is refused; a bus without the
    /// topic is a deploy's mistake, and fails (retryably) until it is mended, as SNS failing does.
    fn from(e: SnsBusError) -> Self {
        match &e {
            SnsBusError::TooLarge { .. }
            | SnsBusError::Encode { .. }
            | SnsBusError::Publish { refused: true, .. } => BusError::Refused(e.to_string()),
            SnsBusError::NoTopic { .. } | SnsBusError::Publish { refused: false, .. } => {
                BusError::Backend(e.to_string())
            }
        }
    }
}

/// The [`Bus`] on SNS topics. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct SnsBus {
    client: Client,
    alerts_topic_arn: Option<String>,
    deliveries_topic_arn: Option<String>,
}

impl SnsBus {
    /// The ingest side: publishes alerts to `alerts_topic_arn`; a delivery job is refused.
    pub fn alerts(client: Client, alerts_topic_arn: impl Into<String>) -> Self {
        Self::new(client, Some(alerts_topic_arn.into()), None)
    }

    /// The router (and escalate) side: publishes delivery jobs to `deliveries_topic_arn`; an alert is
    /// refused.
    pub fn deliveries(client: Client, deliveries_topic_arn: impl Into<String>) -> Self {
        Self::new(client, None, Some(deliveries_topic_arn.into()))
    }

    /// Either topic, both or none; a publish to a topic not given fails with [`SnsBusError::NoTopic`].
    pub fn new(
        client: Client,
        alerts_topic_arn: Option<String>,
        deliveries_topic_arn: Option<String>,
    ) -> Self {
        SnsBus {
            client,
            alerts_topic_arn,
            deliveries_topic_arn,
        }
    }

    /// Publishes an alert (its JSON, no attributes) to the alerts topic.
    pub async fn send_alert(&self, alert: &Alert) -> Result<(), SnsBusError> {
        let topic = topic(&self.alerts_topic_arn, "alerts")?;
        let message = alert_message(alert)?;
        self.publish(topic, message).await
    }

    /// Publishes a delivery job (its JSON, with the `channel_kind` and `channel` attributes) to the
    /// deliveries topic.
    pub async fn send_delivery(&self, job: &DeliveryJob) -> Result<(), SnsBusError> {
        let topic = topic(&self.deliveries_topic_arn, "deliveries")?;
        let message = delivery_message(job)?;
        self.publish(topic, message).await
    }

    async fn publish(&self, topic_arn: &str, message: Message) -> Result<(), SnsBusError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .message(message.body);
        for (name, value) in message.attributes {
            request = request.message_attributes(name, value);
        }
        // A timer's work continues the trace that set the timer (tocsin_lambda::trace); otherwise the
        // SDK sends the invocation's own.
        let out = match tocsin_lambda::trace::carried() {
            Some(header) => {
                request
                    .customize()
                    .mutate_request(move |req| {
                        req.headers_mut().insert("x-amzn-trace-id", header.clone());
                    })
                    .send()
                    .await
            }
            None => request.send().await,
        };
        let out = out.map_err(|e| SnsBusError::Publish {
            topic_arn: topic_arn.to_string(),
            detail: bounded(&describe(&e)),
            refused: is_refused(&e),
        })?;
        debug!(
            topic_arn,
            record = message.record,
            id = %message.id,
            message_id = out.message_id().unwrap_or(""),
            "published"
        );
        Ok(())
    }
}

impl Bus for SnsBus {
    async fn publish_alert(&self, alert: &Alert) -> Result<(), BusError> {
        Ok(self.send_alert(alert).await?)
    }

    async fn publish_delivery(&self, job: &DeliveryJob) -> Result<(), BusError> {
        Ok(self.send_delivery(job).await?)
    }
}

/// One message ready to publish, checked against the size limit.
#[derive(Debug)]
struct Message {
    record: &'static str,
    id: String,
    body: String,
    attributes: Vec<(&'static str, MessageAttributeValue)>,
}

fn topic<'a>(arn: &'a Option<String>, name: &'static str) -> Result<&'a str, SnsBusError> {
    arn.as_deref()
        .filter(|a| !a.is_empty())
        .ok_or(SnsBusError::NoTopic { topic: name })
}

fn alert_message(alert: &Alert) -> Result<Message, SnsBusError> {
    message("alert", &alert.event_id, alert, &[])
}

fn delivery_message(job: &DeliveryJob) -> Result<Message, SnsBusError> {
    message(
        "delivery job",
        &job.delivery_id,
        job,
        &[
            (CHANNEL_KIND_ATTRIBUTE, job.target.channel_kind.as_str()),
            (CHANNEL_ATTRIBUTE, &job.target.channel),
        ],
    )
}

fn message<T: serde::Serialize>(
    record: &'static str,
    id: &str,
    value: &T,
    attributes: &[(&'static str, &str)],
) -> Result<Message, SnsBusError> {
    let encode_error = |reason: String| SnsBusError::Encode {
        record,
        id: id.to_string(),
        reason: reason.replace(['\n', '\r'], " "),
    };
    let body = serde_json::to_string(value).map_err(|e| encode_error(e.to_string()))?;
    let bytes = body.len()
        + attributes
            .iter()
            .map(|(name, value)| name.len() + STRING_TYPE.len() + value.len())
            .sum::<usize>();
    if bytes > MAX_MESSAGE_BYTES {
        return Err(SnsBusError::TooLarge {
            record,
            id: id.to_string(),
            bytes,
            limit: MAX_MESSAGE_BYTES,
        });
    }
    let attributes = attributes
        .iter()
        .map(|&(name, value)| {
            MessageAttributeValue::builder()
                .data_type(STRING_TYPE)
                .string_value(value)
                .build()
                .map(|v| (name, v))
                .map_err(|e| encode_error(DisplayErrorContext(e).to_string()))
        })
        .collect::<Result<_, _>>()?;
    Ok(Message {
        record,
        id: id.to_string(),
        body,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    // Test code: a failed step is a panic that names it.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aws_sdk_sns::config::{BehaviorVersion, Region};
    use aws_sdk_sns::operation::publish::PublishError;
    use chrono::{DateTime, Utc};
    use tocsin_core::config::ChannelKind;
    use tocsin_core::contract;
    use tocsin_core::record::{DeliveryKind, Status, Target};

    /// A client that never gets to send: every case here fails before the request.
    fn offline_client() -> Client {
        let config = aws_sdk_sns::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        Client::from_conf(config)
    }

    fn alert(description: String) -> Alert {
        let mut alert = contract::record("ev-1", "fp-1", None).alert;
        alert.event_id = "ev-1".into();
        alert.description = description;
        alert
    }

    fn job(description: String) -> DeliveryJob {
        let at: DateTime<Utc> = "2026-11-20T02:10:00Z".parse().unwrap();
        DeliveryJob {
            delivery_id: "dl-1".into(),
            alert_id: "al-1".into(),
            kind: DeliveryKind::Trigger,
            target: Target {
                channel: "ops-slack".into(),
                channel_kind: ChannelKind::Slack,
                target: "#ops".into(),
                address: None,
            },
            level: None,
            alert: alert(description),
            status: Status::Open,
            created_at: at,
            thread: None,
        }
    }

    #[tokio::test]
    async fn publishing_to_a_topic_the_bus_was_not_given_names_the_topic() {
        let ingest = SnsBus::alerts(offline_client(), "arn:aws:sns:us-east-1:1:alerts");
        let err = ingest.send_delivery(&job(String::new())).await.unwrap_err();
        assert!(matches!(
            err,
            SnsBusError::NoTopic {
                topic: "deliveries"
            }
        ));
        let router = SnsBus::deliveries(offline_client(), "arn:aws:sns:us-east-1:1:deliveries");
        let err = router
            .publish_alert(&alert(String::new()))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bus backend error: sns: this bus has no alerts topic configured"
        );
    }

    #[test]
    fn a_delivery_job_carries_its_channel_kind_and_name_as_string_attributes() {
        let message = delivery_message(&job(String::new())).unwrap();
        let attrs: Vec<_> = message
            .attributes
            .iter()
            .map(|(n, v)| (*n, v.data_type(), v.string_value().unwrap()))
            .collect();
        assert_eq!(
            attrs,
            [
                ("channel_kind", "String", "slack"),
                ("channel", "String", "ops-slack")
            ]
        );
        let back: DeliveryJob = serde_json::from_str(&message.body).unwrap();
        assert_eq!(back, job(String::new()));
    }

    #[test]
    fn the_size_limit_counts_the_attributes_and_refuses_one_byte_over() {
        let empty = delivery_message(&job(String::new())).unwrap();
        // Each attribute counts its name, its data type ("String") and its value.
        let attrs = "channel_kind".len()
            + "slack".len()
            + "channel".len()
            + "ops-slack".len()
            + 2 * STRING_TYPE.len();
        let room = MAX_MESSAGE_BYTES - empty.body.len() - attrs;
        assert!(delivery_message(&job("x".repeat(room))).is_ok());
        match delivery_message(&job("x".repeat(room + 1))).unwrap_err() {
            SnsBusError::TooLarge {
                record,
                id,
                bytes,
                limit,
            } => {
                assert_eq!((record, id.as_str()), ("delivery job", "dl-1"));
                assert_eq!((bytes, limit), (MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES));
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_oversized_alert_is_one_line_that_never_echoes_the_body() {
        let bus = SnsBus::alerts(offline_client(), "arn:aws:sns:us-east-1:1:alerts");
        let body = "secret-payload ".repeat(20_000);
        let err = bus
            .publish_alert(&alert(body))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains('\n') && !err.contains("secret-payload"),
            "{err}"
        );
        assert!(
            err.starts_with("bus refused the message: sns: alert ev-1 is "),
            "{err}"
        );
        assert!(err.ends_with("over the SNS limit of 262144"), "{err}");
    }

    #[test]
    fn service_errors_are_one_bounded_line() {
        let long = format!("{}\n{}", "x".repeat(400), "y");
        let err: aws_sdk_sns::error::SdkError<PublishError, ()> =
            aws_sdk_sns::error::SdkError::construction_failure(long);
        let line = bounded(&describe(&err));
        assert!(!line.contains('\n'));
        assert!(line.chars().count() <= 303, "{line}");
    }
}
