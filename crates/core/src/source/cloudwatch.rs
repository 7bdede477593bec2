//! CloudWatch alarms through all three transports: the alarm message SNS carries, the EventBridge
//! "CloudWatch Alarm State Change" event and the Lambda alarm action's `alarmData`. All three end in
//! one builder, so that the same transition gets the same `event_id`, `fingerprint` and `kind`
//! whichever way it came.
//!
//! These are our own lenient types rather than `aws_lambda_events`' CloudWatch alarm types, which
//! refuse a null `AlarmDescription`, an anomaly detection alarm without `Threshold` and a composite
//! alarm without `Trigger`: all three are real payloads.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::alarm_meta::{self, Contributor};
use super::loose::{
    List, Map, Obj, Val, format_num, opt_nonempty, opt_num, opt_str, req_name, req_str, req_time,
};
use super::region::{alarm_arn, arn_parts, region_code};
use super::text::{clean_text, quote};
use super::{Event, ParseError};
use crate::model::{AlarmState, Alert, Severity, Source, Transport, format_time, stable_id_pair};

/// The `Trigger` of an SNS alarm message: one metric, or `Metrics` for metric math and anomaly
/// detection.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "PascalCase")]
pub(crate) struct Trigger<'a> {
    metric_name: Option<Val<'a>>,
    namespace: Option<Val<'a>>,
    statistic: Option<Val<'a>>,
    extended_statistic: Option<Val<'a>>,
    unit: Option<Val<'a>>,
    dimensions: Option<List<Obj<Dimension<'a>>>>,
    period: Option<Val<'a>>,
    evaluation_periods: Option<Val<'a>>,
    datapoints_to_alarm: Option<Val<'a>>,
    comparison_operator: Option<Val<'a>>,
    threshold: Option<Val<'a>>,
    treat_missing_data: Option<Val<'a>>,
    threshold_metric_id: Option<Val<'a>>,
    metrics: Option<List<Obj<SnsQuery<'a>>>>,
}

/// `{"name": .., "value": ..}`, as SNS writes a dimension.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(crate) struct Dimension<'a> {
    #[serde(alias = "Name")]
    name: Option<Val<'a>>,
    #[serde(alias = "Value")]
    value: Option<Val<'a>>,
}

/// One entry of an SNS `Trigger.Metrics`: an expression or a metric.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "PascalCase")]
pub(crate) struct SnsQuery<'a> {
    id: Option<Val<'a>>,
    expression: Option<Val<'a>>,
    metric_stat: Option<Obj<SnsMetricStat<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "PascalCase")]
pub(crate) struct SnsMetricStat<'a> {
    metric: Option<Obj<SnsMetric<'a>>>,
    period: Option<Val<'a>>,
    stat: Option<Val<'a>>,
    unit: Option<Val<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "PascalCase")]
pub(crate) struct SnsMetric<'a> {
    dimensions: Option<List<Obj<Dimension<'a>>>>,
    metric_name: Option<Val<'a>>,
    namespace: Option<Val<'a>>,
}

/// A child alarm of a composite: SNS `TriggeringChildren` writes `{"Arn": .., "State": ..}`,
/// EventBridge `triggeringAlarms` writes `{"arn": .., "state": ..}`, and AWS documents the SNS
/// list as plain strings; all three are read.
#[derive(Debug)]
pub(crate) enum Child<'a> {
    Named(Val<'a>),
    Object(Obj<ChildObject<'a>>),
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(crate) struct ChildObject<'a> {
    #[serde(alias = "Arn")]
    arn: Option<Val<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Child<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Buffer-free: a string is a name, anything else is read as an object (or reported as the
        // wrong kind later).
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Child<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a child alarm")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Child::Named(Val::Str(v.into())))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Child::Named(Val::Str(v.to_owned().into())))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                ChildObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|c| Child::Object(Obj::Ok(c)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Child::Object(Obj::Wrong("an array")))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Child::Object(Obj::Wrong("null")))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Child::Object(Obj::Wrong("a boolean")))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Child::Object(Obj::Wrong("a number")))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Child::Object(Obj::Wrong("a number")))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Child::Object(Obj::Wrong("a number")))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Child<'_> {
    /// The child's ARN (or name, for the plain-string form).
    fn arn(&self) -> Result<&str, ParseError> {
        match self {
            Child::Named(name) => req_str(Some(name), ""),
            Child::Object(obj) => req_str(obj.get("")?.arn.as_ref(), "arn"),
        }
    }
}

/// EventBridge `detail` and the Lambda action's `alarmData`, which share one shape.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "camelCase")]
pub(crate) struct AlarmData<'a> {
    alarm_name: Option<Val<'a>>,
    state: Option<Obj<StateData<'a>>>,
    previous_state: Option<Obj<StateData<'a>>>,
    configuration: Option<Obj<Configuration<'a>>>,
    alarm_contributor: Option<Box<serde_json::Value>>,
    mute_detail: Option<Box<serde_json::Value>>,
    alarm_tags: Option<Box<serde_json::Value>>,
    alarm_tags_status: Option<Box<serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "camelCase")]
