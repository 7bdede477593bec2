//! A secret as the functions read it at cold start: one JSON object of string values (a Secrets
//! Manager `SecretString`), held for the life of the sandbox. Nothing here ever prints a value: the
//! `Debug` form lists the names only, and a secret that is not such an object is refused with a fixed
//! reason (a JSON parser's message can quote the text it choked on). [`resolve_setting`] reads a
//! channel setting through one.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

/// The named values of one secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretMap(BTreeMap<String, String>);

/// A secret that is not a JSON object of strings. Says where, never what.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the secret is not a JSON object of string values ({0})")]
pub struct SecretFormatError(&'static str);

impl SecretFormatError {
    /// The secret has no text (a binary secret).
    pub const NOT_TEXT: SecretFormatError = SecretFormatError("binary, not text");
}

impl SecretMap {
    /// Reads `{"name": "value", ...}`.
    pub fn parse(text: &str) -> Result<SecretMap, SecretFormatError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|_| SecretFormatError("not JSON"))?;
        let obj = v.as_object().ok_or(SecretFormatError("not an object"))?;
        let mut out = BTreeMap::new();
        for (k, v) in obj {
            let v = v
                .as_str()
                .ok_or(SecretFormatError("a value is not a string"))?;
            out.insert(k.clone(), v.to_string());
        }
        Ok(SecretMap(out))
    }

    /// The map of `pairs` (tests, `tocsin serve`).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> SecretMap {
        SecretMap(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The value named `name`, if non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Debug for SecretMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Resolves a channel setting: a literal as written, `{env: NAME}` from the environment, `{secret:
/// NAME}` from the channel's secret (read from Secrets Manager at cold start: `CHANNEL_SECRET_ARN`),
/// never from the environment. The error names the reference (`SLACK_WEBHOOK_URL`, `secret
/// teams-webhook`), never a value.
pub fn resolve_setting(
    setting: &crate::config::Setting,
    env: impl Fn(&str) -> Option<String>,
    secrets: &SecretMap,
) -> Result<String, String> {
    use crate::config::Setting;
    match setting {
        Setting::Literal(v) => Ok(v.clone()),
        Setting::Env(name) => env(name).filter(|v| !v.is_empty()).ok_or(name.clone()),
        Setting::Secret(name) => secrets
            .get(name)
            .map(str::to_string)
            .ok_or_else(|| format!("secret {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_read_by_name_and_never_shown() {
        let s = SecretMap::parse(
            r#"{"teams-webhook": "https://x.example/hook?sig=S3CR3T", "empty": ""}"#,
        )
        .unwrap();
        assert_eq!(
            s.get("teams-webhook"),
            Some("https://x.example/hook?sig=S3CR3T")
        );
        assert_eq!(s.get("empty"), None);
        assert_eq!(s.get("nope"), None);
        assert!(!format!("{s:?}").contains("S3CR3T"));
    }

    #[test]
    fn a_malformed_secret_is_refused_without_quoting_it() {
        for bad in [
            r#"S3CR3T"#,
            r#"["S3CR3T"]"#,
            r#"{"k": 1}"#,
            r#"{"k": "S3CR3T""#,
        ] {
            let e = SecretMap::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("S3CR3T"), "{e}");
        }
    }
}
