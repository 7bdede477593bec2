//! Talking to a local AWS emulator (moto, under `scripts/with-moto.sh`) from tests: the SDK config for
//! `AWS_ENDPOINT_URL`, and names no other run on the same server has used. Without an endpoint a test
//! says it was skipped and returns, unless `TOCSIN_REQUIRE_AWS=1` (as `make test` sets), where skipping
//! would hide a broken harness, so it fails.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The emulator's endpoint, or None after reporting the skip. Panics (fails the test) when
/// `TOCSIN_REQUIRE_AWS=1` and there is no endpoint.
pub fn endpoint(test: &str) -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(e) => Some(e),
        Err(_) => {
            assert!(
                std::env::var("TOCSIN_REQUIRE_AWS").as_deref() != Ok("1"),
                "{test}: TOCSIN_REQUIRE_AWS=1 but AWS_ENDPOINT_URL is not set; \
                 run it under `scripts/with-moto.sh`"
            );
            // Straight to stderr: libtest captures `eprintln!` of passing tests, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "skipped {test}: AWS_ENDPOINT_URL is not set (run under scripts/with-moto.sh)"
            );
            None
        }
    }
}

/// The SDK config for the emulator at `endpoint`: region `us-east-1`, and dummy credentials unless
/// the environment has some.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint);
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        loader = loader.credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "tocsin-tests",
        ));
    }
    loader.load().await
}

/// The SDK config for the emulator at `AWS_ENDPOINT_URL`, or None (see [`endpoint`]).
pub async fn config_for(test: &str) -> Option<SdkConfig> {
    Some(sdk_config(&endpoint(test)?).await)
}

/// A resource name unique to this process and instant: `tocsin-<what>-<pid>-<nanos>`.
pub fn unique_name(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("tocsin-{what}-{}-{nanos}", std::process::id())
}
