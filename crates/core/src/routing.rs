//! Routing: which routes of the tree take an alert (the Alertmanager walk), and whom each notifies.
//!
//! The walk: the root matches everything. At a matching node the children are tried in order; the first
//! that matches takes the alert and the walk stops there unless that child has `continue`, in which case
//! later siblings are tried too. A matching node that no child takes is a leaf of the result. `notify`
//! and `escalation` are inherited by children that name none. A node's `active_during`/`muted_during`
//! windows apply to that node only: a muted node still takes the alert (so siblings are not tried) but
//! notifies nobody, and says why.

use chrono::{DateTime, Utc};

use crate::classify::matches_all;
use crate::config::{ChannelKind, Config, Notify, Recipient, Route};
use crate::model::Alert;
use crate::oncall;
use crate::record::Target;

/// A route that took the alert, with what it inherited.
#[derive(Debug, Clone)]
pub struct RouteMatch<'a> {
    /// The route node.
    pub route: &'a Route,
    /// Effective notifications (its own, or inherited).
    pub notify: &'a [Notify],
    /// Effective escalation policy name.
    pub escalation: Option<&'a str>,
    /// Why the route notifies nobody now, if it is muted (`muted by time window "nights"`).
    pub muted: Option<String>,
}

/// The routes that take `alert` at time `at`, in tree order.
pub fn match_routes<'a>(
    config: &'a Config,
    alert: &Alert,
    at: DateTime<Utc>,
) -> Vec<RouteMatch<'a>> {
    let mut out = Vec::new();
    visit(
        config,
        &config.route,
        alert,
        at,
        &config.route.notify,
        config.route.escalation.as_deref(),
        &mut out,
    );
    out
}

fn visit<'a>(
    config: &'a Config,
    node: &'a Route,
    alert: &Alert,
    at: DateTime<Utc>,
    inherited_notify: &'a [Notify],
    inherited_escalation: Option<&'a str>,
    out: &mut Vec<RouteMatch<'a>>,
) -> bool {
    if !matches_all(&node.matchers, alert) {
        return false;
    }
    let notify: &'a [Notify] = if node.notify.is_empty() {
        inherited_notify
    } else {
        &node.notify
    };
    let escalation = node.escalation.as_deref().or(inherited_escalation);
    let mut taken = false;
    for child in &node.routes {
        if visit(config, child, alert, at, notify, escalation, out) {
            taken = true;
            if !child.continue_matching {
                break;
            }
        }
    }
    if !taken {
        out.push(RouteMatch {
            route: node,
            notify,
            escalation,
            muted: muted_reason(config, node, at),
        });
    }
    true
}

fn muted_reason(config: &Config, node: &Route, at: DateTime<Utc>) -> Option<String> {
    for name in &node.muted_during {
        if config
            .time_windows
            .get(name)
            .is_some_and(|w| w.contains(at))
        {
            return Some(format!(
                "route {:?} muted by time window {name:?}",
                node.name
            ));
        }
    }
    if !node.active_during.is_empty()
        && !node.active_during.iter().any(|name| {
            config
                .time_windows
                .get(name)
                .is_some_and(|w| w.contains(at))
        })
    {
        return Some(format!(
            "route {:?} is active only during {}",
            node.name,
            node.active_during.join(", ")
        ));
    }
    None
}

/// Expands one notify entry into concrete targets at `at`: people resolved to their contact for the
/// channel's kind, schedules to whoever is on call. Problems (nobody on call, a person without the
/// contact) are returned as one-line reasons beside the targets that could be made.
pub fn expand(config: &Config, notify: &Notify, at: DateTime<Utc>) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut problems = Vec::new();
    let Some(channel) = config.channels.get(&notify.channel) else {
        problems.push(format!("unknown channel {:?}", notify.channel));
        return (targets, problems);
    };
    let recipients = if notify.to.is_empty() {
        &channel.default_to
    } else {
        &notify.to
    };
    if recipients.is_empty() {
        targets.push(Target {
            channel: channel.name.clone(),
            channel_kind: channel.kind,
            target: channel.name.clone(),
            address: None,
        });
        return (targets, problems);
    }
    for r in recipients {
        match r {
            Recipient::Address(a) => targets.push(Target {
                channel: channel.name.clone(),
                channel_kind: channel.kind,
                target: a.clone(),
                address: Some(a.clone()),
            }),
            Recipient::Person(p) => person_target(
                config,
                &channel.name,
                channel.kind,
                p,
                &mut targets,
                &mut problems,
            ),
            Recipient::Schedule(s) => match config
                .schedules
                .get(s)
                .and_then(|sch| oncall::on_call(config, sch, at))
            {
                Some(p) => person_target(
                    config,
                    &channel.name,
                    channel.kind,
                    p,
                    &mut targets,
                    &mut problems,
                ),
                None => problems.push(format!("nobody is on call in schedule {s:?}")),
            },
        }
    }
    (targets, problems)
}

/// The target for a person on a channel, or a problem when they lack the contact the channel needs.
pub fn person_target(
    config: &Config,
    channel: &str,
    kind: ChannelKind,
    person: &str,
    targets: &mut Vec<Target>,
    problems: &mut Vec<String>,
) {
    let Some(p) = config.people.get(person) else {
        problems.push(format!("unknown person {person:?}"));
        return;
    };
    let address = match kind {
        ChannelKind::Email => p.email.clone(),
        ChannelKind::Sms => p.phone.clone(),
        ChannelKind::Slack => p.slack.clone(),
        ChannelKind::Teams | ChannelKind::Pagerduty | ChannelKind::Webhook => None,
    };
    let needs_address = matches!(
        kind,
        ChannelKind::Email | ChannelKind::Sms | ChannelKind::Slack
    );
    if needs_address && address.is_none() {
        problems.push(format!("{person} has no {} contact", kind.as_str()));
        return;
    }
    targets.push(Target {
        channel: channel.to_string(),
        channel_kind: kind,
        target: person.to_string(),
        address,
    });
}
