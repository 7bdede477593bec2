//! Microsoft Teams: POST the Adaptive Card payload to the channel's Workflows webhook, which answers
//! 202 (or 200) when it has taken the message.

use std::fmt;
use std::time::Duration;

use reqwest::{Client, Url};
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::record::DeliveryJob;
use tocsin_core::render::Rendered;

use crate::http;

#[cfg(test)]
mod tests;

/// Sends Teams messages.
#[derive(Clone)]
pub struct TeamsSender {
    client: Client,
    url: Url,
    timeout: Duration,
    secrets: Vec<String>,
}

impl fmt::Debug for TeamsSender {
    // A Workflows URL carries its own signature: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeamsSender")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TeamsSender {
    /// Posting to the Workflows webhook `url`.
    pub fn new(client: Client, url: Url) -> TeamsSender {
        TeamsSender {
            client,
            secrets: http::url_secrets(&url),
            url,
            timeout: http::DEFAULT_TIMEOUT,
        }
    }

    /// The whole-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Notifier for TeamsSender {
    async fn send(&self, _job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        let Rendered::Teams { payload } = message else {
            return Err(crate::wrong_message("teams", message));
        };
        let request = self.client.post(self.url.clone()).json(payload);
        http::send(request, self.timeout, &self.secrets).await?;
        Ok(Sent::default())
    }
}
