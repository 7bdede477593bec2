//! One-click action tokens: HMAC-SHA256 over alert id, action, recipient and expiry, keyed by a secret
//! the deliver and api functions share. A token in a link authorises exactly one action on one alert
//! for one recipient until it expires; a GET on the link only shows a confirm page (mail scanners follow
//! links), a POST performs it.
//!
//! Form: `base64url(alert_id "\n" action "\n" recipient "\n" expiry_unix) "." base64url(mac)`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// What a token was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The alert.
    pub alert_id: String,
    /// `ack` or `resolve`.
    pub action: String,
    /// Who the link was sent to (channel target), for the audit.
    pub recipient: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Why a token was refused. Says nothing about the key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Not a token at all.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match (tampered, or another key).
    #[error("invalid token signature")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired at {0}")]
    Expired(String),
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(payload);
    m
}

/// Makes a token for `claims` with `key`.
pub fn sign(key: &[u8], claims: &Claims) -> String {
    let payload = format!(
        "{}\n{}\n{}\n{}",
        claims.alert_id,
        claims.action,
        claims.recipient,
        claims.expires_at.timestamp()
    );
    let tag = mac(key, payload.as_bytes()).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Checks a token's signature (in constant time) and expiry at `now`; returns what it authorises.
pub fn verify(key: &[u8], token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
    let (p, t) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| TokenError::Malformed)?;
    mac(key, &payload)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let text = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
    let mut parts = text.split('\n');
    let (Some(alert_id), Some(action), Some(recipient), Some(exp), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    let exp: i64 = exp.parse().map_err(|_| TokenError::Malformed)?;
    let expires_at = DateTime::from_timestamp(exp, 0).ok_or(TokenError::Malformed)?;
    if now >= expires_at {
        return Err(TokenError::Expired(crate::model::format_time(&expires_at)));
    }
    Ok(Claims {
        alert_id: alert_id.to_string(),
        action: action.to_string(),
        recipient: recipient.to_string(),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            alert_id: "a1".into(),
            action: "ack".into(),
            recipient: "alice".into(),
            expires_at: DateTime::from_timestamp(2_000_000_000, 0).unwrap(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).unwrap()
    }

    #[test]
    fn a_token_verifies_with_its_key_until_it_expires() {
        let t = sign(b"k1", &claims());
        assert_eq!(verify(b"k1", &t, now()), Ok(claims()));
        let later = DateTime::from_timestamp(2_000_000_000, 0).unwrap();
        assert!(matches!(
            verify(b"k1", &t, later),
            Err(TokenError::Expired(_))
        ));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let t = sign(b"k1", &claims());
        assert_eq!(verify(b"k2", &t, now()), Err(TokenError::BadSignature));
        let other = sign(
            b"k1",
            &Claims {
                action: "resolve".into(),
                ..claims()
            },
        );
        // The payload of one token with the signature of another: refused.
        let forged = format!(
            "{}.{}",
            other.split('.').next().unwrap(),
            t.split('.').nth(1).unwrap()
        );
        assert_eq!(verify(b"k1", &forged, now()), Err(TokenError::BadSignature));
        assert_eq!(verify(b"k1", "garbage", now()), Err(TokenError::Malformed));
        assert_eq!(verify(b"k1", "a.b.c", now()), Err(TokenError::Malformed));
    }
}
