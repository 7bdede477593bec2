//! The memory store: the `AlertStore` port on a mutex-guarded map, with the DynamoDB adapter's
//! conditional-write semantics. Dedup records and audit entries, which a storm makes by the hundred
//! thousand, are kept in compact interned forms (`crate::compact`) and rebuilt when read.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tocsin_core::noise::{GroupMember, NoiseBody, NoiseState, Silence};
use tocsin_core::ports::{
    AlertHead, AlertStore, Claim, Latest, STATUS_SNAPSHOT_MAX_BYTES, SnapshotPut, StatusSnapshot,
    StatusSnapshots, StoreError,
};
use tocsin_core::record::{AlertRecord, AuditEntry, ClaimStatus, DedupRecord, Status};

use crate::compact::{CompactAudit, CompactDedup, Dedup, Fx, Interner, Trail};

#[derive(Default)]
struct Inner {
    strings: Interner,
    dedup: Dedup,
    alerts: HashMap<String, AlertRecord, Fx>,
    latest: HashMap<String, String, Fx>,
    audit: HashMap<Arc<str>, Trail, Fx>,
    silences: HashMap<String, Silence, Fx>,
    noise: HashMap<String, NoiseState, Fx>,
    members: HashMap<String, std::collections::BTreeMap<String, GroupMember>, Fx>,
    status: HashMap<String, SharedStatus, Fx>,
}

/// One audience's shared status page: the latest refresh claim and the latest snapshot stored.
#[derive(Default)]
struct SharedStatus {
    claimed_at: Option<DateTime<Utc>>,
    snapshot: Option<StatusSnapshot>,
}

impl Inner {
    fn put_dedup(&mut self, record: &DedupRecord) {
        let compact = CompactDedup::new(record, &mut self.strings);
        self.dedup.put(&record.event_id, compact);
    }
}

/// An in-memory `AlertStore`. Clones share the same state.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves maps that are still consistent item by item.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every alert, most recently opened first.
    pub fn alerts(&self) -> Vec<AlertRecord> {
        let mut v: Vec<_> = self.lock().alerts.values().cloned().collect();
        v.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then(a.id.cmp(&b.id)));
        v
    }
}

impl AlertStore for MemoryStore {
    async fn claim_event(&self, record: &DedupRecord) -> Result<Claim, StoreError> {
        let mut g = self.lock();
        let g = &mut *g;
        let now = record.claimed_at;
        // One probe of the table, a cache miss in a storm's hundred thousand ids, not two.
        let slot = g.dedup.entry(&record.event_id);
        let mut replaced = None;
        if let Entry::Occupied(existing) = &slot {
            let existing = existing.get();
            let expired = existing.expires_at <= now;
            let stale =
                existing.status == ClaimStatus::InProgress && existing.in_progress_until <= now;
            if !expired && !stale {
                return Ok(Claim::Duplicate(existing.record(&record.event_id)));
            }
            replaced = Some(existing.record(&record.event_id));
        }
        slot.insert_entry(CompactDedup::new(record, &mut g.strings));
        Ok(replaced.map_or(Claim::Claimed, Claim::TookOver))
    }

    async fn complete_event(&self, record: &DedupRecord) -> Result<(), StoreError> {
        self.lock().put_dedup(record);
        Ok(())
    }

    async fn release_event(&self, event_id: &str) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.dedup
            .get(event_id)
            .is_some_and(|r| r.status == ClaimStatus::InProgress)
        {
            g.dedup.remove(event_id);
        }
        Ok(())
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<DedupRecord>, StoreError> {
        Ok(self.lock().dedup.get(event_id).map(|d| d.record(event_id)))
    }

    async fn latest_alert(&self, fingerprint: &str) -> Result<Option<AlertRecord>, StoreError> {
        let g = self.lock();
        Ok(g.latest
            .get(fingerprint)
            .and_then(|id| g.alerts.get(id))
            .cloned())
    }

