//! What the chaos run (`make chaos`) found in the router, as small reproductions on the embedded
//! default for the owner of Router v2. They fail today, so they are ignored; un-ignore each with its
//! fix. Run: `cargo test --workspace --test chaos_findings -- --ignored`.

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

/// A router invocation killed after its dedup claim (SIGKILL, a Lambda timeout, or a failed release)
/// leaves the claim in progress for `in_progress_timeout` (300 s). Lambda retries the event about 60 s
/// and 180 s later and then dead-letters it: both retries must be able to take the event over, or the
/// page is lost. Today both answer `InProgress`.
#[tokio::test]
#[ignore = "finding R1 of issue 17: fails until the in-progress window fits Lambda's retries"]
async fn lambdas_retries_of_a_killed_router_invocation_take_the_event_over() {
    let text = std::fs::read_to_string(root().join("infra/tocsin.yaml")).unwrap();
    let config = Arc::new(tocsin_core::config::load(&text).unwrap());
    let bytes =
        std::fs::read(root().join("events/scenario/incident/01-checkout-5xx-alarm.sns.json"))
            .unwrap();
    let alert = tocsin_core::source::parse(&bytes).unwrap().remove(0);
    let start: DateTime<Utc> = alert.state_changed_at;
    let p = Embedded::new(config, start);
    // What the killed invocation left: its claim, in progress, with the router's own window.
    let window = tocsin_core::router::RouterSettings::default().in_progress_timeout;
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
    // Lambda's second (last) retry, about three minutes after the first attempt.
    p.clock.set(start + Duration::seconds(185));
    let last_retry = p.router.handle(alert).await;
    assert!(
        !matches!(last_retry, Err(RouterError::InProgress(_))),
        "the last retry is refused as in progress, so the event is dead-lettered: {last_retry:?}"
    );
}
