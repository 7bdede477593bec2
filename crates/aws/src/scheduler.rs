//! The EventBridge Scheduler adapter of the [`Scheduler`] port: one one-time schedule per escalation
//! step, in the stack's schedule group, invoking the escalate function with the [`Timer`] as
//! its input and deleting itself once it has run (`ActionAfterCompletion = DELETE`). The same adapter,
//! built with another target, is the SMS throttle's [`FlushTimer`] (the SMS deliver function) and the
//! Health pages' [`SweepTimer`] (the ingest function).
//!
//! The port's idempotence maps onto the service's own answers, matched by error variant:
//! `CreateSchedule` answering `ConflictException` means the name is taken, so the step is already
//! scheduled; `DeleteSchedule` answering `ResourceNotFoundException` means nothing is scheduled under
//! that name (never was, already cancelled, or already fired and deleted itself).
//!
//! Time: Scheduler fires `at()` schedules with one-minute precision (at 1:00 it invokes the target
//! somewhere in 1:00:00–1:00:59), so a time with seconds is rounded UP to the next whole minute. An
//! escalation may then page up to a minute late, never early: early would cut short the time the
//! on-call had to acknowledge. A time already past (a retried router, a slow invocation) is moved to
//! the next whole minute from now, so that the step still fires rather than depend on how the service
//! treats an `at()` in the past.
//!
//! A schedule that has fired is gone, so scheduling its name again creates and fires it again: the
//! escalate function, not this adapter, makes a step page once (it checks the alert's step first).
//!
//! Trace: a timer's Input also carries the X-Ray trace header of the work that set it
//! ([`timer_input`]), so that the escalate function continues the alert's trace (Scheduler starts a
//! new one).
//!
//! Names: Scheduler takes 1–64 characters of `[0-9a-zA-Z-_.]`. The router's names,
//! `tocsin-esc-<32 hex>-<step>`, are at most 54 and pass unchanged; any other name that does not fit
//! is replaced by [`schedule_name`] with a readable prefix and a hash, the same on every call, so
//! schedule, cancel and [`EventBridgeScheduler::get_input`] all find the same schedule.

use crate::sdk_error::{bounded, describe, is_refused};
use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::operation::create_schedule::CreateScheduleError;
use aws_sdk_scheduler::operation::delete_schedule::DeleteScheduleError;
use aws_sdk_scheduler::operation::get_schedule::GetScheduleError;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, Target,
};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use thiserror::Error;
use tocsin_core::model::stable_id;
use tocsin_core::pages::{SweepInput, SweepTimer, sweep_name};
use tocsin_core::ports::{Scheduler, SchedulerError};
use tocsin_core::record::Timer;
use tocsin_core::throttle::{Flush, FlushTimer};
use tracing::debug;

/// The environment variable naming the schedule group (created by the stack).
pub const ENV_GROUP: &str = "SCHEDULE_GROUP";
/// The environment variable holding the escalate function's ARN, the schedules' target.
pub const ENV_TARGET_ARN: &str = "ESCALATE_FUNCTION_ARN";
/// The environment variable holding the role Scheduler assumes to invoke the target.
pub const ENV_ROLE_ARN: &str = "SCHEDULER_ROLE_ARN";
/// The environment variable holding the dead-letter queue's ARN (optional).
pub const ENV_DEAD_LETTER_ARN: &str = "SCHEDULER_DLQ_ARN";

/// Scheduler's longest schedule (and group) name.
pub const MAX_NAME_LEN: usize = 64;
/// Retries of a failed invocation, by default: the service's maximum, since an escalation that is
/// given up on is a page that never happens.
pub const DEFAULT_MAX_RETRY_ATTEMPTS: u32 = 185;
/// How long a failed invocation keeps being retried, by default: the service's maximum (24 hours);
/// past it the tick goes to the dead-letter queue, when one is set, with the reason.
pub const DEFAULT_MAX_EVENT_AGE_S: u32 = 86_400;

