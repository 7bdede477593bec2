//! Tests of the EventBridge readers beyond CloudWatch alarms, over the sample events in `events/`:
//! AWS Health (every category and status, updates, pages, backup copies, organizational views),
//! the availability signals, unknown events kept, and bad input for each.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::tests::{all_fixtures, err_of, fixture, one, sns_event};
use super::*;
use crate::model::{AlarmState, Alert, Severity, Source, Transport, format_time, stable_id};

const ACCOUNT: &str = "111122223333";
const ISSUE_ARN: &str = "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/AWS_EC2_OPERATIONAL_ISSUE_7F3A91C2E4";

fn json_of(rel: &str) -> Value {
    serde_json::from_slice(&fixture(rel)).unwrap()
}

fn parse_value(v: &Value) -> Result<Parsed, ParseError> {
    parse_all(&serde_json::to_vec(v).unwrap())
}

fn err_of_value(v: &Value) -> String {
    err_of(&serde_json::to_vec(v).unwrap())
}

// ------------------------------------------------------------------------------------------------
// AWS Health

#[test]
fn health_issue_maps_every_canonical_field() {
    let a = one("health/issue-open.json");
    assert_eq!(a.source, Source::Health);
    assert_eq!(a.transport, Transport::Eventbridge);
    assert_eq!(a.alarm_name, "AWS_EC2_OPERATIONAL_ISSUE");
    assert_eq!(a.alarm_arn.as_deref(), Some(ISSUE_ARN));
    assert_eq!(a.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(a.region.as_deref(), Some("eu-west-1"));
    assert_eq!(a.state, AlarmState::Alarm);
    assert_eq!(format_time(&a.state_changed_at), "2026-11-20T08:05:00.000Z");
    assert_eq!(a.kind, "issue");
    assert_eq!(a.severity, Severity::High);
    assert!(
        a.description
            .starts_with("We are investigating increased API error rates")
    );
    assert_eq!(a.reason, "AWS Health EC2 issue open in eu-west-1");
    let l = &a.labels;
    assert_eq!(l["event_type_code"], "AWS_EC2_OPERATIONAL_ISSUE");
    assert_eq!(l["event_type_category"], "issue");
    assert_eq!(l["status_code"], "open");
    assert_eq!(l["health_service"], "EC2");
    assert_eq!(l["actionability"], "ACTION_MAY_BE_REQUIRED");
    assert_eq!(l["personas"], "OPERATIONS");
    assert_eq!(l["event_scope_code"], "ACCOUNT_SPECIFIC");
    assert_eq!(l["severity"], "high");
    assert_eq!(l["affected_entity_count"], "2");
    assert_eq!(
        l["affected_entities"],
        "i-0a1b2c3d4e5f60001,i-0a1b2c3d4e5f60002"
    );
    assert_eq!(
        l["affected_entity_statuses"],
        "i-0a1b2c3d4e5f60001=IMPAIRED,i-0a1b2c3d4e5f60002=IMPAIRED"
    );
    // The page suffix `-1` is not part of the communication.
    assert_eq!(l["communication_id"], "2f0c8a5e61d34b7a9e0c1d2e3f405161");
    assert_eq!(l["start_time"], "2026-11-20T08:02:00.000Z");
    assert!(!l.contains_key("delivery_account"), "same account: {l:?}");
    assert_eq!(a.fingerprint, stable_id(&["health", ACCOUNT, ISSUE_ARN]));
    assert_eq!(
        a.event_id,
        stable_id(&[
            "health",
            ACCOUNT,
            ISSUE_ARN,
            "2f0c8a5e61d34b7a9e0c1d2e3f405161",
            "2026-11-20T08:05:00.000Z"
        ])
    );
}

#[test]
fn every_health_category_and_status_gets_its_kind_state_and_default_severity() {
    let cases = [
        (
            "health/issue-open.json",
            "issue",
            AlarmState::Alarm,
            Severity::High,
        ),
        (
            "health/issue-closed.json",
            "issue",
            AlarmState::Ok,
            Severity::High,
        ),
        (
            "health/investigation.json",
            "investigation",
            AlarmState::Alarm,
            Severity::High,
        ),
        (
            "health/scheduled-change-upcoming.json",
            "scheduled_change",
            AlarmState::Alarm,
            Severity::Medium,
        ),
        (
            "health/account-notification.json",
            "account_notification",
            AlarmState::Alarm,
            Severity::Low,
        ),
        (
            "health/abuse.json",
            "abuse",
            AlarmState::Alarm,
            Severity::High,
        ),
    ];
    for (rel, kind, state, severity) in cases {
        let a = one(rel);
        assert_eq!(
            (a.kind.as_str(), a.state, a.severity),
            (kind, state, severity),
            "{rel}"
        );
        assert_eq!(a.labels["severity"], severity.as_str(), "{rel}");
    }
    let upcoming = one("health/scheduled-change-upcoming.json");
    assert_eq!(upcoming.labels["status_code"], "upcoming");
    assert_eq!(upcoming.labels["health_scheduled"], "true");
    assert!(
        !one("health/issue-open.json")
            .labels
            .contains_key("health_scheduled")
    );
    let abuse = one("health/abuse.json");
    assert_eq!(abuse.labels["health_abuse"], "true");
    assert_eq!(abuse.labels["detail_type"], "AWS Health Abuse Event");
    assert_eq!(abuse.labels["personas"], "SECURITY,OPERATIONS");
}

#[test]
fn health_times_are_read_as_rfc_1123_with_unpadded_days() {
    let raw = String::from_utf8(fixture("health/scheduled-change-upcoming.json")).unwrap();
    assert!(
        raw.contains("\"Thu, 3 Dec 2026 02:00:00 GMT\""),
        "the fixture uses an unpadded day"
    );
    let a = one("health/scheduled-change-upcoming.json");
    assert_eq!(a.labels["start_time"], "2026-12-03T02:00:00.000Z");
    assert_eq!(a.labels["end_time"], "2026-12-03T04:00:00.000Z");
}

#[test]
fn organizational_view_takes_the_affected_account_and_event_region_not_the_envelopes() {
    let a = one("health/organizational-view.json");
    let raw = json_of("health/organizational-view.json");
    assert_eq!(raw["account"], "999988887777");
    assert_eq!(raw["region"], "us-east-1");
    assert_eq!(a.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(a.region.as_deref(), Some("eu-central-1"));
    assert_eq!(a.labels["delivery_account"], "999988887777");
    assert_eq!(a.labels["delivery_region"], "us-east-1");
    assert_eq!(a.labels["health_truncated"], "true");
    assert_eq!(a.labels["event_metadata.truncated"], "true");
    // The affected account is part of the identity: the same event for two member accounts is two
    // alerts.
    let mut other = raw.clone();
    other["detail"]["affectedAccount"] = json!("444455556666");
    let b = &parse_value(&other).unwrap().alerts[0];
    assert_ne!(a.fingerprint, b.fingerprint);
}

#[test]
fn global_event_keeps_global_as_its_region() {
    let a = one("health/account-notification.json");
    assert_eq!(a.region.as_deref(), Some("global"));
    assert_eq!(a.labels["delivery_region"], "us-east-1");
    assert_eq!(a.labels["affected_entity_count"], "0");
    assert!(!a.labels.contains_key("affected_entities"));
}

#[test]
fn health_updates_share_a_fingerprint_and_change_the_digest_only_when_content_changes() {
    let open = one("health/issue-open.json");
    let updated = one("health/issue-updated.json");
    let resent = one("health/issue-resent-unchanged.json");
    let closed = one("health/issue-closed.json");
    for a in [&updated, &resent, &closed] {
        assert_eq!(a.fingerprint, open.fingerprint);
    }
    let ids: std::collections::BTreeSet<_> = [&open, &updated, &resent, &closed]
        .iter()
        .map(|a| a.event_id.clone())
        .collect();
    assert_eq!(ids.len(), 4, "each update is its own event");
    let digest = |a: &Alert| a.labels[HEALTH_DIGEST_LABEL].clone();
    assert_ne!(
        digest(&open),
        digest(&updated),
        "description and entities changed"
    );
    // Same status, description and entities (listed in another order): nothing new to tell.
    assert_eq!(digest(&updated), digest(&resent));
    assert_ne!(digest(&resent), digest(&closed));
    assert_eq!(crate::update::content_update(&updated, &resent), None);
    assert!(crate::update::content_update(&open, &updated).is_some());
}

#[test]
fn a_changed_entity_status_alone_changes_the_digest() {
    let mut v = json_of("health/issue-updated.json");
    let before = parse_value(&v).unwrap().alerts.remove(0);
    v["detail"]["affectedEntities"][1]["status"] = json!("UNIMPAIRED");
    let after = parse_value(&v).unwrap().alerts.remove(0);
    assert_ne!(
        before.labels[HEALTH_DIGEST_LABEL],
        after.labels[HEALTH_DIGEST_LABEL]
    );
    assert_eq!(before.fingerprint, after.fingerprint);
}

#[test]
fn the_same_health_event_through_sns_keeps_its_identity() {
    let direct = one("health/issue-open.json");
    let raw = String::from_utf8(fixture("health/issue-open.json")).unwrap();
    let via_sns = &parse(&sns_event(&[raw])).unwrap()[0];
    assert_eq!(via_sns.transport, Transport::Sns);
    assert_eq!(via_sns.event_id, direct.event_id);
    assert_eq!(via_sns.fingerprint, direct.fingerprint);
}

fn page(rel: &str) -> HealthPage {
    let mut parsed = parse_all(&fixture(rel)).unwrap();
    assert!(
        parsed.alerts.is_empty(),
        "{rel}: a page is not an alert yet"
    );
    assert_eq!(parsed.pages.len(), 1, "{rel}");
    parsed.pages.remove(0)
}

#[test]
fn paged_health_event_is_joined_into_one_alert_in_either_order() {
    let (p1, p2) = (
        page("health/paged/page-1-of-2.json"),
        page("health/paged/page-2-of-2.json"),
    );
    assert_eq!((p1.page, p1.total, p2.page, p2.total), (1, 2, 2, 2));
    assert_eq!(
        p1.key, p2.key,
        "one event, whatever the page's communicationId suffix"
    );
    let joined = |first: &HealthPage, second: &HealthPage| {
        let mut r = Reassembly::new();
        assert_eq!(r.add(first.clone()), None);
        assert_eq!(r.pending(), 1);
        // A redelivered page changes nothing.
        assert_eq!(r.add(first.clone()), None);
        let a = r.add(second.clone()).expect("complete after the last page");
        assert_eq!(r.pending(), 0);
        a
    };
    let a = joined(&p1, &p2);
    let b = joined(&p2, &p1);
    assert_eq!(a, b);
    assert_eq!(a.event_id, p1.key);
    assert_eq!(a.labels["affected_entity_count"], "5");
    assert_eq!(
        a.labels["affected_entities"],
        "i-0f000000000000001,i-0f000000000000002,i-0f000000000000003,i-0f000000000000004,i-0f000000000000005"
    );
    assert!(!a.labels.contains_key("health_pages"));
    assert_eq!(a.region.as_deref(), Some("us-east-1"));
}

#[test]
fn a_page_alone_is_marked_partial_and_an_unfinished_reassembly_still_yields_it() {
    let strict = parse(&fixture("health/paged/page-2-of-2.json")).unwrap();
    assert_eq!(strict.len(), 1);
    assert_eq!(strict[0].labels["health_pages"], "2 of 2");
    assert_eq!(strict[0].labels["affected_entity_count"], "2");

    let mut r = Reassembly::new();
    assert_eq!(r.add(page("health/paged/page-2-of-2.json")), None);
    let left = r.finish();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].labels["health_pages"], "received 1 of 2");
    assert_eq!(
        left[0].labels["affected_entities"],
        "i-0f000000000000004,i-0f000000000000005"
    );
}

