//! The X-Ray trace across hand-offs. SNS carries it by itself: Lambda puts the invocation's trace
//! header in `_X_AMZN_TRACE_ID`, the SDK sends it with every publish, and the topics (TracingConfig
//! Active) hand it to the subscribed function. EventBridge Scheduler does not: a schedule fires in a
//! trace of its own. So every schedule's Input carries the header that set it ([`TRACE_KEY`]): the
//! escalate function runs a timer's work [`carrying`] it (its own publishes, the pages it sends on,
//! and the timers it sets then belong to the alert's trace, and its log lines name it), a deliver
//! function its SMS throttle's flush, and ingest a Health event's sweep.

use std::future::Future;

/// The key of a timer's Input that holds the X-Ray trace header of the invocation that set it.
pub const TRACE_KEY: &str = "trace_header";

/// The environment variable Lambda sets to the invocation's trace header.
const LAMBDA_TRACE_ENV: &str = "_X_AMZN_TRACE_ID";

tokio::task_local! {
    static CARRIED: String;
}

/// Runs `work` with `header` as the trace the hand-offs it makes continue (none: the invocation's own).
pub async fn carrying<F: Future>(header: Option<String>, work: F) -> F::Output {
    match header.filter(|h| is_header(h)) {
        Some(h) => CARRIED.scope(h, work).await,
        None => work.await,
    }
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
        let inside = carrying(Some(H.into()), async { current() }).await;
        assert_eq!(inside.as_deref(), Some(H));
        assert_eq!(carried(), None);
        assert_eq!(root(H), Some("1-5759e988-bd862e3fe1be46a994272793"));
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
