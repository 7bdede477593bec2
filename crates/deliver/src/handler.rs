//! The deliver handler, generic over the store, the bus, the channel's sender, the clock and the
//! sleeper. One deployed function per channel; each delivery job goes through:
//!
//! 1. **claim** the delivery id (the same conditional write as the router's event dedup): a job already
//!    sent sends nothing again; one another invocation holds fails so the platform retries later; one
//!    that already failed for good fails again with its reason, so it ends in the dead-letter queue;
//! 2. **render** for the channel, with signed one-click links for the target;
//! 3. **send** through the shared retry layer within the invocation's deadline; on a channel that
//!    sends receipts (SES or End User Messaging through a configuration set), a try whose answer was
//!    lost is confirmed by its send receipt ([`tocsin_core::receipt`]) rather than sent again, if
//!    the receipt comes within [`Settings::receipt_wait`]; if it does not, the job is **deferred**:
//!    published again on the deliveries topic and the invocation ends, and the new message's
//!    invocation looks for the receipt, through the wait, before it sends (at most
//!    [`Settings::deferrals`] times, then it sends again);
//! 4. **record** every attempt in the audit (try, outcome, latency, error class; never a secret),
//!    one write. A send the channel took leaves its claim in progress: its attempts in the trail of
//!    the job's alert say it was sent. A later job with that id (a redelivery) fails its claim and
//!    finds the send on record in the trail of the alert whose job claimed it, or, once the claim
//!    has lapsed, takes it over, finds the send the same way and marks the claim sent; so a
//!    delivery costs two writes and a redelivery one;
//! 5. on **final failure** (permanent, or still failing after the platform's last retry), hand the alert
//!    to the channel's `fallback` (critical alerts always; any alert when its delivery finally fails, so
//!    the failure itself is reported elsewhere), and fail the invocation so the job is dead-lettered.
//!
//! An SMS channel also runs the per-recipient throttle ([`tocsin_core::throttle`]): between claim and
//! render, a job whose recipient had a message in the last window is held, and [`Deliverer::flush`]
//! later sends everything held as one summary.
//!
//! [`handle`] is one invocation: an SNS event's delivery jobs (read by `tocsin_lambda::sns`) and the
//! channel's send events (recorded as receipts), or a throttle's flush; one JSON log line per audit
//! entry, and failures as [`FunctionError`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use thiserror::Error;
use tocsin_channels::TokioSleeper;
use tocsin_core::config::Config;
use tocsin_core::model::format_time;
use tocsin_core::model::stable_id;
use tocsin_core::ports::SchedulerError;
use tocsin_core::ports::SystemClock;
use tocsin_core::ports::{
    AlertStore, Bus, BusError, Claim, Clock, Notifier, SendError, Sent, StoreError,
};
use tocsin_core::receipt;
use tocsin_core::record::{
    Action, AttemptRecord, AuditEntry, ClaimStatus, DedupRecord, DeliveryJob, DeliveryKind, Target,
};
use tocsin_core::render::{self, Context, Links, Rendered};
use tocsin_core::retry::{self, RetryPolicy, Sleeper};
use tocsin_core::throttle::{self, Flush, FlushTimer, HoldStore};
use tocsin_core::token::{self, Claims, KeyRing};
use tocsin_core::{Severity, text::one_line};
use tocsin_lambda::FunctionError;

pub use tocsin_core::secret::resolve_setting;

/// How the audit reason of a refused destination begins (the deliver function counts these for the
/// ops alarm).
pub const REFUSED: &str = "refused destination";

impl From<DeliverError> for FunctionError {
    /// Retryable: another invocation holds the job, the channel failed retryably, the store, bus or
    /// scheduler failed. Permanent: the job failed for good, or a flush reached a function with no
    /// throttle. Either way the invocation fails and the job ends dead-lettered with the reason.
    fn from(e: DeliverError) -> Self {
        use FunctionError::{Permanent, Retryable};
        let reason = one_line(&e.to_string()).into_owned();
        match e {
            DeliverError::Failed { .. } | DeliverError::NoThrottle(_) => Permanent(reason),
            DeliverError::InProgress(_)
            | DeliverError::Retryable { .. }
            | DeliverError::Store(_)
            | DeliverError::Unrecorded { .. }
            | DeliverError::Bus(_)
            | DeliverError::Timer(_) => Retryable(reason),
        }
    }
}

/// What invokes a deliver function.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum Input {
    /// Delivery jobs from the deliveries topic.
    Sns(aws_lambda_events::event::sns::SnsEvent),
    /// A throttle flush from the schedule the SMS throttle made.
    Flush {
        /// Whose held messages, and the window's end.
        flush: Flush,
        /// The X-Ray trace of the invocation that held the first message (Scheduler starts a trace
        /// of its own): the summary's send continues it.
        #[serde(default)]
        trace_header: Option<String>,
    },
}

/// How one-click links are made.
#[derive(Clone)]
pub struct LinkSettings {
    /// The API's public base URL (`https://abc.execute-api.eu-west-1.amazonaws.com`).
    pub base_url: String,
    /// The token signing keys (shared with the api function; at least 32 bytes each). Never logged.
    pub keys: KeyRing,
    /// How long a link works.
    pub ttl: Duration,
}

/// The deliver function's settings.
#[derive(Clone)]
pub struct Settings {
    /// Retries within one invocation.
    pub policy: RetryPolicy,
    /// How many invocations the platform makes of one job (Lambda async: 1 + 2 retries); the last
    /// one's failure is final.
    pub invocations: u32,
    /// Links.
    pub links: LinkSettings,
    /// How long a send whose answer was lost waits for its send receipt before trying again, on a
    /// channel that sends receipts ([`Notifier::sends_receipts`]; `tocsin_core::receipt`).
    pub receipt_wait: Duration,
    /// How many times a job whose send's answer was lost, and whose receipt has not come within
    /// the wait, is deferred (published again, to look for the receipt in a new invocation) before
    /// it is sent again.
    pub deferrals: u32,
}

