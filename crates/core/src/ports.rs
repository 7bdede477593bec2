//! The ports: the traits the domain needs from the outside world, each as narrow as the domain uses it.
//! Handlers are generic over them; `main.rs` of each function picks the AWS adapters, the CLI and the
//! tests pick the embedded ones (`tocsin-local`). One contract suite per port runs against every adapter.

use std::future::Future;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::model::Alert;
use crate::noise::{GroupMember, NoiseState, Silence};
use crate::record::{AlertRecord, AuditEntry, DedupRecord, DeliveryJob, Status, Timer};

/// Why a store call failed. A failed condition stays distinguishable from a broken backend: the first
/// is a decision the caller makes sense of, the second makes the function fail so the platform retries.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A conditional write lost: the item changed (or exists) since it was read.
    #[error("conditional write failed: {0}")]
    Conflict(String),
    /// The item does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The backend failed (throttling, 5xx, network); retryable by the platform.
    #[error("store backend error: {0}")]
    Backend(String),
}

/// The outcome of claiming an event id for processing (the dedup write).
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This invocation owns the event: process it, then complete or release the claim.
    Claimed,
    /// This invocation owns the event, taking it over from a claim that had lapsed (its invocation
    /// died, or left it in progress on purpose: a delivery the channel took is recorded by its
    /// attempts) or expired; the record it replaced. Process it as [`Claim::Claimed`], after
    /// looking at what that record says was done.
    TookOver(DedupRecord),
    /// Someone else claimed it first; the record they wrote, returned by the failed write itself.
    Duplicate(DedupRecord),
}

/// What [`AlertStore::latest_alert_lazy`] read of a fingerprint's most recent alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Latest {
    /// The whole record (or none): what a store that pays per read answers, so nothing is read twice.
    Whole(Option<Box<AlertRecord>>),
    /// Only what the router needs before it knows whether it needs the rest (a flapping alarm's
    /// changes never do); the caller reads the whole record with [`AlertStore::latest_alert`] when it
    /// does. Only for stores where a second read costs next to nothing (in process).
    Head(Option<AlertHead>),
}

/// The few fields of an alert record the router reads before it knows whether it needs the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertHead {
    /// The alert id.
    pub id: String,
    /// Its lifecycle status.
    pub status: Status,
    /// The event id of its latest transition.
    pub event_id: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl AlertHead {
    /// The head of a record.
    pub fn of(r: &AlertRecord) -> Self {
        AlertHead {
            id: r.id.clone(),
            status: r.status,
            event_id: r.alert.event_id.clone(),
            updated_at: r.updated_at,
        }
    }
}

