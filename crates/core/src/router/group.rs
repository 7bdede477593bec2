//! Grouping: a route with grouping pages a group's notification, not each alert. A group's first
//! notification waits `group_wait` (severities in `group_bypass` flush at once); later ones wait until
//! `group_interval` after the last and say what changed (`+3 firing, 1 resolved`); a group with nothing
//! new repeats after `repeat_interval`. Escalation stays per alert.
//!
//! A group is one small item (its timers, counters and `told_upto`) and one item per member, so no
//! item grows with the group. Every member change writes the member first, then the group over its
//! version (which orders the change against flushes); a flush reads the group at version `h`, tells
//! of the member states written for versions up to `h`, and records `told_upto = h` in the same
//! conditional write as the notification it owes: two flushes send one, and a member that joined
//! while a flush ran is told by the next. Joins, leaves and notes are follow-ups of the member's own
//! change: idempotent, and read again when another invocation wins the write.

use super::*;
use crate::config::{Field, Matcher};
use crate::noise::{GroupMember, Silence, inhibit_key};
use crate::router::effects::CONFLICT_TRIES;
use crate::router::mute::InhibitReads;

/// Members read in one page when a group flushes.
const MEMBER_PAGE: usize = 1000;

/// The suffix of the name under which a route that groups nothing itself keeps the groups of
/// multi-time-series contributors, by parent alarm (`defaults.multi_time_series: contributors`).
pub(crate) const BY_PARENT: &str = "/by-parent";

/// Whether `alert` is a contributor of a multi-time-series alarm.
pub(crate) fn is_contributor(alert: &Alert) -> bool {
    alert
        .labels
        .get(crate::source::ROLE_LABEL)
        .map(String::as_str)
        == Some("contributor")
}

/// Whether the alert's event named a CloudWatch mute rule that has not ended (`Router::held_by`
/// holds it until then; one whose end is past or unreadable holds nothing, now or later).
fn cloudwatch_muted(alert: &Alert, now: DateTime<Utc>) -> bool {
    alert.labels.contains_key(crate::source::MUTED_BY_LABEL)
        && alert
            .labels
            .get(crate::source::MUTE_END_LABEL)
            .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
            .is_some_and(|end| end > now)
}

/// How contributors are grouped by parent on a route that groups nothing itself: Alertmanager's
/// default timers, critical ones at once.
pub(crate) fn contributor_grouping() -> Grouping {
    Grouping {
        group_by: vec![crate::source::PARENT_LABEL.to_string()],
        fields: vec![crate::config::Field::parse(crate::source::PARENT_LABEL)],
        group_wait: std::time::Duration::from_secs(30),
        group_interval: std::time::Duration::from_secs(300),
        repeat_interval: std::time::Duration::from_secs(4 * 3600),
        bypass: vec![crate::model::Severity::Critical],
    }
}

/// The configured route a group's route name stands for.
pub(crate) fn base_route(name: &str) -> &str {
    name.strip_suffix(BY_PARENT).unwrap_or(name)
}