#[test]
fn pages_of_different_updates_are_not_mixed() {
    let p1 = page("health/paged/page-1-of-2.json");
    let mut v = json_of("health/paged/page-2-of-2.json");
    v["detail"]["lastUpdatedTime"] = json!("Fri, 20 Nov 2026 14:30:00 GMT");
    let later = parse_value(&v).unwrap().pages.remove(0);
    assert_ne!(p1.key, later.key);
    let mut r = Reassembly::new();
    assert_eq!(r.add(p1), None);
    assert_eq!(r.add(later), None);
    assert_eq!(r.pending(), 2);
}

#[test]
fn backup_region_copy_is_skipped_with_its_reason_not_rejected() {
    let parsed = parse_all(&fixture("health/backup-region-copy.json")).unwrap();
    assert!(parsed.alerts.is_empty() && parsed.rejected.is_empty() && parsed.pages.is_empty());
    assert_eq!(parsed.skipped.len(), 1);
    let s = &parsed.skipped[0];
    assert_eq!(s.at, "detail.backupEvent");
    assert!(s.reason.contains("backup region"), "{s}");
    assert!(s.reason.contains("AWS_EC2_OPERATIONAL_ISSUE"), "{s}");
    assert_eq!(
        parse(&fixture("health/backup-region-copy.json")).unwrap(),
        vec![]
    );
    // Through SNS, the skip names the record it came in.
    let raw = String::from_utf8(fixture("health/backup-region-copy.json")).unwrap();
    let parsed = parse_all(&sns_event(&[raw])).unwrap();
    assert_eq!(
        parsed.skipped[0].at,
        "Records[0].Sns.Message.detail.backupEvent"
    );
    // The flag may also sit in eventMetadata; "false" is no backup.
    let mut v = json_of("health/backup-region-copy.json");
    v["detail"].as_object_mut().unwrap().remove("backupEvent");
    v["detail"]["eventMetadata"] = json!({"backupEvent": "true"});
    assert_eq!(parse_value(&v).unwrap().skipped.len(), 1);
    v["detail"]["eventMetadata"] = json!({"backupEvent": "false"});
    assert_eq!(parse_value(&v).unwrap().alerts.len(), 1);
}

