//! Channel definitions: the settings each kind takes and requires, and secrets kept out of the file.
//!
//! A secret setting is only ever a reference, `{env: NAME}` or `{secret: NAME}`; a value written inline
//! is refused without being repeated in the message, since messages end up in CI logs.

use std::collections::BTreeMap;

use marked_yaml::Node;

use super::decode::Decoder;
use super::node::{Fields, as_map, as_str, entries, key_pos, map_pos, one_of, parsed, pos};
use super::recipients::{is_e164, is_email_with_name};
use super::{Channel, ChannelKind, Setting};

/// Settings whose values are credentials or carry them (a webhook URL is a bearer token in disguise).
pub(super) const SECRET_SETTINGS: &[&str] = &[
    "webhook_url",
    "url",
    "routing_key",
    "signing_key",
    "bot_token",
];

/// Every setting any kind takes, for messages when the kind itself is unknown.
const ALL_SETTINGS: &[&str] = &[
    "type",
    "default_to",
    "fallback",
    "from",
    "reply_to",
    "configuration_set",
    "region",
    "sender_id",
    "origination_number",
    "throttle",
    "provider",
    "origination_identity",
    "webhook_url",
    "bot_token",
    "username",
    "icon_emoji",
    "routing_key",
    "url",
    "signing_key",
];

/// Who sends an SMS channel's messages: SNS (`Publish` to the number, the default) or AWS End User
/// Messaging (`SendTextMessage`, whose configuration set's events come back as send receipts).
pub const SMS_PROVIDERS: &[&str] = &["sns", "end_user_messaging"];

/// The keys a channel of `kind` takes, besides `type` and `default_to`.
pub(super) fn settings_for(kind: ChannelKind) -> &'static [&'static str] {
    match kind {
        ChannelKind::Email => &["from", "reply_to", "configuration_set", "region"],
        ChannelKind::Sms => &[
            "provider",
            "sender_id",
            "origination_number",
            "origination_identity",
            "configuration_set",
            "region",
            "throttle",
        ],
        ChannelKind::Slack => &["webhook_url", "bot_token", "username", "icon_emoji"],
        ChannelKind::Teams => &["webhook_url"],
        ChannelKind::Pagerduty => &["routing_key"],
        ChannelKind::Webhook => &["url", "signing_key"],
    }
}

/// `a` or `an`, for "an email channel".
pub(super) fn article(kind: ChannelKind) -> &'static str {
    if kind == ChannelKind::Email {
        "an"
    } else {
        "a"
    }
}

impl<'a> Decoder<'a> {
    pub(super) fn decode_channels(&mut self, node: &'a Node) {
        for (name, body) in entries(&mut self.p, node) {
            let Some(map) = as_map(&mut self.p, body) else {
                continue;
            };
            let at = map_pos(map);
            let kind = match map.get_node("type") {
                None => {
                    self.p.at(at, "missing key `type`");
                    None
                }
                Some(n) => parsed(&mut self.p, n, |s| {
                    ChannelKind::parse(s).ok_or_else(|| {
                        format!(
                            "unknown channel type `{s}` (expected email, sms, slack, teams, pagerduty or webhook)"
                        )
                    })
                }),
            };
            let mut settings = BTreeMap::new();
            for (key_node, value) in map.iter() {
                let key = key_node.as_str();
                if key == "type" || key == "default_to" || key == "fallback" {
                    continue;
                }
                let known = match kind {
                    Some(k) => settings_for(k).contains(&key),
                    // Without a kind only the union can be checked; the kind's own problem is reported.
                    None => ALL_SETTINGS.contains(&key),
                };
                if !known {
                    let message = match kind {
                        Some(k) => {
                            let mut expected = vec!["type", "default_to", "fallback"];
                            expected.extend_from_slice(settings_for(k));
                            format!(
                                "unknown setting `{key}` for {} {} channel (expected {})",
                                article(k),
                                k.as_str(),
                                one_of(&expected)
                            )
                        }
                        None => format!(
                            "unknown setting `{key}` (expected {})",
                            one_of(ALL_SETTINGS)
                        ),
                    };
                    self.p.at(key_pos(key_node), message);
                    continue;
                }
                if let Some(setting) = self.decode_setting(key, value) {
                    settings.insert(key.to_string(), setting);
                }
            }
            let Some(kind) = kind else {
                continue;
            };
            let written = |k: &str| {
                map.get_node(k)
                    .is_some_and(|n| !matches!(n, Node::Scalar(s) if super::node::is_null(s)))
            };
            let missing = match kind {
                ChannelKind::Email => (!written("from")).then_some("`from`"),
                ChannelKind::Sms => None,
                ChannelKind::Slack => {
                    if written("webhook_url") && written("bot_token") {
                        self.p.at(
                            at,
                            "a slack channel takes `webhook_url` or `bot_token`, not both",
                        );
                    }
                    (!written("webhook_url") && !written("bot_token"))
                        .then_some("`webhook_url` or `bot_token`")
                }
                ChannelKind::Teams => (!written("webhook_url")).then_some("`webhook_url`"),
                ChannelKind::Pagerduty => (!written("routing_key")).then_some("`routing_key`"),
                ChannelKind::Webhook => match (written("url"), written("signing_key")) {
                    (true, true) => None,
                    (false, true) => Some("`url`"),
                    (true, false) => Some("`signing_key`"),
                    (false, false) => Some("`url` and `signing_key`"),
                },
            };
            if kind == ChannelKind::Sms {
                let eum = matches!(map.get_node("provider"), Some(Node::Scalar(s)) if s.as_str() == "end_user_messaging");
                let (provider, theirs): (&str, &[&str]) = if eum {
                    ("end_user_messaging", &["sender_id", "origination_number"])
                } else {
                    ("sns", &["origination_identity", "configuration_set"])
                };
                for k in theirs {
                    if written(k) {
                        self.p.at(
                            at,
                            format!("`{k}` is not a setting of the SMS provider `{provider}`"),
                        );
                    }
                }
            }
            if let Some(missing) = missing {
                self.p.at(
                    at,
                    format!(
                        "{} {} channel needs {missing}",
                        article(kind),
                        kind.as_str()
                    ),
                );
            }
            let default_to = match map.get_node("default_to") {
                Some(n) if !matches!(n, Node::Scalar(s) if super::node::is_null(s)) => {
                    self.recipients(n, name, Some(kind))
                }
                _ => Vec::new(),
            };
            let fallback = map.get_node("fallback").and_then(|n| {
                let target = self.reference(n, super::decode::Section::Channels)?;
                if target == name {
                    self.p.at(pos(n), "a channel cannot fall back to itself");
                    return None;
                }
                Some(target.to_string())
            });
            self.channels.insert(
                name.to_string(),
                Channel {
                    name: name.to_string(),
                    kind,
                    settings,
                    default_to,
                    fallback,
                },
            );
        }
    }

