//! Source parsers: every event format tocsin accepts, in; canonical [`Alert`]s, out.
//!
//! The shape of an event is told by its structure, never by a file name or a header: an SNS Lambda
//! event (`Records`), a bare SNS notification (`Type` + `Message`, as an HTTPS subscription POSTs it),
//! a CloudWatch alarm message (`AlarmName`), an EventBridge event (`detail-type`), a Lambda alarm
//! action (`alarmData`), an Alertmanager webhook (`alerts` + `receiver`/`groupKey`) or a generic
//! `tocsin/v1` alert. EventBridge events are told apart by `source` and `detail-type`: CloudWatch
//! alarms, AWS Health, the availability signals of `signals` (Synthetics, ECS, RDS, EC2, Auto
//! Scaling, GuardDuty, Security Hub), and any other event, kept as a generic alert. An SNS `Message` is read by the same detector, so an EventBridge event that an
//! EventBridge rule published to an SNS topic is read too. `docs/sources.md` describes every shape.
//!
//! The whole event is read in one pass into `Event`, a union of every shape's top-level fields whose
//! leaves are `loose` values: deserialization fails only on JSON syntax, and every type problem is
//! reported afterwards by the shape's reader with the field's path.

mod alarm_meta;
mod alertmanager;
mod cloudwatch;
mod eventbridge;
mod generic;
mod health;
mod loose;
mod region;
mod signals;
mod text;
mod unescape;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cloudwatch_2026;
#[cfg(test)]
mod tests_events;
#[cfg(test)]
mod tests_real;

use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::model::{Alert, Transport};

pub use alarm_meta::{
    CONTRIBUTOR_LABEL, MUTE_END_LABEL, MUTE_START_LABEL, MUTED_BY_LABEL, PARENT_LABEL, ROLE_LABEL,
};
pub use health::{
    DIGEST_LABEL as HEALTH_DIGEST_LABEL, HealthPage, PAGES_LABEL as HEALTH_PAGES_LABEL, Reassembly,
    join_pages,
};
use loose::{Keys, List, Map, Obj, Val, opt_str};
use text::quote;

/// The largest event accepted, in bytes: the SNS and EventBridge payload limit. Bigger input is
/// rejected before it is parsed.
pub const MAX_EVENT_BYTES: usize = 262_144;

/// Why an event, or one record of it, could not be read. Its `Display` is always one line:
/// `"{at}: {reason}"`, or just the reason when `at` is empty, with control characters escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", OneLine(.at, .reason))]
pub struct ParseError {
    /// Where in the event: a field path such as `Records[2].Sns.Message.NewStateValue`; empty when
    /// the problem is the event as a whole.
    pub at: String,
    /// What is wrong, naming the value found where that helps.
    pub reason: String,
}

impl ParseError {
    /// A problem with the field at `at`.
    pub fn new(at: impl Into<String>, reason: impl Into<String>) -> Self {
        ParseError {
            at: at.into(),
            reason: reason.into(),
        }
    }

    /// The same problem, seen from the enclosing object at `prefix`.
    pub(crate) fn within(mut self, prefix: &str) -> Self {
        self.prefix(prefix);
        self
    }

    fn prefix(&mut self, prefix: &str) {
        self.at = if self.at.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.at)
        };
    }
}

struct OneLine<'e>(&'e str, &'e str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_empty() {
            text::write_one_line(f, self.0)?;
            f.write_str(": ")?;
        }
        text::write_one_line(f, self.1)
    }
}

/// What [`parse_all`] read from one event: the alerts, the records that could not be read, the
/// pages of paged AWS Health events, and the events deliberately not turned into alerts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// One alert per good record, in input order.
    pub alerts: Vec<Alert>,
    /// One error per bad record, its `at` naming the record (`Records[2].Sns.Message`).
    pub rejected: Vec<ParseError>,
    /// Pages of AWS Health events too large for one EventBridge event (`totalPages` above 1): not
    /// alerts yet. A [`Reassembly`] (replay) or a [`crate::pages::PageStore`] (the ingest function)
    /// keyed by event joins them into one alert once every page is in.
    pub pages: Vec<HealthPage>,
    /// Events read and deliberately dropped, each with why (an AWS Health copy delivered to the
    /// backup region). Not errors: nothing is wrong with them, and nothing is lost.
    pub skipped: Vec<Skipped>,
}

