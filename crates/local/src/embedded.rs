//! The embedded pipeline: the router wired to the in-process adapters on a virtual clock. Events go in
//! in time order; escalation timers fire in between, at their virtual times.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tocsin_core::Alert;
use tocsin_core::config::Config;
use tocsin_core::ports::AlertStore;
use tocsin_core::record::{AuditEntry, Timer};
use tocsin_core::router::{Router, RouterError, RouterSettings};

use crate::{LocalBus, MemoryStore, VirtualClock, VirtualScheduler};

/// Timers fired in one run at the most: a guard against a config that would escalate forever.
pub const MAX_TIMER_FIRINGS: usize = 100_000;

/// The router on the embedded adapters (the store may be another, e.g. DynamoDB for `--store dynamodb`).
pub type EmbeddedRouter<S = MemoryStore> = Router<S, LocalBus, VirtualScheduler, VirtualClock>;

/// The whole pipeline in one process.
pub struct Embedded<S = MemoryStore> {
    /// The router (its adapters are clones of the fields below, sharing state).
    pub router: EmbeddedRouter<S>,
    /// The store.
    pub store: S,
    /// The bus (delivery jobs collect here).
    pub bus: LocalBus,
    /// The timers.
    pub scheduler: VirtualScheduler,
    /// The clock.
    pub clock: VirtualClock,
}

impl Embedded {
    /// A fresh pipeline on a new memory store whose clock starts at `start`.
    pub fn new(config: Arc<Config>, start: DateTime<Utc>) -> Self {
        Embedded::with_store(config, start, MemoryStore::new())
    }
}

impl<S: AlertStore + Clone> Embedded<S> {
    /// A fresh pipeline on `store` whose clock starts at `start`.
    pub fn with_store(config: Arc<Config>, start: DateTime<Utc>, store: S) -> Self {
        let bus = LocalBus::new();
        let scheduler = VirtualScheduler::new();
        let clock = VirtualClock::new(start);
        let router = Router {
            config,
            store: store.clone(),
            bus: bus.clone(),
            scheduler: scheduler.clone(),
            clock: clock.clone(),
            settings: RouterSettings::default(),
        };
        Embedded {
            router,
            store,
            bus,
            scheduler,
            clock,
        }
    }

    /// Fires the timers due by the alert's time, then routes the alert at its time.
    pub async fn ingest(&self, alert: Alert) -> Result<Vec<AuditEntry>, RouterError> {
        let mut out = self.run_timers(Some(alert.state_changed_at)).await?;
        self.clock.set(alert.state_changed_at);
        let routed = self.router.handle(alert).await?;
        if out.is_empty() {
            // Most events fire no timer: hand the router's entries on rather than copy them.
            return Ok(routed);
        }
        out.extend(routed);
        Ok(out)
    }

    /// Fires due timers in time order up to `until`. With `None`, until no timer is pending other than
    /// notification groups' repeat reminders, which recur for as long as their alerts fire.
    pub async fn run_timers(
        &self,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let mut out = Vec::new();
        let limit = until.unwrap_or(DateTime::<Utc>::MAX_UTC);
        for _ in 0..MAX_TIMER_FIRINGS {
            let only_repeats = || self.scheduler.all_pending(Timer::is_repeat);
            if until.is_none() && only_repeats() {
                return Ok(out);
            }
            let Some((at, _name, tick)) = self.scheduler.pop_due(limit) else {
                return Ok(out);
            };
            self.clock.set(at);
            out.extend(self.router.on_timer(&tick).await?);
        }
        Ok(out)
    }
}
