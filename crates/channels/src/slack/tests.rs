use std::time::Duration;

use reqwest::Url;
use serde_json::json;
use tocsin_core::config::ChannelKind;
use tocsin_core::ports::{Notifier, SendError, Sent};
use tocsin_core::render::Rendered;

use super::SlackSender;
use crate::http;
use crate::testing::{Reply, Server, assert_no_secrets, job};

const HOOK_PATH: &str = "/services/T0001/B0001/hooksecretXYZ";
const TOKEN: &str = "xoxb-bot-token-secret";

fn message() -> Rendered {
    Rendered::Slack {
        payload: json!({"text": "disk full", "blocks": []}),
    }
}

fn url(text: &str) -> Url {
    Url::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn webhook(server: &Server) -> SlackSender {
    let client = http::client().unwrap_or_else(|e| panic!("{e}"));
    SlackSender::webhook(client, url(&server.url(HOOK_PATH)))
        .with_timeout(Duration::from_millis(300))
}

fn bot(server: &Server) -> SlackSender {
    let client = http::client().unwrap_or_else(|e| panic!("{e}"));
    SlackSender::bot(client, TOKEN.into(), url(&server.url("/api")))
        .with_timeout(Duration::from_millis(300))
}

async fn send_webhook(replies: Vec<Reply>) -> (Result<Sent, SendError>, Server) {
    let server = Server::start(replies)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let result = webhook(&server)
        .send(&job(ChannelKind::Slack, None), &message())
        .await;
    (result, server)
}

async fn send_bot(replies: Vec<Reply>) -> (Result<Sent, SendError>, Server) {
    let server = Server::start(replies)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let result = bot(&server)
        .send(&job(ChannelKind::Slack, Some("#ops")), &message())
        .await;
    (result, server)
}

fn expect_err(result: Result<Sent, SendError>) -> SendError {
    match result {
        Err(e) => {
            assert_no_secrets(&e, &[HOOK_PATH, "hooksecretXYZ", TOKEN, "127.0.0.1"]);
            e
        }
        Ok(sent) => panic!("expected an error, got {sent:?}"),
    }
}

#[tokio::test]
async fn a_webhook_post_carries_the_payload_and_succeeds_on_200() {
    let (result, server) = send_webhook(vec![Reply::status(200).body("ok")]).await;
    assert_eq!(result, Ok(Sent::default()));
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, HOOK_PATH);
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(
        requests[0].json(),
        json!({"text": "disk full", "blocks": []})
    );
}

