//! The factory from config, and the retry layer driving a real channel.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use tocsin_core::config::{Channel, ChannelKind, Setting};
use tocsin_core::render::Rendered;
use tocsin_core::retry::{AttemptOutcome, RetryPolicy, Sleeper, Stop, send_with_retries};

use crate::testing::{Reply, Server, job};
use crate::{AnyHttpChannel, BuildError, BuildOptions, SecretError, build, build_with};

fn channel(kind: ChannelKind, settings: &[(&str, Setting)]) -> Channel {
    Channel {
        name: "ch".into(),
        kind,
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        default_to: Vec::new(),
        fallback: None,
    }
}

fn env(name: &str) -> Setting {
    Setting::Env(name.into())
}

/// Resolves `{env: NAME}` from `values`; anything else is unset.
fn resolver(values: &[(&str, &str)]) -> impl Fn(&Setting) -> Result<String, SecretError> {
    let values: BTreeMap<String, String> = values
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |setting| match setting {
        Setting::Literal(v) => Ok(v.clone()),
        Setting::Env(name) | Setting::Secret(name) => {
            values
                .get(name)
                .cloned()
                .ok_or_else(|| SecretError::NotSet {
                    reference: name.clone(),
                })
        }
    }
}

fn build_err(channel: &Channel, values: &[(&str, &str)]) -> String {
    match build(channel, &resolver(values)) {
        Err(e) => e.to_string(),
        Ok(c) => panic!("expected a build error, got {c:?}"),
    }
}

