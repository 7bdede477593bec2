//! Time windows: whether an instant falls inside one, and the parsing of their `weekdays` and `times`.

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc, Weekday};

use super::{TimeWindow, WindowSchedule};

/// How far ahead the end of a recurring window is looked for: a window that never closes (every day, all
/// day) is reported as closing a week later, when it is looked at again.
const MAX_LOOKAHEAD_MINUTES: i64 = 8 * 24 * 60;

impl WindowSchedule {
    /// When the window is open at `t`, the instant it closes; `None` when it is closed at `t`.
    pub fn open_until(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            WindowSchedule::Once { start, end } => (*start <= t && t < *end).then_some(*end),
            WindowSchedule::Recurring(w) => {
                if !w.contains(t) {
                    return None;
                }
                let minute = t.with_second(0)?.with_nanosecond(0)?;
                (1..=MAX_LOOKAHEAD_MINUTES)
                    .map(|i| minute + chrono::TimeDelta::minutes(i))
                    .find(|m| !w.contains(*m))
                    .or(Some(
                        minute + chrono::TimeDelta::minutes(MAX_LOOKAHEAD_MINUTES),
                    ))
            }
            WindowSchedule::Cron {
                cron,
                timezone,
                duration,
            } => {
                let start = cron.last_start(*timezone, t, *duration)?;
                let end = start + chrono::TimeDelta::from_std(*duration).ok()?;
                (t < end).then_some(end)
            }
        }
    }
}

impl TimeWindow {
    /// Whether the instant `t` falls inside the window, read as wall-clock time in the window's zone.
    ///
    /// A range whose end is not after its start spans midnight and counts for the weekday it starts on:
    /// `fri 22:00-07:00` covers Friday night into Saturday morning. Being wall-clock, a window follows
    /// daylight saving time: `09:00-18:00` in Europe/London is 08:00-17:00 UTC in summer.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&self.timezone);
        let day = local.weekday();
        let time = local.time();
        // Seconds and leap-second nanoseconds do not matter at minute granularity, but a leap second
        // (nanosecond >= 1e9) must not push a time past a range's end.
        let time = time.with_nanosecond(0).unwrap_or(time);
        let open_on = |d: Weekday| self.weekdays.is_empty() || self.weekdays.contains(&d);
        if self.times.is_empty() {
            return open_on(day);
        }
        self.times.iter().any(|&(start, end)| {
            if start < end {
                open_on(day) && start <= time && time < end
            } else {
                // Spans midnight (or, when start == end, the whole 24 hours from start): the part after
                // midnight belongs to the previous day's window.
                (open_on(day) && time >= start) || (open_on(day.pred()) && time < end)
            }
        })
    }
}

/// Parses one `times` entry, `HH:MM-HH:MM`. `24:00` is allowed as an end and means midnight.
pub(super) fn parse_time_range(s: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let expected = || format!("invalid time range `{s}`: expected HH:MM-HH:MM, like 09:00-17:30");
    let (a, b) = s.split_once('-').ok_or_else(expected)?;
    let start = parse_hhmm(a.trim(), false).ok_or_else(expected)?;
    let end = parse_hhmm(b.trim(), true).ok_or_else(expected)?;
    Ok((start, end))
}

fn parse_hhmm(s: &str, allow_24: bool) -> Option<NaiveTime> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if allow_24 && h == 24 && m == 0 {
        return Some(NaiveTime::MIN);
    }
    NaiveTime::from_hms_opt(h, m, 0)
}

