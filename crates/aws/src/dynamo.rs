//! The DynamoDB adapter of the [`AlertStore`] port. One table holds the dedup records, the alerts, one
//! pointer per fingerprint to its latest alert, and the audit trail (layout and reasons in
//! `docs/storage.md`). Every decision the memory store takes under its lock is taken here by one
//! conditional write, one transaction (a silence and its twin), or, to open an occurrence, two
//! conditional puts in an order no crash between them can harm (the alert, unlisted, then its
//! fingerprint's pointer: `create_alert`), so that concurrent Lambda invocations get the same answers
//! the memory store gives one thread.
//!
//! The dedup claim is one conditional `PutItem`, in the manner of Powertools' idempotency layer; the
//! loser learns who won from the failed write itself (`ReturnValuesOnConditionCheckFailure = ALL_OLD`):
//!
//! ```text
//!  invocation A                         item EVENT#<event_id>                invocation B (same event)
//!  PutItem(IN_PROGRESS, until=T+5m) ---> absent: written, A wins
//!                                                                       <--- PutItem(IN_PROGRESS, ...)
//!                                       present, IN_PROGRESS, T+5m not
//!                                       reached: ConditionalCheckFailed
//!                                       carrying A's item ----------------> Claim::Duplicate(in progress):
//!  process: open alert, publish jobs                                          B's function looks again
//!  PutItem(COMPLETED, outcome) -------> COMPLETED until expires_at             every 5 s while it has time,
//!                                                                            else the platform retries B
//!                                                                       <--- PutItem(...) (the retry)
//!                                       present, COMPLETED, not expired:
//!                                       ConditionalCheckFailed with A's
//!                                       item -----------------------------> Claim::Duplicate(A's outcome),
//!                                                                            no second read
//!  A crashes before completing: past T+5m the condition's second branch lets the next claim take over.
//!  A fails cleanly: DeleteItem (only while IN_PROGRESS) frees the id at once.
//!  Past expires_at the item is dead even before TTL deletes it (TTL runs up to days late), hence the
//!  expiry test in the condition rather than trusting TTL.
//! ```
//!
//! A claim that takes over a lapsed or expired one gets the record it replaced from the same put
//! (`ReturnValues = ALL_OLD`, no extra capacity: `Claim::TookOver`), which is how a delivery finds
//! where its send may be on record. Every record's `body` is its JSON, packed (deflated, in a binary
//! attribute) from 512 bytes, since DynamoDB bills a write by the KB (`tocsin_core::packed`;
//! `body_json` reads either kind).

use crate::sdk_error::{bounded, describe};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
    IndexStatus, KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put,
    PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, WriteRequest,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tocsin_core::noise::{GroupMember, NoiseState, Silence};
use tocsin_core::ports::{
    AUDIT_APPEND_SPAN, AlertStore, Claim, STATUS_SNAPSHOT_MAX_BYTES, SnapshotPut, StatusSnapshot,
    StatusSnapshots, StoreError,
};
use tocsin_core::record::{AlertRecord, AuditEntry, ClaimStatus, DedupRecord, Status};
use tracing::{debug, info};

/// The TTL attribute (epoch seconds) on dedup records, closed alerts, audit entries and silences.
pub const TTL_ATTRIBUTE: &str = "expires_at_epoch";
/// The index of alerts by status, most severe first, then by service and opening time. It projects
/// the keys only: a write that leaves an alert's status as it was costs nothing in the index (one
/// that projected every attribute billed each write of a listed alert twice), and a list reads the
/// alerts it names with `BatchGetItem`.
pub const STATUS_INDEX: &str = "by-status-keys";
/// How long closed alerts and audit entries are kept unless [`DynamoStore::with_retention`] says
/// otherwise: a little over a year, so that a yearly review still finds last year's incidents.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);

pub(crate) const BODY: &str = "body";
const DEDUP_SK: &str = "EVENT";
const ALERT_SK: &str = "ALERT";
const POINTER_SK: &str = "LATEST";
const AUDIT_PREFIX: &str = "AUDIT#";
/// BatchWriteItem's limit.
const BATCH: usize = 25;
/// Keys per `BatchGetItem` (its limit).
const BATCH_GET: usize = 100;
/// Rounds of re-sending the items BatchWriteItem left unprocessed (throttling) before giving up.
const BATCH_ROUNDS: u32 = 8;
/// On real AWS a new table with its GSI is usually ACTIVE within a minute.
const TABLE_WAIT: Duration = Duration::from_secs(300);

/// Why [`DynamoStore::create_table_if_missing`] failed.
#[derive(Debug, Error)]
pub enum TableError {
    /// A DynamoDB call failed.
    #[error("dynamodb table {table}: {detail}")]
    Backend {
        /// The table.
        table: String,
        /// One line: the operation and the service's error code and message.
        detail: String,
    },
    /// The table (or one of its indexes) did not become ACTIVE in time.
    #[error("dynamodb table {table} is not ACTIVE after {waited_s} s")]
    NotActive {
        /// The table.
        table: String,
        /// How long we waited.
        waited_s: u64,
    },
    /// The table exists but is not laid out the way this adapter needs.
    #[error("dynamodb table {table} does not have tocsin's layout: {detail}")]
    Layout {
        /// The table.
        table: String,
        /// What is missing or different.
        detail: String,
    },
}

/// The `AlertStore` on one DynamoDB table. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention: Duration,
    audit_seq: Arc<AuditSeq>,
    /// Whether this process has indexed the silences an earlier release stored without their
    /// by-end twin (once per process, on the first read of the silences not ended).
    silences_indexed: Arc<std::sync::atomic::AtomicBool>,
}

