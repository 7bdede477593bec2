//! Content updates of an open alert: when a repeat of a live alert says something new that the people
//! already paged should hear (an AWS Health event whose status, description or affected entities
//! changed), and the delivery jobs that tell them. A repeat that says nothing new stays a counted
//! repeat; the router calls [`content_update`] on every repeat and [`update_jobs`] when it says so.
//!
//! Sources opt in by setting a digest label (today `labels.health_digest`, see
//! `source::health`): a repeat whose digest differs from the live alert's is an update.

use chrono::{DateTime, Utc};

use crate::model::{Alert, stable_id};
use crate::record::{AlertRecord, DeliveryJob, DeliveryKind};

/// The labels whose change makes a repeat an update.
pub const DIGEST_LABELS: [&str; 1] = [crate::source::HEALTH_DIGEST_LABEL];

/// Why `new`, a repeat of the live alert `old`, should be told again; `None` when it says nothing
/// new (no digest, or the same digest). A digest appearing where there was none is news too.
pub fn content_update(old: &Alert, new: &Alert) -> Option<String> {
    DIGEST_LABELS.iter().find_map(|key| {
        let now = new.labels.get(*key)?;
        match old.labels.get(*key) {
            Some(before) if before == now => None,
            _ => Some(format!(
                "content changed ({}): status {}, {} affected entities; re-notified",
                key,
                new.labels.get("status_code").map_or("?", String::as_str),
                new.labels
                    .get("affected_entity_count")
                    .map_or("?", String::as_str),
            )),
        }
    })
}

/// Everyone the record itself says was told of `rec`: paged directly, then those a release before
/// group members were items noted as hearing of it in a group notification. The router adds who
/// heard of it in its groups' notifications (`Router::told_targets`).
pub fn told(rec: &AlertRecord) -> impl Iterator<Item = &crate::record::Target> {
    let grouped = rec
        .group_notified
        .iter()
        .filter(|g| !rec.notified.contains(g));
    rec.notified.iter().chain(grouped)
}

/// One delivery job per target already notified of `rec` (whose `alert` is the update), as a
/// trigger, with a delivery id of its own per digest: the first page's ids are not reused (so the
/// update is not taken for a retry of it), and a retry of this update sends nothing twice.
pub fn update_jobs(
    rec: &AlertRecord,
    told: &[crate::record::Target],
    now: DateTime<Utc>,
) -> Vec<DeliveryJob> {
    let digest: Vec<&str> = DIGEST_LABELS
        .iter()
        .filter_map(|k| rec.alert.labels.get(*k).map(String::as_str))
        .collect();
    told.iter()
        .map(|t| {
            let mut parts = vec!["delivery", rec.id.as_str(), "update"];
            parts.extend(&digest);
            parts.extend([t.channel.as_str(), t.target.as_str()]);
            DeliveryJob {
                delivery_id: stable_id(&parts),
                alert_id: rec.id.clone(),
                kind: DeliveryKind::Trigger,
                target: t.clone(),
                level: None,
                alert: rec.alert.clone(),
                status: rec.status,
                created_at: now,
                thread: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::record;

    fn with_digest(alert: &Alert, digest: Option<&str>) -> Alert {
        let mut a = alert.clone();
        match digest {
            Some(d) => a.labels.insert("health_digest".into(), d.into()),
            None => a.labels.remove("health_digest"),
        };
        a
    }

    #[test]
    fn only_a_changed_or_new_digest_is_an_update() {
        let base = record("a", "fp", None).alert;
        let (d1, d2) = (with_digest(&base, Some("1")), with_digest(&base, Some("2")));
        assert_eq!(content_update(&d1, &d1.clone()), None);
        assert!(content_update(&d1, &d2).unwrap().contains("health_digest"));
        assert!(content_update(&base, &d1).is_some());
        assert_eq!(content_update(&d1, &base), None);
        assert_eq!(content_update(&base, &base.clone()), None);
    }

    #[test]
    fn update_jobs_reach_everyone_notified_with_ids_of_their_own_per_digest() {
        let mut rec = record("a", "fp", None);
        rec.alert = with_digest(&rec.alert, Some("1"));
        let t = chrono::Utc::now();
        let told: Vec<_> = told(&rec).cloned().collect();
        let jobs = update_jobs(&rec, &told, t);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].target, rec.notified[0]);
        let again = update_jobs(&rec, &told, t);
        assert_eq!(jobs, again, "a retry makes the same jobs");
        rec.alert = with_digest(&rec.alert, Some("2"));
        for (a, b) in jobs.iter().zip(update_jobs(&rec, &told, t)) {
            assert_ne!(a.delivery_id, b.delivery_id);
        }
    }
}
