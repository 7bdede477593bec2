//! The status page as HTML: one self-contained document (inline CSS, no script, no external asset),
//! accessible (language, landmarks, one `h1` and ordered headings, a skip link, statuses in words and
//! not only in colour, contrast of at least 4.5:1 for text), every untrusted string escaped.

use crate::model::format_time;
use crate::status::{ComponentStatus, Incident, StatusPage};

use super::escape_html as esc;

/// Text and background per status: each pair has a contrast ratio above 7:1, and the word is always
/// printed beside the colour.
fn colours(s: ComponentStatus) -> (&'static str, &'static str) {
    match s {
        ComponentStatus::Operational => ("#0b3d17", "#d8f3dc"),
        ComponentStatus::UnderMaintenance => ("#0a2f5c", "#dbe9fb"),
        ComponentStatus::DegradedPerformance => ("#4a3200", "#fff1c2"),
        ComponentStatus::PartialOutage => ("#5c2300", "#ffe0c7"),
        ComponentStatus::MajorOutage => ("#6b0000", "#ffd6d6"),
    }
}

/// A symbol that tells the status apart without colour (hidden from screen readers, which read the word).
fn symbol(s: ComponentStatus) -> &'static str {
    match s {
        ComponentStatus::Operational => "✓",
        ComponentStatus::UnderMaintenance => "🛠",
        ComponentStatus::DegradedPerformance => "!",
        ComponentStatus::PartialOutage => "▲",
        ComponentStatus::MajorOutage => "✕",
    }
}

fn badge(s: ComponentStatus) -> String {
    format!(
        "<span class=\"badge {}\"><span aria-hidden=\"true\">{}</span> {}</span>",
        s.as_str(),
        symbol(s),
        s.label()
    )
}

const STYLE: &str = "\
:root{color-scheme:light}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a1a1a;background:#fff}\
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px 8px;outline:3px solid #0a2f5c}\
header,main,footer{max-width:56rem;margin:0 auto;padding:1rem 1.25rem}\
header{border-bottom:1px solid #767676}\
h1{font-size:1.75rem;margin:.25rem 0}h2{font-size:1.35rem;margin:1.5rem 0 .5rem}h3{font-size:1.1rem;margin:0 0 .25rem}\
.overall{font-size:1.15rem;padding:.75rem 1rem;border-radius:6px;border:2px solid currentColor}\
ul.components{list-style:none;padding:0;margin:0}\
ul.components li{display:flex;justify-content:space-between;gap:1rem;padding:.6rem 0;border-bottom:1px solid #d0d0d0}\
.badge{padding:.1rem .6rem;border-radius:1rem;border:1px solid currentColor;white-space:nowrap;font-weight:600}\
article{border:1px solid #767676;border-radius:6px;padding:.75rem 1rem;margin:.75rem 0}\
ol.updates{padding-left:1.25rem;margin:.5rem 0 0}ol.updates li{margin:.35rem 0}\
.meta{color:#4a4a4a}dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.5rem 0}dt{font-weight:600}\
a{color:#0a2f5c}a:focus,.badge:focus{outline:3px solid #0a2f5c;outline-offset:2px}";

/// The page as one HTML document titled `title`.
pub fn render(page: &StatusPage, title: &str) -> String {
    let mut css = String::from(STYLE);
    for s in [
        ComponentStatus::Operational,
        ComponentStatus::UnderMaintenance,
        ComponentStatus::DegradedPerformance,
        ComponentStatus::PartialOutage,
        ComponentStatus::MajorOutage,
    ] {
        let (fg, bg) = colours(s);
        css.push_str(&format!(".{}{{color:{fg};background:{bg}}}", s.as_str()));
    }
    let title = esc(title);
    let mut h = String::with_capacity(8192);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
    h.push_str(&format!(
        "<title>{title}: {}</title>\n<style>{css}</style>\n</head>\n<body>\n",
        page.overall_label
    ));
    h.push_str("<a class=\"skip\" href=\"#main\">Skip to content</a>\n");
    h.push_str(&format!(
        "<header>\n<h1>{title}</h1>\n<p class=\"overall {}\" role=\"status\"><span aria-hidden=\"true\">{}</span> Overall: {}</p>\n</header>\n",
        page.overall.as_str(),
        symbol(page.overall),
        page.overall_label
    ));
    h.push_str("<main id=\"main\">\n<section aria-labelledby=\"components\">\n<h2 id=\"components\">Components</h2>\n");
    if page.components.is_empty() {
        h.push_str("<p>No services are configured.</p>\n");
    } else {
        h.push_str("<ul class=\"components\">\n");
        for c in &page.components {
            let extra = match (&c.team, c.live_alerts) {
                (team, Some(n)) => format!(
                    " <span class=\"meta\">({n} live alert{}{})</span>",
                    if n == 1 { "" } else { "s" },
                    team.as_deref()
                        .map(|t| format!(", team {}", esc(t)))
                        .unwrap_or_default()
                ),
                _ => String::new(),
            };
            let aws = if c.aws_events.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = c.aws_events.iter().map(|e| esc(e)).collect();
                format!("<br><span class=\"meta\">{}</span>", list.join("; "))
            };
            h.push_str(&format!(
                "<li><span>{}{extra}{aws}</span> {}</li>\n",
                esc(&c.name),
                badge(c.status)
            ));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n<section aria-labelledby=\"incidents\">\n<h2 id=\"incidents\">Current incidents</h2>\n");
    if page.incidents.is_empty() {
        h.push_str("<p>No incidents right now.</p>\n");
    }
    for i in &page.incidents {
        incident(&mut h, i);
    }
    h.push_str(&format!(
        "</section>\n<section aria-labelledby=\"history\">\n<h2 id=\"history\">Past incidents ({} days)</h2>\n",
        crate::status::HISTORY_DAYS
    ));
    if page.history.is_empty() {
        h.push_str("<p>No incidents in this period.</p>\n");
    }
    for i in &page.history {
        incident(&mut h, i);
    }
    h.push_str("</section>\n</main>\n");
    h.push_str(&format!(
        "<footer>\n<p class=\"meta\">Updated <time datetime=\"{t}\">{t}</time>. Also as <a href=\"status.json?audience={a}\">JSON</a>.</p>\n</footer>\n</body>\n</html>\n",
        t = format_time(&page.generated_at),
        a = page.audience.as_str()
    ));
    h
}