    /// One setting's value. Never puts a secret setting's value into a message.
    fn decode_setting(&mut self, key: &str, value: &'a Node) -> Option<Setting> {
        if let Node::Scalar(s) = value {
            if super::node::is_null(s) {
                return None;
            }
        }
        if SECRET_SETTINGS.contains(&key) {
            return match value {
                Node::Mapping(_) => self.decode_secret_ref(value),
                Node::Scalar(_) => {
                    self.p.at(
                        pos(value),
                        format!(
                            "`{key}` is a secret and cannot be written inline: use {{env: NAME}} or {{secret: NAME}}"
                        ),
                    );
                    None
                }
                Node::Sequence(_) => {
                    self.p.at(
                        pos(value),
                        format!("`{key}` expects {{env: NAME}} or {{secret: NAME}}, found a list"),
                    );
                    None
                }
            };
        }
        let text = as_str(&mut self.p, value)?;
        let valid = match key {
            "from" | "reply_to" => is_email_with_name(text),
            "origination_number" => is_e164(text),
            "provider" => {
                if !SMS_PROVIDERS.contains(&text) {
                    self.p.at(
                        pos(value),
                        format!(
                            "unknown SMS `provider` `{text}` (expected {})",
                            one_of(SMS_PROVIDERS)
                        ),
                    );
                    return None;
                }
                true
            }
            "throttle" => {
                if super::parse_duration(text).is_none() {
                    self.p.at(
                        pos(value),
                        format!("invalid `throttle` `{text}`: a duration like `60s` or `2m`, or `0s` for none"),
                    );
                    return None;
                }
                true
            }
            _ => true,
        };
        if !valid {
            self.p
                .at(pos(value), format!("invalid `{key}` address `{text}`"));
            return None;
        }
        Some(Setting::Literal(text.to_string()))
    }

    /// `{env: NAME}` or `{secret: NAME}`.
    fn decode_secret_ref(&mut self, node: &'a Node) -> Option<Setting> {
        let f = Fields::new(&mut self.p, node, &["env", "secret"])?;
        match (f.get("env"), f.get("secret")) {
            (Some(n), None) => {
                let name = as_str(&mut self.p, n)?;
                let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    // Not quoted: a secret pasted here by mistake must not reach the logs either.
                    self.p.at(
                        pos(n),
                        "invalid environment variable name (letters, digits and _, not starting with a digit)",
                    );
                    return None;
                }
                Some(Setting::Env(name.to_string()))
            }
            (None, Some(n)) => {
                let name = as_str(&mut self.p, n)?;
                if name.is_empty() || name.chars().any(char::is_whitespace) {
                    self.p.at(
                        pos(n),
                        "invalid secret name (it cannot be empty or contain spaces)",
                    );
                    return None;
                }
                Some(Setting::Secret(name.to_string()))
            }
            (Some(_), Some(_)) => {
                self.p.at(f.pos, "give one of `env` or `secret`, not both");
                None
            }
            (None, None) => {
                if f.has("env") || f.has("secret") {
                    self.p.at(f.pos, "the secret reference names nothing");
                } else if f.is_empty() {
                    // Otherwise its unknown keys were reported, with the keys expected.
                    self.p.at(f.pos, "expected {env: NAME} or {secret: NAME}");
                }
                None
            }
        }
    }
}