/// A join decided but not written: the group as read (`version`) with the member counted in, and
/// the join's audit entries. A join that calls for a flush at once is written by that flush.
pub(crate) struct Joined {
    version: u64,
    st: GroupState,
    audit: Vec<AuditEntry>,
}

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    // ---------------------------------------------------------------- grouping

    /// The key, version and state of the group `alert` belongs to on `route`; a new, empty group at
    /// version 0 when it has none yet. A group written before members were items of their own has
    /// them moved out here (its next write drops them from the group's item).
    pub(crate) async fn group_of(
        &self,
        route: &str,
        g: &Grouping,
        alert: &Alert,
    ) -> Result<(String, u64, GroupState), RouterError> {
        let labels = label_values(&g.group_by, &g.fields, alert);
        let key = group_key(route, &labels);
        let (version, st) = match self.group_state(&key).await? {
            Some((version, st)) => (version, self.move_members_out(&key, version, st).await?),
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
                    told_upto: 0,
                    firing: 0,
                },
            ),
        };
        Ok((key, version, st))
    }

    /// The members of a group written before they were items of their own, written as items: told
    /// ones at `seq` 0, the rest as changed since the last flush.
    async fn move_members_out(
        &self,
        key: &str,
        version: u64,
        mut st: GroupState,
    ) -> Result<GroupState, RouterError> {
        for (id, mut m) in std::mem::take(&mut st.members) {
            m.alert_id = id;
            m.told_firing = m.notified;
            m.seq = if m.firing && m.notified && m.note.is_none() {
                0
            } else {
                version + 1
            };
            if m.firing {
                st.firing += 1;
            }
            m.notified = false;
            self.store.put_group_member(key, &m).await?;
        }
        Ok(st)
    }

    /// Every member of a group, read in pages.
    async fn all_members(&self, key: &str) -> Result<Vec<GroupMember>, RouterError> {
        let mut all: Vec<GroupMember> = Vec::new();
        loop {
            let after = all.last().map(|m| m.alert_id.clone());
            let page = self
                .store
                .group_members(key, after.as_deref(), MEMBER_PAGE)
                .await?;
            let done = page.len() < MEMBER_PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// When a group's next notification is due for a member that changed now.
    fn due(&self, g: &Grouping, st: &GroupState, now: DateTime<Utc>) -> (DateTime<Utc>, String) {
        match st.last_flush {
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
        }
    }

    /// Adds a new alert to its group on `route`, and sets the group's flush timer. A member already in
    /// the group (a retry) is left as it is, except that one not yet told is flushed (bypassing) or
    /// given a timer if the group has none.
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
            let mut out = Outbox::at(now);
            // A member already there: joined by an attempt that failed before or after its group's
            // write (the member is written first, for the version that write makes).
            let rejoin = match self.store.group_member(&key, id).await? {
                None => true,
                Some(m) if !m.firing || m.told_firing(st.told_upto) => return Ok(()),
                Some(m) => m.seq > version,
            };
            if !rejoin {
                if bypass {
                    entries.extend(Box::pin(self.flush_group(&key, None, now)).await?);
                    return Ok(());
                }
                if st.timer_at.is_some() {
                    return Ok(());
                }
                let (due, _) = self.due(g, &st, now);
                self.set_group_timer(&key, &mut st, due, false, &mut out);
            } else {
                self.store
                    .put_group_member(
                        &key,
                        &GroupMember {
                            alert_id: id.to_string(),
                            alarm_name: alert.alarm_name.clone(),
                            severity: alert.severity,
                            firing: true,
                            notified: false,
                            note: None,
                            seq: version + 1,
                            told_firing: false,
                            cloudwatch_muted: Some(cloudwatch_muted(alert, now)),
                        },
                    )
                    .await?;
                st.firing += 1;
                let (due, why) = if bypass {
                    (
                        now,
                        format!("severity {} bypasses group_wait", alert.severity),
                    )
                } else {
                    self.due(g, &st, now)
                };
                out.audit.push(entry(
                    now,
                    id,
                    alert,
                    Action::Group,
                    format!(
                        "grouped on route {route:?} by {} ({} firing in the group); group notification at {} ({why})",
                        label_text(&st.labels),
                        st.firing,
                        format_time(&due)
                    ),
                ));
                if !bypass {
                    self.set_group_timer(&key, &mut st, due, false, &mut out);
                }
            }
            let made = if bypass {
                // The join and the flush it calls for at once, as one write of the group (the
                // join's entries go in the flush's outbox).
                let joined = Joined {
                    version,
                    st,
                    audit: out.audit,
                };
                Box::pin(self.flush_group_once(&key, None, now, Some(joined))).await
            } else {
                self.save(&key, version, NoiseBody::Group(st), out).await
            };
            match made {
                Err(RouterError::Store(StoreError::Conflict(_))) => continue,
                made => entries.extend(made?),
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
        let tick = Timer::GroupFlush {
            group: key.to_string(),
            seq: st.seq,
            repeat,
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
            let Some(mut m) = self.store.group_member(key, &rec.id).await? else {
                return Ok(());
            };
            // Resolved by an attempt whose group write never landed (the member is written first,
            // for the version that write makes): that write is done again.
            let redo = !m.firing && m.seq > version;
            if !m.firing && !redo {
                return Ok(());
            }
            st.firing = st.firing.saturating_sub(1);
            let mut out = Outbox::at(now);
            if !redo && !m.told_firing(st.told_upto) {
                self.store.remove_group_member(key, &rec.id).await?;
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
                m.told_firing = true;
                m.firing = false;
                m.seq = version + 1;
                self.store.put_group_member(key, &m).await?;
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

    /// A flapping alarm's note in its group on `route`, told in the group's next notification (a
    /// follow-up of the flap state's change; read again while other invocations win the write).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn note_in_group(
        &self,
        route: &str,
        g: &Grouping,
        alert: &Alert,
        id: &str,
        note: &str,
        why: &str,
        now: DateTime<Utc>,
        entries: &mut Vec<AuditEntry>,
    ) -> Result<(), RouterError> {
        for _ in 0..CONFLICT_TRIES {
            let (key, version, mut st) = self.group_of(route, g, alert).await?;
            let prev = self.store.group_member(&key, id).await?;
            if prev.as_ref().is_some_and(|m| {
                m.note.as_deref() == Some(note) && m.seq > st.told_upto && m.seq <= version
            }) {
                return Ok(());
            }
            let mut m = prev.unwrap_or(GroupMember {
                alert_id: id.to_string(),
                alarm_name: alert.alarm_name.clone(),
                severity: alert.severity,
                firing: false,
                notified: false,
                note: None,
                seq: 0,
                told_firing: false,
                cloudwatch_muted: Some(cloudwatch_muted(alert, now)),
            });
            m.told_firing = m.told_firing(st.told_upto);
            m.note = Some(note.to_string());
            m.seq = version + 1;
            self.store.put_group_member(&key, &m).await?;
            let due = match st.last_flush {
                Some(last) => (last + to_chrono(g.group_interval)).max(now),
                None => now + to_chrono(g.group_wait),
            };
            let mut out = Outbox::at(now);
            out.audit.push(entry(
                now,
                id,
                alert,
                Action::Group,
                format!(
                    "{why}: told in the next notification of group {} on route {route:?} at {}",
                    label_text(&st.labels),
                    format_time(&due)
                ),
            ));
            self.set_group_timer(&key, &mut st, due, false, &mut out);
            match self.save(&key, version, NoiseBody::Group(st), out).await {
                Err(RouterError::Store(StoreError::Conflict(_))) => continue,
                made => {
                    entries.extend(made?);
                    return Ok(());
                }
            }
        }
        Err(StoreError::Conflict(format!("group on route {route:?} keeps changing")).into())
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
        if route.ends_with(BY_PARENT) {
            return find(&self.config.route, base_route(route), None)
                .is_some()
                .then(contributor_grouping);
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
            match self.flush_group_once(key, seq, now, None).await {
                Err(RouterError::Store(StoreError::Conflict(_))) => continue,
                done => return done,
            }
        }
        Err(StoreError::Conflict(format!("{key} keeps changing")).into())
    }

    /// One try of a flush: of the group as stored, or of `joined`, a join not yet written, which
    /// this flush's write makes (members written for the version that write makes are told).
    async fn flush_group_once(
        &self,
        key: &str,
        seq: Option<u64>,
        now: DateTime<Utc>,
        joined: Option<Joined>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        // `read`: the version the write is conditional on; `version`: the one whose members this
        // flush tells.
        let (read, version, st, join_audit) = match joined {
            Some(j) => (j.version, j.version + 1, j.st, j.audit),
            None => {
                let Some((version, st)) = self.group_state(key).await? else {
                    return Ok(Vec::new());
                };
                (version, version, st, Vec::new())
            }
        };
        let mut st = self.move_members_out(key, version, st).await?;
        if seq.is_some_and(|s| s != st.seq) {
            return Ok(Vec::new());
        }
        if seq.is_some() {
            st.timer_at = None;
        }
        let members = self.all_members(key).await?;
        let Some(g) = self.grouping_of(&st.route) else {
            // The route lost its grouping (config changed): forget the group.
            for m in &members {
                self.store.remove_group_member(key, &m.alert_id).await?;
            }
            st.firing = 0;
            st.timer_at = None;
            let mut out = Outbox::at(now);
            out.audit = join_audit;
            return self.save(key, read, NoiseBody::Group(st), out).await;
        };
        // Member states written for versions up to the one read are this flush's; later ones (a join
        // racing it) are the next flush's.
        let (u, h) = (st.told_upto, version);
        let mine = |m: &&GroupMember| m.seq <= h;
        let by_id: BTreeMap<&str, &GroupMember> =
            members.iter().map(|m| (m.alert_id.as_str(), m)).collect();
        let ids = |f: &dyn Fn(&GroupMember) -> bool| -> Vec<String> {
            members
                .iter()
                .filter(mine)
                .filter(|m| f(m))
                .map(|m| m.alert_id.clone())
                .collect()
        };
        let new = ids(&|m| m.firing && !m.told_firing && m.seq > u);
        let resolved = ids(&|m| !m.firing && m.told_firing && m.seq > u);
        let still = ids(&|m| m.firing && m.told_firing(u));
        let noted = ids(&|m| m.note.is_some() && m.seq > u);
        let later = members.iter().any(|m| m.seq > h);
        // Counted again here: a change whose group write never landed left the count behind.
        st.firing = members.iter().filter(|m| m.firing).count() as u64;
        // A member held since it joined (a silence made, a window entered, an inhibition begun) is
        // left out, as Alertmanager leaves silenced alerts out: a new one stays untold until the
        // hold ends (a flush is set then), a told one drops out of repeats meanwhile.
        let (held, hold_end) = self
            .held_members(&st, &g, &by_id, &new, &still, now)
            .await?;
        let new: Vec<String> = new
            .into_iter()
            .filter(|id| !held.contains_key(id))
            .collect();
        let still: Vec<String> = still
            .into_iter()
            .filter(|id| !held.contains_key(id))
            .collect();
        let mut notes: Vec<(String, usize)> = Vec::new();
        for id in &noted {
            if let Some(n) = by_id.get(id.as_str()).and_then(|m| m.note.as_ref()) {
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
        // What is said of each member goes on record after the group's write, apart from the
        // notification's own entries: a group of thousands must not make an outbox of thousands.
        let mut member_entries = Vec::new();
        for (id, by) in &held {
            if let Some(m) = by_id.get(id.as_str()) {
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
                if !m.told_firing(u) {
                    e.reason
                        .push_str("; told when the hold ends if still firing");
                    // Written for the group's next version: the next flush finds it new again.
                    let mut again = (*m).clone();
                    again.seq = version + 1;
                    self.store.put_group_member(key, &again).await?;
                }
                member_entries.push(e);
            }
        }
        let mut out = Outbox::at(now);
        out.audit = join_audit;
        if !new.is_empty() || !resolved.is_empty() || !noted.is_empty() || repeat_due {
            let text = if repeat_due {
                format!(
                    "still firing, nothing changed for {} (repeat_interval)",
                    human(to_chrono(g.repeat_interval))
                )
            } else {
                delta_text(new.len(), resolved.len(), &notes)
            };
            // The most severe named first: a critical alarm is never one of the `+N more`.
            let names = |ids: &[String]| -> String {
                let mut ms: Vec<&GroupMember> = ids
                    .iter()
                    .filter_map(|id| by_id.get(id.as_str()).copied())
                    .collect();
                ms.sort_by(|a, b| (a.severity, &a.alarm_name).cmp(&(b.severity, &b.alarm_name)));
                named(ms.iter().map(|m| m.alarm_name.as_str()), ids.len())
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
                    .filter(|id| by_id.get(id.as_str()).and_then(|m| m.note.as_ref()) == Some(note))
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
                // Who heard is not written into each member alert: `told_targets` reads it from
                // the group when someone acts on one of them.
                let (sent, _) =
                    self.send_group(&st, key, &rep, &summary, only_resolved, now, &mut out);
                out.audit.extend(sent);
                for other in new
                    .iter()
                    .chain(&resolved)
                    .chain(&noted)
                    .filter(|id| **id != rep_id)
                {
                    if let Some(m) = by_id.get(other.as_str()) {
                        let mut e = member_entry(
                            now,
                            other,
                            m,
                            Action::Group,
                            format!("in group notification under alert {rep_id}: {summary}"),
                        );
                        e.told_under = Some(rep_id.clone());
                        member_entries.push(e);
                    }
                }
            }
            st.last_sent = Some(now);
        }
        st.told_upto = h;
        st.last_flush = Some(now);
        if st.firing > 0 {
            let due = st.last_sent.unwrap_or(now) + to_chrono(g.repeat_interval);
            self.set_group_timer(key, &mut st, due, true, &mut out);
        }
        if let Some(end) = hold_end {
            self.set_group_timer(key, &mut st, end, false, &mut out);
        }
        if later {
            self.set_group_timer(
                key,
                &mut st,
                now + to_chrono(g.group_interval),
                false,
                &mut out,
            );
        }
        let mut entries = self.save(key, read, NoiseBody::Group(st), out).await?;
        // Told or left out for good: resolved members and notes this flush covered leave the group.
        for m in members.iter().filter(mine).filter(|m| !m.firing) {
            self.store.remove_group_member(key, &m.alert_id).await?;
        }
        if !member_entries.is_empty() {
            self.store.append_audit(&member_entries).await?;
        }
        entries.extend(member_entries);
        Ok(entries)
    }

    /// The members among `new` and `still` held now, with what holds each, and the earliest end of
    /// those holds that leave a new member untold (an inhibition has none: its source resolving
    /// pages nothing for a grouped member, so the group looks again after `group_interval`). Reads
    /// no member's alert when the group's own labels show that nothing can hold one
    /// ([`Self::may_hold_a_member`]), as in most flushes.
    pub(crate) async fn held_members(
        &self,
        st: &GroupState,
        g: &Grouping,
        by_id: &BTreeMap<&str, &GroupMember>,
        new: &[String],
        still: &[String],
        now: DateTime<Utc>,
    ) -> Result<(BTreeMap<String, String>, Option<DateTime<Utc>>), RouterError> {
        let mut held = BTreeMap::new();
        let mut end: Option<DateTime<Utc>> = None;
        let noise = &self.config.noise;
        // One read of the silences serves every member.
        let silences = self
            .store
            .active_silences(now, noise.silences.read_limit())
            .await?;
        if noise.maintenance_windows.is_empty()
            && noise.inhibit_rules.is_empty()
            && silences.is_empty()
        {
            return Ok((held, end));
        }
        let recheck = Some(now + to_chrono(g.group_interval));
        let ids: Vec<String> = new.iter().chain(still).cloned().collect();
        let mut inhibitions = InhibitReads::new();
        // A critical storm flushes its group once per member: reading every member's alert at
        // each flush made its reads grow with the square of the storm.
        if !self
            .may_hold_a_member(st, g, by_id, &ids, &silences, now, &mut inhibitions)
            .await?
        {
            return Ok((held, end));
        }
        // The members' alerts in one batch read (a round trip per 100 on DynamoDB), not one read
        // each. (Order does not matter: `held` is by id, `end` the earliest.)
        for rec in &self.store.get_alerts(&ids).await? {
            let id = &rec.id;
            if let Some(h) = self
                .held_by_with(&rec.alert, id, now, &silences, &mut inhibitions)
                .await?
            {
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

    /// Whether a hold may fall on one of `ids`, as far as the members and the group's own labels
    /// (the `group_by` values every member shares) tell: a member whose event named a CloudWatch
    /// mute rule (or written before that was kept), an open maintenance window, an active silence,
    /// or an inhibit rule with a live source, whose matchers those values do not rule out. `false`
    /// only when none can, and then no member's alert needs reading. An inhibition's state is read
    /// when the group's values make its key (`equal` within `group_by`), once a flush.
    #[allow(clippy::too_many_arguments)]
    async fn may_hold_a_member(
        &self,
        st: &GroupState,
        g: &Grouping,
        by_id: &BTreeMap<&str, &GroupMember>,
        ids: &[String],
        silences: &[Silence],
        now: DateTime<Utc>,
        inhibitions: &mut InhibitReads,
    ) -> Result<bool, RouterError> {
        if ids.iter().any(|id| {
            by_id
                .get(id.as_str())
                .is_none_or(|m| m.cloudwatch_muted != Some(false))
        }) {
            return Ok(true);
        }
        // An empty value is a label the alert lacks or has empty: a matcher tells those apart, so
        // it rules nothing out.
        let known: Vec<(&Field, &str)> = g
            .group_by
            .iter()
            .zip(&g.fields)
            .filter_map(|(name, f)| {
                st.labels
                    .get(name)
                    .filter(|v| !v.is_empty())
                    .map(|v| (f, v.as_str()))
            })
            .collect();
        let ruled_out = |matchers: &[Matcher]| {
            matchers.iter().any(|m| {
                known
                    .iter()
                    .any(|(f, v)| **f == m.field && !m.matches_value(Some(v)))
            })
        };
        let noise = &self.config.noise;
        if noise
            .maintenance_windows
            .iter()
            .any(|w| w.schedule.open_until(now).is_some() && !ruled_out(&w.matchers))
        {
            return Ok(true);
        }
        if silences
            .iter()
            .any(|s| s.active_at(now) && s.compiled().is_ok_and(|m| !ruled_out(&m)))
        {
            return Ok(true);
        }
        for rule in &noise.inhibit_rules {
            if ruled_out(&rule.target) {
                continue;
            }
            let mut labels = BTreeMap::new();
            for (name, f) in rule.equal.iter().zip(&rule.equal_fields) {
                let Some(i) = g.fields.iter().position(|gf| gf == f) else {
                    return Ok(true);
                };
                let value = st.labels.get(&g.group_by[i]).cloned().unwrap_or_default();
                labels.insert(name.clone(), value);
            }
            let key = inhibit_key(&rule.name, &labels);
            if !self.inhibition(&key, inhibitions).await?.sources.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
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
            .find(|m| m.route.name == base_route(&st.route))
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
        // The instant and the version the group's previous notification told up to: two flushes at
        // one instant (two critical alarms joining at once, each bypassing group_wait) say
        // different things and must not share a delivery id, or the second is taken for the
        // first and never sent. The same flush carried out again has the same id.
        let stamp = format!("{}#{}", format_time(&now), st.told_upto);
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

    /// Everyone told of `rec`: paged directly, and the targets of the route of each group whose
    /// notification told of it (who would hear the group's next one). Read as stored: no member
    /// alert is written when its group notifies.
    pub(crate) async fn told_targets(
        &self,
        rec: &AlertRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<Target>, RouterError> {
        let mut told: Vec<Target> = crate::update::told(rec).cloned().collect();
        for key in &rec.groups {
            let Some(NoiseState {
                body: NoiseBody::Group(st),
                ..
            }) = self.store.noise_state(key).await?
            else {
                continue;
            };
            let told_of = match self.store.group_member(key, &rec.id).await? {
                Some(m) => m.told_firing(st.told_upto),
                // Left the group once told of and resolved: its resolution went out too.
                None => !rec.status.is_live(),
            };
            if !told_of {
                continue;
            }
            let route = base_route(&st.route);
            let Some(m) = match_routes(&self.config, &rec.alert, now)
                .into_iter()
                .find(|m| m.route.name == route)
            else {
                continue;
            };
            for n in m.notify {
                for t in expand(&self.config, n, now).0 {
                    if !told.contains(&t) {
                        told.push(t);
                    }
                }
            }
        }
        Ok(told)
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
