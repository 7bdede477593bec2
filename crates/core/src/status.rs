//! The status page's model, derived from alerts and their audit trails: one component per service of
//! the config's catalogue, with the statuses Statuspage users know, and incidents with their updates.
//! Pure: the api function reads the store and hands the records in; `render::status_html` draws it.
//!
//! **How a component's status is derived** (from its live alerts: open or acknowledged, whose
//! `service` label names the component; an acknowledged alert still counts, someone working on an
//! outage does not end it):
//!
//! | live alerts of the component                       | status                 |
//! |----------------------------------------------------|------------------------|
//! | a `maintenance-<service>` time window is active now | under maintenance      |
//! | any critical, or 3 or more high                    | major outage           |
//! | any high                                           | partial outage         |
//! | any medium, or 3 or more low                       | degraded performance   |
//! | otherwise (none, low, info)                        | operational            |
//!
//! **AWS Health.** A service of the catalogue may list the AWS services it runs on
//! (`aws_health: {services: [EC2, RDS], regions: [eu-west-1]}`). A live *public* AWS Health event
//! (`event_scope_code = PUBLIC`: AWS's own service events, not about one account's resources) about
//! one of them, in one of those regions or `global`, counts toward that component as if it were one
//! of its alerts, by its severity (an `issue` is high by default: partial outage), whichever service
//! classification gave the alert. A scheduled change under way (status `open`) puts the component
//! under maintenance; one still `upcoming` does nothing yet. The component lists the events
//! (`aws_events`, in AWS's public terms: service, category, region), and the event is an incident
//! of each component it affects, in both audiences.
//!
//! Maintenance wins: during a planned window alerts are expected. The page's overall status is the
//! worst of its components (maintenance counting below degraded performance).
//!
//! **Audiences.** `internal` shows everything: alarm names, accounts, regions, reasons, who acted,
//! notes, alerts outside the catalogue. `customer` shows only catalogue services and incidents that
//! affect one (severity medium or worse), titled by service and impact, with fixed update texts:
//! no alarm name, account, reason, person or note ever reaches it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::model::{Severity, Source, rfc3339};
use crate::record::{Action, AlertRecord, AuditEntry, Status};

/// How long a resolved incident stays in the page's history.
pub const HISTORY_DAYS: i64 = 7;

/// A component's status, in Statuspage's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    /// Working normally.
    Operational,
    /// Planned work is under way.
    UnderMaintenance,
    /// Slower or flakier than it should be.
    DegradedPerformance,
    /// Broken for some users or some functions.
    PartialOutage,
    /// Down.
    MajorOutage,
}

impl ComponentStatus {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::UnderMaintenance => "under_maintenance",
            ComponentStatus::DegradedPerformance => "degraded_performance",
            ComponentStatus::PartialOutage => "partial_outage",
            ComponentStatus::MajorOutage => "major_outage",
        }
    }

    /// The words shown to people (the page never tells a status by colour alone).
    pub fn label(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "Operational",
            ComponentStatus::UnderMaintenance => "Under maintenance",
            ComponentStatus::DegradedPerformance => "Degraded performance",
            ComponentStatus::PartialOutage => "Partial outage",
            ComponentStatus::MajorOutage => "Major outage",
        }
    }

    /// How bad, for "the worst of": the declaration order.
    fn rank(self) -> u8 {
        self as u8
    }
}

/// Who the page is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The public: services and impact only.
    Customer,
    /// The team: everything on record.
    Internal,
}

impl Audience {
    /// Reads `customer` or `internal`.
    pub fn parse(s: &str) -> Option<Audience> {
        match s {
            "customer" => Some(Audience::Customer),
            "internal" => Some(Audience::Internal),
            _ => None,
        }
    }

    /// The spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Customer => "customer",
            Audience::Internal => "internal",
        }
    }
}

