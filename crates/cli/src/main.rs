//! `tocsin`: the command-line contract of `DESIGN.md`. `parse` prints canonical alerts, `check-config`
//! validates a routing config, `replay` runs the whole pipeline on the embedded default over event files
//! on a virtual clock and prints the timeline (or, with `--explain`, why one alert did or did not page),
//! `serve` runs the API and status page locally, `silence` makes, lists and expires silences.
//!
//! Exit codes follow sysexits: 65 bad input, 66 input missing, 69 a service (DynamoDB) unavailable,
//! 70 internal failure, 78 bad config.

mod oncall;
mod render;
mod replay;
mod serve;
mod silence;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tocsin_core::config::{self, Config};
use tocsin_core::text::one_line;

const EX_DATAERR: u8 = 65;
const EX_NOINPUT: u8 = 66;
const EX_UNAVAILABLE: u8 = 69;
const EX_SOFTWARE: u8 = 70;
const EX_CONFIG: u8 = 78;

/// The example config, built in so the binary works from anywhere.
const EXAMPLE_CONFIG: &str = include_str!("../../../infra/tocsin.yaml");

#[derive(Parser)]
#[command(
    name = "tocsin",
    version,
    about = "Alert routing, deduplication and escalation for AWS"
)]
struct Cli {
    /// Routing config (default: $TOCSIN_CONFIG, else ./infra/tocsin.yaml, else the built-in example).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the canonical alerts of one event as a JSON array.
    Parse {
        /// The event file, or `-` for standard input.
        #[arg(default_value = "-")]
        file: String,
    },
    /// Validate a config: exit 0, or 78 with one `FILE:LINE:COL: message` line per problem.
    CheckConfig {
        /// The config file.
        file: PathBuf,
    },
    /// Run the pipeline on event files or folders, in time order, on a virtual clock.
    Replay(replay::Args),
    /// Who is on call in a schedule and until when; with `--week`, the rota for the next seven days.
    Oncall(oncall::Args),
    /// Preview every channel's message for an event (`--out DIR`: one file per channel).
    Render(render::Args),
    /// The API and status page on 127.0.0.1 over the embedded store, on the real clock; events are
    /// POSTed to `/events`, the one-click links that would have been sent are printed.
    Serve(serve::Args),
    /// Make, list and expire silences on a DynamoDB table (`--table NAME`).
    Silence(silence::Args),
}

/// mimalloc rather than the system's: the embedded pipeline (replay, serve) allocates and frees a
/// few dozen small strings per event, and with glibc's allocator that was a fifth of a storm's time;
/// the storm benchmark (`crates/local/benches/storm.rs`) measures with the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, lines }) => {
            for l in lines {
                eprintln!("{l}");
            }
            ExitCode::from(code)
        }
    }
}

/// A failed command: its exit code and the lines it prints on stderr.
pub struct Failure {
    code: u8,
    lines: Vec<String>,
}

impl Failure {
    /// One `error: ...` line with an exit code.
    pub fn new(code: u8, msg: impl AsRef<str>) -> Self {
        Failure {
            code,
            lines: vec![format!("error: {}", one_line(msg.as_ref()))],
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Parse { file } => parse(cli.config.as_deref(), &file),
        Command::CheckConfig { file } => check_config(&file),
        Command::Replay(args) => {
            let config = load_config(cli.config.as_deref())?;
            replay::run(Arc::new(config), args)
        }
        Command::Oncall(args) => {
            let config = load_config(cli.config.as_deref())?;
            oncall::run(&config, &args)
        }
        Command::Render(args) => {
            let config = load_config(cli.config.as_deref())?;
            render::run(&config, &args)
        }
        Command::Serve(args) => {
            let config = load_config(cli.config.as_deref())?;
            serve::run(Arc::new(config), args)
        }
        Command::Silence(args) => {
            let config = load_config(cli.config.as_deref())?;
            silence::run(Arc::new(config), args)
        }
    }
}

fn read_input(file: &str) -> Result<Vec<u8>, Failure> {
    if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::new(EX_NOINPUT, format!("reading standard input: {e}")))?;
        Ok(buf)
    } else {
        std::fs::read(file).map_err(|e| Failure::new(EX_NOINPUT, format!("{file}: {e}")))
    }
}

fn parse(config_path: Option<&Path>, file: &str) -> Result<(), Failure> {
    let input = read_input(file)?;
    let (mut alerts, skipped) = tocsin_core::source::parse_noting_skips(&input)
        .map_err(|e| Failure::new(EX_DATAERR, e.to_string()))?;
    // A deliberately dropped event (a Health copy for the backup region) prints no alert; say why.
    for s in &skipped {
        eprintln!("note: skipped: {s}");
    }
    let config = load_config(config_path)?;
    for a in &mut alerts {
        tocsin_core::classify::classify(&config, a);
    }
    let json = serde_json::to_string_pretty(&alerts)
        .map_err(|e| Failure::new(EX_SOFTWARE, e.to_string()))?;
    println!("{json}");
    Ok(())
}

fn config_problems(name: &str, errors: &[config::ConfigError]) -> Failure {
    Failure {
        code: EX_CONFIG,
        lines: errors
            .iter()
            .map(|e| {
                format!(
                    "{name}:{}:{}: {}",
                    e.pos.line,
                    e.pos.col,
                    one_line(&e.message)
                )
            })
            .collect(),
    }
}

fn check_config(file: &Path) -> Result<(), Failure> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::new(EX_NOINPUT, format!("{name}: {e}")))?;
    config::load(&text).map_err(|errs| config_problems(&name, &errs))?;
    println!("{name}: ok");
    Ok(())
}

/// The config by the contract's resolution order.
fn load_config(explicit: Option<&Path>) -> Result<Config, Failure> {
    let from_env = std::env::var_os("TOCSIN_CONFIG").map(PathBuf::from);
    let path = explicit.map(Path::to_path_buf).or(from_env).or_else(|| {
        let p = PathBuf::from("infra/tocsin.yaml");
        p.exists().then_some(p)
    });
    let (name, text) = match path {
        Some(p) => {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(&p)
                .map_err(|e| Failure::new(EX_NOINPUT, format!("{name}: {e}")))?;
            (name, text)
        }
        None => (
            "<built-in example config>".to_string(),
            EXAMPLE_CONFIG.to_string(),
        ),
    };
    config::load(&text).map_err(|errs| config_problems(&name, &errs))
}
