//! Deliveries per second per channel against a local server that answers 200 at once: 100 sequential
//! sends per iteration through the real sender (payload serialization, signing, the shared client and
//! its kept-alive connection), so the figure is the channel's own overhead, not a provider's latency.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reqwest::Url;
use serde_json::json;
use tocsin_channels::{PagerdutySender, SlackSender, TeamsSender, WebhookSender, http};
use tocsin_core::config::ChannelKind;
use tocsin_core::ports::Notifier;
use tocsin_core::render::Rendered;

#[path = "../src/testing.rs"]
mod testing;

use testing::{Reply, Server, job};

const SENDS: u64 = 100;

async fn hundred<N: Notifier>(sender: &N, kind: ChannelKind, message: &Rendered) -> usize {
    let job = job(kind, Some("#ops"));
    let mut sent = 0;
    for _ in 0..SENDS {
        if sender.send(&job, black_box(message)).await.is_ok() {
            sent += 1;
        }
    }
    sent
}

fn deliver(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let server = runtime
        .block_on(Server::start(vec![
            Reply::status(200).body(r#"{"ok":true,"ts":"1.2"}"#),
        ]))
        .unwrap_or_else(|e| panic!("server: {e}"));
    let client = http::client().unwrap_or_else(|e| panic!("client: {e}"));
    let url = |path: &str| Url::parse(&server.url(path)).unwrap_or_else(|e| panic!("{e}"));

    let card = json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": {"body": [{"type": "TextBlock", "text": "disk full on db-1"}]}}]});
    let slack = Rendered::Slack {
        payload: json!({"text": "disk full on db-1", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*disk full* on db-1"}}]}),
    };
    let teams = Rendered::Teams { payload: card };
    let pagerduty = Rendered::Pagerduty {
        payload: json!({"event_action": "trigger", "dedup_key": "al-1", "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"}}),
    };
    let webhook = Rendered::Webhook {
        body: json!({"alert": {"id": "al-1", "title": "disk full", "severity": "critical"}, "kind": "trigger"}),
    };

    let slack_webhook = SlackSender::webhook(client.clone(), url("/services/T/B/x"));
    let slack_bot = SlackSender::bot(client.clone(), "xoxb-bench".into(), url("/api"));
    let teams_sender = TeamsSender::new(client.clone(), url("/workflows/1"));
    let pd_sender = PagerdutySender::new(client.clone(), "rk-bench".into(), url("/v2/enqueue"));
    let webhook_sender = WebhookSender::new(client, url("/hook"), b"bench-signing-key");

    let mut g = c.benchmark_group("deliver");
    g.throughput(Throughput::Elements(SENDS));
    g.bench_function(BenchmarkId::from_parameter("slack-webhook"), |b| {
        b.iter(|| runtime.block_on(hundred(&slack_webhook, ChannelKind::Slack, &slack)))
    });
    g.bench_function(BenchmarkId::from_parameter("slack-bot"), |b| {
        b.iter(|| runtime.block_on(hundred(&slack_bot, ChannelKind::Slack, &slack)))
    });
    g.bench_function(BenchmarkId::from_parameter("teams"), |b| {
        b.iter(|| runtime.block_on(hundred(&teams_sender, ChannelKind::Teams, &teams)))
    });
    g.bench_function(BenchmarkId::from_parameter("pagerduty"), |b| {
        b.iter(|| runtime.block_on(hundred(&pd_sender, ChannelKind::Pagerduty, &pagerduty)))
    });
    g.bench_function(BenchmarkId::from_parameter("webhook"), |b| {
        b.iter(|| runtime.block_on(hundred(&webhook_sender, ChannelKind::Webhook, &webhook)))
    });
    g.finish();
    drop(server);
}

criterion_group!(benches, deliver);
criterion_main!(benches);
