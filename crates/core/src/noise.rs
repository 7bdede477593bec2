//! Noise control's records: silences, and the small versioned states the router keeps per notification
//! group, per flapping alarm and per inhibition key, plus the payloads of its timers. They serialize as
//! JSON (snake_case) and stores carry them as they are (`docs/storage.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::classify::{field_value, matches_all};
use crate::config::{Field, Matcher, SilenceLimits, parse_matcher};
use crate::model::{Alert, Severity, format_time, rfc3339, stable_id};
use crate::text::one_line;

/// A silence: alerts all of whose matchers match, opening while it is active, are recorded and not
/// paged. Made through the API or the CLI; kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Stable id (from its content and creation time).
    pub id: String,
    /// Matchers, as written (`FIELD OP VALUE`, as in the config); all must match.
    pub matchers: Vec<String>,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was made.
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it starts holding alerts.
    #[serde(with = "rfc3339")]
    pub starts_at: DateTime<Utc>,
    /// When it stops, unless expired earlier.
    #[serde(with = "rfc3339")]
    pub ends_at: DateTime<Utc>,
    /// When somebody expired it early, if they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<DateTime<Utc>>,
    /// Who expired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_by: Option<String>,
}

/// What a person asks for when making a silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSilence {
    /// Matchers (`FIELD OP VALUE`); at least one.
    pub matchers: Vec<String>,
    /// Who makes it.
    pub created_by: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
    /// When it starts; default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ends.
    pub ends_at: DateTime<Utc>,
}

/// Why a silence was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SilenceError {
    /// No matchers: it would silence everything.
    #[error("a silence needs at least one matcher")]
    NoMatchers,
    /// A matcher does not parse.
    #[error("matcher {index}: {reason}")]
    BadMatcher {
        /// 1-based.
        index: usize,
        /// One line.
        reason: String,
    },
    /// No creator.
    #[error("a silence needs its creator (created_by)")]
    NoCreator,
    /// It would silence every alert: no matcher singles any out.
    #[error(
        "a silence must match some alerts, not all: each matcher here holds for any value of its field (like `alarm_name =~ .+` or `service != x`); add one that names what to silence, like `service = search`"
    )]
    MatchesEverything,
    /// It lasts longer than the config's `silences.max_duration`.
    #[error(
        "a silence lasts at most {max} (silences.max_duration; this one: {asked}); make a new one when it ends"
    )]
    TooLong {
        /// The limit, in words (`7d`).
        max: String,
        /// How long it was asked to last, in words.
        asked: String,
    },
    /// It ends before it starts, or is already over.
    #[error("a silence must end after it starts and in the future (ends {ends}, starts {starts})")]
    BadTimes {
        /// RFC 3339.
        starts: String,
        /// RFC 3339.
        ends: String,
    },
    /// As many silences as the config allows are active or pending already.
    #[error(
        "{max} silences are active or pending already (silences.max_active); expire one that is no longer needed first"
    )]
    TooMany {
        /// The limit.
        max: usize,
    },
}

/// The default longest a silence may last (`silences.max_duration`): a forgotten silence ends within
/// a week, and pages again.
pub const MAX_SILENCE: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Values a field with an open set of values might hold that no matcher meant to single out alerts
/// names: a matcher that holds for all of them (`.+`, `.*`, `!= x`, `!~ x`) singles out none.
const PROBES: &[&str] = &["tocsin-silence-probe 0", "\u{7f}"];

/// The values of the fields whose values are a closed set (as the config's matchers know them).
fn domain(field: &Field) -> Option<&'static [&'static str]> {
    match field {
        Field::Severity => Some(&["critical", "high", "medium", "low", "info"]),
        Field::State => Some(&["ALARM", "OK", "INSUFFICIENT_DATA"]),
        Field::Tier => Some(&["1", "2", "3", "4", ""]),
        Field::Priority => Some(&["P1", "P2", "P3", "P4", "P5", ""]),
        _ => None,
    }
}

/// Whether a matcher fails for some value its field can hold: for a closed set of values one of
/// them, for any other field a value nobody names on purpose.
fn singles_out(m: &Matcher) -> bool {
    domain(&m.field)
        .unwrap_or(PROBES)
        .iter()
        .any(|v| !m.matches_value(Some(v)))
}

