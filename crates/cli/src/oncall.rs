//! `tocsin oncall SCHEDULE [--at TIME] [--week]`: who is on call in a schedule now (or at `--at`), since
//! when and until when, and which layer or override decided; with `--week`, the rota for the seven days
//! from then, one line per shift. Times are shown in the schedule's time zone with their UTC offset, so a
//! rota across a DST change reads as the people on it live it.

use std::fmt::Display;

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Timelike, Utc};
use tocsin_core::config::{Config, Schedule};
use tocsin_core::oncall::{self, Decider};

use crate::{EX_DATAERR, Failure};

/// How far ahead `tocsin oncall` looks for the end of the current shift.
const HORIZON_DAYS: i64 = 366;

/// `tocsin oncall` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The schedule, by name.
    schedule: String,
    /// The instant to ask about, RFC 3339 like 2026-03-29T09:00:00Z (default: now).
    #[arg(long)]
    at: Option<String>,
    /// Print the rota for the seven days from `--at`: `START → END  PERSON  (layer N | override)`.
    #[arg(long)]
    week: bool,
}

/// Runs `tocsin oncall` on a loaded config.
pub fn run(config: &Config, args: &Args) -> Result<(), Failure> {
    let schedule = config.schedules.get(&args.schedule).ok_or_else(|| {
        let known: Vec<&str> = config.schedules.keys().map(String::as_str).collect();
        Failure::new(
            EX_DATAERR,
            format!(
                "unknown schedule {:?} (known: {})",
                args.schedule,
                known.join(", ")
            ),
        )
    })?;
    let at = match &args.at {
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                Failure::new(
                    EX_DATAERR,
                    format!("invalid --at {s:?} (expected RFC 3339 like 2026-03-29T09:00:00Z)"),
                )
            })?,
        // Whole seconds: the rota's first line starts here, and nobody wants nanoseconds on it.
        None => Utc::now().trunc_subsecs(0),
    };
    let lines = if args.week {
        week(config, schedule, at)
    } else {
        vec![now(config, schedule, at)]
    };
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// One line: who is on call at `at`, decided by what, and until when.
fn now(config: &Config, schedule: &Schedule, at: DateTime<Utc>) -> String {
    let tz = &schedule.timezone;
    let who = match oncall::assignment(config, schedule, at) {
        Some(a) => format!(
            "{} is on call in {} ({})",
            a.person, schedule.name, a.decider
        ),
        None => format!("nobody is on call in {}", schedule.name),
    };
    match oncall::next_handoff(config, schedule, at, Duration::days(HORIZON_DAYS)) {
        Some((t, next)) => format!(
            "{who} until {}, then {}",
            local(t, tz),
            next.as_deref().unwrap_or("nobody")
        ),
        None => format!("{who}, with no handoff in the next {HORIZON_DAYS} days"),
    }
}

/// One line per shift of the seven days from `at`.
fn week(config: &Config, schedule: &Schedule, at: DateTime<Utc>) -> Vec<String> {
    let tz = &schedule.timezone;
    // Seven days on the schedule's wall clock, so that a week across a DST change ends at the local time it
    // started, as a week of shifts does.
    let end = at
        .with_timezone(tz)
        .naive_local()
        .checked_add_signed(Duration::days(7))
        .and_then(|l| oncall::resolve_local(schedule.timezone, l))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    oncall::rota(config, schedule, at, end)
        .into_iter()
        .map(|s| {
            format!(
                "{} → {}  {}  ({})",
                local(s.start, tz),
                local(s.end, tz),
                s.person.as_deref().unwrap_or("nobody"),
                s.decider
                    .as_ref()
                    .map_or_else(|| "no layer applies".to_string(), Decider::to_string)
            )
        })
        .collect()
}

/// An instant on the schedule's wall clock with its offset: `Sun 2026-03-29 07:00 +01:00` (seconds only
/// when there are some).
fn local<Z: TimeZone>(t: DateTime<Utc>, tz: &Z) -> String
where
    Z::Offset: Display,
{
    let l = t.with_timezone(tz);
    if l.second() == 0 {
        l.format("%a %Y-%m-%d %H:%M %:z").to_string()
    } else {
        l.format("%a %Y-%m-%d %H:%M:%S %:z").to_string()
    }
}
