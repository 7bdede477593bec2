//! `tocsin oncall`, run as a user would run it, against `infra/tocsin.yaml`'s `primary` schedule: alice and
//! bob a week each from Monday 09:00 London time, carol (in New York) on London nights, carol over
//! Christmas 2026 by override.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use support::*;

/// The one line `tocsin oncall primary --at AT` prints.
fn primary_at(at: &str) -> String {
    let o = tocsin(&["oncall", "primary", "--at", at]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    out.trim_end().to_string()
}

/// The lines of `tocsin oncall primary --week --at AT`.
fn primary_week(at: &str) -> Vec<String> {
    let o = tocsin(&["oncall", "primary", "--week", "--at", at]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).lines().map(String::from).collect()
}

#[test]
fn oncall_names_the_person_the_deciding_layer_and_the_next_handoff() {
    // Wednesday 7 January 2026, midday: alice's week (the 53rd since 6 January 2025 starts on the 5th).
    assert_eq!(
        primary_at("2026-01-07T12:00:00Z"),
        "alice is on call in primary (layer 1) until Wed 2026-01-07 22:00 +00:00, then carol"
    );
    // The Monday 09:00 handoff to bob.
    assert_eq!(
        primary_at("2026-01-12T08:59:59Z"),
        "alice is on call in primary (layer 1) until Mon 2026-01-12 09:00 +00:00, then bob"
    );
    assert_eq!(
        primary_at("2026-01-12T09:00:00Z"),
        "bob is on call in primary (layer 1) until Mon 2026-01-12 22:00 +00:00, then carol"
    );
}

#[test]
fn carol_covers_london_nights_in_winter_and_in_summer_time() {
    assert_eq!(
        primary_at("2026-01-07T23:00:00Z"),
        "carol is on call in primary (layer 2) until Thu 2026-01-08 07:00 +00:00, then alice"
    );
    // 22:30 BST is 21:30 UTC: already night in London.
    assert_eq!(
        primary_at("2026-07-15T21:30:00Z"),
        "carol is on call in primary (layer 2) until Thu 2026-07-16 07:00 +01:00, then bob"
    );
    // 07:30 BST is 06:30 UTC: the night is over, though it is not yet 07:00 UTC.
    assert_eq!(
        primary_at("2026-07-15T06:30:00Z"),
        "bob is on call in primary (layer 1) until Wed 2026-07-15 22:00 +01:00, then carol"
    );
}

#[test]
fn the_christmas_override_wins_over_the_daytime_rotation() {
    assert_eq!(
        primary_at("2026-12-25T12:00:00Z"),
        "carol is on call in primary (override) until Sun 2026-12-27 07:00 +00:00, then alice"
    );
    // Just before it starts, alice has the day.
    assert_eq!(
        primary_at("2026-12-23T12:00:00Z"),
        "alice is on call in primary (layer 1) until Wed 2026-12-23 22:00 +00:00, then carol"
    );
}

#[test]
fn an_rfc_3339_at_with_an_offset_is_the_same_instant() {
    assert_eq!(
        primary_at("2026-01-07T07:00:00-05:00"),
        primary_at("2026-01-07T12:00:00Z")
    );
}

#[test]
fn oncall_without_at_reports_the_present() {
    let o = tocsin(&["oncall", "primary"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(" is on call in primary ("), "{out}");
    assert!(out.contains(" until "), "{out}");
}

#[test]
fn an_unknown_schedule_is_bad_input_naming_the_known_ones() {
    let o = tocsin(&["oncall", "secondary"]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "error: unknown schedule \"secondary\" (known: primary)\n"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn an_unreadable_at_is_bad_input() {
    let o = tocsin(&["oncall", "primary", "--at", "next tuesday"]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: invalid --at \"next tuesday\""),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn oncall_reads_the_config_given_by_the_config_option() {
    let path = std::env::temp_dir().join(format!("tocsin-oncall-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "people:\n  zed: {email: zed@example.com}\nschedules:\n  nightly:\n    timezone: Asia/Kolkata\n    \
         layers:\n      - {rotation: daily, start: \"2026-01-01T09:00\", people: [zed]}\nroute:\n  notify: []\n",
    )
    .unwrap();
    let config = path.to_str().unwrap();
    let known = tocsin(&["oncall", "--config", config, "primary"]);
    let one = tocsin(&[
        "oncall",
        "--config",
        config,
        "nightly",
        "--at",
        "2026-02-01T00:00:00Z",
    ]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(known.status.code(), Some(65));
    assert_eq!(
        stderr(&known),
        "error: unknown schedule \"primary\" (known: nightly)\n"
    );
    assert!(one.status.success(), "{}", stderr(&one));
    // One person, no restrictions: nobody else ever takes over.
    assert_eq!(
        stdout(&one),
        "zed is on call in nightly (layer 1), with no handoff in the next 366 days\n"
    );
}

/// A `--week` line split into its start, end, person and decider.
fn shift(line: &str) -> (String, String, String, String) {
    let (times, rest) = line.split_once("  ").unwrap();
    let (start, end) = times.split_once(" → ").unwrap();
    let (person, decider) = rest.split_once("  ").unwrap();
    let decider = decider
        .strip_prefix('(')
        .and_then(|d| d.strip_suffix(')'))
        .unwrap();
    (start.into(), end.into(), person.into(), decider.into())
}

#[test]
fn week_prints_one_line_per_shift_covering_seven_days_from_at() {
    let lines = primary_week("2026-01-07T12:00:00Z");
    let shifts: Vec<_> = lines.iter().map(|l| shift(l)).collect();
    // Wednesday midday to Wednesday midday: alice by day, carol by night, bob from Monday 09:00.
    assert_eq!(shifts.len(), 16, "{lines:#?}");
    assert_eq!(
        lines[0],
        "Wed 2026-01-07 12:00 +00:00 → Wed 2026-01-07 22:00 +00:00  alice  (layer 1)"
    );
    assert_eq!(
        lines[1],
        "Wed 2026-01-07 22:00 +00:00 → Thu 2026-01-08 07:00 +00:00  carol  (layer 2)"
    );
    assert!(lines.contains(
        &"Mon 2026-01-12 07:00 +00:00 → Mon 2026-01-12 09:00 +00:00  alice  (layer 1)".to_string()
    ));
    assert!(lines.contains(
        &"Mon 2026-01-12 09:00 +00:00 → Mon 2026-01-12 22:00 +00:00  bob  (layer 1)".to_string()
    ));
    assert_eq!(shifts.last().unwrap().1, "Wed 2026-01-14 12:00 +00:00");
    for pair in shifts.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "shifts must meet: {pair:?}");
        assert_ne!(pair[0].2, pair[1].2, "consecutive shifts differ: {pair:?}");
    }
    for (_, _, person, decider) in &shifts {
        match person.as_str() {
            "carol" => assert_eq!(decider, "layer 2"),
            "alice" | "bob" => assert_eq!(decider, "layer 1"),
            other => panic!("unexpected person {other}"),
        }
    }
}

#[test]
fn a_week_across_the_spring_clock_change_shows_both_offsets_and_keeps_local_handoffs() {
    let lines = primary_week("2026-03-26T00:00:00Z");
    for expected in [
        "Thu 2026-03-26 00:00 +00:00 → Thu 2026-03-26 07:00 +00:00  carol  (layer 2)",
        // The night the clocks go forward ends at 07:00 BST, 06:00 UTC.
        "Sat 2026-03-28 22:00 +00:00 → Sun 2026-03-29 07:00 +01:00  carol  (layer 2)",
        "Sun 2026-03-29 07:00 +01:00 → Sun 2026-03-29 22:00 +01:00  bob  (layer 1)",
        // The Monday handoff stays at 09:00 London time.
        "Mon 2026-03-30 07:00 +01:00 → Mon 2026-03-30 09:00 +01:00  bob  (layer 1)",
        "Mon 2026-03-30 09:00 +01:00 → Mon 2026-03-30 22:00 +01:00  alice  (layer 1)",
        // Seven days on the London wall clock: Thursday midnight to Thursday midnight.
        "Wed 2026-04-01 22:00 +01:00 → Thu 2026-04-02 00:00 +01:00  carol  (layer 2)",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "missing {expected:?} in {lines:#?}"
        );
    }
    assert_eq!(lines.len(), 16, "{lines:#?}");
}

#[test]
fn a_week_across_the_autumn_clock_change_ends_the_night_at_0700_gmt() {
    let lines = primary_week("2026-10-22T12:00:00Z");
    for expected in [
        "Sat 2026-10-24 22:00 +01:00 → Sun 2026-10-25 07:00 +00:00  carol  (layer 2)",
        "Mon 2026-10-26 07:00 +00:00 → Mon 2026-10-26 09:00 +00:00  bob  (layer 1)",
        "Mon 2026-10-26 09:00 +00:00 → Mon 2026-10-26 22:00 +00:00  alice  (layer 1)",
        // Seven days on the London wall clock: 13:00 BST to 13:00 GMT, an hour more than 168.
        "Thu 2026-10-29 07:00 +00:00 → Thu 2026-10-29 13:00 +00:00  alice  (layer 1)",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "missing {expected:?} in {lines:#?}"
        );
    }
}

#[test]
fn a_week_over_christmas_shows_the_override() {
    let lines = primary_week("2026-12-21T12:00:00Z");
    assert!(
        lines.contains(
            &"Wed 2026-12-23 22:00 +00:00 → Thu 2026-12-24 00:00 +00:00  carol  (layer 2)"
                .to_string()
        ),
        "{lines:#?}"
    );
    assert!(
        lines.contains(
            &"Thu 2026-12-24 00:00 +00:00 → Sun 2026-12-27 00:00 +00:00  carol  (override)"
                .to_string()
        ),
        "{lines:#?}"
    );
    assert!(
        lines.contains(
            &"Sun 2026-12-27 00:00 +00:00 → Sun 2026-12-27 07:00 +00:00  carol  (layer 2)"
                .to_string()
        ),
        "{lines:#?}"
    );
}
