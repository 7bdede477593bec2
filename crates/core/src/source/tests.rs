//! Tests of the source parsers over the sample events in `events/`: every shape and state, the
//! cross-transport identity rules, every bad input's reason, and arbitrary input never panicking.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::model::{AlarmState, Alert, Severity, Source, Transport, format_time, stable_id};

pub(super) fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

pub(super) fn fixture(rel: &str) -> Vec<u8> {
    let path = events_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The only alert of a fixture.
pub(super) fn one(rel: &str) -> Alert {
    let mut alerts = parse(&fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(alerts.len(), 1, "{rel}");
    alerts.remove(0)
}

/// Every `.json` file below `dir`.
pub(super) fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// Every source event under `events/` (not `events/api/`, HTTP requests to the api function, nor
/// `events/silences/`, silences for `replay --silences`).
pub(super) fn all_fixtures() -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(&events_dir(), &mut files);
    files.retain(|p| {
        // `real/` holds payloads written elsewhere, each with its own expectation (tests_real.rs);
        // `receipts/` the channels' send events, which deliver reads (receipt.rs), not ingest.
        !p.starts_with(events_dir().join("api"))
            && !p.starts_with(events_dir().join("silences"))
            && !p.starts_with(events_dir().join("receipts"))
            && !p.starts_with(events_dir().join("real"))
    });
    files.sort();
    files
}

/// An SNS Lambda event carrying `messages`, one record each.
pub(super) fn sns_event(messages: &[String]) -> Vec<u8> {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| json!({"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": {"Type": "Notification", "Message": m}}))
        .collect();
    serde_json::to_vec(&json!({ "Records": records })).unwrap()
}

/// The alarm message of the first record of an SNS fixture, as JSON.
fn sns_message(rel: &str) -> Value {
    let event: Value = serde_json::from_slice(&fixture(rel)).unwrap();
    serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap()
}

pub(super) fn err_of(input: &[u8]) -> String {
    match parse(input) {
        Ok(alerts) => panic!("expected an error, got {alerts:?}"),
        Err(e) => e.to_string(),
    }
}

// ------------------------------------------------------------------------------------------------
// Every fixture

