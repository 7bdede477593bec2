//! `tocsin silence add|list|expire`: silences on a DynamoDB table, through the same router functions
//! the API calls (validation, the audit line, the reminder timer, releasing held alerts on expiry).
//!
//! Timers (the reminder before a silence ends, re-checking held alerts when one is expired early) go to
//! EventBridge Scheduler when the stack's scheduler variables are set (`SCHEDULE_GROUP`,
//! `ESCALATE_FUNCTION_ARN`, `SCHEDULER_ROLE_ARN`); without them the command says so on stderr, and held
//! alerts are still paged at the silence's original end (their timers were set when they were held).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tocsin_aws::{DynamoStore, EventBridgeScheduler};
use tocsin_core::config::{Config, parse_duration};
use tocsin_core::model::format_time;
use tocsin_core::noise::{NewSilence, Silence};
use tocsin_core::ports::{Scheduler, SystemClock};
use tocsin_core::router::{Router, RouterSettings};
use tocsin_core::text::one_line;
use tocsin_local::{LocalBus, VirtualScheduler};

use crate::{EX_DATAERR, EX_SOFTWARE, EX_UNAVAILABLE, Failure};

/// `tocsin silence` arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Where silences live: `dynamodb` (the table named by `--table`, created if missing, at
    /// `AWS_ENDPOINT_URL` or the real AWS).
    #[arg(long, global = true, default_value = "dynamodb", value_parser = ["dynamodb"])]
    store: String,
    /// The DynamoDB table.
    #[arg(long, global = true)]
    table: Option<String>,
    /// One JSON object a line instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Make a silence: `--match` (one or more), `--by`, `--comment`, and `--for DURATION` or `--ends TIME`.
    Add {
        /// A matcher, `FIELD OP VALUE` as in the config (repeat for more; all must match).
        #[arg(long = "match", required = true)]
        matchers: Vec<String>,
        /// Who makes it.
        #[arg(long)]
        by: String,
        /// Why.
        #[arg(long, default_value = "")]
        comment: String,
        /// When it starts (RFC 3339); default now.
        #[arg(long)]
        starts: Option<String>,
        /// When it ends (RFC 3339).
        #[arg(
            long,
            conflicts_with = "duration",
            required_unless_present = "duration"
        )]
        ends: Option<String>,
        /// How long it lasts from its start (`2h`).
        #[arg(long = "for")]
        duration: Option<String>,
    },
    /// List silences (active and pending; `--all` includes ended ones).
    List {
        /// Include silences that have ended.
        #[arg(long)]
        all: bool,
    },
    /// Expire a silence now.
    Expire {
        /// The silence id.
        id: String,
        /// Who expires it.
        #[arg(long)]
        by: String,
    },
}

fn instant(s: &str, what: &str) -> Result<DateTime<Utc>, Failure> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Failure::new(EX_DATAERR, format!("{what} {s:?}: expected RFC 3339")))
}

/// One silence, for people.
fn line(s: &Silence, now: DateTime<Utc>) -> String {
    let state = if s.end() <= now {
        "ended"
    } else if s.starts_at > now {
        "pending"
    } else {
        "active"
    };
    format!(
        "{}  {:<7}  {} .. {}  by {}  [{}]  {}",
        s.id,
        state,
        format_time(&s.starts_at),
        format_time(&s.end()),
        one_line(&s.created_by),
        one_line(&s.matchers.join(", ")),
        one_line(&s.comment)
    )
}

fn print(json: bool, silences: &[Silence]) -> Result<(), Failure> {
    let now = Utc::now();
    for s in silences {
        if json {
            let l =
                serde_json::to_string(s).map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))?;
            println!("{l}");
        } else {
            println!("{}", line(s, now));
        }
    }
    Ok(())
}

/// Runs the command.
pub fn run(config: Arc<Config>, args: Args) -> Result<(), Failure> {
    let Some(table) = args.table.clone() else {
        return Err(Failure::new(
            EX_DATAERR,
            "tocsin silence needs --table NAME (silences live in the stack's DynamoDB table)",
        ));
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))?;
    rt.block_on(async {
        let sdk = aws_config::load_from_env().await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
        store
            .create_table_if_missing()
            .await
            .map_err(|e| Failure::new(EX_UNAVAILABLE, format!("table {table}: {e}")))?;
        let env = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        if env(tocsin_aws::scheduler::ENV_GROUP).is_some() {
            let scheduler = EventBridgeScheduler::from_env(aws_sdk_scheduler::Client::new(&sdk), env)
                .map_err(|e| Failure::new(EX_DATAERR, e.to_string()))?;
            command(config, store, scheduler, args).await
        } else {
            let timers = matches!(args.command, Command::Add { .. } | Command::Expire { .. });
            command(config, store, VirtualScheduler::new(), args).await?;
            if timers {
                eprintln!(
                    "note: SCHEDULE_GROUP is not set, so no timer is scheduled on AWS (no reminder before the silence ends; alerts it held are paged at its original end)"
                );
            }
            Ok(())
        }
    })
}

async fn command<K: Scheduler>(
    config: Arc<Config>,
    store: DynamoStore,
    scheduler: K,
    args: Args,
) -> Result<(), Failure> {
    let router = Router {
        config,
        store,
        bus: LocalBus::new(),
        scheduler,
        clock: SystemClock,
        settings: RouterSettings::default(),
    };
    let backend = |e: tocsin_core::router::RouterError| Failure::new(EX_UNAVAILABLE, e.to_string());
    match args.command {
        Command::Add {
            matchers,
            by,
            comment,
            starts,
            ends,
            duration,
        } => {
            let starts_at = starts
                .as_deref()
                .map(|s| instant(s, "--starts"))
                .transpose()?;
            let ends_at = match (ends, duration) {
                (Some(e), _) => instant(&e, "--ends")?,
                (None, Some(d)) => {
                    let d = parse_duration(&d)
                        .and_then(|d| chrono::TimeDelta::from_std(d).ok())
                        .ok_or_else(|| {
                            Failure::new(
                                EX_DATAERR,
                                format!("--for {d:?}: expected a duration like 2h"),
                            )
                        })?;
                    starts_at.unwrap_or_else(Utc::now) + d
                }
                (None, None) => {
                    return Err(Failure::new(
                        EX_DATAERR,
                        "give --ends TIME or --for DURATION",
                    ));
                }
            };
            let request = NewSilence {
                matchers,
                created_by: by,
                comment,
                starts_at,
                ends_at,
            };
            let (silence, _) = router.create_silence(request).await.map_err(|e| match e {
                tocsin_core::suppress::SilenceCommandError::Invalid(why) => {
                    Failure::new(EX_DATAERR, why.to_string())
                }
                tocsin_core::suppress::SilenceCommandError::Router(e) => backend(e),
            })?;
            print(args.json, &[silence])
        }
        Command::List { all } => {
            let list = router.list_silences(!all).await.map_err(backend)?;
            print(args.json, &list)
        }
        Command::Expire { id, by } => {
            let (silence, _) = router.expire_silence(&id, &by).await.map_err(|e| match e {
                tocsin_core::router::RouterError::Store(
                    tocsin_core::ports::StoreError::NotFound(_),
                ) => Failure::new(EX_DATAERR, format!("no silence {id:?}")),
                other => backend(other),
            })?;
            print(args.json, &[silence])
        }
    }
}
