//! The X-Ray trace across hand-offs. SNS carries it by itself: Lambda puts the invocation's trace
//! header in `_X_AMZN_TRACE_ID`, the SDK sends it with every publish, and the topics (TracingConfig
//! Active) hand it to the subscribed function. EventBridge Scheduler does not: a schedule fires in a
//! trace of its own. So every schedule's Input carries the header that set it ([`TRACE_KEY`]): the
//! escalate function runs a timer's work [`carrying`] it (its own publishes, the pages it sends on,
//! and the timers it sets then belong to the alert's trace, and its log lines name it), a deliver
//! function its SMS throttle's flush, and ingest a Health event's sweep.
//!
//! The segment Lambda makes for such an invocation sits in the trace Scheduler started, so the work
//! carried in gets a segment of its own in the alert's trace: [`carrying`] opens one (a child of the
//! invocation that set the timer), makes it the parent of every hand-off the work makes, and sends it
//! to the X-Ray daemon when the work ends (one UDP datagram to `AWS_XRAY_DAEMON_ADDRESS`, the daemon's
//! documented protocol: a `{"format":"json","version":1}` line, then the segment document), if the
//! trace is sampled. Outside Lambda (no daemon address) nothing is sent.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

/// The key of a timer's Input that holds the X-Ray trace header of the invocation that set it.
pub const TRACE_KEY: &str = "trace_header";

/// The environment variable Lambda sets to the invocation's trace header.
const LAMBDA_TRACE_ENV: &str = "_X_AMZN_TRACE_ID";

tokio::task_local! {
    static CARRIED: String;
}

/// The environment variable Lambda sets to the X-Ray daemon's address (`169.254.79.129:2000`, or
/// `udp:host:port tcp:host:port`).
const DAEMON_ENV: &str = "AWS_XRAY_DAEMON_ADDRESS";

/// Runs `work` with `header` as the trace the hand-offs it makes continue (none: the invocation's own),
/// as a segment of its own in that trace (see the module's header).
pub fn carrying<F: Future>(header: Option<String>, work: F) -> impl Future<Output = F::Output> {
    // Not an async fn of its own: one future less in the callers' (deep) async state machines.
    carrying_to(daemon(), header, work)
}

/// [`carrying`], the segment sent to `daemon` (none: not sent).
async fn carrying_to<F: Future>(
    daemon: Option<SocketAddr>,
    header: Option<String>,
    work: F,
) -> F::Output {
    let Some(h) = header.filter(|h| is_header(h)) else {
        return work.await;
    };
    let segment = Segment::open(&h);
    let out = CARRIED.scope(segment.child_header(), work).await;
    if let Some(addr) = daemon {
        segment.send(addr);
    }
    out
}

/// The daemon's UDP address from the environment, if Lambda gave one.
fn daemon() -> Option<SocketAddr> {
    daemon_address(&std::env::var(DAEMON_ENV).ok()?)
}

/// `host:port`, or the `udp:` one of `udp:host:port tcp:host:port`.
fn daemon_address(value: &str) -> Option<SocketAddr> {
    let udp = value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .or_else(|| value.split_whitespace().find(|p| !p.starts_with("tcp:")))?;
    udp.to_socket_addrs().ok()?.next()
}

/// The segment of work carried in from a timer, in the trace that set the timer.
struct Segment {
    /// 16 hex digits.
    id: String,
    root: String,
    /// The segment of the invocation that set the timer, if the header named it.
    parent: Option<String>,
    sampled: bool,
    start: f64,
}

impl Segment {
    fn open(header: &str) -> Segment {
        let field = |name: &str| {
            header
                .split(';')
                .find_map(|part| part.trim().strip_prefix(name))
                .map(str::to_string)
        };
        Segment {
            id: segment_id(),
            root: field("Root=").unwrap_or_default(),
            parent: field("Parent="),
            sampled: field("Sampled=").as_deref() == Some("1"),
            start: epoch_seconds(),
        }
    }

    /// The header the work's hand-offs carry: the same trace, this segment their parent.
    fn child_header(&self) -> String {
        format!(
            "Root={};Parent={};Sampled={}",
            self.root,
            self.id,
            u8::from(self.sampled)
        )
    }

    /// The daemon's datagram for the segment, closed now.
    fn datagram(&self) -> String {
        let mut doc = serde_json::json!({
            "name": std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "tocsin".into()),
            "id": self.id,
            "trace_id": self.root,
            "start_time": self.start,
            "end_time": epoch_seconds(),
            "origin": "AWS::Lambda::Function",
            "annotations": { "carried_from_timer": true },
        });
        if let (Some(parent), Some(fields)) = (&self.parent, doc.as_object_mut()) {
            fields.insert("parent_id".into(), parent.as_str().into());
        }
        format!("{{\"format\":\"json\",\"version\":1}}\n{doc}")
    }

    /// Sends the segment if the trace is sampled. Best effort, as the X-Ray SDKs do: a lost
    /// datagram loses a segment, never the work.
    fn send(&self, daemon: SocketAddr) {
        if !self.sampled {
            return;
        }
        let bind: SocketAddr = if daemon.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sent =
            UdpSocket::bind(bind).and_then(|s| s.send_to(self.datagram().as_bytes(), daemon));
        if let Err(e) = sent {
            tracing::debug!(error = %e, "X-Ray segment not sent");
        }
    }
}

