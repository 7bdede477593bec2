//! `tocsin render`: previews what every channel would send for an event, so message templates can be
//! checked without sending anything. Each alert of the event is classified with the config and
//! rendered once per config channel (or once per channel kind the config lacks), for a sample target,
//! with clearly fake one-click links.

use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;
use tocsin_core::Alert;
use tocsin_core::config::{ChannelKind, Config};
use tocsin_core::model::{AlarmState, stable_id};
use tocsin_core::record::{DeliveryJob, DeliveryKind, Status, Target};
use tocsin_core::render::{ALL_KINDS, Context, Links, Rendered, render};

use crate::{EX_DATAERR, EX_SOFTWARE, Failure, read_input};

/// sysexits: the command line names no such channel.
const EX_USAGE: u8 = 64;
/// sysexits: an output file could not be written.
const EX_CANTCREAT: u8 = 73;

/// `tocsin render` arguments.
#[derive(ClapArgs)]
pub struct Args {
    /// A config channel name, a channel kind (email, sms, slack, teams, pagerduty, webhook) or `all`.
    #[arg(long, default_value = "all")]
    channel: String,
    /// Write one file per channel into this folder instead of printing.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The event file, or `-` for standard input.
    event: String,
}

/// One channel to render for: its name, and its kind.
struct Slot {
    name: String,
    kind: ChannelKind,
}

/// Runs `tocsin render`.
pub fn run(config: &Config, args: &Args) -> Result<(), Failure> {
    let slots = slots(config, &args.channel)?;
    let input = read_input(&args.event)?;
    let mut alerts =
        tocsin_core::source::parse(&input).map_err(|e| Failure::new(EX_DATAERR, e.to_string()))?;
    let many = alerts.len() > 1;
    for (i, alert) in alerts.iter_mut().enumerate() {
        tocsin_core::classify::classify(config, alert);
        let rendered: Vec<(&Slot, Rendered)> = slots
            .iter()
            .map(|slot| {
                let job = job(alert, slot);
                let links = links(&job);
                let ctx = Context {
                    job: &job,
                    links: &links,
                    now: alert.state_changed_at,
                };
                (slot, render(slot.kind, &ctx))
            })
            .collect();
        match &args.out {
            Some(dir) => {
                // Several alerts in one event each get their own folder, numbered from 1.
                let dir = if many {
                    dir.join((i + 1).to_string())
                } else {
                    dir.clone()
                };
                write_files(&dir, &rendered)?;
            }
            None => print(if many { Some(i + 1) } else { None }, &rendered)?,
        }
    }
    Ok(())
}

/// The channels `--channel` selects, in `ALL_KINDS` order then by name.
fn slots(config: &Config, wanted: &str) -> Result<Vec<Slot>, Failure> {
    if let Some(c) = config.channels.get(wanted) {
        return Ok(vec![Slot {
            name: c.name.clone(),
            kind: c.kind,
        }]);
    }
    let kinds: Vec<ChannelKind> = match (wanted, ChannelKind::parse(wanted)) {
        ("all", _) => ALL_KINDS.to_vec(),
        (_, Some(k)) => vec![k],
        (_, None) => {
            let names: Vec<&str> = config.channels.keys().map(String::as_str).collect();
            return Err(Failure::new(
                EX_USAGE,
                format!(
                    "--channel {wanted}: not a channel of the config ({}) nor a kind (email, sms, slack, teams, pagerduty, webhook) nor `all`",
                    names.join(", ")
                ),
            ));
        }
    };
    let mut out = Vec::new();
    for kind in kinds {
        let of_kind: Vec<Slot> = config
            .channels
            .values()
            .filter(|c| c.kind == kind)
            .map(|c| Slot {
                name: c.name.clone(),
                kind,
            })
            .collect();
        if of_kind.is_empty() {
            // The config does not use this kind; preview it anyway under the kind's name.
            out.push(Slot {
                name: kind.as_str().to_string(),
                kind,
            });
        } else {
            out.extend(of_kind);
        }
    }
    Ok(out)
}

