//! The memory store answers `latest_alert_lazy` with the head of the record only; stores that pay per
//! read (DynamoDB) keep the port's default, the whole record in one read. The router must decide alike
//! either way: this replays a flapping, repeating, resolving alarm through both and compares.

#![allow(clippy::unwrap_used, missing_docs)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_core::model::{AlarmState, Alert, format_time};
use tocsin_core::noise::{GroupMember, NoiseState, Silence};
use tocsin_core::ports::{AlertStore, Claim, StoreError};
use tocsin_core::record::{AlertRecord, AuditEntry, DedupRecord, Status};
use tocsin_local::{Embedded, MemoryStore};
use tocsin_tests::cloudwatch_alarm;

const CONFIG: &str = r##"
severity_rules:
  - severity: critical
    match: ['alarm_name =~ ".*-5xx"']
channels:
  ops-slack: {type: slack, webhook_url: {env: SLACK_WEBHOOK_URL}, default_to: ["#ops"]}
flap_damping: {max_changes: 3, window: 10m}
route:
  notify: [{channel: ops-slack}]
  group_by: [dimension.Service]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  group_bypass: [critical]
"##;

/// The memory store behind the port's default `latest_alert_lazy` (every other call delegated).
#[derive(Clone)]
struct WholeReads(MemoryStore);

impl AlertStore for WholeReads {
    async fn claim_event(&self, r: &DedupRecord) -> Result<Claim, StoreError> {
        self.0.claim_event(r).await
    }
    async fn complete_event(&self, r: &DedupRecord) -> Result<(), StoreError> {
        self.0.complete_event(r).await
    }
    async fn release_event(&self, id: &str) -> Result<(), StoreError> {
        self.0.release_event(id).await
    }
    async fn get_event(&self, id: &str) -> Result<Option<DedupRecord>, StoreError> {
        self.0.get_event(id).await
    }
    async fn latest_alert(&self, fp: &str) -> Result<Option<AlertRecord>, StoreError> {
        self.0.latest_alert(fp).await
    }
    async fn get_alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        self.0.get_alert(id).await
    }
    async fn create_alert(&self, r: &AlertRecord) -> Result<(), StoreError> {
        self.0.create_alert(r).await
    }
    async fn update_alert(&self, r: &AlertRecord) -> Result<(), StoreError> {
        self.0.update_alert(r).await
    }
    async fn append_audit(&self, e: &[AuditEntry]) -> Result<(), StoreError> {
        self.0.append_audit(e).await
    }
    async fn audit(&self, id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        self.0.audit(id).await
    }
    async fn audit_since(
        &self,
        id: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.0.audit_since(id, since).await
    }
    async fn list_alerts(&self, s: Status, limit: usize) -> Result<Vec<AlertRecord>, StoreError> {
        self.0.list_alerts(s, limit).await
    }
    async fn create_silence(&self, s: &Silence) -> Result<(), StoreError> {
        self.0.create_silence(s).await
    }
    async fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        self.0.silences().await
    }
    async fn expire_silence(
        &self,
        id: &str,
        at: DateTime<Utc>,
        actor: &str,
    ) -> Result<Silence, StoreError> {
        self.0.expire_silence(id, at, actor).await
    }
    async fn noise_state(&self, key: &str) -> Result<Option<NoiseState>, StoreError> {
        self.0.noise_state(key).await
    }
    async fn put_noise_state(&self, s: &NoiseState) -> Result<(), StoreError> {
        self.0.put_noise_state(s).await
    }
    async fn group_member(&self, g: &str, id: &str) -> Result<Option<GroupMember>, StoreError> {
        self.0.group_member(g, id).await
    }
    async fn put_group_member(&self, g: &str, m: &GroupMember) -> Result<(), StoreError> {
        self.0.put_group_member(g, m).await
    }
    async fn group_members(
        &self,
        g: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GroupMember>, StoreError> {
        self.0.group_members(g, after, limit).await
    }
    async fn remove_group_member(&self, g: &str, id: &str) -> Result<(), StoreError> {
        self.0.remove_group_member(g, id).await
    }
}

/// A transition of an alarm of service `svc01` (grouped by its `Service` dimension).
fn alarm(name: &str, firing: bool, at: DateTime<Utc>) -> Alert {
    let state = if firing {
        AlarmState::Alarm
    } else {
        AlarmState::Ok
    };
    Alert {
        dimensions: BTreeMap::from([("Service".to_string(), "svc01".to_string())]),
        ..cloudwatch_alarm(name, state, &format_time(&at))
    }
}

/// Every decision of the replay, as (alert, action, reason), and the delivery ids published.
async fn replay<S: AlertStore + Clone>(
    p: Embedded<S>,
    start: DateTime<Utc>,
) -> (Vec<(String, String, String)>, Vec<String>) {
    let mut decisions = Vec::new();
    let mut deliveries = Vec::new();
    let mut t = start;
    // A flapping alarm (a change every 20 s, duplicates on every third), then one that fires, repeats
    // and resolves, then the flapping one settles.
    for i in 0..24 {
        t += TimeDelta::seconds(20);
        let a = alarm("svc01-flappy", i % 2 == 0, t);
        for e in p.ingest(a.clone()).await.unwrap() {
            decisions.push((e.alert, e.action.to_string(), e.reason));
        }
        if i % 3 == 0 {
            for e in p.ingest(a).await.unwrap() {
                decisions.push((e.alert, e.action.to_string(), e.reason));
            }
        }
    }
    for (dt, firing) in [(30, true), (60, true), (400, false)] {
        t += TimeDelta::seconds(dt);
        for e in p.ingest(alarm("svc01-api-5xx", firing, t)).await.unwrap() {
            decisions.push((e.alert, e.action.to_string(), e.reason));
        }
    }
    for e in p.run_timers(Some(t + TimeDelta::hours(1))).await.unwrap() {
        decisions.push((e.alert, e.action.to_string(), e.reason));
    }
    deliveries.extend(p.bus.take_deliveries().into_iter().map(|j| j.delivery_id));
    (decisions, deliveries)
}

#[tokio::test]
async fn the_router_decides_alike_whether_latest_reads_come_whole_or_by_head() {
    let config = Arc::new(tocsin_core::config::load(CONFIG).unwrap());
    let start: DateTime<Utc> = "2026-11-20T02:00:00Z".parse().unwrap();
    let by_head = replay(Embedded::new(config.clone(), start), start).await;
    let whole = replay(
        Embedded::with_store(config, start, WholeReads(MemoryStore::new())),
        start,
    )
    .await;
    assert!(
        by_head
            .0
            .iter()
            .any(|d| d.1 == "suppress" && d.2.contains("flapping"))
    );
    assert!(by_head.0.iter().any(|d| d.1 == "repeat"));
    assert!(!by_head.1.is_empty());
    assert_eq!(by_head, whole);
}
