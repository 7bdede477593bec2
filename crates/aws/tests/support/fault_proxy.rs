//! A fault-injecting HTTP proxy for the AWS tests: it listens on 127.0.0.1, forwards every request to
//! the real endpoint (moto), and can be told to answer the next N requests itself, optionally only
//! those of one DynamoDB operation (the `X-Amz-Target` header), with the error DynamoDB would send:
//! throttling (400) or an internal error (500). It records the operation of every request it sees, so
//! a test can say which calls were made, and in what order.
//!
//! It can also forward one request at a time. moto evaluates a condition and applies the write without
//! a lock (`Table.put_item` reads the item, evaluates the condition, writes), and rolls a cancelled
//! transaction back by restoring a copy of the whole table taken before it, so under concurrent
//! requests two conditional claims of one key can both succeed and a cancelled transaction can undo
//! other requests' writes. DynamoDB applies each write atomically; forwarding one request at a time
//! gives moto that guarantee back, while the callers still interleave request by request.
//!
//! HTTP/1.1, hand-rolled, one request per connection (every answer says `Connection: close`, so the
//! SDK's connection pool never reuses one): the SDK's requests to DynamoDB are small JSON bodies with a
//! `Content-Length`, which is all this needs to read.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A request this large is not one of ours; refuse rather than buffer it.
const MAX_REQUEST: usize = 16 * 1024 * 1024;

/// What the proxy answers instead of forwarding.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 400 `ProvisionedThroughputExceededException`: the table's or an index's capacity is exceeded.
    ThroughputExceeded,
    /// 400 `ThrottlingException`: the control plane's or the account's request rate.
    Throttling,
    /// 500 `InternalServerError`.
    InternalServerError,
    /// Forwarded, and moto applies it; then the connection is dropped without its answer (the write
    /// happened, the caller cannot know).
    LostAnswer,
    /// Any status and JSON body (a `TransactionCanceledException` with chosen reasons, say).
    Custom {
        /// The HTTP status code.
        status: u16,
        /// The JSON body, in DynamoDB's error shape (`__type`, `message`).
        body: String,
    },
}

impl Fault {
    fn response(&self) -> (u16, &'static str, String) {
        let error = |ty: &str, message: &str| {
            serde_json::json!({ "__type": ty, "message": message }).to_string()
        };
        match self {
            Fault::ThroughputExceeded => (
                400,
                "Bad Request",
                error(
                    "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "The level of configured provisioned throughput for the table was exceeded. \
                     Consider increasing your provisioning level with the UpdateTable API.",
                ),
            ),
            Fault::Throttling => (
                400,
                "Bad Request",
                error(
                    "com.amazon.coral.availability#ThrottlingException",
                    "Rate of requests exceeds the allowed throughput.",
                ),
            ),
            Fault::InternalServerError => (
                500,
                "Internal Server Error",
                error(
                    "com.amazonaws.dynamodb.v20120810#InternalServerError",
                    "Internal server error",
                ),
            ),
            Fault::Custom { status, body } => (*status, "Error", body.clone()),
            // Never answered: `serve` forwards it and drops the connection.
            Fault::LostAnswer => (0, "", String::new()),
        }
    }
}

/// One request the proxy saw: its operation and whether it was answered with a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The operation, `X-Amz-Target` without its service prefix (`PutItem`), or `-` when absent.
    pub operation: String,
    /// Whether the proxy answered it with a fault instead of forwarding it.
    pub faulted: bool,
}

struct Planned {
    operation: Option<String>,
    /// Matching requests to let through before failing.
    skip: usize,
    fault: Fault,
    remaining: usize,
}

#[derive(Default)]
struct State {
    planned: VecDeque<Planned>,
    seen: Vec<Seen>,
}

/// Whether to forward one request at a time, and the lane that makes it so.
#[derive(Default)]
struct Lane {
    single: AtomicBool,
    turn: tokio::sync::Mutex<()>,
}

