//! Noise control through the command: `replay --silences`, `replay --explain`, the `group` and
//! `suppress` timeline actions, and `tocsin silence add|list|expire` on DynamoDB (moto).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::io::Write;

use support::*;

#[test]
fn explain_says_a_silenced_alert_was_held_by_the_silence_and_paged_when_it_ended() {
    let o = tocsin(&[
        "replay",
        "--config",
        "infra/tocsin.yaml",
        "--silences",
        "tests/silences/search-maintenance.json",
        "--explain",
        "search-latency-p99",
        "events/scenario/incident",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("search-latency-p99 (50239dfa")
            && first.contains("paged: 1 notification(s), first at 2026-11-20T03:00:30.000Z"),
        "{out}"
    );
    assert!(
        out.contains("suppress        search-latency-p99 [medium]  — silenced: silence ")
            && out.contains(
                "by alice (search reindex, expect latency) until 2026-11-20T03:00:00.000Z"
            ),
        "{out}"
    );
    // Only that alert: no checkout lines.
    assert!(!out.contains("checkout-api-5xx"), "{out}");
}

#[test]
fn explain_of_an_alert_not_in_the_replay_is_one_error_line() {
    let o = tocsin(&[
        "replay",
        "--explain",
        "no-such-alarm",
        "events/scenario/incident",
    ]);
    assert_eq!(o.status.code(), Some(65));
    assert_eq!(
        stderr(&o).trim(),
        "error: no alert named \"no-such-alarm\" or with an id starting so in this replay"
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn a_bad_silence_file_is_refused_with_its_reason() {
    let dir = std::env::temp_dir().join(format!("tocsin-silences-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::File::create(&bad)
        .unwrap()
        .write_all(br#"[{"matchers": ["alarm_name =~ \"(\""], "created_by": "a", "ends_at": "2026-11-20T03:00:00Z"}]"#)
        .unwrap();
    let o = tocsin(&[
        "replay",
        "--silences",
        bad.to_str().unwrap(),
        "events/scenario/incident",
    ]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("error: silence 1: matcher 1: invalid regex `(`"),
        "{}",
        stderr(&o)
    );
    let not_json = dir.join("not.json");
    std::fs::write(&not_json, "{").unwrap();
    let o = tocsin(&[
        "replay",
        "--silences",
        not_json.to_str().unwrap(),
        "events/scenario/incident",
    ]);
    assert_eq!(o.status.code(), Some(65));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn the_json_timeline_has_group_actions_and_suppressions_naming_their_rule() {
    let o = tocsin(&[
        "replay",
        "--json",
        "--silences",
        "tests/silences/search-maintenance.json",
        "events/scenario/incident",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|l| {
        l["action"] == "group"
            && l["reason"]
                .as_str()
                .unwrap()
                .starts_with("grouped on route \"everything\" by {service=\"checkout\"}")
    }));
    assert!(lines.iter().any(|l| {
        l["action"] == "suppress"
            && l["alert"].as_str().unwrap().starts_with("50239dfa")
            && l["reason"]
                .as_str()
                .unwrap()
                .starts_with("silenced: silence ")
    }));
}

#[test]
fn silences_are_added_listed_and_expired_on_dynamodb() {
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
    let table = format!("tocsin-cli-silence-{}", std::process::id());
    let add = tocsin(&[
        "silence",
        "add",
        "--table",
        &table,
        "--json",
        "--match",
        "service = search",
        "--match",
        "region = eu-west-1",
        "--by",
        "alice",
        "--comment",
        "reindex",
        "--for",
        "2h",
    ]);
    assert!(add.status.success(), "{}", stderr(&add));
    let made: serde_json::Value = serde_json::from_str(stdout(&add).trim()).unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["matchers"][1], "region = eu-west-1");
    let list = tocsin(&["silence", "list", "--table", &table]);
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    assert!(text.starts_with(&format!("{id}  active")), "{text}");
    assert!(
        text.contains("by alice  [service = search, region = eu-west-1]  reindex"),
        "{text}"
    );
    let bad = tocsin(&[
        "silence",
        "add",
        "--table",
        &table,
        "--match",
        "severity = loud",
        "--by",
        "a",
        "--for",
        "1h",
    ]);
    assert_eq!(bad.status.code(), Some(65));
    assert!(
        stderr(&bad).contains("matcher 1: invalid matcher `severity = loud`"),
        "{}",
        stderr(&bad)
    );
    let expire = tocsin(&["silence", "expire", "--table", &table, &id, "--by", "bob"]);
    assert!(expire.status.success(), "{}", stderr(&expire));
    assert!(
        stdout(&expire).starts_with(&format!("{id}  ended")),
        "{}",
        stdout(&expire)
    );
    let active = tocsin(&["silence", "list", "--table", &table]);
    assert!(stdout(&active).is_empty(), "{}", stdout(&active));
    let all = tocsin(&["silence", "list", "--table", &table, "--all", "--json"]);
    let v: serde_json::Value = serde_json::from_str(stdout(&all).trim()).unwrap();
    assert_eq!(v["expired_by"], "bob");
    let missing = tocsin(&[
        "silence", "expire", "--table", &table, "nope", "--by", "bob",
    ]);
    assert_eq!(missing.status.code(), Some(65));
    assert_eq!(stderr(&missing).trim(), "error: no silence \"nope\"");
}
