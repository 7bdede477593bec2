//! What was owed and what arrived: the expected deliveries (the fault-free embedded run's delivery
//! jobs), the received ones (what each sink saw: the signed webhooks' `webhook-id`, the SMS and email
//! moto recorded), and the comparison: lost (owed, never arrived, not in a dead-letter queue), doubled
//! (arrived more often than owed), dead-lettered (owed, never arrived, its event in a dead-letter queue
//! with its reason).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tocsin_core::record::{DeliveryJob, DeliveryKind};

/// One delivery: to whom, on which channel, about what, why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// The alert (or group) id.
    pub alert: String,
    /// The channel's name.
    pub channel: String,
    /// Who or where.
    pub target: String,
    /// `trigger`, `escalation`, `resolve`, `acknowledge`.
    pub kind: String,
    /// The escalation level.
    pub level: Option<u32>,
}

impl Key {
    /// A job's key.
    pub fn of(job: &DeliveryJob) -> Key {
        Key {
            alert: job.alert_id.clone(),
            channel: job.target.channel.clone(),
            target: job.target.target.clone(),
            kind: kind_name(job.kind).into(),
            level: job.level,
        }
    }

    /// One line of expected.jsonl / received.jsonl.
    pub fn json(&self, delivery_id: Option<&str>, extra: &[(&str, Value)]) -> Value {
        let mut v = json!({
            "alert": self.alert,
            "channel": self.channel,
            "target": self.target,
            "kind": self.kind,
        });
        if let Some(l) = self.level {
            v["level"] = l.into();
        }
        if let Some(d) = delivery_id {
            v["delivery_id"] = d.into();
        }
        for (k, x) in extra {
            v[*k] = x.clone();
        }
        v
    }
}

/// The kind's name in the files.
pub fn kind_name(k: DeliveryKind) -> &'static str {
    match k {
        DeliveryKind::Trigger => "trigger",
        DeliveryKind::Escalation => "escalate",
        DeliveryKind::Resolve => "resolve",
        DeliveryKind::Acknowledge => "acknowledge",
    }
}

/// Content keys of a message without a delivery id (SMS, email): the address, the alarm name, the
/// kind and the level as the message shows them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    /// Phone number or email address.
    pub address: String,
    /// The alarm's name.
    pub alarm: String,
    /// The kind.
    pub kind: String,
    /// The level.
    pub level: Option<u32>,
}

impl Seen {
    /// What a job's message would show.
    pub fn of(job: &DeliveryJob) -> Option<Seen> {
        Some(Seen {
            address: job.target.address.clone()?,
            alarm: job.alert.alarm_name.clone(),
            kind: kind_name(job.kind).into(),
            level: (job.kind == DeliveryKind::Escalation)
                .then_some(job.level)
                .flatten(),
        })
    }

