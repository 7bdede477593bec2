//! The per-recipient SMS throttle: at most one message a recipient per window (a minute by default);
//! what comes in between is held and goes out as one summary when the window ends.
//!
//! ```text
//! 02:10:05  job A for +44..01  window claim wins (expires 02:11:05)  -> A sent
//! 02:10:20  job B for +44..01  window taken                          -> B held, flush scheduled for 02:11:05
//! 02:10:40  job C for +44..01  window taken                          -> C held, same flush (same name)
//! 02:11:05  flush              window claim wins (expires 02:12:05)  -> "2 alerts: ..." sent, B and C released
//! ```
//!
//! The window is a dedup claim (the store's one conditional write), so two deliver invocations racing
//! for one recipient cannot both send. Held jobs live in a [`HoldStore`] until the summary that carries
//! them has been sent: a flush that fails leaves them held and is retried by the timer's platform, and a
//! summary sent twice is one delivery id, claimed like any job. A flush that finds the window taken
//! again (a message went out in the meantime) schedules itself for that window's end.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::stable_id;
use crate::ports::{SchedulerError, StoreError};
use crate::record::{DeliveryJob, Target};

/// The default window: one message a minute a recipient.
pub const DEFAULT_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// The throttle key of a target: its channel and the address it is reached at (two people sharing a
/// phone share its throttle; one person on two SMS channels has two).
pub fn key(target: &Target) -> String {
    let to = target.address.as_deref().unwrap_or(&target.target);
    format!("sms#{}#{to}", target.channel)
}

/// The claim id of a key's current window.
pub fn window_id(key: &str) -> String {
    format!("throttle#{key}")
}

/// What a flush timer carries: whose held messages to send, and when their window ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flush {
    /// The channel (the deliver function that owns it runs the flush).
    pub channel: String,
    /// The throttle key ([`key`]).
    pub key: String,
    /// When the window that held them ends.
    #[serde(with = "crate::model::rfc3339")]
    pub due: DateTime<Utc>,
}

impl Flush {
    /// The timer's idempotent name: one flush per key and window end, however many jobs were held.
    /// `tocsin-sms-<32 hex>`, within EventBridge Scheduler's 64 characters.
    pub fn timer_name(&self) -> String {
        let id = stable_id(&["sms-flush", &self.key, &self.due.timestamp().to_string()]);
        format!("tocsin-sms-{}", &id[..32.min(id.len())])
    }
}

/// The SMS throttle's parts: where held messages wait, how flushes are scheduled, the window.
pub struct Throttle<H, T> {
    /// Held messages.
    pub hold: H,
    /// Flush timers.
    pub timer: T,
    /// At most one message a recipient per this long.
    pub window: std::time::Duration,
}

