//! `tocsin serve` as a user runs it: events POSTed to `/events` route at once, the one-click links
//! are printed, escalation timers fire on the real clock, and bad events are a 400 with a reason.

mod support;

use support::{Serve, config_with_delay, root};

#[test]
fn serve_routes_posted_events_prints_links_and_escalates_on_time() {
    let config = config_with_delay("2s", "escalates");
    let mut s = Serve::start(&["--config", config.to_str().unwrap()]);
    let event =
        std::fs::read(root().join("events/scenario/incident/01-checkout-5xx-alarm.sns.json"))
            .unwrap();
    let opened_at = std::time::Instant::now();
    let (status, body) = s.http("POST", "/events", "application/json", &event);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["alerts"][0].as_str().unwrap().to_string();
    let link = s.wait_for(|l| l.starts_with("link: ack http://127.0.0.1:"), 10);
    assert!(link.contains("/a/"), "{link}");
    s.wait_for(|l| l.starts_with("link: resolve "), 10);
    // Level 2 (dana and PagerDuty) 2 s after opening, on the wall clock.
    let escalated = s.wait_for(|l| l.contains("escalate L2"), 15);
    assert!(
        escalated.contains("oncall-sms → dana") || escalated.contains("pagerduty"),
        "{escalated}"
    );
    assert!(
        opened_at.elapsed() >= std::time::Duration::from_millis(1500),
        "not before its time"
    );
    let alert = s.get_json(&format!("/alerts/{id}"));
    assert_eq!(alert["alert"]["escalation_step"], 2);
    assert!(
        alert["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "escalate" && e["target"] == "dana")
    );
    // The same event again: deduplicated, nothing new paged.
    let (status, _) = s.http("POST", "/events", "application/json", &event);
    assert_eq!(status, 200);
    s.wait_for(
        |l| l.contains(" dedup ") && l.contains("already processed"),
        10,
    );
    let _ = std::fs::remove_file(config);
}

#[test]
fn a_bad_event_is_a_400_with_one_line_and_the_local_actor_acts() {
    let mut s = Serve::start(&["--actor", "tester"]);
    let (status, body) = s.http(
        "POST",
        "/events",
        "application/json",
        b"{\"not\": \"an event\"}",
    );
    assert_eq!(status, 400, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "bad_request");
    assert!(!v["error"]["message"].as_str().unwrap().contains('\n'));
    let event = std::fs::read(root().join("events/sns/metric-alarm.json")).unwrap();
    let (status, body) = s.http("POST", "/events", "application/json", &event);
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["alerts"][0]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = s.http(
        "POST",
        &format!("/alerts/{id}/notes"),
        "application/json",
        br#"{"text": "looking"}"#,
    );
    assert_eq!(status, 200, "{body}");
    s.wait_for(|l| l.contains("note by tester: looking"), 10);
    let (status, body) = s.http("GET", "/silences", "text/plain", b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["silences"],
        serde_json::json!([]),
        "the local actor lists silences: none yet"
    );
}