#[test]
fn every_http_kind_builds_from_valid_settings() {
    let values = [
        ("HOOK", "https://hooks.slack.com/services/T/B/x"),
        ("TOKEN", "xoxb-1"),
        ("TEAMS", "https://prod.logic.azure.com/workflows/1?sig=s"),
        ("KEY", "routing-key"),
        ("URL", "https://example.com/hook"),
        ("SIGN", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ];
    let resolve = resolver(&values);
    let cases = [
        channel(ChannelKind::Slack, &[("webhook_url", env("HOOK"))]),
        channel(ChannelKind::Slack, &[("bot_token", env("TOKEN"))]),
        channel(ChannelKind::Teams, &[("webhook_url", env("TEAMS"))]),
        channel(ChannelKind::Pagerduty, &[("routing_key", env("KEY"))]),
        channel(
            ChannelKind::Webhook,
            &[("url", env("URL")), ("signing_key", env("SIGN"))],
        ),
    ];
    for c in cases {
        match build(&c, &resolve) {
            Ok(built) => assert_eq!(built.kind(), c.kind),
            Err(e) => panic!("{:?}: {e}", c.kind),
        }
    }
}

#[test]
fn a_plain_http_url_to_another_host_fails_at_build_without_repeating_it() {
    let c = channel(ChannelKind::Teams, &[("webhook_url", env("TEAMS"))]);
    let err = build_err(
        &c,
        &[(
            "TEAMS",
            "http://prod.logic.azure.com/workflows/1?sig=s3cr3t",
        )],
    );
    assert_eq!(
        err,
        "channel `ch`: setting `webhook_url` must be https (http only to 127.0.0.1 or localhost)"
    );
}

#[test]
fn a_value_that_is_not_a_url_fails_at_build() {
    let c = channel(
        ChannelKind::Webhook,
        &[("url", env("URL")), ("signing_key", env("SIGN"))],
    );
    let err = build_err(&c, &[("URL", "hooks.example.com/x"), ("SIGN", "k")]);
    assert_eq!(err, "channel `ch`: setting `url` is not a URL");
}

#[test]
fn a_missing_empty_or_unresolvable_setting_fails_at_build() {
    let c = channel(ChannelKind::Pagerduty, &[]);
    assert_eq!(
        build_err(&c, &[]),
        "channel `ch`: missing setting `routing_key`"
    );
    let c = channel(ChannelKind::Pagerduty, &[("routing_key", env("KEY"))]);
    assert_eq!(
        build_err(&c, &[("KEY", " \n")]),
        "channel `ch`: setting `routing_key` is empty"
    );
    assert_eq!(
        build_err(&c, &[]),
        "channel `ch`: setting `routing_key`: `KEY` is not set"
    );
}

#[test]
fn a_signing_key_that_claims_base64_but_is_not_fails_at_build() {
    let c = channel(
        ChannelKind::Webhook,
        &[("url", env("URL")), ("signing_key", env("SIGN"))],
    );
    let err = build_err(
        &c,
        &[
            ("URL", "https://example.com/h"),
            ("SIGN", "whsec_%%%secret"),
        ],
    );
    assert_eq!(
        err,
        "channel `ch`: setting `signing_key` starts with `whsec_` but the rest is not base64"
    );
}

#[test]
fn slack_takes_a_webhook_url_or_a_bot_token_but_not_both() {
    let c = channel(
        ChannelKind::Slack,
        &[("webhook_url", env("HOOK")), ("bot_token", env("TOKEN"))],
    );
    let err = build_err(
        &c,
        &[("HOOK", "https://hooks.slack.com/x"), ("TOKEN", "xoxb")],
    );
    assert_eq!(
        err,
        "channel `ch`: give `webhook_url` or `bot_token`, not both"
    );
}

#[test]
fn email_and_sms_are_not_http_channels() {
    let c = channel(ChannelKind::Email, &[]);
    assert!(matches!(
        build(&c, &resolver(&[])),
        Err(BuildError::NotHttp { .. })
    ));
}

#[tokio::test]
async fn a_built_pagerduty_channel_sends_to_the_configured_endpoint() {
    let server = Server::start(vec![Reply::status(202).body(r#"{"dedup_key":"d-1"}"#)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let options = BuildOptions {
        pagerduty_endpoint: server.url("/v2/enqueue"),
        ..BuildOptions::default()
    };
    let c = channel(ChannelKind::Pagerduty, &[("routing_key", env("KEY"))]);
    let built =
        build_with(&c, &resolver(&[("KEY", "rk-1")]), &options).unwrap_or_else(|e| panic!("{e}"));
    let message = Rendered::Pagerduty {
        payload: json!({"event_action": "trigger"}),
    };
    let sent =
        tocsin_core::ports::Notifier::send(&built, &job(ChannelKind::Pagerduty, None), &message)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent.provider_id.as_deref(), Some("d-1"));
    assert_eq!(server.requests()[0].json()["routing_key"], "rk-1");
}

/// Records the waits asked for, without waiting.
#[derive(Default)]
struct Recorder(Mutex<Vec<Duration>>);

impl Sleeper for Recorder {
    async fn sleep(&self, d: Duration) {
        if let Ok(mut v) = self.0.lock() {
            v.push(d);
        }
    }
}

#[tokio::test]
async fn a_webhook_through_500_then_429_is_delivered_on_the_third_try_after_the_asked_wait() {
    let server = Server::start(vec![
        Reply::status(500),
        Reply::status(429).header("Retry-After", "1"),
        Reply::status(200),
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let c = channel(
        ChannelKind::Webhook,
        &[("url", env("URL")), ("signing_key", env("SIGN"))],
    );
    let url = server.url("/hook");
    let values = [
        ("URL", url.as_str()),
        ("SIGN", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ];
    let built: AnyHttpChannel = build(&c, &resolver(&values)).unwrap_or_else(|e| panic!("{e}"));
    let policy = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        jitter: true,
        margin: Duration::from_secs(6),
    };
    let sleeper = Recorder::default();
    let message = Rendered::Webhook {
        body: json!({"alert": "al-1"}),
    };
    let outcome = send_with_retries(
        &built,
        &job(ChannelKind::Webhook, None),
        &message,
        &policy,
        Duration::from_secs(30),
        &sleeper,
        42,
    )
    .await;

    assert_eq!(outcome.stop, Stop::Sent);
    assert!(outcome.result.is_ok());
    let tries: Vec<_> = outcome
        .attempts
        .iter()
        .map(|a| (a.try_number, a.outcome, a.error_class.as_deref()))
        .collect();
    assert_eq!(
        tries,
        vec![
            (1, AttemptOutcome::Retryable, Some("http_500")),
            (2, AttemptOutcome::Retryable, Some("http_429")),
            (3, AttemptOutcome::Sent, None),
        ]
    );
    let slept = sleeper.0.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(slept.len(), 2, "{slept:?}");
    assert!(
        slept[0] <= Duration::from_millis(200),
        "jittered first backoff: {slept:?}"
    );
    assert!(
        slept[1] >= Duration::from_secs(1),
        "Retry-After honoured: {slept:?}"
    );
    assert!(slept[1] <= Duration::from_secs(1).max(Duration::from_millis(400)));
    assert_eq!(outcome.waits(), slept);

    // Every try carries the same delivery id, so the receiver can drop a duplicate.
    let ids: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").map(str::to_string))
        .collect();
    assert_eq!(ids, vec![Some("dl-7f3a".to_string()); 3]);
}