/// What the service accepts for the retry policy.
const RETRY_ATTEMPTS_RANGE: std::ops::RangeInclusive<u32> = 0..=185;
const EVENT_AGE_RANGE: std::ops::RangeInclusive<u32> = 60..=86_400;
/// How much of a too-long or ill-formed name is kept, readable, before the hash: 31 + `-` + 32 = 64.
const NAME_PREFIX_LEN: usize = MAX_NAME_LEN - 33;

/// A setting of the scheduler is missing or malformed (found at start-up, not at the first page).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SchedulerConfigError {
    /// A required setting is missing or blank.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A setting is present but unusable.
    #[error("{setting} = {value:?}: {reason}")]
    Invalid {
        /// The setting: the environment variable that carries it, or the service's parameter name.
        setting: &'static str,
        /// What it holds.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// The [`Scheduler`] on EventBridge Scheduler. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct EventBridgeScheduler {
    client: Client,
    group: String,
    target_arn: String,
    role_arn: String,
    dead_letter_arn: Option<String>,
    max_retry_attempts: u32,
    max_event_age_s: u32,
}

impl EventBridgeScheduler {
    /// Schedules in `group` invoking `target_arn` (the escalate function) as `role_arn`, sending what
    /// fails past the retry policy to `dead_letter_arn` (an SQS queue) when given. Checks the values
    /// now, so that a bad deployment fails at start-up; errors name the environment variables that
    /// carry each value (see [`EventBridgeScheduler::from_env`]).
    pub fn new(
        client: Client,
        group: impl Into<String>,
        target_arn: impl Into<String>,
        role_arn: impl Into<String>,
        dead_letter_arn: Option<String>,
    ) -> Result<Self, SchedulerConfigError> {
        let group = required(ENV_GROUP, group.into())?;
        if group.len() > MAX_NAME_LEN || !group.chars().all(name_char) {
            return Err(invalid(
                ENV_GROUP,
                &group,
                "a schedule group name is 1-64 characters of [0-9a-zA-Z-_.]",
            ));
        }
        let target_arn = arn(ENV_TARGET_ARN, target_arn.into())?;
        let role_arn = arn(ENV_ROLE_ARN, role_arn.into())?;
        let dead_letter_arn = match dead_letter_arn.filter(|a| !a.trim().is_empty()) {
            Some(a) => Some(arn(ENV_DEAD_LETTER_ARN, a)?),
            None => None,
        };
        Ok(EventBridgeScheduler {
            client,
            group,
            target_arn,
            role_arn,
            dead_letter_arn,
            max_retry_attempts: DEFAULT_MAX_RETRY_ATTEMPTS,
            max_event_age_s: DEFAULT_MAX_EVENT_AGE_S,
        })
    }

