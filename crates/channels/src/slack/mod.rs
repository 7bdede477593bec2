//! Slack: an incoming webhook (POST the Block Kit payload to the channel's hook URL), or a bot token
//! (`chat.postMessage` to the job's address). The Web API answers most errors with a 200 and
//! `{"ok": false, "error": "..."}`, so for a bot the body decides, not only the status.
//!
//! Follow-ups: a bot's first message about an alert is remembered as `CHANNEL_ID/ts` (the attempt's
//! provider id in the audit; the deliver function hands it back as the job's `thread`). Then an
//! acknowledgement or a resolution **updates that message in place** (`chat.update`, so the channel
//! shows the alert's current state) and, where Slack will not update it (deleted, too old, not ours),
//! replies in its thread instead; any other follow-up (an escalation re-paging the same channel) is a
//! threaded reply broadcast to the channel. An incoming webhook answers no message id, so it cannot
//! update or thread: there every follow-up is a new message.

use std::fmt;
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::{Client, Url};
use serde_json::Value;
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::record::{DeliveryJob, DeliveryKind};
use tocsin_core::render::Rendered;

use crate::http;

#[cfg(test)]
mod tests;

/// Slack's Web API base.
pub const API_BASE: &str = "https://slack.com/api";

/// Web API errors that say "try again later" rather than "this request is wrong". `ratelimited` is the
/// one that matters; the rest are Slack's own documented transient failures.
const TRANSIENT: &[&str] = &[
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

#[derive(Clone)]
enum Mode {
    Webhook(Url),
    Bot {
        token: String,
        post_message: Url,
        update: Url,
    },
}

/// Sends Slack messages.
#[derive(Clone)]
pub struct SlackSender {
    client: Client,
    mode: Mode,
    username: Option<String>,
    icon_emoji: Option<String>,
    timeout: Duration,
    secrets: Vec<String>,
}

impl fmt::Debug for SlackSender {
    // The hook URL and the token are credentials: show only which mode this is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Webhook(_) => "webhook",
            Mode::Bot { .. } => "bot",
        };
        f.debug_struct("SlackSender")
            .field("mode", &mode)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SlackSender {
    /// Through an incoming webhook.
    pub fn webhook(client: Client, url: Url) -> SlackSender {
        SlackSender {
            client,
            secrets: http::url_secrets(&url),
            mode: Mode::Webhook(url),
            username: None,
            icon_emoji: None,
            timeout: http::DEFAULT_TIMEOUT,
        }
    }

    /// As a bot through `chat.postMessage` under `api_base` (normally [`API_BASE`]).
    pub fn bot(client: Client, token: String, api_base: Url) -> SlackSender {
        let base = api_base.as_str().trim_end_matches('/');
        // Appending to the validated base keeps its scheme and host; it cannot fail to parse again.
        let method = |name: &str| Url::parse(&format!("{base}/{name}")).unwrap_or(api_base.clone());
        SlackSender {
            client,
            secrets: vec![token.clone()],
            mode: Mode::Bot {
                token,
                post_message: method("chat.postMessage"),
                update: method("chat.update"),
            },
            username: None,
            icon_emoji: None,
            timeout: http::DEFAULT_TIMEOUT,
        }
    }

    /// The name and emoji to post as (a payload's own values win).
    pub fn with_identity(mut self, username: Option<String>, icon_emoji: Option<String>) -> Self {
        self.username = username;
        self.icon_emoji = icon_emoji;
        self
    }

    /// The whole-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn payload(&self, job: &DeliveryJob, payload: &Value) -> Value {
        let mut payload = payload.clone();
        if let Value::Object(map) = &mut payload {
            if let Some(name) = &self.username {
                map.entry("username").or_insert_with(|| name.clone().into());
            }
            if let Some(emoji) = &self.icon_emoji {
                map.entry("icon_emoji")
                    .or_insert_with(|| emoji.clone().into());
            }
            if matches!(self.mode, Mode::Bot { .. }) {
                let to = job.target.address.as_ref().unwrap_or(&job.target.target);
                map.entry("channel").or_insert_with(|| to.clone().into());
            }
        }
        payload
    }
}

