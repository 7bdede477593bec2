//! The SMS channel on SNS: one [`Rendered::Sms`] published straight to the job's phone number (no
//! topic), as a transactional message, optionally from a sender id or an origination number.
//!
//! The number is checked before any call (E.164: `+` and 8-15 digits), so a typo in the directory is a
//! permanent `bad_address` rather than a service round trip. SNS failures are classified on the SDK's
//! error variants, as SES failures are; the shared half is [`crate::send_error`].
//!
//! An opted-out number is not an error at `Publish`: SNS accepts the message and drops it, and says so
//! only in its SMS delivery-status logs. There is no `OptedOut` variant to classify.

use aws_sdk_sns::Client;
use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{DisplayErrorContext, SdkError};
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sns::types::MessageAttributeValue;
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::record::DeliveryJob;
use tocsin_core::render::Rendered;
use tracing::debug;

use crate::send_error::{
    SenderConfigError, permanent, service_failure, transport_failure, unmodelled_service_error,
};

/// The attribute choosing the SMS type; transactional messages are routed for reliability, not cost.
pub const SMS_TYPE_ATTRIBUTE: &str = "AWS.SNS.SMS.SMSType";
/// The attribute naming the sender id shown on the handset, where the country allows one.
pub const SENDER_ID_ATTRIBUTE: &str = "AWS.SNS.SMS.SenderID";
/// The attribute choosing the number the message is sent from.
pub const ORIGINATION_NUMBER_ATTRIBUTE: &str = "AWS.MM.SMS.OriginationNumber";

/// The SMS [`Notifier`] on SNS. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct SnsSms {
    client: Client,
    sender_id: Option<String>,
    origination_number: Option<String>,
}

impl SnsSms {
    /// Publishes with the account's default sender and number.
    pub fn new(client: Client) -> Self {
        SnsSms {
            client,
            sender_id: None,
            origination_number: None,
        }
    }

    /// Shows `sender_id` on the handset: 1-11 letters and digits, at least one letter (the SMS rule).
    pub fn with_sender_id(
        mut self,
        sender_id: impl Into<String>,
    ) -> Result<Self, SenderConfigError> {
        let id = sender_id.into();
        let valid = (1..=11).contains(&id.len())
            && id.chars().all(|c| c.is_ascii_alphanumeric())
            && id.chars().any(|c| c.is_ascii_alphabetic());
        if !valid {
            return Err(SenderConfigError {
                setting: "sender_id",
                reason: "must be 1-11 letters and digits with at least one letter",
            });
        }
        self.sender_id = Some(id);
        Ok(self)
    }

    /// Sends from `number` (E.164), one the account owns in SNS or End User Messaging.
    pub fn with_origination_number(
        mut self,
        number: impl Into<String>,
    ) -> Result<Self, SenderConfigError> {
        let number = number.into();
        if !is_e164(&number) {
            return Err(SenderConfigError {
                setting: "origination_number",
                reason: "must be an E.164 number: + and 8-15 digits",
            });
        }
        self.origination_number = Some(number);
        Ok(self)
    }

    fn attributes(&self) -> Result<Vec<(&'static str, MessageAttributeValue)>, SendError> {
        let mut attributes = vec![(SMS_TYPE_ATTRIBUTE, "Transactional")];
        if let Some(id) = &self.sender_id {
            attributes.push((SENDER_ID_ATTRIBUTE, id));
        }
        if let Some(number) = &self.origination_number {
            attributes.push((ORIGINATION_NUMBER_ATTRIBUTE, number));
        }
        attributes
            .into_iter()
            .map(|(name, value)| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map(|v| (name, v))
                    // Only a missing data type fails the builder, and it is always set.
                    .map_err(|e| permanent("bad_job", &DisplayErrorContext(e).to_string()))
            })
            .collect()
    }
}

impl Notifier for SnsSms {
    async fn send(&self, job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        let (text, number) = text_and_number("SNS", job, message)?;
        let mut request = self.client.publish().phone_number(number).message(text);
        for (name, value) in self.attributes()? {
            request = request.message_attributes(name, value);
        }
        let out = request.send().await.map_err(|e| classify_publish(&e))?;
        debug!(
            delivery_id = %job.delivery_id,
            message_id = out.message_id().unwrap_or(""),
            "sns sms published"
        );
        Ok(Sent {
            provider_id: out.message_id().map(str::to_string),
        })
    }
}

/// Classifies a `Publish` failure: internal errors, KMS throttling, throttling codes, 5xx and transport
/// failures are worth retrying; a bad parameter, missing authorization, a disabled endpoint or a KMS
/// key problem is not, until someone changes something.
pub fn classify_publish(err: &SdkError<PublishError, HttpResponse>) -> SendError {
    let Some(service) = err.as_service_error() else {
        return transport_failure(err);
    };
    let (retryable, class) = match service {
        PublishError::InternalErrorException(_) => (true, "sns_internal_error"),
        PublishError::KmsThrottlingException(_) => (true, "sns_throttled"),
        PublishError::InvalidParameterException(_)
        | PublishError::InvalidParameterValueException(_)
        | PublishError::ValidationException(_) => (false, "sns_invalid_parameter"),
        PublishError::AuthorizationErrorException(_)
        | PublishError::InvalidSecurityException(_) => (false, "sns_not_authorized"),
        PublishError::EndpointDisabledException(_)
        | PublishError::PlatformApplicationDisabledException(_) => (false, "sns_endpoint_disabled"),
        PublishError::KmsAccessDeniedException(_)
        | PublishError::KmsDisabledException(_)
        | PublishError::KmsInvalidStateException(_)
        | PublishError::KmsNotFoundException(_)
        | PublishError::KmsOptInRequired(_) => (false, "sns_kms"),
        PublishError::NotFoundException(_) => (false, "sns_not_found"),
        // SNS's own throttling (`Throttled`, HTTP 429) is not in Publish's model: decided by its code.
        _ => return unmodelled_service_error("sns", err),
    };
    service_failure(retryable, class, err)
}

