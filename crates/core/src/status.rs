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
use crate::model::{Severity, rfc3339};
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
    let components: Vec<Component> = config
        .services
        .iter()
        .map(|svc| {
            let sevs: Vec<Severity> = live
                .iter()
                .filter(|r| r.status.is_live() && r.service() == Some(svc.name.as_str()))
                .map(|r| r.severity)
                .collect();
            let status = component_status(&sevs, in_maintenance(config, &svc.name, now));
            Component {
                name: svc.name.clone(),
                status,
                status_label: status.label(),
                live_alerts: internal.then_some(sevs.len()),
                team: if internal { svc.team.clone() } else { None },
            }
        })
        .collect();
    let overall = components
        .iter()
        .map(|c| c.status)
        .max_by_key(|s| s.rank())
        .unwrap_or(ComponentStatus::Operational);
    let shown = |r: &&AlertRecord| {
        internal || (known(r) && severity_impact(r.severity) != ComponentStatus::Operational)
    };
    let empty = Vec::new();
    let incident = |r: &AlertRecord| {
        incident(
            r,
            audits.get(&r.id).unwrap_or(&empty),
            audience,
            config
                .services
                .iter()
                .any(|c| Some(c.name.as_str()) == r.service()),
        )
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
}
