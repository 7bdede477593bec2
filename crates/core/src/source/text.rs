//! Text hygiene and timestamps shared by the source parsers: which characters a name may hold, how free
//! text is cleaned, how input is quoted in one-line error messages, and the lenient timestamp reader
//! (AWS writes `+0000`, `Z` and `+00:00` for the same instant).

use std::fmt::{self, Write as _};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// True for the Unicode bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069), which can make a name display as something it is not.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// True when `s` may hold a control or bidi character: every such character's UTF-8 encoding starts
/// with a byte below 0x20, 0x7F, 0xC2 (C1 controls) or 0xE2 (bidi), so most text is cleared by a
/// byte scan without decoding.
fn may_need_care(s: &str) -> bool {
    // Branch-free per byte and without an early exit inside a chunk, so that the compiler can
    // vectorize the scan: this runs over every reason and description.
    let flag = |b: u8| {
        u8::from(b < 0x20) | u8::from(b == 0x7F) | u8::from(b == 0xC2) | u8::from(b == 0xE2)
    };
    let mut chunks = s.as_bytes().chunks_exact(32);
    let hit = chunks
        .by_ref()
        .any(|chunk| chunk.iter().fold(0u8, |acc, &b| acc | flag(b)) != 0);
    hit || chunks.remainder().iter().any(|&b| flag(b) != 0)
}

/// Checks a name (alarm name, alertname, key): control and bidi characters are rejected outright,
/// because a name is matched by routing rules and shown in headlines.
pub(crate) fn check_name(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("empty name".to_owned());
    }
    if !may_need_care(s) {
        return Ok(());
    }
    for (i, c) in s.char_indices() {
        if c.is_control() {
            return Err(format!(
                "control character U+{:04X} at byte offset {i} (names must be plain text)",
                c as u32
            ));
        }
        if is_bidi_control(c) {
            return Err(format!(
                "bidirectional control character U+{:04X} at byte offset {i} (names must be plain text)",
                c as u32
            ));
        }
    }
    Ok(())
}

