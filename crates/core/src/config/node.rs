//! The thin layer between `marked_yaml` nodes and the decoders: positions, the problem list every decoder
//! appends to, mappings read key by key (unknown keys reported once, up front), and "expected X, found Y".
//!
//! Nothing here stops at a problem: a reader that cannot give a value records why and returns `None`, and
//! the caller carries on with the next key, so one run reports everything wrong with a file.

use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode, Marker};

use super::{ConfigError, Pos};

/// Every problem found so far.
#[derive(Debug, Default)]
pub(super) struct Problems {
    list: Vec<ConfigError>,
}

impl Problems {
    /// Records a problem at `pos`.
    pub(super) fn at(&mut self, pos: Pos, message: impl Into<String>) {
        self.list.push(ConfigError {
            pos,
            message: single_line(message.into()),
        });
    }

    /// Whether nothing has been recorded.
    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The problems in file order. The same check can reach one node by two paths (a schedule named as a
    /// recipient twice over), so exact repeats are dropped.
    pub(super) fn into_sorted(mut self) -> Vec<ConfigError> {
        // Stable, so problems at one position keep the order they were found in.
        self.list.sort_by_key(|e| e.pos);
        self.list.dedup();
        self.list
    }
}

/// Messages quote keys and values from the file, and a YAML key or value can hold a line break;
/// `check-config` promises one line per problem, so control characters are shown escaped.
pub(super) fn single_line(message: String) -> String {
    if !message.chars().any(char::is_control) {
        return message;
    }
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A marker as a [`Pos`].
pub(super) fn marker_pos(m: Option<&Marker>) -> Pos {
    m.map_or(Pos::default(), |m| Pos {
        line: m.line(),
        col: m.column(),
    })
}

/// Where a node is, as a person would point at it.
///
/// A block mapping's own marker sits after its first key (where the parser recognised it as a mapping),
/// so a mapping is placed at its first key, or at its `{` when that comes first.
pub(super) fn pos(node: &Node) -> Pos {
    match node {
        Node::Mapping(m) => map_pos(m),
        _ => marker_pos(node.span().start()),
    }
}

/// Where a mapping is: see [`pos`].
pub(super) fn map_pos(m: &MarkedMappingNode) -> Pos {
    let start = marker_pos(m.span().start());
    m.keys().map(key_pos).min().map_or(start, |k| k.min(start))
}

/// Where a scalar (a key, usually) is.
pub(super) fn key_pos(k: &MarkedScalarNode) -> Pos {
    marker_pos(k.span().start())
}

/// Whether a scalar is YAML's null: empty, `~` or `null`, unquoted.
pub(super) fn is_null(s: &MarkedScalarNode) -> bool {
    // The loader is told not to coerce quoted scalars, so `may_coerce` is exactly "was written plain".
    s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL")
}

/// What a node is, for "expected X, found Y".
pub(super) fn found(node: &Node) -> &'static str {
    match node {
        Node::Scalar(s) if is_null(s) => "nothing",
        Node::Scalar(_) => "a string",
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
    }
}

/// The node as a mapping, or a problem.
pub(super) fn as_map<'a>(p: &mut Problems, node: &'a Node) -> Option<&'a MarkedMappingNode> {
    match node {
        Node::Mapping(m) => Some(m),
        _ => {
            p.at(
                pos(node),
                format!("expected a mapping, found {}", found(node)),
            );
            None
        }
    }
}

/// The node as a list, or a problem.
pub(super) fn as_list<'a>(p: &mut Problems, node: &'a Node) -> Option<&'a MarkedSequenceNode> {
    match node {
        Node::Sequence(s) => Some(s),
        _ => {
            p.at(pos(node), format!("expected a list, found {}", found(node)));
            None
        }
    }
}

/// The node as a (non-null) string, or a problem.
pub(super) fn as_str<'a>(p: &mut Problems, node: &'a Node) -> Option<&'a str> {
    match node {
        Node::Scalar(s) if !is_null(s) => Some(s.as_str()),
        _ => {
            p.at(
                pos(node),
                format!("expected a string, found {}", found(node)),
            );
            None
        }
    }
}

