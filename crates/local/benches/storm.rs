//! The storm benchmark (issue 7): 100,000 alarm state changes from 500 alarms across 50 services in one
//! virtual hour, with flapping alarms and duplicate deliveries through SNS and EventBridge, replayed
//! in-process through the embedded pipeline (parse, dedup, flap damping, grouping) with
//! `scripts/storm/tocsin.yaml`, twice, each run in a process of its own (this binary with `--run MODE`)
//! so that each has its own peak memory figure:
//!
//! - `one-thread`: parse and route on one thread, payloads rendered a batch at a time outside the
//!   timed part;
//! - `parse-ahead`: the storm replayed from a recording (`target/storm/payloads.ndjson`, one payload a
//!   line), parsed on a second thread a batch ahead of the router, which routes in order on the
//!   first; timed whole, from opening the recording to the last timer.
//!
//! Each reports wall time, events per second, peak RSS and pages sent, and checks that every critical
//! alarm that fired reached someone. The transitions go to `target/storm/transitions.jsonl` for
//! `scripts/storm/alertmanager.py`, which sends the same storm to Prometheus Alertmanager.
//!
//! Run: `cargo bench -p tocsin-local --bench storm` (the bench profile: opt-level 3, LTO).

#![allow(clippy::unwrap_used, missing_docs)] // a bench binary: a panic is the report

#[path = "support/rss.rs"]
mod rss;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_local::Embedded;
/// The tocsin command's allocator (`crates/cli/src/main.rs`), so that this measures what `tocsin
/// replay` runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 100_000;
const SERVICES: usize = 50;
const ALARMS_PER_SERVICE: usize = 10;
const FLAPPERS_PER_SERVICE: usize = 2;
const DUPLICATE_PERCENT: u64 = 25;
/// Events rendered at a time, outside the timed part.
const BATCH: usize = 1_000;
/// Events parsed ahead at a time in the pipelined run (two batches may wait).
const PARSED_BATCH: usize = 256;

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

/// What one replay of the storm did.
struct Run {
    wall: Duration,
    pages: usize,
    told: BTreeSet<String>,
    rejected: usize,
    alerts_stored: usize,
    audit_entries: usize,
}

/// One replay in progress: the pipeline and what it has done so far. Both runs route through it, so
/// they differ only in where the parsed events come from.
struct Replay {
    pipeline: Embedded,
    pages: usize,
    told: BTreeSet<String>,
    rejected: usize,
}

impl Replay {
    fn new(config: &Arc<tocsin_core::config::Config>, start: DateTime<Utc>) -> Self {
        Replay {
            pipeline: Embedded::new(Arc::clone(config), start),
            pages: 0,
            told: BTreeSet::new(),
            rejected: 0,
        }
    }

    /// Routes one parsed event, in order.
    async fn route(
        &mut self,
        parsed: Result<Vec<tocsin_core::model::Alert>, tocsin_core::source::ParseError>,
    ) {
        match parsed {
            Ok(alerts) => {
                for a in alerts {
                    self.pipeline.ingest(a).await.unwrap();
                }
            }
            Err(_) => self.rejected += 1,
        }
        note_jobs(&self.pipeline, &mut self.pages, &mut self.told);
    }

    /// Runs the virtual clock to the end of the storm's hour.
    async fn settle(&mut self, start: DateTime<Utc>) {
        self.pipeline
            .run_timers(Some(start + TimeDelta::hours(1)))
            .await
            .unwrap();
        note_jobs(&self.pipeline, &mut self.pages, &mut self.told);
    }

