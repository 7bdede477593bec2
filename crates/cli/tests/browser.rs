//! The one-click flow in a real browser: `tocsin serve` gets an alarm, prints the ack link it would
//! have sent; headless Chromium opens it, shows the confirm page (which changes nothing), and a mouse
//! click on its button, sent through the Chrome DevTools protocol, posts the form; the API then shows
//! the alert acknowledged by the link's recipient and its escalation cancelled. The run also saves a
//! screenshot of the status page to `out/status.png`.
//!
//! Needs Debian's `chromium` (`scripts/ensure-chromium.sh`, run by `make test`). Without it the test
//! says so and passes, unless `TOCSIN_REQUIRE_BROWSER=1` (set by `make test`): then it fails.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Serve, config_with_delay, root};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    if std::env::var("TOCSIN_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!(
            "TOCSIN_REQUIRE_BROWSER=1 but {} is missing: run scripts/ensure-chromium.sh",
            path.display()
        );
    }
    eprintln!(
        "browser test skipped: {} is missing (set TOCSIN_REQUIRE_BROWSER=1 to make this a failure)",
        path.display()
    );
    None
}

/// The flags every Chromium run here uses: headless, no sandbox (root in a container), nothing
/// fetched from the network behind our back, a throwaway profile.
fn base_args(profile: &std::path::Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// A minimal Chrome DevTools protocol client over the browser's websocket, flat sessions.
struct Cdp {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next: u64,
    child: Child,
}

impl Cdp {
    fn launch(chrome: &PathBuf, profile: &std::path::Path) -> Cdp {
        let mut child = Command::new(chrome)
            .args(base_args(profile))
            .args(["--remote-debugging-port=0", "about:blank"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let err = child.stderr.take().expect("stderr piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium prints its DevTools websocket within 60 s");
        let (ws, _) = tungstenite::connect(url.as_str()).expect("DevTools websocket connects");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(60)))
                .expect("read timeout set");
        }
        Cdp { ws, next: 0, child }
    }

    /// Sends a command (to a page session when `session` is given) and returns its result, skipping
    /// the events that arrive meanwhile.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("CDP send");
        loop {
            let m = self.ws.read().expect("CDP read");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).expect("CDP sends JSON");
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page and returns its value.
    fn eval(&mut self, session: &str, expr: &str) -> Value {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is truthy (a non-empty string or `true`); returns it.
    fn wait(&mut self, session: &str, expr: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.eval(session, expr);
            if v == json!(true) || v.as_str().is_some_and(|s| !s.is_empty()) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within 30 s (last value {v})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_png(path: &std::path::Path) -> bool {
    std::fs::read(path)
        .map(|b| b.len() > 1000 && b.starts_with(b"\x89PNG\r\n\x1a\n"))
        .unwrap_or(false)
}

#[test]
fn a_one_click_ack_in_chromium_acknowledges_and_stops_escalation() {
    let Some(chrome) = chromium() else { return };
    // Level 2 only after 10 minutes: the click comes well before it.
    let config = config_with_delay("10m", "browser");
    let mut serve = Serve::start(&["--config", config.to_str().expect("utf-8 path")]);
    let event =
        std::fs::read(root().join("events/scenario/incident/01-checkout-5xx-alarm.sns.json"))
            .expect("event fixture");
    let (status, body) = serve.http("POST", "/events", "application/json", &event);
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).expect("JSON")["alerts"][0]
        .as_str()
        .expect("an alert id")
        .to_string();
    // The first ack link printed: the one carol's SMS would have carried.
    serve.wait_for(|l| l.starts_with("deliver: trigger oncall-sms → carol"), 10);
    let link = serve
        .wait_for(|l| l.starts_with("link: ack "), 10)
        .trim_start_matches("link: ack ")
        .to_string();
    assert!(link.starts_with(&format!("http://127.0.0.1:{}/a/", serve.port)));

    let profile = std::env::temp_dir().join(format!("tocsin-chromium-{}", std::process::id()));
    let mut cdp = Cdp::launch(&chrome, &profile);
    let target = cdp.call(None, "Target.createTarget", json!({"url": link}));
    let target_id = target["targetId"].as_str().expect("targetId").to_string();
    let attached = cdp.call(
        None,
        "Target.attachToTarget",
        json!({"targetId": target_id, "flatten": true}),
    );
    let session = attached["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_string();
    cdp.wait(
        &session,
        "document.readyState === 'complete' && !!document.getElementById('confirm')",
        "the confirm page with its button",
    );
    let heading = cdp.eval(&session, "document.querySelector('h1').textContent");
    assert_eq!(heading, json!("Acknowledge checkout-api-5xx?"));
    // Opening the link changed nothing.
    let before = serve.get_json(&format!("/alerts/{id}"));
    assert_eq!(before["alert"]["status"], "open");

    // A real click: the mouse pressed and released over the button's centre.
    let at = cdp.eval(
        &session,
        "(() => { const r = document.getElementById('confirm').getBoundingClientRect(); \
         return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()",
    );
    for (kind, count) in [("mouseMoved", 0), ("mousePressed", 1), ("mouseReleased", 1)] {
        cdp.call(
            Some(&session),
            "Input.dispatchMouseEvent",
            json!({"type": kind, "x": at["x"], "y": at["y"], "button": "left", "clickCount": count}),
        );
    }
    let done = cdp.wait(
        &session,
        "(document.getElementById('done') || {}).textContent || ''",
        "the page after the click",
    );
    assert_eq!(done, json!("Alert acknowledged"));

    let after = serve.get_json(&format!("/alerts/{id}"));
    assert_eq!(after["alert"]["status"], "acknowledged");
    assert_eq!(after["alert"]["acknowledged"][1], "carol");
    let timeline = after["timeline"].as_array().expect("timeline");
    let ended = timeline
        .iter()
        .find(|e| e["action"] == "escalation_end")
        .expect("an escalation_end entry");
    let reason = ended["reason"].as_str().expect("reason");
    assert!(
        reason.contains("acknowledged by carol")
            && reason.contains(&format!("tocsin-esc-{id}-2"))
            && reason.contains("cancelled"),
        "{reason}"
    );
    assert!(timeline.iter().all(|e| e["action"] != "escalate"));
    // The others paged were told who acknowledged, on their own channels.
    serve.wait_for(
        |l| l.starts_with("deliver: ack ops-slack → #ops-alerts"),
        10,
    );

    // The status page, as the browser draws it.
    let out = root().join("out");
    std::fs::create_dir_all(&out).expect("out/");
    let shot = out.join("status.png");
    let _ = std::fs::remove_file(&shot);
    let status = Command::new(&chrome)
        .args(base_args(&profile.with_extension("shot")))
        .args([
            format!("--screenshot={}", shot.display()),
            "--window-size=1100,1000".into(),
            format!("http://127.0.0.1:{}/status?audience=internal", serve.port),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("chromium runs");
    assert!(status.success(), "chromium --screenshot failed");
    assert!(is_png(&shot), "{} is a PNG", shot.display());
    drop(cdp);
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_dir_all(profile.with_extension("shot"));
    let _ = std::fs::remove_file(config);
}