/// An event tocsin read and deliberately turned into no alert. Its `Display` is one line, like
/// [`ParseError`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where in the event, as for [`ParseError::at`] (`Records[0].Sns.Message`); empty for the event
    /// as a whole.
    pub at: String,
    /// Why it was skipped.
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        OneLine(&self.at, &self.reason).fmt(f)
    }
}

impl Parsed {
    fn merge(&mut self, other: Parsed, at: &str) {
        let Parsed {
            alerts,
            rejected,
            pages,
            skipped,
        } = other;
        if self.alerts.is_empty() {
            self.alerts = alerts;
        } else {
            self.alerts.extend(alerts);
        }
        self.rejected
            .extend(rejected.into_iter().map(|e| e.within(at)));
        self.pages.extend(pages);
        self.skipped.extend(skipped.into_iter().map(|mut s| {
            s.at = ParseError::new(std::mem::take(&mut s.at), "").within(at).at;
            s
        }));
    }
}

/// Detects the shape and parses. Envelope-level problems are `Err`; per-record problems (one bad SNS
/// record among good ones, one bad entry of an Alertmanager webhook) go to `rejected`, with `at`
/// naming the record (e.g. `Records[2].Sns.Message`).
pub fn parse_all(input: &[u8]) -> Result<Parsed, ParseError> {
    if input.len() > MAX_EVENT_BYTES {
        return Err(ParseError::new(
            "",
            format!(
                "event is {} bytes, over the {MAX_EVENT_BYTES}-byte limit",
                input.len()
            ),
        ));
    }
    // Editors on Windows save JSON with a byte-order mark; it carries no meaning.
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    // One validation of the whole input is cheaper than serde_json's check of every string piece,
    // and says where the bad byte is; SIMD (AVX2 or NEON) where the CPU has it, a few times faster
    // than the standard library's on an alarm's 1 KB.
    let input = simdutf8::compat::from_utf8(input).map_err(|e| {
        ParseError::new(
            "",
            format!("not UTF-8: invalid byte at offset {}", e.valid_up_to()),
        )
    })?;
    let event = read_object(serde_json::from_str(input))?;
    let mut out = Parsed::default();
    dispatch(event, input, Layer::Outer, &mut out)?;
    Ok(out)
}

/// Strict: any rejected record is an `Err`. Used by `tocsin parse`. A page of a paged AWS Health
/// event becomes the alert of that page alone (see [`HealthPage::into_alert`]); a skipped event
/// gives no alert.
pub fn parse(input: &[u8]) -> Result<Vec<Alert>, ParseError> {
    parse_noting_skips(input).map(|(alerts, _)| alerts)
}

/// [`parse`], also saying which events were skipped and why, so that a caller can tell an event
/// deliberately dropped from one that held nothing.
pub fn parse_noting_skips(input: &[u8]) -> Result<(Vec<Alert>, Vec<Skipped>), ParseError> {
    let mut parsed = parse_all(input)?;
    if parsed.rejected.is_empty() {
        let mut alerts = parsed.alerts;
        alerts.extend(parsed.pages.into_iter().map(HealthPage::into_alert));
        Ok((alerts, parsed.skipped))
    } else {
        Err(parsed.rejected.swap_remove(0))
    }
}

/// Whether an event is the outer one or the `Message` of an SNS notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Outer,
    InSns,
}

impl Layer {
    /// The transport of what is found at this layer: inside SNS it is SNS, whatever the inner shape.
    fn transport(self, own: Transport) -> Transport {
        match self {
            Layer::Outer => own,
            Layer::InSns => Transport::Sns,
        }
    }
}