    async fn finish(self, wall: Duration) -> Run {
        let store = &self.pipeline.store;
        let alerts = store.alerts();
        let mut audit_entries = 0;
        for a in &alerts {
            audit_entries += tocsin_core::ports::AlertStore::audit(store, &a.id)
                .await
                .unwrap()
                .len();
        }
        Run {
            wall,
            pages: self.pages,
            told: self.told,
            rejected: self.rejected,
            alerts_stored: alerts.len(),
            audit_entries,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Parse and route on one thread. Payloads are rendered a batch at a time outside the timed part
/// (the generator's work, not tocsin's), so that neither their rendering nor a clock read per event
/// is in the figure, and at most one batch of them is in memory.
fn one_thread(
    config: &Arc<tocsin_core::config::Config>,
    start: DateTime<Utc>,
    events: &[Event],
) -> Run {
    let mut replay = Replay::new(config, start);
    let rt = runtime();
    let mut wall = Duration::ZERO;
    rt.block_on(async {
        for batch in events.chunks(BATCH) {
            let payloads: Vec<Vec<u8>> = batch.iter().map(|e| payload(e, start)).collect();
            let p = Instant::now();
            for bytes in &payloads {
                replay.route(tocsin_core::source::parse(bytes)).await;
            }
            wall += p.elapsed();
        }
        let p = Instant::now();
        replay.settle(start).await;
        wall += p.elapsed();
    });
    rt.block_on(replay.finish(wall))
}

/// The recording replayed with parsing on a second thread, a batch ahead of the router, which takes
/// the alerts in order on this one: parsing is pure, routing is sequential, and this machine has two
/// cores. Timed whole, from opening the recording to the last timer.
fn parse_ahead(
    config: &Arc<tocsin_core::config::Config>,
    start: DateTime<Utc>,
    recording: &std::path::Path,
) -> Run {
    use std::io::BufRead;
    type Batch = Vec<Result<Vec<tocsin_core::model::Alert>, tocsin_core::source::ParseError>>;
    let mut replay = Replay::new(config, start);
    let rt = runtime();
    let began = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(2);
    let path = recording.to_path_buf();
    let reader = std::thread::spawn(move || {
        let mut input =
            std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path).unwrap());
        let mut line = Vec::new();
        let mut batch: Batch = Vec::with_capacity(PARSED_BATCH);
        while input.read_until(b'\n', &mut line).unwrap() > 0 {
            let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
            batch.push(tocsin_core::source::parse(bytes));
            line.clear();
            if batch.len() == PARSED_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(PARSED_BATCH));
                if tx.send(full).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(batch);
    });
    rt.block_on(async {
        for batch in rx {
            for parsed in batch {
                replay.route(parsed).await;
            }
        }
        replay.settle(start).await;
    });
    reader.join().unwrap();
    let wall = began.elapsed();
    rt.block_on(replay.finish(wall))
}

/// Runs one replay of the storm in this process (`--run MODE`, from `main`) and prints what it did
/// as one JSON line: each mode in a process of its own, so that each peak memory figure is its own.
fn run_mode(
    mode: &str,
    config: &Arc<tocsin_core::config::Config>,
    start: DateTime<Utc>,
    out_dir: &std::path::Path,
) {
    let events = storm();
    let fired_critical: BTreeSet<String> = events
        .iter()
        .filter(|e| e.firing && e.alarm % ALARMS_PER_SERVICE == 0)
        .map(|e| alarm_name(e.alarm))
        .collect();
    let n = events.len();
    let (run, rss_before) = match mode {
        "one-thread" => {
            let rss_before = rss::peak_rss_kib();
            (one_thread(config, start, &events), rss_before)
        }
        "parse-ahead" => {
            // The recording holds the storm: the generator's copy goes before the run starts.
            drop(events);
            let rss_before = rss::peak_rss_kib();
            (
                parse_ahead(config, start, &out_dir.join("payloads.ndjson")),
                rss_before,
            )
        }
        other => panic!("unknown mode {other}"),
    };
    let peak = rss::peak_rss_kib();
    let lost: Vec<&String> = fired_critical.difference(&run.told).collect();
    println!(
        "{}",
        serde_json::json!({
            "wall_s": run.wall.as_secs_f64(),
            "events_per_s": n as f64 / run.wall.as_secs_f64(),
            "peak_rss_mib": peak as f64 / 1024.0,
            "rss_before_pipeline_mib": rss_before as f64 / 1024.0,
            "pages": run.pages,
            "rejected": run.rejected,
            "critical_alarms_fired": fired_critical.len(),
            "critical_alarms_lost": lost,
            "alerts_stored": run.alerts_stored,
            "audit_entries_of_stored_alerts": run.audit_entries,
        })
    );
}

fn main() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("scripts/storm/tocsin.yaml")).unwrap();
    let config = Arc::new(tocsin_core::config::load(&text).unwrap());
    let start: DateTime<Utc> = "2026-11-20T02:00:00Z".parse().unwrap();
    let out_dir = root.join("target/storm");
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--run") {
        run_mode(&args[i + 1], &config, start, &out_dir);
        return;
    }
    let events = storm();
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

    // The recording the parse-ahead run replays: one payload a line (compact JSON has no raw
    // newline), written before any timing, read back from the page cache as `tocsin replay` reads
    // its files.
    let recording = out_dir.join("payloads.ndjson");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&recording).unwrap());
        for e in &events {
            w.write_all(&payload(e, start)).unwrap();
            w.write_all(b"\n").unwrap();
        }
        w.flush().unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let run = |mode: &str| -> serde_json::Value {
        let out = std::process::Command::new(&exe)
            .args(["--run", mode])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let one = run("one-thread");
    let two = run("parse-ahead");
    for key in ["pages", "rejected", "critical_alarms_lost", "alerts_stored"] {
        assert_eq!(one[key], two[key], "both runs decide alike: {key}");
    }
    // The parsing share, timed apart so that neither run reads a clock per event.
    let mut parsing = Duration::ZERO;
    for batch in events.chunks(BATCH) {
        let payloads: Vec<Vec<u8>> = batch.iter().map(|e| payload(e, start)).collect();
        let p = Instant::now();
        for bytes in &payloads {
            std::hint::black_box(tocsin_core::source::parse(bytes).ok());
        }
        parsing += p.elapsed();
    }
    let report = serde_json::json!({
        "events": events.len(), "duplicates": duplicates, "via_eventbridge": via_eb,
        "via_sns": events.len() - via_eb,
        "alarms": SERVICES * ALARMS_PER_SERVICE, "services": SERVICES,
        "last_event_virtual_s": events.last().map_or(0, |e| e.at_ms) / 1000,
        "parse_s": parsing.as_secs_f64(),
        "parse_ahead": two,
        "one_thread": one,
    });
    std::fs::write(out_dir.join("tocsin.json"), report.to_string()).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
