//! Load cannot starve paging: the status pages under a flood of requests spread over several Lambda
//! sandboxes (one `Api` each, with its own memory) over one store, every store call counted
//! (`FaultyStore`). The store is read to build a page at most once per 30 s and audience, whatever
//! the number of requests or sandboxes; each sandbox adds one small read of the shared page.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tocsin_api::{Api, ApiSettings, Identity, Request, Response, STATUS_RECHECK, STATUS_TTL};
use tocsin_core::config::Config;
use tocsin_core::ports::{Clock, StatusSnapshots};
use tocsin_core::router::{Router, RouterSettings};
use tocsin_core::status::Audience;
use tocsin_core::token::KeyRing;
use tocsin_local::{
    Embedded, Faults, FaultyStore, LocalBus, MemoryStore, VirtualClock, VirtualScheduler,
};

type Sandbox = Api<FaultyStore<MemoryStore>, LocalBus, VirtualScheduler, VirtualClock>;

const SANDBOXES: usize = 5;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config() -> Arc<Config> {
    let text = std::fs::read_to_string(root().join("infra/tocsin.yaml")).unwrap();
    Arc::new(tocsin_core::config::load(&text).unwrap())
}

struct World {
    pipeline: Embedded,
    faults: Faults,
    sandboxes: Vec<Sandbox>,
    /// The alerts the pages show (each costs one audit read per build).
    incidents: usize,
}

async fn world() -> World {
    let config = config();
    let start: DateTime<Utc> = "2026-11-20T02:10:00Z".parse().unwrap();
    let pipeline = Embedded::new(config.clone(), start);
    let mut incidents = 0;
    for event in [
        "01-checkout-5xx-alarm.sns.json",
        "04-search-latency-p99-alarm.eventbridge.json",
    ] {
        let bytes = std::fs::read(root().join("events/scenario/incident").join(event)).unwrap();
        for alert in tocsin_core::source::parse(&bytes).unwrap() {
            pipeline.ingest(alert).await.unwrap();
            incidents += 1;
        }
    }
    pipeline.clock.set("2026-11-20T02:12:00Z".parse().unwrap());
    let faults = Faults::new();
    let sandboxes = (0..SANDBOXES)
        .map(|_| {
            Api::new(
                Router {
                    config: config.clone(),
                    store: FaultyStore {
                        inner: pipeline.store.clone(),
                        faults: faults.clone(),
                    },
                    bus: pipeline.bus.clone(),
                    scheduler: pipeline.scheduler.clone(),
                    clock: pipeline.clock.clone(),
                    settings: RouterSettings::default(),
                },
                ApiSettings {
                    link_keys: KeyRing::single("k1", vec![7; 32]).unwrap(),
                    integration_keys: None,
                    default_audience: Audience::Customer,
                    title: "Example status".into(),
                    metrics_namespace: "tocsin".into(),
                    max_list: 1000,
                },
            )
        })
        .collect();
    faults.clear();
    World {
        pipeline,
        faults,
        sandboxes,
        incidents,
    }
}

fn get(path: &str, internal: bool) -> Request {
    Request {
        method: "GET".into(),
        path: path.into(),
        identity: internal.then(|| Identity::Local("alice".into())),
        ..Default::default()
    }
}

/// The store calls since the last look, split into reads and writes (the claims and the pages
/// stored).
fn counted(faults: &Faults) -> (Vec<&'static str>, Vec<&'static str>) {
    let calls = faults.calls();
    faults.clear();
    calls.into_iter().partition(|c| {
        !matches!(
            *c,
            "store.claim_status_refresh" | "store.put_status_snapshot"
        )
    })
}

impl World {
    /// `n` requests, round-robin over the sandboxes, alternating the JSON and the HTML page.
    async fn flood(&self, n: usize, internal: bool) -> Vec<Response> {
        let (json, html) = if internal {
            ("/status/internal.json", "/status/internal")
        } else {
            ("/status.json", "/status")
        };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let path = if i % 2 == 0 { json } else { html };
            let r = self.sandboxes[i % SANDBOXES]
                .handle(&get(path, internal))
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            out.push(r);
        }
        out
    }

    fn builds(&self) -> u64 {
        self.sandboxes.iter().map(|s| s.status_cache.builds()).sum()
    }

    fn later(&self, by: Duration) {
        self.pipeline.clock.set(self.pipeline.clock.now() + by);
    }
}

