//! What the chaos run (`make chaos`) found in the router, as small reproductions on the embedded
//! default, kept as regression tests once fixed.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tocsin_core::ports::AlertStore;
use tocsin_core::record::{ClaimStatus, DedupRecord};
use tocsin_core::router::RouterError;
use tocsin_local::Embedded;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Finding R1: a router invocation killed after its dedup claim (SIGKILL, a Lambda timeout) left the
/// claim in progress for `in_progress_timeout` (300 s), while Lambda retries the event about 60 s and
/// 180 s later and then dead-letters it. The router function now claims until its own deadline (the
/// function's 30 s timeout) plus `CLAIM_MARGIN_SECONDS`, so Lambda's first retry takes the event over.
#[tokio::test]
async fn lambdas_retries_of_a_killed_router_invocation_take_the_event_over() {
    let text = std::fs::read_to_string(root().join("infra/tocsin.yaml")).unwrap();
    let config = Arc::new(tocsin_core::config::load(&text).unwrap());
    let bytes =
        std::fs::read(root().join("events/scenario/incident/01-checkout-5xx-alarm.sns.json"))
            .unwrap();
    let alert = tocsin_core::source::parse(&bytes).unwrap().remove(0);
    let start: DateTime<Utc> = alert.state_changed_at;
    let p = Embedded::new(config, start);
    // What the killed invocation left: its claim, in progress until its deadline (30 s) and margin,
    // as `handle_until` writes it.
    let window = std::time::Duration::from_secs(
        30 + tocsin_core::router::CLAIM_MARGIN_SECONDS.unsigned_abs(),
    );
    p.store
        .claim_event(&DedupRecord {
            event_id: alert.event_id.clone(),
            status: ClaimStatus::InProgress,
            expires_at: start + Duration::days(7),
            in_progress_until: start + Duration::from_std(window).unwrap(),
            transport: "sns".into(),
            claimed_at: start,
            alert_id: None,
            outcome: None,
        })
        .await
        .unwrap();
    // Lambda's first retry, about a minute after the first attempt.
    p.clock.set(start + Duration::seconds(60));
    let first_retry = p
        .router
        .handle_until(alert, Some(start + Duration::seconds(90)))
        .await;
    assert!(
        !matches!(first_retry, Err(RouterError::InProgress(_))),
        "the retry is refused as in progress, so the event would be dead-lettered: {first_retry:?}"
    );
}