/// Parses one `weekdays` entry: a day (`mon`, `monday`) or an inclusive range (`mon-fri`, `fri-mon` wraps
/// over the weekend). Case-insensitive.
pub(super) fn parse_weekdays(s: &str) -> Result<Vec<Weekday>, String> {
    let bad = || {
        format!(
            "invalid weekday `{s}`: expected a day (mon..sun or monday..sunday) or a range like mon-fri"
        )
    };
    match s.split_once('-') {
        None => parse_weekday(s.trim()).map(|d| vec![d]).ok_or_else(bad),
        Some((a, b)) => {
            let first = parse_weekday(a.trim()).ok_or_else(bad)?;
            let last = parse_weekday(b.trim()).ok_or_else(bad)?;
            let mut days = vec![first];
            let mut d = first;
            while d != last {
                d = d.succ();
                days.push(d);
            }
            Ok(days)
        }
    }
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    let s = s.to_ascii_lowercase();
    Some(match s.as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tues" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thur" | "thurs" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    fn window(tz: Tz, weekdays: &[Weekday], times: &[&str]) -> TimeWindow {
        TimeWindow {
            name: "w".into(),
            timezone: tz,
            weekdays: weekdays.to_vec(),
            times: times
                .iter()
                .map(|t| parse_time_range(t).expect("valid range"))
                .collect(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid instant")
            .with_timezone(&Utc)
    }

    const WEEKDAYS: [Weekday; 5] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];

    #[test]
    fn london_business_hours_follow_british_summer_time() {
        let w = window(Tz::Europe__London, &WEEKDAYS, &["09:00-18:00"]);
        // Winter: GMT, so 09:00 local is 09:00 UTC.
        assert!(!w.contains(at("2026-01-14T08:30:00Z")));
        assert!(w.contains(at("2026-01-14T09:00:00Z")));
        assert!(w.contains(at("2026-01-14T17:59:00Z")));
        assert!(!w.contains(at("2026-01-14T18:00:00Z")));
        // Summer: BST, so 09:00 local is 08:00 UTC.
        assert!(w.contains(at("2026-07-15T08:30:00Z")));
        assert!(!w.contains(at("2026-07-15T17:30:00Z")));
    }

    #[test]
    fn london_hours_on_the_days_the_clocks_change_use_the_new_offset() {
        // Clocks go forward at 01:00 UTC on Sunday 29 March 2026 and back at 01:00 UTC on 25 October.
        let sundays = window(Tz::Europe__London, &[Weekday::Sun], &["09:00-10:00"]);
        assert!(sundays.contains(at("2026-03-29T08:30:00Z")));
        assert!(!sundays.contains(at("2026-03-29T09:30:00Z")));
        assert!(sundays.contains(at("2026-10-25T09:30:00Z")));
        assert!(!sundays.contains(at("2026-10-25T08:30:00Z")));
    }

    #[test]
    fn a_night_window_spanning_midnight_and_a_clock_change_counts_for_its_starting_day() {
        let saturday_nights = window(Tz::Europe__London, &[Weekday::Sat], &["22:00-07:00"]);
        // Saturday 28 March 23:00 GMT is inside.
        assert!(saturday_nights.contains(at("2026-03-28T23:00:00Z")));
        // Sunday 06:30 BST (05:30 UTC) is still Saturday's night.
        assert!(saturday_nights.contains(at("2026-03-29T05:30:00Z")));
        // Sunday 07:30 BST (06:30 UTC) is after it, though it is only 06:30 UTC.
        assert!(!saturday_nights.contains(at("2026-03-29T06:30:00Z")));
        // Sunday night belongs to Sunday, which is not in the window.
        assert!(!saturday_nights.contains(at("2026-03-29T22:30:00Z")));
        // Friday night into Saturday morning is Friday's.
        assert!(!saturday_nights.contains(at("2026-03-28T05:00:00Z")));
    }

    #[test]
    fn new_york_windows_follow_eastern_daylight_time() {
        // DST starts 8 March 2026 and ends 1 November 2026 in America/New_York.
        let w = window(Tz::America__New_York, &WEEKDAYS, &["09:00-17:00"]);
        // Friday 6 March, EST (UTC-5): 09:00 local is 14:00 UTC.
        assert!(!w.contains(at("2026-03-06T13:30:00Z")));
        assert!(w.contains(at("2026-03-06T14:00:00Z")));
        // Monday 9 March, EDT (UTC-4): 09:00 local is 13:00 UTC.
        assert!(w.contains(at("2026-03-09T13:30:00Z")));
        assert!(!w.contains(at("2026-03-09T21:30:00Z")));
        // Monday 2 November, back on EST.
        assert!(!w.contains(at("2026-11-02T13:30:00Z")));
        assert!(w.contains(at("2026-11-02T21:30:00Z")));
    }

    #[test]
    fn a_local_hour_skipped_by_the_spring_change_is_never_inside() {
        // 02:00-03:00 on 8 March 2026 does not exist in New York.
        let w = window(Tz::America__New_York, &[Weekday::Sun], &["02:00-03:00"]);
        assert!(!w.contains(at("2026-03-08T06:59:00Z"))); // 01:59 EST
        assert!(!w.contains(at("2026-03-08T07:00:00Z"))); // 03:00 EDT
    }

    #[test]
    fn a_local_hour_repeated_by_the_autumn_change_is_inside_twice() {
        // 01:00-02:00 on 1 November 2026 happens twice in New York: EDT, then EST.
        let w = window(Tz::America__New_York, &[Weekday::Sun], &["01:00-02:00"]);
        assert!(w.contains(at("2026-11-01T05:30:00Z"))); // 01:30 EDT
        assert!(w.contains(at("2026-11-01T06:30:00Z"))); // 01:30 EST
        assert!(!w.contains(at("2026-11-01T07:30:00Z"))); // 02:30 EST
    }

    #[test]
    fn no_weekdays_and_no_times_mean_always() {
        let w = window(Tz::UTC, &[], &[]);
        assert!(w.contains(at("2026-05-03T03:04:05Z")));
        let weekends = window(Tz::UTC, &[Weekday::Sat, Weekday::Sun], &[]);
        assert!(weekends.contains(at("2026-05-03T03:04:05Z")));
        assert!(!weekends.contains(at("2026-05-04T03:04:05Z")));
    }

    #[test]
    fn a_range_ending_at_24_00_runs_to_midnight_and_a_full_range_covers_the_day() {
        let evening = window(Tz::UTC, &[Weekday::Mon], &["18:00-24:00"]);
        assert!(evening.contains(at("2026-05-04T23:59:00Z")));
        assert!(!evening.contains(at("2026-05-05T00:00:00Z")));
        let whole = window(Tz::UTC, &[Weekday::Mon], &["00:00-24:00"]);
        assert!(whole.contains(at("2026-05-04T00:00:00Z")));
        assert!(whole.contains(at("2026-05-04T23:59:59Z")));
        assert!(!whole.contains(at("2026-05-05T00:00:00Z")));
    }

    #[test]
    fn weekday_ranges_include_both_ends_and_may_wrap() {
        assert_eq!(parse_weekdays("mon-fri").map(|d| d.len()), Ok(5));
        assert_eq!(
            parse_weekdays("Fri-Mon"),
            Ok(vec![Weekday::Fri, Weekday::Sat, Weekday::Sun, Weekday::Mon])
        );
        assert_eq!(parse_weekdays("wednesday"), Ok(vec![Weekday::Wed]));
        assert!(parse_weekdays("funday").is_err());
    }

    #[test]
    fn time_ranges_must_be_hh_mm() {
        assert!(parse_time_range("9:00-17:30").is_ok());
        for bad in [
            "09:00",
            "09-17",
            "25:00-26:00",
            "09:60-10:00",
            "24:00-01:00",
            "a:bc-de:fg",
        ] {
            assert!(parse_time_range(bad).is_err(), "{bad}");
        }
    }
}
