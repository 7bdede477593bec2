//! Compact in-memory forms of the records the memory store keeps by the hundred thousand (dedup
//! records and audit entries), so that a storm's trail fits in a small process: strings are shared
//! `Arc<str>`s, and the full records are rebuilt only when read back, which is rare. Strings of few
//! distinct values (alarm names, alert ids, transports, outcomes, channels, targets) are interned in
//! one small table; a reason is shared with a recent entry of the same trail when equal (a flapping
//! alarm's entries repeat theirs), since a global table of every reason cost more to probe than the
//! copies it saved; event ids, one per event, are kept inline ([`Id`]).
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tocsin_core::model::Severity;
use tocsin_core::record::{Action, AttemptRecord, AuditEntry, ClaimStatus, DedupRecord};

/// A small, fast, non-cryptographic hasher (the Fx hash of rustc) for the store's own maps: the
/// keys are ids tocsin made itself, and SipHash's protection against chosen keys costs more here
/// than the whole map operation.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in chunks.by_ref() {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The build-hasher of the store's maps.
pub(crate) type Fx = BuildHasherDefault<FxHasher>;

/// Every distinct string the store holds, once.
#[derive(Default)]
pub(crate) struct Interner {
    set: HashSet<Arc<str>, Fx>,
}

impl Interner {
    /// The shared copy of `s`, made on first sight.
    pub(crate) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.set.insert(Arc::clone(&a));
        a
    }

    fn opt(&mut self, s: Option<&str>) -> Option<Arc<str>> {
        s.map(|s| self.get(s))
    }
}

/// The longest id kept inline in an [`Id`].
const INLINE: usize = 38;

/// An event id, kept inline when short: tocsin's own ids are 32 hex characters
/// ([`tocsin_core::model::stable_id`]), and a storm makes one per event. Inline, the dedup table
/// holds its keys in its own slots (no allocation per event, nothing to follow when the table grows)
/// and an audit entry carries its event id in 40 bytes instead of a pointer to a 64-byte heap block.
/// Longer ids are shared.
#[derive(Clone)]
pub(crate) enum Id {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Id {
    pub(crate) fn new(s: &str) -> Self {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Id::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Id::Shared(Arc::from(s))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Always valid: the bytes are a whole `&str`, copied.
            Id::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Id::Shared(s) => s,
        }
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Id {}

impl Hash for Id {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // As `str` hashes, so that a map keyed by `Id` is probed with a `&str`.
        self.as_str().hash(h);
    }
}

impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

/// A [`DedupRecord`] without its event id (the map's key), its strings interned.
pub(crate) struct CompactDedup {
    pub(crate) status: ClaimStatus,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) in_progress_until: DateTime<Utc>,
    claimed_at: DateTime<Utc>,
    transport: Arc<str>,
    alert_id: Option<Arc<str>>,
    outcome: Option<Arc<str>>,
}

impl CompactDedup {
    pub(crate) fn new(r: &DedupRecord, strings: &mut Interner) -> Self {
        CompactDedup {
            status: r.status,
            expires_at: r.expires_at,
            in_progress_until: r.in_progress_until,
            claimed_at: r.claimed_at,
            transport: strings.get(&r.transport),
            alert_id: strings.opt(r.alert_id.as_deref()),
            outcome: strings.opt(r.outcome.as_deref()),
        }
    }

    pub(crate) fn record(&self, event_id: &str) -> DedupRecord {
        DedupRecord {
            event_id: event_id.to_string(),
            status: self.status,
            expires_at: self.expires_at,
            in_progress_until: self.in_progress_until,
            transport: self.transport.to_string(),
            claimed_at: self.claimed_at,
            alert_id: self.alert_id.as_deref().map(str::to_string),
            outcome: self.outcome.as_deref().map(str::to_string),
        }
    }
}

/// Dedup records by event id, in shards: a storm makes one per event, and one table of them held,
/// while it doubled, the old table and the new at once, each time (a third of the storm's peak
/// memory), and had every page of the new one faulted in fresh. A shard grows alone, by 1/64 of
/// that, into memory the allocator has just had back from another.
pub(crate) struct Dedup {
    shards: Vec<HashMap<Id, CompactDedup, Fx>>,
}

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

impl Default for Dedup {
    fn default() -> Self {
        Dedup {
            shards: (0..SHARDS).map(|_| HashMap::default()).collect(),
        }
    }
}