impl Settings {
    /// The deployed function's: the default retry policy, Lambda's three async invocations, links to
    /// the API at `base_url` signed with `keys` and valid for 24 hours.
    pub fn deployed(base_url: String, keys: KeyRing) -> Settings {
        Settings {
            policy: RetryPolicy::default(),
            invocations: 3,
            receipt_wait: RECEIPT_WAIT,
            deferrals: DEFERRALS,
            links: LinkSettings {
                base_url,
                keys,
                ttl: Duration::from_secs(24 * 3600),
            },
        }
    }
}

/// Why an invocation failed (the platform retries it, then dead-letters it with this reason).
#[derive(Debug, Error)]
pub enum DeliverError {
    /// Another invocation is sending this job right now.
    #[error("delivery {0} is being sent by another invocation")]
    InProgress(String),
    /// The send failed, retryably; the platform will try again.
    #[error("delivery {id} to {channel} failed (retryable, invocation {invocation}): {reason}")]
    Retryable {
        /// The delivery id.
        id: String,
        /// The channel.
        channel: String,
        /// Which invocation this was.
        invocation: u32,
        /// The last error, one line.
        reason: String,
    },
    /// The send failed for good.
    #[error("delivery {id} to {channel} failed for good: {reason}")]
    Failed {
        /// The delivery id.
        id: String,
        /// The channel.
        channel: String,
        /// Why, one line.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The fallback could not be published.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A throttle flush could not be scheduled.
    #[error(transparent)]
    Timer(#[from] SchedulerError),
    /// A flush reached a function without a throttle.
    #[error("flush for {0}: this deliver function has no SMS throttle")]
    NoThrottle(String),
    /// The channel took the message, and its attempts (or, on a takeover, the claim's mark) could
    /// not be written (the store failed on every try within the invocation). The claim is kept,
    /// never released, so the platform's retry finds it held rather than sending at once; only one
    /// that comes after the claim has lapsed and finds no send on record sends again, as after a
    /// kill between the send and its record.
    #[error("delivery {id} was sent, and its record could not be written: {source}")]
    Unrecorded {
        /// The delivery id.
        id: String,
        /// The last store error.
        source: StoreError,
    },
}

pub use tocsin_core::throttle::Throttle;

/// How long a send whose answer was lost waits for its receipt by default: SES publishes a send
/// event within seconds, and SNS hands it on within seconds more.
pub const RECEIPT_WAIT: Duration = Duration::from_secs(10);

/// How often the receipt is looked for while waiting (one strongly consistent read each).
const RECEIPT_POLL: Duration = Duration::from_millis(500);

/// How many times a job is deferred by default: with the wait of each, a receipt has about a
/// minute and a quarter to come (as long as Lambda's first retry of an invocation gave it, before
/// deferring meant publishing again).
pub const DEFERRALS: u32 = 6;

/// Tries, within one invocation, of a call that must not be left to the platform's retry (the write
/// that records a send the channel took, a receipt, a deferral and its publish):
/// `Deliverer::record_tries`.
const SENT_RECORD_TRIES: u32 = 5;

/// How far before a job's `created_at` deliver reads the trail for the job's earlier tries: the
/// router that decided the job and the deliver function that tries it run on different clocks.
const HISTORY_MARGIN: TimeDelta = TimeDelta::minutes(5);

/// The channel's sender, with a send whose answer was lost ([`receipt::UNCONFIRMED`]) confirmed by
/// its send receipt: the receipt is looked for every [`RECEIPT_POLL`], and if it comes the send is
/// the channel's (sent, with the receipt's message id). If not, the failure stands: while the job
/// may still be deferred (`defer`) it ends the retry layer at once ([`DEFER`]), and `send` defers
/// the job: published again, it looks for the receipt in a new invocation before it sends again
/// (a receipt that a failing store or a busy function delayed comes in that time, where sending
/// again at once doubled the message). Once it may not, the retry layer tries again (a receipt
/// later than that leaves a second copy, never a lost page). The cost: a request that truly never
/// arrived is sent about a minute late. `wait` is
/// what the whole invocation may spend waiting, however many of its tries lose their answer: a
/// lost answer is as often a request that never arrived, and the tries after it must still fit
/// (the chaos run dead-lettered an email whose four tries spent the invocation waiting). The wait
/// is counted in the tries' latency, and ends before the invocation's deadline less the retry
/// layer's margin, so the outcome is always recorded in time.
struct Confirming<'a, N, S, Z> {
    notifier: &'a N,
    store: &'a S,
    sleeper: &'a Z,
    wait: Duration,
    /// What the invocation has spent waiting so far, in milliseconds.
    waited_ms: std::sync::atomic::AtomicU64,
    /// When the invocation can wait no longer, whatever is left of `wait`.
    give_up_at: std::time::Instant,
    /// Sends confirmed by a receipt.
    confirmed: std::sync::atomic::AtomicU32,
    /// Whether a lost answer with no receipt defers the job (it has been deferred fewer than
    /// [`Settings::deferrals`] times).
    defer: bool,
}

/// The `Retry-After` that ends the retry layer at once: the job is deferred.
const DEFER: Duration = Duration::MAX;

impl<N: Notifier, S: AlertStore, Z: Sleeper> Notifier for Confirming<'_, N, S, Z> {
    async fn send(&self, job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        let error = match self.notifier.send(job, message).await {
            Err(e) if e.class == receipt::UNCONFIRMED && !self.wait.is_zero() => e,
            other => return other,
        };
        let key = receipt::key(&receipt::tag(&job.delivery_id));
        let (store, key) = (self.store, &key);
        let (found, waited) = look_for_receipt(
            self.sleeper,
            self.wait,
            self.give_up_at,
            Duration::from_millis(self.waited_ms.load(Ordering::Relaxed)),
            // A failed read is no receipt: at worst the message goes twice.
            move || async move {
                Ok::<_, std::convert::Infallible>(store.get_event(key).await.ok().flatten())
            },
        )
        .await;
        self.waited_ms
            .store(waited.as_millis() as u64, Ordering::Relaxed);
        if let Ok(Some(r)) = found {
            self.confirmed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(delivery_id = %job.delivery_id, "send confirmed by its receipt");
            return Ok(Sent {
                provider_id: r.outcome.as_deref().and_then(receipt_message_id),
            });
        }
        if !self.defer {
            return Err(error);
        }
        Err(SendError {
            retry_after: Some(DEFER),
            reason: format!("{}; no send receipt yet", error.reason),
            ..error
        })
    }
}

