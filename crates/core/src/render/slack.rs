//! Slack: a Block Kit payload. A header names the alarm, an attachment carries the severity colour
//! with the facts as mrkdwn fields, and the one-click links are URL buttons (no interactivity endpoint
//! needed). Untrusted text in mrkdwn is escaped so it can neither format, link nor mention anyone.

use serde_json::{Value, json};

use super::{
    Context, Rendered, clean_line, colour, offers_ack, offers_resolve, safe_url, severity_word,
    title, truncate_chars,
};
use crate::model::format_time;
use crate::record::{DeliveryKind, Status};

/// Slack's limit on a header's text.
const HEADER_MAX: usize = 150;
/// Slack's limit on one section field.
const FIELD_MAX: usize = 2000;
/// Slack's limit on a section's text.
const SECTION_MAX: usize = 3000;
/// Slack's limit on a button's URL.
const URL_MAX: usize = 3000;

/// Renders the Slack payload for `ctx`.
pub fn render(ctx: &Context) -> Rendered {
    let job = ctx.job;
    let a = &job.alert;
    let headline = match job.kind {
        DeliveryKind::Resolve => format!("✅ Resolved: {}", a.alarm_name),
        DeliveryKind::Acknowledge if job.status == Status::Acknowledged => {
            format!("👀 Acknowledged: {}", a.alarm_name)
        }
        DeliveryKind::Acknowledge => format!("👀 {}", title(job)),
        _ => format!("[{}] {}", severity_word(a.severity), title(job)),
    };
    let headline = clean_line(&headline);

    let mut fields = vec![
        field("State", &a.state.to_string()),
        field("Severity", a.severity.as_str()),
    ];
    if let Some(v) = &a.region {
        fields.push(field("Region", v));
    }
    if let Some(v) = &a.account_id {
        fields.push(field("Account", v));
    }
    if let Some(m) = &a.metric_name {
        let metric = match &a.namespace {
            Some(ns) => format!("{ns} {m}"),
            None => m.clone(),
        };
        fields.push(field("Metric", &metric));
    }
    if let Some(t) = a.threshold {
        fields.push(field("Threshold", &t.to_string()));
    }
    for (label, key) in [
        ("Service", "service"),
        ("Team", "team"),
        ("Priority", "priority"),
    ] {
        if let Some(v) = a.labels.get(key) {
            fields.push(field(label, v));
        }
    }
    // A section takes at most ten fields.
    fields.truncate(10);

    let mut detail = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate_chars(&format!("*Reason:* {}", escape(&clean_line(&a.reason))), SECTION_MAX)},
        "fields": fields,
    })];
    let desc = a.description.trim();
    if !desc.is_empty() {
        detail.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate_chars(&escape(&clean_line(desc)), SECTION_MAX)},
        }));
    }
    let buttons = buttons(ctx);
    if !buttons.is_empty() {
        detail.push(json!({"type": "actions", "elements": buttons}));
    }
    detail.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("Changed at {} · alert `{}`", format_time(&a.state_changed_at), escape(&clean_line(&job.alert_id)))}],
    }));

    Rendered::Slack {
        payload: json!({
            // Notifications and clients without Block Kit show `text`; it is mrkdwn too.
            "text": escape(&headline),
            "blocks": [{
                "type": "header",
                // plain_text is never parsed for formatting, links or mentions, so it is shown as is.
                "text": {"type": "plain_text", "text": truncate_chars(&headline, HEADER_MAX), "emoji": true},
            }],
            "attachments": [{"color": colour(job), "blocks": detail}],
        }),
    }
}

fn field(label: &str, value: &str) -> Value {
    let text = format!("*{label}*\n{}", escape(&clean_line(value)));
    json!({"type": "mrkdwn", "text": truncate_chars(&text, FIELD_MAX)})
}

fn buttons(ctx: &Context) -> Vec<Value> {
    let l = ctx.links;
    let candidates = [
        (
            "ack",
            "Acknowledge",
            l.ack.as_deref().filter(|_| offers_ack(ctx.job)),
            Some("primary"),
        ),
        (
            "resolve",
            "Resolve",
            l.resolve.as_deref().filter(|_| offers_resolve(ctx.job)),
            None,
        ),
        ("view", "View alert", l.view.as_deref(), None),
        ("runbook", "Runbook", l.runbook.as_deref(), None),
    ];
    candidates
        .into_iter()
        .filter_map(|(id, label, url, style)| {
            let url = url.and_then(safe_url).filter(|u| u.len() <= URL_MAX)?;
            let mut b = json!({
                "type": "button",
                "action_id": id,
                "text": {"type": "plain_text", "text": label},
                "url": url,
            });
            if let Some(s) = style {
                b["style"] = json!(s);
            }
            Some(b)
        })
        .collect()
}

