//! Availability signals beyond alarms, as EventBridge delivers them: CloudWatch Synthetics canary
//! runs and status changes, ECS deployments, service actions and stopped tasks, RDS instance and
//! cluster events, EC2 instance state changes and Spot interruption warnings, Auto Scaling launch,
//! terminate and instance refresh outcomes, GuardDuty findings and Security Hub findings.
//!
//! Each becomes a canonical alert with a default severity (kept in `labels.severity`, so that the
//! configured severity rules still override it), a fingerprint per thing (canary, ECS service, DB,
//! instance, Auto Scaling group, finding) and a resolution where the source has one; the mapping
//! is tabled in `docs/sources.md`. Transitional states that are neither a failure nor a recovery
//! (an ECS deployment in progress, an EC2 instance pending, a task that has not stopped) are
//! skipped with their reason.
//!
//! The details are read as `serde_json::Value` rather than a lenient type per shape: ten small
//! shapes, each read once per event and off the CloudWatch hot path, and the accessors below still
//! report every type problem with its field path.

use std::collections::BTreeMap;

use serde_json::Value;

use super::eventbridge::{first_resource, read_detail, required};
use super::loose::{Val, format_num, opt_nonempty, req_time};
use super::text::{check_name, clean_text, parse_time, quote};
use super::{Event, ParseError, Parsed, Skipped, push_one};
use crate::model::{AlarmState, Alert, Severity, Source, Transport, format_time, stable_id};

/// Reads the event into `out` when it is a kind this module knows; `Ok(false)` when it is not.
pub(crate) fn parse(
    ev: &Event<'_>,
    source: &str,
    detail_type: &str,
    transport: Transport,
    out: &mut Parsed,
) -> Result<bool, ParseError> {
    let reader: fn(&Ctx<'_>, &Value, &mut Parsed) -> Result<(), ParseError> =
        match (source, detail_type) {
            ("aws.synthetics", "Synthetics Canary TestRun Failure")
            | ("aws.synthetics", "Synthetics Canary TestRun Successful") => canary_run,
            ("aws.synthetics", "Synthetics Canary Status Change") => canary_status,
            ("aws.ecs", "ECS Deployment State Change") => ecs_deployment,
            ("aws.ecs", "ECS Service Action") => ecs_service_action,
            ("aws.ecs", "ECS Task State Change") => ecs_task,
            ("aws.rds", "RDS DB Instance Event" | "RDS DB Cluster Event") => rds,
            ("aws.ec2", "EC2 Instance State-change Notification") => ec2_state,
            ("aws.ec2", "EC2 Spot Instance Interruption Warning") => ec2_spot,
            (
                "aws.autoscaling",
                "EC2 Instance Launch Unsuccessful"
                | "EC2 Instance Launch Successful"
                | "EC2 Instance Terminate Unsuccessful"
                | "EC2 Instance Terminate Successful"
                | "EC2 Auto Scaling Instance Refresh Failed"
                | "EC2 Auto Scaling Instance Refresh Succeeded",
            ) => autoscaling,
            ("aws.guardduty", "GuardDuty Finding") => guardduty,
            ("aws.securityhub", "Security Hub Findings - Imported") => securityhub,
            (source, detail_type) if outcome_of(source, detail_type).is_some() => outcome,
            ("aws.rds", "RDS DB Snapshot Event" | "RDS DB Cluster Snapshot Event") => rds_snapshot,
            (source, detail_type) if is_routine(source, detail_type) => routine,
            _ => return Ok(false),
        };
    let detail: Value = read_detail(required(ev)?)?;
    if !detail.is_object() {
        return Err(ParseError::new(
            "detail",
            format!("expected an object, found {}", describe(&detail)),
        ));
    }
    let ctx = Ctx {
        source,
        detail_type,
        transport,
        id: opt_nonempty(ev.id.as_ref(), "id")?.unwrap_or(""),
        time: ev.time.as_ref(),
        account: opt_nonempty(ev.account.as_ref(), "account")?,
        region: opt_nonempty(ev.region.as_ref(), "region")?,
        resource: first_resource(ev)?,
    };
    let first = out.rejected.len();
    reader(&ctx, &detail, out).map_err(from_detail)?;
    for e in &mut out.rejected[first..] {
        *e = from_detail(std::mem::replace(e, ParseError::new("", "")));
    }
    Ok(true)
}

/// Errors of the readers are relative to `detail`, but for those about the envelope, which the
/// readers mark `(event).`.
fn from_detail(e: ParseError) -> ParseError {
    match e.at.strip_prefix(ENVELOPE) {
        Some(at) => ParseError::new(at, e.reason),
        None => e.within("detail"),
    }
}

/// Marks an error path as the envelope's, not the detail's.
const ENVELOPE: &str = "(event).";

/// What every signal takes from the envelope.
struct Ctx<'v> {
    source: &'v str,
    detail_type: &'v str,
    transport: Transport,
    id: &'v str,
    time: Option<&'v Val<'v>>,
    account: Option<&'v str>,
    region: Option<&'v str>,
    resource: Option<&'v str>,
}

impl Ctx<'_> {
    /// The envelope's `time`: when the thing happened, for shapes whose detail says no better.
    fn time(&self) -> Result<chrono::DateTime<chrono::Utc>, ParseError> {
        req_time(self.time, "time").map_err(|mut e| {
            // The caller prefixes `detail`; the envelope's field is not in it.
            e.at = format!("{ENVELOPE}{}", e.at);
            e
        })
    }

    fn skip(&self, out: &mut Parsed, reason: String) {
        out.skipped.push(Skipped {
            at: String::new(),
            reason: format!("{}: {reason}", self.detail_type),
        });
    }
}

/// What differs between signals; [`build`] makes the alert from it alike for all.
struct Signal {
    source: Source,
    /// What identifies the thing across events (canary, service, DB, instance, group, finding).
    key: String,
    name: String,
    state: AlarmState,
    changed_at: chrono::DateTime<chrono::Utc>,
    reason: String,
    description: String,
    kind: &'static str,
    severity: Severity,
    arn: Option<String>,
    account: Option<String>,
    region: Option<String>,
    labels: BTreeMap<String, String>,
}

