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

/// `tocsin replay ... | head`: the reader goes away before the timeline is written. The replay stops
/// quietly with success, where `println!` panicked with a backtrace on the broken pipe.
#[test]
fn a_replay_whose_reader_goes_away_stops_quietly() {
    let mut child = command()
        .args(["replay", "events/scenario/incident"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the replay (config, parsing, routing) gets to its first line.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{:?}: {err}", o.status);
    assert!(!err.contains("panicked"), "{err}");
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

/// One alert `tocsin parse` must print: its source, alarm name and state.
type Expected = (&'static str, &'static str, &'static str);

/// Every fixture of the EventBridge sources beyond CloudWatch alarms, with what `tocsin parse` must
/// print for it: the source, the alarm name and the state of each alert, in order (none for an event
/// deliberately skipped).
const EVENT_FIXTURES: &[(&str, &[Expected])] = &[
    (
        "autoscaling/instance-refresh-failed.json",
        &[("autoscaling", "web-asg-instance-refresh", "ALARM")],
    ),
    (
        "autoscaling/launch-successful.json",
        &[("autoscaling", "web-asg-launch", "OK")],
    ),
    (
        "autoscaling/launch-unsuccessful.json",
        &[("autoscaling", "web-asg-launch", "ALARM")],
    ),
    (
        "autoscaling/terminate-unsuccessful.json",
        &[("autoscaling", "batch-asg-terminate", "ALARM")],
    ),
    ("ec2/instance-pending.json", &[]),
    (
        "ec2/instance-running.json",
        &[("ec2", "i-0b1c2d3e4f5a60001", "OK")],
    ),
    (
        "ec2/instance-stopped.json",
        &[("ec2", "i-0b1c2d3e4f5a60001", "ALARM")],
    ),
    (
        "ec2/spot-interruption.json",
        &[("ec2", "i-0b1c2d3e4f5a60077", "ALARM")],
    ),
    (
        "ecs/deployment-completed.json",
        &[("ecs", "checkout-api-deployment", "OK")],
    ),
    (
        "ecs/deployment-failed.json",
        &[("ecs", "checkout-api-deployment", "ALARM")],
    ),
    ("ecs/deployment-in-progress.json", &[]),
    (
        "ecs/service-action-error.json",
        &[("ecs", "checkout-api", "ALARM")],
    ),
    (
        "ecs/service-action-warn.json",
        &[("ecs", "search-api", "ALARM")],
    ),
    (
        "ecs/service-steady-state.json",
        &[("ecs", "checkout-api", "OK")],
    ),
    ("ecs/task-running.json", &[]),
    (
        "ecs/task-stopped.json",
        &[("ecs", "checkout-api-task-stopped", "ALARM")],
    ),
    ("eventbridge-other/cloudwatch-alarm-config-change.json", &[]),
    (
        "eventbridge-other/codepipeline-failed.json",
        &[("generic", "checkout-release-pipeline", "ALARM")],
    ),
    (
        "eventbridge-other/custom-order-failed.json",
        &[("generic", "Order Processing Failed", "ALARM")],
    ),
    (
        "guardduty/finding-archived.json",
        &[("guardduty", "CryptoCurrency:EC2/BitcoinTool.B!DNS", "OK")],
    ),
    (
        "guardduty/finding-high.json",
        &[("guardduty", "CryptoCurrency:EC2/BitcoinTool.B!DNS", "ALARM")],
    ),
    (
        "guardduty/finding-low.json",
        &[("guardduty", "Policy:IAMUser/RootCredentialUsage", "ALARM")],
    ),
    (
        "guardduty/finding-medium.json",
        &[("guardduty", "Recon:EC2/PortProbeUnprotectedPort", "ALARM")],
    ),
    (
        "health/abuse.json",
        &[("health", "AWS_ABUSE_DOS_REPORT", "ALARM")],
    ),
    (
        "health/account-notification.json",
        &[("health", "AWS_BILLING_NOTIFICATION", "ALARM")],
    ),
    ("health/backup-region-copy.json", &[]),
    (
        "health/investigation.json",
        &[("health", "AWS_LAMBDA_OPERATIONAL_ISSUE", "ALARM")],
    ),
    (
        "health/issue-closed.json",
        &[("health", "AWS_EC2_OPERATIONAL_ISSUE", "OK")],
    ),
    (
        "health/issue-open.json",
        &[("health", "AWS_EC2_OPERATIONAL_ISSUE", "ALARM")],
    ),
    (
        "health/issue-resent-unchanged.json",
        &[("health", "AWS_EC2_OPERATIONAL_ISSUE", "ALARM")],
    ),
    (
        "health/issue-updated.json",
        &[("health", "AWS_EC2_OPERATIONAL_ISSUE", "ALARM")],
    ),
    (
        "health/organizational-view.json",
        &[("health", "AWS_RDS_OPERATIONAL_ISSUE", "ALARM")],
    ),
    (
        "health/paged/page-1-of-2.json",
        &[(
            "health",
            "AWS_EC2_INSTANCE_STORE_DRIVE_PERFORMANCE_DEGRADED",
            "ALARM",
        )],
    ),
    (
        "health/paged/page-2-of-2.json",
        &[(
            "health",
            "AWS_EC2_INSTANCE_STORE_DRIVE_PERFORMANCE_DEGRADED",
            "ALARM",
        )],
    ),
    (
        "health/public-issue-open.json",
        &[("health", "AWS_LAMBDA_OPERATIONAL_ISSUE", "ALARM")],
    ),
    (
        "health/scheduled-change-upcoming.json",
        &[(
            "health",
            "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
            "ALARM",
        )],
    ),
    (
        "rds/cluster-failover-completed.json",
        &[("rds", "ledger-aurora", "OK")],
    ),
    (
        "rds/cluster-failover-started.json",
        &[("rds", "ledger-aurora", "ALARM")],
    ),
    (
        "rds/instance-failover-completed.json",
        &[("rds", "orders-db", "OK")],
    ),
    (
        "rds/instance-failover-started.json",
        &[("rds", "orders-db", "ALARM")],
    ),
    (
        "rds/instance-low-storage.json",
        &[("rds", "reporting-db", "ALARM")],
    ),
    (
        "securityhub/finding-archived.json",
        &[(
            "securityhub",
            "S3 general purpose buckets should block public access",
            "OK",
        )],
    ),
    (
        "securityhub/findings-imported.json",
        &[
            (
                "securityhub",
                "S3 general purpose buckets should block public access",
                "ALARM",
            ),
            (
                "securityhub",
                "Hardware MFA should be enabled for the root user",
                "OK",
            ),
        ],
    ),
    (
        "synthetics/canary-run-failure.json",
        &[("synthetics", "checkout-journey", "ALARM")],
    ),
    (
        "synthetics/canary-run-success.json",
        &[("synthetics", "checkout-journey", "OK")],
    ),
    (
        "synthetics/canary-status-error.json",
        &[("synthetics", "login-api", "ALARM")],
    ),
];

fn fixtures_under(dir: &std::path::Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            fixtures_under(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            let rel = p.strip_prefix(root().join("events")).unwrap();
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn parse_gives_the_canonical_alerts_of_every_eventbridge_source_fixture() {
    let mut on_disk = Vec::new();
    for dir in [
        "health",
        "synthetics",
        "ecs",
        "rds",
        "ec2",
        "autoscaling",
        "guardduty",
        "securityhub",
        "eventbridge-other",
    ] {
        fixtures_under(&root().join("events").join(dir), &mut on_disk);
    }
    on_disk.sort();
    let listed: Vec<String> = EVENT_FIXTURES.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        on_disk, listed,
        "every fixture is listed here, in name order"
    );
    for (file, want) in EVENT_FIXTURES {
        let o = tocsin(&["parse", &format!("events/{file}")]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let got: Vec<(&str, &str, &str)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["source"].as_str().unwrap(),
                    a["alarm_name"].as_str().unwrap(),
                    a["state"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(&got[..], *want, "{file}");
        for a in v.as_array().unwrap() {
            assert_eq!(a["transport"], "eventbridge", "{file}");
            assert_eq!(a["event_id"].as_str().unwrap().len(), 32, "{file}");
            assert_eq!(a["fingerprint"].as_str().unwrap().len(), 32, "{file}");
            assert!(
                a["state_changed_at"].as_str().unwrap().ends_with('Z'),
                "{file}"
            );
            assert!(!a["reason"].as_str().unwrap().is_empty(), "{file}");
            assert!(a["labels"]["priority"].is_string(), "classified: {file}");
        }
        if want.is_empty() {
            let err = stderr(&o);
            assert!(err.starts_with("note: skipped: "), "{file}: {err}");
            assert_eq!(err.lines().count(), 1, "{file}: {err}");
        }
    }
}

#[test]
fn parse_reads_health_regions_accounts_and_pages_as_documented() {
    let o = tocsin(&["parse", "events/health/organizational-view.json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v[0]["region"], "eu-central-1",
        "the impacted region, not the delivery region"
    );
    assert_eq!(v[0]["account_id"], "111122223333", "the affected account");
    assert_eq!(v[0]["labels"]["delivery_account"], "999988887777");
    assert_eq!(v[0]["severity"], "high");
    let o = tocsin(&["parse", "events/health/paged/page-1-of-2.json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["labels"]["health_pages"], "1 of 2");
    assert_eq!(v[0]["labels"]["affected_entity_count"], "3");
}

#[test]
fn replay_of_the_health_folder_pages_for_an_issue_and_again_only_for_news() {
    let o = tocsin(&["replay", "--json", "events/health"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |name: &str| -> Vec<(String, String, String)> {
        lines
            .iter()
            .filter(|l| l["alarm_name"] == name)
            .map(|l| {
                (
                    l["at"].as_str().unwrap().to_owned(),
                    l["action"].as_str().unwrap().to_owned(),
                    l["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let issue = of("AWS_EC2_OPERATIONAL_ISSUE");
    let actions: Vec<(&str, &str)> = issue
        .iter()
        .map(|(at, action, _)| (&at[11..16], action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("08:05", "open"),
            ("08:05", "group"),
            ("08:05", "notify"),
            ("08:35", "repeat"),
            ("08:35", "notify"),
            ("08:50", "repeat"),
            ("09:40", "resolve"),
            ("09:40", "group"),
            ("09:40", "notify"),
        ],
        "paged when opened (in its group on the example config's catch-all), told again when the \
         description and entities changed, not when resent unchanged, told of the resolution in \
         the group's update: {issue:?}"
    );
    assert!(
        issue[4].2.starts_with("content changed (health_digest)"),
        "{:?}",
        issue[4]
    );
    // The two pages open one alert; the backup-region copy is a skip line, not a second page.
    let paged = of("AWS_EC2_INSTANCE_STORE_DRIVE_PERFORMANCE_DEGRADED");
    assert_eq!(
        paged.iter().filter(|l| l.1 == "open").count(),
        1,
        "{paged:?}"
    );
    let skips: Vec<&serde_json::Value> = lines.iter().filter(|l| l["action"] == "skip").collect();
    assert_eq!(skips.len(), 1, "{skips:?}");
    assert!(
        skips[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("backup-region-copy.json")
    );
    assert!(
        skips[0]["reason"]
            .as_str()
            .unwrap()
            .contains("backup region")
    );
    for name in [
        "AWS_LAMBDA_OPERATIONAL_ISSUE",
        "AWS_ABUSE_DOS_REPORT",
        "AWS_RDS_OPERATIONAL_ISSUE",
        "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
        "AWS_BILLING_NOTIFICATION",
    ] {
        assert!(of(name).iter().any(|l| l.1 == "notify"), "{name} is routed");
    }
}

#[test]
fn replay_of_one_page_alone_still_routes_it_and_says_it_is_incomplete() {
    let o = tocsin(&["replay", "--json", "events/health/paged/page-2-of-2.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("\"action\":\"skip\""), "{out}");
    assert!(out.contains("received 1 of 2 pages"), "{out}");
    assert!(out.contains("\"action\":\"notify\""), "{out}");
}
