//! Which destinations a channel may send to: the deliver functions check every job against the
//! config before sending, because anyone who can publish to the deliveries topic could otherwise name
//! any phone number (toll fraud), any mailbox (mail from the verified SES identity) or any Slack
//! channel. A job's address must be one the config itself gives the channel: a person's contact of
//! the channel's kind (schedules page their members, who are people), an address in the channel's
//! `default_to`, or a literal `to` of a route or escalation level on that channel.

use thiserror::Error;

use crate::config::{ChannelKind, Config, EscalationTarget, Recipient, Route};
use crate::record::Target;

/// Why a destination was refused. Never repeats the address (someone's personal data, or an
/// attacker's number).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refused {
    /// The job names a channel the config does not have, or with another kind.
    #[error("channel {0} is not a channel of the config with this kind")]
    UnknownChannel(String),
    /// The address is not one the config gives the channel.
    #[error("channel {channel} is not configured to send to {whom}")]
    NotConfigured {
        /// The channel.
        channel: String,
        /// `person NAME's address` for a person of the config, else `this address`.
        whom: String,
    },
}

/// A person's contact for a channel of `kind`.
fn contact(config: &Config, person: &str, kind: ChannelKind) -> Option<String> {
    let p = config.people.get(person)?;
    match kind {
        ChannelKind::Email => p.email.clone(),
        ChannelKind::Sms => p.phone.clone(),
        ChannelKind::Slack => p.slack.clone(),
        _ => None,
    }
}

fn literal_in(recipients: &[Recipient], address: &str) -> bool {
    recipients
        .iter()
        .any(|r| matches!(r, Recipient::Address(a) if a == address))
}

fn in_routes(route: &Route, channel: &str, address: &str) -> bool {
    route
        .notify
        .iter()
        .any(|n| n.channel == channel && literal_in(&n.to, address))
        || route.routes.iter().any(|r| in_routes(r, channel, address))
}

/// Whether the config gives `target`'s channel its destination.
pub fn check(config: &Config, target: &Target) -> Result<(), Refused> {
    let channel = config
        .channels
        .get(&target.channel)
        .filter(|c| c.kind == target.channel_kind)
        .ok_or_else(|| Refused::UnknownChannel(target.channel.chars().take(40).collect()))?;
    let refused = || Refused::NotConfigured {
        channel: channel.name.clone(),
        whom: if config.people.contains_key(&target.target) {
            format!("person {}'s address", target.target)
        } else {
            "this address".into()
        },
    };
    let Some(address) = target.address.as_deref() else {
        // No address: the channel's one configured destination (a webhook URL, a PagerDuty key).
        return match channel.kind {
            ChannelKind::Email | ChannelKind::Sms | ChannelKind::Slack => Err(refused()),
            _ => Ok(()),
        };
    };
    // A person: exactly their contact for this kind.
    if config.people.contains_key(&target.target) {
        return if contact(config, &target.target, channel.kind).as_deref() == Some(address) {
            Ok(())
        } else {
            Err(refused())
        };
    }
    let literal = target.target == address
        && (literal_in(&channel.default_to, address)
            || in_routes(&config.route, &channel.name, address)
            || config.escalation_policies.values().any(|p| {
                p.levels.iter().any(|l| {
                    l.targets.iter().any(|t| {
                        matches!(t, EscalationTarget::Channel { channel: c, to }
                            if *c == channel.name && literal_in(to, address))
                    })
                })
            }));
    if literal { Ok(()) } else { Err(refused()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::config::load(
            r##"
channels:
  sms: {type: sms}
  mail: {type: email, from: "tocsin@example.com"}
  slack: {type: slack, webhook_url: {secret: s}, default_to: ["#ops"]}
  pd: {type: pagerduty, routing_key: {secret: pd}}
people:
  alice: {email: alice@example.com, phone: "+447700900001"}
route:
  notify: [{channel: sms, to: [{person: alice}]}, {channel: pd}]
  routes:
    - match: ['service = "db"']
      notify: [{channel: sms, to: ["+447700900099"]}, {channel: slack}]
"##,
        )
        .unwrap()
    }

    fn target(channel: &str, kind: ChannelKind, target: &str, address: Option<&str>) -> Target {
        Target {
            channel: channel.into(),
            channel_kind: kind,
            target: target.into(),
            address: address.map(String::from),
        }
    }

    #[test]
    fn the_configs_own_destinations_are_allowed() {
        let c = config();
        for t in [
            target("sms", ChannelKind::Sms, "alice", Some("+447700900001")),
            target(
                "mail",
                ChannelKind::Email,
                "alice",
                Some("alice@example.com"),
            ),
            target(
                "sms",
                ChannelKind::Sms,
                "+447700900099",
                Some("+447700900099"),
            ),
            target("slack", ChannelKind::Slack, "#ops", Some("#ops")),
            target("pd", ChannelKind::Pagerduty, "pd", None),
        ] {
            assert_eq!(check(&c, &t), Ok(()), "{t:?}");
        }
    }

    #[test]
    fn any_other_number_mailbox_or_channel_is_refused_without_echoing_it() {
        let c = config();
        for t in [
            target(
                "sms",
                ChannelKind::Sms,
                "+19005550100",
                Some("+19005550100"),
            ),
            target("sms", ChannelKind::Sms, "alice", Some("+19005550100")),
            target(
                "mail",
                ChannelKind::Email,
                "victim@example.org",
                Some("victim@example.org"),
            ),
            target("slack", ChannelKind::Slack, "#ops", Some("#general")),
            target(
                "sms",
                ChannelKind::Email,
                "alice",
                Some("alice@example.com"),
            ),
            target("nope", ChannelKind::Sms, "alice", Some("+447700900001")),
            target("sms", ChannelKind::Sms, "alice", None),
        ] {
            let e = check(&c, &t).unwrap_err();
            assert!(!e.to_string().contains("+1900"), "{e}");
        }
    }
}
