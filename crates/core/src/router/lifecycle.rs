//! The alert lifecycle: a firing transition opens an occurrence (held, or paged on the routes that
//! page and grouped on the routes that group) or repeats the live one; a recovery resolves it and
//! tells everyone paged. Each decision is an [`Outbox`] the executor (`effects.rs`) writes with the
//! record and carries out; none of these functions calls a port that sends or schedules.

use super::*;
use crate::config::MultiTimeSeries;
use crate::router::group::{BY_PARENT, contributor_grouping, is_contributor};

impl<S: AlertStore, B: Bus, K: Scheduler, C: Clock> Router<S, B, K, C> {
    /// Opens an occurrence: held (maintenance window, silence, inhibition) with nobody paged, or paged
    /// now on the routes that page each alert and grouped on the routes that group.
    pub(crate) async fn open(
        &self,
        alert: &Alert,
        previous: Option<AlertRecord>,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<AuditEntry>), RouterError> {
        let id = alert_id_for(alert);
        let plan = self.plan(alert, &id, now);
        let held = self.held(alert, &id, now).await?;
        let paged = if held.is_some() {
            Vec::new()
        } else {
            plan.direct.clone()
        };
        let mut record = AlertRecord {
            id: id.clone(),
            fingerprint: alert.fingerprint.clone(),
            status: Status::Open,
            alert: alert.clone(),
            severity: alert.severity,
            opened_at: now,
            updated_at: now,
            acknowledged: None,
            assignee: None,
            resolved_at: None,
            occurrences: 1,
            routes: plan.route_names.clone(),
            initial_targets: paged.len(),
            notified: paged,
            group_notified: Vec::new(),
            escalation: plan.escalation.clone(),
            escalation_step: 0,
            ack_timer: None,
            previous: previous.as_ref().map(|p| p.id.clone()),
            version: 1,
            suppressed: held.as_ref().map(|h| h.by.clone()),
            groups: if held.is_some() {
                Vec::new()
            } else {
                plan.group_keys(alert)
            },
            pending: Outbox::default(),
        };
        let mut out = Outbox::at(now);
        let mut reason = format!(
            "{}: {}; severity {}, {}",
            alert.state,
            alert.reason,
            alert.severity,
            alert
                .labels
                .get("priority")
                .map(String::as_str)
                .unwrap_or("P?")
        );
        if let Some(s) = alert.labels.get("service") {
            reason.push_str(&format!(", service {s}"));
        }
        reason.push_str(&format!("; routes {}", plan.route_names.join(", ")));
        if let Some(p) = &previous {
            reason.push_str(&format!("; follows occurrence {}", p.id));
        }
        out.audit.push(entry(now, &id, alert, Action::Open, reason));
        if held.is_none() {
            if let Some(rule) = alert.labels.get(crate::source::MUTED_BY_LABEL) {
                // CloudWatch said the alarm is muted, but not until when (or the window is over):
                // paged now rather than held for ever, and the mute is on record.
                out.audit.push(entry(
                    now,
                    &id,
                    alert,
                    Action::Note,
                    format!(
                        "muted by CloudWatch mute rule {rule}, but its window ({}) does not hold it now: paged",
                        alert
                            .labels
                            .get(crate::source::MUTE_END_LABEL)
                            .map_or("no end given", String::as_str)
                    ),
                ));
            }
        }
        self.note_inhibit_source(alert, &id, now, &mut out);
        match held {
            Some(h) => self.hold(&record, h, now, &mut out),
            None => self.page_plan(&mut record, plan, "alert opened", now, &mut out),
        }
        self.schedule_health_reminder(&record, None, now, &mut out);
        // A retry of this event after its alert was written never gets here (`process` resumes it), so a
        // conflict is a real race or a stale view: fail, and let the platform's retry read again.
        let (_, entries) = self.commit_new(record, out).await?;
        Ok((id, entries))
    }