/// What an alert of a severity does to its component on its own.
pub fn severity_impact(s: Severity) -> ComponentStatus {
    match s {
        Severity::Critical => ComponentStatus::MajorOutage,
        Severity::High => ComponentStatus::PartialOutage,
        Severity::Medium => ComponentStatus::DegradedPerformance,
        Severity::Low | Severity::Info => ComponentStatus::Operational,
    }
}

/// A component's status from the severities of its live alerts (the table in the module header).
pub fn component_status(live: &[Severity], maintenance: bool) -> ComponentStatus {
    if maintenance {
        return ComponentStatus::UnderMaintenance;
    }
    let count = |s: Severity| live.iter().filter(|x| **x == s).count();
    if count(Severity::Critical) > 0 || count(Severity::High) >= 3 {
        ComponentStatus::MajorOutage
    } else if count(Severity::High) > 0 {
        ComponentStatus::PartialOutage
    } else if count(Severity::Medium) > 0 || count(Severity::Low) >= 3 {
        ComponentStatus::DegradedPerformance
    } else {
        ComponentStatus::Operational
    }
}

/// One service of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    /// The service name.
    pub name: String,
    /// Its status.
    pub status: ComponentStatus,
    /// The words for it.
    pub status_label: &'static str,
    /// Live alerts counted (internal view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_alerts: Option<usize>,
    /// The owning team (internal view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Live public AWS Health events of the AWS services it runs on, in AWS's public terms
    /// (`AWS EC2 issue in eu-west-1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aws_events: Vec<String>,
}

/// One update of an incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentUpdate {
    /// When.
    #[serde(with = "rfc3339")]
    pub at: DateTime<Utc>,
    /// `investigating`, `identified`, `update` or `resolved`.
    pub status: &'static str,
    /// What happened, in the audience's words.
    pub text: String,
}

/// What only the team sees of an incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentDetail {
    /// The alarm's name.
    pub alarm_name: String,
    /// The severity.
    pub severity: Severity,
    /// The AWS account, if any.
    pub account_id: Option<String>,
    /// The region, if any.
    pub region: Option<String>,
    /// The alarm's latest reason.
    pub reason: String,
    /// Who acknowledged, if anyone.
    pub acknowledged_by: Option<String>,
    /// Who it is assigned to, if anyone.
    pub assignee: Option<String>,
}

/// One alert as an incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// The alert id.
    pub id: String,
    /// The headline.
    pub title: String,
    /// The affected service, if the alert has one.
    pub service: Option<String>,
    /// What it does to the service.
    pub impact: ComponentStatus,
    /// `investigating` (open), `identified` (acknowledged) or `resolved`.
    pub status: &'static str,
    /// When it started.
    #[serde(with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    /// When it was resolved, if it was.
    pub resolved_at: Option<String>,
    /// Its updates, newest first.
    pub updates: Vec<IncidentUpdate>,
    /// The team's detail (internal view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<IncidentDetail>,
}

/// The whole page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusPage {
    /// When it was computed.
    #[serde(with = "rfc3339")]
    pub generated_at: DateTime<Utc>,
    /// Who it is for.
    pub audience: Audience,
    /// The worst component status.
    pub overall: ComponentStatus,
    /// Words for the overall status.
    pub overall_label: &'static str,
    /// The catalogue's services, in config order.
    pub components: Vec<Component>,
    /// Live incidents, most severe first.
    pub incidents: Vec<Incident>,
    /// Incidents resolved in the last [`HISTORY_DAYS`] days, newest first.
    pub history: Vec<Incident>,
}

/// Whether a `maintenance-<service>` time window is active at `now`.
pub fn in_maintenance(config: &Config, service: &str, now: DateTime<Utc>) -> bool {
    config
        .time_windows
        .get(&format!("maintenance-{service}"))
        .is_some_and(|w| w.contains(now))
}

/// What a live public AWS Health event does to a component that runs on its service.
#[derive(Debug, Clone, PartialEq)]
struct HealthImpact {
    /// Counted like an alert of this severity, or `None` for maintenance.
    severity: Option<Severity>,
    /// The words for the component's list.
    text: String,
}

