//! The api handler, generic over the router's ports and free of any HTTP framework: a [`Request`]
//! (method, path, query, headers, body, and the identity the API Gateway authorizer vouched for) in, a
//! [`Response`] (status, headers, body, and EMF metric lines for the log) out. The Lambda adapter
//! ([`handler`]) and `tocsin serve` both feed it.
//!
//! The routes, their auth and what each does are the route table, [`routes::ROUTES`]: the handler
//! dispatches on it, and docs/api.md and infra/template.yaml are checked against it.
//!
//! Errors are JSON, one shape everywhere: `{"error": {"status": 404, "code": "not_found", "message":
//! "..."}}`; on the one-click routes a browser (`Accept: text/html`) gets the same as a small page.
//! The signing key never appears in a response, an audit entry or a log line, and neither does a token.

pub mod handler;
mod pages;
mod query;
pub mod routes;
mod status_cache;

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use thiserror::Error;
use tocsin_core::lifecycle::Command;
use tocsin_core::metrics;
use tocsin_core::model::AlarmState;
use tocsin_core::ports::{
    AlertStore, Bus, Clock, Scheduler, StatusSnapshot, StatusSnapshots, StoreError,
};
use tocsin_core::record::{AlertRecord, AuditEntry, Status};
use tocsin_core::router::{Router, RouterError};
use tocsin_core::status::{self, Audience};
use tocsin_core::text::one_line;
use tocsin_core::token::{self, KeyRing, TokenError};
use tocsin_core::{Severity, render};

pub use query::parse_query;
pub use status_cache::{STATUS_RECHECK, STATUS_TTL, StatusCache};

/// Who is calling, as the API Gateway authorizer established it (never from a header the caller set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A JWT authorizer's validated claims.
    Jwt(BTreeMap<String, String>),
    /// An IAM (SigV4) caller.
    Iam {
        /// The caller's ARN, if API Gateway passed it.
        user_arn: Option<String>,
        /// The caller id otherwise.
        caller_id: Option<String>,
    },
    /// `tocsin serve` on 127.0.0.1, which has no authorizer: the local actor.
    Local(String),
}

impl Identity {
    /// The actor recorded in the audit: a JWT's `email`, else `cognito:username`, else `sub`; an IAM
    /// caller's ARN, else its caller id. None when the authorizer passed nothing usable.
    pub fn actor(&self) -> Option<String> {
        let actor = match self {
            Identity::Jwt(claims) => ["email", "cognito:username", "username", "sub"]
                .iter()
                .find_map(|k| claims.get(*k).filter(|v| !v.trim().is_empty()))
                .cloned(),
            Identity::Iam {
                user_arn,
                caller_id,
            } => user_arn
                .clone()
                .or_else(|| caller_id.clone())
                .filter(|v| !v.trim().is_empty()),
            Identity::Local(name) => Some(name.clone()),
        }?;
        // It goes into the audit and onto pages: one bounded line.
        Some(one_line(&actor).chars().take(200).collect())
    }
}

/// One HTTP request, framework-neutral.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the stage or the query (`/alerts/abc/ack`).
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body, decoded from base64 if API Gateway encoded it.
    pub body: Vec<u8>,
    /// The authorizer's identity, if the route had one.
    pub identity: Option<Identity>,
}

/// One HTTP response, framework-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// CloudWatch EMF lines to print on stdout (the Lambda's log), one JSON object each.
    pub emf: Vec<String>,
    /// The audit entries this request recorded (a command's decisions), for the log and the console.
    pub recorded: Vec<AuditEntry>,
}

