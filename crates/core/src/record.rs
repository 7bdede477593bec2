//! What the router keeps and hands on: dedup records, alert records (one per occurrence), audit entries,
//! delivery jobs and escalation ticks. All serialize as JSON with snake_case fields; stores and buses
//! carry them as they are.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ChannelKind;
use crate::model::{Alert, Severity, rfc3339};

/// The lifecycle of an alert, apart from its alarm's `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Firing, nobody has acknowledged it.
    Open,
    /// Somebody is on it.
    Acknowledged,
    /// The alarm recovered or somebody resolved it.
    Resolved,
    /// Past retention; kept only as history.
    Closed,
}

impl Status {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Whether the alert still counts as the fingerprint's live alert (new transitions attach to it).
    pub fn is_live(self) -> bool {
        matches!(self, Status::Open | Status::Acknowledged)
    }
}

/// Where a dedup claim stands (Powertools' idempotency states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    /// Being processed by the invocation that claimed it.
    InProgress,
    /// Processed; `outcome` says how.
    Completed,
}

/// The dedup record of one event id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DedupRecord {
    /// The event id claimed.
    pub event_id: String,
    /// In progress or completed.
    pub status: ClaimStatus,
    /// When the record stops deduplicating (and may be deleted by TTL).
    #[serde(with = "rfc3339")]
    pub expires_at: DateTime<Utc>,
    /// While in progress, when the claim is considered abandoned (the holder's deadline).
    #[serde(with = "rfc3339")]
    pub in_progress_until: DateTime<Utc>,
    /// How the event reached the winner (`sns`, `eventbridge`, ...).
    pub transport: String,
    /// When it was claimed.
    #[serde(with = "rfc3339")]
    pub claimed_at: DateTime<Utc>,
    /// The alert the event went to, once known.
    pub alert_id: Option<String>,
    /// One line: what processing decided.
    pub outcome: Option<String>,
}

/// One target notified about an alert, kept so the resolution reaches the same people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The channel name.
    pub channel: String,
    /// The channel's kind.
    pub channel_kind: ChannelKind,
    /// Who, for people (`alice`) or the address itself (`#ops-alerts`, the channel name for PagerDuty).
    pub target: String,
    /// Where: the email address, phone number, Slack channel; None where the channel has one destination.
    pub address: Option<String>,
}

/// One occurrence of an alert: from the transition that opened it to its resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The alert id (stable: fingerprint + opening event).
    pub id: String,
    /// The alarm's fingerprint.
    pub fingerprint: String,
    /// Lifecycle status.
    pub status: Status,
    /// The latest transition seen, classified.
    pub alert: Alert,
    /// Severity at opening (kept even if a later transition reads differently).
    pub severity: Severity,
    /// When it opened.
    #[serde(with = "rfc3339")]
    pub opened_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// When acknowledged, and by whom.
    pub acknowledged: Option<(String, String)>,
    /// Who the alert is assigned to, if anyone.
    #[serde(default)]
    pub assignee: Option<String>,
    /// When resolved (RFC 3339), if it is.
    pub resolved_at: Option<String>,
    /// How many firing transitions it has seen (1 at opening; repeats add).
    pub occurrences: u32,
    /// Names of the routes that took it.
    pub routes: Vec<String>,
    /// Everyone notified so far.
    pub notified: Vec<Target>,
    /// Written by releases before group members were items of their own: channels that heard of
    /// the alert only inside a group notification. Still read (`update::told`); the router now reads
    /// who heard from the alert's groups instead (`Router::told_targets`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_notified: Vec<Target>,
    /// How many of `notified` were paged when the alert opened (the rest came from escalation).
    #[serde(default)]
    pub initial_targets: usize,
    /// The escalation policy, if a route named one.
    pub escalation: Option<String>,
    /// The pending acknowledgement-timeout timer, if the policy has one and the alert is acknowledged.
    #[serde(default)]
    pub ack_timer: Option<String>,
    /// The highest escalation step paged so far (0: none yet); counts across repeats of the policy.
    pub escalation_step: u32,
    /// The previous occurrence of the same fingerprint, if any.
    pub previous: Option<String>,
    /// Optimistic-concurrency version: 1 at creation, +1 on every update.
    pub version: u64,
    /// While nobody has been paged on purpose: the rule holding it (`maintenance window "deploys"`,
    /// `silence 3f2a...`, `inhibit rule "composite-mutes-children"`). Cleared when it is paged after all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
    /// The notification groups (keys of [`crate::noise::GroupState`]) the alert joined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The effects the latest change owes and has not finished (the outbox): written with the change
    /// in one conditional write, carried out after it, and cleared. Whoever reads the record next
    /// finishes them first (`crate::router` executor).
    #[serde(default, skip_serializing_if = "Outbox::is_empty")]
    pub pending: Outbox,
}