/// The impact of `r` on the components that depend on its AWS service, with those components'
/// names; `None` when `r` is not a live public AWS Health event that counts now.
fn health_impact<'c>(config: &'c Config, r: &AlertRecord) -> Option<(HealthImpact, Vec<&'c str>)> {
    if r.alert.source != Source::Health || !r.status.is_live() {
        return None;
    }
    let label = |k: &str| r.alert.labels.get(k).map(String::as_str);
    if label("event_scope_code") != Some("PUBLIC") {
        return None;
    }
    let service = label("health_service")?;
    let region = r.alert.region.as_deref();
    let affected: Vec<&str> = config
        .services
        .iter()
        .filter(|c| {
            c.aws_health
                .as_ref()
                .is_some_and(|d| d.covers(service, region))
        })
        .map(|c| c.name.as_str())
        .collect();
    if affected.is_empty() {
        return None;
    }
    let maintenance = r.alert.kind == "scheduled_change";
    if maintenance && label("status_code") != Some("open") {
        return None;
    }
    let what = match r.alert.kind.as_str() {
        "scheduled_change" => "scheduled maintenance",
        "investigation" => "investigation",
        "account_notification" => "notice",
        _ => "issue",
    };
    let text = format!(
        "AWS {service} {what} in {}",
        region.unwrap_or("an unknown region")
    );
    let severity = (!maintenance).then_some(r.severity);
    Some((HealthImpact { severity, text }, affected))
}

/// Builds the page for `audience` from live (open and acknowledged) and resolved alerts and the audit
/// trails of those (by alert id; a missing trail only means fewer updates).
pub fn build(
    config: &Config,
    live: &[AlertRecord],
    resolved: &[AlertRecord],
    audits: &BTreeMap<String, Vec<AuditEntry>>,
    audience: Audience,
    now: DateTime<Utc>,
) -> StatusPage {
    let internal = audience == Audience::Internal;
    let known = |r: &AlertRecord| {
        r.service()
            .is_some_and(|s| config.services.iter().any(|c| c.name == s))
    };
    let health: BTreeMap<&str, (HealthImpact, Vec<&str>)> = live
        .iter()
        .filter_map(|r| health_impact(config, r).map(|h| (r.id.as_str(), h)))
        .collect();
    let components: Vec<Component> = config
        .services
        .iter()
        .map(|svc| {
            let own: Vec<Severity> = live
                .iter()
                .filter(|r| r.status.is_live() && r.service() == Some(svc.name.as_str()))
                .filter(|r| !health.contains_key(r.id.as_str()))
                .map(|r| r.severity)
                .collect();
            let live_alerts = own.len();
            let mut sevs = own;
            let mut aws_events = Vec::new();
            let mut aws_maintenance = false;
            for (impact, affected) in health.values() {
                if !affected.contains(&svc.name.as_str()) {
                    continue;
                }
                match impact.severity {
                    Some(s) => sevs.push(s),
                    None => aws_maintenance = true,
                }
                aws_events.push(impact.text.clone());
            }
            let maintenance = aws_maintenance || in_maintenance(config, &svc.name, now);
            let status = component_status(&sevs, maintenance);
            Component {
                name: svc.name.clone(),
                status,
                status_label: status.label(),
                live_alerts: internal.then_some(live_alerts),
                team: if internal { svc.team.clone() } else { None },
                aws_events,
            }
        })
        .collect();
    let overall = components
        .iter()
        .map(|c| c.status)
        .max_by_key(|s| s.rank())
        .unwrap_or(ComponentStatus::Operational);
    let shown = |r: &&AlertRecord| {
        internal
            || health.contains_key(r.id.as_str())
            || (known(r) && severity_impact(r.severity) != ComponentStatus::Operational)
    };
    let empty = Vec::new();
    let incident = |r: &AlertRecord| {
        let mut i = incident(
            r,
            audits.get(&r.id).unwrap_or(&empty),
            audience,
            config
                .services
                .iter()
                .any(|c| Some(c.name.as_str()) == r.service()),
        );
        if let Some((impact, affected)) = health.get(r.id.as_str()) {
            health_incident(&mut i, impact, affected, audience);
        }
        i
    };
    let mut incidents: Vec<Incident> = live
        .iter()
        .filter(|r| r.status.is_live())
        .filter(shown)
        .map(incident)
        .collect();
    incidents.sort_by(|a, b| {
        b.impact
            .rank()
            .cmp(&a.impact.rank())
            .then(a.started_at.cmp(&b.started_at))
    });
    let since = now - Duration::days(HISTORY_DAYS);
    let mut history: Vec<Incident> = resolved
        .iter()
        .filter(|r| r.status == Status::Resolved)
        .filter(|r| resolved_at(r).is_some_and(|t| t >= since))
        .filter(shown)
        .map(incident)
        .collect();
    history.sort_by(|a, b| b.resolved_at.cmp(&a.resolved_at));
    StatusPage {
        generated_at: now,
        audience,
        overall,
        overall_label: overall.label(),
        components,
        incidents,
        history,
    }
}

