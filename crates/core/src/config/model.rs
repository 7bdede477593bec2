//! The routing configuration as the rest of tocsin sees it: validated, with every reference resolved to a
//! name that exists. It is built only by [`super::load`] from YAML; see `docs/config.md` for the format.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use regex::Regex;

use super::literal::Literal;
use crate::model::Severity;

/// A place in the config file, 1-based, for messages and `check-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Defaults applied where nothing more specific says otherwise.
    pub defaults: Defaults,
    /// The service catalogue: which alerts belong to which service, owner team and tier.
    pub services: Vec<Service>,
    /// Severity classification rules, first match wins.
    pub severity_rules: Vec<SeverityRule>,
    /// Delivery channels by name.
    pub channels: BTreeMap<String, Channel>,
    /// People by name, with their contact methods.
    pub people: BTreeMap<String, Person>,
    /// Named time windows (business hours, nights, weekends) used by routes.
    pub time_windows: BTreeMap<String, TimeWindow>,
    /// Escalation policies by name.
    pub escalation_policies: BTreeMap<String, EscalationPolicy>,
    /// On-call schedules by name.
    pub schedules: BTreeMap<String, Schedule>,
    /// The root of the route tree; it matches every alert.
    pub route: Route,
    /// Noise control: maintenance windows, inhibition, flap damping, silence reminders.
    pub noise: NoiseConfig,
}

/// Noise control settings outside the route tree (grouping is per route: [`Route::grouping`]).
#[derive(Debug, Clone, Default)]
pub struct NoiseConfig {
    /// Maintenance windows, in file order; the first active one that matches suppresses an alert.
    pub maintenance_windows: Vec<MaintenanceWindow>,
    /// Inhibition rules, in file order.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Flap damping, if configured.
    pub flap_damping: Option<FlapDamping>,
    /// Who is reminded before a silence expires, and how long before.
    pub silence_reminder: Option<SilenceReminder>,
    /// The limits every silence made at run time is held to (`silences:`).
    pub silences: SilenceLimits,
}

/// The limits on silences (`silences: {max_duration, max_active}`): a forgotten silence ends and
/// pages again, and the silences the router reads for every alert stay few.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceLimits {
    /// The longest a silence may last, from its start to its end. Default 7 days.
    pub max_duration: Duration,
    /// The most silences active or pending (not yet ended) at once; a new one past it is refused.
    /// Default 100.
    pub max_active: usize,
}

impl SilenceLimits {
    /// The default `max_duration`: a week.
    pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
    /// The default `max_active`.
    pub const DEFAULT_MAX_ACTIVE: usize = 100;
    /// The highest `max_active` a config may set: the router reads the silences not yet ended for
    /// every alert, and this keeps that read to a page or two.
    pub const MAX_ACTIVE_LIMIT: usize = 1000;

    /// How many silences the router reads for an alert: twice `max_active`, room for creations that
    /// raced past the cap together (each checked the count before the others were stored).
    pub fn read_limit(&self) -> usize {
        self.max_active.saturating_mul(2)
    }
}

impl Default for SilenceLimits {
    fn default() -> Self {
        SilenceLimits {
            max_duration: Self::DEFAULT_MAX_DURATION,
            max_active: Self::DEFAULT_MAX_ACTIVE,
        }
    }
}

/// How a route batches its alerts into group notifications (Alertmanager's grouping).
#[derive(Debug, Clone)]
pub struct Grouping {
    /// The names the groups are keyed by, as written (`service`, `region`, `label.env`).
    pub group_by: Vec<String>,
    /// The same names as fields.
    pub fields: Vec<Field>,
    /// How long a new group waits for more alerts before its first notification. Default 30s.
    pub group_wait: Duration,
    /// How long a group that has notified waits before notifying about changes. Default 5m.
    pub group_interval: Duration,
    /// How long a group with nothing new waits before reminding that its alerts still fire. Default 4h.
    pub repeat_interval: Duration,
    /// Severities that do not wait: an alert of one of them flushes its group at once.
    pub bypass: Vec<Severity>,
}

/// When a maintenance window is open.
#[derive(Debug, Clone)]
pub enum WindowSchedule {
    /// Once, `[start, end)`.
    Once {
        /// Start (UTC).
        start: chrono::DateTime<chrono::Utc>,
        /// End (UTC), exclusive.
        end: chrono::DateTime<chrono::Utc>,
    },
    /// Every week, on these weekdays, between these times, in a zone.
    Recurring(TimeWindow),
    /// From each start of a cron expression (read in a zone), for a duration.
    Cron {
        /// The schedule of starts.
        cron: super::cron::Cron,
        /// The zone the expression is read in.
        timezone: Tz,
        /// How long each opening lasts.
        duration: Duration,
    },
}

