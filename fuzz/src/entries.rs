//! One function per fuzz target, each an entry of tocsin that reads untrusted bytes, with the properties
//! that must hold for any input: no panic, errors one line, and per entry its own (a signed token
//! reads back as signed, rendered JSON stays JSON, HTML has no tag an alert wrote, an SMS fits 1,600
//! characters, the API answers no 500 and never echoes its key).
//!
//! Shared by the libFuzzer targets (fuzz/fuzz_targets/) and by `tests/fuzz_regressions.rs`, which
//! replays every kept input of fuzz/regressions/<target>/ in the ordinary suite. Panics are the
//! failure report here: that is how libFuzzer and the test both see a broken property.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tocsin_core::config::{ChannelKind, Config};
use tocsin_core::model::{AlarmState, Alert, Severity};
use tocsin_core::record::{DeliveryJob, DeliveryKind, Status, Target};
use tocsin_core::render::{self, Context, Links, Rendered};

/// The example config (infra/tocsin.yaml): the classification and routing every target runs under.
const CONFIG: &str = include_str!("../../infra/tocsin.yaml");
/// The API's signing key in these targets; it must never show in an answer.
pub const KEY: &[u8] = b"fuzz-signing-key-0123456789abcdef-not-a-secret";

/// The one-click key ring of the fuzz targets: [`KEY`] under id `k1`.
pub fn ring() -> tocsin_core::token::KeyRing {
    tocsin_core::token::KeyRing::new("k1", [("k1".to_string(), KEY.to_vec())])
        .expect("the fuzz key is long enough")
}

/// A target's body: the input bytes in, a panic when a property breaks.
pub type Body = fn(&[u8]);

/// Every target by name, for the regression replay.
pub const TARGETS: [(&str, Body); 7] = [
    ("source", source),
    ("source_shapes", source_shapes),
    ("config", config),
    ("api", api),
    ("token", token),
    ("render", render),
    ("receipt", receipt),
];

/// The deliver function's reading of an SNS message as a channel's send event
/// (`tocsin_core::receipt`): never a panic; the one read deliver makes (`read_send_event`) agrees
/// with the whole parse wherever it takes the text for an event; a refusal is one line; a receipt's
/// tag is a tag value and its message id one line.
pub fn receipt(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = tocsin_core::receipt::parse_send_event(&text);
    if let Some(read) = tocsin_core::receipt::read_send_event(&text) {
        assert_eq!(
            read, parsed,
            "deliver's one read and the whole parse disagree"
        );
    }
    match parsed {
        Ok(Some(r)) => {
            assert!(
                !r.tag.is_empty()
                    && r.tag.len() <= 256
                    && r.tag
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "a receipt tag that is not a tag value: {:?}",
                r.tag
            );
            assert_one_line("a receipt's message id", &r.message_id);
        }
        Ok(None) => {}
        Err(e) => assert_one_line("a send event's refusal", &e),
    }
}

fn example_config() -> Arc<Config> {
    static C: OnceLock<Arc<Config>> = OnceLock::new();
    C.get_or_init(|| Arc::new(tocsin_core::config::load(CONFIG).expect("infra/tocsin.yaml loads")))
        .clone()
}

fn assert_one_line(what: &str, s: &str) {
    assert!(
        !s.contains('\n') && !s.contains('\r'),
        "{what} is not one line: {s:?}"
    );
}

/// Every ingest source format, as bytes (what ingest and `tocsin parse` read): parsed alerts are
/// classified under the example config and serialize; every error is one line.
pub fn source(data: &[u8]) {
    match tocsin_core::source::parse_all(data) {
        Ok(parsed) => {
            for e in &parsed.rejected {
                assert_one_line("a rejected record's reason", &e.to_string());
            }
            for s in &parsed.skipped {
                assert_one_line("a skip's reason", &s.to_string());
            }
            let config = example_config();
            for mut a in parsed.alerts {
                tocsin_core::classify::classify(&config, &mut a);
                let json = serde_json::to_string(&a).expect("an alert serializes");
                let back: Alert = serde_json::from_str(&json).expect("an alert reads back");
                assert_eq!(back.event_id, a.event_id);
            }
        }
        Err(e) => assert_one_line("a parse error", &e.to_string()),
    }
}

