//! Helpers shared by the workspace integration tests: fixture paths and the example config.

use std::path::PathBuf;
use std::sync::Arc;

use tocsin_core::Alert;
use tocsin_core::config::Config;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Loads a config from YAML text, panicking with every problem.
pub fn config_from(text: &str) -> Arc<Config> {
    match tocsin_core::config::load(text) {
        Ok(c) => Arc::new(c),
        Err(errs) => panic!("config problems: {errs:?}"),
    }
}

/// The example config, `infra/tocsin.yaml`.
pub fn example_config() -> Arc<Config> {
    let text = std::fs::read_to_string(root().join("infra/tocsin.yaml"))
        .unwrap_or_else(|e| panic!("infra/tocsin.yaml: {e}"));
    config_from(&text)
}

/// The alerts of one fixture under `events/`.
pub fn alerts(path: &str) -> Vec<Alert> {
    let p = root().join("events").join(path);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    tocsin_core::source::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The one alert of a fixture.
pub fn alert(path: &str) -> Alert {
    let mut v = alerts(path);
    assert_eq!(v.len(), 1, "{path} should hold one alert");
    v.remove(0)
}
