//! The `AlertStore` contract and the dedup race, against DynamoDB at `AWS_ENDPOINT_URL` (moto, under
//! `scripts/with-moto.sh`). Without an endpoint the tests say they were skipped, unless
//! `TOCSIN_REQUIRE_AWS=1` (as `make test` and the moto script set), where skipping would hide a
//! broken harness, so they fail.

// Test code: a failed step is a panic that names it.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use chrono::{DateTime, Utc};
use tocsin_aws::DynamoStore;
use tocsin_core::Severity;
use tocsin_core::contract;
use tocsin_core::ports::{AlertStore, Claim};
use tocsin_core::record::{Action, AuditEntry};

/// A store on a fresh, uniquely named table, or None (after saying so) when no endpoint is set.
async fn store(test: &str) -> Option<DynamoStore> {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        assert!(
            std::env::var("TOCSIN_REQUIRE_AWS").as_deref() != Ok("1"),
            "{test}: TOCSIN_REQUIRE_AWS=1 but AWS_ENDPOINT_URL is not set; \
             run it as `scripts/with-moto.sh cargo test -p tocsin-aws`"
        );
        // Straight to stderr: libtest captures `eprintln!` of passing tests, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "skipped {test}: AWS_ENDPOINT_URL is not set (run under scripts/with-moto.sh)"
        );
        return None;
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint);
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        loader = loader.credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "tocsin-tests",
        ));
    }
    let client = aws_sdk_dynamodb::Client::new(&loader.load().await);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let table = format!("tocsin-test-{test}-{}-{nanos}", std::process::id());
    let store = DynamoStore::new(client, table);
    store.create_table_if_missing().await.unwrap();
    // Running it again on the existing table is a no-op, as a second cold start would do.
    store.create_table_if_missing().await.unwrap();
    Some(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_store_keeps_the_alert_store_contract() {
    let Some(store) = store("contract").await else {
        return;
    };
    contract::alert_store(&store, "dyn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_claims_of_one_event_have_one_winner() {
    let Some(store) = store("race").await else {
        return;
    };
    let at: DateTime<Utc> = "2026-11-20T02:10:00Z".parse().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let store = store.clone();
        let mut record = contract::claim("race-ev", at);
        record.transport = format!("racer-{i}");
        tasks.spawn(async move { (record.transport.clone(), store.claim_event(&record).await) });
    }
    let mut winners = Vec::new();
    let mut duplicates = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            (racer, Ok(Claim::Claimed)) => winners.push(racer),
            (_, Ok(Claim::Duplicate(existing))) => duplicates.push(existing.transport),
            (racer, Err(e)) => panic!("{racer}: claim failed: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim wins: {winners:?}");
    assert_eq!(duplicates.len(), 63);
    assert!(
        duplicates.iter().all(|t| *t == winners[0]),
        "every loser sees the winner's record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_audit_trail_at_one_instant_reads_back_in_append_order() {
    let Some(store) = store("audit").await else {
        return;
    };
    let at: DateTime<Utc> = "2026-11-20T02:10:00Z".parse().unwrap();
    // More than one BatchWriteItem (25 items) per call, and more than one call.
    let entries: Vec<AuditEntry> = (0..60)
        .map(|i| AuditEntry {
            at,
            alert: "long-trail".into(),
            alarm_name: "contract-alarm".into(),
            action: Action::Notify,
            reason: format!("entry {i:02}"),
            event_id: None,
            channel: None,
            target: None,
            level: None,
            severity: Severity::High,
        })
        .collect();
    store.append_audit(&entries[..40]).await.unwrap();
    store.append_audit(&entries[40..]).await.unwrap();
    assert_eq!(store.audit("long-trail").await.unwrap(), entries);
}