    async fn latest_alert_lazy(&self, fingerprint: &str) -> Result<Latest, StoreError> {
        // In process a second read is a map lookup, so the router reads the whole record only when
        // it needs it: a flapping alarm's changes never do, and copying it was most of their cost.
        let g = self.lock();
        Ok(Latest::Head(
            g.latest
                .get(fingerprint)
                .and_then(|id| g.alerts.get(id))
                .map(AlertHead::of),
        ))
    }

    async fn get_alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        Ok(self.lock().alerts.get(id).cloned())
    }

    async fn create_alert(&self, record: &AlertRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        let current = g
            .latest
            .get(&record.fingerprint)
            .and_then(|id| g.alerts.get(id));
        if let Some(cur) = current {
            if cur.status.is_live() {
                return Err(StoreError::Conflict(format!(
                    "fingerprint {} already has live alert {}",
                    record.fingerprint, cur.id
                )));
            }
        }
        if current.map(|c| &c.id) != record.previous.as_ref() {
            return Err(StoreError::Conflict(format!(
                "fingerprint {}: latest alert changed since it was read",
                record.fingerprint
            )));
        }
        if g.alerts.contains_key(&record.id) {
            return Err(StoreError::Conflict(format!("alert {} exists", record.id)));
        }
        g.latest
            .insert(record.fingerprint.clone(), record.id.clone());
        g.alerts.insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn update_alert(&self, record: &AlertRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        match g.alerts.get(&record.id) {
            None => Err(StoreError::NotFound(format!("alert {}", record.id))),
            Some(cur) if cur.version + 1 != record.version => Err(StoreError::Conflict(format!(
                "alert {} is at version {}, not {}",
                record.id,
                cur.version,
                record.version - 1
            ))),
            Some(_) => {
                g.alerts.insert(record.id.clone(), record.clone());
                Ok(())
            }
        }
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let mut g = self.lock();
        let g = &mut *g;
        for e in entries {
            match g.audit.get_mut(e.alert.as_str()) {
                Some(trail) => {
                    let compact = CompactAudit::new(e, trail.recent(), &mut g.strings);
                    trail.push(compact);
                }
                None => {
                    let mut trail = Trail::default();
                    trail.push(CompactAudit::new(e, &[], &mut g.strings));
                    let key = g.strings.get(&e.alert);
                    g.audit.insert(key, trail);
                }
            }
        }
        Ok(())
    }

    async fn audit(&self, alert_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let mut v: Vec<AuditEntry> = self
            .lock()
            .audit
            .get(alert_id)
            .map(|trail| trail.iter().map(|e| e.entry(alert_id)).collect())
            .unwrap_or_default();
        // Stable: entries with the same time keep their append order.
        v.sort_by_key(|e| e.at);
        Ok(v)
    }

    async fn audit_since(
        &self,
        alert_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut v = self.audit(alert_id).await?;
        v.retain(|e| e.at >= since);
        Ok(v)
    }

    // --- Queries of the api function (issue 6). ---

    async fn list_alerts(
        &self,
        status: Status,
        limit: usize,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let mut v: Vec<(String, AlertRecord)> = self
            .lock()
            .alerts
            .values()
            .filter(|a| a.status == status && !a.opening_owed())
            .map(|a| (a.status_sort_key(), a.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v.into_iter().take(limit).map(|(_, a)| a).collect())
    }

    // ---- Noise control (issue 7). Keep this block last.

    async fn create_silence(&self, silence: &Silence) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.silences.contains_key(&silence.id) {
            return Err(StoreError::Conflict(format!(
                "silence {} exists",
                silence.id
            )));
        }
        g.silences.insert(silence.id.clone(), silence.clone());
        Ok(())
    }

    async fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        let mut v: Vec<Silence> = self.lock().silences.values().cloned().collect();
        v.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    async fn expire_silence(
        &self,
        id: &str,
        at: DateTime<Utc>,
        actor: &str,
    ) -> Result<Silence, StoreError> {
        let mut g = self.lock();
        let s = g
            .silences
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(format!("silence {id}")))?;
        if s.end() > at {
            s.expired_at = Some(at);
            s.expired_by = Some(actor.to_string());
        }
        Ok(s.clone())
    }

    async fn noise_state(&self, key: &str) -> Result<Option<NoiseState>, StoreError> {
        Ok(self.lock().noise.get(key).cloned())
    }

    async fn put_noise_state(&self, state: &NoiseState) -> Result<(), StoreError> {
        self.put_noise_state_owned(state.clone()).await
    }

    async fn put_noise_state_owned(&self, mut state: NoiseState) -> Result<(), StoreError> {
        let mut g = self.lock();
        let current = g.noise.get(&state.key).map(|s| s.version);
        let expected = (state.version > 1).then(|| state.version - 1);
        if current != expected {
            return Err(StoreError::Conflict(format!(
                "noise state {} is at version {}, not {}",
                state.key,
                current.unwrap_or(0),
                expected.unwrap_or(0)
            )));
        }
        match g.noise.get_mut(&state.key) {
            Some(slot) => {
                keep_last_alert(slot, &mut state);
                *slot = state;
            }
            None => {
                g.noise.insert(state.key.clone(), state);
            }
        }
        Ok(())
    }

    async fn group_member(
        &self,
        group: &str,
        alert_id: &str,
    ) -> Result<Option<GroupMember>, StoreError> {
        Ok(self
            .lock()
            .members
            .get(group)
            .and_then(|m| m.get(alert_id))
            .cloned())
    }

    async fn put_group_member(&self, group: &str, member: &GroupMember) -> Result<(), StoreError> {
        self.lock()
            .members
            .entry(group.to_string())
            .or_default()
            .insert(member.alert_id.clone(), member.clone());
        Ok(())
    }

    async fn group_members(
        &self,
        group: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GroupMember>, StoreError> {
        use std::ops::Bound;
        let g = self.lock();
        let Some(members) = g.members.get(group) else {
            return Ok(Vec::new());
        };
        let start = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        Ok(members
            .range::<str, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn remove_group_member(&self, group: &str, alert_id: &str) -> Result<(), StoreError> {
        if let Some(m) = self.lock().members.get_mut(group) {
            m.remove(alert_id);
        }
        Ok(())
    }
}

/// The DynamoDB store's semantics: claims compared in milliseconds (its precision), a snapshot kept
/// only under its own claim and within one item's size.
impl StatusSnapshots for MemoryStore {
    async fn status_snapshot(&self, audience: &str) -> Result<Option<StatusSnapshot>, StoreError> {
        Ok(self
            .lock()
            .status
            .get(audience)
            .and_then(|s| s.snapshot.clone()))
    }

    async fn claim_status_refresh(
        &self,
        audience: &str,
        at: DateTime<Utc>,
        every: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let shared = g.status.entry(audience.to_string()).or_default();
        let free = shared.claimed_at.is_none_or(|c| {
            c.timestamp_millis() <= at.timestamp_millis() - every.num_milliseconds()
        });
        if free {
            shared.claimed_at = Some(at);
        }
        Ok(free)
    }

    async fn put_status_snapshot(
        &self,
        audience: &str,
        snapshot: &StatusSnapshot,
    ) -> Result<SnapshotPut, StoreError> {
        if snapshot.size() > STATUS_SNAPSHOT_MAX_BYTES {
            return Ok(SnapshotPut::TooLarge);
        }
        let mut g = self.lock();
        let shared = g.status.entry(audience.to_string()).or_default();
        if shared.claimed_at.map(|c| c.timestamp_millis())
            != Some(snapshot.built_at.timestamp_millis())
        {
            return Ok(SnapshotPut::Superseded);
        }
        shared.snapshot = Some(snapshot.clone());
        Ok(SnapshotPut::Stored)
    }
}

/// A flapping alarm's new state carries its latest transition, and the stored one the transition
/// before. Refill the stored alert with the new one's contents
/// ([`tocsin_core::model::Alert::refill_from`]) and keep it: the new alert, fresh, is then the one
/// freed when the router is done with it. Freeing the old one instead, built about a hundred events
/// earlier in the storm benchmark, was a tenth of the run (its memory no longer in the allocator's
/// thread cache), and it scattered the heap for the allocations after it.
fn keep_last_alert(stored: &mut NoiseState, new: &mut NoiseState) {
    let (NoiseBody::Flap(old), NoiseBody::Flap(fresh)) = (&mut stored.body, &mut new.body) else {
        return;
    };
    let (Some(kept), Some(latest)) = (&mut old.last, &mut fresh.last) else {
        return;
    };
    if Arc::ptr_eq(kept, latest) {
        return;
    }
    // Only when nothing else holds the stored alert (the router's copy of the state let go of it).
    if let Some(inner) = Arc::get_mut(kept) {
        inner.refill_from(latest);
        *latest = Arc::clone(kept);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use tocsin_core::model::{AlarmState, Alert, Severity, Source, Transport};
    use tocsin_core::noise::FlapState;

    use super::*;

    fn transition(name: &str, state: AlarmState, secs: i64) -> Arc<Alert> {
        Arc::new(Alert {
            event_id: format!("{name}-{secs}"),
            fingerprint: name.into(),
            source: Source::Cloudwatch,
            transport: Transport::Sns,
            alarm_name: name.into(),
            alarm_arn: None,
            account_id: None,
            region: Some("eu-west-1".into()),
            state,
            previous_state: None,
            state_changed_at: DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap(),
            reason: format!("{name} went {state} at {secs}"),
            kind: "metric".into(),
            namespace: None,
            metric_name: None,
            dimensions: Default::default(),
            threshold: None,
            severity: Severity::Medium,
            description: String::new(),
            labels: [("service".to_string(), "svc01".to_string())].into(),
        })
    }

    fn flap(version: u64, last: &Arc<Alert>) -> NoiseState {
        NoiseState {
            key: "flap/x".into(),
            version,
            body: NoiseBody::Flap(FlapState {
                changes: Vec::new(),
                firing: last.state == AlarmState::Alarm,
                flapping_since: None,
                seq: 1,
                last_change: None,
                episode: None,
                last: Some(Arc::clone(last)),
            }),
            pending: Default::default(),
        }
    }

    fn last_of(s: &NoiseState) -> &Arc<Alert> {
        match &s.body {
            NoiseBody::Flap(f) => f.last.as_ref().unwrap(),
            _ => panic!("not a flap state"),
        }
    }

    #[tokio::test]
    async fn a_flap_states_latest_alert_is_stored_by_value_and_the_callers_copy_is_let_go() {
        let store = MemoryStore::new();
        let first = transition("x", AlarmState::Alarm, 0);
        store.put_noise_state_owned(flap(1, &first)).await.unwrap();
        drop(first);
        for (i, state) in [AlarmState::Ok, AlarmState::Alarm, AlarmState::Ok]
            .into_iter()
            .enumerate()
        {
            // As the router does: read (a copy), replace the latest transition, write the next version.
            let read = store.noise_state("flap/x").await.unwrap().unwrap();
            let latest = transition("x", state, 10 * (i as i64 + 1));
            let next = NoiseState {
                version: read.version + 1,
                ..flap(0, &latest)
            };
            drop(read);
            store.put_noise_state_owned(next).await.unwrap();
            let stored = store.noise_state("flap/x").await.unwrap().unwrap();
            assert_eq!(
                **last_of(&stored),
                *latest,
                "the stored alert is the latest"
            );
            assert!(!Arc::ptr_eq(last_of(&stored), &latest));
            drop(stored);
            assert_eq!(
                Arc::strong_count(&latest),
                1,
                "the store kept no copy of the caller's"
            );
        }
    }
}