/// One real event of each shape, the base the structure-aware target mutates.
const SHAPES: [&str; 16] = [
    include_str!("../../events/sns/metric-alarm.json"),
    include_str!("../../events/sns/multi-record.json"),
    include_str!("../../events/sns/https-notification.json"),
    include_str!("../../events/sns/composite.json"),
    include_str!("../../events/eventbridge/metric-alarm.json"),
    include_str!("../../events/eventbridge/composite.json"),
    include_str!("../../events/lambda-action/metric-alarm.json"),
    include_str!("../../events/alertmanager/firing.json"),
    include_str!("../../events/generic/firing.json"),
    include_str!("../../events/health/issue-open.json"),
    include_str!("../../events/synthetics/canary-run-failure.json"),
    include_str!("../../events/guardduty/finding-high.json"),
    include_str!("../../events/ecs/task-stopped.json"),
    include_str!("../../events/ec2/spot-interruption.json"),
    include_str!("../../events/autoscaling/launch-unsuccessful.json"),
    include_str!("../../events/eventbridge-other/codepipeline-failed.json"),
];

/// A JSON value the fuzzer builds (depth-limited by the input's length).
#[derive(Debug, Arbitrary)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Time(i64),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => Value::from(*i),
            Json::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String(s.clone()),
            Json::Time(t) => DateTime::from_timestamp(*t % 10_000_000_000, 0)
                .map_or(Value::Null, |d| Value::String(d.to_rfc3339())),
            Json::Array(v) => Value::Array(v.iter().map(Json::value).collect()),
            Json::Object(v) => {
                Value::Object(v.iter().map(|(k, j)| (k.clone(), j.value())).collect())
            }
        }
    }
}

/// One edit of the base event: at the node a path of child indexes leads to (descending into a string
/// that holds JSON, as an SNS `Message` does), replace, remove, rename or add.
#[derive(Debug, Arbitrary)]
enum Edit {
    Replace(Vec<u8>, Json),
    Remove(Vec<u8>),
    Add(Vec<u8>, String, Json),
    Rename(Vec<u8>, String),
}

#[derive(Debug, Arbitrary)]
struct ShapeInput {
    shape: u8,
    edits: Vec<Edit>,
}

/// Walks `path` from `v` and applies `f` to the parent-and-index there: a key's or an element's slot.
fn edit_at(v: &mut Value, path: &[u8], f: &mut dyn FnMut(&mut Value, usize)) {
    match path.split_first() {
        None => {}
        Some((&i, rest)) => match v {
            Value::Object(m) if !m.is_empty() => {
                let n = i as usize % m.len();
                if rest.is_empty() {
                    f(v, n);
                } else if let Some((_, child)) = m.iter_mut().nth(n) {
                    edit_at(child, rest, f);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let n = i as usize % a.len();
                if rest.is_empty() {
                    f(v, n);
                } else {
                    edit_at(&mut a[n], rest, f);
                }
            }
            Value::String(s) => {
                if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                    if inner.is_object() || inner.is_array() {
                        edit_at(&mut inner, path, f);
                        *s = inner.to_string();
                    }
                }
            }
            _ => f(v, i as usize),
        },
    }
}

fn slot(parent: &mut Value, n: usize) -> Option<&mut Value> {
    match parent {
        Value::Object(m) => m.iter_mut().nth(n).map(|(_, v)| v),
        Value::Array(a) => a.get_mut(n),
        _ => None,
    }
}