impl Dedup {
    fn shard(id: &str) -> usize {
        let mut h = FxHasher::default();
        id.hash(&mut h);
        // Mixed again (SplitMix64's finalizer) rather than cut from the hash: the shards' own tables
        // take a bucket from its low bits and a tag from its top seven, and the Fx hash's middle
        // bits are too regular to spread ids on their own.
        let x = h.finish();
        let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((x ^ (x >> 31)) >> (64 - SHARD_BITS)) as usize
    }

    pub(crate) fn get(&self, id: &str) -> Option<&CompactDedup> {
        self.shards[Self::shard(id)].get(id)
    }

    /// The slot for `id`, found once whether it is claimed or not.
    pub(crate) fn entry(&mut self, id: &str) -> Entry<'_, Id, CompactDedup> {
        self.shards[Self::shard(id)].entry(Id::new(id))
    }

    pub(crate) fn put(&mut self, id: &str, record: CompactDedup) {
        self.entry(id).insert_entry(record);
    }

    pub(crate) fn remove(&mut self, id: &str) {
        self.shards[Self::shard(id)].remove(id);
    }
}

/// An alert's audit trail, in chunks of at most [`CHUNK`] entries: a flapping alarm's trail grows
/// by the thousand, and one vector doubling its capacity copied the whole trail each time, and held
/// it twice while it did.
#[derive(Default)]
pub(crate) struct Trail {
    chunks: Vec<Vec<CompactAudit>>,
}

const CHUNK: usize = 64;

impl Trail {
    /// The latest entries (the last chunk's), for [`CompactAudit::new`] to share a reason with.
    pub(crate) fn recent(&self) -> &[CompactAudit] {
        self.chunks.last().map_or(&[], Vec::as_slice)
    }