/// An SMS job's text and number, checked before any call: the message an SMS, the number E.164
/// (`sender` names the sender in the reason of a message that is not an SMS).
pub(crate) fn text_and_number<'a>(
    sender: &str,
    job: &'a DeliveryJob,
    message: &'a Rendered,
) -> Result<(&'a str, &'a str), SendError> {
    let Rendered::Sms { text } = message else {
        return Err(permanent(
            "bad_job",
            &format!("the {sender} SMS sender was given a message that is not an SMS"),
        ));
    };
    let Some(number) = job.target.address.as_deref() else {
        return Err(permanent(
            "bad_job",
            &format!("delivery {} has no phone number", job.delivery_id),
        ));
    };
    if !is_e164(number) {
        // Not echoed: a reason is one clean line, and the address is someone's personal data.
        return Err(permanent(
            "bad_address",
            &format!(
                "delivery {} has a phone number not in E.164 form (+ and 8-15 digits)",
                job.delivery_id
            ),
        ));
    }
    Ok((text, number))
}

/// E.164 as SNS takes it: `+`, then 8-15 digits, the first not 0 (no country code starts with 0).
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    // Test code: a failed step is a panic that names it.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aws_sdk_sns::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_sns::types::error::{
        AuthorizationErrorException, InternalErrorException, InvalidParameterException,
        KmsThrottlingException,
    };

    fn classified(e: PublishError, status: u16) -> (bool, String) {
        let raw = HttpResponse::new(status.try_into().unwrap(), "".into());
        let err = classify_publish(&SdkError::service_error(e, raw));
        (err.retryable, err.class)
    }

    #[test]
    fn e164_is_a_plus_and_8_to_15_digits() {
        for good in [
            "+15550100123",
            "+4915112345678",
            "+12345678",
            "+123456789012345",
        ] {
            assert!(is_e164(good), "{good}");
        }
        for bad in [
            "15550100123",
            "+1234567",
            "+1234567890123456",
            "+1 555 0100",
            "+0123456789",
            "+1555010012a",
            "",
            "+",
            "alice@example.com",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn internal_errors_and_throttling_are_retryable() {
        assert_eq!(
            classified(
                PublishError::InternalErrorException(InternalErrorException::builder().build()),
                500
            ),
            (true, "sns_internal_error".into())
        );
        assert_eq!(
            classified(
                PublishError::KmsThrottlingException(KmsThrottlingException::builder().build()),
                400
            ),
            (true, "sns_throttled".into())
        );
        let throttled = PublishError::generic(ErrorMetadata::builder().code("Throttled").build());
        assert_eq!(classified(throttled, 429), (true, "sns_throttled".into()));
        let unavailable =
            PublishError::generic(ErrorMetadata::builder().code("ServiceUnavailable").build());
        assert_eq!(classified(unavailable, 503), (true, "sns_http_503".into()));
    }

    #[test]
    fn a_request_timeout_400_is_retryable() {
        // SNS answers a request it gave up waiting for with 400 RequestTimeout; the SDK retries it
        // as transient, and so must the deliver function after the SDK's attempts.
        let timeout =
            PublishError::generic(ErrorMetadata::builder().code("RequestTimeout").build());
        assert_eq!(
            classified(timeout, 400),
            (true, "sns_request_timeout".into())
        );
        let other = PublishError::generic(ErrorMetadata::builder().code("SomethingElse").build());
        assert_eq!(classified(other, 400), (false, "sns_http_400".into()));
    }

    #[test]
    fn bad_parameters_and_missing_authorization_are_permanent() {
        assert_eq!(
            classified(
                PublishError::InvalidParameterException(
                    InvalidParameterException::builder().message("bad").build()
                ),
                400
            ),
            (false, "sns_invalid_parameter".into())
        );
        assert_eq!(
            classified(
                PublishError::AuthorizationErrorException(
                    AuthorizationErrorException::builder().build()
                ),
                403
            ),
            (false, "sns_not_authorized".into())
        );
    }

    #[test]
    fn a_dropped_connection_is_retryable() {
        let err: SdkError<PublishError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("reset".into()));
        let classified = classify_publish(&err);
        assert!(classified.retryable);
        assert_eq!(classified.class, "connect");
    }

    #[test]
    fn sender_settings_are_checked_when_the_sender_is_built() {
        let client = Client::from_conf(
            aws_sdk_sns::Config::builder()
                .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                .build(),
        );
        let sms = SnsSms::new(client);
        assert!(sms.clone().with_sender_id("Tocsin").is_ok());
        assert_eq!(
            sms.clone().with_sender_id("123").unwrap_err().setting,
            "sender_id"
        );
        assert_eq!(
            sms.clone()
                .with_sender_id("TwelveChars1")
                .unwrap_err()
                .setting,
            "sender_id"
        );
        assert!(sms.clone().with_origination_number("+15550100123").is_ok());
        assert_eq!(
            sms.with_origination_number("5550100").unwrap_err().setting,
            "origination_number"
        );
    }
}
