//! What CloudWatch added to alarm payloads in 2025–26, through each transport: contributors of
//! multi-time-series alarms, mute rules and propagated tags; and the fallbacks for older SNS
//! messages (region display names, no `AlarmArn`). The EventBridge forms are AWS's published
//! samples in `events/real/aws-docs-cloudwatch-2026/`; the SNS and Lambda forms are built from
//! them here, with each transport's spelling.

use serde_json::{Value, json};

use super::tests::{fixture, sns_event};
use super::*;
use crate::model::{AlarmState, Alert, Source, Transport};

const CONTRIBUTOR: &str = "real/aws-docs-cloudwatch-2026/contributor-state-change.json";
const PARENT: &str = "real/aws-docs-cloudwatch-2026/multi-time-series-alarm-state-change.json";
const ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:DynamoDBInsightsAlarm";

fn json_of(rel: &str) -> Value {
    serde_json::from_slice(&fixture(rel)).unwrap()
}

fn alerts_of(v: &Value) -> Vec<Alert> {
    parse(&serde_json::to_vec(v).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

fn only(v: &Value) -> Alert {
    let mut a = alerts_of(v);
    assert_eq!(a.len(), 1);
    a.remove(0)
}

/// The Lambda alarm action's form of an EventBridge alarm event: the same `detail` as `alarmData`.
fn as_lambda_action(eb: &Value) -> Value {
    json!({
        "source": "aws.cloudwatch",
        "alarmArn": eb["resources"][0],
        "accountId": eb["account"],
        "time": eb["time"],
        "region": eb["region"],
        "alarmData": eb["detail"],
    })
}

/// The SNS form of the contributor sample, as an SNS Lambda event from the alarm's topic.
fn contributor_by_sns(id: &str, state: &str, time: &str) -> Vec<u8> {
    let message = json!({
        "AlarmName": "DynamoDBInsightsAlarm",
        "AlarmDescription": "Metrics Insights alarm for DynamoDB ConsumedWriteCapacity per TableName",
        "AWSAccountId": "123456789012",
        "NewStateValue": state,
        "NewStateReason": "Threshold Crossed",
        "StateChangeTime": time,
        "Region": "US East (N. Virginia)",
        "AlarmArn": ARN,
        "AlarmContributor": {"Id": id, "Attributes": {"TableName": "example-dynamodb-table-name"}},
        "AlarmTags": [{"Key": "team", "Value": "storage"}],
        "AlarmTagsStatus": "SUCCESS",
    });
    sns_event(&[message.to_string()])
}

#[test]
fn a_contributor_is_its_own_alert_and_the_same_through_eventbridge_lambda_and_sns() {
    let eb = json_of(CONTRIBUTOR);
    let by_eb = only(&eb);
    assert_eq!(by_eb.source, Source::Cloudwatch);
    assert_eq!(by_eb.alarm_name, "DynamoDBInsightsAlarm");
    assert_eq!(by_eb.state, AlarmState::Alarm);
    assert_eq!(
        by_eb.previous_state, None,
        "a contributor event has no previousState"
    );
    assert_eq!(by_eb.kind, "metrics_insights");
    assert_eq!(by_eb.labels[ROLE_LABEL], "contributor");
    assert_eq!(by_eb.labels[CONTRIBUTOR_LABEL], "6d442278dba546f6");
    assert_eq!(by_eb.labels[PARENT_LABEL], "DynamoDBInsightsAlarm");
    assert_eq!(
        by_eb.labels["contributor.TableName"],
        "example-dynamodb-table-name"
    );

    let by_lambda = only(&as_lambda_action(&eb));
    assert_eq!(by_lambda.transport, Transport::LambdaAction);
    assert_eq!(by_lambda.fingerprint, by_eb.fingerprint);
    assert_eq!(by_lambda.event_id, by_eb.event_id);

    let by_sns = parse(&contributor_by_sns(
        "6d442278dba546f6",
        "ALARM",
        "2025-12-01T13:42:04.919+0000",
    ))
    .unwrap()
    .remove(0);
    assert_eq!(by_sns.transport, Transport::Sns);
    assert_eq!(by_sns.fingerprint, by_eb.fingerprint);
    assert_eq!(by_sns.event_id, by_eb.event_id);
    assert_eq!(
        by_sns.labels["contributor.TableName"],
        "example-dynamodb-table-name"
    );
    assert_eq!(by_sns.labels["tag.team"], "storage");
}

#[test]
fn each_contributor_opens_and_resolves_apart_from_the_others_and_from_the_parent() {
    let eb = json_of(CONTRIBUTOR);
    let firing = only(&eb);
    let mut recovered = eb.clone();
    recovered["detail"]["state"]["value"] = json!("OK");
    recovered["detail"]["state"]["timestamp"] = json!("2025-12-01T14:02:04.919+0000");
    let ok = only(&recovered);
    assert_eq!(ok.state, AlarmState::Ok);
    assert_eq!(
        ok.fingerprint, firing.fingerprint,
        "its recovery resolves it"
    );
    assert_ne!(ok.event_id, firing.event_id);

    let mut other = eb.clone();
    other["detail"]["alarmContributor"]["id"] = json!("0000aaaabbbbcccc");
    assert_ne!(only(&other).fingerprint, firing.fingerprint);

    let parent = only(&json_of(PARENT));
    assert_eq!(parent.labels[ROLE_LABEL], "parent");
    assert!(!parent.labels.contains_key(CONTRIBUTOR_LABEL));
    assert_ne!(parent.fingerprint, firing.fingerprint);
}

#[test]
fn a_contributor_without_an_id_is_rejected_with_its_path() {
    let mut eb = json_of(CONTRIBUTOR);
    eb["detail"]["alarmContributor"] = json!({"attributes": {}});
    let e = parse(&serde_json::to_vec(&eb).unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "detail.alarmContributor.id: required field is missing"
    );
}

#[test]
fn a_muted_transition_carries_its_rule_and_window_on_every_transport() {
    let eb = json_of("real/aws-docs-cloudwatch-2026/single-metric-muted.json");
    for a in [only(&eb), only(&as_lambda_action(&eb))] {
        assert_eq!(
            a.labels[MUTED_BY_LABEL],
            "arn:aws:cloudwatch:us-east-1:1234567890:alarm-mute-rule:testMute"
        );
        assert_eq!(a.labels[MUTE_START_LABEL], "2026-01-01T10:00:00.000Z");
        assert_eq!(a.labels[MUTE_END_LABEL], "2026-01-01T12:00:00.000Z");
    }
    let sns: Value = serde_json::from_slice(&fixture("sns/metric-alarm.json")).unwrap();
    let mut message: Value =
        serde_json::from_str(sns["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    message["MuteDetail"] = json!({
        "MutedByArn": "arn:aws:cloudwatch:eu-west-1:111122223333:alarm-mute-rule:nightly",
        "MuteWindowStart": "2024-03-01T10:00:00.000+0000",
        "MuteWindowEnd": "2024-03-01T12:00:00.000+0000"
    });
    let a = parse(&sns_event(&[message.to_string()])).unwrap().remove(0);
    assert_eq!(
        a.labels[MUTED_BY_LABEL],
        "arn:aws:cloudwatch:eu-west-1:111122223333:alarm-mute-rule:nightly"
    );
    assert_eq!(a.labels[MUTE_END_LABEL], "2024-03-01T12:00:00.000Z");
}

#[test]
fn propagated_tags_become_tag_labels_and_a_partial_list_says_so() {
    let mut eb = json_of("real/aws-docs-cloudwatch-2026/single-metric-muted.json");
    eb["detail"]["alarmTags"] = json!({"team": "payments", "tier": "1"});
    eb["detail"]["alarmTagsStatus"] = json!("SUCCESS");
    let a = only(&eb);
    assert_eq!(a.labels["tag.team"], "payments");
    assert_eq!(a.labels["tag.tier"], "1");
    assert!(!a.labels.contains_key("alarm_tags_status"));
    let mut lambda = as_lambda_action(&eb);
    lambda["alarmData"]["alarmTagsStatus"] = json!("FAILED");
    let b = only(&lambda);
    assert_eq!(b.labels["tag.team"], "payments");
    assert_eq!(b.labels["alarm_tags_status"], "FAILED");
}

/// An SNS notification as an HTTPS subscription receives it, from `topic`.
fn bare_notification(topic: &str, message: &Value) -> Value {
    json!({"Type": "Notification", "TopicArn": topic, "Message": message.to_string()})
}

#[test]
fn an_alarm_message_without_arn_or_known_region_takes_the_topic_region() {
    let with_arn = json!({
        "AlarmName": "orders-db-cpu-high",
        "AWSAccountId": "111122223333",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed",
        "StateChangeTime": "2014-01-15T10:15:00.123+0000",
        "Region": "EU (Ireland)",
        "AlarmArn": "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:orders-db-cpu-high",
    });
    let mut old = with_arn.clone();
    old.as_object_mut().unwrap().remove("AlarmArn");
    old["Region"] = json!("Somewhere New");
    let topic = "arn:aws:sns:eu-west-1:111122223333:alarms";
    let a = only(&bare_notification(topic, &old));
    assert_eq!(a.region.as_deref(), Some("eu-west-1"));
    assert_eq!(a.labels["region_from"], "sns_topic");
    let b = only(&bare_notification(topic, &with_arn));
    assert_eq!(
        a.alarm_arn, b.alarm_arn,
        "the ARN CloudWatch would have written"
    );
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(a.event_id, b.event_id);
}

#[test]
fn older_region_display_names_are_read() {
    for (name, code) in [
        ("EU - Ireland", "eu-west-1"),
        ("US East - N. Virginia", "us-east-1"),
    ] {
        let m = json!({
            "AlarmName": "a", "AWSAccountId": "111122223333", "NewStateValue": "OK",
            "StateChangeTime": "2014-01-15T10:15:00.123+0000", "Region": name,
        });
        assert_eq!(only(&m).region.as_deref(), Some(code), "{name}");
    }
}