    /// [`EventBridgeScheduler::new`] with the values of [`ENV_GROUP`], [`ENV_TARGET_ARN`],
    /// [`ENV_ROLE_ARN`] and (optional) [`ENV_DEAD_LETTER_ARN`] read through `get` (the process
    /// environment in `main.rs`, a map in tests).
    pub fn from_env(
        client: Client,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SchedulerConfigError> {
        let value = |name: &'static str| get(name).unwrap_or_default();
        Self::new(
            client,
            value(ENV_GROUP),
            value(ENV_TARGET_ARN),
            value(ENV_ROLE_ARN),
            get(ENV_DEAD_LETTER_ARN),
        )
    }

    /// Replaces the default retry policy ([`DEFAULT_MAX_RETRY_ATTEMPTS`] within
    /// [`DEFAULT_MAX_EVENT_AGE_S`]); the service takes 0–185 attempts and 60–86400 seconds.
    pub fn with_retry_policy(
        mut self,
        max_retry_attempts: u32,
        max_event_age_s: u32,
    ) -> Result<Self, SchedulerConfigError> {
        if !RETRY_ATTEMPTS_RANGE.contains(&max_retry_attempts) {
            return Err(invalid(
                "MaximumRetryAttempts",
                &max_retry_attempts.to_string(),
                "Scheduler takes 0-185 retry attempts",
            ));
        }
        if !EVENT_AGE_RANGE.contains(&max_event_age_s) {
            return Err(invalid(
                "MaximumEventAgeInSeconds",
                &max_event_age_s.to_string(),
                "Scheduler takes 60-86400 seconds",
            ));
        }
        self.max_retry_attempts = max_retry_attempts;
        self.max_event_age_s = max_event_age_s;
        Ok(self)
    }

    /// The schedule group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The tick a pending schedule would deliver, read back from its target input; `None` when nothing
    /// is scheduled under `name`. Moto stores schedules but never fires them, so tests and the
    /// end-to-end harness "fire" one by reading its tick here, invoking escalate, and cancelling it.
    pub async fn get_input(&self, name: &str) -> Result<Option<Timer>, SchedulerError> {
        let aws_name = schedule_name(name);
        let out = match self
            .client
            .get_schedule()
            .group_name(&self.group)
            .name(&aws_name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match e.as_service_error() {
                    Some(GetScheduleError::ResourceNotFoundException(_)) => Ok(None),
                    _ => Err(failure("GetSchedule", &aws_name, &e)),
                };
            }
        };
        let Some(input) = out.target().and_then(|t| t.input()) else {
            return Err(SchedulerError::Refused(format!(
                "schedule {}/{aws_name} has no target input",
                self.group
            )));
        };
        serde_json::from_str(input)
            .and_then(Timer::from_json)
            .map(Some)
            .map_err(|e| {
                SchedulerError::Refused(format!(
                    "schedule {}/{aws_name}: target input is not a timer: {e}",
                    self.group
                ))
            })
    }

    fn target(&self, input: String) -> Result<Target, SchedulerError> {
        // Both fit in i32: the constructor and `with_retry_policy` keep them within the service's range.
        let retry = RetryPolicy::builder()
            .maximum_retry_attempts(i32::try_from(self.max_retry_attempts).unwrap_or(185))
            .maximum_event_age_in_seconds(i32::try_from(self.max_event_age_s).unwrap_or(86_400))
            .build();
        let mut target = Target::builder()
            .arn(&self.target_arn)
            .role_arn(&self.role_arn)
            .input(input)
            .retry_policy(retry);
        if let Some(dlq) = &self.dead_letter_arn {
            target = target.dead_letter_config(DeadLetterConfig::builder().arn(dlq).build());
        }
        target.build().map_err(|e| {
            SchedulerError::Refused(format!("schedule target: {}", DisplayErrorContext(e)))
        })
    }
}

impl EventBridgeScheduler {
    /// Creates the one-time schedule `name` firing at `at` with `input`; a name taken is success.
    async fn create(
        &self,
        name: &str,
        at: DateTime<Utc>,
        input: String,
    ) -> Result<(), SchedulerError> {
        let aws_name = schedule_name(name);
        let expression = at_expression(fire_time(at, Utc::now()));
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| SchedulerError::Refused(format!("flexible time window: {e}")))?;
        let result = self
            .client
            .create_schedule()
            .name(&aws_name)
            .group_name(&self.group)
            .schedule_expression(&expression)
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(self.target(input)?)
            .send()
            .await;
        match result {
            Ok(_) => {
                debug!(group = %self.group, name = %aws_name, %expression, "scheduled");
                Ok(())
            }
            Err(e) => match e.as_service_error() {
                Some(CreateScheduleError::ConflictException(_)) => {
                    debug!(group = %self.group, name = %aws_name, "already scheduled");
                    Ok(())
                }
                _ => Err(failure("CreateSchedule", &aws_name, &e)),
            },
        }
    }
}

