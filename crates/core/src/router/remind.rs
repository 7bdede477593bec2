//! Reminders before an AWS Health scheduled change starts (issue 9). Health announces a scheduled
//! change (`eventTypeCategory: scheduledChange`, status `upcoming`) about two weeks ahead; the alert
//! pages when it arrives, and nobody remembers it the morning it happens. So the router, when such an
//! alert opens, sets a one-time timer at `start_time - defaults.health_reminder` (default 24 hours):
//! EventBridge Scheduler on AWS (handled by the escalate function like every timer), the virtual clock
//! locally. When it fires it tells everyone told of the alert so far again, with delivery ids of its
//! own, unless the change is over (resolved), held (a silence, window or inhibition holds the alert now), already under way (status `open`, which was its own
//! update), or moved (a later update changed `start_time`: that update set a timer for the new start,
//! and this one is stale). Every outcome is on the audit.
//!
//! No state changes when a reminder fires, so it publishes directly: a retry of the timer decides the
//! same and sends nothing twice (its delivery ids are its own per start).
//!
//! The timer's name carries the start it was set for (`tocsin-hrem-…-{unix seconds}`), so an update
//! that keeps the start is a no-op (same name) and one that moves it sets a second timer beside the
//! first, which then finds itself stale.

use chrono::{DateTime, Utc};

use crate::model::{Alert, format_time, stable_id};
use crate::noise::noise_timer_name;
use crate::ports::{AlertStore, Bus, Clock, Scheduler};
use crate::record::{Action, AlertRecord, AuditEntry, DeliveryJob, DeliveryKind, Outbox, Timer};
use crate::router::{Router, RouterError, entry, human, to_chrono};

/// The `kind` of a Health scheduled change.
pub const SCHEDULED_CHANGE_KIND: &str = "scheduled_change";

/// The label a reminder's message carries: when the change starts.
pub const REMINDER_LABEL: &str = "health_reminder";

/// When the change `alert` announces starts, if it is a scheduled change that has not started yet
/// (status `upcoming`) and has a readable `start_time`.
pub fn scheduled_start(alert: &Alert) -> Option<DateTime<Utc>> {
    if alert.kind != SCHEDULED_CHANGE_KIND {
        return None;
    }
    if alert.labels.get("status_code").map(String::as_str) != Some("upcoming") {
        return None;
    }
    let start = alert.labels.get("start_time")?;
    DateTime::parse_from_rfc3339(start)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The timer name of an alert's reminder for a start.
pub fn reminder_timer_name(alert_id: &str, start: DateTime<Utc>) -> String {
    noise_timer_name("hrem", alert_id, start.timestamp().max(0) as u64)
}

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    /// Sets the reminder of a scheduled change whose record `rec` was just written (opened, or
    /// updated by a repeat), when the config asks for reminders and the reminder's time is still
    /// ahead. A start so close that the reminder time has passed sets none: the page that just went
    /// out is the reminder.
    /// `before_update` is the alert as it was before this repeat: an update that keeps the start sets
    /// nothing new.
    pub(crate) fn schedule_health_reminder(
        &self,
        rec: &AlertRecord,
        before_update: Option<&Alert>,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) {
        let Some(before) = self.config.defaults.health_reminder else {
            return;
        };
        let Some(start) = scheduled_start(&rec.alert) else {
            return;
        };
        if before_update.and_then(scheduled_start) == Some(start) {
            return;
        }
        let at = start - to_chrono(before);
        if at <= now {
            return;
        }
        let tick = Timer::HealthReminder {
            alert_id: rec.id.clone(),
            start: format_time(&start),
        };
        out.set_timer(reminder_timer_name(&rec.id, start), at, tick);
        out.audit.push(entry(
            now,
            &rec.id,
            &rec.alert,
            Action::Note,
            format!(
                "scheduled change starts at {}; reminder set for {} ({} before, defaults.health_reminder)",
                format_time(&start),
                format_time(&at),
                human(to_chrono(before))
            ),
        ));
    }

    /// A reminder timer fired: tell everyone told of the alert, unless the change is over, under
    /// way or moved (see the module header).
    pub(crate) async fn health_reminder(
        &self,
        alert_id: &str,
        start: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let Some(rec) = self.load_alert(alert_id).await? else {
            return Ok(Vec::new());
        };
        let skip = |why: String| {
            Ok(vec![entry(
                now,
                &rec.id,
                &rec.alert,
                Action::Suppress,
                format!("scheduled change reminder for {start} not sent: {why}"),
            )])
        };
        if !rec.status.is_live() {
            return skip(format!("the alert is {}", rec.status.as_str()));
        }
        let current = match scheduled_start(&rec.alert) {
            None => {
                let status = rec
                    .alert
                    .labels
                    .get("status_code")
                    .map_or("?", String::as_str);
                return skip(format!(
                    "the change is no longer upcoming (status {status})"
                ));
            }
            Some(t) if format_time(&t) != start => {
                return skip(format!(
                    "a later update moved the start to {}",
                    format_time(&t)
                ));
            }
            Some(t) => t,
        };
        if let Some(h) = self.held(&rec.alert, &rec.id, now).await? {
            return skip(format!("held by {}", h.by));
        }
        let told = self.told_targets(&rec, now).await?;
        let jobs = reminder_jobs(&rec, &told, start, now);
        if jobs.is_empty() {
            let by = rec.suppressed.as_deref().unwrap_or("no route");
            return skip(format!("nobody has been told of it (held by {by})"));
        }
        let starts_in = human(current - now);
        let mut entries = Vec::with_capacity(jobs.len());
        for job in jobs {
            self.bus.publish_delivery(&job).await?;
            let e = entry(
                now,
                &rec.id,
                &rec.alert,
                Action::Notify,
                format!("scheduled change starts in {starts_in} (at {start}); reminder"),
            );
            entries.push(e.with_target(&job.target));
        }
        Ok(entries)
    }
}

/// One job per target told of `rec` so far (paged directly or in a group notification), its alert
/// saying it is a reminder, with delivery ids of their own per start: a retry of the timer sends
/// nothing twice, and a reminder for a moved start is not taken for the first one.
fn reminder_jobs(
    rec: &AlertRecord,
    told: &[crate::record::Target],
    start: &str,
    now: DateTime<Utc>,
) -> Vec<DeliveryJob> {
    let mut alert = rec.alert.clone();
    alert.reason = format!(
        "Reminder: scheduled change starts at {start}. {}",
        alert.reason
    );
    alert
        .labels
        .insert(REMINDER_LABEL.to_string(), start.to_string());
    told.iter()
        .map(|t| DeliveryJob {
            delivery_id: stable_id(&[
                "delivery",
                &rec.id,
                "health-reminder",
                start,
                &t.channel,
                &t.target,
            ]),
            alert_id: rec.id.clone(),
            kind: DeliveryKind::Trigger,
            target: t.clone(),
            level: None,
            alert: alert.clone(),
            status: rec.status,
            created_at: now,
            thread: None,
        })
        .collect()
}