impl DynamoStore {
    /// A store on `table`, through `client` (built once per process, in `main.rs`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            retention: DEFAULT_RETENTION,
            audit_seq: Arc::new(AuditSeq::new()),
            silences_indexed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Keeps closed alerts for `retention` after they close, and audit entries for `retention` after
    /// they were written; DynamoDB's TTL deletes them afterwards.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Gives a silence an earlier release stored (no TTL, no by-end twin) both: its item again with
    /// the TTL, conditioned on the body read (an expiry meanwhile wins; the next read indexes it),
    /// and its twin.
    async fn index_legacy_silence(
        &self,
        silence: &Silence,
        body: AttributeValue,
    ) -> Result<(), StoreError> {
        let items = vec![
            TransactWriteItem::builder()
                .put(self.silence_over(silence, body)?)
                .build(),
            TransactWriteItem::builder()
                .put(self.twin_put(silence)?)
                .build(),
        ];
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if failed_conditions(&err).is_some() => Ok(()),
            Err(err) => Err(backend("TransactWriteItems", &err)),
        }
    }

    /// Creates the table (on-demand, keys, both indexes) unless it exists, waits until it and its
    /// indexes are ACTIVE, and enables TTL on [`TTL_ATTRIBUTE`]. Safe to run concurrently and again.
    pub async fn create_table_if_missing(&self) -> Result<(), TableError> {
        let described = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        match described {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.create_table().await?;
            }
            Err(err) => return Err(self.table_error("DescribeTable", err)),
        }
        self.wait_until_active().await?;
        self.enable_ttl().await
    }

    async fn create_table(&self) -> Result<(), TableError> {
        let string_attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let index = |name: &str, pk: &str, sk: &str| -> Result<GlobalSecondaryIndex, BuildError> {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(pk, KeyType::Hash)?)
                .key_schema(key(sk, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
        };
        let build = |e: BuildError| self.layout_error(format!("building CreateTable: {e}"));
        let mut request = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash).map_err(build)?)
            .key_schema(key("sk", KeyType::Range).map_err(build)?)
            .global_secondary_indexes(
                index(STATUS_INDEX, "status_pk", "status_sk").map_err(build)?,
            );
        for name in ["pk", "sk", "status_pk", "status_sk"] {
            request = request.attribute_definitions(string_attr(name).map_err(build)?);
        }
        match request.send().await {
            Ok(_) => {
                info!(table = %self.table, "created dynamodb table");
                Ok(())
            }
            // Someone else is creating it right now: fine, we wait for ACTIVE like they do.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(self.table_error("CreateTable", err)),
        }
    }

    async fn wait_until_active(&self) -> Result<(), TableError> {
        let started = Instant::now();
        loop {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.table_error("DescribeTable", e))?;
            let Some(desc) = out.table() else {
                return Err(self.layout_error("DescribeTable returned no description".into()));
            };
            let indexes = desc.global_secondary_indexes();
            if !indexes.iter().any(|i| i.index_name() == Some(STATUS_INDEX)) {
                return Err(self.layout_error(format!("index {STATUS_INDEX} is missing")));
            }
            let table_active = desc.table_status() == Some(&TableStatus::Active);
            let indexes_active = indexes
                .iter()
                .all(|i| i.index_status().is_none_or(|s| *s == IndexStatus::Active));
            if table_active && indexes_active {
                return Ok(());
            }
            if started.elapsed() >= TABLE_WAIT {
                return Err(TableError::NotActive {
                    table: self.table.clone(),
                    waited_s: TABLE_WAIT.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn enable_ttl(&self) -> Result<(), TableError> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.table_error("DescribeTimeToLive", e))?;
        let desc = out.time_to_live_description();
        let status = desc.and_then(|d| d.time_to_live_status());
        let attribute = desc.and_then(|d| d.attribute_name());
        match status {
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                if attribute == Some(TTL_ATTRIBUTE) =>
            {
                Ok(())
            }
            None | Some(TimeToLiveStatus::Disabled) => {
                let spec = TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(|e| self.layout_error(format!("building UpdateTimeToLive: {e}")))?;
                self.client
                    .update_time_to_live()
                    .table_name(&self.table)
                    .time_to_live_specification(spec)
                    .send()
                    .await
                    .map_err(|e| self.table_error("UpdateTimeToLive", e))?;
                Ok(())
            }
            Some(other) => Err(self.layout_error(format!(
                "time to live is {} on {:?}, tocsin needs it enabled on {TTL_ATTRIBUTE}",
                other.as_str(),
                attribute.unwrap_or("no attribute"),
            ))),
        }
    }

    fn table_error<E, R>(&self, op: &str, err: SdkError<E, R>) -> TableError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        TableError::Backend {
            table: self.table.clone(),
            detail: bounded(&format!("{op}: {}", describe(&err))),
        }
    }

    fn layout_error(&self, detail: String) -> TableError {
        TableError::Layout {
            table: self.table.clone(),
            detail,
        }
    }

    async fn get_item(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            // The router reads, decides, then writes conditionally: a stale read only costs a
            // conflict and a retry, but strong reads make that rare.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", &e))?;
        Ok(out.item)
    }

    fn put(
        &self,
        item: HashMap<String, AttributeValue>,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<Put, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        if condition.contains("#status") {
            put = put.expression_attribute_names("#status", "status");
        }
        if condition.contains("#body") {
            put = put.expression_attribute_names("#body", BODY);
        }
        for (name, value) in values {
            put = put.expression_attribute_values(*name, value.clone());
        }
        put.build().map_err(built)
    }

    /// The audit items of `alert_id` (those whose first entry is at or after `from`, if given),
    /// flattened and in time order.
    async fn audit_from(
        &self,
        alert_id: &str,
        from: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut entries = Vec::new();
        let mut start = None;
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(alert_pk(alert_id)));
            let query = match from {
                None => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :audit)")
                    .expression_attribute_values(":audit", s(AUDIT_PREFIX)),
                // `~` sorts after every character of an audit key's time.
                Some(from) => query
                    .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :end")
                    .expression_attribute_values(":from", s(audit_sk(from, "")))
                    .expression_attribute_values(":end", s(format!("{AUDIT_PREFIX}~"))),
            };
            let page = query
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Query", &e))?;
            for item in page.items() {
                match from_body::<AuditItem>(item)? {
                    AuditItem::One(e) => entries.push(*e),
                    AuditItem::Many(many) => entries.extend(many),
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => {
                    // Items sort by their first entry's time: a later append's entries may be
                    // older than the last of an earlier one's. A stable sort keeps append order
                    // among entries of the same time.
                    entries.sort_by_key(|e| e.at);
                    return Ok(entries);
                }
            }
        }
    }

    /// `silence` written over its item as read (`old`, the body): a change meanwhile fails it. (The
    /// transaction items are built where the transaction is sent: tests/stack.rs reads the IAM
    /// actions a transaction needs from the item kinds beside it.)
    fn silence_over(&self, silence: &Silence, old: AttributeValue) -> Result<Put, StoreError> {
        self.put(silence_item(silence)?, "#body = :old", &[(":old", old)])
    }

    /// The by-end twin of `silence` (keyed by its end and id), put as it is.
    fn twin_put(&self, silence: &Silence) -> Result<Put, StoreError> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(live_silence_item(silence)?))
            .build()
            .map_err(built)
    }
}

