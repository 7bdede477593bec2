//! Email (SES v2): a `[SEVERITY] title` subject, an HTML part and a plain-text part. The HTML uses inline
//! styles and no external asset (mail clients strip `<style>` and block remote images); every untrusted
//! string is HTML-escaped and only `http(s)` links are offered.

use std::fmt::Write;

use super::{
    Context, Rendered, clean_block, clean_line, colour, escape_html, offers_ack, offers_resolve,
    safe_url, severity_word, title,
};
use crate::model::{Alert, format_time};

/// Renders the email for `ctx`.
pub fn render(ctx: &Context) -> Rendered {
    let job = ctx.job;
    let subject = format!(
        "[{}] {}",
        severity_word(job.alert.severity),
        clean_line(&title(job))
    );
    let fields = fields(&job.alert);
    let buttons = buttons(ctx);
    Rendered::Email {
        html: html(ctx, &subject, &fields, &buttons),
        text: text(ctx, &subject, &fields, &buttons),
        subject,
    }
}

/// The facts table, label then raw value; rows without a value are left out.
fn fields(a: &Alert) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    let state = match a.previous_state {
        Some(p) => format!("{p} → {}", a.state),
        None => a.state.to_string(),
    };
    rows.push(("State", state));
    rows.push(("Reason", a.reason.clone()));
    if let Some(v) = &a.account_id {
        rows.push(("Account", v.clone()));
    }
    if let Some(v) = &a.region {
        rows.push(("Region", v.clone()));
    }
    let metric = match (&a.namespace, &a.metric_name) {
        (Some(ns), Some(m)) => Some(format!("{ns} {m}")),
        (None, Some(m)) => Some(m.clone()),
        _ => None,
    };
    if let Some(m) = metric {
        rows.push(("Metric", m));
    }
    if !a.dimensions.is_empty() {
        let dims: Vec<String> = a
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        rows.push(("Dimensions", dims.join(", ")));
    }
    if let Some(t) = a.threshold {
        rows.push(("Threshold", t.to_string()));
    }
    for (label, key) in [
        ("Service", "service"),
        ("Team", "team"),
        ("Priority", "priority"),
    ] {
        if let Some(v) = a.labels.get(key) {
            rows.push((label, v.clone()));
        }
    }
    rows.push(("Time", format_time(&a.state_changed_at)));
    rows
}

/// The action links offered, label then URL (already checked by [`safe_url`]).
fn buttons<'a>(ctx: &'a Context) -> Vec<(&'static str, &'a str)> {
    let l = ctx.links;
    let candidates = [
        (
            "Acknowledge",
            l.ack.as_deref().filter(|_| offers_ack(ctx.job)),
        ),
        (
            "Resolve",
            l.resolve.as_deref().filter(|_| offers_resolve(ctx.job)),
        ),
        ("View alert", l.view.as_deref()),
        ("Runbook", l.runbook.as_deref()),
    ];
    candidates
        .into_iter()
        .filter_map(|(label, url)| Some((label, url.and_then(safe_url)?)))
        .collect()
}

