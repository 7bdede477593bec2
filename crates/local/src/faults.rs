//! Fault injection around any adapter: decorators of the store, bus and scheduler ports that count
//! every call on one shared counter and make a chosen call fail (a backend error, as throttling or a
//! 5xx would) or never return (the invocation dies there: a timeout, a kill, a crash, once the caller
//! drops the future). The router's fault tests walk the failure through every call of a step, and
//! the chaos harness draws faults at random; both need the same counter over all three ports, which
//! is why they live together.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tocsin_core::Alert;
use tocsin_core::noise::{GroupMember, NoiseState, Silence};
use tocsin_core::ports::{
    AlertStore, Bus, BusError, Claim, Latest, Scheduler, SchedulerError, SnapshotPut,
    StatusSnapshot, StatusSnapshots, StoreError,
};
use tocsin_core::record::{AlertRecord, AuditEntry, DedupRecord, DeliveryJob, Status, Timer};

/// What the chosen call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// Fails with the port's backend error.
    Error,
    /// Never returns: the caller's invocation dies at that point.
    Hang,
    /// The bus or the scheduler refuses the request as it is (as SNS refuses a message over its
    /// limit); a store has no refusal and fails as [`FaultMode::Error`].
    Refuse,
}

#[derive(Default)]
struct Plan {
    calls: usize,
    fail_at: Option<(usize, FaultMode)>,
    names: Vec<&'static str>,
    /// The largest item written so far (its JSON body, as the DynamoDB store writes it), and by which
    /// call.
    largest: (usize, &'static str),
    /// Every item written since the count restarted: the call and the body bytes.
    writes: Vec<(&'static str, usize)>,
    /// Every alert written since the count restarted, in order: its id and its key in the status
    /// index (`None` while it is out of the index).
    listings: Vec<(String, Option<String>)>,
}

/// The shared plan: counts calls across the decorated ports and fails the chosen one.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<Plan>>,
}

impl Faults {
    /// No fault planned.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Plan> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the call numbered `call` (0-based, counted from now) fail in `mode`; the count restarts.
    pub fn fail_at(&self, call: usize, mode: FaultMode) {
        let mut g = self.lock();
        g.calls = 0;
        g.names.clear();
        g.writes.clear();
        g.listings.clear();
        g.fail_at = Some((call, mode));
    }

    /// No more faults; the count restarts.
    pub fn clear(&self) {
        let mut g = self.lock();
        g.calls = 0;
        g.names.clear();
        g.writes.clear();
        g.listings.clear();
        g.fail_at = None;
    }

    /// Calls counted since the last `fail_at` or `clear`, by port method, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        self.lock().names.clone()
    }

    /// The largest item written through the store so far: the bytes of its body as the DynamoDB
    /// store writes it (most of an item), and the call that wrote it.
    pub fn largest_write(&self) -> (usize, &'static str) {
        self.lock().largest
    }

    /// Notes the size of an item written by `what`: the bytes of the body the DynamoDB store writes
    /// for it (its JSON, packed when that is shorter: `tocsin_core::packed`).
    fn wrote<T: serde::Serialize>(&self, what: &'static str, value: &T) {
        let size = serde_json::to_string(value).map_or(0, |v| tocsin_core::packed::stored_len(&v));
        let mut g = self.lock();
        if size > g.largest.0 {
            g.largest = (size, what);
        }
        g.writes.push((what, size));
    }

    /// The items written since the last `fail_at` or `clear`: the call and the body bytes of each.
    pub fn writes(&self) -> Vec<(&'static str, usize)> {
        self.lock().writes.clone()
    }

    /// Notes an alert written: its key in the DynamoDB status index (status and sort key), or none
    /// while its opening is owed (out of the index).
    fn listed(&self, r: &AlertRecord) {
        let key =
            (!r.opening_owed()).then(|| format!("{}#{}", r.status.as_str(), r.status_sort_key()));
        self.lock().listings.push((r.id.clone(), key));
    }

    /// The alerts written since the last `fail_at` or `clear`, in order: the id and the status
    /// index key of each (`None`: out of the index). A write that leaves the key as the alert's
    /// last write had it costs nothing in a keys-only index.
    pub fn listings(&self) -> Vec<(String, Option<String>)> {
        self.lock().listings.clone()
    }

