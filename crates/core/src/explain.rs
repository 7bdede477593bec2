//! Why an alert did or did not page, from its audit entries: what `tocsin replay --explain ALERT` prints
//! and what the API's alert page can show. Every suppression decision names its rule in the audit, so
//! the explanation is the trail itself plus a one-line verdict.

use crate::record::{Action, AuditEntry};

/// The explanation of one alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The alert id.
    pub alert: String,
    /// The alarm's name.
    pub alarm_name: String,
    /// Whether anybody was paged about it (directly, by escalation, or in a group notification).
    pub paged: bool,
    /// One line: `paged: ...` or `not paged: <the decision that held it, with its rule>`.
    pub verdict: String,
    /// Its audit entries, in order.
    pub entries: Vec<AuditEntry>,
}

/// Whether the alert went out in another alert's group notification: the entry's `told_under`, or for
/// entries written before it, their reason.
fn told_in_group(e: &AuditEntry) -> bool {
    e.told_under.is_some()
        || (e.action == Action::Group && e.reason.starts_with("in group notification"))
}

/// Explains every alert whose id starts with `selector` (at least 4 characters) or whose alarm name is
/// `selector`, in order of first appearance in `entries`.
pub fn explain(entries: &[AuditEntry], selector: &str) -> Vec<Explanation> {
    let selects = |e: &AuditEntry| {
        e.alarm_name == selector || (selector.len() >= 4 && e.alert.starts_with(selector))
    };
    let mut ids: Vec<&str> = Vec::new();
    for e in entries.iter().filter(|e| selects(e)) {
        if !ids.contains(&e.alert.as_str()) {
            ids.push(&e.alert);
        }
    }
    ids.into_iter()
        .map(|id| {
            let mine: Vec<AuditEntry> = entries.iter().filter(|e| e.alert == id).cloned().collect();
            verdict(id, mine)
        })
        .collect()
}

fn verdict(id: &str, entries: Vec<AuditEntry>) -> Explanation {
    let pages: Vec<&AuditEntry> = entries
        .iter()
        .filter(|e| matches!(e.action, Action::Notify | Action::Escalate) && e.channel.is_some())
        .collect();
    let group = entries.iter().find(|e| told_in_group(e));
    let (paged, verdict) = if let Some(first) = pages.first() {
        let who: Vec<String> = pages
            .iter()
            .map(|e| {
                format!(
                    "{} → {}",
                    e.channel.as_deref().unwrap_or("?"),
                    e.target.as_deref().unwrap_or("?")
                )
            })
            .collect();
        (
            true,
            format!(
                "paged: {} notification(s), first at {} ({}): {}",
                pages.len(),
                crate::model::format_time(&first.at),
                first.reason,
                who.join(", ")
            ),
        )
    } else if let Some(g) = group {
        (
            true,
            format!(
                "paged in a group notification at {}: {}",
                crate::model::format_time(&g.at),
                g.reason
            ),
        )
    } else {
        let decisive = entries.iter().rev().find(|e| {
            matches!(
                e.action,
                Action::Suppress | Action::Group | Action::Dedup | Action::Repeat
            )
        });
        (
            false,
            match decisive {
                Some(e) => format!("not paged: {} — {}", e.action, e.reason),
                None => "not paged: no decision recorded".to_string(),
            },
        )
    };
    Explanation {
        alert: id.to_string(),
        alarm_name: entries
            .first()
            .map(|e| e.alarm_name.clone())
            .unwrap_or_default(),
        paged,
        verdict: crate::text::one_line(&verdict).into_owned(),
        entries,
    }
}
