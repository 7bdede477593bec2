//! The storm benchmark (issue 7): 100,000 alarm state changes from 500 alarms across 50 services in one
//! virtual hour, with flapping alarms and duplicate deliveries through SNS and EventBridge, replayed
//! in-process through the embedded pipeline (parse, dedup, flap damping, grouping) with
//! `scripts/storm/tocsin.yaml`. Reports wall time, events per second, peak RSS and pages sent, checks
//! that every critical alarm that fired reached someone, and writes the transitions to
//! `target/storm/transitions.jsonl` for `scripts/storm/alertmanager.py`, which sends the same storm to
//! Prometheus Alertmanager.
//!
//! Run: `cargo bench -p tocsin-local --bench storm` (the bench profile: opt-level 3, LTO).

#![allow(clippy::unwrap_used, missing_docs)] // a bench binary: a panic is the report

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_local::Embedded;

const EVENTS: usize = 100_000;
const SERVICES: usize = 50;
const ALARMS_PER_SERVICE: usize = 10;
const FLAPPERS_PER_SERVICE: usize = 2;
const DUPLICATE_PERCENT: u64 = 25;

/// A small deterministic generator (SplitMix64), so every run makes the same storm.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone)]
struct Event {
    at_ms: u64,
    alarm: usize,
    firing: bool,
    eventbridge: bool,
    duplicate: bool,
}

fn alarm_name(i: usize) -> String {
    let (s, a) = (i / ALARMS_PER_SERVICE, i % ALARMS_PER_SERVICE);
    match a {
        0 => format!("svc{s:02}-api-5xx"),
        a if a <= FLAPPERS_PER_SERVICE => format!("svc{s:02}-flappy-{a}"),
        a => format!("svc{s:02}-metric-{a}"),
    }
}

fn service(i: usize) -> String {
    format!("svc{:02}", i / ALARMS_PER_SERVICE)
}

/// The storm: every alarm's transitions within the hour, in time order, some delivered twice.
fn storm() -> Vec<Event> {
    let mut rng = Rng(7);
    let hour_ms = 3_600_000;
    let mut transitions = Vec::new();
    for alarm in 0..SERVICES * ALARMS_PER_SERVICE {
        let a = alarm % ALARMS_PER_SERVICE;
        let mut t = rng.below(120_000);
        let mut firing = false;
        if (1..=FLAPPERS_PER_SERVICE).contains(&a) {
            // Flapping: a change every 2 to 6.6 seconds, all hour.
            while t < hour_ms {
                firing = !firing;
                transitions.push((t, alarm, firing));
                t += 2_000 + rng.below(4_600);
            }
        } else {
            // Fires once or twice for a few minutes.
            for _ in 0..1 + rng.below(2) {
                t += rng.below(1_500_000);
                if t >= hour_ms {
                    break;
                }
                transitions.push((t, alarm, true));
                t += 60_000 + rng.below(600_000);
                if t < hour_ms {
                    transitions.push((t, alarm, false));
                }
            }
        }
    }
    transitions.sort_unstable();
    let mut events = Vec::new();
    for (at_ms, alarm, firing) in transitions {
        let eventbridge = rng.below(2) == 0;
        events.push(Event {
            at_ms,
            alarm,
            firing,
            eventbridge,
            duplicate: false,
        });
        if rng.below(100) < DUPLICATE_PERCENT {
            events.push(Event {
                at_ms,
                alarm,
                firing,
                eventbridge: !eventbridge,
                duplicate: true,
            });
        }
    }
    events.truncate(EVENTS);
    events
}

fn state(firing: bool) -> &'static str {
    if firing { "ALARM" } else { "OK" }
}

/// The raw payload CloudWatch would deliver for the event, through its transport.
fn payload(e: &Event, start: DateTime<Utc>) -> Vec<u8> {
    let name = alarm_name(e.alarm);
    let at = start + TimeDelta::milliseconds(e.at_ms as i64);
    let arn = format!("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:{name}");
    let reason = format!(
        "Threshold Crossed: 1 out of the last 1 datapoints was {} the threshold",
        if e.firing {
            "greater than"
        } else {
            "not greater than"
        }
    );
    if e.eventbridge {
        let ts = at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
        serde_json::to_vec(&serde_json::json!({
            "version": "0", "id": format!("eb-{}-{}", e.alarm, e.at_ms),
            "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
            "account": "111122223333", "time": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "region": "eu-west-1", "resources": [arn],
            "detail": {
                "alarmName": name,
                "state": {"value": state(e.firing), "reason": reason, "timestamp": ts},
                "previousState": {"value": state(!e.firing), "reason": "", "timestamp": ts},
                "configuration": {"description": "storm", "metrics": [{"id": "m1", "metricStat": {
                    "metric": {"namespace": "Storm", "name": "Errors",
                               "dimensions": {"Service": service(e.alarm)}},
                    "period": 60, "stat": "Sum"}, "returnData": true}]}
            }
        }))
        .unwrap()
    } else {
        let message = serde_json::json!({
            "AlarmName": name, "AlarmDescription": "storm", "AWSAccountId": "111122223333",
            "NewStateValue": state(e.firing), "NewStateReason": reason,
            "StateChangeTime": at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
            "Region": "EU (Ireland)", "AlarmArn": arn, "OldStateValue": state(!e.firing),
            "Trigger": {"MetricName": "Errors", "Namespace": "Storm", "StatisticType": "Statistic",
                "Statistic": "SUM", "Unit": null, "Dimensions": [{"value": service(e.alarm), "name": "Service"}],
                "Period": 60, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold",
                "Threshold": 1.0, "TreatMissingData": "missing"}
        });
        serde_json::to_vec(&serde_json::json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0",
            "Sns": {"Type": "Notification", "MessageId": format!("sns-{}-{}", e.alarm, e.at_ms),
                "TopicArn": "arn:aws:sns:eu-west-1:111122223333:tocsin-alarms",
                "Subject": format!("{}: \"{name}\" in EU (Ireland)", state(e.firing)),
                "Message": message.to_string(), "Timestamp": at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "MessageAttributes": {}}
        }]}))
        .unwrap()
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn note_jobs(pipeline: &Embedded, pages: &mut usize, told: &mut BTreeSet<String>) {
    for job in pipeline.bus.take_deliveries() {
        *pages += 1;
        told.insert(job.alert.alarm_name.clone());
        for part in job.alert.reason.split("; ") {
            if let Some(names) = part.strip_prefix("new: ") {
                told.extend(names.split(", ").map(str::to_string));
            }
        }
    }
}

