//! End to end: the real function binaries (target/debug) under `cargo lambda watch --only-lambda-apis`,
//! AWS on moto (`scripts/with-moto.sh`), Slack and the signed webhook on local capture servers, routed by
//! tests/e2e_support/tocsin.yaml. The test plays the services between the functions: SNS and EventBridge (it
//! invokes ingest with fixtures of events/, reads what ingest published on the alerts topic from a
//! subscribed queue and invokes router with it, reads the deliveries topic through one queue per channel
//! filtered like the template's subscription and invokes that channel's deliver function) and Scheduler
//! (it invokes the target of each schedule with its input).
//!
//! alarm → router pages on-call (SMS, email) and Slack → the same transition through EventBridge is
//! deduplicated → escalation tick pages level 2 (dana by SMS, the
//! audit webhook) → ack through the api (one-click link from the SMS) → everyone paged is told → OK →
//! resolved. Asserts on the DynamoDB items, moto's sent SMS and email, the captured HTTP calls, and every
//! function's logs: JSON lines with the request id and the alert id, and no secret anywhere.
//!
//! Without AWS_ENDPOINT_URL, cargo-lambda or the binaries it says it was skipped, unless
//! TOCSIN_REQUIRE_AWS=1 (as `make test` sets), where it fails.

#![allow(clippy::unwrap_used)]

#[path = "e2e_support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::capture::{Reply, Server};
use support::{Aws, Lambda, api_fixture, fixture, missing, sns_event};

const CHANNELS: [&str; 4] = ["oncall-sms", "oncall-email", "ops-slack", "audit-hook"];
const ALICE: &str = "+447700900001";
const DANA: &str = "+447700900004";

fn deliver_fn(channel: &str) -> String {
    format!("deliver-{channel}")
}

/// Delivers every pending job of every channel the way the subscriptions would, returning how many
/// jobs each channel had.
async fn deliver_all(aws: &Aws, lambda: &mut Lambda, step: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for ch in CHANNELS {
        let jobs = aws.jobs(ch).await;
        counts.insert(ch.to_string(), jobs.len());
        if jobs.is_empty() {
            continue;
        }
        for j in &jobs {
            assert_eq!(
                j.attributes.get("channel").map(String::as_str),
                Some(ch),
                "e2e: {step}: a job on {ch}'s queue names another channel: {j:?}"
            );
            assert!(
                j.attributes.contains_key("channel_kind"),
                "e2e: {step}: a job without channel_kind: {j:?}"
            );
        }
        // One SNS delivery a message, as SNS invokes a subscribed function.
        for j in &jobs {
            let out = lambda
                .invoke(
                    &format!("{step}: deliver {ch}"),
                    &deliver_fn(ch),
                    &sns_event(&aws.deliveries_topic, std::slice::from_ref(j)),
                )
                .await;
            assert_eq!(out["delivered"], 1, "e2e: {step}: deliver {ch}: {out}");
        }
    }
    counts
}