/// Where held messages wait for their summary.
pub trait HoldStore: Send + Sync {
    /// Holds `job` under `key`. Holding the same delivery id again keeps one copy.
    fn hold(
        &self,
        key: &str,
        job: &DeliveryJob,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The jobs held under `key`, oldest first.
    fn held(&self, key: &str) -> impl Future<Output = Result<Vec<DeliveryJob>, StoreError>> + Send;
    /// Forgets `jobs` (sent in a summary) under `key`; others held meanwhile stay.
    fn release(
        &self,
        key: &str,
        jobs: &[DeliveryJob],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Schedules a flush (EventBridge Scheduler invoking the channel's own deliver function on AWS; the
/// caller's loop locally).
pub trait FlushTimer: Send + Sync {
    /// Schedules `flush` at `flush.due` under [`Flush::timer_name`]; a name already scheduled is success.
    fn schedule_flush(
        &self,
        flush: &Flush,
    ) -> impl Future<Output = Result<(), SchedulerError>> + Send;
}

/// The contract every [`HoldStore`] keeps; run on each adapter (keys under `prefix`).
pub mod contract {
    #![allow(clippy::unwrap_used)] // test code: a failed check is a panic that names it

    use super::*;
    use crate::config::ChannelKind;
    use crate::record::{DeliveryKind, Status};

    fn job(id: &str, minute: i64) -> DeliveryJob {
        let record = crate::contract::record(&format!("alert-{id}"), "fp", None);
        DeliveryJob {
            delivery_id: id.to_string(),
            alert_id: record.id.clone(),
            kind: DeliveryKind::Trigger,
            target: Target {
                channel: "oncall-sms".into(),
                channel_kind: ChannelKind::Sms,
                target: "alice".into(),
                address: Some("+447700900001".into()),
            },
            level: None,
            alert: record.alert,
            status: Status::Open,
            created_at: DateTime::from_timestamp(1_790_000_000 + minute * 60, 0).unwrap(),
            thread: None,
        }
    }

    /// The delivery ids held under `key`, in order.
    async fn ids<H: HoldStore>(h: &H, key: &str) -> Vec<String> {
        h.held(key)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.delivery_id)
            .collect()
    }

    /// Runs every check.
    pub async fn run<H: HoldStore>(h: &H, prefix: &str) {
        held_jobs_come_back_oldest_first_and_once(h, prefix).await;
        release_forgets_only_the_jobs_named(h, prefix).await;
        keys_are_separate(h, prefix).await;
    }

    async fn held_jobs_come_back_oldest_first_and_once<H: HoldStore>(h: &H, p: &str) {
        let key = format!("{p}-once");
        h.hold(&key, &job("d-2", 2)).await.unwrap();
        h.hold(&key, &job("d-1", 1)).await.unwrap();
        h.hold(&key, &job("d-2", 2)).await.unwrap();
        let ids = ids(h, &key).await;
        assert_eq!(ids, ["d-1", "d-2"], "oldest first, a job held twice once");
        let back = h.held(&key).await.unwrap();
        assert_eq!(back[0], job("d-1", 1), "a held job comes back whole");
    }

    async fn release_forgets_only_the_jobs_named<H: HoldStore>(h: &H, p: &str) {
        let key = format!("{p}-release");
        for (i, id) in ["d-1", "d-2", "d-3"].into_iter().enumerate() {
            h.hold(&key, &job(id, i as i64)).await.unwrap();
        }
        h.release(&key, &[job("d-1", 0), job("d-3", 2)])
            .await
            .unwrap();
        let left = ids(h, &key).await;
        assert_eq!(left, ["d-2"]);
        // Releasing what is already gone is not an error (a retried flush does it).
        h.release(&key, &[job("d-1", 0)]).await.unwrap();
    }

    async fn keys_are_separate<H: HoldStore>(h: &H, p: &str) {
        let (a, b) = (format!("{p}-a"), format!("{p}-b"));
        h.hold(&a, &job("d-1", 0)).await.unwrap();
        assert!(h.held(&b).await.unwrap().is_empty());
        assert_eq!(h.held(&a).await.unwrap().len(), 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelKind;

    #[test]
    fn a_flush_timer_name_is_the_same_for_one_window_and_fits_scheduler() {
        let due = DateTime::from_timestamp(1_790_000_060, 0).unwrap_or_default();
        let f = Flush {
            channel: "oncall-sms".into(),
            key: "sms#oncall-sms#+447700900001".into(),
            due,
        };
        let name = f.timer_name();
        assert_eq!(name, f.clone().timer_name());
        assert!(
            name.len() <= 64 && name.starts_with("tocsin-sms-"),
            "{name}"
        );
        let later = Flush {
            due: due + chrono::TimeDelta::minutes(1),
            ..f
        };
        assert_ne!(name, later.timer_name(), "the next window is another flush");
    }

    #[test]
    fn the_key_is_the_channel_and_the_address_reached() {
        let t = Target {
            channel: "oncall-sms".into(),
            channel_kind: ChannelKind::Sms,
            target: "alice".into(),
            address: Some("+447700900001".into()),
        };
        assert_eq!(key(&t), "sms#oncall-sms#+447700900001");
        let no_address = Target { address: None, ..t };
        assert_eq!(key(&no_address), "sms#oncall-sms#alice");
    }
}