/// Looks for a send receipt with `read`, then again every [`RECEIPT_POLL`] while less than `budget`
/// has been waited (`waited` already) and another look fits before `give_up_at`: the receipt if
/// one came (or the error of a failed read, which ends the look), and the time waited since.
async fn look_for_receipt<T, E, F, Fut>(
    sleeper: &impl Sleeper,
    budget: Duration,
    give_up_at: std::time::Instant,
    mut waited: Duration,
    mut read: F,
) -> (Result<Option<T>, E>, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, E>>,
{
    loop {
        match read().await {
            Ok(None) => {}
            found => return (found, waited),
        }
        if waited >= budget || std::time::Instant::now() + RECEIPT_POLL >= give_up_at {
            return (Ok(None), waited);
        }
        sleeper.sleep(RECEIPT_POLL).await;
        waited += RECEIPT_POLL;
    }
}

/// How a try of `delivery_id` the channel took is on record among `entries`, if one is.
fn sent_among(delivery_id: &str, entries: &[AuditEntry]) -> Option<String> {
    sent_of(
        entries
            .iter()
            .filter_map(|e| e.attempt.as_ref())
            .filter(|a| a.delivery_id == delivery_id),
    )
}

/// How the first of `attempts` (one delivery's) that the channel took is on record, if one did.
fn sent_of<'a>(mut attempts: impl Iterator<Item = &'a AttemptRecord>) -> Option<String> {
    attempts
        .find(|a| a.outcome == retry::AttemptOutcome::Sent)
        .map(|a| match &a.provider_id {
            Some(p) => format!("sent ({p})"),
            None => "sent".into(),
        })
}

/// The message id a receipt's outcome names (`sent (<id>), by its send receipt`).
fn receipt_message_id(outcome: &str) -> Option<String> {
    let rest = outcome.strip_prefix("sent (")?;
    rest.split_once(')').map(|(id, _)| id.to_string())
}

/// The type parameters of a deliverer without a throttle (every channel but SMS).
pub struct NoThrottle;

impl HoldStore for NoThrottle {
    async fn hold(&self, key: &str, _: &DeliveryJob) -> Result<(), StoreError> {
        Err(StoreError::Backend(format!("no hold store for {key}")))
    }
    async fn held(&self, _: &str) -> Result<Vec<DeliveryJob>, StoreError> {
        Ok(Vec::new())
    }
    async fn release(&self, _: &str, _: &[DeliveryJob]) -> Result<(), StoreError> {
        Ok(())
    }
}

impl FlushTimer for NoThrottle {
    async fn schedule_flush(&self, f: &Flush) -> Result<(), SchedulerError> {
        Err(SchedulerError::Refused(format!(
            "no flush timer for {}",
            f.key
        )))
    }
}

/// The handler.
pub struct Deliverer<S, B, N, C, Z, H = NoThrottle, T = NoThrottle> {
    /// The routing config (channels and their fallbacks).
    pub config: Arc<Config>,
    /// Claims and audit.
    pub store: S,
    /// Where fallback jobs go.
    pub bus: B,
    /// This function's channel sender.
    pub notifier: N,
    /// The time.
    pub clock: C,
    /// Waits between retries.
    pub sleeper: Z,
    /// Settings.
    pub settings: Settings,
    /// The per-recipient throttle (SMS channels); `None` sends every job at once.
    pub throttle: Option<Throttle<H, T>>,
}

impl<S, B, N, H, T> Deliverer<S, B, N, SystemClock, TokioSleeper, H, T> {
    /// The deployed function's: the system clock, tokio's sleep between retries.
    pub fn deployed(
        config: Arc<Config>,
        store: S,
        bus: B,
        notifier: N,
        throttle: Option<Throttle<H, T>>,
        settings: Settings,
    ) -> Self {
        Deliverer {
            config,
            store,
            bus,
            notifier,
            clock: SystemClock,
            sleeper: TokioSleeper,
            settings,
            throttle,
        }
    }
}

/// The wait before the `n`th try again of a record write: 50 ms, doubling (at most 800 ms).
fn record_backoff(n: u32) -> Duration {
    Duration::from_millis(50 << n.min(5).saturating_sub(1))
}

fn claim_key(job: &DeliveryJob) -> String {
    format!("delivery#{}", job.delivery_id)
}

