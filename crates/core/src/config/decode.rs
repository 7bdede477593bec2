//! Decoding the YAML tree into a [`Config`], section by section, checking every reference as it goes.
//!
//! Sections are decoded in dependency order (defaults, people, time windows, schedules, channels,
//! escalation policies, services, severity rules, routes) so that a reference can be checked against what
//! it names, including facts about it (does this person have a phone?), at the reference's own position.
//! A name counts as defined once it is declared, even if its definition is broken: the definition is
//! reported once, not again at every use.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use marked_yaml::Node;

use super::duration::parse_duration;
use super::matcher::parse_matcher;
use super::node::{Fields, Problems, as_list, as_name, as_str, entries, items, parsed, pos};
use super::window::{parse_time_range, parse_weekdays};
use super::{
    AwsHealthDependency, Channel, Config, ConfigError, Defaults, EscalationLevel, EscalationPolicy,
    EscalationTarget, Field, InsufficientData, Layer, LevelMode, Matcher, MultiTimeSeries, Notify,
    Override, Person, Pos, Rotation, Route, Schedule, Service, SeverityRule, TimeWindow,
};
use super::{
    Cron, FlapDamping, Grouping, InhibitRule, MaintenanceWindow, NoiseConfig, SilenceLimits,
    SilenceReminder, WindowSchedule,
};
use crate::model::Severity;

const TOP_KEYS: &[&str] = &[
    "defaults",
    "services",
    "severity_rules",
    "channels",
    "people",
    "time_windows",
    "escalation_policies",
    "schedules",
    "route",
    "maintenance_windows",
    "inhibit_rules",
    "flap_damping",
    "silence_reminder",
    "silences",
];

/// Routes nest no deeper than this. Real trees are a few levels deep; the bound keeps a hostile file from
/// exhausting the stack of the recursive decoder.
const MAX_ROUTE_DEPTH: usize = 32;

/// The sections a reference can point into, for lookups and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Channels,
    People,
    TimeWindows,
    EscalationPolicies,
    Schedules,
}

impl Section {
    fn key(self) -> &'static str {
        match self {
            Section::Channels => "channels",
            Section::People => "people",
            Section::TimeWindows => "time_windows",
            Section::EscalationPolicies => "escalation_policies",
            Section::Schedules => "schedules",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Section::Channels => "channel",
            Section::People => "person",
            Section::TimeWindows => "time window",
            Section::EscalationPolicies => "escalation policy",
            Section::Schedules => "schedule",
        }
    }
}

/// The decoder's state: problems so far, declared names, and what has been decoded.
pub(super) struct Decoder<'a> {
    pub(super) p: Problems,
    declared: BTreeMap<&'static str, BTreeSet<&'a str>>,
    pub(super) defaults: Defaults,
    pub(super) people: BTreeMap<String, Person>,
    pub(super) time_windows: BTreeMap<String, TimeWindow>,
    pub(super) schedules: BTreeMap<String, Schedule>,
    pub(super) channels: BTreeMap<String, Channel>,
    pub(super) escalation_policies: BTreeMap<String, EscalationPolicy>,
    route_names: BTreeMap<String, Pos>,
}

/// Decodes a parsed file (the loader guarantees a mapping at the top).
pub(super) fn decode(root: &Node) -> Result<Config, Vec<ConfigError>> {
    let mut d = Decoder {
        p: Problems::default(),
        declared: BTreeMap::new(),
        defaults: Defaults::default(),
        people: BTreeMap::new(),
        time_windows: BTreeMap::new(),
        schedules: BTreeMap::new(),
        channels: BTreeMap::new(),
        escalation_policies: BTreeMap::new(),
        route_names: BTreeMap::new(),
    };
    let Some(top) = Fields::new(&mut d.p, root, TOP_KEYS) else {
        return Err(d.p.into_sorted());
    };
    for section in [
        Section::Channels,
        Section::People,
        Section::TimeWindows,
        Section::EscalationPolicies,
        Section::Schedules,
    ] {
        let names = match top.get(section.key()) {
            Some(Node::Mapping(m)) => m.keys().map(|k| k.as_str()).collect(),
            _ => BTreeSet::new(),
        };
        d.declared.insert(section.key(), names);
    }

    if let Some(node) = top.get("defaults") {
        d.decode_defaults(node);
    }
    if let Some(node) = top.get("people") {
        d.decode_people(node);
    }
    if let Some(node) = top.get("time_windows") {
        d.decode_time_windows(node);
    }
    if let Some(node) = top.get("schedules") {
        d.decode_schedules(node);
    }
    if let Some(node) = top.get("channels") {
        d.decode_channels(node);
    }
    if let Some(node) = top.get("escalation_policies") {
        d.decode_policies(node);
    }
    let services = top
        .get("services")
        .map(|n| d.decode_services(n))
        .unwrap_or_default();
    let severity_rules = top
        .get("severity_rules")
        .map(|n| d.decode_severity_rules(n))
        .unwrap_or_default();
    let route = top
        .required(&mut d.p, "route")
        .map(|n| d.decode_route(n, "root", 0))
        .unwrap_or_default();
    let noise = d.decode_noise(&top);

    if !d.p.is_empty() {
        return Err(d.p.into_sorted());
    }
    Ok(Config {
        defaults: d.defaults,
        services,
        severity_rules,
        channels: d.channels,
        people: d.people,
        time_windows: d.time_windows,
        escalation_policies: d.escalation_policies,
        schedules: d.schedules,
        route,
        noise,
    })
}