fn resolved_at(r: &AlertRecord) -> Option<DateTime<Utc>> {
    r.resolved_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// A public AWS Health event as an incident of the components it affects: titled by them and by
/// AWS's public terms, its impact the one it has on them, the customer's update texts naming them.
fn health_incident(i: &mut Incident, impact: &HealthImpact, affected: &[&str], audience: Audience) {
    let names = affected.join(", ");
    i.impact = impact
        .severity
        .map_or(ComponentStatus::UnderMaintenance, severity_impact);
    if audience == Audience::Customer {
        i.title = format!(
            "{names}: {} ({})",
            i.impact.label().to_lowercase(),
            impact.text
        );
        i.service = affected.first().map(|s| s.to_string());
        for u in &mut i.updates {
            if u.status == "investigating" {
                u.text = format!(
                    "{} is affecting {names}. We are monitoring it.",
                    impact.text
                );
            }
        }
    } else {
        i.title = format!(
            "{} [{}]: {}; affects {names}",
            i.title,
            i.impact.label(),
            impact.text
        );
    }
}

fn incident(r: &AlertRecord, trail: &[AuditEntry], audience: Audience, known: bool) -> Incident {
    let impact = severity_impact(r.severity);
    let service = r
        .service()
        .filter(|_| known || audience == Audience::Internal);
    let status = match r.status {
        Status::Open => "investigating",
        Status::Acknowledged => "identified",
        Status::Resolved | Status::Closed => "resolved",
    };
    let mut updates: Vec<IncidentUpdate> = trail
        .iter()
        .filter_map(|e| update(e, audience, service.unwrap_or("a service")))
        .collect();
    // Newest first, as status pages read.
    updates.reverse();
    let (title, detail) = match audience {
        Audience::Customer => (
            format!(
                "{}: {}",
                service.unwrap_or("A service"),
                impact.label().to_lowercase()
            ),
            None,
        ),
        Audience::Internal => (
            format!("{} [{}]", r.alert.alarm_name, r.severity),
            Some(IncidentDetail {
                alarm_name: r.alert.alarm_name.clone(),
                severity: r.severity,
                account_id: r.alert.account_id.clone(),
                region: r.alert.region.clone(),
                reason: r.alert.reason.clone(),
                acknowledged_by: r.acknowledged.as_ref().map(|a| a.1.clone()),
                assignee: r.assignee.clone(),
            }),
        ),
    };
    Incident {
        id: r.id.clone(),
        title,
        service: service.map(str::to_string),
        impact,
        status,
        started_at: r.opened_at,
        resolved_at: r.resolved_at.clone(),
        updates,
        detail,
    }
}

/// An audit entry as an incident update, or None when the audience does not see that kind of entry.
/// The customer's texts are fixed: nothing from the entry but its time and kind reaches them.
fn update(e: &AuditEntry, audience: Audience, service: &str) -> Option<IncidentUpdate> {
    let status = match e.action {
        Action::Open => "investigating",
        Action::Ack => "identified",
        Action::Resolve => "resolved",
        Action::Retrigger => "investigating",
        Action::Assign | Action::Note | Action::Escalate | Action::EscalationEnd => "update",
        _ => return None,
    };
    let text = match audience {
        Audience::Internal => format!("{}: {}", e.action, e.reason),
        Audience::Customer => match e.action {
            Action::Open => format!("We are investigating a problem affecting {service}."),
            Action::Ack => "The problem has been identified and the team is working on it.".into(),
            Action::Resolve => "This incident has been resolved.".into(),
            Action::Retrigger => "We are still investigating this problem.".into(),
            _ => return None,
        },
    };
    Some(IncidentUpdate {
        at: e.at,
        status,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::record;
    use Severity::*;

    fn config() -> Config {
        crate::config::load(
            "services:\n  - {name: checkout, team: payments, tier: 1, match: ['alarm_name =~ \"checkout-.*\"']}\n  - {name: search, tier: 2, match: ['alarm_name =~ \"search-.*\"']}\ntime_windows:\n  maintenance-search: {times: [\"00:00-23:59\"]}\nchannels: {s: {type: sms}}\nroute: {notify: [{channel: s, to: [\"+447700900001\"]}]}\n",
        )
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn component_status_follows_the_documented_mapping() {
        use ComponentStatus::*;
        let cases: &[(&[Severity], bool, ComponentStatus)] = &[
            (&[], false, Operational),
            (&[Info, Low, Low], false, Operational),
            (&[Low, Low, Low], false, DegradedPerformance),
            (&[Medium], false, DegradedPerformance),
            (&[High, Medium], false, PartialOutage),
            (&[High, High], false, PartialOutage),
            (&[High, High, High], false, MajorOutage),
            (&[Low, Critical], false, MajorOutage),
            (&[Critical], true, UnderMaintenance),
        ];
        for (sevs, maint, want) in cases {
            assert_eq!(component_status(sevs, *maint), *want, "{sevs:?} {maint}");
        }
    }

    fn alerts() -> (Vec<AlertRecord>, BTreeMap<String, Vec<AuditEntry>>) {
        let mut a = record("a1", "fp1", None);
        a.severity = Critical;
        a.alert.alarm_name = "checkout-api-5xx <script>".into();
        a.alert.reason = "Threshold crossed: secret detail".into();
        let mut b = record("b1", "fp2", None);
        b.severity = Low;
        b.alert.labels.insert("service".into(), "billing".into());
        let opened = AuditEntry {
            at: now() - Duration::minutes(5),
            alert: "a1".into(),
            alarm_name: a.alert.alarm_name.clone(),
            action: Action::Open,
            reason: "ALARM: Threshold crossed: secret detail; account 123456789012".into(),
            event_id: None,
            channel: None,
            target: None,
            level: None,
            severity: Critical,
            attempt: None,
            told_under: None,
        };
        let mut ack = opened.clone();
        ack.action = Action::Ack;
        ack.reason = "acknowledged by alice".into();
        ack.at = now();
        (
            vec![a, b],
            BTreeMap::from([("a1".to_string(), vec![opened, ack])]),
        )
    }

    #[test]
    fn the_customer_view_hides_alarm_names_accounts_reasons_and_people() {
        let (live, audits) = alerts();
        let page = build(&config(), &live, &[], &audits, Audience::Customer, now());
        assert_eq!(page.overall, ComponentStatus::MajorOutage);
        assert_eq!(page.components[0].status, ComponentStatus::MajorOutage);
        assert_eq!(page.components[1].status, ComponentStatus::UnderMaintenance);
        assert_eq!(page.incidents.len(), 1, "billing is not in the catalogue");
        let json = serde_json::to_string(&page).unwrap();
        for secret in [
            "checkout-api-5xx",
            "123456789012",
            "secret detail",
            "alice",
            "billing",
            "payments",
        ] {
            assert!(!json.contains(secret), "{secret} leaked: {json}");
        }
        assert_eq!(page.incidents[0].title, "checkout: major outage");
        assert_eq!(page.incidents[0].updates[0].status, "identified");
    }

    #[test]
    fn the_internal_view_shows_everything_on_record() {
        let (live, audits) = alerts();
        let page = build(&config(), &live, &[], &audits, Audience::Internal, now());
        assert_eq!(page.incidents.len(), 2);
        let json = serde_json::to_string(&page).unwrap();
        for fact in [
            "checkout-api-5xx",
            "123456789012",
            "secret detail",
            "alice",
            "billing",
        ] {
            assert!(json.contains(fact), "{fact} missing: {json}");
        }
    }

    #[test]
    fn resolved_incidents_stay_in_the_history_for_a_week() {
        let mut recent = record("r1", "fp", None);
        recent.status = Status::Resolved;
        recent.resolved_at = Some("2026-11-19T03:00:00.000Z".into());
        let mut old = record("r2", "fp2", None);
        old.status = Status::Resolved;
        old.resolved_at = Some("2026-11-01T03:00:00.000Z".into());
        let page = build(
            &config(),
            &[],
            &[recent, old],
            &BTreeMap::new(),
            Audience::Internal,
            now(),
        );
        let ids: Vec<&str> = page.history.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, vec!["r1"]);
        assert_eq!(page.history[0].status, "resolved");
        assert_eq!(page.overall, ComponentStatus::UnderMaintenance);
    }

    /// The config of the Health tests: checkout runs on Lambda in eu-west-1, search on Lambda in
    /// us-east-1, billing on EC2 anywhere.
    fn health_config() -> Config {
        crate::config::load(
            "services:\n  - {name: checkout, tier: 1, match: ['alarm_name =~ \"checkout-.*\"'], aws_health: {services: [LAMBDA, dynamodb], regions: [eu-west-1]}}\n  - {name: search, tier: 2, match: ['alarm_name =~ \"search-.*\"'], aws_health: {services: [LAMBDA], regions: [us-east-1]}}\n  - {name: billing, aws_health: {services: [EC2]}, match: ['alarm_name = billing']}\nchannels: {s: {type: sms}}\nroute: {notify: [{channel: s, to: [\"+447700900001\"]}]}\n",
        )
        .unwrap()
    }

    /// A live record of the public Lambda issue fixture (events/health/public-issue-open.json).
    fn public_health(edit: impl FnOnce(&mut crate::model::Alert)) -> AlertRecord {
        let raw = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/health/public-issue-open.json"
        ))
        .unwrap();
        let mut alert = crate::source::parse_all(&raw).unwrap().alerts.remove(0);
        edit(&mut alert);
        let mut r = record("h1", &alert.fingerprint.clone(), None);
        r.severity = alert.severity;
        r.alert = alert;
        r
    }

    #[test]
    fn a_public_aws_issue_shows_on_every_component_that_runs_on_that_service_there() {
        let config = health_config();
        let live = [public_health(|_| {})];
        for audience in [Audience::Customer, Audience::Internal] {
            let page = build(&config, &live, &[], &BTreeMap::new(), audience, now());
            let status: Vec<_> = page.components.iter().map(|c| c.status).collect();
            assert_eq!(
                status,
                vec![
                    ComponentStatus::PartialOutage,
                    ComponentStatus::Operational,
                    ComponentStatus::Operational
                ],
                "only checkout runs on Lambda in eu-west-1 ({audience:?})"
            );
            assert_eq!(
                page.components[0].aws_events,
                vec!["AWS LAMBDA issue in eu-west-1"]
            );
            assert!(page.components[1].aws_events.is_empty());
            assert_eq!(page.incidents.len(), 1, "{audience:?}");
            assert_eq!(page.incidents[0].impact, ComponentStatus::PartialOutage);
        }
        let customer = build(
            &config,
            &live,
            &[],
            &BTreeMap::new(),
            Audience::Customer,
            now(),
        );
        assert_eq!(
            customer.incidents[0].title,
            "checkout: partial outage (AWS LAMBDA issue in eu-west-1)"
        );
        let json = serde_json::to_string(&customer).unwrap();
        assert!(!json.contains("111122223333"), "no account: {json}");
        assert!(!json.contains("AWS_LAMBDA_OPERATIONAL_ISSUE"), "{json}");
    }

    #[test]
    fn account_specific_closed_or_unlisted_health_events_do_not_touch_components() {
        let config = health_config();
        let cases = [
            public_health(|a| {
                a.labels
                    .insert("event_scope_code".into(), "ACCOUNT_SPECIFIC".into());
            }),
            public_health(|a| {
                a.labels.insert("health_service".into(), "S3".into());
            }),
            public_health(|a| a.region = Some("ap-south-1".into())),
            {
                let mut r = public_health(|_| {});
                r.status = Status::Resolved;
                r
            },
        ];
        for r in cases {
            let page = build(
                &config,
                std::slice::from_ref(&r),
                &[],
                &BTreeMap::new(),
                Audience::Customer,
                now(),
            );
            assert!(
                page.components
                    .iter()
                    .all(|c| c.status == ComponentStatus::Operational && c.aws_events.is_empty()),
                "{:?}: {:?}",
                r.alert.labels,
                page.components
            );
            assert!(page.incidents.is_empty());
        }
    }

    #[test]
    fn a_global_event_counts_everywhere_and_a_running_scheduled_change_is_maintenance() {
        let config = health_config();
        let global = public_health(|a| {
            a.region = Some("global".into());
            a.labels.insert("health_service".into(), "ec2".into());
        });
        let page = build(
            &config,
            &[global],
            &[],
            &BTreeMap::new(),
            Audience::Internal,
            now(),
        );
        assert_eq!(page.components[2].status, ComponentStatus::PartialOutage);
        assert_eq!(
            page.components[2].live_alerts,
            Some(0),
            "not billing's own alert"
        );

        let change = |status: &str| {
            let status = status.to_string();
            public_health(move |a| {
                a.kind = "scheduled_change".into();
                a.severity = Severity::Medium;
                a.labels.insert("status_code".into(), status);
            })
        };
        let running = build(
            &config,
            &[change("open")],
            &[],
            &BTreeMap::new(),
            Audience::Customer,
            now(),
        );
        assert_eq!(
            running.components[0].status,
            ComponentStatus::UnderMaintenance
        );
        assert_eq!(
            running.components[0].aws_events,
            vec!["AWS LAMBDA scheduled maintenance in eu-west-1"]
        );
        assert_eq!(
            running.incidents[0].impact,
            ComponentStatus::UnderMaintenance
        );
        let upcoming = build(
            &config,
            &[change("upcoming")],
            &[],
            &BTreeMap::new(),
            Audience::Customer,
            now(),
        );
        assert_eq!(upcoming.components[0].status, ComponentStatus::Operational);
    }

    #[test]
    fn aws_health_dependencies_are_checked_by_check_config() {
        let bad = "services:\n  - {name: a, aws_health: {services: []}}\n  - {name: b, aws_health: {services: [\"E C2\"], regions: [Ireland]}}\n  - {name: c, aws_health: {regions: [eu-west-1]}}\nchannels: {s: {type: sms}}\nroute: {notify: [{channel: s, to: [\"+447700900001\"]}]}\n";
        let problems: Vec<String> = crate::config::load(bad)
            .unwrap_err()
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        let text = problems.join("\n");
        for want in [
            "aws_health.services is empty",
            "invalid AWS Health service `E C2`",
            "invalid region `Ireland` (expected a code like eu-west-1)",
            "services",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
        assert_eq!(problems.len(), 4, "{text}");
    }
}
