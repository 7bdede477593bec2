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
use tocsin_api::{Api, ApiSettings, Identity, Request, Response};
use tocsin_core::config::Config;
use tocsin_core::ports::SystemClock;
use tocsin_core::record::{AuditEntry, DeliveryKind};
use tocsin_core::router::{Router, RouterSettings};
use tocsin_core::status::Audience;
use tocsin_core::text::one_line;
use tocsin_core::token::{self, Claims};
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
    actor: String,
}

/// The link key: `TOCSIN_LINK_SIGNING_KEY` if set, else 32 random bytes, new on every start (links
/// printed by an earlier run stop working, as they should).
fn signing_key() -> Result<Vec<u8>, Failure> {
    if let Some(k) = std::env::var("TOCSIN_LINK_SIGNING_KEY")
        .ok()
        .filter(|k| !k.is_empty())
    {
        if k.len() < tocsin_api::MIN_KEY_BYTES {
            return Err(Failure::new(
                EX_DATAERR,
                "TOCSIN_LINK_SIGNING_KEY must be at least 32 bytes",
            ));
        }
        return Ok(k.into_bytes());
    }
    let mut key = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
        .map_err(|e| {
            Failure::new(
                EX_SOFTWARE,
                format!("reading /dev/urandom for a link key: {e}"),
            )
        })?;
    Ok(key)
}

/// Runs the server until the process is stopped.
pub fn run(config: Arc<Config>, args: Args) -> Result<(), Failure> {
    let key = signing_key()?;
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
        let state = Arc::new(State {
            api: Api {
                router: Router {
                    config,
                    store: MemoryStore::new(),
                    bus: LocalBus::new(),
                    scheduler: scheduler.clone(),
                    clock: SystemClock,
                    settings: RouterSettings::default(),
                },
                settings: ApiSettings {
                    signing_key: key,
                    default_audience: Audience::parse(&args.audience)
                        .unwrap_or(Audience::Customer),
                    title: "tocsin status (local)".into(),
                    metrics_namespace: "tocsin".into(),
                    max_list: 1000,
                },
            },
            base_url: base_url.clone(),
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
    let key = &state.api.settings.signing_key;
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
    if parts.uri.path() == "/events" {
        let r = if parts.method == hyper::Method::POST {
            events(&state, &body).await
        } else {
            error(405, "method_not_allowed", "POST is allowed here")
        };
        return Ok(to_hyper(r));
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

/// `POST /events`: an event in any source format, parsed as the ingest function parses it, each alert
/// routed at once.
async fn events(state: &State, body: &[u8]) -> Response {
    let parsed = match tocsin_core::source::parse_all(body) {
        Ok(p) => p,
        Err(e) => return error(400, "bad_request", &one_line(&e.to_string())),
    };
    let mut ids = Vec::new();
    let mut decisions = 0;
    for alert in parsed.alerts {
        match state.api.router.handle(alert).await {
            Ok(entries) => {
                decisions += entries.len();
                if let Some(e) = entries.first() {
                    ids.push(e.alert.clone());
                }
                report(state, &entries);
            }
            Err(e) => return error(503, "unavailable", &one_line(&e.to_string())),
        }
    }
    let rejected: Vec<String> = parsed.rejected.iter().map(|r| r.to_string()).collect();
    if !rejected.is_empty() {
        return error(
            400,
            "bad_request",
            &format!(
                "{} record(s) rejected, {} routed; first: {}",
                rejected.len(),
                ids.len(),
                one_line(&rejected[0])
            ),
        );
    }
    Response {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: json!({"alerts": ids, "decisions": decisions})
            .to_string()
            .into_bytes(),
        emf: Vec::new(),
        recorded: Vec::new(),
    }
}