pub(crate) struct StateData<'a> {
    value: Option<Val<'a>>,
    reason: Option<Val<'a>>,
    reason_data: Option<Val<'a>>,
    timestamp: Option<Val<'a>>,
    actions_suppressed_by: Option<Val<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "camelCase")]
pub(crate) struct Configuration<'a> {
    description: Option<Val<'a>>,
    metrics: Option<List<Obj<EbQuery<'a>>>>,
    alarm_rule: Option<Val<'a>>,
    actions_suppressor: Option<Val<'a>>,
    actions_suppressor_wait_period: Option<Val<'a>>,
    actions_suppressor_extension_period: Option<Val<'a>>,
    threshold_metric_id: Option<Val<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "camelCase")]
pub(crate) struct EbQuery<'a> {
    id: Option<Val<'a>>,
    expression: Option<Val<'a>>,
    metric_stat: Option<Obj<EbMetricStat<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(crate) struct EbMetricStat<'a> {
    metric: Option<Obj<EbMetric<'a>>>,
    period: Option<Val<'a>>,
    stat: Option<Val<'a>>,
    unit: Option<Val<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(crate) struct EbMetric<'a> {
    namespace: Option<Val<'a>>,
    name: Option<Val<'a>>,
    dimensions: Option<Obj<Map<'a>>>,
}

/// The JSON inside `state.reasonData`, read only for what SNS states elsewhere.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "camelCase")]
struct ReasonData<'a> {
    threshold: Option<Val<'a>>,
    triggering_alarms: Option<List<Child<'a>>>,
}

/// What the three transports agree on, gathered before the alert is built.
struct Alarm<'v> {
    name: &'v str,
    arn: Option<&'v str>,
    account: Option<&'v str>,
    region: Option<&'v str>,
    state: AlarmState,
    previous: Option<AlarmState>,
    changed_at: DateTime<Utc>,
    reason: Option<&'v str>,
    description: Option<&'v str>,
    shape: Shape,
    /// The time series this transition is about, for a multi-time-series alarm's contributor.
    contributor: Option<Contributor>,
}

/// What the alarm watches, and the routable facts about it.
#[derive(Default)]
struct Shape {
    kind: &'static str,
    namespace: Option<String>,
    metric_name: Option<String>,
    dimensions: BTreeMap<String, String>,
    threshold: Option<f64>,
    labels: BTreeMap<String, String>,
    /// A Metrics Insights query with `GROUP BY`: one time series per group, each a contributor.
    multi_series: bool,
}

impl Shape {
    /// Sets a label unless an earlier, more specific source already did.
    fn label(&mut self, key: &str, value: &str) {
        self.labels
            .entry(key.to_owned())
            .or_insert_with(|| clean_text(value));
    }

    fn num_label(&mut self, key: &str, value: Option<f64>) {
        if let Some(n) = value {
            self.labels
                .entry(key.to_owned())
                .or_insert_with(|| format_num(n));
        }
    }
}