impl AlertRecord {
    /// The alert's service (the `service` label classification gave it), if it has one.
    pub fn service(&self) -> Option<&str> {
        self.alert.labels.get("service").map(String::as_str)
    }

    /// Whether the effects of its opening are still owed: created together with its outbox, at its
    /// first version, and not yet written again without it. Such an alert is not listed by status (on
    /// DynamoDB it is not in the `by-status-keys` index): it joins the lists when whoever carries out its
    /// opening writes it again, so an alert whose creator died before pointing its fingerprint at it
    /// (docs/storage.md, "Opening an occurrence") is never shown, nor paged.
    pub fn opening_owed(&self) -> bool {
        self.version == 1 && !self.pending.is_empty()
    }

    /// The order of alerts within one status: `<severity rank>#<severity>#<service or ->#<opened_at>#<id>`,
    /// so that string order is most severe first, then by service, then by opening time. The DynamoDB
    /// store writes it as the `by-status-keys` index's sort key; the memory store sorts by it.
    pub fn status_sort_key(&self) -> String {
        format!(
            "{}#{}#{}#{}#{}",
            self.severity as u8,
            self.severity.as_str(),
            self.service().unwrap_or("-"),
            self.opened_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            self.id
        )
    }
}

/// What a timeline line or audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An alert opened.
    Open,
    /// A page was sent (queued for delivery) to one target.
    Notify,
    /// A repeated event id: processed already.
    Dedup,
    /// A new firing transition of an alert already open: counted, not paged again.
    Repeat,
    /// The alert resolved.
    Resolve,
    /// Nothing paged, on purpose (ignored state, muted window, nothing open to resolve).
    Suppress,
    /// An escalation level paged.
    Escalate,
    /// Escalation stopped (acknowledged, resolved) or ran out of levels.
    EscalationEnd,
    /// Somebody acknowledged.
    Ack,
    /// An acknowledgement timed out with the alert unresolved: it is open again and pages again.
    Retrigger,
    /// Somebody assigned the alert.
    Assign,
    /// Somebody added a note.
    Note,
    /// A deliver function tried to send one message (the outcome, latency and error class say how it went).
    Attempt,
    /// The alert joined a notification group: the group's notification, not the alert, pages.
    Group,
}

impl Action {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Open => "open",
            Action::Notify => "notify",
            Action::Dedup => "dedup",
            Action::Repeat => "repeat",
            Action::Resolve => "resolve",
            Action::Suppress => "suppress",
            Action::Escalate => "escalate",
            Action::EscalationEnd => "escalation_end",
            Action::Ack => "ack",
            Action::Retrigger => "retrigger",
            Action::Assign => "assign",
            Action::Note => "note",
            Action::Attempt => "attempt",
            Action::Group => "group",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the audit trail, and of the replay timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (virtual time in a replay).
    #[serde(with = "rfc3339")]
    pub at: DateTime<Utc>,
    /// The alert id (the fingerprint's would-be alert for decisions taken before one exists).
    pub alert: String,
    /// The alarm's name, for people reading the timeline.
    pub alarm_name: String,
    /// What happened.
    pub action: Action,
    /// Why, one line.
    pub reason: String,
    /// The event that caused it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// For a notification: the channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// For a notification: who.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// For an escalation: the level (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    /// The alert's severity.
    pub severity: Severity,
    /// For a delivery attempt: how it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<AttemptRecord>,
    /// For an alert told of in another alert's group notification: that alert (under which the
    /// notification went out). Entries written before this field said so in `reason` only
    /// ("in group notification under alert ...").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told_under: Option<String>,
}

impl AuditEntry {
    /// An entry about alert `alert` (alarm `alarm_name`, of `severity`) naming no event, channel,
    /// target, level or attempt; callers add what they know.
    pub fn new(
        at: DateTime<Utc>,
        alert: &str,
        alarm_name: &str,
        severity: Severity,
        action: Action,
        reason: String,
    ) -> Self {
        AuditEntry {
            at,
            alert: alert.to_string(),
            alarm_name: alarm_name.to_string(),
            action,
            reason,
            event_id: None,
            channel: None,
            target: None,
            level: None,
            severity,
            attempt: None,
            told_under: None,
        }
    }

