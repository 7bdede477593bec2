//! The api handler fed API Gateway HTTP API (payload 2.0) events from `events/api/`, parsed by
//! `lambda_http` exactly as the Lambda runtime parses them, against the embedded pipeline: the routes,
//! the authorizer rules, the one-click flow and every way a token can be wrong.
//!
//! Fixtures name the alert and token as `$ALERT_ID`, `$TOKEN` and `$ACTION`; the alert id depends on
//! the event that opened it and a token on the key and the clock, so the test fills them in.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use tocsin_api::{Api, ApiSettings, Response};
use tocsin_core::config::Config;
use tocsin_core::record::{Action, DeliveryKind, Status};
use tocsin_core::router::{Router, RouterSettings};
use tocsin_core::status::Audience;
use tocsin_core::token::{self, Claims, KeyRing};
use tocsin_local::{Embedded, LocalBus, MemoryStore, VirtualClock, VirtualScheduler};

const KEY: &[u8] = b"test-signing-key-0123456789abcdef-not-a-secret";

fn ring() -> KeyRing {
    KeyRing::single("k1", KEY.to_vec()).unwrap()
}

type TestApi = Api<MemoryStore, LocalBus, VirtualScheduler, VirtualClock>;

struct World {
    api: TestApi,
    pipeline: Embedded,
    /// The critical checkout alert (escalates after 15 minutes).
    checkout: String,
    /// The medium search alert.
    search: String,
    opened: DateTime<Utc>,
}

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config() -> Arc<Config> {
    let text = std::fs::read_to_string(root().join("infra/tocsin.yaml")).unwrap();
    Arc::new(tocsin_core::config::load(&text).unwrap())
}

async fn open(p: &Embedded, event: &str) -> String {
    let bytes = std::fs::read(root().join("events/scenario/incident").join(event)).unwrap();
    let alert = tocsin_core::source::parse(&bytes).unwrap().remove(0);
    let name = alert.alarm_name.clone();
    let entries = p.ingest(alert).await.unwrap();
    // Timers due before the event fire first; the open is the event's own entry.
    let opened = entries
        .iter()
        .find(|e| e.action == Action::Open && e.alarm_name == name);
    opened
        .unwrap_or_else(|| panic!("{entries:?}"))
        .alert
        .clone()
}

async fn world() -> World {
    let config = config();
    let start: DateTime<Utc> = "2026-11-20T02:10:00Z".parse().unwrap();
    let pipeline = Embedded::new(config.clone(), start);
    let checkout = open(&pipeline, "01-checkout-5xx-alarm.sns.json").await;
    let search = open(&pipeline, "04-search-latency-p99-alarm.eventbridge.json").await;
    pipeline
        .run_timers(Some("2026-11-20T02:17:00Z".parse().unwrap()))
        .await
        .unwrap();
    pipeline.clock.set("2026-11-20T02:18:00Z".parse().unwrap());
    pipeline.bus.take_deliveries();
    let api = Api::new(
        Router {
            config,
            store: pipeline.store.clone(),
            bus: pipeline.bus.clone(),
            scheduler: pipeline.scheduler.clone(),
            clock: pipeline.clock.clone(),
            settings: RouterSettings::default(),
        },
        ApiSettings {
            link_keys: ring(),
            integration_keys: None,
            default_audience: Audience::Customer,
            title: "Example status".into(),
            metrics_namespace: "tocsin".into(),
            max_list: 1000,
        },
    );
    World {
        api,
        pipeline,
        checkout,
        search,
        opened: start,
    }
}

fn fixture(name: &str, subs: &[(&str, &str)]) -> lambda_http::Request {
    let path = root().join(format!("events/api/{name}.json"));
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (k, v) in subs {
        text = text.replace(k, v);
    }
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

impl World {
    async fn call(&self, name: &str, subs: &[(&str, &str)]) -> Response {
        let req = fixture(name, subs);
        self.api
            .handle(&tocsin_api::handler::from_lambda(&req))
            .await
    }

    async fn call_on(&self, name: &str, alert: &str) -> Response {
        self.call(name, &[("$ALERT_ID", alert)]).await
    }

    fn token(&self, alert: &str, action: &str, expires_in: Duration) -> String {
        token::sign(
            &ring(),
            &Claims {
                alert_id: alert.into(),
                action: action.into(),
                recipient: "carol".into(),
                expires_at: self.pipeline.clock.now_for_tests() + expires_in,
            },
        )
    }

    async fn status_of(&self, alert: &str) -> Status {
        use tocsin_core::ports::AlertStore;
        self.pipeline
            .store
            .get_alert(alert)
            .await
            .unwrap()
            .unwrap()
            .status
    }

    async fn audit_len(&self, alert: &str) -> usize {
        use tocsin_core::ports::AlertStore;
        self.pipeline.store.audit(alert).await.unwrap().len()
    }
}

trait Now {
    fn now_for_tests(&self) -> DateTime<Utc>;
}

impl Now for VirtualClock {
    fn now_for_tests(&self) -> DateTime<Utc> {
        use tocsin_core::ports::Clock;
        self.now()
    }
}

fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let v = json(r);
    assert_eq!(v["error"]["status"], status);
    assert_eq!(v["error"]["code"], code);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(!msg.is_empty() && !msg.contains('\n'), "{msg:?}");
}