/// A maintenance window: alerts it matches that open while it is open are recorded, not paged; those
/// still firing when it closes are paged then. Resolutions always go out.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    /// The window's name (the audit names it).
    pub name: String,
    /// Which alerts it holds; none matches every alert.
    pub matchers: Vec<Matcher>,
    /// When it is open.
    pub schedule: WindowSchedule,
}

/// An inhibition rule: while an alert matching `source` is live, alerts matching `target` with the same
/// values of the `equal` names are not paged (a composite or region-level alarm mutes its children).
#[derive(Debug, Clone)]
pub struct InhibitRule {
    /// The rule's name (the audit names it); default `inhibit/<index>`.
    pub name: String,
    /// The muting alerts.
    pub source: Vec<Matcher>,
    /// The muted alerts.
    pub target: Vec<Matcher>,
    /// Names whose values must be equal in source and target, as written.
    pub equal: Vec<String>,
    /// The same names as fields.
    pub equal_fields: Vec<Field>,
}

/// Flap damping: an alarm that changes state more than `max_changes` times within `window` pages once
/// as flapping, then nothing until it has not changed for `settle`, when it pages once more.
#[derive(Debug, Clone)]
pub struct FlapDamping {
    /// More changes than this within `window` is flapping.
    pub max_changes: u32,
    /// The window changes are counted in.
    pub window: Duration,
    /// How long without a change counts as settled. Default: `window`.
    pub settle: Duration,
    /// Which alerts are damped; none means every alert.
    pub matchers: Vec<Matcher>,
}

/// The reminder sent before a silence expires.
#[derive(Debug, Clone)]
pub struct SilenceReminder {
    /// How long before the end.
    pub before: Duration,
    /// Who is told.
    pub notify: Vec<Notify>,
}

/// Config-wide defaults.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// Severity of an alert no rule, tag or source classifies. Default `medium`.
    pub severity: Severity,
    /// Time zone for time windows that name none. Default `UTC`.
    pub timezone: Tz,
    /// What an `INSUFFICIENT_DATA` transition does. Default `ignore`.
    pub insufficient_data: InsufficientData,
    /// Whether a `[critical]`-style tag in the description sets the severity. Default `true`.
    pub severity_tags: bool,
    /// How long before an AWS Health scheduled change starts its reminder goes out to everyone told
    /// of it. Default 24 hours; `0s` sends none.
    pub health_reminder: Option<std::time::Duration>,
    /// Who pages for a multi-time-series alarm: its contributors (default, grouped by their parent
    /// alarm), the parent alarm's own transition, or both.
    pub multi_time_series: MultiTimeSeries,
    /// Hosts whose runbook links (an alert's `runbook_url`) become a button in messages: exact
    /// names, or `*.example.com` for any host under it. Default none: a runbook URL comes from the
    /// alarm, which anyone who may put an alarm may write, so it is a link only when the config
    /// trusts its host.
    pub runbook_hosts: Vec<String>,
}

/// Who pages for a multi-time-series alarm (a Metrics Insights query with `GROUP BY`), whose parent
/// alarm changes state as a whole and whose contributors (one per time series) change one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiTimeSeries {
    /// Each contributor is an alert and pages, grouped by the parent alarm on routes that do not
    /// group otherwise; the parent's own transition is recorded, not paged.
    Contributors,
    /// The parent's transition pages; contributors are recorded, not paged.
    Parent,
    /// Both page.
    Both,
}

impl Defaults {
    /// Whether `url` is an `https` URL on a host of [`Defaults::runbook_hosts`].
    pub fn runbook_allowed(&self, url: &str) -> bool {
        let Some(rest) = url.strip_prefix("https://") else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return false;
        }
        let host = authority
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        !host.is_empty()
            && self.runbook_hosts.iter().any(|allowed| {
                let allowed = allowed.to_ascii_lowercase();
                match allowed.strip_prefix("*.") {
                    Some(domain) => host.ends_with(&format!(".{domain}")),
                    None => host == allowed,
                }
            })
    }
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            severity: Severity::Medium,
            timezone: Tz::UTC,
            insufficient_data: InsufficientData::Ignore,
            severity_tags: true,
            health_reminder: Some(std::time::Duration::from_secs(24 * 3600)),
            multi_time_series: MultiTimeSeries::Contributors,
            runbook_hosts: Vec::new(),
        }
    }
}