impl Signal {
    fn new(ctx: &Ctx<'_>, source: Source, kind: &'static str) -> Signal {
        Signal {
            source,
            key: String::new(),
            name: String::new(),
            state: AlarmState::Alarm,
            changed_at: chrono::DateTime::UNIX_EPOCH,
            reason: String::new(),
            description: String::new(),
            kind,
            severity: Severity::Medium,
            arn: ctx.resource.map(clean_text),
            account: ctx.account.map(clean_text),
            region: ctx.region.map(clean_text),
            labels: BTreeMap::new(),
        }
    }

    fn label(&mut self, key: &str, value: &str) {
        if !value.trim().is_empty() {
            self.labels.insert(key.to_owned(), clean_text(value));
        }
    }

    /// Copies each optional string field of `d` present to its label: `(field, label)` pairs.
    fn labels_from(&mut self, d: &Value, pairs: &[(&str, &str)]) -> Result<(), ParseError> {
        for (field, label) in pairs {
            if let Some(v) = opt_s(d, field)? {
                self.label(label, v);
            }
        }
        Ok(())
    }
}

/// One place where a signal becomes an alert, so that every source computes its identity alike:
/// `fingerprint = stable_id([source, key])`, `event_id` adds the state, the time and the
/// EventBridge event id (the same event redelivered, or seen through SNS, keeps its id).
fn build(ctx: &Ctx<'_>, mut s: Signal) -> Alert {
    let source = s.source.as_str();
    let time = format_time(&s.changed_at);
    s.labels
        .insert("detail_type".to_owned(), clean_text(ctx.detail_type));
    s.labels
        .insert("severity".to_owned(), s.severity.as_str().to_owned());
    Alert {
        event_id: stable_id(&[source, &s.key, s.state.as_str(), &time, ctx.id]),
        fingerprint: stable_id(&[source, &s.key]),
        source: s.source,
        transport: ctx.transport,
        alarm_name: s.name,
        alarm_arn: s.arn,
        account_id: s.account,
        region: s.region,
        state: s.state,
        previous_state: None,
        state_changed_at: s.changed_at,
        reason: clean_text(&s.reason),
        kind: s.kind.to_owned(),
        namespace: None,
        metric_name: None,
        dimensions: BTreeMap::new(),
        threshold: None,
        severity: s.severity,
        description: clean_text(&s.description),
        labels: s.labels,
    }
}

// ------------------------------------------------------------------------------------------------
// Accessors: each names the field it read in its error, relative to the object it was given.

pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", quote(s)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

fn field<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// An optional, non-empty string.
fn opt_s<'v>(v: &'v Value, key: &str) -> Result<Option<&'v str>, ParseError> {
    match field(v, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.trim().is_empty())),
        Some(other) => Err(ParseError::new(
            key,
            format!("expected a string, found {}", describe(other)),
        )),
    }
}

/// A required string.
fn req_s<'v>(v: &'v Value, key: &str) -> Result<&'v str, ParseError> {
    opt_s(v, key)?.ok_or_else(|| ParseError::new(key, "required field is missing"))
}

/// A required name: plain text, as routing rules match it.
fn req_name_s<'v>(v: &'v Value, key: &str) -> Result<&'v str, ParseError> {
    let s = req_s(v, key)?;
    check_name(s).map_err(|reason| ParseError::new(key, reason))?;
    Ok(s)
}

/// An optional number; numeric strings are accepted, as AWS writes some numbers as strings.
fn opt_n(v: &Value, key: &str) -> Result<Option<f64>, ParseError> {
    match field(v, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Some(n)),
            _ => Err(ParseError::new(
                key,
                format!("expected a number, found string {}", quote(s)),
            )),
        },
        Some(other) => Err(ParseError::new(
            key,
            format!("expected a number, found {}", describe(other)),
        )),
    }
}

/// An optional object.
fn opt_obj<'v>(v: &'v Value, key: &str) -> Result<Option<&'v Value>, ParseError> {
    match field(v, key) {
        None => Ok(None),
        Some(o @ Value::Object(_)) => Ok(Some(o)),
        Some(other) => Err(ParseError::new(
            key,
            format!("expected an object, found {}", describe(other)),
        )),
    }
}

/// An optional array; absent is empty.
fn opt_arr<'v>(v: &'v Value, key: &str) -> Result<&'v [Value], ParseError> {
    match field(v, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(ParseError::new(
            key,
            format!("expected an array, found {}", describe(other)),
        )),
    }
}

/// An array of strings, comma-joined.
fn joined(v: &Value, key: &str) -> Result<String, ParseError> {
    let mut out = Vec::new();
    for (i, item) in opt_arr(v, key)?.iter().enumerate() {
        match item {
            Value::String(s) if !s.trim().is_empty() => out.push(s.as_str()),
            Value::String(_) | Value::Null => {}
            other => {
                return Err(ParseError::new(
                    format!("{key}[{i}]"),
                    format!("expected a string, found {}", describe(other)),
                ));
            }
        }
    }
    Ok(out.join(","))
}

