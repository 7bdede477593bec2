//! Muting in the router: maintenance windows, silences and inhibition (grouping is `group.rs`, flap
//! damping `flap.rs`), and the small versioned states they keep. Every decision is an audit entry
//! naming the rule that made it, written with the change it belongs to (`effects.rs`).
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
use crate::model::{AlarmState, Alert, Severity, Source, Transport, format_time, stable_id};
use crate::noise::{
    GroupMember, GroupState, InhibitState, NewSilence, NoiseBody, NoiseState, Silence, inhibit_key,
    label_text, label_values, noise_timer_name,
};
use crate::ports::{AlertStore, Bus, Clock, Scheduler, StoreError};
use crate::record::{Action, AlertRecord, AuditEntry, DeliveryJob, DeliveryKind, Status, Timer};
use crate::record::{FollowUp, Outbox};
use crate::router::effects::CONFLICT_TRIES;
use crate::router::{Router, RouterError, entry, human, to_chrono};
use crate::routing::expand;

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
/// The timer that checks a held alert again at `at` (its hold ended, or was let go).
pub(crate) fn release_timer(alert_id: &str, by: &str, at: DateTime<Utc>) -> (String, Timer) {
    let tick = Timer::Unsuppress {
        alert_id: alert_id.to_string(),
        by: by.to_string(),
    };
    (
        noise_timer_name("unsup", alert_id, at.timestamp() as u64),
        tick,
    )
}

pub(crate) fn silence_key(id: &str) -> String {
    format!("silence/{id}")
}

/// The audit id of a silence's own entries.
pub fn silence_audit_id(id: &str) -> String {
    format!("silence-{id}")
}

pub(crate) fn reminder_timer(id: &str) -> String {
    format!("tocsin-silrem-{id}")
}

/// An audit entry of a group's member, which the group knows by id, name and severity only.
pub(crate) fn member_entry(
    at: DateTime<Utc>,
    id: &str,
    m: &GroupMember,
    action: Action,
    reason: String,
) -> AuditEntry {
    AuditEntry::new(at, id, &m.alarm_name, m.severity, action, reason)
}

pub(crate) fn timeless(mut e: AuditEntry) -> AuditEntry {
    e.event_id = None;
    e
}