/// Fires every schedule not fired yet whose target is one of `functions` (by the ARN's last segment), as
/// Scheduler would when it is due; returns how many.
async fn fire_schedules(
    aws: &mut Aws,
    lambda: &mut Lambda,
    step: &str,
    functions: &[&str],
) -> usize {
    let mut fired = 0;
    for (name, arn, input) in aws.due_schedules().await {
        let function = arn.rsplit(':').next().unwrap_or_default().to_string();
        if !functions.contains(&function.as_str()) {
            continue;
        }
        // A throttle's flush fires when due (a few seconds: tests/e2e_support/tocsin.yaml); escalation ticks
        // fire at once, as if their delay had passed (the handler pages by step, not by the clock).
        if let Some(due) = input["flush"]["due"].as_str() {
            let due = chrono::DateTime::parse_from_rfc3339(due)
                .unwrap_or_else(|e| panic!("e2e: {step}: flush due {due:?}: {e}"));
            let wait = (due.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default();
            assert!(
                wait < std::time::Duration::from_secs(15),
                "e2e: {step}: schedule {name} is due in {wait:?}"
            );
            tokio::time::sleep(wait + std::time::Duration::from_millis(200)).await;
        }
        aws.fired(&name, &input);
        lambda
            .invoke(&format!("{step}: schedule {name}"), &function, &input)
            .await;
        fired += 1;
    }
    fired
}

/// The SMS moto recorded to `phone`, in order.
fn sms_to(data: &Value, phone: &str) -> Vec<String> {
    tocsin_aws::emulator::recorded(data, "sns", "SMS", "phone_number", phone)
        .iter()
        .map(|m| m["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The emails moto recorded to `address` (as JSON text: subject, bodies, destinations).
fn emails_to(data: &Value, address: &str) -> Vec<String> {
    data["ses"]["Message"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|m| {
                    m["destinations"]["ToAddresses"]
                        .to_string()
                        .contains(address)
                })
                .map(Value::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The one-click token in a message: the path segment after `/a/`.
fn token_in(text: &str) -> Option<String> {
    let at = text.find("/a/")?;
    let rest = &text[at + 3..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    (end > 0).then(|| rest[..end].to_string())
}

fn actions(audit: &[BTreeMap<String, String>]) -> Vec<String> {
    // An item holds one entry, or the entries of one append (a JSON array).
    audit
        .iter()
        .flat_map(|a| {
            let body: Value = a
                .get("body")
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            match body {
                Value::Array(many) => many,
                one => vec![one],
            }
        })
        .map(|e| e["action"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_pages_escalates_is_acked_and_resolves_through_the_deployed_functions() {
    let Some(endpoint) = tocsin_aws::emulator::endpoint("e2e") else {
        return;
    };
    let cargo_lambda = support::cargo_lambda();
    if !cargo_lambda.is_file() {
        return missing(&format!(
            "cargo-lambda is not at {} (make test installs it: scripts/venv-install.sh; or set CARGO_LAMBDA)",
            cargo_lambda.display()
        ));
    }
    let bins = support::bin_dir();
    for b in ["ingest", "router", "escalate", "deliver", "api"] {
        if !bins.join(b).is_file() {
            return missing(&format!(
                "{} is missing (cargo build --workspace --bins --tests)",
                bins.join(b).display()
            ));
        }
    }
    let started = std::time::Instant::now();

    // Secrets the functions are given; none may reach a log.
    let run = tocsin_aws::emulator::unique_name("e2e");
    let link_key = format!("e2e-link-signing-key-{}", &run[run.len() - 12..]);
    let hook_key = format!("e2e-hook-signing-key-{}", &run[run.len() - 12..]);
    let slack_secret = format!("XOXE2ESLACKPATHSECRET{}", &run[run.len() - 9..]);

    let slack = Server::start(vec![Reply::status(200).body("ok")])
        .await
        .unwrap();
    let hook = Server::start(vec![Reply::status(200)]).await.unwrap();
    let slack_url = slack.url(&format!("/services/T0E2E/B0E2E/{slack_secret}"));
    let hook_url = hook.url("/tocsin/audit");

    let mut aws = Aws::create(&endpoint, &CHANNELS).await;
    // The secrets, in Secrets Manager as the template makes them; the environment names their ARNs.
    let link_keys = aws
        .secret(
            "links",
            &json!({"current": "k1", "k1": link_key}).to_string(),
        )
        .await;
    let integration_keys = aws
        .secret(
            "integrations",
            &json!({"current": "k1", "k1": format!("{link_key}-i")}).to_string(),
        )
        .await;
    let hook_secret = aws
        .secret(
            "audit-hook",
            &json!({"hook-signing-key": hook_key}).to_string(),
        )
        .await;
    let dir = std::env::temp_dir().join(&run);
    std::fs::create_dir_all(&dir).unwrap();
    let config = support::root().join("tests/e2e_support/tocsin.yaml");

    let mut names = vec!["ingest", "router", "escalate", "api"];
    let deliver_names: Vec<String> = CHANNELS.iter().map(|c| deliver_fn(c)).collect();
    names.extend(deliver_names.iter().map(String::as_str));
    let mut lambda = Lambda::start(&cargo_lambda, &names, &dir).await;

    // Each function with the environment infra/template.yaml gives it.
    let cfg = ("TOCSIN_CONFIG", config.display().to_string());
    let table = ("TABLE_NAME", aws.table.clone());
    let deliveries = ("DELIVERIES_TOPIC_ARN", aws.deliveries_topic.clone());
    let sched = [
        ("SCHEDULE_GROUP", aws.group.clone()),
        ("ESCALATE_FUNCTION_ARN", support::function_arn("escalate")),
        (
            "SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/tocsin-scheduler".to_string(),
        ),
    ];
    // ingest holds Health pages in the table and schedules their sweep (targeting itself).
    lambda.function(
        "ingest",
        &bins.join("ingest"),
        &[
            cfg.clone(),
            ("ALERTS_TOPIC_ARN", aws.alerts_topic.clone()),
            table.clone(),
            sched[0].clone(),
            sched[2].clone(),
        ],
    );
    for f in ["router", "escalate"] {
        let mut env = vec![cfg.clone(), table.clone(), deliveries.clone()];
        env.extend(sched.iter().cloned());
        lambda.function(f, &bins.join(f), &env);
    }
    let mut api_env = vec![
        cfg.clone(),
        table.clone(),
        deliveries.clone(),
        ("LINK_KEYS_SECRET_ARN", link_keys.clone()),
        ("INTEGRATION_KEYS_SECRET_ARN", integration_keys.clone()),
    ];
    api_env.extend(sched.iter().cloned());
    lambda.function("api", &bins.join("api"), &api_env);
    for ch in CHANNELS {
        let mut env = vec![
            cfg.clone(),
            table.clone(),
            deliveries.clone(),
            ("CHANNEL_NAME", ch.to_string()),
            ("API_BASE_URL", "https://api.e2e.example.com".to_string()),
            ("LINK_KEYS_SECRET_ARN", link_keys.clone()),
        ];
        match ch {
            "ops-slack" => env.push(("SLACK_WEBHOOK_URL", slack_url.clone())),
            "audit-hook" => {
                env.push(("HOOK_URL", hook_url.clone()));
                env.push(("CHANNEL_SECRET_ARN", hook_secret.clone()));
            }
            // The SMS throttle's flush timer, which targets the function itself.
            "oncall-sms" => {
                env.push(("SCHEDULE_GROUP", aws.group.clone()));
                env.push(("SCHEDULER_ROLE_ARN", sched[2].1.clone()));
                env.push(("FLUSH_FUNCTION_ARN", support::function_arn(&deliver_fn(ch))));
            }
            _ => {}
        }
        lambda.function(&deliver_fn(ch), &bins.join("deliver"), &env);
    }

    // 1. The alarm, as the alarm topic's SNS subscription hands it to ingest.
    let out = lambda
        .invoke(
            "1 alarm: ingest",
            "ingest",
            &fixture("scenario/incident/01-checkout-5xx-alarm.sns.json"),
        )
        .await;
    assert_eq!(out["published"], 1, "e2e: 1 alarm: ingest: {out}");
    let alerts = aws.drain(&aws.alerts_queue).await;
    assert_eq!(
        alerts.len(),
        1,
        "e2e: 1 alarm: the alerts topic got {alerts:?}"
    );
    let out = lambda
        .invoke(
            "1 alarm: router",
            "router",
            &sns_event(&aws.alerts_topic, &alerts),
        )
        .await;
    assert!(
        out["decisions"].as_u64().unwrap_or(0) >= 3,
        "e2e: 1 alarm: router: {out}"
    );

    // The jobs: SMS and email to alice (on call), Slack; nothing on the webhook yet.
    let sms_jobs = aws.jobs("oncall-sms").await;
    let email_jobs = aws.jobs("oncall-email").await;
    let slack_jobs = aws.jobs("ops-slack").await;
    let hook_jobs = aws.jobs("audit-hook").await;
    assert_eq!(
        (
            sms_jobs.len(),
            email_jobs.len(),
            slack_jobs.len(),
            hook_jobs.len()
        ),
        (1, 1, 1, 0),
        "e2e: 1 alarm: jobs per channel (sms, email, slack, webhook)"
    );
    let job: Value = serde_json::from_str(&sms_jobs[0].body).unwrap();
    let alert_id = job["alert_id"].as_str().unwrap().to_string();
    assert!(!alert_id.is_empty());
    for (ch, jobs) in [
        ("oncall-sms", &sms_jobs),
        ("oncall-email", &email_jobs),
        ("ops-slack", &slack_jobs),
    ] {
        let out = lambda
            .invoke(
                &format!("1 alarm: deliver {ch}"),
                &deliver_fn(ch),
                &sns_event(&aws.deliveries_topic, jobs),
            )
            .await;
        assert_eq!(out["delivered"], 1, "e2e: 1 alarm: deliver {ch}: {out}");
    }
    let item = aws.alert_item(&alert_id).await;
    assert_eq!(
        item.get("status").map(String::as_str),
        Some("open"),
        "e2e: 1 alarm: alert item {item:?}"
    );
    let data = tocsin_aws::emulator::moto_data(&endpoint).await.unwrap();
    let to_alice = sms_to(&data, ALICE);
    assert_eq!(
        to_alice.len(),
        1,
        "e2e: 1 alarm: SMS to alice: {to_alice:?}"
    );
    assert!(
        to_alice[0].contains("checkout-api-5xx"),
        "e2e: 1 alarm: SMS {:?}",
        to_alice[0]
    );
    let emails = emails_to(&data, "alice@example.com");
    assert_eq!(emails.len(), 1, "e2e: 1 alarm: email to alice: {emails:?}");
    assert!(emails[0].contains("checkout-api-5xx"), "{}", emails[0]);
    let posts = slack.requests();
    assert_eq!(posts.len(), 1, "e2e: 1 alarm: Slack posts {posts:?}");
    assert_eq!(posts[0].method, "POST");
    assert!(posts[0].path.ends_with(&slack_secret));
    assert!(
        String::from_utf8_lossy(&posts[0].body).contains("checkout-api-5xx"),
        "e2e: 1 alarm: Slack body {}",
        String::from_utf8_lossy(&posts[0].body)
    );

    // The same transition again, through the EventBridge rule: deduplicated, nobody paged twice.
    let out = lambda
        .invoke(
            "1 alarm again: ingest (EventBridge)",
            "ingest",
            &fixture("scenario/incident/02-checkout-5xx-alarm.eventbridge.json"),
        )
        .await;
    assert_eq!(out["published"], 1, "e2e: 1 alarm again: ingest: {out}");
    let again = aws.drain(&aws.alerts_queue).await;
    assert_eq!(
        again.len(),
        1,
        "e2e: 1 alarm again: the alerts topic got {again:?}"
    );
    lambda
        .invoke(
            "1 alarm again: router",
            "router",
            &sns_event(&aws.alerts_topic, &again),
        )
        .await;
    let dup = deliver_all(&aws, &mut lambda, "1 alarm again").await;
    assert!(
        dup.values().all(|n| *n == 0),
        "e2e: 1 alarm again: the duplicate paged: {dup:?}"
    );
    let audit = actions(&aws.audit(&alert_id).await);
    assert!(
        audit.iter().any(|a| a == "dedup"),
        "e2e: 1 alarm again: no dedup in the audit {audit:?}"
    );

    // 2. Nobody acknowledges: Scheduler fires the escalation ticks until level 2 is paged.
    let mut rounds = 0;
    let mut paged = BTreeMap::new();
    while rounds < 4 {
        rounds += 1;
        let fired = fire_schedules(&mut aws, &mut lambda, "2 escalation", &["escalate"]).await;
        assert!(
            fired > 0,
            "e2e: 2 escalation: no escalation schedule left after {rounds} round(s); schedules: {:?}",
            aws.schedule_names().await
        );
        paged = deliver_all(&aws, &mut lambda, "2 escalation").await;
        if paged["audit-hook"] > 0 {
            break;
        }
    }
    assert_eq!(
        paged["audit-hook"], 1,
        "e2e: 2 escalation: level 2 never paged the webhook: {paged:?}"
    );
    let data = tocsin_aws::emulator::moto_data(&endpoint).await.unwrap();
    let to_dana = sms_to(&data, DANA);
    assert_eq!(
        to_dana.len(),
        1,
        "e2e: 2 escalation: SMS to dana {to_dana:?}"
    );
    let hooks = hook.requests();
    assert_eq!(hooks.len(), 1, "e2e: 2 escalation: webhook calls {hooks:?}");
    assert!(
        hooks[0]
            .headers
            .iter()
            .any(|(k, _)| k.to_ascii_lowercase().contains("signature")),
        "e2e: 2 escalation: the webhook call is not signed: {:?}",
        hooks[0].headers
    );
    assert_eq!(hooks[0].json()["alert"]["alarm_name"], "checkout-api-5xx");
    let audit = aws.audit(&alert_id).await;
    assert!(
        actions(&audit).iter().any(|a| a == "escalate"),
        "e2e: 2 escalation: audit {:?}",
        actions(&audit)
    );

    // 3. dana acknowledges with the one-click link of her SMS: GET shows the confirm page and changes
    // nothing, POST performs it.
    let token = token_in(&to_dana[0])
        .unwrap_or_else(|| panic!("e2e: 3 ack: no one-click link in {:?}", to_dana[0]));
    let vars = [
        ("TOKEN", token.as_str()),
        ("ALERT_ID", alert_id.as_str()),
        ("ACTION", "ack"),
    ];
    let confirm = lambda
        .invoke(
            "3 ack: GET /a/{token}",
            "api",
            &api_fixture("one-click-confirm.json", &vars),
        )
        .await;
    assert_eq!(confirm["statusCode"], 200, "e2e: 3 ack: confirm {confirm}");
    assert_eq!(
        aws.alert_item(&alert_id).await["status"],
        "open",
        "e2e: 3 ack: the confirm page changed the alert"
    );
    let done = lambda
        .invoke(
            "3 ack: POST /a/{token}",
            "api",
            &api_fixture("one-click-perform.json", &vars),
        )
        .await;
    assert!(
        done["statusCode"].as_u64().is_some_and(|s| s < 400),
        "e2e: 3 ack: perform {done}"
    );
    let item = aws.alert_item(&alert_id).await;
    assert_eq!(item["status"], "acknowledged", "e2e: 3 ack: {item:?}");
    // The api's programmatic read, with an authorizer identity.
    let got = lambda
        .invoke(
            "3 ack: GET /alerts/{id}",
            "api",
            &api_fixture("get-alert.json", &vars),
        )
        .await;
    assert_eq!(got["statusCode"], 200, "e2e: 3 ack: get {got}");
    let body: Value = serde_json::from_str(got["body"].as_str().unwrap_or("{}")).unwrap();
    assert_eq!(body["alert"]["status"], "acknowledged", "{body}");
    // Everyone else paged is told (an SMS inside the throttle window waits for its flush schedule).
    let told = deliver_all(&aws, &mut lambda, "3 ack: notifications").await;
    fire_schedules(
        &mut aws,
        &mut lambda,
        "3 ack: flush",
        &["deliver-oncall-sms"],
    )
    .await;
    let told_after_flush = deliver_all(&aws, &mut lambda, "3 ack: after flush").await;
    assert!(
        told.values().sum::<usize>() > 0,
        "e2e: 3 ack: nobody was told of the ack: {told:?}"
    );
    assert!(
        told_after_flush.values().all(|n| *n == 0),
        "e2e: 3 ack: a flush made new jobs: {told_after_flush:?}"
    );
    let data = tocsin_aws::emulator::moto_data(&endpoint).await.unwrap();
    let to_alice = sms_to(&data, ALICE);
    assert_eq!(
        to_alice.len(),
        2,
        "e2e: 3 ack: alice (paged first) was not told once by SMS after the throttle's flush: {to_alice:?}"
    );
    assert!(
        to_alice[1].to_lowercase().contains("ack"),
        "e2e: 3 ack: alice's second SMS {:?}",
        to_alice[1]
    );
    assert!(
        emails_to(&data, "alice@example.com").len() >= 2,
        "e2e: 3 ack: alice was not told by email"
    );
    // The escalation is over: no step tick is left, only the acknowledgement timeout (if any).
    let pending = aws.due_schedules().await;
    let steps: Vec<_> = pending
        .iter()
        .filter(|(_, arn, input)| {
            *arn == support::function_arn("escalate") && input["timer"] == "escalation"
        })
        .collect();
    assert!(
        steps.is_empty(),
        "e2e: 3 ack: escalation steps still scheduled after the ack: {steps:?}"
    );

    // 4. The alarm goes back to OK: resolved, and everyone paged is told.
    let out = lambda
        .invoke(
            "4 ok: ingest",
            "ingest",
            &fixture("scenario/incident/05-checkout-5xx-ok.sns.json"),
        )
        .await;
    assert_eq!(out["published"], 1, "e2e: 4 ok: ingest: {out}");
    let alerts = aws.drain(&aws.alerts_queue).await;
    assert_eq!(
        alerts.len(),
        1,
        "e2e: 4 ok: the alerts topic got {alerts:?}"
    );
    lambda
        .invoke(
            "4 ok: router",
            "router",
            &sns_event(&aws.alerts_topic, &alerts),
        )
        .await;
    let item = aws.alert_item(&alert_id).await;
    assert_eq!(item["status"], "resolved", "e2e: 4 ok: {item:?}");
    let slack_before = slack.requests().len();
    let resolved = deliver_all(&aws, &mut lambda, "4 ok: notifications").await;
    fire_schedules(
        &mut aws,
        &mut lambda,
        "4 ok: flush",
        &["deliver-oncall-sms"],
    )
    .await;
    let data = tocsin_aws::emulator::moto_data(&endpoint).await.unwrap();
    for (who, phone, n) in [("alice", ALICE, 3), ("dana", DANA, 2)] {
        let got = sms_to(&data, phone);
        assert_eq!(got.len(), n, "e2e: 4 ok: SMS to {who}: {got:?}");
        assert!(
            got[n - 1].to_lowercase().contains("resolved"),
            "e2e: 4 ok: {who}'s last SMS {:?}",
            got[n - 1]
        );
    }
    assert!(
        resolved["ops-slack"] >= 1,
        "e2e: 4 ok: Slack was not told: {resolved:?}"
    );
    let posts = slack.requests();
    assert!(posts.len() > slack_before);
    let last = String::from_utf8_lossy(&posts[posts.len() - 1].body).to_lowercase();
    assert!(
        last.contains("resolved") || last.contains("ok"),
        "e2e: 4 ok: {last}"
    );
    // Whatever escalation timer is left (the acknowledgement timeout) is stale now: it pages nobody.
    let hooks_before = hook.requests().len();
    fire_schedules(&mut aws, &mut lambda, "4 ok: stale timers", &["escalate"]).await;
    let after = deliver_all(&aws, &mut lambda, "4 ok: after stale timers").await;
    assert!(
        after.values().all(|n| *n == 0),
        "e2e: 4 ok: a timer paged after the resolve: {after:?}"
    );
    assert_eq!(hook.requests().len(), hooks_before);
    assert_eq!(aws.alert_item(&alert_id).await["status"], "resolved");
    let audit = actions(&aws.audit(&alert_id).await);
    for a in ["open", "notify", "escalate", "ack", "resolve"] {
        assert!(
            audit.iter().any(|x| x == a),
            "e2e: 4 ok: no {a} in the audit {audit:?}"
        );
    }

    // 5. Logs: every function wrote JSON lines with the request id and the alert id; no secret.
    let secrets = [
        link_key.as_str(),
        hook_key.as_str(),
        slack_secret.as_str(),
        token.as_str(),
    ];
    // ingest runs before the alert has an id (the router opens it): its lines carry the alarm's
    // fingerprint, which the alert's record keeps.
    let body: serde_json::Value =
        serde_json::from_str(&aws.alert_item(&alert_id).await["body"]).unwrap();
    let fingerprint = body["fingerprint"].as_str().unwrap().to_string();
    for (name, f) in &lambda.functions {
        let id = if name == "ingest" {
            &fingerprint
        } else {
            &alert_id
        };
        let lines = f.lines();
        assert!(!lines.is_empty(), "e2e: logs: {name} wrote nothing");
        let mut with_both = 0;
        for line in &lines {
            for s in &secrets {
                assert!(
                    !line.contains(s),
                    "e2e: logs: {name} logged a secret: {line}"
                );
            }
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("e2e: logs: {name} wrote a non-JSON line ({e}): {line}")
            });
            let request_id = v["spans"]
                .as_array()
                .and_then(|s| s.iter().find_map(|s| s["requestId"].as_str()))
                .or(v["span"]["requestId"].as_str());
            let has_request_id = request_id.is_some_and(|r| !r.is_empty());
            assert!(
                has_request_id || v["fields"].get("alert").is_none(),
                "e2e: logs: {name} logged about an alert outside an invocation's span: {line}"
            );
            if has_request_id && line.contains(id.as_str()) {
                with_both += 1;
            }
        }
        assert!(
            with_both > 0,
            "e2e: logs: no line of {name} carries both the request id and {id}:\n{}",
            lines.join("\n")
        );
    }
    eprintln!("e2e: passed in {:?}", started.elapsed());
    // The logs stay for a look when asked (TOCSIN_E2E_KEEP=1).
    if std::env::var_os("TOCSIN_E2E_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("e2e: logs in {}", dir.display());
    }
}