impl<'a> Decoder<'a> {
    /// A reference to a name in `section`: the name if it is declared there, else a problem at the node.
    pub(super) fn reference(&mut self, node: &'a Node, section: Section) -> Option<&'a str> {
        let noun = section.noun();
        let article = if noun.starts_with('e') { "an" } else { "a" };
        let name = as_name(&mut self.p, node, &format!("{article} {noun} name"))?;
        let declared = self
            .declared
            .get(section.key())
            .is_some_and(|names| names.contains(name));
        if declared {
            Some(name)
        } else {
            self.p.at(
                pos(node),
                format!(
                    "unknown {noun} `{name}` (not defined under `{}`)",
                    section.key()
                ),
            );
            None
        }
    }

    /// A list of references into `section`.
    fn references(&mut self, node: &'a Node, section: Section) -> Vec<String> {
        let Some(list) = as_list(&mut self.p, node) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|item| self.reference(item, section).map(str::to_string))
            .collect()
    }

    fn decode_defaults(&mut self, node: &'a Node) {
        let Some(f) = Fields::new(
            &mut self.p,
            node,
            &[
                "severity",
                "timezone",
                "insufficient_data",
                "severity_tags",
                "health_reminder",
                "multi_time_series",
                "runbook_hosts",
            ],
        ) else {
            return;
        };
        for item in items(&mut self.p, f.get("runbook_hosts")) {
            if let Some(host) = as_str(&mut self.p, item) {
                let bare = host.strip_prefix("*.").unwrap_or(host);
                if bare.is_empty()
                    || !bare
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                {
                    self.p.at(
                        pos(item),
                        "a runbook host is a host name (`wiki.example.com`) or `*.example.com`",
                    );
                } else {
                    self.defaults.runbook_hosts.push(host.to_string());
                }
            }
        }
        if let Some(v) = f
            .get("severity")
            .and_then(|n| parsed(&mut self.p, n, parse_severity))
        {
            self.defaults.severity = v;
        }
        if let Some(v) = f
            .get("timezone")
            .and_then(|n| parsed(&mut self.p, n, parse_tz))
        {
            self.defaults.timezone = v;
        }
        if let Some(v) = f.get("insufficient_data").and_then(|n| {
            parsed(&mut self.p, n, |s| match s {
                "ignore" => Ok(InsufficientData::Ignore),
                "notify" => Ok(InsufficientData::Notify),
                "resolve" => Ok(InsufficientData::Resolve),
                other => Err(format!(
                    "unknown insufficient_data `{other}` (expected ignore, notify or resolve)"
                )),
            })
        }) {
            self.defaults.insufficient_data = v;
        }
        if let Some(v) = f
            .get("severity_tags")
            .and_then(|n| parsed(&mut self.p, n, parse_bool))
        {
            self.defaults.severity_tags = v;
        }
        if let Some(v) = f
            .get("health_reminder")
            .and_then(|n| parsed(&mut self.p, n, duration_of))
        {
            self.defaults.health_reminder = (!v.is_zero()).then_some(v);
        }
        if let Some(v) = f.get("multi_time_series").and_then(|n| {
            parsed(&mut self.p, n, |s| match s {
                "contributors" => Ok(MultiTimeSeries::Contributors),
                "parent" => Ok(MultiTimeSeries::Parent),
                "both" => Ok(MultiTimeSeries::Both),
                other => Err(format!(
                    "unknown multi_time_series `{other}` (expected contributors, parent or both)"
                )),
            })
        }) {
            self.defaults.multi_time_series = v;
        }
    }

    fn decode_people(&mut self, node: &'a Node) {
        for (name, body) in entries(&mut self.p, node) {
            let Some(f) = Fields::new(&mut self.p, body, &["email", "phone", "slack", "timezone"])
            else {
                continue;
            };
            let person = Person {
                name: name.to_string(),
                email: f
                    .get("email")
                    .and_then(|n| parsed(&mut self.p, n, check_email)),
                phone: f
                    .get("phone")
                    .and_then(|n| parsed(&mut self.p, n, check_phone)),
                slack: f
                    .get("slack")
                    .and_then(|n| parsed(&mut self.p, n, check_slack_member)),
                timezone: f
                    .get("timezone")
                    .and_then(|n| parsed(&mut self.p, n, parse_tz)),
            };
            self.people.insert(name.to_string(), person);
        }
    }

