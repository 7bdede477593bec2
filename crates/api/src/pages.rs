//! The small HTML pages of the one-click flow: the confirm page a link opens (a form whose button
//! POSTs; a GET never changes anything, because mail scanners and link previews follow links), the
//! page after the action, and errors. Self-contained, no script, every untrusted string escaped.

use tocsin_core::record::AlertRecord;
use tocsin_core::render::escape_html as esc;
use tocsin_core::token::Claims;

use crate::ApiError;

const STYLE: &str = "body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff}\
main{max-width:40rem;margin:2rem auto;padding:0 1.25rem}h1{font-size:1.5rem}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}\
button{font:inherit;font-weight:600;padding:.6rem 1.4rem;border-radius:6px;border:2px solid #0a2f5c;background:#0a2f5c;color:#fff;cursor:pointer}\
button:focus{outline:3px solid #f0a800;outline-offset:2px}.note{color:#4a4a4a}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n<meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main id=\"main\">\n{body}</main>\n</body>\n</html>\n",
        esc(title)
    )
}

fn verb(action: &str) -> (&'static str, &'static str) {
    match action {
        "resolve" => ("Resolve", "resolved"),
        _ => ("Acknowledge", "acknowledged"),
    }
}

fn facts(rec: &AlertRecord) -> String {
    format!(
        "<dl>\n<dt>Alarm</dt><dd id=\"alarm\">{}</dd>\n<dt>Severity</dt><dd>{}</dd>\n\
         <dt>Status</dt><dd id=\"status\">{}</dd>\n<dt>Opened</dt><dd>{}</dd>\n<dt>Reason</dt><dd>{}</dd>\n</dl>\n",
        esc(&rec.alert.alarm_name),
        rec.severity,
        rec.status.as_str(),
        tocsin_core::model::format_time(&rec.opened_at),
        esc(&rec.alert.reason)
    )
}

/// The confirm page: what the link would do, to which alert, as whom, and one button that does it.
pub fn confirm(rec: &AlertRecord, claims: &Claims) -> String {
    let (v, _) = verb(&claims.action);
    let title = format!("{v} {}?", rec.alert.alarm_name);
    let body = format!(
        "<h1>{}</h1>\n{}\
         <form method=\"post\">\n<input type=\"hidden\" name=\"alert\" value=\"{}\">\n\
         <input type=\"hidden\" name=\"action\" value=\"{}\">\n\
         <p>You are about to {} this alert as <strong>{}</strong>.</p>\n\
         <button type=\"submit\" id=\"confirm\">{v} alert</button>\n</form>\n\
         <p class=\"note\">This link works until {}. Opening it changes nothing until you press the button.</p>\n",
        esc(&title),
        facts(rec),
        esc(&claims.alert_id),
        esc(&claims.action),
        v.to_lowercase(),
        esc(&claims.recipient),
        tocsin_core::model::format_time(&claims.expires_at),
    );
    page(&title, &body)
}

/// The page after the action was performed.
pub fn done(rec: Option<&AlertRecord>, claims: &Claims) -> String {
    let (_, past) = verb(&claims.action);
    let body = format!(
        "<h1 id=\"done\" role=\"status\">Alert {past}</h1>\n{}<p>Recorded as {past} by <strong>{}</strong>; \
         escalation has stopped and the others paged are told.</p>\n",
        rec.map(facts).unwrap_or_default(),
        esc(&claims.recipient)
    );
    page(&format!("Alert {past}"), &body)
}

/// An error as a page, for browsers on the one-click routes.
pub fn error(e: &ApiError) -> String {
    let body = format!(
        "<h1 id=\"error\">{} ({})</h1>\n<p>{}</p>\n",
        match e.status() {
            401 => "This link cannot be used",
            403 => "Not allowed",
            404 => "Not found",
            409 => "Nothing to do",
            _ => "Something went wrong",
        },
        e.status(),
        esc(&e.to_string())
    );
    page("tocsin", &body)
}
