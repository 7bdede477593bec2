//! The Secrets Manager adapter against moto's Secrets Manager: a function's secrets read once at cold
//! start, key rings with two keys during a rotation, and errors that name the secret but never show
//! a value.

#![allow(clippy::unwrap_used)]

use aws_sdk_secretsmanager::Client;
use chrono::{DateTime, Utc};
use tocsin_aws::{SecretsError, SecretsManager, emulator, wiring};
use tocsin_core::token::{self, Claims, KeyRingError};

const OLD: &str = "old-key-0123456789abcdef0123456789abcdef";
const NEW: &str = "new-key-0123456789abcdef0123456789abcdef";

async fn client(test: &str) -> Option<Client> {
    Some(Client::new(&emulator::config_for(test).await?))
}

async fn put(c: &Client, what: &str, value: &str) -> String {
    c.create_secret()
        .name(emulator::unique_name(what))
        .secret_string(value)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

fn claims() -> Claims {
    Claims {
        alert_id: "a1".into(),
        action: "ack".into(),
        recipient: "carol".into(),
        expires_at: DateTime::from_timestamp(2_000_000_000, 0).unwrap(),
    }
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000, 0).unwrap()
}

#[tokio::test]
async fn links_signed_before_a_rotation_still_verify_during_it() {
    let Some(c) = client("links_signed_before_a_rotation_still_verify_during_it").await else {
        return;
    };
    let before = put(
        &c,
        "links",
        &format!(r#"{{"current": "k1", "k1": "{OLD}"}}"#),
    )
    .await;
    let during = put(
        &c,
        "links",
        &format!(r#"{{"current": "k2", "k1": "{OLD}", "k2": "{NEW}"}}"#),
    )
    .await;
    let sm = SecretsManager::new(c.clone());
    let old_ring = sm.key_ring(&before).await.unwrap();
    let ring = sm.key_ring(&during).await.unwrap();
    assert_eq!(ring.current_id(), "k2");
    let old_link = token::sign(&old_ring, &claims());
    let new_link = token::sign(&ring, &claims());
    assert!(new_link.starts_with("k2."));
    assert_eq!(token::verify(&ring, &old_link, now()), Ok(claims()));
    assert_eq!(token::verify(&ring, &new_link, now()), Ok(claims()));
    assert!(!format!("{ring:?}").contains(NEW), "{ring:?}");
}

#[tokio::test]
async fn the_wiring_reads_each_functions_secrets_by_the_arn_its_environment_names() {
    let sdk = match emulator::config_for(
        "the_wiring_reads_each_functions_secrets_by_the_arn_its_environment_names",
    )
    .await
    {
        Some(s) => s,
        None => return,
    };
    let c = Client::new(&sdk);
    let links = put(
        &c,
        "links",
        &format!(r#"{{"current": "k1", "k1": "{NEW}"}}"#),
    )
    .await;
    let channel = put(
        &c,
        "teams",
        r#"{"teams-webhook": "https://example.invalid/h?sig=S1G"}"#,
    )
    .await;
    let env = |n: &str| match n {
        "LINK_KEYS_SECRET_ARN" => Some(links.clone()),
        "CHANNEL_SECRET_ARN" => Some(channel.clone()),
        _ => None,
    };
    assert_eq!(
        wiring::link_keys(&sdk, env).await.unwrap().current_id(),
        "k1"
    );
    let secrets = wiring::channel_secrets(&sdk, env).await.unwrap();
    assert_eq!(
        secrets.get("teams-webhook"),
        Some("https://example.invalid/h?sig=S1G")
    );
    // A channel without secret settings has no secret, and needs none.
    assert_eq!(
        wiring::channel_secrets(&sdk, |_| None).await.unwrap(),
        Default::default()
    );
    let missing = wiring::integration_keys(&sdk, env).await.unwrap_err();
    assert_eq!(
        missing.to_string(),
        "environment variable INTEGRATION_KEYS_SECRET_ARN is not set"
    );
}

#[tokio::test]
async fn a_short_key_a_missing_secret_or_a_malformed_one_fails_the_cold_start_without_a_value() {
    let Some(c) = client(
        "a_short_key_a_missing_secret_or_a_malformed_one_fails_the_cold_start_without_a_value",
    )
    .await
    else {
        return;
    };
    let sm = SecretsManager::new(c.clone());
    let short = put(&c, "short", r#"{"current": "k1", "k1": "SHORTSECRET"}"#).await;
    let e = sm.key_ring(&short).await.unwrap_err();
    assert!(
        matches!(&e, SecretsError::Keys { source: KeyRingError::TooShort(id), .. } if id == "k1"),
        "{e}"
    );
    assert!(!e.to_string().contains("SHORTSECRET"), "{e}");
    let malformed = put(&c, "bad", "plain-text-S3CR3T").await;
    let e = sm.read(&malformed).await.unwrap_err();
    assert!(matches!(e, SecretsError::Format { .. }), "{e}");
    assert!(!e.to_string().contains("S3CR3T"), "{e}");
    let e = sm
        .read("arn:aws:secretsmanager:us-east-1:123456789012:secret:tocsin-nope-AbCdEf")
        .await
        .unwrap_err();
    assert!(matches!(e, SecretsError::Read { .. }), "{e}");
    assert!(e.to_string().contains("tocsin-nope"), "{e}");
}
