//! Message rendering: pure functions from a delivery job to what each channel sends. One module per
//! channel, each with the same shape (`pub fn render(ctx: &Context) -> Rendered`). Every untrusted
//! string (alarm names, reasons, descriptions, labels) is escaped for the channel's format.

pub mod email;
pub mod pagerduty;
pub mod slack;
pub mod sms;
pub mod status_html;
pub mod teams;
pub mod webhook;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ChannelKind;
use crate::model::{AlarmState, Severity};
use crate::record::{DeliveryJob, DeliveryKind};
use crate::text::{is_unsafe_char, one_line};

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

/// Renders `ctx` for a channel of kind `kind`.
pub fn render(kind: ChannelKind, ctx: &Context) -> Rendered {
    match kind {
        ChannelKind::Email => email::render(ctx),
        ChannelKind::Sms => sms::render(ctx),
        ChannelKind::Slack => slack::render(ctx),
        ChannelKind::Teams => teams::render(ctx),
        ChannelKind::Pagerduty => pagerduty::render(ctx),
        ChannelKind::Webhook => webhook::render(ctx),
    }
}

/// `s` escaped for HTML text and quoted attribute values: `& < > " '`.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The URL if it is one a message may link to: `https://` or `http://` (any case), with no whitespace
/// or control character. Anything else (`javascript:`, `data:`, relative paths) is dropped, because a
/// link in a page is a click away from running whatever scheme it names.
pub fn safe_url(url: &str) -> Option<&str> {
    let scheme_ok = ["https://", "http://"].iter().any(|p| {
        url.len() > p.len()
            && url
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p))
    });
    let chars_ok = !url.chars().any(|c| c.is_whitespace() || is_unsafe_char(c));
    (scheme_ok && chars_ok).then_some(url)
}

/// Untrusted text for a one-line slot: control characters and bidirectional overrides shown as
/// `\u{..}` escapes, so a U+202E in an alarm name cannot reorder what the reader sees.
pub fn clean_line(s: &str) -> Cow<'_, str> {
    one_line(s)
}

/// Untrusted text for a multi-line slot: like [`clean_line`] but newlines are kept (and `\r\n`
/// becomes `\n`).
pub fn clean_block(s: &str) -> String {
    s.replace("\r\n", "\n")
        .split('\n')
        .map(|l| one_line(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// At most `max` characters of `s`, cut on a character boundary, ending in `…` when cut.
pub fn truncate_chars(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some(_) if max == 0 => Cow::Borrowed(""),
        Some(_) => {
            let end = s.char_indices().nth(max - 1).map_or(s.len(), |(i, _)| i);
            Cow::Owned(format!("{}…", &s[..end]))
        }
    }
}

/// The severity in capitals, as subjects show it.
pub(crate) fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRITICAL",
        Severity::High => "HIGH",
        Severity::Medium => "MEDIUM",
        Severity::Low => "LOW",
        Severity::Info => "INFO",
    }
}

/// The colour a message carries: by severity while firing, green once resolved.
pub(crate) fn colour(job: &DeliveryJob) -> &'static str {
    if job.kind == DeliveryKind::Resolve {
        return "#2e7d32";
    }
    match job.alert.severity {
        Severity::Critical => "#c62828",
        Severity::High => "#ef6c00",
        Severity::Medium => "#f9a825",
        Severity::Low => "#1565c0",
        Severity::Info => "#546e7a",
    }
}

/// What happened, in words after the alarm's name: `is ALARM`, `resolved`, `acknowledged`,
/// `is ALARM (escalation level 2)`. Raw: each channel escapes the whole title for its format.
pub(crate) fn title(job: &DeliveryJob) -> String {
    let name = &job.alert.alarm_name;
    match job.kind {
        DeliveryKind::Trigger => format!("{name} is {}", job.alert.state),
        DeliveryKind::Escalation => match job.level {
            Some(l) => format!("{name} is {} (escalation level {l})", job.alert.state),
            None => format!("{name} is {} (escalated)", job.alert.state),
        },
        DeliveryKind::Resolve if job.alert.state == AlarmState::Ok => {
            format!("{name} is resolved (OK)")
        }
        DeliveryKind::Resolve => format!("{name} is resolved"),
        DeliveryKind::Acknowledge => format!("{name} is acknowledged"),
    }
}

/// Which of the one-click actions make sense now: no "acknowledge" once acknowledged or resolved, no
/// "resolve" once resolved.
pub(crate) fn offers_ack(job: &DeliveryJob) -> bool {
    matches!(job.kind, DeliveryKind::Trigger | DeliveryKind::Escalation)
}

/// See [`offers_ack`].
pub(crate) fn offers_resolve(job: &DeliveryJob) -> bool {
    job.kind != DeliveryKind::Resolve
}

