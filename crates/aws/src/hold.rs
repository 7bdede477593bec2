//! The DynamoDB adapter of the SMS throttle's [`HoldStore`], in the store's single table: one item a
//! held message, `pk = HOLD#<throttle key>`, `sk = <created_at>#<delivery id>` (so a query reads them
//! oldest first), the job as JSON in `body`, and the table's TTL attribute a day on, so a hold whose
//! flush never ran (its schedule dead-lettered) cannot grow for ever. Holding is a conditional put
//! (`attribute_not_exists(pk)`): a redelivered job is held once.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use chrono::Utc;
use tocsin_core::ports::StoreError;
use tocsin_core::record::DeliveryJob;
use tocsin_core::throttle::HoldStore;

use crate::dynamo::{
    BODY, TTL_ATTRIBUTE, backend, batch_write, body_attr, built, from_body, n, put_new, s,
    ttl_epoch,
};

/// How long a held message is kept if no flush takes it.
const HOLD_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// BatchWriteItem's limit.
const BATCH: usize = 25;

/// Held SMS messages in the store's table.
#[derive(Clone, Debug)]
pub struct DynamoHold {
    client: Client,
    table: String,
}

impl DynamoHold {
    /// Held messages in `table` (the store's table), through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoHold {
            client,
            table: table.into(),
        }
    }

    fn keys(key: &str, job: &DeliveryJob) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_string(), s(format!("HOLD#{key}"))),
            (
                "sk".to_string(),
                s(format!(
                    "{}#{}",
                    job.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                    job.delivery_id
                )),
            ),
        ])
    }
}

impl HoldStore for DynamoHold {
    async fn hold(&self, key: &str, job: &DeliveryJob) -> Result<(), StoreError> {
        let mut item = Self::keys(key, job);
        item.insert(BODY.to_string(), body_attr(job)?);
        item.insert(
            TTL_ATTRIBUTE.to_string(),
            n(ttl_epoch(Utc::now(), HOLD_TTL)),
        );
        // Held already (not written) is success: a redelivered job, or a retried invocation.
        put_new(&self.client, &self.table, item).await?;
        Ok(())
    }

    async fn held(&self, key: &str) -> Result<Vec<DeliveryJob>, StoreError> {
        let mut jobs = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("HOLD#{key}")))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Query", &e))?;
            for item in page.items() {
                jobs.push(from_body(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(jobs),
            }
        }
    }

    async fn release(&self, key: &str, jobs: &[DeliveryJob]) -> Result<(), StoreError> {
        for chunk in jobs.chunks(BATCH) {
            let mut pending = Vec::with_capacity(chunk.len());
            for job in chunk {
                let delete = DeleteRequest::builder()
                    .set_key(Some(Self::keys(key, job)))
                    .build()
                    .map_err(built)?;
                pending.push(WriteRequest::builder().delete_request(delete).build());
            }
            // Deleting what is gone is not an error.
            batch_write(&self.client, &self.table, pending).await?;
        }
        Ok(())
    }
}
