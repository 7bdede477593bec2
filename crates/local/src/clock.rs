//! Virtual time: a clock the runner sets, and a scheduler whose timers fire when the runner advances the
//! clock past them, so escalations an hour away happen instantly in a replay, in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tocsin_core::ports::{Clock, Scheduler, SchedulerError};
use tocsin_core::record::Timer;

/// A clock that reads whatever it was last set to. Clones share the time.
#[derive(Clone)]
pub struct VirtualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl VirtualClock {
    /// A clock at `t`.
    pub fn new(t: DateTime<Utc>) -> Self {
        VirtualClock {
            now: Arc::new(Mutex::new(t)),
        }
    }

    /// Sets the time (it may only move forward; an earlier time is ignored).
    pub fn set(&self, t: DateTime<Utc>) {
        let mut g = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if t > *g {
            *g = t;
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

// The name is shared by both maps.
#[derive(Default)]
struct Timers {
    seq: u64,
    by_time: BTreeMap<(DateTime<Utc>, u64), (Arc<str>, Timer)>,
    by_name: HashMap<Arc<str>, (DateTime<Utc>, u64), crate::compact::Fx>,
}

/// One-time timers by name, fired by [`VirtualScheduler::pop_due`]. Clones share the timers.
#[derive(Clone, Default)]
pub struct VirtualScheduler {
    inner: Arc<Mutex<Timers>>,
}

impl VirtualScheduler {
    /// No timers.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Timers> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the earliest pending timer is due.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.lock().by_time.keys().next().map(|k| k.0)
    }

    /// Removes and returns the earliest timer if it is due at or before `until`.
    pub fn pop_due(&self, until: DateTime<Utc>) -> Option<(DateTime<Utc>, String, Timer)> {
        let mut g = self.lock();
        let key = *g.by_time.keys().next()?;
        if key.0 > until {
            return None;
        }
        let (name, tick) = g.by_time.remove(&key)?;
        g.by_name.remove(&name);
        Some((key.0, name.to_string(), tick))
    }

    /// Whether every pending timer's tick satisfies `pred` (true when none is pending).
    pub fn all_pending(&self, pred: impl Fn(&Timer) -> bool) -> bool {
        self.lock().by_time.values().all(|(_, tick)| pred(tick))
    }

    /// How many pending timers' ticks satisfy `pred`.
    pub fn pending_where(&self, pred: impl Fn(&Timer) -> bool) -> usize {
        self.lock()
            .by_time
            .values()
            .filter(|(_, tick)| pred(tick))
            .count()
    }

    /// How many timers are pending.
    pub fn pending(&self) -> usize {
        self.lock().by_time.len()
    }

    /// How many timers were ever set (a schedule of a name already pending sets none): what a
    /// deployment pays Scheduler for in `CreateSchedule` calls.
    pub fn set_so_far(&self) -> u64 {
        self.lock().seq
    }
}

impl Scheduler for VirtualScheduler {
    async fn schedule(
        &self,
        name: &str,
        at: DateTime<Utc>,
        tick: &Timer,
    ) -> Result<(), SchedulerError> {
        let mut g = self.lock();
        if g.by_name.contains_key(name) {
            return Ok(());
        }
        g.seq += 1;
        let key = (at, g.seq);
        let name: Arc<str> = Arc::from(name);
        g.by_time.insert(key, (Arc::clone(&name), tick.clone()));
        g.by_name.insert(name, key);
        Ok(())
    }

    async fn cancel(&self, name: &str) -> Result<(), SchedulerError> {
        let mut g = self.lock();
        if let Some(key) = g.by_name.remove(name) {
            g.by_time.remove(&key);
        }
        Ok(())
    }
}