/// Every shape's top-level fields at once, so that one pass over the input reads any of them.
/// Fields the parsers do not use (SNS signatures, alarm actions, which AWS writes as a string or an
/// array) are skipped unread. The large nested parts are boxed to keep this small: it is moved a few
/// times per event, and most of it stays empty.
#[derive(Debug, Default, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(crate) struct Event<'a> {
    // An SNS Lambda event.
    #[serde(rename = "Records")]
    records: Option<List<Obj<SnsRecord<'a>>>>,
    // A bare SNS notification.
    #[serde(rename = "Type")]
    sns_type: Option<Val<'a>>,
    #[serde(rename = "Message")]
    message: Option<Message>,
    #[serde(rename = "TopicArn")]
    topic_arn: Option<Val<'a>>,

    // A CloudWatch alarm message, as SNS carries it.
    #[serde(rename = "AlarmName")]
    pub(crate) alarm_name: Option<Val<'a>>,
    #[serde(rename = "AlarmDescription")]
    pub(crate) alarm_description: Option<Val<'a>>,
    #[serde(rename = "AWSAccountId")]
    pub(crate) aws_account_id: Option<Val<'a>>,
    #[serde(rename = "NewStateValue")]
    pub(crate) new_state_value: Option<Val<'a>>,
    #[serde(rename = "NewStateReason")]
    pub(crate) new_state_reason: Option<Val<'a>>,
    #[serde(rename = "StateChangeTime")]
    pub(crate) state_change_time: Option<Val<'a>>,
    #[serde(rename = "Region")]
    pub(crate) region_name: Option<Val<'a>>,
    #[serde(rename = "AlarmArn")]
    pub(crate) alarm_arn: Option<Val<'a>>,
    #[serde(rename = "OldStateValue")]
    pub(crate) old_state_value: Option<Val<'a>>,
    #[serde(rename = "Trigger")]
    pub(crate) trigger: Option<Box<Obj<cloudwatch::Trigger<'a>>>>,
    #[serde(rename = "AlarmRule")]
    pub(crate) alarm_rule: Option<Val<'a>>,
    #[serde(rename = "TriggeringChildren")]
    pub(crate) triggering_children: Option<List<cloudwatch::Child<'a>>>,
    #[serde(rename = "ActionsSuppressor")]
    pub(crate) actions_suppressor: Option<Val<'a>>,
    #[serde(rename = "ActionsSuppressorWaitPeriod")]
    pub(crate) actions_suppressor_wait_period: Option<Val<'a>>,
    #[serde(rename = "ActionsSuppressorExtensionPeriod")]
    pub(crate) actions_suppressor_extension_period: Option<Val<'a>>,
    #[serde(rename = "AlarmContributor")]
    pub(crate) alarm_contributor: Option<Box<serde_json::Value>>,
    #[serde(rename = "MuteDetail")]
    pub(crate) mute_detail: Option<Box<serde_json::Value>>,
    #[serde(rename = "AlarmTags")]
    pub(crate) alarm_tags: Option<Box<serde_json::Value>>,
    #[serde(rename = "AlarmTagsStatus")]
    pub(crate) alarm_tags_status: Option<Box<serde_json::Value>>,

    // An EventBridge event; `region` and `time` are shared with the Lambda alarm action. `detail`
    // is kept as its raw text and read once `source` and `detail-type` say which shape it is (the
    // same key holds an object in one shape and a string in another, so no union reads them all).
    pub(crate) id: Option<Val<'a>>,
    pub(crate) source: Option<Val<'a>>,
    #[serde(rename = "detail-type")]
    pub(crate) detail_type: Option<Val<'a>>,
    #[serde(borrow)]
    pub(crate) detail: Option<&'a RawValue>,
    pub(crate) resources: Option<List<Val<'a>>>,
    pub(crate) account: Option<Val<'a>>,
    pub(crate) region: Option<Val<'a>>,

    // A Lambda alarm action.
    #[serde(rename = "alarmArn")]
    pub(crate) lambda_alarm_arn: Option<Val<'a>>,
    #[serde(rename = "accountId")]
    pub(crate) lambda_account_id: Option<Val<'a>>,
    #[serde(rename = "alarmData")]
    pub(crate) alarm_data: Option<Box<Obj<cloudwatch::AlarmData<'a>>>>,

    // An Alertmanager webhook; `version`, `status` and `alerts` are shared with the generic batch.
    pub(crate) version: Option<Val<'a>>,
    receiver: Option<Val<'a>>,
    #[serde(rename = "groupKey")]
    group_key: Option<Val<'a>>,
    pub(crate) alerts: Option<List<Obj<Entry<'a>>>>,

    // A single generic alert.
    pub(crate) name: Option<Val<'a>>,
    pub(crate) status: Option<Val<'a>>,
    pub(crate) time: Option<Val<'a>>,
    pub(crate) severity: Option<Val<'a>>,
    pub(crate) description: Option<Val<'a>>,
    pub(crate) reason: Option<Val<'a>>,
    pub(crate) key: Option<Val<'a>>,
    pub(crate) account_id: Option<Val<'a>>,
    pub(crate) labels: Option<Obj<Map<'a>>>,
}

