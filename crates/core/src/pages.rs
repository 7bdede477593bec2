//! Joining the pages of paged AWS Health events where no process lives long enough to hold them: the
//! ingest function on AWS. A [`PageStore`] keeps each page and the set of page numbers seen per event
//! (keyed by [`HealthPage::key`], the whole event's `event_id`); a [`SweepTimer`] publishes what came
//! of an event that never completes. The join itself is [`crate::source::join_pages`], the step
//! `tocsin replay`'s in-memory `Reassembly` uses, so both make the same alert.
//!
//! ```text
//! ingest A  page 2 of 3  add_page -> Waiting { first }   -> sweep scheduled for now + 15 min
//! ingest B  page 1 of 3  add_page -> Waiting             -> held
//! ingest C  page 3 of 3  add_page -> Complete            -> pages() joined, published, mark_joined
//! ingest D  page 1 again add_page -> Published           -> nothing (a redelivery)
//! +15 min   sweep        sweep()  -> Done                -> nothing
//! ```
//!
//! **Exactly one completion.** The set of page numbers is one item (one entry locally) changed by one
//! atomic update per page that adds the page's number and returns the set as it was before. Updates of
//! one item apply one after the other, so of the pages of an event, exactly one update is the one that
//! adds the last missing number: two concurrent "last" pages cannot both see the set incomplete before
//! them and complete after them. A redelivered page (or a retried invocation of the one that completed)
//! finds the set already complete and, until the event is marked published, is told `Complete` again:
//! it publishes the same joined alert, which is harmless, because the router deduplicates on
//! `event_id`. That retry is what makes a crash between completing and publishing safe.
//!
//! **Completion or sweep, never both.** The joined alert and the partial one share the event's
//! `event_id`, so whichever reached the router first would win and the other be a `dedup`; the store
//! makes sure only one kind is ever published. The sweep closes an event as swept only while its set is
//! incomplete (conditional on it), and a page whose update finds the event swept is told `Swept`, not
//! `Complete`; once the set is complete the sweep can no longer close it and publishes the joined alert
//! itself if the completing invocation has not yet marked it published. The set only grows, so these
//! two cannot both hold: the partial alert goes out only for an event that had not completed when its
//! sweep ran, and a page arriving after that is logged as too late, not joined.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::stable_id;
use crate::ports::{SchedulerError, StoreError};
use crate::source::HealthPage;

/// How long after an event's first page its sweep runs: pages of one event are sent together, so an
/// event still missing pages after this is missing them for good.
pub const SWEEP_AFTER: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How long the store keeps an event's pages and state (DynamoDB's TTL): well past the sweep.
pub const PAGE_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// What adding one page found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Pages are still missing.
    Waiting {
        /// Distinct pages held now, this one included.
        received: u32,
        /// How many pages the event has (as its first stored page said).
        total: u32,
        /// No other page of the event was held before this one: the caller schedules the sweep. A
        /// redelivered first page is told `first` again (the sweep's name is idempotent), so a crash
        /// between adding it and scheduling still gets the sweep scheduled on retry.
        first: bool,
    },
    /// Every page is held and the event is not yet marked published: join, publish, then
    /// [`PageStore::mark_joined`].
    Complete {
        /// This page brought the last missing number (exactly one page of an event does); otherwise
        /// the set was complete already (a redelivery, or a retry of the completing invocation).
        by_this_page: bool,
    },
    /// The joined alert has been published already: nothing to do.
    Published,
    /// The sweep published the event without this page (it came too late to be joined).
    Swept,
}

/// What the sweep of an event may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepClaim {
    /// Publish what the store holds: the event was incomplete and is now closed as swept (or was by an
    /// earlier run of this sweep: a retry), or it is complete and not yet marked published (its
    /// completing invocation has not finished; the same joined alert twice is harmless).
    Publish,
    /// The joined alert was published: nothing to do.
    Done,
    /// Nothing is held under the key (expired, or never stored).
    Unknown,
}

