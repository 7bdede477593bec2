//! Flap damping: more than `max_changes` changes within `window` pages once as flapping; further
//! transitions are recorded, not acted on, until none came for `settle`, when the settled state is
//! acted on once (opened, resolved, or told). The flap state is written with what it owes: the
//! flapping page, the settle timer, and what settling does (`FollowUp::FlapSettled`).

use super::*;

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    // ---------------------------------------------------------------- flap damping

    /// Counts the transition for flap damping. `Some` when damping absorbs it (the alarm starts or goes
    /// on flapping); `None` when the router should act on it as usual.
    pub(crate) async fn damp(
        &self,
        alert: &std::sync::Arc<Alert>,
        firing: bool,
        live: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, Vec<AuditEntry>)>, RouterError> {
        let Some(fd) = &self.config.noise.flap_damping else {
            return Ok(None);
        };
        if !matches_all(&fd.matchers, alert) {
            return Ok(None);
        }
        let key = flap_key(&alert.fingerprint);
        let (version, mut st) = match self.state(&key).await? {
            Some(NoiseState {
                version,
                body: NoiseBody::Flap(f),
                ..
            }) => (version, f),
            _ => (
                0,
                FlapState {
                    changes: Vec::new(),
                    firing: live.is_some(),
                    flapping_since: None,
                    seq: 0,
                    last_change: None,
                    episode: None,
                    last: None,
                },
            ),
        };
        let changed = st.firing != firing;
        if changed {
            st.changes.push(now);
            st.firing = firing;
        }
        let horizon = now - to_chrono(fd.window);
        st.changes.retain(|t| *t > horizon);
        // Only the latest `max_changes + 1` changes can decide: more than `max_changes` in the
        // window is the same as the oldest of those being in it. Keeping no more bounds the state
        // (a DynamoDB item, read and written on every change) where an alarm flapping every few
        // seconds would otherwise carry every change of the window.
        let keep = fd.max_changes as usize + 1;
        if st.changes.len() > keep {
            st.changes.drain(..st.changes.len() - keep);
        }
        let id = live.map_or_else(
            || st.episode.clone().unwrap_or_else(|| alert_id_for(alert)),
            str::to_string,
        );
        // The rule is written into each reason rather than formatted apart: this runs on every change.
        let (max, window) = (fd.max_changes, Human(to_chrono(fd.window)));
        if let Some(since) = st.flapping_since {
            if changed {
                // The armed settle timer finds this change when it fires, and waits on.
                st.last_change = Some(now);
            }
            st.last = Some(std::sync::Arc::clone(alert));
            let mut out = Outbox::at(now);
            out.audit.push(entry(
                now,
                &id,
                alert,
                Action::Suppress,
                format!(
                    "flapping since {} (flap_damping: more than {max} changes in {window}): {} not acted on; acted on once when it settles ({} without a change)",
                    format_time(&since),
                    alert.state,
                    Human(to_chrono(fd.settle))
                ),
            ));
            let entries = self.save(&key, version, NoiseBody::Flap(st), out).await?;
            return Ok(Some((id, entries)));
        }
        if (st.changes.len() as u32) <= fd.max_changes {
            if changed || version == 0 {
                self.save(&key, version, NoiseBody::Flap(st), Outbox::at(now))
                    .await?;
            }
            return Ok(None);
        }
        let count = st.changes.len();
        st.flapping_since = Some(now);
        st.last_change = Some(now);
        st.episode = Some(id.clone());
        st.last = Some(std::sync::Arc::clone(alert));
        let mut out = Outbox::at(now);
        self.set_settle_timer(&key, &mut st, now + to_chrono(fd.settle), true, &mut out);
        let why = format!(
            "flapping: {count} changes in {window} (flap_damping: more than {max} changes in {window}); paged once now, and once when it settles"
        );
        out.audit
            .push(entry(now, &id, alert, Action::Suppress, why.clone()));
        self.page_once(alert, &id, "flapping", &why, now, &mut out)
            .await?;
        let entries = self.save(&key, version, NoiseBody::Flap(st), out).await?;
        Ok(Some((id, entries)))
    }

    /// Arms the settle timer for `due` under the next sequence number, cancelling the pending one
    /// unless it is the one firing now (`pending: false`), which is gone once it has run.
    pub(crate) fn set_settle_timer(
        &self,
        key: &str,
        st: &mut FlapState,
        due: DateTime<Utc>,
        pending: bool,
        out: &mut Outbox,
    ) {
        let prefix = noise_timer_prefix("flap", key);
        if pending && st.seq > 0 {
            out.cancel_timer(format!("{prefix}{}", st.seq));
        }
        st.seq += 1;
        let tick = Timer::FlapSettle {
            key: key.to_string(),
            seq: st.seq,
        };
        out.set_timer(format!("{prefix}{}", st.seq), due, tick);
    }

    /// One page to every target the alert's routes name, grouped or not (a flapping alarm is told of
    /// once, not batched), unless a rule holds it.
    pub(crate) async fn page_once(
        &self,
        alert: &Alert,
        id: &str,
        note: &str,
        why: &str,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) -> Result<(), RouterError> {
        if let Some(h) = self.held(alert, id, now).await? {
            out.audit
                .push(entry(now, id, alert, Action::Suppress, h.reason));
            return Ok(());
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut told = alert.clone();
        told.reason = format!("{why}; {}", alert.reason);
        let stamp = format_time(&now);
        for m in match_routes(&self.config, alert, now) {
            if let Some(w) = &m.muted {
                out.audit
                    .push(entry(now, id, alert, Action::Suppress, w.clone()));
                continue;
            }
            if m.grouping.is_some() {
                // A grouping route tells of it in the group's next notification, not on its own.
                out.follow.push(FollowUp::NoteInGroup {
                    route: m.route.name.clone(),
                    alert_id: id.to_string(),
                    note: note.to_string(),
                    why: why.to_string(),
                    alert: Box::new(alert.clone()),
                });
                continue;
            }
            for n in m.notify {
                let (targets, _) = expand(&self.config, n, now);
                for t in targets {
                    if !seen.insert((t.channel.clone(), t.target.clone())) {
                        continue;
                    }
                    let job = DeliveryJob {
                        delivery_id: stable_id(&[
                            "delivery", "flap", id, &stamp, &t.channel, &t.target,
                        ]),
                        alert_id: id.to_string(),
                        kind: if alert.state == AlarmState::Ok {
                            DeliveryKind::Resolve
                        } else {
                            DeliveryKind::Trigger
                        },
                        target: t.clone(),
                        level: None,
                        alert: told.clone(),
                        status: Status::Open,
                        created_at: now,
                        thread: None,
                    };
                    out.deliver(job);
                    out.audit.push(
                        entry(
                            now,
                            id,
                            alert,
                            Action::Notify,
                            format!("{why}; route {}", m.route.name),
                        )
                        .with_target(&t),
                    );
                }
            }
        }
        Ok(())
    }

    /// A flapping alarm had no change for `settle`: act once on where it settled.
    pub(crate) async fn flap_settle(
        &self,
        key: &str,
        seq: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let Some(NoiseState {
            version,
            body: NoiseBody::Flap(mut st),
            ..
        }) = self.state(key).await?
        else {
            return Ok(Vec::new());
        };
        if st.seq != seq || st.flapping_since.is_none() {
            return Ok(Vec::new());
        }
        if let Some(fd) = &self.config.noise.flap_damping {
            // Changed since the timer was armed: not settled yet, so wait for the rest of the quiet
            // period after the latest change.
            let due = st.last_change.map(|t| t + to_chrono(fd.settle));
            if let Some(due) = due.filter(|due| *due > now) {
                let mut out = Outbox::at(now);
                self.set_settle_timer(key, &mut st, due, false, &mut out);
                return self.save(key, version, NoiseBody::Flap(st), out).await;
            }
        }
        let since = st.flapping_since.take();
        let episode = st.episode.take();
        let last = st.last.take();
        st.last_change = None;
        st.changes.clear();
        let Some(alert) = last.map(std::sync::Arc::unwrap_or_clone) else {
            return self
                .save(key, version, NoiseBody::Flap(st), Outbox::at(now))
                .await;
        };
        // What settling does is owed by the same write that ends the episode: a crash after it
        // still opens, resolves or tells.
        let mut out = Outbox::at(now);
        out.follow.push(FollowUp::FlapSettled {
            firing: st.firing,
            since: since.as_ref().map(format_time).unwrap_or_default(),
            episode,
            alert: Box::new(alert),
        });
        let entries = self.save(key, version, NoiseBody::Flap(st), out).await?;
        Ok(entries.into_iter().map(timeless).collect())
    }

    /// Acts once on where a flapping alarm settled (a follow-up of the flap state's change).
    /// Idempotent: an alert this settling opened or resolved already is left as it is, and its
    /// one page carries delivery ids of the settling's time.
    pub(crate) async fn flap_settled(
        &self,
        alert: &Alert,
        firing: bool,
        since: &str,
        episode: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let latest = self.load_latest(&alert.fingerprint).await?;
        if latest
            .as_ref()
            .is_some_and(|r| r.alert.event_id == alert.event_id && r.updated_at >= now)
        {
            // Opened or resolved by this settling already (a retry).
            return Ok(Vec::new());
        }
        let live = latest.clone().filter(|r| r.status.is_live());
        let settled = format!(
            "settled {} after flapping since {since}",
            if firing { "firing" } else { "resolved" },
        );
        let mut made = match (firing, live) {
            (true, None) => Box::pin(self.open(alert, latest, now)).await?.1,
            (false, Some(rec)) => Box::pin(self.resolve(rec, alert, now)).await?.1,
            (_, live) => {
                let id = live.map_or_else(
                    || {
                        episode
                            .map(str::to_string)
                            .unwrap_or_else(|| alert_id_for(alert))
                    },
                    |r| r.id,
                );
                let note = if firing {
                    "settled firing"
                } else {
                    "settled resolved"
                };
                let mut out = Outbox::at(now);
                self.page_once(alert, &id, note, &settled, now, &mut out)
                    .await?;
                if out.is_empty() {
                    out.audit
                        .push(entry(now, &id, alert, Action::Suppress, settled.clone()));
                }
                out.audit = out.audit.into_iter().map(timeless).collect();
                let entries = self.carry_out(None, &out).await?;
                let mut all = out.audit;
                all.extend(entries);
                return Ok(all);
            }
        };
        if let Some(first) = made.first_mut() {
            first.reason = format!("{settled}; {}", first.reason);
        }
        Ok(made.into_iter().map(timeless).collect())
    }
}
