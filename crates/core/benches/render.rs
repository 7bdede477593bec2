//! Benchmarks of message rendering: one delivery job for the SNS metric-alarm fixture, rendered for each
//! channel. Every deliver invocation renders once, so this is on the paging path. `make bench` runs it.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tocsin_core::record::{DeliveryJob, DeliveryKind, Status, Target};
use tocsin_core::render::{ALL_KINDS, Context, Links, render};
use tocsin_core::source::parse;

fn job(kind: tocsin_core::config::ChannelKind) -> DeliveryJob {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/sns/metric-alarm.json"
    );
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let alert = parse(&bytes)
        .ok()
        .and_then(|mut v| v.pop())
        .unwrap_or_else(|| panic!("{p}: no alert"));
    DeliveryJob {
        delivery_id: "d-bench".into(),
        alert_id: "a-bench".into(),
        kind: DeliveryKind::Trigger,
        target: Target {
            channel: kind.as_str().into(),
            channel_kind: kind,
            target: "alice".into(),
            address: None,
        },
        level: None,
        created_at: alert.state_changed_at,
        thread: None,
        alert,
        status: Status::Open,
    }
}

fn render_channels(c: &mut Criterion) {
    let links = Links {
        ack: Some("https://tocsin.example/a/ack-token".into()),
        resolve: Some("https://tocsin.example/a/resolve-token".into()),
        view: Some("https://tocsin.example/alerts/a-bench".into()),
        runbook: Some("https://runbooks.example.com/orders-db/cpu".into()),
        ack_code: Some("K7Q2".into()),
    };
    let now: DateTime<Utc> = DateTime::UNIX_EPOCH;
    let mut g = c.benchmark_group("render");
    for kind in ALL_KINDS {
        let job = job(kind);
        let ctx = Context {
            job: &job,
            links: &links,
            now,
        };
        g.bench_with_input(
            BenchmarkId::from_parameter(kind.as_str()),
            &ctx,
            |b, ctx| b.iter(|| render(black_box(kind), black_box(ctx))),
        );
    }
    g.finish();
}

criterion_group!(benches, render_channels);
criterion_main!(benches);