/// Where the pages of paged Health events wait for each other. Keys are [`HealthPage::key`].
pub trait PageStore: Send + Sync {
    /// Holds `page` (a page number held already keeps its first copy) and adds its number to the
    /// event's set, atomically, saying what the set was (see [`Added`]). Safe to repeat.
    fn add_page(&self, page: &HealthPage)
    -> impl Future<Output = Result<Added, StoreError>> + Send;
    /// The pages held under `key`, in page order; read after every page counted so far was written
    /// (strongly consistent), so the completing page sees all of them.
    fn pages(&self, key: &str) -> impl Future<Output = Result<Vec<HealthPage>, StoreError>> + Send;
    /// Marks the event published as joined, so that redelivered pages and the sweep do nothing. A
    /// swept event stays swept; marking again is success.
    fn mark_joined(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The sweep's claim: closes the event as swept if its set is incomplete (see [`SweepClaim`]).
    fn sweep(&self, key: &str) -> impl Future<Output = Result<SweepClaim, StoreError>> + Send;
}

/// Schedules the sweep of an event: EventBridge Scheduler invoking the ingest function itself with
/// `{"health_pages_flush": {"key": ...}}` on AWS; a list that the caller's clock runs locally.
pub trait SweepTimer: Send + Sync {
    /// Schedules the sweep of `key` at `at` under [`sweep_name`]; a name already scheduled is success.
    fn schedule_sweep(
        &self,
        key: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), SchedulerError>> + Send;
}

/// The input of a sweep's invocation, `{"health_pages_flush": {"key": ...}}`: what the sweep timer
/// writes and the ingest function reads, one type for both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepInput {
    /// The sweep.
    pub health_pages_flush: SweepRequest,
}

/// Which event a sweep is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    /// The event's key ([`crate::source::HealthPage::key`]).
    pub key: String,
}

impl SweepInput {
    /// The sweep of `key`.
    pub fn new(key: &str) -> Self {
        SweepInput {
            health_pages_flush: SweepRequest {
                key: key.to_string(),
            },
        }
    }
}

/// The sweep timer's idempotent name for an event: `tocsin-hp-<32 hex>`, within Scheduler's 64
/// characters whatever the key.
pub fn sweep_name(key: &str) -> String {
    let id = stable_id(&["health-pages-sweep", key]);
    format!("tocsin-hp-{}", &id[..32.min(id.len())])
}

/// The contract every [`PageStore`] keeps; run on each adapter (keys under `prefix`).
pub mod contract {
    #![allow(clippy::unwrap_used)] // test code: a failed check is a panic that names it

    use super::*;
    use crate::source::parse_all;

