//! Compact in-memory forms of the records the memory store keeps by the hundred thousand (dedup
//! records and audit entries), so that a storm's trail fits in a small process: strings are shared
//! `Arc<str>`s, and the full records are rebuilt only when read back, which is rare. Strings of few
//! distinct values (alarm names, alert ids, transports, outcomes, channels, targets) are interned in
//! one small table; a reason or event id is shared with the entry before it in the same trail when
//! equal (a flapping alarm's entries repeat theirs), since a global table of every reason and event
//! id cost more to probe than the copies it saved.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tocsin_core::model::Severity;
use tocsin_core::record::{Action, AttemptOutcome, AuditEntry, ClaimStatus, DedupRecord};

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

/// An [`AuditEntry`] without its alert id (the trail it is filed under), its strings interned.
pub(crate) struct CompactAudit {
    pub(crate) at: DateTime<Utc>,
    action: Action,
    severity: Severity,
    level: Option<u32>,
    alarm_name: Arc<str>,
    reason: Arc<str>,
    event_id: Option<Arc<str>>,
    channel: Option<Arc<str>>,
    target: Option<Arc<str>>,
    // Boxed: only delivery attempts have one, and it is larger than the rest of the entry.
    attempt: Option<Box<AttemptOutcome>>,
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
        let event_id =
            e.event_id
                .as_deref()
                .map(|id| match trail.last().and_then(|p| p.event_id.as_ref()) {
                    Some(prev) if **prev == *id => Arc::clone(prev),
                    _ => Arc::from(id),
                });
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
        }
    }

    pub(crate) fn entry(&self, alert: &str) -> AuditEntry {
        AuditEntry {
            at: self.at,
            alert: alert.to_string(),
            alarm_name: self.alarm_name.to_string(),
            action: self.action,
            reason: self.reason.to_string(),
            event_id: self.event_id.as_deref().map(str::to_string),
            channel: self.channel.as_deref().map(str::to_string),
            target: self.target.as_deref().map(str::to_string),
            level: self.level,
            severity: self.severity,
            attempt: self.attempt.as_deref().cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            attempt: Some(AttemptOutcome {
                delivery_id: "d".into(),
                try_number: 1,
                outcome: "sent".into(),
                latency_ms: 3,
                error_class: None,
                provider_id: Some("p".into()),
            }),
        };
        let first = CompactAudit::new(&e, &[], &mut s);
        assert_eq!(first.entry("a1"), e);
        let second = CompactAudit::new(&e, std::slice::from_ref(&first), &mut s);
        assert!(Arc::ptr_eq(&first.reason, &second.reason));
        assert_eq!(second.entry("a1"), e);
    }
}
