//! Recipients and reachability: literal addresses checked against the channel's kind, `{person: x}` and
//! `{schedule: y}` checked against the contacts the channel needs, and escalation levels checked to reach
//! the people they name. A page that cannot be delivered is found here, not at 3 a.m.

use marked_yaml::Node;

use super::channels::article;
use super::decode::{Decoder, Section};
use super::node::{Fields, as_list, found, is_null, pos};
use super::{ChannelKind, Person, Recipient};

/// Whether a channel of `kind` is addressed per message (email, SMS, Slack) rather than always sending
/// to its own endpoint (Teams, PagerDuty, webhook).
pub(super) fn takes_recipients(kind: ChannelKind) -> bool {
    matches!(
        kind,
        ChannelKind::Email | ChannelKind::Sms | ChannelKind::Slack
    )
}

/// A person's contact for a channel kind, if the kind reaches people and they have one.
fn contact(person: &Person, kind: ChannelKind) -> Option<&str> {
    match kind {
        ChannelKind::Email => person.email.as_deref(),
        ChannelKind::Sms => person.phone.as_deref(),
        ChannelKind::Slack => person.slack.as_deref(),
        ChannelKind::Teams | ChannelKind::Pagerduty | ChannelKind::Webhook => None,
    }
}

/// The person field a kind needs, for messages.
fn contact_key(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Email => "email",
        ChannelKind::Sms => "phone",
        _ => "slack",
    }
}

/// `local@domain`, nothing more: SES rejects the rest, with a less helpful message and much later.
pub(super) fn is_email(s: &str) -> bool {
    let mut parts = s.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && !domain.is_empty()
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        }
        _ => false,
    }
}

/// An address, or `Display Name <address>` as a sender may be written.
pub(super) fn is_email_with_name(s: &str) -> bool {
    match (s.rfind('<'), s.strip_suffix('>')) {
        (Some(open), Some(inner)) => is_email(&inner[open + 1..]),
        _ => is_email(s),
    }
}

