//! The `tocsin` command contract (DESIGN.md), run as a user would run it: exit codes, one-line errors,
//! `FILE:LINE:COL` config problems, the replay timeline in both forms.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use support::*;

use std::io::Write;

#[test]
fn parse_prints_the_canonical_alerts_as_a_json_array() {
    let o = tocsin(&["parse", "events/sns/multi-record.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    for a in arr {
        for field in [
            "event_id",
            "fingerprint",
            "source",
            "transport",
            "alarm_name",
            "alarm_arn",
            "account_id",
            "region",
            "state",
            "previous_state",
            "state_changed_at",
            "reason",
            "kind",
            "namespace",
            "metric_name",
            "dimensions",
            "threshold",
            "severity",
            "description",
            "labels",
        ] {
            assert!(a.get(field).is_some(), "field {field} missing in {a}");
        }
        assert!(a["state_changed_at"].as_str().unwrap().ends_with('Z'));
    }
}

#[test]
fn parse_reads_standard_input_and_classifies_with_the_example_config() {
    let bytes =
        std::fs::read(root().join("events/scenario/incident/01-checkout-5xx-alarm.sns.json"))
            .unwrap();
    let o = tocsin_stdin(&["parse", "-"], &bytes);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["severity"], "critical");
    assert_eq!(v[0]["labels"]["service"], "checkout");
}

#[test]
fn every_bad_event_exits_65_with_one_error_line() {
    let dir = root().join("events/bad");
    let mut n = 0;
    for f in std::fs::read_dir(dir).unwrap() {
        let f = f.unwrap().path();
        let o = tocsin(&["parse", f.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(65), "{}: {err}", f.display());
        assert_eq!(err.lines().count(), 1, "{}: {err}", f.display());
        assert!(err.starts_with("error: "), "{err}");
        assert!(o.stdout.is_empty());
        n += 1;
    }
    assert!(n >= 8, "the bad-input fixtures are there ({n})");
}

#[test]
fn oversized_and_garbage_input_never_panics() {
    let mut big = b"{\"Records\":[".to_vec();
    big.extend(std::iter::repeat_n(b' ', 300_000));
    big.extend(b"]}");
    for input in [
        big,
        vec![0xff, 0xfe, 0x00],
        b"{\"Records\":[{\"Sns\":".to_vec(),
        b"[]".to_vec(),
        Vec::new(),
    ] {
        let o = tocsin_stdin(&["parse"], &input);
        assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1);
    }
}

#[test]
fn a_missing_file_is_reported_not_panicked() {
    let o = tocsin(&["parse", "events/does-not-exist.json"]);
    assert_eq!(o.status.code(), Some(66));
    assert!(stderr(&o).starts_with("error: events/does-not-exist.json"));
}

