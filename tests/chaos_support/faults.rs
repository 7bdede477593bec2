//! The chaos run's fault proxy: an HTTP proxy on 127.0.0.1 in front of moto (every AWS call of every
//! function) or of one channel's server, failing a share of the calls it sees at random (a seeded draw
//! per call) and forwarding the rest.
//!
//! AWS faults, shaped as the service would send them (the service is read off the SigV4 credential
//! scope), each a kind the SDK retries: throttling (DynamoDB's JSON `ThrottlingException`, SNS's XML
//! `Throttling`, Scheduler's and SES's 429 `ThrottlingException`/`TooManyRequestsException`), 500 and
//! 503, a 400 `RequestTimeout`, a timeout (the request is read, no answer comes, the connection drops
//! after 4 s), a reset (dropped at once), a lost answer (forwarded and applied, then dropped: the
//! write happened but the caller cannot know), and a slow answer (forwarded after up to 1.5 s).
//! Channel faults: 500, 429 with `Retry-After: 1`, a hang (no answer until the sender's 5 s timeout
//! has passed), a reset, and a slow answer; a channel fault never forwards, so the channel did not
//! take the message.
//!
//! moto evaluates a condition and writes without a lock, so the proxy forwards one DynamoDB request to
//! it at a time: each of moto's writes is then atomic, as DynamoDB's are.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use super::rng::Rng;

/// What the proxy stands in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// moto: every AWS call.
    Aws,
    /// A channel's HTTP endpoint.
    Channel,
}

/// Calls seen and faults injected, by fault name.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Calls seen.
    pub calls: u64,
    /// Faults by name.
    pub faults: BTreeMap<String, u64>,
}

impl Counts {
    /// Every fault.
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Adds another's counts.
    pub fn add(&mut self, other: &Counts) {
        self.calls += other.calls;
        for (k, v) in &other.faults {
            *self.faults.entry(k.clone()).or_default() += v;
        }
    }
}

struct State {
    rng: Mutex<Rng>,
    rate: f64,
    kind: Kind,
    upstream: String,
    client: reqwest::Client,
    counts: Mutex<Counts>,
    lost_sends: Mutex<Vec<String>>,
    /// SES `SendEmail` and End User Messaging `SendTextMessage` requests the service took, with its
    /// answers, not yet taken by [`AcceptedSends::take`].
    accepted_sends: Mutex<Vec<(String, String)>>,
    lane: tokio::sync::Mutex<()>,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    /// Its port.
    pub port: u16,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The SES `SendEmail` and End User Messaging `SendTextMessage` requests the service behind the proxy
/// took, as the proxy saw them.
#[derive(Clone)]
pub struct AcceptedSends(Arc<State>);

impl AcceptedSends {
    /// Every send the service took since the last call (whether its answer reached the caller or was
    /// lost): the request's JSON and the service's answer. What the service's event publishing sees.
    pub fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *lock(&self.0.accepted_sends))
    }
}

/// Why a connection is dropped instead of answered.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) failing `rate` of the calls.
    pub async fn start(kind: Kind, upstream: &str, rate: f64, seed: u64) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            rng: Mutex::new(Rng::new(seed)),
            rate,
            kind,
            upstream: upstream.trim_end_matches('/').to_string(),
            client: crate::support::http()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            counts: Mutex::new(Counts::default()),
            lost_sends: Mutex::new(Vec::new()),
            accepted_sends: Mutex::new(Vec::new()),
            lane: tokio::sync::Mutex::new(()),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { handle(&state, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FaultProxy { port, state, task }
    }

    /// The URL to give a client.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bodies of SMS and email sends whose answer was lost after moto took them: a retry of
    /// one sends the message again, and no idempotency key stops it.
    pub fn lost_sends(&self) -> Vec<String> {
        lock(&self.state.lost_sends).clone()
    }

    /// A handle on the sends the service took, for its event publishing (a task of its own).
    pub fn accepted_sends(&self) -> AcceptedSends {
        AcceptedSends(self.state.clone())
    }

    /// Calls and faults so far.
    pub fn counts(&self) -> Counts {
        lock(&self.state.counts).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Throttle,
    Status500,
    Status503,
    RequestTimeout400,
    Timeout,
    Reset,
    LostAnswer,
    Slow(u64),
    TooMany429,
    Hang,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::Status500 => "500",
            Fault::Status503 => "503",
            Fault::RequestTimeout400 => "400-request-timeout",
            Fault::Timeout => "timeout",
            Fault::Reset => "reset",
            Fault::LostAnswer => "lost-answer",
            Fault::Slow(_) => "slow",
            Fault::TooMany429 => "429-retry-after",
            Fault::Hang => "hang",
        }
    }
}

fn draw(state: &State) -> Option<Fault> {
    let mut rng = lock(&state.rng);
    if !rng.chance(state.rate) {
        return None;
    }
    let slow = 300 + rng.below(1200);
    Some(match state.kind {
        Kind::Aws => match rng.below(8) {
            0 | 1 => Fault::Throttle,
            2 => Fault::Status500,
            3 => Fault::Status503,
            4 => Fault::RequestTimeout400,
            5 => [Fault::Timeout, Fault::Reset][rng.below(2) as usize],
            6 => Fault::LostAnswer,
            _ => Fault::Slow(slow),
        },
        Kind::Channel => match rng.below(5) {
            0 => Fault::Status500,
            1 => Fault::TooMany429,
            2 => Fault::Hang,
            3 => Fault::Reset,
            _ => Fault::Slow(slow),
        },
    })
}