#[tokio::test]
async fn a_thousand_status_requests_over_five_sandboxes_read_the_store_a_handful_of_times() {
    let w = world().await;
    let replies = w.flood(1000, false).await;
    let (reads, writes) = counted(&w.faults);
    // One build (three list queries, an audit read per incident) and one read of the shared page
    // per sandbox; one claim and one page stored.
    let build = 3 + w.incidents;
    eprintln!(
        "1,000 status requests over {SANDBOXES} sandboxes: {} store reads ({reads:?}), {} writes",
        reads.len(),
        writes.len()
    );
    assert_eq!(w.builds(), 1, "one build among all the sandboxes");
    assert_eq!(reads.len(), SANDBOXES + build, "{reads:?}");
    assert_eq!(
        writes,
        ["store.claim_status_refresh", "store.put_status_snapshot"]
    );
    // Every sandbox serves the same bytes.
    assert!(replies.iter().step_by(2).all(|r| r.body == replies[0].body));
    assert!(
        replies
            .iter()
            .skip(1)
            .step_by(2)
            .all(|r| r.body == replies[1].body)
    );
    assert!(String::from_utf8_lossy(&replies[1].body).contains("<html"));

    // Within the 30 s nothing is read again, however many requests come.
    w.later(STATUS_TTL - Duration::seconds(1));
    w.flood(1000, false).await;
    assert_eq!(counted(&w.faults), (vec![], vec![]));

    // Then one sandbox rebuilds it and the others take the new page from the store.
    w.later(Duration::seconds(1));
    w.flood(1000, false).await;
    let (reads, writes) = counted(&w.faults);
    assert_eq!(w.builds(), 2);
    assert_eq!(reads.len(), SANDBOXES + build, "{reads:?}");
    assert_eq!(writes.len(), 2);
}

#[tokio::test]
async fn the_internal_view_is_another_audience_with_its_own_single_build() {
    let w = world().await;
    w.flood(100, false).await;
    let customer = w.sandboxes[0].handle(&get("/status.json", false)).await;
    w.flood(100, true).await;
    assert_eq!(w.builds(), 2, "one per audience");
    let internal = w.sandboxes[0]
        .handle(&get("/status/internal.json", true))
        .await;
    assert_ne!(
        internal.body, customer.body,
        "the audiences' pages are apart"
    );
    // A caller without the authorizer's identity still gets no internal page.
    let denied = w.sandboxes[1]
        .handle(&get("/status/internal.json", false))
        .await;
    assert_eq!(denied.status, 401);
}

#[tokio::test]
async fn a_sandbox_that_loses_the_refresh_serves_the_last_page_and_looks_again_shortly() {
    let w = world().await;
    let first = w.sandboxes[0].handle(&get("/status.json", false)).await;
    w.sandboxes[1].handle(&get("/status.json", false)).await;
    // 31 s later another sandbox (not one of these) has claimed the refresh and is building.
    w.later(STATUS_TTL + Duration::seconds(1));
    let now = w.pipeline.clock.now();
    assert!(
        w.pipeline
            .store
            .claim_status_refresh("customer", now, STATUS_TTL)
            .await
            .unwrap()
    );
    w.faults.clear();
    for _ in 0..50 {
        let r = w.sandboxes[1].handle(&get("/status.json", false)).await;
        assert_eq!(r.body, first.body, "the last page, not a build of its own");
    }
    assert_eq!(w.builds(), 1);
    let (reads, writes) = counted(&w.faults);
    assert_eq!(reads, ["store.status_snapshot"], "one look for 50 requests");
    assert_eq!(writes, ["store.claim_status_refresh"]);
    // It looks again after STATUS_RECHECK; the refresher died, but the page is under 60 s old:
    // still served, no build.
    w.later(STATUS_RECHECK);
    let again = w.sandboxes[1].handle(&get("/status.json", false)).await;
    assert_eq!(again.body, first.body);
    assert_eq!(w.builds(), 1);
    // At 61 s (the first claim 30 s old) yet another refresher claims and dies. At 65 s the page
    // is over twice the interval old and the refresh is claimed: the sandbox builds a page for
    // itself (and shares nothing: it holds no claim) rather than serve an older one.
    let built = first_built(&w).await;
    w.pipeline.clock.set(built + Duration::seconds(61));
    assert!(
        w.pipeline
            .store
            .claim_status_refresh("customer", built + Duration::seconds(61), STATUS_TTL)
            .await
            .unwrap()
    );
    w.pipeline.clock.set(built + Duration::seconds(65));
    w.faults.clear();
    w.sandboxes[1].handle(&get("/status.json", false)).await;
    assert_eq!(w.builds(), 2, "its own build");
    let (_, writes) = counted(&w.faults);
    assert_eq!(writes, ["store.claim_status_refresh"], "nothing stored");
    assert_eq!(first_built(&w).await, built);
}

/// When the shared page was built.
async fn first_built(w: &World) -> DateTime<Utc> {
    w.pipeline
        .store
        .status_snapshot("customer")
        .await
        .unwrap()
        .unwrap()
        .built_at
}

#[tokio::test]
async fn tocsin_serve_asks_for_no_cache_and_shares_nothing() {
    let w = world().await;
    let r = &w.sandboxes[0].router;
    let mut api = Api::new(
        Router {
            config: r.config.clone(),
            store: r.store.clone(),
            bus: r.bus.clone(),
            scheduler: r.scheduler.clone(),
            clock: r.clock.clone(),
            settings: RouterSettings::default(),
        },
        w.sandboxes[0].settings.clone(),
    );
    api.status_cache = tocsin_api::StatusCache::with_ttl(Duration::zero());
    for _ in 0..3 {
        assert_eq!(api.handle(&get("/status.json", false)).await.status, 200);
    }
    assert_eq!(api.status_cache.builds(), 3);
    let (_, writes) = counted(&w.faults);
    assert_eq!(writes, Vec::<&str>::new());
}