/// A duration in words for a one-line reason: `7d`, `36h`, `90m`, `45s`.
fn words(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds();
    if s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s % 3_600 == 0 {
        format!("{}h", s / 3_600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

impl NewSilence {
    /// Validates the request against `limits` and makes the silence, created at `now`. (How many
    /// are active is the router's to check: it needs the store.)
    pub fn build(
        self,
        now: DateTime<Utc>,
        limits: &SilenceLimits,
    ) -> Result<Silence, SilenceError> {
        if self.matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        let mut excludes_something = false;
        for (i, m) in self.matchers.iter().enumerate() {
            let parsed = parse_matcher(m).map_err(|reason| SilenceError::BadMatcher {
                index: i + 1,
                reason: one_line(&reason).into_owned(),
            })?;
            excludes_something |= singles_out(&parsed);
        }
        if !excludes_something {
            return Err(SilenceError::MatchesEverything);
        }
        if self.created_by.trim().is_empty() {
            return Err(SilenceError::NoCreator);
        }
        let starts_at = self.starts_at.unwrap_or(now);
        if self.ends_at <= starts_at || self.ends_at <= now {
            return Err(SilenceError::BadTimes {
                starts: format_time(&starts_at),
                ends: format_time(&self.ends_at),
            });
        }
        let max = chrono::TimeDelta::from_std(limits.max_duration).unwrap_or(MAX_SILENCE);
        if self.ends_at - starts_at > max {
            return Err(SilenceError::TooLong {
                max: words(max),
                asked: words(self.ends_at - starts_at),
            });
        }
        let mut parts = vec![
            "silence".to_string(),
            self.created_by.clone(),
            format_time(&now),
            format_time(&starts_at),
            format_time(&self.ends_at),
            self.comment.clone(),
        ];
        parts.extend(self.matchers.iter().cloned());
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        Ok(Silence {
            id: stable_id(&refs)[..16].to_string(),
            matchers: self.matchers,
            created_by: self.created_by,
            comment: self.comment,
            created_at: now,
            starts_at,
            ends_at: self.ends_at,
            expired_at: None,
            expired_by: None,
        })
    }
}

impl Silence {
    /// When it stops holding alerts: its end, or when it was expired if that came first.
    pub fn end(&self) -> DateTime<Utc> {
        self.expired_at
            .map_or(self.ends_at, |e| e.min(self.ends_at))
    }

    /// Whether it holds alerts at `t`.
    pub fn active_at(&self, t: DateTime<Utc>) -> bool {
        self.starts_at <= t && t < self.end()
    }

    /// Its matchers, compiled. A stored matcher that no longer parses makes the silence match nothing
    /// (and is reported by the caller), rather than everything.
    pub fn compiled(&self) -> Result<Vec<Matcher>, String> {
        self.matchers.iter().map(|m| parse_matcher(m)).collect()
    }

    /// Whether it holds `alert` at `t`.
    pub fn silences(&self, alert: &Alert, t: DateTime<Utc>) -> bool {
        self.active_at(t) && self.compiled().is_ok_and(|m| matches_all(&m, alert))
    }

    /// One line for the audit and the CLI: id, who, why, until when, matchers.
    pub fn describe(&self) -> String {
        one_line(&format!(
            "silence {} by {} ({}) until {}: {}",
            self.id,
            self.created_by,
            if self.comment.is_empty() {
                "no comment"
            } else {
                &self.comment
            },
            format_time(&self.end()),
            self.matchers.join(", ")
        ))
        .into_owned()
    }
}

/// A small versioned state the router keeps for noise control, under a key. Writes are conditional on
/// the version, like alert records: version 1 is a create, any other replaces version − 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseState {
    /// The key (`group/...`, `flap/...`, `inhibit/...`).
    pub key: String,
    /// 1 at creation, +1 on every write.
    pub version: u64,
    /// What it holds.
    pub body: NoiseBody,
    /// The effects its latest change owes and has not finished (the outbox, as on alert records).
    #[serde(default, skip_serializing_if = "crate::record::Outbox::is_empty")]
    pub pending: crate::record::Outbox,
}

/// The kinds of noise-control state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoiseBody {
    /// A notification group.
    Group(GroupState),
    /// An alarm's recent state changes, for flap damping.
    Flap(FlapState),
    /// The live source alerts of one inhibition key, and the targets they hold.
    Inhibit(InhibitState),
}

/// One alert of a notification group: an item of its own (`AlertStore::put_group_member`), so that
/// no item grows with a group's size. Which of its states a group notification has told is read
/// from `seq` against the group's `told_upto`: a flush tells of the members whose `seq` it read and
/// records that point, instead of writing every member it told of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    /// The alert.
    #[serde(default)]
    pub alert_id: String,
    /// The alarm's name, for the group's message.
    pub alarm_name: String,
    /// Its severity.
    pub severity: Severity,
    /// Whether it is firing now.
    pub firing: bool,
    /// Before groups kept members apart: whether a group notification had told of it firing. Read
    /// only when a group written then is moved to member items.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notified: bool,
    /// Something the group's next notification tells of it besides firing or resolving (`flapping`,
    /// `settled firing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The group's version this state of the member was written for (the group's write that
    /// followed made it that version).
    #[serde(default)]
    pub seq: u64,
    /// Whether a group notification has told of it firing (before this state).
    #[serde(default)]
    pub told_firing: bool,
    /// Whether its alarm's event named a CloudWatch mute rule when it joined (`None`: written
    /// before this was kept). A flush reads its members' alerts to see which are held only when
    /// one of them may be muted so, or a window, silence or inhibition may hold one of them
    /// (`Router::held_members`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch_muted: Option<bool>,
}