    /// Counts one call of `what`; `Some(mode)` when it is the one to fail.
    fn gate(&self, what: &'static str) -> Option<FaultMode> {
        let mut g = self.lock();
        let n = g.calls;
        g.calls += 1;
        g.names.push(what);
        match g.fail_at {
            Some((at, mode)) if at == n => Some(mode),
            _ => None,
        }
    }

    /// Runs `call` unless it is the one to fail: then the port's error, or a future that never ends.
    async fn run<T, E>(
        &self,
        what: &'static str,
        error: impl FnOnce(String) -> E,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.run_refusable(what, error, None::<fn(String) -> E>, call)
            .await
    }

    /// [`Faults::run`] for a port that may refuse a request as it is: `refuse` makes that error.
    async fn run_refusable<T, E>(
        &self,
        what: &'static str,
        error: impl FnOnce(String) -> E,
        refuse: Option<impl FnOnce(String) -> E>,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        match (self.gate(what), refuse) {
            (None, _) => call.await,
            (Some(FaultMode::Refuse), Some(refuse)) => {
                Err(refuse(format!("injected refusal in {what}")))
            }
            (Some(FaultMode::Error | FaultMode::Refuse), _) => {
                Err(error(format!("injected fault in {what}")))
            }
            (Some(FaultMode::Hang), _) => std::future::pending().await,
        }
    }
}

/// A store whose calls go through [`Faults`].
#[derive(Clone)]
pub struct FaultyStore<S> {
    /// The store decorated.
    pub inner: S,
    /// The plan.
    pub faults: Faults,
}

/// The shared status page through [`Faults`]: its reads and writes are counted as the store's.
impl<S: StatusSnapshots> StatusSnapshots for FaultyStore<S> {
    async fn status_snapshot(&self, audience: &str) -> Result<Option<StatusSnapshot>, StoreError> {
        let f = &self.faults;
        f.run(
            "store.status_snapshot",
            StoreError::Backend,
            self.inner.status_snapshot(audience),
        )
        .await
    }
    async fn claim_status_refresh(
        &self,
        audience: &str,
        at: DateTime<Utc>,
        every: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let f = &self.faults;
        f.run(
            "store.claim_status_refresh",
            StoreError::Backend,
            self.inner.claim_status_refresh(audience, at, every),
        )
        .await
    }
    async fn put_status_snapshot(
        &self,
        audience: &str,
        snapshot: &StatusSnapshot,
    ) -> Result<SnapshotPut, StoreError> {
        let f = &self.faults;
        f.run(
            "store.put_status_snapshot",
            StoreError::Backend,
            self.inner.put_status_snapshot(audience, snapshot),
        )
        .await
    }
}

/// A bus whose calls go through [`Faults`].
#[derive(Clone)]
pub struct FaultyBus<B> {
    /// The bus decorated.
    pub inner: B,
    /// The plan.
    pub faults: Faults,
}

/// A scheduler whose calls go through [`Faults`].
#[derive(Clone)]
pub struct FaultyScheduler<K> {
    /// The scheduler decorated.
    pub inner: K,
    /// The plan.
    pub faults: Faults,
}

impl<B: Bus> Bus for FaultyBus<B> {
    async fn publish_alert(&self, alert: &Alert) -> Result<(), BusError> {
        self.faults
            .run_refusable(
                "bus.publish_alert",
                BusError::Backend,
                Some(BusError::Refused),
                self.inner.publish_alert(alert),
            )
            .await
    }

    async fn publish_delivery(&self, job: &DeliveryJob) -> Result<(), BusError> {
        self.faults
            .run_refusable(
                "bus.publish_delivery",
                BusError::Backend,
                Some(BusError::Refused),
                self.inner.publish_delivery(job),
            )
            .await
    }
}

impl<K: Scheduler> Scheduler for FaultyScheduler<K> {
    async fn schedule(
        &self,
        name: &str,
        at: DateTime<Utc>,
        tick: &Timer,
    ) -> Result<(), SchedulerError> {
        self.faults
            .run_refusable(
                "scheduler.schedule",
                SchedulerError::Backend,
                Some(SchedulerError::Refused),
                self.inner.schedule(name, at, tick),
            )
            .await
    }

    async fn cancel(&self, name: &str) -> Result<(), SchedulerError> {
        self.faults
            .run_refusable(
                "scheduler.cancel",
                SchedulerError::Backend,
                Some(SchedulerError::Refused),
                self.inner.cancel(name),
            )
            .await
    }
}

