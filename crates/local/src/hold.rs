//! The embedded SMS throttle's adapters: held messages in memory, and flush timers kept in a list
//! that the caller runs on its own clock (the virtual clock in replay and the tests).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use tocsin_core::ports::{SchedulerError, StoreError};
use tocsin_core::record::DeliveryJob;
use tocsin_core::throttle::{Flush, FlushTimer, HoldStore};

/// Held messages by throttle key, in memory.
#[derive(Clone, Default)]
pub struct MemoryHold {
    held: Arc<Mutex<BTreeMap<String, Vec<DeliveryJob>>>>,
}

impl MemoryHold {
    /// An empty hold.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<DeliveryJob>>> {
        // A panic elsewhere while holding the lock leaves the map whole: every change is one call.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HoldStore for MemoryHold {
    async fn hold(&self, key: &str, job: &DeliveryJob) -> Result<(), StoreError> {
        let mut held = self.lock();
        let jobs = held.entry(key.to_string()).or_default();
        if !jobs.iter().any(|j| j.delivery_id == job.delivery_id) {
            jobs.push(job.clone());
            jobs.sort_by(|a, b| {
                (a.created_at, &a.delivery_id).cmp(&(b.created_at, &b.delivery_id))
            });
        }
        Ok(())
    }

    async fn held(&self, key: &str) -> Result<Vec<DeliveryJob>, StoreError> {
        Ok(self.lock().get(key).cloned().unwrap_or_default())
    }

    async fn release(&self, key: &str, jobs: &[DeliveryJob]) -> Result<(), StoreError> {
        let mut held = self.lock();
        if let Some(list) = held.get_mut(key) {
            list.retain(|j| !jobs.iter().any(|r| r.delivery_id == j.delivery_id));
            if list.is_empty() {
                held.remove(key);
            }
        }
        Ok(())
    }
}

/// Flush timers by name, taken by whoever runs the clock.
#[derive(Clone, Default)]
pub struct LocalFlushTimer {
    pending: Arc<Mutex<BTreeMap<String, Flush>>>,
}

impl LocalFlushTimer {
    /// No timers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the flushes due at `now`, earliest first.
    pub fn take_due(&self, now: DateTime<Utc>) -> Vec<Flush> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let due: Vec<String> = pending
            .iter()
            .filter(|(_, f)| f.due <= now)
            .map(|(name, _)| name.clone())
            .collect();
        let mut out: Vec<Flush> = due.iter().filter_map(|n| pending.remove(n)).collect();
        out.sort_by_key(|f| f.due);
        out
    }

    /// When the next flush is due, if any.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.values().map(|f| f.due).min()
    }
}

impl FlushTimer for LocalFlushTimer {
    async fn schedule_flush(&self, flush: &Flush) -> Result<(), SchedulerError> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending
            .entry(flush.timer_name())
            .or_insert_with(|| flush.clone());
        Ok(())
    }
}