impl AlertStore for DynamoStore {
    async fn claim_event(&self, record: &DedupRecord) -> Result<Claim, StoreError> {
        // This put's own mark, to know it again if its answer is lost and the SDK sends it again.
        let mut item = dedup_item(record)?;
        let token = mark_write(&mut item);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at_ms <= :now \
                 OR (#status = :in_progress AND in_progress_until_ms <= :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(record.claimed_at.timestamp_millis()))
            .expression_attribute_values(":in_progress", s(claim_status(ClaimStatus::InProgress)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            // A takeover gets the record it replaced (no extra capacity).
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(out) => {
                return Ok(match out.attributes() {
                    Some(old) if !old.is_empty() => Claim::TookOver(from_body(old)?),
                    _ => Claim::Claimed,
                });
            }
            Err(err) => err,
        };
        if let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        {
            // A condition can only fail on an existing item, and DynamoDB returns it (ALL_OLD).
            let Some(item) = failed.item() else {
                return Err(StoreError::Backend(format!(
                    "dynamodb PutItem: claim of {} failed its condition but returned no item",
                    record.event_id
                )));
            };
            // Our own claim: the put was applied, its answer lost, and the SDK sent it again. The
            // item it finds carries this put's token, so the claim is ours; otherwise this
            // invocation would wait out its own claim as another's. (Had the lost put taken over
            // a lapsed claim, the record it replaced is gone with the answer: deliver looks for the
            // send in the job's alert's trail before sending, whatever its claim said.)
            if written_by(item, &token) {
                debug!(event_id = %record.event_id, "dedup: our own claim, its answer lost");
                return Ok(Claim::Claimed);
            }
            let existing: DedupRecord = from_body(item)?;
            debug!(event_id = %record.event_id, status = ?existing.status, "dedup: duplicate");
            return Ok(Claim::Duplicate(existing));
        }
        Err(backend("PutItem", &err))
    }

    async fn complete_event(&self, record: &DedupRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(dedup_item(record)?))
            .send()
            .await
            .map_err(|e| backend("PutItem", &e))?;
        Ok(())
    }

    async fn release_event(&self, event_id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(dedup_pk(event_id)))
            .key("sk", s(DEDUP_SK))
            // A completed record must survive a late release; a missing one is already released.
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(claim_status(ClaimStatus::InProgress)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(backend("DeleteItem", &err)),
        }
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<DedupRecord>, StoreError> {
        match self.get_item(dedup_pk(event_id), DEDUP_SK).await? {
            Some(item) => Ok(Some(from_body(&item)?)),
            None => Ok(None),
        }
    }

    async fn latest_alert(&self, fingerprint: &str) -> Result<Option<AlertRecord>, StoreError> {
        // Twice at most: a pointer that moves on while we drop it as dangling points at a new alert.
        for _ in 0..2 {
            let Some(pointer) = self.get_item(pointer_pk(fingerprint), POINTER_SK).await? else {
                return Ok(None);
            };
            let id = string_attr(&pointer, "latest")?;
            if let Some(alert) = self.get_alert(&id).await? {
                return Ok(Some(alert));
            }
            // The pointer outlived its alert (TTL deleted the closed alert). Drop it, conditionally
            // so as not to drop a pointer that moved on meanwhile, so that the next create
            // (previous: None) succeeds the way it does on a fingerprint never seen.
            let dropped = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(pointer_pk(fingerprint)))
                .key("sk", s(POINTER_SK))
                .condition_expression("latest = :id")
                .expression_attribute_values(":id", s(id.as_str()))
                .send()
                .await;
            match dropped {
                Ok(_) => {
                    debug!(fingerprint, alert = %id, "dropped the pointer to an expired alert");
                    return Ok(None);
                }
                Err(err)
                    if matches!(
                        err.as_service_error(),
                        Some(DeleteItemError::ConditionalCheckFailedException(_))
                    ) => {}
                Err(err) => return Err(backend("DeleteItem", &err)),
            }
        }
        Err(StoreError::Backend(format!(
            "fingerprint {fingerprint}: its latest alert keeps changing while being read"
        )))
    }

