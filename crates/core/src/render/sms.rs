//! SMS (SNS): one line that fits one segment where it can, e.g.
//! `CRIT orders-db-cpu-high ALARM eu-west-1: Threshold Crossed: 3 out of... Ack: K7Q2`. One GSM-7 segment
//! holds 160 units (extension-table characters take 2); a single character outside GSM-7 switches the
//! whole message to UCS-2, 70 UTF-16 units a segment. The reason is cut first, then the alarm name; the
//! ack code or link is never cut, because a page you cannot acknowledge keeps escalating.

use super::{Context, Rendered, safe_url};
use crate::model::Severity;
use crate::record::{DeliveryJob, DeliveryKind};
use crate::text::is_unsafe_char;

/// One GSM-7 segment, in septets.
pub const GSM7_SEGMENT: usize = 160;
/// One UCS-2 segment, in UTF-16 units.
pub const UCS2_SEGMENT: usize = 70;
/// The most SNS sends as one SMS (in characters); longer messages are rejected.
pub const MAX_CHARS: usize = 1600;

/// GSM 03.38 basic character table (one septet each). The escape code 0x1B is not a character.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table: each is sent as escape + character, two septets.
const GSM7_EXTENSION: &str = "\u{0C}^{}\\[~]|€";

/// Septets `s` takes in GSM-7, or `None` if some character is not in GSM-7.
pub fn gsm7_len(s: &str) -> Option<usize> {
    s.chars()
        .try_fold(0usize, |n, c| gsm7_septets(c).map(|k| n + k))
}

/// Septets one character takes in GSM-7 (1 basic, 2 extension), or `None`. ASCII, nearly all of an alert,
/// is answered without scanning the tables: this runs for every character of every candidate cut.
fn gsm7_septets(c: char) -> Option<usize> {
    match c {
        '[' | ']' | '{' | '}' | '\\' | '^' | '~' | '|' | '\u{0C}' => Some(2),
        '`' => None,
        '\n' | '\r' | ' '..='~' => Some(1),
        c if c.is_ascii() => None,
        c => gsm7_septets_from_tables(c),
    }
}

/// The tables' answer for one character (used for non-ASCII, and to check the ASCII shortcut).
fn gsm7_septets_from_tables(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// UTF-16 units `s` takes in UCS-2 (characters beyond the BMP take two).
pub fn ucs2_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Renders the SMS for `ctx`.
pub fn render(ctx: &Context) -> Rendered {
    let job = ctx.job;
    let a = &job.alert;
    let prefix = match job.kind {
        DeliveryKind::Resolve => "RESOLVED".to_string(),
        DeliveryKind::Acknowledge => "ACKED".to_string(),
        DeliveryKind::Escalation => match job.level {
            Some(l) => format!("{} L{l}", short_severity(a.severity)),
            None => short_severity(a.severity).to_string(),
        },
        DeliveryKind::Trigger => short_severity(a.severity).to_string(),
    };
    let state = match job.kind {
        DeliveryKind::Trigger | DeliveryKind::Escalation => format!(" {}", a.state),
        _ => String::new(),
    };
    let region = a
        .region
        .as_deref()
        .map(|r| format!(" {}", flatten(r)))
        .unwrap_or_default();
    let tail = if matches!(job.kind, DeliveryKind::Trigger | DeliveryKind::Escalation) {
        let l = ctx.links;
        match (l.ack_code.as_deref(), l.ack.as_deref().and_then(safe_url)) {
            (Some(code), _) => format!(" Ack: {}", flatten(code)),
            (None, Some(url)) => format!(" Ack: {url}"),
            (None, None) => String::new(),
        }
    } else {
        String::new()
    };
    let parts = Parts {
        prefix: &prefix,
        name: &flatten(&a.alarm_name),
        middle: &format!("{state}{region}"),
        reason: &flatten(&a.reason),
        tail: &tail,
    };
    Rendered::Sms { text: parts.fit() }
}

/// Renders one SMS that sums up `jobs`, the messages a recipient's throttle held back (most severe
/// first, then oldest): `3 alerts: CRIT orders-db-down; HIGH api-5xx; RESOLVED disk-full. Ack: <link>`.
/// As many as fit one segment are named and the rest counted (`+2 more`); `ack` is the most severe
/// firing alert's ack link or code, never cut. Never over [`MAX_CHARS`].
pub fn summary(jobs: &[DeliveryJob], ack: Option<&str>) -> Rendered {
    let mut order: Vec<&DeliveryJob> = jobs.iter().collect();
    // Severity orders critical first.
    order.sort_by_key(|j| (j.alert.severity, j.created_at));
    let items: Vec<String> = order
        .iter()
        .map(|j| {
            let prefix = match j.kind {
                DeliveryKind::Resolve => "RESOLVED",
                DeliveryKind::Acknowledge => "ACKED",
                DeliveryKind::Trigger | DeliveryKind::Escalation => {
                    short_severity(j.alert.severity)
                }
            };
            format!("{prefix} {}", flatten(&j.alert.alarm_name))
        })
        .collect();
    let n = items.len();
    let head = if n == 1 {
        "1 alert: ".to_string()
    } else {
        format!("{n} alerts: ")
    };
    let tail = ack
        .map(|a| format!(". Ack: {}", flatten(a)))
        .unwrap_or_else(|| ".".to_string());
    let text = |k: usize| {
        let more = if k < n {
            format!("; +{} more", n - k)
        } else {
            String::new()
        };
        format!("{head}{}{more}{tail}", items[..k].join("; "))
    };
    let one_segment =
        |s: &str| gsm7_len(s).is_some_and(|l| l <= GSM7_SEGMENT) || ucs2_len(s) <= UCS2_SEGMENT;
    // One segment if any count of names fits it; else as many as fit the SNS limit.
    let k = (1..=n)
        .rev()
        .find(|&k| one_segment(&text(k)))
        .or_else(|| {
            (1..=n)
                .rev()
                .find(|&k| text(k).chars().count() <= MAX_CHARS)
        })
        .unwrap_or(n.min(1));
    Rendered::Sms {
        text: text(k).chars().take(MAX_CHARS).collect(),
    }
}

fn short_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRIT",
        Severity::High => "HIGH",
        Severity::Medium => "MED",
        Severity::Low => "LOW",
        Severity::Info => "INFO",
    }
}

