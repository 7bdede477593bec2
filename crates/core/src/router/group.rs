//! Grouping: a route with grouping pages a group's notification, not each alert. A group's first
//! notification waits `group_wait` (severities in `group_bypass` flush at once); later ones wait until
//! `group_interval` after the last and say what changed (`+3 firing, 1 resolved`); a group with nothing
//! new repeats after `repeat_interval`. Escalation stays per alert. Joins and leaves are follow-ups of
//! the member's own change (idempotent, read again when another invocation wins the write), and a
//! flush writes the group with the notification it owes, so two flushes send one.

use super::*;
use crate::router::effects::CONFLICT_TRIES;

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    // ---------------------------------------------------------------- grouping

    /// The key, version and state of the group `alert` belongs to on `route`; a new, empty group at
    /// version 0 when it has none yet.
    pub(crate) async fn group_of(
        &self,
        route: &str,
        g: &Grouping,
        alert: &Alert,
    ) -> Result<(String, u64, GroupState), RouterError> {
        let labels = label_values(&g.group_by, &g.fields, alert);
        let key = group_key(route, &labels);
        let (version, st) = match self.group_state(&key).await? {
            Some(found) => found,
            None => (
                0,
                GroupState {
                    route: route.to_string(),
                    labels,
                    members: BTreeMap::new(),
                    last_flush: None,
                    last_sent: None,
                    timer_at: None,
                    seq: 0,
                },
            ),
        };
        Ok((key, version, st))
    }

    /// Adds a new alert to its group on `route`, and sets the group's flush timer. A member already in
    /// the group (a retry) is left as it is, except that a bypassing member not yet told is flushed.
    pub(crate) async fn join_group(
        &self,
        route: &str,
        g: &Grouping,
        alert: &Alert,
        id: &str,
        now: DateTime<Utc>,
        entries: &mut Vec<AuditEntry>,
    ) -> Result<(), RouterError> {
        let bypass = g.bypass.contains(&alert.severity);
        for _ in 0..CONFLICT_TRIES {
            let (key, version, mut st) = self.group_of(route, g, alert).await?;
            if let Some(m) = st.members.get(id) {
                if bypass && m.firing && !m.notified {
                    entries.extend(Box::pin(self.flush_group(&key, None, now)).await?);
                }
                return Ok(());
            }
            st.members.insert(
                id.to_string(),
                GroupMember {
                    alarm_name: alert.alarm_name.clone(),
                    severity: alert.severity,
                    firing: true,
                    notified: false,
                    note: None,
                },
            );
            let firing = st.members.values().filter(|m| m.firing).count();
            let (due, why) = match st.last_flush {
                _ if bypass => (
                    now,
                    format!("severity {} bypasses group_wait", alert.severity),
                ),
                None => (
                    st.timer_at
                        .unwrap_or(now + to_chrono(g.group_wait))
                        .min(now + to_chrono(g.group_wait)),
                    format!("group_wait {}", human(to_chrono(g.group_wait))),
                ),
                Some(last) => (
                    (last + to_chrono(g.group_interval)).max(now),
                    format!("group_interval {}", human(to_chrono(g.group_interval))),
                ),
            };
            let mut out = Outbox::at(now);
            out.audit.push(entry(
                now,
                id,
                alert,
                Action::Group,
                format!(
                    "grouped on route {route:?} by {} ({firing} firing in the group); group notification at {} ({why})",
                    label_text(&st.labels),
                    format_time(&due)
                ),
            ));
            if !bypass {
                self.set_group_timer(&key, &mut st, due, false, &mut out);
            }
            match self.save(&key, version, NoiseBody::Group(st), out).await {
                Err(RouterError::Store(StoreError::Conflict(_))) => continue,
                made => entries.extend(made?),
            }
            if bypass {
                entries.extend(Box::pin(self.flush_group(&key, None, now)).await?);
            }
            return Ok(());
        }
        Err(StoreError::Conflict(format!("group on route {route:?} keeps changing")).into())
    }

    /// Makes the group's flush timer fire at `due` unless one fires earlier already (owed by `out`).
    pub(crate) fn set_group_timer(
        &self,
        key: &str,
        st: &mut GroupState,
        due: DateTime<Utc>,
        repeat: bool,
        out: &mut Outbox,
    ) {
        if st.timer_at.is_some_and(|t| t <= due) {
            return;
        }
        let prefix = noise_timer_prefix("grp", key);
        if st.timer_at.is_some() {
            out.cancel_timer(format!("{prefix}{}", st.seq));
        }
        st.seq += 1;
        st.timer_at = Some(due);
        let tick = EscalationTick {
            alert_id: key.to_string(),
            step: 0,
            ack_timer: None,
            noise: Some(NoiseTimer::GroupFlush {
                group: key.to_string(),
                seq: st.seq,
                repeat,
            }),
        };
        out.set_timer(format!("{prefix}{}", st.seq), due, tick);
    }

    /// A member resolved: the group says so at its next notification (or forgets it, if it never told
    /// of it firing). A member already resolved or gone changes nothing.
    pub(crate) async fn leave_group(
        &self,
        key: &str,
        rec: &AlertRecord,
        now: DateTime<Utc>,
        entries: &mut Vec<AuditEntry>,
    ) -> Result<(), RouterError> {
        for _ in 0..CONFLICT_TRIES {
            let Some((version, mut st)) = self.group_state(key).await? else {
                return Ok(());
            };
            let Some(m) = st.members.get_mut(&rec.id) else {
                return Ok(());
            };
            if !m.firing {
                return Ok(());
            }
            let mut out = Outbox::at(now);
            if !m.notified {
                st.members.remove(&rec.id);
                out.audit.push(entry(
                    now,
                    &rec.id,
                    &rec.alert,
                    Action::Group,
                    format!(
                        "resolved before group {} on route {:?} told of it: left out of its notifications",
                        label_text(&st.labels),
                        st.route
                    ),
                ));
            } else {
                m.firing = false;
                let interval = self
                    .grouping_of(&st.route)
                    .map(|g| g.group_interval)
                    .unwrap_or_default();
                let due = st
                    .last_flush
                    .map_or(now, |l| (l + to_chrono(interval)).max(now));
                out.audit.push(entry(
                    now,
                    &rec.id,
                    &rec.alert,
                    Action::Group,
                    format!(
                        "resolution goes out with group {} on route {:?} at {}",
                        label_text(&st.labels),
                        st.route,
                        format_time(&due)
                    ),
                ));
                self.set_group_timer(key, &mut st, due, false, &mut out);
            }
            match self.save(key, version, NoiseBody::Group(st), out).await {
                Err(RouterError::Store(StoreError::Conflict(_))) => continue,
                made => {
                    entries.extend(made?);
                    return Ok(());
                }
            }
        }
        Err(StoreError::Conflict(format!("{key} keeps changing")).into())
    }

    /// The grouping a route has now (its own or inherited).
    pub(crate) fn grouping_of(&self, route: &str) -> Option<Grouping> {
        fn find<'a>(
            r: &'a crate::config::Route,
            name: &str,
            inherited: Option<&'a Grouping>,
        ) -> Option<Option<&'a Grouping>> {
            let g = r.grouping.as_ref().or(inherited);
            if r.name == name {
                return Some(g);
            }
            r.routes.iter().find_map(|c| find(c, name, g))
        }
        find(&self.config.route, route, None).flatten().cloned()
    }

    /// Sends a group's notification if it has something to say: what changed since the last one, or
    /// a reminder when nothing did for `repeat_interval`. A timer whose sequence number is not the
    /// group's is stale and does nothing.
    pub(crate) async fn flush_group(
        &self,
        key: &str,
        seq: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        // Another invocation changed the group meanwhile (a join, a leave, the other of two flushes):
        // decide again on what it wrote. The flush that wins the write is the one that notifies.
        for _ in 0..CONFLICT_TRIES {
            match self.flush_group_once(key, seq, now).await {
                Err(RouterError::Store(StoreError::Conflict(_))) => continue,
                done => return done,
            }
        }
        Err(StoreError::Conflict(format!("{key} keeps changing")).into())
    }

    async fn flush_group_once(
        &self,
        key: &str,
        seq: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let Some((version, mut st)) = self.group_state(key).await? else {
            return Ok(Vec::new());
        };
        if seq.is_some_and(|s| s != st.seq) {
            return Ok(Vec::new());
        }
        if seq.is_some() {
            st.timer_at = None;
        }
        let Some(g) = self.grouping_of(&st.route) else {
            // The route lost its grouping (config changed): forget the group.
            st.members.clear();
            st.timer_at = None;
            return self
                .save(key, version, NoiseBody::Group(st), Outbox::at(now))
                .await;
        };
        let new: Vec<String> = st
            .members
            .iter()
            .filter(|(_, m)| m.firing && !m.notified)
            .map(|(id, _)| id.clone())
            .collect();
        let resolved: Vec<String> = st
            .members
            .iter()
            .filter(|(_, m)| !m.firing && m.notified)
            .map(|(id, _)| id.clone())
            .collect();
        let still: Vec<String> = st
            .members
            .iter()
            .filter(|(_, m)| m.firing && m.notified)
            .map(|(id, _)| id.clone())
            .collect();
        // A member held since it joined (a silence made, a window entered, an inhibition begun) is
        // left out, as Alertmanager leaves silenced alerts out: a new one stays untold until the
        // hold ends (a flush is set then), a told one drops out of repeats meanwhile.
        let (held, hold_end) = self.held_members(&st, &new, &still, now).await?;
        let new: Vec<String> = new
            .into_iter()
            .filter(|id| !held.contains_key(id))
            .collect();
        let still: Vec<String> = still
            .into_iter()
            .filter(|id| !held.contains_key(id))
            .collect();
        let mut notes: Vec<(String, usize)> = Vec::new();
        let mut noted: Vec<String> = Vec::new();
        for (id, m) in &st.members {
            if let Some(n) = &m.note {
                noted.push(id.clone());
                match notes.iter_mut().find(|(k, _)| k == n) {
                    Some((_, c)) => *c += 1,
                    None => notes.push((n.clone(), 1)),
                }
            }
        }
        let repeat_due = new.is_empty()
            && resolved.is_empty()
            && noted.is_empty()
            && !still.is_empty()
            && st
                .last_sent
                .is_some_and(|l| now >= l + to_chrono(g.repeat_interval));
        let mut entries = Vec::new();
        let mut out = Outbox::at(now);
        for (id, by) in &held {
            if let Some(m) = st.members.get(id) {
                let mut e = member_entry(
                    now,
                    id,
                    m,
                    Action::Suppress,
                    format!(
                        "left out of group {} notification: held by {by}",
                        label_text(&st.labels)
                    ),
                );
                if !m.notified {
                    e.reason
                        .push_str("; told when the hold ends if still firing");
                }
                entries.push(e);
            }
        }
        if !new.is_empty() || !resolved.is_empty() || !noted.is_empty() || repeat_due {
            let text = if repeat_due {
                format!(
                    "still firing, nothing changed for {} (repeat_interval)",
                    human(to_chrono(g.repeat_interval))
                )
            } else {
                delta_text(new.len(), resolved.len(), &notes)
            };
            let names = |ids: &[String]| -> String {
                named(
                    ids.iter()
                        .filter_map(|id| st.members.get(id))
                        .map(|m| m.alarm_name.as_str()),
                    ids.len(),
                )
            };
            let firing_after = new.len() + still.len();
            let mut summary = format!(
                "{text}: group {} on route {:?}, {firing_after} firing",
                label_text(&st.labels),
                st.route
            );
            if !new.is_empty() {
                summary.push_str(&format!("; new: {}", names(&new)));
            }
            if !resolved.is_empty() {
                summary.push_str(&format!("; resolved: {}", names(&resolved)));
            }
            for (note, _) in &notes {
                let ids: Vec<String> = noted
                    .iter()
                    .filter(|id| st.members.get(*id).and_then(|m| m.note.as_ref()) == Some(note))
                    .cloned()
                    .collect();
                summary.push_str(&format!("; {note}: {}", names(&ids)));
            }
            let rep_id = new
                .first()
                .or(resolved.first())
                .or(noted.first())
                .or(still.first())
                .cloned()
                .unwrap_or_default();
            // Read as stored: the representative may be the alert whose outbox is being carried out.
            if let Some(rep) = self.store.get_alert(&rep_id).await? {
                let only_resolved = new.is_empty() && noted.is_empty() && !repeat_due;
                let (sent, targets) =
                    self.send_group(&st, key, &rep, &summary, only_resolved, now, &mut out);
                entries.extend(sent);
                if !new.is_empty() && !targets.is_empty() {
                    out.follow.push(FollowUp::GroupNotified {
                        alert_ids: new.clone(),
                        targets,
                    });
                }
                for other in new
                    .iter()
                    .chain(&resolved)
                    .chain(&noted)
                    .filter(|id| **id != rep_id)
                {
                    if let Some(m) = st.members.get(other) {
                        entries.push(member_entry(
                            now,
                            other,
                            m,
                            Action::Group,
                            format!("in group notification under alert {rep_id}: {summary}"),
                        ));
                    }
                }
            }
            st.last_sent = Some(now);
        }
        for id in &new {
            if let Some(m) = st.members.get_mut(id) {
                m.notified = true;
            }
        }
        for id in &resolved {
            st.members.remove(id);
        }
        for id in &noted {
            if let Some(m) = st.members.get_mut(id) {
                m.note = None;
            }
        }
        st.members.retain(|_, m| m.firing || m.notified);
        st.last_flush = Some(now);
        if st.members.values().any(|m| m.firing) {
            let due = st.last_sent.unwrap_or(now) + to_chrono(g.repeat_interval);
            self.set_group_timer(key, &mut st, due, true, &mut out);
        }
        if let Some(end) = hold_end {
            self.set_group_timer(key, &mut st, end, false, &mut out);
        }
        out.audit = entries;
        self.save(key, version, NoiseBody::Group(st), out).await
    }

    /// The members among `new` and `still` held now, with what holds each, and the earliest end of
    /// those holds that leave a new member untold (an inhibition has none: its source resolving
    /// pages nothing for a grouped member, so the group looks again after `group_interval`). Reads
    /// no member when no silence, window or inhibition rule exists, as in most flushes.
    pub(crate) async fn held_members(
        &self,
        st: &GroupState,
        new: &[String],
        still: &[String],
        now: DateTime<Utc>,
    ) -> Result<(BTreeMap<String, String>, Option<DateTime<Utc>>), RouterError> {
        let mut held = BTreeMap::new();
        let mut end: Option<DateTime<Utc>> = None;
        let noise = &self.config.noise;
        // One read of the silences serves every member.
        let silences = self.store.silences().await?;
        if noise.maintenance_windows.is_empty()
            && noise.inhibit_rules.is_empty()
            && silences.is_empty()
        {
            return Ok((held, end));
        }
        let recheck = self
            .grouping_of(&st.route)
            .map(|g| now + to_chrono(g.group_interval));
        for id in new.iter().chain(still) {
            let Some(rec) = self.store.get_alert(id).await? else {
                continue;
            };
            if let Some(h) = self.held_by(&rec.alert, id, now, &silences).await? {
                if new.contains(id) {
                    let at = h.until.filter(|u| *u > now).or(recheck);
                    end = match (end, at) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                held.insert(id.clone(), h.by);
            }
        }
        Ok((held, end))
    }

    /// One group notification to every target of the group's route.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_group(
        &self,
        st: &GroupState,
        key: &str,
        rep: &AlertRecord,
        summary: &str,
        only_resolved: bool,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) -> (Vec<AuditEntry>, Vec<Target>) {
        let mut entries = Vec::new();
        let mut sent_to: Vec<Target> = Vec::new();
        let mut alert = rep.alert.clone();
        alert.reason = summary.to_string();
        alert.labels.insert("group".into(), label_text(&st.labels));
        alert.labels.insert("group_route".into(), st.route.clone());
        let Some(m) = match_routes(&self.config, &rep.alert, now)
            .into_iter()
            .find(|m| m.route.name == st.route)
        else {
            entries.push(timeless(entry(
                now,
                &rep.id,
                &rep.alert,
                Action::Suppress,
                format!(
                    "group notification not sent: route {:?} no longer takes its alerts",
                    st.route
                ),
            )));
            return (entries, sent_to);
        };
        if let Some(why) = &m.muted {
            entries.push(timeless(entry(
                now,
                &rep.id,
                &rep.alert,
                Action::Suppress,
                format!("group notification not sent: {why} ({summary})"),
            )));
            return (entries, sent_to);
        }
        let stamp = format_time(&now);
        for n in m.notify {
            let (targets, problems) = expand(&self.config, n, now);
            for p in problems {
                entries.push(timeless(entry(
                    now,
                    &rep.id,
                    &rep.alert,
                    Action::Suppress,
                    format!("route {:?}, channel {:?}: {p}", st.route, n.channel),
                )));
            }
            for t in targets {
                let job = DeliveryJob {
                    delivery_id: stable_id(&[
                        "delivery", "group", key, &stamp, &t.channel, &t.target,
                    ]),
                    alert_id: rep.id.clone(),
                    kind: if only_resolved {
                        DeliveryKind::Resolve
                    } else {
                        DeliveryKind::Trigger
                    },
                    target: t.clone(),
                    level: None,
                    alert: alert.clone(),
                    status: rep.status,
                    created_at: now,
                    thread: None,
                };
                out.deliver(job);
                sent_to.push(t.clone());
                entries.push(
                    timeless(entry(
                        now,
                        &rep.id,
                        &rep.alert,
                        Action::Notify,
                        summary.to_string(),
                    ))
                    .with_target(&t),
                );
            }
        }
        (entries, sent_to)
    }

    /// The targets of a group notification heard of each new member: they join its `group_notified`,
    /// so a person's acknowledgement of that alert is told to them as to anyone paged directly.
    pub(crate) async fn join_notified(
        &self,
        ids: &[String],
        targets: &[Target],
    ) -> Result<(), RouterError> {
        for id in ids {
            // A concurrent change of the alert (an ack racing the flush) is read again, a few times.
            for _ in 0..CONFLICT_TRIES {
                let Some(mut rec) = self.store.get_alert(id).await? else {
                    break;
                };
                let missing: Vec<Target> = targets
                    .iter()
                    .filter(|t| !rec.notified.contains(t) && !rec.group_notified.contains(t))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    break;
                }
                rec.group_notified.extend(missing);
                rec.version += 1;
                match self.store.update_alert(&rec).await {
                    Ok(()) => break,
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

/// How many alarm names a group notification names before it says `+N more`: a group of a whole
/// region's alarms must not make a message (and an audit line) the size of the region.
pub const NAMED_IN_GROUP: usize = 10;

/// Up to [`NAMED_IN_GROUP`] names of `total`, then `+N more`.
pub(crate) fn named<'a>(names: impl Iterator<Item = &'a str>, total: usize) -> String {
    let mut out = names.take(NAMED_IN_GROUP).collect::<Vec<_>>().join(", ");
    if total > NAMED_IN_GROUP {
        out.push_str(&format!(" +{} more", total - NAMED_IN_GROUP));
    }
    out
}
