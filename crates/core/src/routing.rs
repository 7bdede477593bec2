//! Routing: which routes of the tree take an alert (the Alertmanager walk), and whom each notifies.
//!
//! The walk: the root matches everything. At a matching node the children are tried in order; the first
//! that matches takes the alert and the walk stops there unless that child has `continue`, in which case
//! later siblings are tried too. A matching node that no child takes is a leaf of the result. `notify`
//! and `escalation` are inherited by children that name none. A node's `active_during`/`muted_during`
//! windows apply to that node only: a muted node still takes the alert (so siblings are not tried) but
//! notifies nobody, and says why.

use chrono::{DateTime, Utc};

use std::collections::HashMap;

use crate::classify::{field_value, matches_all};
use crate::config::{
    ChannelKind, Config, Field, Grouping, Literal, MatchOp, Matcher, Notify, Recipient, Route,
};
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
    /// Effective grouping (its own, or inherited); `None`: pages each alert on its own.
    pub grouping: Option<&'a Grouping>,
}

/// The routes that take `alert` at time `at`, in tree order.
pub fn match_routes<'a>(
    config: &'a Config,
    alert: &Alert,
    at: DateTime<Utc>,
) -> Vec<RouteMatch<'a>> {
    let mut out = Vec::new();
    let inherited = Inherited {
        notify: &config.route.notify,
        escalation: config.route.escalation.as_deref(),
        grouping: config.route.grouping.as_ref(),
    };
    visit(config, &config.route, alert, at, inherited, &mut out);
    out
}

/// What a node passes down to its children: its effective notify, escalation and grouping.
#[derive(Clone, Copy)]
struct Inherited<'a> {
    notify: &'a [Notify],
    escalation: Option<&'a str>,
    grouping: Option<&'a Grouping>,
}

fn visit<'a>(
    config: &'a Config,
    node: &'a Route,
    alert: &Alert,
    at: DateTime<Utc>,
    inherited: Inherited<'a>,
    out: &mut Vec<RouteMatch<'a>>,
) -> bool {
    if !matches_all(&node.matchers, alert) {
        return false;
    }
    let notify: &'a [Notify] = if node.notify.is_empty() {
        inherited.notify
    } else {
        &node.notify
    };
    let escalation = node.escalation.as_deref().or(inherited.escalation);
    let grouping = node.grouping.as_ref().or(inherited.grouping);
    let passed = Inherited {
        notify,
        escalation,
        grouping,
    };
    let mut taken = false;
    let mut try_child = |child: &'a Route, out: &mut Vec<RouteMatch<'a>>| -> bool {
        if visit(config, child, alert, at, passed, out) {
            taken = true;
            return !child.continue_matching;
        }
        false
    };
    match &node.index {
        Some(index) => {
            for i in index.candidates(alert) {
                if try_child(&node.routes[i as usize], out) {
                    break;
                }
            }
        }
        None => {
            for child in &node.routes {
                if try_child(child, out) {
                    break;
                }
            }
        }
    }
    if !taken {
        out.push(RouteMatch {
            route: node,
            notify,
            escalation,
            muted: muted_reason(config, node, at),
            grouping,
        });
    }
    true
}

/// Nodes with at least this many children get an index.
pub const INDEX_MIN_CHILDREN: usize = 16;

/// An index over a node's children: for the one field most children constrain with an exact value, a
/// list of values or a prefix, which children can match a given value. Children that do not constrain
/// it are always candidates. Only children that certainly cannot match are skipped, and candidates are
/// tried in tree order, so the walk decides exactly as without the index.
#[derive(Debug, Default)]
pub struct ChildIndex {
    field: Option<Field>,
    exact: HashMap<String, Vec<u32>>,
    prefix: HashMap<String, Vec<u32>>,
    prefix_lens: Vec<usize>,
    always: Vec<u32>,
}

/// What one matcher lets an index assume about its field: the field must be one of these values, or
/// start with this prefix.
fn constraint(m: &Matcher) -> Option<(Vec<&str>, bool)> {
    match (m.op, &m.literal) {
        (MatchOp::Eq, _) => Some((vec![m.value.as_str()], false)),
        (MatchOp::Re, Some(Literal::Exact(s))) => Some((vec![s.as_str()], false)),
        (MatchOp::Re, Some(Literal::OneOf(v))) => {
            Some((v.iter().map(String::as_str).collect(), false))
        }
        (MatchOp::Re, Some(Literal::Prefix(p))) if !p.is_empty() => Some((vec![p.as_str()], true)),
        _ => None,
    }
}

