//! The chaos run's scenario, drawn from the seed: alarms over six services, each opened by an ALARM
//! transition that arrives through one to three of CloudWatch's paths (SNS, EventBridge, the Lambda
//! alarm action: the same transition, so duplicates), some acknowledged (through the API or a
//! one-click link), the critical rest escalated, most resolved by an OK transition; one service
//! silenced, Slack's route grouped by service. Events are made from the fixtures of events/ with the
//! alarm's name, state and time put in.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::Value;

use super::rng::Rng;

/// The services (tests/chaos_support/tocsin.yaml): an alarm's name starts with one.
pub const SERVICES: [&str; 6] = ["checkout", "search", "catalog", "auth", "media", "ledger"];
/// The service the run silences.
pub const SILENCED: &str = "media";
/// Metrics; `-5xx-` makes an alarm critical.
const METRICS: [&str; 4] = ["api-5xx", "latency-p99", "cpu-high", "queue-depth"];

/// The paths an alarm transition takes to ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The alarm's SNS topic, subscribed by ingest.
    Sns,
    /// The EventBridge rule on alarm state changes.
    EventBridge,
    /// The alarm's Lambda action.
    Action,
}

/// How an alarm is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// `POST /alerts/{id}/ack` with an authorizer identity.
    Api,
    /// `POST /a/{token}` with the token of the SMS alice got.
    OneClick,
}

/// One alarm's life.
#[derive(Debug, Clone)]
pub struct Alarm {
    /// Its name (unique in the run).
    pub name: String,
    /// Critical (pages on call and escalates).
    pub critical: bool,
    /// When it goes to ALARM.
    pub fired_at: DateTime<Utc>,
    /// The paths of its ALARM transition.
    pub alarm_paths: Vec<Path>,
    /// Acknowledged, and how.
    pub ack: Option<Ack>,
    /// When it goes back to OK, and the paths of that transition.
    pub ok: Option<(DateTime<Utc>, Vec<Path>)>,
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The start (real time, so timers fall where the functions' clocks put them).
    pub t0: DateTime<Utc>,
    /// The alarms.
    pub alarms: Vec<Alarm>,
}

impl Scenario {
    /// At least `transitions` transitions (ALARM and OK) drawn from `rng`, starting at `t0`.
    pub fn draw(rng: &mut Rng, transitions: usize, t0: DateTime<Utc>) -> Scenario {
        let mut alarms = Vec::new();
        let mut count = 0;
        let mut i = 0;
        while count < transitions {
            let service = SERVICES[rng.below(SERVICES.len() as u64) as usize];
            let metric = METRICS[rng.below(METRICS.len() as u64) as usize];
            let critical = metric.contains("5xx");
            let paths = |rng: &mut Rng| {
                let mut p = vec![Path::Sns];
                if rng.chance(0.4) {
                    p.push(Path::EventBridge);
                }
                if rng.chance(0.2) {
                    p.push(Path::Action);
                }
                if rng.chance(0.3) {
                    p.remove(0);
                    if p.is_empty() {
                        p.push(Path::EventBridge);
                    }
                }
                p
            };
            let alarm_paths = paths(rng);
            let ack = (critical && service != SILENCED && rng.chance(0.5)).then(|| {
                if rng.chance(0.5) {
                    Ack::Api
                } else {
                    Ack::OneClick
                }
            });
            // Alarms fire within the first 20 s, so a service's alarms meet in one Slack group.
            let fired_at = t0 + Duration::milliseconds(rng.below(20_000) as i64);
            let ok = rng.chance(0.75).then(|| {
                let at = t0 + Duration::hours(1) + Duration::milliseconds(rng.below(20_000) as i64);
                (at, paths(rng))
            });
            count += 1 + usize::from(ok.is_some());
            alarms.push(Alarm {
                name: format!("{service}-{metric}-{i:04}"),
                critical,
                fired_at,
                alarm_paths,
                ack,
                ok,
            });
            i += 1;
        }
        Scenario { t0, alarms }
    }

    /// Transitions in the run.
    pub fn transitions(&self) -> usize {
        self.alarms
            .iter()
            .map(|a| 1 + usize::from(a.ok.is_some()))
            .sum()
    }

    /// Deliveries of a transition through its paths (duplicates included).
    pub fn arrivals(&self) -> usize {
        self.alarms
            .iter()
            .map(|a| a.alarm_paths.len() + a.ok.as_ref().map_or(0, |(_, p)| p.len()))
            .sum()
    }
}

const SNS: &str = include_str!("../../events/sns/metric-alarm.json");
const EVENTBRIDGE: &str = include_str!("../../events/eventbridge/metric-alarm.json");
const ACTION: &str = include_str!("../../events/lambda-action/metric-alarm.json");
const FIXTURE_NAME: &str = "orders-db-cpu-high";

fn aws_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// The event of `alarm`'s transition to `state` at `at` through `path`, as the path hands it to ingest.
pub fn event(alarm: &Alarm, ok: bool, at: DateTime<Utc>, path: Path) -> Value {
    let (new, old) = if ok { ("OK", "ALARM") } else { ("ALARM", "OK") };
    let rename = |s: &str| s.replace(FIXTURE_NAME, &alarm.name);
    match path {
        Path::Sns => {
            let mut ev: Value = serde_json::from_str(&rename(SNS)).unwrap();
            let sns = &mut ev["Records"][0]["Sns"];
            let mut msg: Value = serde_json::from_str(sns["Message"].as_str().unwrap()).unwrap();
            msg["NewStateValue"] = new.into();
            msg["OldStateValue"] = old.into();
            msg["StateChangeTime"] = aws_time(at).into();
            sns["Message"] = msg.to_string().into();
            sns["Subject"] = format!("{new}: \"{}\" in EU (Ireland)", alarm.name).into();
            sns["MessageId"] = format!("chaos-{}-{new}", alarm.name).into();
            sns["Timestamp"] = at.to_rfc3339_opts(SecondsFormat::Millis, true).into();
            ev
        }
        Path::EventBridge => {
            let mut ev: Value = serde_json::from_str(&rename(EVENTBRIDGE)).unwrap();
            ev["id"] = format!("chaos-{}-{new}", alarm.name).into();
            ev["time"] = at.to_rfc3339_opts(SecondsFormat::Secs, true).into();
            ev["detail"]["state"]["value"] = new.into();
            ev["detail"]["state"]["timestamp"] = aws_time(at).into();
            ev["detail"]["previousState"]["value"] = old.into();
            ev
        }
        Path::Action => {
            let mut ev: Value = serde_json::from_str(&rename(ACTION)).unwrap();
            ev["time"] = aws_time(at).into();
            ev["alarmData"]["state"]["value"] = new.into();
            ev["alarmData"]["state"]["timestamp"] = aws_time(at).into();
            ev["alarmData"]["previousState"]["value"] = old.into();
            ev
        }
    }
}
