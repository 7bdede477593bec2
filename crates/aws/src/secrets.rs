//! Secrets at cold start: each function reads its own secrets from Secrets Manager once, in `main`,
//! and holds them for the life of the sandbox (no environment variable ever carries one; the
//! environment names the secrets' ARNs). A secret is one JSON object of strings
//! ([`SecretMap`]); a key secret (`{"current": "k2", "k2": "...", "k1": "..."}`) is a [`KeyRing`].
//! Errors name the secret's ARN and the service's reason, never a value.

use aws_sdk_secretsmanager::Client;
use thiserror::Error;
use tocsin_core::secret::{SecretFormatError, SecretMap};
use tocsin_core::token::{KeyRing, KeyRingError};

use crate::sdk_error::{bounded, describe};

/// Reads secrets.
#[derive(Clone, Debug)]
pub struct SecretsManager {
    client: Client,
}

/// A secret could not be read or is not what it should be.
#[derive(Debug, Error)]
pub enum SecretsError {
    /// Secrets Manager refused or failed (access denied, no such secret, throttled, network).
    #[error("secret {arn}: {reason}")]
    Read {
        /// The secret.
        arn: String,
        /// The service's error code and message, one line.
        reason: String,
    },
    /// The secret is binary, or not a JSON object of strings.
    #[error("secret {arn}: {source}")]
    Format {
        /// The secret.
        arn: String,
        /// What is wrong with it (never its text).
        source: SecretFormatError,
    },
    /// A key secret's keys cannot make a ring (no current key, a key under 32 bytes).
    #[error("secret {arn}: {source}")]
    Keys {
        /// The secret.
        arn: String,
        /// What is wrong with them (key ids only).
        source: KeyRingError,
    },
}

impl SecretsManager {
    /// Secrets through `client`.
    pub fn new(client: Client) -> Self {
        SecretsManager { client }
    }

    /// The secret `arn`'s current value, as named strings.
    pub async fn read(&self, arn: &str) -> Result<SecretMap, SecretsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| SecretsError::Read {
                arn: arn.to_string(),
                reason: bounded(&describe(&e)),
            })?;
        let text = out.secret_string().ok_or_else(|| SecretsError::Format {
            arn: arn.to_string(),
            source: SecretFormatError::NOT_TEXT,
        })?;
        SecretMap::parse(text).map_err(|source| SecretsError::Format {
            arn: arn.to_string(),
            source,
        })
    }

    /// The key ring the secret `arn` holds.
    pub async fn key_ring(&self, arn: &str) -> Result<KeyRing, SecretsError> {
        KeyRing::from_secret(&self.read(arn).await?).map_err(|source| SecretsError::Keys {
            arn: arn.to_string(),
            source,
        })
    }
}