    fn decode_time_windows(&mut self, node: &'a Node) {
        for (name, body) in entries(&mut self.p, node) {
            let Some(f) = Fields::new(&mut self.p, body, &["timezone", "weekdays", "times"]) else {
                continue;
            };
            let timezone = f.get("timezone").map_or(Some(self.defaults.timezone), |n| {
                parsed(&mut self.p, n, parse_tz)
            });
            let mut weekdays = Vec::new();
            for item in items(&mut self.p, f.get("weekdays")) {
                for day in parsed(&mut self.p, item, parse_weekdays).unwrap_or_default() {
                    if !weekdays.contains(&day) {
                        weekdays.push(day);
                    }
                }
            }
            let times = items(&mut self.p, f.get("times"))
                .iter()
                .filter_map(|item| parsed(&mut self.p, item, parse_time_range))
                .collect();
            if let Some(timezone) = timezone {
                self.time_windows.insert(
                    name.to_string(),
                    TimeWindow {
                        name: name.to_string(),
                        timezone,
                        weekdays,
                        times,
                    },
                );
            }
        }
    }

    fn decode_schedules(&mut self, node: &'a Node) {
        for (name, body) in entries(&mut self.p, node) {
            let Some(f) = Fields::new(&mut self.p, body, &["timezone", "layers", "overrides"])
            else {
                continue;
            };
            let timezone = f.get("timezone").map_or(Some(self.defaults.timezone), |n| {
                parsed(&mut self.p, n, parse_tz)
            });
            let mut layers = Vec::new();
            if let Some(list) = f
                .required(&mut self.p, "layers")
                .and_then(|n| as_list(&mut self.p, n))
            {
                if list.is_empty() {
                    self.p.at(
                        pos(f.get("layers").unwrap_or(body)),
                        "a schedule needs at least one layer",
                    );
                }
                layers = list.iter().filter_map(|l| self.decode_layer(l)).collect();
            }
            let overrides = items(&mut self.p, f.get("overrides"))
                .iter()
                .filter_map(|o| self.decode_override(o))
                .collect();
            if let Some(timezone) = timezone {
                self.schedules.insert(
                    name.to_string(),
                    Schedule {
                        name: name.to_string(),
                        timezone,
                        layers,
                        overrides,
                    },
                );
            }
        }
    }

    fn decode_layer(&mut self, node: &'a Node) -> Option<Layer> {
        let f = Fields::new(
            &mut self.p,
            node,
            &["rotation", "start", "people", "restrictions"],
        )?;
        let rotation = f.required(&mut self.p, "rotation").and_then(|n| {
            parsed(&mut self.p, n, |s| match s {
                "daily" => Ok(Rotation::Daily),
                "weekly" => Ok(Rotation::Weekly),
                other => match parse_duration(other) {
                    Some(d) if !d.is_zero() => Ok(Rotation::Custom(d)),
                    Some(_) => Err("a rotation cannot be zero long".into()),
                    None => Err(format!(
                        "invalid rotation `{other}` (expected daily, weekly or a duration like 36h)"
                    )),
                },
            })
        });
        let start = f
            .required(&mut self.p, "start")
            .and_then(|n| parsed(&mut self.p, n, parse_local_datetime));
        let people_node = f.required(&mut self.p, "people");
        let people = people_node.map(|n| self.references(n, Section::People));
        if let (Some(n), Some(list)) = (people_node, &people) {
            if list.is_empty() && matches!(n, Node::Sequence(s) if s.is_empty()) {
                self.p.at(pos(n), "a layer needs at least one person");
            }
        }
        let restrictions = f
            .get("restrictions")
            .map(|n| self.references(n, Section::TimeWindows))
            .unwrap_or_default();
        Some(Layer {
            rotation: rotation?,
            start: start?,
            people: people?,
            restrictions,
        })
    }

    fn decode_override(&mut self, node: &'a Node) -> Option<Override> {
        let f = Fields::new(&mut self.p, node, &["person", "start", "end"])?;
        let person = f
            .required(&mut self.p, "person")
            .and_then(|n| self.reference(n, Section::People));
        let start = f
            .required(&mut self.p, "start")
            .and_then(|n| parsed(&mut self.p, n, parse_instant));
        let end_node = f.required(&mut self.p, "end");
        let end = end_node.and_then(|n| parsed(&mut self.p, n, parse_instant));
        if let (Some(s), Some(e), Some(n)) = (start, end, end_node) {
            if e <= s {
                self.p
                    .at(pos(n), "an override's `end` must be after its `start`");
                return None;
            }
        }
        Some(Override {
            person: person?.to_string(),
            start: start?,
            end: end?,
        })
    }