/// The node as a non-empty string, or a problem naming what it should have been (`a channel name`).
pub(super) fn as_name<'a>(p: &mut Problems, node: &'a Node, what: &str) -> Option<&'a str> {
    match node {
        Node::Scalar(s) if !is_null(s) && !s.as_str().trim().is_empty() => Some(s.as_str()),
        Node::Scalar(s) if !is_null(s) => {
            p.at(pos(node), format!("expected {what}, found an empty string"));
            None
        }
        _ => {
            p.at(pos(node), format!("expected {what}, found {}", found(node)));
            None
        }
    }
}

/// A string node run through `parse`, whose error (one line) is reported at the node.
pub(super) fn parsed<T>(
    p: &mut Problems,
    node: &Node,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let s = as_str(p, node)?;
    match parse(s) {
        Ok(v) => Some(v),
        Err(message) => {
            p.at(pos(node), message);
            None
        }
    }
}

/// `expected` keys as `a, b or c`, for messages.
pub(super) fn one_of(expected: &[&str]) -> String {
    match expected {
        [] => "nothing".into(),
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|k| format!("`{k}`")).collect();
            format!("{} or `{last}`", init.join(", "))
        }
    }
}

/// A mapping with a fixed set of keys, read key by key.
pub(super) struct Fields<'a> {
    map: &'a MarkedMappingNode,
    /// Where the mapping is, for "missing key" problems.
    pub(super) pos: Pos,
}

impl<'a> Fields<'a> {
    /// Reads `node` as a mapping whose keys must all be among `known`; each other key is a problem at
    /// the key. `None` (with a problem) when the node is not a mapping.
    pub(super) fn new(p: &mut Problems, node: &'a Node, known: &[&str]) -> Option<Self> {
        let map = as_map(p, node)?;
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                p.at(
                    key_pos(key),
                    format!(
                        "unknown key `{}` (expected {})",
                        key.as_str(),
                        one_of(known)
                    ),
                );
            }
        }
        Some(Fields {
            map,
            pos: map_pos(map),
        })
    }

    /// The value of `key`, or `None` when it is absent or null (so a bare `key:` means "the default").
    pub(super) fn get(&self, key: &str) -> Option<&'a Node> {
        match self.map.get_node(key)? {
            Node::Scalar(s) if is_null(s) => None,
            node => Some(node),
        }
    }

    /// Whether the mapping has no keys at all.
    pub(super) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `key` is written, even with no value.
    pub(super) fn has(&self, key: &str) -> bool {
        self.map.get_node(key).is_some()
    }

    /// Where `key` is, or the mapping's position if it is absent.
    pub(super) fn key_pos(&self, key: &str) -> Pos {
        self.map
            .keys()
            .find(|k| k.as_str() == key)
            .map_or(self.pos, key_pos)
    }

    /// The value of a required `key`: absent is a problem at the mapping, null a problem at the key.
    pub(super) fn required(&self, p: &mut Problems, key: &str) -> Option<&'a Node> {
        if !self.has(key) {
            p.at(self.pos, format!("missing key `{key}`"));
            return None;
        }
        let value = self.get(key);
        if value.is_none() {
            p.at(self.key_pos(key), format!("`{key}` has no value"));
        }
        value
    }
}

/// The entries of a name → definition mapping (`channels`, `people`, ...), names checked non-empty.
pub(super) fn entries<'a>(p: &mut Problems, node: &'a Node) -> Vec<(&'a str, &'a Node)> {
    let Some(map) = as_map(p, node) else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            if k.as_str().trim().is_empty() {
                p.at(key_pos(k), "a name cannot be empty");
                None
            } else if matches!(v, Node::Scalar(s) if is_null(s)) {
                // An empty value's own marker points at whatever follows it, so point at the name.
                p.at(key_pos(k), format!("`{}` has no definition", k.as_str()));
                None
            } else {
                Some((k.as_str(), v))
            }
        })
        .collect()
}

/// The items of an optional list: none when it is absent, and none (with a problem) when it is not a list.
pub(super) fn items<'a>(p: &mut Problems, node: Option<&'a Node>) -> &'a [Node] {
    match node.map(|n| as_list(p, n)) {
        Some(Some(list)) => list.as_slice(),
        _ => &[],
    }
}