/// The alert a silence's own messages are about (a reminder renders like any alert).
pub(crate) fn silence_alert(s: &Silence, now: DateTime<Utc>) -> Alert {
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

/// Inhibitions read by one caller, by key (see [`Router::held_by_with`]).
pub(crate) type InhibitReads = std::collections::BTreeMap<String, InhibitState>;

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    // ---------------------------------------------------------------- state

    /// A noise state by key, with anything it owes finished first.
    pub(crate) async fn state(&self, key: &str) -> Result<Option<NoiseState>, RouterError> {
        self.load_state(key).await
    }

    /// Writes a state's new `body` over `version` together with what the change owes, and carries
    /// that out; a conflict is [`StoreError::Conflict`] for the caller to read again.
    pub(crate) async fn save(
        &self,
        key: &str,
        version: u64,
        body: NoiseBody,
        out: Outbox,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let state = NoiseState {
            key: key.to_string(),
            version: version + 1,
            body,
            pending: Outbox::default(),
        };
        self.commit_state(state, out).await
    }

    pub(crate) async fn group_state(
        &self,
        key: &str,
    ) -> Result<Option<(u64, GroupState)>, RouterError> {
        Ok(match self.state(key).await? {
            Some(NoiseState {
                version,
                body: NoiseBody::Group(g),
                ..
            }) => Some((version, g)),
            _ => None,
        })
    }

    /// The inhibition under `key`, read once per caller: `inhibitions` keeps what was read.
    pub(crate) async fn inhibition<'a>(
        &self,
        key: &str,
        inhibitions: &'a mut InhibitReads,
    ) -> Result<&'a InhibitState, RouterError> {
        if !inhibitions.contains_key(key) {
            let (_, st) = self.inhibit_state(key).await?;
            inhibitions.insert(key.to_string(), st);
        }
        Ok(&inhibitions[key])
    }

    pub(crate) async fn inhibit_state(
        &self,
        key: &str,
    ) -> Result<(u64, InhibitState), RouterError> {
        Ok(match self.state(key).await? {
            Some(NoiseState {
                version,
                body: NoiseBody::Inhibit(i),
                ..
            }) => (version, i),
            _ => (0, InhibitState::default()),
        })
    }

    /// Changes the inhibition (or silence) state at `key` with `change`, which says what the change
    /// owes, or `None` when there is nothing to change; read again and again while other invocations
    /// win the write.
    pub(crate) async fn update_inhibit(
        &self,
        key: &str,
        mut change: impl FnMut(&mut InhibitState) -> Option<Outbox>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        for _ in 0..CONFLICT_TRIES {
            let (version, mut st) = self.inhibit_state(key).await?;
            let Some(out) = change(&mut st) else {
                return Ok(Vec::new());
            };
            match self.save(key, version, NoiseBody::Inhibit(st), out).await {
                Err(RouterError::Store(StoreError::Conflict(_))) => continue,
                done => return done,
            }
        }
        Err(StoreError::Conflict(format!("{key} keeps changing")).into())
    }

    // ---------------------------------------------------------------- held alerts

    /// The first rule that holds `alert` opening now: a maintenance window, a silence, an inhibition.
    pub(crate) async fn held(
        &self,
        alert: &Alert,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Held>, RouterError> {
        let limits = &self.config.noise.silences;
        let silences = self.store.active_silences(now, limits.read_limit()).await?;
        self.held_by(alert, id, now, &silences).await
    }

    /// [`Self::held`] with the stored silences read already, for callers that ask of many alerts.
    pub(crate) async fn held_by(
        &self,
        alert: &Alert,
        id: &str,
        now: DateTime<Utc>,
        silences: &[Silence],
    ) -> Result<Option<Held>, RouterError> {
        self.held_by_with(alert, id, now, silences, &mut InhibitReads::new())
            .await
    }

    /// [`Self::held_by`], with the inhibitions read so far: a caller asking of many alerts at once
    /// (a group's flush, whose members share the labels an inhibit rule's `equal` names, as a
    /// service) reads each inhibition once, not once a member.
    pub(crate) async fn held_by_with(
        &self,
        alert: &Alert,
        id: &str,
        now: DateTime<Utc>,
        silences: &[Silence],
        inhibitions: &mut InhibitReads,
    ) -> Result<Option<Held>, RouterError> {
        // CloudWatch's own alarm mute rule, as the event says: held until its window ends, and paged
        // then if still firing, as CloudWatch's own alarm actions are. A window whose end cannot be
        // read holds nothing (`open` notes the mute).
        if let (Some(rule), Some(end)) = (
            alert.labels.get(crate::source::MUTED_BY_LABEL),
            alert
                .labels
                .get(crate::source::MUTE_END_LABEL)
                .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
                .map(|e| e.with_timezone(&Utc)),
        ) {
            if end > now {
                let start = alert
                    .labels
                    .get(crate::source::MUTE_START_LABEL)
                    .map_or("?", String::as_str);
                return Ok(Some(Held {
                    by: format!("CloudWatch mute rule {rule}"),
                    reason: format!(
                        "muted by CloudWatch mute rule {rule} (window {start} to {}); paged then if still firing",
                        format_time(&end)
                    ),
                    until: Some(end),
                    state_key: None,
                }));
            }
        }
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
            let st = self.inhibition(&key, inhibitions).await?;
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

    /// What holding an alert owes: the `suppress` entry naming the rule, the timer at its end, and
    /// (once the record is written) the alert in the list of what the rule holds.
    pub(crate) fn hold(&self, rec: &AlertRecord, h: Held, now: DateTime<Utc>, out: &mut Outbox) {
        out.audit.push(entry(
            now,
            &rec.id,
            &rec.alert,
            Action::Suppress,
            h.reason.clone(),
        ));
        if let Some(until) = h.until {
            let (name, tick) = release_timer(&rec.id, &h.by, until);
            out.set_timer(name, until, tick);
        }
        if let Some(key) = h.state_key {
            out.follow.push(FollowUp::HeldBy { key });
        }
    }

    /// Lists a held alert under the rule's state. An inhibition whose sources all resolved between
    /// the decision and this write lets go of it at once.
    pub(crate) async fn list_held(&self, key: &str, id: &str) -> Result<(), RouterError> {
        let now = self.clock.now();
        self.update_inhibit(key, |st| {
            if !st.targets.insert(id.to_string()) {
                return None;
            }
            let mut out = Outbox::at(now);
            if key.starts_with("inhibit/") && st.sources.keys().all(|s| s == id) {
                let (name, tick) = release_timer(id, "an inhibition whose sources resolved", now);
                out.set_timer(name, now, tick);
            }
            Some(out)
        })
        .await?;
        Ok(())
    }

    /// An alert opening that is the source of inhibition rules: the entries saying so, and (once the
    /// record is written) the alert listed under each rule's key.
    pub(crate) fn note_inhibit_source(
        &self,
        alert: &Alert,
        id: &str,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) {
        let mut any = false;
        for rule in &self.config.noise.inhibit_rules {
            if !matches_all(&rule.source, alert) {
                continue;
            }
            any = true;
            let labels = label_values(&rule.equal, &rule.equal_fields, alert);
            out.audit.push(entry(
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
        if any {
            out.follow.push(FollowUp::InhibitSource);
        }
    }

    /// Lists a source alert under each inhibit rule it is a source of.
    pub(crate) async fn list_inhibit_source(
        &self,
        alert: &Alert,
        id: &str,
    ) -> Result<(), RouterError> {
        for rule in &self.config.noise.inhibit_rules {
            if !matches_all(&rule.source, alert) {
                continue;
            }
            let labels = label_values(&rule.equal, &rule.equal_fields, alert);
            let key = inhibit_key(&rule.name, &labels);
            self.update_inhibit(&key, |st| {
                st.sources
                    .insert(id.to_string(), alert.alarm_name.clone())
                    .is_none()
                    .then(Outbox::default)
            })
            .await?;
        }
        Ok(())
    }

    /// Whether a resolved alert owes its groups or inhibitions anything.
    pub(crate) fn owes_after_resolve(&self, rec: &AlertRecord) -> bool {
        !rec.groups.is_empty()
            || self
                .config
                .noise
                .inhibit_rules
                .iter()
                .any(|r| matches_all(&r.source, &rec.alert))
    }

    /// After an alert resolves: its groups learn of it, and inhibition it was the source of lets go.
    /// Idempotent: a member already resolved, a source already gone change nothing.
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
            let by = format!("inhibit rule {:?}", rule.name);
            let made = self
                .update_inhibit(&key, |st| {
                    st.sources.remove(&rec.id)?;
                    let released = if st.sources.is_empty() {
                        std::mem::take(&mut st.targets)
                    } else {
                        Default::default()
                    };
                    let mut out = Outbox::at(now);
                    for target in &released {
                        let (name, tick) = release_timer(target, &by, now);
                        out.set_timer(name, now, tick);
                    }
                    if !released.is_empty() {
                        out.audit.push(timeless(entry(
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
                    Some(out)
                })
                .await?;
            entries.extend(made);
        }
        Ok(())
    }

    /// The hold on an alert ended: page it if it is still live, still unpaged, and nothing else holds it.
    pub(crate) async fn unsuppress(
        &self,
        alert_id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let Some(mut rec) = self.load_alert(alert_id).await? else {
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
            let mut out = Outbox::at(now);
            let moved = rec.suppressed.as_deref() != Some(h.by.as_str());
            self.hold(&rec, h.clone(), now, &mut out);
            out.audit = out.audit.into_iter().map(timeless).collect();
            if !moved {
                // Nothing of the record changes: what the hold owes is carried out as it is (a retry
                // of this timer decides the same and does it again, harmlessly).
                self.carry_out(Some(&rec), &out).await?;
                return Ok(out.audit);
            }
            rec.suppressed = Some(h.by);
            rec.updated_at = now;
            rec.version += 1;
            return Ok(self.commit(rec, out).await?.1);
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
        let why = format!(
            "{by} no longer holds it and it still fires (held since {}, {})",
            format_time(&rec.opened_at),
            human(now - rec.opened_at)
        );
        let mut out = Outbox::at(now);
        self.page_plan(&mut rec, plan, &why, now, &mut out);
        out.audit = out.audit.into_iter().map(timeless).collect();
        Ok(self.commit(rec, out).await?.1)
    }

    // ---------------------------------------------------------------- silences

    /// Makes a silence (the API's and the CLI's entry point): validated against the config's
    /// `silences` limits (refused when `max_active` are not yet ended), stored, its reminder timer
    /// set when the config asks for reminders, and an audit line under `silence-<id>`.
    pub async fn create_silence(
        &self,
        request: NewSilence,
    ) -> Result<(Silence, Vec<AuditEntry>), SilenceCommandError> {
        let now = self.clock.now();
        let limits = &self.config.noise.silences;
        let silence = request.build(now, limits)?;
        let live = self
            .store
            .active_silences(now, limits.read_limit())
            .await
            .map_err(RouterError::from)?;
        // The retry of a request that stored it and failed after: the same request at the same
        // time makes the same id; its reminder and audit line are done again, harmlessly.
        let stored = live.contains(&silence);
        if !stored && live.len() >= limits.max_active {
            return Err(crate::noise::SilenceError::TooMany {
                max: limits.max_active,
            }
            .into());
        }
        match self.store.create_silence(&silence).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) if stored => {}
            Err(StoreError::Conflict(_))
                if self
                    .store
                    .active_silences(now, limits.read_limit())
                    .await
                    .map_err(RouterError::from)?
                    .contains(&silence) => {}
            Err(e) => return Err(RouterError::from(e).into()),
        }
        if let Some(r) = &self.config.noise.silence_reminder {
            let at = silence.ends_at - to_chrono(r.before);
            if at > now {
                let tick = Timer::SilenceReminder {
                    silence: silence.id.clone(),
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
        let by = format!("silence {id}");
        let mut count = 0;
        self.update_inhibit(&silence_key(id), |st| {
            let held = std::mem::take(&mut st.targets);
            count = held.len();
            if held.is_empty() {
                return None;
            }
            let mut out = Outbox::at(now);
            for alert_id in &held {
                let (name, tick) = release_timer(alert_id, &by, now);
                out.set_timer(name, now, tick);
            }
            Some(out)
        })
        .await?;
        let e = silence_entry(
            &silence,
            now,
            Action::Note,
            format!("expired by {actor}; {count} held alert(s) re-checked now"),
        );
        self.store.append_audit(std::slice::from_ref(&e)).await?;
        Ok((silence, vec![e]))
    }

    /// The reminder before a silence ends, to the config's `silence_reminder.notify`.
    pub(crate) async fn remind(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        // Only a silence not yet ended is reminded of: read those, not every silence kept.
        let Some(s) = self
            .store
            .active_silences(now, self.config.noise.silences.read_limit())
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

pub(crate) fn silence_entry(
    s: &Silence,
    at: DateTime<Utc>,
    action: Action,
    reason: String,
) -> AuditEntry {
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