/// Every source format, structure-aware: a real event of each shape with fields replaced, removed,
/// renamed and added at any depth (inside an SNS `Message` too), then [`source`]'s checks.
pub fn source_shapes(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(input) = ShapeInput::arbitrary(&mut u) else {
        return;
    };
    let base = SHAPES[input.shape as usize % SHAPES.len()];
    let mut v: Value = serde_json::from_str(base).expect("a fixture is JSON");
    for e in &input.edits {
        match e {
            Edit::Replace(p, j) => edit_at(&mut v, p, &mut |parent, n| {
                if let Some(s) = slot(parent, n) {
                    *s = j.value();
                }
            }),
            Edit::Remove(p) => edit_at(&mut v, p, &mut |parent, n| match parent {
                Value::Object(m) => {
                    if let Some(k) = m.keys().nth(n).cloned() {
                        m.remove(&k);
                    }
                }
                Value::Array(a) if n < a.len() => {
                    a.remove(n);
                }
                _ => {}
            }),
            Edit::Add(p, k, j) => edit_at(&mut v, p, &mut |parent, n| {
                if let Some(Value::Object(m)) = slot(parent, n) {
                    m.insert(k.clone(), j.value());
                }
            }),
            Edit::Rename(p, to) => edit_at(&mut v, p, &mut |parent, n| {
                if let Value::Object(m) = parent {
                    if let Some(k) = m.keys().nth(n).cloned() {
                        let val = m.remove(&k).unwrap_or(Value::Null);
                        m.insert(to.clone(), val);
                    }
                }
            }),
        }
    }
    source(v.to_string().as_bytes());
}

/// The config loader and checker (`tocsin check-config`, every function's cold start): any text
/// loads or gives problems with a position and a one-line message; a config that loads classifies an
/// alert without a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match tocsin_core::config::load(text) {
        Ok(config) => {
            let mut a = base_alert();
            tocsin_core::classify::classify(&config, &mut a);
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refused config names no problem");
            for e in &errors {
                assert_one_line("a config problem", &tocsin_core::text::one_line(&e.message));
                assert!(e.pos.line >= 1, "a config problem at line 0: {e:?}");
            }
        }
    }
}

/// The alert of events/sns/metric-alarm.json, classified by the example config.
fn base_alert() -> Alert {
    static A: OnceLock<Alert> = OnceLock::new();
    A.get_or_init(|| {
        let mut a = tocsin_core::source::parse(SHAPES[0].as_bytes())
            .expect("the fixture parses")
            .remove(0);
        tocsin_core::classify::classify(&example_config(), &mut a);
        a
    })
    .clone()
}

#[derive(Debug, Arbitrary)]
enum TokenInput {
    /// Any text where a token goes.
    Raw(String),
    /// A payload of any bytes signed with the key: past the signature check, into the claims.
    Signed(Vec<u8>),
    /// Claims of any text: signed, they read back as they were.
    RoundTrip {
        alert: String,
        action: String,
        recipient: String,
        expiry: i64,
    },
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).expect("a valid time")
}