/// A CloudWatch alarm message, as SNS carries it (or as posted on its own).
pub(crate) fn from_alarm_message(
    ev: &Event<'_>,
    transport: Transport,
) -> Result<Alert, ParseError> {
    let name = req_name(ev.alarm_name.as_ref(), "AlarmName")?;
    let state = req_state(ev.new_state_value.as_ref(), "NewStateValue")?;
    let previous = opt_state(ev.old_state_value.as_ref(), "OldStateValue")?;
    let changed_at = req_time(ev.state_change_time.as_ref(), "StateChangeTime")?;
    let arn = opt_nonempty(ev.alarm_arn.as_ref(), "AlarmArn")?;
    let from_arn = arn
        .and_then(arn_parts)
        .filter(|p| region_code(p.region) == Some(p.region));
    let account =
        opt_nonempty(ev.aws_account_id.as_ref(), "AWSAccountId")?.or(from_arn.map(|p| p.account));
    // `Region` is a display name ("EU (Ireland)"); the ARN names the code outright.
    let region_name = opt_nonempty(ev.region_name.as_ref(), "Region")?;
    let region = from_arn
        .map(|p| p.region)
        .or_else(|| region_name.and_then(region_code));

    let mut shape = if let Some(rule) = opt_nonempty(ev.alarm_rule.as_ref(), "AlarmRule")? {
        let mut shape = composite(rule);
        if let Some(children) = &ev.triggering_children {
            shape.children(children, "TriggeringChildren")?;
        }
        shape.suppressor(
            (ev.actions_suppressor.as_ref(), "ActionsSuppressor"),
            (
                ev.actions_suppressor_wait_period.as_ref(),
                "ActionsSuppressorWaitPeriod",
            ),
            (
                ev.actions_suppressor_extension_period.as_ref(),
                "ActionsSuppressorExtensionPeriod",
            ),
        )?;
        shape
    } else {
        match &ev.trigger {
            Some(trigger) => {
                sns_trigger(trigger.get("Trigger")?).map_err(|e| e.within("Trigger"))?
            }
            // Alarm types newer than this reader may come without a Trigger; they still page.
            None => Shape {
                kind: METRIC,
                ..Shape::default()
            },
        }
    };
    if region.is_none() {
        if let Some(display) = region_name {
            shape.label("region_name", display);
        }
    }
    let contributor = extras(
        &mut shape,
        Extras {
            contributor: (ev.alarm_contributor.as_deref(), "AlarmContributor"),
            mute: (ev.mute_detail.as_deref(), "MuteDetail"),
            tags: (ev.alarm_tags.as_deref(), "AlarmTags"),
            tags_status: ev.alarm_tags_status.as_deref(),
        },
        name,
    )?;
    Ok(build(
        Alarm {
            name,
            arn,
            account,
            region,
            state,
            previous,
            changed_at,
            reason: opt_str(ev.new_state_reason.as_ref(), "NewStateReason")?,
            description: opt_str(ev.alarm_description.as_ref(), "AlarmDescription")?,
            shape,
            contributor,
        },
        transport,
    ))
}

fn sns_trigger(t: &Trigger<'_>) -> Result<Shape, ParseError> {
    let mut shape = Shape::default();
    shape.label_opt_str(
        t.comparison_operator.as_ref(),
        "ComparisonOperator",
        "comparison_operator",
    )?;
    shape.num_label(
        "evaluation_periods",
        opt_num(t.evaluation_periods.as_ref(), "EvaluationPeriods")?,
    );
    shape.num_label(
        "datapoints_to_alarm",
        opt_num(t.datapoints_to_alarm.as_ref(), "DatapointsToAlarm")?,
    );
    if let Some(treat) = opt_nonempty(t.treat_missing_data.as_ref(), "TreatMissingData")? {
        shape.label("treat_missing_data", treat_missing_data(treat));
    }
    shape.num_label("period", opt_num(t.period.as_ref(), "Period")?);
    shape.label_opt_str(t.unit.as_ref(), "Unit", "unit")?;
    let threshold = opt_num(t.threshold.as_ref(), "Threshold")?;
    let threshold_metric_id = opt_nonempty(t.threshold_metric_id.as_ref(), "ThresholdMetricId")?;

    if let Some(metrics) = &t.metrics {
        let mut queries = Vec::new();
        for (i, q) in metrics.get("Metrics")?.iter().enumerate() {
            queries.push(sns_query(q).map_err(|e| e.within(&format!("Metrics[{i}]")))?);
        }
        shape.metrics(&mut queries, threshold_metric_id);
    } else {
        let stat = match opt_nonempty(t.extended_statistic.as_ref(), "ExtendedStatistic")? {
            Some(extended) => Some(extended),
            None => opt_nonempty(t.statistic.as_ref(), "Statistic")?,
        };
        let mut single = [Query {
            id: None,
            expression: None,
            metric: Some(Metric {
                namespace: opt_nonempty(t.namespace.as_ref(), "Namespace")?,
                name: opt_nonempty(t.metric_name.as_ref(), "MetricName")?,
                stat,
                period: None,
                unit: None,
                dimensions: sns_dimensions(t.dimensions.as_ref(), "Dimensions")?,
            }),
        }];
        shape.metrics(&mut single, threshold_metric_id);
    }
    if shape.kind != ANOMALY_DETECTION {
        shape.threshold = threshold;
    }
    Ok(shape)
}