#[test]
fn bad_health_fields_are_named_with_their_path() {
    let base = json_of("health/issue-open.json");
    let cases: [(&str, Value, &str); 7] = [
        (
            "eventArn",
            Value::Null,
            "detail.eventArn: required field is missing",
        ),
        (
            "affectedEntities",
            json!({"entityValue": "i-1"}),
            "detail.affectedEntities: expected an array, found an object",
        ),
        (
            "affectedEntities",
            json!([{"entityValue": "i-1"}, {"status": "IMPAIRED"}]),
            "detail.affectedEntities[1].entityValue: required field is missing",
        ),
        (
            "personas",
            json!("OPERATIONS"),
            "detail.personas: expected an array, found a string",
        ),
        (
            "totalPages",
            json!("two"),
            r#"detail.totalPages: expected a number, found string "two""#,
        ),
        (
            "eventTypeCode",
            json!("AWS_\u{202E}EC2"),
            "detail.eventTypeCode: bidirectional control character U+202E",
        ),
        (
            "eventDescription",
            json!([{"language": "en_US", "latestDescription": 5}]),
            "detail.eventDescription[0].latestDescription: expected a string, found number 5",
        ),
    ];
    for (field, value, want) in cases {
        let mut v = base.clone();
        v["detail"][field] = value;
        let got = err_of_value(&v);
        assert!(got.starts_with(want), "{field}: {got}");
    }
    let mut v = base.clone();
    v["detail"] = json!("not an object");
    assert_eq!(
        err_of_value(&v),
        "detail: expected an object, found a string"
    );
}

#[test]
fn unknown_health_category_is_read_with_a_medium_default() {
    let mut v = json_of("health/issue-open.json");
    v["detail"]["eventTypeCategory"] = json!("futureCategory");
    let a = parse_value(&v).unwrap().alerts.remove(0);
    assert_eq!((a.kind.as_str(), a.severity), ("health", Severity::Medium));
    assert_eq!(a.labels["event_type_category"], "futureCategory");
}

// ------------------------------------------------------------------------------------------------
// Availability signals

