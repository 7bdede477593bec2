//! Who is on call: layers of rotations read in the schedule's time zone, restrictions, overrides; and the
//! rota (who is on call from when to when) over a stretch of time.
//!
//! Daily and weekly turns are counted on the schedule's local wall clock, so a 09:00 handoff stays at 09:00
//! local across DST changes; custom lengths are absolute durations from the first handoff. A local handoff
//! time the clocks skip (spring forward) happens at the first instant after the gap; one they repeat (fall
//! back) happens at its first occurrence, and only once. A later layer wins where it applies (its
//! restrictions hold and its first handoff has passed); an override wins over every layer, a later override
//! over an earlier one.
//!
//! The rota is computed from the instants at which anything could change (turn starts of every layer, edges
//! of restriction windows, the zones' own offset changes, override edges), never by sampling, so a handoff
//! is reported to the second.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::{Config, Layer, Rotation, Schedule, TimeWindow};

/// The shortest custom turn, in milliseconds: a shorter rotation (`1s`) is read as one minute, so that a typo
/// cannot make the rota walk through millions of turns.
const MIN_CUSTOM_TURN_MS: i64 = 60_000;

/// What decided who is on call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decider {
    /// The layer at this index of [`Schedule::layers`] (0 for the first).
    Layer(usize),
    /// The override at this index of [`Schedule::overrides`].
    Override(usize),
}

impl fmt::Display for Decider {
    /// `layer 1` for the first layer (people count from one), `override` for any override.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decider::Layer(i) => write!(f, "layer {}", i + 1),
            Decider::Override(_) => f.write_str("override"),
        }
    }
}

/// Who is on call at one instant, and what put them there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnCall<'a> {
    /// The person's name (a key of `people`).
    pub person: &'a str,
    /// The layer or override that decided.
    pub decider: Decider,
}

/// A stretch of time, `[start, end)`, during which the same person is on call, decided the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    /// When the shift starts (or the start of the stretch asked about).
    pub start: DateTime<Utc>,
    /// When it ends, exclusive (or the end of the stretch asked about).
    pub end: DateTime<Utc>,
    /// Who is on call; None when no layer applies and no override covers it.
    pub person: Option<String>,
    /// The layer or override that decided; None exactly when `person` is.
    pub decider: Option<Decider>,
}

/// Whoever is on call in `schedule` at `at`, if anyone.
pub fn on_call<'a>(config: &Config, schedule: &'a Schedule, at: DateTime<Utc>) -> Option<&'a str> {
    assignment(config, schedule, at).map(|a| a.person)
}

/// Whoever is on call in `schedule` at `at`, with the layer or override that decided; None if nobody is.
pub fn assignment<'a>(
    config: &Config,
    schedule: &'a Schedule,
    at: DateTime<Utc>,
) -> Option<OnCall<'a>> {
    if let Some((i, o)) = schedule
        .overrides
        .iter()
        .enumerate()
        .rev()
        .find(|(_, o)| o.start <= at && at < o.end)
    {
        return Some(OnCall {
            person: &o.person,
            decider: Decider::Override(i),
        });
    }
    schedule
        .layers
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, l)| applies(config, l, at))
        .find_map(|(i, l)| {
            layer_person(schedule, l, at).map(|person| OnCall {
                person,
                decider: Decider::Layer(i),
            })
        })
}

/// Whether a layer's restrictions let it apply at `at` (a layer without restrictions always applies).
pub fn applies(config: &Config, layer: &Layer, at: DateTime<Utc>) -> bool {
    layer.restrictions.is_empty()
        || layer
            .restrictions
            .iter()
            .any(|w| config.time_windows.get(w).is_some_and(|w| w.contains(at)))
}

/// The person of one layer at `at` (ignoring restrictions); None before the layer's first handoff.
pub fn layer_person<'a>(
    schedule: &Schedule,
    layer: &'a Layer,
    at: DateTime<Utc>,
) -> Option<&'a str> {
    if layer.people.is_empty() {
        return None;
    }
    let turn = turn_index(schedule, layer, at)?;
    let n = i64::try_from(layer.people.len()).ok()?;
    let i = usize::try_from(turn.rem_euclid(n)).ok()?;
    layer.people.get(i).map(String::as_str)
}

/// Which turn (0 for the first) is running at `at`: the last whose [`turn_start`] is at or before `at`. None
/// before the first handoff.
pub fn turn_index(schedule: &Schedule, layer: &Layer, at: DateTime<Utc>) -> Option<i64> {
    let first = turn_start(schedule, layer, 0)?;
    if at < first {
        return None;
    }
    let estimate = match layer.rotation {
        Rotation::Daily | Rotation::Weekly => {
            let wall = at.with_timezone(&schedule.timezone).naive_local();
            (wall - layer.start)
                .num_milliseconds()
                .div_euclid(turn_ms(layer.rotation))
        }
        Rotation::Custom(_) => (at - first).num_milliseconds() / turn_ms(layer.rotation),
    };
    // The wall-clock estimate is off near a DST change (the wall clock jumps; in a repeated hour it even runs
    // backwards), so settle on the turn by the true instants of the handoffs, which only move forwards.
    let mut k = estimate.max(0);
    while turn_start(schedule, layer, k.saturating_add(1)).is_some_and(|t| t <= at) {
        k += 1;
    }
    while k > 0 && turn_start(schedule, layer, k).is_none_or(|t| t > at) {
        k -= 1;
    }
    Some(k)
}

