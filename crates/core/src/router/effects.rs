//! The executor: writes a state change together with the effects it owes (the outbox on the item, in
//! the same conditional write), carries the effects out, and clears them. Every read the router makes
//! of an alert or a noise state goes through here and first finishes whatever a crashed or failed
//! invocation left owed, so nothing is lost between the write and the effects:
//!
//! ```text
//!  invocation A                       item (alert or noise state)            whoever comes next
//!  decide: change + outbox
//!  conditional write (version) -----> change and outbox, one write
//!  cancel/set timers, publish jobs,
//!  append audit, follow-ups           (A crashes anywhere here)
//!  clear outbox (version + 1) ------> change, no outbox              <--- read: outbox not empty?
//!                                                                         carry it out again (ids and
//!                                                                         names are deterministic, so
//!                                                                         twice is harmless), clear it,
//!                                                                         then decide on the clean item
//! ```
//!
//! A change that owes nothing but audit entries skips the outbox (one write, then the append): a
//! crash between loses a line of the trail, never a page.

use super::*;
use crate::record::{FollowUp, Outbox};

/// How many times a follow-up re-reads and re-writes an item another invocation changed meanwhile
/// (64 alerts joining one group at once) before it fails and leaves the platform's retry to finish.
pub(crate) const CONFLICT_TRIES: usize = 24;

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    /// Creates `rec` (a new occurrence) with the effects it owes, then carries them out. Returns the
    /// record as stored and every audit entry the change and its follow-ups made.
    pub(crate) async fn commit_new(
        &self,
        mut rec: AlertRecord,
        out: Outbox,
    ) -> Result<(AlertRecord, Vec<AuditEntry>), RouterError> {
        if out.only_audit() {
            self.store.create_alert(&rec).await?;
            self.store.append_audit(&out.audit).await?;
            return Ok((rec, out.audit));
        }
        rec.pending = out;
        rec.pending.slim(&rec.alert);
        self.store.create_alert(&rec).await?;
        Box::pin(self.settle_alert(rec)).await
    }

    /// Writes `rec` (its version already advanced) with the effects it owes, then carries them out.
    pub(crate) async fn commit(
        &self,
        mut rec: AlertRecord,
        out: Outbox,
    ) -> Result<(AlertRecord, Vec<AuditEntry>), RouterError> {
        if out.only_audit() {
            self.store.update_alert(&rec).await?;
            if !out.audit.is_empty() {
                self.store.append_audit(&out.audit).await?;
            }
            return Ok((rec, out.audit));
        }
        rec.pending = out;
        rec.pending.slim(&rec.alert);
        self.store.update_alert(&rec).await?;
        Box::pin(self.settle_alert(rec)).await
    }

    /// Carries out what `rec` owes and clears it. A conflict on the clearing write means somebody
    /// changed the record since, and every change finishes what it found owed first: nothing is lost.
    async fn settle_alert(
        &self,
        mut rec: AlertRecord,
    ) -> Result<(AlertRecord, Vec<AuditEntry>), RouterError> {
        let out = std::mem::take(&mut rec.pending);
        let more = match self.carry_out(Some(&rec), &out).await {
            Ok(more) => more,
            Err(e) => {
                if rec.version == 1 {
                    // A new alert is listed once its opening is carried out; when that fails (the
                    // bus or the scheduler down), it is listed at once anyway, still owing it, so
                    // that an outage does not hide the alerts it opened. Best effort: whoever
                    // comes next finishes the opening either way.
                    let mut listed = rec.clone();
                    listed.pending = out;
                    listed.version += 1;
                    let _ = self.store.update_alert(&listed).await;
                }
                return Err(e);
            }
        };
        rec.version += 1;
        for _ in 0..CONFLICT_TRIES {
            match self.store.update_alert(&rec).await {
                Ok(()) => break,
                Err(StoreError::Conflict(_)) => {
                    // Changed meanwhile: by a follow-up of this very outbox (a group notification
                    // noting who heard of it), which kept the outbox as it was, or by another
                    // invocation that finished it first. Clear it only in the first case.
                    match self.store.get_alert(&rec.id).await? {
                        Some(mut now) if now.pending == out => {
                            now.pending = Outbox::default();
                            now.version += 1;
                            rec = now;
                        }
                        Some(now) => {
                            rec = now;
                            break;
                        }
                        None => break,
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut entries = out.audit;
        entries.extend(more);
        Ok((rec, entries))
    }

    /// An alert by id, with anything it owes finished first.
    pub(crate) async fn load_alert(&self, id: &str) -> Result<Option<AlertRecord>, RouterError> {
        match self.store.get_alert(id).await? {
            Some(rec) => Ok(Some(self.finish_alert(rec).await?)),
            None => Ok(None),
        }
    }

    /// A fingerprint's latest alert, with anything it owes finished first.
    pub(crate) async fn load_latest(
        &self,
        fingerprint: &str,
    ) -> Result<Option<AlertRecord>, RouterError> {
        match self.store.latest_alert(fingerprint).await? {
            Some(rec) => Ok(Some(self.finish_alert(rec).await?)),
            None => Ok(None),
        }
    }

    /// `rec` with whatever it owes carried out and cleared (as it is when it owes nothing).
    pub(crate) async fn finish_alert(&self, rec: AlertRecord) -> Result<AlertRecord, RouterError> {
        if rec.pending.is_empty() {
            return Ok(rec);
        }
        tracing::info!(alert = %rec.id, "finishing the effects an earlier invocation owed");
        Ok(Box::pin(self.settle_alert(rec)).await?.0)
    }

    /// Writes a noise state (its version already advanced) with the effects it owes, then carries
    /// them out. Returns the audit entries of the change and its follow-ups.
    pub(crate) async fn commit_state(
        &self,
        mut state: NoiseState,
        out: Outbox,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        if out.only_audit() {
            self.store.put_noise_state_owned(state).await?;
            if !out.audit.is_empty() {
                self.store.append_audit(&out.audit).await?;
            }
            return Ok(out.audit);
        }
        state.pending = out;
        self.store.put_noise_state(&state).await?;
        Box::pin(self.settle_state(state)).await
    }

    async fn settle_state(&self, mut state: NoiseState) -> Result<Vec<AuditEntry>, RouterError> {
        let out = std::mem::take(&mut state.pending);
        let more = self.carry_out(None, &out).await?;
        state.version += 1;
        match self.store.put_noise_state_owned(state).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let mut entries = out.audit;
        entries.extend(more);
        Ok(entries)
    }

    /// A noise state by key, with anything it owes finished first.
    pub(crate) async fn load_state(&self, key: &str) -> Result<Option<NoiseState>, RouterError> {
        let Some(state) = self.store.noise_state(key).await? else {
            return Ok(None);
        };
        if state.pending.is_empty() {
            return Ok(Some(state));
        }
        tracing::info!(key, "finishing the effects an earlier invocation owed");
        Box::pin(self.settle_state(state)).await?;
        Ok(self.store.noise_state(key).await?)
    }

    /// Carries out an outbox: timers (cancellations first), deliveries, the audit, then follow-ups.
    /// Returns the follow-ups' own audit entries.
    pub(crate) async fn carry_out(
        &self,
        owner: Option<&AlertRecord>,
        out: &Outbox,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let now = out.at.unwrap_or_else(|| self.clock.now());
        // What the bus or the scheduler refuses as it is would fail the same way on every retry and
        // hold the item's outbox (and every later change of it) forever: it is recorded, with why,
        // and the rest goes on. A failing backend fails the invocation, for the platform to retry.
        let mut refused = Vec::new();
        for name in &out.cancel {
            match self.scheduler.cancel(name).await {
                Err(SchedulerError::Refused(why)) => {
                    refused.push(refused_timer(owner, name, &why, now));
                }
                r => r?,
            }
        }
        for t in &out.schedule {
            match self.scheduler.schedule(&t.name, t.at, &t.timer).await {
                Err(SchedulerError::Refused(why)) => {
                    refused.push(refused_timer(owner, &t.name, &why, now));
                }
                r => r?,
            }
        }
        for job in out.jobs(owner.map(|r| &r.alert)) {
            match self.bus.publish_delivery(&job).await {
                Err(BusError::Refused(why)) => {
                    tracing::error!(alert = %job.alert_id, delivery = %job.delivery_id, %why, "delivery job refused by the bus");
                    refused.push(
                        AuditEntry::new(
                            now,
                            &job.alert_id,
                            &job.alert.alarm_name,
                            job.alert.severity,
                            Action::Suppress,
                            format!(
                                "delivery {} to {} refused by the bus, not sent: {why}",
                                job.delivery_id, job.target.target
                            ),
                        )
                        .with_target(&job.target),
                    );
                }
                r => r?,
            }
        }
        if !refused.is_empty() {
            self.store
                .append_audit(&[out.audit.as_slice(), &refused].concat())
                .await?;
        } else if !out.audit.is_empty() {
            // The usual case: nothing refused, the outbox's own entries as they are.
            self.store.append_audit(&out.audit).await?;
        }
        let mut entries = refused;
        for f in &out.follow {
            // Boxed: follow-ups reach back into grouping and inhibition, which commit through here.
            entries.extend(Box::pin(self.follow_up(owner, f, now)).await?);
        }
        Ok(entries)
    }

    async fn follow_up(
        &self,
        owner: Option<&AlertRecord>,
        f: &FollowUp,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let mut entries = Vec::new();
        match (f, owner) {
            (FollowUp::JoinGroup { route }, Some(rec)) => {
                if let Some(g) = self.grouping_of(route) {
                    self.join_group(route, &g, &rec.alert, &rec.id, now, &mut entries)
                        .await?;
                }
            }
            (FollowUp::AfterResolve, Some(rec)) => {
                self.after_resolve(rec, now, &mut entries).await?;
            }
            (FollowUp::InhibitSource, Some(rec)) => {
                self.list_inhibit_source(&rec.alert, &rec.id).await?;
            }
            (FollowUp::HeldBy { key }, Some(rec)) => {
                self.list_held(key, &rec.id).await?;
            }
            (
                FollowUp::NoteInGroup {
                    route,
                    alert_id,
                    note,
                    why,
                    alert,
                },
                _,
            ) => {
                if let Some(g) = self.grouping_of(route) {
                    self.note_in_group(route, &g, alert, alert_id, note, why, now, &mut entries)
                        .await?;
                }
            }
            (
                FollowUp::FlapSettled {
                    firing,
                    since,
                    episode,
                    alert,
                },
                _,
            ) => {
                entries.extend(
                    self.flap_settled(alert, *firing, since, episode.as_deref(), now)
                        .await?,
                );
            }
            (other, None) => {
                tracing::warn!(follow_up = ?std::mem::discriminant(other), "a follow-up that needs its alert had none");
            }
        }
        Ok(entries)
    }
}

/// The audit entry of a timer the scheduler refused as it is (on the owner alert's trail; a noise
/// state's timer is filed under its name).
fn refused_timer(
    owner: Option<&AlertRecord>,
    name: &str,
    why: &str,
    now: DateTime<Utc>,
) -> AuditEntry {
    tracing::error!(timer = name, why, "timer refused by the scheduler");
    let (id, alarm, severity) = owner.map_or((name, "", crate::Severity::Info), |r| {
        (r.id.as_str(), r.alert.alarm_name.as_str(), r.alert.severity)
    });
    AuditEntry::new(
        now,
        id,
        alarm,
        severity,
        Action::Suppress,
        format!("timer {name} refused by the scheduler, not set: {why}"),
    )
}
