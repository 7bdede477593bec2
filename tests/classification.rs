//! Severity and priority classification: rules over name, description, namespace and metric, account
//! and dimensions (first match wins), then a `[critical]`-style tag, then the source's own severity,
//! then the default; priority from severity and the service catalogue's tier.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use tocsin_core::Severity;
use tocsin_core::classify::classify;
use tocsin_core::contract::record;
use tocsin_tests::config_from;

const CONFIG: &str = r##"
defaults: {severity: low}
services:
  - {name: checkout, team: payments, tier: 1, match: ['alarm_name =~ "checkout-.*"']}
  - {name: batch, team: data, tier: 4, match: ['dimension.JobQueue = "nightly"']}
severity_rules:
  - {severity: critical, match: ['alarm_name =~ ".*-5xx.*"', 'account = "123456789012"']}
  - {severity: high, match: ['description =~ "(?i).*customer.facing.*"']}
  - {severity: medium, match: ['namespace = "AWS/RDS"', 'metric = "FreeStorageSpace"']}
  - {severity: info, match: ['dimension.Environment = "staging"']}
channels:
  s: {type: slack, webhook_url: {env: S}, default_to: ["#x"]}
route: {notify: [{channel: s}]}
"##;

fn base() -> tocsin_core::Alert {
    let mut a = record("x", "fp", None).alert;
    a.alarm_name = "api-latency".into();
    a.description = String::new();
    a.namespace = Some("AWS/EC2".into());
    a.metric_name = Some("CPUUtilization".into());
    a.dimensions.clear();
    a.labels.clear();
    a
}

fn classified(f: impl FnOnce(&mut tocsin_core::Alert)) -> tocsin_core::Alert {
    let c = config_from(CONFIG);
    let mut a = base();
    f(&mut a);
    classify(&c, &mut a);
    a
}

#[test]
fn a_rule_on_name_and_account_makes_it_critical_and_the_tier_1_service_makes_it_p1() {
    let a = classified(|a| a.alarm_name = "checkout-api-5xx".into());
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.labels["service"], "checkout");
    assert_eq!(a.labels["team"], "payments");
    assert_eq!(a.labels["tier"], "1");
    assert_eq!(a.labels["priority"], "P1");
    let other_account = classified(|a| {
        a.alarm_name = "checkout-api-5xx".into();
        a.account_id = Some("999999999999".into());
    });
    assert_ne!(
        other_account.severity,
        Severity::Critical,
        "every matcher of a rule must hold"
    );
}

#[test]
fn description_namespace_metric_and_dimension_rules_each_classify() {
    assert_eq!(
        classified(|a| a.description = "Customer-facing checkout errors".into()).severity,
        Severity::High
    );
    assert_eq!(
        classified(|a| {
            a.namespace = Some("AWS/RDS".into());
            a.metric_name = Some("FreeStorageSpace".into());
        })
        .severity,
        Severity::Medium
    );
    assert_eq!(
        classified(|a| {
            a.dimensions.insert("Environment".into(), "staging".into());
        })
        .severity,
        Severity::Info
    );
}

#[test]
fn rules_win_over_a_description_tag_which_wins_over_the_source_and_the_default() {
    let tagged = classified(|a| a.description = "[critical] disk almost full".into());
    assert_eq!(tagged.severity, Severity::Critical);
    let rule_and_tag = classified(|a| {
        a.description = "[low] customer facing".into();
    });
    assert_eq!(
        rule_and_tag.severity,
        Severity::High,
        "the first rule wins over the tag"
    );
    let from_source = classified(|a| {
        a.labels.insert("severity".into(), "warning".into());
    });
    assert_eq!(from_source.severity, Severity::Medium);
    assert_eq!(
        classified(|_| {}).severity,
        Severity::Low,
        "the configured default"
    );
}

#[test]
fn a_low_tier_service_lowers_priority_and_no_service_leaves_severity_alone() {
    let batch = classified(|a| {
        a.dimensions.insert("JobQueue".into(), "nightly".into());
        a.description = "[high] job late".into();
    });
    assert_eq!(batch.labels["service"], "batch");
    assert_eq!(
        batch.labels["priority"], "P4",
        "high (rank 1) + tier 4 penalty (2)"
    );
    let none = classified(|a| a.description = "[high] x".into());
    assert!(!none.labels.contains_key("service"));
    assert_eq!(none.labels["priority"], "P2");
}

#[test]
fn the_tag_can_be_switched_off() {
    let c = config_from(&CONFIG.replace(
        "defaults: {severity: low}",
        "defaults: {severity: low, severity_tags: false}",
    ));
    let mut a = base();
    a.description = "[critical] disk".into();
    classify(&c, &mut a);
    assert_eq!(a.severity, Severity::Low);
}
