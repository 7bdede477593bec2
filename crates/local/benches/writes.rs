//! What the router writes to the store per decision (issue 16's write budget), estimated as DynamoDB
//! bills it: every item written is 1 write unit per KB of its JSON body plus the attributes beside it
//! (`ITEM_OVERHEAD` bytes), rounded up, twice inside a transaction, plus what the write costs the
//! table's indexes. Three columns from the same run:
//! - 2324db9: `create_alert` a transaction with the fingerprint pointer (every item in it billed
//!   twice), and every alert write copied whole into two indexes that projected ALL attributes (by
//!   status and by fingerprint);
//! - with the status index projecting ALL (the stop before): the alert put on its own, then the
//!   pointer; one index, which an alert joins once its opening is carried out, and which every later
//!   write of a listed alert was copied into whole (its GSI delete on a status change not counted);
//! - now: the status index (`by-status-keys`) projects the keys only. DynamoDB writes an index only
//!   when a table write changes what it holds, so a write that leaves an alert's status as it was
//!   costs it nothing; entering or leaving the index costs 1, a status change 2 (a delete and a put).
//!
//! A decision's row includes the escalation step it set for its own instant (a level with no delay
//! fires at once). Each scenario runs on the embedded pipeline with `infra/tocsin.yaml` through
//! `tocsin_local::Faults`, which notes every item written, its size, and each alert's index key.
//!
//! Run: `cargo bench -p tocsin-local --bench writes`.

#![allow(clippy::unwrap_used, missing_docs)] // a bench binary: a panic is the report

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_core::model::{AlarmState, Alert, Severity, Source, Transport, stable_id};
use tocsin_core::ports::Scheduler;
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

/// Estimated write units of one decision's writes: (items, before, with an ALL index, now).
/// `listed` carries each alert's status index key across decisions (the table's state).
fn units(
    writes: &[(&'static str, usize)],
    listings: &[(String, Option<String>)],
    listed: &mut HashMap<String, Option<String>>,
) -> (usize, usize, usize, usize) {
    if std::env::var_os("WRITES_DETAIL").is_some() {
        eprintln!("{writes:?}");
    }
    let mut alerts = listings.iter();
    let (mut before, mut all, mut now) = (0, 0, 0);
    for (what, size) in writes {
        let one = (size + ITEM_OVERHEAD).div_ceil(1024);
        let is_alert = what.starts_with("store.create_alert") || *what == "store.update_alert";
        // Now: the status index holds keys only. A write costs it nothing when the alert's key
        // stays as its last write had it, 1 when the alert enters or leaves the index, 2 when
        // it moves (a delete and a put); an index entry is well under 1 KB.
        let index = if is_alert {
            let (id, key) = alerts.next().expect("an alert write noted with its key");
            let old = listed.insert(id.clone(), key.clone()).flatten();
            match (old, key) {
                (None, None) => 0,
                (Some(a), Some(b)) if &a == b => 0,
                (Some(_), Some(_)) => 2,
                _ => 1,
            }
        } else {
            0
        };
        let (b, a, n) = match *what {
            // Before: the alert and its pointer (about 100 bytes) in a transaction (twice each),
            // and the alert in both indexes (both ALL). With an ALL index (the stop before): the
            // alert, then the pointer, and the alert again in the status index unless its opening
            // is owed (it joins when that is carried out).
            "store.create_alert" => (2 * one + 2 + 2 * one, one + 1 + one, one + 1 + index),
            "store.create_alert.owing" => (2 * one + 2 + 2 * one, one + 1, one + 1 + index),
            "store.update_alert" => (3 * one, 2 * one, one + index),
            _ => (one, one, one),
        };
        before += b;
        all += a;
        now += n;
    }
    (writes.len(), before, all, now)
}

struct Rig {
    router: R,
    faults: Faults,
    scheduler: VirtualScheduler,
    clock: VirtualClock,
    listed: std::cell::RefCell<HashMap<String, Option<String>>>,
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
            listed: Default::default(),
        }
    }

    async fn event(&self, a: Alert) -> (usize, usize, usize, usize) {
        let at = a.state_changed_at;
        self.timers(at).await;
        self.clock.set(at);
        self.faults.clear();
        self.router.handle(a).await.unwrap();
        // An escalation step the decision set for its own instant (a level with no delay) fires at
        // once and is part of its cost; other timers due then (a group's flush) keep their rows.
        let mut others = Vec::new();
        while let Some((due, name, tick)) = self.scheduler.pop_due(at) {
            if matches!(tick, Timer::Escalation { .. }) {
                self.clock.set(due);
                self.router.on_timer(&tick).await.unwrap();
            } else {
                others.push((due, name, tick));
            }
        }
        for (due, name, tick) in others {
            self.scheduler.schedule(&name, due, &tick).await.unwrap();
        }
        self.units()
    }

    fn units(&self) -> (usize, usize, usize, usize) {
        units(
            &self.faults.writes(),
            &self.faults.listings(),
            &mut self.listed.borrow_mut(),
        )
    }

    async fn timers(&self, until: DateTime<Utc>) -> (usize, usize, usize, usize) {
        self.faults.clear();
        while let Some((at, _, tick)) = self.scheduler.pop_due(until) {
            self.clock.set(at);
            self.router.on_timer(&tick).await.unwrap();
        }
        self.units()
    }
}

fn row(what: &str, (items, before, all, now): (usize, usize, usize, usize)) {
    println!("| {what} | {items} | {before} | {all} | {now} |");
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let t0: DateTime<Utc> = "2026-11-20T02:10:00Z".parse().unwrap();
        println!(
            "| decision (router only) | items written | est. write units, 2324db9 (transaction, two ALL indexes) | with the status index projecting ALL | now (keys only) |"
        );
        println!("|---|---:|---:|---:|---:|");
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