    async fn get_alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        match self.get_item(alert_pk(id), ALERT_SK).await? {
            Some(item) => Ok(Some(from_body(&item)?)),
            None => Ok(None),
        }
    }

    async fn get_alerts(&self, ids: &[String]) -> Result<Vec<AlertRecord>, StoreError> {
        // BatchGetItem refuses a request that names a key twice.
        let mut pks: Vec<String> = ids.iter().map(|id| alert_pk(id)).collect();
        pks.sort();
        pks.dedup();
        self.get_alert_items(&pks, true)
            .await?
            .values()
            .map(from_body)
            .collect()
    }

    async fn create_alert(&self, record: &AlertRecord) -> Result<(), StoreError> {
        // No transaction (it bills every item in it twice): the checks are reads, then the alert is
        // put if new, then the fingerprint's pointer moves to it if it still names what the caller
        // read. A crash between the two puts leaves an alert nobody points at and nobody lists (not
        // indexed while its opening is owed; a TTL takes it away): the retry of the same event
        // decides the same id and takes it over, anyone else finds the pointer where it was.
        // docs/storage.md, "Opening an occurrence".
        let fp = &record.fingerprint;
        let changed = || {
            StoreError::Conflict(format!(
                "fingerprint {fp}: latest alert changed since it was read"
            ))
        };
        if record.previous.as_deref() == Some(record.id.as_str()) {
            return Err(StoreError::Conflict(format!(
                "alert {} cannot follow itself",
                record.id
            )));
        }
        let latest = match self.get_item(pointer_pk(fp), POINTER_SK).await? {
            Some(pointer) => Some(string_attr(&pointer, "latest")?),
            None => None,
        };
        if latest.as_deref() == Some(record.id.as_str()) {
            return Err(StoreError::Conflict(format!("alert {} exists", record.id)));
        }
        if latest != record.previous {
            return Err(changed());
        }
        // Liveness never comes back once gone (resolved and closed are final), so a previous
        // occurrence read as over here stays over; an absent one is closed and deleted by TTL.
        if let Some(previous) = &record.previous {
            if self
                .get_alert(previous)
                .await?
                .is_some_and(|p| p.status.is_live())
            {
                return Err(StoreError::Conflict(format!(
                    "fingerprint {fp} already has live alert {previous}"
                )));
            }
        }
        let mut item = self.alert_item(record)?;
        let token = mark_write(&mut item);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        if let Err(err) = put {
            let Some(PutItemError::ConditionalCheckFailedException(failed)) =
                err.as_service_error()
            else {
                return Err(backend("PutItem", &err));
            };
            // Left by an attempt at this very opening that died before moving the pointer (the id
            // comes from the fingerprint and the opening event, and the event's claim kept every
            // other attempt out while it lived): nobody points at it, nobody carried out what it
            // owes, so it is taken over as it stands. Anything else is a conflict.
            // Or written by this very put, its answer lost and the SDK sending it again.
            let abandoned = failed.item().is_some_and(|old| {
                written_by(old, &token)
                    || from_body::<AlertRecord>(old).is_ok_and(|old| old.opening_owed())
            });
            if !abandoned {
                return Err(StoreError::Conflict(format!("alert {} exists", record.id)));
            }
            debug!(alert = %record.id, "taking over an opening whose creator died before its pointer");
        }
        let mut pointer = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pointer_pk(fp)))
            .item("sk", s(POINTER_SK))
            .item("latest", s(record.id.as_str()))
            .item(WRITE_TOKEN, s(&token))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        pointer = match &record.previous {
            None => pointer.condition_expression("attribute_not_exists(pk)"),
            Some(previous) => pointer
                .condition_expression("latest = :previous")
                .expression_attribute_values(":previous", s(previous.as_str())),
        };
        let moved = pointer.send().await;
        let Err(err) = moved else {
            return Ok(());
        };
        let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        else {
            // The alert stays as written, unlisted and unpointed at: the retry takes it over.
            return Err(backend("PutItem", &err));
        };
        if failed.item().is_some_and(|old| written_by(old, &token)) {
            // The pointer this put moved, its answer lost and the SDK sending it again.
            debug!(alert = %record.id, "create_alert: our own pointer, its answer lost");
            return Ok(());
        }
        // Another occurrence got in first: ours goes (and if this delete fails, TTL takes it).
        let removed = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(alert_pk(&record.id)))
            .key("sk", s(ALERT_SK))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(record.version.to_string()))
            .send()
            .await;
        if let Err(e) = removed {
            debug!(alert = %record.id, error = %backend("DeleteItem", &e), "left an unpointed alert to its TTL");
        }
        debug!(alert = %record.id, "create_alert conflict: the pointer moved");
        Err(changed())
    }

    async fn update_alert(&self, record: &AlertRecord) -> Result<(), StoreError> {
        // i128: version 0 expects a stored version of -1, which never matches, as in the memory store.
        let expected = i128::from(record.version) - 1;
        let mut item = self.alert_item(record)?;
        let token = mark_write(&mut item);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        if let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        {
            // ALL_OLD tells "changed since read" from "never existed" without a second read, and
            // from "written by this very put, its answer lost and the SDK sending it again".
            return match failed.item() {
                Some(old) if written_by(old, &token) => {
                    debug!(alert = %record.id, "update_alert: our own write, its answer lost");
                    Ok(())
                }
                None => Err(StoreError::NotFound(format!("alert {}", record.id))),
                Some(old) => Err(StoreError::Conflict(format!(
                    "alert {} is at version {}, not {expected}",
                    record.id,
                    old.get("version")
                        .and_then(|v| v.as_n().ok())
                        .map_or("?", |v| v.as_str()),
                ))),
            };
        }
        Err(backend("PutItem", &err))
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let expires = ttl_epoch(Utc::now(), self.retention);
        let mut pending = Vec::new();
        for (alert, bodies) in audit_items(entries)? {
            let first_at = bodies.first_at;
            let item = HashMap::from([
                ("pk".to_string(), s(alert_pk(alert))),
                (
                    "sk".to_string(),
                    s(audit_sk(first_at, &self.audit_seq.next())),
                ),
                (BODY.to_string(), packed(bodies.body())),
                (TTL_ATTRIBUTE.to_string(), n(expires)),
            ]);
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(built)?;
            pending.push(WriteRequest::builder().put_request(put).build());
        }
        for chunk in pending.chunks(BATCH) {
            self.batch_write(chunk.to_vec()).await?;
        }
        Ok(())
    }

    async fn audit(&self, alert_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_from(alert_id, None).await
    }

    async fn audit_since(
        &self,
        alert_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut entries = self
            .audit_from(alert_id, Some(since - AUDIT_APPEND_SPAN))
            .await?;
        entries.retain(|e| e.at >= since);
        Ok(entries)
    }

    // --- Queries of the api function (issue 6). ---

    async fn list_alerts(
        &self,
        status: Status,
        limit: usize,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let mut alerts = Vec::new();
        let mut start = None;
        while alerts.len() < limit {
            let want = i32::try_from(limit - alerts.len()).unwrap_or(i32::MAX);
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(STATUS_INDEX)
                .key_condition_expression("status_pk = :status")
                .expression_attribute_values(":status", s(status.as_str()))
                .limit(want)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Query", &e))?;
            // The index holds keys only: read the alerts it names, in its order. One that changed
            // status since the index was written (it follows the table a moment late), or is gone,
            // is left out, as a query of an index that carried the items would have shown it.
            let keys: Vec<String> = page
                .items()
                .iter()
                .filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()).cloned())
                .collect();
            let mut found = self.get_alert_items(&keys, false).await?;
            for pk in &keys {
                let Some(item) = found.remove(pk) else {
                    continue;
                };
                let record: AlertRecord = from_body(&item)?;
                if record.status == status && !record.opening_owed() {
                    alerts.push(record);
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        alerts.truncate(limit);
        Ok(alerts)
    }

    // ---- Noise control (issue 7): silences and noise-control state. Keep this block last.

    async fn create_silence(&self, silence: &Silence) -> Result<(), StoreError> {
        // The silence and its by-end twin, together or not at all.
        let items = vec![
            TransactWriteItem::builder()
                .put(self.put(silence_item(silence)?, "attribute_not_exists(pk)", &[])?)
                .build(),
            TransactWriteItem::builder()
                .put(self.twin_put(silence)?)
                .build(),
        ];
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if failed_conditions(&err).is_some() => Err(StoreError::Conflict(format!(
                "silence {} exists",
                silence.id
            ))),
            Err(err) => Err(backend("TransactWriteItems", &err)),
        }
    }

    async fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        let mut all: Vec<Silence> = Vec::new();
        let mut legacy = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(SILENCES_PK))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Query", &e))?;
            for item in page.items() {
                let silence: Silence = from_body(item)?;
                if !item.contains_key(TTL_ATTRIBUTE) {
                    legacy.push((silence.clone(), stored_body(item)?));
                }
                all.push(silence);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        // Stored by a release that kept neither a TTL nor the by-end twin: given both now, so that
        // the router's bounded read sees them and TTL removes them once ended.
        for (silence, body) in legacy {
            self.index_legacy_silence(&silence, body).await?;
        }
        all.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then(a.id.cmp(&b.id)));
        Ok(all)
    }

    async fn active_silences(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Silence>, StoreError> {
        if !self.silences_indexed.swap(true, Ordering::SeqCst) {
            if let Err(e) = self.silences().await {
                self.silences_indexed.store(false, Ordering::SeqCst);
                return Err(e);
            }
        }
        // The twins sort by end: a key range starts at the silences not ended, so those that ended
        // are never read (TTL removes them later), whatever their number.
        let mut live: Vec<Silence> = Vec::new();
        let mut start = None;
        while live.len() < limit {
            let want = i32::try_from(limit - live.len()).unwrap_or(i32::MAX);
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk >= :from")
                .expression_attribute_values(":pk", s(LIVE_SILENCES_PK))
                .expression_attribute_values(":from", s(end_key(now)))
                .consistent_read(true)
                .limit(want)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Query", &e))?;
            for item in page.items() {
                let silence: Silence = from_body(item)?;
                // The key has millisecond precision; the silence's own end decides.
                if silence.end() > now {
                    live.push(silence);
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        live.truncate(limit);
        live.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then(a.id.cmp(&b.id)));
        Ok(live)
    }

    async fn expire_silence(
        &self,
        id: &str,
        at: DateTime<Utc>,
        actor: &str,
    ) -> Result<Silence, StoreError> {
        // Read, decide, write conditioned on the body read: a concurrent expiry makes us read again.
        // The by-end twin moves to the new end in the same transaction.
        for _ in 0..3 {
            let Some(item) = self
                .get_item(SILENCES_PK.to_string(), &silence_sk(id))
                .await?
            else {
                return Err(StoreError::NotFound(format!("silence {id}")));
            };
            let mut silence: Silence = from_body(&item)?;
            if silence.end() <= at {
                return Ok(silence);
            }
            let old_body = stored_body(&item)?;
            let old_live = live_silence_sk(&silence);
            silence.expired_at = Some(at);
            silence.expired_by = Some(actor.to_string());
            let items = vec![
                TransactWriteItem::builder()
                    .put(self.silence_over(&silence, old_body)?)
                    .build(),
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .key("pk", s(LIVE_SILENCES_PK))
                            .key("sk", s(old_live))
                            .build()
                            .map_err(built)?,
                    )
                    .build(),
                TransactWriteItem::builder()
                    .put(self.twin_put(&silence)?)
                    .build(),
            ];
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(silence),
                Err(err) if failed_conditions(&err).is_some() => {}
                Err(err) => return Err(backend("TransactWriteItems", &err)),
            }
        }
        Err(StoreError::Conflict(format!(
            "silence {id} keeps changing while being expired"
        )))
    }

    async fn noise_state(&self, key: &str) -> Result<Option<NoiseState>, StoreError> {
        match self.get_item(noise_pk(key), NOISE_SK).await? {
            Some(item) => Ok(Some(from_body(&item)?)),
            None => Ok(None),
        }
    }

    async fn put_noise_state(&self, state: &NoiseState) -> Result<(), StoreError> {
        let mut item = HashMap::from([
            ("pk".to_string(), s(noise_pk(&state.key))),
            ("sk".to_string(), s(NOISE_SK)),
            ("version".to_string(), n(state.version as i64)),
            (BODY.to_string(), body_attr(state)?),
        ]);
        let token = mark_write(&mut item);
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        put = if state.version <= 1 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(state.version as i64 - 1))
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                // Written by this very put, its answer lost and the SDK sending it again.
                Some(PutItemError::ConditionalCheckFailedException(failed))
                    if failed.item().is_some_and(|old| written_by(old, &token)) =>
                {
                    Ok(())
                }
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    Err(StoreError::Conflict(format!(
                        "noise state {} is not at version {}",
                        state.key,
                        state.version.saturating_sub(1)
                    )))
                }
                _ => Err(backend("PutItem", &err)),
            },
        }
    }

    async fn group_member(
        &self,
        group: &str,
        alert_id: &str,
    ) -> Result<Option<GroupMember>, StoreError> {
        match self
            .get_item(member_pk(group), &member_sk(alert_id))
            .await?
        {
            Some(item) => Ok(Some(from_body(&item)?)),
            None => Ok(None),
        }
    }

    async fn put_group_member(&self, group: &str, member: &GroupMember) -> Result<(), StoreError> {
        let item = HashMap::from([
            ("pk".to_string(), s(member_pk(group))),
            ("sk".to_string(), s(member_sk(&member.alert_id))),
            (BODY.to_string(), body_attr(member)?),
            (
                TTL_ATTRIBUTE.to_string(),
                n(ttl_epoch(Utc::now(), self.retention)),
            ),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend("PutItem", &e))?;
        Ok(())
    }

    async fn group_members(
        &self,
        group: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GroupMember>, StoreError> {
        let mut members = Vec::new();
        let mut start = after.map(|a| {
            HashMap::from([
                ("pk".to_string(), s(member_pk(group))),
                ("sk".to_string(), s(member_sk(a))),
            ])
        });
        while members.len() < limit {
            let want = i32::try_from(limit - members.len()).unwrap_or(i32::MAX);
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(member_pk(group)))
                .consistent_read(true)
                .limit(want)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Query", &e))?;
            for item in page.items() {
                members.push(from_body(item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        members.truncate(limit);
        Ok(members)
    }

    async fn remove_group_member(&self, group: &str, alert_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(member_pk(group)))
            .key("sk", s(member_sk(alert_id)))
            .send()
            .await
            .map_err(|e| backend("DeleteItem", &e))?;
        Ok(())
    }
}

impl DynamoStore {
    /// The alert's item: the record as JSON plus the attributes that conditions and indexes read.
    fn alert_item(
        &self,
        record: &AlertRecord,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let mut item = HashMap::from([
            ("pk".to_string(), s(alert_pk(&record.id))),
            ("sk".to_string(), s(ALERT_SK)),
            (BODY.to_string(), body_attr(record)?),
            ("status".to_string(), s(record.status.as_str())),
            (
                "version".to_string(),
                AttributeValue::N(record.version.to_string()),
            ),
            ("status_pk".to_string(), s(record.status.as_str())),
            (
                "status_sk".to_string(),
                // The rank first so that a query reads the most severe first.
                s(record.status_sort_key()),
            ),
        ]);
        if record.opening_owed() {
            // Out of the status index until its opening is carried out (and its TTL dropped by
            // that write, which writes the whole item): see `create_alert`.
            item.remove("status_pk");
            item.remove("status_sk");
        }
        if record.status == Status::Closed || record.opening_owed() {
            item.insert(
                TTL_ATTRIBUTE.to_string(),
                n(ttl_epoch(Utc::now(), self.retention)),
            );
        }
        Ok(item)
    }

    /// BatchWriteItem on the store's table (see [`batch_write`]).
    async fn batch_write(&self, pending: Vec<WriteRequest>) -> Result<(), StoreError> {
        batch_write(&self.client, &self.table, pending).await
    }

    /// The alert items of `pks` (`ALERT#<id>`) that exist, by `pk`, read in chunks of 100
    /// (`BatchGetItem`'s limit). `consistent`: strongly consistent reads (as `get_alert`), or
    /// eventually (a list, as the index that named the alerts is).
    async fn get_alert_items(
        &self,
        pks: &[String],
        consistent: bool,
    ) -> Result<HashMap<String, HashMap<String, AttributeValue>>, StoreError> {
        let mut found = HashMap::new();
        for chunk in pks.chunks(BATCH_GET) {
            let keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|pk| HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(ALERT_SK))]))
                .collect();
            let ask = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(consistent)
                .build()
                .map_err(built)?;
            for item in batch_get(&self.client, &self.table, ask).await? {
                if let Some(pk) = item.get("pk").and_then(|v| v.as_s().ok()).cloned() {
                    found.insert(pk, item);
                }
            }
        }
        Ok(found)
    }
}