impl Response {
    fn json(status: u16, v: &Value) -> Response {
        Response {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("cache-control", "no-store".into()),
                ("x-content-type-options", "nosniff".into()),
            ],
            body: v.to_string().into_bytes(),
            emf: Vec::new(),
            recorded: Vec::new(),
        }
    }

    fn html(status: u16, body: String) -> Response {
        Response {
            status,
            headers: vec![
                ("content-type", "text/html; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
                ("x-content-type-options", "nosniff".into()),
                // Tokens are in the URL of the one-click pages: never sent on to anyone.
                ("referrer-policy", "no-referrer".into()),
                (
                    "content-security-policy",
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'".into(),
                ),
            ],
            body: body.into_bytes(),
            emf: Vec::new(),
            recorded: Vec::new(),
        }
    }

    fn with_recorded(mut self, recorded: Vec<AuditEntry>) -> Response {
        self.recorded = recorded;
        self
    }

    /// The body as text (for tests and logs).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request failed: the status code and a one-line reason. Never carries a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no (valid) credentials: no authorizer identity, or a bad or expired token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: valid credentials that do not allow this (a token for another alert or action).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route or alert.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: the alert's status does not allow it, or it changed meanwhile.
    #[error("{0}")]
    Conflict(String),
    /// 501: the route is planned and not wired yet (silences).
    #[error("{0}")]
    NotImplemented(String),
    /// 503: the store, bus or scheduler failed; worth retrying.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The status code.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict(_) => 409,
            ApiError::NotImplemented(_) => 501,
            ApiError::Unavailable(_) => 503,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::NotImplemented(_) => "not_implemented",
            ApiError::Unavailable(_) => "unavailable",
        }
    }

    /// The error as the API's JSON body.
    pub fn to_json(&self) -> Value {
        json!({"error": {"status": self.status(), "code": self.code(), "message": one_line(&self.to_string())}})
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict(why) => ApiError::Conflict(format!(
                "the alert changed while this request was handled, try again ({why})"
            )),
            StoreError::Backend(why) => ApiError::Unavailable(why),
        }
    }
}

impl From<RouterError> for ApiError {
    fn from(e: RouterError) -> Self {
        match e {
            RouterError::Illegal(t) => ApiError::Conflict(t.to_string()),
            RouterError::Store(s) => s.into(),
            RouterError::InProgress(id) => ApiError::Conflict(format!("event {id} is in progress")),
            RouterError::Bus(b) => ApiError::Unavailable(b.to_string()),
            RouterError::Scheduler(s) => ApiError::Unavailable(s.to_string()),
        }
    }
}

/// The api's settings.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// The one-click link keys, shared with the deliver functions (from Secrets Manager at cold
    /// start). Never logged (its `Debug` shows key ids only).
    pub link_keys: KeyRing,
    /// The webhooks' integration keys (any of them is accepted: two during a rotation); None: the
    /// webhooks refuse every caller but `tocsin serve`'s local actor. Never logged.
    pub integration_keys: Option<KeyRing>,
    /// The status page's audience when the request does not say.
    pub default_audience: Audience,
    /// The status page's title.
    pub title: String,
    /// The CloudWatch namespace of the EMF metrics.
    pub metrics_namespace: String,
    /// The most alerts one list returns (per status).
    pub max_list: usize,
}

/// A setting the api needs is missing or wrong.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SettingsError {
    /// A variable has a value it cannot take.
    #[error("environment variable {0}: {1}")]
    Invalid(&'static str, &'static str),
}

/// The shortest signing key accepted: 32 bytes, HMAC-SHA256's block of strength.
pub const MIN_KEY_BYTES: usize = token::MIN_KEY_BYTES;

impl ApiSettings {
    /// The settings with the keys read at cold start, and `STATUS_AUDIENCE` (`customer` or
    /// `internal`, default `customer`), `STATUS_TITLE` and `METRICS_NAMESPACE` through `get`.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        link_keys: KeyRing,
        integration_keys: Option<KeyRing>,
    ) -> Result<Self, SettingsError> {
        let default_audience = match get("STATUS_AUDIENCE").filter(|v| !v.trim().is_empty()) {
            None => Audience::Customer,
            Some(a) => Audience::parse(a.trim()).ok_or(SettingsError::Invalid(
                "STATUS_AUDIENCE",
                "expected customer or internal",
            ))?,
        };
        Ok(ApiSettings {
            link_keys,
            integration_keys,
            default_audience,
            title: get("STATUS_TITLE")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| "Service status".into()),
            metrics_namespace: get("METRICS_NAMESPACE")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| "tocsin".into()),
            max_list: 1000,
        })
    }
}

/// The api: the router (for the commands, which stop escalation and tell the others), settings and
/// the status pages built lately.
pub struct Api<S, B, K, C> {
    /// The router; its store answers the queries.
    pub router: Router<S, B, K, C>,
    /// Settings.
    pub settings: ApiSettings,
    /// The status page of each audience, as last built.
    pub status_cache: StatusCache,
}

impl<S, B, K, C> Api<S, B, K, C> {
    /// The api over `router`, with an empty status cache.
    pub fn new(router: Router<S, B, K, C>, settings: ApiSettings) -> Self {
        Api {
            router,
            settings,
            status_cache: StatusCache::default(),
        }
    }
}

