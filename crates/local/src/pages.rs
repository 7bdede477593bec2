//! The embedded adapters for joining paged AWS Health events: pages and their events' state in
//! memory, and sweep timers kept in a list that the caller runs on its own clock. Each call takes one
//! lock, so a page's add is atomic, as the DynamoDB adapter's single-item update is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use tocsin_core::pages::{Added, PageStore, SweepClaim, SweepTimer, sweep_name};
use tocsin_core::ports::{SchedulerError, StoreError};
use tocsin_core::source::HealthPage;

/// One event's pages and how it was closed.
#[derive(Debug, Default)]
struct Event {
    pages: BTreeMap<u32, HealthPage>,
    /// As the first stored page said.
    total: u32,
    closed: Option<Closed>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    Joined,
    Swept,
}

/// Pages by event key, in memory (no expiry: a process lives a replay or a test).
#[derive(Clone, Default)]
pub struct MemoryPages {
    events: Arc<Mutex<BTreeMap<String, Event>>>,
}

impl MemoryPages {
    /// No pages.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Event>> {
        // Every change is made whole under the lock, so a panic elsewhere leaves the map consistent.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PageStore for MemoryPages {
    async fn add_page(&self, page: &HealthPage) -> Result<Added, StoreError> {
        let mut events = self.lock();
        let event = events.entry(page.key.clone()).or_insert_with(|| Event {
            total: page.total,
            ..Event::default()
        });
        let before = event.pages.len() as u32;
        let had_this = event.pages.contains_key(&page.page);
        let first = before == 0 || (before == 1 && had_this);
        event.pages.entry(page.page).or_insert_with(|| page.clone());
        let received = event.pages.len() as u32;
        Ok(match event.closed {
            Some(Closed::Joined) => Added::Published,
            Some(Closed::Swept) => Added::Swept,
            None if received >= event.total => Added::Complete {
                by_this_page: before < event.total,
            },
            None => Added::Waiting {
                received,
                total: event.total,
                first,
            },
        })
    }

    async fn pages(&self, key: &str) -> Result<Vec<HealthPage>, StoreError> {
        Ok(self
            .lock()
            .get(key)
            .map(|e| e.pages.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn mark_joined(&self, key: &str) -> Result<(), StoreError> {
        if let Some(event) = self.lock().get_mut(key) {
            event.closed.get_or_insert(Closed::Joined);
        }
        Ok(())
    }

    async fn sweep(&self, key: &str) -> Result<SweepClaim, StoreError> {
        let mut events = self.lock();
        let Some(event) = events.get_mut(key) else {
            return Ok(SweepClaim::Unknown);
        };
        Ok(match event.closed {
            Some(Closed::Joined) => SweepClaim::Done,
            Some(Closed::Swept) => SweepClaim::Publish,
            None => {
                if (event.pages.len() as u32) < event.total {
                    event.closed = Some(Closed::Swept);
                }
                SweepClaim::Publish
            }
        })
    }
}

/// One pending sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSweep {
    /// The event's key.
    pub key: String,
    /// When it is due.
    pub at: DateTime<Utc>,
}

/// Sweep timers by name, taken by whoever runs the clock.
#[derive(Clone, Default)]
pub struct LocalSweepTimer {
    pending: Arc<Mutex<BTreeMap<String, PendingSweep>>>,
}

impl LocalSweepTimer {
    /// No timers.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, PendingSweep>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the sweeps due at `now`, earliest first.
    pub fn take_due(&self, now: DateTime<Utc>) -> Vec<PendingSweep> {
        let mut pending = self.lock();
        let due: Vec<String> = pending
            .iter()
            .filter(|(_, s)| s.at <= now)
            .map(|(name, _)| name.clone())
            .collect();
        let mut out: Vec<PendingSweep> = due.iter().filter_map(|n| pending.remove(n)).collect();
        out.sort_by_key(|s| s.at);
        out
    }

    /// Every pending sweep, by name.
    pub fn pending(&self) -> BTreeMap<String, PendingSweep> {
        self.lock().clone()
    }
}

impl SweepTimer for LocalSweepTimer {
    async fn schedule_sweep(&self, key: &str, at: DateTime<Utc>) -> Result<(), SchedulerError> {
        self.lock()
            .entry(sweep_name(key))
            .or_insert_with(|| PendingSweep {
                key: key.to_string(),
                at,
            });
        Ok(())
    }
}