    fn decode_policies(&mut self, node: &'a Node) {
        for (name, body) in entries(&mut self.p, node) {
            let Some(f) = Fields::new(&mut self.p, body, &["levels", "repeat", "ack_timeout"])
            else {
                continue;
            };
            let repeat = f.get("repeat").map_or(Some(0), |n| {
                parsed(&mut self.p, n, |s| parse_count(s, "repeat"))
            });
            let ack_timeout = match f.get("ack_timeout") {
                None => Some(None),
                Some(n) => parsed(&mut self.p, n, duration_of).map(Some),
            };
            let mut levels = Vec::new();
            if let Some(list) = f
                .required(&mut self.p, "levels")
                .and_then(|n| as_list(&mut self.p, n))
            {
                if list.is_empty() {
                    self.p.at(
                        pos(f.get("levels").unwrap_or(body)),
                        "an escalation policy needs at least one level",
                    );
                }
                levels = list.iter().filter_map(|l| self.decode_level(l)).collect();
            }
            if let (Some(repeat), Some(ack_timeout)) = (repeat, ack_timeout) {
                self.escalation_policies.insert(
                    name.to_string(),
                    EscalationPolicy {
                        name: name.to_string(),
                        levels,
                        repeat,
                        ack_timeout,
                    },
                );
            }
        }
    }

    fn decode_level(&mut self, node: &'a Node) -> Option<EscalationLevel> {
        let f = Fields::new(&mut self.p, node, &["delay", "targets", "channels", "mode"])?;
        let delay = f.get("delay").map_or(Some(std::time::Duration::ZERO), |n| {
            parsed(&mut self.p, n, duration_of)
        });
        let mode = f.get("mode").map_or(Some(LevelMode::All), |n| {
            parsed(&mut self.p, n, |s| match s {
                "all" => Ok(LevelMode::All),
                "round_robin" => Ok(LevelMode::RoundRobin),
                other => Err(format!(
                    "unknown mode `{other}` (expected all or round_robin)"
                )),
            })
        });
        let channels = f
            .get("channels")
            .map(|n| self.level_channels(n))
            .unwrap_or_default();
        let mut targets = Vec::new();
        if let Some(list) = f
            .required(&mut self.p, "targets")
            .and_then(|n| as_list(&mut self.p, n))
        {
            if list.is_empty() {
                self.p.at(
                    pos(f.get("targets").unwrap_or(node)),
                    "a level needs at least one target",
                );
            }
            for item in list.iter() {
                if let Some(t) = self.decode_target(item, &channels) {
                    targets.push(t);
                }
            }
        }
        let reaches_people = list_has_person_or_schedule(f.get("targets"));
        if reaches_people && !f.has("channels") {
            self.p.at(
                f.pos,
                "a level with person or schedule targets needs `channels` to reach them",
            );
        }
        Some(EscalationLevel {
            delay: delay?,
            targets,
            channels,
            mode: mode?,
        })
    }

    fn decode_target(&mut self, node: &'a Node, channels: &[String]) -> Option<EscalationTarget> {
        let f = Fields::new(&mut self.p, node, &["person", "schedule", "channel", "to"])?;
        let given: Vec<&str> = ["person", "schedule", "channel"]
            .into_iter()
            .filter(|k| f.has(k))
            .collect();
        if given.len() != 1 {
            self.p.at(
                f.pos,
                "a target is exactly one of {person: NAME}, {schedule: NAME} or {channel: NAME}",
            );
            return None;
        }
        if f.has("to") && given[0] != "channel" {
            self.p.at(
                f.key_pos("to"),
                "`to` goes with a {channel: NAME} target only",
            );
        }
        match given[0] {
            "person" => {
                let n = f.required(&mut self.p, "person")?;
                let name = self.reference(n, Section::People)?;
                self.check_person_reachable(n, name, channels);
                Some(EscalationTarget::Person(name.to_string()))
            }
            "schedule" => {
                let n = f.required(&mut self.p, "schedule")?;
                let name = self.reference(n, Section::Schedules)?;
                self.check_schedule_reachable(n, name, channels);
                Some(EscalationTarget::Schedule(name.to_string()))
            }
            _ => {
                let (channel, to) = self.channel_with_recipients(&f)?;
                Some(EscalationTarget::Channel { channel, to })
            }
        }
    }

    fn decode_services(&mut self, node: &'a Node) -> Vec<Service> {
        let Some(list) = as_list(&mut self.p, node) else {
            return Vec::new();
        };
        let mut seen: BTreeMap<&str, Pos> = BTreeMap::new();
        let mut services = Vec::new();
        for item in list.iter() {
            let Some(f) = Fields::new(
                &mut self.p,
                item,
                &["name", "team", "tier", "match", "aws_health"],
            ) else {
                continue;
            };
            let name_node = f.required(&mut self.p, "name");
            let name = name_node.and_then(|n| as_name(&mut self.p, n, "a service name"));
            if let (Some(name), Some(n)) = (name, name_node) {
                if let Some(first) = seen.insert(name, pos(n)) {
                    self.p.at(
                        pos(n),
                        format!(
                            "duplicate service `{name}` (first at {}:{})",
                            first.line, first.col
                        ),
                    );
                }
            }
            let team = f
                .get("team")
                .and_then(|n| as_name(&mut self.p, n, "a team name"));
            let tier = f
                .get("tier")
                .map_or(Some(3), |n| parsed(&mut self.p, n, parse_tier));
            let matchers = self.matchers(f.get("match"));
            let aws_health = f.get("aws_health").map(|n| self.decode_aws_health(n));
            if let (Some(name), Some(tier), Some(matchers)) = (name, tier, matchers) {
                services.push(Service {
                    name: name.to_string(),
                    team: team.map(str::to_string),
                    tier,
                    matchers,
                    aws_health: aws_health.flatten(),
                });
            }
        }
        services
    }