#[test]
fn each_signal_maps_to_its_source_kind_name_state_and_default_severity() {
    use AlarmState::{Alarm, Ok as Resolved};
    use Severity::*;
    let cases: [(&str, Source, &str, &str, AlarmState, Severity); 24] = [
        (
            "synthetics/canary-run-failure.json",
            Source::Synthetics,
            "canary_run",
            "checkout-journey",
            Alarm,
            High,
        ),
        (
            "synthetics/canary-run-success.json",
            Source::Synthetics,
            "canary_run",
            "checkout-journey",
            Resolved,
            High,
        ),
        (
            "synthetics/canary-status-error.json",
            Source::Synthetics,
            "canary_status",
            "login-api",
            Alarm,
            Medium,
        ),
        (
            "ecs/deployment-failed.json",
            Source::Ecs,
            "deployment",
            "checkout-api-deployment",
            Alarm,
            High,
        ),
        (
            "ecs/deployment-completed.json",
            Source::Ecs,
            "deployment",
            "checkout-api-deployment",
            Resolved,
            High,
        ),
        (
            "ecs/service-action-error.json",
            Source::Ecs,
            "service_action",
            "checkout-api",
            Alarm,
            High,
        ),
        (
            "ecs/service-action-warn.json",
            Source::Ecs,
            "service_action",
            "search-api",
            Alarm,
            Medium,
        ),
        (
            "ecs/service-steady-state.json",
            Source::Ecs,
            "service_action",
            "checkout-api",
            Resolved,
            Medium,
        ),
        (
            "ecs/task-stopped.json",
            Source::Ecs,
            "task_stopped",
            "checkout-api-task-stopped",
            Alarm,
            Medium,
        ),
        (
            "rds/instance-failover-started.json",
            Source::Rds,
            "db_instance",
            "orders-db",
            Alarm,
            Critical,
        ),
        (
            "rds/instance-failover-completed.json",
            Source::Rds,
            "db_instance",
            "orders-db",
            Resolved,
            Critical,
        ),
        (
            "rds/instance-low-storage.json",
            Source::Rds,
            "db_instance",
            "reporting-db",
            Alarm,
            Medium,
        ),
        (
            "rds/cluster-failover-started.json",
            Source::Rds,
            "db_cluster",
            "ledger-aurora",
            Alarm,
            Critical,
        ),
        (
            "rds/cluster-failover-completed.json",
            Source::Rds,
            "db_cluster",
            "ledger-aurora",
            Resolved,
            Critical,
        ),
        (
            "ec2/instance-stopped.json",
            Source::Ec2,
            "instance_state",
            "i-0b1c2d3e4f5a60001",
            Alarm,
            Low,
        ),
        (
            "ec2/instance-running.json",
            Source::Ec2,
            "instance_state",
            "i-0b1c2d3e4f5a60001",
            Resolved,
            Low,
        ),
        (
            "ec2/spot-interruption.json",
            Source::Ec2,
            "spot_interruption",
            "i-0b1c2d3e4f5a60077",
            Alarm,
            Medium,
        ),
        (
            "autoscaling/launch-unsuccessful.json",
            Source::Autoscaling,
            "launch",
            "web-asg-launch",
            Alarm,
            High,
        ),
        (
            "autoscaling/launch-successful.json",
            Source::Autoscaling,
            "launch",
            "web-asg-launch",
            Resolved,
            High,
        ),
        (
            "autoscaling/terminate-unsuccessful.json",
            Source::Autoscaling,
            "terminate",
            "batch-asg-terminate",
            Alarm,
            High,
        ),
        (
            "autoscaling/instance-refresh-failed.json",
            Source::Autoscaling,
            "instance_refresh",
            "web-asg-instance-refresh",
            Alarm,
            High,
        ),
        (
            "guardduty/finding-high.json",
            Source::Guardduty,
            "finding",
            "CryptoCurrency:EC2/BitcoinTool.B!DNS",
            Alarm,
            High,
        ),
        (
            "guardduty/finding-medium.json",
            Source::Guardduty,
            "finding",
            "Recon:EC2/PortProbeUnprotectedPort",
            Alarm,
            Medium,
        ),
        (
            "guardduty/finding-low.json",
            Source::Guardduty,
            "finding",
            "Policy:IAMUser/RootCredentialUsage",
            Alarm,
            Low,
        ),
    ];
    for (rel, source, kind, name, state, severity) in cases {
        let a = one(rel);
        assert_eq!(
            (
                a.source,
                a.kind.as_str(),
                a.alarm_name.as_str(),
                a.state,
                a.severity
            ),
            (source, kind, name, state, severity),
            "{rel}"
        );
        assert_eq!(a.labels["severity"], severity.as_str(), "{rel}");
        assert_eq!(a.account_id.as_deref(), Some(ACCOUNT), "{rel}");
        assert_eq!(a.region.as_deref(), Some("eu-west-1"), "{rel}");
        assert_eq!(a.transport, Transport::Eventbridge, "{rel}");
        assert!(!a.reason.is_empty(), "{rel}");
    }
}