/// E.164: `+`, then 8 to 15 digits.
pub(super) fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// An uppercase Slack id with the given first letters (`U024BE7LH`).
fn is_slack_id(s: &str, first: &[char]) -> bool {
    s.starts_with(first)
        && s.len() >= 7
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn is_handle(s: &str, sigil: char) -> bool {
    s.strip_prefix(sigil)
        .is_some_and(|h| !h.is_empty() && !h.chars().any(char::is_whitespace))
}

/// A person's Slack contact: a member id or an `@handle`.
pub(super) fn is_slack_member(s: &str) -> bool {
    is_slack_id(s, &['U', 'W']) || is_handle(s, '@')
}

/// Where a Slack message can go: `#channel`, `@handle`, or a member or conversation id.
fn is_slack_target(s: &str) -> bool {
    is_handle(s, '#') || is_slack_member(s) || is_slack_id(s, &['C', 'G', 'D'])
}

fn check_address(kind: ChannelKind, channel: &str, a: &str) -> Result<(), String> {
    let ok = match kind {
        ChannelKind::Email => is_email(a),
        ChannelKind::Sms => is_e164(a),
        ChannelKind::Slack => is_slack_target(a),
        ChannelKind::Teams | ChannelKind::Pagerduty | ChannelKind::Webhook => true,
    };
    if ok {
        return Ok(());
    }
    let expected = match kind {
        ChannelKind::Email => "an address with an @",
        ChannelKind::Sms => "E.164: + and 8 to 15 digits",
        _ => "#channel, @handle or an id like U024BE7LH",
    };
    Err(format!(
        "invalid {} recipient `{a}` for channel `{channel}` (expected {expected})",
        kind.as_str()
    ))
}

impl<'a> Decoder<'a> {
    /// A `to` or `default_to` list for `channel` (whose kind may be unknown if its definition is broken).
    pub(super) fn recipients(
        &mut self,
        node: &'a Node,
        channel: &str,
        kind: Option<ChannelKind>,
    ) -> Vec<Recipient> {
        let Some(list) = as_list(&mut self.p, node) else {
            return Vec::new();
        };
        if let Some(k) = kind.filter(|k| !takes_recipients(*k)) {
            if !list.is_empty() {
                self.p.at(
                    pos(node),
                    format!(
                        "{} {} channel takes no recipients (`{channel}` always sends to its own endpoint)",
                        article(k),
                        k.as_str()
                    ),
                );
            }
            return Vec::new();
        }
        list.iter()
            .filter_map(|item| self.recipient(item, channel, kind))
            .collect()
    }

    fn recipient(
        &mut self,
        node: &'a Node,
        channel: &str,
        kind: Option<ChannelKind>,
    ) -> Option<Recipient> {
        match node {
            Node::Scalar(s) if !is_null(s) => {
                let a = s.as_str();
                if let Some(k) = kind {
                    if let Err(why) = check_address(k, channel, a) {
                        self.p.at(pos(node), why);
                        return None;
                    }
                }
                Some(Recipient::Address(a.to_string()))
            }
            Node::Mapping(m) => {
                let f = Fields::new(&mut self.p, node, &["person", "schedule"])?;
                match (f.has("person"), f.has("schedule")) {
                    (true, false) => {
                        let n = f.required(&mut self.p, "person")?;
                        let name = self.reference(n, Section::People)?;
                        if let Some(k) = kind {
                            self.check_contact(n, name, channel, k);
                        }
                        Some(Recipient::Person(name.to_string()))
                    }
                    (false, true) => {
                        let n = f.required(&mut self.p, "schedule")?;
                        let name = self.reference(n, Section::Schedules)?;
                        if let Some(k) = kind {
                            self.check_schedule_contacts(n, name, channel, k);
                        }
                        Some(Recipient::Schedule(name.to_string()))
                    }
                    (true, true) => {
                        self.p.at(
                            f.pos,
                            "a recipient is {person: NAME} or {schedule: NAME}, not both",
                        );
                        None
                    }
                    (false, false) => {
                        // Unknown keys were reported already, with the keys expected.
                        if m.is_empty() {
                            self.p.at(
                                f.pos,
                                "expected an address, {person: NAME} or {schedule: NAME}, found an empty mapping",
                            );
                        }
                        None
                    }
                }
            }
            _ => {
                self.p.at(
                    pos(node),
                    format!(
                        "expected an address, {{person: NAME}} or {{schedule: NAME}}, found {}",
                        found(node)
                    ),
                );
                None
            }
        }
    }

    /// `channel` and `to` of a notify entry or a channel target. An email or SMS channel (or a Slack bot)
    /// named with no `to` and no `default_to` would page nobody, so that is a problem too.
    pub(super) fn channel_with_recipients(
        &mut self,
        f: &Fields<'a>,
    ) -> Option<(String, Vec<Recipient>)> {
        let n = f.required(&mut self.p, "channel")?;
        let name = self.reference(n, Section::Channels)?;
        let (kind, needs_to) = match self.channels.get(name) {
            Some(c) => {
                let addressed = match c.kind {
                    ChannelKind::Email | ChannelKind::Sms => true,
                    // An incoming webhook posts to its own channel; a bot must be told where. (With
                    // neither, the channel's own problem is reported already.)
                    ChannelKind::Slack => {
                        c.settings.contains_key("bot_token")
                            && !c.settings.contains_key("webhook_url")
                    }
                    _ => false,
                };
                (Some(c.kind), addressed && c.default_to.is_empty())
            }
            None => (None, false),
        };
        let to = match f.get("to") {
            Some(list) => self.recipients(list, name, kind),
            None => Vec::new(),
        };
        let to_written = matches!(f.get("to"), Some(Node::Sequence(s)) if !s.is_empty());
        if needs_to && !to_written {
            self.p.at(
                f.pos,
                format!("channel `{name}` has no `default_to`, so this needs `to`"),
            );
        }
        Some((name.to_string(), to))
    }

    fn check_contact(&mut self, at: &Node, person: &str, channel: &str, kind: ChannelKind) {
        let Some(p) = self.people.get(person) else {
            return;
        };
        if contact(p, kind).is_none() {
            let key = contact_key(kind);
            self.p.at(
                pos(at),
                format!(
                    "person `{person}` has no `{key}`, which {} channel `{channel}` needs",
                    kind.as_str()
                ),
            );
        }
    }

    /// Everyone who can be on call in a schedule: its layers' people and its overrides'.
    fn schedule_people(&self, schedule: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(s) = self.schedules.get(schedule) {
            let names = s
                .layers
                .iter()
                .flat_map(|l| l.people.iter())
                .chain(s.overrides.iter().map(|o| &o.person));
            for n in names {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
        }
        out
    }

    fn check_schedule_contacts(
        &mut self,
        at: &Node,
        schedule: &str,
        channel: &str,
        kind: ChannelKind,
    ) {
        let lacking: Vec<String> = self
            .schedule_people(schedule)
            .into_iter()
            .filter(|name| {
                self.people
                    .get(name)
                    .is_some_and(|p| contact(p, kind).is_none())
            })
            .collect();
        if !lacking.is_empty() {
            self.p.at(
                pos(at),
                format!(
                    "schedule `{schedule}` includes people with no `{}`, which {} channel `{channel}` needs: {}",
                    contact_key(kind),
                    kind.as_str(),
                    lacking.join(", ")
                ),
            );
        }
    }

    /// A level's `channels`: each must exist and be able to reach a person.
    pub(super) fn level_channels(&mut self, node: &'a Node) -> Vec<String> {
        let Some(list) = as_list(&mut self.p, node) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in list.iter() {
            let Some(name) = self.reference(item, Section::Channels) else {
                continue;
            };
            if let Some(c) = self.channels.get(name) {
                if !takes_recipients(c.kind) {
                    self.p.at(
                        pos(item),
                        format!(
                            "channel `{name}` is {} {} channel, which cannot reach a person: make it a target, {{channel: {name}}}",
                            article(c.kind),
                            c.kind.as_str()
                        ),
                    );
                    continue;
                }
            }
            out.push(name.to_string());
        }
        out
    }

    /// The kinds of a level's channels that decoded, for reachability checks.
    fn level_kinds(&self, channels: &[String]) -> Vec<ChannelKind> {
        channels
            .iter()
            .filter_map(|c| self.channels.get(c))
            .map(|c| c.kind)
            .collect()
    }

    /// A person target must have a contact for at least one of the level's channels.
    pub(super) fn check_person_reachable(&mut self, at: &Node, person: &str, channels: &[String]) {
        let kinds = self.level_kinds(channels);
        if kinds.is_empty() {
            return;
        }
        if let Some(p) = self.people.get(person) {
            if kinds.iter().all(|k| contact(p, *k).is_none()) {
                self.p.at(
                    pos(at),
                    format!(
                        "person `{person}` has no contact for any of this level's channels ({})",
                        channels.join(", ")
                    ),
                );
            }
        }
    }

    /// Everyone who can be on call in a schedule target must be reachable on one of the level's channels.
    pub(super) fn check_schedule_reachable(
        &mut self,
        at: &Node,
        schedule: &str,
        channels: &[String],
    ) {
        let kinds = self.level_kinds(channels);
        if kinds.is_empty() {
            return;
        }
        let unreachable: Vec<String> = self
            .schedule_people(schedule)
            .into_iter()
            .filter(|name| {
                self.people
                    .get(name)
                    .is_some_and(|p| kinds.iter().all(|k| contact(p, *k).is_none()))
            })
            .collect();
        if !unreachable.is_empty() {
            self.p.at(
                pos(at),
                format!(
                    "schedule `{schedule}` includes people with no contact for any of this level's channels ({}): {}",
                    channels.join(", "),
                    unreachable.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_per_kind() {
        assert!(is_email("alice@example.com"));
        assert!(!is_email("alice.example.com"));
        assert!(!is_email("a@b@c"));
        assert!(is_email_with_name("Tocsin <tocsin@example.com>"));
        assert!(is_e164("+447700900001"));
        assert!(!is_e164("07700900001"));
        assert!(!is_e164("+1234567"));
        assert!(!is_e164("+1234567890123456"));
        assert!(is_slack_target("#ops-alerts"));
        assert!(is_slack_target("@alice"));
        assert!(is_slack_target("U024BE7LH"));
        assert!(is_slack_target("C024BE7LH"));
        assert!(!is_slack_target("ops-alerts"));
        assert!(!is_slack_member("#ops-alerts"));
    }
}
