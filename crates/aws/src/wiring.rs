//! The one wiring module: every function's `main.rs` builds its adapters here, from the environment
//! (read through `get`) and one `SdkConfig` per cold start, and hands them to its generic handler.
//! The router, escalate and api functions share [`router_from_env`] (so they cannot drift); ingest
//! takes [`ingest_from_env`]; a deliver function takes [`deliver_from_env`], which builds its
//! channel's sender from the notifier registry ([`crate::notifier`]) and its SMS throttle. Secrets
//! are read here, once, at cold start ([`link_keys`], [`integration_keys`], [`channel_secrets`]).
//!
//! The `SdkConfig` comes from [`sdk`]: the SDK's default chain (Lambda's environment credentials and
//! region) with the HTTPS client of [`crate::https`], whose roots are compiled in.
//!
//! Everything a function needs and lacks fails the cold start with a [`WiringError`] naming the
//! variable or setting, never its value.

use std::sync::Arc;

use aws_config::SdkConfig;
use thiserror::Error;
use tocsin_core::config::Config;
use tocsin_core::ports::SystemClock;
use tocsin_core::router::{Router, RouterSettings};
use tocsin_lambda::MissingEnv;

use crate::{DynamoPages, DynamoStore, EventBridgeScheduler, SchedulerConfigError, SnsBus};

/// The router on DynamoDB, the deliveries topic and EventBridge Scheduler.
pub type AwsRouter = Router<DynamoStore, SnsBus, EventBridgeScheduler, SystemClock>;