    /// The entry naming the channel and target it is about.
    pub fn with_target(mut self, t: &Target) -> Self {
        self.channel = Some(t.channel.clone());
        self.target = Some(t.target.clone());
        self
    }
}

/// How one delivery attempt went, for the audit trail. Never holds a secret: no URL, key or token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The delivery id (idempotency key) the attempt belongs to.
    pub delivery_id: String,
    /// 1 for the first try.
    pub try_number: u32,
    /// Which invocation of the deliver function made it (1 for the first; the platform's retries
    /// count up). 0 in entries written before it was recorded.
    #[serde(default)]
    pub invocation: u32,
    /// What it came to (`sent`, `retryable` or `permanent` in JSON).
    pub outcome: crate::retry::AttemptOutcome,
    /// How long the call took.
    pub latency_ms: u64,
    /// For a failure: a short class (`http_429`, `http_500`, `timeout`, `connect`, `ses_rejected`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    /// For a success: the receiver's id of the message (SES message id, Slack `CHANNEL_ID/ts`), which
    /// later messages about the alert thread under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

/// Why a delivery is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// The alert fired.
    Trigger,
    /// An escalation level paged.
    Escalation,
    /// The alert resolved.
    Resolve,
    /// Somebody acknowledged.
    Acknowledge,
}

/// One message to one target on one channel: what the router publishes for the deliver functions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryJob {
    /// Idempotency key: retries of this job carry the same id and send nothing twice.
    pub delivery_id: String,
    /// The alert.
    pub alert_id: String,
    /// Why it is sent.
    pub kind: DeliveryKind,
    /// Who and where.
    pub target: Target,
    /// The escalation level, for escalations.
    pub level: Option<u32>,
    /// The alert as classified.
    pub alert: Alert,
    /// The alert's lifecycle status when the job was made.
    pub status: Status,
    /// When the job was made.
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// The receiver's id of the first message this alert sent to this target on this channel (Slack:
    /// `CHANNEL_ID/ts`), set by the deliver function from the audit, never by the router: a bot-token
    /// Slack channel updates that message in place or replies in its thread instead of posting anew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
}

/// The payload of a timer as releases before Router v2 wrote it (`step` for an escalation, or one of
/// `ack_timer` and `noise`): still read, so a timer scheduled before an upgrade fires after it
/// ([`Timer::from_json`]); never written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationTick {
    /// The alert to escalate.
    pub alert_id: String,
    /// The step to page: 1-based over levels, continuing across repeats (step = round × levels + level).
    pub step: u32,
    /// For an acknowledgement timeout instead of a step: the timer's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_timer: Option<String>,
    /// For a noise-control timer instead of an escalation step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<crate::noise::NoiseTimer>,
}

/// A timer: what to do when it fires. One tagged enum, the payload of every timer the router sets
/// (EventBridge Scheduler's Input on AWS), handled by one entry point (`Router::on_timer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "timer", rename_all = "snake_case")]
pub enum Timer {
    /// Page an escalation step of an alert, unless it was acknowledged or resolved meanwhile.
    Escalation {
        /// The alert.
        alert_id: String,
        /// 1-based over levels, continuing across repeats (step = round × levels + level).
        step: u32,
    },
    /// An acknowledgement timed out: the alert opens again, unless a later ack or a resolve made
    /// this timer stale (its name is no longer the alert's `ack_timer`).
    AckTimeout {
        /// The alert.
        alert_id: String,
        /// The timer's own name.
        name: String,
    },
    /// Flush a notification group.
    GroupFlush {
        /// The group's key.
        group: String,
        /// The group's timer sequence number when scheduled (another is stale).
        seq: u64,
        /// Set only to repeat a notification: such timers recur for as long as the group's alerts
        /// fire, so a replay without `--until` stops before them.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        repeat: bool,
    },
    /// The hold on an alert ends (a window closes, a silence or mute ends, an inhibition lets go):
    /// page it if it still fires and nothing else holds it.
    Unsuppress {
        /// The alert.
        alert_id: String,
        /// What held it.
        by: String,
    },
    /// Remind that a silence ends soon.
    SilenceReminder {
        /// The silence.
        silence: String,
    },
    /// An AWS Health scheduled change starts soon.
    HealthReminder {
        /// The alert.
        alert_id: String,
        /// The start it was set for (RFC 3339).
        start: String,
    },
    /// A flapping alarm may have settled.
    FlapSettle {
        /// The flap state's key.
        key: String,
        /// The state's sequence number when scheduled.
        seq: u64,
    },
}

