//! The chaos run (`make chaos`; ignored in `make test`): the real function binaries (target/debug:
//! ingest, router, escalate, api, and deliver once per channel), wired as their `main.rs` wires them and
//! as tests/e2e.rs runs them, against moto and local channel servers, with a fault proxy in front of
//! every AWS call and every channel endpoint failing `CHAOS_FAULTS` of the calls (default 31 %: the
//! share a run realises can fall a few tenths under the draw, 29.6 % at seed 17 with 30 %, and at
//! least 30 % must fail), and the platform ([`chaos::platform`]) drawing a SIGKILL for `CHAOS_KILLS` (default 15 %) of the invocations
//! at a random moment within the function's mean duration (the ones that land are counted) and
//! retrying as Lambda does (`CHAOS_RETRY_SCALE` scales Lambda's 1- and 2-minute waits, default 1).
//! `CHAOS_CONCURRENCY` (default 8) execution environments per function.
//!
//! The scenario (`CHAOS_ALERTS` alarm transitions, default 1,000, drawn from `CHAOS_SEED`): a silence
//! through the API; every ALARM transition through SNS, EventBridge and the alarm action (duplicates);
//! group flushes; acknowledgements through the API and through the one-click link of the SMS alice got;
//! every escalation schedule read back from moto, fired until none is left; the OK transitions. What
//! should arrive is what a fault-free run of the same scenario on the embedded default (the library:
//! `tocsin_local::Embedded` and the api handler) published, one for one, for pages and per-alert
//! notifications. Group notifications (`ops-hook`) say what joined before each flush and carry the
//! flush's time in their id, so they are checked by what must hold whatever the timing: every one the
//! stack published arrived exactly once, every group ends with all its changes told and no outbox
//! left, and every group the fault-free run told was told. Writes target/chaos/{expected,received,
//! dead_letters}.jsonl and prints the last line
//! `chaos: A alerts, C calls, F faults (P %), K kills, lost L, doubled D, dead-lettered Q`.
//!
//! Send receipts (`tocsin_core::receipt`): the email channel sends through a configuration set, and
//! SES's event publishing is played: each `SendEmail` moto took (its answer lost or not) comes back
//! to `deliver-oncall-email` as its `Send` event. The SMS channel sends through End User Messaging
//! (`provider: end_user_messaging`), which moto lacks: a local server answers `SendTextMessage` as
//! the service does (its JSON protocol) and keeps every text it took (what reached the phones),
//! behind a fault proxy of its own, and each text it took comes back to `deliver-oncall-sms` as its
//! `TEXT_SUCCESSFUL` event. So a message whose answer a proxy lost is confirmed, not sent again.
//!
//! Bounded in time: phases stop starting after `CHAOS_TIME_LIMIT` seconds (default 1,800). Loopback only.

#![allow(clippy::unwrap_used)]

#[path = "e2e_support/mod.rs"]
mod support;

#[path = "chaos_support/mod.rs"]
mod chaos;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos::faults::{Counts, FaultProxy, Kind};
use chaos::ledger::{Key, Seen, Tally, tally, tally_published};
use chaos::platform::{Outcome, Platform, function_arn};
use chaos::rng::Rng;
use chaos::scenario::{Ack, Alarm, Path, SILENCED, Scenario, event};
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::{Value, json};
use support::capture::{Reply, Server};
use support::{Aws, sns_event};
use tocsin_core::config::Config;
use tocsin_core::record::DeliveryJob;

const CHANNELS: [&str; 4] = ["oncall-sms", "oncall-email", "ops-hook", "audit-hook"];
/// The channel of the catch-all route, grouped by service: its notifications are checked by what was
/// published and what the groups still owe, not one for one with the fault-free run.
const GROUPED: &str = "ops-hook";
const ALICE: &str = "+447700900001";
const DANA: &str = "+447700900004";
/// SNS delivers a message twice now and then.
const SNS_REDELIVERY: f64 = 0.03;
/// The email channel's configuration set, whose send events come back as receipts.
const EMAIL_CONFIGURATION_SET: &str = "tocsin-chaos-email";
/// The topic SES publishes the set's send events to (the template's `EmailEventsTopic`).
const EMAIL_EVENTS_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:tocsin-chaos-email-events";
/// The SMS channel's End User Messaging configuration set, whose text events come back as receipts.
const SMS_CONFIGURATION_SET: &str = "tocsin-chaos-sms";
/// The topic End User Messaging publishes the set's events to (the template's `SmsEventsTopic`).
const SMS_EVENTS_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:tocsin-chaos-sms-events";