/// When turn `k` of a layer starts (turn 0 at the layer's first handoff). Daily and weekly turns start at the
/// layer's local time of day, resolved by [`resolve_local`]; custom turns every `rotation` after the first.
/// None only beyond the range of dates chrono can represent.
pub fn turn_start(schedule: &Schedule, layer: &Layer, k: i64) -> Option<DateTime<Utc>> {
    match layer.rotation {
        Rotation::Daily | Rotation::Weekly => {
            let days = k.checked_mul(turn_ms(layer.rotation) / 86_400_000)?;
            let local = layer.start.checked_add_signed(Duration::try_days(days)?)?;
            resolve_local(schedule.timezone, local)
        }
        Rotation::Custom(_) => {
            let first = resolve_local(schedule.timezone, layer.start)?;
            let offset = Duration::try_milliseconds(k.checked_mul(turn_ms(layer.rotation))?)?;
            first.checked_add_signed(offset)
        }
    }
}

/// A turn's length in milliseconds: a wall-clock day or week for daily and weekly layers.
fn turn_ms(rotation: Rotation) -> i64 {
    match rotation {
        Rotation::Daily => 86_400_000,
        Rotation::Weekly => 7 * 86_400_000,
        Rotation::Custom(d) => i64::try_from(d.as_millis())
            .unwrap_or(i64::MAX)
            .max(MIN_CUSTOM_TURN_MS),
    }
}

/// The instant at which a local wall-clock time happens in `tz`, for handoffs: the time itself when it
/// happens once; its first occurrence when the clocks go back over it; and when the clocks skip it, the
/// first instant after the gap (a 01:30 handoff in London on 29 March 2026 happens at 01:00 UTC, when GMT
/// 01:00 becomes BST 02:00). None only beyond the range of dates chrono can represent.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        LocalResult::None => after_gap(tz, local),
    }
}

