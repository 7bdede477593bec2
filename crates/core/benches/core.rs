//! Benchmarks of the core hot paths: parsing and normalizing one SNS alarm event (and an AWS Health
//! event and a Security Hub import), and routing one alert
//! through route trees of 10 to 10,000 rules. `make bench` runs them; figures go in `BENCHMARKS.md`.

use std::fmt::Write;
use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tocsin_core::classify::classify;
use tocsin_core::config::load;
use tocsin_core::routing::match_routes;
use tocsin_core::source::parse;

fn fixture(path: &str) -> Vec<u8> {
    let p = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn parse_events(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for name in [
        "sns/metric-alarm.json",
        "eventbridge/metric-alarm.json",
        "sns/multi-record.json",
        "health/issue-updated.json",
        "securityhub/findings-imported.json",
    ] {
        let bytes = fixture(name);
        let n = parse(&bytes).map(|v| v.len()).unwrap_or(1) as u64;
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| parse(black_box(bytes)).map(|v| v.len()))
        });
    }
    g.finish();
}

/// A config with `n` sibling routes, each keyed on its own service and alarm-name pattern; the alert
/// under test matches only the last, so every rule is tried (the worst case for a flat tree).
fn config_with_rules(n: usize) -> String {
    config_with_pattern(n, "svc{i}-.*")
}

/// The same tree with a pattern that has no literal fast path (case-insensitive), so no index applies
/// and every rule runs the regex engine: the worst case.
fn config_with_pattern(n: usize, pattern: &str) -> String {
    let mut y = String::from(
        "channels:\n  ops-slack: {type: slack, webhook_url: {env: SLACK_WEBHOOK_URL}, default_to: [\"#ops\"]}\n",
    );
    y.push_str("route:\n  notify: [{channel: ops-slack}]\n  routes:\n");
    for i in 0..n {
        let _ = writeln!(
            y,
            "    - match: ['namespace = \"AWS/ApplicationELB\"', 'alarm_name =~ \"{}\"', 'severity != info']",
            pattern.replace("{i}", &i.to_string())
        );
    }
    y
}

fn route(c: &mut Criterion) {
    route_group(c, "route", config_with_rules, &[10, 100, 1_000, 10_000]);
    route_group(
        c,
        "route_unindexed",
        |n| config_with_pattern(n, "(?i)svc{i}-.*"),
        &[10, 100, 1_000],
    );
}

fn route_group(c: &mut Criterion, group: &str, make: fn(usize) -> String, sizes: &[usize]) {
    let bytes = fixture("sns/metric-alarm.json");
    let mut g = c.benchmark_group(group);
    for &n in sizes {
        let config = match load(&make(n)) {
            Ok(c) => c,
            Err(e) => panic!("bench config: {e:?}"),
        };
        let mut alert = parse(&bytes).unwrap_or_default().remove(0);
        alert.alarm_name = format!("svc{}-5xx", n - 1);
        alert.namespace = Some("AWS/ApplicationELB".into());
        classify(&config, &mut alert);
        let at: DateTime<Utc> = alert.state_changed_at;
        assert_eq!(match_routes(&config, &alert, at)[0].route.pos.line, n + 5);
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| match_routes(black_box(&config), black_box(&alert), at).len())
        });
    }
    g.finish();
}

criterion_group!(benches, parse_events, route);
criterion_main!(benches);
