//! The `AlertStore` contract suite on the memory store (the DynamoDB store runs the same suite against
//! moto in `crates/aws/tests`).

#[tokio::test]
async fn memory_store_keeps_the_alert_store_contract() {
    let store = tocsin_local::MemoryStore::new();
    tocsin_core::contract::alert_store(&store, "mem").await;
}

#[tokio::test]
async fn memory_store_keeps_the_status_snapshots_contract() {
    let store = tocsin_local::MemoryStore::new();
    tocsin_core::contract::status_snapshots(&store, "mem").await;
}

#[tokio::test]
async fn memory_hold_keeps_the_hold_store_contract() {
    let hold = tocsin_local::MemoryHold::new();
    tocsin_core::throttle::contract::run(&hold, "mem").await;
}

#[tokio::test]
async fn memory_pages_keep_the_page_store_contract() {
    let pages = tocsin_local::MemoryPages::new();
    tocsin_core::pages::contract::run(&pages, "mem").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_pages_of_one_event_complete_it_once_in_memory() {
    let pages = tocsin_local::MemoryPages::new();
    let outcomes = race(&pages, "mem", 64).await;
    tocsin_core::pages::contract::check_race(&pages, "mem", 64, &outcomes).await;
}

/// Adds the race's pages, one task each, all at once.
async fn race<P>(pages: &P, prefix: &str, n: u32) -> Vec<tocsin_core::pages::Added>
where
    P: tocsin_core::pages::PageStore + Clone + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for page in tocsin_core::pages::contract::race_pages(prefix, n) {
        let pages = pages.clone();
        tasks.spawn(async move {
            tocsin_core::pages::PageStore::add_page(&pages, &page)
                .await
                .expect("add_page")
        });
    }
    tasks.join_all().await
}
