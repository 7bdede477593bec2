//! Loader tests: the example config, one test per class of problem (each pinned to its `line:col`), and
//! the broken samples under `tests/configs/`, whose header comments list the problems they must produce.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::model::Severity;

/// The problems a config has, as `LINE:COL: message`.
fn problems(yaml: &str) -> Vec<String> {
    match load(yaml) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// The single problem a config has.
fn problem(yaml: &str) -> String {
    let p = problems(yaml);
    assert_eq!(p.len(), 1, "expected one problem, got {p:#?}");
    p.into_iter().next().unwrap_or_default()
}

fn assert_problem(yaml: &str, at: &str, fragment: &str) {
    let p = problem(yaml);
    assert!(
        p.starts_with(&format!("{at}: ")) && p.contains(fragment),
        "expected `{at}: ...{fragment}...`, got `{p}`"
    );
}

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

#[test]
fn the_example_config_loads_with_every_channel_kind_and_its_routes() {
    let path = repo_file("infra/tocsin.yaml");
    let text = std::fs::read_to_string(&path).expect("infra/tocsin.yaml is readable");
    let config = load(&text).unwrap_or_else(|e| panic!("infra/tocsin.yaml has problems: {e:#?}"));

    let kinds: Vec<(&str, ChannelKind)> = config
        .channels
        .iter()
        .map(|(name, c)| (name.as_str(), c.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("audit-hook", ChannelKind::Webhook),
            ("oncall-email", ChannelKind::Email),
            ("oncall-sms", ChannelKind::Sms),
            ("ops-slack", ChannelKind::Slack),
            ("pagerduty", ChannelKind::Pagerduty),
            ("teams", ChannelKind::Teams),
        ]
    );
    assert_eq!(
        config.channels["ops-slack"].settings["webhook_url"],
        Setting::Secret("slack-webhook".into())
    );
    assert_eq!(
        config.channels["ops-slack"].default_to,
        vec![Recipient::Address("#ops-alerts".into())]
    );

    assert_eq!(config.route.name, "root");
    assert!(config.route.matchers.is_empty());
    assert_eq!(config.route.notify[0].channel, "ops-slack");
    let names: Vec<&str> = config
        .route
        .routes
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["critical", "payments-business-hours", "everything"]);
    let critical = &config.route.routes[0];
    assert!(critical.continue_matching);
    assert_eq!(critical.escalation.as_deref(), Some("critical"));
    assert_eq!(
        critical.notify[0].to,
        vec![Recipient::Schedule("primary".into())]
    );

    let policy = &config.escalation_policies["critical"];
    assert_eq!(policy.levels.len(), 2);
    assert_eq!(policy.levels[1].delay, Duration::from_secs(15 * 60));
    assert_eq!(policy.ack_timeout, Some(Duration::from_secs(30 * 60)));

    assert_eq!(config.defaults.timezone, chrono_tz::Tz::Europe__London);
    assert_eq!(config.services.len(), 2);
    assert_eq!(config.services[0].tier, 1);
    assert_eq!(config.severity_rules[0].severity, Severity::Critical);
    assert_eq!(config.people.len(), 4);
    assert!(config.time_windows.contains_key("business_hours"));
    assert!(config.time_windows.contains_key("nights"));
    assert_eq!(config.schedules["primary"].layers.len(), 2);
}

#[test]
fn a_minimal_config_takes_the_defaults() {
    let config = load("route: {}\n").expect("valid");
    assert_eq!(config.defaults.severity, Severity::Medium);
    assert_eq!(config.defaults.timezone, chrono_tz::Tz::UTC);
    assert_eq!(config.defaults.insufficient_data, InsufficientData::Ignore);
    assert!(config.defaults.severity_tags);
    assert_eq!(config.route.pos, Pos { line: 1, col: 8 });
}

#[test]
fn a_yaml_syntax_error_is_one_problem_at_its_position() {
    assert_problem("route:\n  notify: [\n", "3:1", "invalid yaml: ");
    assert_problem(
        "route: {}\nroute: {}\n",
        "2:1",
        "duplicate key `route` (first at 1:1)",
    );
    assert_problem("- route\n", "1:1", "must be a mapping");
}