#[tokio::test]
async fn a_webhook_429_is_retryable_with_its_retry_after() {
    let (result, _server) = send_webhook(vec![Reply::status(429).header("Retry-After", "3")]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    assert_eq!(e.class, "http_429");
}

#[tokio::test]
async fn a_webhook_500_is_retryable() {
    let (result, _server) = send_webhook(vec![Reply::status(500)]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.class, "http_500");
}

#[tokio::test]
async fn a_webhook_400_is_permanent_with_slacks_reason_and_no_secret() {
    let body = format!("invalid_payload for {HOOK_PATH}");
    let (result, _server) = send_webhook(vec![Reply::status(400).body(&body)]).await;
    let e = expect_err(result);
    assert!(!e.retryable);
    assert_eq!(e.class, "http_400");
    assert!(e.reason.contains("invalid_payload"), "{}", e.reason);
}

#[tokio::test]
async fn a_webhook_that_never_answers_times_out_retryably() {
    let (result, _server) = send_webhook(vec![Reply::Hang]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.class, "timeout");
}

#[tokio::test]
async fn a_refused_connection_is_retryable_and_does_not_name_the_url() {
    let server = Server::start(vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sender = webhook(&server);
    drop(server);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let e = expect_err(
        sender
            .send(&job(ChannelKind::Slack, None), &message())
            .await,
    );
    assert!(e.retryable);
    assert_eq!(e.class, "connect");
}

#[tokio::test]
async fn a_bot_posts_to_chat_post_message_with_its_token_and_the_jobs_channel() {
    let (result, server) =
        send_bot(vec![Reply::status(200).body(
            r#"{"ok":true,"channel":"C0OPS","ts":"1700000000.000100"}"#,
        )])
        .await;
    assert_eq!(
        result,
        Ok(Sent {
            provider_id: Some("C0OPS/1700000000.000100".into())
        })
    );
    let requests = server.requests();
    assert_eq!(requests[0].path, "/api/chat.postMessage");
    let auth = format!("Bearer {TOKEN}");
    assert_eq!(requests[0].header("authorization"), Some(auth.as_str()));
    assert_eq!(requests[0].json()["channel"], "#ops");
    assert_eq!(requests[0].json()["text"], "disk full");
}

#[tokio::test]
async fn a_bot_told_ratelimited_in_a_200_retries() {
    let (result, _server) = send_bot(vec![
        Reply::status(200)
            .header("Retry-After", "2")
            .body(r#"{"ok":false,"error":"ratelimited"}"#),
    ])
    .await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.class, "slack_ratelimited");
    assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn a_bot_told_any_other_error_in_a_200_gives_up() {
    let (result, _server) = send_bot(vec![
        Reply::status(200).body(r#"{"ok":false,"error":"channel_not_found"}"#),
    ])
    .await;
    let e = expect_err(result);
    assert!(!e.retryable);
    assert_eq!(e.class, "slack_channel_not_found");
    assert_eq!(e.reason, "slack api error: channel_not_found");
}

#[tokio::test]
async fn a_bot_error_that_echoes_the_token_does_not_repeat_it() {
    let body = format!(r#"{{"ok":false,"error":"invalid_auth {TOKEN}"}}"#);
    let (result, _server) = send_bot(vec![Reply::status(200).body(&body)]).await;
    let e = expect_err(result);
    assert!(!e.retryable);
    assert_eq!(e.class, "slack_invalid_auth");
    assert!(!format!("{e:?}").contains("bottokensecret"), "{e:?}");
}

#[tokio::test]
async fn a_bot_answered_with_http_429_uses_the_shared_classifier() {
    let (result, _server) = send_bot(vec![Reply::status(429).header("Retry-After", "4")]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.retry_after, Some(Duration::from_secs(4)));
}

#[tokio::test]
async fn a_bot_that_never_answers_times_out_retryably() {
    let (result, _server) = send_bot(vec![Reply::Hang]).await;
    let e = expect_err(result);
    assert!(e.retryable);
    assert_eq!(e.class, "timeout");
}

#[tokio::test]
async fn a_bot_answered_500_is_retryable_and_400_is_not() {
    let (result, _server) = send_bot(vec![Reply::status(500)]).await;
    assert!(expect_err(result).retryable);
    let (result, _server) = send_bot(vec![Reply::status(400).body("bad request")]).await;
    let e = expect_err(result);
    assert!(!e.retryable);
    assert!(e.reason.contains("bad request"));
}

#[tokio::test]
async fn identity_settings_fill_the_payload_without_overriding_it() {
    let server = Server::start(vec![Reply::status(200).body("ok")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sender =
        webhook(&server).with_identity(Some("tocsin".into()), Some(":rotating_light:".into()));
    let message = Rendered::Slack {
        payload: json!({"text": "t", "username": "from-template"}),
    };
    let result = sender.send(&job(ChannelKind::Slack, None), &message).await;
    assert!(result.is_ok());
    let body = server.requests()[0].json();
    assert_eq!(body["username"], "from-template");
    assert_eq!(body["icon_emoji"], ":rotating_light:");
}

#[tokio::test]
async fn another_channels_message_is_refused_permanently_without_sending() {
    let server = Server::start(vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let message = Rendered::Teams { payload: json!({}) };
    let e = expect_err(
        webhook(&server)
            .send(&job(ChannelKind::Slack, None), &message)
            .await,
    );
    assert!(!e.retryable);
    assert_eq!(e.class, "wrong_message");
    assert!(server.requests().is_empty());
}

#[test]
fn debug_output_hides_the_hook_url_and_the_token() {
    let client = http::client().unwrap_or_else(|e| panic!("{e}"));
    let a = SlackSender::webhook(
        client.clone(),
        url(&format!("https://hooks.slack.com{HOOK_PATH}")),
    );
    let b = SlackSender::bot(client, TOKEN.into(), url("https://slack.com/api"));
    let shown = format!("{a:?} {b:?}");
    assert!(
        !shown.contains("hooksecretXYZ") && !shown.contains(TOKEN),
        "{shown}"
    );
}

/// Sends a follow-up of `kind` through a bot whose server answers `replies`.
async fn send_follow_up(
    kind: tocsin_core::record::DeliveryKind,
    replies: Vec<Reply>,
) -> (Result<Sent, SendError>, Server) {
    let server = Server::start(replies).await.unwrap();
    let result = bot(&server).send(&follow_up(kind), &message()).await;
    (result, server)
}

/// A follow-up job of `kind` about a message the bot posted earlier.
fn follow_up(kind: tocsin_core::record::DeliveryKind) -> tocsin_core::record::DeliveryJob {
    let mut j = job(ChannelKind::Slack, Some("#ops"));
    j.kind = kind;
    j.thread = Some("C0OPS/1700000000.000100".into());
    j
}

#[tokio::test]
async fn a_bot_updates_its_first_message_in_place_when_the_alert_resolves() {
    use tocsin_core::record::DeliveryKind;
    let (result, server) = send_follow_up(
        DeliveryKind::Resolve,
        vec![Reply::status(200).body(r#"{"ok":true,"channel":"C0OPS","ts":"1700000000.000100"}"#)],
    )
    .await;
    assert_eq!(
        result,
        Ok(Sent {
            provider_id: Some("C0OPS/1700000000.000100".into())
        })
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "one edit, no new message");
    assert_eq!(requests[0].path, "/api/chat.update");
    let body = requests[0].json();
    assert_eq!(body["channel"], "C0OPS", "chat.update needs the channel id");
    assert_eq!(body["ts"], "1700000000.000100");
    assert_eq!(body["text"], "disk full");
}

#[tokio::test]
async fn a_message_slack_will_not_edit_gets_a_threaded_reply_instead() {
    use tocsin_core::record::DeliveryKind;
    let (result, server) = send_follow_up(
        DeliveryKind::Acknowledge,
        vec![
            Reply::status(200).body(r#"{"ok":false,"error":"message_not_found"}"#),
            Reply::status(200).body(r#"{"ok":true,"channel":"C0OPS","ts":"1700000050.000200"}"#),
        ],
    )
    .await;
    assert!(result.is_ok(), "{result:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/api/chat.update");
    assert_eq!(requests[1].path, "/api/chat.postMessage");
    let body = requests[1].json();
    assert_eq!(body["channel"], "C0OPS");
    assert_eq!(body["thread_ts"], "1700000000.000100");
    assert!(
        body.get("reply_broadcast").is_none(),
        "an ack stays in the thread"
    );
}

#[tokio::test]
async fn a_failed_edit_for_another_reason_is_the_sends_failure_not_a_reply() {
    use tocsin_core::record::DeliveryKind;
    let (result, server) = send_follow_up(
        DeliveryKind::Resolve,
        vec![Reply::status(200).body(r#"{"ok":false,"error":"ratelimited"}"#)],
    )
    .await;
    let e = expect_err(result);
    assert_eq!(e.class, "slack_ratelimited");
    assert!(e.retryable);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn an_escalation_about_a_posted_alert_replies_in_its_thread_and_broadcasts() {
    use tocsin_core::record::DeliveryKind;
    let (result, server) = send_follow_up(
        DeliveryKind::Escalation,
        vec![Reply::status(200).body(r#"{"ok":true,"channel":"C0OPS","ts":"1700000090.000300"}"#)],
    )
    .await;
    assert_eq!(
        result,
        Ok(Sent {
            provider_id: Some("C0OPS/1700000090.000300".into())
        })
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/api/chat.postMessage");
    let body = requests[0].json();
    assert_eq!(body["thread_ts"], "1700000000.000100");
    assert_eq!(body["reply_broadcast"], true);
}

#[tokio::test]
async fn a_webhook_cannot_thread_so_a_follow_up_is_a_new_message() {
    use tocsin_core::record::DeliveryKind;
    let server = Server::start(vec![Reply::status(200).body("ok")])
        .await
        .unwrap();
    let result = webhook(&server)
        .send(&follow_up(DeliveryKind::Resolve), &message())
        .await;
    assert!(result.is_ok());
    let requests = server.requests();
    assert_eq!(requests[0].path, HOOK_PATH);
    assert!(requests[0].json().get("thread_ts").is_none());
}