/// BatchGetItem, asking again for what it leaves unprocessed (it does under throttling) with
/// backoff, as [`batch_write`] does for writes.
async fn batch_get(
    client: &Client,
    table: &str,
    mut ask: KeysAndAttributes,
) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
    let mut items = Vec::new();
    let mut backoff = Duration::from_millis(50);
    for _ in 0..BATCH_ROUNDS {
        let out = client
            .batch_get_item()
            .request_items(table, ask)
            .send()
            .await
            .map_err(|e| backend("BatchGetItem", &e))?;
        items.extend(
            out.responses
                .and_then(|mut r| r.remove(table))
                .unwrap_or_default(),
        );
        match out
            .unprocessed_keys
            .and_then(|mut left| left.remove(table))
            .filter(|k| !k.keys().is_empty())
        {
            None => return Ok(items),
            Some(left) => ask = left,
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    Err(StoreError::Backend(format!(
        "dynamodb BatchGetItem: {} keys still unprocessed after {BATCH_ROUNDS} rounds",
        ask.keys().len()
    )))
}

/// BatchWriteItem, re-sending what it leaves unprocessed (it does under throttling) with backoff.
pub(crate) async fn batch_write(
    client: &Client,
    table: &str,
    mut pending: Vec<WriteRequest>,
) -> Result<(), StoreError> {
    let mut backoff = Duration::from_millis(50);
    for _ in 0..BATCH_ROUNDS {
        let out = client
            .batch_write_item()
            .request_items(table, pending)
            .send()
            .await
            .map_err(|e| backend("BatchWriteItem", &e))?;
        pending = out
            .unprocessed_items
            .and_then(|mut left| left.remove(table))
            .unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    Err(StoreError::Backend(format!(
        "dynamodb BatchWriteItem: {} items still unprocessed after {BATCH_ROUNDS} rounds",
        pending.len()
    )))
}

/// A per-process audit sequence: strictly increasing, starting from the wall clock in microseconds
/// so that appends from processes running one after the other also sort in append order, and tagged
/// with a random writer id so that two processes appending at the same microsecond never write the
/// same key (BatchWriteItem cannot be conditional, a collision would overwrite).
#[derive(Debug)]
struct AuditSeq {
    last: AtomicU64,
    writer: u64,
}

impl AuditSeq {
    fn new() -> Self {
        AuditSeq {
            last: AtomicU64::new(0),
            writer: RandomState::new().hash_one(std::process::id()),
        }
    }

    fn next(&self) -> String {
        let now = u64::try_from(Utc::now().timestamp_micros()).unwrap_or_default();
        let prev = self
            .last
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or_else(|last| last);
        format!("{:020}#{:016x}", now.max(prev + 1), self.writer)
    }
}

/// The shared status page of an audience: its refresh claim and its snapshot, two items of one
/// partition (the claim is written on its own, so a claim never rewrites the page).
fn status_pk(audience: &str) -> String {
    format!("STATUS#{audience}")
}
const STATUS_CLAIM_SK: &str = "CLAIM";
const STATUS_PAGE_SK: &str = "PAGE";

/// The status page shared by the api sandboxes (`docs/storage.md`, "The status page"): GetItem to
/// read, a conditional PutItem to claim a refresh, and a transaction that stores the page only while
/// its claim is the latest.
impl StatusSnapshots for DynamoStore {
    async fn status_snapshot(&self, audience: &str) -> Result<Option<StatusSnapshot>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(status_pk(audience)))
            .key("sk", s(STATUS_PAGE_SK))
            // A page a moment stale is as good, at half the read.
            .consistent_read(false)
            .send()
            .await
            .map_err(|e| backend("GetItem", &e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let built_at = string_attr(&item, "built_at")?;
        let built_at = DateTime::parse_from_rfc3339(&built_at)
            .map_err(|e| StoreError::Backend(format!("status page built_at {built_at:?}: {e}")))?
            .with_timezone(&Utc);
        Ok(Some(StatusSnapshot {
            built_at,
            json: string_attr(&item, "json")?,
            html: string_attr(&item, "html")?,
        }))
    }

    async fn claim_status_refresh(
        &self,
        audience: &str,
        at: DateTime<Utc>,
        every: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let claim = HashMap::from([
            ("pk".to_string(), s(status_pk(audience))),
            ("sk".to_string(), s(STATUS_CLAIM_SK)),
            ("claimed_at_ms".to_string(), n(at.timestamp_millis())),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(claim))
            .condition_expression("attribute_not_exists(pk) OR claimed_at_ms <= :stale")
            .expression_attribute_values(
                ":stale",
                n(at.timestamp_millis() - every.num_milliseconds()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(backend("PutItem", &e)),
            },
        }
    }

    async fn put_status_snapshot(
        &self,
        audience: &str,
        snapshot: &StatusSnapshot,
    ) -> Result<SnapshotPut, StoreError> {
        if snapshot.size() > STATUS_SNAPSHOT_MAX_BYTES {
            return Ok(SnapshotPut::TooLarge);
        }
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(status_pk(audience)))
            .key("sk", s(STATUS_CLAIM_SK))
            .condition_expression("claimed_at_ms = :mine")
            .expression_attribute_values(":mine", n(snapshot.built_at.timestamp_millis()))
            .build()
            .map_err(built)?;
        let page = Put::builder()
            .table_name(&self.table)
            .set_item(Some(HashMap::from([
                ("pk".to_string(), s(status_pk(audience))),
                ("sk".to_string(), s(STATUS_PAGE_SK)),
                (
                    "built_at".to_string(),
                    s(snapshot
                        .built_at
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                ),
                ("json".to_string(), s(snapshot.json.clone())),
                ("html".to_string(), s(snapshot.html.clone())),
            ])))
            .build()
            .map_err(built)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .transact_items(TransactWriteItem::builder().put(page).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(SnapshotPut::Stored),
            Err(err) if failed_conditions(&err).is_some() => Ok(SnapshotPut::Superseded),
            Err(err) => Err(backend("TransactWriteItems", &err)),
        }
    }
}

/// The partition of every silence kept, by id: listed together, read by id to expire one.
const SILENCES_PK: &str = "SILENCES";
/// The partition of the silences' by-end twins (`<end in ms, 20 digits>#<id>`): the router reads the
/// key range of those not yet ended.
const LIVE_SILENCES_PK: &str = "SILENCES#BY-END";
/// How long an ended silence is kept for the record before TTL removes it (its audit trail, under
/// `silence-<id>`, stays for the store's retention).
pub const ENDED_SILENCE_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);
const NOISE_SK: &str = "NOISE";

fn silence_sk(id: &str) -> String {
    format!("SILENCE#{id}")
}

/// The by-end key of a time: milliseconds since the epoch, fixed width, so string order is time
/// order (a time before 1970 reads as 0).
fn end_key(t: DateTime<Utc>) -> String {
    format!("{:020}", t.timestamp_millis().max(0))
}

fn live_silence_sk(silence: &Silence) -> String {
    format!("{}#{}", end_key(silence.end()), silence.id)
}

/// When TTL removes a silence's items: [`ENDED_SILENCE_KEPT`] after it ends, counted from the wall
/// clock at the earliest (TTL deletes by the wall clock; a replay's silences may end in the past).
fn silence_ttl(silence: &Silence) -> i64 {
    ttl_epoch(silence.end().max(Utc::now()), ENDED_SILENCE_KEPT)
}

/// The by-end twin: the silence's body again, under a key that sorts by its end.
fn live_silence_item(silence: &Silence) -> Result<HashMap<String, AttributeValue>, StoreError> {
    Ok(HashMap::from([
        ("pk".to_string(), s(LIVE_SILENCES_PK)),
        ("sk".to_string(), s(live_silence_sk(silence))),
        (BODY.to_string(), body_attr(silence)?),
        (TTL_ATTRIBUTE.to_string(), n(silence_ttl(silence))),
    ]))
}

/// A group's members share one partition, apart from the group's own item, so that a flush reads
/// them in pages and no item grows with the group.
fn member_pk(group: &str) -> String {
    format!("MEMBERS#{group}")
}

fn member_sk(alert_id: &str) -> String {
    format!("MEMBER#{alert_id}")
}

fn noise_pk(key: &str) -> String {
    format!("NOISE#{key}")
}

fn silence_item(silence: &Silence) -> Result<HashMap<String, AttributeValue>, StoreError> {
    Ok(HashMap::from([
        ("pk".to_string(), s(SILENCES_PK)),
        ("sk".to_string(), s(silence_sk(&silence.id))),
        (BODY.to_string(), body_attr(silence)?),
        (TTL_ATTRIBUTE.to_string(), n(silence_ttl(silence))),
    ]))
}

/// The attribute a conditional put (a claim, an alert, a pointer, a noise state) marks its item with
/// ([`write_token`]): if the put's answer is lost and the SDK sends it again, the condition fails on
/// the item the put itself wrote, and the token DynamoDB returns with it (`ALL_OLD`) says so.
const WRITE_TOKEN: &str = "write_token";

/// A token no other put makes: the process's random hash keys (std seeds them per process from the
/// OS), a counter, and the time.
fn write_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:016x}{nanos:x}", h.finish())
}