#[test]
fn a_resolution_shares_the_fingerprint_of_what_it_resolves() {
    for (firing, resolving) in [
        (
            "synthetics/canary-run-failure.json",
            "synthetics/canary-run-success.json",
        ),
        (
            "ecs/deployment-failed.json",
            "ecs/deployment-completed.json",
        ),
        (
            "ecs/service-action-error.json",
            "ecs/service-steady-state.json",
        ),
        (
            "rds/instance-failover-started.json",
            "rds/instance-failover-completed.json",
        ),
        (
            "rds/cluster-failover-started.json",
            "rds/cluster-failover-completed.json",
        ),
        ("ec2/instance-stopped.json", "ec2/instance-running.json"),
        (
            "autoscaling/launch-unsuccessful.json",
            "autoscaling/launch-successful.json",
        ),
        (
            "guardduty/finding-high.json",
            "guardduty/finding-archived.json",
        ),
        (
            "securityhub/findings-imported.json",
            "securityhub/finding-archived.json",
        ),
    ] {
        let (a, b) = (&parse(&fixture(firing)).unwrap()[0], one(resolving));
        assert_eq!(a.state, AlarmState::Alarm, "{firing}");
        assert_eq!(b.state, AlarmState::Ok, "{resolving}");
        assert_eq!(a.fingerprint, b.fingerprint, "{firing} / {resolving}");
        assert_ne!(a.event_id, b.event_id);
    }
    // Different things never share one.
    assert_ne!(
        one("ecs/deployment-failed.json").fingerprint,
        one("ecs/service-action-error.json").fingerprint
    );
    assert_ne!(
        one("autoscaling/launch-unsuccessful.json").fingerprint,
        one("autoscaling/instance-refresh-failed.json").fingerprint
    );
    assert_ne!(
        one("synthetics/canary-run-failure.json").fingerprint,
        one("synthetics/canary-status-error.json").fingerprint
    );
}

#[test]
fn stopped_task_carries_its_stopped_reason_and_container_exits() {
    let a = one("ecs/task-stopped.json");
    assert_eq!(
        a.labels["stopped_reason"],
        "Essential container in task exited"
    );
    assert_eq!(a.labels["stop_code"], "EssentialContainerExited");
    assert_eq!(a.labels["ecs_service"], "checkout-api");
    assert_eq!(a.labels["ecs_cluster"], "prod-cluster");
    assert!(a.reason.contains("Essential container in task exited"));
    assert!(
        a.description.contains("app exit 137 (OutOfMemoryError"),
        "{}",
        a.description
    );
    // A stop the scheduler asked for is for the record only.
    let mut v = json_of("ecs/task-stopped.json");
    v["detail"]["stopCode"] = json!("ServiceSchedulerInitiated");
    assert_eq!(parse_value(&v).unwrap().alerts[0].severity, Severity::Info);
}

#[test]
fn spot_warning_and_the_instances_state_changes_are_one_alert() {
    let mut v = json_of("ec2/instance-stopped.json");
    v["detail"]["instance-id"] = json!("i-0b1c2d3e4f5a60077");
    let stopped = parse_value(&v).unwrap().alerts.remove(0);
    assert_eq!(
        stopped.fingerprint,
        one("ec2/spot-interruption.json").fingerprint
    );
}

#[test]
fn transitional_states_are_skipped_with_a_reason() {
    for (rel, says) in [
        (
            "ecs/deployment-in-progress.json",
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
        ),
        ("ecs/task-running.json", "\"RUNNING\", not STOPPED"),
        ("ec2/instance-pending.json", "is pending"),
    ] {
        let p = parse_all(&fixture(rel)).unwrap();
        assert!(p.alerts.is_empty() && p.rejected.is_empty(), "{rel}");
        assert_eq!(p.skipped.len(), 1, "{rel}");
        assert!(
            p.skipped[0].reason.contains(says),
            "{rel}: {}",
            p.skipped[0]
        );
    }
}

#[test]
fn guardduty_bands_and_recurrences() {
    let band = |score: f64| {
        let mut v = json_of("guardduty/finding-medium.json");
        v["detail"]["severity"] = json!(score);
        parse_value(&v).unwrap().alerts.remove(0).severity
    };
    assert_eq!(band(1.0), Severity::Low);
    assert_eq!(band(3.9), Severity::Low);
    assert_eq!(band(4.0), Severity::Medium);
    assert_eq!(band(6.9), Severity::Medium);
    assert_eq!(band(7.0), Severity::High);
    assert_eq!(band(8.9), Severity::High);
    let a = one("guardduty/finding-high.json");
    assert_eq!(a.labels["finding_id"], "a4c1f0e2d3b4a5968778695a4b3c2d1e");
    assert_eq!(a.labels["resource_type"], "Instance");
    // Envelope fields are named as themselves, not under `detail`.
    let mut v = json_of("ec2/instance-stopped.json");
    v.as_object_mut().unwrap().remove("time");
    assert_eq!(err_of_value(&v), "time: required field is missing");
    let mut v = json_of("ecs/deployment-failed.json");
    v["resources"] = json!([]);
    assert_eq!(
        err_of_value(&v),
        "resources: required field is missing (the ECS service ARN)"
    );
    // A recurrence with the same update time is a new event (its count rose), not a dedup.
    let mut v = json_of("guardduty/finding-high.json");
    v["detail"]["service"]["count"] = json!(2);
    assert_ne!(parse_value(&v).unwrap().alerts[0].event_id, a.event_id);
}

#[test]
fn security_hub_gives_one_alert_per_finding_and_rejects_a_bad_one_alone() {
    let alerts = parse(&fixture("securityhub/findings-imported.json")).unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].severity, Severity::Critical);
    assert_eq!(alerts[0].state, AlarmState::Alarm);
    assert_eq!(
        alerts[0].alarm_name,
        "S3 general purpose buckets should block public access"
    );
    assert_eq!(
        alerts[0].labels["resources"],
        "arn:aws:s3:::orders-exports-111122223333"
    );
    assert_eq!(alerts[0].labels["compliance_status"], "FAILED");
    assert_eq!(
        alerts[1].state,
        AlarmState::Ok,
        "workflow RESOLVED resolves"
    );
    assert_eq!(alerts[1].severity, Severity::Low);
    assert_ne!(alerts[0].fingerprint, alerts[1].fingerprint);
    let mut v = json_of("securityhub/findings-imported.json");
    v["detail"]["findings"][1]["Severity"] = json!({"Label": "SEVERE"});
    let p = parse_value(&v).unwrap();
    assert_eq!(p.alerts.len(), 1);
    assert_eq!(p.rejected.len(), 1);
    assert!(
        p.rejected[0]
            .to_string()
            .starts_with("detail.findings[1].Severity.Label: unknown severity \"SEVERE\""),
        "{}",
        p.rejected[0]
    );
    let mut v = json_of("securityhub/findings-imported.json");
    v["detail"]["findings"][0]["Workflow"]["Status"] = json!("SUPPRESSED");
    assert_eq!(parse_value(&v).unwrap().alerts[0].state, AlarmState::Ok);
    v["detail"]["findings"] = json!([]);
    assert_eq!(
        err_of_value(&v),
        "detail.findings: empty: the event carries no findings"
    );
}