/// An optional RFC 3339 timestamp.
fn opt_t(v: &Value, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ParseError> {
    match opt_s(v, key)? {
        None => Ok(None),
        Some(s) => parse_time(s).map(Some).ok_or_else(|| {
            ParseError::new(
                key,
                format!(
                    "invalid timestamp {} (expected RFC 3339, such as 2024-03-01T10:15:00Z)",
                    quote(s)
                ),
            )
        }),
    }
}

/// An optional time written either as RFC 3339 or, as CloudWatch Synthetics documents its
/// `updated-on` and `canary-run-timeline` fields, as epoch seconds (with a fraction or not).
fn opt_t_or_epoch(
    v: &Value,
    key: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ParseError> {
    match field(v, key) {
        Some(Value::Number(n)) => {
            let secs = n.as_f64().filter(|s| s.is_finite() && *s >= 0.0);
            secs.and_then(|s| {
                // Seconds and milliseconds: both are seen; a value past the year 5000 in seconds
                // is taken as milliseconds.
                let millis = if s > 1e11 { s } else { s * 1000.0 };
                // In range: the filter above and chrono's own check below bound it.
                #[allow(clippy::cast_possible_truncation)]
                chrono::DateTime::from_timestamp_millis(millis.round() as i64)
            })
            // RFC 3339, which an alert is written in, has no year past 9999.
            .filter(|t| chrono::Datelike::year(t) <= 9999)
            .map(Some)
            .ok_or_else(|| ParseError::new(key, format!("epoch time {n} is out of range")))
        }
        _ => opt_t(v, key),
    }
}

/// A Synthetics text field; the service writes the string `"null"` for none.
fn opt_synthetics_s<'v>(v: &'v Value, key: &str) -> Result<Option<&'v str>, ParseError> {
    Ok(opt_s(v, key)?.filter(|s| !s.eq_ignore_ascii_case("null")))
}

/// The last part of an ARN's resource (`service/cluster/name` gives `name`).
fn arn_tail(arn: &str) -> &str {
    arn.rsplit(['/', ':']).next().unwrap_or(arn)
}

// ------------------------------------------------------------------------------------------------
// Routine events, and builds and jobs

/// Events AWS sends as a matter of course, with nothing in them saying that anything is wrong: a
/// rule that matches too widely sends them, and each is skipped with its reason rather than paged
/// as an unknown event.
const ROUTINE: [(&str, &str); 17] = [
    // One instance's part in a deployment: the deployment's own event says how it went.
    (
        "aws.codedeploy",
        "CodeDeploy Instance State-change Notification",
    ),
    ("aws.autoscaling", "EC2 Instance-launch Lifecycle Action"),
    ("aws.autoscaling", "EC2 Instance-terminate Lifecycle Action"),
    ("aws.events", "Scheduled Event"),
    ("aws.scheduler", "Scheduled Event"),
    ("aws.ecs", "ECS Container Instance State Change"),
    ("aws.codebuild", "CodeBuild Build Phase Change"),
    ("aws.ecr", "ECR Image Action"),
    ("aws.ecr", "ECR Image Scan"),
    ("aws.ecr", "ECR Pull Through Cache Action"),
    ("aws.glue", "Glue Data Catalog Database State Change"),
    ("aws.glue", "Glue Data Catalog Table State Change"),
    ("aws.s3", "Object Created"),
    ("aws.s3", "Object Deleted"),
    ("aws.s3", "Object Restore Completed"),
    ("aws.s3", "Object Restore Initiated"),
    ("aws.s3", "Object Restore Expired"),
];

fn is_routine(source: &str, detail_type: &str) -> bool {
    ROUTINE.contains(&(source, detail_type))
}

/// Skips a routine event, saying what it was about where the detail names it.
fn routine(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let about = [
        "AutoScalingGroupName",
        "LifecycleTransition",
        "project-name",
        "completed-phase",
        "repository-name",
        "action-type",
        "scan-status",
        "databaseName",
        "status",
    ]
    .iter()
    .filter_map(|k| {
        opt_s(d, k)
            .ok()
            .flatten()
            .map(|v| format!("{k} {}", quote(v)))
    })
    .collect::<Vec<_>>();
    let about = if about.is_empty() {
        String::new()
    } else {
        format!(" ({})", about.join(", "))
    };
    ctx.skip(
        out,
        format!(
            "a routine {} event{about}: nothing in it says something is wrong",
            ctx.source
        ),
    );
    Ok(())
}

/// A build, job, pipeline or deployment whose event says how it ended: which field names the
/// thing, which holds its state, and which states are a failure (fires) or a success (resolves).
/// Any other state (started, in progress, stopped or cancelled by someone) is skipped, saying so.
struct Outcome {
    source: &'static str,
    detail_type: &'static str,
    /// Names the thing: one alert per thing, and its `alarm_name` is `{name}-{suffix}`.
    name_field: &'static str,
    suffix: &'static str,
    state_field: &'static str,
    failed: &'static [&'static str],
    succeeded: &'static [&'static str],
    /// Further fields that make the thing (a stage of a pipeline, an action of a stage).
    part_fields: &'static [&'static str],
    kind: &'static str,
}

const OUTCOMES: [Outcome; 7] = [
    Outcome {
        source: "aws.codebuild",
        detail_type: "CodeBuild Build State Change",
        name_field: "project-name",
        suffix: "build",
        state_field: "build-status",
        failed: &["FAILED", "FAULT", "TIMED_OUT"],
        succeeded: &["SUCCEEDED"],
        part_fields: &[],
        kind: "build",
    },
    Outcome {
        source: "aws.glue",
        detail_type: "Glue Job State Change",
        name_field: "jobName",
        suffix: "job",
        state_field: "state",
        failed: &["FAILED", "TIMEOUT", "ERROR"],
        succeeded: &["SUCCEEDED"],
        part_fields: &[],
        kind: "job",
    },
    Outcome {
        source: "aws.glue",
        detail_type: "Glue Crawler State Change",
        name_field: "crawlerName",
        suffix: "crawler",
        state_field: "state",
        failed: &["Failed"],
        succeeded: &["Succeeded"],
        part_fields: &[],
        kind: "job",
    },
    Outcome {
        source: "aws.codepipeline",
        detail_type: "CodePipeline Pipeline Execution State Change",
        name_field: "pipeline",
        suffix: "pipeline",
        state_field: "state",
        failed: &["FAILED"],
        succeeded: &["SUCCEEDED"],
        part_fields: &[],
        kind: "pipeline",
    },
    Outcome {
        source: "aws.codepipeline",
        detail_type: "CodePipeline Stage Execution State Change",
        name_field: "pipeline",
        suffix: "stage",
        state_field: "state",
        failed: &["FAILED"],
        succeeded: &["SUCCEEDED"],
        part_fields: &["stage"],
        kind: "pipeline",
    },
    Outcome {
        source: "aws.codepipeline",
        detail_type: "CodePipeline Action Execution State Change",
        name_field: "pipeline",
        suffix: "action",
        state_field: "state",
        failed: &["FAILED"],
        succeeded: &["SUCCEEDED"],
        part_fields: &["stage", "action"],
        kind: "pipeline",
    },
    Outcome {
        source: "aws.codedeploy",
        detail_type: "CodeDeploy Deployment State-change Notification",
        name_field: "deploymentGroup",
        suffix: "deployment",
        state_field: "state",
        failed: &["FAILURE"],
        succeeded: &["SUCCESS"],
        part_fields: &["application"],
        kind: "deployment",
    },
];

