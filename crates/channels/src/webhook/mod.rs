//! A signed webhook, per Standard Webhooks: POST the JSON body with `webhook-id` (the delivery id, so a
//! receiver can drop a retry it already has), `webhook-timestamp` (unix seconds) and `webhook-signature`
//! (`v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`). A key written `whsec_…` is base64 of
//! the key bytes, as the spec's libraries hand it out; any other key is used as its own bytes.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Url};
use sha2::Sha256;
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::record::DeliveryJob;
use tocsin_core::render::Rendered;

use crate::http;

#[cfg(test)]
mod tests;

/// The prefix of a base64-encoded key.
const KEY_PREFIX: &str = "whsec_";

/// Sends signed webhooks.
#[derive(Clone)]
pub struct WebhookSender {
    client: Client,
    url: Url,
    /// Keyed once at build time; each send clones it.
    mac: Hmac<Sha256>,
    timeout: Duration,
    secrets: Vec<String>,
}

impl fmt::Debug for WebhookSender {
    // The URL may carry a token and the key signs for us: print neither.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSender")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The key bytes of a configured signing key; the error says why without repeating it.
pub fn decode_key(key: &str) -> Result<Vec<u8>, &'static str> {
    let bytes = match key.strip_prefix(KEY_PREFIX) {
        Some(encoded) => STANDARD
            .decode(encoded)
            .map_err(|_| "starts with `whsec_` but the rest is not base64")?,
        None => key.as_bytes().to_vec(),
    };
    if bytes.is_empty() {
        return Err("is an empty key");
    }
    Ok(bytes)
}

/// The `webhook-signature` value for one message.
pub fn signature(mac: &Hmac<Sha256>, id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = mac.clone();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

impl WebhookSender {
    /// Posting to `url`, signing with `key` (bytes, as [`decode_key`] gives them).
    pub fn new(client: Client, url: Url, key: &[u8]) -> WebhookSender {
        // HMAC takes a key of any length, so this never fails; an empty key is refused earlier, at build.
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        let mut secrets = http::url_secrets(&url);
        secrets.push(STANDARD.encode(key));
        if let Ok(raw) = std::str::from_utf8(key) {
            secrets.push(raw.to_string());
        }
        WebhookSender {
            client,
            url,
            mac,
            timeout: http::DEFAULT_TIMEOUT,
            secrets,
        }
    }

    /// The whole-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Notifier for WebhookSender {
    async fn send(&self, job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        let Rendered::Webhook { body } = message else {
            return Err(crate::wrong_message("webhook", message));
        };
        // Signed bytes and sent bytes must be the same bytes: serialize once.
        let body = serde_json::to_vec(body).map_err(|e| SendError {
            retryable: false,
            retry_after: None,
            class: "bad_message".into(),
            reason: format!("the webhook body does not serialize: {e}"),
        })?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &job.delivery_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature(&self.mac, &job.delivery_id, timestamp, &body),
            )
            .body(body);
        http::send(request, self.timeout, &self.secrets).await?;
        Ok(Sent::default())
    }
}
