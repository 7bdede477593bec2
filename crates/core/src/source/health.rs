//! AWS Health events (`source: aws.health`, detail-types "AWS Health Event" and "AWS Health Abuse
//! Event"): one alert per event and affected account, firing while the event is `open` or
//! `upcoming`, resolved when it is `closed`.
//!
//! Three things make Health unlike an alarm. The envelope's `region` and `account` say where the
//! event was *delivered*; the impacted region is `detail.eventRegion` and, in an organizational
//! view, the affected account is `detail.affectedAccount`. An event whose affected entities do not
//! fit in one EventBridge event arrives as pages (`page`, `totalPages`, each `communicationId`
//! suffixed `-k`) that carry the same event with different entities: a page is read into a
//! [`HealthPage`], and a [`Reassembly`] keyed by event joins the pages into one alert. And an
//! event is updated in place (same `eventArn`, new `lastUpdatedTime`): each update is its own
//! `event_id`, and `labels.health_digest` summarises what a person would want to hear about again
//! (status, description, affected entities), so the router re-notifies only when it changed
//! (`crate::update`). Copies delivered to the backup region (`backupEvent: "true"`) are skipped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::eventbridge::read_detail;
use super::loose::{List, Map, Obj, Val, label_value, opt_nonempty, opt_num, req_name, req_str};
use super::text::{clean_text, parse_http_time, quote};
use super::{Event, ParseError, Parsed, Skipped, push_one};
use crate::model::{AlarmState, Alert, Severity, Source, Transport, format_time, stable_id};

/// The label holding the digest of what an update may change (see the module header).
pub const DIGEST_LABEL: &str = "health_digest";

/// The label of an alert made of only some pages of its event: `k of n` (one page alone) or
/// `received k of n` (an incomplete event routed anyway).
pub const PAGES_LABEL: &str = "health_pages";

/// The most affected entities written into the `affected_entities` labels; the digest and the
/// count cover them all.
const ENTITIES_IN_LABEL: usize = 100;

/// The most pages one event may claim: bounds what a reassembly holds for one event.
const MAX_PAGES: u32 = 1000;

/// The `detail` of a Health event.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "camelCase")]
pub(crate) struct Detail<'a> {
    event_arn: Option<Val<'a>>,
    service: Option<Val<'a>>,
    event_type_code: Option<Val<'a>>,
    event_type_category: Option<Val<'a>>,
    event_scope_code: Option<Val<'a>>,
    communication_id: Option<Val<'a>>,
    start_time: Option<Val<'a>>,
    end_time: Option<Val<'a>>,
    last_updated_time: Option<Val<'a>>,
    status_code: Option<Val<'a>>,
    event_region: Option<Val<'a>>,
    event_description: Option<List<Obj<Description<'a>>>>,
    event_metadata: Option<Obj<Map<'a>>>,
    affected_entities: Option<List<Obj<Entity<'a>>>>,
    affected_account: Option<Val<'a>>,
    page: Option<Val<'a>>,
    total_pages: Option<Val<'a>>,
    actionability: Option<Val<'a>>,
    personas: Option<List<Val<'a>>>,
    backup_event: Option<Val<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "camelCase")]
pub(crate) struct Description<'a> {
    language: Option<Val<'a>>,
    latest_description: Option<Val<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"), rename_all = "camelCase")]
pub(crate) struct Entity<'a> {
    entity_value: Option<Val<'a>>,
    status: Option<Val<'a>>,
}

/// One page of a Health event that came in several (`totalPages` above 1). Every page carries the
/// whole event but for its share of the affected entities. It serialises (as JSON) so that a
/// [`crate::pages::PageStore`] can keep it until the other pages arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthPage {
    /// Which event this is a page of: the `event_id` the whole event gets (affected account,
    /// `eventArn`, `communicationId` without its page suffix, `lastUpdatedTime`).
    pub key: String,
    /// This page's number, from 1.
    pub page: u32,
    /// How many pages the event has.
    pub total: u32,
    /// The event as this page describes it, without the entity labels and the digest.
    alert: Alert,
    /// This page's affected entities: value and status (empty when none was given).
    entities: Vec<(String, String)>,
}