fn outcome_of(source: &str, detail_type: &str) -> Option<&'static Outcome> {
    OUTCOMES
        .iter()
        .find(|o| o.source == source && o.detail_type == detail_type)
}

/// Reads an event of [`OUTCOMES`]: a failure fires (medium), a success resolves, one alert per
/// thing; other states are skipped.
fn outcome(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let Some(o) = outcome_of(ctx.source, ctx.detail_type) else {
        return Ok(());
    };
    let name = req_name_s(d, o.name_field)?;
    let status = req_s(d, o.state_field)?;
    let mut parts = vec![name];
    for f in o.part_fields {
        if let Some(p) = opt_s(d, f)? {
            parts.push(p);
        }
    }
    let thing = parts.join("/");
    let state = if o.failed.contains(&status) {
        AlarmState::Alarm
    } else if o.succeeded.contains(&status) {
        AlarmState::Ok
    } else {
        ctx.skip(
            out,
            format!(
                "{} is {}: neither a failure nor a recovery",
                quote(&thing),
                quote(status)
            ),
        );
        return Ok(());
    };
    let mut s = Signal::new(ctx, Source::Generic, o.kind);
    s.key = format!(
        "{}/{}/{}/{}/{thing}",
        o.source,
        o.detail_type,
        ctx.account.unwrap_or(""),
        ctx.region.unwrap_or("")
    );
    s.name = format!("{name}-{}", o.suffix);
    check_name(&s.name).map_err(|r| ParseError::new(o.name_field, r))?;
    s.state = state;
    s.severity = Severity::Medium;
    s.changed_at = ctx.time()?;
    let message = opt_s(d, "message")?;
    s.reason = format!(
        "{} {thing} {status}{}",
        ctx.detail_type
            .trim_end_matches(" State Change")
            .trim_end_matches(" State-change Notification"),
        message.map(|m| format!(": {m}")).unwrap_or_default()
    );
    s.description = message.unwrap_or("").to_owned();
    s.label("event_source", ctx.source);
    s.label(&o.name_field.replace('-', "_"), name);
    for f in o.part_fields {
        if let Some(p) = opt_s(d, f)? {
            s.label(f, p);
        }
    }
    s.label("outcome_state", status);
    s.labels_from(
        d,
        &[
            ("build-id", "build_id"),
            ("jobRunId", "job_run_id"),
            ("execution-id", "execution_id"),
            ("deploymentId", "deployment_id"),
        ],
    )?;
    push_one(out, build(ctx, s));
    Ok(())
}

/// RDS snapshot events: read as the DB's events when their categories say `failure`, skipped as
/// routine otherwise (a snapshot created, copied, shared).
fn rds_snapshot(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let categories = joined(d, "EventCategories")?.to_ascii_lowercase();
    if categories.split(',').any(|c| c.trim() == "failure") {
        return rds(ctx, d, out);
    }
    routine(ctx, d, out)
}

// ------------------------------------------------------------------------------------------------
// CloudWatch Synthetics

/// "Synthetics Canary TestRun Failure" fires, "... TestRun Successful" resolves: one alert per
/// canary's runs.
fn canary_run(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let name = req_name_s(d, "canary-name")?;
    let failed = ctx.detail_type.ends_with("Failure");
    let mut s = Signal::new(ctx, Source::Synthetics, "canary_run");
    s.key = format!(
        "run/{}/{}/{name}",
        ctx.account.unwrap_or(""),
        ctx.region.unwrap_or("")
    );
    s.name = name.to_owned();
    s.state = if failed {
        AlarmState::Alarm
    } else {
        AlarmState::Ok
    };
    s.severity = Severity::High;
    let timeline = opt_obj(d, "canary-run-timeline")?;
    s.changed_at = match timeline.map(|t| opt_t_or_epoch(t, "completed")).transpose() {
        Ok(Some(Some(t))) => t,
        Ok(_) => ctx.time()?,
        Err(e) => return Err(e.within("canary-run-timeline")),
    };
    let status = opt_s(d, "test-run-status")?.unwrap_or(if failed { "FAILED" } else { "PASSED" });
    let why = opt_synthetics_s(d, "state-reason")?.or(opt_s(d, "message")?);
    s.reason = format!(
        "canary {name} run {status}{}",
        why.map(|w| format!(": {w}")).unwrap_or_default()
    );
    s.description = opt_s(d, "message")?.unwrap_or("").to_owned();
    s.label("canary_name", name);
    s.label("test_run_status", status);
    s.labels_from(
        d,
        &[
            ("canary-id", "canary_id"),
            ("canary-run-id", "canary_run_id"),
            ("artifact-location", "artifact_location"),
        ],
    )?;
    push_one(out, build(ctx, s));
    Ok(())
}