/// A segment id: 64 random bits as 16 hex digits (the std hasher's per-process random keys over
/// the time and a counter; unique, not secret).
fn segment_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The trace header a hand-off made now continues: one carried in from a timer, else the
/// invocation's own (none outside Lambda).
pub fn current() -> Option<String> {
    carried().or_else(|| {
        std::env::var(LAMBDA_TRACE_ENV)
            .ok()
            .filter(|h| is_header(h))
    })
}

/// The trace header carried in from a timer, if the current work runs [`carrying`] one.
pub fn carried() -> Option<String> {
    CARRIED.try_with(Clone::clone).ok()
}

/// An embedded-metric-format line (a JSON object the function prints itself, outside `tracing`) with
/// the trace it belongs to, as every other log line of the invocation has: `xrayTraceId`, the root
/// of [`current`], when there is one.
pub fn emf_line(mut line: serde_json::Value) -> String {
    if let (Some(header), Some(fields)) = (current(), line.as_object_mut()) {
        if let Some(root) = root(&header) {
            fields.insert("xrayTraceId".into(), root.into());
        }
    }
    line.to_string()
}

/// The trace's root (`1-5759e988-bd862e3fe1be46a994272793`) from a header
/// (`Root=...;Parent=...;Sampled=1`), for log lines.
pub fn root(header: &str) -> Option<&str> {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
}

/// Whether `h` looks like an X-Ray trace header (a `Root=` of printable ASCII, so that it is a valid
/// HTTP header value and cannot smuggle another line into one).
fn is_header(h: &str) -> bool {
    h.len() <= 256 && h.bytes().all(|b| b.is_ascii_graphic()) && root(h).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[tokio::test]
    async fn a_metric_line_names_the_trace_it_was_printed_in() {
        let line = carrying(Some(H.into()), async {
            emf_line(serde_json::json!({"DestinationRefused": 1}))
        })
        .await;
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["xrayTraceId"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(v["DestinationRefused"], 1);
    }

    #[tokio::test]
    async fn a_carried_header_is_current_inside_its_work_only() {
        let inside = carrying(Some(H.into()), async { current() }).await.unwrap();
        assert_eq!(root(&inside), root(H), "the same trace");
        assert!(inside.ends_with(";Sampled=1"), "{inside}");
        assert!(
            !inside.contains("53995c3f42cd8ad8"),
            "under a segment of its own: {inside}"
        );
        assert_eq!(carried(), None);
        assert_eq!(root(H), Some("1-5759e988-bd862e3fe1be46a994272793"));
    }

    /// A UDP socket standing in for the X-Ray daemon (it speaks the daemon's documented protocol:
    /// a header line, then the segment document).
    fn daemon() -> (UdpSocket, SocketAddr) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .unwrap();
        let addr = s.local_addr().unwrap();
        (s, addr)
    }

    #[tokio::test]
    async fn work_carried_from_a_timer_is_a_segment_of_the_alerts_trace_parent_of_its_hand_offs() {
        let (sock, addr) = daemon();
        let inside = carrying_to(Some(addr), Some(H.into()), async { current() })
            .await
            .unwrap();
        let mut buf = [0u8; 65536];
        let n = sock.recv(&mut buf).expect("a segment sent to the daemon");
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        let (head, doc) = text.split_once('\n').unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(head).unwrap(),
            serde_json::json!({"format": "json", "version": 1})
        );
        let seg: serde_json::Value = serde_json::from_str(doc).unwrap();
        assert_eq!(seg["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(
            seg["parent_id"], "53995c3f42cd8ad8",
            "a child of the invocation that set the timer"
        );
        let id = seg["id"].as_str().unwrap();
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        assert!(seg["start_time"].as_f64().unwrap() <= seg["end_time"].as_f64().unwrap());
        assert_eq!(
            inside,
            format!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent={id};Sampled=1"),
            "the work's hand-offs nest under the segment"
        );
    }

    #[test]
    fn the_daemon_address_is_read_in_both_of_its_forms() {
        let want: SocketAddr = "169.254.79.129:2000".parse().unwrap();
        assert_eq!(daemon_address("169.254.79.129:2000"), Some(want));
        assert_eq!(
            daemon_address("tcp:169.254.79.129:2001 udp:169.254.79.129:2000"),
            Some(want)
        );
        assert_eq!(daemon_address("tcp:169.254.79.129:2000"), None);
        assert_eq!(daemon_address("not an address"), None);
    }

    #[tokio::test]
    async fn an_unsampled_trace_sends_no_segment_and_no_trace_sends_nothing() {
        let (sock, addr) = daemon();
        let unsampled =
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";
        let inside = carrying_to(Some(addr), Some(unsampled.into()), async { current() }).await;
        assert!(inside.unwrap().ends_with(";Sampled=0"));
        carrying_to(Some(addr), None, async {}).await;
        let mut buf = [0u8; 1024];
        assert!(sock.recv(&mut buf).is_err(), "nothing reached the daemon");
    }

    #[tokio::test]
    async fn a_header_that_is_not_one_is_not_carried() {
        for bad in [
            "",
            "Parent=1",
            "Root=1-2-3\r\nX-Evil: 1",
            &"Root=".repeat(60),
        ] {
            let got = carrying(Some(bad.into()), async { carried() }).await;
            assert_eq!(got, None, "{bad:?}");
        }
    }
}