fn sns_query<'v>(q: &'v Obj<SnsQuery<'_>>) -> Result<Query<'v>, ParseError> {
    let q = q.get("")?;
    let metric = match &q.metric_stat {
        None => None,
        Some(stat) => {
            let stat = stat.get("MetricStat")?;
            let inner = || -> Result<Metric<'v>, ParseError> {
                let (namespace, name, dimensions) = match &stat.metric {
                    None => (None, None, BTreeMap::new()),
                    Some(m) => {
                        let m = m.get("Metric")?;
                        let inner = || -> Result<_, ParseError> {
                            Ok((
                                opt_nonempty(m.namespace.as_ref(), "Namespace")?,
                                opt_nonempty(m.metric_name.as_ref(), "MetricName")?,
                                sns_dimensions(m.dimensions.as_ref(), "Dimensions")?,
                            ))
                        };
                        inner().map_err(|e| e.within("Metric"))?
                    }
                };
                Ok(Metric {
                    namespace,
                    name,
                    stat: opt_nonempty(stat.stat.as_ref(), "Stat")?,
                    period: opt_num(stat.period.as_ref(), "Period")?,
                    unit: opt_nonempty(stat.unit.as_ref(), "Unit")?,
                    dimensions,
                })
            };
            Some(inner().map_err(|e| e.within("MetricStat"))?)
        }
    };
    Ok(Query {
        id: opt_nonempty(q.id.as_ref(), "Id")?,
        expression: opt_nonempty(q.expression.as_ref(), "Expression")?,
        metric,
    })
}

fn sns_dimensions(
    list: Option<&List<Obj<Dimension<'_>>>>,
    at: &str,
) -> Result<BTreeMap<String, String>, ParseError> {
    let mut out = BTreeMap::new();
    let Some(list) = list else { return Ok(out) };
    for (i, d) in list.get(at)?.iter().enumerate() {
        let one = || -> Result<(&str, &str), ParseError> {
            let d = d.get("")?;
            Ok((
                req_str(d.name.as_ref(), "name")?,
                req_str(d.value.as_ref(), "value")?,
            ))
        };
        let (name, value) = one().map_err(|e| e.within(&format!("{at}[{i}]")))?;
        out.insert(clean_text(name), clean_text(value));
    }
    Ok(out)
}

/// An EventBridge "CloudWatch Alarm State Change" event, its `detail` already read.
pub(crate) fn from_eventbridge(
    ev: &Event<'_>,
    detail: &AlarmData<'_>,
    transport: Transport,
) -> Result<Alert, ParseError> {
    let arn = match &ev.resources {
        None => None,
        Some(resources) => match resources.get("resources")?.first() {
            None => None,
            Some(first) => opt_nonempty(Some(first), "resources[0]")?,
        },
    };
    let account = opt_nonempty(ev.account.as_ref(), "account")?;
    let region = opt_nonempty(ev.region.as_ref(), "region")?;
    alarm_data(detail, arn, account, region, transport).map_err(|e| e.within("detail"))
}

/// The payload a CloudWatch alarm sends when its action invokes a Lambda function directly.
pub(crate) fn from_lambda_action(
    ev: &Event<'_>,
    transport: Transport,
) -> Result<Alert, ParseError> {
    let data = ev
        .alarm_data
        .as_ref()
        .ok_or_else(|| ParseError::new("alarmData", "required field is missing"))?
        .get("alarmData")?;
    let arn = opt_nonempty(ev.lambda_alarm_arn.as_ref(), "alarmArn")?;
    let account = opt_nonempty(ev.lambda_account_id.as_ref(), "accountId")?;
    let region = opt_nonempty(ev.region.as_ref(), "region")?;
    alarm_data(data, arn, account, region, transport).map_err(|e| e.within("alarmData"))
}

