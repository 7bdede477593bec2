//! `tocsin replay`: events from files and folders, in time order, through the embedded pipeline on a
//! virtual clock that then runs on until no timer is pending (or `--until`); the timeline printed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tocsin_aws::DynamoStore;
use tocsin_core::config::{Config, parse_duration};
use tocsin_core::model::{Alert, format_time};
use tocsin_core::noise::NewSilence;
use tocsin_core::ports::AlertStore;
use tocsin_core::record::AuditEntry;
use tocsin_core::source::{ParseError, Parsed, Reassembly};
use tocsin_core::suppress::SilenceCommandError;
use tocsin_core::text::one_line;
use tocsin_local::Embedded;

use crate::{EX_DATAERR, EX_NOINPUT, EX_SOFTWARE, EX_UNAVAILABLE, Failure};

/// `tocsin replay` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// One JSON object a line instead of the readable timeline.
    #[arg(long)]
    json: bool,
    /// Stop the virtual clock at this time (RFC 3339) or this long after the last event (`+2h`).
    #[arg(long)]
    until: Option<String>,
    /// Where the alerts live: `memory` (default) or `dynamodb` (the table named by `--table`, created if
    /// missing, at `AWS_ENDPOINT_URL` or the real AWS).
    #[arg(long, default_value = "memory", value_parser = ["memory", "dynamodb"])]
    store: String,
    /// The DynamoDB table, with `--store dynamodb`.
    #[arg(long, required_if_eq("store", "dynamodb"))]
    table: Option<String>,
    /// Silences to load before the first event: a JSON array of
    /// `{"matchers": [...], "created_by": ..., "comment": ..., "starts_at": ..., "ends_at": ...}`.
    #[arg(long)]
    silences: Option<PathBuf>,
    /// Instead of the timeline, why this alert (an alarm name, or an alert id or its first 4+ characters)
    /// did or did not page: its decisions, each with the rule that made it.
    #[arg(long)]
    explain: Option<String>,
    /// Event files or folders (folders are read recursively, files in name order).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), Failure> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::new(EX_NOINPUT, format!("{}: {e}", path.display())))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Failure::new(EX_NOINPUT, format!("{}: {e}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() || p.extension().is_some_and(|x| x == "json") {
                collect(&p, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// A line the replay prints that is not an audit entry: an input it could not take (`reject`), or one
/// it read and deliberately turned into no alert (`skip`, such as an AWS Health backup-region copy).
fn input_line(json: bool, at: DateTime<Utc>, action: &str, file: &str, reason: &str) -> String {
    if json {
        serde_json::json!({
            "at": format_time(&at), "alert": null, "action": action, "reason": reason, "file": file,
        })
        .to_string()
    } else {
        format!(
            "{}  {:<8}  {:<14}  {}  {}",
            short_time(&at),
            "-",
            action,
            one_line(file),
            one_line(reason)
        )
    }
}

fn short_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// The readable timeline line of one entry.
pub fn human_line(e: &AuditEntry) -> String {
    let who = match (&e.channel, &e.target) {
        (Some(c), Some(t)) => format!("  {} → {}", one_line(c), one_line(t)),
        _ => String::new(),
    };
    let level = e.level.map(|l| format!(" L{l}")).unwrap_or_default();
    format!(
        "{}  {:<8}  {:<14}  {} [{}]{}  — {}",
        short_time(&e.at),
        e.alert.get(..8).unwrap_or(&e.alert),
        format!("{}{}", e.action, level),
        one_line(&e.alarm_name),
        e.severity,
        who,
        one_line(&e.reason)
    )
}

fn print(json: bool, entries: &[AuditEntry]) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for e in entries {
        let line = if json {
            serde_json::to_string(e).map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))?
        } else {
            human_line(e)
        };
        if let Err(err) = writeln!(out, "{line}") {
            // The reader went away (`tocsin replay ... | head`): nothing left to tell anyone, and
            // no panic, as `println!` would.
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(Failure::new(
                EX_SOFTWARE,
                format!("writing the timeline: {err}"),
            ));
        }
    }
    Ok(())
}

