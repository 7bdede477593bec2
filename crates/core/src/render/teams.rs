//! Microsoft Teams: an Adaptive Card (1.4) wrapped as a message for a Workflows webhook. The card has a
//! coloured title, the reason, a FactSet of the facts and `Action.OpenUrl` buttons. TextBlocks and fact
//! values render a subset of Markdown, so untrusted text is backslash-escaped.

use serde_json::{Value, json};

use super::{
    Context, Rendered, clean_line, offers_ack, offers_resolve, safe_url, severity_word, title,
    truncate_chars,
};
use crate::model::{Severity, format_time};
use crate::record::DeliveryKind;

/// Long enough for any real reason, short enough to keep the card under Teams' 28 KB payload limit.
const TEXT_MAX: usize = 2000;

/// Renders the Teams payload for `ctx`.
pub fn render(ctx: &Context) -> Rendered {
    let job = ctx.job;
    let a = &job.alert;
    let heading = match job.kind {
        DeliveryKind::Resolve => format!("✅ {}", title(job)),
        DeliveryKind::Acknowledge => format!("👀 {}", title(job)),
        _ => format!("[{}] {}", severity_word(a.severity), title(job)),
    };
    // Adaptive Cards have named colours only.
    let colour = match (job.kind, a.severity) {
        (DeliveryKind::Resolve, _) => "Good",
        (_, Severity::Critical | Severity::High) => "Attention",
        (_, Severity::Medium) => "Warning",
        _ => "Accent",
    };

    let mut facts = vec![
        fact("State", &a.state.to_string()),
        fact("Severity", a.severity.as_str()),
    ];
    for (label, v) in [("Account", &a.account_id), ("Region", &a.region)] {
        if let Some(v) = v {
            facts.push(fact(label, v));
        }
    }
    if let Some(m) = &a.metric_name {
        let metric = match &a.namespace {
            Some(ns) => format!("{ns} {m}"),
            None => m.clone(),
        };
        facts.push(fact("Metric", &metric));
    }
    if !a.dimensions.is_empty() {
        let dims: Vec<String> = a
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        facts.push(fact("Dimensions", &dims.join(", ")));
    }
    if let Some(t) = a.threshold {
        facts.push(fact("Threshold", &t.to_string()));
    }
    for (label, key) in [
        ("Service", "service"),
        ("Team", "team"),
        ("Priority", "priority"),
    ] {
        if let Some(v) = a.labels.get(key) {
            facts.push(fact(label, v));
        }
    }
    facts.push(fact("Time", &format_time(&a.state_changed_at)));

    let mut body = vec![
        json!({"type": "TextBlock", "text": escape(&clean_line(&heading)), "size": "Large", "weight": "Bolder", "color": colour, "wrap": true}),
        json!({"type": "TextBlock", "text": escape(&truncate_chars(&clean_line(&a.reason), TEXT_MAX)), "wrap": true}),
    ];
    let desc = a.description.trim();
    if !desc.is_empty() {
        body.push(json!({"type": "TextBlock", "text": escape(&truncate_chars(&clean_line(desc), TEXT_MAX)), "wrap": true, "isSubtle": true}));
    }
    body.push(json!({"type": "FactSet", "facts": facts}));

    let l = ctx.links;
    let actions: Vec<Value> = [
        ("Acknowledge", l.ack.as_deref().filter(|_| offers_ack(job))),
        (
            "Resolve",
            l.resolve.as_deref().filter(|_| offers_resolve(job)),
        ),
        ("View alert", l.view.as_deref()),
        ("Runbook", l.runbook.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, url)| {
        let url = url.and_then(safe_url)?;
        Some(json!({"type": "Action.OpenUrl", "title": label, "url": url}))
    })
    .collect();

    Rendered::Teams {
        payload: json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "msteams": {"width": "Full"},
                    "body": body,
                    "actions": actions,
                },
            }],
        }),
    }
}

fn fact(title: &str, value: &str) -> Value {
    json!({"title": title, "value": escape(&truncate_chars(&clean_line(value), TEXT_MAX))})
}

/// Untrusted text made literal in an Adaptive Card's Markdown: the characters that start emphasis,
/// code, links, HTML and autolinks are backslash-escaped everywhere; `#`, `-`, `+` and `1.` only make
/// headings and lists at the start of a line (and text here is one line), so only a leading one is.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let body = s.trim_start();
    out.push_str(&s[..s.len() - body.len()]);
    let digits = body.len() - body.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    for (i, c) in body.char_indices() {
        let list_marker = (i == 0 && matches!(c, '#' | '-' | '+'))
            || (digits > 0 && i == digits && matches!(c, '.' | ')'));
        if list_marker || matches!(c, '\\' | '*' | '_' | '~' | '`' | '[' | ']' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::super::testing::*;
    use super::*;
    use crate::config::ChannelKind;

    fn card(kind: DeliveryKind, alert: crate::model::Alert, links: &super::super::Links) -> Value {
        let job = job(alert, kind, ChannelKind::Teams);
        match render(&ctx(&job, links)) {
            Rendered::Teams { payload } => payload,
            other => panic!("not teams: {other:?}"),
        }
    }

    #[test]
    fn the_card_is_wrapped_for_a_workflows_webhook() {
        let p = card(DeliveryKind::Trigger, fixture_alert(), &links());
        assert_eq!(p["type"], "message");
        let att = &p["attachments"][0];
        assert_eq!(
            att["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let c = &att["content"];
        assert_eq!(
            (c["type"].as_str(), c["version"].as_str()),
            (Some("AdaptiveCard"), Some("1.4"))
        );
        assert_eq!(
            c["body"][0]["text"],
            "\\[MEDIUM\\] orders-db-cpu-high is ALARM"
        );
        assert!(
            c["body"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["type"] == "FactSet")
        );
        let actions = c["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 4);
        assert!(actions.iter().all(|a| a["type"] == "Action.OpenUrl"));
    }

    #[test]
    fn a_resolution_is_green_and_offers_no_ack() {
        let p = card(DeliveryKind::Resolve, fixture_alert(), &links());
        let c = &p["attachments"][0]["content"];
        assert_eq!(c["body"][0]["color"], "Good");
        assert!(
            c["actions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["title"] != "Acknowledge")
        );
    }

    #[test]
    fn hostile_text_is_escaped_markdown() {
        let p = card(DeliveryKind::Trigger, hostile_alert(), &hostile_links());
        let c = &p["attachments"][0]["content"];
        let reason = c["body"][1]["text"].as_str().unwrap();
        assert!(
            reason.starts_with("\\<script\\>alert(1)\\</script\\> & \"q\" 'x' \\*bold\\* \\_it\\_")
        );
        assert!(reason.contains("\\<!channel\\>") && reason.contains("🔥"));
        assert_eq!(escape("- 1. x"), "\\- 1. x");
        assert_eq!(escape("12. x"), "12\\. x");
        assert_eq!(escape("# h-1"), "\\# h-1");
        let s = p.to_string();
        assert!(!s.contains('\u{202E}') && !s.contains("javascript:") && !s.contains("data:text"));
    }
}
