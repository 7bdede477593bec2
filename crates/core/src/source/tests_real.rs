//! The real corpus: every payload under `events/real/`, none written by this project (each one's
//! source and licence are in `events/real/PROVENANCE.md`), parsed and compared with
//! `events/real/EXPECTED.tsv`, which says for each file what tocsin makes of it: its alerts (key
//! fields and the routing labels), the events it skips with their reason, or the rejection with
//! its one-line reason.
//!
//! A parser change that alters any of these fails here, naming the file. When a change is meant,
//! `TOCSIN_BLESS=1 cargo test -p tocsin-core real_corpus` rewrites the expectation file; review its
//! diff like code.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::tests::{events_dir, files_under};
use super::*;
use crate::model::format_time;

/// Labels shown in the expectation: the ones the parsers add for routing decisions, not the
/// descriptive ones, so that the file stays readable.
const SHOWN_LABELS: [&str; 12] = [
    ROLE_LABEL,
    CONTRIBUTOR_LABEL,
    PARENT_LABEL,
    MUTED_BY_LABEL,
    MUTE_START_LABEL,
    MUTE_END_LABEL,
    "region_from",
    "region_name",
    "status_code_assumed",
    "event_region_from",
    "compliance_status",
    "alarm_tags_status",
];

fn real_dir() -> PathBuf {
    events_dir().join("real")
}

fn summarise(a: &Alert, kind: &str, out: &mut String) {
    let labels: Vec<String> = a
        .labels
        .iter()
        .filter(|(k, _)| {
            SHOWN_LABELS.contains(&k.as_str())
                || k.starts_with("tag.")
                || k.starts_with("contributor.")
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = write!(
        out,
        "\t{kind}\t{}/{}\t{}\t{}{}\tregion={}\taccount={}\t{}\t{}",
        a.source.as_str(),
        a.kind,
        a.alarm_name,
        a.previous_state
            .map(|p| format!("{}->", p.as_str()))
            .unwrap_or_default(),
        a.state.as_str(),
        a.region.as_deref().unwrap_or("-"),
        a.account_id.as_deref().unwrap_or("-"),
        a.severity.as_str(),
        format_time(&a.state_changed_at),
    );
    if !labels.is_empty() {
        let _ = write!(out, "\t{}", labels.join(" "));
    }
}

/// What tocsin makes of one file, one line per outcome, each starting with the file's path.
fn outcomes(rel: &str, bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut line = |body: &dyn Fn(&mut String)| {
        out.push_str(rel);
        body(&mut out);
        out.push('\n');
    };
    match parse_all(bytes) {
        Err(e) => line(&|o| {
            let _ = write!(o, "\trejected\t{e}");
        }),
        Ok(p) => {
            for a in &p.alerts {
                line(&|o| summarise(a, "alert", o));
            }
            for page in &p.pages {
                let a = page.clone().into_alert();
                line(&|o| summarise(&a, "page", o));
            }
            for s in &p.skipped {
                line(&|o| {
                    let _ = write!(o, "\tskipped\t{s}");
                });
            }
            for e in &p.rejected {
                line(&|o| {
                    let _ = write!(o, "\trejected\t{e}");
                });
            }
        }
    }
    out
}

#[test]
fn real_corpus_parses_as_its_expectation_file_says() {
    let mut files = Vec::new();
    files_under(&real_dir(), &mut files);
    files.sort();
    assert!(files.len() >= 80, "the corpus has {} payloads", files.len());
    let mut got = String::from(
        "# file\toutcome\tsource/kind\tname\tstate\tregion\taccount\tseverity\tchanged_at\tlabels\n",
    );
    for f in &files {
        let rel = f
            .strip_prefix(real_dir())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        got.push_str(&outcomes(&rel, &std::fs::read(f).unwrap()));
    }
    let expected_path = real_dir().join("EXPECTED.tsv");
    if std::env::var_os("TOCSIN_BLESS").is_some() {
        std::fs::write(&expected_path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if want != got {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(w, g)| w != g)
            .take(5)
            .map(|(w, g)| format!("  want: {w}\n  got:  {g}"))
            .collect();
        panic!(
            "events/real/EXPECTED.tsv differs ({} lines expected, {} got); first differences:\n{}",
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn every_real_payload_has_its_provenance() {
    let provenance = std::fs::read_to_string(real_dir().join("PROVENANCE.md")).unwrap();
    let mut files = Vec::new();
    files_under(&real_dir(), &mut files);
    for f in files {
        let rel = f
            .strip_prefix(real_dir())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        assert!(
            provenance.contains(&format!("`{rel}`")),
            "{rel} has no row in PROVENANCE.md"
        );
    }
}