    /// An SMS as moto recorded it: `RESOLVED name`, `ACKED name`, `CRIT L2 name ALARM`, `CRIT name ALARM`.
    pub fn sms(phone: &str, text: &str, names: &[&str]) -> Option<Seen> {
        let mut words = text.split_whitespace();
        let first = words.next()?;
        let second = words.next().unwrap_or_default();
        let (kind, level) = match first {
            "RESOLVED" => ("resolve", None),
            "ACKED" => ("acknowledge", None),
            _ => match second.strip_prefix('L').and_then(|l| l.parse::<u32>().ok()) {
                Some(l) => ("escalate", Some(l)),
                None => ("trigger", None),
            },
        };
        let alarm = names.iter().find(|n| {
            text.split_whitespace()
                .any(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-') == **n)
        })?;
        Some(Seen {
            address: phone.to_string(),
            alarm: alarm.to_string(),
            kind: kind.into(),
            level,
        })
    }

    /// An email by its subject: `[SEV] name is ALARM`, `... (escalation level 2)`, `... is resolved`,
    /// `... is acknowledged`.
    pub fn email(address: &str, subject: &str) -> Option<Seen> {
        let rest = subject.split_once("] ")?.1;
        let (alarm, tail) = rest.split_once(" is ")?;
        let (kind, level) = if tail.starts_with("resolved") {
            ("resolve", None)
        } else if tail.starts_with("acknowledged") {
            ("acknowledge", None)
        } else if let Some(l) = tail.split("escalation level ").nth(1) {
            ("escalate", l.trim_end_matches(')').parse().ok())
        } else {
            ("trigger", None)
        };
        Some(Seen {
            address: address.to_string(),
            alarm: alarm.to_string(),
            kind: kind.into(),
            level,
        })
    }
}

/// The comparison.
#[derive(Debug, Default)]
pub struct Tally {
    /// Owed, never arrived, nothing dead-lettered for it.
    pub lost: Vec<Key>,
    /// Arrived more often than owed (extra copies), with the delivery ids seen.
    pub doubled: Vec<(Key, Vec<String>)>,
    /// Owed, never arrived, its event in a dead-letter queue.
    pub dead_lettered: Vec<(Key, String)>,
    /// Arrived, never owed.
    pub unexpected: Vec<Key>,
}

/// Compares owed with arrived; `dead` says, for an owed delivery that never arrived, the reason its
/// event is in a dead-letter queue, if it is.
pub fn tally(
    expected: &[Key],
    received: &[(Key, String)],
    dead: impl Fn(&Key) -> Option<String>,
) -> Tally {
    let mut owed: BTreeMap<&Key, usize> = BTreeMap::new();
    for k in expected {
        *owed.entry(k).or_default() += 1;
    }
    let mut got: BTreeMap<&Key, Vec<String>> = BTreeMap::new();
    for (k, id) in received {
        got.entry(k).or_default().push(id.clone());
    }
    let mut t = Tally::default();
    for (k, n) in &owed {
        let arrived = got.get(k).map_or(0, Vec::len);
        for _ in arrived..*n {
            match dead(k) {
                Some(reason) => t.dead_lettered.push(((*k).clone(), reason)),
                None => t.lost.push((*k).clone()),
            }
        }
        if arrived > *n {
            t.doubled.push(((*k).clone(), got[k].clone()));
        }
    }
    for (k, _) in received {
        if !owed.contains_key(k) {
            t.unexpected.push(k.clone());
        }
    }
    t
}

/// The grouped notifications (the catch-all route's, on `ops-hook`): when a flush falls decides what
/// a group notification says and its delivery id, so the fault-free run's cannot be matched one for
/// one. What must hold instead: every group notification the stack published reached its endpoint
/// exactly once (by delivery id: `received`), or its event is in a dead-letter queue (`dead`); the
/// caller adds what the groups still owe at the end (a flush never made is not published at all).
/// `doubled` lists each id that arrived more than once; `unexpected`, ids that arrived and were
/// never published.
pub fn tally_published(
    published: &[DeliveryJob],
    received: &[(Key, String)],
    dead: impl Fn(&Key) -> Option<String>,
) -> Tally {
    let mut owed: BTreeMap<&str, Key> = BTreeMap::new();
    for j in published {
        owed.entry(j.delivery_id.as_str())
            .or_insert_with(|| Key::of(j));
    }
    let mut got: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (_, id) in received {
        got.entry(id.as_str()).or_default().push(id.clone());
    }
    let mut t = Tally::default();
    for (id, k) in &owed {
        match got.get(id).map_or(0, Vec::len) {
            0 => match dead(k) {
                Some(reason) => t.dead_lettered.push((k.clone(), reason)),
                None => t.lost.push(k.clone()),
            },
            1 => {}
            _ => t.doubled.push((k.clone(), got[id].clone())),
        }
    }
    for (k, id) in received {
        if !owed.contains_key(id.as_str()) {
            t.unexpected.push(k.clone());
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_core::config::ChannelKind;
    use tocsin_core::record::{DeliveryKind, Status, Target};

    fn job(id: &str) -> DeliveryJob {
        DeliveryJob {
            delivery_id: id.into(),
            alert_id: format!("a-{id}"),
            kind: DeliveryKind::Trigger,
            target: Target {
                channel: "ops-hook".into(),
                channel_kind: ChannelKind::Webhook,
                target: "ops-hook".into(),
                address: None,
            },
            level: None,
            alert: serde_json::from_value(serde_json::json!({
                "event_id": "e", "fingerprint": "f", "source": "cloudwatch", "transport": "sns",
                "alarm_name": "n", "state": "ALARM", "state_changed_at": "2026-12-03T00:00:00Z",
                "reason": "r", "kind": "metric", "severity": "medium", "description": "",
                "dimensions": {}, "labels": {}
            }))
            .unwrap(),
            status: Status::Open,
            created_at: chrono::Utc::now(),
            thread: None,
        }
    }

    #[test]
    fn a_published_group_notification_is_lost_when_it_never_arrives_and_doubled_when_twice() {
        let published = [job("g1"), job("g2"), job("g2"), job("g3"), job("g4")];
        let k = |id: &str| (Key::of(&job(id)), id.to_string());
        let received = [k("g1"), k("g3"), k("g3"), k("stray")];
        let t = tally_published(&published, &received, |k| {
            (k.alert == "a-g4").then(|| "killed".to_string())
        });
        assert_eq!(
            t.lost,
            vec![Key::of(&job("g2"))],
            "published twice, owed once"
        );
        assert_eq!(t.doubled.len(), 1);
        assert_eq!(t.doubled[0].1, vec!["g3".to_string(), "g3".to_string()]);
        assert_eq!(
            t.dead_lettered,
            vec![(Key::of(&job("g4")), "killed".into())]
        );
        assert_eq!(t.unexpected, vec![Key::of(&job("stray"))]);
    }
}