/// What a command did: the alert as it now is, the decisions recorded, the EMF line of an ack or
/// resolve.
struct Done {
    alert: Option<AlertRecord>,
    entries: Vec<AuditEntry>,
    emf: Vec<String>,
}

/// Where a request goes: the route table's entry ([`routes::find`]) and the path's parameters.
enum Route<'a> {
    Ingest(routes::Name),
    ListAlerts,
    GetAlert(&'a str),
    Command(&'a str, &'a str),
    Confirm(&'a str),
    Perform(&'a str),
    Status { json: bool, internal: bool },
    Metrics,
    Silences(Option<&'a str>),
}

fn route<'a>(method: &str, path: &'a str) -> Result<Route<'a>, ApiError> {
    use routes::Name;
    let (spec, params) = routes::find(method, path).map_err(|m| match m {
        routes::Miss::NotFound => ApiError::NotFound("no such route".into()),
        routes::Miss::Method(_) => {
            ApiError::MethodNotAllowed(format!("{} is not allowed here; {m}", one_line(method)))
        }
    })?;
    let first = params.first().copied().unwrap_or_default();
    Ok(match spec.name {
        Name::Events | Name::AlertmanagerWebhook | Name::GenericWebhook => Route::Ingest(spec.name),
        Name::ListAlerts => Route::ListAlerts,
        Name::GetAlert => Route::GetAlert(first),
        Name::Ack => Route::Command(first, "ack"),
        Name::Resolve => Route::Command(first, "resolve"),
        Name::Assign => Route::Command(first, "assign"),
        Name::Note => Route::Command(first, "notes"),
        Name::Confirm => Route::Confirm(first),
        Name::Perform => Route::Perform(first),
        Name::Status => Route::Status {
            json: false,
            internal: false,
        },
        Name::StatusJson => Route::Status {
            json: true,
            internal: false,
        },
        Name::InternalStatus => Route::Status {
            json: false,
            internal: true,
        },
        Name::InternalStatusJson => Route::Status {
            json: true,
            internal: true,
        },
        Name::Metrics => Route::Metrics,
        Name::ListSilences | Name::CreateSilence => Route::Silences(None),
        Name::ExpireSilence => Route::Silences(Some(first)),
    })
}

#[derive(Deserialize)]
struct AssignBody {
    to: String,
}

#[derive(Deserialize)]
struct NoteBody {
    text: String,
}

/// The longest note accepted, in characters.
pub const MAX_NOTE: usize = 4000;

/// `POST /silences`.
#[derive(Deserialize)]
struct SilenceBody {
    matchers: Vec<String>,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    starts_at: Option<chrono::DateTime<chrono::Utc>>,
    ends_at: chrono::DateTime<chrono::Utc>,
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8], shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "body must be JSON {shape}: {}",
            one_line(&e.to_string())
        ))
    })
}

fn wants_html(req: &Request) -> bool {
    req.headers
        .get("accept")
        .is_some_and(|a| a.contains("text/html"))
}

