//! The email channel on SES v2: one [`Rendered::Email`] sent with `SendEmail` as a simple message
//! (subject, HTML and text parts, all UTF-8) to the job's address.
//!
//! Every failure is classified here, once, into a [`SendError`] that says whether retrying can help;
//! the retry layer (`tocsin_core::retry`) decides what to do with it. The decision is made on the SDK's
//! error variants (and, for errors the model does not name, on the service's error code and the HTTP
//! status), never on the text of a message. The transport half of that classification is shared with
//! the SMS sender in [`crate::sms`] (both see the same `SdkError` shapes) and lives in
//! [`crate::send_error`], so that the functions without the `ses` feature do not link SES v2.

use crate::send_error::{
    SenderConfigError, permanent, service_failure, transport_failure,
    unconfirmed_if_it_may_have_gone, unmodelled_service_error,
};

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::error::{DisplayErrorContext, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageTag};
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::receipt;
use tocsin_core::record::DeliveryJob;
use tocsin_core::render::Rendered;
use tracing::debug;

/// The charset of every part: the renderers produce Rust strings, which are UTF-8.
const CHARSET: &str = "UTF-8";

/// The email [`Notifier`] on SES v2. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct SesEmail {
    client: Client,
    from: String,
    configuration_set: Option<String>,
    reply_to: Option<String>,
}

impl SesEmail {
    /// Sends from `from` (an address or `Name <address>`; SES refuses it unless the address or its
    /// domain is a verified identity), with no configuration set and no reply-to.
    pub fn new(client: Client, from: impl Into<String>) -> Result<Self, SenderConfigError> {
        Ok(SesEmail {
            client,
            from: mailbox("from", from.into())?,
            configuration_set: None,
            reply_to: None,
        })
    }

    /// Sends through this configuration set (for event publishing: bounces, complaints, deliveries),
    /// with every message tagged with its delivery's receipt tag (`tocsin_core::receipt`): the
    /// stack's set publishes each `Send` event to the topic the email deliver function reads, so a
    /// send whose answer was lost is confirmed by its receipt rather than sent again. With a set,
    /// the SDK does not retry `SendEmail` itself: a transport failure after the request went out
    /// comes back as [`tocsin_core::receipt::UNCONFIRMED`] (the deliver function looks for the
    /// receipt, then defers the job: published again, it looks again before sending),
    /// any other failure as before (the shared retry layer retries it).
    pub fn with_configuration_set(
        mut self,
        name: impl Into<String>,
    ) -> Result<Self, SenderConfigError> {
        let name = name.into().trim().to_string();
        if name.is_empty() || name.len() > 64 {
            return Err(SenderConfigError {
                setting: "configuration_set",
                reason: "must be 1-64 characters",
            });
        }
        self.configuration_set = Some(name);
        Ok(self)
    }

    /// Replies go to `address` rather than to the sender.
    pub fn with_reply_to(mut self, address: impl Into<String>) -> Result<Self, SenderConfigError> {
        self.reply_to = Some(mailbox("reply_to", address.into())?);
        Ok(self)
    }

    /// The sender address, as configured.
    pub fn from_address(&self) -> &str {
        &self.from
    }

    async fn send_email(
        &self,
        delivery_id: &str,
        to: &str,
        subject: &str,
        html: &str,
        text: &str,
    ) -> Result<Sent, SendError> {
        let part = |data: &str| {
            Content::builder()
                .data(data)
                .charset(CHARSET)
                .build()
                // Only a missing `data` fails the builder, and it is always set: a bug if it happens.
                .map_err(|e| permanent("bad_job", &DisplayErrorContext(e).to_string()))
        };
        let message = Message::builder()
            .subject(part(subject)?)
            .body(Body::builder().html(part(html)?).text(part(text)?).build())
            .build();
        let request = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .set_reply_to_addresses(self.reply_to.clone().map(|r| vec![r]))
            .set_configuration_set_name(self.configuration_set.clone())
            .content(EmailContent::builder().simple(message).build());
        let out = if self.configuration_set.is_some() {
            let tag = MessageTag::builder()
                .name(receipt::TAG_NAME)
                .value(receipt::tag(delivery_id))
                .build()
                // Only a missing name or value fails the builder, and both are set.
                .map_err(|e| permanent("bad_job", &DisplayErrorContext(e).to_string()))?;
            request
                .email_tags(tag)
                .customize()
                .config_override(
                    aws_sdk_sesv2::config::Builder::default().retry_config(RetryConfig::disabled()),
                )
                .send()
                .await
                .map_err(|e| unconfirmed_if_it_may_have_gone(classify_send_email(&e), &e))?
        } else {
            request.send().await.map_err(|e| classify_send_email(&e))?
        };
        Ok(Sent {
            provider_id: out.message_id().map(str::to_string),
        })
    }
}

