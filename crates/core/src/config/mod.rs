//! The routing configuration: YAML in, a validated [`Config`] out, or every problem at once with its
//! `LINE:COL`. The format is documented in `docs/config.md`.
//!
//! The YAML is parsed with `marked-yaml` (for positions) and decoded by hand rather than through serde,
//! because serde stops at the first problem and `check-config` must report them all.

mod channels;
mod cron;
mod decode;
mod duration;
mod literal;
mod matcher;
mod model;
mod node;
mod recipients;
mod window;

#[cfg(test)]
mod tests;

pub use cron::Cron;
pub use duration::parse_duration;
pub use literal::Literal;
pub use model::*;

use marked_yaml::{LoadError, LoaderOptions};
use thiserror::Error;

use node::marker_pos;

/// One problem in a config file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}:{}: {message}", pos.line, pos.col)]
pub struct ConfigError {
    /// Where (1-based line and column).
    pub pos: Pos,
    /// What is wrong, one line, lowercase.
    pub message: String,
}

/// Parses one matcher string, `FIELD OP VALUE`, as the config does (for silences made through the API
/// and the CLI); the error is one line.
pub fn parse_matcher(s: &str) -> Result<Matcher, String> {
    matcher::parse_matcher(s)
}

/// Parses and validates a config. On failure returns every problem found, sorted by position; a YAML
/// syntax error is a single problem, since nothing after it can be trusted.
pub fn load(text: &str) -> Result<Config, Vec<ConfigError>> {
    let options = LoaderOptions::default()
        // Without this, `"true"` and `true` would read alike and a quoted `~` would be null.
        .prevent_coercion(true)
        // Two channels (or people, or keys) with one name is a mistake, not "the last one wins".
        .error_on_duplicate_keys(true);
    match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(root) => decode::decode(&root).map(|mut c| {
            crate::routing::index_tree(&mut c.route);
            c
        }),
        Err(e) => Err(vec![yaml_error(&e)]),
    }
}

/// A loader error as one positioned, one-line, lowercase problem.
fn yaml_error(e: &LoadError) -> ConfigError {
    let (pos, message) = match e {
        LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => (
            marker_pos(Some(m)),
            "the file must be a mapping of sections (defaults, channels, route, ...)".to_string(),
        ),
        LoadError::UnexpectedAnchor(m) => (
            marker_pos(Some(m)),
            "yaml anchors and aliases are not supported".to_string(),
        ),
        LoadError::MappingKeyMustBeScalar(m) => (
            marker_pos(Some(m)),
            "mapping keys must be plain strings".to_string(),
        ),
        LoadError::UnexpectedTag(m) => (
            marker_pos(Some(m)),
            "yaml tags (`!name`) are not supported".to_string(),
        ),
        LoadError::ScanError(m, scan) => (
            marker_pos(Some(m)),
            format!("invalid yaml: {}", scan.info()),
        ),
        LoadError::DuplicateKey(dup) => {
            let first = node::key_pos(&dup.prev_key);
            (
                node::key_pos(&dup.key),
                format!(
                    "duplicate key `{}` (first at {}:{})",
                    dup.key.as_str(),
                    first.line,
                    first.col
                ),
            )
        }
    };
    ConfigError {
        pos,
        message: node::single_line(message),
    }
}