/// Durable state: dedup records, alerts and their audit trail.
pub trait AlertStore: Send + Sync {
    /// Claims `record.event_id` with one conditional write that succeeds when no record exists, the
    /// existing one has expired, or it is an in-progress claim whose holder has given up
    /// (`in_progress_until` passed). On loss, returns the existing record.
    fn claim_event(
        &self,
        record: &DedupRecord,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Marks a claimed event completed with its outcome, kept until `record.expires_at`.
    fn complete_event(
        &self,
        record: &DedupRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes an in-progress claim after a failure, so the platform's retry can process the event.
    fn release_event(&self, event_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The claim record of `event_id` as it stands (lapsed or not: the caller reads its times), or
    /// `None`. A strongly consistent read: deliver polls it for a channel's send receipt.
    fn get_event(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<DedupRecord>, StoreError>> + Send;

    /// The most recent alert (occurrence) of a fingerprint, open or not.
    fn latest_alert(
        &self,
        fingerprint: &str,
    ) -> impl Future<Output = Result<Option<AlertRecord>, StoreError>> + Send;

    /// [`AlertStore::latest_alert`], or only its head where a second read is cheap (see [`Latest`]).
    /// By default the whole record, in one read.
    fn latest_alert_lazy(
        &self,
        fingerprint: &str,
    ) -> impl Future<Output = Result<Latest, StoreError>> + Send {
        async move {
            Ok(Latest::Whole(
                self.latest_alert(fingerprint).await?.map(Box::new),
            ))
        }
    }

    /// One alert by id.
    fn get_alert(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<AlertRecord>, StoreError>> + Send;

    /// The alerts of `ids` that exist, each once, in any order: for a read that needs many at once
    /// (a group's flush looking at whether its members are held), where one read each would take a
    /// round trip per member. By default one [`AlertStore::get_alert`] each; the DynamoDB store
    /// reads 100 a request (`BatchGetItem`, which refuses a key named twice), as strongly
    /// consistent as `get_alert`.
    fn get_alerts(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<AlertRecord>, StoreError>> + Send {
        async move {
            let mut found = Vec::with_capacity(ids.len());
            let mut seen = std::collections::BTreeSet::new();
            for id in ids.iter().filter(|id| seen.insert(id.as_str())) {
                if let Some(r) = self.get_alert(id).await? {
                    found.push(r);
                }
            }
            Ok(found)
        }
    }

    /// Creates a new occurrence and makes it the fingerprint's latest, all or nothing as readers see
    /// it (on DynamoDB two conditional puts: an alert a failure left between them is neither pointed
    /// at nor listed, and the same create takes it over; docs/storage.md, "Opening an occurrence").
    /// Fails with [`StoreError::Conflict`] when the fingerprint's latest alert is still unresolved, or
    /// when the latest is not `record.previous` (someone else opened one since it was read).
    fn create_alert(
        &self,
        record: &AlertRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces an alert whose stored version is `record.version - 1`; otherwise [`StoreError::Conflict`].
    fn update_alert(
        &self,
        record: &AlertRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Appends entries to the audit trail.
    fn append_audit(
        &self,
        entries: &[AuditEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// An alert's audit trail in time order (ties in append order).
    fn audit(
        &self,
        alert_id: &str,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;

    /// The entries of an alert's trail at or after `since`, in time order (ties in append order):
    /// for a reader that needs only what happened since a point (deliver, the tries of one job since
    /// it was decided), so that its read does not grow with the whole trail. (The DynamoDB store
    /// reads the appends that began up to [`AUDIT_APPEND_SPAN`] before `since`, then keeps the
    /// entries from `since` on: an append's entries are decided within that span of its first.)
    fn audit_since(
        &self,
        alert_id: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;

    // --- Queries of the api function (issue 6): the alert list and the status page. ---

    /// Up to `limit` alerts with `status`, in the `by-status-keys` index's order: most severe first, then
    /// by service, then by opening time ([`AlertRecord::status_sort_key`]). On DynamoDB this reads a
    /// global secondary index, so a write may take a moment to show (eventually consistent).
    fn list_alerts(
        &self,
        status: Status,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AlertRecord>, StoreError>> + Send;

    // ---- Noise control (issue 7): silences and suppression state. Keep this block last; other
    // ---- branches append their own blocks after it.

    /// Stores a new silence; [`StoreError::Conflict`] when its id exists.
    fn create_silence(
        &self,
        silence: &Silence,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every silence kept, ended or not, by start time then id. Ended silences are kept a while
    /// for the record and then leave the store (on DynamoDB by TTL, `docs/storage.md`): this is the
    /// list people read, not what the router reads for every alert.
    fn silences(&self) -> impl Future<Output = Result<Vec<Silence>, StoreError>> + Send;

    /// The silences not ended at `now` (active, or starting later), at most `limit` of them, by
    /// start time then id. What the router reads for every alert: it costs the silences not yet
    /// ended, never those that ended. Past `limit`, the ones that end soonest are returned.
    fn active_silences(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Silence>, StoreError>> + Send {
        async move {
            let mut live: Vec<Silence> = self
                .silences()
                .await?
                .into_iter()
                .filter(|s| s.end() > now)
                .collect();
            live.sort_by(|a, b| a.end().cmp(&b.end()).then(a.id.cmp(&b.id)));
            live.truncate(limit);
            live.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then(a.id.cmp(&b.id)));
            Ok(live)
        }
    }

    /// Expires a silence at `at` by `actor`, unless it already ended (then it is returned as it is);
    /// [`StoreError::NotFound`] when there is none with that id.
    fn expire_silence(
        &self,
        id: &str,
        at: DateTime<Utc>,
        actor: &str,
    ) -> impl Future<Output = Result<Silence, StoreError>> + Send;

    /// A noise-control state by key.
    fn noise_state(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<NoiseState>, StoreError>> + Send;

    /// Writes a noise-control state: version 1 only if the key is absent, else only over version − 1;
    /// otherwise [`StoreError::Conflict`].
    fn put_noise_state(
        &self,
        state: &NoiseState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// [`AlertStore::put_noise_state`] for a caller done with the state: a store that keeps states as
    /// they are (the memory store) takes it without a copy. Same conditions, same errors.
    fn put_noise_state_owned(
        &self,
        state: NoiseState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { self.put_noise_state(&state).await }
    }

    // ---- Group members: one item each, so that no item grows with a group's size.

    /// One member of the group `group` (a noise state key), if it has joined.
    fn group_member(
        &self,
        group: &str,
        alert_id: &str,
    ) -> impl Future<Output = Result<Option<GroupMember>, StoreError>> + Send;

    /// Writes a member's state (unconditionally: the group's own versioned write orders them).
    fn put_group_member(
        &self,
        group: &str,
        member: &GroupMember,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `limit` members of `group` in alert id order, after `after` (exclusive).
    fn group_members(
        &self,
        group: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<GroupMember>, StoreError>> + Send;

    /// Removes a member (absent: success).
    fn remove_group_member(
        &self,
        group: &str,
        alert_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Why a publish failed. A message the bus refuses as it is stays apart from a bus that failed: the
/// first fails the same way however often it is tried (the router records it and moves on), the
/// second makes the function fail so the platform retries.
#[derive(Debug, Error)]
pub enum BusError {
    /// The bus failed (throttling, 5xx, network, an answer lost): a retry may succeed.
    #[error("bus backend error: {0}")]
    Backend(String),
    /// The message was refused as it is (over the size limit, not encodable, no topic for it).
    #[error("bus refused the message: {0}")]
    Refused(String),
}

impl BusError {
    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, BusError::Backend(_))
    }
}

/// The hand-offs between functions: ingest → router (alerts) and router → deliver (jobs).
pub trait Bus: Send + Sync {
    /// Publishes a canonical alert for the router.
    fn publish_alert(&self, alert: &Alert) -> impl Future<Output = Result<(), BusError>> + Send;
    /// Publishes a delivery job for the channel's deliver function.
    fn publish_delivery(
        &self,
        job: &DeliveryJob,
    ) -> impl Future<Output = Result<(), BusError>> + Send;
}

/// Why a scheduler call failed: the scheduler (retryable) or the timer as asked (not).
#[derive(Debug, Error)]
pub enum SchedulerError {
    /// The scheduler failed (throttling, 5xx, network): a retry may succeed.
    #[error("scheduler backend error: {0}")]
    Backend(String),
    /// The timer was refused as it is (not encodable, a payload or setting the service rejects, no
    /// timer of that kind here).
    #[error("scheduler refused the timer: {0}")]
    Refused(String),
}

impl SchedulerError {
    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SchedulerError::Backend(_))
    }
}

/// One-time timers by idempotent name (EventBridge Scheduler `at()` on AWS, the virtual clock locally).
pub trait Scheduler: Send + Sync {
    /// Schedules `timer` at `at` under `name`. A name already scheduled is success (idempotent).
    fn schedule(
        &self,
        name: &str,
        at: DateTime<Utc>,
        timer: &Timer,
    ) -> impl Future<Output = Result<(), SchedulerError>> + Send;
    /// Cancels `name`. A name not scheduled is success.
    fn cancel(&self, name: &str) -> impl Future<Output = Result<(), SchedulerError>> + Send;
}

/// Why one send failed, as the channel classified it: retrying is the retry layer's business
/// (`crate::retry`), not the channel's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{class}: {reason}")]
pub struct SendError {
    /// Worth trying again (5xx, 429, timeouts, connection errors) or not (other 4xx, bad config).
    pub retryable: bool,
    /// How long the receiver asked us to wait (Retry-After), if it did.
    pub retry_after: Option<std::time::Duration>,
    /// A short class for the audit: `http_429`, `http_500`, `http_400`, `timeout`, `connect`, ...
    pub class: String,
    /// One line, never a secret (no URL, key or token).
    pub reason: String,
}

/// What a successful send returns (for the audit and in-place updates).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The receiver's id for the message (SES message id, Slack `ts`, PagerDuty dedup key), if any.
    pub provider_id: Option<String>,
}

/// One channel's sender: sends one rendered message to one target.
pub trait Notifier: Send + Sync {
    /// Sends `message` for `job`.
    fn send(
        &self,
        job: &DeliveryJob,
        message: &crate::render::Rendered,
    ) -> impl Future<Output = Result<Sent, SendError>> + Send;

    /// Whether the channel reports every message it takes as a send receipt
    /// ([`crate::receipt`]), so that a send whose answer was lost ([`crate::receipt::UNCONFIRMED`])
    /// can be confirmed instead of sent again. No channel does unless it says so.
    fn sends_receipts(&self) -> bool {
        false
    }
}

/// The time, injected so tests and replays run on a virtual clock.
pub trait Clock: Send + Sync {
    /// Now, UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl<T: AlertStore> AlertStore for &T {
    fn claim_event(
        &self,
        r: &DedupRecord,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        (**self).claim_event(r)
    }
    fn complete_event(
        &self,
        r: &DedupRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete_event(r)
    }
    fn release_event(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release_event(id)
    }
    fn get_event(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<DedupRecord>, StoreError>> + Send {
        (**self).get_event(id)
    }
    fn latest_alert(
        &self,
        fp: &str,
    ) -> impl Future<Output = Result<Option<AlertRecord>, StoreError>> + Send {
        (**self).latest_alert(fp)
    }
    fn latest_alert_lazy(
        &self,
        fp: &str,
    ) -> impl Future<Output = Result<Latest, StoreError>> + Send {
        (**self).latest_alert_lazy(fp)
    }
    fn get_alert(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<AlertRecord>, StoreError>> + Send {
        (**self).get_alert(id)
    }
    fn get_alerts(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<AlertRecord>, StoreError>> + Send {
        (**self).get_alerts(ids)
    }
    fn create_alert(&self, r: &AlertRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).create_alert(r)
    }
    fn update_alert(&self, r: &AlertRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).update_alert(r)
    }
    fn append_audit(
        &self,
        e: &[AuditEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).append_audit(e)
    }
    fn audit(&self, id: &str) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send {
        (**self).audit(id)
    }
    fn audit_since(
        &self,
        id: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send {
        (**self).audit_since(id, since)
    }

    // --- Queries of the api function (issue 6). ---

    fn list_alerts(
        &self,
        status: Status,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AlertRecord>, StoreError>> + Send {
        (**self).list_alerts(status, limit)
    }

    // ---- Noise control (issue 7). Keep this block last.
    fn create_silence(&self, s: &Silence) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).create_silence(s)
    }
    fn silences(&self) -> impl Future<Output = Result<Vec<Silence>, StoreError>> + Send {
        (**self).silences()
    }
    fn active_silences(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Silence>, StoreError>> + Send {
        (**self).active_silences(now, limit)
    }
    fn expire_silence(
        &self,
        id: &str,
        at: DateTime<Utc>,
        actor: &str,
    ) -> impl Future<Output = Result<Silence, StoreError>> + Send {
        (**self).expire_silence(id, at, actor)
    }
    fn noise_state(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<NoiseState>, StoreError>> + Send {
        (**self).noise_state(key)
    }
    fn put_noise_state(
        &self,
        state: &NoiseState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).put_noise_state(state)
    }
    fn put_noise_state_owned(
        &self,
        state: NoiseState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).put_noise_state_owned(state)
    }
    fn group_member(
        &self,
        group: &str,
        alert_id: &str,
    ) -> impl Future<Output = Result<Option<GroupMember>, StoreError>> + Send {
        (**self).group_member(group, alert_id)
    }
    fn put_group_member(
        &self,
        group: &str,
        member: &GroupMember,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).put_group_member(group, member)
    }
    fn group_members(
        &self,
        group: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<GroupMember>, StoreError>> + Send {
        (**self).group_members(group, after, limit)
    }
    fn remove_group_member(
        &self,
        group: &str,
        alert_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).remove_group_member(group, alert_id)
    }
}

// ---- The status page shared by every api sandbox (issue 18, item 4).

/// The most bytes of a status snapshot (its JSON and HTML together) a store keeps: a DynamoDB item
/// holds 400 KB. A larger page is served by the sandbox that built it and not shared.
pub const STATUS_SNAPSHOT_MAX_BYTES: usize = 350 * 1024;

/// How long after its first entry the last entry of one audit append may be: they are the entries
/// of one decision and its follow-ups, written at once ([`AlertStore::audit_since`]).
pub const AUDIT_APPEND_SPAN: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// A status page as built for one audience at one time, rendered both ways, as every api sandbox
/// serves it until it is refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// When it was built: the time of the refresh claim it was built under.
    pub built_at: DateTime<Utc>,
    /// The page as `/status.json` serves it.
    pub json: String,
    /// The page as `/status` serves it.
    pub html: String,
}

impl StatusSnapshot {
    /// Its size as a store counts it.
    pub fn size(&self) -> usize {
        self.json.len() + self.html.len()
    }
}

/// What [`StatusSnapshots::put_status_snapshot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotPut {
    /// Stored: the other sandboxes serve it now.
    Stored,
    /// Not stored: a later claim took the refresh over (this build outlived its claim).
    Superseded,
    /// Not stored: larger than [`STATUS_SNAPSHOT_MAX_BYTES`].
    TooLarge,
}

/// The status page of each audience, shared by every api sandbox so that the store is read to build
/// it at most once per refresh interval whatever the number of sandboxes: a refresh is claimed (one
/// sandbox wins), built, then stored under that claim.
pub trait StatusSnapshots: Send + Sync {
    /// The latest snapshot stored for `audience`, if any. May be a moment stale (an eventually
    /// consistent read is enough).
    fn status_snapshot(
        &self,
        audience: &str,
    ) -> impl Future<Output = Result<Option<StatusSnapshot>, StoreError>> + Send;

    /// Claims the refresh of `audience` at `at`: true when no refresh was claimed in the `every`
    /// before `at` (nor after it), so that one claim wins per interval among all sandboxes.
    fn claim_status_refresh(
        &self,
        audience: &str,
        at: DateTime<Utc>,
        every: chrono::Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores `snapshot`, built under the claim made at `snapshot.built_at`, unless a later claim
    /// took over or it is too large (see [`SnapshotPut`]).
    fn put_status_snapshot(
        &self,
        audience: &str,
        snapshot: &StatusSnapshot,
    ) -> impl Future<Output = Result<SnapshotPut, StoreError>> + Send;
}