    /// Which routes take the alert now, whom the routes that page each alert page, and which routes
    /// group it instead. Muted routes and unreachable recipients are recorded in `entries`.
    pub(crate) fn plan(&self, alert: &Alert, id: &str, now: DateTime<Utc>) -> Plan {
        let mut plan = Plan::default();
        let mut seen = BTreeSet::new();
        for m in match_routes(&self.config, alert, now) {
            plan.route_names.push(m.route.name.clone());
            if let Some(why) = &m.muted {
                plan.entries
                    .push(entry(now, id, alert, Action::Suppress, why.clone()));
                continue;
            }
            if plan.escalation.is_none() {
                plan.escalation = m.escalation.map(str::to_string);
            }
            if let Some(g) = m.grouping {
                plan.groups.push((m.route.name.clone(), g.clone()));
                continue;
            }
            // A multi-time-series alarm's contributors page grouped by their parent alarm where the
            // route groups nothing itself: one alarm over many tables or hosts is one page, not one
            // per time series.
            if is_contributor(alert)
                && self.config.defaults.multi_time_series == MultiTimeSeries::Contributors
            {
                plan.groups.push((
                    format!("{}{BY_PARENT}", m.route.name),
                    contributor_grouping(),
                ));
                continue;
            }
            for n in m.notify {
                let (ts, problems) = expand(&self.config, n, now);
                for p in problems {
                    plan.entries.push(entry(
                        now,
                        id,
                        alert,
                        Action::Suppress,
                        format!("route {:?}, channel {:?}: {p}", m.route.name, n.channel),
                    ));
                }
                for t in ts {
                    if seen.insert((t.channel.clone(), t.target.clone())) {
                        plan.direct.push(t);
                        plan.direct_routes.push(m.route.name.clone());
                    }
                }
            }
        }
        plan
    }

    /// What paging a planned alert owes: its direct targets now, its groups (joined once the record is
    /// written), and the first escalation step.
    pub(crate) fn page_plan(
        &self,
        record: &mut AlertRecord,
        plan: Plan,
        why: &str,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) {
        let alert = &record.alert;
        let id = &record.id;
        out.audit.extend(plan.entries);
        for (t, route) in plan.direct.iter().zip(&plan.direct_routes) {
            out.deliver(self.job(record, DeliveryKind::Trigger, t, None, now));
            out.audit.push(
                entry(
                    now,
                    id,
                    alert,
                    Action::Notify,
                    format!("{why}; route {route}"),
                )
                .with_target(t),
            );
        }
        for (route, _) in &plan.groups {
            out.follow.push(FollowUp::JoinGroup {
                route: route.clone(),
            });
        }
        if plan.direct.is_empty() && plan.groups.is_empty() {
            out.audit.push(entry(
                now,
                id,
                alert,
                Action::Suppress,
                "no route notifies anyone for this alert now".into(),
            ));
        }
        if let Some(policy) = plan
            .escalation
            .as_deref()
            .and_then(|p| self.config.escalation_policies.get(p))
        {
            // Step 1 done within the opening when it would page nobody new (step 2 is then set);
            // otherwise its timer.
            if !self.fold_first_step(record, policy, &plan.direct, now, out)
                && let Some(first) = policy.levels.first()
            {
                let tick = Timer::Escalation {
                    alert_id: record.id.clone(),
                    step: 1,
                };
                out.set_timer(
                    timer_name(&record.id, 1),
                    now + to_chrono(first.delay),
                    tick,
                );
            }
        }
    }

    /// A retry of the event that made `rec`'s latest change, after that change was written: the
    /// record was read through the executor, which finished whatever the change owed, so all that is
    /// left is to say so.
    pub(crate) async fn resume(
        &self,
        rec: AlertRecord,
        alert: &Alert,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<AuditEntry>), RouterError> {
        let what = match rec.status {
            Status::Open | Status::Acknowledged if rec.id == alert_id_for(alert) => {
                "its alert opened"
            }
            Status::Open | Status::Acknowledged => "a repeat counted",
            Status::Resolved | Status::Closed => "its alert resolved",
        };
        // A dedup, not the decision again: the decision is on record once, with what it owed.
        let e = entry(
            now,
            &rec.id,
            alert,
            Action::Dedup,
            format!(
                "event {} already processed by an earlier attempt ({what}); what it owed is done",
                alert.event_id
            ),
        );
        self.store.append_audit(std::slice::from_ref(&e)).await?;
        Ok((rec.id, vec![e]))
    }