/// Runs the replay.
pub fn run(config: Arc<Config>, args: Args) -> Result<(), Failure> {
    let mut files = Vec::new();
    for p in &args.paths {
        collect(p, &mut files)?;
    }
    let mut alerts: Vec<Alert> = Vec::new();
    let mut rejects: Vec<(String, String)> = Vec::new();
    let mut skips: Vec<(String, String)> = Vec::new();
    // Paged AWS Health events are joined here, for the whole replay: an event's alert exists once its
    // last page is read, whatever the file order.
    let mut pages = Reassembly::new();
    for (f, read) in files.iter().zip(read_all(&files)) {
        let name = f.display().to_string();
        match read? {
            Ok(parsed) => {
                alerts.extend(parsed.alerts);
                alerts.extend(parsed.pages.into_iter().filter_map(|p| pages.add(p)));
                skips.extend(
                    parsed
                        .skipped
                        .into_iter()
                        .map(|s| (name.clone(), s.to_string())),
                );
                rejects.extend(
                    parsed
                        .rejected
                        .into_iter()
                        .map(|r| (name.clone(), r.to_string())),
                );
            }
            Err(e) => rejects.push((name, e.to_string())),
        }
    }
    // Pages that never completed still page, with the entities that came (labels.health_pages).
    for partial in pages.finish() {
        let note = partial
            .labels
            .get("health_pages")
            .map_or("some", String::as_str);
        skips.push((
            partial.alarm_name.clone(),
            format!("AWS Health event incomplete: {note} pages; routed with the entities received"),
        ));
        alerts.push(partial);
    }
    // Stable: transitions at the same instant keep file order (the duplicate after the original).
    alerts.sort_by_key(|a| a.state_changed_at);
    let start = alerts
        .first()
        .map(|a| a.state_changed_at)
        .unwrap_or_else(Utc::now);
    let last = alerts.last().map(|a| a.state_changed_at).unwrap_or(start);
    let until = match args.until.as_deref() {
        None => None,
        Some(s) => Some(parse_until(s, last).ok_or_else(|| {
            Failure::new(
                EX_DATAERR,
                format!("--until {s:?}: expected RFC 3339 or +DURATION (e.g. +2h)"),
            )
        })?),
    };

    let silences: Vec<NewSilence> = match &args.silences {
        None => Vec::new(),
        Some(path) => {
            let name = path.display().to_string();
            let bytes = std::fs::read(path)
                .map_err(|e| Failure::new(EX_NOINPUT, format!("{name}: {e}")))?;
            serde_json::from_slice(&bytes).map_err(|e| {
                Failure::new(
                    EX_DATAERR,
                    format!("{name}: not a JSON array of silences: {e}"),
                )
            })?
        }
    };
    let out = Output {
        json: args.json,
        explain: args.explain.clone(),
        collected: std::cell::RefCell::new(Vec::new()),
    };
    for (file, reason) in &skips {
        if out.explain.is_none() {
            println!("{}", input_line(args.json, start, "skip", file, reason));
        }
    }
    for (file, reason) in &rejects {
        if out.explain.is_none() {
            println!("{}", input_line(args.json, start, "reject", file, reason));
        } else {
            eprintln!("rejected: {}: {}", one_line(file), one_line(reason));
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))?;
    rt.block_on(async {
        match args.table.as_deref().filter(|_| args.store == "dynamodb") {
            None => drive(Embedded::new(config, start), alerts, silences, until, &out).await,
            Some(table) => {
                let sdk = aws_config::load_from_env().await;
                let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
                store
                    .create_table_if_missing()
                    .await
                    .map_err(|e| Failure::new(EX_UNAVAILABLE, format!("table {table}: {e}")))?;
                drive(
                    Embedded::with_store(config, start, store),
                    alerts,
                    silences,
                    until,
                    &out,
                )
                .await
            }
        }
    })?;
    if let Some(selector) = &out.explain {
        return explain(selector, &out.collected.borrow(), args.json);
    }
    if rejects.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            code: EX_DATAERR,
            lines: vec![format!(
                "error: {} input(s) rejected (see the reject lines)",
                rejects.len()
            )],
        })
    }
}