/// The one-click token reader (`GET|POST /a/{token}`).
pub fn token(data: &[u8]) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{Hmac, KeyInit, Mac};
    use tocsin_core::token::{Claims, TokenError, sign, verify};
    let mut u = Unstructured::new(data);
    let Ok(input) = TokenInput::arbitrary(&mut u) else {
        return;
    };
    match input {
        TokenInput::Raw(t) => {
            if let Err(e) = verify(&ring(), &t, now()) {
                assert_one_line("a token error", &e.to_string());
            }
        }
        TokenInput::Signed(payload) => {
            // Signed as `sign` signs: the key id, a newline, the payload.
            let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(KEY).expect("any key");
            mac.update(b"k1\n");
            mac.update(&payload);
            let t = format!(
                "k1.{}.{}",
                URL_SAFE_NO_PAD.encode(&payload),
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            );
            let r = verify(&ring(), &t, now());
            assert!(
                !matches!(r, Err(TokenError::BadSignature)),
                "a correctly signed token is refused as badly signed"
            );
        }
        TokenInput::RoundTrip {
            alert,
            action,
            recipient,
            expiry,
        } => {
            let fields_fit = [&alert, &action, &recipient]
                .iter()
                .all(|s| !s.contains('\n'));
            let Some(expires_at) = DateTime::from_timestamp(expiry % 100_000_000_000, 0) else {
                return;
            };
            let claims = Claims {
                alert_id: alert,
                action,
                recipient,
                expires_at,
            };
            let t = sign(&ring(), &claims);
            match verify(&ring(), &t, now()) {
                Ok(back) => {
                    if fields_fit {
                        assert_eq!(back, claims, "a token reads back other claims");
                    }
                    assert!(back.expires_at > now(), "an expired token was accepted");
                }
                Err(TokenError::Expired(_)) => assert!(expires_at <= now()),
                Err(e) => {
                    assert!(!fields_fit, "a token made by sign() is refused: {e}");
                }
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
struct RenderInput {
    alarm_name: String,
    reason: String,
    description: String,
    kind: String,
    namespace: Option<String>,
    metric_name: Option<String>,
    region: Option<String>,
    account_id: Option<String>,
    alarm_arn: Option<String>,
    dimensions: Vec<(String, String)>,
    labels: Vec<(String, String)>,
    threshold: Option<f64>,
    severity: u8,
    state: u8,
    delivery: u8,
    level: Option<u32>,
    target: String,
    address: Option<String>,
    thread: Option<String>,
    links: [Option<String>; 5],
}

/// Tag names the email template itself writes (read off a render of a benign alert).
fn template_tags() -> &'static BTreeSet<String> {
    static T: OnceLock<BTreeSet<String>> = OnceLock::new();
    T.get_or_init(|| {
        let mut tags = BTreeSet::new();
        for kind in [
            DeliveryKind::Trigger,
            DeliveryKind::Escalation,
            DeliveryKind::Resolve,
            DeliveryKind::Acknowledge,
        ] {
            // Multi-line text too: the template breaks lines with <br>.
            let mut a = base_alert();
            a.reason = "first line\nsecond line".into();
            a.description = "first line\nsecond line".into();
            let job = job_of(a, kind, Some(2), "alice".into(), None, None);
            let links = Links {
                ack: Some("https://tocsin.example/a/t".into()),
                resolve: Some("https://tocsin.example/a/r".into()),
                view: Some("https://tocsin.example/alerts/a".into()),
                runbook: Some("https://runbooks.example.com/x".into()),
                ack_code: Some("K7Q2".into()),
            };
            if let Rendered::Email { html, .. } =
                render::render(ChannelKind::Email, &ctx(&job, &links))
            {
                tags.extend(html_tags(&html).into_iter().map(|(t, _)| t));
            }
        }
        tags
    })
}

/// [`html_tags`], for the regression test's check of the checker.
pub fn html_tags_for_test(html: &str) -> Vec<(String, Vec<String>)> {
    html_tags(html)
}

/// Every tag in `html`: its lower-case name and its attribute names.
fn html_tags(html: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let inside = &rest[..end];
        let name: String = inside
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '!')
            .collect::<String>()
            .to_ascii_lowercase();
        let mut attrs = Vec::new();
        let mut quoted: Option<char> = None;
        let mut word = String::new();
        for c in inside[name.len()..].chars() {
            match quoted {
                Some(q) if c == q => quoted = None,
                Some(_) => {}
                None if c == '"' || c == '\'' => quoted = Some(c),
                None if c == '=' || c.is_whitespace() || c == '/' => {
                    if !word.is_empty() {
                        attrs.push(std::mem::take(&mut word).to_ascii_lowercase());
                    }
                }
                None => word.push(c),
            }
        }
        if !word.is_empty() {
            attrs.push(word.to_ascii_lowercase());
        }
        out.push((name, attrs));
        rest = &rest[end.min(rest.len())..];
    }
    out
}