impl Notifier for SlackSender {
    async fn send(&self, job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        let Rendered::Slack { payload } = message else {
            return Err(crate::wrong_message("slack", message));
        };
        let payload = self.payload(job, payload);
        match &self.mode {
            Mode::Webhook(url) => {
                let request = self.client.post(url.clone()).json(&payload);
                http::send(request, self.timeout, &self.secrets).await?;
                Ok(Sent::default())
            }
            Mode::Bot {
                token,
                post_message,
                update,
            } => {
                let Some((channel, ts)) = job.thread.as_deref().and_then(split_thread) else {
                    return self.call(post_message, token, &payload).await;
                };
                if matches!(job.kind, DeliveryKind::Acknowledge | DeliveryKind::Resolve) {
                    let mut edit = payload.clone();
                    if let Value::Object(map) = &mut edit {
                        map.insert("channel".into(), channel.into());
                        map.insert("ts".into(), ts.into());
                    }
                    match self.call(update, token, &edit).await {
                        Err(e) if UNEDITABLE.contains(&e.class.as_str()) => {}
                        // The message keeps its id: later follow-ups find the same one.
                        other => {
                            return other.map(|_| Sent {
                                provider_id: job.thread.clone(),
                            });
                        }
                    }
                }
                let mut reply = payload.clone();
                if let Value::Object(map) = &mut reply {
                    map.insert("channel".into(), channel.into());
                    map.insert("thread_ts".into(), ts.into());
                    if !matches!(job.kind, DeliveryKind::Acknowledge | DeliveryKind::Resolve) {
                        map.insert("reply_broadcast".into(), true.into());
                    }
                }
                self.call(post_message, token, &reply).await
            }
        }
    }
}

/// `chat.update` errors that mean "this message cannot be edited": reply in its thread instead.
const UNEDITABLE: &[&str] = &[
    "slack_message_not_found",
    "slack_cant_update_message",
    "slack_edit_window_closed",
    "slack_msg_too_long",
];

/// Splits a remembered `CHANNEL_ID/ts`.
fn split_thread(thread: &str) -> Option<(&str, &str)> {
    let (channel, ts) = thread.rsplit_once('/')?;
    (!channel.is_empty() && !ts.is_empty()).then_some((channel, ts))
}

impl SlackSender {
    /// One Web API call with the bot token.
    async fn call(&self, method: &Url, token: &str, payload: &Value) -> Result<Sent, SendError> {
        let request = self
            .client
            .post(method.clone())
            .bearer_auth(token)
            .json(payload);
        let reply = http::send(request, self.timeout, &self.secrets).await?;
        web_api_result(&reply, &self.secrets)
    }
}

/// Reads a Web API answer that came with a 2xx.
fn web_api_result(reply: &http::Reply, secrets: &[String]) -> Result<Sent, SendError> {
    let Ok(body) = serde_json::from_str::<Value>(&reply.body) else {
        // Whether the message went out is unknown; for a page a duplicate is better than a loss.
        return Err(SendError {
            retryable: true,
            retry_after: None,
            class: "slack_unreadable".into(),
            reason: format!(
                "slack answered {} with a body that is not JSON",
                reply.status
            ),
        });
    };
    if body.get("ok").and_then(Value::as_bool) == Some(true) {
        // `CHANNEL_ID/ts`: what `chat.update` and `thread_ts` need to find the message again.
        let ts = body.get("ts").and_then(Value::as_str);
        let channel = body.get("channel").and_then(Value::as_str);
        return Ok(Sent {
            provider_id: match (channel, ts) {
                (Some(c), Some(t)) => Some(format!("{c}/{t}")),
                (None, Some(t)) => Some(t.to_string()),
                _ => None,
            },
        });
    }
    // The code is Slack's vocabulary (`channel_not_found`): keep its leading word in that alphabet only,
    // with secrets stripped first, so a class stays a class and nothing a body echoes gets through.
    let said = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown_error");
    let code: String = http::redact(said, secrets)
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(48)
        .collect();
    let code = if code.is_empty() {
        "unknown_error".to_string()
    } else {
        code
    };
    let retryable = TRANSIENT.contains(&code.as_str());
    let retry_after = reply
        .headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| http::parse_retry_after(v, std::time::SystemTime::now()))
        .filter(|_| retryable);
    Err(SendError {
        retryable,
        retry_after,
        reason: format!("slack api error: {code}"),
        class: format!("slack_{code}"),
    })
}
