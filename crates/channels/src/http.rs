//! What every HTTP channel shares: the one client per process, the timeouts, endpoint validation, and the
//! one classifier from an HTTP status or transport failure to a [`SendError`] (alertmanager keeps the same
//! in `notify/util.go`). Channels add only what their API says beyond the status (Slack's `ok: false`).
//!
//! Reasons are one line and never carry a credential: the URL (a webhook URL is a bearer token), keys and
//! tokens are stripped from anything a receiver or reqwest says before it reaches a [`SendError`], since
//! errors end up in the audit trail and the logs.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, Url};
use tocsin_core::ports::SendError;

use crate::BuildError;

/// Time allowed to open a connection (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for a whole request by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest reason kept from a receiver's answer.
const MAX_REASON: usize = 200;
/// The most of a response body read: enough for any API's error message, bounded against a receiver
/// that streams forever.
const MAX_BODY: usize = 16 * 1024;
/// What stands in for a stripped credential.
const REDACTED: &str = "[redacted]";

static CLIENT: OnceLock<Client> = OnceLock::new();

/// The process's HTTP client, built on first use. One client keeps one connection pool, so a warm
/// Lambda reuses its TLS connection to Slack or PagerDuty across invocations.
pub fn client() -> Result<Client, BuildError> {
    if let Some(client) = CLIENT.get() {
        return Ok(client.clone());
    }
    // reqwest's TLS takes the process's default crypto provider: aws-lc-rs, the one the SDK's client
    // uses, so a deliver function links one. Already installed (by a second caller, say) is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let built = Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        // Small POSTs: waiting to coalesce them with more data only adds latency to a page.
        .tcp_nodelay(true)
        .timeout(DEFAULT_TIMEOUT)
        // A redirected POST turns into a GET on the way; the configured URL must be the final one.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tocsin/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(BuildError::Client)?;
    // Two first callers at once each build one; the loser's is dropped, both use the winner's.
    Ok(CLIENT.get_or_init(|| built).clone())
}

/// Parses and checks an endpoint: https, or http to this machine only (local tests and the embedded
/// demo). The error names the setting, never the value.
pub fn endpoint(channel: &str, setting: &'static str, value: &str) -> Result<Url, BuildError> {
    let invalid = |why| BuildError::InvalidUrl {
        channel: channel.to_string(),
        setting,
        why,
    };
    let url = Url::parse(value.trim()).map_err(|_| invalid("is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) => {}
        "http" => {
            return Err(invalid(
                "must be https (http only to 127.0.0.1 or localhost)",
            ));
        }
        _ => return Err(invalid("must be an https URL")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    Ok(url)
}

/// The strings a URL leaks a credential through: the whole URL, and its path and query on their own
/// (Slack and Teams webhook URLs carry the token in the path; receivers echo paths back).
pub fn url_secrets(url: &Url) -> Vec<String> {
    let mut secrets = vec![url.as_str().to_string()];
    if url.path().len() > 1 {
        secrets.push(url.path().to_string());
    }
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        secrets.push(query.to_string());
    }
    secrets
}

/// A successful (2xx) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The headers, for channels whose API answers errors with a 200 (Slack's `Retry-After`).
    pub headers: HeaderMap,
    /// The body as text, at most 16 KiB of it.
    pub body: String,
}

/// Sends `request` and classifies the answer: a 2xx is returned, anything else becomes a [`SendError`]
/// whose reason has `secrets` stripped.
pub async fn send(
    request: RequestBuilder,
    timeout: Duration,
    secrets: &[String],
) -> Result<Reply, SendError> {
    let response = request
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| classify_transport(e, secrets))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_body(response)
        .await
        .map_err(|e| classify_transport(e, secrets))?;
    if (200..300).contains(&status) {
        Ok(Reply {
            status,
            headers,
            body,
        })
    } else {
        Err(classify_status(
            status,
            &headers,
            &body,
            SystemTime::now(),
            secrets,
        ))
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The one classifier from a non-2xx status: 5xx, 429 and 408 are retryable (with the `Retry-After`
/// they carry, in seconds or as an HTTP-date, relative to `now`); everything else is permanent (other
/// 4xx: the request itself is wrong; 3xx: the URL is not the final one). The reason is the status and
/// the start of the body on one line, with `secrets` stripped.
pub fn classify_status(
    status: u16,
    headers: &HeaderMap,
    body: &str,
    now: SystemTime,
    secrets: &[String],
) -> SendError {
    let retryable = status >= 500 || status == 429 || status == 408;
    let retry_after = if retryable {
        headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now))
    } else {
        None
    };
    let name = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("unknown status");
    let mut reason = format!("{status} {name}");
    let said = redact(body, secrets);
    if !said.is_empty() {
        reason.push_str(": ");
        reason.push_str(&said);
    }
    if (300..400).contains(&status) {
        reason.push_str(" (redirects are not followed: configure the final URL)");
    }
    SendError {
        retryable,
        retry_after,
        class: format!("http_{status}"),
        reason: truncate(&reason, MAX_REASON + 40),
    }
}

/// Classifies a failure to get an answer at all: timeouts and connection failures are retryable, as is
/// a connection dropped mid-request; a request reqwest could not even build is a bug, so permanent.
pub fn classify_transport(error: reqwest::Error, secrets: &[String]) -> SendError {
    let (retryable, class) = if error.is_timeout() {
        (true, "timeout")
    } else if error.is_connect() {
        (true, "connect")
    } else if error.is_builder() {
        (false, "request")
    } else {
        (true, "network")
    };
    // reqwest puts the URL in its message; drop it, then walk the causes (which say what went wrong:
    // "connection refused", "operation timed out") and strip what might still leak.
    let error = error.without_url();
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = cause.source();
    }
    SendError {
        retryable,
        retry_after: None,
        class: class.to_string(),
        reason: redact(&reason, secrets),
    }
}