#[test]
fn an_unknown_key_is_reported_at_the_key_with_the_keys_expected() {
    assert_problem(
        "defaults:\n  severty: high\nroute: {}\n",
        "2:3",
        "unknown key `severty` (expected `severity`, `timezone`, `insufficient_data`, `severity_tags`, `health_reminder`, `multi_time_series` or `runbook_hosts`)",
    );
    assert_problem(
        "route:\n  routes:\n    - nme: x\n",
        "3:7",
        "unknown key `nme`",
    );
}

#[test]
fn a_wrong_node_type_says_what_was_expected_and_what_was_found() {
    assert_problem(
        "route:\n  routes: {a: b}\n",
        "2:11",
        "expected a list, found a mapping",
    );
    assert_problem(
        "channels: [a]\nroute: {}\n",
        "1:11",
        "expected a mapping, found a list",
    );
    assert_problem(
        "people:\n  alice:\nroute: {}\n",
        "2:3",
        "`alice` has no definition",
    );
    assert_problem(
        "route:\n  notify:\n    - {channel: [x]}\n",
        "3:17",
        "expected a channel name, found a list",
    );
}

#[test]
fn a_key_with_a_line_break_is_quoted_on_one_line() {
    assert_problem("route: {}\n\"a\\nb\": 1\n", "2:1", "unknown key `a\\nb`");
    assert_problem(
        "\"a\\nb\": 1\n\"a\\nb\": 2\n",
        "2:1",
        "duplicate key `a\\nb`",
    );
}

#[test]
fn a_missing_required_key_is_reported_at_the_parent_mapping() {
    assert_problem("defaults: {}\n", "1:1", "missing key `route`");
    assert_problem(
        "severity_rules:\n  - match: ['a = b']\nroute: {}\n",
        "2:5",
        "missing key `severity`",
    );
    assert_problem(
        "channels:\n  ops: {webhook_url: {env: X}}\nroute: {}\n",
        "2:8",
        "missing key `type`",
    );
    assert_problem("route: {notify: [{}]}\n", "1:18", "missing key `channel`");
}