#[test]
fn check_config_accepts_the_example() {
    let o = tocsin(&["check-config", "infra/tocsin.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn check_config_reports_every_problem_as_file_line_col() {
    let dir = root().join("tests/configs");
    let mut n = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        let rel = format!("tests/configs/{}", f.file_name().unwrap().to_str().unwrap());
        let o = tocsin(&["check-config", &rel]);
        assert_eq!(o.status.code(), Some(78), "{rel} should be rejected");
        let err = stderr(&o);
        assert!(!err.is_empty());
        for line in err.lines() {
            let mut parts = line.splitn(4, ':');
            assert_eq!(parts.next(), Some(rel.as_str()), "{line}");
            let l: usize = parts.next().unwrap().parse().unwrap();
            let c: usize = parts.next().unwrap().parse().unwrap();
            assert!(l >= 1 && c >= 1, "{line}");
            assert!(parts.next().unwrap().len() > 2, "{line}");
        }
        n += 1;
    }
    assert!(n >= 4);
    let many = tocsin(&["check-config", "tests/configs/many-problems.yaml"]);
    assert!(
        stderr(&many).lines().count() >= 3,
        "all problems at once: {}",
        stderr(&many)
    );
}

#[test]
fn replay_json_lines_carry_the_contract_fields() {
    let o = tocsin(&["replay", "--json", "events/scenario/incident"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    let mut last = String::new();
    for l in &lines {
        let at = l["at"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
        assert!(at >= last.as_str(), "lines in time order");
        last = at.to_string();
        assert!(l["alert"].is_string());
        assert!(!l["reason"].as_str().unwrap().is_empty());
        if l["action"] == "notify" || l["action"] == "escalate" {
            assert!(l["channel"].is_string() && l["target"].is_string(), "{l}");
        }
        if l["action"] == "escalate" {
            assert!(l["level"].is_u64(), "{l}");
        }
    }
    let actions: Vec<&str> = lines
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    for a in ["open", "notify", "dedup", "repeat", "resolve"] {
        assert!(actions.contains(&a), "the incident shows {a}: {actions:?}");
    }
}

#[test]
fn replay_prints_a_readable_timeline_and_until_stops_the_clock() {
    let o = tocsin(&["replay", "events/scenario/incident"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("checkout-api-5xx"), "{out}");
    assert!(
        out.contains(" → "),
        "notifications name channel and target: {out}"
    );
    let full = out.lines().count();
    let short = tocsin(&[
        "replay",
        "--until",
        "2026-11-20T02:12:00Z",
        "events/scenario/incident",
    ]);
    assert!(short.status.success());
    let short_out = stdout(&short);
    assert!(short_out.lines().count() < full);
    assert!(
        !short_out.contains("search-latency-p99"),
        "nothing after --until: {short_out}"
    );
}

#[test]
fn replay_keeps_bad_inputs_as_reject_lines_and_fails() {
    let o = tocsin(&[
        "replay",
        "--json",
        "events/bad/unknown-state.json",
        "events/sns/metric-alarm.json",
    ]);
    assert_eq!(o.status.code(), Some(65));
    let out = stdout(&o);
    let reject: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(reject["action"], "reject");
    assert!(
        reject["reason"].as_str().unwrap().contains("unknown state"),
        "{reject}"
    );
    assert_eq!(reject["file"], "events/bad/unknown-state.json");
    assert!(
        out.contains("\"action\":\"open\""),
        "the good event still runs: {out}"
    );
}

#[test]
fn a_broken_config_stops_replay_with_exit_78() {
    let o = tocsin(&[
        "replay",
        "--config",
        "tests/configs/unknown-key.yaml",
        "events/sns/metric-alarm.json",
    ]);
    assert_eq!(o.status.code(), Some(78));
    assert!(stderr(&o).starts_with("tests/configs/unknown-key.yaml:"));
}

#[test]
fn replay_on_dynamodb_keeps_state_across_runs() {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        assert!(
            std::env::var("TOCSIN_REQUIRE_AWS").as_deref() != Ok("1"),
            "TOCSIN_REQUIRE_AWS=1 but AWS_ENDPOINT_URL is not set"
        );
        let _ = writeln!(std::io::stderr(), "skipped: AWS_ENDPOINT_URL is not set");
        return;
    };
    assert!(
        endpoint.starts_with("http://127.0.0.1"),
        "tests only talk to a local emulator"
    );
    let table = format!("tocsin-cli-replay-{}", std::process::id());
    let args = [
        "replay",
        "--json",
        "--store",
        "dynamodb",
        "--table",
        &table,
        "events/scenario/incident",
    ];
    let first = tocsin(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    let first_out = stdout(&first);
    assert!(first_out.contains("\"action\":\"open\""), "{first_out}");
    // The second run finds every transition already processed in the table: nothing pages again.
    let second = tocsin(&args);
    assert!(second.status.success(), "{}", stderr(&second));
    let lines: Vec<serde_json::Value> = stdout(&second)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "one line per event: {lines:?}");
    assert!(lines.iter().all(|l| l["action"] == "dedup"), "{lines:?}");
}
