//! TIMER

use super::*;

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    // ---------------------------------------------------------------- timers

    /// Runs one noise-control timer.
    pub(crate) async fn noise_timer(
        &self,
        tick: &EscalationTick,
        timer: &NoiseTimer,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        match timer {
            NoiseTimer::GroupFlush { group, seq, .. } => {
                self.flush_group(group, Some(*seq), now).await
            }
            NoiseTimer::Unsuppress { by } => self.unsuppress(&tick.alert_id, by, now).await,
            NoiseTimer::FlapSettle { key, seq } => self.flap_settle(key, *seq, now).await,
            // These change no state: their entries are recorded here, after what they sent.
            NoiseTimer::SilenceReminder { silence } => {
                let entries = self.remind(silence, now).await?;
                self.store.append_audit(&entries).await?;
                Ok(entries)
            }
            NoiseTimer::HealthReminder { start } => {
                let entries = self.health_reminder(&tick.alert_id, start, now).await?;
                self.store.append_audit(&entries).await?;
                Ok(entries)
            }
        }
    }
}