/// The AWS service of a SigV4-signed request (`.../us-east-1/dynamodb/aws4_request`).
fn service(headers: &hyper::HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string()
}

type Resp = hyper::Response<Full<Bytes>>;

fn answer(status: u16, headers: &[(&str, &str)], body: String) -> Resp {
    let mut b = hyper::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body))).unwrap()
}

/// The error `service` sends for `code` at `status`, in its protocol's shape.
fn aws_error(service: &str, status: u16, code: &str) -> Resp {
    let msg = "injected by the chaos run's fault proxy";
    match service {
        "sns" => answer(
            status,
            &[("content-type", "text/xml")],
            format!(
                "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type>\
                 <Code>{code}</Code><Message>{msg}</Message></Error><RequestId>chaos-0000</RequestId></ErrorResponse>"
            ),
        ),
        "dynamodb" => answer(
            status,
            &[("content-type", "application/x-amz-json-1.0")],
            serde_json::json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": msg})
                .to_string(),
        ),
        _ => answer(
            status,
            &[("content-type", "application/json"), ("x-amzn-errortype", code)],
            serde_json::json!({"message": msg}).to_string(),
        ),
    }
}

fn throttle(service: &str) -> Resp {
    match service {
        "sns" => aws_error(service, 400, "Throttling"),
        "dynamodb" => aws_error(service, 400, "ThrottlingException"),
        "ses" => aws_error(service, 429, "TooManyRequestsException"),
        _ => aws_error(service, 429, "ThrottlingException"),
    }
}

async fn handle(
    state: &State,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<Resp, Dropped> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let svc = service(&parts.headers);
    let fault = draw(state);
    {
        let mut counts = lock(&state.counts);
        counts.calls += 1;
        if let Some(f) = fault {
            *counts.faults.entry(f.name().to_string()).or_default() += 1;
        }
    }
    match fault {
        Some(Fault::Throttle) => return Ok(throttle(&svc)),
        Some(Fault::Status500) if state.kind == Kind::Aws => {
            return Ok(aws_error(&svc, 500, "InternalFailure"));
        }
        Some(Fault::Status500) => return Ok(answer(500, &[], "injected".into())),
        Some(Fault::Status503) => return Ok(aws_error(&svc, 503, "ServiceUnavailable")),
        Some(Fault::RequestTimeout400) => return Ok(aws_error(&svc, 400, "RequestTimeout")),
        Some(Fault::TooMany429) => {
            return Ok(answer(429, &[("retry-after", "1")], "slow down".into()));
        }
        Some(Fault::Timeout) => {
            tokio::time::sleep(Duration::from_secs(4)).await;
            return Err(Dropped);
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(7)).await;
            return Err(Dropped);
        }
        Some(Fault::Reset) => return Err(Dropped),
        Some(Fault::Slow(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(Fault::LostAnswer) | None => {}
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let sent = body.clone();
    let mut out = state
        .client
        .request(parts.method.clone(), format!("{}{path}", state.upstream))
        .body(body);
    for (k, v) in &parts.headers {
        if k != hyper::header::HOST && k != hyper::header::CONTENT_LENGTH {
            out = out.header(k, v);
        }
    }
    let turn = (svc == "dynamodb").then(|| state.lane.lock());
    let turn = match turn {
        Some(t) => Some(t.await),
        None => None,
    };
    let res = out.send().await;
    let (status, headers, bytes) = match res {
        Ok(res) => {
            let status = res.status().as_u16();
            let headers: Vec<(String, String)> = res
                .headers()
                .iter()
                .filter(|(k, _)| {
                    !["content-length", "transfer-encoding", "connection"].contains(&k.as_str())
                })
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                .collect();
            let bytes = res.bytes().await.unwrap_or_default();
            (status, headers, bytes)
        }
        Err(_) => return Err(Dropped),
    };
    drop(turn);
    let text_message = svc == "sms-voice"
        && parts
            .headers
            .get("x-amz-target")
            .is_some_and(|t| t.as_bytes().ends_with(b".SendTextMessage"));
    if ((svc == "ses" && path.contains("/outbound-emails")) || text_message)
        && (200..300).contains(&status)
    {
        lock(&state.accepted_sends).push((
            String::from_utf8_lossy(&sent).into_owned(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    if matches!(fault, Some(Fault::LostAnswer)) {
        let text = String::from_utf8_lossy(&sent).into_owned();
        if svc == "ses" || text_message || (svc == "sns" && text.contains("PhoneNumber=")) {
            lock(&state.lost_sends).push(text);
        }
        return Err(Dropped);
    }
    let mut b = hyper::Response::builder().status(status);
    for (k, v) in &headers {
        b = b.header(k.as_str(), v.as_str());
    }
    Ok(b.body(Full::new(bytes)).unwrap())
}