impl<S, B, N, C, Z, H, T> Deliverer<S, B, N, C, Z, H, T>
where
    S: AlertStore,
    B: Bus,
    N: Notifier,
    C: Clock,
    Z: Sleeper,
    H: HoldStore,
    T: FlushTimer,
{
    /// The one-click links for a job's target.
    pub fn links(&self, job: &DeliveryJob, now: DateTime<Utc>) -> Links {
        let l = &self.settings.links;
        let expires_at = now + TimeDelta::from_std(l.ttl).unwrap_or(TimeDelta::hours(24));
        let link = |action: &str| {
            let t = token::sign(
                &l.keys,
                &Claims {
                    alert_id: job.alert_id.clone(),
                    action: action.to_string(),
                    recipient: job.target.target.clone(),
                    expires_at,
                },
            );
            format!("{}/a/{t}", l.base_url.trim_end_matches('/'))
        };
        let open = !matches!(job.kind, DeliveryKind::Resolve);
        Links {
            ack: open.then(|| link("ack")),
            resolve: open.then(|| link("resolve")),
            view: Some(format!(
                "{}/alerts/{}",
                l.base_url.trim_end_matches('/'),
                job.alert_id
            )),
            // The alarm writes the URL: a button only for a host the config trusts.
            runbook: job
                .alert
                .labels
                .get("runbook_url")
                .filter(|u| self.config.defaults.runbook_allowed(u))
                .cloned(),
            ack_code: None,
        }
    }

    /// Delivers one job within `deadline_left`. Returns the audit entries written.
    pub async fn deliver(
        &self,
        job: &DeliveryJob,
        deadline_left: Duration,
    ) -> Result<Vec<AuditEntry>, DeliverError> {
        self.deliver_as(job, deadline_left, None).await
    }

    /// Delivers `job`, with `summary` as its message instead of its own rendering when it is a
    /// throttle's summary (which has taken its window already).
    async fn deliver_as(
        &self,
        job: &DeliveryJob,
        deadline_left: Duration,
        summary: Option<Rendered>,
    ) -> Result<Vec<AuditEntry>, DeliverError> {
        let now = self.clock.now();
        // Only destinations the config gives this channel: a job is what anyone who may publish to
        // the deliveries topic says it is. A refusal is final (no retry), on record, and counted for
        // the ops alarm (`DestinationRefused`).
        if let Err(why) = tocsin_core::destination::check(&self.config, &job.target) {
            let e = self.entry(job, now, Action::Suppress, format!("{REFUSED}: {why}"));
            self.store.append_audit(std::slice::from_ref(&e)).await?;
            return Ok(vec![e]);
        }
        let key = claim_key(job);
        let claim = DedupRecord {
            event_id: key.clone(),
            status: ClaimStatus::InProgress,
            expires_at: now + TimeDelta::days(7),
            in_progress_until: now
                + TimeDelta::from_std(deadline_left).unwrap_or(TimeDelta::minutes(5))
                + TimeDelta::seconds(30),
            transport: job.target.channel.clone(),
            claimed_at: now,
            alert_id: Some(job.alert_id.clone()),
            outcome: None,
        };
        // A redelivery changes nothing: its line goes to the function's log (the handler logs every
        // entry it is given back, with the trace), not to the alert's trail, so a duplicate
        // delivery costs one write, its failed claim, and the trail does not grow with redeliveries.
        let replaced = match self.store.claim_event(&claim).await? {
            Claim::Claimed => None,
            Claim::TookOver(old) => Some(old),
            Claim::Duplicate(existing) => {
                return match (existing.status, existing.outcome.as_deref()) {
                    // Still running, or sent: a send the channel took leaves its claim in progress
                    // and is on record as its attempts, in the trail of the alert whose job claimed
                    // it.
                    (ClaimStatus::InProgress, _) => {
                        match self
                            .sent_on_record(job, existing.alert_id.as_deref())
                            .await?
                        {
                            Some(sent) => Ok(vec![self.already_sent(job, now, &sent)]),
                            None => Err(DeliverError::InProgress(job.delivery_id.clone())),
                        }
                    }
                    (ClaimStatus::Completed, Some(o)) if o.starts_with("failed") => {
                        Err(DeliverError::Failed {
                            id: job.delivery_id.clone(),
                            channel: job.target.channel.clone(),
                            reason: o.to_string(),
                        })
                    }
                    (ClaimStatus::Completed, o) => {
                        Ok(vec![self.already_sent(job, now, o.unwrap_or("sent"))])
                    }
                };
            }
        };
        if let Some(old) = replaced {
            // A claim that lapsed: its invocation died, or sent and left the send on record. Sent:
            // the claim is marked so, under the alert that has the send on record, so that any
            // later job with the id stops at the claim. If that mark fails, the claim is kept (not
            // released) and lapses again, and the next job finds the send on record the same way.
            if let Some(sent) = self.sent_on_record(job, old.alert_id.as_deref()).await? {
                let mut done = claim.clone();
                done.status = ClaimStatus::Completed;
                done.alert_id = old.alert_id.or(done.alert_id);
                done.outcome = Some(sent.clone());
                self.store.complete_event(&done).await.map_err(|source| {
                    DeliverError::Unrecorded {
                        id: job.delivery_id.clone(),
                        source,
                    }
                })?;
                return Ok(vec![self.already_sent(job, now, &sent)]);
            }
        }
        let result = self.send(job, claim, now, deadline_left, summary).await;
        if matches!(
            result,
            Err(DeliverError::Store(_)
                | DeliverError::Bus(_)
                | DeliverError::Timer(_)
                | DeliverError::Retryable { .. })
        ) {
            // Let the platform's retry take the job again at once.
            let _ = self.store.release_event(&key).await;
        }
        result
    }

    /// The line of a job already sent (for the log).
    fn already_sent(&self, job: &DeliveryJob, now: DateTime<Utc>, outcome: &str) -> AuditEntry {
        self.entry(
            job,
            now,
            Action::Dedup,
            format!("delivery {} already sent ({outcome})", job.delivery_id),
        )
    }

    /// How the send of `job`'s delivery id is on record, if it is: a try the channel took, in the
    /// trail of the alert whose job claimed it (`claimer`) or of the job's own alert. A failed read
    /// returns from `deliver_as` before anything could release the claim: it may be another
    /// invocation's, whose message is out.
    async fn sent_on_record(
        &self,
        job: &DeliveryJob,
        claimer: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let mut alerts = vec![job.alert_id.as_str()];
        if let Some(c) = claimer.filter(|c| *c != job.alert_id) {
            alerts.insert(0, c);
        }
        for alert in alerts {
            let history = self
                .store
                .audit_since(alert, job.created_at - HISTORY_MARGIN)
                .await?;
            if let Some(sent) = sent_among(&job.delivery_id, &history) {
                return Ok(Some(sent));
            }
        }
        self.receipt(job).await
    }

    /// The send receipt of `job`'s delivery, on a channel that sends receipts: how the channel
    /// said it took the message (`sent (<message id>), by its send receipt`).
    async fn receipt(&self, job: &DeliveryJob) -> Result<Option<String>, StoreError> {
        if !self.notifier.sends_receipts() {
            return Ok(None);
        }
        let key = receipt::key(&receipt::tag(&job.delivery_id));
        Ok(self.store.get_event(&key).await?.map(|r| {
            r.outcome
                .unwrap_or_else(|| "sent, by its send receipt".into())
        }))
    }

    /// Records a receipt a channel sent ([`tocsin_core::receipt`]): a completed claim under the
    /// delivery's receipt key, which a send whose answer was lost looks for. One write, and none
    /// for a message already on record (End User Messaging publishes several events a message;
    /// SNS redelivers): one read before. The store is tried up to [`SENT_RECORD_TRIES`] times
    /// within the invocation: a receipt recorded only at the platform's retry, a minute later, may
    /// come after the job's own retry has looked for it and sent the message again.
    pub async fn record_receipt(&self, r: &receipt::SendReceipt) -> Result<(), StoreError> {
        self.record_tries(|| self.try_record_receipt(r)).await
    }

    async fn try_record_receipt(&self, r: &receipt::SendReceipt) -> Result<(), StoreError> {
        if self.store.get_event(&receipt::key(&r.tag)).await?.is_some() {
            return Ok(());
        }
        self.store.complete_event(&r.record()).await
    }

    async fn send(
        &self,
        job: &DeliveryJob,
        mut claim: DedupRecord,
        now: DateTime<Utc>,
        deadline_left: Duration,
        summary: Option<Rendered>,
    ) -> Result<Vec<AuditEntry>, DeliverError> {
        // Tries made by earlier invocations of this job are in the audit already, all of them after
        // the job was decided: only that part of the trail is read (less a margin for the clocks of
        // the two functions), not the whole of a long-lived alert's.
        let history = self
            .store
            .audit_since(&job.alert_id, job.created_at - HISTORY_MARGIN)
            .await?;
        let earlier: Vec<&AttemptRecord> = history
            .iter()
            .filter_map(|e| e.attempt.as_ref())
            .filter(|a| a.delivery_id == job.delivery_id)
            .collect();
        // Sent already, by a job with this id whose claim this invocation did not meet: it took
        // over that claim once it lapsed, and the answer of its takeover was lost (the store then
        // knows the claim for its own, not what it replaced). The send is on record all the same.
        if let Some(sent) = sent_of(earlier.iter().copied()) {
            claim.status = ClaimStatus::Completed;
            claim.outcome = Some(sent.clone());
            self.store
                .complete_event(&claim)
                .await
                .map_err(|source| DeliverError::Unrecorded {
                    id: job.delivery_id.clone(),
                    source,
                })?;
            return Ok(vec![self.already_sent(job, now, &sent)]);
        }
        // How often this job has been deferred (each time published again, its deferral on record).
        let deferred = format!("delivery {} deferred", job.delivery_id);
        let rounds = history
            .iter()
            .filter(|e| e.action == Action::Suppress && e.reason.starts_with(&deferred))
            .count() as u32;
        // An SMS job's first try takes its recipient's throttle window; a try after one on record
        // (the platform's retry, a deferred job) does not wait for the summary: its message may be
        // out already, and it looked for that above.
        if summary.is_none() && earlier.is_empty() && rounds == 0 {
            if let Some(held) = self.hold_if_throttled(job, &claim, now).await? {
                return Ok(held);
            }
        }
        let tries_before = earlier.iter().map(|a| a.try_number).max().unwrap_or(0);
        // An earlier invocation's try whose answer was lost: the channel may have taken it. Its
        // receipt, if it came, says so, and the message is not sent again.
        let unconfirmed_before = earlier
            .iter()
            .any(|a| a.error_class.as_deref() == Some(receipt::UNCONFIRMED));
        // Which invocation this is: one after the latest whose attempts are on record. Entries
        // written before attempts carried it (0) count by the lines the retries left.
        let recorded = earlier.iter().map(|a| a.invocation).max().unwrap_or(0);
        let invocation = 1 + if recorded > 0 || earlier.is_empty() {
            recorded
        } else {
            history
                .iter()
                .filter(|e| {
                    e.action == Action::Suppress
                        && e.reason
                            .starts_with(&format!("delivery {} will be retried", job.delivery_id))
                })
                .count() as u32
        };

        // A follow-up finds the first message this alert sent to the same target on the same channel,
        // so a bot-token Slack channel updates it or replies in its thread (see tocsin-channels).
        let thread = job.thread.clone().or_else(|| {
            history
                .iter()
                .filter(|e| {
                    e.channel.as_deref() == Some(job.target.channel.as_str())
                        && e.target.as_deref() == Some(job.target.target.as_str())
                })
                .filter_map(|e| e.attempt.as_ref())
                .find(|a| {
                    a.outcome == retry::AttemptOutcome::Sent && a.delivery_id != job.delivery_id
                })
                .and_then(|a| a.provider_id.clone())
        });
        let threaded;
        let job = if thread.is_some() && job.thread.is_none() {
            threaded = DeliveryJob {
                thread,
                ..job.clone()
            };
            &threaded
        } else {
            job
        };
        // How long a look for a receipt may wait: the one below for an earlier try's, and the
        // confirming sender's for this invocation's tries, each.
        let receipt_wait = if self.notifier.sends_receipts() {
            self.settings.receipt_wait
        } else {
            Duration::ZERO
        };
        // Whether a lost answer with no receipt in the wait defers the job, here or in the
        // confirming sender (a channel that sends no receipts has none to wait for: it sends again).
        let may_defer = rounds < self.settings.deferrals && !receipt_wait.is_zero();
        let mut waited_before = Duration::ZERO;
        if unconfirmed_before {
            // The receipt of an earlier try may be on its way still (its own invocation retried by
            // the platform): it is looked for through the wait before the message goes again.
            let give_up_at = std::time::Instant::now()
                + deadline_left.saturating_sub(self.settings.policy.margin);
            let (found, waited) = look_for_receipt(
                &self.sleeper,
                receipt_wait,
                give_up_at,
                Duration::ZERO,
                || self.receipt(job),
            )
            .await;
            waited_before = waited;
            if let Some(sent) = found? {
                let mut e = self.entry(
                    job,
                    now,
                    Action::Attempt,
                    format!(
                        "try {tries_before} on {}: sent (its answer was lost; {sent})",
                        job.target.channel
                    ),
                );
                e.attempt = Some(AttemptRecord {
                    delivery_id: job.delivery_id.clone(),
                    try_number: tries_before,
                    invocation,
                    outcome: retry::AttemptOutcome::Sent,
                    latency_ms: 0,
                    error_class: None,
                    provider_id: receipt_message_id(&sent),
                });
                let entries = vec![e];
                self.record_sent(job, &entries).await?;
                return Ok(entries);
            }
            if may_defer {
                let why = "an earlier try's answer was lost and its send receipt has not come";
                return self.defer(job, now, Vec::new(), rounds, why).await;
            }
        }
        let deadline_left = deadline_left.saturating_sub(waited_before);
        let links = self.links(job, now);
        let message = summary.unwrap_or_else(|| {
            render::render(
                job.target.channel_kind,
                &Context {
                    job,
                    links: &links,
                    now,
                },
            )
        });
        let seed = job
            .delivery_id
            .bytes()
            .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
        let confirming = Confirming {
            notifier: &self.notifier,
            store: &self.store,
            sleeper: &self.sleeper,
            wait: receipt_wait,
            // The wait ends in time for the retry layer's margin (the record of the outcome).
            give_up_at: std::time::Instant::now()
                + deadline_left.saturating_sub(self.settings.policy.margin),
            waited_ms: std::sync::atomic::AtomicU64::new(0),
            confirmed: std::sync::atomic::AtomicU32::new(0),
            defer: may_defer,
        };
        let outcome = retry::send_with_retries(
            &confirming,
            job,
            &message,
            &self.settings.policy,
            deadline_left,
            &self.sleeper,
            seed ^ u64::from(invocation),
        )
        .await;
        let mut entries: Vec<AuditEntry> = outcome
            .attempts
            .iter()
            .map(|a| {
                let by_receipt = a.outcome == retry::AttemptOutcome::Sent
                    && confirming.confirmed.load(Ordering::Relaxed) > 0;
                let mut e = self.entry(
                    job,
                    now,
                    Action::Attempt,
                    format!(
                        "try {} on {}: {}{}",
                        tries_before + a.try_number,
                        job.target.channel,
                        a.outcome.as_str(),
                        if by_receipt {
                            " (its answer was lost; its send receipt says the channel took it)"
                        } else {
                            ""
                        }
                    ),
                );
                e.attempt = Some(AttemptRecord {
                    delivery_id: job.delivery_id.clone(),
                    try_number: tries_before + a.try_number,
                    invocation,
                    outcome: a.outcome,
                    latency_ms: a.latency.as_millis() as u64,
                    error_class: a.error_class.clone(),
                    provider_id: match (&a.outcome, &outcome.result) {
                        (retry::AttemptOutcome::Sent, Ok(sent)) => sent.provider_id.clone(),
                        _ => None,
                    },
                });
                e
            })
            .collect();
        let result = match &outcome.result {
            Ok(_) => {
                self.record_sent(job, &entries).await?;
                return Ok(entries);
            }
            Err(e) if e.retry_after == Some(DEFER) => {
                let why = one_line(&e.reason).into_owned();
                return self.defer(job, now, entries, rounds, &why).await;
            }
            Err(e) => e.clone(),
        };
        let reason = one_line(&result.to_string()).into_owned();
        // A deferred job is a new message, which the platform tries as many times again; its
        // invocations are counted on from the deferred one's.
        let last_invocation = invocation >= self.settings.invocations + rounds;
        if result.retryable && !last_invocation {
            entries.push(self.entry(job, now, Action::Suppress, format!(
                "delivery {} will be retried by the platform (invocation {invocation} of {}): {reason}",
                job.delivery_id, self.settings.invocations
            )));
            self.store.append_audit(&entries).await?;
            return Err(DeliverError::Retryable {
                id: job.delivery_id.clone(),
                channel: job.target.channel.clone(),
                invocation,
                reason,
            });
        }
        // Final: record it, hand the alert to the fallback channel, and fail so it is dead-lettered.
        let why = if result.retryable {
            "still failing after the last retry"
        } else {
            "permanent failure"
        };
        entries.push(self.entry(
            job,
            now,
            Action::Suppress,
            format!(
                "delivery {} to {} failed for good ({why}): {reason}",
                job.delivery_id, job.target.target
            ),
        ));
        entries.extend(self.fallback(job, now, &reason).await?);
        self.store.append_audit(&entries).await?;
        claim.status = ClaimStatus::Completed;
        claim.outcome = Some(format!("failed: {reason}"));
        self.store.complete_event(&claim).await?;
        Err(DeliverError::Failed {
            id: job.delivery_id.clone(),
            channel: job.target.channel.clone(),
            reason,
        })
    }

    /// Records a send the channel took: its attempts, in the trail of the job's alert, which is
    /// what every later job with the delivery id looks for (its claim, left in progress, sends it
    /// there: [`Self::sent_on_record`]). One write, tried up to [`SENT_RECORD_TRIES`] times. The
    /// claim must never be released once the message is out: a failure is
    /// [`DeliverError::Unrecorded`], which `deliver_as` does not release.
    async fn record_sent(
        &self,
        job: &DeliveryJob,
        entries: &[AuditEntry],
    ) -> Result<(), DeliverError> {
        self.record_tries(|| self.store.append_audit(entries))
            .await
            .map_err(|source| DeliverError::Unrecorded {
                id: job.delivery_id.clone(),
                source,
            })
    }

    /// Defers `job`, whose send's answer was lost (by this invocation's tries, `entries`, or an
    /// earlier one's) and whose receipt has not come: its tries and the deferral are recorded, its
    /// claim released, and the job published again on the deliveries topic, so a new invocation
    /// looks for the receipt, through the wait, before it sends; the invocation then ends, done.
    /// Never left to the platform's retry, which may not come (this may be its last try, and the
    /// count of the platform's tries on record can run behind when a try was killed before it
    /// wrote any). The record is written before the job is published: the new invocation counts
    /// the deferral and finds the lost try. If the publish fails, the invocation fails retryably
    /// and the platform's retry finds both, as the new message's invocation would have.
    async fn defer(
        &self,
        job: &DeliveryJob,
        now: DateTime<Utc>,
        mut entries: Vec<AuditEntry>,
        rounds: u32,
        why: &str,
    ) -> Result<Vec<AuditEntry>, DeliverError> {
        entries.push(self.entry(
            job,
            now,
            Action::Suppress,
            format!(
                "delivery {} deferred ({} of {}): {why}; published again to look for the receipt \
                 before sending",
                job.delivery_id,
                rounds + 1,
                self.settings.deferrals
            ),
        ));
        self.record_tries(|| self.store.append_audit(&entries))
            .await?;
        // Released for the new message's claim; one that fails lapses by its own time.
        let _ = self.store.release_event(&claim_key(job)).await;
        self.record_tries(|| self.bus.publish_delivery(job)).await?;
        tracing::info!(delivery_id = %job.delivery_id, round = rounds + 1, "deferred: no send receipt yet");
        Ok(entries)
    }

    /// `write` tried up to [`SENT_RECORD_TRIES`] times, [`record_backoff`] apart: the last error if
    /// every try failed.
    async fn record_tries<F, Fut, E>(&self, mut write: F) -> Result<(), E>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
    {
        let mut tries = 0;
        loop {
            let error = match write().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            tries += 1;
            if tries >= SENT_RECORD_TRIES {
                return Err(error);
            }
            self.sleeper.sleep(record_backoff(tries)).await;
        }
    }

    /// Publishes the job again on the channel's fallback: the alert itself for a critical alert or for
    /// any final failure, so someone hears of it on another channel.
    async fn fallback(
        &self,
        job: &DeliveryJob,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<AuditEntry>, DeliverError> {
        let Some(fb) = self
            .config
            .channels
            .get(&job.target.channel)
            .and_then(|c| c.fallback.as_deref())
            .and_then(|f| self.config.channels.get(f))
        else {
            let sev = if job.alert.severity == Severity::Critical {
                "a critical alert"
            } else {
                "the alert"
            };
            return Ok(vec![self.entry(
                job,
                now,
                Action::Suppress,
                format!(
                    "channel {} has no fallback: {sev} was not delivered on {}",
                    job.target.channel, job.target.channel
                ),
            )]);
        };
        let (mut targets, _problems) = tocsin_core::routing::expand(
            &self.config,
            &tocsin_core::config::Notify {
                channel: fb.name.clone(),
                to: Vec::new(),
            },
            now,
        );
        if targets.is_empty() {
            targets.push(Target {
                channel: fb.name.clone(),
                channel_kind: fb.kind,
                target: fb.name.clone(),
                address: None,
            });
        }
        let mut out = Vec::new();
        for t in targets {
            let mut next = job.clone();
            next.delivery_id = stable_id(&["fallback", &job.delivery_id, &t.channel, &t.target]);
            next.target = t.clone();
            next.created_at = now;
            self.bus.publish_delivery(&next).await?;
            let mut e = self.entry(
                job,
                now,
                Action::Notify,
                format!(
                    "fallback from {} after its failure: {reason}",
                    job.target.channel
                ),
            );
            e.channel = Some(t.channel);
            e.target = Some(t.target);
            out.push(e);
        }
        Ok(out)
    }

    /// Takes the throttle window of `key` for a message now: `None` when it was free (send), or when
    /// the message must wait: the end of the window another message holds.
    async fn take_window(
        &self,
        key: &str,
        job: &DeliveryJob,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<Option<DateTime<Utc>>, DeliverError> {
        let end = now + TimeDelta::from_std(window).unwrap_or(TimeDelta::minutes(1));
        let claim = DedupRecord {
            event_id: throttle::window_id(key),
            status: ClaimStatus::InProgress,
            expires_at: end,
            in_progress_until: end,
            transport: job.target.channel.clone(),
            claimed_at: now,
            alert_id: Some(job.alert_id.clone()),
            outcome: None,
        };
        Ok(match self.store.claim_event(&claim).await? {
            Claim::Claimed | Claim::TookOver(_) => None,
            Claim::Duplicate(taken) => Some(taken.expires_at.min(taken.in_progress_until).max(now)),
        })
    }

    /// Holds an SMS job whose recipient had a message in the current window, and makes sure a flush
    /// is scheduled for the window's end. `None`: not throttled, send it.
    async fn hold_if_throttled(
        &self,
        job: &DeliveryJob,
        claim: &DedupRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<AuditEntry>>, DeliverError> {
        let Some(t) = &self.throttle else {
            return Ok(None);
        };
        if job.target.channel_kind != tocsin_core::config::ChannelKind::Sms {
            return Ok(None);
        }
        let key = throttle::key(&job.target);
        let Some(due) = self.take_window(&key, job, now, t.window).await? else {
            return Ok(None);
        };
        t.hold.hold(&key, job).await?;
        t.timer
            .schedule_flush(&Flush {
                channel: job.target.channel.clone(),
                key,
                due,
            })
            .await?;
        let e = self.entry(
            job,
            now,
            Action::Suppress,
            format!(
                "sms to {} throttled (one message per {}s per recipient): held for one summary at {}",
                job.target.target,
                t.window.as_secs(),
                format_time(&due)
            ),
        );
        self.store.append_audit(std::slice::from_ref(&e)).await?;
        let mut done = claim.clone();
        done.status = ClaimStatus::Completed;
        done.outcome = Some(format!("held for the summary at {}", format_time(&due)));
        self.store.complete_event(&done).await?;
        Ok(Some(vec![e]))
    }

    /// Runs a throttle flush: sends what is held under `flush.key` as one message (the message
    /// itself when one is held, a summary when several are), then releases them. Nothing held
    /// (a flush fired twice) sends nothing; a window taken again reschedules the flush for its end.
    pub async fn flush(
        &self,
        flush: &Flush,
        deadline_left: Duration,
    ) -> Result<Vec<AuditEntry>, DeliverError> {
        let Some(t) = &self.throttle else {
            return Err(DeliverError::NoThrottle(flush.key.clone()));
        };
        let now = self.clock.now();
        let mut held = t.hold.held(&flush.key).await?;
        let Some(first) = held.first().cloned() else {
            return Ok(Vec::new());
        };
        if let Some(due) = self.take_window(&flush.key, &first, now, t.window).await? {
            t.timer
                .schedule_flush(&Flush {
                    due,
                    ..flush.clone()
                })
                .await?;
            return Ok(Vec::new());
        }
        // The most severe firing message leads (its alert carries the summary's audit and ack link).
        held.sort_by_key(|j| {
            (
                matches!(j.kind, DeliveryKind::Resolve | DeliveryKind::Acknowledge),
                j.alert.severity,
                j.created_at,
            )
        });
        let ids: Vec<&str> = held.iter().map(|j| j.delivery_id.as_str()).collect();
        let mut lead = held[0].clone();
        lead.delivery_id = stable_id(&[&["sms-summary", flush.key.as_str()], &ids[..]].concat());
        lead.created_at = now;
        let links = self.links(&lead, now);
        // One held message goes out as itself (its own claim was spent holding it); several, as one.
        let message = if held.len() == 1 {
            render::render(
                lead.target.channel_kind,
                &Context {
                    job: &lead,
                    links: &links,
                    now,
                },
            )
        } else {
            let firing = matches!(lead.kind, DeliveryKind::Trigger | DeliveryKind::Escalation);
            let ack = links.ack.as_deref().filter(|_| firing);
            render::sms::summary(&held, ack)
        };
        let mut entries = self.deliver_as(&lead, deadline_left, Some(message)).await?;
        let told: Vec<AuditEntry> = held
            .iter()
            .map(|j| {
                self.entry(
                    j,
                    now,
                    Action::Notify,
                    format!(
                        "held sms sent to {} in one message of {} (delivery {})",
                        j.target.target,
                        held.len(),
                        lead.delivery_id
                    ),
                )
            })
            .collect();
        self.store.append_audit(&told).await?;
        t.hold.release(&flush.key, &held).await?;
        entries.extend(told);
        Ok(entries)
    }

    fn entry(
        &self,
        job: &DeliveryJob,
        at: DateTime<Utc>,
        action: Action,
        reason: String,
    ) -> AuditEntry {
        AuditEntry {
            at,
            alert: job.alert_id.clone(),
            alarm_name: job.alert.alarm_name.clone(),
            action,
            reason,
            event_id: None,
            channel: Some(job.target.channel.clone()),
            target: Some(job.target.target.clone()),
            level: job.level,
            severity: job.alert.severity,
            attempt: None,
            told_under: None,
        }
    }
}

/// One invocation: every delivery job of an SNS event, in order, or a throttle's flush, within
/// `left`. Logs one JSON line per audit entry; answers what it did (`{"delivered": n}`, `{"flushed":
/// n}`).
pub async fn handle<S, B, N, C, Z, H, T>(
    deliverer: &Deliverer<S, B, N, C, Z, H, T>,
    input: Input,
    left: Duration,
) -> Result<serde_json::Value, FunctionError>
where
    S: AlertStore,
    B: Bus,
    N: Notifier,
    C: Clock,
    Z: Sleeper,
    H: HoldStore,
    T: FlushTimer,
{
    match input {
        Input::Flush {
            flush,
            trace_header,
        } => {
            let entries =
                tocsin_lambda::trace::carrying(trace_header, deliverer.flush(&flush, left)).await?;
            log_entries(&entries);
            Ok(serde_json::json!({ "flushed": entries.len() }))
        }
        Input::Sns(mut sns) => {
            // The channel's send events (SES's or End User Messaging's, through the stack's topic)
            // come to the same function as its jobs: each is recorded as a receipt, then the jobs
            // are delivered.
            let mut receipts = 0;
            let mut events = Vec::new();
            sns.records
                .retain(|r| match receipt::read_send_event(&r.sns.message) {
                    Some(event) => {
                        events.push(event);
                        false
                    }
                    None => true,
                });
            for event in events {
                match event {
                    Ok(Some(r)) => {
                        deliverer
                            .record_receipt(&r)
                            .await
                            .map_err(DeliverError::Store)?;
                        receipts += 1;
                    }
                    Ok(None) => {}
                    Err(why) => return Err(FunctionError::Permanent(why)),
                }
            }
            let jobs: Vec<DeliveryJob> = tocsin_lambda::sns::messages(&sns, "a delivery job")?;
            for job in &jobs {
                let entries = deliverer.deliver(job, left).await?;
                log_entries(&entries);
            }
            Ok(serde_json::json!({ "delivered": jobs.len(), "receipts": receipts }))
        }
    }
}

/// One JSON log line per audit entry written, like the router's and escalate's: the alert id and what
/// happened (inside the runtime's span, so with the request id and the trace id). No target, reason or
/// message text.
fn log_entries(entries: &[AuditEntry]) {
    // A job for a destination the config does not give the channel: one EMF line, which the
    // template's DestinationRefusedAlarm watches.
    let refused = entries
        .iter()
        .filter(|e| e.reason.starts_with(REFUSED))
        .count();
    if refused > 0 {
        println!(
            "{}",
            tocsin_lambda::trace::emf_line(serde_json::json!({
                "_aws": {"Timestamp": Utc::now().timestamp_millis(), "CloudWatchMetrics": [{
                    "Namespace": "tocsin", "Dimensions": [[]],
                    "Metrics": [{"Name": "DestinationRefused", "Unit": "Count"}]}]},
                "DestinationRefused": refused,
            }))
        );
    }
    for e in entries {
        tracing::info!(
            alert = %e.alert,
            action = e.action.as_str(),
            channel = e.channel.as_deref().unwrap_or(""),
            level = e.level.unwrap_or(0),
            "delivery"
        );
    }
}