/// A setting the functions need is missing or wrong.
#[derive(Debug, Error)]
pub enum WiringError {
    /// A required variable is unset or empty.
    #[error(transparent)]
    MissingEnv(#[from] MissingEnv),
    /// The HTTPS client could not be built.
    #[error("https client: {0}")]
    Https(#[from] aws_smithy_http_client::HttpClientError),
    /// The scheduler settings are wrong.
    #[error(transparent)]
    Scheduler(#[from] SchedulerConfigError),
    /// A secret could not be read at cold start.
    #[cfg(feature = "secretsmanager")]
    #[error(transparent)]
    Secrets(#[from] crate::SecretsError),
    /// `CHANNEL_NAME` names no channel of the config.
    #[error("CHANNEL_NAME={0} is not a channel of the config")]
    UnknownChannel(String),
    /// A setting of the channel refers to a variable or secret entry that is not set (named, never
    /// its value).
    #[error("channel {channel}: {key}: {reference} is not set")]
    Setting {
        /// The channel.
        channel: String,
        /// The setting.
        key: String,
        /// What it refers to (`SLACK_WEBHOOK_URL`, `secret teams-webhook`).
        reference: String,
    },
    /// The channel's `throttle` is not a duration.
    #[error("channel {channel}: throttle: {value:?} is not a duration")]
    Throttle {
        /// The channel.
        channel: String,
        /// What it says.
        value: String,
    },
    /// An email or SMS sender setting is wrong.
    #[cfg(feature = "deliver")]
    #[error(transparent)]
    Sender(#[from] crate::SenderConfigError),
    /// An HTTP channel could not be built from its settings.
    #[cfg(feature = "deliver")]
    #[error(transparent)]
    Channel(#[from] tocsin_channels::BuildError),
}

/// The SDK configuration of a cold start: the default chain of credentials, region and settings
/// (on Lambda, the environment), with the HTTPS client of [`crate::https`], whose roots are compiled
/// in. Every function's `main.rs` loads it once.
pub async fn sdk() -> Result<SdkConfig, WiringError> {
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::https::client()?)
        .retry_config(retry_config())
        .load()
        .await)
}

/// The functions' SDK retry: the standard mode with 5 attempts (the SDK's default is 3), backoff
/// capped at 2 s so that five fit in an invocation. Lambda retries a failed asynchronous invocation
/// only twice, a minute and two apart, and the retry repeats every call before the one that failed;
/// a throttle or 5xx absorbed inside the call costs far less. `make chaos` at 30 % faults with the
/// default dead-lettered 48 of 752 deliveries, 26 of them on a DynamoDB call that failed three times
/// running.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(5)
        .with_max_backoff(std::time::Duration::from_secs(2))
}

/// Builds the router from `TABLE_NAME`, `DELIVERIES_TOPIC_ARN` and the scheduler's variables, read
/// through `get`; clients come from `sdk`, built once per cold start.
pub fn router_from_env(
    config: Config,
    sdk: &SdkConfig,
    get: impl Fn(&str) -> Option<String>,
) -> Result<AwsRouter, WiringError> {
    let table = need(&get, "TABLE_NAME")?;
    let topic = need(&get, "DELIVERIES_TOPIC_ARN")?;
    let scheduler = EventBridgeScheduler::from_env(aws_sdk_scheduler::Client::new(sdk), &get)?;
    Ok(Router {
        config: Arc::new(config),
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table),
        bus: SnsBus::deliveries(aws_sdk_sns::Client::new(sdk), topic),
        scheduler,
        clock: SystemClock,
        settings: RouterSettings::default(),
    })
}

/// The ingest function's adapters: the alerts topic, the Health page store, and what its sweep
/// timer needs (built per invocation, targeting the function as invoked).
pub struct IngestWiring {
    /// The alerts topic (the router's input).
    pub bus: SnsBus,
    /// Pages of paged Health events, in the store's table.
    pub pages: DynamoPages,
    scheduler: aws_sdk_scheduler::Client,
    group: String,
    role: String,
    dead_letter: Option<String>,
}

impl IngestWiring {
    /// The sweep timer of an invocation of `function_arn` (cheap: the client is shared), checking
    /// the values as [`EventBridgeScheduler::new`] does.
    pub fn sweep_timer(
        &self,
        function_arn: &str,
    ) -> Result<EventBridgeScheduler, SchedulerConfigError> {
        EventBridgeScheduler::new(
            self.scheduler.clone(),
            self.group.as_str(),
            function_arn,
            self.role.as_str(),
            self.dead_letter.clone(),
        )
    }
}

/// Builds the ingest function's adapters from `ALERTS_TOPIC_ARN`, `TABLE_NAME`, `SCHEDULE_GROUP`,
/// `SCHEDULER_ROLE_ARN` and (optional) `SCHEDULER_DLQ_ARN`.
pub fn ingest_from_env(
    sdk: &SdkConfig,
    get: impl Fn(&str) -> Option<String>,
) -> Result<IngestWiring, WiringError> {
    Ok(IngestWiring {
        bus: SnsBus::alerts(
            aws_sdk_sns::Client::new(sdk),
            need(&get, "ALERTS_TOPIC_ARN")?,
        ),
        pages: DynamoPages::new(
            aws_sdk_dynamodb::Client::new(sdk),
            need(&get, "TABLE_NAME")?,
        ),
        scheduler: aws_sdk_scheduler::Client::new(sdk),
        group: need(&get, "SCHEDULE_GROUP")?,
        role: need(&get, "SCHEDULER_ROLE_ARN")?,
        dead_letter: get("SCHEDULER_DLQ_ARN"),
    })
}

fn need(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<String, WiringError> {
    Ok(tocsin_lambda::required(get, name)?)
}

/// The one-click link keys, from the key secret `LINK_KEYS_SECRET_ARN` names (the api and every
/// deliver function read the same one): read once, at cold start.
#[cfg(feature = "secretsmanager")]
pub async fn link_keys(
    sdk: &SdkConfig,
    get: impl Fn(&str) -> Option<String>,
) -> Result<tocsin_core::token::KeyRing, WiringError> {
    key_ring(sdk, &need(&get, "LINK_KEYS_SECRET_ARN")?).await
}

/// The webhooks' integration keys, from the key secret `INTEGRATION_KEYS_SECRET_ARN` names (the
/// api's alone).
#[cfg(feature = "secretsmanager")]
pub async fn integration_keys(
    sdk: &SdkConfig,
    get: impl Fn(&str) -> Option<String>,
) -> Result<tocsin_core::token::KeyRing, WiringError> {
    key_ring(sdk, &need(&get, "INTEGRATION_KEYS_SECRET_ARN")?).await
}

/// The key ring of the key secret `arn`.
#[cfg(feature = "secretsmanager")]
async fn key_ring(sdk: &SdkConfig, arn: &str) -> Result<tocsin_core::token::KeyRing, WiringError> {
    let secrets = crate::SecretsManager::new(aws_sdk_secretsmanager::Client::new(sdk));
    Ok(secrets.key_ring(arn).await?)
}

/// The `{secret: NAME}` settings of a deliver function's channel, from the secret
/// `CHANNEL_SECRET_ARN` names (that function's alone); empty when the variable is unset (a channel
/// with no secret setting).
#[cfg(feature = "secretsmanager")]
pub async fn channel_secrets(
    sdk: &SdkConfig,
    get: impl Fn(&str) -> Option<String>,
) -> Result<tocsin_core::secret::SecretMap, WiringError> {
    match get("CHANNEL_SECRET_ARN").filter(|v| !v.trim().is_empty()) {
        None => Ok(tocsin_core::secret::SecretMap::default()),
        Some(arn) => {
            let secrets = crate::SecretsManager::new(aws_sdk_secretsmanager::Client::new(sdk));
            Ok(secrets.read(&arn).await?)
        }
    }
}

/// A deliver function's adapters: the store, the deliveries topic (fallbacks), its channel's sender,
/// the SMS throttle's parts, and what one-click links need.
#[cfg(feature = "deliver")]
pub struct DeliverWiring {
    /// The channel (`CHANNEL_NAME`).
    pub channel: String,
    /// Claims and audit.
    pub store: DynamoStore,
    /// Where fallback jobs go.
    pub bus: SnsBus,
    /// The channel's sender.
    pub notifier: crate::notifier::AnyNotifier,
    /// An SMS channel's throttle (none for other kinds, or a `throttle` of zero): held messages in
    /// the store's table, flush schedules targeting `FLUSH_FUNCTION_ARN` (this function).
    pub throttle: Option<SmsThrottle>,
    /// The API's public base URL, for one-click links (`API_BASE_URL`).
    pub api_base_url: String,
    /// The keys one-click links are signed with.
    pub link_keys: tocsin_core::token::KeyRing,
}

/// The SMS throttle on AWS.
#[cfg(feature = "deliver")]
pub type SmsThrottle = tocsin_core::throttle::Throttle<crate::DynamoHold, EventBridgeScheduler>;

/// Builds a deliver function from `CHANNEL_NAME` (its channel in `config`), `TABLE_NAME`,
/// `DELIVERIES_TOPIC_ARN`, `API_BASE_URL`, the link keys and the channel's secret, and for an SMS
/// channel the throttle's `SCHEDULE_GROUP`, `FLUSH_FUNCTION_ARN`, `SCHEDULER_ROLE_ARN` and (optional)
/// `SCHEDULER_DLQ_ARN`. The sender is validated here: a bad channel config fails the cold start, not
/// the first page.
#[cfg(feature = "deliver")]
pub async fn deliver_from_env(
    config: &Config,
    sdk: &SdkConfig,
    get: impl Fn(&str) -> Option<String>,
) -> Result<DeliverWiring, WiringError> {
    use tocsin_core::config::ChannelKind;
    let name = need(&get, "CHANNEL_NAME")?;
    let channel = config
        .channels
        .get(&name)
        .ok_or_else(|| WiringError::UnknownChannel(name.clone()))?;
    // Read once, at cold start, and held for the sandbox's life.
    let link_keys = link_keys(sdk, &get).await?;
    let secrets = channel_secrets(sdk, &get).await?;
    let notifier = notifier(&name, channel, sdk, &get, &secrets)?;
    // SMS: one message a recipient per window (the channel's `throttle`, default a minute).
    let window = match setting(&name, channel, "throttle", &get, &secrets)? {
        Some(t) => tocsin_core::config::parse_duration(&t).ok_or(WiringError::Throttle {
            channel: name.clone(),
            value: t,
        })?,
        None => tocsin_core::throttle::DEFAULT_WINDOW,
    };
    let throttle = match channel.kind {
        ChannelKind::Sms if window.is_zero() => None,
        ChannelKind::Sms => Some(SmsThrottle {
            hold: crate::DynamoHold::new(
                aws_sdk_dynamodb::Client::new(sdk),
                need(&get, "TABLE_NAME")?,
            ),
            timer: EventBridgeScheduler::new(
                aws_sdk_scheduler::Client::new(sdk),
                need(&get, "SCHEDULE_GROUP")?,
                need(&get, "FLUSH_FUNCTION_ARN")?,
                need(&get, "SCHEDULER_ROLE_ARN")?,
                get("SCHEDULER_DLQ_ARN"),
            )?,
            window,
        }),
        _ => None,
    };
    Ok(DeliverWiring {
        store: DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            need(&get, "TABLE_NAME")?,
        ),
        bus: SnsBus::deliveries(
            aws_sdk_sns::Client::new(sdk),
            need(&get, "DELIVERIES_TOPIC_ARN")?,
        ),
        notifier,
        throttle,
        api_base_url: need(&get, "API_BASE_URL")?,
        link_keys,
        channel: name,
    })
}

/// The notifier registry's factory: the sender of `channel`'s kind, built and validated from its
/// settings.
#[cfg(feature = "deliver")]
fn notifier(
    name: &str,
    channel: &tocsin_core::config::Channel,
    sdk: &SdkConfig,
    get: &impl Fn(&str) -> Option<String>,
    secrets: &tocsin_core::secret::SecretMap,
) -> Result<crate::notifier::AnyNotifier, WiringError> {
    use crate::notifier::AnyNotifier;
    use crate::{EumSms, SesEmail, SnsSms};
    use tocsin_core::config::ChannelKind;
    let setting = |key: &str| setting(name, channel, key, get, secrets);
    Ok(match channel.kind {
        ChannelKind::Email => {
            let from = setting("from")?.unwrap_or_default();
            let mut ses = SesEmail::new(aws_sdk_sesv2::Client::new(sdk), from)?;
            // The channel's own set, or the stack's (`EMAIL_CONFIGURATION_SET`), whose send events
            // come back to this function as receipts (`tocsin_core::receipt`).
            if let Some(c) =
                setting("configuration_set")?.or_else(|| get("EMAIL_CONFIGURATION_SET"))
            {
                ses = ses.with_configuration_set(c)?;
            }
            if let Some(r) = setting("reply_to")? {
                ses = ses.with_reply_to(r)?;
            }
            AnyNotifier::Email(ses)
        }
        ChannelKind::Sms => {
            // End User Messaging: through the channel's configuration set or the stack's
            // (`SMS_CONFIGURATION_SET`), whose events come back to this function as receipts.
            if setting("provider")?.as_deref() == Some("end_user_messaging") {
                let mut sms = EumSms::new(aws_sdk_pinpointsmsvoicev2::Client::new(sdk));
                if let Some(id) = setting("origination_identity")? {
                    sms = sms.with_origination_identity(id)?;
                }
                if let Some(c) =
                    setting("configuration_set")?.or_else(|| get("SMS_CONFIGURATION_SET"))
                {
                    sms = sms.with_configuration_set(c)?;
                }
                return Ok(AnyNotifier::EumSms(sms));
            }
            let mut sms = SnsSms::new(aws_sdk_sns::Client::new(sdk));
            if let Some(id) = setting("sender_id")? {
                sms = sms.with_sender_id(id)?;
            }
            if let Some(n) = setting("origination_number")? {
                sms = sms.with_origination_number(n)?;
            }
            AnyNotifier::Sms(sms)
        }
        _ => {
            let resolve = |s: &tocsin_core::config::Setting| {
                tocsin_core::secret::resolve_setting(s, get, secrets)
                    .map_err(|reference| tocsin_channels::SecretError::NotSet { reference })
            };
            AnyNotifier::Http(tocsin_channels::build(channel, &resolve)?)
        }
    })
}

/// The value of `channel`'s setting `key`, if it has one: a literal, a variable, or an entry of the
/// channel's secret.
#[cfg(feature = "deliver")]
fn setting(
    name: &str,
    channel: &tocsin_core::config::Channel,
    key: &str,
    get: &impl Fn(&str) -> Option<String>,
    secrets: &tocsin_core::secret::SecretMap,
) -> Result<Option<String>, WiringError> {
    channel
        .settings
        .get(key)
        .map(|s| {
            tocsin_core::secret::resolve_setting(s, get, secrets).map_err(|reference| {
                WiringError::Setting {
                    channel: name.to_string(),
                    key: key.to_string(),
                    reference,
                }
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{BehaviorVersion, Region};

    #[test]
    fn a_missing_variable_fails_the_cold_start_by_name() {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let config = tocsin_core::config::load(
            "channels: {s: {type: sms}}\nroute: {notify: [{channel: s, to: [\"+447700900001\"]}]}\n",
        )
        .unwrap();
        let err = router_from_env(config.clone(), &sdk, |n| {
            (n == "TABLE_NAME").then(|| "t".into())
        })
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "environment variable DELIVERIES_TOPIC_ARN is not set"
        );
        let err = router_from_env(config, &sdk, |n| match n {
            "TABLE_NAME" | "DELIVERIES_TOPIC_ARN" => Some("x".into()),
            _ => None,
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("SCHEDULE_GROUP"), "{err}");
    }
}