#[cfg(test)]
pub(crate) mod testing {
    //! Jobs for the renderers' tests: the SNS metric-alarm fixture, and an alert made of hostile text.

    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};

    use super::{Context, Links};
    use crate::config::ChannelKind;
    use crate::model::{AlarmState, Alert, Severity};
    use crate::record::{DeliveryJob, DeliveryKind, Status, Target};

    /// Everything an attacker controls in an alarm, at once.
    pub const HOSTILE: &str = "<script>alert(1)</script> & \"q\" 'x' *bold* _it_ ~s~ `c` <!channel> @here 🔥 \u{202E}gnp.exe";

    pub fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The SNS metric-alarm fixture, parsed.
    pub fn fixture_alert() -> Alert {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/sns/metric-alarm.json"
        );
        let bytes = std::fs::read(path).unwrap();
        crate::source::parse(&bytes).unwrap().remove(0)
    }

    pub fn hostile_alert() -> Alert {
        let mut a = fixture_alert();
        a.alarm_name = HOSTILE.to_string();
        a.reason = format!("{HOSTILE}\nsecond line");
        a.description = HOSTILE.to_string();
        a.severity = Severity::Critical;
        a.dimensions = BTreeMap::from([("<b>".to_string(), HOSTILE.to_string())]);
        a.labels.insert("service".into(), HOSTILE.into());
        a
    }

    pub fn job(alert: Alert, kind: DeliveryKind, channel_kind: ChannelKind) -> DeliveryJob {
        let status = match kind {
            DeliveryKind::Resolve => Status::Resolved,
            DeliveryKind::Acknowledge => Status::Acknowledged,
            _ => Status::Open,
        };
        let state = if kind == DeliveryKind::Resolve {
            AlarmState::Ok
        } else {
            alert.state
        };
        DeliveryJob {
            delivery_id: "d-0001".into(),
            alert_id: "a-0001".into(),
            kind,
            target: Target {
                channel: format!("sample-{}", channel_kind.as_str()),
                channel_kind,
                target: "alice".into(),
                address: Some("alice@example.com".into()),
            },
            level: (kind == DeliveryKind::Escalation).then_some(2),
            alert: Alert { state, ..alert },
            status,
            created_at: at("2024-03-01T10:15:01Z"),
            thread: None,
        }
    }

    pub fn links() -> Links {
        Links {
            ack: Some("https://tocsin.example/a/ack-token?x=1&y=2".into()),
            resolve: Some("https://tocsin.example/a/resolve-token".into()),
            view: Some("https://tocsin.example/alerts/a-0001".into()),
            runbook: Some("https://runbooks.example.com/orders-db/cpu".into()),
            ack_code: Some("K7Q2".into()),
        }
    }

    /// Links an attacker wrote (a runbook from an alarm description): none may be offered.
    pub fn hostile_links() -> Links {
        Links {
            ack: Some("https://tocsin.example/a/ack\"><script>".into()),
            resolve: Some("javascript:alert(1)".into()),
            view: Some("data:text/html,<script>alert(1)</script>".into()),
            runbook: Some("https://runbooks.example.com/\"onmouseover=\"x".into()),
            ack_code: Some("K7Q2".into()),
        }
    }

    pub fn ctx<'a>(job: &'a DeliveryJob, links: &'a Links) -> Context<'a> {
        Context {
            job,
            links,
            now: at("2024-03-01T10:15:02Z"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::testing::*;
    use super::*;

    #[test]
    fn html_escaping_covers_the_five_special_characters() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn only_http_and_https_urls_are_linked() {
        assert_eq!(
            safe_url("https://x.example/a?b=1"),
            Some("https://x.example/a?b=1")
        );
        assert_eq!(safe_url("HTTP://x.example"), Some("HTTP://x.example"));
        assert_eq!(safe_url("javascript:alert(1)"), None);
        assert_eq!(safe_url("https://x.example/a b"), None);
        assert_eq!(safe_url("https://"), None);
        assert_eq!(safe_url("/relative"), None);
    }

    #[test]
    fn truncation_cuts_on_a_character_boundary() {
        assert_eq!(truncate_chars("héllo", 10), "héllo");
        assert_eq!(truncate_chars("héllo", 3), "hé…");
        assert_eq!(truncate_chars("🔥🔥🔥", 2).chars().count(), 2);
    }

    #[test]
    fn bidirectional_overrides_are_shown_not_obeyed() {
        assert!(!clean_line(HOSTILE).contains('\u{202E}'));
        assert_eq!(clean_block("a\r\nb\u{202E}"), "a\nb\\u{202e}");
    }

    /// Compares a rendering with its snapshot under `tests/snapshots/render/`; with
    /// `UPDATE_SNAPSHOTS=1`, writes it (or rewrites it) instead.
    fn snapshot(name: &str, actual: &str) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/snapshots/render");
        let path = format!("{dir}/{name}");
        let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
        if update {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e} (run with UPDATE_SNAPSHOTS=1 to write it)"));
        assert_eq!(
            actual, expected,
            "{path} differs (UPDATE_SNAPSHOTS=1 rewrites it)"
        );
    }

    fn pretty(v: &serde_json::Value) -> String {
        serde_json::to_string_pretty(v).unwrap() + "\n"
    }

    #[test]
    fn the_sns_metric_alarm_renders_as_its_snapshots_on_every_channel() {
        let links = links();
        for kind in ALL_KINDS {
            let job = job(fixture_alert(), DeliveryKind::Trigger, kind);
            match render(kind, &ctx(&job, &links)) {
                Rendered::Email {
                    subject,
                    html,
                    text,
                } => {
                    snapshot("email.subject.txt", &(subject + "\n"));
                    snapshot("email.html", &html);
                    snapshot("email.txt", &text);
                }
                Rendered::Sms { text } => snapshot("sms.txt", &(text + "\n")),
                Rendered::Slack { payload } => snapshot("slack.json", &pretty(&payload)),
                Rendered::Teams { payload } => snapshot("teams.json", &pretty(&payload)),
                Rendered::Pagerduty { payload } => snapshot("pagerduty.json", &pretty(&payload)),
                Rendered::Webhook { body } => snapshot("webhook.json", &pretty(&body)),
            }
        }
    }

    #[test]
    fn every_kind_renders_its_own_variant() {
        let links = links();
        for kind in ALL_KINDS {
            let job = job(fixture_alert(), DeliveryKind::Trigger, kind);
            let r = render(kind, &ctx(&job, &links));
            let tag = serde_json::to_value(&r).unwrap()["channel"].clone();
            assert_eq!(tag, kind.as_str());
        }
    }
}
