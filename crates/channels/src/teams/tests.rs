use std::time::Duration;

use reqwest::Url;
use serde_json::json;
use tocsin_core::config::ChannelKind;
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::render::Rendered;

use super::TeamsSender;
use crate::http;
use crate::testing::{Reply, Server, assert_no_secrets, job};

// Workflows URLs carry their signature in the query.
const PATH: &str = "/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=teamsSigSECRET";

fn message() -> Rendered {
    Rendered::Teams {
        payload: json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive"}]}),
    }
}

fn sender(server: &Server) -> TeamsSender {
    let client = http::client().unwrap_or_else(|e| panic!("{e}"));
    let url = Url::parse(&server.url(PATH)).unwrap_or_else(|e| panic!("{e}"));
    TeamsSender::new(client, url).with_timeout(Duration::from_millis(300))
}

async fn send(replies: Vec<Reply>) -> (Result<Sent, SendError>, Server) {
    let server = Server::start(replies)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let result = sender(&server)
        .send(&job(ChannelKind::Teams, None), &message())
        .await;
    (result, server)
}

fn expect_err(result: Result<Sent, SendError>) -> SendError {
    match result {
        Err(e) => {
            assert_no_secrets(&e, &["teamsSigSECRET", "/workflows/abc", "127.0.0.1"]);
            e
        }
        Ok(sent) => panic!("expected an error, got {sent:?}"),
    }
}

#[tokio::test]
async fn the_card_is_posted_to_the_workflow_and_202_is_success() {
    let (result, server) = send(vec![Reply::status(202)]).await;
    assert_eq!(result, Ok(Sent::default()));
    let requests = server.requests();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, PATH);
    assert_eq!(requests[0].json()["type"], "message");
}

#[tokio::test]
async fn a_200_is_success_too() {
    let (result, _server) = send(vec![Reply::status(200)]).await;
    assert_eq!(result, Ok(Sent::default()));
}

#[tokio::test]
async fn a_429_is_retryable_with_its_retry_after() {
    let (result, _server) = send(vec![Reply::status(429).header("Retry-After", "5")]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.retry_after, Some(Duration::from_secs(5)));
}

#[tokio::test]
async fn a_500_is_retryable() {
    let (result, _server) = send(vec![Reply::status(502)]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.class, "http_502");
}

#[tokio::test]
async fn a_400_is_permanent_with_the_reason_and_without_the_signature() {
    let body = format!("Workflow trigger {PATH} rejected: InvalidRequestContent");
    let (result, _server) = send(vec![Reply::status(400).body(&body)]).await;
    let e = expect_err(result);
    assert!(!e.retryable);
    assert!(e.reason.contains("InvalidRequestContent"), "{}", e.reason);
}

#[tokio::test]
async fn a_workflow_that_never_answers_times_out_retryably() {
    let (result, _server) = send(vec![Reply::Hang]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.class, "timeout");
}

#[test]
fn debug_output_hides_the_workflow_url() {
    let client = http::client().unwrap_or_else(|e| panic!("{e}"));
    let url = Url::parse(&format!("https://prod.westeurope.logic.azure.com{PATH}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let shown = format!("{:?}", TeamsSender::new(client, url));
    assert!(!shown.contains("teamsSigSECRET"), "{shown}");
}
