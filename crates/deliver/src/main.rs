//! The deliver function, deployed once per channel (`CHANNEL_NAME`, the channel's name in the config)
//! behind an SNS subscription filtered on the `channel` attribute, each with only its own permissions:
//! SES for email, SNS SMS for SMS, outbound HTTPS for Slack, Teams, PagerDuty and webhooks.
//!
//! Its input is an SNS event (delivery jobs), or, for an SMS channel, `{"flush": {...}}` from the
//! one-time schedule its throttle made (the schedule targets this function's own ARN, `FLUSH_FUNCTION_ARN`:
//! the template names the function explicitly so that it can give the function its own ARN without a
//! cycle).

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tocsin_aws::{DynamoHold, DynamoStore, EventBridgeScheduler, SesEmail, SnsBus, SnsSms};
use tocsin_channels::{SecretError, TokioSleeper};
use tocsin_core::config::{ChannelKind, Setting};
use tocsin_core::ports::SystemClock;
use tocsin_core::record::DeliveryJob;
use tocsin_core::retry::RetryPolicy;
use tocsin_deliver::notifier::AnyNotifier;
use tocsin_deliver::{Deliverer, Input, LinkSettings, Settings, Throttle, resolve_setting};
use tocsin_lambda::FunctionError;

/// One JSON log line per audit entry written, like the router's and escalate's: the alert id and what
/// happened (inside the runtime's span, so with the request id). No target, reason or message text.
fn log_entries(entries: &[tocsin_core::record::AuditEntry]) {
    // A job for a destination the config does not give the channel: one EMF line, which the
    // template's DestinationRefusedAlarm watches.
    let refused = entries
        .iter()
        .filter(|e| e.reason.starts_with(tocsin_deliver::REFUSED))
        .count();
    if refused > 0 {
        println!(
            "{}",
            serde_json::json!({
                "_aws": {"Timestamp": chrono::Utc::now().timestamp_millis(), "CloudWatchMetrics": [{
                    "Namespace": "tocsin", "Dimensions": [[]],
                    "Metrics": [{"Name": "DestinationRefused", "Unit": "Count"}]}]},
                "DestinationRefused": refused,
            })
        );
    }
    for e in entries {
        tracing::info!(
            alert = %e.alert,
            action = e.action.as_str(),
            channel = e.channel.as_deref().unwrap_or(""),
            level = e.level.unwrap_or(0),
            "delivery"
        );
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tocsin_lambda::init_tracing();
    let config = tocsin_lambda::load_config(env)?;
    let channel_name = tocsin_lambda::env("CHANNEL_NAME")?;
    let channel = config
        .channels
        .get(&channel_name)
        .ok_or_else(|| format!("CHANNEL_NAME={channel_name} is not a channel of the config"))?
        .clone();
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    // Read once, at cold start, and held for the sandbox's life.
    let link_keys = tocsin_aws::wiring::link_keys(&sdk, env).await?;
    let channel_secrets = tocsin_aws::wiring::channel_secrets(&sdk, env).await?;
    let setting = |key: &str| -> Result<Option<String>, Error> {
        match channel.settings.get(key) {
            None => Ok(None),
            Some(s) => resolve_setting(s, env, &channel_secrets)
                .map(Some)
                .map_err(|var| format!("channel {channel_name}: {key}: {var} is not set").into()),
        }
    };
    // Built and validated at start-up: a bad channel config fails the cold start, not the first page.
    let notifier = match channel.kind {
        ChannelKind::Email => {
            let from = setting("from")?.unwrap_or_default();
            let mut ses = SesEmail::new(aws_sdk_sesv2::Client::new(&sdk), from)?;
            if let Some(c) = setting("configuration_set")? {
                ses = ses.with_configuration_set(c)?;
            }
            if let Some(r) = setting("reply_to")? {
                ses = ses.with_reply_to(r)?;
            }
            AnyNotifier::Email(ses)
        }
        ChannelKind::Sms => {
            let mut sms = SnsSms::new(aws_sdk_sns::Client::new(&sdk));
            if let Some(id) = setting("sender_id")? {
                sms = sms.with_sender_id(id)?;
            }
            if let Some(n) = setting("origination_number")? {
                sms = sms.with_origination_number(n)?;
            }
            AnyNotifier::Sms(sms)
        }
        _ => {
            let secrets = |s: &Setting| {
                resolve_setting(s, env, &channel_secrets)
                    .map_err(|reference| SecretError::NotSet { reference })
            };
            AnyNotifier::Http(tocsin_channels::build(&channel, &secrets)?)
        }
    };
    // SMS: one message a recipient per window (the channel's `throttle`, default a minute).
    let window = match setting("throttle")? {
        Some(t) => tocsin_core::config::parse_duration(&t)
            .ok_or_else(|| format!("channel {channel_name}: throttle: {t:?} is not a duration"))?,
        None => tocsin_core::throttle::DEFAULT_WINDOW,
    };
    let throttle = match channel.kind {
        ChannelKind::Sms if window.is_zero() => None,
        ChannelKind::Sms => Some(Throttle {
            hold: DynamoHold::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                tocsin_lambda::env("TABLE_NAME")?,
            ),
            timer: EventBridgeScheduler::new(
                aws_sdk_scheduler::Client::new(&sdk),
                tocsin_lambda::env("SCHEDULE_GROUP")?,
                tocsin_lambda::env("FLUSH_FUNCTION_ARN")?,
                tocsin_lambda::env("SCHEDULER_ROLE_ARN")?,
                env("SCHEDULER_DLQ_ARN"),
            )?,
            window,
        }),
        _ => None,
    };
    let deliverer = Deliverer {
        config: Arc::new(config),
        store: DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            tocsin_lambda::env("TABLE_NAME")?,
        ),
        bus: SnsBus::deliveries(
            aws_sdk_sns::Client::new(&sdk),
            tocsin_lambda::env("DELIVERIES_TOPIC_ARN")?,
        ),
        notifier,
        clock: SystemClock,
        sleeper: TokioSleeper,
        settings: Settings {
            policy: RetryPolicy::default(),
            invocations: 3,
            links: LinkSettings {
                base_url: tocsin_lambda::env("API_BASE_URL")?,
                keys: link_keys,
                ttl: Duration::from_secs(24 * 3600),
            },
        },
        throttle,
    };
    let deliverer = &deliverer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Input>| async move {
        let left = event
            .context
            .deadline()
            .duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::from_secs(10));
        match event.payload {
            Input::Flush { flush } => {
                let entries = deliverer
                    .flush(&flush, left)
                    .await
                    .map_err(FunctionError::from)?;
                log_entries(&entries);
                Ok::<_, Error>(serde_json::json!({ "flushed": entries.len() }))
            }
            Input::Sns(sns) => {
                let jobs: Vec<DeliveryJob> = tocsin_lambda::sns::messages(&sns, "a delivery job")?;
                for job in &jobs {
                    let entries = deliverer
                        .deliver(job, left)
                        .await
                        .map_err(FunctionError::from)?;
                    log_entries(&entries);
                }
                Ok(serde_json::json!({ "delivered": jobs.len() }))
            }
        }
    }))
    .await
}
