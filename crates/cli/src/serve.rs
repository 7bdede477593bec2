//! `tocsin serve`: the api function's handler on 127.0.0.1, over the embedded store, on the real clock,
//! so the whole product can be tried with no AWS account. Events POSTed to `/events` go through the
//! same parsers as the ingest function and into the router; escalation timers fire on time; what would
//! have been sent is printed on stdout, one-click links included (`link: <action> <url>`).
//!
//! There is no API Gateway authorizer locally: the programmatic routes take every request as the local
//! actor (`--actor`, default `local`). That is safe only because the server listens on 127.0.0.1 alone.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tocsin_api::{Api, ApiSettings, Identity, Request, Response, StatusCache};
use tocsin_core::config::Config;
use tocsin_core::ports::SystemClock;
use tocsin_core::record::{AuditEntry, DeliveryKind};
use tocsin_core::router::{Router, RouterSettings};
use tocsin_core::status::Audience;
use tocsin_core::text::one_line;
use tocsin_core::token::{self, Claims, KeyRing};
use tocsin_local::{LocalBus, MemoryStore, VirtualScheduler};

use crate::replay::human_line;
use crate::{EX_DATAERR, EX_SOFTWARE, EX_UNAVAILABLE, Failure};

/// The largest request body taken (an event, a note).
const MAX_BODY: usize = 1 << 20;
/// How often the timer loop looks for due escalations.
const TICK: Duration = Duration::from_millis(200);
/// How long a printed one-click link works.
const LINK_TTL: TimeDelta = TimeDelta::hours(24);

/// `tocsin serve` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The port on 127.0.0.1 (0: any free port; the first line printed names it).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Who the programmatic routes record as the actor (there is no authorizer locally).
    #[arg(long, default_value = "local")]
    actor: String,
    /// The status page's default audience: `customer` or `internal`.
    #[arg(long, default_value = "customer", value_parser = ["customer", "internal"])]
    audience: String,
}

type LocalApi = Api<MemoryStore, LocalBus, VirtualScheduler, SystemClock>;

struct State {
    api: LocalApi,
    base_url: String,
    port: u16,
    actor: String,
}

/// The link key: `TOCSIN_LINK_SIGNING_KEY` if set (a local tool's setting: on AWS the key is in
/// Secrets Manager), else 32 random bytes, new on every start (links printed by an earlier run stop
/// working, as they should). One key, id `local`.
fn link_keys() -> Result<KeyRing, Failure> {
    let key = match std::env::var("TOCSIN_LINK_SIGNING_KEY")
        .ok()
        .filter(|k| !k.is_empty())
    {
        Some(k) => k.into_bytes(),
        None => {
            let mut key = vec![0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
                .map_err(|e| {
                    Failure::new(
                        EX_SOFTWARE,
                        format!("reading /dev/urandom for a link key: {e}"),
                    )
                })?;
            key
        }
    };
    KeyRing::single("local", key).map_err(|_| {
        Failure::new(
            EX_DATAERR,
            "TOCSIN_LINK_SIGNING_KEY must be at least 32 bytes",
        )
    })
}

/// Runs the server until the process is stopped.
pub fn run(config: Arc<Config>, args: Args) -> Result<(), Failure> {
    let key = link_keys()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .map_err(|e| {
                Failure::new(
                    EX_UNAVAILABLE,
                    format!("cannot listen on 127.0.0.1:{}: {e}", args.port),
                )
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))?
            .port();
        let base_url = format!("http://127.0.0.1:{port}");
        let scheduler = VirtualScheduler::new();
        let mut api = Api::new(
                Router {
                    config,
                    store: MemoryStore::new(),
                    bus: LocalBus::new(),
                    scheduler: scheduler.clone(),
                    clock: SystemClock,
                    settings: RouterSettings::default(),
                },
                ApiSettings {
                    link_keys: key,
                    // Webhooks need no key here: the local actor is trusted (127.0.0.1 alone).
                    integration_keys: None,
                    default_audience: Audience::parse(&args.audience)
                        .unwrap_or(Audience::Customer),
                    title: "tocsin status (local)".into(),
                    metrics_namespace: "tocsin".into(),
                    max_list: 1000,
                },
            );
        // Locally a page is rebuilt on every request: nothing to protect, and a stale page confuses.
        api.status_cache = StatusCache::with_ttl(chrono::Duration::zero());
        let state = Arc::new(State {
            api,
            base_url: base_url.clone(),
            port,
            actor: args.actor,
        });
        println!("listening on {base_url} (status page {base_url}/status; POST events to {base_url}/events)");
        tokio::spawn(timers(state.clone(), scheduler));
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("warning: accept failed: {e}");
                    continue;
                }
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| respond(state.clone(), req));
                // A client that goes away mid-request is its own business.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// Fires due escalation timers on the real clock.
