//! tocsin's HTTP channels: Slack, Teams, PagerDuty and signed webhooks. One folder per channel, each with
//! its sender (`mod.rs`) and its tests (`tests.rs`); what they share (the process-wide client, timeouts,
//! the one status-to-[`SendError`] classifier) lives in [`http`]. A sender only classifies one send as
//! sent, retryable or permanent; retrying is `tocsin_core::retry`'s business.
//!
//! [`build`] turns a configured [`Channel`] into a sender and validates it then (URLs parse and are https,
//! keys are non-empty and decode), so a bad config fails the function at start-up, not at the first page.
//!
//! [`SendError`]: tocsin_core::ports::SendError

use std::time::Duration;

use thiserror::Error;
use tocsin_core::config::{Channel, ChannelKind, Setting};
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::record::DeliveryJob;
use tocsin_core::render::Rendered;
use tocsin_core::retry::Sleeper;

pub mod http;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod webhook;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use pagerduty::PagerdutySender;
pub use slack::SlackSender;
pub use teams::TeamsSender;
pub use webhook::WebhookSender;

/// Why a secret reference could not be resolved. The resolver (environment, Secrets Manager) is the
/// caller's; the channel only needs to know that it failed and for which setting.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretError {
    /// The reference names nothing (`{env: NAME}` with `NAME` unset, an unknown secret).
    #[error("`{reference}` is not set")]
    NotSet {
        /// The reference's name (never its value).
        reference: String,
    },
    /// The store holding it failed.
    #[error("`{reference}` could not be read: {reason}")]
    Unavailable {
        /// The reference's name (never its value).
        reference: String,
        /// Why, in one line.
        reason: String,
    },
}

/// Why a channel could not be built from its config. Messages name the channel and setting, never the
/// value: a URL or key may be a credential.
#[derive(Debug, Error)]
pub enum BuildError {
    /// The channel is not one of the HTTP kinds (email and SMS go through AWS).
    #[error("channel `{channel}`: {kind} is not an HTTP channel")]
    NotHttp {
        /// The channel's name.
        channel: String,
        /// Its kind.
        kind: &'static str,
    },
    /// A required setting is absent.
    #[error("channel `{channel}`: missing setting `{setting}`")]
    Missing {
        /// The channel's name.
        channel: String,
        /// The setting.
        setting: &'static str,
    },
    /// Two settings that exclude each other are both given.
    #[error("channel `{channel}`: give `{first}` or `{second}`, not both")]
    Conflict {
        /// The channel's name.
        channel: String,
        /// One setting.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// A setting's reference could not be resolved.
    #[error("channel `{channel}`: setting `{setting}`: {source}")]
    Secret {
        /// The channel's name.
        channel: String,
        /// The setting.
        setting: &'static str,
        /// Why.
        #[source]
        source: SecretError,
    },
    /// A setting resolved to an empty value.
    #[error("channel `{channel}`: setting `{setting}` is empty")]
    Empty {
        /// The channel's name.
        channel: String,
        /// The setting.
        setting: &'static str,
    },
    /// A URL setting is not a usable URL.
    #[error("channel `{channel}`: setting `{setting}` {why}")]
    InvalidUrl {
        /// The channel's name.
        channel: String,
        /// The setting.
        setting: &'static str,
        /// Why, without the URL.
        why: &'static str,
    },
    /// A key setting is not a usable key.
    #[error("channel `{channel}`: setting `{setting}` {why}")]
    InvalidKey {
        /// The channel's name.
        channel: String,
        /// The setting.
        setting: &'static str,
        /// Why, without the key.
        why: &'static str,
    },
    /// The process-wide HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Knobs the config file does not carry: the request timeout, and the API endpoints tests point at a
/// local server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// The whole-request timeout of each send.
    pub timeout: Duration,
    /// Slack's Web API base, for bot tokens.
    pub slack_api_base: String,
    /// PagerDuty's Events v2 enqueue endpoint.
    pub pagerduty_endpoint: String,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            timeout: http::DEFAULT_TIMEOUT,
            slack_api_base: slack::API_BASE.to_string(),
            pagerduty_endpoint: pagerduty::ENDPOINT.to_string(),
        }
    }
}

/// Any HTTP channel's sender, as the factory builds it from config.
#[derive(Debug, Clone)]
pub enum AnyHttpChannel {
    /// Slack.
    Slack(SlackSender),
    /// Microsoft Teams.
    Teams(TeamsSender),
    /// PagerDuty Events v2.
    Pagerduty(PagerdutySender),
    /// A signed webhook.
    Webhook(WebhookSender),
}

impl AnyHttpChannel {
    /// The channel's kind.
    pub fn kind(&self) -> ChannelKind {
        match self {
            AnyHttpChannel::Slack(_) => ChannelKind::Slack,
            AnyHttpChannel::Teams(_) => ChannelKind::Teams,
            AnyHttpChannel::Pagerduty(_) => ChannelKind::Pagerduty,
            AnyHttpChannel::Webhook(_) => ChannelKind::Webhook,
        }
    }
}