impl GroupMember {
    /// Whether a notification has told of it firing, given the group's `told_upto`.
    pub fn told_firing(&self, told_upto: u64) -> bool {
        self.told_firing || (self.firing && self.seq <= told_upto)
    }
}

/// A notification group: the alerts of one route with equal `group_by` values, and what has been
/// told. Its members are items of their own; this stays the same size however many there are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// The route that groups.
    pub route: String,
    /// The `group_by` values.
    pub labels: BTreeMap<String, String>,
    /// Members kept inside the group before they were items of their own: moved out on the first
    /// write after an upgrade.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<String, GroupMember>,
    /// When the group last notified (or was flushed with nothing to say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_flush: Option<DateTime<Utc>>,
    /// When it last sent a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent: Option<DateTime<Utc>>,
    /// When its pending flush timer fires, if one is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_at: Option<DateTime<Utc>>,
    /// The pending timer's sequence number: a timer carrying another is stale.
    pub seq: u64,
    /// The group's version the last flush read: member states of that `seq` or lower are told.
    #[serde(default)]
    pub told_upto: u64,
    /// How many of its members are firing.
    #[serde(default)]
    pub firing: u64,
}

/// An alarm's recent changes between firing and not firing, for flap damping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlapState {
    /// Changes within the damping window, oldest first.
    pub changes: Vec<DateTime<Utc>>,
    /// Whether the alarm's last transition was firing.
    pub firing: bool,
    /// Since when it is flapping, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping_since: Option<DateTime<Utc>>,
    /// The settle timer's sequence number: a timer carrying another is stale.
    pub seq: u64,
    /// The latest change while flapping. The settle timer is armed once, when flapping begins, and
    /// not moved on every change: when it fires before `last_change + settle` it arms itself again
    /// for then. A flapping alarm costs one timer per settle period instead of a delete and a create
    /// on Scheduler per change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change: Option<DateTime<Utc>>,
    /// The alert id the flapping episode is recorded under when no alert is live (so that its
    /// decisions share one trail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<String>,
    /// The latest transition while flapping (what settling reports). Shared, not owned: the state is
    /// read and written on every change of a flapping alarm, and copying the alert each time was
    /// most of that cost.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "shared_alert"
    )]
    pub last: Option<Arc<Alert>>,
}

/// Serde glue for a shared alert: the same JSON as the alert itself.
mod shared_alert {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::model::Alert;

    pub(super) fn serialize<S: Serializer>(
        v: &Option<Arc<Alert>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.as_deref().serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Arc<Alert>>, D::Error> {
        Ok(Option::<Alert>::deserialize(d)?.map(Arc::new))
    }
}

/// The live source alerts of one inhibition rule and `equal` values, and the targets they hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InhibitState {
    /// Live source alert ids, with their alarm names.
    pub sources: BTreeMap<String, String>,
    /// Target alert ids held (paged when the last source resolves, if still firing).
    pub targets: BTreeSet<String>,
}

