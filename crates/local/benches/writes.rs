//! What the router writes to the store per decision (issue 16's write budget), estimated as DynamoDB
//! bills it: every item written is 1 write unit per KB of its JSON body plus the attributes beside it
//! (`ITEM_OVERHEAD` bytes), rounded up, and again for every index the item is in (the `by-status`
//! index projects ALL attributes, so an alert written is billed about twice). Two columns from the
//! same run: before the change to opening without a transaction (`create_alert` a transaction with
//! the fingerprint pointer, every item in it billed twice; alerts in two ALL indexes, by status and
//! by fingerprint) and now (the alert put on its own, then the pointer; one index, which an alert
//! joins only once its opening is carried out). A GSI delete when an alert changes status is not
//! counted (about one unit more per status change, in both columns). Each scenario runs on the
//! embedded pipeline with `infra/tocsin.yaml` through `tocsin_local::Faults`, which notes every
//! item written and its size.
//!
//! Run: `cargo bench -p tocsin-local --bench writes`.

#![allow(clippy::unwrap_used, missing_docs)] // a bench binary: a panic is the report

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_core::model::{AlarmState, Alert, Severity, Source, Transport, stable_id};
use tocsin_core::record::Timer;
use tocsin_core::router::Router;
use tocsin_local::{
    Faults, FaultyBus, FaultyEmbedded, FaultyScheduler, FaultyStore, LocalBus, MemoryStore,
    VirtualClock, VirtualScheduler,
};

/// Bytes of key, version and index attributes an item carries beside its body.
const ITEM_OVERHEAD: usize = 200;

type R = Router<
    FaultyStore<MemoryStore>,
    FaultyBus<LocalBus>,
    FaultyScheduler<VirtualScheduler>,
    VirtualClock,
>;

fn alarm(name: &str, state: AlarmState, at: DateTime<Utc>) -> Alert {
    let arn = format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}");
    Alert {
        event_id: stable_id(&["writes", &arn, state.as_str(), &at.to_rfc3339()]),
        fingerprint: stable_id(&["writes", &arn]),
        source: Source::Cloudwatch,
        transport: Transport::Sns,
        alarm_name: name.into(),
        alarm_arn: Some(arn),
        account_id: Some("123456789012".into()),
        region: Some("eu-west-1".into()),
        state,
        previous_state: None,
        state_changed_at: at,
        reason: format!(
            "{name}: Threshold Crossed: 2 out of the last 2 datapoints were greater than the threshold (10.0)"
        ),
        kind: "metric".into(),
        namespace: Some("AWS/ApplicationELB".into()),
        metric_name: Some("HTTPCode_Target_5XX_Count".into()),
        dimensions: BTreeMap::from([(
            "LoadBalancer".to_string(),
            "app/checkout/50dc6c495c0c9188".to_string(),
        )]),
        threshold: Some(10.0),
        severity: Severity::Medium,
        description: "5XX responses from the checkout ALB".into(),
        labels: BTreeMap::new(),
    }
}

/// Estimated write units of `writes`: (items, before, now).
fn units(writes: &[(&'static str, usize)]) -> (usize, usize, usize) {
    if std::env::var_os("WRITES_DETAIL").is_some() {
        eprintln!("{writes:?}");
    }
    let (mut before, mut now) = (0, 0);
    for (what, size) in writes {
        let one = (size + ITEM_OVERHEAD).div_ceil(1024);
        let (b, n) = match *what {
            // Before: the alert and its pointer (about 100 bytes) in a transaction (twice each),
            // and the alert in both indexes. Now: the alert, then the pointer, and the alert in the
            // status index unless its opening is owed (it joins when that is carried out).
            "store.create_alert" => (2 * one + 2 + 2 * one, one + 1 + one),
            "store.create_alert.owing" => (2 * one + 2 + 2 * one, one + 1),
            // The alert, and its copy in each index.
            "store.update_alert" => (3 * one, 2 * one),
            _ => (one, one),
        };
        before += b;
        now += n;
    }
    (writes.len(), before, now)
}

struct Rig {
    router: R,
    faults: Faults,
    scheduler: VirtualScheduler,
    clock: VirtualClock,
}

impl Rig {
    fn new(start: DateTime<Utc>) -> Rig {
        let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(format!("{root}/infra/tocsin.yaml")).unwrap();
        let config = Arc::new(tocsin_core::config::load(&text).unwrap());
        let p = FaultyEmbedded::new(config, start);
        Rig {
            router: p.router,
            faults: p.faults,
            scheduler: p.scheduler,
            clock: p.clock,
        }
    }

    async fn event(&self, a: Alert) -> (usize, usize, usize) {
        self.timers(a.state_changed_at).await;
        self.clock.set(a.state_changed_at);
        self.faults.clear();
        self.router.handle(a).await.unwrap();
        units(&self.faults.writes())
    }

    async fn timers(&self, until: DateTime<Utc>) -> (usize, usize, usize) {
        self.faults.clear();
        let mut ticks: Vec<Timer> = Vec::new();
        while let Some((at, _, tick)) = self.scheduler.pop_due(until) {
            self.clock.set(at);
            ticks.push(tick.clone());
            self.router.on_timer(&tick).await.unwrap();
        }
        units(&self.faults.writes())
    }
}

fn row(what: &str, (items, before, now): (usize, usize, usize)) {
    println!("| {what} | {items} | {before} | {now} |");
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let t0: DateTime<Utc> = "2026-11-20T02:10:00Z".parse().unwrap();
        println!(
            "| decision (router only) | items written | est. write units before (transaction, two indexes) | est. write units now |"
        );
        println!("|---|---:|---:|---:|");
        let rig = Rig::new(t0);
        let crit = alarm("checkout-api-5xx", AlarmState::Alarm, t0);
        row(
            "new critical alert (SMS + email on call, Slack group bypass, escalation timer)",
            rig.event(crit.clone()).await,
        );
        row(
            "the same transition again (a duplicate delivery)",
            rig.event(crit.clone()).await,
        );
        row(
            "a repeat (nothing new)",
            rig.event(alarm(
                "checkout-api-5xx",
                AlarmState::Alarm,
                t0 + TimeDelta::minutes(4),
            ))
            .await,
        );
        row(
            "escalation ticks to level 2 (15 min)",
            rig.timers(t0 + TimeDelta::minutes(16)).await,
        );
        row(
            "resolution (tells 4 targets, leaves the group)",
            rig.event(alarm(
                "checkout-api-5xx",
                AlarmState::Ok,
                t0 + TimeDelta::minutes(21),
            ))
            .await,
        );
        row(
            "group flush after the resolution",
            rig.timers(t0 + TimeDelta::minutes(30)).await,
        );
        let rig = Rig::new(t0);
        row(
            "new medium alert (Slack group only)",
            rig.event(alarm("search-latency-p99", AlarmState::Alarm, t0))
                .await,
        );
        row(
            "its group's first flush (group_wait)",
            rig.timers(t0 + TimeDelta::minutes(1)).await,
        );
    });
}
