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

/// Everything moto holds, from `GET /moto-api/data.json` on the emulator at `endpoint`: what SES sent,
/// which SMS SNS published, and so on. A plain HTTP/1.0 request (so the answer is not chunked) on a
/// TCP stream, to need no HTTP client. moto builds the dump by walking its models while other requests
/// may be changing them, and answers 500 when one changed under the walk, so a 500 is asked again (a
/// few times, briefly apart); any other answer is final.
pub async fn moto_data(endpoint: &str) -> Result<serde_json::Value, String> {
    let mut last = String::new();
    for attempt in 0..5u64 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
        }
        match moto_data_once(endpoint).await {
            Ok(v) => return Ok(v),
            Err((true, why)) => last = why,
            Err((false, why)) => return Err(why),
        }
    }
    Err(last)
}

/// One dump request; the error says whether it is worth asking again (moto's 500).
async fn moto_data_once(endpoint: &str) -> Result<serde_json::Value, (bool, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| (false, format!("connect {authority}: {e}")))?;
    let request = format!(
        "GET /moto-api/data.json HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| (false, format!("write: {e}")))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| (false, format!("read: {e}")))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or((false, "moto answered no HTTP head".to_string()))?;
    if !(head.starts_with("HTTP/1.") && head.contains(" 200 ")) {
        let status = head.lines().next().unwrap_or_default();
        return Err((status.contains(" 500 "), format!("moto answered {status}")));
    }
    serde_json::from_str(body).map_err(|e| (false, format!("moto data is not JSON: {e}")))
}

/// The instances of moto's model `service.model` (from [`moto_data`]) whose `key` is `value`.
pub fn recorded<'a>(
    data: &'a serde_json::Value,
    service: &str,
    model: &str,
    key: &str,
    value: &str,
) -> Vec<&'a serde_json::Value> {
    data[service][model]
        .as_array()
        .map(|all| all.iter().filter(|m| m[key] == value).collect())
        .unwrap_or_default()
}
