//! Group scaling (issue 16): N alarms of one service all fire within a minute into one notification
//! group, routed through the embedded pipeline with `scripts/storm/tocsin.yaml`, for N = 2,500, 5,000,
//! 10,000 and 20,000, each in a process of its own (this binary with `--run N`) so that each has its
//! own peak memory figure. Prints, per N, wall time, peak RSS, pages sent and the longest message.
//!
//! Run: `cargo bench -p tocsin-local --bench group` (the bench profile: opt-level 3, LTO).

#![allow(clippy::unwrap_used, missing_docs)] // a bench binary: a panic is the report

#[path = "support/rss.rs"]
mod rss;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_core::model::{AlarmState, Alert, Severity, Source, Transport, stable_id};
use tocsin_local::Embedded;

/// The tocsin command's allocator, as in the storm bench.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZES: [usize; 4] = [2_500, 5_000, 10_000, 20_000];

fn alarm(i: usize, at: DateTime<Utc>) -> Alert {
    let name = format!("node-{i:05}-latency");
    let arn = format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}");
    Alert {
        event_id: stable_id(&["group-bench", &name, "ALARM"]),
        fingerprint: stable_id(&["group-bench", &arn]),
        source: Source::Cloudwatch,
        transport: Transport::Sns,
        alarm_name: name.clone(),
        alarm_arn: Some(arn),
        account_id: Some("123456789012".into()),
        region: Some("eu-west-1".into()),
        state: AlarmState::Alarm,
        previous_state: Some(AlarmState::Ok),
        state_changed_at: at,
        reason: format!("{name} above its threshold"),
        kind: "metric".into(),
        namespace: Some("AWS/ApplicationELB".into()),
        metric_name: Some("TargetResponseTime".into()),
        dimensions: BTreeMap::from([("Service".to_string(), "checkout".to_string())]),
        threshold: Some(2.0),
        severity: Severity::Medium,
        description: String::new(),
        labels: BTreeMap::new(),
    }
}

fn run(n: usize) {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(format!("{root}/scripts/storm/tocsin.yaml")).unwrap();
    let config = Arc::new(tocsin_core::config::load(&text).unwrap());
    let start: DateTime<Utc> = "2026-11-20T02:00:00Z".parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let began = Instant::now();
    let (pages, longest) = rt.block_on(async {
        let p = Embedded::new(config, start);
        let (mut pages, mut longest) = (0, 0);
        for i in 0..n {
            let at = start + TimeDelta::milliseconds((60_000 * i / n) as i64);
            p.ingest(alarm(i, at)).await.unwrap();
            for j in p.bus.take_deliveries() {
                pages += 1;
                longest = longest.max(j.alert.reason.len());
            }
        }
        p.run_timers(Some(start + TimeDelta::hours(1)))
            .await
            .unwrap();
        for j in p.bus.take_deliveries() {
            pages += 1;
            longest = longest.max(j.alert.reason.len());
        }
        (pages, longest)
    });
    let secs = began.elapsed().as_secs_f64();
    println!(
        "{n:>6} alarms in one group: {secs:6.2} s, peak RSS {:6.1} MiB, {pages} pages, longest message {longest} characters",
        rss::peak_rss_kib() as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--run") {
        run(args[i + 1].parse().unwrap());
        return;
    }
    let me = std::env::current_exe().unwrap();
    for n in SIZES {
        let status = std::process::Command::new(&me)
            .args(["--run", &n.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "the run of {n} failed");
    }
}
