//! The notifier registry: the one sender type a deliver function holds, whichever kind its channel
//! is. [`crate::wiring::deliver_from_env`] builds the variant of its channel's kind at cold start
//! (validating the channel's settings there, so a bad config fails the cold start, not the first
//! page).

use tocsin_channels::AnyHttpChannel;
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::record::DeliveryJob;
use tocsin_core::render::Rendered;

use crate::{EumSms, SesEmail, SnsSms};

/// This function's sender: one of the AWS ones or an HTTP channel. Built once per cold start, so the
/// variants' size difference does not matter.
#[allow(clippy::large_enum_variant)]
pub enum AnyNotifier {
    /// SES email.
    Email(SesEmail),
    /// SNS SMS.
    Sms(SnsSms),
    /// End User Messaging SMS.
    EumSms(EumSms),
    /// Slack, Teams, PagerDuty, webhooks.
    Http(AnyHttpChannel),
}

impl Notifier for AnyNotifier {
    async fn send(&self, job: &DeliveryJob, message: &Rendered) -> Result<Sent, SendError> {
        match self {
            AnyNotifier::Email(n) => n.send(job, message).await,
            AnyNotifier::Sms(n) => n.send(job, message).await,
            AnyNotifier::EumSms(n) => n.send(job, message).await,
            AnyNotifier::Http(n) => n.send(job, message).await,
        }
    }

    fn sends_receipts(&self) -> bool {
        match self {
            AnyNotifier::Email(n) => n.sends_receipts(),
            AnyNotifier::Sms(n) => n.sends_receipts(),
            AnyNotifier::EumSms(n) => n.sends_receipts(),
            AnyNotifier::Http(n) => n.sends_receipts(),
        }
    }
}