impl HealthPage {
    /// The alert of this page alone, for where no reassembly is kept (`tocsin parse`): the event
    /// with this page's entities, and `labels.health_pages` saying `k of n`, so a reader knows the
    /// entity list is partial.
    pub fn into_alert(self) -> Alert {
        let note = format!("{} of {}", self.page, self.total);
        finish(self.alert, &self.entities, Some(note))
    }
}

/// Joins the pages of paged Health events. State lives wherever the instance lives: `tocsin
/// replay` keeps one for the whole replay. Pages may come in any order and more than once (a
/// repeated page is ignored); when the last missing page of an event arrives, [`Reassembly::add`]
/// returns the whole event's alert, with the affected entities of all pages in page order.
#[derive(Debug, Default)]
pub struct Reassembly {
    events: BTreeMap<String, Vec<Option<HealthPage>>>,
}

impl Reassembly {
    /// A reassembly holding nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one page; returns the event's alert when this page completes it.
    pub fn add(&mut self, page: HealthPage) -> Option<Alert> {
        let slots = self
            .events
            .entry(page.key.clone())
            .or_insert_with(|| vec![None; page.total as usize]);
        // A page numbered past what the first page said the total was cannot belong to it; the
        // parser bounds `page` by its own `totalPages`, so only a disagreement between pages gets
        // here, and the larger count wins.
        let need = page.total.max(page.page) as usize;
        if slots.len() < need {
            slots.resize(need, None);
        }
        // Pages count from 1 (the parser makes sure); a page 0 takes the first slot if free.
        let i = (page.page as usize).saturating_sub(1);
        if slots[i].is_none() {
            slots[i] = Some(page);
        }
        if slots.iter().any(Option::is_none) {
            return None;
        }
        let key = slots.iter().flatten().next().map(|p| p.key.clone())?;
        let pages = self.events.remove(&key)?;
        join_pages(pages.into_iter().flatten().collect())
    }

    /// How many events are waiting for pages.
    pub fn pending(&self) -> usize {
        self.events.len()
    }

    /// Ends the reassembly: every event still missing pages becomes the alert of the pages that
    /// came (`labels.health_pages` says `received 2 of 3`), so an incomplete event still pages
    /// rather than vanishing.
    pub fn finish(self) -> Vec<Alert> {
        self.events
            .into_values()
            .filter_map(|slots| join_pages(slots.into_iter().flatten().collect()))
            .collect()
    }
}

/// Joins the pages of one event into its alert: the first page's event with the affected entities of
/// every page, in page order (a page number given twice counts once, its first copy). With every page
/// from 1 to the total there, the alert is the whole event's; with pages missing it is still the
/// event's alert (same `event_id`), with the entities that came and `labels.health_pages` saying
/// `received k of n`. The total is the largest any page claims (or its largest page number, should
/// pages disagree). `None` for no pages. [`Reassembly`] and the ingest function's
/// [`crate::pages::PageStore`] both join with this, so the two cannot make different alerts.
pub fn join_pages(mut pages: Vec<HealthPage>) -> Option<Alert> {
    pages.sort_by_key(|p| p.page);
    pages.dedup_by_key(|p| p.page);
    let total = pages.iter().map(|p| p.total.max(p.page)).max().unwrap_or(0);
    let got = pages.len();
    let whole = (1..=total).all(|n| pages.iter().any(|p| p.page == n));
    let mut pages = pages.into_iter();
    let first = pages.next()?;
    let mut entities = first.entities;
    for p in pages {
        entities.extend(p.entities);
    }
    let note = (!whole).then(|| format!("received {got} of {total}"));
    Some(finish(first.alert, &entities, note))
}

