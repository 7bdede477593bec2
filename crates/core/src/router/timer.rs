//! The one entry point of every timer: `on_timer` reads what a [`Timer`] says and hands it to the
//! part of the router it is about. Timers set by releases before there was one enum (an
//! [`crate::record::EscalationTick`]) are read into it by [`Timer::from_json`].

use super::*;

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    /// Handles one timer that fired. Returns the decisions taken, also on the audit trail. A timer
    /// made stale by what happened since (an ack, a resolve, a later flush) decides nothing.
    pub async fn on_timer(&self, timer: &Timer) -> Result<Vec<AuditEntry>, RouterError> {
        let now = self.clock.now();
        // Boxed: the timers reach into open, resolve and grouping, and inlining all of that makes
        // this future too deep for the compiler's layout.
        Box::pin(async move {
            match timer {
                Timer::Escalation { alert_id, step } => {
                    self.escalation_step(alert_id, *step, now).await
                }
                Timer::AckTimeout { alert_id, name } => self.ack_timeout(alert_id, name, now).await,
                Timer::GroupFlush { group, seq, .. } => {
                    self.flush_group(group, Some(*seq), now).await
                }
                Timer::Unsuppress { alert_id, by } => self.unsuppress(alert_id, by, now).await,
                Timer::FlapSettle { key, seq } => self.flap_settle(key, *seq, now).await,
                // These change no state: their entries are recorded here, after what they sent.
                Timer::SilenceReminder { silence } => {
                    let entries = self.remind(silence, now).await?;
                    self.store.append_audit(&entries).await?;
                    Ok(entries)
                }
                Timer::HealthReminder { alert_id, start } => {
                    let entries = self.health_reminder(alert_id, start, now).await?;
                    self.store.append_audit(&entries).await?;
                    Ok(entries)
                }
            }
        })
        .await
    }
}
