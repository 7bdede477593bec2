//! The route table: the one list of HTTP routes that the handler dispatches on, that `tocsin serve`
//! serves, that docs/api.md prints ([`markdown_table`], checked by a test) and that
//! infra/template.yaml declares (checked by tests/stack.rs: every route of the table that runs on
//! AWS is an `HttpApi` event of the api function with the authorizer its [`Auth`] needs, and the
//! template declares no other).
//!
//! A path is API Gateway's template: literal segments and `{name}` for one non-empty segment.

use std::fmt;

/// Who may call a route, and so what API Gateway puts in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The API Gateway authorizer (IAM on the stack); the handler takes the actor from it alone.
    Authorizer,
    /// Anyone: the customer status page. No authorizer on AWS.
    Public,
    /// A signed, expiring one-click token in the path. No authorizer on AWS: the token is the proof.
    Token,
    /// An integration key (`Authorization: Bearer <key>`) that the handler checks against the keys
    /// read from Secrets Manager at cold start. No authorizer on AWS (Alertmanager and friends cannot
    /// sign SigV4 requests).
    IntegrationKey,
}

impl Auth {
    /// Whether API Gateway runs its authorizer on the route (else the route is `Authorizer: NONE`).
    pub fn needs_authorizer(self) -> bool {
        self == Auth::Authorizer
    }

    /// The words docs/api.md uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Auth::Authorizer => "authorizer",
            Auth::Public => "none",
            Auth::Token => "signed token",
            Auth::IntegrationKey => "integration key",
        }
    }
}

/// What a route does, for dispatch: the handler matches on this, never on the path text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// `POST /events`: any source format, routed at once (`tocsin serve` only).
    Events,
    /// `POST /webhooks/alertmanager`.
    AlertmanagerWebhook,
    /// `POST /webhooks/generic`.
    GenericWebhook,
    /// `GET /alerts`.
    ListAlerts,
    /// `GET /alerts/{id}`.
    GetAlert,
    /// `POST /alerts/{id}/ack`.
    Ack,
    /// `POST /alerts/{id}/resolve`.
    Resolve,
    /// `POST /alerts/{id}/assign`.
    Assign,
    /// `POST /alerts/{id}/notes`.
    Note,
    /// `GET /a/{token}`.
    Confirm,
    /// `POST /a/{token}`.
    Perform,
    /// `GET /status`.
    Status,
    /// `GET /status.json`.
    StatusJson,
    /// `GET /status/internal`.
    InternalStatus,
    /// `GET /status/internal.json`.
    InternalStatusJson,
    /// `GET /metrics.json`.
    Metrics,
    /// `GET /silences`.
    ListSilences,
    /// `POST /silences`.
    CreateSilence,
    /// `DELETE /silences/{id}`.
    ExpireSilence,
}

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// `GET`, `POST` or `DELETE` (a `GET` route also answers `HEAD` where the server passes it).
    pub method: &'static str,
    /// API Gateway's path template.
    pub path: &'static str,
    /// Who may call it.
    pub auth: Auth,
    /// Served by `tocsin serve` only, never deployed.
    pub serve_only: bool,
    /// What the handler does.
    pub name: Name,
    /// One line for docs/api.md.
    pub what: &'static str,
}

const fn r(
    method: &'static str,
    path: &'static str,
    auth: Auth,
    name: Name,
    what: &'static str,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        auth,
        serve_only: false,
        name,
        what,
    }
}

/// Every route, in the order docs/api.md lists them.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        serve_only: true,
        ..r(
            "POST",
            "/events",
            Auth::Authorizer,
            Name::Events,
            "`tocsin serve` only: an event in any source format, routed at once",
        )
    },
    r(
        "POST",
        "/webhooks/alertmanager",
        Auth::IntegrationKey,
        Name::AlertmanagerWebhook,
        "an Alertmanager webhook (`webhook_configs` with `authorization: {credentials: KEY}`)",
    ),
    r(
        "POST",
        "/webhooks/generic",
        Auth::IntegrationKey,
        Name::GenericWebhook,
        "a generic JSON alert (docs/sources.md)",
    ),
    r(
        "GET",
        "/alerts",
        Auth::Authorizer,
        Name::ListAlerts,
        "alerts; filters below",
    ),
    r(
        "GET",
        "/alerts/{id}",
        Auth::Authorizer,
        Name::GetAlert,
        "`{\"alert\": record, \"timeline\": [audit entries]}`",
    ),
    r(
        "POST",
        "/alerts/{id}/ack",
        Auth::Authorizer,
        Name::Ack,
        "acknowledge: escalation stops, everyone else paged is told who",
    ),
    r(
        "POST",
        "/alerts/{id}/resolve",
        Auth::Authorizer,
        Name::Resolve,
        "resolve: escalation stops, everyone paged is told",
    ),
    r(
        "POST",
        "/alerts/{id}/assign",
        Auth::Authorizer,
        Name::Assign,
        "body `{\"to\": \"bob\"}` (1 to 200 characters)",
    ),
    r(
        "POST",
        "/alerts/{id}/notes",
        Auth::Authorizer,
        Name::Note,
        "body `{\"text\": \"...\"}` (1 to 4000 characters, kept on one line)",
    ),
    r(
        "GET",
        "/a/{token}",
        Auth::Token,
        Name::Confirm,
        "the confirm page; **never changes anything** (mail scanners follow links)",
    ),
    r(
        "POST",
        "/a/{token}",
        Auth::Token,
        Name::Perform,
        "performs the token's action (the confirm page's form posts here)",
    ),
    r(
        "GET",
        "/status",
        Auth::Public,
        Name::Status,
        "the customer status page (HTML)",
    ),
    r(
        "GET",
        "/status.json",
        Auth::Public,
        Name::StatusJson,
        "the same as JSON",
    ),
    r(
        "GET",
        "/status/internal",
        Auth::Authorizer,
        Name::InternalStatus,
        "the internal status view (HTML): every alert, names and reasons",
    ),
    r(
        "GET",
        "/status/internal.json",
        Auth::Authorizer,
        Name::InternalStatusJson,
        "the same as JSON",
    ),
    r(
        "GET",
        "/metrics.json",
        Auth::Authorizer,
        Name::Metrics,
        "MTTA, MTTR, counts, noisiest alarms; `?days=N` (1 to 400, default 30)",
    ),
    r(
        "GET",
        "/silences",
        Auth::Authorizer,
        Name::ListSilences,
        "active silences (`?all=true`: expired too)",
    ),
    r(
        "POST",
        "/silences",
        Auth::Authorizer,
        Name::CreateSilence,
        "create a silence (see below)",
    ),
    r(
        "DELETE",
        "/silences/{id}",
        Auth::Authorizer,
        Name::ExpireSilence,
        "expire a silence now",
    ),
];

