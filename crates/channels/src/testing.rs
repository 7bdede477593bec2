//! A minimal HTTP/1.1 server on 127.0.0.1 for the channel tests and the bench: it answers a script of
//! replies in order (the last one repeating), can hang without answering, keeps connections alive like a
//! real API does, and records every request. Hand-written, so the tests need no HTTP server crate.
//! Shared with `benches/deliver.rs` by path, so it uses nothing from the crate.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this status, these headers and this body.
    Answer {
        /// The status.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: String,
    },
    /// Read the request, then never answer (the connection stays open).
    Hang,
}

impl Reply {
    /// A status with an empty body.
    pub fn status(status: u16) -> Reply {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Answer { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, text: &str) -> Reply {
        if let Reply::Answer { body, .. } = &mut self {
            *body = text.to_string();
        }
        self
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`, ...
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body bytes exactly as sent.
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (null when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

struct Script {
    replies: VecDeque<Reply>,
    last: Reply,
}

impl Script {
    fn next(&mut self) -> Reply {
        match self.replies.pop_front() {
            Some(reply) => {
                self.last = reply.clone();
                reply
            }
            None => self.last.clone(),
        }
    }
}

/// A running server; stops (with every connection) when dropped.
pub struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    task: JoinHandle<()>,
}

impl Server {
    /// Starts a server answering `replies` in order, the last one for every request after.
    pub async fn start(replies: Vec<Reply>) -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let script = Arc::new(Mutex::new(Script {
            replies: replies.into(),
            last: Reply::status(200),
        }));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            // The connections live in the accept task's set, so aborting it closes them all.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream, script.clone(), recorded.clone()));
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Server {
            addr,
            requests,
            task,
        })
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: TcpStream, script: Arc<Mutex<Script>>, requests: Arc<Mutex<Vec<Request>>>) {
    let _ = stream.set_nodelay(true);
    let mut stream = BufReader::new(stream);
    while let Some(request) = read_request(&mut stream).await {
        if let Ok(mut r) = requests.lock() {
            r.push(request);
        }
        let reply = match script.lock() {
            Ok(mut s) => s.next(),
            Err(_) => return,
        };
        match reply {
            Reply::Hang => {
                // Keep the connection open, unanswered, until the server is dropped.
                std::future::pending::<()>().await;
            }
            Reply::Answer {
                status,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} Scripted\r\ncontent-length: {}\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                // One write for head and body: two small writes meet Nagle's algorithm and the client's
                // delayed ACK, and every answer would take 40 ms.
                let mut answer = head.into_bytes();
                answer.extend_from_slice(body.as_bytes());
                if stream.get_mut().write_all(&answer).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if stream.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// A delivery job to `address` on a channel of `kind`.
pub fn job(
    kind: tocsin_core::config::ChannelKind,
    address: Option<&str>,
) -> tocsin_core::record::DeliveryJob {
    use tocsin_core::record::{DeliveryJob, DeliveryKind, Status, Target};
    DeliveryJob {
        delivery_id: "dl-7f3a".into(),
        alert_id: "al-1".into(),
        kind: DeliveryKind::Trigger,
        target: Target {
            channel: kind.as_str().into(),
            channel_kind: kind,
            target: address.unwrap_or(kind.as_str()).into(),
            address: address.map(str::to_string),
        },
        level: None,
        alert: tocsin_core::contract::record("ev-1", "fp-1", None).alert,
        status: Status::Open,
        // Any fixed instant does.
        created_at: Default::default(),
        thread: None,
    }
}

/// Fails when any of `secrets` shows up in the error's class or reason (or its Display).
pub fn assert_no_secrets(error: &tocsin_core::ports::SendError, secrets: &[&str]) {
    let shown = format!("{error} | {error:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "`{secret}` leaked into {shown}");
    }
}
