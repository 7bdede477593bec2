//! PagerDuty Events v2: POST the event to the enqueue endpoint with the channel's routing key put into
//! it. PagerDuty answers 202 with the event's `dedup_key`, 400 for an event it will never take, 429 when
//! the key is over its rate.

use std::fmt;
use std::time::Duration;

use reqwest::{Client, Url};
use serde_json::Value;
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::record::DeliveryJob;
use tocsin_core::render::Rendered;

use crate::http;

#[cfg(test)]
mod tests;

/// The Events v2 enqueue endpoint.
pub const ENDPOINT: &str = "https://events.pagerduty.com/v2/enqueue";

/// Sends PagerDuty events.
#[derive(Clone)]
pub struct PagerdutySender {
    client: Client,
    routing_key: String,
    endpoint: Url,
    timeout: Duration,
    secrets: Vec<String>,
}

impl fmt::Debug for PagerdutySender {
    // The routing key lets anyone page the service: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerdutySender")
            .field("endpoint", &self.endpoint.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PagerdutySender {
    /// Sending with `routing_key` to `endpoint` (normally [`ENDPOINT`]).
    pub fn new(client: Client, routing_key: String, endpoint: Url) -> PagerdutySender {
        PagerdutySender {
            client,
            secrets: vec![routing_key.clone()],
            routing_key,
            endpoint,
            timeout: http::DEFAULT_TIMEOUT,
        }
    }

    /// The whole-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Notifier for PagerdutySender {
    async fn send(&self, _job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        let Rendered::Pagerduty { payload } = message else {
            return Err(crate::wrong_message("pagerduty", message));
        };
        let mut event = payload.clone();
        let Value::Object(map) = &mut event else {
            return Err(SendError {
                retryable: false,
                retry_after: None,
                class: "bad_message".into(),
                reason: "the pagerduty event is not a JSON object".into(),
            });
        };
        // The renderer knows nothing of credentials; the key joins the event only here, on its way out.
        map.insert(
            "routing_key".into(),
            Value::String(self.routing_key.clone()),
        );
        let request = self.client.post(self.endpoint.clone()).json(&event);
        let reply = http::send(request, self.timeout, &self.secrets).await?;
        let dedup_key = serde_json::from_str::<Value>(&reply.body)
            .ok()
            .and_then(|b| {
                b.get("dedup_key")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        Ok(Sent {
            provider_id: dedup_key,
        })
    }
}
