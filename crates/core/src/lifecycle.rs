//! The alert lifecycle as a pure function: open → acknowledged → resolved → closed (after retention),
//! plus assign and notes. An illegal transition is a typed error, never a silent no-op.
//!
//! | from \ command | ack            | resolve  | assign | note |
//! |----------------|----------------|----------|--------|------|
//! | open           | acknowledged   | resolved | open   | open |
//! | acknowledged   | illegal        | resolved | same   | same |
//! | resolved       | illegal        | illegal  | illegal| same |
//! | closed         | illegal        | illegal  | illegal| illegal |

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::model::format_time;
use crate::record::{Action, AlertRecord, Status};

/// What a person asks of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// "I am on it": stops escalation.
    Ack,
    /// "It is fixed": resolves whatever the alarm says.
    Resolve,
    /// Hands the alert to someone.
    Assign(String),
    /// Adds a note to the record.
    Note(String),
}

impl Command {
    /// The command's name, as in the API's paths.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ack => "ack",
            Command::Resolve => "resolve",
            Command::Assign(_) => "assign",
            Command::Note(_) => "note",
        }
    }
}

/// A command the alert's status does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cannot {command} alert {alert}: it is {status}{detail}")]
pub struct IllegalTransition {
    /// The alert.
    pub alert: String,
    /// The command refused.
    pub command: &'static str,
    /// The status that refused it.
    pub status: &'static str,
    /// More, such as who acknowledged.
    pub detail: String,
}

/// Applies `cmd` by `actor` at `now` to the record (status, fields, `updated_at`, `version`); returns
/// the audit action and reason. On error the record is unchanged.
pub fn apply(
    rec: &mut AlertRecord,
    cmd: &Command,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(Action, String), IllegalTransition> {
    let illegal = |detail: String| IllegalTransition {
        alert: rec.id.clone(),
        command: cmd.name(),
        status: rec.status.as_str(),
        detail,
    };
    let (action, reason) = match (cmd, rec.status) {
        (_, Status::Closed) => return Err(illegal(String::new())),
        (Command::Ack, Status::Open) => {
            rec.status = Status::Acknowledged;
            rec.acknowledged = Some((format_time(&now), actor.to_string()));
            (Action::Ack, format!("acknowledged by {actor}"))
        }
        (Command::Ack, Status::Acknowledged) => {
            let by = rec
                .acknowledged
                .as_ref()
                .map(|a| a.1.as_str())
                .unwrap_or("someone");
            return Err(illegal(format!(" (by {by})")));
        }
        (Command::Resolve, Status::Open | Status::Acknowledged) => {
            rec.status = Status::Resolved;
            rec.resolved_at = Some(format_time(&now));
            (Action::Resolve, format!("resolved by {actor}"))
        }
        (Command::Assign(who), Status::Open | Status::Acknowledged) => {
            rec.assignee = Some(who.clone());
            (Action::Assign, format!("assigned to {who} by {actor}"))
        }
        (Command::Note(text), _) => (Action::Note, format!("note by {actor}: {text}")),
        (Command::Ack | Command::Resolve | Command::Assign(_), Status::Resolved) => {
            return Err(illegal(String::new()));
        }
    };
    rec.updated_at = now;
    rec.version += 1;
    Ok((action, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::record;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn ack_then_resolve_walks_the_lifecycle_and_bumps_the_version() {
        let mut r = record("a", "fp", None);
        let (a, why) = apply(&mut r, &Command::Ack, "alice", now()).unwrap();
        assert_eq!(
            (a, r.status, r.version),
            (Action::Ack, Status::Acknowledged, 2)
        );
        assert_eq!(why, "acknowledged by alice");
        apply(&mut r, &Command::Resolve, "alice", now()).unwrap();
        assert_eq!((r.status, r.version), (Status::Resolved, 3));
        assert!(r.resolved_at.is_some());
    }

    #[test]
    fn acking_a_resolved_alert_is_a_typed_error_that_changes_nothing() {
        let mut r = record("a", "fp", None);
        r.status = Status::Resolved;
        let before = r.clone();
        let err = apply(&mut r, &Command::Ack, "bob", now()).unwrap_err();
        assert_eq!(err.to_string(), "cannot ack alert a: it is resolved");
        assert_eq!(r, before);
    }

    #[test]
    fn a_second_ack_names_who_acknowledged_first() {
        let mut r = record("a", "fp", None);
        apply(&mut r, &Command::Ack, "alice", now()).unwrap();
        let err = apply(&mut r, &Command::Ack, "bob", now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot ack alert a: it is acknowledged (by alice)"
        );
    }

    #[test]
    fn notes_are_allowed_until_closed_and_assign_only_while_live() {
        let mut r = record("a", "fp", None);
        apply(&mut r, &Command::Assign("bob".into()), "alice", now()).unwrap();
        assert_eq!(r.assignee.as_deref(), Some("bob"));
        r.status = Status::Resolved;
        assert!(
            apply(
                &mut r,
                &Command::Note("root cause: disk".into()),
                "bob",
                now()
            )
            .is_ok()
        );
        assert!(apply(&mut r, &Command::Assign("carol".into()), "bob", now()).is_err());
        r.status = Status::Closed;
        assert!(apply(&mut r, &Command::Note("late".into()), "bob", now()).is_err());
    }
}