/// Untrusted text on one line: whitespace runs become one space, and control characters and
/// bidirectional overrides are dropped (an SMS has no room to show them escaped).
fn flatten(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(w.chars().filter(|c| !is_unsafe_char(*c)));
    }
    out
}

/// The pieces of the message, in order: `{prefix} {name}{middle}: {reason}{tail}`.
struct Parts<'a> {
    prefix: &'a str,
    name: &'a str,
    middle: &'a str,
    reason: &'a str,
    tail: &'a str,
}

impl Parts<'_> {
    fn assemble(&self, name: &str, reason: &str) -> String {
        let sep = if reason.is_empty() { "" } else { ": " };
        format!(
            "{} {name}{}{sep}{reason}{}",
            self.prefix, self.middle, self.tail
        )
    }

    /// The message in one segment if it can be: the GSM-7 fit and the UCS-2 fit are both tried, and
    /// the one keeping more of the text wins (GSM-7 on a tie, since it is the only one that can hold
    /// 160). Past one segment, the text is capped at [`MAX_CHARS`].
    fn fit(&self) -> String {
        let gsm = self.shrink(|s| gsm7_len(s).is_some_and(|n| n <= GSM7_SEGMENT));
        let ucs = self.shrink(|s| ucs2_len(s) <= UCS2_SEGMENT);
        match (gsm, ucs) {
            (Some(g), Some(u)) if u.chars().count() > g.chars().count() => u,
            (Some(g), _) => g,
            (None, Some(u)) => u,
            // Not even the name cut to nothing fits (a very long ack link): send it whole, capped.
            (None, None) => {
                let full = self.assemble(self.name, self.reason);
                full.chars().take(MAX_CHARS).collect()
            }
        }
    }

    /// The longest message that `fits`, cutting the reason first and then the name, each with `...`
    /// (ASCII, so the cut does not push a GSM-7 message into UCS-2).
    fn shrink(&self, fits: impl Fn(&str) -> bool) -> Option<String> {
        let whole = self.assemble(self.name, self.reason);
        if fits(&whole) {
            return Some(whole);
        }
        let reason: Vec<char> = self.reason.chars().collect();
        // Longest prefix of the reason that fits, found by bisection: the fit is monotonic in its length.
        let with_reason = |n: usize| -> String {
            let cut: String = reason[..n].iter().collect();
            let cut = cut.trim_end();
            if cut.is_empty() {
                String::new()
            } else {
                format!("{cut}...")
            }
        };
        if let Some(n) = longest(reason.len(), |n| {
            fits(&self.assemble(self.name, &with_reason(n)))
        }) {
            return Some(self.assemble(self.name, &with_reason(n)));
        }
        let name: Vec<char> = self.name.chars().collect();
        let with_name = |n: usize| -> String {
            let cut: String = name[..n].iter().collect();
            format!("{}...", cut.trim_end())
        };
        longest(name.len(), |n| fits(&self.assemble(&with_name(n), "")))
            .map(|n| self.assemble(&with_name(n), ""))
    }
}