impl Notifier for SesEmail {
    async fn send(&self, job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        let Rendered::Email {
            subject,
            html,
            text,
        } = message
        else {
            return Err(permanent(
                "bad_job",
                "the SES email sender was given a message that is not an email",
            ));
        };
        let Some(to) = job.target.address.as_deref().map(str::trim) else {
            return Err(permanent(
                "bad_job",
                &format!("delivery {} has no email address", job.delivery_id),
            ));
        };
        if !plausible_address(to) {
            // Not echoed: the address came from config or a directory, and a reason is one clean line.
            return Err(permanent(
                "bad_address",
                &format!(
                    "delivery {} has an address that is not an email address",
                    job.delivery_id
                ),
            ));
        }
        let sent = self
            .send_email(&job.delivery_id, to, subject, html, text)
            .await?;
        debug!(
            delivery_id = %job.delivery_id,
            message_id = sent.provider_id.as_deref().unwrap_or(""),
            "ses email sent"
        );
        Ok(sent)
    }

    fn sends_receipts(&self) -> bool {
        self.configuration_set.is_some()
    }
}

/// Classifies a `SendEmail` failure: throttling, sending quota, 5xx and transport failures are worth
/// retrying; a rejected message, an unverified or paused sender, a suspended account, a bad request
/// and a missing configuration set are not, until someone changes something.
pub fn classify_send_email(err: &SdkError<SendEmailError, HttpResponse>) -> SendError {
    let Some(service) = err.as_service_error() else {
        return transport_failure(err);
    };
    let (retryable, class) = match service {
        SendEmailError::TooManyRequestsException(_) => (true, "ses_throttled"),
        // SES's sending quota (per second or per day): it refills, so a later attempt can pass.
        SendEmailError::LimitExceededException(_) => (true, "ses_limit_exceeded"),
        SendEmailError::MessageRejected(_) => (false, "ses_rejected"),
        SendEmailError::MailFromDomainNotVerifiedException(_) => {
            (false, "ses_mail_from_not_verified")
        }
        SendEmailError::AccountSuspendedException(_) => (false, "ses_account_suspended"),
        SendEmailError::SendingPausedException(_) => (false, "ses_sending_paused"),
        SendEmailError::BadRequestException(_) => (false, "ses_bad_request"),
        SendEmailError::NotFoundException(_) => (false, "ses_not_found"),
        _ => return unmodelled_service_error("ses", err),
    };
    service_failure(retryable, class, err)
}

/// A configured mailbox: `address` or `Name <address>`, one line.
fn mailbox(setting: &'static str, value: String) -> Result<String, SenderConfigError> {
    let value = value.trim().to_string();
    let address = match (value.rfind('<'), value.ends_with('>')) {
        (Some(open), true) => &value[open + 1..value.len() - 1],
        _ => value.as_str(),
    };
    if value.chars().any(char::is_control) || !plausible_address(address) {
        return Err(SenderConfigError {
            setting,
            reason: "must be an email address (local@domain) or `Name <local@domain>`",
        });
    }
    Ok(value)
}