fn alarm_data(
    d: &AlarmData<'_>,
    arn: Option<&str>,
    account: Option<&str>,
    region: Option<&str>,
    transport: Transport,
) -> Result<Alert, ParseError> {
    let name = req_name(d.alarm_name.as_ref(), "alarmName")?;
    let state = d
        .state
        .as_ref()
        .ok_or_else(|| ParseError::new("state", "required field is missing"))?
        .get("state")?;
    let (value, changed_at, reason, reason_data) = (|| -> Result<_, ParseError> {
        Ok((
            req_state(state.value.as_ref(), "value")?,
            req_time(state.timestamp.as_ref(), "timestamp")?,
            opt_str(state.reason.as_ref(), "reason")?,
            opt_nonempty(state.reason_data.as_ref(), "reasonData")?,
        ))
    })()
    .map_err(|e| e.within("state"))?;
    let previous = match &d.previous_state {
        None => None,
        Some(p) => opt_state(
            p.get("previousState")?.value.as_ref(),
            "previousState.value",
        )?,
    };
    // reasonData is informative JSON in a string; a payload whose reasonData cannot be read is
    // still a good alarm, so it only loses the facts taken from there.
    let reason_data = reason_data.and_then(|s| match serde_json::from_str::<Obj<ReasonData>>(s) {
        Ok(Obj::Ok(r)) => Some(r),
        _ => None,
    });
    let config = match &d.configuration {
        None => None,
        Some(c) => Some(c.get("configuration")?),
    };
    let mut shape = match config {
        None => Shape {
            kind: METRIC,
            ..Shape::default()
        },
        Some(c) => {
            eventbridge_shape(c, reason_data.as_ref()).map_err(|e| e.within("configuration"))?
        }
    };
    if let Some(by) = opt_nonempty(
        state.actions_suppressed_by.as_ref(),
        "state.actionsSuppressedBy",
    )? {
        shape.label("actions_suppressed_by", by);
    }
    let contributor = extras(
        &mut shape,
        Extras {
            contributor: (d.alarm_contributor.as_deref(), "alarmContributor"),
            mute: (d.mute_detail.as_deref(), "muteDetail"),
            tags: (d.alarm_tags.as_deref(), "alarmTags"),
            tags_status: d.alarm_tags_status.as_deref(),
        },
        name,
    )?;
    let from_arn = arn
        .and_then(arn_parts)
        .filter(|p| region_code(p.region) == Some(p.region));
    Ok(build(
        Alarm {
            name,
            arn,
            account: account.or(from_arn.map(|p| p.account)),
            region: region.or(from_arn.map(|p| p.region)),
            state: value,
            previous,
            changed_at,
            reason,
            description: match config {
                Some(c) => opt_str(c.description.as_ref(), "configuration.description")?,
                None => None,
            },
            shape,
            contributor,
        },
        transport,
    ))
}

fn eventbridge_shape(
    c: &Configuration<'_>,
    reason_data: Option<&ReasonData<'_>>,
) -> Result<Shape, ParseError> {
    if let Some(rule) = opt_nonempty(c.alarm_rule.as_ref(), "alarmRule")? {
        let mut shape = composite(rule);
        if let Some(children) = reason_data.and_then(|r| r.triggering_alarms.as_ref()) {
            // Lenient: this list comes from reasonData, which is informative only.
            let _ = shape.children(children, "triggeringAlarms");
        }
        shape.suppressor(
            (c.actions_suppressor.as_ref(), "actionsSuppressor"),
            (
                c.actions_suppressor_wait_period.as_ref(),
                "actionsSuppressorWaitPeriod",
            ),
            (
                c.actions_suppressor_extension_period.as_ref(),
                "actionsSuppressorExtensionPeriod",
            ),
        )?;
        return Ok(shape);
    }
    let mut queries = Vec::new();
    if let Some(metrics) = &c.metrics {
        for (i, q) in metrics.get("metrics")?.iter().enumerate() {
            queries.push(eb_query(q).map_err(|e| e.within(&format!("metrics[{i}]")))?);
        }
    }
    let mut shape = Shape::default();
    let threshold_metric_id = opt_nonempty(c.threshold_metric_id.as_ref(), "thresholdMetricId")?;
    shape.metrics(&mut queries, threshold_metric_id);
    if shape.kind != ANOMALY_DETECTION {
        shape.threshold = reason_data
            .and_then(|r| opt_num(r.threshold.as_ref(), "").ok())
            .flatten();
    }
    Ok(shape)
}

fn eb_query<'v>(q: &'v Obj<EbQuery<'_>>) -> Result<Query<'v>, ParseError> {
    let q = q.get("")?;
    let metric = match &q.metric_stat {
        None => None,
        Some(stat) => {
            let stat = stat.get("metricStat")?;
            let inner = || -> Result<Metric<'v>, ParseError> {
                let (namespace, name, dimensions) = match &stat.metric {
                    None => (None, None, BTreeMap::new()),
                    Some(m) => {
                        let m = m.get("metric")?;
                        let inner = || -> Result<_, ParseError> {
                            let mut dims = BTreeMap::new();
                            if let Some(d) = &m.dimensions {
                                for (k, v) in &d.get("dimensions")?.0 {
                                    let v = req_str(Some(v), &format!("dimensions.{k}"))?;
                                    dims.insert(clean_text(k), clean_text(v));
                                }
                            }
                            Ok((
                                opt_nonempty(m.namespace.as_ref(), "namespace")?,
                                opt_nonempty(m.name.as_ref(), "name")?,
                                dims,
                            ))
                        };
                        inner().map_err(|e| e.within("metric"))?
                    }
                };
                Ok(Metric {
                    namespace,
                    name,
                    stat: opt_nonempty(stat.stat.as_ref(), "stat")?,
                    period: opt_num(stat.period.as_ref(), "period")?,
                    unit: opt_nonempty(stat.unit.as_ref(), "unit")?,
                    dimensions,
                })
            };
            Some(inner().map_err(|e| e.within("metricStat"))?)
        }
    };
    Ok(Query {
        id: opt_nonempty(q.id.as_ref(), "id")?,
        expression: opt_nonempty(q.expression.as_ref(), "expression")?,
        metric,
    })
}

