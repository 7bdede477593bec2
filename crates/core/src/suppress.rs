//! Noise control in the router: maintenance windows, silences, inhibition, grouping with delta
//! notifications, and flap damping. Every decision is an audit entry naming the rule that made it.
//!
//! - **Held** (maintenance window, silence, inhibition): an alert opening while a rule holds it is
//!   recorded (`suppress`, naming the rule) and nobody is paged; a timer at the rule's end (the window's
//!   close, the silence's end; for inhibition, the last source resolving) pages it then if it still
//!   fires and nothing else holds it. Resolutions are never held: whoever was paged hears of it.
//! - **Grouped**: a route with grouping pages a group's notification, not each alert. A group's first
//!   notification waits `group_wait` (severities in `group_bypass` flush at once); later ones wait until
//!   `group_interval` after the last and say what changed (`+3 firing, 1 resolved`); a group with nothing
//!   new repeats after `repeat_interval`. Escalation stays per alert.
//! - **Flapping**: more than `max_changes` changes within `window` pages once as flapping; further
//!   transitions are recorded, not acted on, until none came for `settle`, when the settled state is
//!   acted on once (opened, resolved, or told).
//!
//! Timers run on the [`Scheduler`] port, so on AWS they are EventBridge Scheduler one-time schedules (one
//! minute precision) and locally they fire on the virtual clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::classify::matches_all;
use crate::config::Grouping;
use crate::model::{AlarmState, Alert, Severity, Source, Transport, format_time, stable_id};
use crate::noise::{
    FlapState, GroupMember, GroupState, InhibitState, NewSilence, NoiseBody, NoiseState,
    NoiseTimer, Silence, delta_text, flap_key, group_key, inhibit_key, label_text, label_values,
    noise_timer_name, noise_timer_prefix,
};
use crate::ports::{AlertStore, Bus, Clock, Scheduler, StoreError};
use crate::record::{
    Action, AlertRecord, AuditEntry, DeliveryJob, DeliveryKind, EscalationTick, Status, Target,
};
use crate::router::{Human, Router, RouterError, alert_id_for, entry, human, to_chrono};
use crate::routing::{expand, match_routes};

/// A rule holding an alert that opens: who, why (one line), until when (if known), and for inhibition
/// the key of the state that lists it.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) by: String,
    pub(crate) reason: String,
    pub(crate) until: Option<DateTime<Utc>>,
    pub(crate) state_key: Option<String>,
}

/// The key of the state listing the alerts a silence holds (released when it is expired early).
fn silence_key(id: &str) -> String {
    format!("silence/{id}")
}

/// The audit id of a silence's own entries.
pub fn silence_audit_id(id: &str) -> String {
    format!("silence-{id}")
}

fn reminder_timer(id: &str) -> String {
    format!("tocsin-silrem-{id}")
}

/// An audit entry of a group's member, which the group knows by id, name and severity only.
fn member_entry(
    at: DateTime<Utc>,
    id: &str,
    m: &GroupMember,
    action: Action,
    reason: String,
) -> AuditEntry {
    AuditEntry::new(at, id, &m.alarm_name, m.severity, action, reason)
}

fn timeless(mut e: AuditEntry) -> AuditEntry {
    e.event_id = None;
    e
}