/// Reads one Health event into `out`: an alert, a page, or a skipped backup copy.
pub(crate) fn parse(
    ev: &Event<'_>,
    detail_type: &str,
    raw: &RawValue,
    transport: Transport,
    out: &mut Parsed,
) -> Result<(), ParseError> {
    let detail: Obj<Detail> = read_detail(raw)?;
    let d = detail.get("detail")?;
    if let Some(skip) = backup_copy(d).map_err(|e| e.within("detail"))? {
        out.skipped.push(skip);
        return Ok(());
    }
    let abuse = detail_type == "AWS Health Abuse Event";
    let read = read(ev, d, abuse, transport).map_err(|e| e.within("detail"))?;
    match read {
        Read::Whole(alert) => push_one(out, alert),
        Read::Page(page) => out.pages.push(page),
    }
    Ok(())
}

/// The status of an event that gives none: `closed` when its `endTime` is not after the envelope's
/// `time`, else `open`.
fn assumed_status(ev: &Event<'_>, d: &Detail<'_>) -> &'static str {
    let end = d
        .end_time
        .as_ref()
        .and_then(Val::as_str)
        .and_then(parse_http_time);
    let sent = ev
        .time
        .as_ref()
        .and_then(Val::as_str)
        .and_then(super::text::parse_time);
    match (end, sent) {
        (Some(end), Some(sent)) if end <= sent => "closed",
        _ => "open",
    }
}

enum Read {
    Whole(Alert),
    Page(HealthPage),
}

/// AWS Health delivers each event to a backup region as well; that copy says
/// `backupEvent: "true"` (in `detail`, or in `detail.eventMetadata`). The primary copy is the one
/// routed, so the backup is skipped, saying so.
fn backup_copy(d: &Detail<'_>) -> Result<Option<Skipped>, ParseError> {
    let mut flag = d.backup_event.as_ref();
    if let Some(Obj::Ok(meta)) = &d.event_metadata {
        flag = flag.or(meta.get("backupEvent"));
    }
    if !flag.is_some_and(is_true) {
        return Ok(None);
    }
    let arn = opt_nonempty(d.event_arn.as_ref(), "eventArn")?.unwrap_or("(no eventArn)");
    Ok(Some(Skipped {
        at: "detail.backupEvent".to_owned(),
        reason: format!(
            "AWS Health copy delivered to the backup region, skipped (the primary region's copy of \
             {} is the one routed)",
            quote(arn)
        ),
    }))
}