impl<S, B, K, C> Api<S, B, K, C>
where
    S: AlertStore + StatusSnapshots,
    B: Bus,
    K: Scheduler,
    C: Clock,
{
    /// Handles one request. Never panics on input; every failure is a [`Response`] with the error shape.
    pub async fn handle(&self, req: &Request) -> Response {
        let html = wants_html(req);
        let routed = route(&req.method, &req.path);
        let one_click = matches!(routed, Ok(Route::Confirm(_) | Route::Perform(_)));
        let result = match routed {
            Ok(r) => self.dispatch(r, req).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(r) => r,
            Err(e) => {
                if e.status() >= 500 {
                    tracing::warn!(status = e.status(), code = e.code(), reason = %one_line(&e.to_string()), "request failed");
                }
                let e = shown_to(e, req.identity.is_some());
                if one_click && html {
                    Response::html(e.status(), pages::error(&e))
                } else {
                    Response::json(e.status(), &e.to_json())
                }
            }
        }
    }

    async fn dispatch(&self, r: Route<'_>, req: &Request) -> Result<Response, ApiError> {
        match r {
            Route::ListAlerts => {
                self.actor(req)?;
                self.list(req).await
            }
            Route::GetAlert(id) => {
                self.actor(req)?;
                self.get(id).await
            }
            Route::Command(id, cmd) => {
                let actor = self.actor(req)?;
                let command = match cmd {
                    "ack" => Command::Ack,
                    "resolve" => Command::Resolve,
                    "assign" => {
                        let b: AssignBody = json_body(&req.body, r#"{"to": "NAME"}"#)?;
                        let to = one_line(b.to.trim()).into_owned();
                        if to.is_empty() || to.chars().count() > 200 {
                            return Err(ApiError::BadRequest(
                                "\"to\" must be 1 to 200 characters".into(),
                            ));
                        }
                        Command::Assign(to)
                    }
                    _ => {
                        let b: NoteBody = json_body(&req.body, r#"{"text": "NOTE"}"#)?;
                        let text = one_line(b.text.trim()).into_owned();
                        if text.is_empty() || text.chars().count() > MAX_NOTE {
                            return Err(ApiError::BadRequest(format!(
                                "\"text\" must be 1 to {MAX_NOTE} characters"
                            )));
                        }
                        Command::Note(text)
                    }
                };
                let done = self.command(id, &command, &actor).await?;
                Ok(Response {
                    emf: done.emf,
                    recorded: done.entries.clone(),
                    ..Response::json(200, &json!({"alert": done.alert, "entries": done.entries}))
                })
            }
            Route::Confirm(token) => self.confirm(token, req.method == "HEAD").await,
            Route::Perform(token) => self.perform(token, req).await,
            Route::Status { json, internal } => self.status(req, json, internal).await,
            Route::Ingest(name) => self.ingest(req, name).await,
            Route::Metrics => {
                self.actor(req)?;
                self.metrics(req).await
            }
            Route::Silences(id) => {
                let actor = self.actor(req)?;
                self.silences(req, id, actor).await
            }
        }
    }

    /// `GET /silences` (active ones; `?all=true` for expired too), `POST /silences` (made by the
    /// authorizer's actor, never by a name in the body), `DELETE /silences/{id}` (expires it now).
    async fn silences(
        &self,
        req: &Request,
        id: Option<&str>,
        actor: String,
    ) -> Result<Response, ApiError> {
        match (req.method.as_str(), id) {
            ("GET", _) => {
                let all = req.query.split('&').any(|kv| kv == "all=true");
                let list = self.router.list_silences(!all).await?;
                Ok(Response::json(200, &json!({ "silences": list })))
            }
            ("POST", _) => {
                let b: SilenceBody = json_body(
                    &req.body,
                    r#"{"matchers": ["service = search"], "ends_at": "RFC 3339", "comment": "why"}"#,
                )?;
                let request = tocsin_core::noise::NewSilence {
                    matchers: b.matchers,
                    created_by: actor,
                    comment: one_line(b.comment.trim()).into_owned(),
                    starts_at: b.starts_at,
                    ends_at: b.ends_at,
                };
                let (silence, entries) =
                    self.router
                        .create_silence(request)
                        .await
                        .map_err(|e| match e {
                            // Nothing wrong with the request: the silences already active are.
                            tocsin_core::suppress::SilenceCommandError::Invalid(
                                v @ tocsin_core::noise::SilenceError::TooMany { .. },
                            ) => ApiError::Conflict(v.to_string()),
                            tocsin_core::suppress::SilenceCommandError::Invalid(v) => {
                                ApiError::BadRequest(v.to_string())
                            }
                            tocsin_core::suppress::SilenceCommandError::Router(r) => r.into(),
                        })?;
                Ok(Response {
                    recorded: entries,
                    ..Response::json(201, &json!({ "silence": silence }))
                })
            }
            (_, Some(id)) => {
                let (silence, entries) = self.router.expire_silence(id, &actor).await?;
                Ok(Response {
                    recorded: entries,
                    ..Response::json(200, &json!({ "silence": silence }))
                })
            }
            _ => Err(ApiError::MethodNotAllowed(format!(
                "{} is not allowed here",
                one_line(&req.method)
            ))),
        }
    }

    /// The authorizer's actor, or 401. Only the authorizer context counts, never a header.
    fn actor(&self, req: &Request) -> Result<String, ApiError> {
        req.identity
            .as_ref()
            .and_then(Identity::actor)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "this route needs an API Gateway authorizer identity (JWT or IAM)".into(),
                )
            })
    }

    async fn list(&self, req: &Request) -> Result<Response, ApiError> {
        let q = parse_query(&req.query)?;
        let one_of = |name: &str| -> Vec<String> {
            q.iter()
                .filter(|(k, _)| k == name)
                .flat_map(|(_, v)| v.split(','))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        for (k, _) in &q {
            if !["status", "state", "severity", "service", "limit"].contains(&k.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "unknown filter {:?}; filters: status, state, severity, service, limit",
                    one_line(k)
                )));
            }
        }
        let statuses = match one_of("status") {
            v if v.is_empty() => vec![Status::Open, Status::Acknowledged],
            v => v
                .iter()
                .map(|s| parse_status(s))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let states = one_of("state")
            .iter()
            .map(|s| {
                serde_json::from_value::<AlarmState>(json!(s)).map_err(|_| {
                    ApiError::BadRequest(format!(
                        "unknown state {:?}; expected ALARM, OK or INSUFFICIENT_DATA",
                        one_line(s)
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let severities = one_of("severity")
            .iter()
            .map(|s| {
                Severity::ALL
                    .into_iter()
                    .find(|x| x.as_str() == s)
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "unknown severity {:?}; expected critical, high, medium, low or info",
                            one_line(s)
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let services = one_of("service");
        let limit = match one_of("limit").first() {
            None => 100,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=self.settings.max_list).contains(n))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "limit must be a number from 1 to {}",
                        self.settings.max_list
                    ))
                })?,
        };
        let mut alerts: Vec<AlertRecord> = Vec::new();
        for s in statuses {
            let page = self
                .router
                .store
                .list_alerts(s, self.settings.max_list)
                .await?;
            alerts.extend(page.into_iter().filter(|r| {
                (states.is_empty() || states.contains(&r.alert.state))
                    && (severities.is_empty() || severities.contains(&r.severity))
                    && (services.is_empty()
                        || r.service().is_some_and(|x| services.iter().any(|s| s == x)))
            }));
        }
        alerts.truncate(limit);
        Ok(Response::json(
            200,
            &json!({"count": alerts.len(), "alerts": alerts}),
        ))
    }

    async fn get(&self, id: &str) -> Result<Response, ApiError> {
        let rec = self
            .router
            .store
            .get_alert(id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("alert {} not found", one_line(id))))?;
        let timeline = self.router.store.audit(id).await?;
        Ok(Response::json(
            200,
            &json!({"alert": rec, "timeline": timeline}),
        ))
    }

    /// Runs a command through the router (escalation stops, the others are told) and answers with the
    /// alert as it now is and the decisions recorded; plus the EMF line of an ack or resolve.
    async fn command(&self, id: &str, cmd: &Command, actor: &str) -> Result<Done, ApiError> {
        let entries = self.router.act(id, cmd, actor).await?;
        let rec = self.router.store.get_alert(id).await?;
        let emf = match (&rec, cmd) {
            (Some(r), Command::Ack | Command::Resolve) => metrics::emf_for_change(
                r,
                &self.settings.metrics_namespace,
                self.router.clock.now(),
            )
            .map(|l| vec![l.to_string()])
            .unwrap_or_default(),
            _ => Vec::new(),
        };
        tracing::info!(alert = %one_line(id), command = cmd.name(), actor = %actor, "command applied");
        Ok(Done {
            alert: rec,
            entries,
            emf,
        })
    }

    fn verify(&self, token: &str) -> Result<token::Claims, ApiError> {
        let claims = token::verify(&self.settings.link_keys, token, self.router.clock.now())
            .map_err(|e| match e {
                TokenError::Expired(at) => {
                    ApiError::Unauthorized(format!("this link expired at {at}"))
                }
                TokenError::Malformed | TokenError::BadSignature => {
                    ApiError::Unauthorized("this link is not valid".into())
                }
            })?;
        command_of(&claims.action)?;
        Ok(claims)
    }

    async fn confirm(&self, token: &str, head: bool) -> Result<Response, ApiError> {
        let claims = self.verify(token)?;
        let rec = self
            .router
            .store
            .get_alert(&claims.alert_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("the alert of this link no longer exists".into()))?;
        let mut r = Response::html(200, pages::confirm(&rec, &claims));
        if head {
            r.body.clear();
        }
        Ok(r)
    }

    async fn perform(&self, token: &str, req: &Request) -> Result<Response, ApiError> {
        let claims = self.verify(token)?;
        // The confirm page's form names the alert and action it showed; a token sent with another
        // alert's or action's form is refused before anything changes.
        let form = if req.body.is_empty() {
            Vec::new()
        } else {
            parse_query(&String::from_utf8_lossy(&req.body))?
        };
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if let Some(a) = field("alert") {
            if a != claims.alert_id {
                return Err(ApiError::Forbidden("this link is for another alert".into()));
            }
        }
        if let Some(a) = field("action") {
            if a != claims.action {
                return Err(ApiError::Forbidden(format!(
                    "this link allows {}, not {}",
                    claims.action,
                    one_line(a)
                )));
            }
        }
        let cmd = command_of(&claims.action)?;
        let done = self
            .command(&claims.alert_id, &cmd, &claims.recipient)
            .await?;
        let mut r = if wants_html(req) {
            Response::html(200, pages::done(done.alert.as_ref(), &claims))
        } else {
            Response::json(200, &json!({"alert": done.alert, "entries": done.entries}))
        };
        r.emf = done.emf;
        r.recorded = done.entries;
        Ok(r)
    }

    /// `POST /webhooks/{alertmanager,generic}` (an integration key) and `POST /events` (`tocsin
    /// serve` only, where the identity is the local actor): the event through the ingest function's
    /// parsers, each alert routed at once, as the router function would.
    async fn ingest(&self, req: &Request, name: routes::Name) -> Result<Response, ApiError> {
        let local = matches!(req.identity, Some(Identity::Local(_)));
        match name {
            // Only `tocsin serve` makes a local identity; on AWS the route does not exist.
            routes::Name::Events if !local => {
                return Err(ApiError::NotFound("no such route".into()));
            }
            routes::Name::Events => {}
            _ if local => {}
            _ => self.integration_key(req)?,
        }
        let parsed = tocsin_core::source::parse_all(&req.body)
            .map_err(|e| ApiError::BadRequest(one_line(&e.to_string()).into_owned()))?;
        if let Some(first) = parsed.rejected.first() {
            return Err(ApiError::BadRequest(format!(
                "{} record(s) rejected, none routed; first: {}",
                parsed.rejected.len(),
                one_line(&first.to_string())
            )));
        }
        let mut ids = Vec::new();
        let mut recorded = Vec::new();
        for alert in parsed.alerts {
            let entries = self.router.handle(alert).await?;
            if let Some(e) = entries.first() {
                ids.push(e.alert.clone());
            }
            recorded.extend(entries);
        }
        Ok(
            Response::json(200, &json!({"alerts": ids, "decisions": recorded.len()}))
                .with_recorded(recorded),
        )
    }

    /// The integration key of a webhook: `Authorization: Bearer <key>`, compared in constant time
    /// with every key the api holds (two during a rotation).
    fn integration_key(&self, req: &Request) -> Result<(), ApiError> {
        let given = req
            .headers
            .get("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        let ok = !given.is_empty()
            && self
                .settings
                .integration_keys
                .as_ref()
                .is_some_and(|ring| ring.holds(given.as_bytes()));
        if ok {
            Ok(())
        } else {
            Err(ApiError::Unauthorized(
                "this route needs an integration key (Authorization: Bearer KEY)".into(),
            ))
        }
    }

    async fn status(
        &self,
        req: &Request,
        json_out: bool,
        internal: bool,
    ) -> Result<Response, ApiError> {
        let q = parse_query(&req.query)?;
        let audience = match q.iter().find(|(k, _)| k == "audience") {
            _ if internal => Audience::Internal,
            None => self.settings.default_audience,
            Some((_, a)) => Audience::parse(a).ok_or_else(|| {
                ApiError::BadRequest("audience must be customer or internal".into())
            })?,
        };
        if audience == Audience::Internal {
            self.actor(req).map_err(|_| {
                ApiError::Unauthorized(
                    "the internal status view needs an API Gateway authorizer identity".into(),
                )
            })?;
        }
        let now = self.router.clock.now();
        // Rendered both ways once per build: the cache (shared by every sandbox) holds the bytes.
        let page = self
            .status_cache
            .page(&self.router.store, audience, now, || async {
                let page = self.build_status(audience, now).await?;
                Ok::<_, ApiError>(StatusSnapshot {
                    built_at: now,
                    json: serde_json::to_value(&page)
                        .unwrap_or(Value::Null)
                        .to_string(),
                    html: render::status_html::render(&page, &self.settings.title),
                })
            })
            .await?;
        if json_out {
            Ok(Response {
                body: page.json.into_bytes(),
                ..Response::json(200, &Value::Null)
            })
        } else {
            let mut r = Response::html(200, page.html);
            if req.method == "HEAD" {
                r.body.clear();
            }
            Ok(r)
        }
    }

    /// The status page from the store: three bounded queries and an audit read per incident shown.
    async fn build_status(
        &self,
        audience: Audience,
        now: chrono::DateTime<Utc>,
    ) -> Result<status::StatusPage, ApiError> {
        let store = &self.router.store;
        let max = self.settings.max_list;
        let mut live = store.list_alerts(Status::Open, max).await?;
        live.extend(store.list_alerts(Status::Acknowledged, max).await?);
        let resolved = store.list_alerts(Status::Resolved, max).await?;
        let since = now - Duration::days(status::HISTORY_DAYS);
        let mut audits = BTreeMap::new();
        let recent = resolved.iter().filter(|r| {
            r.resolved_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t.with_timezone(&Utc) >= since)
        });
        // One read per incident shown; bounded so a storm cannot make the page slow.
        for r in live.iter().chain(recent).take(100) {
            audits.insert(r.id.clone(), store.audit(&r.id).await?);
        }
        Ok(status::build(
            &self.router.config,
            &live,
            &resolved,
            &audits,
            audience,
            now,
        ))
    }

    async fn metrics(&self, req: &Request) -> Result<Response, ApiError> {
        let q = parse_query(&req.query)?;
        let days = match q.iter().find(|(k, _)| k == "days") {
            None => 30,
            Some((_, d)) => d
                .parse::<i64>()
                .ok()
                .filter(|d| (1..=400).contains(d))
                .ok_or_else(|| {
                    ApiError::BadRequest("days must be a number from 1 to 400".into())
                })?,
        };
        let now = self.router.clock.now();
        let mut all = Vec::new();
        for s in [
            Status::Open,
            Status::Acknowledged,
            Status::Resolved,
            Status::Closed,
        ] {
            all.extend(
                self.router
                    .store
                    .list_alerts(s, self.settings.max_list)
                    .await?,
            );
        }
        let m = metrics::compute(&all, Some(now - Duration::days(days)), now, 10);
        let emf = metrics::emf(&m, &self.settings.metrics_namespace)
            .iter()
            .map(Value::to_string)
            .collect();
        Ok(Response {
            emf,
            ..Response::json(200, &serde_json::to_value(&m).unwrap_or(Value::Null))
        })
    }
}

