//! People's commands and escalation: ack, resolve, assign and notes by a conditional update; the
//! escalation step a timer fires (paged once: the step advances with the record); the
//! acknowledgement that timed out. State changes go out through the executor with what they owe.

use super::*;

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    /// Acknowledges a live alert: escalation stops, the others paged are told who, the audit records it.
    pub async fn acknowledge(
        &self,
        alert_id: &str,
        actor: &str,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        self.act(alert_id, &Command::Ack, actor).await
    }

    /// Applies a person's command (ack, resolve, assign, note) to an alert, by a conditional update.
    /// Ack and resolve stop escalation and tell everyone paged; an illegal transition is
    /// [`RouterError::Illegal`] and changes nothing.
    pub async fn act(
        &self,
        alert_id: &str,
        cmd: &Command,
        actor: &str,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let now = self.clock.now();
        let mut rec = self
            .load_alert(alert_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("alert {alert_id}")))?;
        // Who to tell of an ack or a resolve, read as the alert stands before it (assign and note
        // tell nobody, so read nothing).
        let told = match cmd {
            Command::Ack | Command::Resolve => self.told_targets(&rec, now).await?,
            Command::Assign(_) | Command::Note(_) => Vec::new(),
        };
        let (action, reason) = crate::lifecycle::apply(&mut rec, cmd, actor, now)?;
        let stale_ack_timer = rec.ack_timer.take();
        let ack_timeout = match cmd {
            Command::Ack => self.policy(&rec).and_then(|p| p.ack_timeout),
            _ => None,
        };
        if ack_timeout.is_some() {
            rec.ack_timer = Some(format!("tocsin-ack-{}-{}", rec.id, rec.version));
        }
        if !matches!(cmd, Command::Ack | Command::Resolve) {
            // Assign and note leave a pending acknowledgement timeout as it is.
            rec.ack_timer = stale_ack_timer.clone();
        }
        let mut out = Outbox::at(now);
        if matches!(cmd, Command::Ack | Command::Resolve) {
            if let Some(old) = stale_ack_timer {
                out.cancel_timer(old);
            }
        }
        if let (Some(timeout), Some(name)) = (ack_timeout, &rec.ack_timer) {
            let tick = Timer::AckTimeout {
                alert_id: rec.id.clone(),
                name: name.clone(),
            };
            out.set_timer(name.clone(), now + to_chrono(timeout), tick);
        }
        let mut e = entry(now, &rec.id, &rec.alert, action, reason);
        e.event_id = None;
        out.audit.push(e);
        let tell = match cmd {
            Command::Ack => Some(DeliveryKind::Acknowledge),
            Command::Resolve => Some(DeliveryKind::Resolve),
            Command::Assign(_) | Command::Note(_) => None,
        };
        if let Some(kind) = tell {
            let done = if kind == DeliveryKind::Resolve {
                "resolved"
            } else {
                "acknowledged"
            };
            if let Some(policy) = &rec.escalation {
                let next = timer_name(&rec.id, rec.escalation_step + 1);
                // On record, so the timeline (and the API) shows that paging stopped, and why.
                let mut end = entry(
                    now,
                    &rec.id,
                    &rec.alert,
                    Action::EscalationEnd,
                    format!(
                        "escalation policy {policy:?} stopped after step {}: {done} by {actor} (timer {next} cancelled)",
                        rec.escalation_step,
                    ),
                );
                end.event_id = None;
                out.audit.push(end);
                out.cancel_timer(next);
            }
            // The person who acted knows; everyone else paged is told.
            for t in told.iter().filter(|t| t.target != actor) {
                out.deliver(self.job(&rec, kind, t, None, now));
                let mut n = entry(
                    now,
                    &rec.id,
                    &rec.alert,
                    Action::Notify,
                    format!("{done} by {actor}"),
                );
                n.event_id = None;
                out.audit.push(n.with_target(t));
            }
        }
        if matches!(cmd, Command::Resolve) && self.owes_after_resolve(&rec) {
            out.follow.push(FollowUp::AfterResolve);
        }
        let (_, entries) = self.commit(rec, out).await?;
        Ok(entries)
    }

    /// An escalation step's timer fired: pages the step's level unless the alert is no longer open,
    /// and schedules the next step. A step already paged pages nothing.
    pub(crate) async fn escalation_step(
        &self,
        alert_id: &str,
        step: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let Some(mut rec) = self.load_alert(alert_id).await? else {
            return Ok(Vec::new());
        };
        let alert = rec.alert.clone();
        let end = |reason: String| entry(now, alert_id, &alert, Action::EscalationEnd, reason);
        let policy = rec
            .escalation
            .as_deref()
            .and_then(|p| self.config.escalation_policies.get(p));
        let entries = match (rec.status, policy) {
            (_, None) => vec![end(format!(
                "escalation policy {:?} is not in the config",
                rec.escalation.as_deref().unwrap_or("")
            ))],
            (Status::Acknowledged, _) => vec![end(format!(
                "acknowledged by {}",
                rec.acknowledged
                    .as_ref()
                    .map(|a| a.1.as_str())
                    .unwrap_or("someone")
            ))],
            (Status::Resolved | Status::Closed, _) => vec![end("alert resolved".into())],
            (Status::Open, Some(_)) if rec.escalation_step >= step => {
                let mut e = entry(
                    now,
                    &rec.id,
                    &alert,
                    Action::Dedup,
                    format!("escalation step {} already paged", step),
                );
                e.event_id = None;
                vec![e]
            }
            (Status::Open, Some(_)) if let Some(h) = self.held(&alert, &rec.id, now).await? => {
                // Silenced, in maintenance or inhibited since it opened: this step waits (it is not
                // skipped) and is tried again when the hold ends; an inhibition has no end time, so
                // it is looked at again after a while.
                let retry = h
                    .until
                    .filter(|u| *u > now)
                    .unwrap_or(now + chrono::TimeDelta::minutes(HELD_ESCALATION_RECHECK_MINUTES));
                let name = format!("{}-held-{}", timer_name(&rec.id, step), retry.timestamp());
                self.scheduler
                    .schedule(
                        &name,
                        retry,
                        &Timer::Escalation {
                            alert_id: alert_id.to_string(),
                            step,
                        },
                    )
                    .await?;
                let mut e = entry(
                    now,
                    &rec.id,
                    &alert,
                    Action::Suppress,
                    format!(
                        "escalation step {} held by {}: {}; tried again at {}",
                        step,
                        h.by,
                        h.reason,
                        format_time(&retry)
                    ),
                );
                e.event_id = None;
                vec![e]
            }
            (Status::Open, Some(policy)) => {
                let levels = policy.levels.len() as u32;
                let total = levels * (policy.repeat + 1);
                if levels == 0 || step > total {
                    vec![end("no more escalation levels".into())]
                } else {
                    let level_idx = ((step - 1) % levels) as usize;
                    let round = (step - 1) / levels;
                    let mut targets = self.level_targets(policy, level_idx, round, now);
                    // The first round never pages twice whoever was already paged for this alert (the
                    // route's own notify often names the same on-call person as level 1); a repeat of
                    // the policy pages them again, on purpose.
                    let already: Vec<Target> = if round == 0 {
                        // Told in a group notification counts as paged.
                        let told = self.told_targets(&rec, now).await?;
                        let (dup, fresh) = targets.0.into_iter().partition(|t: &Target| {
                            told.iter()
                                .any(|n| n.channel == t.channel && n.target == t.target)
                        });
                        targets.0 = fresh;
                        dup
                    } else {
                        Vec::new()
                    };
                    rec.escalation_step = step;
                    rec.updated_at = now;
                    rec.version += 1;
                    for t in &targets.0 {
                        if !rec
                            .notified
                            .iter()
                            .any(|n| n.channel == t.channel && n.target == t.target)
                        {
                            rec.notified.push(t.clone());
                        }
                    }
                    let mut out = Outbox::at(now);
                    let mut entries = Vec::new();
                    let waited = human(now - rec.opened_at);
                    for t in &targets.0 {
                        let job = self.job(
                            &rec,
                            DeliveryKind::Escalation,
                            t,
                            Some(level_idx as u32 + 1),
                            now,
                        );
                        out.deliver(job);
                        let mut e = entry(
                            now,
                            &rec.id,
                            &alert,
                            Action::Escalate,
                            format!(
                                "policy {:?} level {}{}: not acknowledged after {waited}",
                                policy.name,
                                level_idx + 1,
                                if round > 0 {
                                    format!(" (repeat {round})")
                                } else {
                                    String::new()
                                }
                            ),
                        );
                        e.event_id = None;
                        e = e.with_target(t);
                        e.level = Some(level_idx as u32 + 1);
                        entries.push(e);
                    }
                    if !already.is_empty() {
                        entries.push(already_paged(
                            now,
                            &rec.id,
                            &alert,
                            &policy.name,
                            level_idx as u32 + 1,
                            &already,
                        ));
                    }
                    for p in targets.1 {
                        let mut e = entry(
                            now,
                            &rec.id,
                            &alert,
                            Action::Suppress,
                            format!("policy {:?} level {}: {p}", policy.name, level_idx + 1),
                        );
                        e.event_id = None;
                        entries.push(e);
                    }
                    if step < total {
                        let next = step + 1;
                        let at = now + to_chrono(step_delay(policy, next));
                        let next_tick = Timer::Escalation {
                            alert_id: rec.id.clone(),
                            step: next,
                        };
                        out.set_timer(timer_name(&rec.id, next), at, next_tick);
                    }
                    out.audit = entries;
                    return Ok(self.commit(rec, out).await?.1);
                }
            }
        };
        self.store.append_audit(&entries).await?;
        Ok(entries)
    }

    pub(crate) fn policy(&self, rec: &AlertRecord) -> Option<&EscalationPolicy> {
        rec.escalation
            .as_deref()
            .and_then(|p| self.config.escalation_policies.get(p))
    }

    /// An acknowledgement left unresolved past the policy's `ack_timeout` (as PagerDuty does): the
    /// alert opens again, everyone paged so far is paged again, and escalation goes on from the next
    /// step. A timer made stale by a resolve or a later ack does nothing.
    pub(crate) async fn ack_timeout(
        &self,
        alert_id: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        match self.load_alert(alert_id).await? {
            Some(rec) => self.ack_timed_out(rec, name, now).await,
            None => Ok(Vec::new()),
        }
    }

    pub(crate) async fn ack_timed_out(
        &self,
        mut rec: AlertRecord,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let alert = rec.alert.clone();
        if rec.status != Status::Acknowledged || rec.ack_timer.as_deref() != Some(name) {
            let mut e = entry(
                now,
                &rec.id,
                &alert,
                Action::Dedup,
                format!(
                    "acknowledgement timeout {name} no longer applies (alert {})",
                    rec.status.as_str()
                ),
            );
            e.event_id = None;
            self.store.append_audit(std::slice::from_ref(&e)).await?;
            return Ok(vec![e]);
        }
        let by = rec.acknowledged.take().map(|a| a.1).unwrap_or_default();
        rec.status = Status::Open;
        rec.ack_timer = None;
        rec.updated_at = now;
        rec.version += 1;
        let mut out = Outbox::at(now);
        let mut head = entry(
            now,
            &rec.id,
            &alert,
            Action::Retrigger,
            format!("acknowledged by {by} but not resolved in time; open again"),
        );
        head.event_id = None;
        let mut entries = vec![head];
        for t in &rec.notified {
            let mut job = self.job(&rec, DeliveryKind::Trigger, t, None, now);
            job.delivery_id = stable_id(&[
                "delivery",
                &rec.id,
                "retrigger",
                name,
                &t.channel,
                &t.target,
            ]);
            out.deliver(job);
            let mut e = entry(
                now,
                &rec.id,
                &alert,
                Action::Notify,
                "re-triggered after the ack timed out".into(),
            );
            e.event_id = None;
            e = e.with_target(t);
            entries.push(e);
        }
        if let Some(policy) = self.policy(&rec) {
            let total = policy.levels.len() as u32 * (policy.repeat + 1);
            if rec.escalation_step < total {
                let next = rec.escalation_step + 1;
                let idx = ((next - 1) as usize) % policy.levels.len();
                let tick = Timer::Escalation {
                    alert_id: rec.id.clone(),
                    step: next,
                };
                let at = now + to_chrono(policy.levels[idx].delay);
                out.set_timer(timer_name(&rec.id, next), at, tick);
            }
        }
        out.audit = entries;
        Ok(self.commit(rec, out).await?.1)
    }

    /// The opening's own escalation step 1, folded into the opening when it would page nobody: level
    /// 1 comes at once (no delay) and names only targets the opening pages itself (the route's
    /// notify naming the on-call person, as it usually does). Its timer would fire a moment later
    /// only to write "already paged" and set step 2 (a schedule, an invocation of escalate and
    /// its writes per alert); folded, the opening writes that line, sets the step, and schedules
    /// step 2. Anything else (a delay, a target the opening does not page, a level with problems)
    /// leaves step 1 to its timer, as before.
    pub(crate) fn fold_first_step(
        &self,
        record: &mut AlertRecord,
        policy: &EscalationPolicy,
        paged: &[Target],
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) -> bool {
        let Some(first) = policy.levels.first() else {
            return false;
        };
        let (targets, problems) = self.level_targets(policy, 0, 0, now);
        let all_paged = targets.iter().all(|t| {
            paged
                .iter()
                .any(|p| p.channel == t.channel && p.target == t.target)
        });
        if !first.delay.is_zero() || targets.is_empty() || !problems.is_empty() || !all_paged {
            return false;
        }
        out.audit.push(already_paged(
            now,
            &record.id,
            &record.alert,
            &policy.name,
            1,
            &targets,
        ));
        record.escalation_step = 1;
        let total = policy.levels.len() as u32 * (policy.repeat + 1);
        if total > 1 {
            let tick = Timer::Escalation {
                alert_id: record.id.clone(),
                step: 2,
            };
            out.set_timer(
                timer_name(&record.id, 2),
                now + to_chrono(step_delay(policy, 2)),
                tick,
            );
        }
        true
    }

    pub(crate) fn level_targets(
        &self,
        policy: &EscalationPolicy,
        level_idx: usize,
        round: u32,
        now: DateTime<Utc>,
    ) -> (Vec<Target>, Vec<String>) {
        let level = &policy.levels[level_idx];
        let chosen: Vec<&EscalationTarget> = match level.mode {
            LevelMode::All => level.targets.iter().collect(),
            LevelMode::RoundRobin => level
                .targets
                .get(round as usize % level.targets.len().max(1))
                .into_iter()
                .collect(),
        };
        let mut targets = Vec::new();
        let mut problems = Vec::new();
        for t in chosen {
            let person = match t {
                EscalationTarget::Person(p) => Some(p.clone()),
                EscalationTarget::Schedule(s) => {
                    match self
                        .config
                        .schedules
                        .get(s)
                        .and_then(|sch| crate::oncall::on_call(&self.config, sch, now))
                    {
                        Some(p) => Some(p.to_string()),
                        None => {
                            problems.push(format!("nobody is on call in schedule {s:?}"));
                            None
                        }
                    }
                }
                EscalationTarget::Channel { channel, to } => {
                    let n = Notify {
                        channel: channel.clone(),
                        to: to.clone(),
                    };
                    let (ts, ps) = expand(&self.config, &n, now);
                    targets.extend(ts);
                    problems.extend(ps);
                    None
                }
            };
            if let Some(p) = person {
                for ch in &level.channels {
                    if let Some(c) = self.config.channels.get(ch) {
                        person_target(&self.config, ch, c.kind, &p, &mut targets, &mut problems);
                    }
                }
                if level.channels.is_empty() {
                    problems.push(format!(
                        "{p}: the level names no channels to reach people on"
                    ));
                }
            }
        }
        (targets, problems)
    }
}

/// The line of an escalation level whose `targets` were all paged already: a dedup, at the level, of
/// no event.
fn already_paged(
    now: DateTime<Utc>,
    id: &str,
    alert: &crate::model::Alert,
    policy: &str,
    level: u32,
    targets: &[Target],
) -> AuditEntry {
    let names: Vec<String> = targets
        .iter()
        .map(|t| format!("{} → {}", t.channel, t.target))
        .collect();
    let mut e = entry(
        now,
        id,
        alert,
        Action::Dedup,
        format!(
            "policy {policy:?} level {level}: already paged, not paged twice: {}",
            names.join(", ")
        ),
    );
    e.event_id = None;
    e.level = Some(level);
    e
}

/// How long after step `next - 1` step `next` comes: its level's delay, or before a repeat of the
/// policy (its first level again) as long as the policy's longest gap.
fn step_delay(policy: &EscalationPolicy, next: u32) -> std::time::Duration {
    let levels = policy.levels.len().max(1) as u32;
    let next_idx = ((next - 1) % levels) as usize;
    if next_idx == 0 {
        policy
            .levels
            .iter()
            .map(|l| l.delay)
            .max()
            .unwrap_or_default()
    } else {
        policy.levels[next_idx].delay
    }
}