fn is_true(v: &Val<'_>) -> bool {
    match v {
        Val::Bool(b) => *b,
        Val::Str(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The event's category, which decides the default severity and the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Issue,
    AccountNotification,
    ScheduledChange,
    Investigation,
    Other,
}

impl Category {
    fn parse(s: &str) -> Category {
        match s {
            "issue" => Category::Issue,
            "accountNotification" => Category::AccountNotification,
            "scheduledChange" => Category::ScheduledChange,
            "investigation" => Category::Investigation,
            _ => Category::Other,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Category::Issue => "issue",
            Category::AccountNotification => "account_notification",
            Category::ScheduledChange => "scheduled_change",
            Category::Investigation => "investigation",
            Category::Other => "health",
        }
    }

    /// The default severity (`docs/sources.md`); configured severity rules still override it.
    fn severity(self) -> Severity {
        match self {
            Category::Issue | Category::Investigation => Severity::High,
            Category::ScheduledChange | Category::Other => Severity::Medium,
            Category::AccountNotification => Severity::Low,
        }
    }
}

fn read(
    ev: &Event<'_>,
    d: &Detail<'_>,
    abuse: bool,
    transport: Transport,
) -> Result<Read, ParseError> {
    let arn = req_name(d.event_arn.as_ref(), "eventArn")?;
    let code = req_name(d.event_type_code.as_ref(), "eventTypeCode")?;
    let category_text = req_str(d.event_type_category.as_ref(), "eventTypeCategory")?;
    let category = Category::parse(category_text);
    // AWS's long-published sample events have no `statusCode`: an event that says nothing of its
    // status is taken as open (it was sent because something is happening), unless its `endTime`
    // has passed by the time it was sent.
    let status_given = opt_nonempty(d.status_code.as_ref(), "statusCode")?;
    let status = match status_given {
        Some(s) => s,
        None => assumed_status(ev, d),
    };
    let state = match status {
        "open" | "upcoming" => AlarmState::Alarm,
        "closed" => AlarmState::Ok,
        other => {
            return Err(ParseError::new(
                "statusCode",
                format!(
                    "unknown status {} (expected open, upcoming or closed)",
                    quote(other)
                ),
            ));
        }
    };
    let (page, total) = pages(d)?;
    let updated = opt_time(d.last_updated_time.as_ref(), "lastUpdatedTime")?;
    let start = opt_time(d.start_time.as_ref(), "startTime")?;
    let end = opt_time(d.end_time.as_ref(), "endTime")?;
    // The envelope's `time` (RFC 3339) is when EventBridge got it: the last resort.
    let changed_at = match updated.or(start) {
        Some(t) => t,
        None => match opt_nonempty(ev.time.as_ref(), "time") {
            Ok(Some(t)) => super::text::parse_time(t).ok_or_else(|| {
                ParseError::new(
                    "lastUpdatedTime",
                    "required field is missing (and the event's time is not a timestamp)",
                )
            })?,
            _ => {
                return Err(ParseError::new(
                    "lastUpdatedTime",
                    "required field is missing",
                ));
            }
        },
    };
    // The envelope names where the event was delivered, which for an organizational view is the
    // management or delegated administrator account, and for a global service us-east-1.
    let delivery_account = opt_nonempty(ev.account.as_ref(), "account").unwrap_or(None);
    let delivery_region = opt_nonempty(ev.region.as_ref(), "region").unwrap_or(None);
    let account =
        opt_nonempty(d.affected_account.as_ref(), "affectedAccount")?.or(delivery_account);
    // Older events have no `eventRegion`: the event's ARN names the region
    // (`arn:aws:health:us-west-2::event/..`), and failing that the envelope's.
    let region_given = opt_nonempty(d.event_region.as_ref(), "eventRegion")?;
    let region = region_given
        .or_else(|| super::region::arn_region(arn))
        .or(delivery_region);
    let communication = opt_nonempty(d.communication_id.as_ref(), "communicationId")?
        .map(|c| base_communication_id(c, page));

    let mut labels = BTreeMap::new();
    let mut label = |k: &str, v: &str| {
        labels.insert(k.to_owned(), clean_text(v));
    };
    label(
        "detail_type",
        if abuse {
            "AWS Health Abuse Event"
        } else {
            "AWS Health Event"
        },
    );
    label("event_type_code", code);
    label("event_type_category", category_text);
    label("status_code", status);
    if status_given.is_none() {
        label("status_code_assumed", "true");
    }
    if region_given.is_none() {
        if let Some(r) = region {
            label(
                "event_region_from",
                if super::region::arn_region(arn) == Some(r) {
                    "event_arn"
                } else {
                    "envelope"
                },
            );
        }
    }
    for (v, at, key) in [
        (&d.service, "service", "health_service"),
        (&d.event_scope_code, "eventScopeCode", "event_scope_code"),
        (&d.actionability, "actionability", "actionability"),
    ] {
        if let Some(s) = opt_nonempty(v.as_ref(), at)? {
            label(key, s);
        }
    }
    if let Some(c) = communication {
        label("communication_id", c);
    }
    if let Some(personas) = &d.personas {
        let mut joined = Vec::new();
        for (i, p) in personas.get("personas")?.iter().enumerate() {
            if let Some(p) = opt_nonempty(Some(p), &format!("personas[{i}]"))? {
                joined.push(p);
            }
        }
        if !joined.is_empty() {
            label("personas", &joined.join(","));
        }
    }
    if let Some(t) = start {
        label("start_time", &format_time(&t));
    }
    if let Some(t) = end {
        label("end_time", &format_time(&t));
    }
    if let Some(a) = delivery_account.filter(|a| Some(*a) != account) {
        label("delivery_account", a);
    }
    if let Some(r) = delivery_region {
        label("delivery_region", r);
    }
    if status == "upcoming" {
        // Firing, so it is routed and seen; the label lets routes send it somewhere quieter.
        label("health_scheduled", "true");
    }
    if abuse {
        label("health_abuse", "true");
    }
    if let Some(meta) = &d.event_metadata {
        for (k, v) in &meta.get("eventMetadata")?.0 {
            // Metadata is informative: values that are not scalars are left out, not refused.
            if let Ok(value) = label_value(v, "") {
                if k == "truncated" && is_true(v) {
                    label("health_truncated", "true");
                }
                label(&format!("event_metadata.{}", clean_text(k)), &value);
            }
        }
    }
    let severity = if abuse {
        Severity::High
    } else {
        category.severity()
    };
    labels.insert("severity".to_owned(), severity.as_str().to_owned());

    let description = description(d)?;
    let mut entities = Vec::new();
    if let Some(list) = &d.affected_entities {
        for (i, e) in list.get("affectedEntities")?.iter().enumerate() {
            let one = || -> Result<(String, String), ParseError> {
                let e = e.get("")?;
                let value = req_str(e.entity_value.as_ref(), "entityValue")?;
                let status = opt_nonempty(e.status.as_ref(), "status")?.unwrap_or("");
                Ok((clean_text(value), clean_text(status)))
            };
            entities.push(one().map_err(|e| e.within(&format!("affectedEntities[{i}]")))?);
        }
    }
    let account_key = account.unwrap_or("");
    let event_id = stable_id(&[
        "health",
        account_key,
        arn,
        communication.unwrap_or(""),
        &format_time(&changed_at),
    ]);
    let where_ = region
        .map(|r| format!(" in {}", clean_text(r)))
        .unwrap_or_default();
    let service = opt_nonempty(d.service.as_ref(), "service")?
        .map(|s| format!("{} ", clean_text(s)))
        .unwrap_or_default();
    let alert = Alert {
        fingerprint: stable_id(&["health", account_key, arn]),
        event_id: event_id.clone(),
        source: Source::Health,
        transport,
        alarm_name: code.to_owned(),
        alarm_arn: Some(arn.to_owned()),
        account_id: account.map(clean_text),
        region: region.map(clean_text),
        state,
        previous_state: None,
        state_changed_at: changed_at,
        reason: format!(
            "AWS Health {service}{} {status}{where_}",
            if abuse { "abuse event" } else { category_text }
        ),
        kind: if abuse { "abuse" } else { category.kind() }.to_owned(),
        namespace: None,
        metric_name: None,
        dimensions: BTreeMap::new(),
        threshold: None,
        severity,
        description,
        labels,
    };
    if total == 1 {
        Ok(Read::Whole(finish(alert, &entities, None)))
    } else {
        Ok(Read::Page(HealthPage {
            key: event_id,
            page,
            total,
            alert,
            entities,
        }))
    }
}

/// `page` and `totalPages` (strings in real payloads; numbers accepted), both 1 when absent.
fn pages(d: &Detail<'_>) -> Result<(u32, u32), ParseError> {
    let whole = |v: Option<&Val<'_>>, at: &str| -> Result<u32, ParseError> {
        match opt_num(v, at)? {
            None => Ok(1),
            Some(n) if n.fract() == 0.0 && (1.0..=f64::from(MAX_PAGES)).contains(&n) => {
                Ok(n as u32)
            }
            Some(n) => Err(ParseError::new(
                at,
                format!("expected a page number from 1 to {MAX_PAGES}, found {n}"),
            )),
        }
    };
    let page = whole(d.page.as_ref(), "page")?;
    let total = whole(d.total_pages.as_ref(), "totalPages")?;
    if page > total {
        return Err(ParseError::new(
            "page",
            format!("page {page} of {total}: past the last page"),
        ));
    }
    Ok((page, total))
}

/// Each page's `communicationId` ends in `-k`, its page number; without it, the id names the
/// event's communication whatever the page.
fn base_communication_id(id: &str, page: u32) -> &str {
    id.strip_suffix(page.to_string().as_str())
        .and_then(|rest| rest.strip_suffix('-'))
        .unwrap_or(id)
}

fn opt_time(
    v: Option<&Val<'_>>,
    at: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ParseError> {
    match opt_nonempty(v, at)? {
        None => Ok(None),
        Some(s) => parse_http_time(s).map(Some).ok_or_else(|| {
            ParseError::new(
                at,
                format!(
                    "invalid timestamp {} (expected RFC 1123, such as Fri, 27 Jan 2023 06:02:51 GMT)",
                    quote(s)
                ),
            )
        }),
    }
}

/// The English description where there are several, else the first.
fn description(d: &Detail<'_>) -> Result<String, ParseError> {
    let Some(list) = &d.event_description else {
        return Ok(String::new());
    };
    let mut first = None;
    for (i, entry) in list.get("eventDescription")?.iter().enumerate() {
        let at = format!("eventDescription[{i}]");
        let entry = entry.get(&at)?;
        let text = opt_nonempty(
            entry.latest_description.as_ref(),
            &format!("{at}.latestDescription"),
        )?;
        let language = opt_nonempty(entry.language.as_ref(), &format!("{at}.language"))?;
        if language.is_some_and(|l| l.eq_ignore_ascii_case("en_US")) {
            if let Some(text) = text {
                return Ok(clean_text(text));
            }
        }
        first = first.or(text);
    }
    Ok(first.map(clean_text).unwrap_or_default())
}

/// Adds what depends on every page: the affected entities, their count, and the digest of what a
/// person would want to hear about again. `pages` notes a partial entity list.
fn finish(mut alert: Alert, entities: &[(String, String)], pages: Option<String>) -> Alert {
    let labels = &mut alert.labels;
    labels.insert(
        "affected_entity_count".to_owned(),
        entities.len().to_string(),
    );
    if !entities.is_empty() {
        let shown = &entities[..entities.len().min(ENTITIES_IN_LABEL)];
        let more = entities.len() - shown.len();
        let mut values: Vec<&str> = shown.iter().map(|(v, _)| v.as_str()).collect();
        let more_note = format!("... ({more} more)");
        if more > 0 {
            values.push(&more_note);
        }
        labels.insert("affected_entities".to_owned(), values.join(","));
        let statuses: Vec<String> = shown
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(v, s)| format!("{v}={s}"))
            .collect();
        if !statuses.is_empty() {
            labels.insert("affected_entity_statuses".to_owned(), statuses.join(","));
        }
    }
    if let Some(p) = pages {
        labels.insert(PAGES_LABEL.to_owned(), p);
    }
    // Sorted, so that page order and entity order do not change the digest.
    let mut sorted: Vec<&(String, String)> = entities.iter().collect();
    sorted.sort();
    let status = labels.get("status_code").cloned().unwrap_or_default();
    let mut parts: Vec<&str> = Vec::with_capacity(3 + 2 * sorted.len());
    parts.extend(["health-digest", status.as_str(), alert.description.as_str()]);
    for (v, s) in sorted {
        parts.push(v);
        parts.push(s);
    }
    let digest = stable_id(&parts);
    alert.labels.insert(DIGEST_LABEL.to_owned(), digest);
    alert
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_suffix_is_taken_off_the_communication_id_only_when_it_is_the_page() {
        assert_eq!(base_communication_id("abc123-2", 2), "abc123");
        assert_eq!(base_communication_id("abc123-1", 1), "abc123");
        assert_eq!(base_communication_id("abc123-1", 2), "abc123-1");
        assert_eq!(base_communication_id("abc12", 2), "abc12");
    }
}
