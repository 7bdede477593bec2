//! One-click action tokens: HMAC-SHA256 over alert id, action, recipient and expiry, keyed by a secret
//! the deliver and api functions share. A token in a link authorises exactly one action on one alert
//! for one recipient until it expires; a GET on the link only shows a confirm page (mail scanners follow
//! links), a POST performs it.
//!
//! Form: `kid "." base64url(alert_id "\n" action "\n" recipient "\n" expiry_unix) "." base64url(mac)`,
//! the MAC over `kid "\n"` and the payload. The key id names the key of a [`KeyRing`] that signed
//! it, so that keys can rotate: the ring signs with its current key and verifies with any key it
//! holds (the new one and the old one while links made with the old one are still valid).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::secret::SecretMap;

/// The shortest key accepted: 32 bytes, HMAC-SHA256's block of strength.
pub const MIN_KEY_BYTES: usize = 32;

/// The name of the entry of a key secret that says which key signs.
pub const CURRENT: &str = "current";

/// Keys by id, one of them current. Never printed (its `Debug` shows the ids only).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRing {
    current: String,
    keys: BTreeMap<String, Vec<u8>>,
}

/// Why a set of keys cannot be a ring. Names key ids, never keys.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyRingError {
    /// The secret has no `current` entry.
    #[error("the key secret has no \"current\" entry naming the signing key")]
    NoCurrent,
    /// `current` names a key that is not there.
    #[error("the key secret's \"current\" names key {0:?}, which it does not hold")]
    UnknownCurrent(String),
    /// A key is shorter than [`MIN_KEY_BYTES`].
    #[error("key {0:?} is shorter than 32 bytes")]
    TooShort(String),
    /// A key id is not 1 to 32 of `A-Z a-z 0-9 _ -`.
    #[error("a key id must be 1 to 32 letters, digits, '_' or '-'")]
    BadId,
}