#[test]
fn rds_failover_comes_first_among_categories() {
    let mut v = json_of("rds/instance-low-storage.json");
    v["detail"]["EventCategories"] = json!(["low storage", "failover"]);
    assert_eq!(
        parse_value(&v).unwrap().alerts[0].severity,
        Severity::Critical
    );
    v["detail"]["EventCategories"] = json!(["notification"]);
    assert_eq!(parse_value(&v).unwrap().alerts[0].severity, Severity::Low);
    v["detail"]["Message"] = json!("DB instance restarted.");
    assert_eq!(parse_value(&v).unwrap().alerts[0].state, AlarmState::Ok);
}

// ------------------------------------------------------------------------------------------------
// Unknown EventBridge events

#[test]
fn unknown_eventbridge_events_are_kept_with_their_source_and_detail_type() {
    let (rel, source, detail_type) = (
        "eventbridge-other/custom-order-failed.json",
        "com.example.orders",
        "Order Processing Failed",
    );
    let a = one(rel);
    assert_eq!(a.source, Source::Generic, "{rel}");
    assert_eq!(a.kind, "eventbridge");
    assert_eq!(a.alarm_name, detail_type);
    assert_eq!(a.labels["event_source"], source);
    assert_eq!(a.labels["detail_type"], detail_type);
    assert_eq!(a.severity, Severity::Low);
    assert_eq!(a.state, AlarmState::Alarm);
    assert!(a.labels["resources"].starts_with("arn:aws:"));
    // The same event delivered twice is one event; another event of the same kind is a repeat.
    let v = json_of("eventbridge-other/custom-order-failed.json");
    let a = parse_value(&v).unwrap().alerts.remove(0);
    assert_eq!(a, parse_value(&v).unwrap().alerts.remove(0));
    let mut later = v.clone();
    later["id"] = json!("c0300000-0001-4000-8000-0000000000ff");
    later["time"] = json!("2026-11-21T03:00:00Z");
    let b = parse_value(&later).unwrap().alerts.remove(0);
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_ne!(a.event_id, b.event_id);
}

#[test]
fn builds_pipelines_jobs_and_deployments_fire_on_failure_and_resolve_on_success() {
    let v = json_of("eventbridge-other/codepipeline-failed.json");
    let failed = parse_value(&v).unwrap().alerts.remove(0);
    assert_eq!(failed.alarm_name, "checkout-release-pipeline");
    assert_eq!(failed.kind, "pipeline");
    assert_eq!(failed.state, AlarmState::Alarm);
    assert_eq!(failed.severity, Severity::Medium);
    assert_eq!(failed.labels["outcome_state"], "FAILED");
    let mut ok = v.clone();
    ok["detail"]["state"] = json!("SUCCEEDED");
    ok["time"] = json!("2026-11-21T02:30:00Z");
    let resolved = parse_value(&ok).unwrap().alerts.remove(0);
    assert_eq!(resolved.state, AlarmState::Ok);
    assert_eq!(resolved.fingerprint, failed.fingerprint);
    let mut started = v.clone();
    started["detail"]["state"] = json!("STARTED");
    let p = parse_value(&started).unwrap();
    assert!(p.alerts.is_empty());
    assert!(
        p.skipped[0]
            .reason
            .contains("neither a failure nor a recovery"),
        "{}",
        p.skipped[0]
    );
    for (source, detail_type, detail) in [
        (
            "aws.codebuild",
            "CodeBuild Build State Change",
            json!({"project-name": "api", "build-status": "FAILED"}),
        ),
        (
            "aws.glue",
            "Glue Job State Change",
            json!({"jobName": "etl", "state": "TIMEOUT", "message": "ran past 48h"}),
        ),
        (
            "aws.codedeploy",
            "CodeDeploy Deployment State-change Notification",
            json!({"deploymentGroup": "web", "application": "shop", "state": "FAILURE"}),
        ),
    ] {
        let mut e = v.clone();
        e["source"] = json!(source);
        e["detail-type"] = json!(detail_type);
        e["detail"] = detail;
        let a = parse_value(&e).unwrap().alerts.remove(0);
        assert_eq!(a.state, AlarmState::Alarm, "{detail_type}");
    }
}