/// A timer's schedule Input: the [`Timer`], and the X-Ray trace header of the work that set it under
/// [`tocsin_lambda::trace::TRACE_KEY`] (Scheduler does not carry traces; the escalate function
/// continues this one).
pub fn timer_input(tick: &Timer, trace: Option<String>) -> Result<String, serde_json::Error> {
    if trace.is_none() {
        return serde_json::to_string(tick);
    }
    with_trace(serde_json::to_value(tick)?, trace)
}

/// A schedule's Input object with the trace header of the work that set it (as [`timer_input`]):
/// the SMS throttle's flush and the Health sweep continue the trace as escalate does.
fn with_trace(
    mut value: serde_json::Value,
    trace: Option<String>,
) -> Result<String, serde_json::Error> {
    if let (Some(header), Some(fields)) = (trace, value.as_object_mut()) {
        fields.insert(tocsin_lambda::trace::TRACE_KEY.into(), header.into());
    }
    serde_json::to_string(&value)
}

/// The SMS throttle's flush: a schedule invoking this adapter's target (built with the deliver
/// function's own ARN) with `{"flush": {...}}` as its input.
impl FlushTimer for EventBridgeScheduler {
    async fn schedule_flush(&self, flush: &Flush) -> Result<(), SchedulerError> {
        let input = with_trace(
            serde_json::json!({ "flush": flush }),
            tocsin_lambda::trace::current(),
        )
        .map_err(|e| SchedulerError::Refused(format!("encode flush: {e}")))?;
        self.create(&flush.timer_name(), flush.due, input).await
    }
}

/// The sweep of a paged AWS Health event: a schedule invoking this adapter's target (built with the
/// ingest function's own ARN) with `{"health_pages_flush": {"key": ...}}` as its input.
impl SweepTimer for EventBridgeScheduler {
    async fn schedule_sweep(&self, key: &str, at: DateTime<Utc>) -> Result<(), SchedulerError> {
        let input = serde_json::to_value(SweepInput::new(key))
            .and_then(|v| with_trace(v, tocsin_lambda::trace::current()))
            .map_err(|e| SchedulerError::Refused(format!("encode health pages sweep: {e}")))?;
        self.create(&sweep_name(key), at, input).await
    }
}

impl Scheduler for EventBridgeScheduler {
    async fn schedule(
        &self,
        name: &str,
        at: DateTime<Utc>,
        tick: &Timer,
    ) -> Result<(), SchedulerError> {
        let input = timer_input(tick, tocsin_lambda::trace::current()).map_err(|e| {
            SchedulerError::Refused(format!(
                "schedule {}: encode tick: {e}",
                schedule_name(name)
            ))
        })?;
        self.create(name, at, input).await
    }

    async fn cancel(&self, name: &str) -> Result<(), SchedulerError> {
        let aws_name = schedule_name(name);
        let result = self
            .client
            .delete_schedule()
            .group_name(&self.group)
            .name(&aws_name)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Not scheduled, already cancelled or already fired (and deleted itself). A missing group
            // answers the same and cannot be told apart by variant; a schedule could not exist in it.
            Err(e) => match e.as_service_error() {
                Some(DeleteScheduleError::ResourceNotFoundException(_)) => Ok(()),
                _ => Err(failure("DeleteSchedule", &aws_name, &e)),
            },
        }
    }
}

/// The name the schedule has on AWS: `name` itself when it is 1–64 characters of `[0-9a-zA-Z-_.]`
/// (as the router's always are); otherwise its first 31 characters (others replaced by `_`), `-`, and
/// 32 hex digits of SHA-256 over the whole name: deterministic, so every call finds the same schedule.
pub fn schedule_name(name: &str) -> String {
    if !name.is_empty() && name.len() <= MAX_NAME_LEN && name.chars().all(name_char) {
        return name.to_string();
    }
    let prefix: String = name
        .chars()
        .take(NAME_PREFIX_LEN)
        .map(|c| if name_char(c) { c } else { '_' })
        .collect();
    format!("{prefix}-{}", stable_id(&["schedule-name", name]))
}

