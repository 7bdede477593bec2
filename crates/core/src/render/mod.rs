//! Message rendering: pure functions from a delivery job to what each channel sends. One module per
//! channel, each with the same shape (`pub fn render(ctx: &Context) -> Rendered`). Every untrusted
//! string (alarm names, reasons, descriptions, labels) is escaped for the channel's format.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ChannelKind;
use crate::record::DeliveryJob;

/// The links a message offers. One-click links carry signed, expiring tokens (made by the API side);
/// a GET on them only shows a confirm page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// Acknowledge this alert.
    pub ack: Option<String>,
    /// Resolve this alert.
    pub resolve: Option<String>,
    /// The alert's page (timeline).
    pub view: Option<String>,
    /// The runbook (from the alarm's description or labels).
    pub runbook: Option<String>,
    /// A short code to acknowledge by reply (SMS).
    pub ack_code: Option<String>,
}

/// What a renderer needs.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The job: the alert, why it is sent, to whom.
    pub job: &'a DeliveryJob,
    /// The links to offer.
    pub links: &'a Links,
    /// When the message is rendered.
    pub now: DateTime<Utc>,
}

/// A rendered message, ready for its channel's sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Rendered {
    /// SES v2: subject, HTML and text parts.
    Email {
        /// `[SEVERITY] title`.
        subject: String,
        /// The HTML part.
        html: String,
        /// The plain-text part.
        text: String,
    },
    /// SNS SMS: one message.
    Sms {
        /// The text.
        text: String,
    },
    /// Slack Block Kit payload.
    Slack {
        /// The JSON payload.
        payload: serde_json::Value,
    },
    /// Teams Adaptive Card payload for a Workflows webhook.
    Teams {
        /// The JSON payload.
        payload: serde_json::Value,
    },
    /// PagerDuty Events v2 payload.
    Pagerduty {
        /// The JSON payload.
        payload: serde_json::Value,
    },
    /// Webhook JSON body (signed when sent).
    Webhook {
        /// The JSON body.
        body: serde_json::Value,
    },
}

/// The channel kinds in the order `tocsin render --channel all` shows them.
pub const ALL_KINDS: [ChannelKind; 6] = [
    ChannelKind::Email,
    ChannelKind::Sms,
    ChannelKind::Slack,
    ChannelKind::Teams,
    ChannelKind::Pagerduty,
    ChannelKind::Webhook,
];