async fn timers(state: Arc<State>, scheduler: VirtualScheduler) {
    loop {
        tokio::time::sleep(TICK).await;
        while let Some((_, _name, tick)) = scheduler.pop_due(Utc::now()) {
            match state.api.router.on_timer(&tick).await {
                Ok(entries) => report(&state, &entries),
                Err(e) => eprintln!(
                    "warning: escalation of {}: {}",
                    tick.subject(),
                    one_line(&e.to_string())
                ),
            }
        }
    }
}

/// Prints the decisions and, for every delivery job they made, what would be sent and its links.
fn report(state: &State, entries: &[AuditEntry]) {
    let key = &state.api.settings.link_keys;
    let jobs = state.api.router.bus.take_deliveries();
    let mut out = std::io::stdout().lock();
    for e in entries {
        let _ = writeln!(out, "{}", human_line(e));
    }
    let expires_at = Utc::now() + LINK_TTL;
    for job in jobs {
        let _ = writeln!(
            out,
            "deliver: {} {} → {} alert {}",
            match job.kind {
                DeliveryKind::Trigger => "trigger",
                DeliveryKind::Escalation => "escalation",
                DeliveryKind::Resolve => "resolve",
                DeliveryKind::Acknowledge => "ack",
            },
            one_line(&job.target.channel),
            one_line(&job.target.target),
            job.alert_id
        );
        if matches!(job.kind, DeliveryKind::Resolve | DeliveryKind::Acknowledge) {
            continue;
        }
        for action in ["ack", "resolve"] {
            let t = token::sign(
                key,
                &Claims {
                    alert_id: job.alert_id.clone(),
                    action: action.into(),
                    recipient: job.target.target.clone(),
                    expires_at,
                },
            );
            let _ = writeln!(out, "link: {action} {}/a/{t}", state.base_url);
        }
    }
    let _ = out.flush();
}

fn to_hyper(r: Response) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder().status(r.status);
    for (k, v) in &r.headers {
        b = b.header(*k, v);
    }
    b.body(Full::new(Bytes::from(r.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: json!({"error": {"status": status, "code": code, "message": message}})
            .to_string()
            .into_bytes(),
        emf: Vec::new(),
        recorded: Vec::new(),
    }
}

async fn respond(
    state: Arc<State>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes().to_vec(),
        Err(_) => {
            return Ok(to_hyper(error(
                400,
                "bad_request",
                "the body is larger than 1 MiB or was cut off",
            )));
        }
    };
    // A one-click route's token is its own proof, and its confirm page (no-referrer) makes the
    // browser send `Origin: null`: only the Host is checked there.
    let token_route = tocsin_api::routes::find(parts.method.as_str(), parts.uri.path())
        .is_ok_and(|(spec, _)| spec.auth == tocsin_api::routes::Auth::Token);
    if let Err(why) = same_origin(&parts.headers, state.port, !token_route) {
        return Ok(to_hyper(error(403, "forbidden", why)));
    }
    let request = Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect(),
        body,
        identity: Some(Identity::Local(state.actor.clone())),
    };
    let r = state.api.handle(&request).await;
    // A command's decisions, and what they would have sent.
    if !r.recorded.is_empty() {
        report(&state, &r.recorded);
    }
    Ok(to_hyper(r))
}

/// Refuses a request that a web page on another origin made (DNS rebinding, a cross-site form): the
/// `Host` must be this server's own (`127.0.0.1:PORT` or `localhost:PORT`), and, where
/// `check_origin`, an `Origin` a browser sends the same. Everything but the one-click routes acts as
/// the local actor, so this is their only guard.
fn same_origin(
    headers: &hyper::HeaderMap,
    port: u16,
    check_origin: bool,
) -> Result<(), &'static str> {
    let own =
        |host: &str| host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}");
    let host = headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !own(host) {
        return Err("the Host header is not this server's (127.0.0.1 or localhost and its port)");
    }
    if let Some(origin) = headers.get(hyper::header::ORIGIN).filter(|_| check_origin) {
        let origin = origin.to_str().unwrap_or_default();
        if !origin.strip_prefix("http://").is_some_and(own) {
            return Err("requests from another origin are refused");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn only_this_servers_host_and_origin_are_accepted() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080")]), 8080, true).is_ok());
        assert!(
            same_origin(
                &headers(&[
                    ("host", "localhost:8080"),
                    ("origin", "http://localhost:8080")
                ]),
                8080,
                true
            )
            .is_ok()
        );
        for bad in [
            headers(&[]),
            headers(&[("host", "evil.example:8080")]),
            headers(&[("host", "127.0.0.1:9090")]),
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
            ]),
            headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]),
        ] {
            assert!(same_origin(&bad, 8080, true).is_err(), "{bad:?}");
        }
        // A one-click route: the token is the proof; the Host is still checked.
        let null_origin = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(same_origin(&null_origin, 8080, false).is_ok());
        assert!(same_origin(&headers(&[("host", "evil.example:8080")]), 8080, false).is_err());
    }
}
