//! SDK errors as one bounded line, for every adapter: the service's error code and message, or the
//! transport failure; never the request (it carries records, message bodies, ticks) nor credentials.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The longest line an adapter error carries, in characters (then `...`).
pub(crate) const MAX_LINE: usize = 300;

/// The service's error code and message, or the transport failure, unbounded.
pub(crate) fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("unknown error"),
            e.message().unwrap_or("no message")
        ),
        None => DisplayErrorContext(err).to_string(),
    }
}

/// Whether the service refused the request as it is (a parameter it rejects), so that sending it again
/// fails the same way; throttling, 5xx, transport failures, missing resources and permissions are not
/// (a deploy or a grant may mend those, and failing keeps them in front of an operator).
pub(crate) fn is_refused<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    err.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| {
            matches!(
                code,
                "ValidationException" | "InvalidParameter" | "InvalidParameterValue"
            )
        })
}

/// `text` on one line (control characters as spaces), at most [`MAX_LINE`] characters and `...`.
pub(crate) fn bounded(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match line.char_indices().nth(MAX_LINE) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}