/// Marks `item` with a new [`write_token`] and returns the token, for [`written_by`].
fn mark_write(item: &mut HashMap<String, AttributeValue>) -> String {
    let token = write_token();
    item.insert(WRITE_TOKEN.to_string(), s(&token));
    token
}

/// Whether `item` (returned by a failed condition) is the one the put that carries `token` wrote.
fn written_by(item: &HashMap<String, AttributeValue>, token: &str) -> bool {
    item.get(WRITE_TOKEN)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        == Some(token)
}

fn dedup_pk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

fn alert_pk(id: &str) -> String {
    format!("ALERT#{id}")
}

fn pointer_pk(fingerprint: &str) -> String {
    format!("FP#{fingerprint}")
}

/// Time first (nanoseconds, fixed width, so the string order is the time order), then the append
/// sequence for entries with the same time.
fn audit_sk(at: DateTime<Utc>, seq: &str) -> String {
    format!(
        "{AUDIT_PREFIX}{}#{seq}",
        at.format("%Y-%m-%dT%H:%M:%S%.9fZ")
    )
}

fn claim_status(status: ClaimStatus) -> &'static str {
    match status {
        ClaimStatus::InProgress => "in_progress",
        ClaimStatus::Completed => "completed",
    }
}

/// The dedup item. The condition compares milliseconds (the records' own precision), so it decides
/// exactly as the memory store; the TTL attribute is in seconds because that is what TTL reads.
fn dedup_item(record: &DedupRecord) -> Result<HashMap<String, AttributeValue>, StoreError> {
    Ok(HashMap::from([
        ("pk".to_string(), s(dedup_pk(&record.event_id))),
        ("sk".to_string(), s(DEDUP_SK)),
        (BODY.to_string(), body_attr(record)?),
        ("status".to_string(), s(claim_status(record.status))),
        (
            "expires_at_ms".to_string(),
            n(record.expires_at.timestamp_millis()),
        ),
        (
            "in_progress_until_ms".to_string(),
            n(record.in_progress_until.timestamp_millis()),
        ),
        (TTL_ATTRIBUTE.to_string(), n(record.expires_at.timestamp())),
    ]))
}