/// The error as a caller sees it: a server-side failure's detail (DynamoDB's or SNS's text, with
/// ARNs) is for the log only unless the authorizer vouched for the caller; anyone else gets the
/// same generic line.
fn shown_to(e: ApiError, authenticated: bool) -> ApiError {
    match e {
        ApiError::Unavailable(_) if !authenticated => {
            ApiError::Unavailable("the service is unavailable right now; try again".into())
        }
        e => e,
    }
}

fn parse_status(s: &str) -> Result<Status, ApiError> {
    serde_json::from_value::<Status>(json!(s)).map_err(|_| {
        ApiError::BadRequest(format!(
            "unknown status {:?}; expected open, acknowledged, resolved or closed",
            one_line(s)
        ))
    })
}

fn command_of(action: &str) -> Result<Command, ApiError> {
    match action {
        "ack" => Ok(Command::Ack),
        "resolve" => Ok(Command::Resolve),
        other => Err(ApiError::Forbidden(format!(
            "this link allows {:?}, which is not a one-click action",
            one_line(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_failure_shows_its_detail_to_authenticated_callers_only() {
        let e = || {
            ApiError::from(StoreError::Backend(
                "ResourceNotFoundException: arn:aws:dynamodb:eu-west-1:123456789012:table/t".into(),
            ))
        };
        let public = shown_to(e(), false).to_json().to_string();
        assert!(!public.contains("arn:aws"), "{public}");
        assert!(public.contains("\"unavailable\""), "{public}");
        assert!(
            shown_to(e(), true)
                .to_json()
                .to_string()
                .contains("arn:aws")
        );
        // A client error keeps its reason: it is about the caller's own request.
        let bad = ApiError::BadRequest("limit must be a number from 1 to 1000".into());
        assert_eq!(shown_to(bad.clone(), false), bad);
    }
}