fn good_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl KeyRing {
    /// A ring of `keys` signing with `current`. Every key must be at least 32 bytes.
    pub fn new(
        current: &str,
        keys: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<KeyRing, KeyRingError> {
        let keys: BTreeMap<String, Vec<u8>> = keys.into_iter().collect();
        for (id, key) in &keys {
            if !good_id(id) {
                return Err(KeyRingError::BadId);
            }
            if key.len() < MIN_KEY_BYTES {
                return Err(KeyRingError::TooShort(id.clone()));
            }
        }
        if !keys.contains_key(current) {
            return Err(KeyRingError::UnknownCurrent(
                current.chars().take(32).collect(),
            ));
        }
        Ok(KeyRing {
            current: current.to_string(),
            keys,
        })
    }

    /// A ring of one key.
    pub fn single(id: &str, key: Vec<u8>) -> Result<KeyRing, KeyRingError> {
        KeyRing::new(id, [(id.to_string(), key)])
    }

    /// The ring a key secret holds: `{"current": "k2", "k2": "...", "k1": "..."}`, every entry but
    /// `current` a key named by its id.
    pub fn from_secret(secret: &SecretMap) -> Result<KeyRing, KeyRingError> {
        let current = secret.get(CURRENT).ok_or(KeyRingError::NoCurrent)?;
        KeyRing::new(
            current,
            secret
                .iter()
                .filter(|(k, _)| *k != CURRENT)
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
        )
    }

    /// The id of the signing key.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// The signing key.
    fn current_key(&self) -> &[u8] {
        self.keys.get(&self.current).map_or(&[], Vec::as_slice)
    }

    /// Whether `given` is one of the ring's keys (in time that depends only on the lengths): for
    /// integration keys, which callers present as they are.
    pub fn holds(&self, given: &[u8]) -> bool {
        // Every key is compared, so the time does not say which one matched.
        self.keys
            .values()
            .fold(false, |found, k| constant_time_eq(k, given) | found)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

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

fn mac(key: &[u8], kid: &str, payload: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(kid.as_bytes());
    m.update(b"\n");
    m.update(payload);
    m
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only (for keys a caller
/// presents, so that timing tells nothing about how much of a guess was right).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Makes a token for `claims` with the ring's current key.
pub fn sign(ring: &KeyRing, claims: &Claims) -> String {
    let payload = format!(
        "{}\n{}\n{}\n{}",
        claims.alert_id,
        claims.action,
        claims.recipient,
        claims.expires_at.timestamp()
    );
    let kid = ring.current_id();
    let tag = mac(ring.current_key(), kid, payload.as_bytes())
        .finalize()
        .into_bytes();
    format!(
        "{kid}.{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Checks a token's signature with the key its id names (in constant time) and its expiry at `now`;
/// returns what it authorises. A token of a key the ring no longer holds is a bad signature.
pub fn verify(ring: &KeyRing, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(kid), Some(p), Some(t), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    if !good_id(kid) {
        return Err(TokenError::Malformed);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| TokenError::Malformed)?;
    let key = ring.keys.get(kid).ok_or(TokenError::BadSignature)?;
    mac(key, kid, &payload)
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

    const K1: &[u8] = b"key-one-0123456789abcdef0123456789";
    const K2: &[u8] = b"key-two-0123456789abcdef0123456789";

    fn ring(current: &str, keys: &[(&str, &[u8])]) -> KeyRing {
        KeyRing::new(
            current,
            keys.iter().map(|(id, k)| (id.to_string(), k.to_vec())),
        )
        .unwrap()
    }

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
        let r = ring("k1", &[("k1", K1)]);
        let t = sign(&r, &claims());
        assert!(t.starts_with("k1."), "{t}");
        assert_eq!(verify(&r, &t, now()), Ok(claims()));
        let later = DateTime::from_timestamp(2_000_000_000, 0).unwrap();
        assert!(matches!(verify(&r, &t, later), Err(TokenError::Expired(_))));
    }

    #[test]
    fn during_a_rotation_links_of_both_keys_work_and_after_it_the_old_ones_stop() {
        let old = ring("k1", &[("k1", K1)]);
        let rotating = ring("k2", &[("k1", K1), ("k2", K2)]);
        let after = ring("k2", &[("k2", K2)]);
        let by_old = sign(&old, &claims());
        let by_new = sign(&rotating, &claims());
        assert!(by_new.starts_with("k2."));
        assert_eq!(verify(&rotating, &by_old, now()), Ok(claims()));
        assert_eq!(verify(&rotating, &by_new, now()), Ok(claims()));
        assert_eq!(verify(&after, &by_new, now()), Ok(claims()));
        assert_eq!(
            verify(&after, &by_old, now()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let r = ring("k1", &[("k1", K1)]);
        let t = sign(&r, &claims());
        let other_key = ring("k1", &[("k1", K2)]);
        assert_eq!(verify(&other_key, &t, now()), Err(TokenError::BadSignature));
        let other = sign(
            &r,
            &Claims {
                action: "resolve".into(),
                ..claims()
            },
        );
        // The payload of one token with the signature of another: refused.
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!("k1.{}.{}", other.split('.').nth(1).unwrap(), parts[2]);
        assert_eq!(verify(&r, &forged, now()), Err(TokenError::BadSignature));
        // The key id is signed: moving a token to another id of the same key fails.
        let both = ring("k1", &[("k1", K1), ("k9", K1)]);
        let moved = format!("k9.{}.{}", parts[1], parts[2]);
        assert_eq!(verify(&both, &moved, now()), Err(TokenError::BadSignature));
        assert_eq!(verify(&r, "garbage", now()), Err(TokenError::Malformed));
        assert_eq!(verify(&r, "a.b", now()), Err(TokenError::Malformed));
        assert_eq!(verify(&r, "k/1.b.c", now()), Err(TokenError::Malformed));
    }

    #[test]
    fn a_ring_needs_a_current_key_it_holds_and_keys_of_32_bytes() {
        let secret = SecretMap::from_pairs([("current", "k2"), ("k2", "x".repeat(32).as_str())]);
        assert_eq!(KeyRing::from_secret(&secret).unwrap().current_id(), "k2");
        let short = SecretMap::from_pairs([("current", "k2"), ("k2", "x".repeat(31).as_str())]);
        assert_eq!(
            KeyRing::from_secret(&short),
            Err(KeyRingError::TooShort("k2".into()))
        );
        let none = SecretMap::from_pairs([("k2", "x".repeat(32).as_str())]);
        assert_eq!(KeyRing::from_secret(&none), Err(KeyRingError::NoCurrent));
        let unknown = SecretMap::from_pairs([("current", "k3"), ("k2", "x".repeat(32).as_str())]);
        assert_eq!(
            KeyRing::from_secret(&unknown),
            Err(KeyRingError::UnknownCurrent("k3".into()))
        );
        let r = ring("k1", &[("k1", K1), ("k2", K2)]);
        assert!(r.holds(K2) && r.holds(K1) && !r.holds(b"key-two"));
        assert!(!format!("{r:?}").contains("0123456789"));
    }
}