    /// `aws_health: {services: [EC2, RDS], regions: [eu-west-1]}`.
    fn decode_aws_health(&mut self, node: &'a Node) -> Option<AwsHealthDependency> {
        let f = Fields::new(&mut self.p, node, &["services", "regions"])?;
        // Both lists are checked before giving up, so one run of check-config reports every problem.
        let services = f
            .required(&mut self.p, "services")
            .and_then(|n| self.word_list(n, parse_health_service));
        let regions = match f.get("regions") {
            Some(n) => self.word_list(n, parse_region_code),
            None => Some(Vec::new()),
        };
        let services = services?;
        if services.is_empty() {
            self.p
                .at(pos(node), "aws_health.services is empty".to_string());
            return None;
        }
        Some(AwsHealthDependency {
            services,
            regions: regions?,
        })
    }

    /// A list of strings, each checked by `check`; `None` (with the problems recorded) if any fails.
    fn word_list(
        &mut self,
        node: &'a Node,
        check: fn(&str) -> Result<String, String>,
    ) -> Option<Vec<String>> {
        let list = as_list(&mut self.p, node)?;
        let mut out = Vec::new();
        let mut ok = true;
        for item in list.iter() {
            match parsed(&mut self.p, item, check) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn decode_severity_rules(&mut self, node: &'a Node) -> Vec<SeverityRule> {
        let Some(list) = as_list(&mut self.p, node) else {
            return Vec::new();
        };
        let mut rules = Vec::new();
        for item in list.iter() {
            let Some(f) = Fields::new(&mut self.p, item, &["severity", "match"]) else {
                continue;
            };
            let severity = f
                .required(&mut self.p, "severity")
                .and_then(|n| parsed(&mut self.p, n, parse_severity));
            let matchers = f
                .required(&mut self.p, "match")
                .and_then(|n| self.matchers(Some(n)));
            if let (Some(severity), Some(matchers)) = (severity, matchers) {
                rules.push(SeverityRule { severity, matchers });
            }
        }
        rules
    }

    /// A `match` list; `None` when any matcher is broken (each one reported).
    fn matchers(&mut self, node: Option<&'a Node>) -> Option<Vec<Matcher>> {
        let Some(node) = node else {
            return Some(Vec::new());
        };
        let list = as_list(&mut self.p, node)?;
        let mut ok = true;
        let mut out = Vec::new();
        for item in list.iter() {
            match parsed(&mut self.p, item, parse_matcher) {
                Some(m) => out.push(m),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn decode_route(&mut self, node: &'a Node, path: &str, depth: usize) -> Route {
        const KEYS: &[&str] = &[
            "name",
            "match",
            "notify",
            "escalation",
            "continue",
            "active_during",
            "muted_during",
            "routes",
            "group_by",
            "group_wait",
            "group_interval",
            "repeat_interval",
            "group_bypass",
        ];
        let at = pos(node);
        let Some(f) = Fields::new(&mut self.p, node, KEYS) else {
            return Route::default();
        };
        let name = match f.get("name") {
            Some(n) => as_name(&mut self.p, n, "a route name")
                .unwrap_or(path)
                .to_string(),
            None => path.to_string(),
        };
        let name_pos = f.get("name").map_or(at, pos);
        if let Some(first) = self.route_names.insert(name.clone(), name_pos) {
            self.p.at(
                name_pos,
                format!(
                    "duplicate route name `{name}` (first at {}:{})",
                    first.line, first.col
                ),
            );
        }
        if depth == 0 && f.has("match") {
            self.p.at(
                f.key_pos("match"),
                "the root route matches every alert and cannot have `match`",
            );
        }
        let matchers = self.matchers(f.get("match")).unwrap_or_default();
        let notify = items(&mut self.p, f.get("notify"))
            .iter()
            .filter_map(|item| self.decode_notify(item))
            .collect();
        let escalation = f
            .get("escalation")
            .and_then(|n| self.reference(n, Section::EscalationPolicies))
            .map(str::to_string);
        let continue_matching = f
            .get("continue")
            .and_then(|n| parsed(&mut self.p, n, parse_bool))
            .unwrap_or(false);
        let active_during = f
            .get("active_during")
            .map(|n| self.references(n, Section::TimeWindows))
            .unwrap_or_default();
        let muted_during = f
            .get("muted_during")
            .map(|n| self.references(n, Section::TimeWindows))
            .unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(list) = f.get("routes").and_then(|n| as_list(&mut self.p, n)) {
            if depth + 1 >= MAX_ROUTE_DEPTH && !list.is_empty() {
                self.p.at(
                    f.key_pos("routes"),
                    format!("routes nest deeper than {MAX_ROUTE_DEPTH} levels"),
                );
            } else {
                for (i, child) in list.iter().enumerate() {
                    routes.push(self.decode_route(child, &format!("{path}/{i}"), depth + 1));
                }
            }
        }
        let grouping = self.decode_grouping(&f);
        Route {
            grouping,
            name,
            pos: at,
            matchers,
            continue_matching,
            active_during,
            muted_during,
            notify,
            escalation,
            routes,
            index: None,
        }
    }

    fn decode_notify(&mut self, node: &'a Node) -> Option<Notify> {
        let f = Fields::new(&mut self.p, node, &["channel", "to"])?;
        let (channel, to) = self.channel_with_recipients(&f)?;
        Some(Notify { channel, to })
    }

    /// A route's grouping keys: `None` when it sets none (it inherits its parent's).
    fn decode_grouping(&mut self, f: &Fields<'a>) -> Option<Grouping> {
        const KEYS: [&str; 5] = [
            "group_by",
            "group_wait",
            "group_interval",
            "repeat_interval",
            "group_bypass",
        ];
        if !KEYS.iter().any(|k| f.get(k).is_some()) {
            return None;
        }
        let mut group_by = Vec::new();
        for item in items(&mut self.p, f.get("group_by")) {
            if let Some(name) = as_name(&mut self.p, item, "a field or label name") {
                if group_by.iter().any(|g| g == name) {
                    self.p
                        .at(pos(item), format!("`{name}` is listed twice in group_by"));
                } else {
                    group_by.push(name.to_string());
                }
            }
        }
        let mut duration = |key: &str, default: u64| {
            f.get(key)
                .map_or(Some(std::time::Duration::from_secs(default)), |n| {
                    parsed(&mut self.p, n, duration_of)
                })
        };
        let group_wait = duration("group_wait", 30);
        let group_interval = duration("group_interval", 300);
        let repeat_interval = duration("repeat_interval", 4 * 3600);
        if let Some(n) = f.get("group_interval") {
            if group_interval.is_some_and(|d| d.is_zero()) {
                self.p.at(pos(n), "group_interval cannot be zero");
            }
        }
        if let Some(n) = f.get("repeat_interval") {
            if repeat_interval.is_some_and(|d| d.is_zero()) {
                self.p.at(pos(n), "repeat_interval cannot be zero");
            }
        }
        let bypass = items(&mut self.p, f.get("group_bypass"))
            .iter()
            .filter_map(|n| parsed(&mut self.p, n, parse_severity))
            .collect();
        Some(Grouping {
            fields: group_by.iter().map(|g| Field::parse(g)).collect(),
            group_by,
            group_wait: group_wait?,
            group_interval: group_interval?,
            repeat_interval: repeat_interval?,
            bypass,
        })
    }

    /// The noise-control sections: `maintenance_windows`, `inhibit_rules`, `flap_damping`,
    /// `silence_reminder`, `silences`.
    fn decode_noise(&mut self, top: &Fields<'a>) -> NoiseConfig {
        let mut noise = NoiseConfig::default();
        if let Some(node) = top.get("maintenance_windows") {
            for (name, body) in entries(&mut self.p, node) {
                if let Some(w) = self.decode_maintenance(name, body) {
                    noise.maintenance_windows.push(w);
                }
            }
        }
        if let Some(node) = top.get("inhibit_rules") {
            let Some(list) = as_list(&mut self.p, node) else {
                return noise;
            };
            let mut names: BTreeMap<String, Pos> = BTreeMap::new();
            for (i, item) in list.iter().enumerate() {
                if let Some(rule) = self.decode_inhibit(item, i) {
                    if let Some(first) = names.insert(rule.name.clone(), pos(item)) {
                        self.p.at(
                            pos(item),
                            format!(
                                "duplicate inhibit rule name `{}` (first at {}:{})",
                                rule.name, first.line, first.col
                            ),
                        );
                    }
                    noise.inhibit_rules.push(rule);
                }
            }
        }
        if let Some(node) = top.get("flap_damping") {
            noise.flap_damping = self.decode_flap(node);
        }
        if let Some(node) = top.get("silence_reminder") {
            noise.silence_reminder = self.decode_reminder(node);
        }
        if let Some(node) = top.get("silences") {
            if let Some(limits) = self.decode_silence_limits(node) {
                noise.silences = limits;
            }
        }
        noise
    }

    /// `silences: {max_duration, max_active}`, each optional.
    fn decode_silence_limits(&mut self, node: &'a Node) -> Option<SilenceLimits> {
        let f = Fields::new(&mut self.p, node, &["max_duration", "max_active"])?;
        let defaults = SilenceLimits::default();
        let max_duration = match f.get("max_duration") {
            None => Some(defaults.max_duration),
            Some(n) => parsed(&mut self.p, n, nonzero_duration),
        };
        let max_active = match f.get("max_active") {
            None => Some(defaults.max_active),
            Some(n) => parsed(&mut self.p, n, |s| match s.parse::<usize>() {
                Ok(v) if (1..=SilenceLimits::MAX_ACTIVE_LIMIT).contains(&v) => Ok(v),
                _ => Err(format!(
                    "invalid max_active `{s}` (expected a whole number from 1 to {})",
                    SilenceLimits::MAX_ACTIVE_LIMIT
                )),
            }),
        };
        Some(SilenceLimits {
            max_duration: max_duration?,
            max_active: max_active?,
        })
    }

    fn decode_maintenance(&mut self, name: &str, body: &'a Node) -> Option<MaintenanceWindow> {
        let f = Fields::new(
            &mut self.p,
            body,
            &[
                "match", "start", "end", "timezone", "weekdays", "times", "cron", "duration",
            ],
        )?;
        let matchers = self.matchers(f.get("match"));
        let once = f.has("start") || f.has("end");
        let recurring = f.has("weekdays") || f.has("times");
        let cron = f.has("cron") || f.has("duration");
        let forms = [once, recurring, cron].iter().filter(|b| **b).count();
        if forms != 1 {
            self.p.at(
                f.pos,
                format!(
                    "maintenance window `{name}` needs exactly one of: `start` and `end`; `weekdays` and/or `times`; `cron` and `duration`"
                ),
            );
            return None;
        }
        let timezone = f.get("timezone").map_or(Some(self.defaults.timezone), |n| {
            parsed(&mut self.p, n, parse_tz)
        });
        let schedule = if once {
            if f.has("timezone") {
                self.p.at(
                    f.key_pos("timezone"),
                    "a one-off window's `start` and `end` are instants with their own offset; `timezone` does not apply",
                );
            }
            let start = f
                .required(&mut self.p, "start")
                .and_then(|n| parsed(&mut self.p, n, parse_instant));
            let end_node = f.required(&mut self.p, "end");
            let end = end_node.and_then(|n| parsed(&mut self.p, n, parse_instant));
            let (start, end, end_node) = (start?, end?, end_node?);
            if end <= start {
                self.p
                    .at(pos(end_node), "a window's `end` must be after its `start`");
                return None;
            }
            WindowSchedule::Once { start, end }
        } else if recurring {
            let mut weekdays = Vec::new();
            for item in items(&mut self.p, f.get("weekdays")) {
                for day in parsed(&mut self.p, item, parse_weekdays).unwrap_or_default() {
                    if !weekdays.contains(&day) {
                        weekdays.push(day);
                    }
                }
            }
            let times = items(&mut self.p, f.get("times"))
                .iter()
                .filter_map(|item| parsed(&mut self.p, item, parse_time_range))
                .collect();
            WindowSchedule::Recurring(TimeWindow {
                name: name.to_string(),
                timezone: timezone?,
                weekdays,
                times,
            })
        } else {
            let cron = f
                .required(&mut self.p, "cron")
                .and_then(|n| parsed(&mut self.p, n, Cron::parse));
            let duration_node = f.required(&mut self.p, "duration");
            let duration = duration_node.and_then(|n| parsed(&mut self.p, n, duration_of));
            if let (Some(d), Some(n)) = (duration, duration_node) {
                if d.is_zero() || d > super::cron::MAX_CRON_DURATION {
                    self.p.at(
                        pos(n),
                        "a cron window's `duration` must be more than 0 and at most 7d",
                    );
                    return None;
                }
            }
            WindowSchedule::Cron {
                cron: cron?,
                timezone: timezone?,
                duration: duration?,
            }
        };
        Some(MaintenanceWindow {
            name: name.to_string(),
            matchers: matchers?,
            schedule,
        })
    }

    fn decode_inhibit(&mut self, node: &'a Node, index: usize) -> Option<InhibitRule> {
        let f = Fields::new(
            &mut self.p,
            node,
            &["name", "source_match", "target_match", "equal"],
        )?;
        let name = match f.get("name") {
            Some(n) => as_name(&mut self.p, n, "a rule name")?.to_string(),
            None => format!("inhibit/{index}"),
        };
        let non_empty = |key: &str, this: &mut Self| -> Option<Vec<Matcher>> {
            let n = f.required(&mut this.p, key)?;
            let m = this.matchers(Some(n))?;
            if m.is_empty() {
                this.p.at(
                    pos(n),
                    format!(
                        "`{key}` needs at least one matcher (an empty list would match every alert)"
                    ),
                );
                return None;
            }
            Some(m)
        };
        let source = non_empty("source_match", self);
        let target = non_empty("target_match", self);
        let mut equal = Vec::new();
        for item in items(&mut self.p, f.get("equal")) {
            if let Some(name) = as_name(&mut self.p, item, "a field or label name") {
                equal.push(name.to_string());
            }
        }
        Some(InhibitRule {
            name,
            source: source?,
            target: target?,
            equal_fields: equal.iter().map(|e| Field::parse(e)).collect(),
            equal,
        })
    }

    fn decode_flap(&mut self, node: &'a Node) -> Option<FlapDamping> {
        let f = Fields::new(
            &mut self.p,
            node,
            &["max_changes", "window", "settle", "match"],
        )?;
        let max_changes_node = f.required(&mut self.p, "max_changes");
        let max_changes = max_changes_node.and_then(|n| {
            parsed(&mut self.p, n, |s| match s.parse::<u32>() {
                Ok(v) if v >= 2 => Ok(v),
                _ => Err(format!(
                    "invalid max_changes `{s}` (expected a whole number, 2 or more)"
                )),
            })
        });
        let window_node = f.required(&mut self.p, "window");
        let window = window_node.and_then(|n| parsed(&mut self.p, n, nonzero_duration));
        let settle = match f.get("settle") {
            None => window,
            Some(n) => parsed(&mut self.p, n, nonzero_duration),
        };
        let matchers = self.matchers(f.get("match"));
        Some(FlapDamping {
            max_changes: max_changes?,
            window: window?,
            settle: settle?,
            matchers: matchers?,
        })
    }

    fn decode_reminder(&mut self, node: &'a Node) -> Option<SilenceReminder> {
        let f = Fields::new(&mut self.p, node, &["before", "notify"])?;
        let before = f
            .required(&mut self.p, "before")
            .and_then(|n| parsed(&mut self.p, n, nonzero_duration));
        let notify_node = f.required(&mut self.p, "notify");
        let notify: Vec<Notify> = items(&mut self.p, notify_node)
            .iter()
            .filter_map(|item| self.decode_notify(item))
            .collect();
        if let Some(n) = notify_node {
            if matches!(n, Node::Sequence(s) if s.is_empty()) {
                self.p.at(
                    pos(n),
                    "a silence reminder needs at least one `notify` entry",
                );
            }
        }
        Some(SilenceReminder {
            before: before?,
            notify,
        })
    }
}

/// Whether a `targets` list names a person or a schedule (so the level needs `channels`).
fn list_has_person_or_schedule(node: Option<&Node>) -> bool {
    let Some(Node::Sequence(list)) = node else {
        return false;
    };
    list.iter().any(|t| {
        t.as_mapping()
            .is_some_and(|m| m.get_node("person").is_some() || m.get_node("schedule").is_some())
    })
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::ALL
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| {
            format!("unknown severity `{s}` (expected critical, high, medium, low or info)")
        })
}

pub(super) fn parse_tz(s: &str) -> Result<Tz, String> {
    Tz::from_str(s)
        .map_err(|_| format!("unknown time zone `{s}` (expected an IANA name like Europe/London)"))
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("expected true or false, found `{other}`")),
    }
}

fn parse_tier(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(t @ 1..=4) => Ok(t),
        _ => Err(format!("invalid tier `{s}` (expected 1, 2, 3 or 4)")),
    }
}

fn parse_count(s: &str, key: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .map_err(|_| format!("invalid {key} `{s}` (expected a whole number, 0 or more)"))
}

fn nonzero_duration(s: &str) -> Result<std::time::Duration, String> {
    match duration_of(s)? {
        d if d.is_zero() => Err(format!("invalid duration `{s}` (must be more than 0)")),
        d => Ok(d),
    }
}

fn duration_of(s: &str) -> Result<std::time::Duration, String> {
    parse_duration(s)
        .ok_or_else(|| format!("invalid duration `{s}` (expected like 30s, 15m, 1h30m or 2d)"))
}

fn parse_local_datetime(s: &str) -> Result<NaiveDateTime, String> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| {
            format!(
                "invalid local date-time `{s}` (expected like 2026-11-02T09:00, without a zone)"
            )
        })
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("invalid instant `{s}` (expected RFC 3339 like 2026-12-24T00:00:00Z)"))
}

/// An AWS Health service code (`EC2`, `RDS`, `CLOUDFRONT`), kept upper case as Health writes it.
fn parse_health_service(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(s.to_ascii_uppercase())
    } else {
        Err(format!(
            "invalid AWS Health service `{s}` (expected a service code like EC2 or RDS)"
        ))
    }
}

/// A region code (`eu-west-1`), not a display name.
fn parse_region_code(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid region `{s}` (expected a code like eu-west-1)"
        ))
    }
}

fn check_email(s: &str) -> Result<String, String> {
    if super::recipients::is_email(s) {
        Ok(s.to_string())
    } else {
        Err(format!("invalid email address `{s}`"))
    }
}

fn check_phone(s: &str) -> Result<String, String> {
    if super::recipients::is_e164(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid phone number `{s}` (expected E.164: + and 8 to 15 digits)"
        ))
    }
}

fn check_slack_member(s: &str) -> Result<String, String> {
    if super::recipients::is_slack_member(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid slack contact `{s}` (expected a member id like U024BE7LH or an @handle)"
        ))
    }
}
