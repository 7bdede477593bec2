//! The status pages' cache: whatever the request rate and however many sandboxes Lambda runs, the
//! store is read to build an audience's page at most once per [`STATUS_TTL`]. The status page is
//! public, and customers refresh it hardest during an outage, when paging needs the table and the
//! account's concurrency most.
//!
//! Two levels. Each sandbox keeps the pages it served in memory; past their age it reads the page
//! the sandboxes share in the store ([`StatusSnapshots`], one item per audience). When that one is
//! older than [`STATUS_TTL`] too, the sandbox claims the refresh (one conditional write: one claim
//! wins per interval among all sandboxes), builds the page from the alerts, and stores it under its
//! claim. A sandbox that loses the claim serves the shared page while it is under twice the interval
//! old, reading the store again [`STATUS_RECHECK`] later; past that (the refresher died, or the page
//! is too large to share) it builds its own page, for itself, as each sandbox did before pages were
//! shared. So:
//!
//! ```text
//!  sandbox A                   store (STATUS#customer)             sandbox B
//!  memory: none / too old
//!  read the shared page  ----> older than 30 s
//!  claim at T            ----> no claim since T-30s: A wins
//!                                                         <----- memory too old; read: older
//!                                                         <----- claim at T+0.2s: lost
//!                                                                serve the old page, look again
//!                                                                in 2 s
//!  build (3 list queries, audit reads)
//!  store under claim T   ----> stored (still A's claim)
//!                                                         <----- read: built at T, fresh: serve it
//!                                                                from memory until T+30s
//! ```
//!
//! Store reads per interval and audience: one build, plus one small read per sandbox (the API's
//! reserved concurrency caps the sandboxes). `tocsin serve` asks for no cache (a zero TTL): every
//! request builds its page.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use tocsin_core::ports::{SnapshotPut, StatusSnapshot, StatusSnapshots, StoreError};
use tocsin_core::status::Audience;

/// How long a built status page is served before the store is read to build it again, by any
/// sandbox.
pub const STATUS_TTL: Duration = Duration::seconds(30);

/// How long a sandbox that lost the refresh claim serves the page it has before looking at the
/// store again (the winner is building: usually well under a second).
pub const STATUS_RECHECK: Duration = Duration::seconds(2);

/// The status pages this sandbox served lately, over the pages all sandboxes share.
#[derive(Debug)]
pub struct StatusCache {
    ttl: Duration,
    pages: Mutex<Vec<Kept>>,
    builds: AtomicU64,
}

/// A page held in memory: the snapshot and when this sandbox last looked at the store for it.
#[derive(Debug, Clone)]
struct Kept {
    audience: Audience,
    page: StatusSnapshot,
    checked_at: DateTime<Utc>,
}

impl Default for StatusCache {
    fn default() -> Self {
        StatusCache::with_ttl(STATUS_TTL)
    }
}

impl StatusCache {
    /// A cache that serves a page for `ttl` (zero: never, and nothing is shared; `tocsin serve`,
    /// where a stale page would only confuse).
    pub fn with_ttl(ttl: Duration) -> Self {
        StatusCache {
            ttl,
            pages: Mutex::new(Vec::new()),
            builds: AtomicU64::new(0),
        }
    }

    /// How many pages this sandbox built from the store so far (each: three bounded queries and an
    /// audit read per incident shown).
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// The page of `audience` at `now`: from memory, from the shared snapshot, or built by `build`
    /// (which makes the snapshot of `now`) as the module header says.
    pub(crate) async fn page<S, E, F, Fut>(
        &self,
        store: &S,
        audience: Audience,
        now: DateTime<Utc>,
        build: F,
    ) -> Result<StatusSnapshot, E>
    where
        S: StatusSnapshots,
        E: From<StoreError>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<StatusSnapshot, E>>,
    {
        if self.ttl <= Duration::zero() {
            return self.built(build).await;
        }
        if let Some(kept) = self.kept(audience) {
            let looked_lately = now >= kept.checked_at && now - kept.checked_at < STATUS_RECHECK;
            if self.fresh(&kept.page, now) || looked_lately {
                return Ok(kept.page);
            }
        }
        let key = audience.as_str();
        let shared = store.status_snapshot(key).await?;
        if let Some(page) = shared.as_ref().filter(|p| self.fresh(p, now)) {
            self.keep(audience, page.clone(), now);
            return Ok(page.clone());
        }
        if store.claim_status_refresh(key, now, self.ttl).await? {
            let page = self.built(build).await?;
            match store.put_status_snapshot(key, &page).await {
                Ok(SnapshotPut::Stored | SnapshotPut::Superseded) => {}
                Ok(SnapshotPut::TooLarge) => tracing::warn!(
                    audience = key,
                    bytes = page.size(),
                    "status page too large to share; each sandbox builds its own"
                ),
                // The page is built: serve it; the next claim stores one.
                Err(e) => tracing::warn!(audience = key, error = %e, "status page not shared"),
            }
            self.keep(audience, page.clone(), now);
            return Ok(page);
        }
        // Another sandbox is refreshing it: its last page will do for a moment.
        if let Some(page) = shared.filter(|p| now - p.built_at < self.ttl * 2) {
            self.keep(audience, page.clone(), now);
            return Ok(page);
        }
        let page = self.built(build).await?;
        self.keep(audience, page.clone(), now);
        Ok(page)
    }

