//! The router: deduplication, the alert lifecycle, routing and escalation steps, generic over the ports.
//!
//! Every hand-off upstream is at-least-once, so one transition may arrive several times (SNS and
//! EventBridge both, platform retries). The dedup is one conditional write on the event id, in the
//! manner of Powertools' idempotency:
//!
//! ```text
//!  invocation A                       store (event_id)                 invocation B (same event)
//!  claim(INPROGRESS, until=T+5m) ---> absent: written, A wins
//!                                                                 <--- claim(...)
//!                                     exists, INPROGRESS, not stale:
//!                                     condition fails, ALL_OLD ------> B: "in progress" error, the
//!  process: open alert, publish jobs                                      platform retries B later
//!  complete(COMPLETED, outcome) ----> COMPLETED until T+ttl
//!                                                                 <--- claim(...) (retry)
//!                                     exists, COMPLETED: fails, ------> B: dedup, with A's outcome,
//!                                     ALL_OLD                          no second read
//!  (A crashes before complete: its claim goes stale at T+5m and the next retry takes it over;
//!   A failing cleanly releases the claim at once.)
//! ```
//!
//! After the claim, one open alert per fingerprint: a firing transition with nothing live opens an
//! occurrence and pages the routes' targets; one with a live alert is a repeat (counted, not paged); a
//! recovery resolves the live alert and tells the same targets. Escalation runs on one-time timers named
//! per alert and step, and the step advances by a conditional update, so late or doubled timers page once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::classify::classify;
use crate::config::{
    Config, EscalationPolicy, EscalationTarget, InsufficientData, LevelMode, Notify,
};
use crate::lifecycle::{self, Command, IllegalTransition};
use crate::model::{AlarmState, Alert, format_time, stable_id};
use crate::ports::{
    AlertHead, AlertStore, Bus, BusError, Claim, Clock, Latest, Scheduler, SchedulerError,
    StoreError,
};
use crate::record::{
    Action, AlertRecord, AuditEntry, ClaimStatus, DedupRecord, DeliveryJob, DeliveryKind,
    EscalationTick, Status, Target,
};
use crate::routing::{expand, match_routes, person_target};

/// Why the router could not finish; the function fails and the platform retries.
#[derive(Debug, Error)]
pub enum RouterError {
    /// Another invocation holds the claim on this event right now.
    #[error("event {0} is being processed by another invocation")]
    InProgress(String),
    /// The store failed or a conditional write lost a race.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A publish failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A timer could not be set or cancelled.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// A person's command the alert's status does not allow.
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
}

/// Tunables of the router.
#[derive(Debug, Clone, Copy)]
pub struct RouterSettings {
    /// How long a processed event id keeps deduplicating.
    pub dedup_ttl: Duration,
    /// How long an in-progress claim holds before another invocation may take it over (≥ the function's
    /// timeout).
    pub in_progress_timeout: Duration,
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings {
            dedup_ttl: Duration::from_secs(7 * 24 * 3600),
            in_progress_timeout: Duration::from_secs(300),
        }
    }
}

/// The router, generic over its ports.
pub struct Router<S, B, K, C> {
    /// The routing config.
    pub config: Arc<Config>,
    /// Durable state.
    pub store: S,
    /// Where delivery jobs go.
    pub bus: B,
    /// Escalation timers.
    pub scheduler: K,
    /// The time.
    pub clock: C,
    /// Tunables.
    pub settings: RouterSettings,
}

/// How long an escalation step held by an inhibition (which has no end time) waits before it looks
/// again.
const HELD_ESCALATION_RECHECK_MINUTES: i64 = 5;

/// The timer name of an alert's escalation step: stable, so scheduling twice is a no-op.
pub fn timer_name(alert_id: &str, step: u32) -> String {
    format!("tocsin-esc-{alert_id}-{step}")
}

/// The alert id an event would open: stable across retries of the same event.
pub fn alert_id_for(alert: &Alert) -> String {
    stable_id(&["alert", &alert.fingerprint, &alert.event_id])
}

/// What [`Router::plan`] decides for an alert opening now.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Every route that took the alert.
    pub(crate) route_names: Vec<String>,
    /// Targets paged at once, and the route of each.
    pub(crate) direct: Vec<Target>,
    pub(crate) direct_routes: Vec<String>,
    /// Routes that group the alert instead, with their grouping.
    pub(crate) groups: Vec<(String, crate::config::Grouping)>,
    /// The escalation policy.
    pub(crate) escalation: Option<String>,
    /// Muted routes and unreachable recipients.
    pub(crate) entries: Vec<AuditEntry>,
}

impl Plan {
    pub(crate) fn group_keys(&self, alert: &Alert) -> Vec<String> {
        self.groups
            .iter()
            .map(|(route, g)| {
                crate::noise::group_key(
                    route,
                    &crate::noise::label_values(&g.group_by, &g.fields, alert),
                )
            })
            .collect()
    }
}

