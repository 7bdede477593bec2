//! Response metrics from alert records, pure: alert counts, MTTA (mean time to acknowledge: opening to
//! the first acknowledgement) and MTTR (mean time to resolve: opening to resolution) per service and
//! severity, and the noisiest alarms. The api function serves them at `GET /metrics.json` and logs them
//! as CloudWatch embedded metric format (EMF) lines, which CloudWatch turns into metrics with no API call.
//!
//! An alert resolved without an acknowledgement counts toward MTTR and not MTTA; one still open toward
//! neither. Alerts without a `service` label are grouped under `-`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::model::{Severity, rfc3339};
use crate::record::{AlertRecord, Status};

/// The figures of one (service, severity).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The service, or `-`.
    pub service: String,
    /// The severity.
    pub severity: Severity,
    /// Alerts opened.
    pub alerts: usize,
    /// Of those, how many were acknowledged.
    pub acknowledged: usize,
    /// Of those, how many are resolved.
    pub resolved: usize,
    /// Mean seconds from opening to acknowledgement, if any was acknowledged.
    pub mtta_seconds: Option<f64>,
    /// Mean seconds from opening to resolution, if any was resolved.
    pub mttr_seconds: Option<f64>,
}

/// An alarm and how much it fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Noisy {
    /// The alarm's name.
    pub alarm_name: String,
    /// Alerts (occurrences opened).
    pub alerts: usize,
    /// Firing transitions, repeats included.
    pub firings: u64,
}

/// All the figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// When computed.
    #[serde(with = "rfc3339")]
    pub generated_at: DateTime<Utc>,
    /// Alerts opened since this time were counted (None: all given).
    pub since: Option<String>,
    /// Alerts counted.
    pub alerts: usize,
    /// Of those, by lifecycle status.
    pub by_status: BTreeMap<&'static str, usize>,
    /// Per service and severity, most severe first.
    pub groups: Vec<Group>,
    /// The alarms that fired most, noisiest first.
    pub noisiest: Vec<Noisy>,
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Seconds from opening to acknowledgement, if acknowledged.
pub fn time_to_ack(r: &AlertRecord) -> Option<f64> {
    let at = parse(&r.acknowledged.as_ref()?.0)?;
    Some((at - r.opened_at).num_milliseconds().max(0) as f64 / 1000.0)
}