/// The 2025–26 additions a payload may carry, each with the field name its transport uses.
struct Extras<'v> {
    contributor: (Option<&'v serde_json::Value>, &'static str),
    mute: (Option<&'v serde_json::Value>, &'static str),
    tags: (Option<&'v serde_json::Value>, &'static str),
    tags_status: Option<&'v serde_json::Value>,
}

/// Reads the contributor, mute rule and tags into labels (see [`alarm_meta`]); returns the
/// contributor, which also changes the alert's identity. The parent alarm of a multi-time-series
/// alarm is marked `alarm_role: parent`, so that the router can keep it apart from its
/// contributors.
fn extras(shape: &mut Shape, x: Extras<'_>, name: &str) -> Result<Option<Contributor>, ParseError> {
    let contributor = match x.contributor.0 {
        None => None,
        Some(v) => Some(alarm_meta::contributor(v, x.contributor.1)?),
    };
    match &contributor {
        Some(c) => alarm_meta::contributor_labels(c, name, &mut shape.labels),
        None if shape.kind == METRICS_INSIGHTS && shape.multi_series => {
            shape.label(alarm_meta::ROLE_LABEL, "parent");
        }
        None => {}
    }
    if let Some(m) = x.mute.0 {
        alarm_meta::mute_labels(m, x.mute.1, &mut shape.labels)?;
    }
    alarm_meta::tag_labels(x.tags.0, x.tags_status, x.tags.1, &mut shape.labels)?;
    Ok(contributor)
}

const METRIC: &str = "metric";
const METRICS_INSIGHTS: &str = "metrics_insights";
const METRIC_MATH: &str = "metric_math";
const ANOMALY_DETECTION: &str = "anomaly_detection";
const COMPOSITE: &str = "composite";

/// One metric query of an alarm, whichever transport described it.
struct Query<'v> {
    id: Option<&'v str>,
    expression: Option<&'v str>,
    metric: Option<Metric<'v>>,
}

struct Metric<'v> {
    namespace: Option<&'v str>,
    name: Option<&'v str>,
    stat: Option<&'v str>,
    period: Option<f64>,
    unit: Option<&'v str>,
    dimensions: BTreeMap<String, String>,
}

fn composite(rule: &str) -> Shape {
    let mut shape = Shape {
        kind: COMPOSITE,
        ..Shape::default()
    };
    shape.label("alarm_rule", rule);
    shape
}

impl Shape {
    /// The alarm's kind and metric facts from its metric queries. One rule for every transport, so
    /// the same alarm gets the same kind: an anomaly detection band (or a threshold metric id) makes
    /// `anomaly_detection`, any other expression `metric_math`, and plain metrics `metric`.
    fn metrics(&mut self, queries: &mut [Query<'_>], threshold_metric_id: Option<&str>) {
        let band = queries
            .iter()
            .find(|q| q.expression.is_some_and(is_anomaly_band));
        let insights = queries
            .iter()
            .find_map(|q| q.expression.filter(|e| is_insights_query(e)));
        self.multi_series = insights.is_some_and(|e| {
            e.to_ascii_uppercase()
                .split_ascii_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| w == ["GROUP", "BY"])
        });
        self.kind = if threshold_metric_id.is_some() || band.is_some() {
            ANOMALY_DETECTION
        } else if insights.is_some() {
            METRICS_INSIGHTS
        } else if queries.iter().any(|q| q.expression.is_some()) {
            METRIC_MATH
        } else {
            METRIC
        };
        if let Some(expression) = queries.iter().find_map(|q| q.expression) {
            self.label("expression", expression);
        }
        if let Some(id) = threshold_metric_id.or(band.and_then(|q| q.id)) {
            self.label("threshold_metric_id", id);
        }

        let mut metrics = queries.iter_mut().filter_map(|q| q.metric.as_mut());
        let Some(first) = metrics.next() else { return };
        let mut others = metrics.peekable();
        if others.peek().is_none() {
            self.namespace = first.namespace.map(str::to_owned);
            self.metric_name = first.name.map(str::to_owned);
            self.dimensions = std::mem::take(&mut first.dimensions);
            if let Some(stat) = first.stat {
                let (key, value) = statistic(stat);
                self.label(key, value);
            }
            self.num_label("period", first.period);
            if let Some(unit) = first.unit {
                self.label("unit", unit);
            }
        } else if others.all(|m| m.namespace == first.namespace) {
            // Several metrics: only what they all share describes the alarm.
            self.namespace = first.namespace.map(str::to_owned);
        }
    }

