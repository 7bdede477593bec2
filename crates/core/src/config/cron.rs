//! Cron expressions for maintenance windows: the five classic fields, read on a zone's wall clock.

use std::time::Duration;

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

/// A five-field cron expression: `minute hour day-of-month month day-of-week`. Each field is `*` or a
/// comma-separated list of `N`, `A-B`, `*/S` or `A-B/S`; day-of-week counts from 0 (Sunday) to 6, with 7
/// also Sunday. As in Vixie cron, when both day fields are restricted a day matching either counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    /// The expression as written.
    pub source: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// The longest look-back when finding the latest start of an opening: a window longer than a week is a
/// one-off in disguise.
pub const MAX_CRON_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

fn field(s: &str, name: &str, min: u32, max: u32) -> Result<(u64, bool), String> {
    let bad = |why: String| format!("invalid cron {name} `{s}`: {why}");
    let mut bits = 0u64;
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => {
                let st: u32 = st
                    .parse()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| bad(format!("step `{st}` is not a positive number")))?;
                (r, st)
            }
            None => (part, 1),
        };
        let num = |v: &str| -> Result<u32, String> {
            v.parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| bad(format!("`{v}` is not a number from {min} to {max}")))
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(bad(format!("range `{range}` runs backwards")));
            }
            (a, b)
        } else {
            let n = num(range)?;
            (n, if step > 1 { max } else { n })
        };
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, s != "*"))
}

impl Cron {
    /// Parses an expression; the error is one line naming the field at fault.
    pub fn parse(s: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [mi, h, dom, mon, dow] = parts[..] else {
            return Err(format!(
                "invalid cron `{s}`: expected five fields, minute hour day-of-month month day-of-week"
            ));
        };
        let (minutes, _) = field(mi, "minute", 0, 59)?;
        let (hours, _) = field(h, "hour", 0, 23)?;
        let (days, days_restricted) = field(dom, "day-of-month", 1, 31)?;
        let (months, _) = field(mon, "month", 1, 12)?;
        let (mut weekdays, weekdays_restricted) = field(dow, "day-of-week", 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Cron {
            source: s.to_string(),
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: (weekdays & 0x7f) as u8,
            days_restricted,
            weekdays_restricted,
        })
    }

    /// Whether the expression fires at the minute holding `t`, on the wall clock of `tz`.
    pub fn fires_at(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        let l = t.with_timezone(&tz);
        let day_ok = self.days & (1 << l.day()) != 0;
        let wd_ok = self.weekdays & (1 << l.weekday().num_days_from_sunday()) != 0;
        let day_match = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day_ok || wd_ok,
            _ => day_ok && wd_ok,
        };
        self.minutes & (1 << l.minute()) != 0
            && self.hours & (1 << l.hour()) != 0
            && self.months & (1 << l.month()) != 0
            && day_match
    }

    /// The latest start at or before `t` no longer than `within` ago (minute precision), if any.
    pub fn last_start(&self, tz: Tz, t: DateTime<Utc>, within: Duration) -> Option<DateTime<Utc>> {
        let minute = t.with_second(0)?.with_nanosecond(0)?;
        let steps = within.min(MAX_CRON_DURATION).as_secs() / 60;
        (0..=steps as i64)
            .map(|i| minute - TimeDelta::minutes(i))
            .find(|m| self.fires_at(tz, *m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap_or_default().to_utc()
    }

    #[test]
    fn a_saturday_night_cron_fires_on_the_local_wall_clock() {
        let c = Cron::parse("0 2 * * 6").expect("valid");
        // 2026-11-21 is a Saturday; London is on GMT.
        assert!(c.fires_at(Tz::Europe__London, at("2026-11-21T02:00:00Z")));
        assert!(!c.fires_at(Tz::Europe__London, at("2026-11-22T02:00:00Z")));
        // New York is 5 hours behind: 02:00 local is 07:00 UTC.
        assert!(c.fires_at(Tz::America__New_York, at("2026-11-21T07:00:30Z")));
        let start = c.last_start(
            Tz::Europe__London,
            at("2026-11-21T03:30:00Z"),
            Duration::from_secs(7200),
        );
        assert_eq!(start, Some(at("2026-11-21T02:00:00Z")));
        assert_eq!(
            c.last_start(
                Tz::Europe__London,
                at("2026-11-21T04:30:00Z"),
                Duration::from_secs(7200)
            ),
            None
        );
    }

    #[test]
    fn lists_ranges_and_steps_expand_and_both_day_fields_restricted_means_either() {
        let c = Cron::parse("*/15 9-17/4 1,15 * 1").expect("valid");
        // The 1st of December 2026 is a Tuesday; the 7th a Monday.
        assert!(c.fires_at(Tz::UTC, at("2026-12-01T13:45:00Z")));
        assert!(c.fires_at(Tz::UTC, at("2026-12-07T17:00:00Z")));
        assert!(!c.fires_at(Tz::UTC, at("2026-12-02T13:45:00Z")));
        assert!(!c.fires_at(Tz::UTC, at("2026-12-01T14:00:00Z")));
        assert!(!c.fires_at(Tz::UTC, at("2026-12-01T13:50:00Z")));
        assert!(
            Cron::parse("0 0 * * 7")
                .expect("7 is sunday")
                .fires_at(Tz::UTC, at("2026-11-22T00:00:00Z"))
        );
    }

    #[test]
    fn malformed_expressions_say_which_field_is_wrong() {
        for (bad, fragment) in [
            ("0 2 * *", "five fields"),
            ("60 2 * * *", "minute"),
            ("0 24 * * *", "hour"),
            ("0 0 0 * *", "day-of-month"),
            ("0 0 * 13 *", "month"),
            ("0 0 * * 8", "day-of-week"),
            ("*/0 * * * *", "step"),
            ("5-1 * * * *", "backwards"),
        ] {
            let e = Cron::parse(bad).expect_err(bad);
            assert!(e.contains(fragment), "{bad}: {e}");
        }
    }
}