/// One entry of an `alerts` array: the fields of an Alertmanager alert and of a generic alert.
#[derive(Debug, Default, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub(crate) struct Entry<'a> {
    pub(crate) status: Option<Val<'a>>,
    pub(crate) labels: Option<Obj<Map<'a>>>,
    pub(crate) annotations: Option<Obj<Map<'a>>>,
    #[serde(rename = "startsAt")]
    pub(crate) starts_at: Option<Val<'a>>,
    #[serde(rename = "endsAt")]
    pub(crate) ends_at: Option<Val<'a>>,
    pub(crate) version: Option<Val<'a>>,
    pub(crate) name: Option<Val<'a>>,
    pub(crate) time: Option<Val<'a>>,
    pub(crate) severity: Option<Val<'a>>,
    pub(crate) description: Option<Val<'a>>,
    pub(crate) reason: Option<Val<'a>>,
    pub(crate) key: Option<Val<'a>>,
    pub(crate) account_id: Option<Val<'a>>,
    pub(crate) region: Option<Val<'a>>,
}

/// One record of an SNS Lambda event.
///
/// Not `aws_lambda_events::event::sns::SnsEvent`, although real payloads fit it (a test checks that
/// every SNS fixture does): it fails the whole event when one record lacks any of its required fields
/// (signatures, subscription ARN, which tocsin never reads), so one bad record could not be rejected
/// alone; and it copies every field into a `String`, where this borrows, on the hottest path.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct SnsRecord<'a> {
    #[serde(rename = "EventSource")]
    event_source: Option<Val<'a>>,
    #[serde(rename = "Sns")]
    sns: Option<Obj<SnsNotification<'a>>>,
}

/// The part of an SNS notification tocsin reads.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct SnsNotification<'a> {
    #[serde(rename = "Type")]
    sns_type: Option<Val<'a>>,
    #[serde(rename = "Message")]
    message: Option<Message>,
    #[serde(rename = "TopicArn")]
    topic_arn: Option<Val<'a>>,
}

/// Turns a serde result into an event, or a one-line error: JSON syntax problems keep serde's line
/// and column.
fn read_object<'a>(
    result: Result<Obj<Event<'a>>, serde_json::Error>,
) -> Result<Event<'a>, ParseError> {
    match result {
        Ok(Obj::Ok(event)) => Ok(event),
        Ok(Obj::Wrong(kind)) => Err(ParseError::new(
            "",
            format!("expected a JSON object, found {kind}"),
        )),
        Err(e) if e.is_data() => Err(ParseError::new("", e.to_string())),
        Err(e) => Err(ParseError::new("", format!("not JSON: {e}"))),
    }
}

fn dispatch(
    mut event: Event<'_>,
    raw: &str,
    layer: Layer,
    out: &mut Parsed,
) -> Result<(), ParseError> {
    if layer == Layer::Outer {
        if let Some(records) = event.records.take() {
            return sns_records(records, out);
        }
        if event.message.is_some() || event.sns_type.is_some() {
            return sns_notification(
                event.sns_type.as_ref(),
                event.topic_arn.as_ref(),
                event.message.take(),
                out,
            );
        }
    }
    if event.alarm_name.is_some() {
        let alert = cloudwatch::from_alarm_message(&event, layer.transport(Transport::Http))?;
        push_one(out, alert);
        return Ok(());
    }
    if event.detail_type.is_some() || event.detail.is_some() {
        return eventbridge::parse(&event, layer.transport(Transport::Eventbridge), out);
    }
    if event.alarm_data.is_some() {
        let alert =
            cloudwatch::from_lambda_action(&event, layer.transport(Transport::LambdaAction))?;
        push_one(out, alert);
        return Ok(());
    }
    let version = event.version.as_ref().and_then(Val::as_str);
    if event.alerts.is_some()
        && (event.receiver.is_some() || event.group_key.is_some() || version == Some("4"))
    {
        return alertmanager::parse(&event, layer.transport(Transport::Http), out);
    }
    if version.is_some_and(|v| v.starts_with("tocsin/")) {
        return generic::parse(event, layer.transport(Transport::Http), out);
    }
    Err(unknown_shape(raw))
}

