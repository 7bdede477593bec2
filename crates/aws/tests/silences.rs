//! Silences on DynamoDB beyond the shared contract: what only the table shows. Each silence item
//! carries the TTL attribute, so an ended silence leaves the table; its by-end twin moves when it is
//! expired early; and a silence stored by the release before the twins existed is found by the
//! router's bounded read all the same. Against moto (`scripts/with-moto.sh`).

// Test code: a failed step is a panic that names it.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, DurationRound, Utc};
use support::{Options, moto_table};
use tocsin_aws::DynamoStore;
use tocsin_aws::dynamo::{ENDED_SILENCE_KEPT, TTL_ATTRIBUTE};
use tocsin_core::noise::Silence;
use tocsin_core::ports::AlertStore;

fn silence(id: &str, hours: i64) -> Silence {
    // Whole seconds: the TTL is in epoch seconds.
    let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    Silence {
        id: id.into(),
        matchers: vec!["service = search".into()],
        created_by: "alice".into(),
        comment: "reindex".into(),
        created_at: now,
        starts_at: now,
        ends_at: now + Duration::hours(hours),
        expired_at: None,
        expired_by: None,
    }
}

async fn partition(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item[name].as_n().unwrap().parse().unwrap()
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item[name].as_s().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_leaves_the_table_by_ttl_thirty_days_after_it_ends() {
    let Some(moto) = moto_table("silence-ttl", Options::DIRECT).await else {
        return;
    };
    let table = moto.store.table().to_string();
    let s = silence("ttl-1", 2);
    moto.store.create_silence(&s).await.unwrap();
    let kept = i64::try_from(ENDED_SILENCE_KEPT.as_secs()).unwrap();
    let ttl_at_end = s.ends_at.timestamp() + kept;

    let by_id = partition(&moto.client, &table, "SILENCES").await;
    assert_eq!(by_id.len(), 1);
    assert_eq!(number(&by_id[0], TTL_ATTRIBUTE), ttl_at_end);
    let twins = partition(&moto.client, &table, "SILENCES#BY-END").await;
    assert_eq!(twins.len(), 1);
    assert_eq!(
        string(&twins[0], "sk"),
        format!("{:020}#ttl-1", s.ends_at.timestamp_millis())
    );
    assert_eq!(number(&twins[0], TTL_ATTRIBUTE), ttl_at_end);

    // Expired early: both items end sooner, and the twin's key moves to the new end.
    let at = s.starts_at + Duration::minutes(30);
    moto.store.expire_silence("ttl-1", at, "bob").await.unwrap();
    let by_id = partition(&moto.client, &table, "SILENCES").await;
    let twins = partition(&moto.client, &table, "SILENCES#BY-END").await;
    assert_eq!(twins.len(), 1, "the twin at the old end is gone");
    assert_eq!(
        string(&twins[0], "sk"),
        format!("{:020}#ttl-1", at.timestamp_millis())
    );
    // The wall clock has passed `at` by now or soon: TTL counts from the later of the two.
    let ttl = number(&by_id[0], TTL_ATTRIBUTE);
    assert!(
        ttl >= at.timestamp() + kept && ttl < ttl_at_end,
        "ttl {ttl} between {} and {ttl_at_end}",
        at.timestamp() + kept
    );
    assert_eq!(number(&twins[0], TTL_ATTRIBUTE), ttl);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_stored_by_the_previous_release_is_read_by_the_bounded_read() {
    let Some(moto) = moto_table("silence-legacy", Options::DIRECT).await else {
        return;
    };
    let table = moto.store.table().to_string();
    let old = silence("legacy-1", 3);
    // The previous release's item: no TTL, no twin.
    moto.client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("SILENCES".into()))
        .item("sk", AttributeValue::S("SILENCE#legacy-1".into()))
        .item(
            "body",
            AttributeValue::S(serde_json::to_string(&old).unwrap()),
        )
        .send()
        .await
        .unwrap();
    // A new process (a cold start after the upgrade).
    let store = DynamoStore::new(moto.client.clone(), table.clone());
    let live = store.active_silences(Utc::now(), 10).await.unwrap();
    assert_eq!(live, vec![old.clone()]);
    let by_id = partition(&moto.client, &table, "SILENCES").await;
    assert_eq!(
        number(&by_id[0], TTL_ATTRIBUTE),
        old.ends_at.timestamp() + i64::try_from(ENDED_SILENCE_KEPT.as_secs()).unwrap(),
        "indexed: it leaves by TTL too"
    );
    assert_eq!(
        partition(&moto.client, &table, "SILENCES#BY-END")
            .await
            .len(),
        1
    );
    // It expires like any other.
    store
        .expire_silence("legacy-1", Utc::now(), "bob")
        .await
        .unwrap();
    assert_eq!(store.active_silences(Utc::now(), 10).await.unwrap(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_that_ended_cost_the_routers_read_nothing() {
    let Some(moto) = moto_table("silence-bounded", Options::DIRECT).await else {
        return;
    };
    // 60 silences that ended an hour ago (made in the past, as a replay would) and one active.
    let now = Utc::now();
    for i in 0..60 {
        let mut s = silence(&format!("old-{i:02}"), 1);
        s.starts_at = now - Duration::hours(3);
        s.ends_at = now - Duration::hours(1);
        moto.store.create_silence(&s).await.unwrap();
    }
    let active = silence("now-1", 1);
    moto.store.create_silence(&active).await.unwrap();
    // The key range starts at the silences not ended: a page of one item answers, which a limit of 1
    // and no further page shows (a filtered scan of the partition would need 61 items read).
    let out = moto
        .client
        .query()
        .table_name(moto.store.table())
        .key_condition_expression("pk = :pk AND sk >= :from")
        .expression_attribute_values(":pk", AttributeValue::S("SILENCES#BY-END".into()))
        .expression_attribute_values(
            ":from",
            AttributeValue::S(format!("{:020}", now.timestamp_millis())),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.count, 1);
    assert_eq!(out.scanned_count, 1);
    assert_eq!(
        moto.store.active_silences(now, 10).await.unwrap(),
        vec![active]
    );
    assert_eq!(moto.store.silences().await.unwrap().len(), 61);
}