fn incident(h: &mut String, i: &Incident) {
    let hid = format!("incident-{}", esc(&i.id));
    h.push_str(&format!(
        "<article aria-labelledby=\"{hid}\">\n<h3 id=\"{hid}\">{}</h3>\n<p>{} <span class=\"meta\">Status: {}. Started <time datetime=\"{s}\">{s}</time>{}.</span></p>\n",
        esc(&i.title),
        badge(i.impact),
        i.status,
        i.resolved_at
            .as_deref()
            .map(|r| format!("; resolved <time datetime=\"{r}\">{r}</time>", r = esc(r)))
            .unwrap_or_default(),
        s = format_time(&i.started_at),
    ));
    if let Some(d) = &i.detail {
        h.push_str("<dl>\n");
        let mut row = |k: &str, v: &str| {
            h.push_str(&format!("<dt>{k}</dt><dd>{}</dd>\n", esc(v)));
        };
        row("Alarm", &d.alarm_name);
        row("Severity", d.severity.as_str());
        if let Some(a) = &d.account_id {
            row("Account", a);
        }
        if let Some(r) = &d.region {
            row("Region", r);
        }
        row("Reason", &d.reason);
        if let Some(a) = &d.acknowledged_by {
            row("Acknowledged by", a);
        }
        if let Some(a) = &d.assignee {
            row("Assigned to", a);
        }
        h.push_str("</dl>\n");
    }
    if !i.updates.is_empty() {
        h.push_str("<h4 class=\"meta\">Updates</h4>\n<ol class=\"updates\" reversed>\n");
        for u in &i.updates {
            let t = format_time(&u.at);
            h.push_str(&format!(
                "<li><time datetime=\"{t}\">{t}</time> <strong>{}</strong>: {}</li>\n",
                u.status,
                esc(&u.text)
            ));
        }
        h.push_str("</ol>\n");
    }
    h.push_str("</article>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Audience, Component, IncidentDetail, IncidentUpdate};
    use chrono::{DateTime, Utc};

    fn page() -> StatusPage {
        let at = DateTime::parse_from_rfc3339("2026-11-20T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        StatusPage {
            generated_at: at,
            audience: Audience::Internal,
            overall: ComponentStatus::MajorOutage,
            overall_label: "Major outage",
            components: vec![Component {
                name: "check<out>".into(),
                status: ComponentStatus::MajorOutage,
                status_label: "Major outage",
                live_alerts: Some(1),
                team: Some("pay\"ments".into()),
                aws_events: vec!["AWS <EC2> issue in eu-west-1".into()],
            }],
            incidents: vec![Incident {
                id: "a\"1".into(),
                title: "<script>alert(1)</script>".into(),
                service: Some("check<out>".into()),
                impact: ComponentStatus::MajorOutage,
                status: "investigating",
                started_at: at,
                resolved_at: None,
                updates: vec![IncidentUpdate {
                    at,
                    status: "update",
                    text: "note: <img src=x onerror=alert(1)>".into(),
                }],
                detail: Some(IncidentDetail {
                    alarm_name: "<b>x</b>".into(),
                    severity: crate::Severity::Critical,
                    account_id: Some("123456789012".into()),
                    region: None,
                    reason: "a & b".into(),
                    acknowledged_by: None,
                    assignee: None,
                }),
            }],
            history: vec![],
        }
    }

    #[test]
    fn every_untrusted_string_is_escaped() {
        let html = render(&page(), "Status <of> \"us\"");
        for raw in [
            "<script>",
            "<img",
            "<b>x",
            "check<out>",
            "pay\"ments",
            "a\"1",
            "<of>",
        ] {
            assert!(!html.contains(raw), "{raw} unescaped");
        }
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("a &amp; b"));
    }

    #[test]
    fn the_page_is_self_contained_and_states_statuses_in_words() {
        let html = render(&page(), "Status");
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        for landmark in [
            "<header>",
            "<main id=\"main\">",
            "<footer>",
            "<h1>",
            "<h2 id=\"components\">",
        ] {
            assert!(html.contains(landmark), "{landmark}");
        }
        for tag in ["<script", "<img", "<link", "<iframe", "@import", "url("] {
            assert!(!html.contains(tag), "{tag}: no script, no external asset");
        }
        assert!(
            !html.contains("https://") && !html.contains("http://"),
            "nothing loaded from outside"
        );
        assert!(html.contains("Overall: Major outage"));
        assert!(html.contains("Major outage</span>"));
    }
}