impl Notifier for AnyHttpChannel {
    async fn send(&self, job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        match self {
            AnyHttpChannel::Slack(s) => s.send(job, message).await,
            AnyHttpChannel::Teams(s) => s.send(job, message).await,
            AnyHttpChannel::Pagerduty(s) => s.send(job, message).await,
            AnyHttpChannel::Webhook(s) => s.send(job, message).await,
        }
    }
}

/// Builds the sender for `channel`, resolving its settings through `secrets`, with default options.
pub fn build(
    channel: &Channel,
    secrets: &dyn Fn(&Setting) -> Result<String, SecretError>,
) -> Result<AnyHttpChannel, BuildError> {
    build_with(channel, secrets, &BuildOptions::default())
}

/// [`build`] with explicit options.
pub fn build_with(
    channel: &Channel,
    secrets: &dyn Fn(&Setting) -> Result<String, SecretError>,
    options: &BuildOptions,
) -> Result<AnyHttpChannel, BuildError> {
    let settings = Settings { channel, secrets };
    let client = http::client()?;
    Ok(match channel.kind {
        ChannelKind::Slack => {
            let webhook_url = settings.optional("webhook_url")?;
            let bot_token = settings.optional("bot_token")?;
            let sender = match (webhook_url, bot_token) {
                (Some(url), None) => SlackSender::webhook(
                    client,
                    http::endpoint(&channel.name, "webhook_url", &url)?,
                ),
                (None, Some(token)) => SlackSender::bot(
                    client,
                    token,
                    http::endpoint(&channel.name, "bot_token", &options.slack_api_base)?,
                ),
                (Some(_), Some(_)) => {
                    return Err(BuildError::Conflict {
                        channel: channel.name.clone(),
                        first: "webhook_url",
                        second: "bot_token",
                    });
                }
                (None, None) => {
                    return Err(BuildError::Missing {
                        channel: channel.name.clone(),
                        setting: "webhook_url",
                    });
                }
            };
            let sender = sender
                .with_identity(
                    settings.optional("username")?,
                    settings.optional("icon_emoji")?,
                )
                .with_timeout(options.timeout);
            AnyHttpChannel::Slack(sender)
        }
        ChannelKind::Teams => {
            let url = settings.required("webhook_url")?;
            let url = http::endpoint(&channel.name, "webhook_url", &url)?;
            AnyHttpChannel::Teams(TeamsSender::new(client, url).with_timeout(options.timeout))
        }
        ChannelKind::Pagerduty => {
            let key = settings.required("routing_key")?;
            let endpoint =
                http::endpoint(&channel.name, "routing_key", &options.pagerduty_endpoint)?;
            AnyHttpChannel::Pagerduty(
                PagerdutySender::new(client, key, endpoint).with_timeout(options.timeout),
            )
        }
        ChannelKind::Webhook => {
            let url = settings.required("url")?;
            let url = http::endpoint(&channel.name, "url", &url)?;
            let key = settings.required("signing_key")?;
            let key = webhook::decode_key(&key).map_err(|why| BuildError::InvalidKey {
                channel: channel.name.clone(),
                setting: "signing_key",
                why,
            })?;
            AnyHttpChannel::Webhook(
                WebhookSender::new(client, url, &key).with_timeout(options.timeout),
            )
        }
        kind @ (ChannelKind::Email | ChannelKind::Sms) => {
            return Err(BuildError::NotHttp {
                channel: channel.name.clone(),
                kind: kind.as_str(),
            });
        }
    })
}

/// A channel's settings with their references resolved.
struct Settings<'a> {
    channel: &'a Channel,
    secrets: &'a dyn Fn(&Setting) -> Result<String, SecretError>,
}

impl Settings<'_> {
    fn optional(&self, setting: &'static str) -> Result<Option<String>, BuildError> {
        let Some(reference) = self.channel.settings.get(setting) else {
            return Ok(None);
        };
        let value = (self.secrets)(reference).map_err(|source| BuildError::Secret {
            channel: self.channel.name.clone(),
            setting,
            source,
        })?;
        // Surrounding whitespace is a copy-paste accident (a trailing newline in a secret file), never
        // part of a URL or key; a value that is nothing else is as good as missing.
        let value = value.trim();
        if value.is_empty() {
            return Err(BuildError::Empty {
                channel: self.channel.name.clone(),
                setting,
            });
        }
        Ok(Some(value.to_string()))
    }

    fn required(&self, setting: &'static str) -> Result<String, BuildError> {
        self.optional(setting)?.ok_or_else(|| BuildError::Missing {
            channel: self.channel.name.clone(),
            setting,
        })
    }
}

/// The retry layer's sleeper on tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// The error a sender returns when handed another channel's message: a wiring bug, so permanent.
pub(crate) fn wrong_message(channel: &str, message: &Rendered) -> SendError {
    // The serialized tag rather than a match, so a variant added to `Rendered` needs no change here.
    let got = serde_json::to_value(message)
        .ok()
        .and_then(|v| {
            v.get("channel")
                .and_then(|c| c.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "different".to_string());
    SendError {
        retryable: false,
        retry_after: None,
        class: "wrong_message".into(),
        reason: format!("the {channel} channel was given a {got} message"),
    }
}