/// Cleans free text (descriptions, reasons, label values): control characters other than `\n` and
/// `\t`, and bidi controls, become U+FFFD. Free text is shown, not matched exactly, so it is
/// repaired rather than rejected.
pub(crate) fn clean_text(s: &str) -> String {
    if !may_need_care(s) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c) {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

/// Quotes input for an error message: escaped so that it stays on one line and cannot reorder the
/// text around it, and cut short so that a huge value cannot flood a log line.
pub(crate) fn quote(s: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut out = String::with_capacity(s.len().min(MAX_CHARS) + 2);
    out.push('"');
    for (n, c) in s.chars().enumerate() {
        if n == MAX_CHARS {
            out.push_str("...");
            break;
        }
        push_escaped(&mut out, c, true);
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char, in_quotes: bool) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '"' if in_quotes => out.push_str("\\\""),
        '\\' if in_quotes => out.push_str("\\\\"),
        c if c.is_control() || is_bidi_control(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Writes `s` with control and bidi characters escaped, so that a message is always one line.
pub(crate) fn write_one_line(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    if !may_need_care(s) {
        return f.write_str(s);
    }
    let mut buf = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut buf, c, false);
    }
    f.write_str(&buf)
}

/// Reads a timestamp the way AWS and Prometheus write them: `YYYY-MM-DDTHH:MM:SS`, optional
/// fraction (any number of digits, nanoseconds kept), then `Z`, `±HH:MM`, `±HHMM` or `±HH`.
/// Hand-written because this runs for every event and chrono's format-string parser is several
/// times slower than this on the `+0000` form every SNS alarm uses.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let b = s.trim().as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [h1, h2] => (two(*h1, *h2)?, 0),
                [h1, h2, m1, m2] | [h1, h2, b':', m1, m2] => (two(*h1, *h2)?, two(*m1, *m2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let local = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_nano_opt(hour, minute, second, nanos)?
        .and_utc();
    local.checked_sub_signed(TimeDelta::seconds(offset_secs))
}

/// Reads an RFC 1123 date as AWS Health writes them, `Fri, 27 Jan 2023 06:02:51 GMT`, with the day
/// of the month padded or not (`Fri, 3 Feb 2023 ...`) and `GMT`, `UTC`, `Z` or `+0000` as the zone.
/// The weekday is skipped, not checked: it adds nothing to the instant. Falls back to
/// [`parse_time`], so an RFC 3339 time is read too.
pub(crate) fn parse_http_time(s: &str) -> Option<DateTime<Utc>> {
    let t = s.trim();
    let Some((_weekday, rest)) = t.split_once(',') else {
        return parse_time(t);
    };
    let mut parts = rest.split_ascii_whitespace();
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()?.to_ascii_lowercase().as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    // Four digits, as RFC 1123 writes it: a longer year parses, and an alert carrying it could not be
    // read back (RFC 3339 has no year past 9999).
    let year = parts.next()?;
    if year.len() != 4 || !year.bytes().all(|d| d.is_ascii_digit()) {
        return None;
    }
    let year: i32 = year.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let (hour, minute, second): (u32, u32, u32) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    if hms.next().is_some() {
        return None;
    }
    match parts.next() {
        None | Some("GMT" | "UTC" | "UT" | "Z" | "+0000" | "+00:00") => {}
        Some(_) => return None,
    }
    if parts.next().is_some() {
        return None;
    }
    NaiveDate::from_ymd_opt(year, month, day)?
        .and_hms_opt(hour, minute, second)
        .map(|t| t.and_utc())
}

fn two(a: u8, b: u8) -> Option<u32> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `make fuzz` (fuzz/regressions/source): a Health `startTime` of year 20600 parsed, and
    /// the alert it made serialized as `+20600-...`, which no reader of the alert (the router) takes.
    #[test]
    fn an_http_date_needs_a_four_digit_year() {
        assert_eq!(parse_http_time("Sun, 05 Jun 20600 1:51:10 GMT"), None);
        assert_eq!(parse_http_time("Sun, 05 Jun 206 1:51:10 GMT"), None);
        assert!(parse_http_time("Sun, 05 Jun 2016 1:51:10 GMT").is_some());
    }
    use crate::model::format_time;

    fn t(s: &str) -> String {
        format_time(&parse_time(s).unwrap())
    }

    #[test]
    fn aws_offset_forms_all_name_the_same_instant() {
        let want = "2024-03-01T10:15:00.123Z";
        assert_eq!(t("2024-03-01T10:15:00.123+0000"), want);
        assert_eq!(t("2024-03-01T10:15:00.123Z"), want);
        assert_eq!(t("2024-03-01T10:15:00.123+00:00"), want);
        assert_eq!(t("2024-03-01T11:15:00.123+01:00"), want);
        assert_eq!(t("2024-03-01T05:15:00.123-0500"), want);
        assert_eq!(t("2024-03-01T11:15:00.123+01"), want);
    }

    #[test]
    fn fractions_of_any_length_and_none_are_read() {
        assert_eq!(t("2024-03-01T10:15:00Z"), "2024-03-01T10:15:00.000Z");
        let ns = parse_time("2024-03-01T10:15:00.123456789123Z").unwrap();
        assert_eq!(ns.timestamp_subsec_nanos(), 123_456_789);
    }

    #[test]
    fn impossible_or_malformed_timestamps_are_refused() {
        for bad in [
            "",
            "2024-13-01T10:15:00Z",
            "2024-02-30T10:15:00Z",
            "2024-03-01T25:15:00Z",
            "2024-03-01T10:15:00",
            "2024-03-01T10:15:00.Z",
            "2024-03-01T10:15:00+2400",
            "2024-03-01T10:15:00+00:0",
            "yesterday at noon, roughly",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn health_rfc1123_dates_are_read_with_padded_or_unpadded_days() {
        let h = |s: &str| format_time(&parse_http_time(s).unwrap());
        assert_eq!(
            h("Fri, 27 Jan 2023 06:02:51 GMT"),
            "2023-01-27T06:02:51.000Z"
        );
        assert_eq!(
            h("Fri, 3 Feb 2023 06:02:51 GMT"),
            "2023-02-03T06:02:51.000Z"
        );
        assert_eq!(
            h("Fri, 03 Feb 2023 06:02:51 GMT"),
            "2023-02-03T06:02:51.000Z"
        );
        assert_eq!(h("2023-02-03T06:02:51Z"), "2023-02-03T06:02:51.000Z");
        for bad in [
            "Fri, 31 Feb 2023 06:02:51 GMT",
            "Fri, 27 Foo 2023 06:02:51 GMT",
            "Fri, 27 Jan 2023 06:02 GMT",
            "Fri, 27 Jan 2023 06:02:51 PST",
            "Fri, 27 Jan 2023 25:02:51 GMT",
            "Fri,",
            "last Friday",
        ] {
            assert_eq!(parse_http_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_with_control_or_bidi_characters_are_refused_with_code_point_and_offset() {
        assert!(check_name("checkout-api-5xx").is_ok());
        assert!(check_name("Größe überschritten").is_ok());
        assert_eq!(
            check_name("ab\u{7}c").unwrap_err(),
            "control character U+0007 at byte offset 2 (names must be plain text)"
        );
        let e = check_name("pay\u{202E}xx").unwrap_err();
        assert!(e.contains("U+202E at byte offset 3"), "{e}");
        assert!(check_name("a\u{2066}b").is_err());
        assert!(check_name("a\u{85}b").is_err());
        assert!(check_name("  ").is_err());
    }

    #[test]
    fn free_text_keeps_newlines_and_tabs_and_replaces_other_controls() {
        assert_eq!(clean_text("a\nb\tc"), "a\nb\tc");
        assert_eq!(
            clean_text("a\u{0}b\rc\u{202E}d"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}d"
        );
        assert_eq!(clean_text("€ ünïcödé"), "€ ünïcödé");
    }

    #[test]
    fn quoted_input_stays_on_one_line_and_is_cut_short() {
        assert_eq!(quote("a\nb\"\u{202E}"), r#""a\nb\"\u{202e}""#);
        let long = "x".repeat(500);
        assert!(quote(&long).len() < 100);
    }
}