/// Seconds from opening to resolution, if resolved.
pub fn time_to_resolve(r: &AlertRecord) -> Option<f64> {
    let at = parse(r.resolved_at.as_deref()?)?;
    Some((at - r.opened_at).num_milliseconds().max(0) as f64 / 1000.0)
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The figures over the alerts opened at or after `since` (all when None), with the `top` noisiest
/// alarms.
pub fn compute(
    records: &[AlertRecord],
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    top: usize,
) -> Metrics {
    let counted: Vec<&AlertRecord> = records
        .iter()
        .filter(|r| since.is_none_or(|s| r.opened_at >= s))
        .collect();
    let mut by_status = BTreeMap::new();
    for s in [
        Status::Open,
        Status::Acknowledged,
        Status::Resolved,
        Status::Closed,
    ] {
        by_status.insert(s.as_str(), counted.iter().filter(|r| r.status == s).count());
    }
    type Acc = (usize, Vec<f64>, Vec<f64>);
    let mut groups: BTreeMap<(u8, String), (Severity, Acc)> = BTreeMap::new();
    let mut noise: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for r in &counted {
        let service = r.service().unwrap_or("-").to_string();
        let (_, acc) = groups
            .entry((r.severity as u8, service))
            .or_insert((r.severity, (0, Vec::new(), Vec::new())));
        acc.0 += 1;
        // An acknowledgement a timeout undid is gone from the record; acknowledged_by stays the truth.
        acc.1.extend(time_to_ack(r));
        // Closed alerts were resolved first; their resolution time still counts.
        acc.2.extend(time_to_resolve(r));
        let n = noise.entry(r.alert.alarm_name.as_str()).or_default();
        n.0 += 1;
        n.1 += u64::from(r.occurrences);
    }
    let groups = groups
        .into_iter()
        .map(|((_, service), (severity, (alerts, ack, res)))| Group {
            service,
            severity,
            alerts,
            acknowledged: ack.len(),
            resolved: res.len(),
            mtta_seconds: mean(&ack),
            mttr_seconds: mean(&res),
        })
        .collect();
    let mut noisiest: Vec<Noisy> = noise
        .into_iter()
        .map(|(name, (alerts, firings))| Noisy {
            alarm_name: name.to_string(),
            alerts,
            firings,
        })
        .collect();
    noisiest.sort_by(|a, b| {
        b.firings
            .cmp(&a.firings)
            .then(b.alerts.cmp(&a.alerts))
            .then(a.alarm_name.cmp(&b.alarm_name))
    });
    noisiest.truncate(top);
    Metrics {
        generated_at: now,
        since: since.map(|s| crate::model::format_time(&s)),
        alerts: counted.len(),
        by_status,
        groups,
        noisiest,
    }
}

fn emf_line(
    namespace: &str,
    at: DateTime<Utc>,
    dims: &[(&str, &str)],
    metrics: &[(&str, &str, f64)],
) -> Value {
    let mut line = serde_json::Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dims.iter().map(|d| d.0).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|m| json!({"Name": m.0, "Unit": m.1})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (k, v) in dims {
        line.insert((*k).into(), json!(v));
    }
    for (name, _, v) in metrics {
        line.insert((*name).into(), json!(v));
    }
    Value::Object(line)
}

/// One EMF line per group: `Alerts` (Count), and `MTTA`, `MTTR` (Seconds) where there is a value,
/// dimensioned by `Service` and `Severity`.
pub fn emf(m: &Metrics, namespace: &str) -> Vec<Value> {
    m.groups
        .iter()
        .map(|g| {
            let mut values = vec![("Alerts", "Count", g.alerts as f64)];
            if let Some(v) = g.mtta_seconds {
                values.push(("MTTA", "Seconds", v));
            }
            if let Some(v) = g.mttr_seconds {
                values.push(("MTTR", "Seconds", v));
            }
            emf_line(
                namespace,
                m.generated_at,
                &[("Service", &g.service), ("Severity", g.severity.as_str())],
                &values,
            )
        })
        .collect()
}

/// The EMF line for one acknowledgement or resolution just made: `TimeToAcknowledge` or
/// `TimeToResolve` (Seconds), by `Service` and `Severity`. None for other changes.
pub fn emf_for_change(r: &AlertRecord, namespace: &str, now: DateTime<Utc>) -> Option<Value> {
    let (name, v) = match r.status {
        Status::Acknowledged => ("TimeToAcknowledge", time_to_ack(r)?),
        Status::Resolved => ("TimeToResolve", time_to_resolve(r)?),
        _ => return None,
    };
    Some(emf_line(
        namespace,
        now,
        &[
            ("Service", r.service().unwrap_or("-")),
            ("Severity", r.severity.as_str()),
        ],
        &[(name, "Seconds", v)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::record;
    use chrono::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn alerts() -> Vec<AlertRecord> {
        // record(): service checkout, severity high, opened 2026-11-20T02:10:00Z.
        let mut a = record("a", "fa", None);
        a.status = Status::Resolved;
        a.acknowledged = Some(("2026-11-20T02:12:00.000Z".into(), "alice".into()));
        a.resolved_at = Some("2026-11-20T02:40:00.000Z".into());
        let mut b = record("b", "fb", None);
        b.status = Status::Acknowledged;
        b.acknowledged = Some(("2026-11-20T02:16:00.000Z".into(), "bob".into()));
        b.occurrences = 5;
        let mut c = record("c", "fc", None);
        c.status = Status::Resolved;
        c.resolved_at = Some("2026-11-20T03:10:00.000Z".into());
        c.severity = Severity::Critical;
        c.alert.alarm_name = "other".into();
        let mut old = record("old", "fo", None);
        old.opened_at = t("2026-10-01T00:00:00Z");
        vec![a, b, c, old]
    }

    #[test]
    fn mtta_and_mttr_are_means_per_service_and_severity() {
        let now = t("2026-11-21T00:00:00Z");
        let m = compute(&alerts(), Some(now - Duration::days(30)), now, 10);
        assert_eq!(m.alerts, 3, "the alert opened before `since` is left out");
        assert_eq!(m.by_status["resolved"], 2);
        assert_eq!(m.by_status["acknowledged"], 1);
        assert_eq!(m.groups.len(), 2);
        let crit = &m.groups[0];
        assert_eq!((crit.severity, crit.alerts), (Severity::Critical, 1));
        assert_eq!(crit.mtta_seconds, None, "resolved without an ack");
        assert_eq!(crit.mttr_seconds, Some(3600.0));
        let high = &m.groups[1];
        assert_eq!((high.service.as_str(), high.alerts), ("checkout", 2));
        // Acks after 2 and 6 minutes: a mean of 4 minutes; one resolution after 30 minutes.
        assert_eq!(high.mtta_seconds, Some(240.0));
        assert_eq!(high.mttr_seconds, Some(1800.0));
        assert_eq!(
            m.noisiest[0],
            Noisy {
                alarm_name: "contract-alarm".into(),
                alerts: 2,
                firings: 6
            }
        );
    }

    #[test]
    fn emf_lines_declare_the_metrics_they_carry() {
        let now = t("2026-11-21T00:00:00Z");
        let m = compute(&alerts(), None, now, 3);
        let lines = emf(&m, "tocsin");
        assert_eq!(lines.len(), 2);
        let crit = &lines[0];
        let decl = &crit["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(decl["Namespace"], "tocsin");
        assert_eq!(decl["Dimensions"], json!([["Service", "Severity"]]));
        let names: Vec<&str> = decl["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["Alerts", "MTTR"], "no MTTA without an ack");
        assert_eq!(crit["MTTR"], json!(3600.0));
        assert_eq!(crit["Severity"], "critical");
        assert_eq!(crit["_aws"]["Timestamp"], json!(now.timestamp_millis()));
        assert!(crit.get("MTTA").is_none());
    }

    #[test]
    fn an_acknowledgement_logs_its_time_to_acknowledge() {
        let mut r = alerts().remove(1);
        let line = emf_for_change(&r, "tocsin", t("2026-11-20T02:16:00Z")).unwrap();
        assert_eq!(line["TimeToAcknowledge"], json!(360.0));
        assert_eq!(line["Service"], "checkout");
        r.status = Status::Open;
        assert!(emf_for_change(&r, "tocsin", t("2026-11-20T02:16:00Z")).is_none());
    }
}