impl Timer {
    /// Reads a timer's payload: the tagged form, or the form releases before it wrote
    /// ([`EscalationTick`]).
    pub fn from_json(value: serde_json::Value) -> Result<Timer, serde_json::Error> {
        if value.get("timer").is_some() {
            return serde_json::from_value(value);
        }
        serde_json::from_value::<EscalationTick>(value).map(Timer::from)
    }

    /// Whether it is a group's repeat reminder (see [`Timer::GroupFlush`]).
    pub fn is_repeat(&self) -> bool {
        matches!(self, Timer::GroupFlush { repeat: true, .. })
    }

    /// What it is about, for logs: the alert id, or the group's, silence's or flap state's key.
    pub fn subject(&self) -> &str {
        match self {
            Timer::Escalation { alert_id, .. }
            | Timer::AckTimeout { alert_id, .. }
            | Timer::Unsuppress { alert_id, .. }
            | Timer::HealthReminder { alert_id, .. } => alert_id,
            Timer::GroupFlush { group, .. } => group,
            Timer::SilenceReminder { silence } => silence,
            Timer::FlapSettle { key, .. } => key,
        }
    }
}

impl From<EscalationTick> for Timer {
    fn from(t: EscalationTick) -> Timer {
        use crate::noise::NoiseTimer;
        match (t.noise, t.ack_timer) {
            (Some(NoiseTimer::GroupFlush { group, seq, repeat }), _) => {
                Timer::GroupFlush { group, seq, repeat }
            }
            (Some(NoiseTimer::Unsuppress { by }), _) => Timer::Unsuppress {
                alert_id: t.alert_id,
                by,
            },
            (Some(NoiseTimer::SilenceReminder { silence }), _) => {
                Timer::SilenceReminder { silence }
            }
            (Some(NoiseTimer::HealthReminder { start }), _) => Timer::HealthReminder {
                alert_id: t.alert_id,
                start,
            },
            (Some(NoiseTimer::FlapSettle { key, seq }), _) => Timer::FlapSettle { key, seq },
            (None, Some(name)) => Timer::AckTimeout {
                alert_id: t.alert_id,
                name,
            },
            (None, None) => Timer::Escalation {
                alert_id: t.alert_id,
                step: t.step,
            },
        }
    }
}

/// A timer the outbox owes: set `timer` under `name` at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerSet {
    /// The timer's idempotent name.
    pub name: String,
    /// When it fires.
    #[serde(with = "rfc3339")]
    pub at: DateTime<Utc>,
    /// Its payload.
    pub timer: Timer,
}

/// The effects one state change owes (the transactional outbox): written on the changed item in the
/// same conditional write as the change, carried out after it (timers, then deliveries, then the
/// audit, then the changes it owes other items), then cleared. Every effect is idempotent (delivery
/// ids, timer names, audit keys, set-like follow-ups), so whoever finds an outbox not cleared (a
/// retry, a timer, the next transition) carries it out again before anything else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outbox {
    /// When the change was decided (the time follow-ups act at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// Timers to cancel, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cancel: Vec<String>,
    /// Timers to set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<TimerSet>,
    /// Delivery jobs to publish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliver: Vec<DeliveryJob>,
    /// Delivery jobs about the item's own alert as it is written, kept without a copy of the alert
    /// (most of a job's size) and made whole from the record when carried out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliver_own: Vec<OwnJob>,
    /// The audit entries of the change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<AuditEntry>,
    /// Changes the change owes other items (a group, an inhibition), each idempotent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follow: Vec<FollowUp>,
}

impl Outbox {
    /// An empty outbox for a change decided at `at`.
    pub fn at(at: DateTime<Utc>) -> Self {
        Outbox {
            at: Some(at),
            ..Outbox::default()
        }
    }

