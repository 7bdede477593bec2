//! The `AlertStore` contract suite on the memory store (the DynamoDB store runs the same suite against
//! moto in `crates/aws/tests`).

#[tokio::test]
async fn memory_store_keeps_the_alert_store_contract() {
    let store = tocsin_local::MemoryStore::new();
    tocsin_core::contract::alert_store(&store, "mem").await;
}

#[tokio::test]
async fn memory_hold_keeps_the_hold_store_contract() {
    let hold = tocsin_local::MemoryHold::new();
    tocsin_core::throttle::contract::run(&hold, "mem").await;
}