/// SES's and End User Messaging's event publishing, played: every send the service took (its answer
/// lost or not) becomes, 0.2 to 1.5 s later, the event the service publishes through the
/// configuration set's SNS destination (`events/receipts/`): SES's `Send` event with the message's
/// tags, or End User Messaging's `TEXT_SUCCESSFUL` with the message's context, handed to the
/// channel's deliver function as SNS hands it (async, with Lambda's retries). `counts`: events
/// published, receipts recorded.
async fn publish_send_events(
    taken: chaos::faults::AcceptedSends,
    platform: Platform,
    seed: u64,
    counts: Arc<[std::sync::atomic::AtomicU64; 2]>,
) {
    let mut rng = Rng::new(seed);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (request, answer) in taken.take() {
            let (Ok(request), Ok(answer)) = (
                serde_json::from_str::<Value>(&request),
                serde_json::from_str::<Value>(&answer),
            ) else {
                continue;
            };
            let (function, topic, event) = if request.get("DestinationPhoneNumber").is_some() {
                let event = json!({
                    "eventType": "TEXT_SUCCESSFUL",
                    "eventVersion": "1.0",
                    "eventTimestamp": Utc::now().timestamp_millis(),
                    "isFinal": true,
                    "destinationPhoneNumber": request["DestinationPhoneNumber"],
                    "messageId": answer["MessageId"],
                    "messageType": request["MessageType"],
                    "messageStatus": "SUCCESSFUL",
                    "context": request["Context"],
                });
                ("deliver-oncall-sms", SMS_EVENTS_TOPIC, event)
            } else {
                let mut tags = serde_json::Map::new();
                tags.insert(
                    "ses:configuration-set".into(),
                    json!([request["ConfigurationSetName"]]),
                );
                for t in request["EmailTags"].as_array().cloned().unwrap_or_default() {
                    tags.insert(
                        t["Name"].as_str().unwrap_or_default().to_string(),
                        json!([t["Value"]]),
                    );
                }
                let event = json!({
                    "eventType": "Send",
                    "mail": {
                        "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "source": request["FromEmailAddress"],
                        "messageId": answer["MessageId"],
                        "destination": request["Destination"]["ToAddresses"],
                        "tags": tags,
                    },
                    "send": {},
                });
                ("deliver-oncall-email", EMAIL_EVENTS_TOPIC, event)
            };
            let delay = Duration::from_millis(200 + rng.below(1300));
            let platform = platform.clone();
            let counts = counts.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                counts[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let message = support::Received {
                    body: event.to_string(),
                    attributes: BTreeMap::new(),
                };
                let out = platform
                    .invoke_async(function, &sns_event(topic, std::slice::from_ref(&message)))
                    .await;
                if matches!(&out, Outcome::Ok(v) if v["receipts"] == 1) {
                    counts[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    }
}

/// The texts End User Messaging took for `phone` (the local server's record), in order.
fn texts_to(eum: &Server, phone: &str) -> Vec<String> {
    eum.requests()
        .iter()
        .map(|r| r.json())
        .filter(|m| m["DestinationPhoneNumber"] == phone)
        .map(|m| m["MessageBody"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config_path() -> PathBuf {
    support::root().join("tests/chaos_support/tocsin.yaml")
}

fn load_config() -> Arc<Config> {
    let text = std::fs::read_to_string(config_path()).unwrap();
    Arc::new(tocsin_core::config::load(&text).unwrap_or_else(|e| panic!("chaos config: {e:?}")))
}

/// The alert id an alarm's ALARM transition opens (the same through every path).
fn alert_id(alarm: &Alarm) -> String {
    let ev = event(alarm, false, alarm.fired_at, alarm.alarm_paths[0]);
    let alerts = tocsin_core::source::parse(ev.to_string().as_bytes()).unwrap();
    tocsin_core::router::alert_id_for(&alerts[0])
}

/// An API Gateway event from a fixture of events/api with `$NAME`s filled in, as text.
fn api_text(name: &str, vars: &[(&str, &str)]) -> String {
    let p = support::root().join("events/api").join(name);
    let mut text = std::fs::read_to_string(&p).unwrap();
    for (k, v) in vars {
        text = text.replace(&format!("${k}"), v);
    }
    text
}

/// The silence request: `service = media` until a day after the start.
fn silence_text(s: &Scenario) -> String {
    let mut v: Value = serde_json::from_str(&api_text("silences-create.json", &[])).unwrap();
    v["body"] = json!({
        "matchers": [format!("service = {SILENCED}")],
        "starts_at": (s.t0 - Span::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "ends_at": (s.t0 + Span::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "comment": "chaos: media is being rebuilt",
    })
    .to_string()
    .into();
    v.to_string()
}

/// Every arrival of a phase's transitions, in time order: (time, alarm index, event).
fn arrivals(s: &Scenario, ok: bool) -> Vec<(DateTime<Utc>, usize, Path, Value)> {
    let mut out = Vec::new();
    for (i, a) in s.alarms.iter().enumerate() {
        let (at, paths) = if ok {
            match &a.ok {
                Some((at, p)) => (*at, p.clone()),
                None => continue,
            }
        } else {
            (a.fired_at, a.alarm_paths.clone())
        };
        for p in paths {
            out.push((at, i, p, event(a, ok, at, p)));
        }
    }
    out.sort_by_key(|(at, i, _, _)| (*at, *i));
    out
}

/// The fault-free run on the embedded default: the delivery jobs it published.
async fn expected(config: Arc<Config>, s: &Scenario, key: &[u8]) -> Vec<DeliveryJob> {
    let ring = tocsin_core::token::KeyRing::new("k1", [("k1".to_string(), key.to_vec())])
        .expect("the chaos link key is long enough");
    use tocsin_api::{Api, ApiSettings};
    let p = tocsin_local::Embedded::new(config, s.t0);
    let api = Api::new(
        p.router.clone(),
        ApiSettings {
            link_keys: ring.clone(),
            integration_keys: None,
            default_audience: tocsin_core::status::Audience::Customer,
            title: "chaos".into(),
            metrics_namespace: "tocsin".into(),
            max_list: 1000,
        },
    );
    let call = |text: String| {
        let api = &api;
        async move {
            let req = lambda_http::request::from_str(&text).unwrap();
            api.handle(&tocsin_api::handler::from_lambda(&req)).await
        }
    };
    let made = call(silence_text(s)).await;
    assert!(made.status < 300, "expected: silence: {}", made.text());
    for (_, _, _, ev) in arrivals(s, false) {
        for alert in tocsin_core::source::parse(ev.to_string().as_bytes()).unwrap() {
            p.ingest(alert).await.unwrap();
        }
    }
    p.run_timers(Some(s.t0 + Span::minutes(2))).await.unwrap();
    p.clock.set(s.t0 + Span::minutes(5));
    for a in &s.alarms {
        let id = alert_id(a);
        let resp = match a.ack {
            None => continue,
            Some(Ack::Api) => call(api_text("ack.json", &[("ALERT_ID", &id)])).await,
            Some(Ack::OneClick) => {
                let token = tocsin_core::token::sign(
                    &ring,
                    &tocsin_core::token::Claims {
                        alert_id: id.clone(),
                        action: "ack".into(),
                        recipient: "alice".into(),
                        expires_at: s.t0 + Span::hours(2),
                    },
                );
                call(api_text(
                    "one-click-perform.json",
                    &[("TOKEN", &token), ("ALERT_ID", &id), ("ACTION", "ack")],
                ))
                .await
            }
        };
        assert!(
            resp.status < 400,
            "expected: ack {}: {}",
            a.name,
            resp.text()
        );
    }
    p.run_timers(Some(s.t0 + Span::minutes(50))).await.unwrap();
    for (_, _, _, ev) in arrivals(s, true) {
        for alert in tocsin_core::source::parse(ev.to_string().as_bytes()).unwrap() {
            p.ingest(alert).await.unwrap();
        }
    }
    p.run_timers(Some(s.t0 + Span::minutes(70))).await.unwrap();
    p.bus.take_deliveries()
}

/// The running stack.
struct Stack {
    platform: Platform,
    aws: Aws,
    rng: std::sync::Mutex<Rng>,
    deadline: Instant,
    /// Acks that fell back from one-click to the API (alice's SMS never came).
    fallbacks: std::sync::Mutex<Vec<String>>,
    /// Every group notification (`ops-hook`) published on the deliveries topic, as SNS carried it.
    grouped: std::sync::Mutex<Vec<DeliveryJob>>,
}

impl Stack {
    fn redeliver(&self) -> bool {
        self.rng.lock().unwrap().chance(SNS_REDELIVERY)
    }

    fn late(&self) -> bool {
        Instant::now() > self.deadline
    }

    /// Invokes asynchronously every `(function, event)`, all at once (each function's concurrency
    /// bounds them), SNS sometimes handing one twice.
    async fn fan_out(&self, calls: Vec<(String, Value)>, sns: bool) {
        let mut set = tokio::task::JoinSet::new();
        for (f, ev) in calls {
            let copies = if sns && self.redeliver() { 2 } else { 1 };
            for _ in 0..copies {
                let platform = self.platform.clone();
                let (f, ev) = (f.clone(), ev.clone());
                set.spawn(async move { platform.invoke_async(&f, &ev).await });
            }
        }
        while set.join_next().await.is_some() {}
    }

    /// SNS between the functions: what ingest published goes to the router, what the router (or
    /// escalate, or the api) published goes to each channel's deliver, until nothing is left.
    async fn pump(&self) {
        for _ in 0..20 {
            let mut calls = Vec::new();
            for m in self.aws.drain(&self.aws.alerts_queue).await {
                calls.push((
                    "router".to_string(),
                    sns_event(&self.aws.alerts_topic, std::slice::from_ref(&m)),
                ));
            }
            for ch in CHANNELS {
                for j in self.aws.jobs(ch).await {
                    if ch == GROUPED {
                        if let Ok(job) = serde_json::from_str::<DeliveryJob>(&j.body) {
                            self.grouped.lock().unwrap().push(job);
                        }
                    }
                    calls.push((
                        format!("deliver-{ch}"),
                        sns_event(&self.aws.deliveries_topic, std::slice::from_ref(&j)),
                    ));
                }
            }
            if calls.is_empty() {
                return;
            }
            self.fan_out(calls, true).await;
        }
    }

    /// Scheduler: fires every schedule not fired yet that is due by `until` (its `at(...)` in UTC),
    /// but the groups' repeat reminders (they recur as long as their alerts fire), at its target, in
    /// due order, and pumps what that published; again, at most `rounds` times, until none is left.
    /// Only the group flushes when `flushes_only`.
    async fn fire_schedules(
        &mut self,
        flushes_only: bool,
        until: DateTime<Utc>,
        rounds: usize,
    ) -> usize {
        let mut fired = 0;
        for _ in 0..rounds {
            let mut calls = Vec::new();
            for (when, name, arn, input) in self.aws.pending_schedules().await {
                let noise = &input["noise"];
                if noise["repeat"] == true || (flushes_only && noise["kind"] != "group_flush") {
                    continue;
                }
                let due = when
                    .strip_prefix("at(")
                    .and_then(|w| w.strip_suffix(')'))
                    .and_then(|w| {
                        chrono::NaiveDateTime::parse_from_str(w, "%Y-%m-%dT%H:%M:%S").ok()
                    })
                    .map(|d| d.and_utc());
                if due.is_some_and(|d| d > until) {
                    continue;
                }
                self.aws.fired(&name, &input);
                let function = arn.rsplit(':').next().unwrap_or_default().to_string();
                calls.push((function, input));
            }
            if calls.is_empty() {
                break;
            }
            fired += calls.len();
            self.fan_out(calls, false).await;
            self.pump().await;
        }
        fired
    }

    /// A person calling the API: retries (up to 6 times) while the answer is a 5xx or nothing.
    async fn api(&self, text: String) -> Option<Value> {
        let ev: Value = serde_json::from_str(&text).unwrap();
        for _ in 0..6 {
            match self.platform.invoke_sync("api", &ev).await {
                Outcome::Ok(v) if v["statusCode"].as_u64().is_some_and(|s| s < 500) => {
                    return Some(v);
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        None
    }
}

/// The one-click token in a message: the path segment after `/a/`.
fn token_in(text: &str) -> Option<String> {
    let at = text.find("/a/")?;
    let rest = &text[at + 3..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    (end > 0).then(|| rest[..end].to_string())
}

fn write_jsonl(path: &std::path::Path, lines: &[Value]) {
    let mut f = std::fs::File::create(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: run by `make chaos`"]
async fn pages_survive_faults_kills_and_retries_of_the_real_functions() {
    let Some(endpoint) = tocsin_aws::emulator::endpoint("chaos") else {
        return;
    };
    let bins = support::bin_dir();
    for b in ["ingest", "router", "escalate", "deliver", "api"] {
        assert!(
            bins.join(b).is_file(),
            "chaos: {} is missing (cargo build --workspace --bins --tests)",
            bins.join(b).display()
        );
    }
    let started = Instant::now();
    let seed: u64 = env_or("CHAOS_SEED", 17);
    let transitions: usize = env_or("CHAOS_ALERTS", 1000);
    let fault_rate: f64 = env_or("CHAOS_FAULTS", 0.31);
    let kill_rate: f64 = env_or("CHAOS_KILLS", 0.15);
    let width: usize = env_or("CHAOS_CONCURRENCY", 8);
    let retry_scale: f64 = env_or("CHAOS_RETRY_SCALE", 1.0);
    let limit = Duration::from_secs(env_or("CHAOS_TIME_LIMIT", 1800));
    let out_dir = support::root().join("target/chaos");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).unwrap();

    let mut rng = Rng::new(seed);
    let t0 = Utc::now() + Span::seconds(5);
    let scenario = Scenario::draw(&mut rng, transitions, t0);
    let link_key = format!("chaos-link-signing-key-{seed:016x}");
    let hook_key = format!("chaos-hook-signing-key-{seed:016x}");

    // What should arrive: the fault-free run on the embedded default.
    let config = load_config();
    let jobs = expected(config, &scenario, link_key.as_bytes()).await;
    let expected_keys: Vec<Key> = jobs.iter().map(Key::of).collect();
    let by_id: BTreeMap<String, Key> = jobs
        .iter()
        .map(|j| (j.delivery_id.clone(), Key::of(j)))
        .collect();
    let by_seen: BTreeMap<(String, Seen), Key> = jobs
        .iter()
        .filter_map(|j| Some(((j.target.channel.clone(), Seen::of(j)?), Key::of(j))))
        .collect();
    let names_by_alert: BTreeMap<String, String> = jobs
        .iter()
        .map(|j| (j.alert_id.clone(), j.alert.alarm_name.clone()))
        .collect();
    write_jsonl(
        &out_dir.join("expected.jsonl"),
        &jobs
            .iter()
            .map(|j| Key::of(j).json(Some(&j.delivery_id), &[]))
            .collect::<Vec<_>>(),
    );
    eprintln!(
        "chaos: seed {seed}: {} alarms, {} transitions ({} arrivals); expected {} deliveries (embedded run, {:?})",
        scenario.alarms.len(),
        scenario.transitions(),
        scenario.arrivals(),
        jobs.len(),
        started.elapsed()
    );

    // The stack: moto behind the AWS fault proxy, the channel servers behind theirs.
    let aws = Aws::create(&endpoint, &CHANNELS).await;
    let aws_proxy = FaultProxy::start(Kind::Aws, &endpoint, fault_rate, seed ^ 1).await;
    let ops = Server::start(vec![Reply::status(200)]).await.unwrap();
    let audit = Server::start(vec![Reply::status(200)]).await.unwrap();
    let ops_proxy = FaultProxy::start(Kind::Channel, &ops.url(""), fault_rate, seed ^ 2).await;
    // End User Messaging (SMS): moto has none, so a local server that answers `SendTextMessage` as
    // the service does and keeps every message it took (what reached the phones), behind a fault
    // proxy of its own drawing the same AWS faults.
    let eum = Server::start(vec![
        Reply::status(200)
            .header("content-type", "application/x-amz-json-1.0")
            .body(r#"{"MessageId":"chaos-eum-message"}"#),
    ])
    .await
    .unwrap();
    let eum_proxy = FaultProxy::start(Kind::Aws, &eum.url(""), fault_rate, seed ^ 6).await;
    let audit_proxy = FaultProxy::start(Kind::Channel, &audit.url(""), fault_rate, seed ^ 3).await;
    aws.drain(&aws.alerts_queue).await;

    let platform = Platform::start(seed, kill_rate, retry_scale, &out_dir.join("logs")).await;
    let s = |k: &str, v: &str| (k.to_string(), v.to_string());
    let base = vec![
        s("AWS_ENDPOINT_URL", &aws_proxy.url()),
        s("TOCSIN_CONFIG", &config_path().display().to_string()),
        s("TABLE_NAME", &aws.table),
        s("DELIVERIES_TOPIC_ARN", &aws.deliveries_topic),
    ];
    let sched = [
        s("SCHEDULE_GROUP", &aws.group),
        s("ESCALATE_FUNCTION_ARN", &function_arn("escalate")),
        s(
            "SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/tocsin-scheduler",
        ),
    ];
    let mut ingest_env = base.clone();
    ingest_env.push(s("ALERTS_TOPIC_ARN", &aws.alerts_topic));
    ingest_env.extend(sched.iter().cloned());
    platform.function("ingest", &bins.join("ingest"), ingest_env, width);
    for f in ["router", "escalate"] {
        let mut env = base.clone();
        env.extend(sched.iter().cloned());
        platform.function(f, &bins.join(f), env, width);
    }
    let mut api_env = base.clone();
    api_env.extend(sched.iter().cloned());
    // The secrets in Secrets Manager, as the template makes them; the environment names their ARNs.
    let link_keys = aws
        .secret(
            "chaos-links",
            &serde_json::json!({"current": "k1", "k1": link_key}).to_string(),
        )
        .await;
    let hook_secret = aws
        .secret(
            "chaos-hook",
            &serde_json::json!({"hook-signing-key": hook_key}).to_string(),
        )
        .await;
    let integration_keys = aws
        .secret(
            "chaos-integrations",
            &serde_json::json!({"current": "k1", "k1": format!("{link_key}-integration")})
                .to_string(),
        )
        .await;
    api_env.push(s("LINK_KEYS_SECRET_ARN", &link_keys));
    api_env.push(s("INTEGRATION_KEYS_SECRET_ARN", &integration_keys));
    platform.function("api", &bins.join("api"), api_env, width.div_ceil(2));
    for ch in CHANNELS {
        let mut env = base.clone();
        env.push(s("CHANNEL_NAME", ch));
        env.push(s("API_BASE_URL", "https://api.chaos.example.com"));
        env.push(s("LINK_KEYS_SECRET_ARN", &link_keys));
        env.push(s("CHANNEL_SECRET_ARN", &hook_secret));
        match ch {
            "ops-hook" => env.push(s("OPS_HOOK_URL", &format!("{}/ops", ops_proxy.url()))),
            "audit-hook" => env.push(s("HOOK_URL", &format!("{}/audit", audit_proxy.url()))),
            // Through the stack's configuration set: every message SES takes comes back as its
            // send receipt (played below), so a send whose answer was lost is not sent again.
            "oncall-email" => env.push(s("EMAIL_CONFIGURATION_SET", EMAIL_CONFIGURATION_SET)),
            // The SMS throttle's flush timer targets the function itself (the chaos config turns the
            // throttle off, but the wiring asks for it all the same).
            "oncall-sms" => {
                env.push(s(
                    "AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2",
                    &eum_proxy.url(),
                ));
                env.push(s("SMS_CONFIGURATION_SET", SMS_CONFIGURATION_SET));
                env.extend(sched[..1].iter().cloned());
                env.extend(sched[2..].iter().cloned());
                env.push(s("FLUSH_FUNCTION_ARN", &function_arn("deliver-oncall-sms")));
            }
            _ => {}
        }
        platform.function(&format!("deliver-{ch}"), &bins.join("deliver"), env, width);
    }
    let receipt_counts: Arc<[std::sync::atomic::AtomicU64; 2]> = Arc::default();
    let receipts = [
        tokio::spawn(publish_send_events(
            aws_proxy.accepted_sends(),
            platform.clone(),
            seed ^ 5,
            receipt_counts.clone(),
        )),
        tokio::spawn(publish_send_events(
            eum_proxy.accepted_sends(),
            platform.clone(),
            seed ^ 7,
            receipt_counts.clone(),
        )),
    ];
    let mut stack = Stack {
        platform: platform.clone(),
        aws,
        rng: std::sync::Mutex::new(Rng::new(seed ^ 4)),
        deadline: started + limit,
        fallbacks: std::sync::Mutex::new(Vec::new()),
        grouped: std::sync::Mutex::new(Vec::new()),
    };
    let mut phases: Vec<String> = Vec::new();
    let mut phase = |name: &str, t: Instant| phases.push(format!("{name} {:.0?}", t.elapsed()));

    // 0. The silence, through the API.
    let t = Instant::now();
    let silenced = stack.api(silence_text(&scenario)).await;
    assert!(silenced.is_some(), "chaos: the silence was never made");
    phase("silence", t);

    // 1. Every ALARM transition, through its paths (the alarm's SNS topic, the EventBridge rule, the
    // alarm action: each an asynchronous invocation of ingest), then SNS onwards.
    let t = Instant::now();
    let calls: Vec<(String, Value)> = arrivals(&scenario, false)
        .into_iter()
        .map(|(_, _, _, ev)| ("ingest".to_string(), ev))
        .collect();
    stack.fan_out(calls, true).await;
    stack.pump().await;
    phase("alarms", t);
    // Slack's group flushes come due 30 s in.
    let t = Instant::now();
    let flushed = stack
        .fire_schedules(true, Utc::now() + Span::minutes(2), 1)
        .await;
    phase(&format!("group flushes ({flushed})"), t);

    // 2. Acknowledgements: through the API, or through the one-click link of alice's SMS.
    let t = Instant::now();
    if !stack.late() {
        let sms: Vec<String> = texts_to(&eum, ALICE);
        let mut set = tokio::task::JoinSet::new();
        let mut requests = Vec::new();
        for a in &scenario.alarms {
            let id = alert_id(a);
            let text = match a.ack {
                None => continue,
                Some(Ack::Api) => api_text("ack.json", &[("ALERT_ID", &id)]),
                Some(Ack::OneClick) => {
                    let token = sms
                        .iter()
                        .filter(|m| m.split_whitespace().any(|w| w == a.name))
                        .find_map(|m| token_in(m));
                    match token {
                        Some(t) => api_text(
                            "one-click-perform.json",
                            &[("TOKEN", &t), ("ALERT_ID", &id), ("ACTION", "ack")],
                        ),
                        None => {
                            stack.fallbacks.lock().unwrap().push(a.name.clone());
                            api_text("ack.json", &[("ALERT_ID", &id)])
                        }
                    }
                }
            };
            requests.push((a.name.clone(), text));
        }
        for (name, text) in requests {
            let platform = stack.platform.clone();
            set.spawn(async move {
                let ev: Value = serde_json::from_str(&text).unwrap();
                for _ in 0..6 {
                    if let Outcome::Ok(v) = platform.invoke_sync("api", &ev).await {
                        if v["statusCode"].as_u64().is_some_and(|s| s < 500) {
                            // The answer's own words, for a refused ack (409: illegal, or changed
                            // meanwhile; 404: never opened).
                            let status = v["statusCode"].as_u64().unwrap_or(0);
                            let body = v["body"].as_str().unwrap_or_default();
                            let why: String = body.chars().take(200).collect();
                            return (name, Some(status), why);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                (name, None, String::new())
            });
        }
        while let Some(r) = set.join_next().await {
            let (name, status, why) = r.unwrap();
            if status.is_none_or(|s| s >= 400) {
                eprintln!("chaos: ack of {name} answered {status:?}: {why}");
            }
        }
        stack.pump().await;
    }
    phase("acks", t);

    // 3. Escalations: every schedule read back from moto, fired until none is left.
    let t = Instant::now();
    let fired = if stack.late() {
        0
    } else {
        stack
            .fire_schedules(false, Utc::now() + Span::minutes(50), 10)
            .await
    };
    phase(&format!("escalations ({fired} schedules)"), t);

    // 4. The OK transitions, then whatever they scheduled.
    let t = Instant::now();
    if !stack.late() {
        let calls: Vec<(String, Value)> = arrivals(&scenario, true)
            .into_iter()
            .map(|(_, _, _, ev)| ("ingest".to_string(), ev))
            .collect();
        stack.fan_out(calls, true).await;
        stack.pump().await;
        stack
            .fire_schedules(false, Utc::now() + Span::minutes(10), 10)
            .await;
    }
    phase("resolutions", t);
    for r in &receipts {
        r.abort();
    }

    // What arrived.
    let mut received: Vec<(Key, String)> = Vec::new();
    let mut received_lines = Vec::new();
    for (channel, server) in [("ops-hook", &ops), ("audit-hook", &audit)] {
        for r in server.requests() {
            let id = r.header("webhook-id").unwrap_or_default().to_string();
            let body = r.json();
            // A group's delivery id carries the flush's time, so only a single alert's can match by id;
            // the rest are keyed by what the body says.
            let kind = match body["type"].as_str().unwrap_or("?") {
                "alert.triggered" => "trigger",
                "alert.escalated" => "escalate",
                "alert.resolved" => "resolve",
                "alert.acknowledged" => "acknowledge",
                other => other,
            };
            let key = by_id.get(&id).cloned().unwrap_or_else(|| Key {
                alert: body["alert_id"].as_str().unwrap_or("?").to_string(),
                channel: channel.to_string(),
                target: channel.to_string(),
                kind: kind.to_string(),
                level: body["level"]
                    .as_u64()
                    .map(|l| l as u32)
                    .filter(|_| kind == "escalate"),
            });
            received_lines.push(key.json(Some(&id), &[]));
            received.push((key, id));
        }
    }
    let data = tocsin_aws::emulator::moto_data(&endpoint).await.unwrap();
    let names: Vec<&str> = scenario.alarms.iter().map(|a| a.name.as_str()).collect();
    let unmatched = |channel: &str, seen: &Seen| Key {
        alert: format!("?{}", seen.alarm),
        channel: channel.to_string(),
        target: seen.address.clone(),
        kind: seen.kind.clone(),
        level: seen.level,
    };
    for phone in [ALICE, DANA] {
        for text in texts_to(&eum, phone) {
            let Some(seen) = Seen::sms(phone, &text, &names) else {
                continue;
            };
            let key = by_seen
                .get(&("oncall-sms".to_string(), seen.clone()))
                .cloned()
                .unwrap_or_else(|| unmatched("oncall-sms", &seen));
            let id = by_id
                .iter()
                .find(|(_, k)| **k == key)
                .map(|(i, _)| i.clone())
                .unwrap_or_default();
            received_lines.push(key.json(Some(&id), &[("matched_by", "content".into())]));
            received.push((key, id));
        }
    }
    for m in data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let subject = m["subject"].as_str().unwrap_or_default();
        for to in m["destinations"]["ToAddresses"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let to = to.as_str().unwrap_or_default();
            let Some(seen) = Seen::email(to, subject) else {
                continue;
            };
            let key = by_seen
                .get(&("oncall-email".to_string(), seen.clone()))
                .cloned()
                .unwrap_or_else(|| unmatched("oncall-email", &seen));
            let id = by_id
                .iter()
                .find(|(_, k)| **k == key)
                .map(|(i, _)| i.clone())
                .unwrap_or_default();
            received_lines.push(key.json(Some(&id), &[("matched_by", "content".into())]));
            received.push((key, id));
        }
    }
    write_jsonl(&out_dir.join("received.jsonl"), &received_lines);

    // Dead letters, and which owed deliveries they hold.
    let dead = platform.dead_letters();
    write_jsonl(
        &out_dir.join("dead_letters.jsonl"),
        &dead
            .iter()
            .map(|d| json!({"function": d.function, "reason": d.reason, "event": d.payload}))
            .collect::<Vec<_>>(),
    );
    let dead_text: Vec<(String, &str)> = dead
        .iter()
        .map(|d| (d.payload.to_string(), d.reason.as_str()))
        .collect();
    let holds = |k: &Key| {
        let name = names_by_alert.get(&k.alert);
        dead_text
            .iter()
            .find(|(text, _)| {
                text.contains(&k.alert) || name.is_some_and(|n| text.contains(n.as_str()))
            })
            .map(|(_, reason)| reason.to_string())
    };
    let grouped = |k: &Key| k.channel == GROUPED;
    let (received_grouped, received_single): (Vec<_>, Vec<_>) =
        received.iter().cloned().partition(|(k, _)| grouped(k));
    let single_keys: Vec<Key> = expected_keys
        .iter()
        .filter(|k| !grouped(k))
        .cloned()
        .collect();
    let t_single = tally(&single_keys, &received_single, holds);
    let published = stack.grouped.lock().unwrap().clone();
    let mut t_grouped = tally_published(&published, &received_grouped, holds);
    // What the groups still owe once everything has fired: a change no flush told (a flush timer
    // lost), or an outbox never finished.
    let store = tocsin_aws::DynamoStore::new(stack.aws.ddb.clone(), stack.aws.table.clone());
    let services: BTreeSet<String> = jobs
        .iter()
        .filter(|j| grouped(&Key::of(j)))
        .filter_map(|j| j.alert.labels.get("service").cloned())
        .collect();
    for service in &services {
        let key = format!("group/everything/{{service=\"{service}\"}}");
        let owes = match tocsin_core::ports::AlertStore::noise_state(&store, &key).await {
            Ok(Some(state)) => match &state.body {
                tocsin_core::noise::NoiseBody::Group(g) if g.told_upto < g.seq => {
                    Some(format!("changes {}..{} never told", g.told_upto + 1, g.seq))
                }
                _ if !state.pending.is_empty() => Some("an unfinished outbox".to_string()),
                _ => None,
            },
            Ok(None) => Some("no group at all".to_string()),
            Err(e) => Some(format!("unreadable: {e}")),
        };
        if let Some(why) = owes {
            eprintln!("chaos: group {key} owes {why}");
            t_grouped.lost.push(Key {
                alert: key.clone(),
                channel: GROUPED.to_string(),
                target: GROUPED.to_string(),
                kind: format!("group ({why})"),
                level: None,
            });
        }
        let told = received_grouped.iter().any(|(_, id)| {
            published
                .iter()
                .any(|j| j.delivery_id == *id && j.alert.labels.get("service") == Some(service))
        });
        if !told {
            t_grouped.lost.push(Key {
                alert: key,
                channel: GROUPED.to_string(),
                target: GROUPED.to_string(),
                kind: "group (never told at all)".to_string(),
                level: None,
            });
        }
    }
    let doubled: usize = t_single
        .doubled
        .iter()
        .map(|(k, ids)| ids.len() - single_keys.iter().filter(|e| *e == k).count())
        .chain(t_grouped.doubled.iter().map(|(_, ids)| ids.len() - 1))
        .sum();
    let (grouped_lost, grouped_doubled, grouped_dead) = (
        t_grouped.lost.len(),
        t_grouped.doubled.len(),
        t_grouped.dead_lettered.len(),
    );
    let t = Tally {
        lost: [t_single.lost, t_grouped.lost].concat(),
        doubled: [t_single.doubled, t_grouped.doubled].concat(),
        dead_lettered: [t_single.dead_lettered, t_grouped.dead_lettered].concat(),
        unexpected: [t_single.unexpected, t_grouped.unexpected].concat(),
    };
    let interrupted: BTreeSet<String> = platform
        .interrupted()
        .iter()
        .filter(|(f, _)| f.starts_with("deliver-"))
        .map(|(_, p)| p.to_string())
        .collect();
    let mut report = Vec::new();
    for k in &t.lost {
        report.push(format!("lost: {}", k.json(None, &[])));
    }
    let lost_sends = [aws_proxy.lost_sends(), eum_proxy.lost_sends()].concat();
    for (k, ids) in &t.doubled {
        let by_kill = ids
            .iter()
            .any(|id| !id.is_empty() && interrupted.iter().any(|p| p.contains(id.as_str())));
        let name = names_by_alert.get(&k.alert).cloned().unwrap_or_default();
        let by_lost_send = !name.is_empty() && lost_sends.iter().any(|b| b.contains(&name));
        let why = if by_kill {
            "a deliver attempt carrying it was killed or timed out"
        } else if by_lost_send {
            "moto took the send, its answer was lost, the retry sent again (no idempotency key)"
        } else {
            "no kill or lost answer explains it"
        };
        report.push(format!(
            "doubled ({why}): {} delivery ids {ids:?}",
            k.json(None, &[])
        ));
    }
    for (k, reason) in &t.dead_lettered {
        report.push(format!("dead-lettered ({reason}): {}", k.json(None, &[])));
    }
    for k in &t.unexpected {
        report.push(format!("unexpected: {}", k.json(None, &[])));
    }
    for f in stack.fallbacks.lock().unwrap().iter() {
        report.push(format!(
            "one-click ack of {f} fell back to the API: alice's SMS never came"
        ));
    }
    std::fs::write(out_dir.join("report.txt"), report.join("\n") + "\n").unwrap();

    let mut counts = Counts::default();
    for p in [&aws_proxy, &eum_proxy, &ops_proxy, &audit_proxy] {
        counts.add(&p.counts());
    }
    let stats = platform.stats();
    let alerts = scenario.alarms.len();
    eprintln!("chaos: phases: {}", phases.join(", "));
    eprintln!("chaos: faults by kind: {:?}", counts.faults);
    eprintln!(
        "chaos: invocations {}, kills {}, timeouts {}, function errors {}, dead letters {}, unexpected {}",
        stats.invocations,
        stats.kills,
        stats.timeouts,
        stats.errors,
        dead.len(),
        t.unexpected.len()
    );
    eprintln!(
        "chaos: send receipts (SES and End User Messaging events, played): {} published, {} recorded",
        receipt_counts[0].load(std::sync::atomic::Ordering::Relaxed),
        receipt_counts[1].load(std::sync::atomic::Ordering::Relaxed),
    );
    eprintln!(
        "chaos: expected {}, received {}",
        expected_keys.len(),
        received.len()
    );
    eprintln!(
        "chaos: group notifications ({GROUPED}, {} published): lost {grouped_lost}, doubled \
         {grouped_doubled}, dead-lettered {grouped_dead}; pages and per-alert notifications (SMS, \
         email, audit-hook): lost {}, doubled {}, dead-lettered {}",
        published.len(),
        t.lost.len() - grouped_lost,
        t.doubled.len() - grouped_doubled,
        t.dead_lettered.len() - grouped_dead,
    );
    for line in report.iter().take(40) {
        eprintln!("chaos: {line}");
    }
    eprintln!(
        "chaos: wall time {:.0?}; details in {}",
        started.elapsed(),
        out_dir.join("report.txt").display()
    );
    let pct = if counts.calls == 0 {
        0.0
    } else {
        100.0 * counts.total_faults() as f64 / counts.calls as f64
    };
    let last = format!(
        "chaos: {alerts} alerts, {} calls, {} faults ({pct:.1} %), {} kills, lost {}, doubled {doubled}, dead-lettered {}",
        counts.calls,
        counts.total_faults(),
        stats.kills,
        t.lost.len(),
        t.dead_lettered.len()
    );
    std::fs::write(out_dir.join("last_line.txt"), format!("{last}\n")).unwrap();
    println!("{last}");
}