    /// Whether it owes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.cancel.is_empty()
            && self.schedule.is_empty()
            && self.deliver.is_empty()
            && self.deliver_own.is_empty()
            && self.audit.is_empty()
            && self.follow.is_empty()
    }

    /// Whether it owes nothing but audit entries: such a change is written without an outbox and
    /// its entries appended after it (a crash between loses a line of the trail, never a page).
    pub fn only_audit(&self) -> bool {
        self.cancel.is_empty()
            && self.schedule.is_empty()
            && self.deliver.is_empty()
            && self.deliver_own.is_empty()
            && self.follow.is_empty()
    }

    /// Owes the timer `timer` under `name` at `at`.
    pub fn set_timer(&mut self, name: impl Into<String>, at: DateTime<Utc>, timer: Timer) {
        self.schedule.push(TimerSet {
            name: name.into(),
            at,
            timer,
        });
    }

    /// Owes the cancellation of timer `name`.
    pub fn cancel_timer(&mut self, name: impl Into<String>) {
        self.cancel.push(name.into());
    }

    /// Owes the publication of `job`.
    pub fn deliver(&mut self, job: DeliveryJob) {
        self.deliver.push(job);
    }

    /// Keeps the jobs about `alert` (the item's own, as written) without their copy of it.
    pub fn slim(&mut self, alert: &Alert) {
        let (own, other): (Vec<DeliveryJob>, Vec<DeliveryJob>) = std::mem::take(&mut self.deliver)
            .into_iter()
            .partition(|j| j.alert == *alert && j.thread.is_none());
        self.deliver = other;
        self.deliver_own.extend(own.into_iter().map(|j| OwnJob {
            delivery_id: j.delivery_id,
            alert_id: j.alert_id,
            kind: j.kind,
            target: j.target,
            level: j.level,
            status: j.status,
            created_at: j.created_at,
        }));
    }

    /// Every job owed, those about `alert` (the item's own) made whole with it.
    pub fn jobs<'a>(&'a self, alert: Option<&'a Alert>) -> impl Iterator<Item = DeliveryJob> + 'a {
        let own = alert.into_iter().flat_map(move |a| {
            self.deliver_own.iter().map(move |j| DeliveryJob {
                delivery_id: j.delivery_id.clone(),
                alert_id: j.alert_id.clone(),
                kind: j.kind,
                target: j.target.clone(),
                level: j.level,
                alert: a.clone(),
                status: j.status,
                created_at: j.created_at,
                thread: None,
            })
        });
        self.deliver.iter().cloned().chain(own)
    }
}

/// A delivery job about the outbox's own alert, without its copy of the alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnJob {
    /// As [`DeliveryJob::delivery_id`].
    pub delivery_id: String,
    /// As [`DeliveryJob::alert_id`].
    pub alert_id: String,
    /// As [`DeliveryJob::kind`].
    pub kind: DeliveryKind,
    /// As [`DeliveryJob::target`].
    pub target: Target,
    /// As [`DeliveryJob::level`].
    pub level: Option<u32>,
    /// As [`DeliveryJob::status`].
    pub status: Status,
    /// As [`DeliveryJob::created_at`].
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// A change one item's outbox owes another item. Each is idempotent: done twice, it changes nothing
/// the second time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FollowUp {
    /// The alert joins its group on a grouping route (a member already there is left as it is).
    JoinGroup {
        /// The route that groups it.
        route: String,
    },
    /// The alert resolved: its groups learn of it, and the inhibitions it was a source of let go.
    AfterResolve,
    /// The alert is a source of inhibit rules: listed under each rule's key.
    InhibitSource,
    /// The alert is held by the rule whose state is `key`: listed there, released when it ends.
    HeldBy {
        /// The state's key (`silence/<id>`, `inhibit/...`).
        key: String,
    },
    /// A flapping alarm's note, told in its group's next notification instead of on its own.
    NoteInGroup {
        /// The grouping route.
        route: String,
        /// The alert (or flapping episode) id.
        alert_id: String,
        /// The note (`flapping`, `settled firing`).
        note: String,
        /// Why, for the audit.
        why: String,
        /// The transition told of.
        alert: Box<Alert>,
    },
    /// A flapping alarm settled: open, resolve or tell, once (`crate::router` flap damping).
    FlapSettled {
        /// Whether it settled firing.
        firing: bool,
        /// Since when it flapped (RFC 3339).
        since: String,
        /// The episode's alert id, if no alert was live.
        episode: Option<String>,
        /// The transition it settled on.
        alert: Box<Alert>,
    },
}
