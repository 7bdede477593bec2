use std::time::Duration;

use reqwest::Url;
use serde_json::json;
use tocsin_core::config::ChannelKind;
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::render::Rendered;

use super::PagerdutySender;
use crate::http;
use crate::testing::{Reply, Server, assert_no_secrets, job};

const KEY: &str = "R0UTINGkey0123456789abcdef012345";

fn message() -> Rendered {
    Rendered::Pagerduty {
        payload: json!({
            "event_action": "trigger",
            "dedup_key": "al-1",
            "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"}
        }),
    }
}

fn sender(server: &Server) -> PagerdutySender {
    let client = http::client().unwrap_or_else(|e| panic!("{e}"));
    let endpoint = Url::parse(&server.url("/v2/enqueue")).unwrap_or_else(|e| panic!("{e}"));
    PagerdutySender::new(client, KEY.into(), endpoint).with_timeout(Duration::from_millis(300))
}

async fn send(replies: Vec<Reply>) -> (Result<Sent, SendError>, Server) {
    let server = Server::start(replies)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let result = sender(&server)
        .send(&job(ChannelKind::Pagerduty, None), &message())
        .await;
    (result, server)
}

fn expect_err(result: Result<Sent, SendError>) -> SendError {
    match result {
        Err(e) => {
            assert_no_secrets(&e, &[KEY, "127.0.0.1"]);
            e
        }
        Ok(sent) => panic!("expected an error, got {sent:?}"),
    }
}

#[tokio::test]
async fn the_event_goes_out_with_the_routing_key_and_202_returns_the_dedup_key() {
    let (result, server) =
        send(vec![Reply::status(202).body(
            r#"{"status":"success","message":"Event processed","dedup_key":"al-1"}"#,
        )])
        .await;
    assert_eq!(
        result,
        Ok(Sent {
            provider_id: Some("al-1".into())
        })
    );
    let requests = server.requests();
    assert_eq!(requests[0].path, "/v2/enqueue");
    let body = requests[0].json();
    assert_eq!(body["routing_key"], KEY);
    assert_eq!(body["event_action"], "trigger");
    assert_eq!(body["payload"]["summary"], "disk full");
}

#[tokio::test]
async fn a_429_is_retryable_with_its_retry_after() {
    let (result, _server) = send(vec![Reply::status(429).header("Retry-After", "1")]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(e.class, "http_429");
}

#[tokio::test]
async fn a_500_is_retryable() {
    let (result, _server) = send(vec![Reply::status(500)]).await;
    assert!(expect_err(result).retryable);
}

#[tokio::test]
async fn a_400_is_permanent_with_pagerdutys_reason_and_without_the_key() {
    let body = format!(
        r#"{{"status":"invalid event","message":"Event object is invalid","errors":["routing_key {KEY} is invalid"]}}"#
    );
    let (result, _server) = send(vec![Reply::status(400).body(&body)]).await;
    let e = expect_err(result);
    assert!(!e.retryable);
    assert_eq!(e.class, "http_400");
    assert!(e.reason.contains("Event object is invalid"), "{}", e.reason);
}

#[tokio::test]
async fn an_endpoint_that_never_answers_times_out_retryably() {
    let (result, _server) = send(vec![Reply::Hang]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.class, "timeout");
}

#[tokio::test]
async fn an_event_that_is_not_an_object_is_refused_without_sending() {
    let server = Server::start(vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let message = Rendered::Pagerduty {
        payload: json!([1]),
    };
    let e = expect_err(
        sender(&server)
            .send(&job(ChannelKind::Pagerduty, None), &message)
            .await,
    );
    assert!(!e.retryable);
    assert!(server.requests().is_empty());
}

#[test]
fn debug_output_hides_the_routing_key() {
    let client = http::client().unwrap_or_else(|e| panic!("{e}"));
    let endpoint = Url::parse(super::ENDPOINT).unwrap_or_else(|e| panic!("{e}"));
    let shown = format!("{:?}", PagerdutySender::new(client, KEY.into(), endpoint));
    assert!(!shown.contains(KEY), "{shown}");
}
