//! What the DynamoDB tests share: a `DynamoStore` on a fresh, uniquely named table in moto at
//! `AWS_ENDPOINT_URL` (under `scripts/with-moto.sh`), reached directly or through the fault proxy.
//! Without an endpoint a test says it was skipped, unless `TOCSIN_REQUIRE_AWS=1` (as `make test` and
//! the moto script set), where skipping would hide a broken harness, so it fails.

// Each test binary that declares `mod support;` compiles all of it but uses a different part (the
// contract tests no fault, the router race no fault or `Seen`), and would warn about the rest.
#![allow(dead_code)]

pub mod fault_proxy;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use fault_proxy::FaultProxy;
use tocsin_aws::DynamoStore;

/// How a test reaches moto.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Through a `FaultProxy` that forwards one request at a time, so that moto applies each write
    /// atomically as DynamoDB does (see `fault_proxy.rs`); the test can also inject faults there.
    /// Directly otherwise.
    pub through_proxy: bool,
    /// The SDK's default retries (standard mode, 3 attempts); off, one attempt, so that a fault
    /// reaches the store.
    pub sdk_retries: bool,
    /// The functions' retries instead (`tocsin_aws::wiring::retry_config`), as every deployed
    /// function's clients have them.
    pub functions_retry: bool,
}

impl Options {
    /// Straight to moto, with the SDK's default retries: for tests that never send two requests on
    /// one key at once.
    pub const DIRECT: Options = Options {
        through_proxy: false,
        sdk_retries: true,
        functions_retry: false,
    };
    /// Through the one-at-a-time proxy, with the SDK's default retries.
    pub const PROXIED: Options = Options {
        through_proxy: true,
        sdk_retries: true,
        functions_retry: false,
    };
}

/// A store on a fresh table, and what the test may need around it. The proxy, if any, stops when this
/// is dropped.
pub struct Moto {
    /// The store under test.
    pub store: DynamoStore,
    /// The same client as the store's, for reading items the store does not expose.
    pub client: aws_sdk_dynamodb::Client,
    proxy: Option<FaultProxy>,
}

impl Moto {
    /// The proxy between the store and moto.
    ///
    /// # Panics
    /// When the harness was built without `through_proxy`.
    pub fn proxy(&self) -> &FaultProxy {
        self.proxy
            .as_ref()
            .unwrap_or_else(|| panic!("built without through_proxy: there is no fault proxy"))
    }
}

/// The harness for `test` (which also names the table), or None (after saying so) when no endpoint
/// is set. The table is created twice, as two cold starts would, and the proxy has seen nothing yet.
pub async fn moto_table(test: &str, options: Options) -> Option<Moto> {
    let endpoint = tocsin_aws::emulator::endpoint(test)?;
    let proxy = if options.through_proxy {
        let proxy = FaultProxy::start(&endpoint).await;
        proxy.one_at_a_time(true);
        Some(proxy)
    } else {
        None
    };
    let sdk =
        tocsin_aws::emulator::sdk_config(&proxy.as_ref().map_or(endpoint, FaultProxy::endpoint))
            .await;
    let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk);
    if !options.sdk_retries {
        config = config.retry_config(RetryConfig::disabled());
    } else if options.functions_retry {
        config = config.retry_config(tocsin_aws::wiring::retry_config());
    }
    let client = aws_sdk_dynamodb::Client::from_conf(config.build());
    let table = tocsin_aws::emulator::unique_name(&format!("test-{test}"));
    let store = DynamoStore::new(client.clone(), table);
    store.create_table_if_missing().await.unwrap();
    // Running it again on the existing table is a no-op, as a second cold start would do.
    store.create_table_if_missing().await.unwrap();
    if let Some(proxy) = &proxy {
        proxy.take_seen();
    }
    Some(Moto {
        store,
        client,
        proxy,
    })
}