impl<S: AlertStore> AlertStore for FaultyStore<S> {
    async fn claim_event(&self, r: &DedupRecord) -> Result<Claim, StoreError> {
        let f = &self.faults;
        f.wrote("store.claim_event", r);
        f.run(
            "store.claim_event",
            StoreError::Backend,
            self.inner.claim_event(r),
        )
        .await
    }
    async fn complete_event(&self, r: &DedupRecord) -> Result<(), StoreError> {
        let f = &self.faults;
        f.wrote("store.complete_event", r);
        f.run(
            "store.complete_event",
            StoreError::Backend,
            self.inner.complete_event(r),
        )
        .await
    }
    async fn release_event(&self, id: &str) -> Result<(), StoreError> {
        let f = &self.faults;
        f.run(
            "store.release_event",
            StoreError::Backend,
            self.inner.release_event(id),
        )
        .await
    }
    async fn get_event(&self, id: &str) -> Result<Option<DedupRecord>, StoreError> {
        let f = &self.faults;
        f.run(
            "store.get_event",
            StoreError::Backend,
            self.inner.get_event(id),
        )
        .await
    }
    async fn latest_alert(&self, fp: &str) -> Result<Option<AlertRecord>, StoreError> {
        let f = &self.faults;
        f.run(
            "store.latest_alert",
            StoreError::Backend,
            self.inner.latest_alert(fp),
        )
        .await
    }
    async fn latest_alert_lazy(&self, fp: &str) -> Result<Latest, StoreError> {
        let f = &self.faults;
        f.run(
            "store.latest_alert_lazy",
            StoreError::Backend,
            self.inner.latest_alert_lazy(fp),
        )
        .await
    }
    async fn get_alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        let f = &self.faults;
        f.run(
            "store.get_alert",
            StoreError::Backend,
            self.inner.get_alert(id),
        )
        .await
    }
    async fn create_alert(&self, r: &AlertRecord) -> Result<(), StoreError> {
        let f = &self.faults;
        // Told apart for the write estimate: DynamoDB indexes an alert only once its opening is
        // carried out (`AlertRecord::opening_owed`).
        let what = if r.opening_owed() {
            "store.create_alert.owing"
        } else {
            "store.create_alert"
        };
        f.wrote(what, r);
        f.listed(r);
        f.run(
            "store.create_alert",
            StoreError::Backend,
            self.inner.create_alert(r),
        )
        .await
    }
    async fn update_alert(&self, r: &AlertRecord) -> Result<(), StoreError> {
        let f = &self.faults;
        f.wrote("store.update_alert", r);
        f.listed(r);
        f.run(
            "store.update_alert",
            StoreError::Backend,
            self.inner.update_alert(r),
        )
        .await
    }
    async fn append_audit(&self, e: &[AuditEntry]) -> Result<(), StoreError> {
        let f = &self.faults;
        // As the DynamoDB store writes them: one item per alert an append is about.
        let mut alerts: Vec<&str> = Vec::new();
        for entry in e {
            if !alerts.contains(&entry.alert.as_str()) {
                alerts.push(&entry.alert);
            }
        }
        for alert in alerts {
            let items: Vec<&AuditEntry> = e.iter().filter(|x| x.alert == alert).collect();
            match items.as_slice() {
                [one] => f.wrote("store.append_audit", one),
                many => f.wrote("store.append_audit", &many),
            }
        }
        f.run(
            "store.append_audit",
            StoreError::Backend,
            self.inner.append_audit(e),
        )
        .await
    }
    async fn audit(&self, id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let f = &self.faults;
        f.run("store.audit", StoreError::Backend, self.inner.audit(id))
            .await
    }
    async fn audit_since(
        &self,
        id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let f = &self.faults;
        f.run(
            "store.audit_since",
            StoreError::Backend,
            self.inner.audit_since(id, since),
        )
        .await
    }
    async fn list_alerts(
        &self,
        status: Status,
        limit: usize,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let f = &self.faults;
        f.run(
            "store.list_alerts",
            StoreError::Backend,
            self.inner.list_alerts(status, limit),
        )
        .await
    }
    async fn create_silence(&self, s: &Silence) -> Result<(), StoreError> {
        let f = &self.faults;
        f.run(
            "store.create_silence",
            StoreError::Backend,
            self.inner.create_silence(s),
        )
        .await
    }
    async fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        let f = &self.faults;
        f.run("store.silences", StoreError::Backend, self.inner.silences())
            .await
    }
    async fn active_silences(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Silence>, StoreError> {
        let f = &self.faults;
        f.run(
            "store.active_silences",
            StoreError::Backend,
            self.inner.active_silences(now, limit),
        )
        .await
    }
    async fn expire_silence(
        &self,
        id: &str,
        at: DateTime<Utc>,
        actor: &str,
    ) -> Result<Silence, StoreError> {
        let f = &self.faults;
        f.run(
            "store.expire_silence",
            StoreError::Backend,
            self.inner.expire_silence(id, at, actor),
        )
        .await
    }
    async fn noise_state(&self, key: &str) -> Result<Option<NoiseState>, StoreError> {
        let f = &self.faults;
        f.run(
            "store.noise_state",
            StoreError::Backend,
            self.inner.noise_state(key),
        )
        .await
    }
    async fn put_noise_state(&self, s: &NoiseState) -> Result<(), StoreError> {
        let f = &self.faults;
        f.wrote("store.put_noise_state", s);
        f.run(
            "store.put_noise_state",
            StoreError::Backend,
            self.inner.put_noise_state(s),
        )
        .await
    }
    async fn put_noise_state_owned(&self, s: NoiseState) -> Result<(), StoreError> {
        let f = &self.faults;
        f.wrote("store.put_noise_state", &s);
        f.run(
            "store.put_noise_state",
            StoreError::Backend,
            self.inner.put_noise_state_owned(s),
        )
        .await
    }
    async fn group_member(&self, g: &str, id: &str) -> Result<Option<GroupMember>, StoreError> {
        let f = &self.faults;
        f.run(
            "store.group_member",
            StoreError::Backend,
            self.inner.group_member(g, id),
        )
        .await
    }
    async fn put_group_member(&self, g: &str, m: &GroupMember) -> Result<(), StoreError> {
        let f = &self.faults;
        f.wrote("store.put_group_member", m);
        f.run(
            "store.put_group_member",
            StoreError::Backend,
            self.inner.put_group_member(g, m),
        )
        .await
    }
    async fn group_members(
        &self,
        g: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GroupMember>, StoreError> {
        let f = &self.faults;
        f.run(
            "store.group_members",
            StoreError::Backend,
            self.inner.group_members(g, after, limit),
        )
        .await
    }
    async fn remove_group_member(&self, g: &str, id: &str) -> Result<(), StoreError> {
        let f = &self.faults;
        f.run(
            "store.remove_group_member",
            StoreError::Backend,
            self.inner.remove_group_member(g, id),
        )
        .await
    }
}

/// The router on the embedded adapters, each behind one shared [`Faults`] plan: what the fault
/// walk, the group-scale test and the write-units bench drive. The fields are the adapters
/// themselves (clones sharing state with the router's), to read what was sent and set.
pub struct FaultyEmbedded {
    /// The router.
    pub router: tocsin_core::router::Router<
        FaultyStore<crate::MemoryStore>,
        FaultyBus<crate::LocalBus>,
        FaultyScheduler<crate::VirtualScheduler>,
        crate::VirtualClock,
    >,
    /// The plan every port call goes through.
    pub faults: Faults,
    /// The store, without faults.
    pub store: crate::MemoryStore,
    /// The bus: delivery jobs collect here.
    pub bus: crate::LocalBus,
    /// The timers.
    pub scheduler: crate::VirtualScheduler,
    /// The clock.
    pub clock: crate::VirtualClock,
}

impl FaultyEmbedded {
    /// A fresh pipeline on `config` whose clock starts at `start`, with no fault planned.
    pub fn new(config: Arc<tocsin_core::config::Config>, start: DateTime<Utc>) -> Self {
        let faults = Faults::new();
        let store = crate::MemoryStore::new();
        let bus = crate::LocalBus::new();
        let scheduler = crate::VirtualScheduler::new();
        let clock = crate::VirtualClock::new(start);
        let router = tocsin_core::router::Router {
            config,
            store: FaultyStore {
                inner: store.clone(),
                faults: faults.clone(),
            },
            bus: FaultyBus {
                inner: bus.clone(),
                faults: faults.clone(),
            },
            scheduler: FaultyScheduler {
                inner: scheduler.clone(),
                faults: faults.clone(),
            },
            clock: clock.clone(),
            settings: tocsin_core::router::RouterSettings::default(),
        };
        FaultyEmbedded {
            router,
            faults,
            store,
            bus,
            scheduler,
            clock,
        }
    }
}