    async fn built<E, F, Fut>(&self, build: F) -> Result<StatusSnapshot, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<StatusSnapshot, E>>,
    {
        let page = build().await?;
        self.builds.fetch_add(1, Ordering::Relaxed);
        Ok(page)
    }

    /// Whether a page is young enough to serve (one built "later" by a sandbox whose clock is
    /// ahead counts as new).
    fn fresh(&self, page: &StatusSnapshot, now: DateTime<Utc>) -> bool {
        now - page.built_at < self.ttl
    }

    fn kept(&self, audience: Audience) -> Option<Kept> {
        let pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pages.iter().find(|k| k.audience == audience).cloned()
    }

    fn keep(&self, audience: Audience, page: StatusSnapshot, now: DateTime<Utc>) {
        let mut pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pages.retain(|k| k.audience != audience);
        pages.push(Kept {
            audience,
            page,
            checked_at: now,
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tocsin_core::ports::STATUS_SNAPSHOT_MAX_BYTES;
    use tocsin_local::{FaultMode, Faults, FaultyStore, MemoryStore};

    fn t0() -> DateTime<Utc> {
        "2026-11-20T02:10:00Z".parse().unwrap()
    }

    fn store() -> FaultyStore<MemoryStore> {
        FaultyStore {
            inner: MemoryStore::new(),
            faults: Faults::new(),
        }
    }

    async fn serve(
        cache: &StatusCache,
        store: &FaultyStore<MemoryStore>,
        now: DateTime<Utc>,
        html_bytes: usize,
    ) -> Result<StatusSnapshot, StoreError> {
        cache
            .page(store, Audience::Customer, now, || async move {
                Ok(StatusSnapshot {
                    built_at: now,
                    json: "{}".into(),
                    html: "x".repeat(html_bytes),
                })
            })
            .await
    }

    #[tokio::test]
    async fn a_page_too_large_to_share_is_built_by_each_sandbox_once_per_interval() {
        let store = store();
        let (a, b) = (StatusCache::default(), StatusCache::default());
        let big = STATUS_SNAPSHOT_MAX_BYTES;
        for i in 0..100 {
            let now = t0() + Duration::milliseconds(i * 100);
            serve(&a, &store, now, big).await.unwrap();
            serve(&b, &store, now, big).await.unwrap();
        }
        assert_eq!((a.builds(), b.builds()), (1, 1));
        assert_eq!(store.inner.status_snapshot("customer").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_page_that_could_not_be_stored_is_served_all_the_same() {
        let store = store();
        let a = StatusCache::default();
        // Calls: read the shared page, claim, store (fails).
        store.faults.fail_at(2, FaultMode::Error);
        let page = serve(&a, &store, t0(), 10).await.unwrap();
        assert_eq!(page.html.len(), 10);
        assert_eq!(a.builds(), 1);
        // The next interval's claim stores one.
        store.faults.clear();
        serve(&a, &store, t0() + STATUS_TTL, 10).await.unwrap();
        assert_eq!(
            store
                .inner
                .status_snapshot("customer")
                .await
                .unwrap()
                .map(|p| p.built_at),
            Some(t0() + STATUS_TTL)
        );
    }

    #[tokio::test]
    async fn a_store_that_cannot_be_read_fails_the_request_and_builds_nothing() {
        let store = store();
        let a = StatusCache::default();
        store.faults.fail_at(0, FaultMode::Error);
        assert!(matches!(
            serve(&a, &store, t0(), 10).await,
            Err(StoreError::Backend(_))
        ));
        store.faults.fail_at(1, FaultMode::Error);
        assert!(matches!(
            serve(&a, &store, t0(), 10).await,
            Err(StoreError::Backend(_))
        ));
        assert_eq!(a.builds(), 0);
    }

    #[tokio::test]
    async fn a_page_from_a_sandbox_whose_clock_is_ahead_counts_as_new() {
        let store = store();
        let (a, b) = (StatusCache::default(), StatusCache::default());
        serve(&a, &store, t0() + Duration::seconds(5), 10)
            .await
            .unwrap();
        serve(&b, &store, t0(), 10).await.unwrap();
        assert_eq!((a.builds(), b.builds()), (1, 0));
    }
}