/// The proxy; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    lane: Arc<Lane>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1:0 forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("fault proxy: cannot listen on 127.0.0.1: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fault proxy: no local address: {e}"));
        let state = Arc::new(Mutex::new(State::default()));
        let lane = Arc::new(Lane::default());
        let (shared, shared_lane) = (state.clone(), lane.clone());
        let accept = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (state, lane, upstream) =
                    (shared.clone(), shared_lane.clone(), upstream.clone());
                tokio::spawn(async move {
                    // A broken connection shows up in the test as the SDK's dispatch error.
                    let _ = serve(conn, &upstream, &state, &lane).await;
                });
            }
        });
        FaultProxy {
            addr,
            state,
            lane,
            accept,
        }
    }

    /// The endpoint URL to give the SDK.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Forwards one request at a time (`true`), so that each of moto's writes is atomic as DynamoDB's
    /// are, or as they come (`false`, the default).
    pub fn one_at_a_time(&self, on: bool) {
        self.lane.single.store(on, Ordering::SeqCst);
    }

    /// Answers the next `n` requests of `operation` (`"TransactWriteItems"`; any request when None)
    /// with `fault`. Plans queue up: a request takes the first plan that matches it.
    pub fn fail_next(&self, n: usize, operation: Option<&str>, fault: Fault) {
        self.fail_after(0, n, operation, fault);
    }

    /// Lets `skip` requests of `operation` through, then answers the `n` after them with `fault`
    /// (the second `PutItem` of an event is its completion, the first its claim).
    pub fn fail_after(&self, skip: usize, n: usize, operation: Option<&str>, fault: Fault) {
        lock(&self.state).planned.push_back(Planned {
            operation: operation.map(str::to_string),
            skip,
            fault,
            remaining: n,
        });
    }

    /// Drops every planned fault not yet served.
    pub fn clear(&self) {
        lock(&self.state).planned.clear();
    }

    /// The requests seen since the last call, in arrival order.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut lock(&self.state).seen)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The planned fault for a request of `operation`, if any, counting it as served.
fn take_fault(state: &Mutex<State>, operation: &str) -> Option<Fault> {
    let mut state = lock(state);
    let i = state
        .planned
        .iter()
        .position(|p| p.operation.as_deref().is_none_or(|o| o == operation))?;
    let plan = &mut state.planned[i];
    if plan.skip > 0 {
        plan.skip -= 1;
        return None;
    }
    let fault = plan.fault.clone();
    plan.remaining = plan.remaining.saturating_sub(1);
    if plan.remaining == 0 {
        state.planned.remove(i);
    }
    Some(fault)
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The head without its `Connection`/`Keep-Alive` headers and with `Connection: close`, so that each
/// side closes after one exchange.
fn closing(head: &str) -> String {
    let mut out = String::new();
    for line in head.trim_end_matches("\r\n").split("\r\n") {
        let name = line.split_once(':').map(|(n, _)| n.trim());
        if name.is_some_and(|n| {
            n.eq_ignore_ascii_case("connection") || n.eq_ignore_ascii_case("keep-alive")
        }) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

async fn serve(
    mut conn: TcpStream,
    upstream: &str,
    state: &Mutex<State>,
    lane: &Lane,
) -> std::io::Result<()> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        let read = conn.read(&mut chunk).await?;
        if read == 0 || buf.len() > MAX_REQUEST {
            return Err(invalid("request head incomplete"));
        }
        buf.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    if header(&head, "transfer-encoding").is_some() {
        return Err(invalid("chunked requests are not supported"));
    }
    let length: usize = header(&head, "content-length")
        .map(|v| v.parse().map_err(|_| invalid("bad content-length")))
        .transpose()?
        .unwrap_or(0);
    if length > MAX_REQUEST {
        return Err(invalid("request too large"));
    }
    while buf.len() < end + length {
        let read = conn.read(&mut chunk).await?;
        if read == 0 {
            return Err(invalid("request body incomplete"));
        }
        buf.extend_from_slice(&chunk[..read]);
    }
    let body = &buf[end..end + length];
    let operation = header(&head, "x-amz-target")
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_string())
        .unwrap_or_else(|| "-".to_string());

    let fault = take_fault(state, &operation);
    lock(state).seen.push(Seen {
        operation,
        faulted: fault.is_some(),
    });
    let lost = matches!(fault, Some(Fault::LostAnswer));
    if let Some(fault) = fault.filter(|f| !matches!(f, Fault::LostAnswer)) {
        let (status, text, body) = fault.response();
        let answer = format!(
            "HTTP/1.1 {status} {text}\r\n\
             Content-Type: application/x-amz-json-1.0\r\n\
             x-amzn-RequestId: FAULTPROXY0000000000000000000000000000000000000000000\r\n\
             Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(answer.as_bytes()).await?;
        return conn.shutdown().await;
    }

    let turn = if lane.single.load(Ordering::SeqCst) {
        Some(lane.turn.lock().await)
    } else {
        None
    };
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(closing(&head).as_bytes()).await?;
    up.write_all(body).await?;
    let mut answer = Vec::new();
    // Asked to close, the upstream ends its answer with EOF, whatever its framing.
    up.read_to_end(&mut answer).await?;
    drop(turn);
    if lost {
        return Ok(());
    }
    let answer_end = head_end(&answer).ok_or_else(|| invalid("upstream answer has no head"))?;
    let answer_head = String::from_utf8_lossy(&answer[..answer_end]).into_owned();
    conn.write_all(closing(&answer_head).as_bytes()).await?;
    conn.write_all(&answer[answer_end..]).await?;
    conn.shutdown().await
}