/// A `Retry-After` value: delay-seconds, or an HTTP-date (a date already past means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// One line, at most [`MAX_REASON`] characters, with every secret and anything URL-shaped replaced.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_string();
    // Longest first, so a URL goes whole before its path is looked for.
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        text = text.replace(secret.as_str(), REDACTED);
    }
    let words: Vec<&str> = text
        .split_whitespace()
        .map(|w| if w.contains("://") { REDACTED } else { w })
        .collect();
    truncate(&words.join(" "), MAX_REASON)
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(retry_after) {
            h.insert(RETRY_AFTER, v);
        }
        h
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn server_errors_timeouts_and_rate_limits_are_retryable_other_client_errors_are_not() {
        for status in [500, 502, 503, 504, 429, 408] {
            let e = classify_status(status, &HeaderMap::new(), "", at(0), &[]);
            assert!(e.retryable, "{status}");
            assert_eq!(e.class, format!("http_{status}"));
        }
        for status in [400, 401, 403, 404, 410, 413, 422, 301] {
            let e = classify_status(status, &HeaderMap::new(), "", at(0), &[]);
            assert!(!e.retryable, "{status}");
        }
    }

    #[test]
    fn retry_after_in_seconds_is_read() {
        let e = classify_status(429, &headers("7"), "", at(0), &[]);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_time_until_then() {
        // 1994-11-06T08:49:37Z is 784111777.
        let e = classify_status(
            503,
            &headers("Sun, 06 Nov 1994 08:49:37 GMT"),
            "",
            at(784_111_777 - 90),
            &[],
        );
        assert_eq!(e.retry_after, Some(Duration::from_secs(90)));
    }

    #[test]
    fn a_retry_after_date_already_past_means_now_and_garbage_means_none() {
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at(784_111_800)),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", at(0)), None);
        assert_eq!(parse_retry_after("-3", at(0)), None);
    }

    #[test]
    fn a_permanent_error_ignores_retry_after() {
        let e = classify_status(400, &headers("5"), "", at(0), &[]);
        assert_eq!(e.retry_after, None);
    }

    #[test]
    fn the_reason_is_one_line_with_the_status_and_the_receivers_words() {
        let e = classify_status(400, &HeaderMap::new(), "invalid\n  payload\r\n", at(0), &[]);
        assert_eq!(e.reason, "400 Bad Request: invalid payload");
    }

    #[test]
    fn the_reason_strips_secrets_and_urls_the_receiver_echoes() {
        let url = Url::parse("https://hooks.example.com/services/T0/B0/SeCrEt?code=abc").ok();
        let mut secrets = url.as_ref().map(url_secrets).unwrap_or_default();
        secrets.push("R0UTINGKEY".into());
        let body = "no route for /services/T0/B0/SeCrEt key R0UTINGKEY at https://elsewhere.example/x?code=abc";
        let e = classify_status(404, &HeaderMap::new(), body, at(0), &secrets);
        for leak in ["SeCrEt", "R0UTINGKEY", "code=abc", "https://", "/services/"] {
            assert!(!e.reason.contains(leak), "{leak} in {}", e.reason);
        }
        assert!(
            e.reason
                .starts_with("404 Not Found: no route for [redacted]")
        );
    }

    #[test]
    fn a_long_answer_is_cut() {
        let body = "x".repeat(10_000);
        let e = classify_status(400, &HeaderMap::new(), &body, at(0), &[]);
        // The receiver's words are cut at MAX_REASON; the status line before them adds a few characters.
        assert!(e.reason.ends_with('…'), "{}", e.reason);
        assert!(e.reason.chars().count() <= MAX_REASON + 41);
    }

    #[test]
    fn endpoints_must_be_https_except_to_this_machine() {
        assert!(endpoint("c", "url", "https://hooks.example.com/x").is_ok());
        assert!(endpoint("c", "url", "http://127.0.0.1:8080/x").is_ok());
        assert!(endpoint("c", "url", "http://localhost/x").is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "ftp://x/y",
            "not a url",
            "/relative",
        ] {
            let err = endpoint("c", "url", bad).err().map(|e| e.to_string());
            let err = err.unwrap_or_default();
            assert!(
                err.starts_with("channel `c`: setting `url`"),
                "{bad}: {err}"
            );
            assert!(!err.contains(bad), "{err}");
        }
    }

    #[test]
    fn the_client_is_built_once_per_process() {
        let (Ok(a), Ok(b)) = (client(), client()) else {
            panic!("client builds");
        };
        // Clones of one client share the pool; compare through its Debug, which is all it exposes.
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert!(CLIENT.get().is_some());
    }
}
