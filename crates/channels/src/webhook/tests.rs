use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use serde_json::json;
use sha2::Sha256;
use tocsin_core::config::ChannelKind;
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::render::Rendered;

use super::{WebhookSender, decode_key, signature};
use crate::http;
use crate::testing::{Reply, Server, assert_no_secrets, job};

const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
// The key bytes of KEY, decoded independently (python3 base64).
const RAW_KEY: &[u8] = b"\x31\xf2\x90\xf6\xbf\x06\x29\x8a\xab\x4f\x08\xd4\x3c\x3f\x08\x2c\xf6\x48\xa3\x62\xda\x2d\xa4\xb0";
const PATH: &str = "/hooks/tocsin?token=urlTOKENsecret";

fn message() -> Rendered {
    Rendered::Webhook {
        body: json!({"alert": {"id": "al-1", "title": "disk \"full\" ✓"}, "kind": "trigger"}),
    }
}

fn key() -> Vec<u8> {
    decode_key(KEY).unwrap_or_else(|e| panic!("{e}"))
}

fn sender(server: &Server) -> WebhookSender {
    let client = http::client().unwrap_or_else(|e| panic!("{e}"));
    let url = Url::parse(&server.url(PATH)).unwrap_or_else(|e| panic!("{e}"));
    WebhookSender::new(client, url, &key()).with_timeout(Duration::from_millis(300))
}

async fn send(replies: Vec<Reply>) -> (Result<Sent, SendError>, Server) {
    let server = Server::start(replies)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let result = sender(&server)
        .send(&job(ChannelKind::Webhook, None), &message())
        .await;
    (result, server)
}

fn expect_err(result: Result<Sent, SendError>) -> SendError {
    match result {
        Err(e) => {
            assert_no_secrets(
                &e,
                &[
                    KEY,
                    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    "urlTOKENsecret",
                    "127.0.0.1",
                ],
            );
            e
        }
        Ok(sent) => panic!("expected an error, got {sent:?}"),
    }
}

#[test]
fn the_signature_matches_the_standard_webhooks_published_example() {
    // The example of the Standard Webhooks spec and its reference libraries.
    let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key()).unwrap_or_else(|e| panic!("{e}"));
    let got = signature(
        &mac,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        br#"{"test": 2432232314}"#,
    );
    assert_eq!(got, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

#[test]
fn a_whsec_key_is_base64_and_any_other_key_is_its_own_bytes() {
    assert_eq!(key(), RAW_KEY);
    assert_eq!(decode_key("plain-key").ok(), Some(b"plain-key".to_vec()));
    assert!(decode_key("whsec_***not base64***").is_err());
    assert!(decode_key("whsec_").is_err());
}

#[tokio::test]
async fn the_receiver_can_verify_the_signature_over_the_exact_bytes_it_got() {
    let (result, server) = send(vec![Reply::status(204)]).await;
    assert_eq!(result, Ok(Sent::default()));
    let request = &server.requests()[0];
    assert_eq!(request.path, PATH);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("webhook-id"), Some("dl-7f3a"));
    let timestamp = request.header("webhook-timestamp").unwrap_or_default();
    let sent_at: u64 = timestamp
        .parse()
        .unwrap_or_else(|e| panic!("{timestamp}: {e}"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    assert!(
        now.abs_diff(sent_at) < 60,
        "timestamp {sent_at} is not now ({now})"
    );

    // Verify as a receiver would, straight on the HMAC primitive, not through the sender's `signature`.
    let header = request.header("webhook-signature").unwrap_or_default();
    let encoded = header
        .strip_prefix("v1,")
        .unwrap_or_else(|| panic!("{header}"));
    let tag = STANDARD.decode(encoded).unwrap_or_else(|e| panic!("{e}"));
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(RAW_KEY).unwrap_or_else(|e| panic!("{e}"));
    mac.update(format!("dl-7f3a.{timestamp}.").as_bytes());
    mac.update(&request.body);
    assert!(
        mac.verify_slice(&tag).is_ok(),
        "signature {header} does not verify"
    );

    let Rendered::Webhook { body } = message() else {
        panic!("a webhook message")
    };
    assert_eq!(request.json(), body);
}

#[tokio::test]
async fn a_429_is_retryable_with_its_retry_after_as_an_http_date() {
    let later = SystemTime::now() + Duration::from_secs(120);
    let date = httpdate::fmt_http_date(later);
    let (result, _server) = send(vec![Reply::status(429).header("Retry-After", &date)]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    let wait = e.retry_after.unwrap_or_default();
    assert!(
        wait > Duration::from_secs(110) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );
}

#[tokio::test]
async fn a_500_is_retryable() {
    let (result, _server) = send(vec![Reply::status(503)]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.class, "http_503");
}

#[tokio::test]
async fn a_400_is_permanent_with_the_receivers_reason_and_no_secret() {
    let body = format!("bad signature from key {KEY} at http://127.0.0.1{PATH}");
    let (result, _server) = send(vec![Reply::status(400).body(&body)]).await;
    let e = expect_err(result);
    assert!(!e.retryable);
    assert!(
        e.reason.starts_with("400 Bad Request: bad signature"),
        "{}",
        e.reason
    );
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_retryably() {
    let (result, _server) = send(vec![Reply::Hang]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.class, "timeout");
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_gives_up() {
    let (result, server) = send(vec![
        Reply::status(301).header("Location", "http://127.0.0.1:9/elsewhere"),
    ])
    .await;
    let e = expect_err(result);
    assert!(!e.retryable);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn debug_output_hides_the_url_and_the_key() {
    let client = http::client().unwrap_or_else(|e| panic!("{e}"));
    let url = Url::parse(&format!("https://example.com{PATH}")).unwrap_or_else(|e| panic!("{e}"));
    let shown = format!("{:?}", WebhookSender::new(client, url, &key()));
    assert!(!shown.contains("urlTOKENsecret"), "{shown}");
}