    fn children(&mut self, children: &List<Child<'_>>, at: &str) -> Result<(), ParseError> {
        let mut joined = String::new();
        for (i, child) in children.get(at)?.iter().enumerate() {
            let arn = child.arn().map_err(|e| e.within(&format!("{at}[{i}]")))?;
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(arn);
        }
        if !joined.is_empty() {
            self.label("triggering_children", &joined);
        }
        Ok(())
    }

    /// The composite's actions suppressor and its wait and extension periods, each given with the
    /// field name its transport uses.
    fn suppressor(
        &mut self,
        alarm: (Option<&Val<'_>>, &str),
        wait: (Option<&Val<'_>>, &str),
        extension: (Option<&Val<'_>>, &str),
    ) -> Result<(), ParseError> {
        self.label_opt_str(alarm.0, alarm.1, "actions_suppressor")?;
        self.num_label("actions_suppressor_wait_period", opt_num(wait.0, wait.1)?);
        self.num_label(
            "actions_suppressor_extension_period",
            opt_num(extension.0, extension.1)?,
        );
        Ok(())
    }

    fn label_opt_str(
        &mut self,
        v: Option<&Val<'_>>,
        at: &str,
        key: &str,
    ) -> Result<(), ParseError> {
        if let Some(s) = opt_nonempty(v, at)? {
            self.label(key, s);
        }
        Ok(())
    }
}

/// A Metrics Insights query (`SELECT AVG(..) FROM ..`), as opposed to a metric math expression.
fn is_insights_query(expression: &str) -> bool {
    let e = expression.trim_start().as_bytes();
    e.len() > 7 && e[..7].eq_ignore_ascii_case(b"SELECT ")
}

fn is_anomaly_band(expression: &str) -> bool {
    const BAND: &str = "ANOMALY_DETECTION_BAND";
    let e = expression.trim_start().as_bytes();
    e.len() >= BAND.len() && e[..BAND.len()].eq_ignore_ascii_case(BAND.as_bytes())
}

/// The label for a statistic: SNS writes the standard ones in capitals (`AVERAGE`), EventBridge as
/// CloudWatch names them (`Average`); both become the CloudWatch name. Percentiles and other
/// extended statistics (`p99`, `tm90`) keep their spelling.
fn statistic(stat: &str) -> (&'static str, &str) {
    const STANDARD: [(&str, &str); 5] = [
        ("SampleCount", "SAMPLE_COUNT"),
        ("Average", "AVERAGE"),
        ("Sum", "SUM"),
        ("Minimum", "MINIMUM"),
        ("Maximum", "MAXIMUM"),
    ];
    for (name, caps) in STANDARD {
        if stat.eq_ignore_ascii_case(name) || stat == caps {
            return ("statistic", name);
        }
    }
    ("extended_statistic", stat)
}

/// Older SNS payloads write `"- TreatMissingData:                    missing"`.
fn treat_missing_data(raw: &str) -> &str {
    let s = raw.trim();
    s.strip_prefix("- TreatMissingData:").map_or(s, str::trim)
}

fn req_state(v: Option<&Val<'_>>, at: &str) -> Result<AlarmState, ParseError> {
    let s = req_str(v, at)?;
    AlarmState::parse(s).ok_or_else(|| unknown_state(at, s))
}

fn opt_state(v: Option<&Val<'_>>, at: &str) -> Result<Option<AlarmState>, ParseError> {
    match opt_nonempty(v, at)? {
        None => Ok(None),
        Some(s) => AlarmState::parse(s)
            .map(Some)
            .ok_or_else(|| unknown_state(at, s)),
    }
}

fn unknown_state(at: &str, s: &str) -> ParseError {
    ParseError::new(
        at,
        format!(
            "unknown state {} (expected ALARM, OK or INSUFFICIENT_DATA)",
            quote(s)
        ),
    )
}

/// An alarm's fingerprint (from its ARN, and its contributor's id for a contributor) and the event
/// id of one transition. [`fill_region`] computes them again after a fallback filled the region in.
fn ids(key: &str, contributor: Option<&str>, state: AlarmState, time: &str) -> (String, String) {
    match contributor {
        None => stable_id_pair(&["cloudwatch", key], &[state.as_str(), time]),
        Some(id) => stable_id_pair(
            &["cloudwatch", key, "contributor", id],
            &[state.as_str(), time],
        ),
    }
}

/// Gives a CloudWatch alert that came with no region (an older SNS message without `AlarmArn`
/// and a `Region` name not recognised) the region of the SNS topic it came through, which AWS
/// requires to be the alarm's own; the ARN it builds and the ids follow, so the alert
/// deduplicates against the same transition seen with an ARN. No change to any other alert.
pub(crate) fn fill_region(alert: &mut Alert, region: &str) {
    if alert.source != Source::Cloudwatch || alert.region.is_some() || alert.alarm_arn.is_some() {
        return;
    }
    let Some(account) = alert.account_id.clone() else {
        alert.region = Some(region.to_owned());
        return;
    };
    let arn = alarm_arn(region, &account, &alert.alarm_name);
    let contributor = alert.labels.get(alarm_meta::CONTRIBUTOR_LABEL).cloned();
    let (fingerprint, event_id) = ids(
        &arn,
        contributor.as_deref(),
        alert.state,
        &format_time(&alert.state_changed_at),
    );
    alert.fingerprint = fingerprint;
    alert.event_id = event_id;
    alert.alarm_arn = Some(arn);
    alert.region = Some(region.to_owned());
    alert
        .labels
        .insert("region_from".to_owned(), "sns_topic".to_owned());
}

/// The one place a CloudWatch alert is made, so every transport computes its identity alike.
fn build(a: Alarm<'_>, transport: Transport) -> Alert {
    // Payloads without an ARN (older SNS messages) get the ARN CloudWatch would have written, so
    // that they dedup against the same transition arriving with one.
    let built = match (a.arn, a.region, a.account) {
        (None, Some(region), Some(account)) => Some(alarm_arn(region, account, a.name)),
        _ => None,
    };
    let alarm_arn = a.arn.map(str::to_owned).or(built);
    let key = match &alarm_arn {
        Some(arn) => std::borrow::Cow::Borrowed(arn.as_str()),
        None => std::borrow::Cow::Owned(format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{}",
            a.region.unwrap_or(""),
            a.account.unwrap_or(""),
            a.name
        )),
    };
    let time = format_time(&a.changed_at);
    let (fingerprint, event_id) = ids(
        &key,
        a.contributor.as_ref().map(|c| c.id.as_str()),
        a.state,
        &time,
    );
    Alert {
        event_id,
        fingerprint,
        source: Source::Cloudwatch,
        transport,
        alarm_name: a.name.to_owned(),
        alarm_arn,
        account_id: a.account.map(str::to_owned),
        region: a.region.map(str::to_owned),
        state: a.state,
        previous_state: a.previous,
        state_changed_at: a.changed_at,
        reason: a.reason.map(clean_text).unwrap_or_default(),
        kind: a.shape.kind.to_owned(),
        namespace: a.shape.namespace,
        metric_name: a.shape.metric_name,
        dimensions: a.shape.dimensions,
        threshold: a.shape.threshold,
        severity: Severity::Medium,
        description: a.description.map(clean_text).unwrap_or_default(),
        labels: a.shape.labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sns_capitals_and_eventbridge_names_give_one_statistic_label() {
        assert_eq!(statistic("AVERAGE"), ("statistic", "Average"));
        assert_eq!(statistic("Average"), ("statistic", "Average"));
        assert_eq!(statistic("SAMPLE_COUNT"), ("statistic", "SampleCount"));
        assert_eq!(statistic("p99"), ("extended_statistic", "p99"));
    }

    #[test]
    fn old_treat_missing_data_spelling_is_unwrapped() {
        assert_eq!(
            treat_missing_data("- TreatMissingData:      notBreaching"),
            "notBreaching"
        );
        assert_eq!(treat_missing_data("missing"), "missing");
    }

    #[test]
    fn anomaly_bands_are_recognised_in_any_case() {
        assert!(is_anomaly_band("ANOMALY_DETECTION_BAND(m1, 2)"));
        assert!(is_anomaly_band(" anomaly_detection_band(m1)"));
        assert!(!is_anomaly_band("m1 + m2"));
    }
}
