//! The DynamoDB adapter of the [`PageStore`] (paged AWS Health events joined by the ingest function),
//! in the store's single table. One partition per event, `pk = HPAGES#<event key>`:
//!
//! - a page item per page, `sk = PAGE#<page, 4 digits>` (so a query reads them in page order), the
//!   [`HealthPage`] as JSON in `body`;
//! - the event's state item, `sk = STATE`: `got` (a number set: the page numbers held), `total`,
//!   `closed` (`joined` | `swept`, absent while open).
//!
//! Every item has the table's TTL attribute a day on, so an event never completed nor swept (its
//! schedule dead-lettered) goes away by itself.
//!
//! Adding a page is two writes: the page item, `PutItem` with `attribute_not_exists(pk)` (a page held
//! already keeps its first copy, and the failed condition is success), then one `UpdateItem` on the
//! state item, `ADD got :page` returning the item as it was (`ALL_OLD`). The set add is idempotent, so
//! a retry after a crash between the two writes counts the page then, and whether this write completed
//! the event is decided by the old set alone: DynamoDB applies updates of one item one at a time, so
//! exactly one update adds the last missing number (see `tocsin_core::pages`). Each page item is
//! written before its number is added, so the strongly consistent query of the completing invocation
//! sees every page its set names.
//!
//! The sweep is one conditional `UpdateItem`, `SET closed = swept` if the event is open (or swept
//! already: a retried sweep) and `size(got) < total`; a failed condition returns the item
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), which says why: joined, complete, or absent.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::Utc;
use tocsin_core::pages::{Added, PAGE_TTL, PageStore, SweepClaim};
use tocsin_core::ports::StoreError;
use tocsin_core::source::HealthPage;

use crate::dynamo::{BODY, TTL_ATTRIBUTE, backend, body_attr, from_body, n, put_new, s, ttl_epoch};

const STATE_SK: &str = "STATE";
const PAGE_PREFIX: &str = "PAGE#";
const JOINED: &str = "joined";
const SWEPT: &str = "swept";

/// Pages of paged Health events in the store's table.
#[derive(Clone, Debug)]
pub struct DynamoPages {
    client: Client,
    table: String,
}

/// The state item as an update or a failed condition returned it.
#[derive(Debug, Default)]
struct State {
    got: BTreeSet<u32>,
    total: Option<u32>,
    closed: Option<String>,
}

impl State {
    fn read(item: Option<&HashMap<String, AttributeValue>>) -> Result<Option<State>, StoreError> {
        let Some(item) = item.filter(|i| !i.is_empty()) else {
            return Ok(None);
        };
        let number = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| StoreError::Backend(format!("health page state: bad number {v:?}")))
        };
        let mut state = State::default();
        if let Some(AttributeValue::Ns(got)) = item.get("got") {
            for v in got {
                state.got.insert(number(v)?);
            }
        }
        if let Some(AttributeValue::N(t)) = item.get("total") {
            state.total = Some(number(t)?);
        }
        if let Some(AttributeValue::S(c)) = item.get("closed") {
            state.closed = Some(c.clone());
        }
        Ok(Some(state))
    }
}

impl DynamoPages {
    /// Pages in `table` (the store's table), through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoPages {
            client,
            table: table.into(),
        }
    }

    fn pk(key: &str) -> AttributeValue {
        s(format!("HPAGES#{key}"))
    }

    fn state_key(key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_string(), Self::pk(key)),
            ("sk".to_string(), s(STATE_SK)),
        ])
    }

    fn ttl() -> AttributeValue {
        n(ttl_epoch(Utc::now(), PAGE_TTL))
    }

    /// Writes the page item unless the page is held already.
    async fn put_page_item(&self, page: &HealthPage) -> Result<(), StoreError> {
        let item = HashMap::from([
            ("pk".to_string(), Self::pk(&page.key)),
            (
                "sk".to_string(),
                s(format!("{PAGE_PREFIX}{:04}", page.page)),
            ),
            (BODY.to_string(), body_attr(page)?),
            (TTL_ATTRIBUTE.to_string(), Self::ttl()),
        ]);
        // Held already (not written) is success: a redelivered page, or a retried invocation.
        put_new(&self.client, &self.table, item).await?;
        Ok(())
    }
}

impl PageStore for DynamoPages {
    async fn add_page(&self, page: &HealthPage) -> Result<Added, StoreError> {
        self.put_page_item(page).await?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::state_key(&page.key)))
            .update_expression(
                "ADD #got :page SET #total = if_not_exists(#total, :total), \
                 #ttl = if_not_exists(#ttl, :ttl)",
            )
            .expression_attribute_names("#got", "got")
            .expression_attribute_names("#total", "total")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":page", AttributeValue::Ns(vec![page.page.to_string()]))
            .expression_attribute_values(":total", n(i64::from(page.total)))
            .expression_attribute_values(":ttl", Self::ttl())
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| backend("UpdateItem", &e))?;
        let old = State::read(out.attributes.as_ref())?.unwrap_or_default();
        let total = old.total.unwrap_or(page.total);
        let before = old.got.len() as u32;
        let had_this = old.got.contains(&page.page);
        let received = before + u32::from(!had_this);
        Ok(match old.closed.as_deref() {
            Some(SWEPT) => Added::Swept,
            Some(_) => Added::Published,
            None if received >= total => Added::Complete {
                by_this_page: before < total,
            },
            None => Added::Waiting {
                received,
                total,
                first: before == 0 || (before == 1 && had_this),
            },
        })
    }

    async fn pages(&self, key: &str) -> Result<Vec<HealthPage>, StoreError> {
        let mut pages = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :page)")
                .expression_attribute_values(":pk", Self::pk(key))
                .expression_attribute_values(":page", s(PAGE_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Query", &e))?;
            for item in out.items() {
                pages.push(from_body(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(pages),
            }
        }
    }

    async fn mark_joined(&self, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::state_key(key)))
            .update_expression("SET #closed = :joined")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(#closed)")
            .expression_attribute_names("#closed", "closed")
            .expression_attribute_values(":joined", s(JOINED))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                // Marked already, swept (which stays), or gone: nothing to change.
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(backend("UpdateItem", &e)),
            },
        }
    }

    async fn sweep(&self, key: &str) -> Result<SweepClaim, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::state_key(key)))
            .update_expression("SET #closed = :swept")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#closed) OR #closed = :swept) \
                 AND size(#got) < #total",
            )
            .expression_attribute_names("#closed", "closed")
            .expression_attribute_names("#got", "got")
            .expression_attribute_names("#total", "total")
            .expression_attribute_values(":swept", s(SWEPT))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(SweepClaim::Publish),
            Err(e) => e,
        };
        let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = e.as_service_error()
        else {
            return Err(backend("UpdateItem", &e));
        };
        Ok(match State::read(failed.item.as_ref())? {
            None => SweepClaim::Unknown,
            Some(state) => match state.closed.as_deref() {
                Some(JOINED) => SweepClaim::Done,
                // Swept by an earlier run of this sweep (the set has completed since), or complete
                // and not yet published: publish what is held.
                _ => SweepClaim::Publish,
            },
        })
    }
}