#[test]
fn dangling_channel_reference_is_reported_with_its_position() {
    assert_problem(
        "route:\n  notify: [{channel: ops-slak}]\n",
        "2:22",
        "unknown channel `ops-slak` (not defined under `channels`)",
    );
    let yaml = "\
people:
  al: {phone: \"+447700900001\"}
escalation_policies:
  p:
    levels:
      - targets: [{person: al}]
        channels: [sms]
route: {}
";
    assert_problem(yaml, "7:20", "unknown channel `sms`");
}

#[test]
fn dangling_people_schedule_window_and_policy_references_are_reported_at_each() {
    let yaml = "\
channels:
  mail: {type: email, from: a@example.com}
schedules:
  s:
    layers:
      - {rotation: daily, start: \"2026-01-01T09:00\", people: [alice, bob], restrictions: [weekends]}
    overrides:
      - {person: dave, start: \"2026-01-01T00:00:00Z\", end: \"2026-01-02T00:00:00Z\"}
route:
  escalation: paging
  active_during: [office]
  muted_during: [night]
  notify:
    - {channel: mail, to: [{person: erin}, {schedule: rota}]}
";
    assert_eq!(
        problems(yaml),
        [
            "6:63: unknown person `alice` (not defined under `people`)",
            "6:70: unknown person `bob` (not defined under `people`)",
            "6:91: unknown time window `weekends` (not defined under `time_windows`)",
            "8:18: unknown person `dave` (not defined under `people`)",
            "10:15: unknown escalation policy `paging` (not defined under `escalation_policies`)",
            "11:19: unknown time window `office` (not defined under `time_windows`)",
            "12:18: unknown time window `night` (not defined under `time_windows`)",
            "14:37: unknown person `erin` (not defined under `people`)",
            "14:55: unknown schedule `rota` (not defined under `schedules`)",
        ]
    );
}

#[test]
fn a_reference_to_a_broken_definition_is_not_reported_again() {
    let yaml = "\
channels:
  ops: {type: slak}
route:
  notify: [{channel: ops}]
";
    assert_problem(yaml, "2:15", "unknown channel type `slak`");
}

#[test]
fn an_invalid_regex_is_one_line_at_the_matcher() {
    let yaml = "\
services:
  - name: checkout
    match: ['alarm_name =~ \"checkout-(\"']
route: {}
";
    let p = problem(yaml);
    assert_eq!(p, "3:13: invalid regex `checkout-(`: unclosed group");
    assert!(!p.contains('\n'));
}

#[test]
fn an_unparseable_matcher_says_what_was_expected() {
    assert_problem(
        "route:\n  routes:\n    - match: ['alarm_name ~ x']\n",
        "3:15",
        "expected FIELD OP VALUE with OP one of =, !=, =~, !~",
    );
    assert_problem(
        "route:\n  routes:\n    - match: ['severity = crit']\n",
        "3:15",
        "`crit` is never a value of this field",
    );
}

#[test]
fn a_secret_inlined_is_rejected_and_the_error_does_not_contain_it() {
    let secret = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX";
    let yaml = format!(
        "channels:\n  ops: {{type: slack, webhook_url: \"{secret}\"}}\n  pd: {{type: pagerduty, routing_key: R0UT1NGK3Y}}\nroute: {{}}\n"
    );
    let p = problems(&yaml);
    assert_eq!(
        p,
        [
            "2:35: `webhook_url` is a secret and cannot be written inline: use {env: NAME} or {secret: NAME}",
            "3:38: `routing_key` is a secret and cannot be written inline: use {env: NAME} or {secret: NAME}",
        ]
    );
    assert!(
        p.iter()
            .all(|m| !m.contains("SECRET") && !m.contains("R0UT1NGK3Y"))
    );
}

#[test]
fn a_secret_reference_must_be_env_or_secret() {
    assert_problem(
        "channels:\n  t: {type: teams, webhook_url: {vault: x}}\nroute: {}\n",
        "2:34",
        "unknown key `vault` (expected `env` or `secret`)",
    );
    assert_problem(
        "channels:\n  t: {type: teams, webhook_url: {env: x, secret: y}}\nroute: {}\n",
        "2:33",
        "give one of `env` or `secret`, not both",
    );
}

#[test]
fn a_secret_pasted_where_its_reference_goes_is_not_echoed_either() {
    let yaml = "channels:\n  t: {type: teams, webhook_url: {env: \"https://x.example/SECRET\"}}\nroute: {}\n";
    let p = problem(yaml);
    assert!(
        p.starts_with("2:39: invalid environment variable name"),
        "{p}"
    );
    assert!(!p.contains("SECRET"), "{p}");
}

#[test]
fn settings_are_checked_per_channel_kind() {
    let yaml = "\
channels:
  mail: {type: email, webhook_url: {env: X}}
  slack: {type: slack, username: tocsin}
  hook: {type: webhook, url: {env: HOOK_URL}}
  sms: {type: sms}
route: {}
";
    assert_eq!(
        problems(yaml),
        [
            "2:9: an email channel needs `from`",
            "2:23: unknown setting `webhook_url` for an email channel (expected `type`, `default_to`, `fallback`, `from`, `reply_to`, `configuration_set` or `region`)",
            "3:10: a slack channel needs `webhook_url` or `bot_token`",
            "4:9: a webhook channel needs `signing_key`",
        ]
    );
}

#[test]
fn recipients_are_checked_against_the_channel_kind_and_the_contacts_people_have() {
    let yaml = "\
channels:
  mail: {type: email, from: tocsin@example.com}
  sms: {type: sms}
  pd: {type: pagerduty, routing_key: {secret: pd}}
people:
  bob: {email: bob@example.com}
route:
  notify:
    - {channel: mail, to: [not-an-address]}
    - {channel: sms, to: [\"07700900001\", {person: bob}]}
    - {channel: pd, to: [\"#ops\"]}
    - {channel: sms}
";
    assert_eq!(
        problems(yaml),
        [
            "9:28: invalid email recipient `not-an-address` for channel `mail` (expected an address with an @)",
            "10:27: invalid sms recipient `07700900001` for channel `sms` (expected E.164: + and 8 to 15 digits)",
            "10:51: person `bob` has no `phone`, which sms channel `sms` needs",
            "11:25: a pagerduty channel takes no recipients (`pd` always sends to its own endpoint)",
            "12:7: channel `sms` has no `default_to`, so this needs `to`",
        ]
    );
}

#[test]
fn a_schedule_as_recipient_needs_everyone_on_it_to_have_the_contact() {
    let yaml = "\
channels:
  sms: {type: sms}
people:
  alice: {phone: \"+447700900001\"}
  bob: {email: bob@example.com}
schedules:
  s:
    layers: [{rotation: weekly, start: \"2026-01-05T09:00\", people: [alice, bob]}]
route:
  notify: [{channel: sms, to: [{schedule: s}]}]
";
    assert_problem(
        yaml,
        "10:43",
        "schedule `s` includes people with no `phone`, which sms channel `sms` needs: bob",
    );
}

#[test]
fn an_escalation_level_must_be_able_to_reach_its_targets() {
    let yaml = "\
channels:
  sms: {type: sms}
  pd: {type: pagerduty, routing_key: {secret: pd}}
people:
  bob: {email: bob@example.com}
escalation_policies:
  none: {levels: []}
  p:
    levels:
      - targets: [{person: bob}]
        channels: [sms, pd]
      - targets: [{person: bob}]
route: {}
";
    assert_eq!(
        problems(yaml),
        [
            "7:18: an escalation policy needs at least one level",
            "10:28: person `bob` has no contact for any of this level's channels (sms)",
            "11:25: channel `pd` is a pagerduty channel, which cannot reach a person: make it a target, {channel: pd}",
            "12:9: a level with person or schedule targets needs `channels` to reach them",
        ]
    );
}

#[test]
fn values_are_parsed_with_messages_naming_what_was_expected() {
    let yaml = "\
defaults:
  timezone: Europe/Lodnon
  severity_tags: yes
services:
  - {name: a, tier: 7}
time_windows:
  w: {weekdays: [mon-fry], times: [\"9-17\"]}
escalation_policies:
  p:
    ack_timeout: 30 minutes
    levels: [{delay: 5x, targets: [{channel: pd}]}]
channels:
  pd: {type: pagerduty, routing_key: {env: PD}}
schedules:
  s:
    layers: [{rotation: fortnightly, start: \"2026-11-02 09:00\", people: []}]
route: {}
";
    assert_eq!(
        problems(yaml),
        [
            "2:13: unknown time zone `Europe/Lodnon` (expected an IANA name like Europe/London)",
            "3:18: expected true or false, found `yes`",
            "5:21: invalid tier `7` (expected 1, 2, 3 or 4)",
            "7:18: invalid weekday `mon-fry`: expected a day (mon..sun or monday..sunday) or a range like mon-fri",
            "7:36: invalid time range `9-17`: expected HH:MM-HH:MM, like 09:00-17:30",
            "10:18: invalid duration `30 minutes` (expected like 30s, 15m, 1h30m or 2d)",
            "11:22: invalid duration `5x` (expected like 30s, 15m, 1h30m or 2d)",
            "16:25: invalid rotation `fortnightly` (expected daily, weekly or a duration like 36h)",
            "16:45: invalid local date-time `2026-11-02 09:00` (expected like 2026-11-02T09:00, without a zone)",
            "16:73: a layer needs at least one person",
        ]
    );
}

#[test]
fn time_windows_and_schedules_without_a_zone_take_the_default_zone() {
    let yaml = "\
defaults: {timezone: America/New_York}
people:
  al: {}
time_windows:
  nights: {times: [\"22:00-07:00\"], weekdays: [mon-fri, fri-mon]}
schedules:
  s: {layers: [{rotation: 36h, start: \"2026-11-02T09:00\", people: [al]}]}
route: {}
";
    let config = load(yaml).expect("valid");
    let w = &config.time_windows["nights"];
    assert_eq!(w.timezone, chrono_tz::Tz::America__New_York);
    assert_eq!(w.weekdays.len(), 7, "deduplicated: {:?}", w.weekdays);
    let s = &config.schedules["s"];
    assert_eq!(s.timezone, chrono_tz::Tz::America__New_York);
    assert_eq!(
        s.layers[0].rotation,
        Rotation::Custom(Duration::from_secs(36 * 3600))
    );
}

#[test]
fn routes_are_named_by_position_unless_named_and_the_root_cannot_match() {
    let yaml = "\
route:
  routes:
    - routes:
        - {}
        - name: deep
    - name: second
";
    let config = load(yaml).expect("valid");
    let r = &config.route;
    assert_eq!(r.name, "root");
    assert_eq!(r.routes[0].name, "root/0");
    assert_eq!(r.routes[0].routes[0].name, "root/0/0");
    assert_eq!(r.routes[0].routes[1].name, "deep");
    assert_eq!(r.routes[1].name, "second");
    assert_eq!(r.routes[0].pos, Pos { line: 3, col: 7 });
    assert_eq!(r.routes[0].routes[1].pos, Pos { line: 5, col: 11 });

    assert_problem(
        "route:\n  match: ['severity = critical']\n",
        "2:3",
        "the root route matches every alert and cannot have `match`",
    );
    assert_problem(
        "route:\n  routes:\n    - name: a\n    - name: a\n",
        "4:13",
        "duplicate route name `a` (first at 3:13)",
    );
}

#[test]
fn a_config_with_several_problems_reports_all_of_them_in_position_order() {
    let yaml = "\
route:
  notify: [{channel: nowhere}]
  routes:
    - match: ['alarm_name =~ \"(\"']
      escalation: none
channels:
  x: {type: carrier-pigeon}
defaults:
  severity: urgent
";
    let p = problems(yaml);
    assert_eq!(
        p,
        [
            "2:22: unknown channel `nowhere` (not defined under `channels`)",
            "4:15: invalid regex `(`: unclosed group",
            "5:19: unknown escalation policy `none` (not defined under `escalation_policies`)",
            "7:13: unknown channel type `carrier-pigeon` (expected email, sms, slack, teams, pagerduty or webhook)",
            "9:13: unknown severity `urgent` (expected critical, high, medium, low or info)",
        ]
    );
}

#[test]
fn routes_nested_absurdly_deep_are_refused_rather_than_overflowing_the_stack() {
    let mut yaml = String::from("route: ");
    for _ in 0..60 {
        yaml.push_str("{routes: [");
    }
    yaml.push_str("{}");
    for _ in 0..60 {
        yaml.push_str("]}");
    }
    let p = problems(&yaml);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("routes nest deeper than"), "{p:?}");
}

/// The broken samples other tests run `tocsin check-config` on list, in a header comment, the exact
/// problems they produce: `#   LINE:COL: message`. Keep the two in step.
#[test]
fn each_broken_sample_config_produces_exactly_the_problems_its_header_lists() {
    for name in [
        "unknown-key",
        "dangling-refs",
        "bad-regex",
        "inline-secret",
        "many-problems",
    ] {
        let path = repo_file(&format!("tests/configs/{name}.yaml"));
        let text = std::fs::read_to_string(&path).expect("sample config is readable");
        let expected: Vec<String> = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("#   "))
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .map(str::to_string)
            .collect();
        assert!(
            !expected.is_empty(),
            "{name}.yaml lists no expected problems"
        );
        assert_eq!(problems(&text), expected, "{name}.yaml");
    }
}

#[test]
fn an_sms_throttle_is_a_duration_and_anything_else_is_refused_at_its_place() {
    let ok = load("channels:\n  sms: {type: sms, throttle: 2m, default_to: [\"+447700900001\"]}\nroute: {notify: [{channel: sms}]}\n").unwrap();
    assert_eq!(
        ok.channels["sms"].settings.get("throttle"),
        Some(&Setting::Literal("2m".into()))
    );
    assert_problem(
        "channels:\n  sms: {type: sms, throttle: often, default_to: [\"+447700900001\"]}\nroute: {notify: [{channel: sms}]}\n",
        "2:30",
        "invalid `throttle` `often`",
    );
    assert_problem(
        "channels:\n  mail: {type: email, from: a@example.com, throttle: 1m, default_to: [b@example.com]}\nroute: {notify: [{channel: mail}]}\n",
        "2:44",
        "unknown setting `throttle` for an email channel",
    );
}

// ---- Noise control (issue 7): grouping, maintenance windows, inhibition, flap damping, reminders.

const NOISE: &str = "\
channels:
  s: {type: slack, webhook_url: {env: S}, default_to: ['#ops']}
maintenance_windows:
  deploys:
    match: ['service = checkout']
    start: 2026-11-20T02:00:00Z
    end: 2026-11-20T03:00:00Z
  patching:
    timezone: America/New_York
    weekdays: [sat]
    times: ['01:00-03:00']
  backups:
    cron: '0 2 * * *'
    duration: 30m
inhibit_rules:
  - name: composite-mutes-children
    source_match: ['kind = composite']
    target_match: ['kind != composite']
    equal: [service, region]
flap_damping: {max_changes: 4, window: 10m}
silence_reminder: {before: 1h, notify: [{channel: s}]}
route:
  notify: [{channel: s}]
  group_by: [service, label.env]
  group_wait: 1m
  group_bypass: [critical]
  routes:
    - name: child
      match: ['severity = low']
    - name: own
      match: ['severity = info']
      group_by: [region]
      repeat_interval: 1h
";

#[test]
fn noise_control_keys_load_with_their_defaults_and_grouping_is_inherited() {
    let config = load(NOISE).unwrap_or_else(|e| panic!("{e:#?}"));
    let root = config.route.grouping.as_ref().expect("root groups");
    assert_eq!(root.group_by, ["service", "label.env"]);
    assert_eq!(root.fields, [Field::Service, Field::Label("env".into())]);
    assert_eq!(root.group_wait, Duration::from_secs(60));
    assert_eq!(root.group_interval, Duration::from_secs(300));
    assert_eq!(root.repeat_interval, Duration::from_secs(4 * 3600));
    assert_eq!(root.bypass, [Severity::Critical]);
    assert!(config.route.routes[0].grouping.is_none(), "child inherits");
    let own = config.route.routes[1]
        .grouping
        .as_ref()
        .expect("own grouping");
    assert_eq!(own.group_by, ["region"]);
    assert_eq!(own.group_wait, Duration::from_secs(30));
    assert_eq!(own.repeat_interval, Duration::from_secs(3600));

    let w = &config.noise.maintenance_windows;
    assert_eq!(
        w.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        ["deploys", "patching", "backups"],
        "in file order"
    );
    assert!(matches!(w[0].schedule, WindowSchedule::Once { .. }));
    assert!(matches!(w[2].schedule, WindowSchedule::Cron { .. }));
    match &w[1].schedule {
        WindowSchedule::Recurring(tw) => assert_eq!(tw.timezone, chrono_tz::Tz::America__New_York),
        other => panic!("{other:?}"),
    }
    let rule = &config.noise.inhibit_rules[0];
    assert_eq!(rule.name, "composite-mutes-children");
    assert_eq!(rule.equal_fields, [Field::Service, Field::Region]);
    let fd = config.noise.flap_damping.as_ref().expect("flap damping");
    assert_eq!(
        (fd.max_changes, fd.window, fd.settle),
        (4, Duration::from_secs(600), Duration::from_secs(600))
    );
    let r = config.noise.silence_reminder.as_ref().expect("reminder");
    assert_eq!(r.before, Duration::from_secs(3600));
    assert_eq!(r.notify[0].channel, "s");
}

#[test]
fn a_maintenance_window_knows_when_it_closes_in_each_form() {
    let config = load(NOISE).unwrap_or_else(|e| panic!("{e:#?}"));
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let w = &config.noise.maintenance_windows;
    // backups: 02:00-02:30 UTC every day.
    assert_eq!(
        w[2].schedule.open_until(at("2026-11-20T02:10:00Z")),
        Some(at("2026-11-20T02:30:00Z"))
    );
    assert_eq!(w[2].schedule.open_until(at("2026-11-20T02:30:00Z")), None);
    // deploys: once.
    assert_eq!(
        w[0].schedule.open_until(at("2026-11-20T02:59:59Z")),
        Some(at("2026-11-20T03:00:00Z"))
    );
    assert_eq!(w[0].schedule.open_until(at("2026-11-20T01:59:59Z")), None);
    // patching: Saturday 01:00-03:00 New York (EST, UTC-5) is 06:00-08:00 UTC on 21 November.
    assert_eq!(
        w[1].schedule.open_until(at("2026-11-21T06:30:00Z")),
        Some(at("2026-11-21T08:00:00Z"))
    );
    assert_eq!(w[1].schedule.open_until(at("2026-11-21T08:00:00Z")), None);
}

#[test]
fn noise_control_problems_are_reported_at_their_positions() {
    let yaml = "\
maintenance_windows:
  both:
    start: 2026-11-20T02:00:00Z
    end: 2026-11-20T03:00:00Z
    times: ['01:00-02:00']
  backwards:
    start: 2026-11-20T02:00:00Z
    end: 2026-11-20T01:00:00Z
  badcron:
    cron: '0 25 * * *'
    duration: 1h
  typo:
    match: ['service = x']
    weekday: [sat]
inhibit_rules:
  - source_match: []
    target_match: ['severity = loud']
flap_damping: {max_changes: 1, window: 0m}
silence_reminder: {notify: []}
route:
  group_by: [service, service]
  group_wait: soon
  group_interval: 0s
  group_bypass: [urgent]
";
    assert_eq!(
        problems(yaml),
        [
            "3:5: maintenance window `both` needs exactly one of: `start` and `end`; `weekdays` and/or `times`; `cron` and `duration`",
            "8:10: a window's `end` must be after its `start`",
            "10:11: invalid cron hour `25`: `25` is not a number from 0 to 23",
            "13:5: maintenance window `typo` needs exactly one of: `start` and `end`; `weekdays` and/or `times`; `cron` and `duration`",
            "14:5: unknown key `weekday` (expected `match`, `start`, `end`, `timezone`, `weekdays`, `times`, `cron` or `duration`)",
            "16:19: `source_match` needs at least one matcher (an empty list would match every alert)",
            "17:20: invalid matcher `severity = loud`: `loud` is never a value of this field (expected critical, high, medium, low, info)",
            "18:29: invalid max_changes `1` (expected a whole number, 2 or more)",
            "18:40: invalid duration `0m` (must be more than 0)",
            "19:19: missing key `before`",
            "19:28: a silence reminder needs at least one `notify` entry",
            "21:23: `service` is listed twice in group_by",
            "22:15: invalid duration `soon` (expected like 30s, 15m, 1h30m or 2d)",
            "23:19: group_interval cannot be zero",
            "24:18: unknown severity `urgent` (expected critical, high, medium, low or info)",
        ]
    );
}

#[test]
fn runbook_buttons_are_for_the_hosts_the_config_allows_only() {
    let c = load("defaults: {runbook_hosts: [wiki.example.com, \"*.runbooks.example.org\"]}\nchannels: {s: {type: sms}}\nroute: {notify: [{channel: s, to: [\"+447700900001\"]}]}\n").unwrap();
    let d = &c.defaults;
    assert!(d.runbook_allowed("https://wiki.example.com/runbooks/db"));
    assert!(d.runbook_allowed("https://WIKI.example.com:443/x"));
    assert!(d.runbook_allowed("https://team.runbooks.example.org/a"));
    for bad in [
        "http://wiki.example.com/x",
        "https://wiki.example.com.evil.test/x",
        "https://evil.test/?u=https://wiki.example.com",
        "https://wiki.example.com@evil.test/x",
        "https://runbooks.example.org/x",
        "javascript:alert(1)",
    ] {
        assert!(!d.runbook_allowed(bad), "{bad}");
    }
    assert!(
        !load(
            "channels: {s: {type: sms}}\nroute: {notify: [{channel: s, to: [\"+447700900001\"]}]}\n"
        )
        .unwrap()
        .defaults
        .runbook_allowed("https://wiki.example.com/x")
    );
    let errs = load("defaults: {runbook_hosts: [\"https://wiki\"]}\nchannels: {s: {type: sms}}\nroute: {notify: [{channel: s, to: [\"+447700900001\"]}]}\n").unwrap_err();
    assert!(
        errs.iter().any(|e| e.to_string().contains("runbook host")),
        "{errs:?}"
    );
}

// ---- Silence limits (issue 18, item 5).

#[test]
fn silence_limits_default_to_seven_days_and_a_hundred_active() {
    let config = load("route: {}\n").unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(config.noise.silences, SilenceLimits::default());
    assert_eq!(
        config.noise.silences.max_duration,
        Duration::from_secs(7 * 24 * 3600)
    );
    assert_eq!(config.noise.silences.max_active, 100);
}

#[test]
fn silence_limits_are_read_from_the_silences_section() {
    let config = load("silences: {max_duration: 2d, max_active: 5}\nroute: {}\n")
        .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(
        config.noise.silences,
        SilenceLimits {
            max_duration: Duration::from_secs(2 * 24 * 3600),
            max_active: 5
        }
    );
    assert_eq!(config.noise.silences.read_limit(), 10);
    // Either key alone keeps the other's default.
    let config =
        load("silences: {max_active: 7}\nroute: {}\n").unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(
        config.noise.silences.max_duration,
        SilenceLimits::DEFAULT_MAX_DURATION
    );
}

#[test]
fn bad_silence_limits_are_refused_at_their_position() {
    let yaml = "\
silences:
  max_duration: 0s
  max_active: 1001
  forever: true
route: {}
";
    assert_eq!(
        problems(yaml),
        [
            "2:17: invalid duration `0s` (must be more than 0)",
            "3:15: invalid max_active `1001` (expected a whole number from 1 to 1000)",
            "4:3: unknown key `forever` (expected `max_duration` or `max_active`)",
        ]
    );
    assert_problem(
        "silences: {max_active: none}\nroute: {}\n",
        "1:24",
        "invalid max_active `none`",
    );
}

#[test]
fn an_sms_channel_names_its_provider_and_takes_only_that_providers_settings() {
    let route = "route: {notify: [{channel: s, to: [\"+447700900001\"]}]}\n";
    assert_eq!(
        problems(&format!(
            "channels:\n  s: {{type: sms, provider: end_user_messaging, origination_identity: pool-1, configuration_set: tocsin-sms}}\n{route}"
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        problems(&format!(
            "channels:\n  s: {{type: sms, provider: carrier-pigeon}}\n{route}"
        )),
        ["2:28: unknown SMS `provider` `carrier-pigeon` (expected `sns` or `end_user_messaging`)"]
    );
    assert_eq!(
        problems(&format!(
            "channels:\n  s: {{type: sms, provider: end_user_messaging, sender_id: tocsin}}\n{route}"
        )),
        ["2:6: `sender_id` is not a setting of the SMS provider `end_user_messaging`"]
    );
    assert_eq!(
        problems(&format!(
            "channels:\n  s: {{type: sms, origination_identity: pool-1}}\n{route}"
        )),
        ["2:6: `origination_identity` is not a setting of the SMS provider `sns`"]
    );
}
