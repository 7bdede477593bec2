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

mod effects;
mod escalation;
mod flap;
mod group;
mod lifecycle;
pub mod mute;
pub mod remind;
mod timer;

pub use crate::record::{FollowUp, Outbox, TimerSet};
pub use mute::SilenceCommandError;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::classify::classify;
use crate::classify::matches_all;
use crate::config::Grouping;
use crate::config::{
    Config, EscalationPolicy, EscalationTarget, InsufficientData, LevelMode, Notify,
};
use crate::lifecycle::{Command, IllegalTransition};
use crate::model::{AlarmState, Alert, format_time, stable_id};
use crate::noise::{
    FlapState, GroupState, NoiseBody, NoiseState, delta_text, flap_key, group_key, label_text,
    label_values, noise_timer_prefix,
};
use crate::ports::{
    AlertHead, AlertStore, Bus, BusError, Claim, Clock, Latest, Scheduler, SchedulerError,
    StoreError,
};
use crate::record::{
    Action, AlertRecord, AuditEntry, ClaimStatus, DedupRecord, DeliveryJob, DeliveryKind, Status,
    Target, Timer,
};
use crate::routing::{expand, match_routes, person_target};
use mute::{member_entry, timeless};

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

impl RouterError {
    /// Whether the bus or the scheduler refused a message or timer as it is: a retry fails the same
    /// way.
    pub fn is_refused(&self) -> bool {
        match self {
            RouterError::Bus(e) => !e.is_retryable(),
            RouterError::Scheduler(e) => !e.is_retryable(),
            _ => false,
        }
    }
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

/// The router, generic over its ports. A clone shares the state its adapters share (the embedded
/// ones: the same memory store, bus, timers and clock).
#[derive(Clone)]
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

/// Seconds past an invocation's deadline that its claim on an event still holds: the platform's
/// retry comes a minute or more later, and a clock a little off must not let a live invocation's
/// event be taken over.
pub const CLAIM_MARGIN_SECONDS: i64 = 10;

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

/// `d` as a chrono duration (a longer one than chrono holds: the longest it does).
pub(crate) fn to_chrono(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    /// Handles one canonical alert (one transition). Returns the decisions taken, also appended to the
    /// audit trail. The claim on the event is held for `settings.in_progress_timeout`; a function
    /// invocation passes its own deadline through [`Router::handle_until`] instead.
    pub async fn handle(&self, alert: Alert) -> Result<Vec<AuditEntry>, RouterError> {
        self.handle_until(alert, None).await
    }

    /// [`Router::handle`] within an invocation that ends at `deadline`: the claim on the event expires
    /// then (plus [`CLAIM_MARGIN_SECONDS`]), so the platform's retry of an invocation that died (a
    /// timeout, an out-of-memory kill) takes the event over instead of finding it still claimed.
    pub async fn handle_until(
        &self,
        mut alert: Alert,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let now = self.clock.now();
        classify(&self.config, &mut alert);
        // Shared from here on: a flapping alarm's state keeps the latest transition, and sharing it
        // spares a copy of the alert on every change.
        let alert = Arc::new(alert);
        let mut claim = DedupRecord {
            event_id: alert.event_id.clone(),
            status: ClaimStatus::InProgress,
            expires_at: now + to_chrono(self.settings.dedup_ttl),
            in_progress_until: deadline.map_or_else(
                || now + to_chrono(self.settings.in_progress_timeout),
                |d| d.max(now) + chrono::TimeDelta::seconds(CLAIM_MARGIN_SECONDS),
            ),
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
            if existing.transport == claim.transport {
                // The platform delivering the same message again (an SNS redelivery, an async
                // retry): the failed claim is its only write, and this line goes to the log. The
                // same transition arriving by another way (SNS and EventBridge both) is the
                // alarm's story and goes on its trail.
                tracing::info!(alert = %id, event = %alert.event_id, reason = %e.reason, "dedup");
            } else {
                self.store.append_audit(std::slice::from_ref(&e)).await?;
            }
            return Ok(vec![e]);
        }
        let done = async {
            // Every path records its own entries (with the change they belong to).
            let (id, entries) = self.process(&alert, now).await?;
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

    pub(crate) async fn process(
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
                    let latest = self.load_latest(&alert.fingerprint).await?;
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
                    self.store.append_audit(std::slice::from_ref(&e)).await?;
                    return Ok((id, vec![e]));
                }
            },
        };
        if let Some(skip) = self.multi_time_series_skip(alert, now) {
            self.store.append_audit(std::slice::from_ref(&skip)).await?;
            return Ok((skip.alert.clone(), vec![skip]));
        }
        // The head first where the store reads cheaply (see `Latest`); the whole record below.
        let (head, mut whole) = match self.store.latest_alert_lazy(&alert.fingerprint).await? {
            Latest::Whole(rec) => (rec.as_deref().map(AlertHead::of), Some(rec.map(|r| *r))),
            Latest::Head(head) => (head, None),
        };
        // A retry of an event whose state change was written before the attempt failed: the record's
        // last transition is this event. Reading it through the executor finishes what the change
        // owed (idempotent by delivery id and timer name); the change is not applied twice.
        // (A record older than the dedup window is a genuine redelivery long after, not a retry.)
        let window = to_chrono(self.settings.dedup_ttl);
        if head
            .as_ref()
            .is_some_and(|r| r.event_id == alert.event_id && now - r.updated_at < window)
        {
            let rec = match whole.take() {
                Some(Some(rec)) => Some(self.finish_alert(rec).await?),
                Some(None) => None,
                None => self.load_latest(&alert.fingerprint).await?,
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
            Some(Some(rec)) => Some(self.finish_alert(rec).await?),
            Some(None) => None,
            None => self.load_latest(&alert.fingerprint).await?,
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
                    self.store.append_audit(std::slice::from_ref(&e)).await?;
                    Ok((id, vec![e]))
                }
            }
        }
    }
}

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    /// The entry recording a multi-time-series alarm's transition that `defaults.multi_time_series`
    /// does not page: the parent's when contributors page, a contributor's when the parent does.
    fn multi_time_series_skip(&self, alert: &Alert, now: DateTime<Utc>) -> Option<AuditEntry> {
        use crate::config::MultiTimeSeries;
        let role = alert.labels.get(crate::source::ROLE_LABEL)?;
        let why = match (role.as_str(), self.config.defaults.multi_time_series) {
            ("parent", MultiTimeSeries::Contributors) => {
                "the parent of a multi-time-series alarm: its contributors page instead (defaults.multi_time_series: contributors)"
            }
            ("contributor", MultiTimeSeries::Parent) => {
                "a contributor of a multi-time-series alarm: its parent alarm pages instead (defaults.multi_time_series: parent)"
            }
            _ => return None,
        };
        Some(entry(
            now,
            &alert_id_for(alert),
            alert,
            Action::Suppress,
            format!(
                "{} {}: recorded, not paged; {why}",
                alert.alarm_name, alert.state
            ),
        ))
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
