//! The api function's Lambda handler: an API Gateway HTTP API (payload format 2.0) request, as
//! `lambda_http` parsed it, into the framework-free [`Api`]'s [`Request`], and the [`Response`] back
//! (generic over the router's ports; `tests/api_gateway.rs` drives it on the embedded adapters). The identity comes only from
//! `requestContext.authorizer` (`jwt.claims` or `iam`), which API Gateway fills after its authorizer
//! validated the caller; no header a caller sets can make one.

use std::collections::BTreeMap;

use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use tocsin_core::ports::{AlertStore, Bus, Clock, Scheduler};
use tocsin_core::text::one_line;

use crate::{Api, Identity, Request, Response};

/// The identity API Gateway's authorizer vouched for, if any.
pub fn identity(req: &lambda_http::Request) -> Option<Identity> {
    let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
        return None;
    };
    let auth = ctx.authorizer.as_ref()?;
    if let Some(jwt) = &auth.jwt {
        if !jwt.claims.is_empty() {
            return Some(Identity::Jwt(
                jwt.claims
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ));
        }
    }
    let iam = auth.iam.as_ref()?;
    Some(Identity::Iam {
        user_arn: iam.user_arn.clone(),
        caller_id: iam.caller_id.clone(),
    })
}

/// The handler's request from `lambda_http`'s.
pub fn from_lambda(req: &lambda_http::Request) -> Request {
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_ascii_lowercase(), v.to_string()))
        })
        .collect();
    let body = match req.body() {
        Body::Empty => Vec::new(),
        Body::Text(t) => t.clone().into_bytes(),
        Body::Binary(b) => b.clone(),
        _ => Vec::new(),
    };
    let path = match req.raw_http_path() {
        "" => req.uri().path().to_string(),
        p => p.to_string(),
    };
    Request {
        method: req.method().as_str().to_string(),
        path,
        query: req.uri().query().unwrap_or("").to_string(),
        headers,
        body,
        identity: identity(req),
    }
}

/// `lambda_http`'s response from the handler's.
pub fn to_lambda(resp: Response) -> lambda_http::Response<Body> {
    let mut b = lambda_http::Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        b = b.header(*k, v);
    }
    let body = if resp.body.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(resp.body) {
            Ok(t) => Body::Text(t),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    b.body(body).unwrap_or_else(|_| {
        let mut r = lambda_http::Response::new(Body::Text(
            r#"{"error":{"status":500,"code":"internal","message":"response could not be built"}}"#
                .into(),
        ));
        *r.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// Handles one invocation: converts, runs the handler, prints its EMF lines on stdout (CloudWatch
/// Logs reads them as metrics), converts back.
pub async fn handle<S, B, K, C>(
    api: &Api<S, B, K, C>,
    req: lambda_http::Request,
) -> lambda_http::Response<Body>
where
    S: AlertStore + tocsin_core::ports::StatusSnapshots,
    B: Bus,
    K: Scheduler,
    C: Clock,
{
    let resp = api.handle(&from_lambda(&req)).await;
    for e in &resp.recorded {
        tracing::info!(
            alert = %e.alert,
            action = e.action.as_str(),
            channel = e.channel.as_deref().unwrap_or(""),
            target = %one_line(e.target.as_deref().unwrap_or("")),
            reason = %one_line(&e.reason),
            "decision"
        );
    }
    for line in &resp.emf {
        // With the trace, as every other line of the invocation.
        match serde_json::from_str(line) {
            Ok(v) => println!("{}", tocsin_lambda::trace::emf_line(v)),
            Err(_) => println!("{line}"),
        }
    }
    to_lambda(resp)
}