    pub(crate) fn push(&mut self, e: CompactAudit) {
        match self.chunks.last_mut() {
            // The first chunk grows as a vector does: most trails are a few entries.
            Some(last) if last.len() < CHUNK => last.push(e),
            _ => {
                let mut chunk = Vec::with_capacity(if self.chunks.is_empty() { 4 } else { CHUNK });
                chunk.push(e);
                self.chunks.push(chunk);
            }
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &CompactAudit> {
        self.chunks.iter().flatten()
    }
}

/// An [`AuditEntry`] without its alert id (the trail it is filed under), its strings interned.
pub(crate) struct CompactAudit {
    pub(crate) at: DateTime<Utc>,
    action: Action,
    severity: Severity,
    level: Option<u32>,
    alarm_name: Arc<str>,
    reason: Arc<str>,
    event_id: Option<Id>,
    channel: Option<Arc<str>>,
    target: Option<Arc<str>>,
    // Boxed: only delivery attempts have one, and it is larger than the rest of the entry.
    attempt: Option<Box<AttemptRecord>>,
    told_under: Option<Id>,
}

impl CompactAudit {
    /// The compact form of `e`, to be appended to `trail` (its alert's entries so far).
    pub(crate) fn new(e: &AuditEntry, trail: &[CompactAudit], strings: &mut Interner) -> Self {
        // A flapping alarm's entries alternate between two reasons, with the odd duplicate delivery
        // between them: look a few back.
        let recent = &trail[trail.len().saturating_sub(4)..];
        let reason = recent
            .iter()
            .rev()
            .find(|p| *p.reason == *e.reason)
            .map_or_else(|| Arc::from(e.reason.as_str()), |p| Arc::clone(&p.reason));
        let event_id = e.event_id.as_deref().map(Id::new);
        CompactAudit {
            at: e.at,
            action: e.action,
            severity: e.severity,
            level: e.level,
            alarm_name: match trail.last() {
                Some(p) if *p.alarm_name == *e.alarm_name => Arc::clone(&p.alarm_name),
                _ => strings.get(&e.alarm_name),
            },
            reason,
            event_id,
            channel: strings.opt(e.channel.as_deref()),
            target: strings.opt(e.target.as_deref()),
            attempt: e.attempt.clone().map(Box::new),
            told_under: e.told_under.as_deref().map(Id::new),
        }
    }

    pub(crate) fn entry(&self, alert: &str) -> AuditEntry {
        AuditEntry {
            at: self.at,
            alert: alert.to_string(),
            alarm_name: self.alarm_name.to_string(),
            action: self.action,
            reason: self.reason.to_string(),
            event_id: self.event_id.as_ref().map(|id| id.as_str().to_string()),
            channel: self.channel.as_deref().map(str::to_string),
            target: self.target.as_deref().map(str::to_string),
            level: self.level,
            severity: self.severity,
            attempt: self.attempt.as_deref().cloned(),
            told_under: self.told_under.as_ref().map(|id| id.as_str().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dedup_record(outcome: &str, strings: &mut Interner) -> CompactDedup {
        let at = Utc::now();
        CompactDedup::new(
            &DedupRecord {
                event_id: String::new(),
                status: ClaimStatus::Completed,
                expires_at: at,
                in_progress_until: at,
                transport: "sns".into(),
                claimed_at: at,
                alert_id: None,
                outcome: Some(outcome.into()),
            },
            strings,
        )
    }

    #[test]
    fn the_sharded_dedup_table_finds_replaces_and_removes_every_id() {
        let mut s = Interner::default();
        let mut d = Dedup::default();
        let ids: Vec<String> = (0..2_000)
            .map(|i| format!("{i:032x}"))
            .chain(["a-longer-id-than-is-kept-inline-0123456789".to_string()])
            .collect();
        for id in &ids {
            d.put(id, dedup_record("first", &mut s));
        }
        for id in ids.iter().step_by(2) {
            d.put(id, dedup_record("second", &mut s));
        }
        d.remove(&ids[1]);
        for (i, id) in ids.iter().enumerate() {
            let got = d.get(id).map(|r| r.record(id).outcome.unwrap());
            let want = match i {
                1 => None,
                i if i % 2 == 0 => Some("second"),
                _ => Some("first"),
            };
            assert_eq!(got.as_deref(), want, "{id}");
        }
        assert!(d.get("never-claimed").is_none());
        let used = d.shards.iter().filter(|m| !m.is_empty()).count();
        assert_eq!(used, SHARDS, "ids spread over every shard");
    }

    #[test]
    fn a_trail_keeps_its_entries_in_order_across_chunks() {
        let mut s = Interner::default();
        let mut trail = Trail::default();
        let base = Utc::now();
        for i in 0..(3 * CHUNK + 5) {
            let mut e = AuditEntry::new(
                base + chrono::TimeDelta::seconds(i as i64),
                "a1",
                "n",
                Severity::Medium,
                Action::Suppress,
                format!("reason {}", i % 2),
            );
            e.event_id = Some(format!("{i:032x}"));
            let c = CompactAudit::new(&e, trail.recent(), &mut s);
            trail.push(c);
        }
        let back: Vec<AuditEntry> = trail.iter().map(|c| c.entry("a1")).collect();
        assert_eq!(back.len(), 3 * CHUNK + 5);
        for (i, e) in back.iter().enumerate() {
            assert_eq!(e.at, base + chrono::TimeDelta::seconds(i as i64));
            assert_eq!(e.reason, format!("reason {}", i % 2));
            assert_eq!(e.event_id.as_deref(), Some(format!("{i:032x}").as_str()));
        }
        assert!(trail.chunks.iter().all(|c| c.len() <= CHUNK));
    }

    #[test]
    fn interned_strings_are_shared() {
        let mut s = Interner::default();
        let a = s.get("svc01-api-5xx");
        let b = s.get("svc01-api-5xx");
        assert!(Arc::ptr_eq(&a, &b));
        assert_ne!(&*s.get("other"), &*a);
    }

    #[test]
    fn audit_entries_round_trip_through_the_compact_form() {
        let mut s = Interner::default();
        let e = AuditEntry {
            at: Utc::now(),
            alert: "a1".into(),
            alarm_name: "n".into(),
            action: Action::Attempt,
            reason: "why".into(),
            event_id: Some("ev".into()),
            channel: Some("ops".into()),
            target: None,
            level: Some(2),
            severity: Severity::High,
            attempt: Some(AttemptRecord {
                delivery_id: "d".into(),
                try_number: 1,
                invocation: 1,
                outcome: tocsin_core::retry::AttemptOutcome::Sent,
                latency_ms: 3,
                error_class: None,
                provider_id: Some("p".into()),
            }),
            told_under: Some("0123456789abcdef0123456789abcdef".into()),
        };
        let first = CompactAudit::new(&e, &[], &mut s);
        assert_eq!(first.entry("a1"), e);
        let second = CompactAudit::new(&e, std::slice::from_ref(&first), &mut s);
        assert!(Arc::ptr_eq(&first.reason, &second.reason));
        assert_eq!(second.entry("a1"), e);
    }
}