/// Untrusted text made inert in mrkdwn. `& < >` become entities (Slack's own escaping, which also
/// disarms `<!channel>`, `<@U123>` and `<url|text>`). Slack has no escape for the formatting
/// characters `* _ ~ \``, so a zero-width space goes before each: the marker no longer sits at a word
/// boundary and formats nothing, and the text reads the same. The same space after `@` keeps
/// `@channel`/`@here` from mentioning anyone.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' | '_' | '~' | '`' => {
                out.push('\u{200B}');
                out.push(c);
            }
            '@' => out.push_str("@\u{200B}"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::super::testing::*;
    use super::*;
    use crate::config::ChannelKind;

    fn payload(
        kind: DeliveryKind,
        alert: crate::model::Alert,
        links: &super::super::Links,
    ) -> Value {
        let job = job(alert, kind, ChannelKind::Slack);
        match render(&ctx(&job, links)) {
            Rendered::Slack { payload } => payload,
            other => panic!("not slack: {other:?}"),
        }
    }

    #[test]
    fn a_trigger_has_a_header_coloured_fields_and_link_buttons() {
        let p = payload(DeliveryKind::Trigger, fixture_alert(), &links());
        assert_eq!(p["text"], "[MEDIUM] orders-db-cpu-high is ALARM");
        assert_eq!(p["blocks"][0]["type"], "header");
        assert_eq!(p["attachments"][0]["color"], "#f9a825");
        let detail = p["attachments"][0]["blocks"].as_array().unwrap();
        assert_eq!(detail[0]["fields"][0]["text"], "*State*\nALARM");
        let actions = detail.iter().find(|b| b["type"] == "actions").unwrap();
        let ids: Vec<&str> = actions["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["action_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["ack", "resolve", "view", "runbook"]);
        assert!(
            actions["elements"][0]["url"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
    }

    #[test]
    fn resolution_and_acknowledgement_render_as_updates() {
        let p = payload(DeliveryKind::Resolve, fixture_alert(), &links());
        assert_eq!(p["text"], "✅ Resolved: orders-db-cpu-high");
        assert_eq!(p["attachments"][0]["color"], "#2e7d32");
        let p = payload(DeliveryKind::Acknowledge, fixture_alert(), &links());
        assert_eq!(p["text"], "👀 Acknowledged: orders-db-cpu-high");
        let s = p.to_string();
        assert!(!s.contains("\"ack\"") && s.contains("\"resolve\""));
    }

    #[test]
    fn hostile_text_cannot_format_link_or_mention() {
        let p = payload(DeliveryKind::Trigger, hostile_alert(), &links());
        let detail = &p["attachments"][0]["blocks"];
        let reason = detail[0]["text"]["text"].as_str().unwrap();
        assert!(reason.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; \"q\""));
        assert!(reason.contains("&lt;!channel&gt;") && !reason.contains("<!channel>"));
        assert!(reason.contains("\u{200B}*bold\u{200B}*") && reason.contains("@\u{200B}here"));
        assert!(reason.contains("🔥") && !reason.contains('\u{202E}'));
        let text = p["text"].as_str().unwrap();
        assert!(!text.contains('<') && !text.contains("@here"));
        let attachments = p["attachments"].to_string();
        assert!(!attachments.contains("<script>") && !attachments.contains("<!channel>"));
        assert!(!p.to_string().contains('\u{202E}'));
        // The header is plain_text, where Slack parses nothing: shown as written, bidi override aside.
        let header = p["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(header.contains("<!channel>") && header.chars().count() <= HEADER_MAX);
    }

    #[test]
    fn hostile_links_are_not_offered() {
        let p = payload(DeliveryKind::Trigger, fixture_alert(), &hostile_links());
        let s = p.to_string();
        assert!(!s.contains("javascript:") && !s.contains("data:text"));
    }

    #[test]
    fn long_text_stays_within_slacks_limits() {
        let mut a = fixture_alert();
        a.alarm_name = "n".repeat(500);
        a.reason = "r".repeat(5000);
        let p = payload(DeliveryKind::Trigger, a, &links());
        assert_eq!(
            p["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            HEADER_MAX
        );
        let reason = p["attachments"][0]["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap();
        assert_eq!(reason.chars().count(), SECTION_MAX);
    }
}