/// What the router does with an `INSUFFICIENT_DATA` transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsufficientData {
    /// Record it and page nobody.
    Ignore,
    /// Treat it as firing: open an alert and page.
    Notify,
    /// Treat it as a recovery: resolve the open alert.
    Resolve,
}

/// One service of the catalogue.
#[derive(Debug, Clone)]
pub struct Service {
    /// Service name (labels the alert `service`).
    pub name: String,
    /// Owning team (labels the alert `team`).
    pub team: Option<String>,
    /// Business tier, 1 (most important) to 4. Default 3.
    pub tier: u8,
    /// An alert belongs to the first service all of whose matchers match.
    pub matchers: Vec<Matcher>,
    /// The AWS services it runs on, whose public AWS Health events show as its status on the status
    /// page (`crate::status`).
    pub aws_health: Option<AwsHealthDependency>,
}

/// The AWS services a catalogue service depends on, as AWS Health names them (`EC2`, `RDS`,
/// `LAMBDA`), and the regions it runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsHealthDependency {
    /// AWS Health service codes, upper case.
    pub services: Vec<String>,
    /// Regions the service runs in; empty means any. A `global` event (IAM, CloudFront, Route 53)
    /// always counts.
    pub regions: Vec<String>,
}

impl AwsHealthDependency {
    /// Whether a public Health event about `service` in `region` affects the dependent service.
    pub fn covers(&self, service: &str, region: Option<&str>) -> bool {
        self.services
            .iter()
            .any(|s| s.eq_ignore_ascii_case(service))
            && (self.regions.is_empty()
                || region.is_none_or(|r| r == "global" || self.regions.iter().any(|x| x == r)))
    }
}

/// A severity classification rule.
#[derive(Debug, Clone)]
pub struct SeverityRule {
    /// The severity given when every matcher matches.
    pub severity: Severity,
    /// The conditions.
    pub matchers: Vec<Matcher>,
}

/// An alert field a matcher can test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `severity`
    Severity,
    /// `source`
    Source,
    /// `transport`
    Transport,
    /// `account` (also `account_id`)
    Account,
    /// `region`
    Region,
    /// `alarm_name` (also `alertname`)
    AlarmName,
    /// `namespace`
    Namespace,
    /// `metric` (also `metric_name`)
    Metric,
    /// `state`
    State,
    /// `kind`
    Kind,
    /// `description`
    Description,
    /// `service` (from the service catalogue)
    Service,
    /// `team` (from the service catalogue)
    Team,
    /// `tier` (from the service catalogue)
    Tier,
    /// `priority` (`P1`..`P5`, from severity and tier)
    Priority,
    /// `dimension.NAME` (also `dimensions.NAME`): a metric dimension.
    Dimension(String),
    /// `label.NAME`, or any other bare name: a label of the alert.
    Label(String),
}

impl Field {
    /// Parses a matcher's left-hand side. Any name that is not a known field is a label name.
    pub fn parse(s: &str) -> Field {
        match s {
            "severity" => Field::Severity,
            "source" => Field::Source,
            "transport" => Field::Transport,
            "account" | "account_id" => Field::Account,
            "region" => Field::Region,
            "alarm_name" | "alertname" => Field::AlarmName,
            "namespace" => Field::Namespace,
            "metric" | "metric_name" => Field::Metric,
            "state" => Field::State,
            "kind" => Field::Kind,
            "description" => Field::Description,
            "service" => Field::Service,
            "team" => Field::Team,
            "tier" => Field::Tier,
            "priority" => Field::Priority,
            other => {
                if let Some(d) = other
                    .strip_prefix("dimension.")
                    .or_else(|| other.strip_prefix("dimensions."))
                {
                    Field::Dimension(d.to_string())
                } else {
                    Field::Label(other.strip_prefix("label.").unwrap_or(other).to_string())
                }
            }
        }
    }
}

/// A matcher operator, as in Alertmanager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`: equal.
    Eq,
    /// `!=`: not equal.
    Ne,
    /// `=~`: the whole value matches the regex.
    Re,
    /// `!~`: the whole value does not match the regex.
    NotRe,
}