#[test]
fn routine_events_are_skipped_saying_what_they_were_about() {
    let mut v = json_of("eventbridge-other/custom-order-failed.json");
    v["source"] = json!("aws.autoscaling");
    v["detail-type"] = json!("EC2 Instance-launch Lifecycle Action");
    v["detail"] = json!({"AutoScalingGroupName": "web", "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"});
    let p = parse_value(&v).unwrap();
    assert!(p.alerts.is_empty());
    assert_eq!(
        p.skipped[0].reason,
        "EC2 Instance-launch Lifecycle Action: a routine aws.autoscaling event (AutoScalingGroupName \"web\", LifecycleTransition \"autoscaling:EC2_INSTANCE_LAUNCHING\"): nothing in it says something is wrong"
    );
    // An RDS snapshot event is routine unless it says it failed.
    v["source"] = json!("aws.rds");
    v["detail-type"] = json!("RDS DB Snapshot Event");
    v["detail"] = json!({"SourceIdentifier": "db-1-snap", "EventCategories": ["creation"], "Message": "Creating manual snapshot"});
    assert_eq!(parse_value(&v).unwrap().skipped.len(), 1);
    v["detail"]["EventCategories"] = json!(["failure"]);
    v["detail"]["Message"] = json!("Snapshot failed");
    assert_eq!(parse_value(&v).unwrap().alerts[0].state, AlarmState::Alarm);
}

#[test]
fn alarm_configuration_changes_are_skipped_naming_the_alarm_and_operation() {
    let p = parse_all(&fixture(
        "eventbridge-other/cloudwatch-alarm-config-change.json",
    ))
    .unwrap();
    assert!(p.alerts.is_empty());
    assert_eq!(p.skipped.len(), 1);
    let reason = &p.skipped[0].reason;
    assert!(
        reason.starts_with("CloudWatch Alarm Configuration Change: alarm "),
        "{reason}"
    );
    assert!(reason.ends_with("not a state change"), "{reason}");
}

#[test]
fn unknown_event_with_a_huge_detail_keeps_a_cut_description() {
    let mut v = json_of("eventbridge-other/custom-order-failed.json");
    v["detail"] = json!({"blob": "x".repeat(5000)});
    let a = parse_value(&v).unwrap().alerts.remove(0);
    assert!(
        a.description.chars().count() <= 1001,
        "{}",
        a.description.len()
    );
    assert!(a.description.ends_with('…'));
}

// ------------------------------------------------------------------------------------------------
// No input panics

const EVENT_DIRS: [&str; 9] = [
    "health/",
    "synthetics/",
    "ecs/",
    "rds/",
    "ec2/",
    "autoscaling/",
    "guardduty/",
    "securityhub/",
    "eventbridge-other/",
];

fn eventbridge_fixtures() -> &'static [Value] {
    static ALL: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let root = super::tests::events_dir();
        all_fixtures()
            .into_iter()
            .filter(|p| {
                let rel = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                EVENT_DIRS.iter().any(|d| rel.starts_with(d))
            })
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    })
}