/// Why no route took a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No route has this path.
    NotFound,
    /// The path exists with other methods (listed).
    Method(Vec<&'static str>),
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Miss::NotFound => f.write_str("no such route"),
            Miss::Method(ok) => write!(f, "allowed here: {}", ok.join(", ")),
        }
    }
}

/// The path's `{name}` values, in order, if `path` fits `template`.
pub fn fits<'a>(template: &str, path: &'a str) -> Option<Vec<&'a str>> {
    let path = match path.trim_end_matches('/') {
        "" => "/",
        p => p,
    };
    let mut t = template.split('/');
    let mut p = path.split('/');
    let mut params = Vec::new();
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) if ts.starts_with('{') && ts.ends_with('}') => {
                if ps.is_empty() {
                    return None;
                }
                params.push(ps);
            }
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return None,
        }
    }
}

/// The route of `method` and `path` and the path's parameters. `HEAD` takes a `GET` route.
pub fn find<'a>(method: &str, path: &'a str) -> Result<(&'static RouteSpec, Vec<&'a str>), Miss> {
    let method = if method == "HEAD" { "GET" } else { method };
    let mut others = Vec::new();
    for spec in ROUTES {
        if let Some(params) = fits(spec.path, path) {
            if spec.method == method {
                return Ok((spec, params));
            }
            others.push(spec.method);
        }
    }
    if others.is_empty() {
        Err(Miss::NotFound)
    } else {
        Err(Miss::Method(others))
    }
}

/// The routes table of docs/api.md, as the docs must print it.
pub fn markdown_table() -> String {
    let mut out = String::from("| route | auth | what |\n|---|---|---|\n");
    for spec in ROUTES {
        out.push_str(&format!(
            "| `{} {}` | {} | {} |\n",
            spec.method,
            spec.path,
            spec.auth.as_str(),
            spec.what
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_found_by_its_own_path_and_method() {
        for spec in ROUTES {
            let path = spec.path.replace("{id}", "x1").replace("{token}", "t.k");
            let (found, _) = find(spec.method, &path).unwrap_or_else(|m| panic!("{path}: {m}"));
            assert_eq!(found, spec);
        }
    }

    #[test]
    fn no_two_routes_share_a_method_and_path() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path) && a.name != b.name,
                    "{a:?} and {b:?}"
                );
            }
        }
    }

    #[test]
    fn parameters_are_one_non_empty_segment_and_methods_are_listed_on_a_miss() {
        assert_eq!(fits("/silences/{id}", "/silences/abc"), Some(vec!["abc"]));
        assert_eq!(fits("/silences/{id}", "/silences/"), None);
        assert_eq!(fits("/silences/{id}", "/silences/a/b"), None);
        assert_eq!(fits("/alerts/{id}/ack", "/alerts//ack"), None);
        assert_eq!(find("GET", "/nowhere"), Err(Miss::NotFound));
        assert_eq!(
            find("PUT", "/silences"),
            Err(Miss::Method(vec!["GET", "POST"]))
        );
        assert_eq!(
            find("HEAD", "/status").map(|(s, _)| s.name),
            Ok(Name::Status)
        );
    }

    #[test]
    fn docs_api_md_prints_the_route_table() {
        let docs = include_str!("../../../docs/api.md");
        let table = markdown_table();
        assert!(
            docs.contains(&table),
            "docs/api.md's routes table differs from crates/api/src/routes.rs; it should read:\n{table}"
        );
    }
}
