//! Who is on call: layers of rotations read in the schedule's time zone, restrictions, overrides.
//!
//! Daily and weekly turns are counted on the schedule's local wall clock (naive local date-times), so a
//! 09:00 handoff stays at 09:00 local across DST changes; custom lengths are absolute durations from the
//! first handoff. A later layer wins where it applies; an override wins over every layer.

use chrono::{DateTime, Duration, LocalResult, TimeZone, Utc};

use crate::config::{Config, Layer, Rotation, Schedule};

/// Whoever is on call in `schedule` at `at`, if anyone.
pub fn on_call<'a>(config: &Config, schedule: &'a Schedule, at: DateTime<Utc>) -> Option<&'a str> {
    if let Some(o) = schedule
        .overrides
        .iter()
        .rev()
        .find(|o| o.start <= at && at < o.end)
    {
        return Some(&o.person);
    }
    schedule
        .layers
        .iter()
        .rev()
        .filter(|l| applies(config, l, at))
        .find_map(|l| layer_person(schedule, l, at))
}

fn applies(config: &Config, layer: &Layer, at: DateTime<Utc>) -> bool {
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
    let n = layer.people.len() as i64;
    layer
        .people
        .get(turn.rem_euclid(n) as usize)
        .map(String::as_str)
}

/// Which turn (0 for the first) is running at `at`; None before the first handoff.
pub fn turn_index(schedule: &Schedule, layer: &Layer, at: DateTime<Utc>) -> Option<i64> {
    let elapsed_ms = match layer.rotation {
        Rotation::Daily | Rotation::Weekly => {
            let local = at.with_timezone(&schedule.timezone).naive_local();
            (local - layer.start).num_milliseconds()
        }
        Rotation::Custom(_) => {
            let start = match schedule.timezone.from_local_datetime(&layer.start) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
                // A first handoff in a spring-forward gap: take the instant an hour later.
                LocalResult::None => schedule
                    .timezone
                    .from_local_datetime(&(layer.start + Duration::hours(1)))
                    .earliest()?
                    .with_timezone(&Utc),
            };
            (at - start).num_milliseconds()
        }
    };
    if elapsed_ms < 0 {
        return None;
    }
    let turn_ms = match layer.rotation {
        Rotation::Daily => 86_400_000,
        Rotation::Weekly => 7 * 86_400_000,
        Rotation::Custom(d) => (d.as_millis() as i64).max(60_000),
    };
    Some(elapsed_ms / turn_ms)
}