#[tokio::test]
async fn listing_filters_by_status_severity_and_service() {
    let w = world().await;
    let r = w.call("list-alerts", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = json(&r);
    assert_eq!(v["count"], 1);
    assert_eq!(v["alerts"][0]["id"], w.checkout.as_str());
    assert_eq!(v["alerts"][0]["status"], "open");
    let all = w
        .api
        .handle(&tocsin_api::Request {
            method: "GET".into(),
            path: "/alerts".into(),
            query: "status=open,acknowledged".into(),
            identity: Some(tocsin_api::Identity::Local("t".into())),
            ..Default::default()
        })
        .await;
    let ids: Vec<String> = json(&all)["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        vec![w.checkout.clone(), w.search.clone()],
        "most severe first"
    );
}

#[tokio::test]
async fn a_bad_filter_is_a_400_with_the_error_shape() {
    let w = world().await;
    let r = w.call("list-alerts-bad-filter", &[]).await;
    assert_error(&r, 400, "bad_request");
    assert!(
        json(&r)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("urgent")
    );
}

#[tokio::test]
async fn programmatic_routes_without_an_authorizer_are_401_and_change_nothing() {
    let w = world().await;
    assert_error(
        &w.call("list-alerts-no-authorizer", &[]).await,
        401,
        "unauthorized",
    );
    let before = w.audit_len(&w.checkout).await;
    // The fixture carries identity-looking headers a caller could forge; they count for nothing.
    let r = w.call_on("ack-no-authorizer", &w.checkout).await;
    assert_error(&r, 401, "unauthorized");
    assert_eq!(w.status_of(&w.checkout).await, Status::Open);
    assert_eq!(w.audit_len(&w.checkout).await, before);
    assert!(w.pipeline.bus.take_deliveries().is_empty());
    assert_error(
        &w.call("status-internal-no-authorizer", &[]).await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn one_alert_comes_with_its_timeline_and_a_missing_one_is_404() {
    let w = world().await;
    let r = w.call_on("get-alert", &w.checkout).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["alert"]["alert"]["alarm_name"], "checkout-api-5xx");
    let actions: Vec<&str> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.first(), Some(&"open"));
    assert!(actions.contains(&"notify"));
    assert_error(&w.call("get-alert-missing", &[]).await, 404, "not_found");
}

#[tokio::test]
async fn ack_through_the_api_stops_escalation_and_tells_the_others_who() {
    let w = world().await;
    let r = w.call_on("ack", &w.checkout).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["alert"]["status"], "acknowledged");
    assert_eq!(v["alert"]["acknowledged"][1], "alice@example.com");
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries[0]["reason"], "acknowledged by alice@example.com");
    assert!(
        entries.iter().any(|e| e["action"] == "escalation_end"
            && e["reason"].as_str().unwrap().contains("cancelled")),
        "{entries:?}"
    );
    // Everyone paged hears it on their own channel.
    let told: Vec<(String, String)> = w
        .pipeline
        .bus
        .take_deliveries()
        .into_iter()
        .filter(|j| j.kind == DeliveryKind::Acknowledge)
        .map(|j| (j.target.channel, j.target.target))
        .collect();
    assert!(
        told.contains(&("oncall-sms".into(), "carol".into())),
        "{told:?}"
    );
    assert!(
        told.contains(&("ops-slack".into(), "#ops-alerts".into())),
        "{told:?}"
    );
    // The EMF line for the ack: 8 minutes after opening.
    assert_eq!(r.emf.len(), 1);
    let emf: Value = serde_json::from_str(&r.emf[0]).unwrap();
    assert_eq!(emf["TimeToAcknowledge"], 480.0);
    assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "tocsin");
    // The level-2 page (due 15 minutes after opening) never comes.
    let later = w
        .pipeline
        .run_timers(Some(w.opened + Duration::minutes(25)))
        .await
        .unwrap();
    assert!(
        later.iter().all(|e| e.action != Action::Escalate),
        "{later:?}"
    );
    // A second ack is a conflict that names who was first.
    let again = w.call_on("ack", &w.checkout).await;
    assert_error(&again, 409, "conflict");
    assert!(again.text().contains("alice@example.com"));
}