/// One condition on one alert field: `field op value`. A missing field reads as the empty string, as in
/// Alertmanager, so `region != ""` means "has a region".
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The field tested.
    pub field: Field,
    /// The operator.
    pub op: MatchOp,
    /// The literal value, or the regex source for `=~` and `!~`.
    pub value: String,
    /// The compiled regex, anchored at both ends, for `=~` and `!~`.
    pub regex: Option<Regex>,
    /// A string test equivalent to the regex, when it is a literal, prefix, suffix, substring or list.
    pub literal: Option<Literal>,
}

impl Matcher {
    /// Builds a matcher, compiling (and anchoring) the regex for `=~`/`!~`.
    pub fn new(field: Field, op: MatchOp, value: impl Into<String>) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(Regex::new(&format!("^(?:{value})$"))?),
            MatchOp::Eq | MatchOp::Ne => None,
        };
        let literal = regex.as_ref().and_then(|_| Literal::analyze(&value));
        Ok(Matcher {
            field,
            op,
            value,
            regex,
            literal,
        })
    }

    /// Whether the matcher holds for a field's value (`None`: the field is absent, read as "").
    pub fn matches_value(&self, v: Option<&str>) -> bool {
        let v = v.unwrap_or("");
        if let Some(l) = &self.literal {
            return l.is_match(v) == (self.op == MatchOp::Re);
        }
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(r)) => r.is_match(v),
            (MatchOp::NotRe, Some(r)) => !r.is_match(v),
            // `new` always compiles a regex for the regex operators.
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }
}

/// The kind of a delivery channel.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Email through SES v2.
    Email,
    /// SMS through SNS.
    Sms,
    /// Slack (incoming webhook or bot token).
    Slack,
    /// Microsoft Teams (Workflows webhook, Adaptive Card).
    Teams,
    /// PagerDuty Events v2.
    Pagerduty,
    /// A signed webhook (Standard Webhooks).
    Webhook,
}

impl ChannelKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Pagerduty => "pagerduty",
            ChannelKind::Webhook => "webhook",
        }
    }

    /// Parses the config spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "email" => ChannelKind::Email,
            "sms" => ChannelKind::Sms,
            "slack" => ChannelKind::Slack,
            "teams" => ChannelKind::Teams,
            "pagerduty" => ChannelKind::Pagerduty,
            "webhook" => ChannelKind::Webhook,
            _ => return None,
        })
    }
}

/// A setting value. Secrets are only ever references, never inlined in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// A plain value written in the file (not allowed for secret settings).
    Literal(String),
    /// `{env: NAME}`: read from the environment at start-up.
    Env(String),
    /// `{secret: NAME}`: read from AWS Secrets Manager (or `TOCSIN_SECRET_<NAME>` locally).
    Secret(String),
}

/// A named delivery channel.
#[derive(Debug, Clone)]
pub struct Channel {
    /// The channel's name in the config.
    pub name: String,
    /// What kind of channel it is.
    pub kind: ChannelKind,
    /// Its settings (`from`, `webhook_url`, `routing_key`, `default_to`, ...), validated per kind.
    pub settings: BTreeMap<String, Setting>,
    /// Recipients used when a route names the channel without `to`.
    pub default_to: Vec<Recipient>,
    /// Where a critical alert goes when this channel fails permanently, and where a delivery that
    /// finally fails on this channel is reported.
    pub fallback: Option<String>,
}

/// A person and how to reach them.
#[derive(Debug, Clone, Default)]
pub struct Person {
    /// The person's name in the config.
    pub name: String,
    /// Email address.
    pub email: Option<String>,
    /// Phone number in E.164 (`+447700900123`).
    pub phone: Option<String>,
    /// Slack member id or handle.
    pub slack: Option<String>,
    /// The person's own time zone, for messages.
    pub timezone: Option<Tz>,
}

/// A recipient on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A literal address for the channel: an email address, a phone number, a Slack channel.
    Address(String),
    /// A person of `people`, reached at their contact for the channel's kind.
    Person(String),
    /// Whoever is on call in a schedule of `schedules`.
    Schedule(String),
}

/// A recurring window of time in a time zone: on these weekdays, between these times.
#[derive(Debug, Clone)]
pub struct TimeWindow {
    /// The window's name.
    pub name: String,
    /// The zone the weekdays and times are read in.
    pub timezone: Tz,
    /// Days the window is open; empty means every day.
    pub weekdays: Vec<Weekday>,
    /// Time ranges `[start, end)` in local time; empty means all day. `end` before `start` spans midnight.
    pub times: Vec<(NaiveTime, NaiveTime)>,
}

