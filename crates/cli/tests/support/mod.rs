//! Running the `tocsin` binary as a user would, for the CLI test files: from the repository root, with
//! `TOCSIN_CONFIG` unset so the default config resolution is what is tested.

// Each test binary uses a different part of this.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `tocsin` binary, run from the repository root without `TOCSIN_CONFIG`.
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    c.current_dir(root()).env_remove("TOCSIN_CONFIG");
    c
}

/// Runs `tocsin ARGS` and waits for it.
pub fn tocsin(args: &[&str]) -> Output {
    command().args(args).output().unwrap()
}

/// Runs `tocsin ARGS` with `input` on standard input.
pub fn tocsin_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child may exit before reading everything (e.g. an oversized input); that is fine.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A running `tocsin serve`: its port, and its stdout lines as they come (read by a thread). Killed
/// when dropped.
pub struct Serve {
    child: std::process::Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stdout line seen so far.
    pub seen: Vec<String>,
}

impl Serve {
    /// Starts `tocsin serve --port 0 ARGS` and waits for its `listening on` line.
    pub fn start(args: &[&str]) -> Serve {
        let mut child = command()
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut s = Serve {
            child,
            port: 0,
            lines,
            seen: Vec::new(),
        };
        let first = s.wait_for(|l| l.starts_with("listening on http://127.0.0.1:"), 20);
        let port = first
            .trim_start_matches("listening on http://127.0.0.1:")
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap();
        s.port = port.parse().unwrap();
        s
    }

    /// Waits up to `secs` seconds for a stdout line matching `want`; returns it. Lines seen on the
    /// way are kept in `seen`.
    pub fn wait_for(&mut self, want: impl Fn(&str) -> bool, secs: u64) -> String {
        if let Some(l) = self.seen.iter().find(|l| want(l)) {
            return l.clone();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if want(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "tocsin serve printed no matching line in {secs} s; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Takes whatever lines arrived meanwhile, without waiting.
    pub fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
    }

    /// One HTTP/1.1 request; returns the status and the body.
    pub fn http(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, body.to_string())
    }

    /// `GET path` as JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.http("GET", path, "text/plain", b"");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example config with its escalation delays replaced by `delay` (e.g. `2s`), written to a
/// temporary file whose path is returned.
pub fn config_with_delay(delay: &str, tag: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("infra/tocsin.yaml")).unwrap();
    assert!(text.contains("delay: 15m"), "the example config changed");
    let path = std::env::temp_dir().join(format!("tocsin-serve-{tag}-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        text.replace("delay: 15m", &format!("delay: {delay}")),
    )
    .unwrap();
    path
}