/// Most events carry one alert: an exact allocation keeps it in the allocator's fast path, where a
/// default first growth (four alerts, 1.4 KB) would not be.
pub(crate) fn push_one(out: &mut Parsed, alert: Alert) {
    out.alerts.reserve_exact(1);
    out.alerts.push(alert);
}

/// Says which keys were found, so that whoever sent the event can tell what it was taken for.
fn unknown_shape(raw: &str) -> ParseError {
    const SHOWN: usize = 12;
    let keys = serde_json::from_str::<Keys>(raw)
        .map(|k| k.0)
        .unwrap_or_default();
    let found = if keys.is_empty() {
        "no keys".to_owned()
    } else {
        let mut shown: Vec<String> = keys.iter().take(SHOWN).map(|k| quote(k)).collect();
        if keys.len() > SHOWN {
            shown.push(format!("and {} more", keys.len() - SHOWN));
        }
        format!("keys {}", shown.join(", "))
    };
    ParseError::new(
        "",
        format!(
            "unrecognised event shape: found {found}; expected an SNS event or notification, a \
             CloudWatch alarm (SNS message, EventBridge event or Lambda alarm action), an \
             EventBridge event, an Alertmanager webhook or a tocsin/v1 alert (see docs/sources.md)"
        ),
    )
}

fn sns_records(records: List<Obj<SnsRecord<'_>>>, out: &mut Parsed) -> Result<(), ParseError> {
    let records = match records {
        List::Ok(records) => records,
        List::Wrong(kind) => {
            return Err(ParseError::new(
                "Records",
                format!("expected an array, found {kind}"),
            ));
        }
    };
    if records.is_empty() {
        return Err(ParseError::new(
            "Records",
            "empty: an SNS event carries at least one record",
        ));
    }
    let is_sns = |r: &Obj<SnsRecord<'_>>| matches!(r, Obj::Ok(r) if r.sns.is_some());
    if !records.iter().any(is_sns) {
        let source = match records.first() {
            Some(Obj::Ok(r)) => r.event_source.as_ref().map(Val::describe),
            _ => None,
        };
        let source = source.map_or(String::new(), |s| format!(" (EventSource {s})"));
        return Err(ParseError::new(
            "Records",
            format!("no SNS records{source}: tocsin reads SNS events"),
        ));
    }
    for (i, record) in records.into_iter().enumerate() {
        let first = out.rejected.len();
        let first_skip = out.skipped.len();
        if let Err(e) = sns_record(record, out) {
            out.rejected.push(e);
        }
        if out.rejected.len() == first && out.skipped.len() == first_skip {
            // The usual case: nothing to name the record in.
            continue;
        }
        let at = format!("Records[{i}]");
        if out.rejected.len() > first {
            out.rejected[first..].iter_mut().for_each(|e| e.prefix(&at));
        }
        for s in &mut out.skipped[first_skip..] {
            s.at = ParseError::new(std::mem::take(&mut s.at), "")
                .within(&at)
                .at;
        }
    }
    Ok(())
}

/// Reads one record into `out`; the errors it returns or adds are relative to the record.
fn sns_record(record: Obj<SnsRecord<'_>>, out: &mut Parsed) -> Result<(), ParseError> {
    let mut record = match record {
        Obj::Ok(record) => record,
        Obj::Wrong(kind) => {
            return Err(ParseError::new(
                "",
                format!("expected an object, found {kind}"),
            ));
        }
    };
    if let Some(source) = opt_str(record.event_source.as_ref(), "EventSource")? {
        if source != "aws:sns" {
            return Err(ParseError::new(
                "EventSource",
                format!("expected \"aws:sns\", found {}", quote(source)),
            ));
        }
    }
    let sns = match record.sns.take() {
        None => return Err(ParseError::new("Sns", "required field is missing")),
        Some(Obj::Wrong(kind)) => {
            return Err(ParseError::new(
                "Sns",
                format!("expected an object, found {kind}"),
            ));
        }
        Some(Obj::Ok(sns)) => sns,
    };
    let first = out.rejected.len();
    let first_skip = out.skipped.len();
    sns_notification(
        sns.sns_type.as_ref(),
        sns.topic_arn.as_ref(),
        sns.message,
        out,
    )
    .map_err(|e| e.within("Sns"))?;
    out.rejected[first..]
        .iter_mut()
        .for_each(|e| e.prefix("Sns"));
    out.skipped[first_skip..].iter_mut().for_each(|s| {
        s.at = ParseError::new(std::mem::take(&mut s.at), "")
            .within("Sns")
            .at
    });
    Ok(())
}