/// The largest `n` in `0..below` with `ok(n)`, given `ok` holds for every n up to some bound and for
/// none after it; `None` if it holds for none.
fn longest(below: usize, ok: impl Fn(usize) -> bool) -> Option<usize> {
    if below == 0 || !ok(0) {
        return None;
    }
    let (mut lo, mut hi) = (0, below - 1);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ok(mid) { lo = mid } else { hi = mid - 1 }
    }
    Some(lo)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::super::testing::*;
    use super::*;
    use crate::config::ChannelKind;
    use crate::model::Alert;

    fn text(kind: DeliveryKind, alert: Alert, links: &super::super::Links) -> String {
        let job = job(alert, kind, ChannelKind::Sms);
        match render(&ctx(&job, links)) {
            Rendered::Sms { text } => text,
            other => panic!("not sms: {other:?}"),
        }
    }

    #[test]
    fn the_ascii_shortcut_agrees_with_the_gsm7_tables_for_every_ascii_character() {
        for c in (0u8..128).map(char::from) {
            assert_eq!(gsm7_septets(c), gsm7_septets_from_tables(c), "{c:?}");
        }
    }

    #[test]
    fn gsm7_counts_extension_characters_twice_and_rejects_the_rest() {
        assert_eq!(gsm7_len("Hello @£"), Some(8));
        assert_eq!(gsm7_len("[x]€"), Some(7));
        assert_eq!(gsm7_len("🔥"), None);
        assert_eq!(
            gsm7_len("ç"),
            None,
            "only the capital Ç is in the basic table"
        );
        assert_eq!(ucs2_len("a🔥"), 3);
    }

    #[test]
    fn a_long_reason_is_cut_to_one_segment_keeping_the_ack_code() {
        let t = text(DeliveryKind::Trigger, fixture_alert(), &links());
        assert!(
            t.starts_with("MED orders-db-cpu-high ALARM eu-west-1: Threshold Crossed: 3 out of"),
            "{t}"
        );
        assert!(t.ends_with("... Ack: K7Q2"), "{t}");
        assert!(gsm7_len(&t).unwrap() <= GSM7_SEGMENT);
        assert!(
            gsm7_len(&t).unwrap() >= GSM7_SEGMENT - 4,
            "the segment is used: {t}"
        );
    }

    #[test]
    fn without_a_code_the_ack_link_is_sent_whole() {
        let mut l = links();
        l.ack_code = None;
        let t = text(DeliveryKind::Trigger, fixture_alert(), &l);
        assert!(
            t.ends_with(" Ack: https://tocsin.example/a/ack-token?x=1&y=2"),
            "{t}"
        );
        assert!(gsm7_len(&t).unwrap() <= GSM7_SEGMENT);
    }

    #[test]
    fn a_short_alert_is_sent_whole() {
        let a = Alert {
            reason: "CPU > 80".into(),
            severity: Severity::Critical,
            ..fixture_alert()
        };
        let t = text(DeliveryKind::Escalation, a, &links());
        assert_eq!(
            t,
            "CRIT L2 orders-db-cpu-high ALARM eu-west-1: CPU > 80 Ack: K7Q2"
        );
        let a = Alert {
            reason: "CPU fine".into(),
            ..fixture_alert()
        };
        let t = text(DeliveryKind::Resolve, a, &links());
        assert_eq!(t, "RESOLVED orders-db-cpu-high eu-west-1: CPU fine");
    }

    #[test]
    fn hostile_text_fits_one_ucs2_segment_without_control_characters() {
        let t = text(DeliveryKind::Trigger, hostile_alert(), &links());
        assert!(!t.contains('\u{202E}') && !t.contains('\n'), "{t}");
        assert!(t.ends_with(" Ack: K7Q2"), "{t}");
        assert!(
            gsm7_len(&t).is_some_and(|n| n <= GSM7_SEGMENT) || ucs2_len(&t) <= UCS2_SEGMENT,
            "{t}"
        );
    }

    #[test]
    fn a_non_gsm_character_late_in_the_reason_is_cut_rather_than_costing_half_the_segment() {
        let a = Alert {
            reason: format!("{} 🔥", "x".repeat(200)),
            ..fixture_alert()
        };
        let t = text(DeliveryKind::Trigger, a, &links());
        assert!(gsm7_len(&t).is_some(), "{t}");
        assert!(t.chars().count() > UCS2_SEGMENT);
    }

    #[test]
    fn an_enormous_name_is_cut_after_the_reason() {
        let a = Alert {
            alarm_name: "n".repeat(400),
            ..fixture_alert()
        };
        let t = text(DeliveryKind::Trigger, a, &links());
        assert!(
            t.starts_with("MED nnn") && t.ends_with("... ALARM eu-west-1 Ack: K7Q2"),
            "{t}"
        );
        assert!(gsm7_len(&t).unwrap() <= GSM7_SEGMENT);
    }

    #[test]
    fn nothing_is_ever_over_1600_characters() {
        let mut l = links();
        l.ack_code = None;
        l.ack = Some(format!("https://tocsin.example/{}", "a".repeat(3000)));
        let t = text(DeliveryKind::Trigger, fixture_alert(), &l);
        assert_eq!(t.chars().count(), MAX_CHARS);
    }

    fn held(name: &str, severity: Severity, kind: DeliveryKind, minute: i64) -> DeliveryJob {
        let mut a = fixture_alert();
        a.alarm_name = name.to_string();
        a.severity = severity;
        let mut j = job(a, kind, ChannelKind::Sms);
        j.created_at += chrono::TimeDelta::minutes(minute);
        j
    }

    fn summary_text(jobs: &[DeliveryJob], ack: Option<&str>) -> String {
        match summary(jobs, ack) {
            Rendered::Sms { text } => text,
            other => panic!("not sms: {other:?}"),
        }
    }

    #[test]
    fn a_summary_names_the_held_alerts_most_severe_first_with_one_ack() {
        let jobs = [
            held("disk-full", Severity::Medium, DeliveryKind::Trigger, 0),
            held(
                "orders-db-down",
                Severity::Critical,
                DeliveryKind::Trigger,
                1,
            ),
            held("api-5xx", Severity::High, DeliveryKind::Resolve, 2),
        ];
        let t = summary_text(&jobs, Some("K7Q2"));
        assert_eq!(
            t,
            "3 alerts: CRIT orders-db-down; RESOLVED api-5xx; MED disk-full. Ack: K7Q2"
        );
    }

    #[test]
    fn a_summary_too_long_for_one_segment_counts_the_rest_instead_of_naming_them() {
        let jobs: Vec<DeliveryJob> = (0..12)
            .map(|i| {
                held(
                    &format!("payments-service-latency-p99-{i}"),
                    Severity::High,
                    DeliveryKind::Trigger,
                    i,
                )
            })
            .collect();
        let t = summary_text(&jobs, Some("K7Q2"));
        assert!(gsm7_len(&t).unwrap() <= GSM7_SEGMENT, "{t}");
        assert!(
            t.starts_with("12 alerts: HIGH payments-service-latency-p99-0; "),
            "{t}"
        );
        let named = t.matches("HIGH ").count();
        assert!(
            t.contains(&format!("; +{} more. Ack: K7Q2", 12 - named)),
            "{t}"
        );
    }

    #[test]
    fn a_summary_with_a_long_ack_link_stays_within_the_sns_limit_and_keeps_the_link() {
        let link = format!("https://tocsin.example/a/{}", "t".repeat(200));
        let jobs: Vec<DeliveryJob> = (0..200)
            .map(|i| {
                held(
                    &format!("alarm-{i}"),
                    Severity::Low,
                    DeliveryKind::Trigger,
                    i,
                )
            })
            .collect();
        let t = summary_text(&jobs, Some(&link));
        assert!(t.chars().count() <= MAX_CHARS);
        assert!(t.ends_with(&format!("more. Ack: {link}")), "{t}");
    }
}