/// A delivery job as the router would make it when the alert opens (or resolves), to a sample target.
fn job(alert: &Alert, slot: &Slot) -> DeliveryJob {
    let alert_id = stable_id(&[&alert.fingerprint, &alert.event_id]);
    let (target, address) = match slot.kind {
        ChannelKind::Email => ("sample-person", Some("oncall@example.com")),
        ChannelKind::Sms => ("sample-person", Some("+15555550100")),
        ChannelKind::Slack => ("#sample-alerts", Some("#sample-alerts")),
        ChannelKind::Teams | ChannelKind::Pagerduty | ChannelKind::Webhook => {
            (slot.name.as_str(), None)
        }
    };
    let resolved = alert.state == AlarmState::Ok;
    DeliveryJob {
        delivery_id: stable_id(&[&alert_id, &slot.name, target]),
        kind: if resolved {
            DeliveryKind::Resolve
        } else {
            DeliveryKind::Trigger
        },
        target: Target {
            channel: slot.name.clone(),
            channel_kind: slot.kind,
            target: target.to_string(),
            address: address.map(str::to_string),
        },
        level: None,
        alert: alert.clone(),
        status: if resolved {
            Status::Resolved
        } else {
            Status::Open
        },
        created_at: alert.state_changed_at,
        thread: None,
        alert_id,
    }
}

/// Fake one-click links (the real ones carry signed tokens made by the API), and the runbook the alarm
/// names in a label or its description.
fn links(job: &DeliveryJob) -> Links {
    let token = &job.delivery_id[..12.min(job.delivery_id.len())];
    Links {
        ack: Some(format!("https://tocsin.example/a/sample-ack-{token}")),
        resolve: Some(format!("https://tocsin.example/a/sample-resolve-{token}")),
        view: Some(format!("https://tocsin.example/alerts/{}", job.alert_id)),
        runbook: runbook(&job.alert),
        ack_code: Some(job.alert_id[..6.min(job.alert_id.len())].to_ascii_uppercase()),
    }
}

fn runbook(alert: &Alert) -> Option<String> {
    let from_label = ["runbook_url", "runbook"]
        .iter()
        .find_map(|k| alert.labels.get(*k).cloned());
    from_label.or_else(|| {
        alert
            .description
            .split_whitespace()
            .find(|w| w.starts_with("https://") || w.starts_with("http://"))
            .map(|w| w.trim_end_matches(['.', ',', ')', ';']).to_string())
    })
}

fn pretty(v: &serde_json::Value) -> Result<String, Failure> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))
}

/// The files of one rendering: name suffix and content. Files are named by kind (`slack.json`), and by
/// channel too (`ops-slack.slack.json`) when several channels share a kind.
fn files(r: &Rendered) -> Result<Vec<(&'static str, String)>, Failure> {
    Ok(match r {
        Rendered::Email {
            subject,
            html,
            text,
        } => vec![
            ("email.html", html.clone()),
            ("email.txt", format!("Subject: {subject}\n\n{text}")),
        ],
        Rendered::Sms { text } => vec![("sms.txt", format!("{text}\n"))],
        Rendered::Slack { payload } => vec![("slack.json", pretty(payload)?)],
        Rendered::Teams { payload } => vec![("teams.json", pretty(payload)?)],
        Rendered::Pagerduty { payload } => vec![("pagerduty.json", pretty(payload)?)],
        Rendered::Webhook { body } => vec![("webhook.json", pretty(body)?)],
    })
}

fn write_files(dir: &Path, rendered: &[(&Slot, Rendered)]) -> Result<(), Failure> {
    let cant =
        |p: &Path, e: std::io::Error| Failure::new(EX_CANTCREAT, format!("{}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| cant(dir, e))?;
    for (slot, r) in rendered {
        let shared = rendered.iter().filter(|(s, _)| s.kind == slot.kind).count() > 1;
        for (suffix, content) in files(r)? {
            let name = if shared {
                format!("{}.{suffix}", slot.name)
            } else {
                suffix.to_string()
            };
            let path = dir.join(name);
            std::fs::write(&path, content).map_err(|e| cant(&path, e))?;
            println!("{}", path.display());
        }
    }
    Ok(())
}

fn print(alert_no: Option<usize>, rendered: &[(&Slot, Rendered)]) -> Result<(), Failure> {
    for (slot, r) in rendered {
        let which = alert_no.map(|n| format!(" alert {n}")).unwrap_or_default();
        println!("==> {} ({}){which} <==", slot.name, slot.kind.as_str());
        let is_email = matches!(r, Rendered::Email { .. });
        for (suffix, content) in files(r)? {
            if is_email {
                println!("--- {suffix}");
            }
            print!("{content}");
            if !content.ends_with('\n') {
                println!();
            }
        }
        println!();
    }
    Ok(())
}
