//! `tocsin render`, run as a user would run it: every channel printed under a header line, one channel
//! chosen by config name or by kind, and `--out` writing one file per channel.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use support::*;

use std::path::PathBuf;

/// A fresh, empty folder of its own under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tocsin-render-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn render_prints_every_channel_of_the_example_config_under_a_header() {
    let o = tocsin(&["render", "events/sns/metric-alarm.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for header in [
        "==> oncall-email (email) <==",
        "==> oncall-sms (sms) <==",
        "==> ops-slack (slack) <==",
        "==> teams (teams) <==",
        "==> pagerduty (pagerduty) <==",
        "==> audit-hook (webhook) <==",
    ] {
        assert!(out.contains(header), "no {header} in:\n{out}");
    }
    // Classified with the config, so the example's priority label shows up in the email.
    assert!(
        out.contains("Subject: [") && out.contains("orders-db-cpu-high is ALARM"),
        "{out}"
    );
    assert!(
        out.contains("https://tocsin.example/a/sample-ack-"),
        "{out}"
    );
    assert!(
        !out.contains("\"routing_key\""),
        "a rendered message never holds a routing key"
    );
}

#[test]
fn render_takes_a_channel_by_config_name_or_by_kind() {
    let o = tocsin(&[
        "render",
        "--channel",
        "ops-slack",
        "events/sns/metric-alarm.json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("==> ops-slack (slack) <==\n"), "{out}");
    assert_eq!(out.matches("==> ").count(), 1, "{out}");

    let o = tocsin(&["render", "--channel", "sms", "events/sns/metric-alarm.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("==> oncall-sms (sms) <==\n"), "{out}");
    let sms = out.lines().nth(1).unwrap();
    assert!(
        sms.chars().count() <= 160 && sms.contains(" Ack: "),
        "{sms}"
    );
}

#[test]
fn render_without_a_channel_of_some_kind_previews_that_kind_anyway() {
    let dir = temp_dir("slack-only");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("tocsin.yaml");
    std::fs::write(
        &config,
        "channels:\n  s: {type: slack, webhook_url: {env: S}, default_to: [\"#x\"]}\nroute: {notify: [{channel: s}]}\n",
    )
    .unwrap();
    let o = tocsin(&[
        "render",
        "--config",
        config.to_str().unwrap(),
        "events/sns/metric-alarm.json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("==> s (slack) <=="), "{out}");
    assert!(
        out.contains("==> teams (teams) <==") && out.contains("==> sms (sms) <=="),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn render_with_out_writes_one_file_per_channel() {
    let dir = temp_dir("out");
    let o = tocsin(&[
        "render",
        "--out",
        dir.to_str().unwrap(),
        "events/sns/metric-alarm.json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "email.html",
        "email.txt",
        "slack.json",
        "teams.json",
        "pagerduty.json",
        "webhook.json",
        "sms.txt",
    ] {
        let p = dir.join(f);
        let content =
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if f.ends_with(".json") {
            let v: serde_json::Value = serde_json::from_str(&content).unwrap();
            assert!(content.contains("\n  "), "{f} is pretty-printed");
            assert!(v.is_object(), "{f}");
        }
    }
    let html = std::fs::read_to_string(dir.join("email.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    let pd: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pagerduty.json")).unwrap())
            .unwrap();
    assert_eq!(pd["event_action"], "trigger");
    assert!(pd.get("routing_key").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn render_of_a_recovery_previews_the_resolution() {
    let o = tocsin(&["render", "--channel", "webhook", "events/sns/ok.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let json_start = out.find('{').unwrap();
    let body: serde_json::Value = serde_json::from_str(&out[json_start..]).unwrap();
    assert_eq!(body["type"], "alert.resolved");
    assert_eq!(body["status"], "resolved");
}

#[test]
fn render_rejects_an_unknown_channel_and_a_bad_event() {
    let o = tocsin(&[
        "render",
        "--channel",
        "carrier-pigeon",
        "events/sns/metric-alarm.json",
    ]);
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("error: --channel carrier-pigeon"),
        "{}",
        stderr(&o)
    );

    let dir = temp_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, b"{\"not\": \"an event\"}").unwrap();
    let o = tocsin(&["render", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