/// The `at()` expression for `at`, in UTC, rounded up to the next whole minute unless already whole
/// (Scheduler's precision is one minute; late by under a minute, never early).
pub fn at_expression(at: DateTime<Utc>) -> String {
    format!("at({})", round_up_to_minute(at).format("%Y-%m-%dT%H:%M:%S"))
}

/// When a schedule for `at` should fire, given the time is `now`: `at` itself, or the next whole minute
/// after `now` when `at` is not later than that (it would be in the past by the time it is created).
fn fire_time(at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let earliest = round_up_to_minute(now + TimeDelta::seconds(1));
    at.max(earliest)
}

fn round_up_to_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let minute = TimeDelta::minutes(1);
    match t.duration_trunc(minute) {
        Ok(down) if down == t => t,
        Ok(down) => down + minute,
        // Truncation fails only out of chrono's range (hundreds of thousands of years away).
        Err(_) => t,
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn required(setting: &'static str, value: String) -> Result<String, SchedulerConfigError> {
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(SchedulerConfigError::Missing(setting));
    }
    Ok(value)
}

fn arn(setting: &'static str, value: String) -> Result<String, SchedulerConfigError> {
    let value = required(setting, value)?;
    if !value.starts_with("arn:") {
        return Err(invalid(setting, &value, "not an ARN (arn:...)"));
    }
    Ok(value)
}

fn invalid(setting: &'static str, value: &str, reason: &'static str) -> SchedulerConfigError {
    SchedulerConfigError::Invalid {
        setting,
        value: value.to_string(),
        reason,
    }
}

