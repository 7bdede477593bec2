//! The SMS channel on AWS End User Messaging SMS (`pinpoint-sms-voice-v2`): one [`Rendered::Sms`]
//! sent with `SendTextMessage` to the job's phone number, as a transactional message, from the
//! channel's origination identity (a phone number, sender id or pool; the account's default when
//! none is named).
//!
//! Through a configuration set, every message carries the delivery's receipt tag in its `Context`
//! (`tocsin-delivery`), which End User Messaging copies into each event it publishes about the
//! message; the set's SNS event destination brings those events back to the SMS deliver function
//! as send receipts (`tocsin_core::receipt`). So, unlike SNS's `Publish`, a send whose answer was
//! lost can be confirmed instead of sent twice: with a set, the SDK does not retry
//! `SendTextMessage` itself, and a transport failure after the request went out comes back as
//! [`tocsin_core::receipt::UNCONFIRMED`].
//!
//! The number is checked before any call (E.164), as the SNS sender does. Failures are classified on
//! the SDK's error variants ([`crate::send_error`] for the shared half).

use aws_sdk_pinpointsmsvoicev2::Client;
use aws_sdk_pinpointsmsvoicev2::config::http::HttpResponse;
use aws_sdk_pinpointsmsvoicev2::config::retry::RetryConfig;
use aws_sdk_pinpointsmsvoicev2::error::SdkError;
use aws_sdk_pinpointsmsvoicev2::operation::send_text_message::SendTextMessageError;
use aws_sdk_pinpointsmsvoicev2::types::MessageType;
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::receipt;
use tocsin_core::record::DeliveryJob;
use tocsin_core::render::Rendered;
use tracing::debug;

use crate::send_error::{
    SenderConfigError, service_failure, transport_failure, unconfirmed_if_it_may_have_gone,
    unmodelled_service_error,
};

/// The SMS [`Notifier`] on End User Messaging. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct EumSms {
    client: Client,
    origination_identity: Option<String>,
    configuration_set: Option<String>,
}

impl EumSms {
    /// Sends from the account's default origination identity, through no configuration set.
    pub fn new(client: Client) -> Self {
        EumSms {
            client,
            origination_identity: None,
            configuration_set: None,
        }
    }

    /// Sends from `identity`: a phone number (E.164), a sender id, a pool id or any of their ARNs.
    pub fn with_origination_identity(
        mut self,
        identity: impl Into<String>,
    ) -> Result<Self, SenderConfigError> {
        let identity = identity.into().trim().to_string();
        if identity.is_empty() || identity.len() > 256 || identity.chars().any(char::is_whitespace)
        {
            return Err(SenderConfigError {
                setting: "origination_identity",
                reason: "must be 1-256 characters without spaces (a number, sender id, pool id or ARN)",
            });
        }
        self.origination_identity = Some(identity);
        Ok(self)
    }

    /// Sends through this configuration set, whose event destination brings the messages' events
    /// back as send receipts.
    pub fn with_configuration_set(
        mut self,
        name: impl Into<String>,
    ) -> Result<Self, SenderConfigError> {
        let name = name.into().trim().to_string();
        if name.is_empty() || name.len() > 256 || name.chars().any(char::is_whitespace) {
            return Err(SenderConfigError {
                setting: "configuration_set",
                reason: "must be 1-256 characters without spaces (a name or an ARN)",
            });
        }
        self.configuration_set = Some(name);
        Ok(self)
    }
}

impl Notifier for EumSms {
    async fn send(&self, job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        let (text, number) = crate::sms::text_and_number("End User Messaging", job, message)?;
        let request = self
            .client
            .send_text_message()
            .destination_phone_number(number)
            .message_body(text)
            .message_type(MessageType::Transactional)
            .set_origination_identity(self.origination_identity.clone())
            .set_configuration_set_name(self.configuration_set.clone());
        let out = if self.configuration_set.is_some() {
            request
                .context(receipt::TAG_NAME, receipt::tag(&job.delivery_id))
                .customize()
                .config_override(
                    aws_sdk_pinpointsmsvoicev2::config::Builder::default()
                        .retry_config(RetryConfig::disabled()),
                )
                .send()
                .await
                .map_err(|e| unconfirmed_if_it_may_have_gone(classify_send_text(&e), &e))?
        } else {
            request.send().await.map_err(|e| classify_send_text(&e))?
        };
        debug!(
            delivery_id = %job.delivery_id,
            message_id = out.message_id().unwrap_or(""),
            "end user messaging sms sent"
        );
        Ok(Sent {
            provider_id: out.message_id().map(str::to_string),
        })
    }

    fn sends_receipts(&self) -> bool {
        self.configuration_set.is_some()
    }
}

/// Classifies a `SendTextMessage` failure: throttling, a spent quota (it refills) and internal errors
/// are worth retrying; a refused request (an opted-out number, a bad parameter, a missing identity
/// or configuration set, no permission) is not, until someone changes something.
pub fn classify_send_text(err: &SdkError<SendTextMessageError, HttpResponse>) -> SendError {
    let Some(service) = err.as_service_error() else {
        return transport_failure(err);
    };
    let (retryable, class) = match service {
        SendTextMessageError::ThrottlingException(_) => (true, "eum_throttled"),
        SendTextMessageError::ServiceQuotaExceededException(_) => (true, "eum_quota_exceeded"),
        SendTextMessageError::InternalServerException(_) => (true, "eum_internal_error"),
        // An opted-out or blocked destination, among others: the same request fails the same way.
        SendTextMessageError::ConflictException(_) => (false, "eum_conflict"),
        SendTextMessageError::ValidationException(_) => (false, "eum_invalid_parameter"),
        SendTextMessageError::AccessDeniedException(_) => (false, "eum_not_authorized"),
        SendTextMessageError::ResourceNotFoundException(_) => (false, "eum_not_found"),
        _ => return unmodelled_service_error("eum", err),
    };
    service_failure(retryable, class, err)
}