/// "Synthetics Canary Status Change": `ERROR` fires, any other state resolves (the canary is
/// running, stopped or updated on purpose).
fn canary_status(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let name = req_name_s(d, "canary-name")?;
    let current = req_s(d, "current-state")?;
    let mut s = Signal::new(ctx, Source::Synthetics, "canary_status");
    s.key = format!(
        "status/{}/{}/{name}",
        ctx.account.unwrap_or(""),
        ctx.region.unwrap_or("")
    );
    s.name = name.to_owned();
    s.state = if current.eq_ignore_ascii_case("ERROR") {
        AlarmState::Alarm
    } else {
        AlarmState::Ok
    };
    s.severity = Severity::Medium;
    s.changed_at = match opt_t_or_epoch(d, "updated-on")? {
        Some(t) => t,
        None => ctx.time()?,
    };
    let previous = opt_s(d, "previous-state")?;
    s.reason = format!(
        "canary {name} is {current}{}{}",
        previous.map(|p| format!(" (was {p})")).unwrap_or_default(),
        opt_synthetics_s(d, "state-reason")?
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    s.description = opt_s(d, "message")?.unwrap_or("").to_owned();
    s.label("canary_name", name);
    s.label("current_state", current);
    if let Some(p) = previous {
        s.label("previous_state", p);
    }
    push_one(out, build(ctx, s));
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// ECS

/// The ECS service an event is about: its ARN from `resources`, and its name.
fn ecs_service<'v>(ctx: &Ctx<'v>) -> Result<(&'v str, &'v str), ParseError> {
    let arn = ctx.resource.ok_or_else(|| {
        ParseError::new(
            "(event).resources",
            "required field is missing (the ECS service ARN)",
        )
    })?;
    Ok((arn, arn_tail(arn)))
}

/// "ECS Deployment State Change": `SERVICE_DEPLOYMENT_FAILED` fires, `..._COMPLETED` resolves,
/// `..._IN_PROGRESS` is skipped (neither).
fn ecs_deployment(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let (arn, service) = ecs_service(ctx)?;
    let event = req_s(d, "eventName")?;
    let state = match event {
        "SERVICE_DEPLOYMENT_FAILED" => AlarmState::Alarm,
        "SERVICE_DEPLOYMENT_COMPLETED" => AlarmState::Ok,
        other => {
            ctx.skip(
                out,
                format!(
                    "{} of {}: neither a failure nor a recovery",
                    quote(other),
                    quote(service)
                ),
            );
            return Ok(());
        }
    };
    let mut s = Signal::new(ctx, Source::Ecs, "deployment");
    s.key = format!("deployment/{arn}");
    s.name = format!("{}-deployment", clean_text(service));
    check_name(&s.name).map_err(|r| ParseError::new("(event).resources[0]", r))?;
    s.state = state;
    s.severity = Severity::High;
    s.changed_at = match opt_t(d, "updatedAt")? {
        Some(t) => t,
        None => ctx.time()?,
    };
    let reason = opt_s(d, "reason")?;
    s.reason = format!(
        "{event} for {service}{}",
        reason.map(|r| format!(": {r}")).unwrap_or_default()
    );
    s.description = reason.unwrap_or("").to_owned();
    s.label("ecs_service", service);
    s.label("event_name", event);
    if let Some(t) = opt_s(d, "eventType")? {
        s.label("event_type", t);
    }
    if let Some(id) = opt_s(d, "deploymentId")? {
        s.label("deployment_id", id);
    }
    push_one(out, build(ctx, s));
    Ok(())
}

/// "ECS Service Action": `ERROR` fires high, `WARN` fires medium, `INFO` (steady state) resolves.
fn ecs_service_action(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let (arn, service) = ecs_service(ctx)?;
    let event_type = req_s(d, "eventType")?;
    let event = req_s(d, "eventName")?;
    let (state, severity) = match event_type {
        "ERROR" => (AlarmState::Alarm, Severity::High),
        "WARN" => (AlarmState::Alarm, Severity::Medium),
        "INFO" => (AlarmState::Ok, Severity::Medium),
        other => {
            return Err(ParseError::new(
                "eventType",
                format!(
                    "unknown event type {} (expected ERROR, WARN or INFO)",
                    quote(other)
                ),
            ));
        }
    };
    let mut s = Signal::new(ctx, Source::Ecs, "service_action");
    s.key = format!("service/{arn}");
    s.name = clean_text(service);
    check_name(&s.name).map_err(|r| ParseError::new("(event).resources[0]", r))?;
    s.state = state;
    s.severity = severity;
    s.changed_at = match opt_t(d, "createdAt")? {
        Some(t) => t,
        None => ctx.time()?,
    };
    let reasons = joined(d, "reasons")?;
    s.reason = format!(
        "{event} ({event_type}) for {service}{}",
        if reasons.is_empty() {
            String::new()
        } else {
            format!(": {reasons}")
        }
    );
    s.description = reasons;
    s.label("ecs_service", service);
    s.label("event_name", event);
    s.label("event_type", event_type);
    if let Some(c) = opt_s(d, "clusterArn")? {
        s.label("ecs_cluster", arn_tail(c));
    }
    push_one(out, build(ctx, s));
    Ok(())
}

/// "ECS Task State Change" with `lastStatus: STOPPED`: a stopped task, firing, one alert per
/// service (or task family) so repeated crashes count; a stop the scheduler or a person asked for
/// is `info`. Other statuses are skipped.
fn ecs_task(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let status = req_s(d, "lastStatus")?;
    let task = opt_s(d, "taskArn")?.or(ctx.resource).unwrap_or("");
    if status != "STOPPED" {
        ctx.skip(
            out,
            format!(
                "task {} is {}, not STOPPED: only stopped tasks are alerts",
                quote(arn_tail(task)),
                quote(status)
            ),
        );
        return Ok(());
    }
    let cluster = opt_s(d, "clusterArn")?.map(arn_tail).unwrap_or("");
    let group = match opt_s(d, "group")? {
        Some(g) => g,
        None => opt_s(d, "taskDefinitionArn")?
            .map(arn_tail)
            .unwrap_or("task"),
    };
    let owner = group.strip_prefix("service:").unwrap_or(group);
    let stop_code = opt_s(d, "stopCode")?;
    let stopped_reason = opt_s(d, "stoppedReason")?.unwrap_or("no stoppedReason given");
    let mut s = Signal::new(ctx, Source::Ecs, "task_stopped");
    s.key = format!(
        "task/{}/{}/{cluster}/{group}",
        ctx.account.unwrap_or(""),
        ctx.region.unwrap_or("")
    );
    s.name = format!("{}-task-stopped", clean_text(owner));
    check_name(&s.name).map_err(|r| ParseError::new("group", r))?;
    s.arn = Some(clean_text(task)).filter(|t| !t.is_empty());
    s.severity = match stop_code {
        Some("UserInitiated" | "ServiceSchedulerInitiated") => Severity::Info,
        Some("SpotInterruption") => Severity::Low,
        _ => Severity::Medium,
    };
    s.changed_at = match opt_t(d, "stoppedAt")? {
        Some(t) => t,
        None => ctx.time()?,
    };
    let mut exits = Vec::new();
    for (i, c) in opt_arr(d, "containers")?.iter().enumerate() {
        let one = || -> Result<Option<String>, ParseError> {
            let name = opt_s(c, "name")?.unwrap_or("?");
            let code = opt_n(c, "exitCode")?;
            let why = opt_s(c, "reason")?;
            Ok(match (code, why) {
                (None, None) => None,
                (code, why) => Some(format!(
                    "{name}{}{}",
                    code.map(|c| format!(" exit {}", format_num(c)))
                        .unwrap_or_default(),
                    why.map(|w| format!(" ({w})")).unwrap_or_default()
                )),
            })
        };
        if let Some(e) = one().map_err(|e| e.within(&format!("containers[{i}]")))? {
            exits.push(e);
        }
    }
    s.reason = format!("task of {owner} stopped: {stopped_reason}");
    s.description = exits.join("; ");
    s.label("stopped_reason", stopped_reason);
    if let Some(code) = stop_code {
        s.label("stop_code", code);
    }
    s.label("ecs_cluster", cluster);
    s.label("ecs_group", group);
    if let Some(service) = group.strip_prefix("service:") {
        s.label("ecs_service", service);
    }
    push_one(out, build(ctx, s));
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// RDS

/// Categories in the order they decide severity: a failover first.
const RDS_CATEGORIES: [(&str, Severity); 5] = [
    ("failover", Severity::Critical),
    ("failure", Severity::High),
    ("availability", Severity::High),
    ("recovery", Severity::High),
    ("low storage", Severity::Medium),
];

/// "RDS DB Instance Event" and "RDS DB Cluster Event": one alert per DB instance or cluster. A
/// message saying the failover or recovery completed (or finished, or the DB restarted or
/// recovered) resolves; every other event fires at the severity of its most urgent category.
fn rds(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let identifier = req_name_s(d, "SourceIdentifier")?;
    let message = opt_s(d, "Message")?.unwrap_or("");
    let categories = joined(d, "EventCategories")?;
    let cluster = ctx.detail_type.contains("Cluster");
    let mut s = Signal::new(
        ctx,
        Source::Rds,
        if cluster { "db_cluster" } else { "db_instance" },
    );
    let arn = opt_s(d, "SourceArn")?;
    s.key = match arn {
        Some(arn) => arn.to_owned(),
        None => format!(
            "{}/{}/{identifier}",
            ctx.account.unwrap_or(""),
            ctx.region.unwrap_or("")
        ),
    };
    if let Some(arn) = arn {
        s.arn = Some(clean_text(arn));
    }
    s.name = identifier.to_owned();
    let lower = categories.to_ascii_lowercase();
    s.severity = RDS_CATEGORIES
        .iter()
        .find(|(c, _)| lower.split(',').any(|x| x.trim() == *c))
        .map(|(_, sev)| *sev)
        .unwrap_or(Severity::Low);
    s.state = if rds_recovered(message) {
        AlarmState::Ok
    } else {
        AlarmState::Alarm
    };
    s.changed_at = match opt_t(d, "Date")? {
        Some(t) => t,
        None => ctx.time()?,
    };
    let event_id = opt_s(d, "EventID")?;
    s.reason = format!(
        "{}{message}",
        event_id.map(|e| format!("{e}: ")).unwrap_or_default()
    );
    s.description = message.to_owned();
    s.label("db_identifier", identifier);
    s.label("event_categories", &categories);
    if let Some(e) = event_id {
        s.label("rds_event_id", e);
    }
    if let Some(t) = opt_s(d, "SourceType")? {
        s.label("source_type", t);
    }
    push_one(out, build(ctx, s));
    Ok(())
}

/// Whether an RDS message says the trouble is over.
fn rds_recovered(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "completed",
        "complete.",
        "finished",
        "has been restarted",
        "instance restarted",
        "recovered",
    ]
    .iter()
    .any(|w| m.contains(w))
}

// ------------------------------------------------------------------------------------------------
// EC2

/// "EC2 Instance State-change Notification": `stopping`, `stopped`, `shutting-down` and
/// `terminated` fire (low: usually on purpose), `running` resolves, `pending` is skipped. One
/// alert per instance, shared with its Spot interruption warning.
fn ec2_state(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let instance = req_name_s(d, "instance-id")?;
    let state_text = req_s(d, "state")?;
    let state = match state_text {
        "stopping" | "stopped" | "shutting-down" | "terminated" => AlarmState::Alarm,
        "running" => AlarmState::Ok,
        "pending" => {
            ctx.skip(
                out,
                format!(
                    "instance {} is pending: neither down nor back",
                    quote(instance)
                ),
            );
            return Ok(());
        }
        other => {
            return Err(ParseError::new(
                "state",
                format!(
                    "unknown instance state {} (expected pending, running, stopping, stopped, \
                     shutting-down or terminated)",
                    quote(other)
                ),
            ));
        }
    };
    let mut s = ec2_signal(ctx, instance, "instance_state")?;
    s.state = state;
    s.severity = Severity::Low;
    s.reason = format!("instance {instance} is {state_text}");
    s.label("instance_state", state_text);
    push_one(out, build(ctx, s));
    Ok(())
}

/// "EC2 Spot Instance Interruption Warning": fires, medium; the instance's later state changes
/// (same fingerprint) carry on from it.
fn ec2_spot(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let instance = req_name_s(d, "instance-id")?;
    let action = opt_s(d, "instance-action")?.unwrap_or("terminate");
    let mut s = ec2_signal(ctx, instance, "spot_interruption")?;
    s.severity = Severity::Medium;
    s.reason = format!("Spot interruption: instance {instance} will {action} in two minutes");
    s.label("instance_action", action);
    push_one(out, build(ctx, s));
    Ok(())
}

fn ec2_signal(ctx: &Ctx<'_>, instance: &str, kind: &'static str) -> Result<Signal, ParseError> {
    let mut s = Signal::new(ctx, Source::Ec2, kind);
    s.key = format!(
        "{}/{}/{instance}",
        ctx.account.unwrap_or(""),
        ctx.region.unwrap_or("")
    );
    s.name = instance.to_owned();
    s.changed_at = ctx.time()?;
    s.label("instance_id", instance);
    Ok(s)
}

// ------------------------------------------------------------------------------------------------
// Auto Scaling

/// Launch and terminate failures fire (high) and their successes resolve, one alert per group
/// and activity kind; a failed instance refresh fires and a succeeded one resolves.
fn autoscaling(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let group = req_name_s(d, "AutoScalingGroupName")?;
    let (kind, failed, what) = match ctx.detail_type {
        "EC2 Instance Launch Unsuccessful" => ("launch", true, "launch failed"),
        "EC2 Instance Launch Successful" => ("launch", false, "launch succeeded"),
        "EC2 Instance Terminate Unsuccessful" => ("terminate", true, "terminate failed"),
        "EC2 Instance Terminate Successful" => ("terminate", false, "terminate succeeded"),
        "EC2 Auto Scaling Instance Refresh Failed" => {
            ("instance_refresh", true, "instance refresh failed")
        }
        _ => ("instance_refresh", false, "instance refresh succeeded"),
    };
    let mut s = Signal::new(ctx, Source::Autoscaling, kind);
    s.key = format!(
        "{kind}/{}/{}/{group}",
        ctx.account.unwrap_or(""),
        ctx.region.unwrap_or("")
    );
    s.name = format!("{group}-{}", kind.replace('_', "-"));
    s.state = if failed {
        AlarmState::Alarm
    } else {
        AlarmState::Ok
    };
    s.severity = Severity::High;
    s.changed_at = match opt_t(d, "EndTime")? {
        Some(t) => t,
        None => ctx.time()?,
    };
    let message = opt_s(d, "StatusMessage")?;
    s.reason = format!(
        "{group}: {what}{}",
        message.map(|m| format!(": {m}")).unwrap_or_default()
    );
    s.description = [opt_s(d, "Description")?, opt_s(d, "Cause")?]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    s.label("autoscaling_group", group);
    s.labels_from(
        d,
        &[
            ("StatusCode", "status_code"),
            ("EC2InstanceId", "instance_id"),
            ("ActivityId", "activity_id"),
            ("InstanceRefreshId", "instance_refresh_id"),
        ],
    )?;
    push_one(out, build(ctx, s));
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// GuardDuty and Security Hub

/// "GuardDuty Finding": one alert per finding, severity by GuardDuty's bands (below 4 low, below 7
/// medium, else high); an archived finding resolves.
fn guardduty(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let id = req_name_s(d, "id")?;
    let finding_type = req_name_s(d, "type")?;
    let score = opt_n(d, "severity")?
        .ok_or_else(|| ParseError::new("severity", "required field is missing"))?;
    let mut s = Signal::new(ctx, Source::Guardduty, "finding");
    let account = opt_s(d, "accountId")?.or(ctx.account);
    s.key = format!("{}/{id}", account.unwrap_or(""));
    s.name = finding_type.to_owned();
    s.account = account.map(clean_text);
    s.region = opt_s(d, "region")?.or(ctx.region).map(clean_text);
    s.arn = opt_s(d, "arn")?.map(clean_text);
    s.severity = if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else {
        Severity::Low
    };
    let service = opt_obj(d, "service")?;
    let archived = match service.map(|v| field(v, "archived")) {
        Some(Some(Value::Bool(b))) => *b,
        Some(Some(Value::String(t))) => t.eq_ignore_ascii_case("true"),
        Some(Some(other)) => {
            return Err(ParseError::new(
                "service.archived",
                format!("expected a boolean, found {}", describe(other)),
            ));
        }
        _ => false,
    };
    s.state = if archived {
        AlarmState::Ok
    } else {
        AlarmState::Alarm
    };
    s.changed_at = match opt_t(d, "updatedAt")? {
        Some(t) => t,
        None => ctx.time()?,
    };
    let title = opt_s(d, "title")?.unwrap_or(finding_type);
    s.reason = format!(
        "GuardDuty {finding_type} (severity {}): {title}",
        format_num(score)
    );
    s.description = opt_s(d, "description")?.unwrap_or("").to_owned();
    s.label("finding_id", id);
    s.label("finding_type", finding_type);
    s.label("guardduty_severity", &format_num(score));
    if let Some(r) = opt_obj(d, "resource")? {
        if let Some(t) = opt_s(r, "resourceType").map_err(|e| e.within("resource"))? {
            s.label("resource_type", t);
        }
    }
    if let Some(count) = service
        .map(|v| opt_n(v, "count"))
        .transpose()
        .map_err(|e| e.within("service"))?
        .flatten()
    {
        // Each recurrence raises the count: part of the event's identity, so it is not a dedup.
        s.label("finding_count", &format_num(count));
    }
    let mut alert = build(ctx, s);
    if let Some(count) = alert.labels.get("finding_count") {
        alert.event_id = stable_id(&[&alert.event_id, count]);
    }
    push_one(out, alert);
    Ok(())
}

/// "Security Hub Findings - Imported": one alert per finding (a bad finding is rejected alone),
/// severity from `Severity.Label`; workflow `RESOLVED` or `SUPPRESSED`, or record state
/// `ARCHIVED`, resolves. Read only: nothing is written back to Security Hub.
fn securityhub(ctx: &Ctx<'_>, d: &Value, out: &mut Parsed) -> Result<(), ParseError> {
    let findings = opt_arr(d, "findings")?;
    if findings.is_empty() {
        return Err(ParseError::new(
            "findings",
            "empty: the event carries no findings",
        ));
    }
    for (i, f) in findings.iter().enumerate() {
        match securityhub_finding(ctx, f) {
            Ok(alert) => out.alerts.push(alert),
            Err(e) => out.rejected.push(e.within(&format!("findings[{i}]"))),
        }
    }
    Ok(())
}

/// The finding's severity label: `Severity.Label`, or for the older ASFF form, which has only
/// `Severity.Normalized` (0–100), the label Security Hub derives from it (0 informational, 1–39
/// low, 40–69 medium, 70–89 high, 90–100 critical).
fn securityhub_label(f: &Value) -> Result<&'static str, ParseError> {
    let Some(sev) = opt_obj(f, "Severity")? else {
        return Err(ParseError::new("Severity", "required field is missing"));
    };
    if let Some(label) = opt_s(sev, "Label").map_err(|e| e.within("Severity"))? {
        return match label {
            "CRITICAL" => Ok("CRITICAL"),
            "HIGH" => Ok("HIGH"),
            "MEDIUM" => Ok("MEDIUM"),
            "LOW" => Ok("LOW"),
            "INFORMATIONAL" => Ok("INFORMATIONAL"),
            other => Err(ParseError::new(
                "Severity.Label",
                format!(
                    "unknown severity {} (expected INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL)",
                    quote(other)
                ),
            )),
        };
    }
    let n = opt_n(sev, "Normalized")
        .map_err(|e| e.within("Severity"))?
        .ok_or_else(|| {
            ParseError::new(
                "Severity.Label",
                "required field is missing (and no Severity.Normalized)",
            )
        })?;
    Ok(match n {
        n if !(0.0..=100.0).contains(&n) => {
            return Err(ParseError::new(
                "Severity.Normalized",
                format!("{} is outside 0 to 100", format_num(n)),
            ));
        }
        n if n >= 90.0 => "CRITICAL",
        n if n >= 70.0 => "HIGH",
        n if n >= 40.0 => "MEDIUM",
        n if n >= 1.0 => "LOW",
        _ => "INFORMATIONAL",
    })
}

fn securityhub_finding(ctx: &Ctx<'_>, f: &Value) -> Result<Alert, ParseError> {
    if !f.is_object() {
        return Err(ParseError::new(
            "",
            format!("expected an object, found {}", describe(f)),
        ));
    }
    let id = req_name_s(f, "Id")?;
    let title = req_s(f, "Title")?;
    let label = securityhub_label(f)?;
    let severity = match label {
        "CRITICAL" => Severity::Critical,
        "HIGH" => Severity::High,
        "MEDIUM" => Severity::Medium,
        "LOW" => Severity::Low,
        _ => Severity::Info,
    };
    let workflow = match opt_obj(f, "Workflow")? {
        Some(w) => opt_s(w, "Status").map_err(|e| e.within("Workflow"))?,
        None => None,
    };
    let record_state = opt_s(f, "RecordState")?;
    let compliance = match opt_obj(f, "Compliance")? {
        Some(c) => opt_s(c, "Status").map_err(|e| e.within("Compliance"))?,
        None => None,
    };
    // A control check that passed is the finding's good news: it resolves the alert a failed check
    // of the same finding opened, and opens none.
    let resolved = matches!(workflow, Some("RESOLVED" | "SUPPRESSED"))
        || record_state == Some("ARCHIVED")
        || compliance == Some("PASSED");
    let mut s = Signal::new(ctx, Source::Securityhub, "finding");
    s.key = id.to_owned();
    s.name = clean_text(title);
    check_name(&s.name).map_err(|r| ParseError::new("Title", r))?;
    s.arn = Some(clean_text(id));
    s.account = opt_s(f, "AwsAccountId")?.or(ctx.account).map(clean_text);
    s.region = opt_s(f, "Region")?.or(ctx.region).map(clean_text);
    s.state = if resolved {
        AlarmState::Ok
    } else {
        AlarmState::Alarm
    };
    s.severity = severity;
    s.changed_at = match opt_t(f, "UpdatedAt")? {
        Some(t) => t,
        None => ctx.time()?,
    };
    let product = opt_s(f, "ProductName")?;
    s.reason = format!(
        "{}{label} finding{}",
        product.map(|p| format!("{p} ")).unwrap_or_default(),
        {
            let said: Vec<&str> = [workflow, record_state, compliance]
                .into_iter()
                .flatten()
                .collect();
            if said.is_empty() {
                String::new()
            } else {
                format!(" ({})", said.join(", "))
            }
        }
    );
    s.description = opt_s(f, "Description")?.unwrap_or("").to_owned();
    s.label("finding_id", id);
    s.label("securityhub_severity", label);
    if let Some(p) = product {
        s.label("product_name", p);
    }
    if let Some(g) = opt_s(f, "GeneratorId")? {
        s.label("generator_id", g);
    }
    if let Some(w) = workflow {
        s.label("workflow_status", w);
    }
    if let Some(r) = record_state {
        s.label("record_state", r);
    }
    if let Some(st) = compliance {
        s.label("compliance_status", st);
    }
    let types = joined(f, "Types")?;
    s.label("finding_types", &types);
    let mut resources = Vec::new();
    for (i, r) in opt_arr(f, "Resources")?.iter().enumerate() {
        if let Some(id) = opt_s(r, "Id").map_err(|e| e.within(&format!("Resources[{i}]")))? {
            resources.push(id);
        }
    }
    s.label("resources", &resources.join(","));
    Ok(build(ctx, s))
}