/// The instant the clocks jump over `local`, a wall-clock time that does not exist in `tz`.
fn after_gap(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    // Bracket the gap by wall-clock times that exist on either side of it. No zone has skipped more than a
    // day, so two days either way is plenty.
    let step = Duration::minutes(15);
    let before = (1..=200).find_map(|i| {
        tz.from_local_datetime(&local.checked_sub_signed(step * i)?)
            .latest()
    })?;
    let after = (1..=200).find_map(|i| {
        tz.from_local_datetime(&local.checked_add_signed(step * i)?)
            .earliest()
    })?;
    // Within the bracket the wall clock reads before `local` up to the jump and after it from then on; find
    // the first second reading after it. Zone offsets change on whole seconds, so this is the jump itself.
    let wall = |s: i64| DateTime::from_timestamp(s, 0).map(|t| t.with_timezone(&tz).naive_local());
    let (mut lo, mut hi) = (before.timestamp(), after.timestamp());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall(mid)? < local {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

/// Who is on call over `[from, to)`, as consecutive shifts covering it exactly; a new shift starts whenever
/// the person or the layer or override that decided changes. Empty when `to` is not after `from`.
pub fn rota(
    config: &Config,
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Shift> {
    let mut shifts: Vec<Shift> = Vec::new();
    if to <= from {
        return shifts;
    }
    for t in change_candidates(config, schedule, from, to) {
        let a = assignment(config, schedule, t);
        let person = a.map(|a| a.person.to_string());
        let decider = a.map(|a| a.decider);
        if let Some(last) = shifts.last_mut() {
            if last.person == person && last.decider == decider {
                continue;
            }
            last.end = t;
        }
        shifts.push(Shift {
            start: t,
            end: to,
            person,
            decider,
        });
    }
    shifts
}

/// Who is on call at `from` (the first entry, at `from`), then each instant in `(from, to)` at which someone
/// else (or nobody: None) goes on call. A change of only the layer or override that decided is no handoff.
pub fn handoffs(
    config: &Config,
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Option<String>)> {
    let mut out: Vec<(DateTime<Utc>, Option<String>)> = Vec::new();
    for s in rota(config, schedule, from, to) {
        if out.last().is_none_or(|(_, p)| *p != s.person) {
            out.push((s.start, s.person));
        }
    }
    out
}

/// The first handoff after `at`: when someone other than whoever is on call at `at` (or nobody: None) takes
/// over, looking no further ahead than `within`. None if nothing changes in that time.
pub fn next_handoff(
    config: &Config,
    schedule: &Schedule,
    at: DateTime<Utc>,
    within: Duration,
) -> Option<(DateTime<Utc>, Option<String>)> {
    let now = on_call(config, schedule, at);
    let horizon = at
        .checked_add_signed(within)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    // A week at a time, so that the common case (a handoff within days) does not compute a year's rota.
    let mut from = at;
    while from < horizon {
        let to = from
            .checked_add_signed(Duration::days(7))
            .map_or(horizon, |t| t.min(horizon));
        if let Some(h) = handoffs(config, schedule, from, to)
            .into_iter()
            .find(|(_, p)| p.as_deref() != now)
        {
            return Some(h);
        }
        from = to;
    }
    None
}

/// `from`, then every instant in `(from, to)` at which who is on call could change, sorted. Between two
/// consecutive candidates nothing that decides it changes: no turn starts, no restriction window opens or
/// closes (its wall clock crosses no edge and does not jump), no override starts or ends.
fn change_candidates(
    config: &Config,
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut out = BTreeSet::from([from]);
    let mut push = |t: DateTime<Utc>| {
        if from < t && t < to {
            out.insert(t);
        }
    };
    let mut windows = BTreeSet::new();
    for layer in &schedule.layers {
        let mut k = turn_index(schedule, layer, from).map_or(0, |k| k + 1);
        while let Some(t) = turn_start(schedule, layer, k) {
            if t >= to {
                break;
            }
            push(t);
            k += 1;
        }
        windows.extend(layer.restrictions.iter());
    }
    for name in windows {
        if let Some(w) = config.time_windows.get(name) {
            window_edges(w, from, to, &mut push);
        }
    }
    for o in &schedule.overrides {
        push(o.start);
        push(o.end);
    }
    out.into_iter().collect()
}

/// The instants around `[from, to]` at which a time window may open or close: every occurrence of each
/// range's start and end and of midnight (where the weekday changes), and every offset change of its zone
/// (where the wall clock jumps, possibly into or out of a range).
fn window_edges(
    w: &TimeWindow,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    push: &mut impl FnMut(DateTime<Utc>),
) {
    let tz = w.timezone;
    let mut times = vec![NaiveTime::MIN];
    for &(start, end) in &w.times {
        times.extend([start, end]);
    }
    let first = from.with_timezone(&tz).date_naive();
    let last = to.with_timezone(&tz).date_naive();
    let Some(first) = first.pred_opt() else {
        return;
    };
    for day in first
        .iter_days()
        .take_while(|d| d.pred_opt().is_some_and(|p| p <= last))
    {
        for &time in &times {
            let local = day.and_time(time);
            match tz.from_local_datetime(&local) {
                LocalResult::Single(t) => push(t.with_timezone(&Utc)),
                // The clocks pass this time twice: the window may change at either.
                LocalResult::Ambiguous(a, b) => {
                    push(a.with_timezone(&Utc));
                    push(b.with_timezone(&Utc));
                }
                LocalResult::None => {
                    if let Some(t) = after_gap(tz, local) {
                        push(t);
                    }
                }
            }
        }
    }
    zone_transitions(tz, from, to, push);
}

/// The instants in `[from, to]` at which `tz` changes its offset from UTC. The offset is probed every six
/// hours and each change pinned to the second by bisection: a zone changes its offset a few times a year at
/// most, never twice in six hours.
fn zone_transitions(
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    push: &mut impl FnMut(DateTime<Utc>),
) {
    let offset = |s: i64| {
        DateTime::from_timestamp(s, 0).map(|t| {
            tz.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc()
        })
    };
    const PROBE: i64 = 6 * 3600;
    let end = to.timestamp().saturating_add(1);
    let mut a = from.timestamp();
    while a < end {
        let b = a.saturating_add(PROBE).min(end);
        let before = offset(a);
        if before != offset(b) {
            let (mut lo, mut hi) = (a, b);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == before {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            if let Some(t) = DateTime::from_timestamp(hi, 0) {
                push(t);
            }
        }
        a = b;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{Datelike, NaiveDate, Timelike, Weekday};
    use proptest::prelude::*;

    use super::*;
    use crate::config::{Defaults, Override, Route};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid instant")
            .with_timezone(&Utc)
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").expect("valid local date-time")
    }

    fn layer(rotation: Rotation, start: &str, people: &[&str], restrictions: &[&str]) -> Layer {
        Layer {
            rotation,
            start: local(start),
            people: people.iter().map(|p| p.to_string()).collect(),
            restrictions: restrictions.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn schedule(tz: Tz, layers: Vec<Layer>, overrides: Vec<Override>) -> Schedule {
        Schedule {
            name: "s".into(),
            timezone: tz,
            layers,
            overrides,
        }
    }

    fn config(windows: Vec<TimeWindow>) -> Config {
        Config {
            defaults: Defaults::default(),
            services: Vec::new(),
            severity_rules: Vec::new(),
            channels: BTreeMap::new(),
            people: BTreeMap::new(),
            time_windows: windows.into_iter().map(|w| (w.name.clone(), w)).collect(),
            escalation_policies: BTreeMap::new(),
            schedules: BTreeMap::new(),
            route: Route::default(),
            noise: Default::default(),
        }
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
    }

    /// The handoffs of a two-person daily rotation at `time` in `tz`, over `[from, to)`.
    fn daily_handoffs(tz: Tz, time: &str, from: &str, to: &str) -> Vec<DateTime<Utc>> {
        let s = schedule(
            tz,
            vec![layer(Rotation::Daily, time, &["a", "b"], &[])],
            vec![],
        );
        handoffs(&config(vec![]), &s, utc(from), utc(to))
            .into_iter()
            .skip(1)
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn london_0900_handoffs_move_to_0800_utc_in_summer_time() {
        let h = daily_handoffs(
            Tz::Europe__London,
            "2026-03-01T09:00",
            "2026-03-27T12:00:00Z",
            "2026-03-31T00:00:00Z",
        );
        let expected = [
            "2026-03-28T09:00:00Z",
            "2026-03-29T08:00:00Z",
            "2026-03-30T08:00:00Z",
        ];
        assert_eq!(h, expected.map(utc));
        let h = daily_handoffs(
            Tz::Europe__London,
            "2026-03-01T09:00",
            "2026-10-23T12:00:00Z",
            "2026-10-27T00:00:00Z",
        );
        let expected = [
            "2026-10-24T08:00:00Z",
            "2026-10-25T09:00:00Z",
            "2026-10-26T09:00:00Z",
        ];
        assert_eq!(h, expected.map(utc));
    }

    #[test]
    fn a_london_0130_handoff_skipped_by_spring_forward_happens_when_the_clocks_jump() {
        // 01:00 GMT becomes 02:00 BST at 01:00 UTC on 29 March 2026; 01:30 does not exist that day.
        let h = daily_handoffs(
            Tz::Europe__London,
            "2026-03-01T01:30",
            "2026-03-27T12:00:00Z",
            "2026-03-31T00:00:00Z",
        );
        let expected = [
            "2026-03-28T01:30:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:30:00Z",
        ];
        assert_eq!(h, expected.map(utc));
    }

    #[test]
    fn a_london_0130_handoff_repeated_by_fall_back_happens_once_at_the_first_0130() {
        // 02:00 BST becomes 01:00 GMT at 01:00 UTC on 25 October 2026, so 01:30 comes at 00:30 and 01:30 UTC.
        let h = daily_handoffs(
            Tz::Europe__London,
            "2026-03-01T01:30",
            "2026-10-23T12:00:00Z",
            "2026-10-27T00:00:00Z",
        );
        let expected = [
            "2026-10-24T00:30:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-26T01:30:00Z",
        ];
        assert_eq!(h, expected.map(utc));
        // Reading turns off the wall clock alone would hand back to yesterday's person for the half hour
        // between the clocks going back and the second 01:30.
        let s = schedule(
            Tz::Europe__London,
            vec![layer(Rotation::Daily, "2026-10-24T01:30", &["a", "b"], &[])],
            vec![],
        );
        let c = config(vec![]);
        assert_eq!(on_call(&c, &s, utc("2026-10-25T00:29:59Z")), Some("a"));
        for t in [
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T01:15:00Z",
        ] {
            assert_eq!(on_call(&c, &s, utc(t)), Some("b"), "{t}");
        }
    }

    #[test]
    fn new_york_0900_handoffs_follow_eastern_daylight_time() {
        let h = daily_handoffs(
            Tz::America__New_York,
            "2026-03-01T09:00",
            "2026-03-06T18:00:00Z",
            "2026-03-09T18:00:00Z",
        );
        let expected = [
            "2026-03-07T14:00:00Z",
            "2026-03-08T13:00:00Z",
            "2026-03-09T13:00:00Z",
        ];
        assert_eq!(h, expected.map(utc));
        let h = daily_handoffs(
            Tz::America__New_York,
            "2026-03-01T09:00",
            "2026-10-30T18:00:00Z",
            "2026-11-02T18:00:00Z",
        );
        let expected = [
            "2026-10-31T13:00:00Z",
            "2026-11-01T14:00:00Z",
            "2026-11-02T14:00:00Z",
        ];
        assert_eq!(h, expected.map(utc));
    }

    #[test]
    fn a_new_york_0230_handoff_skipped_by_spring_forward_happens_at_0300_edt() {
        // 02:00 EST becomes 03:00 EDT at 07:00 UTC on 8 March 2026.
        let h = daily_handoffs(
            Tz::America__New_York,
            "2026-03-01T02:30",
            "2026-03-06T12:00:00Z",
            "2026-03-10T00:00:00Z",
        );
        let expected = [
            "2026-03-07T07:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z",
        ];
        assert_eq!(h, expected.map(utc));
    }

    #[test]
    fn new_york_handoffs_on_the_fall_back_day_take_the_first_of_a_repeated_time() {
        // 02:00 EDT becomes 01:00 EST at 06:00 UTC on 1 November 2026: 01:30 comes twice, 02:30 once (EST).
        let h = daily_handoffs(
            Tz::America__New_York,
            "2026-03-01T01:30",
            "2026-10-30T12:00:00Z",
            "2026-11-03T00:00:00Z",
        );
        let expected = [
            "2026-10-31T05:30:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-02T06:30:00Z",
        ];
        assert_eq!(h, expected.map(utc));
        let h = daily_handoffs(
            Tz::America__New_York,
            "2026-03-01T02:30",
            "2026-10-30T12:00:00Z",
            "2026-11-03T00:00:00Z",
        );
        let expected = [
            "2026-10-31T06:30:00Z",
            "2026-11-01T07:30:00Z",
            "2026-11-02T07:30:00Z",
        ];
        assert_eq!(h, expected.map(utc));
    }

    #[test]
    fn kolkata_handoffs_keep_the_same_utc_time_through_other_zones_dst_changes() {
        // India has no DST: a control for the tests above, on the same days.
        for (from, to) in [
            ("2026-03-06T00:00:00Z", "2026-03-10T00:00:00Z"),
            ("2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z"),
            ("2026-10-23T00:00:00Z", "2026-10-27T00:00:00Z"),
            ("2026-10-30T00:00:00Z", "2026-11-03T00:00:00Z"),
        ] {
            let nine = daily_handoffs(Tz::Asia__Kolkata, "2026-03-01T09:00", from, to);
            let half_one = daily_handoffs(Tz::Asia__Kolkata, "2026-03-01T01:30", from, to);
            assert_eq!(nine.len(), 4, "{from}");
            assert_eq!(half_one.len(), 4, "{from}");
            for t in nine {
                assert_eq!((t.hour(), t.minute()), (3, 30), "{t}");
            }
            for t in half_one {
                assert_eq!((t.hour(), t.minute()), (20, 0), "{t}");
            }
        }
    }

    #[test]
    fn a_weekly_turn_starting_in_the_spring_gap_begins_when_the_clocks_jump() {
        let s = schedule(
            Tz::Europe__London,
            vec![layer(
                Rotation::Weekly,
                "2026-03-29T01:30",
                &["a", "b"],
                &[],
            )],
            vec![],
        );
        let l = &s.layers[0];
        assert_eq!(turn_start(&s, l, 0), Some(utc("2026-03-29T01:00:00Z")));
        assert_eq!(turn_start(&s, l, 1), Some(utc("2026-04-05T00:30:00Z")));
        assert_eq!(turn_index(&s, l, utc("2026-03-29T00:59:59Z")), None);
        assert_eq!(turn_index(&s, l, utc("2026-03-29T01:00:00Z")), Some(0));
    }

    #[test]
    fn a_custom_rotation_is_absolute_time_from_a_first_handoff_in_the_gap() {
        let s = schedule(
            Tz::Europe__London,
            vec![layer(
                Rotation::Custom(std::time::Duration::from_secs(12 * 3600)),
                "2026-03-29T01:30",
                &["a", "b"],
                &[],
            )],
            vec![],
        );
        let l = &s.layers[0];
        assert_eq!(turn_start(&s, l, 0), Some(utc("2026-03-29T01:00:00Z")));
        assert_eq!(turn_start(&s, l, 1), Some(utc("2026-03-29T13:00:00Z")));
        assert_eq!(turn_start(&s, l, 60), Some(utc("2026-04-28T01:00:00Z")));
    }

    #[test]
    fn a_restricted_later_layer_covers_nights_across_the_clock_change() {
        let nights = TimeWindow {
            name: "nights".into(),
            timezone: Tz::Europe__London,
            weekdays: vec![],
            times: vec![(hm(22, 0), hm(7, 0))],
        };
        let s = schedule(
            Tz::Europe__London,
            vec![
                layer(Rotation::Weekly, "2026-03-23T09:00", &["alice"], &[]),
                layer(
                    Rotation::Weekly,
                    "2026-03-23T09:00",
                    &["carol"],
                    &["nights"],
                ),
            ],
            vec![],
        );
        let c = config(vec![nights]);
        let r = rota(
            &c,
            &s,
            utc("2026-03-28T12:00:00Z"),
            utc("2026-03-30T12:00:00Z"),
        );
        let got: Vec<_> = r
            .iter()
            .map(|s| (s.start, s.person.as_deref(), s.decider))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    utc("2026-03-28T12:00:00Z"),
                    Some("alice"),
                    Some(Decider::Layer(0))
                ),
                (
                    utc("2026-03-28T22:00:00Z"),
                    Some("carol"),
                    Some(Decider::Layer(1))
                ),
                // 07:00 BST on Sunday 29 March.
                (
                    utc("2026-03-29T06:00:00Z"),
                    Some("alice"),
                    Some(Decider::Layer(0))
                ),
                (
                    utc("2026-03-29T21:00:00Z"),
                    Some("carol"),
                    Some(Decider::Layer(1))
                ),
                (
                    utc("2026-03-30T06:00:00Z"),
                    Some("alice"),
                    Some(Decider::Layer(0))
                ),
            ]
        );
    }

    #[test]
    fn a_window_opening_in_the_repeated_hour_closes_and_reopens_with_the_clocks() {
        // 01:30-03:00 in New York on 1 November 2026: open at 01:30 EDT, shut when the clocks go back to
        // 01:00 EST, open again at 01:30 EST. The rota must see all three changes, not sample past them.
        let w = TimeWindow {
            name: "w".into(),
            timezone: Tz::America__New_York,
            weekdays: vec![Weekday::Sun],
            times: vec![(hm(1, 30), hm(3, 0))],
        };
        let s = schedule(
            Tz::America__New_York,
            vec![
                layer(Rotation::Weekly, "2026-10-01T09:00", &["a"], &[]),
                layer(Rotation::Weekly, "2026-10-01T09:00", &["b"], &["w"]),
            ],
            vec![],
        );
        let h = handoffs(
            &config(vec![w]),
            &s,
            utc("2026-11-01T00:00:00Z"),
            utc("2026-11-02T00:00:00Z"),
        );
        let expected = [
            ("2026-11-01T00:00:00Z", "a"),
            ("2026-11-01T05:30:00Z", "b"),
            ("2026-11-01T06:00:00Z", "a"),
            ("2026-11-01T06:30:00Z", "b"),
            ("2026-11-01T08:00:00Z", "a"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(t, p)| (utc(t), Some(p.to_string())))
            .collect();
        assert_eq!(h, expected);
    }

    #[test]
    fn an_override_wins_over_every_layer_and_a_later_override_over_an_earlier() {
        let s = schedule(
            Tz::UTC,
            vec![layer(Rotation::Daily, "2026-01-01T09:00", &["a", "b"], &[])],
            vec![
                Override {
                    person: "x".into(),
                    start: utc("2026-01-02T00:00:00Z"),
                    end: utc("2026-01-04T00:00:00Z"),
                },
                Override {
                    person: "y".into(),
                    start: utc("2026-01-03T00:00:00Z"),
                    end: utc("2026-01-03T12:00:00Z"),
                },
            ],
        );
        let c = config(vec![]);
        let at = |t: &str| assignment(&c, &s, utc(t)).map(|a| (a.person, a.decider));
        assert_eq!(at("2026-01-01T23:59:59Z"), Some(("a", Decider::Layer(0))));
        assert_eq!(
            at("2026-01-02T00:00:00Z"),
            Some(("x", Decider::Override(0)))
        );
        assert_eq!(
            at("2026-01-03T06:00:00Z"),
            Some(("y", Decider::Override(1)))
        );
        assert_eq!(
            at("2026-01-03T12:00:00Z"),
            Some(("x", Decider::Override(0)))
        );
        // Back to the rotation, in the turn that started on 3 January.
        assert_eq!(at("2026-01-04T00:00:00Z"), Some(("a", Decider::Layer(0))));
    }

    #[test]
    fn nobody_is_on_call_before_the_first_handoff_or_outside_every_restriction() {
        let w = TimeWindow {
            name: "w".into(),
            timezone: Tz::UTC,
            weekdays: vec![],
            times: vec![(hm(9, 0), hm(17, 0))],
        };
        let s = schedule(
            Tz::UTC,
            vec![layer(Rotation::Daily, "2026-01-05T09:00", &["a"], &["w"])],
            vec![],
        );
        let c = config(vec![w]);
        assert_eq!(on_call(&c, &s, utc("2026-01-04T12:00:00Z")), None);
        assert_eq!(on_call(&c, &s, utc("2026-01-05T12:00:00Z")), Some("a"));
        assert_eq!(on_call(&c, &s, utc("2026-01-05T18:00:00Z")), None);
        assert_eq!(
            next_handoff(&c, &s, utc("2026-01-05T18:00:00Z"), Duration::days(1)),
            Some((utc("2026-01-06T09:00:00Z"), Some("a".into())))
        );
        assert_eq!(
            next_handoff(&c, &s, utc("2026-01-05T10:00:00Z"), Duration::days(1)),
            Some((utc("2026-01-05T17:00:00Z"), None))
        );
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let s = schedule(
            Tz::Europe__London,
            vec![
                layer(Rotation::Daily, "2026-01-05T09:00", &["a", "b"], &[]),
                layer(
                    Rotation::Custom(std::time::Duration::from_secs(u64::MAX)),
                    "2026-01-05T09:00",
                    &["c", "d"],
                    &[],
                ),
            ],
            vec![],
        );
        let c = config(vec![]);
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            let _ = on_call(&c, &s, t);
        }
        let _ = next_handoff(&c, &s, DateTime::<Utc>::MAX_UTC, Duration::days(30));
    }

    // --- Properties over random schedules and instants. ---

    const ZONES: [Tz; 6] = [
        Tz::Europe__London,
        Tz::America__New_York,
        Tz::Asia__Kolkata,
        Tz::Australia__Sydney,
        // DST of half an hour.
        Tz::Australia__Lord_Howe,
        Tz::UTC,
    ];

    const PEOPLE: [&str; 5] = ["p0", "p1", "p2", "p3", "p4"];

    /// 2026-01-01T00:00:00Z.
    const BASE: i64 = 1_767_225_600;

    fn rotation() -> impl Strategy<Value = Rotation> {
        prop_oneof![
            Just(Rotation::Daily),
            Just(Rotation::Weekly),
            (30u64..=10 * 24 * 60)
                .prop_map(|m| Rotation::Custom(std::time::Duration::from_secs(m * 60))),
        ]
    }

    /// A local date-time in 2025 to 2027; a quarter of them between midnight and 03:00, where the clocks
    /// change.
    fn local_time() -> impl Strategy<Value = NaiveDateTime> {
        let date = (0u64..3 * 365).prop_map(|d| {
            NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid date") + chrono::Days::new(d)
        });
        let hour = prop_oneof![0u32..24, 0u32..3];
        (date, hour, prop_oneof![Just(0u32), Just(30), 0u32..60])
            .prop_map(|(d, h, m)| d.and_time(hm(h, m)))
    }

    fn window(name: String) -> impl Strategy<Value = TimeWindow> {
        let time = (0u32..24, prop_oneof![Just(0u32), Just(30)]).prop_map(|(h, m)| hm(h, m));
        (
            prop::sample::select(ZONES.to_vec()),
            prop::collection::vec(0u8..7, 0..4),
            prop::collection::vec((time.clone(), time), 0..3),
        )
            .prop_map(move |(tz, days, times)| TimeWindow {
                name: name.clone(),
                timezone: tz,
                weekdays: days
                    .into_iter()
                    .map(|d| Weekday::try_from(d).expect("0..7 is a weekday"))
                    .collect(),
                times,
            })
    }

    fn random_layer(i: usize) -> impl Strategy<Value = (Layer, Option<TimeWindow>)> {
        (
            rotation(),
            local_time(),
            prop::collection::vec(prop::sample::select(PEOPLE.to_vec()), 1..=4),
            prop::option::weighted(0.4, window(format!("w{i}"))),
        )
            .prop_map(|(rotation, start, people, w)| {
                let l = Layer {
                    rotation,
                    start,
                    people: people.into_iter().map(String::from).collect(),
                    restrictions: w.iter().map(|w| w.name.clone()).collect(),
                };
                (l, w)
            })
    }

    fn random_override() -> impl Strategy<Value = Override> {
        (
            prop::sample::select(PEOPLE.to_vec()),
            0i64..400 * 86_400,
            60i64..4 * 86_400,
        )
            .prop_map(|(p, start, len)| Override {
                person: p.into(),
                start: instant(BASE - 30 * 86_400 + start),
                end: instant(BASE - 30 * 86_400 + start + len),
            })
    }

    fn instant(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).expect("instant in range")
    }

    fn random_schedule() -> impl Strategy<Value = (Config, Schedule)> {
        (
            prop::sample::select(ZONES.to_vec()),
            (
                random_layer(0),
                random_layer(1),
                random_layer(2),
                1usize..=3,
            ),
            prop::collection::vec(random_override(), 0..3),
        )
            .prop_map(|(tz, (l0, l1, l2, n), overrides)| {
                let mut layers = vec![l0, l1, l2];
                layers.truncate(n);
                let windows = layers.iter().filter_map(|(_, w)| w.clone()).collect();
                let s = schedule(tz, layers.into_iter().map(|(l, _)| l).collect(), overrides);
                (config(windows), s)
            })
    }

    /// An instant in 2026, half of them within three days of a 2026 DST change of London or New York.
    fn random_instant() -> impl Strategy<Value = DateTime<Utc>> {
        let changes = [
            "2026-03-08T07:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-10-25T01:00:00Z",
            "2026-11-01T06:00:00Z",
            // Sydney and Lord Howe.
            "2026-04-04T16:00:00Z",
            "2026-10-03T16:00:00Z",
        ]
        .map(|s| utc(s).timestamp());
        prop_oneof![
            (0i64..365 * 86_400).prop_map(|s| instant(BASE + s)),
            (
                prop::sample::select(changes.to_vec()),
                -3 * 86_400i64..3 * 86_400
            )
                .prop_map(|(c, d)| instant(c + d)),
        ]
    }

    /// The wall-clock time handoffs of a daily or weekly layer are configured at, checked against chrono
    /// directly: `t` is that time's first occurrence that day, or, if the day skips it, the instant of the jump.
    fn at_configured_wall_time(tz: Tz, target: NaiveDateTime, t: DateTime<Utc>) -> bool {
        match tz.from_local_datetime(&target) {
            LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => x.with_timezone(&Utc) == t,
            LocalResult::None => {
                let wall = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local();
                wall(t - Duration::seconds(1)) < target && target < wall(t)
            }
        }
    }

    proptest! {
        #[test]
        fn every_layer_has_exactly_one_person_from_its_first_handoff_on(
            (_, s) in random_schedule(),
            at in random_instant(),
        ) {
            for l in &s.layers {
                let first = turn_start(&s, l, 0).expect("first handoff in range");
                let person = layer_person(&s, l, at);
                prop_assert_eq!(person.is_some(), at >= first);
                if let Some(k) = turn_index(&s, l, at) {
                    let start = turn_start(&s, l, k).expect("in range");
                    let next = turn_start(&s, l, k + 1).expect("in range");
                    prop_assert!(start <= at && at < next, "{start} <= {at} < {next}");
                    let i = usize::try_from(k).expect("turn is not negative") % l.people.len();
                    prop_assert_eq!(person, Some(l.people[i].as_str()));
                }
            }
        }

        #[test]
        fn an_override_wins_inside_its_range_and_the_last_applying_layer_outside(
            (c, s) in random_schedule(),
            at in random_instant(),
        ) {
            let got = assignment(&c, &s, at);
            let covering = s.overrides.iter().rposition(|o| o.start <= at && at < o.end);
            if let Some(i) = covering {
                prop_assert_eq!(
                    got,
                    Some(OnCall { person: &s.overrides[i].person, decider: Decider::Override(i) })
                );
            } else {
                let layer = s.layers.iter().rposition(|l| {
                    applies(&c, l, at) && turn_start(&s, l, 0).is_some_and(|t| t <= at)
                });
                prop_assert_eq!(got.map(|a| a.decider), layer.map(Decider::Layer));
            }
        }

        #[test]
        fn the_rota_covers_the_range_and_who_is_on_call_changes_only_at_its_shift_edges(
            (c, s) in random_schedule(),
            from in random_instant(),
            days in 1i64..10,
            probes in prop::collection::vec(0f64..1.0, 40),
        ) {
            let to = from + Duration::days(days);
            let r = rota(&c, &s, from, to);
            prop_assert_eq!(r.first().map(|s| s.start), Some(from));
            prop_assert_eq!(r.last().map(|s| s.end), Some(to));
            for pair in r.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
                prop_assert!(pair[0].start < pair[0].end);
                prop_assert!(
                    (&pair[0].person, pair[0].decider) != (&pair[1].person, pair[1].decider),
                    "unmerged shifts {:?}", pair
                );
            }
            let who = |t: DateTime<Utc>| {
                let a = assignment(&c, &s, t);
                (a.map(|a| a.person.to_string()), a.map(|a| a.decider))
            };
            let span = (to - from).num_seconds() as f64;
            for shift in &r {
                let expected = (shift.person.clone(), shift.decider);
                prop_assert_eq!(who(shift.start), expected.clone());
                prop_assert_eq!(who(shift.end - Duration::seconds(1)), expected.clone());
            }
            for p in probes {
                let t = from + Duration::seconds((p * span) as i64);
                let shift = r.iter().find(|s| s.start <= t && t < s.end).expect("covered");
                prop_assert_eq!(who(t), (shift.person.clone(), shift.decider), "at {}", t);
            }
        }

        #[test]
        fn daily_and_weekly_handoffs_fall_at_the_configured_local_time(
            (_, s) in random_schedule(),
            from in random_instant(),
        ) {
            for l in &s.layers {
                let Rotation::Custom(d) = l.rotation else {
                    let days = if l.rotation == Rotation::Daily { 1 } else { 7 };
                    let k0 = turn_index(&s, l, from).unwrap_or(0);
                    for k in k0..k0 + 10 {
                        let t = turn_start(&s, l, k).expect("in range");
                        let target = l.start + Duration::days(k * days);
                        prop_assert!(
                            at_configured_wall_time(s.timezone, target, t),
                            "turn {} at {} is not {} in {}", k, t, target, s.timezone
                        );
                    }
                    continue;
                };
                let k0 = turn_index(&s, l, from).unwrap_or(0);
                for k in k0..k0 + 10 {
                    let a = turn_start(&s, l, k).expect("in range");
                    let b = turn_start(&s, l, k + 1).expect("in range");
                    prop_assert_eq!((b - a).to_std().ok(), Some(d));
                }
            }
        }

        #[test]
        fn a_lone_rotation_hands_off_only_at_its_configured_local_time(
            tz in prop::sample::select(ZONES.to_vec()),
            rotation in prop_oneof![Just(Rotation::Daily), Just(Rotation::Weekly)],
            start in local_time(),
            from in random_instant(),
        ) {
            let s = schedule(tz, vec![Layer {
                rotation,
                start,
                people: vec!["a".into(), "b".into()],
                restrictions: vec![],
            }], vec![]);
            let h = handoffs(&config(vec![]), &s, from, from + Duration::days(15));
            let wall_time = start.time();
            for (t, _) in h.iter().skip(1) {
                let local = t.with_timezone(&tz);
                let day = local.date_naive();
                // Either the day's own handoff time, or that time skipped by the clocks this very day.
                let target = day.and_time(wall_time);
                let previous_day = day.pred_opt().expect("in range").and_time(wall_time);
                prop_assert!(
                    at_configured_wall_time(tz, target, *t)
                        || at_configured_wall_time(tz, previous_day, *t),
                    "handoff at {} ({}) is not at {}", t, local, wall_time
                );
                if rotation == Rotation::Weekly {
                    let weekday = local.weekday();
                    let expected = start.weekday();
                    prop_assert!(
                        weekday == expected || weekday == expected.succ(),
                        "weekly handoff on {:?}, not {:?}", weekday, expected
                    );
                }
            }
        }
    }
}