/// The noise-control part of a timer's payload as releases before `record::Timer` wrote it: read
/// only, into a [`crate::record::Timer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoiseTimer {
    /// Flush a notification group.
    GroupFlush {
        /// The group's key.
        group: String,
        /// The group's timer sequence number when scheduled.
        seq: u64,
        /// Whether it was set only to repeat a notification (nothing changed): such timers recur for as
        /// long as the group's alerts fire, so a replay without `--until` stops before them.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        repeat: bool,
    },
    /// The suppression holding the tick's alert ends: page it if it still fires and nothing else holds it.
    Unsuppress {
        /// What held it (for the audit).
        by: String,
    },
    /// Remind that a silence expires soon.
    SilenceReminder {
        /// The silence.
        silence: String,
    },
    /// An AWS Health scheduled change starts soon (`crate::remind`).
    HealthReminder {
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

impl NoiseTimer {
    /// Whether this is a group's repeat reminder (see [`NoiseTimer::GroupFlush`]).
    pub fn is_repeat(&self) -> bool {
        matches!(self, NoiseTimer::GroupFlush { repeat: true, .. })
    }
}

/// The values of `fields` on `alert`, by name, a missing one as `""` (as matchers read it).
pub fn label_values(names: &[String], fields: &[Field], alert: &Alert) -> BTreeMap<String, String> {
    names
        .iter()
        .zip(fields)
        .map(|(n, f)| (n.clone(), field_value(alert, f).unwrap_or("").to_string()))
        .collect()
}

/// `{a="x", b="y"}`, quoted, for keys and messages.
pub fn label_text(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// The key of a route's group.
pub fn group_key(route: &str, labels: &BTreeMap<String, String>) -> String {
    format!("group/{route}/{}", label_text(labels))
}

/// The key of an alarm's flap state.
pub fn flap_key(fingerprint: &str) -> String {
    format!("flap/{fingerprint}")
}

/// The key of an inhibition rule's state for some `equal` values.
pub fn inhibit_key(rule: &str, labels: &BTreeMap<String, String>) -> String {
    format!("inhibit/{rule}/{}", label_text(labels))
}

/// A timer name for a key and sequence number: short, stable, in the Scheduler's alphabet.
pub fn noise_timer_name(kind: &str, key: &str, seq: u64) -> String {
    format!("{}{seq}", noise_timer_prefix(kind, key))
}

/// [`noise_timer_name`] without its sequence number, for a caller that names several timers of one
/// key (cancelling one and scheduling the next) and so hashes the key once.
pub(crate) fn noise_timer_prefix(kind: &str, key: &str) -> String {
    format!("tocsin-{kind}-{}-", &stable_id(&[key])[..20])
}

/// The delta text of a group notification: `+3 firing, 1 resolved`, then any notes counted
/// (`2 flapping`), in the order given.
pub fn delta_text(new_firing: usize, resolved: usize, notes: &[(String, usize)]) -> String {
    let mut parts = Vec::new();
    if new_firing > 0 {
        parts.push(format!("+{new_firing} firing"));
    }
    if resolved > 0 {
        parts.push(format!("{resolved} resolved"));
    }
    for (note, n) in notes {
        parts.push(format!("{n} {note}"));
    }
    if parts.is_empty() {
        "no change".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod silence_limits {
    use super::*;

    fn request(matchers: &[&str], hours: i64) -> NewSilence {
        let now = DateTime::from_timestamp(1_900_000_000, 0).unwrap_or_default();
        NewSilence {
            matchers: matchers.iter().map(|m| m.to_string()).collect(),
            created_by: "alice".into(),
            comment: String::new(),
            starts_at: Some(now),
            ends_at: now + chrono::TimeDelta::hours(hours),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).unwrap_or_default()
    }

    fn limits() -> SilenceLimits {
        SilenceLimits::default()
    }

    #[test]
    fn a_silence_lasts_at_most_the_configured_maximum() {
        assert!(
            request(&["service = search"], 168)
                .build(now(), &limits())
                .is_ok()
        );
        let long = request(&["service = search"], 169).build(now(), &limits());
        assert_eq!(
            long,
            Err(SilenceError::TooLong {
                max: "7d".into(),
                asked: "169h".into()
            })
        );
        assert_eq!(
            long.unwrap_err().to_string(),
            "a silence lasts at most 7d (silences.max_duration; this one: 169h); make a new one when it ends"
        );
        let two_hours = SilenceLimits {
            max_duration: std::time::Duration::from_secs(2 * 3600),
            ..limits()
        };
        assert!(
            request(&["service = search"], 2)
                .build(now(), &two_hours)
                .is_ok()
        );
        assert_eq!(
            request(&["service = search"], 3).build(now(), &two_hours),
            Err(SilenceError::TooLong {
                max: "2h".into(),
                asked: "3h".into()
            })
        );
    }

    #[test]
    fn a_silence_whose_matchers_hold_for_any_value_is_refused() {
        for everything in [
            &["alarm_name =~ \".*\""][..],
            &["alarm_name =~ \".+\""],
            &["service != \"no-such-service\""],
            &["service =~ \".*\"", "alarm_name !~ \"zz-never\""],
            &["team =~ \".+\""],
            &["severity =~ \"critical|high|medium|low|info\""],
            &["state =~ \"ALARM|OK|INSUFFICIENT_DATA\"", "region !~ \"x\""],
        ] {
            assert_eq!(
                request(everything, 1).build(now(), &limits()),
                Err(SilenceError::MatchesEverything),
                "{everything:?}"
            );
        }
        assert!(
            SilenceError::MatchesEverything
                .to_string()
                .starts_with("a silence must match some alerts, not all:")
        );
    }

    #[test]
    fn one_matcher_that_singles_out_alerts_is_enough() {
        for some in [
            &["alarm_name =~ \".*\"", "service = search"][..],
            &["severity != \"info\""],
            &["state = ALARM"],
            &["alarm_name =~ \"checkout-.*\""],
            &["team = \"\""],
        ] {
            assert!(request(some, 1).build(now(), &limits()).is_ok(), "{some:?}");
        }
    }

    #[test]
    fn the_too_many_reason_names_the_setting() {
        assert_eq!(
            SilenceError::TooMany { max: 100 }.to_string(),
            "100 silences are active or pending already (silences.max_active); expire one that is no longer needed first"
        );
    }
}