/// How a level's targets are notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelMode {
    /// Every target at once.
    All,
    /// One target, taking turns on each repeat of the policy.
    RoundRobin,
}

/// A target of an escalation level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscalationTarget {
    /// A person (paged on every channel they have a contact for, as the level's `channels` say).
    Person(String),
    /// Whoever is on call in a schedule.
    Schedule(String),
    /// A channel, with optional recipients.
    Channel {
        /// The channel name.
        channel: String,
        /// Recipients; empty means the channel's `default_to`.
        to: Vec<Recipient>,
    },
}

/// One level of an escalation policy.
#[derive(Debug, Clone)]
pub struct EscalationLevel {
    /// How long after the previous level (or the alert opening, for level 1) this level pages.
    /// EventBridge Scheduler fires at minute precision, so delays are effectively rounded up to a minute on AWS.
    pub delay: Duration,
    /// Who is paged.
    pub targets: Vec<EscalationTarget>,
    /// Channels used to reach people and schedules at this level (by name).
    pub channels: Vec<String>,
    /// All targets, or round robin.
    pub mode: LevelMode,
}

/// An escalation policy.
#[derive(Debug, Clone)]
pub struct EscalationPolicy {
    /// The policy's name.
    pub name: String,
    /// Levels in order.
    pub levels: Vec<EscalationLevel>,
    /// How many more times the whole policy runs after the last level. Default 0.
    pub repeat: u32,
    /// An acknowledged alert left unresolved this long re-triggers. None: never.
    pub ack_timeout: Option<Duration>,
}

/// How long a rotation turn lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// One day.
    Daily,
    /// One week.
    Weekly,
    /// A custom length.
    Custom(Duration),
}

/// One layer of an on-call schedule.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Turn length.
    pub rotation: Rotation,
    /// The local date and time of the first handoff (turns start here, in the schedule's zone).
    pub start: chrono::NaiveDateTime,
    /// People in turn order.
    pub people: Vec<String>,
    /// When the layer applies (names of `time_windows`); empty means always.
    pub restrictions: Vec<String>,
}

/// A one-off replacement of whoever is on call.
#[derive(Debug, Clone)]
pub struct Override {
    /// Who is on call instead.
    pub person: String,
    /// Start (UTC).
    pub start: chrono::DateTime<chrono::Utc>,
    /// End (UTC), exclusive.
    pub end: chrono::DateTime<chrono::Utc>,
}

/// An on-call schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The schedule's name.
    pub name: String,
    /// The zone its handoffs are read in.
    pub timezone: Tz,
    /// Layers; a later layer wins where it applies.
    pub layers: Vec<Layer>,
    /// Overrides; they win over every layer.
    pub overrides: Vec<Override>,
}

/// Who a route notifies on one channel.
#[derive(Debug, Clone)]
pub struct Notify {
    /// The channel name (exists in `channels`).
    pub channel: String,
    /// Recipients; empty means the channel's `default_to`.
    pub to: Vec<Recipient>,
}

/// A node of the route tree, evaluated the Alertmanager way: a node matches when all its matchers match;
/// the first matching child (and, with `continue`, later matching siblings too) takes the alert; a node
/// no child takes applies its own `notify`.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// A name for the timeline and audit; defaults to `root` for the root and `root/0`, `root/1/2`, ... by
    /// position.
    pub name: String,
    /// Where the node is in the file.
    pub pos: Pos,
    /// Conditions; empty matches everything.
    pub matchers: Vec<Matcher>,
    /// After this node matches, go on to try its later siblings too.
    pub continue_matching: bool,
    /// Only active inside one of these windows (names of `time_windows`); empty means always.
    pub active_during: Vec<String>,
    /// Muted inside any of these windows.
    pub muted_during: Vec<String>,
    /// Channels and recipients notified; inherited by children that name none.
    pub notify: Vec<Notify>,
    /// Escalation policy; inherited by children that name none.
    pub escalation: Option<String>,
    /// Child routes.
    pub routes: Vec<Route>,
    /// Grouping; inherited by children that set none.
    pub grouping: Option<Grouping>,
    /// An index over the children, built at load time for nodes with many of them.
    pub index: Option<std::sync::Arc<crate::routing::ChildIndex>>,
}