impl ChildIndex {
    fn build(children: &[Route]) -> Option<ChildIndex> {
        let mut counts: Vec<(Field, usize)> = Vec::new();
        for c in children {
            for m in c.matchers.iter().filter(|m| constraint(m).is_some()) {
                match counts.iter_mut().find(|(f, _)| *f == m.field) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((m.field.clone(), 1)),
                }
            }
        }
        let (field, n) = counts.into_iter().max_by_key(|(_, n)| *n)?;
        if n < INDEX_MIN_CHILDREN / 2 {
            return None;
        }
        let mut idx = ChildIndex {
            field: Some(field.clone()),
            ..ChildIndex::default()
        };
        for (i, c) in children.iter().enumerate() {
            let i = i as u32;
            match c
                .matchers
                .iter()
                .filter(|m| m.field == field)
                .find_map(constraint)
            {
                Some((values, true)) => {
                    for v in values {
                        idx.prefix.entry(v.to_string()).or_default().push(i);
                        idx.prefix_lens.push(v.len());
                    }
                }
                Some((values, false)) => {
                    for v in values {
                        idx.exact.entry(v.to_string()).or_default().push(i);
                    }
                }
                None => idx.always.push(i),
            }
        }
        idx.prefix_lens.sort_unstable();
        idx.prefix_lens.dedup();
        Some(idx)
    }

    /// The children that may match `alert`, in tree order.
    pub fn candidates(&self, alert: &Alert) -> Vec<u32> {
        let mut out = self.always.clone();
        if let Some(field) = &self.field {
            let v = field_value(alert, field).unwrap_or("");
            if let Some(hits) = self.exact.get(v) {
                out.extend_from_slice(hits);
            }
            for &len in &self.prefix_lens {
                if let Some(hits) = v.get(..len).and_then(|p| self.prefix.get(p)) {
                    out.extend_from_slice(hits);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Builds the indexes of every node with many children, recursively. Called once at config load.
pub fn index_tree(node: &mut Route) {
    for child in &mut node.routes {
        index_tree(child);
    }
    node.index = if node.routes.len() >= INDEX_MIN_CHILDREN {
        ChildIndex::build(&node.routes).map(std::sync::Arc::new)
    } else {
        None
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::record;
    use proptest::prelude::*;

    /// 40 sibling routes mixing every kind of constraint on alarm_name, some with `continue`.
    fn config() -> Config {
        let mut y = String::from(
            "channels:\n  s: {type: slack, webhook_url: {env: S}, default_to: [\"#x\"]}\nroute:\n  notify: [{channel: s}]\n  routes:\n",
        );
        for i in 0..40 {
            let m = match i % 8 {
                0 => format!("'alarm_name = \"a{}\"'", i % 5),
                1 => format!("'alarm_name =~ \"a{}.*\"'", i % 3),
                2 => format!("'alarm_name =~ \"b{}|a{}\"'", i % 4, i % 6),
                3 => "'alarm_name =~ \"(?i)A1.*\"'".to_string(),
                4 => format!("'alarm_name != \"a{}\"', 'region = \"r{}\"'", i % 5, i % 2),
                5 => format!("'region = \"r{}\"'", i % 3),
                6 => format!("'alarm_name =~ \".*{}\"'", i % 4),
                _ => format!("'alarm_name =~ \"a.*\"', 'region =~ \"r{}.*\"'", i % 2),
            };
            let cont = if i % 3 == 0 { ", continue: true" } else { "" };
            y.push_str(&format!("    - {{name: n{i}, match: [{m}]{cont}}}\n"));
        }
        match crate::config::load(&y) {
            Ok(c) => c,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn names(c: &Config, a: &Alert) -> Vec<String> {
        let at = a.state_changed_at;
        match_routes(c, a, at)
            .iter()
            .map(|m| m.route.name.clone())
            .collect()
    }

    #[test]
    fn a_node_with_many_children_is_indexed() {
        assert!(config().route.index.is_some());
    }

    proptest! {
        /// The index only skips children that cannot match: the walk decides exactly as without it.
        #[test]
        fn indexed_and_plain_walks_decide_the_same(name in "[abA][0-9]{0,2}[a-c]?", region in "r[0-3]?") {
            static CONFIGS: std::sync::OnceLock<(Config, Config)> = std::sync::OnceLock::new();
            let (indexed, plain) = CONFIGS.get_or_init(|| {
                let indexed = config();
                let mut plain = indexed.clone();
                plain.route.index = None;
                (indexed, plain)
            });
            let mut a = record("x", "fp", None).alert;
            a.alarm_name = name;
            a.region = Some(region);
            prop_assert_eq!(names(indexed, &a), names(plain, &a));
        }
    }
}