/// Writes `item` unless an item with its key exists (`attribute_not_exists(pk)`); whether it was
/// written. A failed condition is an answer, not an error: the caller decides whether an existing
/// item is a conflict or an idempotent repeat.
pub(crate) async fn put_new(
    client: &Client,
    table: &str,
    item: HashMap<String, AttributeValue>,
) -> Result<bool, StoreError> {
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) => match e.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
            _ => Err(backend("PutItem", &e)),
        },
    }
}

/// Retention is real time, not the record's (possibly virtual) time: TTL deletes by the wall clock.
pub(crate) fn ttl_epoch(now: DateTime<Utc>, retention: Duration) -> i64 {
    now.timestamp()
        .saturating_add(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn string_attr(item: &HashMap<String, AttributeValue>, name: &str) -> Result<String, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| {
            StoreError::Backend(format!("dynamodb item has no string attribute {name:?}"))
        })
}

pub(crate) fn to_body<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot serialize record: {e}")))
}

/// The `body` attribute of `value`: its JSON, packed when that is shorter (`tocsin_core::packed`).
pub(crate) fn body_attr<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    Ok(packed(to_body(value)?))
}

/// `json` as the `body` attribute: binary when packed, a string otherwise.
pub(crate) fn packed(json: String) -> AttributeValue {
    match tocsin_core::packed::pack(&json) {
        Some(bytes) => AttributeValue::B(Blob::new(bytes)),
        None => AttributeValue::S(json),
    }
}