    /// Page `page` of `total` of one made-up event (`event`), with two entities of its own.
    pub fn page(event: &str, page: u32, total: u32) -> HealthPage {
        let entity =
            |i: u32| format!(r#"{{"entityValue": "i-{event}-{page}-{i}", "status": "IMPAIRED"}}"#);
        let json = format!(
            r#"{{"version": "0", "id": "{event}-{page}", "detail-type": "AWS Health Event",
            "source": "aws.health", "account": "111122223333", "time": "2026-11-20T14:00:10Z",
            "region": "us-east-1", "resources": [],
            "detail": {{"eventArn": "arn:aws:health:us-east-1::event/EC2/X/{event}",
              "service": "EC2", "communicationId": "c0ffee-{page}",
              "lastUpdatedTime": "Fri, 20 Nov 2026 14:00:00 GMT", "statusCode": "open",
              "eventRegion": "us-east-1", "eventTypeCode": "AWS_EC2_OPERATIONAL_ISSUE",
              "eventTypeCategory": "issue", "affectedEntities": [{}, {}],
              "page": "{page}", "totalPages": "{total}"}}}}"#,
            entity(1),
            entity(2)
        );
        let mut parsed = parse_all(json.as_bytes()).unwrap();
        assert_eq!(parsed.pages.len(), 1, "a page, not an alert");
        parsed.pages.remove(0)
    }

    /// Runs every check but the concurrent one.
    pub async fn run<P: PageStore>(p: &P, prefix: &str) {
        pages_in_any_order_complete_once_and_come_back_in_page_order(p, prefix).await;
        a_repeated_page_is_held_once_and_told_complete_until_marked(p, prefix).await;
        the_sweep_closes_an_incomplete_event_and_late_pages_are_told_so(p, prefix).await;
        the_sweep_after_completion_publishes_only_until_marked(p, prefix).await;
        events_are_separate_and_an_unknown_key_is_unknown(p, prefix).await;
    }

    async fn pages_in_any_order_complete_once_and_come_back_in_page_order<P: PageStore>(
        p: &P,
        prefix: &str,
    ) {
        let ev = format!("{prefix}-order");
        let pages: Vec<HealthPage> = (1..=3).map(|n| page(&ev, n, 3)).collect();
        let key = pages[0].key.clone();
        assert_eq!(
            p.add_page(&pages[1]).await.unwrap(),
            Added::Waiting {
                received: 1,
                total: 3,
                first: true
            }
        );
        assert_eq!(
            p.add_page(&pages[2]).await.unwrap(),
            Added::Waiting {
                received: 2,
                total: 3,
                first: false
            }
        );
        assert_eq!(
            p.add_page(&pages[0]).await.unwrap(),
            Added::Complete { by_this_page: true }
        );
        let back = p.pages(&key).await.unwrap();
        assert_eq!(back, pages, "every page, whole, in page order");
        p.mark_joined(&key).await.unwrap();
        assert_eq!(p.add_page(&pages[2]).await.unwrap(), Added::Published);
        p.mark_joined(&key).await.unwrap();
    }

    async fn a_repeated_page_is_held_once_and_told_complete_until_marked<P: PageStore>(
        p: &P,
        prefix: &str,
    ) {
        let ev = format!("{prefix}-repeat");
        let (one, two) = (page(&ev, 1, 2), page(&ev, 2, 2));
        let first = Added::Waiting {
            received: 1,
            total: 2,
            first: true,
        };
        assert_eq!(p.add_page(&one).await.unwrap(), first);
        // A redelivered first page: still first (the sweep's scheduling is retried), nothing more held.
        assert_eq!(p.add_page(&one).await.unwrap(), first);
        assert_eq!(p.pages(&one.key).await.unwrap().len(), 1);
        assert_eq!(
            p.add_page(&two).await.unwrap(),
            Added::Complete { by_this_page: true }
        );
        // The completing invocation retried before it marked: told to publish again.
        assert_eq!(
            p.add_page(&two).await.unwrap(),
            Added::Complete {
                by_this_page: false
            }
        );
        assert_eq!(p.pages(&one.key).await.unwrap(), vec![one.clone(), two]);
        p.mark_joined(&one.key).await.unwrap();
        assert_eq!(p.add_page(&one).await.unwrap(), Added::Published);
    }

    async fn the_sweep_closes_an_incomplete_event_and_late_pages_are_told_so<P: PageStore>(
        p: &P,
        prefix: &str,
    ) {
        let ev = format!("{prefix}-swept");
        let pages: Vec<HealthPage> = (1..=3).map(|n| page(&ev, n, 3)).collect();
        let key = pages[0].key.clone();
        p.add_page(&pages[0]).await.unwrap();
        p.add_page(&pages[2]).await.unwrap();
        assert_eq!(p.sweep(&key).await.unwrap(), SweepClaim::Publish);
        // A retried sweep publishes again (its first run may have failed to).
        assert_eq!(p.sweep(&key).await.unwrap(), SweepClaim::Publish);
        assert_eq!(
            p.add_page(&pages[1]).await.unwrap(),
            Added::Swept,
            "the last page after the sweep is too late"
        );
        // Marking joined does not undo the sweep.
        p.mark_joined(&key).await.unwrap();
        assert_eq!(p.add_page(&pages[1]).await.unwrap(), Added::Swept);
    }

    async fn the_sweep_after_completion_publishes_only_until_marked<P: PageStore>(
        p: &P,
        prefix: &str,
    ) {
        let ev = format!("{prefix}-complete");
        let (one, two) = (page(&ev, 1, 2), page(&ev, 2, 2));
        p.add_page(&one).await.unwrap();
        p.add_page(&two).await.unwrap();
        assert_eq!(
            p.sweep(&one.key).await.unwrap(),
            SweepClaim::Publish,
            "complete, not yet published: the sweep publishes the joined alert"
        );
        assert_eq!(
            p.add_page(&two).await.unwrap(),
            Added::Complete {
                by_this_page: false
            },
            "a sweep of a complete event does not close it as swept"
        );
        p.mark_joined(&one.key).await.unwrap();
        assert_eq!(p.sweep(&one.key).await.unwrap(), SweepClaim::Done);
    }

    async fn events_are_separate_and_an_unknown_key_is_unknown<P: PageStore>(p: &P, prefix: &str) {
        let (a, b) = (
            page(&format!("{prefix}-a"), 1, 2),
            page(&format!("{prefix}-b"), 2, 2),
        );
        assert_ne!(a.key, b.key);
        p.add_page(&a).await.unwrap();
        assert!(matches!(
            p.add_page(&b).await.unwrap(),
            Added::Waiting { first: true, .. }
        ));
        assert_eq!(p.pages(&a.key).await.unwrap(), vec![a]);
        let nothing = page(&format!("{prefix}-never"), 1, 2).key;
        assert_eq!(p.sweep(&nothing).await.unwrap(), SweepClaim::Unknown);
        assert!(p.pages(&nothing).await.unwrap().is_empty());
    }

    /// The pages of the race: `n` pages of one event, highest first (so that the last spawned is
    /// not the likely completer). The caller adds them concurrently (core has no runtime) and hands
    /// the outcomes to [`check_race`].
    pub fn race_pages(prefix: &str, n: u32) -> Vec<HealthPage> {
        let ev = format!("{prefix}-race");
        (1..=n).rev().map(|i| page(&ev, i, n)).collect()
    }

    /// The race's outcomes, pages added concurrently, each once: exactly one was told it completed
    /// the event and exactly one that it was first, and all `n` pages come back.
    pub async fn check_race<P: PageStore>(p: &P, prefix: &str, n: u32, outcomes: &[Added]) {
        assert!(
            n >= 2 && outcomes.len() as u32 == n,
            "{n} pages, {outcomes:?}"
        );
        let count = |f: &dyn Fn(&Added) -> bool| outcomes.iter().filter(|a| f(a)).count();
        let completed = count(&|a| *a == Added::Complete { by_this_page: true });
        let first = count(&|a| matches!(a, Added::Waiting { first: true, .. }));
        let waiting = count(&|a| matches!(a, Added::Waiting { first: false, .. }));
        assert_eq!(completed, 1, "exactly one completion: {outcomes:?}");
        assert_eq!(first, 1, "exactly one first page: {outcomes:?}");
        assert_eq!(waiting as u32, n - 2, "{outcomes:?}");
        let key = race_pages(prefix, n)[0].key.clone();
        assert_eq!(p.pages(&key).await.unwrap().len() as u32, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_name_is_the_same_for_one_event_and_fits_scheduler() {
        let key = "f".repeat(200);
        let name = sweep_name(&key);
        assert_eq!(name, sweep_name(&key));
        assert!(name.len() <= 64 && name.starts_with("tocsin-hp-"), "{name}");
        assert_ne!(name, sweep_name("another event"));
    }
}