/// Every path to a value inside `v`, objects and arrays included.
fn paths(v: &Value, at: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                at.push(PathStep::Key(k.clone()));
                paths(x, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(PathStep::Index(i));
                paths(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at_path<'v>(v: &'v mut Value, path: &[PathStep]) -> &'v mut Value {
    path.iter().fold(v, |v, step| match step {
        PathStep::Key(k) => &mut v[k.as_str()],
        PathStep::Index(i) => &mut v[*i],
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn eventbridge_events_with_any_field_replaced_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..9), 1..4),
    ) {
        // Replacing whole values, at any depth, with values of every JSON kind reaches each
        // reader's type checks, which byte edits of the outer JSON mostly do not.
        let fixtures = eventbridge_fixtures();
        prop_assume!(!fixtures.is_empty());
        let mut v = fixtures[pick.index(fixtures.len())].clone();
        for (at, kind) in edits {
            let mut all = Vec::new();
            paths(&v, &mut Vec::new(), &mut all);
            let path = &all[at.index(all.len())];
            *at_path(&mut v, path) = match kind {
                0 => Value::Null,
                1 => json!(true),
                2 => json!(-1),
                3 => json!(1e300),
                4 => json!(""),
                5 => json!("Fri, 31 Feb 2023 25:61:61 GMT"),
                6 => json!([]),
                7 => json!({}),
                _ => json!("\u{202E}\u{7}x"),
            };
        }
        match parse_value(&v) {
            Ok(p) => {
                for e in &p.rejected {
                    prop_assert!(!e.to_string().contains('\n'));
                }
                let mut r = Reassembly::new();
                for page in p.pages {
                    let _ = r.add(page);
                }
                let _ = r.finish();
            }
            Err(e) => prop_assert!(!e.to_string().contains('\n'), "{}", e),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Older and partial forms AWS and Alertmanager publish (issue 19)

#[test]
fn securityhub_findings_in_the_older_form_take_their_label_from_the_normalized_score() {
    let mut v = json_of("securityhub/findings-imported.json");
    let f = &mut v["detail"]["findings"][0];
    f["Severity"] = json!({"Product": 8, "Normalized": 75});
    let a = parse_value(&v).unwrap().alerts.remove(0);
    assert_eq!(a.severity, Severity::High);
    assert_eq!(a.labels["securityhub_severity"], "HIGH");
    for (n, want) in [
        (0, Severity::Info),
        (1, Severity::Low),
        (40, Severity::Medium),
        (90, Severity::Critical),
    ] {
        v["detail"]["findings"][0]["Severity"] = json!({"Normalized": n});
        assert_eq!(parse_value(&v).unwrap().alerts[0].severity, want, "{n}");
    }
    v["detail"]["findings"][0]["Severity"] = json!({"Normalized": 140});
    assert_eq!(
        parse_value(&v).unwrap().rejected[0].to_string(),
        "detail.findings[0].Severity.Normalized: 140 is outside 0 to 100"
    );
}

#[test]
fn a_securityhub_check_that_passed_resolves_and_opens_nothing() {
    let mut v = json_of("securityhub/findings-imported.json");
    let failed = parse_value(&v).unwrap().alerts.remove(0);
    assert_eq!(failed.state, AlarmState::Alarm);
    v["detail"]["findings"][0]["Compliance"]["Status"] = json!("PASSED");
    let passed = parse_value(&v).unwrap().alerts.remove(0);
    assert_eq!(passed.state, AlarmState::Ok);
    assert_eq!(passed.fingerprint, failed.fingerprint);
    assert!(passed.reason.contains("PASSED"), "{}", passed.reason);
}

#[test]
fn alertmanager_alerts_without_their_own_status_take_the_groups() {
    let mut v = json_of("alertmanager/resolved.json");
    v["status"] = json!("resolved");
    v["alerts"][0].as_object_mut().unwrap().remove("status");
    let p = parse_value(&v).unwrap();
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    assert_eq!(p.alerts[0].state, AlarmState::Ok);
    v.as_object_mut().unwrap().remove("status");
    assert_eq!(
        parse_value(&v).unwrap().rejected[0].to_string(),
        "alerts[0].status: required field is missing"
    );
}

#[test]
fn a_resolved_alertmanager_alert_ending_at_go_zero_time_keeps_its_start() {
    let mut v = json_of("alertmanager/resolved.json");
    v["alerts"][0]["endsAt"] = json!("0001-01-01T00:00:00Z");
    let a = parse_value(&v).unwrap().alerts.remove(0);
    assert_eq!(a.state, AlarmState::Ok);
    assert_eq!(format_time(&a.state_changed_at), "2024-03-11T09:14:37.118Z");
}

#[test]
fn health_events_without_status_or_region_fall_back_as_aws_samples_need() {
    let mut v = json_of("health/issue-open.json");
    let d = v["detail"].as_object_mut().unwrap();
    d.remove("statusCode");
    d.remove("eventRegion");
    d.remove("endTime");
    let a = parse_value(&v).unwrap().alerts.remove(0);
    assert_eq!(a.state, AlarmState::Alarm);
    assert_eq!(a.labels["status_code_assumed"], "true");
    assert_eq!(
        a.region.as_deref(),
        Some("eu-west-1"),
        "the event ARN's region"
    );
    assert_eq!(a.labels["event_region_from"], "event_arn");
    // An end already past when the event was sent is a closed event.
    v["detail"]["endTime"] = json!("Fri, 20 Nov 2026 07:00:00 GMT");
    v["time"] = json!("2026-11-20T09:00:00Z");
    assert_eq!(parse_value(&v).unwrap().alerts[0].state, AlarmState::Ok);
}

#[test]
fn synthetics_epoch_times_are_read_as_aws_documents_them() {
    let mut v = json_of("synthetics/canary-run-failure.json");
    v["detail"]["canary-run-timeline"] = json!({"started": 1612909461, "completed": 1612909467.5});
    v["detail"]["state-reason"] = json!("null");
    let a = parse_value(&v).unwrap().alerts.remove(0);
    assert_eq!(format_time(&a.state_changed_at), "2021-02-09T22:24:27.500Z");
    assert!(!a.reason.ends_with(": null"), "{}", a.reason);
}

#[test]
fn amazon_managed_prometheus_json_through_sns_is_read_as_an_alertmanager_body() {
    // What AWS's JSON template for the SNS receiver prints: no `version` or `groupKey`, and times
    // as Go prints them.
    let message = json!({
        "receiver": "default",
        "status": "firing",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "severity": "critical", "namespace": "checkout"},
            "annotations": {"summary": "5xx above 5%"},
            "startsAt": "2024-03-11 09:14:37.118 +0000 UTC",
            "endsAt": "0001-01-01 00:00:00 +0000 UTC",
            "generatorURL": "http://prometheus/graph",
            "fingerprint": "5b3c8e2f9a1d4076"
        }],
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate"},
        "commonAnnotations": {"summary": "5xx above 5%"},
        "externalURL": "http://alertmanager"
    });
    let a = parse(&sns_event(&[message.to_string()])).unwrap().remove(0);
    assert_eq!(a.source, Source::Alertmanager);
    assert_eq!(a.transport, Transport::Sns);
    assert_eq!(a.alarm_name, "HighErrorRate");
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(format_time(&a.state_changed_at), "2024-03-11T09:14:37.118Z");
    // Its default, plain-text message is refused with a hint.
    let e = err_of(&sns_event(&["[FIRING:1] HighErrorRate".to_owned()]));
    assert!(e.contains("a plain-text SNS message"), "{e}");
}

/// An epoch time past the year 9999 (Synthetics' `updated-on` in seconds or milliseconds) is refused
/// with a reason naming the field: an alert carrying it could not be read back from its own JSON
/// (RFC 3339 has no such year), so the router would refuse what ingest published.
#[test]
fn an_epoch_time_past_the_year_9999_is_refused_not_published() {
    let mut ev: serde_json::Value =
        serde_json::from_slice(&fixture("synthetics/canary-status-error.json")).unwrap();
    ev["detail"]["updated-on"] = serde_json::json!(1.0e15);
    let err = parse(ev.to_string().as_bytes()).unwrap_err().to_string();
    assert!(
        err.contains("updated-on") && err.contains("out of range"),
        "{err}"
    );
    ev["detail"]["updated-on"] = serde_json::json!(1_795_000_000);
    let a = &parse(ev.to_string().as_bytes()).unwrap()[0];
    let back: Alert = serde_json::from_str(&serde_json::to_string(a).unwrap()).unwrap();
    assert_eq!(back.state_changed_at, a.state_changed_at);
}