pub(crate) fn entry(
    at: DateTime<Utc>,
    id: &str,
    alert: &Alert,
    action: Action,
    reason: String,
) -> AuditEntry {
    AuditEntry {
        event_id: Some(alert.event_id.clone()),
        ..AuditEntry::new(at, id, &alert.alarm_name, alert.severity, action, reason)
    }
}

pub(crate) fn human(d: chrono::TimeDelta) -> String {
    Human(d).to_string()
}

/// A duration as people read it (`45s`, `5m00s`, `2h05m`), written straight into the text around it.
#[derive(Clone, Copy)]
pub(crate) struct Human(pub(crate) chrono::TimeDelta);

impl std::fmt::Display for Human {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.num_seconds().max(0) {
            s if s < 60 => write!(f, "{s}s"),
            s if s < 3600 => write!(f, "{}m{:02}s", s / 60, s % 60),
            s => write!(f, "{}h{:02}m", s / 3600, (s % 3600) / 60),
        }
    }
}

pub(crate) fn to_chrono(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    /// Handles one canonical alert (one transition). Returns the decisions taken, also appended to the
    /// audit trail.
    pub async fn handle(&self, mut alert: Alert) -> Result<Vec<AuditEntry>, RouterError> {
        let now = self.clock.now();
        classify(&self.config, &mut alert);
        // Shared from here on: a flapping alarm's state keeps the latest transition, and sharing it
        // spares a copy of the alert on every change.
        let alert = Arc::new(alert);
        let mut claim = DedupRecord {
            event_id: alert.event_id.clone(),
            status: ClaimStatus::InProgress,
            expires_at: now + to_chrono(self.settings.dedup_ttl),
            in_progress_until: now + to_chrono(self.settings.in_progress_timeout),
            transport: alert.transport.as_str().to_string(),
            claimed_at: now,
            alert_id: None,
            outcome: None,
        };
        if let Claim::Duplicate(existing) = self.store.claim_event(&claim).await? {
            if existing.status == ClaimStatus::InProgress {
                return Err(RouterError::InProgress(alert.event_id.clone()));
            }
            let id = existing
                .alert_id
                .clone()
                .unwrap_or_else(|| alert_id_for(&alert));
            let e = entry(
                now,
                &id,
                &alert,
                Action::Dedup,
                format!(
                    "event {} already processed (first via {} at {}): {}",
                    alert.event_id,
                    existing.transport,
                    format_time(&existing.claimed_at),
                    existing.outcome.as_deref().unwrap_or("no outcome recorded")
                ),
            );
            self.store.append_audit(std::slice::from_ref(&e)).await?;
            return Ok(vec![e]);
        }
        let done = async {
            let (id, entries) = self.process(&alert, now).await?;
            self.store.append_audit(&entries).await?;
            claim.status = ClaimStatus::Completed;
            claim.alert_id = Some(id);
            claim.outcome = Some(outcome_summary(&entries));
            self.store.complete_event(&claim).await?;
            Ok(entries)
        }
        .await;
        if done.is_err() {
            // Release at once so the platform's retry can take the event (it resumes whatever was
            // half done). Best effort: if the release fails too, the claim goes stale and a later
            // retry takes it over.
            let _ = self.store.release_event(&alert.event_id).await;
        }
        done
    }

    async fn process(
        &self,
        alert: &Arc<Alert>,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<AuditEntry>), RouterError> {
        let firing = match alert.state {
            AlarmState::Alarm => true,
            AlarmState::Ok => false,
            AlarmState::InsufficientData => match self.config.defaults.insufficient_data {
                InsufficientData::Notify => true,
                InsufficientData::Resolve => false,
                InsufficientData::Ignore => {
                    let latest = self.store.latest_alert(&alert.fingerprint).await?;
                    let id = latest
                        .filter(|r| r.status.is_live())
                        .map(|r| r.id)
                        .unwrap_or_else(|| alert_id_for(alert));
                    let e = entry(
                        now,
                        &id,
                        alert,
                        Action::Suppress,
                        "INSUFFICIENT_DATA ignored (defaults.insufficient_data: ignore)".into(),
                    );
                    return Ok((id, vec![e]));
                }
            },
        };
        // The head first where the store reads cheaply (see `Latest`); the whole record below.
        let (head, mut whole) = match self.store.latest_alert_lazy(&alert.fingerprint).await? {
            Latest::Whole(rec) => (rec.as_deref().map(AlertHead::of), Some(rec.map(|r| *r))),
            Latest::Head(head) => (head, None),
        };
        // A retry of an event whose state change was written before the attempt failed: the record's
        // last transition is this event. Re-emit its side effects (idempotent by delivery id and
        // timer name) without applying the change twice.
        // (A record older than the dedup window is a genuine redelivery long after, not a retry.)
        let window = to_chrono(self.settings.dedup_ttl);
        if head
            .as_ref()
            .is_some_and(|r| r.event_id == alert.event_id && now - r.updated_at < window)
        {
            let rec = match whole.take() {
                Some(rec) => rec,
                None => self.store.latest_alert(&alert.fingerprint).await?,
            };
            if let Some(rec) = rec {
                return self.resume(rec, alert, now).await;
            }
        }
        let live = head
            .as_ref()
            .filter(|r| r.status.is_live())
            .map(|r| r.id.as_str());
        if let Some(absorbed) = self.damp(alert, firing, live, now).await? {
            return Ok(absorbed);
        }
        let latest = match whole {
            Some(rec) => rec,
            None => self.store.latest_alert(&alert.fingerprint).await?,
        };
        if firing {
            match latest {
                Some(rec) if rec.status.is_live() => self.repeat(rec, alert, now).await,
                previous => self.open(alert, previous, now).await,
            }
        } else {
            match latest {
                Some(rec) if rec.status.is_live() => self.resolve(rec, alert, now).await,
                _ => {
                    let id = alert_id_for(alert);
                    let e = entry(
                        now,
                        &id,
                        alert,
                        Action::Suppress,
                        format!(
                            "{} for {} but no alert is open (already resolved, or never paged)",
                            alert.state, alert.alarm_name
                        ),
                    );
                    Ok((id, vec![e]))
                }
            }
        }
    }

    /// Opens an occurrence: held (maintenance window, silence, inhibition) with nobody paged, or paged
    /// now on the routes that page each alert and grouped on the routes that group.
    pub(crate) async fn open(
        &self,
        alert: &Alert,
        previous: Option<AlertRecord>,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<AuditEntry>), RouterError> {
        let id = alert_id_for(alert);
        let plan = self.plan(alert, &id, now);
        let held = self.held(alert, &id, now).await?;
        let paged = if held.is_some() {
            Vec::new()
        } else {
            plan.direct.clone()
        };
        let record = AlertRecord {
            id: id.clone(),
            fingerprint: alert.fingerprint.clone(),
            status: Status::Open,
            alert: alert.clone(),
            severity: alert.severity,
            opened_at: now,
            updated_at: now,
            acknowledged: None,
            assignee: None,
            resolved_at: None,
            occurrences: 1,
            routes: plan.route_names.clone(),
            initial_targets: paged.len(),
            notified: paged,
            group_notified: Vec::new(),
            escalation: plan.escalation.clone(),
            escalation_step: 0,
            ack_timer: None,
            previous: previous.as_ref().map(|p| p.id.clone()),
            version: 1,
            suppressed: held.as_ref().map(|h| h.by.clone()),
            groups: if held.is_some() {
                Vec::new()
            } else {
                plan.group_keys(alert)
            },
        };
        // A retry of this event after its alert was written never gets here (`process` resumes it), so a
        // conflict is a real race or a stale view: fail, and let the platform's retry read again.
        self.store.create_alert(&record).await?;
        let mut reason = format!(
            "{}: {}; severity {}, {}",
            alert.state,
            alert.reason,
            alert.severity,
            alert
                .labels
                .get("priority")
                .map(String::as_str)
                .unwrap_or("P?")
        );
        if let Some(s) = alert.labels.get("service") {
            reason.push_str(&format!(", service {s}"));
        }
        reason.push_str(&format!("; routes {}", plan.route_names.join(", ")));
        if let Some(p) = &previous {
            reason.push_str(&format!("; follows occurrence {}", p.id));
        }
        let mut entries = vec![entry(now, &id, alert, Action::Open, reason)];
        self.note_inhibit_source(alert, &id, now, &mut entries)
            .await?;
        match held {
            Some(h) => self.hold(&record, h, now, &mut entries).await?,
            None => {
                self.page_plan(&record, plan, "alert opened", now, &mut entries)
                    .await?
            }
        }
        self.schedule_health_reminder(&record, None, now, &mut entries)
            .await?;
        Ok((id, entries))
    }

    /// Which routes take the alert now, whom the routes that page each alert page, and which routes
    /// group it instead. Muted routes and unreachable recipients are recorded in `entries`.
    pub(crate) fn plan(&self, alert: &Alert, id: &str, now: DateTime<Utc>) -> Plan {
        let mut plan = Plan::default();
        let mut seen = BTreeSet::new();
        for m in match_routes(&self.config, alert, now) {
            plan.route_names.push(m.route.name.clone());
            if let Some(why) = &m.muted {
                plan.entries
                    .push(entry(now, id, alert, Action::Suppress, why.clone()));
                continue;
            }
            if plan.escalation.is_none() {
                plan.escalation = m.escalation.map(str::to_string);
            }
            if let Some(g) = m.grouping {
                plan.groups.push((m.route.name.clone(), g.clone()));
                continue;
            }
            for n in m.notify {
                let (ts, problems) = expand(&self.config, n, now);
                for p in problems {
                    plan.entries.push(entry(
                        now,
                        id,
                        alert,
                        Action::Suppress,
                        format!("route {:?}, channel {:?}: {p}", m.route.name, n.channel),
                    ));
                }
                for t in ts {
                    if seen.insert((t.channel.clone(), t.target.clone())) {
                        plan.direct.push(t);
                        plan.direct_routes.push(m.route.name.clone());
                    }
                }
            }
        }
        plan
    }

    /// Pages a planned alert whose record is written: its direct targets now, its groups by their
    /// timers, and the first escalation step.
    pub(crate) async fn page_plan(
        &self,
        record: &AlertRecord,
        plan: Plan,
        why: &str,
        now: DateTime<Utc>,
        entries: &mut Vec<AuditEntry>,
    ) -> Result<(), RouterError> {
        let alert = &record.alert;
        let id = &record.id;
        entries.extend(plan.entries);
        for (t, route) in plan.direct.iter().zip(&plan.direct_routes) {
            let job = self.job(record, DeliveryKind::Trigger, t, None, now);
            self.bus.publish_delivery(&job).await?;
            let mut e = entry(
                now,
                id,
                alert,
                Action::Notify,
                format!("{why}; route {route}"),
            );
            e = e.with_target(t);
            entries.push(e);
        }
        for (route, grouping) in &plan.groups {
            self.join_group(route, grouping, alert, id, now, entries)
                .await?;
        }
        if plan.direct.is_empty() && plan.groups.is_empty() {
            entries.push(entry(
                now,
                id,
                alert,
                Action::Suppress,
                "no route notifies anyone for this alert now".into(),
            ));
        }
        if let Some(policy) = plan
            .escalation
            .as_deref()
            .and_then(|p| self.config.escalation_policies.get(p))
        {
            if let Some(first) = policy.levels.first() {
                let at = now + to_chrono(first.delay);
                let tick = EscalationTick {
                    alert_id: id.clone(),
                    step: 1,
                    ack_timer: None,
                    noise: None,
                };
                self.scheduler
                    .schedule(&timer_name(id, 1), at, &tick)
                    .await?;
            }
        }
        Ok(())
    }

    async fn resume(
        &self,
        rec: AlertRecord,
        alert: &Alert,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<AuditEntry>), RouterError> {
        let resumed = |what: &str| format!("{what} (resumed after a failed attempt)");
        let mut entries = Vec::new();
        let (kind, targets, head) = match rec.status {
            Status::Open | Status::Acknowledged if rec.id == alert_id_for(alert) => (
                DeliveryKind::Trigger,
                &rec.notified[..rec.initial_targets.min(rec.notified.len())],
                entry(now, &rec.id, alert, Action::Open, resumed("alert opened")),
            ),
            Status::Open | Status::Acknowledged => {
                let e = entry(
                    now,
                    &rec.id,
                    alert,
                    Action::Repeat,
                    resumed("repeat counted"),
                );
                return Ok((rec.id, vec![e]));
            }
            Status::Resolved | Status::Closed => (
                DeliveryKind::Resolve,
                &rec.notified[..],
                entry(
                    now,
                    &rec.id,
                    alert,
                    Action::Resolve,
                    resumed("alert resolved"),
                ),
            ),
        };
        entries.push(head);
        for t in targets {
            let job = self.job(&rec, kind, t, None, now);
            self.bus.publish_delivery(&job).await?;
            let what = if kind == DeliveryKind::Resolve {
                "resolution"
            } else {
                "alert opened"
            };
            let mut e = entry(now, &rec.id, alert, Action::Notify, resumed(what));
            e = e.with_target(t);
            entries.push(e);
        }
        if kind == DeliveryKind::Trigger && rec.escalation_step == 0 {
            if let Some(first) = rec
                .escalation
                .as_deref()
                .and_then(|p| self.config.escalation_policies.get(p))
                .and_then(|p| p.levels.first())
            {
                let tick = EscalationTick {
                    alert_id: rec.id.clone(),
                    step: 1,
                    ack_timer: None,
                    noise: None,
                };
                let at = rec.opened_at + to_chrono(first.delay);
                self.scheduler
                    .schedule(&timer_name(&rec.id, 1), at, &tick)
                    .await?;
            }
        }
        Ok((rec.id, entries))
    }

    async fn repeat(
        &self,
        mut rec: AlertRecord,
        alert: &Alert,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<AuditEntry>), RouterError> {
        let update = crate::update::content_update(&rec.alert, alert);
        rec.occurrences += 1;
        let before = std::mem::replace(&mut rec.alert, alert.clone());
        rec.updated_at = now;
        rec.version += 1;
        self.store.update_alert(&rec).await?;
        let mut entries = Vec::new();
        self.schedule_health_reminder(&rec, Some(&before), now, &mut entries)
            .await?;
        // An update that says something new (crate::update) is told to everyone paged so far, unless
        // a silence, window or inhibition now holds the alert.
        let update = match update {
            Some(why) => match self.held(alert, &rec.id, now).await? {
                Some(h) => {
                    entries.push(entry(
                        now,
                        &rec.id,
                        alert,
                        Action::Suppress,
                        format!(
                            "{}; not told: held by {}",
                            why.replace("; re-notified", ""),
                            h.by
                        ),
                    ));
                    None
                }
                None => Some(why),
            },
            None => None,
        };
        if let Some(why) = &update {
            for job in crate::update::update_jobs(&rec, now) {
                self.bus.publish_delivery(&job).await?;
                let e = entry(now, &rec.id, alert, Action::Notify, why.clone());
                entries.push(e.with_target(&job.target));
            }
        }
        let e = entry(
            now,
            &rec.id,
            alert,
            Action::Repeat,
            format!(
                "already {} since {} ({} firing transitions); not paged again",
                rec.status.as_str(),
                format_time(&rec.opened_at),
                rec.occurrences
            ),
        );
        entries.insert(0, e);
        Ok((rec.id, entries))
    }

    pub(crate) async fn resolve(
        &self,
        mut rec: AlertRecord,
        alert: &Alert,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<AuditEntry>), RouterError> {
        rec.status = Status::Resolved;
        let reminder = crate::remind::scheduled_start(&rec.alert)
            .filter(|_| self.config.defaults.health_reminder.is_some());
        rec.alert = alert.clone();
        rec.updated_at = now;
        rec.resolved_at = Some(format_time(&now));
        rec.version += 1;
        let ack_timer = rec.ack_timer.take();
        self.store.update_alert(&rec).await?;
        if let Some(name) = &ack_timer {
            self.scheduler.cancel(name).await?;
        }
        // A scheduled change cancelled before it started: its reminder would only find it resolved.
        if let Some(start) = reminder {
            self.scheduler
                .cancel(&crate::remind::reminder_timer_name(&rec.id, start))
                .await?;
        }
        if rec.escalation.is_some() {
            self.scheduler
                .cancel(&timer_name(&rec.id, rec.escalation_step + 1))
                .await?;
        }
        let mut entries = vec![entry(
            now,
            &rec.id,
            alert,
            Action::Resolve,
            format!(
                "{}: {}; open for {}",
                alert.state,
                alert.reason,
                human(now - rec.opened_at)
            ),
        )];
        if let Some(by) = &rec.suppressed {
            entries[0].reason.push_str(&format!(
                "; it was held by {by}, so nobody was paged for it"
            ));
        }
        for t in &rec.notified {
            let job = self.job(&rec, DeliveryKind::Resolve, t, None, now);
            self.bus.publish_delivery(&job).await?;
            let mut e = entry(now, &rec.id, alert, Action::Notify, "resolution".into());
            e = e.with_target(t);
            entries.push(e);
        }
        self.after_resolve(&rec, now, &mut entries).await?;
        Ok((rec.id, entries))
    }

    /// Acknowledges a live alert: escalation stops, the others paged are told who, the audit records it.
    pub async fn acknowledge(
        &self,
        alert_id: &str,
        actor: &str,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        self.act(alert_id, &Command::Ack, actor).await
    }

    /// Applies a person's command (ack, resolve, assign, note) to an alert, by a conditional update.
    /// Ack and resolve stop escalation and tell everyone paged; an illegal transition is
    /// [`RouterError::Illegal`] and changes nothing.
    pub async fn act(
        &self,
        alert_id: &str,
        cmd: &Command,
        actor: &str,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let now = self.clock.now();
        let mut rec = self
            .store
            .get_alert(alert_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("alert {alert_id}")))?;
        let (action, reason) = lifecycle::apply(&mut rec, cmd, actor, now)?;
        let stale_ack_timer = rec.ack_timer.take();
        let ack_timeout = match cmd {
            Command::Ack => self.policy(&rec).and_then(|p| p.ack_timeout),
            _ => None,
        };
        if ack_timeout.is_some() {
            rec.ack_timer = Some(format!("tocsin-ack-{}-{}", rec.id, rec.version));
        }
        if !matches!(cmd, Command::Ack | Command::Resolve) {
            // Assign and note leave a pending acknowledgement timeout as it is.
            rec.ack_timer = stale_ack_timer.clone();
        }
        self.store.update_alert(&rec).await?;
        if matches!(cmd, Command::Ack | Command::Resolve) {
            if let Some(old) = &stale_ack_timer {
                self.scheduler.cancel(old).await?;
            }
        }
        if let (Some(timeout), Some(name)) = (ack_timeout, &rec.ack_timer) {
            let tick = EscalationTick {
                alert_id: rec.id.clone(),
                step: 0,
                ack_timer: Some(name.clone()),
                noise: None,
            };
            self.scheduler
                .schedule(name, now + to_chrono(timeout), &tick)
                .await?;
        }
        let mut e = entry(now, &rec.id, &rec.alert, action, reason);
        e.event_id = None;
        let mut entries = vec![e];
        let tell = match cmd {
            Command::Ack => Some(DeliveryKind::Acknowledge),
            Command::Resolve => Some(DeliveryKind::Resolve),
            Command::Assign(_) | Command::Note(_) => None,
        };
        if let Some(kind) = tell {
            if let Some(policy) = &rec.escalation {
                let next = timer_name(&rec.id, rec.escalation_step + 1);
                self.scheduler.cancel(&next).await?;
                // On record, so the timeline (and the API) shows that paging stopped, and why.
                let mut end = entry(
                    now,
                    &rec.id,
                    &rec.alert,
                    Action::EscalationEnd,
                    format!(
                        "escalation policy {policy:?} stopped after step {}: {} by {actor} (timer {next} cancelled)",
                        rec.escalation_step,
                        if kind == DeliveryKind::Resolve {
                            "resolved"
                        } else {
                            "acknowledged"
                        }
                    ),
                );
                end.event_id = None;
                entries.push(end);
            }
            // The person who acted knows; everyone else paged is told.
            let grouped = rec
                .group_notified
                .iter()
                .filter(|g| !rec.notified.contains(g));
            for t in rec
                .notified
                .iter()
                .chain(grouped)
                .filter(|t| t.target != actor)
            {
                let job = self.job(&rec, kind, t, None, now);
                self.bus.publish_delivery(&job).await?;
                let mut n = entry(
                    now,
                    &rec.id,
                    &rec.alert,
                    Action::Notify,
                    format!(
                        "{} by {actor}",
                        if kind == DeliveryKind::Resolve {
                            "resolved"
                        } else {
                            "acknowledged"
                        }
                    ),
                );
                n.event_id = None;
                n = n.with_target(t);
                entries.push(n);
            }
        }
        if matches!(cmd, Command::Resolve) {
            self.after_resolve(&rec, now, &mut entries).await?;
        }
        self.store.append_audit(&entries).await?;
        Ok(entries)
    }

    /// Handles an escalation timer: pages the step's level unless the alert is no longer open, and
    /// schedules the next step. A step already paged pages nothing.
    pub async fn escalate(&self, tick: &EscalationTick) -> Result<Vec<AuditEntry>, RouterError> {
        let now = self.clock.now();
        if let Some(timer) = &tick.noise {
            // Boxed: the noise timers reach into open/resolve/grouping, and inlining all of that into
            // this future makes the escalate function's future too deep for the compiler's layout.
            let entries = Box::pin(self.noise_timer(tick, timer, now)).await?;
            self.store.append_audit(&entries).await?;
            return Ok(entries);
        }
        let Some(mut rec) = self.store.get_alert(&tick.alert_id).await? else {
            return Ok(Vec::new());
        };
        if let Some(name) = &tick.ack_timer {
            return self.ack_timed_out(rec, name, now).await;
        }
        let alert = rec.alert.clone();
        let end =
            |reason: String| entry(now, &tick.alert_id, &alert, Action::EscalationEnd, reason);
        let policy = rec
            .escalation
            .as_deref()
            .and_then(|p| self.config.escalation_policies.get(p));
        let entries = match (rec.status, policy) {
            (_, None) => vec![end(format!(
                "escalation policy {:?} is not in the config",
                rec.escalation.as_deref().unwrap_or("")
            ))],
            (Status::Acknowledged, _) => vec![end(format!(
                "acknowledged by {}",
                rec.acknowledged
                    .as_ref()
                    .map(|a| a.1.as_str())
                    .unwrap_or("someone")
            ))],
            (Status::Resolved | Status::Closed, _) => vec![end("alert resolved".into())],
            (Status::Open, Some(_)) if rec.escalation_step >= tick.step => {
                let mut e = entry(
                    now,
                    &rec.id,
                    &alert,
                    Action::Dedup,
                    format!("escalation step {} already paged", tick.step),
                );
                e.event_id = None;
                vec![e]
            }
            (Status::Open, Some(_)) if let Some(h) = self.held(&alert, &rec.id, now).await? => {
                // Silenced, in maintenance or inhibited since it opened: this step waits (it is not
                // skipped) and is tried again when the hold ends; an inhibition has no end time, so
                // it is looked at again after a while.
                let retry = h
                    .until
                    .filter(|u| *u > now)
                    .unwrap_or(now + chrono::TimeDelta::minutes(HELD_ESCALATION_RECHECK_MINUTES));
                let name = format!(
                    "{}-held-{}",
                    timer_name(&rec.id, tick.step),
                    retry.timestamp()
                );
                self.scheduler.schedule(&name, retry, tick).await?;
                let mut e = entry(
                    now,
                    &rec.id,
                    &alert,
                    Action::Suppress,
                    format!(
                        "escalation step {} held by {}: {}; tried again at {}",
                        tick.step,
                        h.by,
                        h.reason,
                        format_time(&retry)
                    ),
                );
                e.event_id = None;
                vec![e]
            }
            (Status::Open, Some(policy)) => {
                let levels = policy.levels.len() as u32;
                let total = levels * (policy.repeat + 1);
                if levels == 0 || tick.step > total {
                    vec![end("no more escalation levels".into())]
                } else {
                    let level_idx = ((tick.step - 1) % levels) as usize;
                    let round = (tick.step - 1) / levels;
                    let mut targets = self.level_targets(policy, level_idx, round, now);
                    // The first round never pages twice whoever was already paged for this alert (the
                    // route's own notify often names the same on-call person as level 1); a repeat of
                    // the policy pages them again, on purpose.
                    let already: Vec<Target> = if round == 0 {
                        let (dup, fresh) = targets.0.into_iter().partition(|t: &Target| {
                            rec.notified
                                .iter()
                                .any(|n| n.channel == t.channel && n.target == t.target)
                        });
                        targets.0 = fresh;
                        dup
                    } else {
                        Vec::new()
                    };
                    rec.escalation_step = tick.step;
                    rec.updated_at = now;
                    rec.version += 1;
                    for t in &targets.0 {
                        if !rec
                            .notified
                            .iter()
                            .any(|n| n.channel == t.channel && n.target == t.target)
                        {
                            rec.notified.push(t.clone());
                        }
                    }
                    self.store.update_alert(&rec).await?;
                    let mut entries = Vec::new();
                    let waited = human(now - rec.opened_at);
                    for t in &targets.0 {
                        let job = self.job(
                            &rec,
                            DeliveryKind::Escalation,
                            t,
                            Some(level_idx as u32 + 1),
                            now,
                        );
                        self.bus.publish_delivery(&job).await?;
                        let mut e = entry(
                            now,
                            &rec.id,
                            &alert,
                            Action::Escalate,
                            format!(
                                "policy {:?} level {}{}: not acknowledged after {waited}",
                                policy.name,
                                level_idx + 1,
                                if round > 0 {
                                    format!(" (repeat {round})")
                                } else {
                                    String::new()
                                }
                            ),
                        );
                        e.event_id = None;
                        e = e.with_target(t);
                        e.level = Some(level_idx as u32 + 1);
                        entries.push(e);
                    }
                    if !already.is_empty() {
                        let names: Vec<String> = already
                            .iter()
                            .map(|t| format!("{} → {}", t.channel, t.target))
                            .collect();
                        let mut e = entry(
                            now,
                            &rec.id,
                            &alert,
                            Action::Dedup,
                            format!(
                                "policy {:?} level {}: already paged, not paged twice: {}",
                                policy.name,
                                level_idx + 1,
                                names.join(", ")
                            ),
                        );
                        e.event_id = None;
                        e.level = Some(level_idx as u32 + 1);
                        entries.push(e);
                    }
                    for p in targets.1 {
                        let mut e = entry(
                            now,
                            &rec.id,
                            &alert,
                            Action::Suppress,
                            format!("policy {:?} level {}: {p}", policy.name, level_idx + 1),
                        );
                        e.event_id = None;
                        entries.push(e);
                    }
                    if tick.step < total {
                        let next = tick.step + 1;
                        let next_idx = ((next - 1) % levels) as usize;
                        let delay = if next_idx == 0 {
                            // Before a repeat of the policy, wait as long as its longest gap.
                            policy
                                .levels
                                .iter()
                                .map(|l| l.delay)
                                .max()
                                .unwrap_or_default()
                        } else {
                            policy.levels[next_idx].delay
                        };
                        let at = now + to_chrono(delay);
                        let next_tick = EscalationTick {
                            alert_id: rec.id.clone(),
                            step: next,
                            ack_timer: None,
                            noise: None,
                        };
                        self.scheduler
                            .schedule(&timer_name(&rec.id, next), at, &next_tick)
                            .await?;
                    }
                    entries
                }
            }
        };
        self.store.append_audit(&entries).await?;
        Ok(entries)
    }

    fn policy(&self, rec: &AlertRecord) -> Option<&EscalationPolicy> {
        rec.escalation
            .as_deref()
            .and_then(|p| self.config.escalation_policies.get(p))
    }

    /// An acknowledgement left unresolved past the policy's `ack_timeout` (as PagerDuty does): the
    /// alert opens again, everyone paged so far is paged again, and escalation goes on from the next
    /// step. A timer made stale by a resolve or a later ack does nothing.
    async fn ack_timed_out(
        &self,
        mut rec: AlertRecord,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let alert = rec.alert.clone();
        if rec.status != Status::Acknowledged || rec.ack_timer.as_deref() != Some(name) {
            let mut e = entry(
                now,
                &rec.id,
                &alert,
                Action::Dedup,
                format!(
                    "acknowledgement timeout {name} no longer applies (alert {})",
                    rec.status.as_str()
                ),
            );
            e.event_id = None;
            self.store.append_audit(std::slice::from_ref(&e)).await?;
            return Ok(vec![e]);
        }
        let by = rec.acknowledged.take().map(|a| a.1).unwrap_or_default();
        rec.status = Status::Open;
        rec.ack_timer = None;
        rec.updated_at = now;
        rec.version += 1;
        self.store.update_alert(&rec).await?;
        let mut head = entry(
            now,
            &rec.id,
            &alert,
            Action::Retrigger,
            format!("acknowledged by {by} but not resolved in time; open again"),
        );
        head.event_id = None;
        let mut entries = vec![head];
        for t in &rec.notified {
            let mut job = self.job(&rec, DeliveryKind::Trigger, t, None, now);
            job.delivery_id = stable_id(&[
                "delivery",
                &rec.id,
                "retrigger",
                name,
                &t.channel,
                &t.target,
            ]);
            self.bus.publish_delivery(&job).await?;
            let mut e = entry(
                now,
                &rec.id,
                &alert,
                Action::Notify,
                "re-triggered after the ack timed out".into(),
            );
            e.event_id = None;
            e = e.with_target(t);
            entries.push(e);
        }
        if let Some(policy) = self.policy(&rec) {
            let total = policy.levels.len() as u32 * (policy.repeat + 1);
            if rec.escalation_step < total {
                let next = rec.escalation_step + 1;
                let idx = ((next - 1) as usize) % policy.levels.len();
                let tick = EscalationTick {
                    alert_id: rec.id.clone(),
                    step: next,
                    ack_timer: None,
                    noise: None,
                };
                let at = now + to_chrono(policy.levels[idx].delay);
                self.scheduler
                    .schedule(&timer_name(&rec.id, next), at, &tick)
                    .await?;
            }
        }
        self.store.append_audit(&entries).await?;
        Ok(entries)
    }

    fn level_targets(
        &self,
        policy: &EscalationPolicy,
        level_idx: usize,
        round: u32,
        now: DateTime<Utc>,
    ) -> (Vec<Target>, Vec<String>) {
        let level = &policy.levels[level_idx];
        let chosen: Vec<&EscalationTarget> = match level.mode {
            LevelMode::All => level.targets.iter().collect(),
            LevelMode::RoundRobin => level
                .targets
                .get(round as usize % level.targets.len().max(1))
                .into_iter()
                .collect(),
        };
        let mut targets = Vec::new();
        let mut problems = Vec::new();
        for t in chosen {
            let person = match t {
                EscalationTarget::Person(p) => Some(p.clone()),
                EscalationTarget::Schedule(s) => {
                    match self
                        .config
                        .schedules
                        .get(s)
                        .and_then(|sch| crate::oncall::on_call(&self.config, sch, now))
                    {
                        Some(p) => Some(p.to_string()),
                        None => {
                            problems.push(format!("nobody is on call in schedule {s:?}"));
                            None
                        }
                    }
                }
                EscalationTarget::Channel { channel, to } => {
                    let n = Notify {
                        channel: channel.clone(),
                        to: to.clone(),
                    };
                    let (ts, ps) = expand(&self.config, &n, now);
                    targets.extend(ts);
                    problems.extend(ps);
                    None
                }
            };
            if let Some(p) = person {
                for ch in &level.channels {
                    if let Some(c) = self.config.channels.get(ch) {
                        person_target(&self.config, ch, c.kind, &p, &mut targets, &mut problems);
                    }
                }
                if level.channels.is_empty() {
                    problems.push(format!(
                        "{p}: the level names no channels to reach people on"
                    ));
                }
            }
        }
        (targets, problems)
    }

    pub(crate) fn job(
        &self,
        rec: &AlertRecord,
        kind: DeliveryKind,
        t: &Target,
        level: Option<u32>,
        now: DateTime<Utc>,
    ) -> DeliveryJob {
        let kind_s = match kind {
            DeliveryKind::Trigger => "trigger".to_string(),
            DeliveryKind::Escalation => format!("escalation-{}", rec.escalation_step),
            DeliveryKind::Resolve => "resolve".to_string(),
            DeliveryKind::Acknowledge => "ack".to_string(),
        };
        DeliveryJob {
            delivery_id: stable_id(&["delivery", &rec.id, &kind_s, &t.channel, &t.target]),
            alert_id: rec.id.clone(),
            kind,
            target: t.clone(),
            level,
            alert: rec.alert.clone(),
            status: rec.status,
            created_at: now,
            thread: None,
        }
    }
}

fn outcome_summary(entries: &[AuditEntry]) -> String {
    let notified = entries
        .iter()
        .filter(|e| e.action == Action::Notify)
        .count();
    match entries.first() {
        Some(e) if notified > 0 => format!("{} ({notified} notifications)", e.action),
        Some(e) => e.action.to_string(),
        None => "nothing to do".into(),
    }
}