#[tokio::test]
async fn resolve_by_an_iam_caller_records_its_arn() {
    let w = world().await;
    let r = w.call_on("resolve-iam", &w.checkout).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(w.status_of(&w.checkout).await, Status::Resolved);
    assert_eq!(
        json(&r)["entries"][0]["reason"],
        "resolved by arn:aws:sts::123456789012:assumed-role/oncall-bot/session-1"
    );
    let emf: Value = serde_json::from_str(&r.emf[0]).unwrap();
    assert_eq!(emf["TimeToResolve"], 480.0);
}

#[tokio::test]
async fn assign_and_notes_take_json_bodies_and_a_bad_body_is_400() {
    let w = world().await;
    let r = w.call_on("assign", &w.checkout).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["alert"]["assignee"], "bob");
    let r = w.call_on("notes-base64", &w.checkout).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        json(&r)["entries"][0]["reason"],
        "note by alice@example.com: rolled back <deploy> 4521 & watching"
    );
    let before = w.audit_len(&w.checkout).await;
    assert_error(
        &w.call_on("assign-bad-body", &w.checkout).await,
        400,
        "bad_request",
    );
    assert_eq!(w.audit_len(&w.checkout).await, before);
    assert_eq!(w.status_of(&w.checkout).await, Status::Open);
}

#[tokio::test]
async fn a_one_click_link_shows_a_confirm_page_on_get_and_acts_only_on_post() {
    let w = world().await;
    let t = w.token(&w.checkout, "ack", Duration::hours(24));
    let subs = [
        ("$TOKEN", t.as_str()),
        ("$ALERT_ID", &w.checkout),
        ("$ACTION", "ack"),
    ];
    let before = w.audit_len(&w.checkout).await;
    for _ in 0..2 {
        // Mail scanners and link previews GET the link, maybe twice: nothing happens.
        let page = w.call("one-click-confirm", &subs).await;
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
        let html = page.text();
        assert!(html.contains("<form method=\"post\">"), "{html}");
        assert!(html.contains("<button type=\"submit\" id=\"confirm\">Acknowledge alert</button>"));
        assert!(html.contains("checkout-api-5xx") && html.contains("<strong>carol</strong>"));
        assert!(!html.contains(&t), "the token is not repeated in the page");
    }
    assert_eq!(w.status_of(&w.checkout).await, Status::Open);
    assert_eq!(w.audit_len(&w.checkout).await, before);
    assert!(w.pipeline.bus.take_deliveries().is_empty());
    let done = w.call("one-click-perform", &subs).await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(done.text().contains("Alert acknowledged"));
    assert_eq!(w.status_of(&w.checkout).await, Status::Acknowledged);
    let jobs = w.pipeline.bus.take_deliveries();
    assert!(
        jobs.iter().all(|j| j.target.target != "carol"),
        "carol acted and is not told about her own ack"
    );
    assert!(jobs.iter().any(|j| j.kind == DeliveryKind::Acknowledge));
    // Used again: the alert is already acknowledged; the page says so and offers no button.
    let again = w.call("one-click-perform-json", &subs).await;
    assert_error(&again, 409, "conflict");
    let page = w.call("one-click-confirm", &subs).await.text();
    assert!(
        page.contains("Already acknowledged") && !page.contains("<form"),
        "{page}"
    );
    assert!(page.contains("acknowledged by <strong>carol</strong>"));
}