    /// A firing transition of an alert already live: counted, not paged again; an update that says
    /// something new is told to everyone told so far.
    pub(crate) async fn repeat(
        &self,
        mut rec: AlertRecord,
        alert: &Alert,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<AuditEntry>), RouterError> {
        let update = crate::update::content_update(&rec.alert, alert);
        rec.occurrences += 1;
        let before = std::mem::replace(&mut rec.alert, alert.clone());
        rec.updated_at = now;
        rec.version += 1;
        let mut out = Outbox::at(now);
        out.audit.push(entry(
            now,
            &rec.id,
            alert,
            Action::Repeat,
            format!(
                "already {} since {} ({} firing transitions); not paged again",
                rec.status.as_str(),
                format_time(&rec.opened_at),
                rec.occurrences
            ),
        ));
        self.schedule_health_reminder(&rec, Some(&before), now, &mut out);
        // An update that says something new (crate::update) is told to everyone paged so far, unless
        // a silence, window or inhibition now holds the alert.
        if let Some(why) = update {
            match self.held(alert, &rec.id, now).await? {
                Some(h) => out.audit.push(entry(
                    now,
                    &rec.id,
                    alert,
                    Action::Suppress,
                    format!(
                        "{}; not told: held by {}",
                        why.replace("; re-notified", ""),
                        h.by
                    ),
                )),
                None => {
                    let told = self.told_targets(&rec, now).await?;
                    for job in crate::update::update_jobs(&rec, &told, now) {
                        let e = entry(now, &rec.id, alert, Action::Notify, why.clone());
                        out.audit.push(e.with_target(&job.target));
                        out.deliver(job);
                    }
                }
            }
        }
        let id = rec.id.clone();
        let (_, entries) = self.commit(rec, out).await?;
        Ok((id, entries))
    }

    /// A recovery of the live alert: resolved, its timers cancelled, everyone paged told, and its
    /// groups and inhibitions told once the record is written.
    pub(crate) async fn resolve(
        &self,
        mut rec: AlertRecord,
        alert: &Alert,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<AuditEntry>), RouterError> {
        rec.status = Status::Resolved;
        let reminder = crate::remind::scheduled_start(&rec.alert)
            .filter(|_| self.config.defaults.health_reminder.is_some());
        rec.alert = alert.clone();
        rec.updated_at = now;
        rec.resolved_at = Some(format_time(&now));
        rec.version += 1;
        let mut out = Outbox::at(now);
        if let Some(name) = rec.ack_timer.take() {
            out.cancel_timer(name);
        }
        // A scheduled change cancelled before it started: its reminder would only find it resolved.
        if let Some(start) = reminder {
            out.cancel_timer(crate::remind::reminder_timer_name(&rec.id, start));
        }
        if rec.escalation.is_some() {
            out.cancel_timer(timer_name(&rec.id, rec.escalation_step + 1));
        }
        let mut head = entry(
            now,
            &rec.id,
            alert,
            Action::Resolve,
            format!(
                "{}: {}; open for {}",
                alert.state,
                alert.reason,
                human(now - rec.opened_at)
            ),
        );
        if let Some(by) = &rec.suppressed {
            head.reason.push_str(&format!(
                "; it was held by {by}, so nobody was paged for it"
            ));
        }
        out.audit.push(head);
        for t in &rec.notified {
            out.deliver(self.job(&rec, DeliveryKind::Resolve, t, None, now));
            out.audit.push(
                entry(now, &rec.id, alert, Action::Notify, "resolution".into()).with_target(t),
            );
        }
        if self.owes_after_resolve(&rec) {
            out.follow.push(FollowUp::AfterResolve);
        }
        let id = rec.id.clone();
        let (_, entries) = self.commit(rec, out).await?;
        Ok((id, entries))
    }

    pub(crate) fn job(
        &self,
        rec: &AlertRecord,
        kind: DeliveryKind,
        t: &Target,
        level: Option<u32>,
        now: DateTime<Utc>,
    ) -> DeliveryJob {
        let kind_s = match kind {
            DeliveryKind::Trigger => "trigger".to_string(),
            DeliveryKind::Escalation => format!("escalation-{}", rec.escalation_step),
            DeliveryKind::Resolve => "resolve".to_string(),
            DeliveryKind::Acknowledge => "ack".to_string(),
        };
        DeliveryJob {
            delivery_id: stable_id(&["delivery", &rec.id, &kind_s, &t.channel, &t.target]),
            alert_id: rec.id.clone(),
            kind,
            target: t.clone(),
            level,
            alert: rec.alert.clone(),
            status: rec.status,
            created_at: now,
            thread: None,
        }
    }
}