#[test]
fn every_good_fixture_parses_to_at_least_one_alert_with_nothing_rejected() {
    let mut seen = 0;
    for path in all_fixtures() {
        if path.components().any(|c| c.as_os_str() == "bad") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let parsed = parse_all(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A page of a paged Health event is an alert once joined; a deliberate skip says why.
        let outcomes = parsed.alerts.len() + parsed.pages.len() + parsed.skipped.len();
        assert!(outcomes > 0, "{}", path.display());
        for s in &parsed.skipped {
            assert!(!s.reason.is_empty() && !s.to_string().contains('\n'));
        }
        let alerts: Vec<Alert> = parsed
            .alerts
            .iter()
            .cloned()
            .chain(parsed.pages.iter().cloned().map(HealthPage::into_alert))
            .collect();
        assert!(
            alerts.len() + parsed.skipped.len() > 0,
            "{}",
            path.display()
        );
        assert!(
            parsed.rejected.is_empty(),
            "{}: {:?}",
            path.display(),
            parsed.rejected
        );
        for alert in &alerts {
            assert_eq!(alert.event_id.len(), 32);
            assert_eq!(alert.fingerprint.len(), 32);
            assert!(!alert.alarm_name.is_empty());
        }
        seen += 1;
    }
    assert!(seen >= 75, "only {seen} fixtures found");
}

#[test]
fn every_bad_fixture_is_rejected_with_its_specific_reason() {
    let expected = [
        ("truncated.json", "not JSON: EOF while parsing"),
        (
            "message-not-json.json",
            "Records[0].Sns.Message: not JSON: expected value at line 1 column 1",
        ),
        (
            "unknown-state.json",
            r#"Records[0].Sns.Message.NewStateValue: unknown state "BROKEN" (expected ALARM, OK or INSUFFICIENT_DATA)"#,
        ),
        (
            "wrong-types.json",
            r#"Records[0].Sns.Message.Trigger.Threshold: expected a number, found string "eighty percent""#,
        ),
        ("empty-records.json", "Records: empty"),
        (
            "control-chars-in-name.json",
            "Records[0].Sns.Message.AlarmName: control character U+0007 at byte offset 13",
        ),
        (
            "rtl-override-in-name.json",
            "detail.alarmName: bidirectional control character U+202E at byte offset 9",
        ),
        (
            "unknown-shape.json",
            r#"unrecognised event shape: found keys "id", "title", "alert_type""#,
        ),
        (
            "health-unknown-status.json",
            r#"detail.statusCode: unknown status "ongoing" (expected open, upcoming or closed)"#,
        ),
        (
            "health-bad-timestamp.json",
            r#"detail.lastUpdatedTime: invalid timestamp "27/01/2023 06:02" (expected RFC 1123"#,
        ),
        (
            "health-page-past-total.json",
            "detail.page: page 3 of 2: past the last page",
        ),
        (
            "ecs-service-action-unknown-type.json",
            r#"detail.eventType: unknown event type "PANIC" (expected ERROR, WARN or INFO)"#,
        ),
        (
            "rds-missing-identifier.json",
            "detail.SourceIdentifier: required field is missing",
        ),
        (
            "ec2-unknown-state.json",
            r#"detail.state: unknown instance state "exploded""#,
        ),
        (
            "guardduty-severity-words.json",
            r#"detail.severity: expected a number, found string "high""#,
        ),
        (
            "securityhub-unknown-severity.json",
            r#"detail.findings[0].Severity.Label: unknown severity "SEVERE""#,
        ),
        (
            "synthetics-missing-canary-name.json",
            "detail.canary-name: required field is missing",
        ),
        (
            "autoscaling-group-not-a-string.json",
            "detail.AutoScalingGroupName: expected a string, found an array",
        ),
        (
            "eventbridge-unknown-without-time.json",
            "time: required field is missing",
        ),
    ];
    let mut files: Vec<String> = std::fs::read_dir(events_dir().join("bad"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut named: Vec<String> = expected.iter().map(|(f, _)| (*f).to_owned()).collect();
    named.sort();
    assert_eq!(
        files, named,
        "every file in events/bad/ needs an expected reason here"
    );
    for (file, want) in expected {
        let got = err_of(&fixture(&format!("bad/{file}")));
        assert!(got.contains(want), "{file}: {got}");
        assert!(!got.contains('\n'), "{file}: {got}");
    }
}

#[test]
fn oversized_event_is_rejected_before_parsing() {
    // Generated rather than committed: a valid SNS event padded just past the limit.
    let mut event: Value = serde_json::from_slice(&fixture("sns/metric-alarm.json")).unwrap();
    event["Records"][0]["Sns"]["Subject"] = Value::String("x".repeat(MAX_EVENT_BYTES));
    let bytes = serde_json::to_vec(&event).unwrap();
    assert!(bytes.len() > MAX_EVENT_BYTES && bytes.len() < MAX_EVENT_BYTES + 4096);
    assert_eq!(
        err_of(&bytes),
        format!("event is {} bytes, over the 262144-byte limit", bytes.len())
    );
    let just_fits = vec![b' '; MAX_EVENT_BYTES];
    assert!(!err_of(&just_fits).contains("limit"));
}

#[test]
fn sns_fixtures_are_real_payloads_that_aws_lambda_events_also_accepts() {
    use aws_lambda_events::event::eventbridge::EventBridgeEvent;
    use aws_lambda_events::event::sns::{SnsEvent, SnsMessage};
    for path in all_fixtures() {
        let rel = path
            .strip_prefix(events_dir())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if rel.starts_with("bad/") && rel != "bad/message-not-json.json" {
            continue;
        }
        if value.get("Records").is_some() && !rel.contains("empty-records") {
            serde_json::from_slice::<SnsEvent>(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
        } else if value.get("Type").is_some() {
            serde_json::from_slice::<SnsMessage>(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
        } else if value.get("detail-type").is_some() {
            serde_json::from_slice::<EventBridgeEvent>(&bytes)
                .unwrap_or_else(|e| panic!("{rel}: {e}"));
        }
    }
}

// ------------------------------------------------------------------------------------------------
// SNS

#[test]
fn sns_metric_alarm_maps_every_canonical_field() {
    let a = one("sns/metric-alarm.json");
    let arn = "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:orders-db-cpu-high";
    assert_eq!(a.source, Source::Cloudwatch);
    assert_eq!(a.transport, Transport::Sns);
    assert_eq!(a.alarm_name, "orders-db-cpu-high");
    assert_eq!(a.alarm_arn.as_deref(), Some(arn));
    assert_eq!(a.account_id.as_deref(), Some("111122223333"));
    assert_eq!(a.region.as_deref(), Some("eu-west-1"));
    assert_eq!(a.state, AlarmState::Alarm);
    assert_eq!(a.previous_state, Some(AlarmState::Ok));
    assert_eq!(format_time(&a.state_changed_at), "2024-03-01T10:15:00.123Z");
    assert!(
        a.reason
            .starts_with("Threshold Crossed: 3 out of the last 3")
    );
    assert_eq!(a.kind, "metric");
    assert_eq!(a.namespace.as_deref(), Some("AWS/RDS"));
    assert_eq!(a.metric_name.as_deref(), Some("CPUUtilization"));
    assert_eq!(a.dimensions["DBInstanceIdentifier"], "orders-db-1");
    assert_eq!(a.threshold, Some(80.0));
    assert_eq!(a.severity, Severity::Medium);
    assert!(a.description.starts_with("Orders database CPU above 80%"));
    assert_eq!(a.fingerprint, stable_id(&["cloudwatch", arn]));
    assert_eq!(
        a.event_id,
        stable_id(&["cloudwatch", arn, "ALARM", "2024-03-01T10:15:00.123Z"])
    );
    let labels: Vec<(&str, &str)> = a
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("comparison_operator", "GreaterThanThreshold"),
            ("datapoints_to_alarm", "3"),
            ("evaluation_periods", "3"),
            ("period", "300"),
            ("statistic", "Average"),
            ("treat_missing_data", "missing"),
        ]
    );
}

#[test]
fn sns_percentile_alarm_labels_its_extended_statistic() {
    let a = one("sns/metric-alarm-percentile.json");
    assert_eq!(a.kind, "metric");
    assert_eq!(a.labels["extended_statistic"], "p99");
    assert!(!a.labels.contains_key("statistic"));
    assert_eq!(a.region.as_deref(), Some("us-east-1"));
    assert_eq!(a.dimensions.len(), 2);
    assert_eq!(a.threshold, Some(1.5));
}

#[test]
fn sns_metric_math_alarm_is_metric_math_with_its_expression() {
    let a = one("sns/metric-math.json");
    assert_eq!(a.kind, "metric_math");
    assert_eq!(a.labels["expression"], "100*(m1/m2)");
    assert_eq!(a.namespace.as_deref(), Some("AWS/ApplicationELB"));
    assert_eq!(a.metric_name, None, "two metrics, so no single metric name");
    assert_eq!(a.threshold, Some(5.0));
}

#[test]
fn sns_anomaly_detection_alarm_has_no_threshold_and_names_its_band() {
    let a = one("sns/anomaly-detection.json");
    assert_eq!(a.kind, "anomaly_detection");
    assert_eq!(a.threshold, None);
    assert_eq!(a.labels["threshold_metric_id"], "ad1");
    assert_eq!(a.labels["expression"], "ANOMALY_DETECTION_BAND(m1, 2)");
    assert_eq!(
        a.labels["treat_missing_data"], "missing",
        "old `- TreatMissingData:` spelling"
    );
    assert_eq!(a.metric_name.as_deref(), Some("RequestCount"));
    assert_eq!(a.labels["statistic"], "Sum");
}

#[test]
fn sns_composite_alarm_has_rule_and_triggering_children() {
    let a = one("sns/composite.json");
    assert_eq!(a.kind, "composite");
    assert_eq!(
        a.labels["alarm_rule"],
        r#"ALARM("checkout-api-5xx") OR ALARM("checkout-api-latency-p99")"#
    );
    assert_eq!(
        a.labels["triggering_children"],
        "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:checkout-api-5xx"
    );
    assert_eq!((a.threshold, a.namespace.as_deref()), (None, None));
}

#[test]
fn sns_ok_and_insufficient_data_transitions_keep_the_alarms_fingerprint() {
    let alarm = one("sns/metric-alarm.json");
    let ok = one("sns/ok.json");
    let unknown = one("sns/insufficient-data.json");
    assert_eq!(
        (ok.state, ok.previous_state),
        (AlarmState::Ok, Some(AlarmState::Alarm))
    );
    assert_eq!(
        (unknown.state, unknown.previous_state),
        (AlarmState::InsufficientData, Some(AlarmState::Ok))
    );
    assert_eq!(alarm.fingerprint, ok.fingerprint);
    assert_eq!(alarm.fingerprint, unknown.fingerprint);
    assert_ne!(alarm.event_id, ok.event_id);
    assert_ne!(ok.event_id, unknown.event_id);
}

#[test]
fn null_description_and_null_unit_are_accepted() {
    let a = one("sns/null-description.json");
    assert_eq!(a.description, "");
    assert!(!a.labels.contains_key("unit"));
    assert_eq!(a.labels["statistic"], "Maximum");
}

#[test]
fn actions_written_as_strings_are_accepted() {
    let a = one("sns/actions-as-string.json");
    assert_eq!(a.alarm_name, "nightly-export-errors");
    assert_eq!(a.previous_state, Some(AlarmState::InsufficientData));
    assert_eq!(a.threshold, Some(0.0));
}

#[test]
fn region_display_name_without_arn_maps_to_a_code_and_builds_the_arn() {
    let a = one("sns/region-display-name-no-arn.json");
    let arn = "arn:aws:cloudwatch:us-east-1:444455556666:alarm:legacy-worker-disk";
    assert_eq!(a.region.as_deref(), Some("us-east-1"));
    assert_eq!(a.account_id.as_deref(), Some("444455556666"));
    assert_eq!(a.alarm_arn.as_deref(), Some(arn));
    assert_eq!(a.fingerprint, stable_id(&["cloudwatch", arn]));
}

#[test]
fn region_comes_from_the_arn_rather_than_the_display_name() {
    let mut m = sns_message("sns/metric-alarm.json");
    m["Region"] = json!("US East (N. Virginia)");
    let alerts = parse(&sns_event(&[m.to_string()])).unwrap();
    assert_eq!(alerts[0].region.as_deref(), Some("eu-west-1"));
}

#[test]
fn unknown_display_name_without_arn_keeps_the_name_as_a_label() {
    let mut m = sns_message("sns/region-display-name-no-arn.json");
    m["Region"] = json!("Atlantis (Central)");
    let a = &parse(&sns_event(&[m.to_string()])).unwrap()[0];
    assert_eq!(a.region, None);
    assert_eq!(a.alarm_arn, None);
    assert_eq!(a.labels["region_name"], "Atlantis (Central)");
}

#[test]
fn truncated_subject_is_ignored_and_the_full_name_comes_from_the_message() {
    let a = one("sns/truncated-subject.json");
    assert_eq!(
        a.alarm_name,
        "production-checkout-service-payment-provider-callback-handler-latency-p99-above-slo-threshold-for-five-minutes"
    );
    assert_eq!(a.labels["unit"], "Milliseconds");
}

#[test]
fn multi_record_event_yields_one_alert_per_record_in_order() {
    let alerts = parse(&fixture("sns/multi-record.json")).unwrap();
    let names: Vec<&str> = alerts.iter().map(|a| a.alarm_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cart-api-5xx",
            "cart-db-connections",
            "cart-cache-evictions"
        ]
    );
    assert!(
        alerts
            .iter()
            .all(|a| a.region.as_deref() == Some("us-west-2"))
    );
}

#[test]
fn z_and_plus_0000_offsets_give_the_same_event_id() {
    assert_eq!(
        one("sns/offset-z.json").event_id,
        one("sns/metric-alarm.json").event_id
    );
}

#[test]
fn bare_https_notification_is_read_like_a_lambda_record() {
    let bare = one("sns/https-notification.json");
    assert_eq!(bare.transport, Transport::Sns);
    assert_eq!(bare.event_id, one("sns/metric-alarm.json").event_id);
}

#[test]
fn one_bad_record_is_rejected_alone_and_named() {
    let good = sns_message("sns/metric-alarm.json").to_string();
    let mut broken = sns_message("sns/ok.json");
    broken["NewStateValue"] = json!("RESOLVED");
    let input = sns_event(&[
        good.clone(),
        "not json at all".to_owned(),
        broken.to_string(),
        good,
    ]);
    let parsed = parse_all(&input).unwrap();
    assert_eq!(parsed.alerts.len(), 2);
    let at: Vec<&str> = parsed.rejected.iter().map(|e| e.at.as_str()).collect();
    assert_eq!(
        at,
        [
            "Records[1].Sns.Message",
            "Records[2].Sns.Message.NewStateValue"
        ]
    );
    assert!(
        parsed.rejected[0]
            .reason
            .starts_with("not JSON: expected ident at line 1 column 2")
    );
    assert_eq!(err_of(&input), parsed.rejected[0].to_string());
}

#[test]
fn record_that_is_not_from_sns_is_rejected_with_its_event_source() {
    let good = sns_message("sns/metric-alarm.json").to_string();
    let mut event: Value = serde_json::from_slice(&sns_event(&[good])).unwrap();
    event["Records"]
        .as_array_mut()
        .unwrap()
        .push(json!({"EventSource": "aws:sqs", "Sns": {"Message": "{}"}}));
    let parsed = parse_all(&serde_json::to_vec(&event).unwrap()).unwrap();
    assert_eq!(parsed.alerts.len(), 1);
    assert_eq!(
        parsed.rejected[0].to_string(),
        r#"Records[1].EventSource: expected "aws:sns", found "aws:sqs""#
    );
    let sqs = br#"{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}"#;
    assert!(err_of(sqs).starts_with("Records: no SNS records"));
}

#[test]
fn subscription_confirmation_is_explained_not_parsed() {
    let msg = br#"{"Type":"SubscriptionConfirmation","Message":"You have chosen to subscribe","SubscribeURL":"https://sns"}"#;
    assert!(err_of(msg).starts_with("Type: an SNS SubscriptionConfirmation is not an alert"));
}

#[test]
fn eventbridge_event_published_to_sns_is_read_through_the_topic() {
    let eb: Value = serde_json::from_slice(&fixture("eventbridge/metric-alarm.json")).unwrap();
    let alerts = parse(&sns_event(&[eb.to_string()])).unwrap();
    assert_eq!(alerts[0].transport, Transport::Sns);
    assert_eq!(
        alerts[0].event_id,
        one("eventbridge/metric-alarm.json").event_id
    );
}

// ------------------------------------------------------------------------------------------------
// EventBridge and the Lambda alarm action

#[test]
fn eventbridge_metric_alarm_takes_threshold_from_reason_data_and_arn_from_resources() {
    let a = one("eventbridge/metric-alarm.json");
    assert_eq!(a.transport, Transport::Eventbridge);
    assert_eq!(a.kind, "metric");
    assert_eq!(a.threshold, Some(80.0));
    assert_eq!(
        a.alarm_arn.as_deref(),
        Some("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:orders-db-cpu-high")
    );
    assert_eq!(a.previous_state, Some(AlarmState::Ok));
    assert_eq!(a.labels["statistic"], "Average");
    assert_eq!(a.labels["period"], "300");
}

#[test]
fn eventbridge_shapes_get_their_kinds_and_states() {
    let cases = [
        (
            "eventbridge/metric-math.json",
            "metric_math",
            AlarmState::Alarm,
        ),
        (
            "eventbridge/anomaly-detection.json",
            "anomaly_detection",
            AlarmState::Alarm,
        ),
        ("eventbridge/composite.json", "composite", AlarmState::Alarm),
        (
            "eventbridge/composite-actions-suppressor.json",
            "composite",
            AlarmState::Alarm,
        ),
        ("eventbridge/ok.json", "metric", AlarmState::Ok),
        (
            "eventbridge/insufficient-data.json",
            "metric",
            AlarmState::InsufficientData,
        ),
        (
            "lambda-action/metric-alarm.json",
            "metric",
            AlarmState::Alarm,
        ),
        (
            "lambda-action/composite.json",
            "composite",
            AlarmState::Alarm,
        ),
    ];
    for (rel, kind, state) in cases {
        let a = one(rel);
        assert_eq!((a.kind.as_str(), a.state), (kind, state), "{rel}");
    }
}

#[test]
fn eventbridge_composite_with_actions_suppressor_labels_the_suppression() {
    let a = one("eventbridge/composite-actions-suppressor.json");
    assert_eq!(
        a.labels["actions_suppressor"],
        "arn:aws:cloudwatch:us-west-2:111122223333:alarm:storefront-maintenance-window"
    );
    assert_eq!(a.labels["actions_suppressor_wait_period"], "120");
    assert_eq!(a.labels["actions_suppressor_extension_period"], "180");
    assert_eq!(a.labels["actions_suppressed_by"], "WaitPeriod");
    assert!(a.labels["triggering_children"].ends_with(":alarm:storefront-5xx"));
    assert_eq!(a.region.as_deref(), Some("us-west-2"));
}

#[test]
fn eventbridge_anomaly_detection_derives_the_threshold_metric_id_from_its_band() {
    let a = one("eventbridge/anomaly-detection.json");
    assert_eq!(a.labels["threshold_metric_id"], "ad1");
    assert_eq!(a.threshold, None);
}

#[test]
fn eventbridge_event_of_another_kind_is_kept_as_a_generic_alert_not_refused() {
    let other = br#"{"version":"0","id":"1","detail-type":"EC2 Fleet Spot Rebalance","source":"aws.ec2fleet","account":"111122223333","time":"2024-03-01T10:00:00Z","region":"eu-west-1","resources":["arn:aws:ec2:eu-west-1:111122223333:fleet/fleet-1"],"detail":{"x":1}}"#;
    let a = &parse(other).unwrap()[0];
    assert_eq!(a.source, Source::Generic);
    assert_eq!(a.kind, "eventbridge");
    assert_eq!(a.alarm_name, "EC2 Fleet Spot Rebalance");
    assert_eq!(a.labels["event_source"], "aws.ec2fleet");
    assert_eq!(a.labels["detail_type"], "EC2 Fleet Spot Rebalance");
    assert_eq!(a.description, r#"{"x":1}"#);
}

#[test]
fn unreadable_reason_data_only_loses_the_threshold() {
    let mut eb: Value = serde_json::from_slice(&fixture("eventbridge/metric-alarm.json")).unwrap();
    eb["detail"]["state"]["reasonData"] = json!("{not json");
    let a = &parse(&serde_json::to_vec(&eb).unwrap()).unwrap()[0];
    assert_eq!(a.threshold, None);
    assert_eq!(a.event_id, one("eventbridge/metric-alarm.json").event_id);
}

// ------------------------------------------------------------------------------------------------
// One transition, three transports

#[test]
fn same_transition_via_sns_eventbridge_and_lambda_action_shares_event_id_and_fingerprint() {
    let groups: [&[&str]; 7] = [
        &[
            "sns/metric-alarm.json",
            "eventbridge/metric-alarm.json",
            "lambda-action/metric-alarm.json",
        ],
        &["sns/metric-math.json", "eventbridge/metric-math.json"],
        &[
            "sns/anomaly-detection.json",
            "eventbridge/anomaly-detection.json",
        ],
        &[
            "sns/composite.json",
            "eventbridge/composite.json",
            "lambda-action/composite.json",
        ],
        &["sns/ok.json", "eventbridge/ok.json"],
        &[
            "sns/insufficient-data.json",
            "eventbridge/insufficient-data.json",
        ],
        &[
            "scenario/incident/01-checkout-5xx-alarm.sns.json",
            "scenario/incident/02-checkout-5xx-alarm.eventbridge.json",
        ],
    ];
    for group in groups {
        let first = one(group[0]);
        for rel in &group[1..] {
            let other = one(rel);
            let what = format!("{} vs {rel}", group[0]);
            assert_ne!(first.transport, other.transport, "{what}");
            assert_eq!(first.event_id, other.event_id, "{what}");
            assert_eq!(first.fingerprint, other.fingerprint, "{what}");
            assert_eq!(first.kind, other.kind, "{what}");
            assert_eq!(first.region, other.region, "{what}");
            assert_eq!(first.account_id, other.account_id, "{what}");
            assert_eq!(first.alarm_arn, other.alarm_arn, "{what}");
            assert_eq!(first.state, other.state, "{what}");
            assert_eq!(first.previous_state, other.previous_state, "{what}");
            assert_eq!(first.state_changed_at, other.state_changed_at, "{what}");
            assert_eq!(first.reason, other.reason, "{what}");
            assert_eq!(first.description, other.description, "{what}");
            assert_eq!(first.threshold, other.threshold, "{what}");
            assert_eq!(first.namespace, other.namespace, "{what}");
            assert_eq!(first.metric_name, other.metric_name, "{what}");
            assert_eq!(first.dimensions, other.dimensions, "{what}");
            for key in [
                "statistic",
                "extended_statistic",
                "expression",
                "alarm_rule",
                "triggering_children",
            ] {
                assert_eq!(
                    first.labels.get(key),
                    other.labels.get(key),
                    "{what}: {key}"
                );
            }
        }
    }
}

#[test]
fn every_cloudwatch_transport_reads_every_state_and_agrees_on_identity() {
    let sns = sns_message("sns/metric-alarm.json");
    let eb: Value = serde_json::from_slice(&fixture("eventbridge/metric-alarm.json")).unwrap();
    let lambda: Value =
        serde_json::from_slice(&fixture("lambda-action/metric-alarm.json")).unwrap();
    for state in [
        AlarmState::Alarm,
        AlarmState::Ok,
        AlarmState::InsufficientData,
    ] {
        let (mut sns, mut eb, mut lambda) = (sns.clone(), eb.clone(), lambda.clone());
        sns["NewStateValue"] = json!(state.as_str());
        eb["detail"]["state"]["value"] = json!(state.as_str());
        lambda["alarmData"]["state"]["value"] = json!(state.as_str());
        let alerts = [
            &parse(&sns_event(&[sns.to_string()])).unwrap()[0],
            &parse(&serde_json::to_vec(&eb).unwrap()).unwrap()[0],
            &parse(&serde_json::to_vec(&lambda).unwrap()).unwrap()[0],
        ];
        for a in alerts {
            assert_eq!(a.state, state, "{:?}", a.transport);
            assert_eq!(a.event_id, alerts[0].event_id, "{:?} {state}", a.transport);
            assert_eq!(a.fingerprint, alerts[0].fingerprint);
        }
    }
}

#[test]
fn incident_scenario_tells_its_story_in_file_order() {
    let dir = events_dir().join("scenario/incident");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let alerts: Vec<Alert> = files
        .iter()
        .map(|f| one(&format!("scenario/incident/{f}")))
        .collect();
    let [first, duplicate, repeat, search, ok] = alerts.as_slice() else {
        panic!("expected five events, found {files:?}")
    };
    assert!(
        alerts
            .windows(2)
            .all(|w| w[0].state_changed_at <= w[1].state_changed_at)
    );
    assert!(
        alerts
            .iter()
            .all(|a| a.account_id.as_deref() == Some("123456789012"))
    );
    assert!(
        alerts
            .iter()
            .all(|a| a.region.as_deref() == Some("eu-west-1"))
    );

    assert_eq!(first.alarm_name, "checkout-api-5xx");
    assert!(first.description.contains("[critical]"));
    assert_eq!(
        first.dimensions["LoadBalancer"],
        "app/checkout-alb/50dc6c495c0c9188"
    );
    assert_eq!(
        first.metric_name.as_deref(),
        Some("HTTPCode_Target_5XX_Count")
    );
    assert_eq!(
        format_time(&first.state_changed_at),
        "2026-11-20T02:10:00.000Z"
    );
    assert_eq!(duplicate.transport, Transport::Eventbridge);
    assert_eq!(duplicate.event_id, first.event_id);

    assert_eq!(repeat.fingerprint, first.fingerprint);
    assert_ne!(repeat.event_id, first.event_id);
    assert_eq!(
        (repeat.state, repeat.previous_state),
        (AlarmState::Alarm, Some(AlarmState::Alarm))
    );
    assert_ne!(repeat.reason, first.reason);

    assert_eq!(search.alarm_name, "search-latency-p99");
    assert_eq!(search.transport, Transport::Eventbridge);
    assert_eq!(search.labels["extended_statistic"], "p99");
    assert_ne!(search.fingerprint, first.fingerprint);
    assert!(!search.description.contains('['));

    assert_eq!(
        (ok.state, ok.fingerprint.as_str()),
        (AlarmState::Ok, first.fingerprint.as_str())
    );
    assert_eq!(
        format_time(&ok.state_changed_at),
        "2026-11-20T02:31:00.000Z"
    );
}

// ------------------------------------------------------------------------------------------------
// Alertmanager and generic

#[test]
fn alertmanager_firing_alert_maps_labels_annotations_and_severity() {
    let a = one("alertmanager/firing.json");
    assert_eq!(
        (a.source, a.transport),
        (Source::Alertmanager, Transport::Http)
    );
    assert_eq!(a.alarm_name, "KubePodCrashLooping");
    assert_eq!(a.state, AlarmState::Alarm);
    assert_eq!(format_time(&a.state_changed_at), "2024-03-11T09:14:37.118Z");
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.labels["severity"], "critical");
    assert_eq!(a.labels["team"], "payments");
    assert!(a.labels["annotation.runbook_url"].starts_with("https://"));
    assert!(a.description.contains("restarting 4.2 times"));
    assert!(a.reason.contains("CrashLoopBackOff"));
    assert_eq!(a.kind, "prometheus");
    assert_eq!(a.region.as_deref(), Some("eu-west-1"));
    assert_eq!(a.account_id.as_deref(), Some("111122223333"));
    assert_eq!(a.alarm_arn, None);
}

#[test]
fn alertmanager_resolved_alert_resolves_the_same_fingerprint_at_ends_at() {
    let firing = one("alertmanager/firing.json");
    let alerts = parse(&fixture("alertmanager/resolved.json")).unwrap();
    let [resolved, other] = alerts.as_slice() else {
        panic!()
    };
    assert_eq!(resolved.state, AlarmState::Ok);
    assert_eq!(
        format_time(&resolved.state_changed_at),
        "2024-03-11T09:41:07.118Z"
    );
    assert_eq!(resolved.fingerprint, firing.fingerprint);
    assert_ne!(resolved.event_id, firing.event_id);
    assert_eq!(other.state, AlarmState::Alarm);
    assert_eq!(other.severity, Severity::Medium, "warning is medium");
    assert_ne!(other.fingerprint, firing.fingerprint);
}

#[test]
fn alertmanager_entry_without_alertname_is_rejected_alone() {
    let mut am: Value = serde_json::from_slice(&fixture("alertmanager/resolved.json")).unwrap();
    am["alerts"][1]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("alertname");
    am["alerts"][0]["status"] = json!("firing");
    let parsed = parse_all(&serde_json::to_vec(&am).unwrap()).unwrap();
    assert_eq!(parsed.alerts.len(), 1);
    assert_eq!(
        parsed.rejected[0].to_string(),
        "alerts[1].labels.alertname: required field is missing"
    );
    am["version"] = json!("3");
    assert!(
        err_of(&serde_json::to_vec(&am).unwrap()).starts_with("version: unsupported Alertmanager")
    );
}

#[test]
fn generic_alert_maps_its_documented_fields() {
    let a = one("generic/firing.json");
    assert_eq!(
        (a.source, a.transport, a.kind.as_str()),
        (Source::Generic, Transport::Http, "generic")
    );
    assert_eq!(a.state, AlarmState::Alarm);
    assert_eq!(a.severity, Severity::High);
    assert_eq!(a.labels["severity"], "high");
    assert_eq!(
        a.labels["attempt"], "3",
        "numbers are accepted as label values"
    );
    assert_eq!(
        a.fingerprint,
        stable_id(&["generic", "backup-job-failed/orders-db"])
    );
    let resolved = one("generic/resolved.json");
    assert_eq!(resolved.state, AlarmState::Ok);
    assert_eq!(resolved.fingerprint, a.fingerprint);
    assert_ne!(resolved.event_id, a.event_id);
}

#[test]
fn generic_statuses_map_to_the_three_states_in_any_spelling() {
    for (status, state) in [
        ("firing", AlarmState::Alarm),
        ("ALARM", AlarmState::Alarm),
        ("Resolved", AlarmState::Ok),
        ("ok", AlarmState::Ok),
        ("unknown", AlarmState::InsufficientData),
        ("INSUFFICIENT_DATA", AlarmState::InsufficientData),
    ] {
        let input = json!({"version": "tocsin/v1", "name": "x", "status": status, "time": "2024-03-01T10:00:00+01:00"});
        let a = &parse(&serde_json::to_vec(&input).unwrap()).unwrap()[0];
        assert_eq!(a.state, state, "{status}");
        assert_eq!(format_time(&a.state_changed_at), "2024-03-01T09:00:00.000Z");
        assert_eq!(
            (a.severity, a.labels.get("severity")),
            (Severity::Medium, None)
        );
    }
}

#[test]
fn generic_alert_is_strict_about_its_own_vocabulary() {
    let cases = [
        (
            json!({"version": "tocsin/v2", "name": "x", "status": "firing", "time": "2024-03-01T10:00:00Z"}),
            "version: unsupported version \"tocsin/v2\"",
        ),
        (
            json!({"version": "tocsin/v1", "name": "x", "status": "burning", "time": "2024-03-01T10:00:00Z"}),
            "status: unknown status \"burning\"",
        ),
        (
            json!({"version": "tocsin/v1", "name": "x", "status": "ALARM", "time": "2024-03-01T10:00:00Z", "severity": "urgent-ish"}),
            "severity: unknown severity \"urgent-ish\"",
        ),
        (
            json!({"version": "tocsin/v1", "name": "x", "status": "OK", "time": "yesterday"}),
            "time: invalid timestamp \"yesterday\"",
        ),
        (
            json!({"version": "tocsin/v1", "status": "OK", "time": "2024-03-01T10:00:00Z"}),
            "name: required field is missing",
        ),
        (
            json!({"version": "tocsin/v1", "name": "x", "status": "OK", "time": "2024-03-01T10:00:00Z", "labels": {"a": {"b": 1}}}),
            "labels.a: expected a string, found an object",
        ),
        (
            json!({"version": "tocsin/v1", "alerts": []}),
            "alerts: empty",
        ),
    ];
    for (input, want) in cases {
        let got = err_of(&serde_json::to_vec(&input).unwrap());
        assert!(got.starts_with(want), "{got}");
    }
}

// ------------------------------------------------------------------------------------------------
// Text hygiene and error messages

#[test]
fn control_characters_in_free_text_are_replaced_not_rejected() {
    let mut m = sns_message("sns/metric-alarm.json");
    m["AlarmDescription"] = json!("line one\nline two\ttabbed\u{0}nul\u{1b}[31mred\u{202E}");
    m["NewStateReason"] = json!("bell\u{7}");
    let a = &parse(&sns_event(&[m.to_string()])).unwrap()[0];
    assert_eq!(
        a.description,
        "line one\nline two\ttabbed\u{FFFD}nul\u{FFFD}[31mred\u{FFFD}"
    );
    assert_eq!(a.reason, "bell\u{FFFD}");
}

#[test]
fn errors_always_display_on_one_line() {
    let e = ParseError::new("Records[0]", "bad \"a\nb\"\r\u{202E}");
    assert_eq!(e.to_string(), r#"Records[0]: bad "a\nb"\r\u{202e}"#);
    assert_eq!(
        ParseError::new("", "whole event").to_string(),
        "whole event"
    );
    let mut m = sns_message("sns/metric-alarm.json");
    m["NewStateValue"] = json!("AL\nARM");
    assert!(!err_of(&sns_event(&[m.to_string()])).contains('\n'));
}

#[test]
fn wrong_field_types_are_reported_with_their_path() {
    let mut m = sns_message("sns/metric-alarm.json");
    m["Trigger"]["Dimensions"] = json!([{"name": "DBInstanceIdentifier", "value": 7}]);
    assert_eq!(
        err_of(&sns_event(&[m.to_string()])),
        "Records[0].Sns.Message.Trigger.Dimensions[0].value: expected a string, found number 7"
    );
    let mut m = sns_message("sns/metric-alarm.json");
    m["Trigger"] = json!("CPUUtilization");
    assert_eq!(
        err_of(&sns_event(&[m.to_string()])),
        "Records[0].Sns.Message.Trigger: expected an object, found a string"
    );
    let mut m = sns_message("sns/metric-alarm.json");
    m["Trigger"]["Threshold"] = json!("80.0");
    assert_eq!(
        parse(&sns_event(&[m.to_string()])).unwrap()[0].threshold,
        Some(80.0)
    );
}

#[test]
fn alarm_message_without_trigger_or_rule_still_becomes_an_alert() {
    let mut m = sns_message("sns/metric-alarm.json");
    m.as_object_mut().unwrap().remove("Trigger");
    let a = &parse(&sns_event(&[m.to_string()])).unwrap()[0];
    assert_eq!((a.kind.as_str(), a.threshold), ("metric", None));
    assert_eq!(a.event_id, one("sns/metric-alarm.json").event_id);
}

#[test]
fn invalid_utf8_is_rejected_with_its_offset() {
    assert_eq!(
        err_of(b"{\"a\":\"\xff\"}"),
        "not UTF-8: invalid byte at offset 6"
    );
}

#[test]
fn inputs_that_are_not_objects_say_what_they_are() {
    assert_eq!(err_of(b"[1,2]"), "expected a JSON object, found an array");
    assert_eq!(
        err_of(b""),
        "not JSON: EOF while parsing a value at line 1 column 0"
    );
    assert_eq!(
        err_of(b"{}"),
        "unrecognised event shape: found no keys; expected an SNS event or notification, a CloudWatch alarm (SNS message, EventBridge event or Lambda alarm action), an EventBridge event, an Alertmanager webhook or a tocsin/v1 alert (see docs/sources.md)"
    );
    assert!(err_of(b"\xEF\xBB\xBF{}").starts_with("unrecognised event shape"));
    assert!(
        err_of(br#"{"AlarmName":"a","AlarmName":"b"}"#).starts_with("duplicate field `AlarmName`")
    );
}

// ------------------------------------------------------------------------------------------------
// No input panics

fn fixture_bytes() -> &'static [Vec<u8>] {
    static ALL: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        all_fixtures()
            .into_iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_all(&bytes);
    }

    #[test]
    fn byte_mutated_fixtures_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let fixtures = fixture_bytes();
        let mut bytes = fixtures[pick.index(fixtures.len())].clone();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(parsed) = parse_all(&bytes) {
            for e in parsed.rejected {
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }

    #[test]
    fn mutated_sns_messages_never_panic(
        pick in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..6),
    ) {
        // Mutating inside the Message string reaches the alarm parser, which raw byte edits of the
        // envelope mostly do not (they break the outer JSON first).
        let rel = ["sns/metric-alarm.json", "sns/metric-math.json", "sns/anomaly-detection.json", "sns/composite.json"][pick];
        let mut chars: Vec<char> = sns_message(rel).to_string().chars().collect();
        for (at, c) in edits {
            let i = at.index(chars.len());
            chars[i] = c;
        }
        let message: String = chars.into_iter().collect();
        match parse_all(&sns_event(&[message])) {
            Ok(parsed) => prop_assert_eq!(parsed.alerts.len() + parsed.rejected.len(), 1),
            Err(e) => prop_assert!(!e.to_string().contains('\n')),
        }
    }
}