#[tokio::test]
async fn bad_tokens_get_401_or_403_and_change_nothing() {
    let w = world().await;
    let good = w.token(&w.checkout, "ack", Duration::hours(1));
    let expired = w.token(&w.checkout, "ack", Duration::seconds(-1));
    let foreign = token::sign(
        &KeyRing::single("k1", b"another-key-another-key-another-key!".to_vec()).unwrap(),
        &Claims {
            alert_id: w.checkout.clone(),
            action: "ack".into(),
            recipient: "carol".into(),
            expires_at: w.opened + Duration::hours(2),
        },
    );
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let assign = w.token(&w.checkout, "assign", Duration::hours(1));
    let search_token = w.token(&w.search, "ack", Duration::hours(1));
    // (what, token, form's alert, POST status, form's action, the GET confirm page's status: a valid
    // token shows its own alert's page; the form's mismatch only shows when it is posted).
    let cases: Vec<(&str, &str, &str, u16, &str, u16)> = vec![
        ("expired", &expired, &w.checkout, 401, "ack", 401),
        (
            "signed with another key",
            &foreign,
            &w.checkout,
            401,
            "ack",
            401,
        ),
        ("tampered", &tampered, &w.checkout, 401, "ack", 401),
        ("not a token", "garbage", &w.checkout, 401, "ack", 401),
        // A valid token for the search alert, posted with the checkout alert's form.
        ("cross-alert", &search_token, &w.checkout, 403, "ack", 200),
        // A valid ack token posted as a resolve.
        ("wrong action", &good, &w.checkout, 403, "resolve", 200),
        (
            "not a one-click action",
            &assign,
            &w.checkout,
            403,
            "assign",
            403,
        ),
    ];
    let before = (w.audit_len(&w.checkout).await, w.audit_len(&w.search).await);
    for (what, token, alert, status, action, confirm_status) in cases {
        let subs = [("$TOKEN", token), ("$ALERT_ID", alert), ("$ACTION", action)];
        let r = w.call("one-click-perform-json", &subs).await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert!(
            !r.text().contains(token) || token == "garbage",
            "{what}: token echoed"
        );
        let page = w.call("one-click-confirm", &subs).await;
        assert_eq!(
            page.status,
            confirm_status,
            "{what} (confirm page): {}",
            page.text()
        );
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        let html_post = w.call("one-click-perform", &subs).await;
        assert_eq!(html_post.status, status, "{what} (form post)");
    }
    assert_eq!(w.status_of(&w.checkout).await, Status::Open);
    assert_eq!(w.status_of(&w.search).await, Status::Open);
    assert_eq!(
        (w.audit_len(&w.checkout).await, w.audit_len(&w.search).await),
        before
    );
    assert!(w.pipeline.bus.take_deliveries().is_empty());
    let text = w
        .call(
            "one-click-perform-json",
            &[
                ("$TOKEN", &expired),
                ("$ALERT_ID", &w.checkout),
                ("$ACTION", "ack"),
            ],
        )
        .await
        .text();
    assert!(!text.contains(std::str::from_utf8(KEY).unwrap()));
}

#[tokio::test]
async fn the_status_page_shows_customers_impact_and_the_team_everything() {
    let w = world().await;
    let page = w.call("status-page", &[]).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("<title>Example status: Major outage</title>"),
        "{html}"
    );
    assert!(html.contains("checkout</span> <span class=\"badge major_outage\">"));
    assert!(
        !html.contains("checkout-api-5xx"),
        "customers do not see alarm names"
    );
    let customer = w.call("status-json-customer", &[]).await;
    let c = json(&customer);
    assert_eq!(c["overall"], "major_outage");
    assert_eq!(c["components"][1]["status"], "degraded_performance");
    assert!(!customer.text().contains("123456789012"));
    let internal = w.call("status-json-internal", &[]).await;
    assert_eq!(internal.status, 200, "{}", internal.text());
    let i = json(&internal);
    assert_eq!(
        i["incidents"][0]["detail"]["alarm_name"],
        "checkout-api-5xx"
    );
    assert_eq!(i["incidents"][0]["detail"]["account_id"], "123456789012");
}

