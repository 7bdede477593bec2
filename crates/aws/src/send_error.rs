//! The send-error classification both AWS senders share: the SES email sender ([`crate::ses`], behind
//! the `ses` feature) and the SNS SMS sender ([`crate::sms`]) see the same `SdkError` shapes, so the
//! transport half, the unmodelled service errors and the sender's setting errors are decided here,
//! once, on the SDK's error variants, error codes and HTTP status, never on the text of a message.

pub(crate) use crate::sdk_error::bounded as one_line;
use crate::sdk_error::describe;
use std::time::Duration;

use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use thiserror::Error;
use tocsin_core::ports::SendError;

/// Error codes the SDK's standard retry classifies as transient (aws-runtime's `TRANSIENT_ERRORS`),
/// whatever their status.
const TRANSIENT_CODES: &[&str] = &["RequestTimeout", "RequestTimeoutException"];

/// Error codes AWS services use for throttling when the operation's model does not name the error: the
/// list the SDK's own retry classifier keeps, plus SNS's `Throttled`. A code is part of the service's
/// typed error metadata, not free text.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "Throttled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// A sender setting that cannot work, found when the sender is built rather than at its first send.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{setting}: {reason}")]
pub struct SenderConfigError {
    /// The setting: `from`, `reply_to`, `sender_id`, ...
    pub setting: &'static str,
    /// Why, in one line.
    pub reason: &'static str,
}

/// A service error of a variant the operation's model does not name: decided on its error code and
/// the HTTP status. `service` prefixes the class (`ses`, `sns`).
pub(crate) fn unmodelled_service_error<E, R>(service: &str, err: &SdkError<E, R>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + RawResponse,
{
    let code = err.as_service_error().and_then(|e| e.code());
    let status = err.raw_response().map(RawResponse::status_code);
    if code.is_some_and(|c| THROTTLING_CODES.contains(&c)) || status == Some(429) {
        return service_failure(true, &format!("{service}_throttled"), err);
    }
    // A 400 the SDK itself treats as transient (the service gave up waiting for the request): the
    // next attempt can pass. The chaos run found SMS dead-lettered as "failed for good" on it.
    if code.is_some_and(|c| TRANSIENT_CODES.contains(&c)) {
        return service_failure(true, &format!("{service}_request_timeout"), err);
    }
    match status {
        Some(s) if s >= 500 => service_failure(true, &format!("{service}_http_{s}"), err),
        Some(s) => service_failure(false, &format!("{service}_http_{s}"), err),
        None => service_failure(false, &format!("{service}_error"), err),
    }
}

/// A classified service error: its reason is the service's error code and message, and its
/// `retry_after` the response's `Retry-After` when retryable and present.
pub(crate) fn service_failure<E, R>(retryable: bool, class: &str, err: &SdkError<E, R>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + RawResponse,
{
    let retry_after = if retryable {
        err.raw_response().and_then(RawResponse::retry_after)
    } else {
        None
    };
    SendError {
        retryable,
        retry_after,
        class: class.to_string(),
        reason: one_line(&describe(err)),
    }
}

/// A failure to get a service answer at all. Timeouts, connection failures and unreadable responses
/// are retryable; a request the SDK could not build, or a client misconfigured for dispatch, is not.
pub(crate) fn transport_failure<E, R>(err: &SdkError<E, R>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (retryable, class) = match err {
        SdkError::TimeoutError(_) => (true, "timeout"),
        SdkError::DispatchFailure(d) if d.is_timeout() => (true, "timeout"),
        SdkError::DispatchFailure(d) if d.is_io() => (true, "connect"),
        // A user error is the client's configuration (no credentials, bad endpoint): retrying is futile.
        SdkError::DispatchFailure(d) if d.is_user() => (false, "client_config"),
        SdkError::DispatchFailure(_) => (true, "network"),
        // A response came but could not be read (cut short, say): the request may or may not have
        // been accepted, and the retry layer's idempotency covers a repeat.
        SdkError::ResponseError(_) => (true, "response"),
        SdkError::ConstructionFailure(_) => (false, "request"),
        _ => (true, "network"),
    };
    SendError {
        retryable,
        retry_after: None,
        class: class.to_string(),
        reason: one_line(&describe(err)),
    }
}

/// A transport failure that came after the request may have gone out (a timeout, a dropped
/// connection, an answer cut short) is [`tocsin_core::receipt::UNCONFIRMED`]: the service may have
/// taken the message, and a sender whose messages come back as send receipts says so, so that the
/// deliver function looks for the receipt before sending again. A request that could not be built
/// or dispatched at all, and every answer the service gave, keep their class.
#[cfg(any(feature = "ses", feature = "eum"))]
pub(crate) fn unconfirmed_if_it_may_have_gone<E, R>(
    mut e: SendError,
    err: &SdkError<E, R>,
) -> SendError {
    let may_have_gone = match err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(d) => !d.is_user(),
        _ => false,
    };
    if may_have_gone {
        e.class = tocsin_core::receipt::UNCONFIRMED.to_string();
        e.retryable = true;
    }
    e
}

/// What the classifiers need of a raw response, so one classifier serves SES's and SNS's.
pub(crate) trait RawResponse {
    /// The HTTP status.
    fn status_code(&self) -> u16;
    /// `Retry-After` in delay-seconds, if the service sent it.
    fn retry_after(&self) -> Option<Duration>;
}

impl RawResponse for HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }

    fn retry_after(&self) -> Option<Duration> {
        self.headers()
            .get("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }
}

/// A permanent error of `class` with `reason`.
pub(crate) fn permanent(class: &str, reason: &str) -> SendError {
    SendError {
        retryable: false,
        retry_after: None,
        class: class.to_string(),
        reason: one_line(reason),
    }
}