fn main() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("scripts/storm/tocsin.yaml")).unwrap();
    let config = Arc::new(tocsin_core::config::load(&text).unwrap());
    let start: DateTime<Utc> = "2026-11-20T02:00:00Z".parse().unwrap();
    let events = storm();
    let out_dir = root.join("target/storm");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut jsonl =
        std::io::BufWriter::new(std::fs::File::create(out_dir.join("transitions.jsonl")).unwrap());
    for e in &events {
        let sev = if e.alarm % ALARMS_PER_SERVICE == 0 {
            "critical"
        } else {
            "medium"
        };
        writeln!(
            jsonl,
            "{{\"at_ms\":{},\"alarm\":\"{}\",\"service\":\"{}\",\"severity\":\"{sev}\",\"firing\":{},\"transport\":\"{}\"}}",
            e.at_ms,
            alarm_name(e.alarm),
            service(e.alarm),
            e.firing,
            if e.eventbridge { "eventbridge" } else { "sns" }
        )
        .unwrap();
    }
    jsonl.flush().unwrap();
    drop(jsonl);
    let duplicates = events.iter().filter(|e| e.duplicate).count();
    let via_eb = events.iter().filter(|e| e.eventbridge).count();

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let rss_before = peak_rss_kib();
    let pipeline = Embedded::new(config, start);
    let mut rendering = Duration::ZERO;
    let mut parsing = Duration::ZERO;
    let mut pages = 0usize;
    let mut told: BTreeSet<String> = BTreeSet::new();
    let mut fired_critical: BTreeSet<String> = BTreeSet::new();
    let mut rejected = 0usize;
    let began = Instant::now();
    rt.block_on(async {
        for e in &events {
            let r = Instant::now();
            let bytes = payload(e, start);
            let p = Instant::now();
            rendering += p - r;
            let alerts = match tocsin_core::source::parse(&bytes) {
                Ok(a) => a,
                Err(_) => {
                    rejected += 1;
                    continue;
                }
            };
            parsing += p.elapsed();
            if e.firing && e.alarm % ALARMS_PER_SERVICE == 0 {
                fired_critical.insert(alarm_name(e.alarm));
            }
            for a in alerts {
                pipeline.ingest(a).await.unwrap();
            }
            note_jobs(&pipeline, &mut pages, &mut told);
        }
        pipeline
            .run_timers(Some(start + TimeDelta::hours(1)))
            .await
            .unwrap();
    });
    note_jobs(&pipeline, &mut pages, &mut told);
    let wall = began.elapsed();
    let rss = peak_rss_kib();
    let audit_entries: usize = rt.block_on(async {
        let mut n = 0;
        for a in pipeline.store.alerts() {
            n += tocsin_core::ports::AlertStore::audit(&pipeline.store, &a.id)
                .await
                .unwrap()
                .len();
        }
        n
    });
    let lost: Vec<&String> = fired_critical.difference(&told).collect();
    let pipeline_time = wall.saturating_sub(rendering);
    let report = serde_json::json!({
        "events": events.len(), "duplicates": duplicates, "via_eventbridge": via_eb,
        "via_sns": events.len() - via_eb, "rejected": rejected,
        "alarms": SERVICES * ALARMS_PER_SERVICE, "services": SERVICES,
        "last_event_virtual_s": events.last().map_or(0, |e| e.at_ms) / 1000,
        "wall_s": wall.as_secs_f64(),
        "payload_rendering_s": rendering.as_secs_f64(),
        "parse_s": parsing.as_secs_f64(),
        "pipeline_s": pipeline_time.as_secs_f64(),
        "events_per_s": events.len() as f64 / pipeline_time.as_secs_f64(),
        "peak_rss_mib": rss as f64 / 1024.0,
        "rss_before_pipeline_mib": rss_before as f64 / 1024.0,
        "pages": pages,
        "critical_alarms_fired": fired_critical.len(),
        "critical_alarms_lost": lost,
        "alerts_stored": pipeline.store.alerts().len(),
        "audit_entries_of_stored_alerts": audit_entries,
    });
    std::fs::write(out_dir.join("tocsin.json"), report.to_string()).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