/// Reads and parses every file, on every core: parsing is pure and the files are independent (a
/// recorded storm is parsed as fast again on two cores), and the results come back in file order, for
/// the paged Health events to be joined and the timeline sorted as before.
fn read_all(files: &[PathBuf]) -> Vec<Result<Result<Parsed, ParseError>, Failure>> {
    let read = |f: &PathBuf| {
        let bytes = std::fs::read(f)
            .map_err(|e| Failure::new(EX_NOINPUT, format!("{}: {e}", f.display())))?;
        Ok(tocsin_core::source::parse_all(&bytes))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || files.len() < 2 {
        return files.iter().map(read).collect();
    }
    let per_thread = files.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = files
            .chunks(per_thread)
            .map(|part| s.spawn(move || part.iter().map(read).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| {
                p.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Where the timeline goes: printed as it runs, or kept for `--explain`.
struct Output {
    json: bool,
    explain: Option<String>,
    collected: std::cell::RefCell<Vec<AuditEntry>>,
}

impl Output {
    fn emit(&self, entries: Vec<AuditEntry>) -> Result<(), Failure> {
        if self.explain.is_some() {
            self.collected.borrow_mut().extend(entries);
            Ok(())
        } else {
            print(self.json, &entries)
        }
    }
}

/// Loads the silences, feeds the alerts through the pipeline in order, then runs the clock on.
async fn drive<S: AlertStore + Clone>(
    pipeline: Embedded<S>,
    alerts: Vec<Alert>,
    silences: Vec<NewSilence>,
    until: Option<DateTime<Utc>>,
    out: &Output,
) -> Result<(), Failure> {
    for (i, s) in silences.into_iter().enumerate() {
        match pipeline.router.create_silence(s).await {
            Ok((_, entries)) => out.emit(entries)?,
            Err(SilenceCommandError::Invalid(why)) => {
                return Err(Failure::new(
                    EX_DATAERR,
                    format!("silence {}: {why}", i + 1),
                ));
            }
            Err(SilenceCommandError::Router(e)) => {
                return Err(Failure::new(EX_SOFTWARE, e.to_string()));
            }
        }
    }
    for a in alerts {
        if until.is_some_and(|u| a.state_changed_at > u) {
            break;
        }
        let entries = pipeline
            .ingest(a)
            .await
            .map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))?;
        out.emit(entries)?;
    }
    let entries = pipeline
        .run_timers(until)
        .await
        .map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))?;
    out.emit(entries)
}

/// Prints why the selected alert(s) did or did not page: a verdict line, then their decisions.
fn explain(selector: &str, entries: &[AuditEntry], json: bool) -> Result<(), Failure> {
    let found = tocsin_core::explain::explain(entries, selector);
    if found.is_empty() {
        return Err(Failure::new(
            EX_DATAERR,
            format!("no alert named {selector:?} or with an id starting so in this replay"),
        ));
    }
    for ex in &found {
        if json {
            let v = serde_json::json!({
                "alert": ex.alert, "alarm_name": ex.alarm_name, "paged": ex.paged,
                "verdict": ex.verdict, "entries": ex.entries,
            });
            println!("{v}");
        } else {
            println!(
                "{} ({}): {}",
                one_line(&ex.alarm_name),
                ex.alert,
                one_line(&ex.verdict)
            );
            for e in &ex.entries {
                println!("  {}", human_line(e));
            }
        }
    }
    Ok(())
}

fn parse_until(s: &str, last: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(d) = s.strip_prefix('+') {
        return parse_duration(d)
            .and_then(|d| chrono::TimeDelta::from_std(d).ok())
            .map(|d| last + d);
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::*;

    #[test]
    fn files_parsed_on_every_core_come_back_in_file_order() {
        let dir = std::env::temp_dir().join(format!("tocsin-read-all-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut files: Vec<PathBuf> = (0..37)
            .map(|i| {
                let path = dir.join(format!("{i:02}.json"));
                let event = serde_json::json!({
                    "version": "tocsin/v1", "name": format!("alarm-{i}"), "status": "firing",
                    "time": "2026-11-20T02:00:00Z"
                });
                std::fs::write(&path, event.to_string()).unwrap();
                path
            })
            .collect();
        // A bad file and a missing one keep their places too.
        std::fs::write(dir.join("bad.json"), "{").unwrap();
        files.insert(5, dir.join("bad.json"));
        files.insert(20, dir.join("missing.json"));
        let read = read_all(&files);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read.len(), files.len());
        let mut names = Vec::new();
        for (i, r) in read.into_iter().enumerate() {
            match (i, r) {
                (5, Ok(Err(_))) | (20, Err(_)) => {}
                (_, Ok(Ok(parsed))) => names.push(parsed.alerts[0].alarm_name.clone()),
                (i, Ok(other)) => panic!("file {i}: {:?}", other.map(|p| p.alerts.len())),
                (i, Err(e)) => panic!("file {i}: {}", e.lines.join("; ")),
            }
        }
        let expected: Vec<String> = (0..37).map(|i| format!("alarm-{i}")).collect();
        assert_eq!(names, expected);
    }
}
