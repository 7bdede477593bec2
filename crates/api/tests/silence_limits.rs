//! Silences with limits through the api: the config's `silences.max_duration` and `max_active`, and
//! no silence that matches everything, each refused with its one-line reason and the right status.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use tocsin_api::{Api, ApiSettings, Identity, Request, Response};
use tocsin_core::config::SilenceLimits;
use tocsin_core::status::Audience;
use tocsin_core::token::KeyRing;
use tocsin_local::{Embedded, LocalBus, MemoryStore, VirtualClock, VirtualScheduler};

type TestApi = Api<MemoryStore, LocalBus, VirtualScheduler, VirtualClock>;

fn start() -> DateTime<Utc> {
    "2026-11-20T02:10:00Z".parse().unwrap()
}

/// The api over the example config with `limits`.
fn api(limits: SilenceLimits) -> TestApi {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("infra/tocsin.yaml")).unwrap();
    let mut config = tocsin_core::config::load(&text).unwrap();
    config.noise.silences = limits;
    let config = Arc::new(config);
    let p = Embedded::new(config, start());
    Api::new(
        p.router.clone(),
        ApiSettings {
            link_keys: KeyRing::single("k1", vec![7; 32]).unwrap(),
            integration_keys: None,
            default_audience: Audience::Customer,
            title: "Example status".into(),
            metrics_namespace: "tocsin".into(),
            max_list: 1000,
        },
    )
}

async fn create(api: &TestApi, matchers: &[&str], hours: i64) -> Response {
    api.handle(&Request {
        method: "POST".into(),
        path: "/silences".into(),
        identity: Some(Identity::Local("alice".into())),
        body: json!({
            "matchers": matchers,
            "ends_at": start() + Duration::hours(hours),
            "comment": "maintenance",
        })
        .to_string()
        .into_bytes(),
        ..Default::default()
    })
    .await
}

fn error(r: &Response) -> (u16, String) {
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    (
        r.status,
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn a_silence_longer_than_the_configured_maximum_is_a_400_naming_the_setting() {
    let api = api(SilenceLimits {
        max_duration: std::time::Duration::from_secs(4 * 3600),
        ..SilenceLimits::default()
    });
    assert_eq!(create(&api, &["service = search"], 4).await.status, 201);
    assert_eq!(
        error(&create(&api, &["service = search"], 5).await),
        (
            400,
            "a silence lasts at most 4h (silences.max_duration; this one: 5h); make a new one when it ends"
                .into()
        )
    );
}

#[tokio::test]
async fn a_silence_of_everything_is_a_400() {
    let api = api(SilenceLimits::default());
    let (status, message) = error(&create(&api, &["alarm_name =~ \".+\""], 1).await);
    assert_eq!(status, 400);
    assert!(
        message.starts_with("a silence must match some alerts, not all"),
        "{message}"
    );
}

#[tokio::test]
async fn a_silence_past_max_active_is_a_409_until_one_is_expired() {
    let api = api(SilenceLimits {
        max_active: 2,
        ..SilenceLimits::default()
    });
    let first = create(&api, &["service = search"], 1).await;
    assert_eq!(first.status, 201);
    assert_eq!(create(&api, &["service = checkout"], 1).await.status, 201);
    assert_eq!(
        error(&create(&api, &["service = payments"], 1).await),
        (
            409,
            "2 silences are active or pending already (silences.max_active); expire one that is no longer needed first"
                .into()
        )
    );
    let v: Value = serde_json::from_slice(&first.body).unwrap();
    let id = v["silence"]["id"].as_str().unwrap();
    let expired = api
        .handle(&Request {
            method: "DELETE".into(),
            path: format!("/silences/{id}"),
            identity: Some(Identity::Local("bob".into())),
            ..Default::default()
        })
        .await;
    assert_eq!(expired.status, 200, "{}", expired.text());
    assert_eq!(create(&api, &["service = payments"], 1).await.status, 201);
}