#[tokio::test]
async fn a_public_aws_health_issue_shows_on_the_components_that_run_on_that_service() {
    let w = world().await;
    let bytes = std::fs::read(root().join("events/health/public-issue-open.json")).unwrap();
    let alert = tocsin_core::source::parse(&bytes).unwrap().remove(0);
    w.pipeline.clock.set(alert.state_changed_at);
    w.pipeline.ingest(alert).await.unwrap();
    let before = json(&w.call("status-json-customer", &[]).await);
    let search = &before["components"][1];
    assert_eq!(search["name"], "search");
    assert_eq!(search["status"], "partial_outage", "{before}");
    assert_eq!(search["aws_events"][0], "AWS LAMBDA issue in eu-west-1");
    assert_eq!(
        before["components"][0]["aws_events"][0],
        "AWS LAMBDA issue in eu-west-1"
    );
    let titles: Vec<&str> = before["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["title"].as_str())
        .collect();
    assert!(
        titles.contains(&"checkout, search: partial outage (AWS LAMBDA issue in eu-west-1)"),
        "{titles:?}"
    );
    let html = w.call("status-page", &[]).await;
    assert!(
        html.text().contains("AWS LAMBDA issue in eu-west-1"),
        "{}",
        html.text()
    );
}

#[tokio::test]
async fn metrics_count_alerts_and_log_emf_lines() {
    let w = world().await;
    w.call_on("ack", &w.checkout).await;
    let r = w.call("metrics", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = json(&r);
    assert_eq!(m["alerts"], 2);
    assert_eq!(m["by_status"]["acknowledged"], 1);
    assert_eq!(m["groups"][0]["service"], "checkout");
    assert_eq!(m["groups"][0]["mtta_seconds"], 480.0);
    assert_eq!(r.emf.len(), 2, "one EMF line per service and severity");
}

#[tokio::test]
async fn a_silence_is_made_by_the_authorizers_actor_listed_and_expired() {
    let w = world().await;
    let made = w.call("silences-create", &[]).await;
    assert_eq!(made.status, 201, "{}", made.text());
    let silence = json(&made)["silence"].clone();
    let id = silence["id"].as_str().unwrap().to_string();
    assert_eq!(silence["matchers"][0], "service = checkout");
    assert!(
        !silence["created_by"].as_str().unwrap().is_empty(),
        "the creator is the authorizer's actor"
    );
    assert!(!made.recorded.is_empty(), "its creation is on record");

    let get = [
        ("\"method\": \"POST\"", "\"method\": \"GET\""),
        ("POST /silences", "GET /silences"),
    ];
    let listed = w.call("silences-create", &get).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(json(&listed)["silences"][0]["id"], id.as_str());

    let path = format!("/silences/{id}");
    let delete = [
        ("\"method\": \"POST\"", "\"method\": \"DELETE\""),
        ("POST /silences", "DELETE /silences/{id}"),
        ("\"/silences\"", &format!("\"{path}\"")),
    ];
    let expired = w.call("silences-create", &delete).await;
    assert_eq!(expired.status, 200, "{}", expired.text());
    assert!(json(&expired)["silence"]["expired_at"].is_string());
    let after = w.call("silences-create", &get).await;
    assert_eq!(
        json(&after)["silences"],
        serde_json::json!([]),
        "an expired silence is not active"
    );
}

#[tokio::test]
async fn a_silence_with_a_bad_matcher_or_ending_in_the_past_is_a_400() {
    let w = world().await;
    let bad = w
        .call(
            "silences-create",
            &[("service = checkout", "service ~ checkout")],
        )
        .await;
    assert_error(&bad, 400, "bad_request");
    let past = w
        .call(
            "silences-create",
            &[("2026-11-20T04:00:00Z", "2020-01-01T00:00:00Z")],
        )
        .await;
    assert_error(&past, 400, "bad_request");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let w = world().await;
    assert_error(&w.call("unknown-route", &[]).await, 404, "not_found");
    assert_error(
        &w.call_on("wrong-method", &w.checkout).await,
        405,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn the_lambda_response_keeps_status_headers_and_body() {
    let w = world().await;
    let r = w.call("get-alert-missing", &[]).await;
    let resp = tocsin_api::handler::to_lambda(r);
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let lambda_http::Body::Text(t) = resp.body() else {
        panic!("a text body");
    };
    assert!(t.contains("\"not_found\""));
}

#[test]
fn settings_take_the_keys_and_never_show_them() {
    let key = "k".repeat(40);
    let get = |n: &str| (n == "STATUS_AUDIENCE").then(|| "internal".to_string());
    let links = KeyRing::single("k1", key.clone().into_bytes()).unwrap();
    let s = ApiSettings::from_env(get, links.clone(), Some(links)).unwrap();
    assert_eq!(s.default_audience, Audience::Internal);
    assert!(!format!("{s:?}").contains(&key));
    let bad = ApiSettings::from_env(|_| Some("everyone".into()), ring(), None);
    assert_eq!(
        bad.unwrap_err().to_string(),
        "environment variable STATUS_AUDIENCE: expected customer or internal"
    );
    // The 32-byte minimum holds for every key of a ring.
    assert!(KeyRing::single("k1", b"short".to_vec()).is_err());
}

#[tokio::test]
async fn the_internal_status_route_needs_the_authorizer_and_shows_the_internal_view() {
    let w = world().await;
    assert_error(
        &w.call("status-internal-route-no-authorizer", &[]).await,
        401,
        "unauthorized",
    );
    let r = w.call("status-internal-route", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let customer = w.call("status-json-customer", &[]).await;
    assert_eq!(json(&r)["audience"], "internal", "{}", r.text());
    assert_ne!(json(&customer)["audience"], "internal");
}

#[tokio::test]
async fn a_webhook_routes_its_alerts_with_a_valid_integration_key_only() {
    let mut w = world().await;
    let key = "integration-key-0123456789abcdef-0123456789";
    w.api.settings.integration_keys = Some(
        KeyRing::new(
            "k2",
            [
                (
                    "k1".to_string(),
                    b"an-older-key-0123456789abcdef-012345".to_vec(),
                ),
                ("k2".to_string(), key.as_bytes().to_vec()),
            ],
        )
        .unwrap(),
    );
    for wrong in [
        "",
        "not-the-key",
        "integration-key-0123456789abcdef-012345678",
    ] {
        let r = w.call("webhook-alertmanager", &[("$KEY", wrong)]).await;
        assert_error(&r, 401, "unauthorized");
        assert!(r.recorded.is_empty());
    }
    let r = w.call("webhook-alertmanager", &[("$KEY", key)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert!(!v["alerts"].as_array().unwrap().is_empty(), "{v}");
    assert!(
        r.recorded.iter().any(|e| e.action == Action::Open),
        "{:?}",
        r.recorded
    );
}

#[tokio::test]
async fn the_serve_only_events_route_does_not_exist_for_an_aws_caller() {
    let w = world().await;
    let r = w
        .api
        .handle(&tocsin_api::Request {
            method: "POST".into(),
            path: "/events".into(),
            body: std::fs::read(root().join("events/alertmanager/firing.json")).unwrap(),
            identity: Some(tocsin_api::Identity::Iam {
                user_arn: Some("arn:aws:iam::123456789012:user/a".into()),
                caller_id: None,
            }),
            ..Default::default()
        })
        .await;
    assert_error(&r, 404, "not_found");
}

#[tokio::test]
async fn deleting_a_silence_by_its_id_is_the_route_and_the_bare_path_is_not() {
    let w = world().await;
    let req = |method: &str, path: &str| tocsin_api::Request {
        method: method.into(),
        path: path.into(),
        identity: Some(tocsin_api::Identity::Local("t".into())),
        ..Default::default()
    };
    assert_error(
        &w.api.handle(&req("DELETE", "/silences")).await,
        405,
        "method_not_allowed",
    );
    // The route exists: an unknown id is the store's 404, not the router's.
    let r = w.api.handle(&req("DELETE", "/silences/nope")).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_ne!(json(&r)["error"]["message"], "no such route");
}

#[tokio::test]
async fn a_thousand_status_requests_build_the_page_once_per_audience_and_thirty_seconds() {
    let w = world().await;
    let first = w.call("status-json-customer", &[]).await;
    assert_eq!(first.status, 200, "{}", first.text());
    for _ in 0..999 {
        let r = w.call("status-json-customer", &[]).await;
        assert_eq!(r.body, first.body);
    }
    assert_eq!(
        w.api.status_cache.builds(),
        1,
        "one build: 3 queries and the audits of its incidents"
    );
    // The internal view is another audience: its own build.
    for _ in 0..10 {
        assert_eq!(w.call("status-internal-route", &[]).await.status, 200);
    }
    assert_eq!(w.api.status_cache.builds(), 2);
    // The store changes (the checkout alert is acknowledged): the cached page stands until it is
    // 30 s old, then one request rebuilds it.
    let ack = w.call_on("ack", &w.checkout).await;
    assert_eq!(ack.status, 200, "{}", ack.text());
    assert_eq!(w.call("status-json-customer", &[]).await.body, first.body);
    w.pipeline
        .clock
        .set(w.pipeline.clock.now_for_tests() + Duration::seconds(30));
    let later = w.call("status-json-customer", &[]).await;
    assert_ne!(later.body, first.body, "rebuilt after 30 s");
    assert_eq!(w.api.status_cache.builds(), 3);
}
