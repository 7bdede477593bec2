//! The router on AWS adapters, wired from the environment the way both the router and the escalate
//! functions need it (one place, so the two cannot drift).

use std::sync::Arc;

use aws_config::SdkConfig;
use thiserror::Error;
use tocsin_core::config::Config;
use tocsin_core::ports::SystemClock;
use tocsin_core::router::{Router, RouterSettings};

use crate::{DynamoStore, EventBridgeScheduler, SchedulerConfigError, SnsBus};

/// The router on DynamoDB, the deliveries topic and EventBridge Scheduler.
pub type AwsRouter = Router<DynamoStore, SnsBus, EventBridgeScheduler, SystemClock>;

/// A setting the functions need is missing.
#[derive(Debug, Error)]
pub enum WiringError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    /// The scheduler settings are wrong.
    #[error(transparent)]
    Scheduler(#[from] SchedulerConfigError),
    /// A secret could not be read at cold start.
    #[cfg(feature = "secretsmanager")]
    #[error(transparent)]
    Secrets(#[from] crate::SecretsError),
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

fn need(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<String, WiringError> {
    get(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(WiringError::MissingEnv(name))
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