fn job_of(
    alert: Alert,
    kind: DeliveryKind,
    level: Option<u32>,
    target: String,
    address: Option<String>,
    thread: Option<String>,
) -> DeliveryJob {
    let status = match kind {
        DeliveryKind::Resolve => Status::Resolved,
        DeliveryKind::Acknowledge => Status::Acknowledged,
        _ => Status::Open,
    };
    DeliveryJob {
        delivery_id: "d-fuzz".into(),
        alert_id: "a-fuzz".into(),
        kind,
        target: Target {
            channel: "fuzz".into(),
            channel_kind: ChannelKind::Email,
            target,
            address,
        },
        level,
        created_at: alert.state_changed_at,
        alert,
        status,
        thread,
    }
}

fn ctx<'a>(job: &'a DeliveryJob, links: &'a Links) -> Context<'a> {
    Context {
        job,
        links,
        now: job.created_at,
    }
}

/// The renderers given any alert: JSON payloads stay JSON, the email's HTML holds no tag or event
/// handler an alert wrote, an SMS is at most 1,600 characters.
pub fn render(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(i) = RenderInput::arbitrary(&mut u) else {
        return;
    };
    let mut a = base_alert();
    a.alarm_name = i.alarm_name;
    a.reason = i.reason;
    a.description = i.description;
    a.kind = i.kind;
    a.namespace = i.namespace;
    a.metric_name = i.metric_name;
    a.region = i.region;
    a.account_id = i.account_id;
    a.alarm_arn = i.alarm_arn;
    a.dimensions = i.dimensions.into_iter().collect::<BTreeMap<_, _>>();
    a.labels.extend(i.labels);
    a.threshold = i.threshold;
    a.severity = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ][i.severity as usize % 5];
    a.state = [
        AlarmState::Alarm,
        AlarmState::Ok,
        AlarmState::InsufficientData,
    ][i.state as usize % 3];
    let kind = [
        DeliveryKind::Trigger,
        DeliveryKind::Escalation,
        DeliveryKind::Resolve,
        DeliveryKind::Acknowledge,
    ][i.delivery as usize % 4];
    let [ack, resolve, view, runbook, ack_code] = i.links;
    let links = Links {
        ack,
        resolve,
        view,
        runbook,
        ack_code,
    };
    let job = job_of(a, kind, i.level, i.target, i.address, i.thread);
    for ck in render::ALL_KINDS {
        let mut job = job.clone();
        job.target.channel_kind = ck;
        match render::render(ck, &ctx(&job, &links)) {
            Rendered::Email { subject, html, .. } => {
                assert_one_line("an email subject", &subject);
                let allowed = template_tags();
                for (tag, attrs) in html_tags(&html) {
                    assert!(
                        allowed.contains(&tag),
                        "the email has a tag <{tag}> an alert wrote"
                    );
                    for at in attrs {
                        assert!(
                            !at.starts_with("on"),
                            "the email's <{tag}> has a handler {at}"
                        );
                    }
                }
                assert!(
                    !html.to_ascii_lowercase().contains("javascript:"),
                    "the email links to javascript:"
                );
            }
            Rendered::Sms { text } => {
                let n = text.chars().count();
                assert!(n <= 1600, "an SMS of {n} characters");
            }
            Rendered::Slack { payload }
            | Rendered::Teams { payload }
            | Rendered::Pagerduty { payload }
            | Rendered::Webhook { body: payload } => {
                // Valid JSON as sent (numbers may come back a last digit apart: serde_json parses
                // floats fast, not round-trip exact, so only the shape is compared).
                let text = serde_json::to_string(&payload).expect("a payload serializes");
                let back: Value = serde_json::from_str(&text).expect("a payload reads back");
                assert_eq!(
                    back.as_object().map(|o| o.keys().collect::<Vec<_>>()),
                    payload.as_object().map(|o| o.keys().collect::<Vec<_>>()),
                    "a payload changes shape through JSON"
                );
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Method {
    Get,
    Post,
    Delete,
    Put,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Id {
    /// The open alert.
    Open,
    Any(String),
}

#[derive(Debug, Arbitrary)]
enum PathIn {
    Raw(String),
    Alerts,
    Alert(Id),
    AlertAction(Id, u8),
    /// A one-click link: a token the key signed for the open alert, or any text.
    OneClick(Option<(u8, i64)>, String),
    Status(u8),
    Metrics,
    Silences,
    Silence(String),
}

#[derive(Debug, Arbitrary)]
struct ApiInput {
    method: Method,
    path: PathIn,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// None: no authorizer; else an IAM caller.
    identity: Option<String>,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

/// The api handler (method, path, query, headers, body, with or without an authorizer) on the
/// embedded pipeline holding one open critical alert: never a 500, never a panic, JSON answers parse,
/// and the signing key never shows.
pub fn api(data: &[u8]) {
    use tocsin_api::{Api, ApiSettings, Identity, Request};
    use tocsin_core::status::Audience;
    let mut u = Unstructured::new(data);
    let Ok(i) = ApiInput::arbitrary(&mut u) else {
        return;
    };
    runtime().block_on(async move {
        let config = example_config();
        let start = base_alert().state_changed_at;
        let p = tocsin_local::Embedded::new(config, start);
        let entries = p.ingest(base_alert()).await.expect("the fixture routes");
        let open = entries.first().map(|e| e.alert.clone()).unwrap_or_default();
        let api = Api::new(
            p.router.clone(),
            ApiSettings {
                link_keys: ring(),
                integration_keys: None,
                default_audience: Audience::Customer,
                title: "Fuzz status".into(),
                metrics_namespace: "tocsin".into(),
                max_list: 1000,
            },
        );
        let id = |id: Id| match id {
            Id::Open => open.clone(),
            Id::Any(s) => s,
        };
        let path = match i.path {
            PathIn::Raw(p) => p,
            PathIn::Alerts => "/alerts".into(),
            PathIn::Alert(a) => format!("/alerts/{}", id(a)),
            PathIn::AlertAction(a, n) => {
                let action = ["ack", "resolve", "assign", "notes", "x"][n as usize % 5];
                format!("/alerts/{}/{action}", id(a))
            }
            PathIn::OneClick(Some((n, secs)), _) => {
                let claims = tocsin_core::token::Claims {
                    alert_id: open.clone(),
                    action: ["ack", "resolve", "escalate"][n as usize % 3].into(),
                    recipient: "alice".into(),
                    expires_at: start + chrono::Duration::seconds(secs % 1_000_000),
                };
                format!("/a/{}", tocsin_core::token::sign(&ring(), &claims))
            }
            PathIn::OneClick(None, t) => format!("/a/{t}"),
            PathIn::Status(n) => {
                ["/status", "/status.json", "/status/feed.atom"][n as usize % 3].into()
            }
            PathIn::Metrics => "/metrics.json".into(),
            PathIn::Silences => "/silences".into(),
            PathIn::Silence(s) => format!("/silences/{s}"),
        };
        let method = match i.method {
            Method::Get => "GET".into(),
            Method::Post => "POST".into(),
            Method::Delete => "DELETE".into(),
            Method::Put => "PUT".into(),
            Method::Other(m) => m,
        };
        let req = Request {
            method,
            path,
            query: i.query,
            headers: i
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body: i.body,
            identity: i.identity.map(|arn| Identity::Iam {
                user_arn: Some(arn),
                caller_id: None,
            }),
        };
        let resp = api.handle(&req).await;
        assert!(
            (200..500).contains(&resp.status),
            "{} {} answered {}: {}",
            req.method,
            req.path,
            resp.status,
            resp.text()
        );
        let body = resp.text();
        assert!(
            !body.contains(std::str::from_utf8(KEY).unwrap_or_default()),
            "the key in an answer"
        );
        if resp
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            serde_json::from_slice::<Value>(&resp.body).expect("a JSON answer parses");
        }
    });
}