/// The `body` attribute as stored (a silence's expiry is conditioned on it being unchanged).
fn stored_body(item: &HashMap<String, AttributeValue>) -> Result<AttributeValue, StoreError> {
    item.get(BODY)
        .cloned()
        .ok_or_else(|| StoreError::Backend(format!("dynamodb item has no attribute {BODY:?}")))
}

/// The JSON of an item's `body`, packed or not: what the tests and tools that read the table raw
/// read.
pub fn body_json(item: &HashMap<String, AttributeValue>) -> Result<String, StoreError> {
    match item.get(BODY) {
        Some(AttributeValue::S(json)) => Ok(json.clone()),
        Some(AttributeValue::B(bytes)) => {
            tocsin_core::packed::unpack(bytes.as_ref()).map_err(|why| {
                StoreError::Backend(format!(
                    "dynamodb item {} has an unreadable body: {why}",
                    pk_of(item)
                ))
            })
        }
        _ => Err(StoreError::Backend(format!(
            "dynamodb item {} has no body",
            pk_of(item)
        ))),
    }
}

fn pk_of(item: &HashMap<String, AttributeValue>) -> &str {
    item.get("pk")
        .and_then(|v| v.as_s().ok())
        .map_or("?", String::as_str)
}

/// The most JSON an audit item holds (DynamoDB's limit is 400 KB); the entries of one append for one
/// alert go in as few items as fit.
const AUDIT_ITEM_BYTES: usize = 32 * 1024;

/// An audit item's body: one entry (as every item written before appends were grouped, and an append
/// of one entry still), or several, in order.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum AuditItem {
    Many(Vec<AuditEntry>),
    One(Box<AuditEntry>),
}

/// The JSON bodies of one audit item.
struct AuditBodies {
    first_at: DateTime<Utc>,
    bodies: Vec<String>,
    bytes: usize,
}

impl AuditBodies {
    fn body(&self) -> String {
        match self.bodies.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(",")),
        }
    }
}

/// The items one append writes: per alert (in the order alerts first appear), its entries in order,
/// cut where an item would pass [`AUDIT_ITEM_BYTES`]. One write unit per KB instead of one write per
/// entry: an alert opening writes its four or five lines as one item.
fn audit_items(entries: &[AuditEntry]) -> Result<Vec<(&str, AuditBodies)>, StoreError> {
    let mut items: Vec<(&str, AuditBodies)> = Vec::new();
    for e in entries {
        let body = to_body(e)?;
        let open = items
            .iter()
            .rposition(|(alert, _)| *alert == e.alert)
            .filter(|&i| items[i].1.bytes + body.len() < AUDIT_ITEM_BYTES);
        match open {
            Some(i) => {
                let item = &mut items[i].1;
                item.bytes += body.len() + 1;
                item.bodies.push(body);
            }
            None => items.push((
                &e.alert,
                AuditBodies {
                    first_at: e.at,
                    bytes: body.len() + 2,
                    bodies: vec![body],
                },
            )),
        }
    }
    Ok(items)
}

pub(crate) fn from_body<T: DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
) -> Result<T, StoreError> {
    let body = body_json(item)?;
    serde_json::from_str(&body).map_err(|e| {
        StoreError::Backend(format!(
            "dynamodb item {} has an unreadable body: {e}",
            pk_of(item)
        ))
    })
}

pub(crate) fn built(e: BuildError) -> StoreError {
    StoreError::Backend(format!("dynamodb request: {e}"))
}

/// For a cancelled transaction, which of its items failed their condition (in request order). None
/// for any other error: throttling, a conflicting concurrent transaction (`TransactionConflict`),
/// validation, the network. Those are backend errors the platform retries.
fn failed_conditions<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<bool>> {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    else {
        return None;
    };
    let reasons = cancelled.cancellation_reasons();
    let failed: Vec<bool> = reasons
        .iter()
        .map(|r| r.code() == Some("ConditionalCheckFailed"))
        .collect();
    // Only a cancellation caused by conditions alone is a conflict; a mix with throttling or a
    // concurrent transaction is worth a retry.
    let only_conditions = reasons.iter().all(|r| {
        matches!(
            r.code(),
            None | Some("None") | Some("ConditionalCheckFailed")
        )
    });
    (failed.iter().any(|f| *f) && only_conditions).then_some(failed)
}

pub(crate) fn backend<E, R>(op: &str, err: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Backend(format!(
        "dynamodb {}",
        bounded(&format!("{op}: {}", describe(err)))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_keys_sort_by_time_then_append_order() {
        let seq = AuditSeq::new();
        let t = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc));
        let (Ok(early), Ok(late)) = (
            t("2026-11-20T02:10:00Z"),
            t("2026-11-20T02:10:00.000000001Z"),
        ) else {
            panic!("test timestamps parse");
        };
        let late_first = audit_sk(late, &seq.next());
        let early_a = audit_sk(early, &seq.next());
        let early_b = audit_sk(early, &seq.next());
        let mut keys = vec![late_first.clone(), early_b.clone(), early_a.clone()];
        keys.sort();
        assert_eq!(keys, vec![early_a, early_b, late_first]);
    }

    #[test]
    fn backend_errors_are_one_line_and_bounded() {
        let long = format!("{}\n{}", "x".repeat(400), "y");
        let err: SdkError<PutItemError, ()> = SdkError::construction_failure(long);
        let StoreError::Backend(line) = backend("PutItem", &err) else {
            panic!("a construction failure is a backend error");
        };
        assert!(!line.contains('\n'));
        assert!(line.chars().count() <= 320, "{line}");
        assert!(line.starts_with("dynamodb PutItem: "));
    }
}
