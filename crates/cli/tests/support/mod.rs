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

fn command() -> Command {
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