/// One bounded line naming the operation, the schedule and the service's error (never the request, which
/// carries the tick).
fn failure<E, R>(op: &str, name: &str, err: &SdkError<E, R>) -> SchedulerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let line = bounded(&format!("{op} {name}: {}", describe(err)));
    if is_refused(err) {
        SchedulerError::Refused(line)
    } else {
        SchedulerError::Backend(line)
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed step is a panic that names it.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aws_sdk_scheduler::config::{BehaviorVersion, Region};

    #[test]
    fn a_timers_input_carries_the_trace_that_set_it_and_still_reads_as_the_timer() {
        let tick = Timer::Escalation {
            alert_id: "a1".into(),
            step: 2,
        };
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let input = timer_input(&tick, Some(header.into())).unwrap();
        let value: serde_json::Value = serde_json::from_str(&input).unwrap();
        assert_eq!(value[tocsin_lambda::trace::TRACE_KEY], header);
        assert_eq!(Timer::from_json(value).unwrap(), tick);
        // Outside Lambda (no trace): the Input is the timer alone, as before.
        assert_eq!(
            timer_input(&tick, None).unwrap(),
            serde_json::to_string(&tick).unwrap()
        );
    }

    #[test]
    fn a_sweeps_input_carries_the_trace_that_set_it_and_is_as_before_without() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
        let sweep = serde_json::to_value(SweepInput::new("k")).unwrap();
        let traced: serde_json::Value =
            serde_json::from_str(&with_trace(sweep.clone(), Some(header.into())).unwrap()).unwrap();
        assert_eq!(traced[tocsin_lambda::trace::TRACE_KEY], header);
        assert_eq!(traced["health_pages_flush"]["key"], "k");
        assert_eq!(
            with_trace(sweep, None).unwrap(),
            serde_json::to_string(&SweepInput::new("k")).unwrap()
        );
    }
    use std::collections::HashMap;
    use tocsin_core::router::timer_name;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn offline_client() -> Client {
        let config = aws_sdk_scheduler::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        Client::from_conf(config)
    }

    #[test]
    fn times_with_seconds_round_up_to_the_next_minute_and_whole_minutes_stay() {
        assert_eq!(
            at_expression(t("2026-11-20T02:10:00Z")),
            "at(2026-11-20T02:10:00)"
        );
        assert_eq!(
            at_expression(t("2026-11-20T02:10:00.001Z")),
            "at(2026-11-20T02:11:00)"
        );
        assert_eq!(
            at_expression(t("2026-12-31T23:59:30Z")),
            "at(2027-01-01T00:00:00)"
        );
    }

    #[test]
    fn a_time_already_past_fires_at_the_next_whole_minute_from_now() {
        let now = t("2026-11-20T02:10:20Z");
        assert_eq!(
            fire_time(t("2026-11-20T01:00:00Z"), now),
            t("2026-11-20T02:11:00Z")
        );
        assert_eq!(
            fire_time(t("2026-11-20T02:30:00Z"), now),
            t("2026-11-20T02:30:00Z")
        );
        // Exactly on a whole minute "now" is already too late to create for.
        let on_minute = t("2026-11-20T02:10:00Z");
        assert_eq!(fire_time(on_minute, on_minute), t("2026-11-20T02:11:00Z"));
    }

    #[test]
    fn the_routers_longest_timer_name_fits_and_is_kept_as_it_is() {
        let longest = timer_name(&"f".repeat(32), u32::MAX);
        assert_eq!(longest.len(), 54);
        assert_eq!(schedule_name(&longest), longest);
    }

    #[test]
    fn names_that_do_not_fit_are_hashed_the_same_way_every_time() {
        let long = format!("tocsin-esc-{}-1", "a".repeat(80));
        let odd = "tocsin esc/alert:1";
        for name in [long.as_str(), odd, ""] {
            let aws = schedule_name(name);
            assert_eq!(aws, schedule_name(name), "deterministic");
            assert!(!aws.is_empty() && aws.len() <= MAX_NAME_LEN, "{aws}");
            assert!(aws.chars().all(name_char), "{aws}");
        }
        assert!(schedule_name(odd).starts_with("tocsin_esc_alert_1-"));
        assert_ne!(schedule_name(&long), schedule_name(&format!("{long}2")));
    }

    #[test]
    fn settings_come_from_the_environment_and_fail_by_variable_name() {
        let env: HashMap<&str, &str> = [
            (ENV_GROUP, "tocsin-escalations"),
            (
                ENV_TARGET_ARN,
                "arn:aws:lambda:eu-west-1:1:function:escalate",
            ),
            (ENV_ROLE_ARN, "arn:aws:iam::1:role/scheduler"),
            (ENV_DEAD_LETTER_ARN, " "),
        ]
        .into_iter()
        .collect();
        let get = |n: &str| env.get(n).map(|v| v.to_string());
        let s = EventBridgeScheduler::from_env(offline_client(), get).unwrap();
        assert_eq!(s.group(), "tocsin-escalations");
        assert_eq!(s.dead_letter_arn, None, "a blank DLQ is no DLQ");

        let without_role = |n: &str| (n != ENV_ROLE_ARN).then(|| get(n)).flatten();
        let err = EventBridgeScheduler::from_env(offline_client(), without_role).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable SCHEDULER_ROLE_ARN is not set"
        );

        let err = EventBridgeScheduler::new(
            offline_client(),
            "tocsin-escalations",
            "escalate",
            "arn:aws:iam::1:role/scheduler",
            None,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            SchedulerConfigError::Invalid {
                setting: "ESCALATE_FUNCTION_ARN",
                ..
            }
        ));
        let err = s.with_retry_policy(186, 3600).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("MaximumRetryAttempts = \"186\""),
            "{err}"
        );
    }

    #[test]
    fn service_errors_are_one_bounded_line_naming_the_schedule() {
        let long = format!("{}\n{}", "x".repeat(400), "y");
        let err: SdkError<CreateScheduleError, ()> = SdkError::construction_failure(long);
        let SchedulerError::Backend(line) = failure("CreateSchedule", "tocsin-esc-a-1", &err)
        else {
            panic!("a transport failure is the scheduler's, not the timer's");
        };
        assert!(!line.contains('\n'));
        assert!(line.chars().count() <= 303, "{line}");
        assert!(
            line.starts_with("CreateSchedule tocsin-esc-a-1: "),
            "{line}"
        );
    }
}
