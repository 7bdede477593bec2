//! The `AlertStore` contract and the dedup race, against DynamoDB at `AWS_ENDPOINT_URL` (moto, under
//! `scripts/with-moto.sh`). Without an endpoint the tests say they were skipped, unless
//! `TOCSIN_REQUIRE_AWS=1` (as `make test` and the moto script set), where skipping would hide a
//! broken harness, so they fail.

// Test code: a failed step is a panic that names it.
#![allow(clippy::unwrap_used)]

mod support;

use chrono::{DateTime, Utc};
use support::{Options, moto_table};
use tocsin_core::Severity;
use tocsin_core::contract;
use tocsin_core::pages::PageStore;
use tocsin_core::ports::{AlertStore, Claim};
use tocsin_core::record::{Action, AuditEntry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_store_keeps_the_alert_store_contract() {
    let Some(moto) = moto_table("contract", Options::DIRECT).await else {
        return;
    };
    contract::alert_store(&moto.store, "dyn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_store_keeps_the_status_snapshots_contract() {
    let Some(moto) = moto_table("status", Options::DIRECT).await else {
        return;
    };
    contract::status_snapshots(&moto.store, "dyn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_hold_keeps_the_hold_store_contract_in_the_stores_table() {
    let Some(moto) = moto_table("hold", Options::DIRECT).await else {
        return;
    };
    let hold = tocsin_aws::DynamoHold::new(moto.client.clone(), moto.store.table());
    tocsin_core::throttle::contract::run(&hold, "dyn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_pages_keep_the_page_store_contract_in_the_stores_table() {
    let Some(moto) = moto_table("pages", Options::DIRECT).await else {
        return;
    };
    let pages = tocsin_aws::DynamoPages::new(moto.client.clone(), moto.store.table());
    tocsin_core::pages::contract::run(&pages, "dyn").await;
}

/// Through the one-at-a-time proxy, as the claim race below: moto applies an `UpdateItem` as read,
/// change, write without a lock, so two concurrent set additions can lose one; DynamoDB applies
/// updates of one item one after the other. The tasks still interleave their requests freely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_pages_of_one_event_complete_it_once() {
    let Some(moto) = moto_table("pages-race", Options::PROXIED).await else {
        return;
    };
    let pages = tocsin_aws::DynamoPages::new(moto.client.clone(), moto.store.table());
    let mut tasks = tokio::task::JoinSet::new();
    for page in tocsin_core::pages::contract::race_pages("dyn", 64) {
        let pages = pages.clone();
        tasks.spawn(async move { pages.add_page(&page).await.unwrap() });
    }
    let outcomes = tasks.join_all().await;
    tocsin_core::pages::contract::check_race(&pages, "dyn", 64, &outcomes).await;
}

/// Through the proxy, one request at a time: moto does not apply a conditional PutItem atomically
/// (two concurrent claims of one key can both succeed, about once in 30 runs; see
/// `support/fault_proxy.rs`), where DynamoDB does. The 64 tasks still race, their claims interleaving
/// freely; only moto's own lack of atomicity is excluded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_claims_of_one_event_have_one_winner() {
    let Some(moto) = moto_table("race", Options::PROXIED).await else {
        return;
    };
    let store = &moto.store;
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
            (racer, Ok(Claim::TookOver(old))) => {
                panic!("{racer}: took over a claim made moments ago: {old:?}")
            }
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
    let Some(moto) = moto_table("audit", Options::DIRECT).await else {
        return;
    };
    let store = &moto.store;
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
            attempt: None,
            told_under: None,
        })
        .collect();
    store.append_audit(&entries[..40]).await.unwrap();
    store.append_audit(&entries[40..]).await.unwrap();
    assert_eq!(store.audit("long-trail").await.unwrap(), entries);
}

/// The status index holds keys only, so a list reads the alerts it names with `BatchGetItem`, 100
/// keys a request: a list longer than one request comes back whole, in the index's order (most
/// severe first), and a limit inside the second request cuts it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_longer_than_one_batch_read_comes_back_whole_in_the_indexs_order() {
    use tocsin_core::record::{AlertRecord, Status};
    let Some(moto) = moto_table("list", Options::DIRECT).await else {
        return;
    };
    let store = &moto.store;
    let severities = [
        Severity::Low,
        Severity::Critical,
        Severity::Medium,
        Severity::High,
    ];
    let mut made: Vec<AlertRecord> = Vec::new();
    for i in 0..230 {
        let mut r = contract::record(&format!("many-{i:03}"), &format!("fp-many-{i:03}"), None);
        r.severity = severities[i % severities.len()];
        store.create_alert(&r).await.unwrap();
        made.push(r);
    }
    made.sort_by_key(|r| r.status_sort_key());
    let want: Vec<String> = made.iter().map(|r| r.id.clone()).collect();
    let ids = |v: Vec<AlertRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_alerts(Status::Open, 1000).await.unwrap()),
        want
    );
    assert_eq!(
        ids(store.list_alerts(Status::Open, 150).await.unwrap()),
        want[..150].to_vec()
    );
    assert!(
        store
            .list_alerts(Status::Resolved, 1000)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A body worth packing (an alert, an audit append) is written deflated as a binary attribute and
/// reads back equal; a claim stays text; and an alert the previous release wrote as text reads as
/// it did (docs/storage.md, "Packed bodies").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_body_is_written_packed_and_one_written_as_text_before_reads_the_same() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use tocsin_core::packed;
    use tocsin_core::record::AlertRecord;
    let Some(moto) = moto_table("packed", Options::DIRECT).await else {
        return;
    };
    let (store, client, table) = (&moto.store, &moto.client, moto.store.table().to_string());
    let raw = |pk: String, sk: &'static str| {
        let table = table.clone();
        async move {
            let out = client
                .get_item()
                .table_name(&table)
                .key("pk", AttributeValue::S(pk))
                .key("sk", AttributeValue::S(sk.into()))
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            out.item.unwrap()
        }
    };
    let mut rec = contract::record("packed-1", "fp-packed-1", None);
    rec.alert.description = "5XX responses from the checkout ALB ".repeat(20);
    store.create_alert(&rec).await.unwrap();
    let item = raw("ALERT#packed-1".into(), "ALERT").await;
    let json = serde_json::to_string(&rec).unwrap();
    match &item["body"] {
        AttributeValue::B(b) => {
            assert_eq!(b.as_ref()[0], packed::DEFLATE);
            assert!(
                b.as_ref().len() * 2 < json.len(),
                "{} of {}",
                b.as_ref().len(),
                json.len()
            );
        }
        other => panic!("an alert's body is packed: {other:?}"),
    }
    assert_eq!(
        store.get_alert("packed-1").await.unwrap(),
        Some(rec.clone())
    );
    assert_eq!(tocsin_aws::dynamo::body_json(&item).unwrap(), json);

    // The previous release's item: the same alert, its body as text.
    let mut old = item.clone();
    let mut before: AlertRecord = rec.clone();
    before.alert.description = "written before bodies were packed".into();
    old.insert(
        "body".into(),
        AttributeValue::S(serde_json::to_string(&before).unwrap()),
    );
    client
        .put_item()
        .table_name(moto.store.table())
        .set_item(Some(old))
        .send()
        .await
        .unwrap();
    assert_eq!(store.get_alert("packed-1").await.unwrap(), Some(before));

    // A claim is short: it stays text.
    let claim = contract::claim("packed-event", Utc::now());
    store.claim_event(&claim).await.unwrap();
    let item = raw("EVENT#packed-event".into(), "EVENT").await;
    assert!(matches!(item["body"], AttributeValue::S(_)), "{item:?}");
}