/// Reads the `Message` of one SNS notification, whose `Type` must be `Notification` when present.
fn sns_notification(
    sns_type: Option<&Val<'_>>,
    topic_arn: Option<&Val<'_>>,
    message: Option<Message>,
    out: &mut Parsed,
) -> Result<(), ParseError> {
    match opt_str(sns_type, "Type")? {
        None | Some("Notification") => {}
        Some(other @ ("SubscriptionConfirmation" | "UnsubscribeConfirmation")) => {
            return Err(ParseError::new(
                "Type",
                format!(
                    "an SNS {other} is not an alert (confirm the subscription with its SubscribeURL)"
                ),
            ));
        }
        Some(other) => {
            return Err(ParseError::new(
                "Type",
                format!("expected \"Notification\", found {}", quote(other)),
            ));
        }
    }
    let parsed = match message {
        None => return Err(ParseError::new("Message", "required field is missing")),
        Some(Message::Wrong(kind)) => {
            return Err(ParseError::new(
                "Message",
                format!("expected a string, found {kind}"),
            ));
        }
        Some(Message::Read(read)) => read.map_err(|e| e.within("Message"))?,
    };
    let mut parsed = parsed;
    // A topic lives in one region, and CloudWatch publishes only to topics in the alarm's own
    // region: the topic's ARN says where an alarm message that names no region came from.
    if let Some(region) = topic_arn.and_then(Val::as_str).and_then(region::arn_region) {
        for alert in &mut parsed.alerts {
            cloudwatch::fill_region(alert, region);
        }
    }
    out.merge(parsed, "Message");
    Ok(())
}

/// The `Message` of an SNS notification. The envelope's parse only finds where the string is
/// (borrowed, still escaped); it is unescaped here (`unescape`) into a buffer each thread keeps, at
/// most [`MAX_EVENT_BYTES`], where serde_json's scratch buffer started empty and grew a dozen times
/// on every SNS event. A message that cannot be read is kept as its error, so that one bad record
/// does not fail its siblings.
#[derive(Debug)]
enum Message {
    /// What the message held, or why it could not be read (relative to the message).
    Read(Result<Parsed, ParseError>),
    /// The kind of JSON value found where a string was expected.
    Wrong(&'static str),
}

thread_local! {
    static MESSAGE_TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        let text = raw.get();
        Ok(match text.as_bytes().first() {
            Some(b'"') => {
                // Taken, not borrowed, for the time of the read: nothing else can be holding it.
                let mut buf = MESSAGE_TEXT.with(|b| std::mem::take(&mut *b.borrow_mut()));
                let read = unescape::unescape_into(&text[1..text.len() - 1], &mut buf)
                    .map_err(|e| ParseError::new("", format!("not a JSON string: {e}")))
                    .and_then(|()| read_message(&buf));
                MESSAGE_TEXT.with(|b| *b.borrow_mut() = buf);
                Message::Read(read)
            }
            Some(b'{') => Message::Wrong("an object"),
            Some(b'[') => Message::Wrong("an array"),
            Some(b'n') => Message::Wrong("null"),
            Some(b't' | b'f') => Message::Wrong("a boolean"),
            _ => Message::Wrong("a number"),
        })
    }
}

/// Reads the text of an SNS message, which may itself be any shape but another SNS envelope.
fn read_message(text: &str) -> Result<Parsed, ParseError> {
    let event = read_object(serde_json::from_str(text)).map_err(|mut e| {
        if e.reason.starts_with("not JSON") {
            // The usual plain-text sender is a Prometheus alert manager with its default template.
            e.reason.push_str(
                " (a plain-text SNS message; tocsin reads JSON messages, and Amazon Managed \
                 Service for Prometheus sends JSON with the template in docs/sources.md)",
            );
        }
        e
    })?;
    let mut parsed = Parsed::default();
    dispatch(event, text, Layer::InSns, &mut parsed)?;
    Ok(parsed)
}