/// `local@domain` with no space or control character: enough to refuse a phone number or a channel
/// name handed to the email sender, while SES judges the rest.
fn plausible_address(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed step is a panic that names it.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aws_sdk_sesv2::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_sesv2::types::error::{
        AccountSuspendedException, BadRequestException, LimitExceededException,
        MailFromDomainNotVerifiedException, MessageRejected, NotFoundException,
        SendingPausedException, TooManyRequestsException,
    };
    use std::time::Duration;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(status.try_into().unwrap(), "".into())
    }

    fn service(e: SendEmailError, status: u16) -> SdkError<SendEmailError, HttpResponse> {
        SdkError::service_error(e, response(status))
    }

    fn classified(e: SendEmailError, status: u16) -> (bool, String) {
        let err = classify_send_email(&service(e, status));
        (err.retryable, err.class)
    }

    #[test]
    fn throttling_and_quota_errors_are_retryable() {
        let throttled = TooManyRequestsException::builder().message("slow").build();
        assert_eq!(
            classified(SendEmailError::TooManyRequestsException(throttled), 429),
            (true, "ses_throttled".into())
        );
        let quota = LimitExceededException::builder().message("daily").build();
        assert_eq!(
            classified(SendEmailError::LimitExceededException(quota), 400),
            (true, "ses_limit_exceeded".into())
        );
    }

    #[test]
    fn rejections_and_sender_problems_are_permanent_with_their_own_class() {
        let cases = [
            (
                SendEmailError::MessageRejected(MessageRejected::builder().build()),
                "ses_rejected",
            ),
            (
                SendEmailError::MailFromDomainNotVerifiedException(
                    MailFromDomainNotVerifiedException::builder().build(),
                ),
                "ses_mail_from_not_verified",
            ),
            (
                SendEmailError::AccountSuspendedException(
                    AccountSuspendedException::builder().build(),
                ),
                "ses_account_suspended",
            ),
            (
                SendEmailError::SendingPausedException(SendingPausedException::builder().build()),
                "ses_sending_paused",
            ),
            (
                SendEmailError::BadRequestException(BadRequestException::builder().build()),
                "ses_bad_request",
            ),
            (
                SendEmailError::NotFoundException(NotFoundException::builder().build()),
                "ses_not_found",
            ),
        ];
        for (error, class) in cases {
            assert_eq!(classified(error, 400), (false, class.to_string()));
        }
    }

    #[test]
    fn unmodelled_errors_are_decided_by_throttling_code_then_status() {
        let generic = |code: &str| {
            SendEmailError::generic(ErrorMetadata::builder().code(code).message("m").build())
        };
        assert_eq!(
            classified(generic("Throttling"), 400),
            (true, "ses_throttled".into())
        );
        assert_eq!(
            classified(generic("InternalFailure"), 500),
            (true, "ses_http_500".into())
        );
        assert_eq!(
            classified(generic("ServiceUnavailable"), 503),
            (true, "ses_http_503".into())
        );
        assert_eq!(
            classified(generic("AccessDeniedException"), 403),
            (false, "ses_http_403".into())
        );
    }

    #[test]
    fn a_retry_after_header_on_a_throttled_response_is_kept() {
        let mut raw = response(429);
        raw.headers_mut().insert("retry-after", "7");
        let err = SdkError::service_error(
            SendEmailError::TooManyRequestsException(TooManyRequestsException::builder().build()),
            raw,
        );
        let classified = classify_send_email(&err);
        assert_eq!(classified.retry_after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn transport_failures_are_retryable_except_a_request_that_could_not_be_built() {
        let cases: [(SdkError<SendEmailError, HttpResponse>, bool, &str); 5] = [
            (SdkError::timeout_error("slow"), true, "timeout"),
            (
                SdkError::dispatch_failure(ConnectorError::timeout("t".into())),
                true,
                "timeout",
            ),
            (
                SdkError::dispatch_failure(ConnectorError::io("refused".into())),
                true,
                "connect",
            ),
            (
                SdkError::dispatch_failure(ConnectorError::user("no creds".into())),
                false,
                "client_config",
            ),
            (SdkError::construction_failure("bad"), false, "request"),
        ];
        for (err, retryable, class) in cases {
            let classified = classify_send_email(&err);
            assert_eq!(
                (classified.retryable, classified.class.as_str()),
                (retryable, class)
            );
        }
    }

    #[test]
    fn a_service_error_reason_is_one_bounded_line_with_the_code() {
        let long = format!("{}\nsecond line", "x".repeat(500));
        let err = service(
            // The SDK's deserializer fills the error metadata (code and message) from the response.
            SendEmailError::MessageRejected(
                MessageRejected::builder()
                    .meta(
                        ErrorMetadata::builder()
                            .code("MessageRejected")
                            .message(long)
                            .build(),
                    )
                    .build(),
            ),
            400,
        );
        let reason = classify_send_email(&err).reason;
        assert!(reason.starts_with("MessageRejected: "), "{reason}");
        assert!(!reason.contains('\n'));
        assert!(
            reason.chars().count() <= crate::sdk_error::MAX_LINE + 3,
            "{reason}"
        );
    }

    #[test]
    fn the_sender_must_be_an_address_or_a_named_mailbox() {
        let client = Client::from_conf(
            aws_sdk_sesv2::Config::builder()
                .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
                .build(),
        );
        assert!(SesEmail::new(client.clone(), "alerts@example.com").is_ok());
        assert!(SesEmail::new(client.clone(), "Tocsin <alerts@example.com>").is_ok());
        for bad in [
            "",
            "alerts",
            "@example.com",
            "alerts@localhost",
            "a@b.com\nBcc: x@y.z",
        ] {
            let err = SesEmail::new(client.clone(), bad).unwrap_err();
            assert_eq!(err.setting, "from", "{bad:?}");
        }
        let ses = SesEmail::new(client, "alerts@example.com").unwrap();
        assert_eq!(
            ses.with_reply_to("+15550100").unwrap_err().setting,
            "reply_to"
        );
    }
}