fn html(
    ctx: &Context,
    subject: &str,
    fields: &[(&'static str, String)],
    buttons: &[(&'static str, &str)],
) -> String {
    let colour = colour(ctx.job);
    let mut h = String::with_capacity(4096);
    // `write!` into a String cannot fail; the results are ignored on purpose below.
    h.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">");
    let _ = writeln!(h, "<title>{}</title></head>", escape_html(subject));
    h.push_str("<body style=\"margin:0;padding:16px;background:#f4f4f4;font-family:Arial,Helvetica,sans-serif;color:#212121\">\n");
    h.push_str("<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" style=\"max-width:640px;margin:0 auto;background:#ffffff;border-collapse:collapse\">\n");
    let _ = writeln!(
        h,
        "<tr><td style=\"background:{colour};color:#ffffff;padding:12px 16px;font-size:18px;font-weight:bold\">{}</td></tr>",
        escape_html(subject)
    );
    let desc = ctx.job.alert.description.trim();
    if !desc.is_empty() {
        let _ = writeln!(
            h,
            "<tr><td style=\"padding:12px 16px;font-size:14px\">{}</td></tr>",
            escape_html(&clean_block(desc)).replace('\n', "<br>")
        );
    }
    h.push_str("<tr><td style=\"padding:8px 16px\"><table role=\"presentation\" cellpadding=\"4\" cellspacing=\"0\" style=\"border-collapse:collapse;font-size:14px\">\n");
    for (label, value) in fields {
        let _ = writeln!(
            h,
            "<tr><th align=\"left\" valign=\"top\" style=\"padding:4px 12px 4px 0;color:#616161;white-space:nowrap\">{label}</th><td style=\"padding:4px 0\">{}</td></tr>",
            escape_html(&clean_block(value)).replace('\n', "<br>")
        );
    }
    h.push_str("</table></td></tr>\n");
    if !buttons.is_empty() {
        h.push_str("<tr><td style=\"padding:12px 16px 16px\">");
        for (label, url) in buttons {
            let _ = write!(
                h,
                "<a href=\"{}\" style=\"display:inline-block;margin:0 8px 8px 0;padding:8px 14px;background:{colour};color:#ffffff;text-decoration:none;border-radius:4px;font-weight:bold\">{label}</a>",
                escape_html(url)
            );
        }
        h.push_str("</td></tr>\n");
    }
    let _ = writeln!(
        h,
        "<tr><td style=\"padding:8px 16px;font-size:12px;color:#9e9e9e\">Sent by tocsin at {} to {}.</td></tr>",
        format_time(&ctx.now),
        escape_html(&clean_line(&ctx.job.target.target))
    );
    h.push_str("</table>\n</body></html>\n");
    h
}

fn text(
    ctx: &Context,
    subject: &str,
    fields: &[(&'static str, String)],
    buttons: &[(&'static str, &str)],
) -> String {
    let mut t = String::with_capacity(1024);
    let _ = writeln!(t, "{subject}\n");
    let desc = ctx.job.alert.description.trim();
    if !desc.is_empty() {
        let _ = writeln!(t, "{}\n", clean_block(desc));
    }
    for (label, value) in fields {
        let _ = writeln!(t, "{label}: {}", clean_line(value));
    }
    if !buttons.is_empty() {
        t.push('\n');
        for (label, url) in buttons {
            let _ = writeln!(t, "{label}: {url}");
        }
    }
    let _ = writeln!(t, "\nSent by tocsin at {}.", format_time(&ctx.now));
    t
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::super::testing::*;
    use super::*;
    use crate::config::ChannelKind;
    use crate::record::DeliveryKind;

    fn parts(r: Rendered) -> (String, String, String) {
        match r {
            Rendered::Email {
                subject,
                html,
                text,
            } => (subject, html, text),
            other => panic!("not an email: {other:?}"),
        }
    }

    #[test]
    fn subject_is_the_severity_then_the_alarm_and_its_state() {
        let job = job(fixture_alert(), DeliveryKind::Trigger, ChannelKind::Email);
        let (subject, html, text) = parts(render(&ctx(&job, &links())));
        assert_eq!(subject, "[MEDIUM] orders-db-cpu-high is ALARM");
        assert!(html.contains("Acknowledge</a>") && html.contains("Runbook</a>"));
        assert!(html.contains("href=\"https://tocsin.example/a/ack-token?x=1&amp;y=2\""));
        assert!(text.contains("Region: eu-west-1") && text.contains("Threshold: 80"));
    }

    #[test]
    fn resolution_and_acknowledgement_say_so_and_drop_spent_buttons() {
        let job = job(fixture_alert(), DeliveryKind::Resolve, ChannelKind::Email);
        let (subject, html, _) = parts(render(&ctx(&job, &links())));
        assert_eq!(subject, "[MEDIUM] orders-db-cpu-high is resolved (OK)");
        assert!(!html.contains("Acknowledge</a>") && !html.contains("Resolve</a>"));
        let job = job_ack();
        let (subject, html, _) = parts(render(&ctx(&job, &links())));
        assert_eq!(subject, "[MEDIUM] orders-db-cpu-high is acknowledged");
        assert!(!html.contains("Acknowledge</a>") && html.contains("Resolve</a>"));
    }

    fn job_ack() -> crate::record::DeliveryJob {
        job(
            fixture_alert(),
            DeliveryKind::Acknowledge,
            ChannelKind::Email,
        )
    }

    #[test]
    fn hostile_text_is_escaped_everywhere_in_the_html() {
        let job = job(hostile_alert(), DeliveryKind::Trigger, ChannelKind::Email);
        let (subject, html, text) = parts(render(&ctx(&job, &links())));
        assert!(!html.contains("<script>") && !html.contains("<b>"));
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot; &#39;x&#39;")
        );
        assert!(html.contains("&lt;b&gt;="));
        assert!(html.contains("🔥"));
        for part in [&subject, &html, &text] {
            assert!(
                !part.contains('\u{202E}'),
                "a bidi override survived in {part}"
            );
        }
        assert!(subject.starts_with("[CRITICAL] ") && !subject.contains('\n'));
        assert!(
            text.contains("\\u{a}second line"),
            "a one-line field keeps one line"
        );
    }

    #[test]
    fn links_that_are_not_plain_http_are_left_out() {
        let job = job(fixture_alert(), DeliveryKind::Trigger, ChannelKind::Email);
        let (_, html, text) = parts(render(&ctx(&job, &hostile_links())));
        assert!(!html.contains("javascript:") && !html.contains("data:"));
        assert!(!html.contains("\"><script>") && !html.contains("\"onmouseover"));
        assert!(html.contains("href=\"https://tocsin.example/a/ack&quot;&gt;&lt;script&gt;\""));
        assert!(!text.contains("javascript:"));
    }
}