/// The alert a silence's own messages are about (a reminder renders like any alert).
fn silence_alert(s: &Silence, now: DateTime<Utc>) -> Alert {
    Alert {
        event_id: format!("silence-{}", s.id),
        fingerprint: format!("silence-{}", s.id),
        source: Source::Generic,
        transport: Transport::Http,
        alarm_name: format!("silence {}", s.id),
        alarm_arn: None,
        account_id: None,
        region: None,
        state: AlarmState::Alarm,
        previous_state: None,
        state_changed_at: now,
        reason: format!("expires at {}: {}", format_time(&s.end()), s.describe()),
        kind: "silence".into(),
        namespace: None,
        metric_name: None,
        dimensions: BTreeMap::new(),
        threshold: None,
        severity: Severity::Info,
        description: s.comment.clone(),
        labels: BTreeMap::from([("created_by".to_string(), s.created_by.clone())]),
    }
}

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    // ---------------------------------------------------------------- state

    async fn state(&self, key: &str) -> Result<Option<NoiseState>, StoreError> {
        self.store.noise_state(key).await
    }

    async fn save(&self, key: &str, version: u64, body: NoiseBody) -> Result<(), StoreError> {
        let state = NoiseState {
            key: key.to_string(),
            version: version + 1,
            body,
        };
        self.store.put_noise_state_owned(state).await
    }

    async fn group_state(&self, key: &str) -> Result<Option<(u64, GroupState)>, StoreError> {
        Ok(match self.state(key).await? {
            Some(NoiseState {
                version,
                body: NoiseBody::Group(g),
                ..
            }) => Some((version, g)),
            _ => None,
        })
    }

    async fn inhibit_state(&self, key: &str) -> Result<(u64, InhibitState), StoreError> {
        Ok(match self.state(key).await? {
            Some(NoiseState {
                version,
                body: NoiseBody::Inhibit(i),
                ..
            }) => (version, i),
            _ => (0, InhibitState::default()),
        })
    }

    // ---------------------------------------------------------------- held alerts

    /// The first rule that holds `alert` opening now: a maintenance window, a silence, an inhibition.
    pub(crate) async fn held(
        &self,
        alert: &Alert,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Held>, RouterError> {
        let silences = self.store.silences().await?;
        self.held_by(alert, id, now, &silences).await
    }

    /// [`Self::held`] with the stored silences read already, for callers that ask of many alerts.
    async fn held_by(
        &self,
        alert: &Alert,
        id: &str,
        now: DateTime<Utc>,
        silences: &[Silence],
    ) -> Result<Option<Held>, RouterError> {
        for w in &self.config.noise.maintenance_windows {
            if !matches_all(&w.matchers, alert) {
                continue;
            }
            if let Some(until) = w.schedule.open_until(now) {
                return Ok(Some(Held {
                    by: format!("maintenance window {:?}", w.name),
                    reason: format!(
                        "in maintenance window {:?} until {}; paged then if still firing",
                        w.name,
                        format_time(&until)
                    ),
                    until: Some(until),
                    state_key: None,
                }));
            }
        }
        for s in silences {
            if s.silences(alert, now) {
                return Ok(Some(Held {
                    by: format!("silence {}", s.id),
                    reason: format!("silenced: {}; paged then if still firing", s.describe()),
                    until: Some(s.end()),
                    state_key: Some(silence_key(&s.id)),
                }));
            }
        }
        for rule in &self.config.noise.inhibit_rules {
            if !matches_all(&rule.target, alert) || matches_all(&rule.source, alert) {
                continue;
            }
            let labels = label_values(&rule.equal, &rule.equal_fields, alert);
            let key = inhibit_key(&rule.name, &labels);
            let (_, st) = self.inhibit_state(&key).await?;
            let sources: Vec<&String> = st
                .sources
                .iter()
                .filter(|(sid, _)| sid.as_str() != id)
                .map(|(_, name)| name)
                .collect();
            if let Some(first) = sources.first() {
                return Ok(Some(Held {
                    by: format!("inhibit rule {:?}", rule.name),
                    reason: format!(
                        "inhibited by rule {:?}: {first} is firing{} with equal {}; paged when it resolves if still firing",
                        rule.name,
                        if sources.len() > 1 {
                            format!(" (and {} more)", sources.len() - 1)
                        } else {
                            String::new()
                        },
                        label_text(&labels)
                    ),
                    until: None,
                    state_key: Some(key),
                }));
            }
        }
        Ok(None)
    }

    /// Records a held alert: the `suppress` entry naming the rule, the timer at its end, and the alert
    /// in the list of what the rule holds.
    pub(crate) async fn hold(
        &self,
        rec: &AlertRecord,
        h: Held,
        now: DateTime<Utc>,
        entries: &mut Vec<AuditEntry>,
    ) -> Result<(), RouterError> {
        entries.push(entry(
            now,
            &rec.id,
            &rec.alert,
            Action::Suppress,
            h.reason.clone(),
        ));
        if let Some(until) = h.until {
            let tick = EscalationTick {
                alert_id: rec.id.clone(),
                step: 0,
                ack_timer: None,
                noise: Some(NoiseTimer::Unsuppress { by: h.by.clone() }),
            };
            let name = noise_timer_name("unsup", &rec.id, until.timestamp() as u64);
            self.scheduler.schedule(&name, until, &tick).await?;
        }
        if let Some(key) = &h.state_key {
            let (version, mut st) = self.inhibit_state(key).await?;
            st.targets.insert(rec.id.clone());
            self.save(key, version, NoiseBody::Inhibit(st)).await?;
        }
        Ok(())
    }

    /// An alert opening that is the source of inhibition rules: listed under each rule's key.
    pub(crate) async fn note_inhibit_source(
        &self,
        alert: &Alert,
        id: &str,
        now: DateTime<Utc>,
        entries: &mut Vec<AuditEntry>,
    ) -> Result<(), RouterError> {
        for rule in &self.config.noise.inhibit_rules {
            if !matches_all(&rule.source, alert) {
                continue;
            }
            let labels = label_values(&rule.equal, &rule.equal_fields, alert);
            let key = inhibit_key(&rule.name, &labels);
            let (version, mut st) = self.inhibit_state(&key).await?;
            st.sources.insert(id.to_string(), alert.alarm_name.clone());
            self.save(&key, version, NoiseBody::Inhibit(st)).await?;
            entries.push(entry(
                now,
                id,
                alert,
                Action::Group,
                format!(
                    "source of inhibit rule {:?}: alerts matching its targets with equal {} are held while this fires",
                    rule.name,
                    label_text(&labels)
                ),
            ));
        }
        Ok(())
    }

    /// After an alert resolves: its groups learn of it, and inhibition it was the source of lets go.
    pub(crate) async fn after_resolve(
        &self,
        rec: &AlertRecord,
        now: DateTime<Utc>,
        entries: &mut Vec<AuditEntry>,
    ) -> Result<(), RouterError> {
        for key in &rec.groups {
            self.leave_group(key, rec, now, entries).await?;
        }
        for rule in &self.config.noise.inhibit_rules {
            if !matches_all(&rule.source, &rec.alert) {
                continue;
            }
            let labels = label_values(&rule.equal, &rule.equal_fields, &rec.alert);
            let key = inhibit_key(&rule.name, &labels);
            let (version, mut st) = self.inhibit_state(&key).await?;
            if st.sources.remove(&rec.id).is_none() {
                continue;
            }
            let released = if st.sources.is_empty() {
                std::mem::take(&mut st.targets)
            } else {
                Default::default()
            };
            self.save(&key, version, NoiseBody::Inhibit(st)).await?;
            for target in &released {
                self.release(target, &format!("inhibit rule {:?}", rule.name), now)
                    .await?;
            }
            if !released.is_empty() {
                entries.push(timeless(entry(
                    now,
                    &rec.id,
                    &rec.alert,
                    Action::Group,
                    format!(
                        "inhibit rule {:?} lets go of {} held alert(s); those still firing are paged now",
                        rule.name,
                        released.len()
                    ),
                )));
            }
        }
        Ok(())
    }

    /// Schedules the end-of-hold check of a held alert now.
    async fn release(
        &self,
        alert_id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RouterError> {
        let tick = EscalationTick {
            alert_id: alert_id.to_string(),
            step: 0,
            ack_timer: None,
            noise: Some(NoiseTimer::Unsuppress { by: by.to_string() }),
        };
        let name = noise_timer_name("unsup", alert_id, now.timestamp() as u64);
        self.scheduler.schedule(&name, now, &tick).await?;
        Ok(())
    }

    /// The hold on an alert ended: page it if it is still live, still unpaged, and nothing else holds it.
    async fn unsuppress(
        &self,
        alert_id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let Some(mut rec) = self.store.get_alert(alert_id).await? else {
            return Ok(Vec::new());
        };
        if !rec.status.is_live() || rec.suppressed.is_none() {
            // Resolved meanwhile, or already paged: nothing to do, and nothing worth a line.
            return Ok(Vec::new());
        }
        let alert = rec.alert.clone();
        if let Some(h) = self.held(&alert, &rec.id, now).await? {
            if h.until.is_some_and(|u| u <= now) {
                return Ok(Vec::new());
            }
            let mut entries = Vec::new();
            if rec.suppressed.as_deref() != Some(h.by.as_str()) {
                rec.suppressed = Some(h.by.clone());
                rec.updated_at = now;
                rec.version += 1;
                self.store.update_alert(&rec).await?;
            }
            let mut e = Vec::new();
            self.hold(&rec, h, now, &mut e).await?;
            entries.extend(e.into_iter().map(timeless));
            return Ok(entries);
        }
        let plan = self.plan(&alert, &rec.id, now);
        rec.groups = plan.group_keys(&alert);
        rec.notified = plan.direct.clone();
        rec.initial_targets = rec.notified.len();
        rec.routes = plan.route_names.clone();
        if rec.escalation.is_none() {
            rec.escalation = plan.escalation.clone();
        }
        rec.suppressed = None;
        rec.updated_at = now;
        rec.version += 1;
        self.store.update_alert(&rec).await?;
        let mut entries = Vec::new();
        let why = format!(
            "{by} no longer holds it and it still fires (held since {}, {})",
            format_time(&rec.opened_at),
            human(now - rec.opened_at)
        );
        Box::pin(self.page_plan(&rec, plan, &why, now, &mut entries)).await?;
        Ok(entries.into_iter().map(timeless).collect())
    }

    // ---------------------------------------------------------------- grouping

    /// The key, version and state of the group `alert` belongs to on `route`; a new, empty group at
    /// version 0 when it has none yet.
    async fn group_of(
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

    /// Adds a new alert to its group on `route`, and sets the group's flush timer.
    pub(crate) async fn join_group(
        &self,
        route: &str,
        g: &Grouping,
        alert: &Alert,
        id: &str,
        now: DateTime<Utc>,
        entries: &mut Vec<AuditEntry>,
    ) -> Result<(), RouterError> {
        let (key, version, mut st) = self.group_of(route, g, alert).await?;
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
        let bypass = g.bypass.contains(&alert.severity);
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
        entries.push(entry(
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
        if bypass {
            self.save(&key, version, NoiseBody::Group(st)).await?;
            let flushed = Box::pin(self.flush_group(&key, None, now)).await?;
            entries.extend(flushed);
            return Ok(());
        }
        self.set_group_timer(&key, &mut st, due, false).await?;
        self.save(&key, version, NoiseBody::Group(st)).await?;
        Ok(())
    }

    /// Makes the group's flush timer fire at `due` unless one fires earlier already.
    async fn set_group_timer(
        &self,
        key: &str,
        st: &mut GroupState,
        due: DateTime<Utc>,
        repeat: bool,
    ) -> Result<(), RouterError> {
        if st.timer_at.is_some_and(|t| t <= due) {
            return Ok(());
        }
        let prefix = noise_timer_prefix("grp", key);
        if st.timer_at.is_some() {
            self.scheduler
                .cancel(&format!("{prefix}{}", st.seq))
                .await?;
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
        self.scheduler
            .schedule(&format!("{prefix}{}", st.seq), due, &tick)
            .await?;
        Ok(())
    }

    /// A member resolved: the group says so at its next notification (or forgets it, if it never told
    /// of it firing).
    async fn leave_group(
        &self,
        key: &str,
        rec: &AlertRecord,
        now: DateTime<Utc>,
        entries: &mut Vec<AuditEntry>,
    ) -> Result<(), RouterError> {
        let Some((version, mut st)) = self.group_state(key).await? else {
            return Ok(());
        };
        let Some(m) = st.members.get_mut(&rec.id) else {
            return Ok(());
        };
        if !m.notified {
            st.members.remove(&rec.id);
            entries.push(entry(
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
            self.save(key, version, NoiseBody::Group(st)).await?;
            return Ok(());
        }
        m.firing = false;
        let interval = self
            .grouping_of(&st.route)
            .map(|g| g.group_interval)
            .unwrap_or_default();
        let due = st
            .last_flush
            .map_or(now, |l| (l + to_chrono(interval)).max(now));
        entries.push(entry(
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
        self.set_group_timer(key, &mut st, due, false).await?;
        self.save(key, version, NoiseBody::Group(st)).await?;
        Ok(())
    }

    /// The grouping a route has now (its own or inherited).
    fn grouping_of(&self, route: &str) -> Option<Grouping> {
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
    async fn flush_group(
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
            self.save(key, version, NoiseBody::Group(st)).await?;
            return Ok(Vec::new());
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
                ids.iter()
                    .filter_map(|id| st.members.get(id))
                    .map(|m| m.alarm_name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
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
            if let Some(rep) = self.store.get_alert(&rep_id).await? {
                let only_resolved = new.is_empty() && noted.is_empty() && !repeat_due;
                let (sent, targets) = self
                    .send_group(&st, key, &rep, &summary, only_resolved, now)
                    .await?;
                entries.extend(sent);
                self.join_notified(&new, &targets).await?;
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
            self.set_group_timer(key, &mut st, due, true).await?;
        }
        if let Some(end) = hold_end {
            self.set_group_timer(key, &mut st, end, false).await?;
        }
        self.save(key, version, NoiseBody::Group(st)).await?;
        Ok(entries)
    }

    /// The members among `new` and `still` held now, with what holds each, and the earliest end of
    /// those holds that leave a new member untold (an inhibition has none: its source resolving
    /// pages nothing for a grouped member, so the group looks again after `group_interval`). Reads
    /// no member when no silence, window or inhibition rule exists, as in most flushes.
    async fn held_members(
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
    async fn send_group(
        &self,
        st: &GroupState,
        key: &str,
        rep: &AlertRecord,
        summary: &str,
        only_resolved: bool,
        now: DateTime<Utc>,
    ) -> Result<(Vec<AuditEntry>, Vec<Target>), RouterError> {
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
            return Ok((entries, sent_to));
        };
        if let Some(why) = &m.muted {
            entries.push(timeless(entry(
                now,
                &rep.id,
                &rep.alert,
                Action::Suppress,
                format!("group notification not sent: {why} ({summary})"),
            )));
            return Ok((entries, sent_to));
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
                self.bus.publish_delivery(&job).await?;
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
        Ok((entries, sent_to))
    }

    /// The targets of a group notification heard of each new member: they join its `group_notified`,
    /// so a person's acknowledgement of that alert is told to them as to anyone paged directly.
    async fn join_notified(&self, ids: &[String], targets: &[Target]) -> Result<(), RouterError> {
        for id in ids {
            // A concurrent change of the alert (an ack racing the flush) is read again, a few times.
            for _ in 0..3 {
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
            self.save(&key, version, NoiseBody::Flap(st)).await?;
            let e = entry(
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
            );
            return Ok(Some((id, vec![e])));
        }
        if (st.changes.len() as u32) <= fd.max_changes {
            if changed || version == 0 {
                self.save(&key, version, NoiseBody::Flap(st)).await?;
            }
            return Ok(None);
        }
        let count = st.changes.len();
        st.flapping_since = Some(now);
        st.last_change = Some(now);
        st.episode = Some(id.clone());
        st.last = Some(std::sync::Arc::clone(alert));
        self.set_settle_timer(&key, &mut st, now + to_chrono(fd.settle), true)
            .await?;
        self.save(&key, version, NoiseBody::Flap(st)).await?;
        let why = format!(
            "flapping: {count} changes in {window} (flap_damping: more than {max} changes in {window}); paged once now, and once when it settles"
        );
        let mut entries = vec![entry(now, &id, alert, Action::Suppress, why.clone())];
        self.page_once(alert, &id, "flapping", &why, now, &mut entries)
            .await?;
        Ok(Some((id, entries)))
    }

    /// Arms the settle timer for `due` under the next sequence number, cancelling the pending one
    /// unless it is the one firing now (`pending: false`), which is gone once it has run.
    async fn set_settle_timer(
        &self,
        key: &str,
        st: &mut FlapState,
        due: DateTime<Utc>,
        pending: bool,
    ) -> Result<(), RouterError> {
        let prefix = noise_timer_prefix("flap", key);
        if pending && st.seq > 0 {
            self.scheduler
                .cancel(&format!("{prefix}{}", st.seq))
                .await?;
        }
        st.seq += 1;
        let tick = EscalationTick {
            alert_id: key.to_string(),
            step: 0,
            ack_timer: None,
            noise: Some(NoiseTimer::FlapSettle {
                key: key.to_string(),
                seq: st.seq,
            }),
        };
        self.scheduler
            .schedule(&format!("{prefix}{}", st.seq), due, &tick)
            .await?;
        Ok(())
    }

    /// One page to every target the alert's routes name, grouped or not (a flapping alarm is told of
    /// once, not batched), unless a rule holds it.
    #[allow(clippy::too_many_arguments)]
    async fn note_in_group(
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
        let (key, version, mut st) = self.group_of(route, g, alert).await?;
        let m = st.members.entry(id.to_string()).or_insert(GroupMember {
            alarm_name: alert.alarm_name.clone(),
            severity: alert.severity,
            firing: false,
            notified: false,
            note: None,
        });
        m.note = Some(note.to_string());
        let due = match st.last_flush {
            Some(last) => (last + to_chrono(g.group_interval)).max(now),
            None => now + to_chrono(g.group_wait),
        };
        entries.push(entry(
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
        self.set_group_timer(&key, &mut st, due, false).await?;
        self.save(&key, version, NoiseBody::Group(st)).await?;
        Ok(())
    }

    async fn page_once(
        &self,
        alert: &Alert,
        id: &str,
        note: &str,
        why: &str,
        now: DateTime<Utc>,
        entries: &mut Vec<AuditEntry>,
    ) -> Result<(), RouterError> {
        if let Some(h) = self.held(alert, id, now).await? {
            entries.push(entry(now, id, alert, Action::Suppress, h.reason));
            return Ok(());
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut told = alert.clone();
        told.reason = format!("{why}; {}", alert.reason);
        let stamp = format_time(&now);
        for m in match_routes(&self.config, alert, now) {
            if let Some(w) = &m.muted {
                entries.push(entry(now, id, alert, Action::Suppress, w.clone()));
                continue;
            }
            if let Some(g) = m.grouping {
                // A grouping route tells of it in the group's next notification, not on its own.
                self.note_in_group(&m.route.name, g, alert, id, note, why, now, entries)
                    .await?;
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
                    self.bus.publish_delivery(&job).await?;
                    entries.push(
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
    async fn flap_settle(
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
                self.set_settle_timer(key, &mut st, due, false).await?;
                self.save(key, version, NoiseBody::Flap(st)).await?;
                return Ok(Vec::new());
            }
        }
        let since = st.flapping_since.take();
        let episode = st.episode.take();
        let last = st.last.take();
        st.last_change = None;
        st.changes.clear();
        self.save(key, version, NoiseBody::Flap(st.clone())).await?;
        let Some(alert) = last.map(std::sync::Arc::unwrap_or_clone) else {
            return Ok(Vec::new());
        };
        let latest = self.store.latest_alert(&alert.fingerprint).await?;
        let live = latest.clone().filter(|r| r.status.is_live());
        let settled = format!(
            "settled {} after flapping since {}",
            if st.firing { "firing" } else { "resolved" },
            since.as_ref().map(format_time).unwrap_or_default()
        );
        let mut out = Vec::new();
        match (st.firing, live) {
            (true, None) => {
                let (_, entries) = Box::pin(self.open(&alert, latest, now)).await?;
                out.extend(entries);
                if let Some(first) = out.first_mut() {
                    first.reason = format!("{settled}; {}", first.reason);
                }
            }
            (false, Some(rec)) => {
                let (_, entries) = Box::pin(self.resolve(rec, &alert, now)).await?;
                out.extend(entries);
                if let Some(first) = out.first_mut() {
                    first.reason = format!("{settled}; {}", first.reason);
                }
            }
            (_, live) => {
                let id =
                    live.map_or_else(|| episode.unwrap_or_else(|| alert_id_for(&alert)), |r| r.id);
                let note = if st.firing {
                    "settled firing"
                } else {
                    "settled resolved"
                };
                self.page_once(&alert, &id, note, &settled, now, &mut out)
                    .await?;
                if out.is_empty() {
                    out.push(entry(now, &id, &alert, Action::Suppress, settled));
                }
            }
        }
        Ok(out.into_iter().map(timeless).collect())
    }

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
            NoiseTimer::SilenceReminder { silence } => self.remind(silence, now).await,
            NoiseTimer::HealthReminder { start } => {
                self.health_reminder(&tick.alert_id, start, now).await
            }
        }
    }

    // ---------------------------------------------------------------- silences

    /// Makes a silence (the API's and the CLI's entry point): validated, stored, its reminder timer
    /// set when the config asks for reminders, and an audit line under `silence-<id>`.
    pub async fn create_silence(
        &self,
        request: NewSilence,
    ) -> Result<(Silence, Vec<AuditEntry>), SilenceCommandError> {
        let now = self.clock.now();
        let silence = request.build(now)?;
        self.store
            .create_silence(&silence)
            .await
            .map_err(RouterError::from)?;
        if let Some(r) = &self.config.noise.silence_reminder {
            let at = silence.ends_at - to_chrono(r.before);
            if at > now {
                let tick = EscalationTick {
                    alert_id: silence_audit_id(&silence.id),
                    step: 0,
                    ack_timer: None,
                    noise: Some(NoiseTimer::SilenceReminder {
                        silence: silence.id.clone(),
                    }),
                };
                self.scheduler
                    .schedule(&reminder_timer(&silence.id), at, &tick)
                    .await
                    .map_err(RouterError::from)?;
            }
        }
        let e = silence_entry(
            &silence,
            now,
            Action::Note,
            format!("created: {}", silence.describe()),
        );
        self.store
            .append_audit(std::slice::from_ref(&e))
            .await
            .map_err(RouterError::from)?;
        Ok((silence, vec![e]))
    }

    /// The silences, all of them or only those active now.
    pub async fn list_silences(&self, active_only: bool) -> Result<Vec<Silence>, RouterError> {
        let now = self.clock.now();
        let mut all = self.store.silences().await?;
        if active_only {
            all.retain(|s| s.end() > now);
        }
        Ok(all)
    }

    /// Expires a silence now: its reminder is cancelled and the alerts it held that still fire are
    /// paged (their end-of-hold check runs at once).
    pub async fn expire_silence(
        &self,
        id: &str,
        actor: &str,
    ) -> Result<(Silence, Vec<AuditEntry>), RouterError> {
        let now = self.clock.now();
        let silence = self.store.expire_silence(id, now, actor).await?;
        self.scheduler.cancel(&reminder_timer(id)).await?;
        let key = silence_key(id);
        let (version, mut st) = self.inhibit_state(&key).await?;
        let held = std::mem::take(&mut st.targets);
        if !held.is_empty() {
            self.save(&key, version, NoiseBody::Inhibit(st)).await?;
        }
        for alert_id in &held {
            self.release(alert_id, &format!("silence {id}"), now)
                .await?;
        }
        let e = silence_entry(
            &silence,
            now,
            Action::Note,
            format!(
                "expired by {actor}; {} held alert(s) re-checked now",
                held.len()
            ),
        );
        self.store.append_audit(std::slice::from_ref(&e)).await?;
        Ok((silence, vec![e]))
    }

    /// The reminder before a silence ends, to the config's `silence_reminder.notify`.
    async fn remind(&self, id: &str, now: DateTime<Utc>) -> Result<Vec<AuditEntry>, RouterError> {
        let Some(s) = self
            .store
            .silences()
            .await?
            .into_iter()
            .find(|s| s.id == id)
        else {
            return Ok(Vec::new());
        };
        let Some(r) = &self.config.noise.silence_reminder else {
            return Ok(Vec::new());
        };
        if s.end() <= now {
            return Ok(Vec::new());
        }
        let alert = silence_alert(&s, now);
        let aid = silence_audit_id(id);
        let why = format!(
            "reminder: silence {} ends in {} ({})",
            s.id,
            human(s.end() - now),
            format_time(&s.end())
        );
        let mut entries = Vec::new();
        for n in &r.notify {
            let (targets, problems) = expand(&self.config, n, now);
            for p in problems {
                entries.push(silence_entry(
                    &s,
                    now,
                    Action::Suppress,
                    format!("silence_reminder, channel {:?}: {p}", n.channel),
                ));
            }
            for t in targets {
                let job = DeliveryJob {
                    delivery_id: stable_id(&[
                        "delivery",
                        "silence-reminder",
                        id,
                        &t.channel,
                        &t.target,
                    ]),
                    alert_id: aid.clone(),
                    kind: DeliveryKind::Trigger,
                    target: t.clone(),
                    level: None,
                    alert: alert.clone(),
                    status: Status::Open,
                    created_at: now,
                    thread: None,
                };
                self.bus.publish_delivery(&job).await?;
                entries.push(silence_entry(&s, now, Action::Notify, why.clone()).with_target(&t));
            }
        }
        Ok(entries)
    }
}

fn silence_entry(s: &Silence, at: DateTime<Utc>, action: Action, reason: String) -> AuditEntry {
    AuditEntry::new(
        at,
        &silence_audit_id(&s.id),
        &format!("silence {}", s.id),
        Severity::Info,
        action,
        reason,
    )
}

/// Why a silence command failed: the request was wrong, or the router's ports failed.
#[derive(Debug, thiserror::Error)]
pub enum SilenceCommandError {
    /// The request is invalid (one line).
    #[error(transparent)]
    Invalid(#[from] crate::noise::SilenceError),
    /// The store or scheduler failed.
    #[error(transparent)]
    Router(#[from] RouterError),
}
