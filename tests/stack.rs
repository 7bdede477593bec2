//! The SAM stack (`infra/template.yaml`) against the code it deploys. From the sources alone it derives,
//! per function, which environment variables the code requires or may read and which AWS actions the
//! code can call, and compares them with the template: a missing variable, a missing or extra IAM
//! action, a function without a crate or a crate without a function is a failure, one line each.
//!
//! How the code is read (a lint for this codebase's idioms, not a Rust compiler):
//! - **functions**: a crate whose `src/main.rs` runs `lambda_runtime::run` (or `lambda_http::run`) is a
//!   Lambda function; its bin is the `[[bin]]` of its `Cargo.toml` for `src/main.rs`.
//! - **adapters**: the AWS adapter types `crates/aws/src/lib.rs` re-exports (`pub use sns::{SnsBus}`)
//!   that a function's wiring constructs (`SnsBus::alerts(..)`), in `main.rs` or in the `wiring.rs`
//!   functions (and methods) it calls. For a deliver function, a constructor inside a `ChannelKind::X =>` arm (of
//!   `main.rs` or of those wiring functions: the notifier registry) counts only for the functions whose
//!   channel (`CHANNEL_NAME` in the config) is of that kind.
//! - **actions**: in an adapter's file, every SDK call `client.<op>()` reachable from the adapter's
//!   trait implementations (the ports: whatever the generic handlers may call) or from a method the
//!   wiring calls, following calls between the file's own functions and into the helpers it imports
//!   from sibling modules (`use crate::dynamo::{put_new}`). `<op>` maps to `<service>:<Op>`
//!   (`put_item` -> `dynamodb:PutItem`), with IAM's exceptions: `TransactWriteItems` is authorised per
//!   item kind, and `CreateSchedule` passes the target's role (`iam:PassRole`).
//! - **environment**: `tocsin_lambda::env("X")`, `required(_, "X")`, `need("X")` and `value(X)` fail
//!   without their variable (required); `get("X")`, `env("X")`, `std::env::var("X")` and
//!   `EnvFilter::try_from_default_env` (`RUST_LOG`) read it if present (optional). `const X: &str = "..."`
//!   names are resolved. Channel settings `{env: NAME}` and `{secret: NAME}` of the function's channel
//!   are required (the latter as `CHANNEL_SECRET_ARN`, the channel's secret that
//!   `tocsin_core::secret::resolve_setting` reads them from).
//!
//! The HTTP routes are checked against the route table (`check_routes`), and secrets (`check_secrets`):
//! no variable carries a NoEcho parameter, and each function may read exactly the secrets it names.
//!
//! `#[cfg(test)]` modules and comments are ignored.
//!
//! The EventBridge source rules are checked against the parsers too (`check_rules`): every
//! (`source`, `detail-type`) that `crates/core/src/source` reads has an opt-in rule to ingest on the
//! default bus and on the central bus, each conditioned on its source's one `Enable<Source>Events`
//! parameter, with the Lambda permission for its ARN, a retry policy and a dead-letter queue whose
//! policy names it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

/// A compiled regex, compiled once per pattern and thread (the reader runs them in loops).
fn re(pattern: &str) -> Regex {
    thread_local! {
        static CACHE: std::cell::RefCell<BTreeMap<String, Regex>> = const { std::cell::RefCell::new(BTreeMap::new()) };
    }
    CACHE.with(|c| {
        c.borrow_mut()
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).expect("regex"))
            .clone()
    })
}

// ------------------------------------------------------------------------------------------------
// YAML with CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`, `!If`, ...) kept as nodes.
// ------------------------------------------------------------------------------------------------

/// A YAML node; a tag (`!Ref X`) wraps the node it is on.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
    Tagged(String, Box<Node>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, k| n.get(k))
    }

    fn str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar or a sequence of scalars, as strings (CloudFormation accepts both for `Action`).
    fn strings(&self) -> Vec<String> {
        match self {
            Node::Scalar(s) => vec![s.clone()],
            Node::Seq(items) => items
                .iter()
                .filter_map(|i| i.str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn entries(&self) -> &[(String, Node)] {
        match self {
            Node::Map(entries) => entries,
            _ => &[],
        }
    }
}

fn parse_yaml(text: &str) -> Result<Node, String> {
    use yaml_rust2::parser::{Event, EventReceiver, Parser};

    #[derive(Default)]
    struct Builder {
        stack: Vec<(Node, Option<String>, Option<String>)>,
        done: Option<Node>,
    }
    fn tag_of(tag: Option<yaml_rust2::parser::Tag>) -> Option<String> {
        tag.filter(|t| t.handle == "!").map(|t| t.suffix)
    }
    fn wrap(node: Node, tag: Option<String>) -> Node {
        match tag {
            Some(t) => Node::Tagged(t, Box::new(node)),
            None => node,
        }
    }
    impl Builder {
        fn push(&mut self, node: Node) {
            match self.stack.last_mut() {
                None => self.done = Some(node),
                Some((Node::Seq(items), _, _)) => items.push(node),
                Some((Node::Map(entries), _, pending)) => match pending.take() {
                    None => *pending = Some(node.str().unwrap_or_default().to_string()),
                    Some(key) => entries.push((key, node)),
                },
                Some(_) => unreachable!("only collections are stacked"),
            }
        }
    }
    impl EventReceiver for Builder {
        fn on_event(&mut self, ev: Event) {
            match ev {
                Event::Scalar(v, _, _, tag) => {
                    let node = wrap(Node::Scalar(v), tag_of(tag));
                    self.push(node);
                }
                Event::SequenceStart(_, tag) => {
                    self.stack.push((Node::Seq(vec![]), tag_of(tag), None))
                }
                Event::MappingStart(_, tag) => {
                    self.stack.push((Node::Map(vec![]), tag_of(tag), None))
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some((node, tag, _)) = self.stack.pop() {
                        self.push(wrap(node, tag));
                    }
                }
                Event::Alias(_) => self.push(Node::Scalar(String::new())),
                _ => {}
            }
        }
    }
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| e.to_string())?;
    builder.done.ok_or_else(|| "empty document".to_string())
}

// ------------------------------------------------------------------------------------------------
// The template's side.
// ------------------------------------------------------------------------------------------------

/// One `AWS::Serverless::Function` of the template, with `Globals` applied.
#[derive(Debug, Default)]
struct Function {
    id: String,
    bin: Option<String>,
    env: BTreeMap<String, Node>,
    /// Allowed actions of its explicit policy statements.
    actions: BTreeSet<String>,
    /// Policies that are not explicit statements (managed policies, SAM policy templates).
    opaque_policies: Vec<String>,
    /// The `channel` values of its SNS subscriptions' filter policies.
    channel_filters: Vec<Vec<String>>,
    settings: BTreeMap<String, String>,
}

fn functions(template: &Node) -> Vec<Function> {
    let globals = template.at(&["Globals", "Function"]);
    let mut out = Vec::new();
    for (id, res) in template
        .get("Resources")
        .map(Node::entries)
        .unwrap_or_default()
    {
        if res.get("Type").and_then(Node::str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let props = res.get("Properties");
        let mut f = Function {
            id: id.clone(),
            bin: res
                .at(&["Metadata", "Binary"])
                .and_then(Node::str)
                .map(String::from),
            ..Function::default()
        };
        for source in [globals, props].into_iter().flatten() {
            for (k, v) in source
                .at(&["Environment", "Variables"])
                .map(Node::entries)
                .unwrap_or_default()
            {
                f.env.insert(k.clone(), v.clone());
            }
            for key in [
                "Runtime",
                "Handler",
                "Architectures",
                "MemorySize",
                "CodeUri",
            ] {
                if let Some(v) = source.get(key) {
                    f.settings.insert(key.to_string(), v.strings().join(","));
                }
            }
        }
        if let Some(m) = res.at(&["Metadata", "BuildMethod"]).and_then(Node::str) {
            f.settings.insert("BuildMethod".into(), m.to_string());
        }
        let policies = props.and_then(|p| p.get("Policies"));
        let policies = match policies {
            Some(Node::Seq(items)) => items.clone(),
            Some(other) => vec![other.clone()],
            None => vec![],
        };
        for policy in &policies {
            match policy.get("Statement") {
                Some(Node::Seq(statements)) => {
                    for s in statements {
                        if s.get("Effect").and_then(Node::str) == Some("Allow") {
                            for a in s.get("Action").map(Node::strings).unwrap_or_default() {
                                f.actions.insert(a);
                            }
                        }
                    }
                }
                _ => f.opaque_policies.push(format!("{policy:?}")),
            }
        }
        for (_, event) in props
            .and_then(|p| p.get("Events"))
            .map(Node::entries)
            .unwrap_or_default()
        {
            if event.get("Type").and_then(Node::str) == Some("SNS") {
                if let Some(filter) = event.at(&["Properties", "FilterPolicy", "channel"]) {
                    f.channel_filters.push(filter.strings());
                }
            }
        }
        out.push(f);
    }
    out
}

// ------------------------------------------------------------------------------------------------
// The code's side.
// ------------------------------------------------------------------------------------------------

/// The repository's files by relative path (from disk, or made up in the unit tests).
type Files = BTreeMap<String, String>;

/// The source with comments blanked, braces inside string and char literals blanked (so braces
/// match), and `#[cfg(test)] mod` blocks removed. String contents otherwise stay (env names).
fn clean(src: &str) -> String {
    thread_local! {
        static CLEANED: std::cell::RefCell<BTreeMap<String, String>> = const { std::cell::RefCell::new(BTreeMap::new()) };
    }
    if let Some(done) = CLEANED.with(|c| c.borrow().get(src).cloned()) {
        return done;
    }
    let done = clean_uncached(src);
    CLEANED.with(|c| c.borrow_mut().insert(src.to_string(), done.clone()));
    done
}

fn clean_uncached(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            while i < b.len() && !(b[i] == '*' && b.get(i + 1) == Some(&'/')) {
                out.push(if b[i] == '\n' { '\n' } else { ' ' });
                i += 1;
            }
            out.push_str("  ");
            i += 2;
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !ident_char(b.get(i.wrapping_sub(1)))
        {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let body_start = j + 1;
            let rest: String = b[body_start..].iter().collect();
            let end = rest
                .find(&close)
                .map_or(b.len(), |e| body_start + rest[..e].chars().count());
            out.extend(&b[i..body_start]);
            out.extend(b[body_start..end].iter().map(|&ch| blank_brace(ch)));
            i = end;
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                    if i < b.len() {
                        out.push(' ');
                    }
                } else {
                    out.push(blank_brace(b[i]));
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '{') or a lifetime ('a).
            let len = if next == Some('\\') {
                b[i + 2..].iter().position(|&ch| ch == '\'').map(|p| p + 3)
            } else if b.get(i + 2) == Some(&'\'') {
                Some(3)
            } else {
                None
            };
            match len {
                Some(n) => {
                    out.push_str(&" ".repeat(n));
                    i += n;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    remove_test_modules(&out)
}

fn ident_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

fn blank_brace(c: char) -> char {
    if matches!(c, '{' | '}') { ' ' } else { c }
}

fn remove_test_modules(src: &str) -> String {
    let re = re(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{");
    let mut out = src.to_string();
    while let Some(m) = re.find(&out) {
        let end = block_end(&out, m.end() - 1);
        out.replace_range(m.start()..end, "");
    }
    out
}

/// The index just past the `}` that closes the `{` at `open`.
fn block_end(src: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (i, c) in src[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i + 1;
                }
            }
            _ => {}
        }
    }
    src.len()
}

/// A `fn` with a body.
#[derive(Debug)]
struct RustFn {
    name: String,
    body: std::ops::Range<usize>,
    /// The trait, for a function of an `impl Trait for Type` block.
    trait_impl: Option<String>,
}

fn rust_fns(src: &str) -> Vec<RustFn> {
    let impl_re = re(r"(?m)^\s*impl\b[^{;]*\{");
    let trait_re = re(r"impl\b(?:\s*<[^>]*>)?\s+(?:[\w:]+::)?(\w+)[^{;]*\sfor\s");
    let trait_impls: Vec<(std::ops::Range<usize>, String)> = impl_re
        .find_iter(src)
        .filter_map(|m| {
            let name = trait_re.captures(m.as_str())?[1].to_string();
            Some((m.start()..block_end(src, m.end() - 1), name))
        })
        .collect();
    let fn_re = re(r"\bfn\s+([A-Za-z_]\w*)");
    let mut out = Vec::new();
    for c in fn_re.captures_iter(src) {
        let m = c.get(0).expect("match");
        let rest = &src[m.end()..];
        let Some(open) = rest.find(['{', ';']) else {
            continue;
        };
        if rest.as_bytes()[open] == b';' {
            continue;
        }
        let open = m.end() + open;
        out.push(RustFn {
            name: c[1].to_string(),
            body: open..block_end(src, open),
            trait_impl: trait_impls
                .iter()
                .find(|(r, _)| r.contains(&m.start()))
                .map(|(_, t)| t.clone()),
        });
    }
    out
}

/// Names of the file's functions reachable from `entries`, following calls by name.
fn reachable(src: &str, fns: &[RustFn], entries: &BTreeSet<String>) -> BTreeSet<String> {
    let call_re = re(r"\b([A-Za-z_]\w*)\s*\(");
    let names: BTreeSet<&str> = fns.iter().map(|f| f.name.as_str()).collect();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = entries
        .iter()
        .filter(|e| names.contains(e.as_str()))
        .cloned()
        .collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        for f in fns.iter().filter(|f| f.name == name) {
            for c in call_re.captures_iter(&src[f.body.clone()]) {
                if names.contains(&c[1]) && !seen.contains(&c[1]) {
                    todo.push(c[1].to_string());
                }
            }
        }
    }
    seen
}

fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|f| f.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The functions a source imports from its crate's sibling modules, as (module, function):
/// lower-case names of `use crate::m::{..}` and `use crate::m::name;` (constants and types are
/// upper-case).
fn imported_fns(src: &str) -> Vec<(String, String)> {
    let group_re = re(r"\buse\s+crate::(\w+)::\{([^}]*)\}");
    let one_re = re(r"\buse\s+crate::(\w+)::([a-z_]\w*)\s*;");
    let name_re = re(r"^[a-z_]\w*$");
    let mut out = Vec::new();
    for c in group_re.captures_iter(src) {
        for name in c[2].split(',').map(str::trim) {
            if name_re.is_match(name) {
                out.push((c[1].to_string(), name.to_string()));
            }
        }
    }
    for c in one_re.captures_iter(src) {
        out.push((c[1].to_string(), c[2].to_string()));
    }
    out
}

/// The IAM actions the SDK calls in `body` need, for an adapter on `service` (the IAM prefix).
fn actions_of(
    service: &str,
    body: &str,
    problems: &mut Vec<String>,
    place: &str,
) -> BTreeSet<String> {
    let op_re = re(r"\bclient\s*\.\s*([a-z_]+)\s*\(");
    let item_re = re(r"TransactWriteItem::builder\(\)\s*\.\s*([a-z_]+)\s*\(");
    let mut out = BTreeSet::new();
    for c in op_re.captures_iter(body) {
        match &c[1] {
            // IAM has no TransactWriteItems action: each item needs its own operation's.
            "transact_write_items" => {
                let items: Vec<_> = item_re
                    .captures_iter(body)
                    .map(|i| i[1].to_string())
                    .collect();
                if items.is_empty() {
                    problems.push(format!(
                        "{place}: TransactWriteItems with no item kind found"
                    ));
                }
                for item in items {
                    let op = match item.as_str() {
                        "condition_check" => "ConditionCheckItem".to_string(),
                        other => format!("{}Item", camel(other)),
                    };
                    out.insert(format!("{service}:{op}"));
                }
            }
            op => {
                out.insert(format!("{service}:{}", camel(op)));
                // CreateSchedule hands Scheduler the role it will assume.
                if service == "scheduler" && op == "create_schedule" {
                    out.insert("iam:PassRole".into());
                }
            }
        }
    }
    out
}

/// An IAM prefix per SDK crate.
fn iam_service(sdk_crate: &str) -> Option<&'static str> {
    Some(match sdk_crate {
        "dynamodb" => "dynamodb",
        "sns" => "sns",
        "scheduler" => "scheduler",
        "sesv2" | "ses" => "ses",
        "secretsmanager" => "secretsmanager",
        "pinpointsmsvoicev2" => "sms-voice",
        _ => return None,
    })
}

/// What a function's code needs from its deployment.
#[derive(Debug, Default, PartialEq)]
struct Needs {
    required_env: BTreeSet<String>,
    optional_env: BTreeSet<String>,
    actions: BTreeSet<String>,
}

/// A Lambda crate: its folder, bin, and cleaned sources (main.rs first).
struct Crate {
    dir: String,
    bin: String,
    sources: Vec<String>,
}

fn lambda_crates(files: &Files) -> Vec<Crate> {
    let main_re = re(r"^crates/([^/]+)/src/main\.rs$");
    let run_re = re(r"\blambda_(runtime|http)::run\b");
    let bin_re =
        re(r#"(?s)\[\[bin\]\][^\[]*?name\s*=\s*"([^"]+)"[^\[]*?path\s*=\s*"src/main\.rs""#);
    let name_re = re(r#"(?m)^name\s*=\s*"([^"]+)""#);
    let mut out = Vec::new();
    for (path, text) in files {
        let Some(c) = main_re.captures(path) else {
            continue;
        };
        let main = clean(text);
        if !run_re.is_match(&main) {
            continue;
        }
        let dir = c[1].to_string();
        let manifest = files
            .get(&format!("crates/{dir}/Cargo.toml"))
            .map(String::as_str)
            .unwrap_or("");
        let bin = bin_re
            .captures(manifest)
            .or_else(|| name_re.captures(manifest))
            .map_or_else(|| dir.clone(), |b| b[1].to_string());
        let mut sources = vec![main];
        let prefix = format!("crates/{dir}/src/");
        for (p, t) in files {
            if p.starts_with(&prefix) && p.ends_with(".rs") && !p.ends_with("/main.rs") {
                sources.push(clean(t));
            }
        }
        out.push(Crate { dir, bin, sources });
    }
    out
}

/// The constant string values of a source (`const NAME: &str = "VALUE";`).
fn consts(src: &str) -> BTreeMap<String, String> {
    let re = re(r#"\bconst\s+([A-Z_][A-Z0-9_]*)\s*:\s*&(?:'static\s+)?str\s*=\s*"([^"]*)""#);
    re.captures_iter(src)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

/// The constant declarations of a source, one a line, for resolving names in parts of it.
fn consts_text(src: &str) -> String {
    consts(src)
        .iter()
        .map(|(name, value)| format!("const {name}: &str = \"{value}\";\n"))
        .collect()
}

/// Environment reads in `src` (see the module header for the idioms).
fn env_reads(src: &str, needs: &mut Needs) {
    let consts = consts(src);
    let arg = r#"(?:"([A-Z][A-Z0-9_]*)"|\b([A-Z][A-Z0-9_]*)\b)"#;
    let resolve = |c: &regex::Captures| -> Option<String> {
        c.get(1)
            .map(|m| m.as_str().to_string())
            .or_else(|| c.get(2).and_then(|m| consts.get(m.as_str()).cloned()))
    };
    let required = [
        format!(r"\btocsin_lambda::env\(\s*{arg}\s*\)"),
        format!(r"\brequired\(\s*[\w|&]+\s*,\s*{arg}\s*\)"),
        format!(r"\bneed\(\s*(?:&?\w+\s*,\s*)?{arg}\s*\)"),
        format!(r"\bvalue\(\s*{arg}\s*\)"),
    ];
    let optional = [
        format!(r"(?:^|[^:\w])get\(\s*{arg}\s*\)"),
        format!(r"(?:^|[^:\w])env\(\s*{arg}\s*\)"),
        format!(r"\bstd::env::var(?:_os)?\(\s*{arg}\s*\)"),
    ];
    for (patterns, set) in [
        (&required[..], &mut needs.required_env),
        (&optional[..], &mut needs.optional_env),
    ] {
        for p in patterns.iter() {
            for c in re(p).captures_iter(src) {
                if let Some(name) = resolve(&c) {
                    set.insert(name);
                }
            }
        }
    }
    if src.contains("try_from_default_env") {
        needs.optional_env.insert("RUST_LOG".into());
    }
}

/// Where the `ChannelKind::X =>` arms of `match`es on a channel kind are: (range, kinds of the arm,
/// kinds named by the other arms of the same match).
fn kind_arms(src: &str) -> Vec<(std::ops::Range<usize>, Option<String>, BTreeSet<String>)> {
    let arm_re = re(r"(?:ChannelKind::(\w+)|\b_)\s*=>");
    // Group arm markers by their enclosing block: the innermost unclosed `{` before them.
    let mut groups: BTreeMap<usize, Vec<(usize, Option<String>)>> = BTreeMap::new();
    for c in arm_re.captures_iter(src) {
        let at = c.get(0).expect("match").start();
        let mut depth = 0i32;
        let mut open = 0;
        for (i, ch) in src[..at].char_indices().rev() {
            match ch {
                '}' => depth += 1,
                '{' if depth == 0 => {
                    open = i;
                    break;
                }
                '{' => depth -= 1,
                _ => {}
            }
        }
        groups
            .entry(open)
            .or_default()
            .push((at, c.get(1).map(|m| m.as_str().to_string())));
    }
    let mut out = Vec::new();
    for (open, arms) in groups {
        if arms.iter().all(|(_, k)| k.is_none()) {
            continue;
        }
        let named: BTreeSet<String> = arms.iter().filter_map(|(_, k)| k.clone()).collect();
        let end = block_end(src, open);
        for (i, (at, kind)) in arms.iter().enumerate() {
            let stop = arms.get(i + 1).map_or(end, |(next, _)| *next);
            out.push((*at..stop, kind.clone(), named.clone()));
        }
    }
    out
}

/// The wiring of a function: its crate's sources (main.rs first), plus the `tocsin_aws::wiring`
/// functions main.rs reaches, plus `tocsin-lambda` when main.rs uses it.
fn wiring_of(files: &Files, krate: &Crate) -> Vec<String> {
    // The wiring: the crate's sources, plus what it calls in tocsin_aws::wiring.
    let mut wiring: Vec<String> = krate.sources.clone();
    let main = &krate.sources[0];
    if main.contains("tocsin_aws::wiring::") {
        let w = files
            .get("crates/aws/src/wiring.rs")
            .map(|s| clean(s))
            .unwrap_or_default();
        // Its functions main.rs calls, and the methods it calls on what they return
        // (`w.sweep_timer(..)`).
        let called: BTreeSet<String> = re(r"tocsin_aws::wiring::(\w+)|\.\s*(\w+)\s*\(")
            .captures_iter(main)
            .filter_map(|c| c.get(1).or(c.get(2)).map(|m| m.as_str().to_string()))
            .collect();
        let fns = rust_fns(&w);
        for name in reachable(&w, &fns, &called) {
            for f in fns.iter().filter(|f| f.name == name) {
                wiring.push(w[f.body.clone()].to_string());
            }
        }
    }
    if main.contains("tocsin_lambda::") {
        wiring.push(
            files
                .get("crates/lambda/src/lib.rs")
                .map(|s| clean(s))
                .unwrap_or_default(),
        );
    }
    wiring
}

/// Everything the code says one function (of crate `krate`, channel kind `kind` for deliver) needs.
fn needs(files: &Files, krate: &Crate, kind: Option<&str>, problems: &mut Vec<String>) -> Needs {
    let mut needs = Needs::default();
    let aws_lib = files
        .get("crates/aws/src/lib.rs")
        .map(|s| clean(s))
        .unwrap_or_default();
    // Adapter type -> module file.
    let use_re = re(r"pub use (\w+)::\{([^}]*)\}|pub use (\w+)::(\w+);");
    let mut adapter_file: BTreeMap<String, String> = BTreeMap::new();
    for c in use_re.captures_iter(&aws_lib) {
        let (module, names) = match (c.get(1), c.get(2)) {
            (Some(m), Some(n)) => (m.as_str(), n.as_str().to_string()),
            _ => (&c[3], c[4].to_string()),
        };
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            adapter_file.insert(name.to_string(), format!("crates/aws/src/{module}.rs"));
        }
    }
    let mut wiring = wiring_of(files, krate);
    // Adapters constructed and variables read, honouring `ChannelKind::X =>` arms in main.rs and in
    // the wiring functions it reaches (a deliver function's notifier registry): an arm for another
    // kind is blanked out (keeping offsets) before anything is read.
    let applies = |arm: &Option<String>, named: &BTreeSet<String>| match (arm, kind) {
        (Some(a), Some(k)) => a == k,
        (None, Some(k)) => !named.contains(k),
        (_, None) => true,
    };
    for src in &mut wiring {
        let mut blanked = std::mem::take(src).into_bytes();
        let text = String::from_utf8_lossy(&blanked).into_owned();
        for (range, arm, named) in kind_arms(&text) {
            if !applies(&arm, &named) {
                for b in &mut blanked[range] {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
            }
        }
        *src = String::from_utf8_lossy(&blanked).into_owned();
    }
    let ctor_re = re(r"\b([A-Z]\w*)\s*::\s*\w+\s*\(");
    let mut adapters: BTreeSet<String> = BTreeSet::new();
    for src in &wiring {
        for c in ctor_re.captures_iter(src) {
            if adapter_file.contains_key(&c[1]) {
                adapters.insert(c[1].to_string());
            }
        }
    }
    let wiring_text = wiring.join("\n");
    let called_methods: BTreeSet<String> = re(r"(?:\.|::)\s*([a-z_]\w*)\s*\(")
        .captures_iter(&wiring_text)
        .map(|c| c[1].to_string())
        .collect();
    let mut adapter_files: BTreeSet<&String> = BTreeSet::new();
    for ty in &adapters {
        adapter_files.insert(&adapter_file[ty]);
    }
    for path in adapter_files {
        let Some(text) = files.get(path) else {
            problems.push(format!("{path}: adapter file missing"));
            continue;
        };
        let src = clean(text);
        let sdk = re(r"\buse aws_sdk_(\w+)")
            .captures(&src)
            .map(|c| c[1].to_string());
        let Some(service) = sdk.as_deref().and_then(iam_service) else {
            problems.push(format!("{path}: no known AWS SDK client (use aws_sdk_...)"));
            continue;
        };
        let fns = rust_fns(&src);
        let entries: BTreeSet<String> = fns
            .iter()
            .filter(|f| {
                // A port's implementation counts where the function's code names the port.
                f.trait_impl
                    .as_ref()
                    .is_some_and(|t| re(&format!(r"\b{t}\b")).is_match(&wiring_text))
                    || called_methods.contains(&f.name)
            })
            .map(|f| f.name.clone())
            .collect();
        // Only what the function can reach reads the environment (a `from_env` it never calls
        // does not), with the file's constants to resolve names.
        let mut reached = consts_text(&src);
        let mut bodies = String::new();
        for name in reachable(&src, &fns, &entries) {
            for f in fns.iter().filter(|f| f.name == name) {
                let place = format!("{path}: fn {name}");
                needs
                    .actions
                    .extend(actions_of(service, &src[f.body.clone()], problems, &place));
                bodies.push_str(&src[f.body.clone()]);
                bodies.push('\n');
            }
        }
        // A helper of a sibling module (`use crate::dynamo::{put_new, ..}`) called from what the
        // function reaches makes its SDK calls too.
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        for (module, helper) in imported_fns(&src) {
            if !re(&format!(r"\b{helper}\s*\(")).is_match(&bodies) {
                continue;
            }
            let hpath = format!("{dir}/{module}.rs");
            let Some(htext) = files.get(&hpath) else {
                problems.push(format!("{path}: helper module {hpath} missing"));
                continue;
            };
            let hsrc = clean(htext);
            let hfns = rust_fns(&hsrc);
            for name in reachable(&hsrc, &hfns, &BTreeSet::from([helper])) {
                for f in hfns.iter().filter(|f| f.name == name) {
                    let place = format!("{hpath}: fn {name}");
                    needs.actions.extend(actions_of(
                        service,
                        &hsrc[f.body.clone()],
                        problems,
                        &place,
                    ));
                }
            }
        }
        reached.push_str(&bodies);
        env_reads(&reached, &mut needs);
    }
    for src in &wiring {
        env_reads(src, &mut needs);
    }
    let required = needs.required_env.clone();
    needs.optional_env.retain(|v| !required.contains(v));
    needs
}

/// The variable a deliver function needs for a setting (None for a literal): `{env: NAME}` is NAME;
/// `{secret: NAME}` is an entry of the channel's secret, whose ARN is `CHANNEL_SECRET_ARN`.
fn setting_var(setting: &tocsin_core::config::Setting) -> Option<String> {
    use tocsin_core::config::Setting;
    match setting {
        Setting::Literal(_) => None,
        Setting::Env(name) => Some(name.clone()),
        Setting::Secret(_) => Some("CHANNEL_SECRET_ARN".into()),
    }
}

// ------------------------------------------------------------------------------------------------
// The comparison.
// ------------------------------------------------------------------------------------------------

/// Every disagreement between the template and the code, one line each. `pending` names bins that
/// are in the template before their crate has landed (their env and actions cannot be checked yet).
fn check(files: &Files, template_text: &str, pending: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let template = match parse_yaml(template_text) {
        Ok(t) => t,
        Err(e) => return vec![format!("template: {e}")],
    };
    let config = match files
        .get("infra/tocsin.yaml")
        .map(|t| tocsin_core::config::load(t))
    {
        Some(Ok(c)) => c,
        _ => return vec!["infra/tocsin.yaml: missing or invalid".into()],
    };
    // resolve_setting's naming, mirrored above: fail if it changes.
    let secret_rs = files
        .get("crates/core/src/secret.rs")
        .map(String::as_str)
        .unwrap_or("");
    if !secret_rs.contains("Setting::Secret(name) => secrets") {
        problems.push("crates/core/src/secret.rs: resolve_setting no longer reads {secret: NAME} from the channel's secret; update setting_var".into());
    }
    let crates = lambda_crates(files);
    let functions = functions(&template);
    for krate in &crates {
        if !functions
            .iter()
            .any(|f| f.bin.as_deref() == Some(krate.bin.as_str()))
        {
            problems.push(format!(
                "crate {} (bin {}) has no function in the template",
                krate.dir, krate.bin
            ));
        }
        if pending.contains(&krate.bin.as_str()) {
            problems.push(format!(
                "bin {} has landed: take it off the pending list in tests/stack.rs",
                krate.bin
            ));
        }
    }
    let mut channels_served: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &functions {
        let id = &f.id;
        for (key, want) in [
            ("Runtime", "provided.al2023"),
            ("Handler", "bootstrap"),
            ("Architectures", "arm64"),
            ("BuildMethod", "rust-cargolambda"),
        ] {
            if f.settings.get(key).map(String::as_str) != Some(want) {
                problems.push(format!(
                    "{id}: {key} is {:?}, not {want}",
                    f.settings.get(key)
                ));
            }
        }
        for p in &f.opaque_policies {
            problems.push(format!("{id}: policy {p} is not an explicit statement (least privilege is checked on statements)"));
        }
        let Some(bin) = &f.bin else {
            problems.push(format!("{id}: no Metadata.Binary"));
            continue;
        };
        let Some(krate) = crates.iter().find(|c| &c.bin == bin) else {
            if !pending.contains(&bin.as_str()) {
                problems.push(format!("{id}: no crate has bin {bin}"));
            }
            continue;
        };
        // A deliver-style function: its channel decides its kind and its secrets.
        let mut kind = None;
        let mut channel_env = BTreeSet::new();
        let reads_channel = wiring_of(files, krate)
            .iter()
            .any(|src| src.contains("\"CHANNEL_NAME\""));
        if reads_channel {
            match f.env.get("CHANNEL_NAME").and_then(Node::str) {
                Some(name) => match config.channels.get(name) {
                    Some(ch) => {
                        kind = Some(format!("{:?}", ch.kind));
                        channel_env.extend(ch.settings.values().filter_map(setting_var));
                        channels_served
                            .entry(name.to_string())
                            .or_default()
                            .push(id.clone());
                        if f.channel_filters != vec![vec![name.to_string()]] {
                            problems.push(format!(
                                "{id}: its SNS subscription must filter on channel [{name}], found {:?}",
                                f.channel_filters
                            ));
                        }
                    }
                    None => problems.push(format!(
                        "{id}: CHANNEL_NAME {name} is not a channel of infra/tocsin.yaml"
                    )),
                },
                None => problems.push(format!("{id}: CHANNEL_NAME must be a literal channel name")),
            }
        }
        let mut needs = needs(files, krate, kind.as_deref(), &mut problems);
        for v in channel_env {
            needs.optional_env.remove(&v);
            needs.required_env.insert(v);
        }
        for v in &needs.required_env {
            if !f.env.contains_key(v) {
                problems.push(format!(
                    "{id}: environment variable {v} is required by bin {bin} but not set"
                ));
            }
        }
        for v in f.env.keys() {
            if !needs.required_env.contains(v) && !needs.optional_env.contains(v) {
                problems.push(format!(
                    "{id}: environment variable {v} is set but bin {bin} never reads it"
                ));
            }
        }
        for a in needs.actions.difference(&f.actions) {
            problems.push(format!(
                "{id}: action {a} is called by the code but not allowed"
            ));
        }
        for a in f.actions.difference(&needs.actions) {
            problems.push(format!(
                "{id}: action {a} is allowed but the code never calls it"
            ));
        }
    }
    if crates
        .iter()
        .any(|c| c.sources[0].contains("\"CHANNEL_NAME\""))
    {
        for name in config.channels.keys() {
            match channels_served.get(name).map(Vec::len) {
                Some(1) => {}
                None => problems.push(format!(
                    "channel {name} of infra/tocsin.yaml has no deliver function"
                )),
                Some(_) => problems.push(format!(
                    "channel {name} has several deliver functions: {:?}",
                    channels_served[name]
                )),
            }
        }
    }
    problems
}

/// The template's table against the layout `crates/aws/src/dynamo.rs` creates for local runs (keys,
/// indexes, projection, TTL attribute), plus what only a deployment sets: on-demand billing,
/// point-in-time recovery and encryption.
fn check_table(files: &Files, template_text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(template) = parse_yaml(template_text) else {
        return vec!["template: not YAML".into()];
    };
    let dynamo = clean(
        files
            .get("crates/aws/src/dynamo.rs")
            .map(String::as_str)
            .unwrap_or(""),
    );
    let consts = consts(&dynamo);
    let lit = |s: &str| {
        consts
            .get(s)
            .cloned()
            .unwrap_or_else(|| s.trim_matches('"').to_string())
    };
    let mut want_keys = Vec::new();
    for c in re(r#"\bkey\(\s*"(\w+)"\s*,\s*KeyType::(Hash|Range)\s*\)"#).captures_iter(&dynamo) {
        want_keys.push(format!("{}:{}", &c[1], c[2].to_ascii_uppercase()));
    }
    // The projection the code's indexes are made with (one for all of them): `ProjectionType::KeysOnly`
    // is the template's KEYS_ONLY.
    let projection = re(r"ProjectionType::(\w+)")
        .captures(&dynamo)
        .map(|c| {
            c[1].chars().fold(String::new(), |mut out, ch| {
                if ch.is_uppercase() && !out.is_empty() {
                    out.push('_');
                }
                out.push(ch.to_ascii_uppercase());
                out
            })
        })
        .unwrap_or_else(|| "?".into());
    let mut want_indexes = BTreeSet::new();
    for c in
        re(r#"\bindex\(\s*(\w+|"[^"]*")\s*,\s*"(\w+)"\s*,\s*"(\w+)"\s*\)"#).captures_iter(&dynamo)
    {
        want_indexes.insert(format!(
            "{} {}:HASH {}:RANGE {projection}",
            lit(&c[1]),
            &c[2],
            &c[3]
        ));
    }
    let want_ttl = consts.get("TTL_ATTRIBUTE").cloned();
    if want_keys.is_empty() || want_indexes.is_empty() || want_ttl.is_none() {
        problems.push(
            "crates/aws/src/dynamo.rs: table layout not found (keys, indexes, TTL_ATTRIBUTE)"
                .into(),
        );
    }
    let tables: Vec<&Node> = template
        .get("Resources")
        .map(Node::entries)
        .unwrap_or_default()
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Node::str) == Some("AWS::DynamoDB::Table"))
        .filter_map(|(_, r)| r.get("Properties"))
        .collect();
    let [table] = tables.as_slice() else {
        return vec![format!(
            "template: {} DynamoDB tables, expected one",
            tables.len()
        )];
    };
    let keys = |n: Option<&Node>| -> Vec<String> {
        match n {
            Some(Node::Seq(items)) => items
                .iter()
                .map(|k| {
                    let f = |f: &str| k.get(f).and_then(Node::str).unwrap_or("?").to_string();
                    format!("{}:{}", f("AttributeName"), f("KeyType"))
                })
                .collect(),
            _ => vec![],
        }
    };
    if keys(table.get("KeySchema")) != want_keys {
        problems.push(format!(
            "Table: KeySchema {:?}, the code uses {want_keys:?}",
            keys(table.get("KeySchema"))
        ));
    }
    let mut have_indexes = BTreeSet::new();
    if let Some(Node::Seq(gsis)) = table.get("GlobalSecondaryIndexes") {
        // An index under a condition (`!If`) is one an upgrade keeps for a while, read by no
        // code: not the layout's.
        for g in gsis.iter().filter(|g| !matches!(g, Node::Tagged(..))) {
            let name = g.get("IndexName").and_then(Node::str).unwrap_or("?");
            let projection = g
                .at(&["Projection", "ProjectionType"])
                .and_then(Node::str)
                .unwrap_or("?");
            have_indexes.insert(format!(
                "{name} {} {projection}",
                keys(g.get("KeySchema")).join(" ")
            ));
        }
    }
    for i in want_indexes.difference(&have_indexes) {
        problems.push(format!("Table: index {i} is missing"));
    }
    for i in have_indexes.difference(&want_indexes) {
        problems.push(format!("Table: index {i} is not the code's"));
    }
    let ttl = table
        .at(&["TimeToLiveSpecification", "AttributeName"])
        .and_then(Node::str);
    if ttl.map(String::from) != want_ttl
        || table
            .at(&["TimeToLiveSpecification", "Enabled"])
            .and_then(Node::str)
            != Some("true")
    {
        problems.push(format!(
            "Table: TTL must be enabled on {want_ttl:?}, found {ttl:?}"
        ));
    }
    for (path, want) in [
        (&["BillingMode"][..], "PAY_PER_REQUEST"),
        (
            &[
                "PointInTimeRecoverySpecification",
                "PointInTimeRecoveryEnabled",
            ][..],
            "true",
        ),
        (&["SSESpecification", "SSEEnabled"][..], "true"),
    ] {
        if table.at(path).and_then(Node::str) != Some(want) {
            problems.push(format!("Table: {} must be {want}", path.join(".")));
        }
    }
    problems
}

/// Meta-monitoring: an `Errors` alarm on every function and a depth alarm on every queue, each
/// notifying a topic.
fn check_meta_monitoring(template_text: &str) -> Vec<String> {
    let Ok(template) = parse_yaml(template_text) else {
        return vec!["template: not YAML".into()];
    };
    let resources = template
        .get("Resources")
        .map(Node::entries)
        .unwrap_or_default();
    let of_type = |t: &str| -> Vec<&String> {
        resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Node::str) == Some(t))
            .map(|(id, _)| id)
            .collect()
    };
    // (metric, dimension value: the tagged reference's target) of every alarm with an action.
    let mut watched = BTreeSet::new();
    for (_, r) in resources {
        if r.get("Type").and_then(Node::str) != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let Some(p) = r.get("Properties") else {
            continue;
        };
        if !matches!(p.get("AlarmActions"), Some(Node::Seq(a)) if !a.is_empty()) {
            continue;
        }
        let metric = p.get("MetricName").and_then(Node::str).unwrap_or("?");
        if let Some(Node::Seq(dims)) = p.get("Dimensions") {
            for d in dims {
                if let Some(Node::Tagged(_, target)) = d.get("Value") {
                    let target = target.str().unwrap_or("?").split('.').next().unwrap_or("?");
                    watched.insert(format!("{metric} {target}"));
                }
            }
        }
    }
    let mut problems = Vec::new();
    for f in of_type("AWS::Serverless::Function") {
        if !watched.contains(&format!("Errors {f}")) {
            problems.push(format!("{f}: no alarm on its Errors"));
        }
        // Reserved concurrency caps every function: being throttled is the first sign of a flood.
        if !watched.contains(&format!("Throttles {f}")) {
            problems.push(format!("{f}: no alarm on its Throttles"));
        }
        // Async functions (all but the api): events waiting in Lambda's queue mean late pages.
        let is_api = f == "ApiFunction";
        if !is_api && !watched.contains(&format!("AsyncEventAge {f}")) {
            problems.push(format!("{f}: no alarm on its AsyncEventAge"));
        }
    }
    for q in of_type("AWS::SQS::Queue") {
        if !watched.contains(&format!("ApproximateNumberOfMessagesVisible {q}")) {
            problems.push(format!("{q}: no alarm on its depth"));
        }
    }
    problems
}

/// The EventBridge (source, detail-type) pairs the parsers read, from the `match` arms of
/// `crates/core/src/source/{eventbridge,signals}.rs`: `("aws.x", "Type A" | "Type B") =>`.
fn parsed_event_kinds(files: &Files) -> BTreeMap<String, BTreeSet<String>> {
    let arm = re(r#"\(\s*"(aws\.[a-z0-9]+)"\s*,\s*((?:"[^"]+"\s*\|?\s*)+),?\s*\)"#);
    let name = re(r#""([^"]+)""#);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in [
        "crates/core/src/source/eventbridge.rs",
        "crates/core/src/source/signals.rs",
    ] {
        let mut src = clean(files.get(path).map(String::as_str).unwrap_or(""));
        // Routine events are skipped with a reason when a rule that matches too widely sends them:
        // no rule needs to send them.
        if let Some(at) = src.find("const ROUTINE") {
            let end = src[at..].find("];").map_or(src.len(), |e| at + e);
            src.replace_range(at..end, "");
        }
        for c in arm.captures_iter(&src) {
            let types = out.entry(c[1].to_string()).or_default();
            for t in name.captures_iter(&c[2]) {
                // Skipped too: a change to an alarm's configuration is not a problem.
                if &t[1] != "CloudWatch Alarm Configuration Change" {
                    types.insert(t[1].to_string());
                }
            }
        }
    }
    out
}

/// The parameters a condition tests for `'true'` (`!Equals [!Ref P, 'true']`), and the conditions it
/// builds on, following `!And`, `!Or` and `!Condition` through the template's `Conditions`.
fn condition_parts(template: &Node, name: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    fn walk(
        template: &Node,
        node: &Node,
        params: &mut BTreeSet<String>,
        conds: &mut BTreeSet<String>,
    ) {
        match node {
            Node::Tagged(tag, inner) if tag == "Condition" => {
                if let Some(c) = inner.str() {
                    if conds.insert(c.to_string()) {
                        if let Some(def) = template.at(&["Conditions", c]) {
                            walk(template, def, params, conds);
                        }
                    }
                }
            }
            Node::Tagged(tag, inner) if tag == "Equals" => {
                if let Node::Seq(items) = &**inner {
                    if let [Node::Tagged(r, p), Node::Scalar(v)] = items.as_slice() {
                        if r == "Ref" && v == "true" {
                            params.extend(p.str().map(String::from));
                        }
                    }
                }
            }
            Node::Tagged(_, inner) => walk(template, inner, params, conds),
            Node::Seq(items) => items.iter().for_each(|i| walk(template, i, params, conds)),
            _ => {}
        }
    }
    let (mut params, mut conds) = (BTreeSet::new(), BTreeSet::new());
    walk(
        template,
        &Node::Tagged("Condition".into(), Box::new(Node::Scalar(name.into()))),
        &mut params,
        &mut conds,
    );
    (params, conds)
}

/// Whether `node` holds `!GetAtt <target>` anywhere.
fn mentions_getatt(node: &Node, target: &str) -> bool {
    match node {
        Node::Tagged(tag, inner) if tag == "GetAtt" => inner.str() == Some(target),
        Node::Tagged(_, inner) => mentions_getatt(inner, target),
        Node::Seq(items) => items.iter().any(|i| mentions_getatt(i, target)),
        Node::Map(entries) => entries.iter().any(|(_, v)| mentions_getatt(v, target)),
        Node::Scalar(_) => false,
    }
}

/// The source rules against the parsers: every (source, detail-type) the code parses has a rule
/// sending it to ingest on the default bus and, when the template makes a central bus, on that bus
/// too; each rule is opt-in (conditioned on one `Enable<Source>Events` parameter, one parameter per
/// source; a central-bus rule also on the bus's own condition), has the Lambda permission for its ARN
/// under the same condition, a retry policy and a dead-letter queue whose policy names it.
fn check_rules(files: &Files, template_text: &str) -> Vec<String> {
    let Ok(template) = parse_yaml(template_text) else {
        return vec!["template: not YAML".into()];
    };
    let kinds = parsed_event_kinds(files);
    if !kinds.contains_key("aws.health") || !kinds.contains_key("aws.cloudwatch") {
        return vec![format!(
            "crates/core/src/source: the parsers' (source, detail-type) arms were not found: {kinds:?}"
        )];
    }
    let resources = template
        .get("Resources")
        .map(Node::entries)
        .unwrap_or_default();
    let of_type = |t: &str| -> Vec<(&String, &Node)> {
        resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Node::str) == Some(t))
            .map(|(id, r)| (id, r))
            .collect()
    };
    let mut problems = Vec::new();
    let buses = of_type("AWS::Events::EventBus");
    let central = buses.first().map(|(id, r)| {
        (
            id.to_string(),
            r.get("Condition").and_then(Node::str).map(String::from),
        )
    });
    let ingest = Node::Tagged(
        "GetAtt".into(),
        Box::new(Node::Scalar("IngestFunction.Arn".into())),
    );
    // Per rule: (id, bus, sources, detail-types, Enable parameter).
    let mut rules = Vec::new();
    for (id, rule) in of_type("AWS::Events::Rule") {
        let props = rule.get("Properties");
        let bus = match props.and_then(|p| p.get("EventBusName")) {
            None => "default".to_string(),
            Some(Node::Tagged(t, b)) if t == "Ref" => b.str().unwrap_or("?").to_string(),
            Some(other) => format!("{other:?}"),
        };
        let pattern = props.and_then(|p| p.get("EventPattern"));
        let sources = pattern
            .and_then(|p| p.get("source"))
            .map(Node::strings)
            .unwrap_or_default();
        let types = pattern
            .and_then(|p| p.get("detail-type"))
            .map(Node::strings)
            .unwrap_or_default();
        let targets = match props.and_then(|p| p.get("Targets")) {
            Some(Node::Seq(t)) => t.clone(),
            _ => vec![],
        };
        let to_ingest: Vec<&Node> = targets
            .iter()
            .filter(|t| t.get("Arn") == Some(&ingest))
            .collect();
        if to_ingest.is_empty() {
            continue;
        }
        for t in &to_ingest {
            if t.get("RetryPolicy").is_none() {
                problems.push(format!("{id}: its ingest target has no RetryPolicy"));
            }
            match t.at(&["DeadLetterConfig", "Arn"]) {
                Some(Node::Tagged(tag, q)) if tag == "GetAtt" => {
                    let queue = q.str().unwrap_or("?").trim_end_matches(".Arn");
                    let named = of_type("AWS::SQS::QueuePolicy").iter().any(|(_, p)| {
                        p.at(&["Properties", "Queues"])
                            .is_some_and(|qs| format!("{qs:?}").contains(&format!("{queue:?}")))
                            && mentions_getatt(p, &format!("{id}.Arn"))
                    });
                    if !named {
                        problems.push(format!(
                            "{id}: the policy of its dead-letter queue {queue} does not name it"
                        ));
                    }
                }
                _ => problems.push(format!("{id}: its ingest target has no DeadLetterConfig")),
            }
        }
        let condition = rule.get("Condition").and_then(Node::str);
        let mut param = None;
        match condition {
            None => problems.push(format!(
                "{id}: no Condition (each source's rule is opt-in by its parameter)"
            )),
            Some(c) => {
                let (params, conds) = condition_parts(&template, c);
                let enables: Vec<&String> = params
                    .iter()
                    .filter(|p| re(r"^Enable\w+Events$").is_match(p))
                    .collect();
                match enables.as_slice() {
                    [p] => {
                        let allowed = template
                            .at(&["Parameters", p, "AllowedValues"])
                            .map(Node::strings)
                            .unwrap_or_default();
                        if allowed != ["true", "false"] {
                            problems.push(format!(
                                "{id}: parameter {p} must allow exactly 'true' and 'false'"
                            ));
                        }
                        param = Some(p.to_string());
                    }
                    _ => problems.push(format!(
                        "{id}: condition {c} is not on one Enable<Source>Events parameter ({params:?})"
                    )),
                }
                if let Some((bus_id, Some(bus_cond))) = &central {
                    if &bus == bus_id && !conds.contains(bus_cond) {
                        problems.push(format!(
                            "{id}: on {bus_id} but not conditioned on {bus_cond}"
                        ));
                    }
                }
            }
        }
        let permitted = of_type("AWS::Lambda::Permission").iter().any(|(_, p)| {
            let pp = p.get("Properties");
            pp.and_then(|x| x.get("SourceArn"))
                == Some(&Node::Tagged(
                    "GetAtt".into(),
                    Box::new(Node::Scalar(format!("{id}.Arn"))),
                ))
                && pp.and_then(|x| x.get("Principal")).and_then(Node::str)
                    == Some("events.amazonaws.com")
                && p.get("Condition").and_then(Node::str) == condition
        });
        if !permitted {
            problems.push(format!(
                "{id}: no Lambda permission for its ARN under its condition"
            ));
        }
        rules.push((id.to_string(), bus, sources, types, param));
    }
    let mut buses_wanted = vec!["default".to_string()];
    buses_wanted.extend(central.iter().map(|(id, _)| id.clone()));
    let mut gate_of: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (source, types) in &kinds {
        for t in types {
            for bus in &buses_wanted {
                let covering: Vec<_> = rules
                    .iter()
                    .filter(|(_, b, srcs, dts, _)| {
                        b == bus && srcs.contains(source) && (dts.is_empty() || dts.contains(t))
                    })
                    .collect();
                if covering.is_empty() {
                    problems.push(format!(
                        "{source} \"{t}\": no rule on the {bus} bus sends it to ingest"
                    ));
                }
                for (_, _, _, _, p) in covering {
                    gate_of
                        .entry(source.as_str())
                        .or_default()
                        .extend(p.clone());
                }
            }
        }
    }
    let mut owner: BTreeMap<&String, &str> = BTreeMap::new();
    for (source, params) in &gate_of {
        if params.len() > 1 {
            problems.push(format!(
                "{source}: its rules are gated by several parameters {params:?}"
            ));
        }
        for p in params {
            if let Some(other) = owner.insert(p, source) {
                problems.push(format!("parameter {p} gates both {other} and {source}"));
            }
        }
    }
    problems
}

// ------------------------------------------------------------------------------------------------
// Tests.
// ------------------------------------------------------------------------------------------------

// ------------------------------------------------------------------------------------------------
// Secrets: never in the environment; each function reads its own only.
// ------------------------------------------------------------------------------------------------

/// The names a node refers to with `!Ref` or `${...}` inside `!Sub`.
fn refs(node: &Node) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    match node {
        Node::Tagged(t, inner) if t == "Ref" => {
            out.extend(inner.str().map(String::from));
        }
        Node::Tagged(t, inner) if t == "Sub" => {
            let text = match inner.as_ref() {
                Node::Seq(items) => items.first().and_then(Node::str).unwrap_or_default(),
                other => other.str().unwrap_or_default(),
            };
            for c in re(r"\$\{([A-Za-z0-9]+)").captures_iter(text) {
                out.insert(c[1].to_string());
            }
            if let Node::Seq(items) = inner.as_ref() {
                for i in &items[1..] {
                    out.extend(refs(i));
                }
            }
        }
        Node::Tagged(_, inner) => out.extend(refs(inner)),
        Node::Seq(items) => items.iter().for_each(|i| out.extend(refs(i))),
        Node::Map(entries) => entries.iter().for_each(|(_, v)| out.extend(refs(v))),
        Node::Scalar(_) => {}
    }
    out
}

/// No function's environment refers to a NoEcho parameter (a secret in a variable is readable by
/// anyone with `lambda:GetFunctionConfiguration`); every `*_SECRET_ARN` variable names a
/// `AWS::SecretsManager::Secret` of the stack; and each function may `secretsmanager:GetSecretValue`
/// exactly the secrets its variables name, nothing else.
fn check_secrets(template_text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(template) = parse_yaml(template_text) else {
        return vec!["template: not YAML".into()];
    };
    let no_echo: BTreeSet<String> = template
        .get("Parameters")
        .map(Node::entries)
        .unwrap_or_default()
        .iter()
        .filter(|(_, p)| p.get("NoEcho").and_then(Node::str) == Some("true"))
        .map(|(k, _)| k.clone())
        .collect();
    let resources = template
        .get("Resources")
        .map(Node::entries)
        .unwrap_or_default();
    let secrets: BTreeSet<String> = resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Node::str) == Some("AWS::SecretsManager::Secret"))
        .map(|(k, _)| k.clone())
        .collect();
    for f in functions(&template) {
        let id = &f.id;
        let mut named = BTreeSet::new();
        for (var, value) in &f.env {
            for r in refs(value) {
                if no_echo.contains(&r) {
                    problems.push(format!(
                        "{id}: {var} carries the NoEcho parameter {r}: a secret in the environment"
                    ));
                }
                if var.ends_with("_SECRET_ARN") {
                    if secrets.contains(&r) {
                        named.insert(r);
                    } else {
                        problems.push(format!(
                            "{id}: {var} names {r}, which is not a secret of the stack"
                        ));
                    }
                }
            }
        }
        let Some((_, res)) = resources.iter().find(|(k, _)| k == id) else {
            continue;
        };
        let mut readable = BTreeSet::new();
        for policy in match res.at(&["Properties", "Policies"]) {
            Some(Node::Seq(items)) => items.clone(),
            _ => Vec::new(),
        } {
            for s in match policy.get("Statement") {
                Some(Node::Seq(items)) => items.clone(),
                _ => Vec::new(),
            } {
                let actions = s.get("Action").map(Node::strings).unwrap_or_default();
                if actions.iter().any(|a| a.starts_with("secretsmanager:")) {
                    match s.get("Resource") {
                        Some(r) => readable.extend(refs(r)),
                        None => problems
                            .push(format!("{id}: a secretsmanager statement without Resource")),
                    }
                    if s.get("Resource")
                        .is_some_and(|r| r.strings().iter().any(|x| x.contains('*')))
                    {
                        problems.push(format!("{id}: may read secrets by wildcard"));
                    }
                }
            }
        }
        if readable != named {
            problems.push(format!(
                "{id}: may read secrets {readable:?}, but its environment names {named:?}"
            ));
        }
    }
    problems
}

#[test]
fn no_secret_is_in_an_environment_and_each_function_reads_its_own_secrets_only() {
    assert_eq!(check_secrets(&repo_template()), Vec::<String>::new());
}

#[test]
fn a_secret_in_a_variable_or_a_read_of_another_functions_secret_is_caught() {
    let t = repo_template();
    let leaked = t.replacen(
        "          CHANNEL_SECRET_ARN: !Ref TeamsSecret\n",
        "          CHANNEL_SECRET_ARN: !Ref TeamsSecret\n          TEAMS_URL: !Ref TeamsWebhookUrl\n",
        1,
    );
    assert_ne!(leaked, t);
    assert_eq!(
        check_secrets(&leaked),
        vec!["DeliverTeamsFunction: TEAMS_URL carries the NoEcho parameter TeamsWebhookUrl: a secret in the environment".to_string()]
    );
    let wider = t.replacen(
        "Resource: [!Ref LinkKeysSecret, !Ref TeamsSecret]",
        "Resource: [!Ref LinkKeysSecret, !Ref TeamsSecret, !Ref PagerdutySecret]",
        1,
    );
    assert_ne!(wider, t);
    assert_eq!(
        check_secrets(&wider).len(),
        1,
        "{:?}",
        check_secrets(&wider)
    );
}

#[test]
fn every_function_and_both_internal_topics_carry_the_x_ray_trace() {
    let t = parse_yaml(&repo_template()).expect("template");
    assert_eq!(
        t.at(&["Globals", "Function", "Tracing"])
            .and_then(Node::str),
        Some("Active"),
        "Globals.Function.Tracing"
    );
    for topic in ["AlertsTopic", "DeliveriesTopic"] {
        assert_eq!(
            t.at(&["Resources", topic, "Properties", "TracingConfig"])
                .and_then(Node::str),
            Some("Active"),
            "{topic}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// The HTTP routes: the api function's `HttpApi` events against crates/api/src/routes.rs.
// ------------------------------------------------------------------------------------------------

/// Every route of the table that runs on AWS is an `HttpApi` event of the function whose bin is
/// `api`, with the authorizer exactly when its auth needs one (the API's `DefaultAuthorizer` unless
/// the event says `Authorizer: NONE`); the template declares no route the table lacks, and none
/// twice.
fn check_routes(template_text: &str) -> Vec<String> {
    use tocsin_api::routes::ROUTES;
    let mut problems = Vec::new();
    let template = match parse_yaml(template_text) {
        Ok(t) => t,
        Err(e) => return vec![format!("template: {e}")],
    };
    let resources = template
        .get("Resources")
        .map(Node::entries)
        .unwrap_or_default();
    let default_auth = |api: &str| {
        resources
            .iter()
            .find(|(id, _)| id == api)
            .and_then(|(_, r)| r.at(&["Properties", "Auth", "DefaultAuthorizer"]))
            .and_then(Node::str)
            .map(String::from)
    };
    // (method, path) -> (event id, has an authorizer)
    let mut declared: BTreeMap<(String, String), (String, bool)> = BTreeMap::new();
    for (id, res) in resources {
        let Some(props) = res.get("Properties") else {
            continue;
        };
        for (event_id, event) in props.get("Events").map(Node::entries).unwrap_or_default() {
            if event.get("Type").and_then(Node::str) != Some("HttpApi") {
                continue;
            }
            if res.at(&["Metadata", "Binary"]).and_then(Node::str) != Some("api") {
                problems.push(format!(
                    "{id}.{event_id}: an HTTP route on a function that is not the api"
                ));
                continue;
            }
            let p = event.get("Properties");
            let field = |k: &str| {
                p.and_then(|p| p.get(k))
                    .and_then(Node::str)
                    .unwrap_or_default()
                    .to_string()
            };
            let api = match p.and_then(|p| p.get("ApiId")) {
                Some(Node::Tagged(t, inner)) if t == "Ref" => {
                    inner.str().unwrap_or_default().to_string()
                }
                _ => String::new(),
            };
            let authorizer = match p
                .and_then(|p| p.at(&["Auth", "Authorizer"]))
                .and_then(Node::str)
            {
                Some("NONE") => None,
                Some(a) => Some(a.to_string()),
                None => default_auth(&api),
            };
            let key = (field("Method").to_ascii_uppercase(), field("Path"));
            if let Some((other, _)) =
                declared.insert(key.clone(), (event_id.clone(), authorizer.is_some()))
            {
                problems.push(format!(
                    "{} {}: declared twice ({other} and {event_id})",
                    key.0, key.1
                ));
            }
        }
    }
    for spec in ROUTES {
        let key = (spec.method.to_string(), spec.path.to_string());
        match (spec.serve_only, declared.remove(&key)) {
            (true, None) => {}
            (true, Some((event, _))) => problems.push(format!(
                "{} {}: `tocsin serve` only, but the template deploys it ({event})",
                spec.method, spec.path
            )),
            (false, None) => problems.push(format!(
                "{} {}: in the route table, no HttpApi event of the api function",
                spec.method, spec.path
            )),
            (false, Some((event, authorized))) if authorized != spec.auth.needs_authorizer() => {
                problems.push(format!(
                    "{} {} ({event}): auth is {}, so the route needs {}",
                    spec.method,
                    spec.path,
                    spec.auth.as_str(),
                    if spec.auth.needs_authorizer() {
                        "the authorizer"
                    } else {
                        "Authorizer: NONE"
                    }
                ))
            }
            (false, Some(_)) => {}
        }
    }
    for ((method, path), (event, _)) in declared {
        problems.push(format!(
            "{method} {path} ({event}): no route of the handler's table"
        ));
    }
    problems
}

#[test]
fn every_public_and_one_click_route_has_its_own_throttle() {
    use tocsin_api::routes::{Auth, ROUTES};
    let t = parse_yaml(&repo_template()).expect("template");
    let settings = t
        .at(&["Resources", "HttpApi", "Properties", "RouteSettings"])
        .map(Node::entries)
        .unwrap_or_default();
    let mut missing = Vec::new();
    for spec in ROUTES
        .iter()
        .filter(|r| matches!(r.auth, Auth::Public | Auth::Token))
    {
        let key = format!("{} {}", spec.method, spec.path);
        let limited = settings.iter().any(|(k, v)| {
            *k == key
                && v.get("ThrottlingRateLimit").is_some()
                && v.get("ThrottlingBurstLimit").is_some()
        });
        if !limited {
            missing.push(key);
        }
    }
    assert_eq!(missing, Vec::<String>::new(), "HttpApi.RouteSettings");
    assert!(
        t.at(&[
            "Resources",
            "HttpApi",
            "Properties",
            "DefaultRouteSettings",
            "ThrottlingRateLimit"
        ])
        .is_some(),
        "a default throttle for every other route"
    );
}

#[test]
fn every_route_of_the_table_is_deployed_with_its_auth_and_nothing_else_is() {
    assert_eq!(check_routes(&repo_template()), Vec::<String>::new());
}

#[test]
fn a_missing_route_a_public_internal_view_or_an_unknown_route_is_caught() {
    let t = repo_template();
    let without_delete = t.replace(
        "Path: '/silences/{id}', Method: DELETE",
        "Path: /silences, Method: DELETE",
    );
    assert_ne!(without_delete, t, "the template has the DELETE route");
    assert_eq!(
        check_routes(&without_delete),
        vec![
            "DELETE /silences/{id}: in the route table, no HttpApi event of the api function"
                .to_string(),
            "DELETE /silences (ExpireSilence): no route of the handler's table".to_string(),
        ]
    );
    let public_internal = t.replace(
        "Path: /status/internal, Method: GET}",
        "Path: /status/internal, Method: GET, Auth: {Authorizer: NONE}}",
    );
    assert_ne!(public_internal, t);
    assert_eq!(
        check_routes(&public_internal),
        vec!["GET /status/internal (InternalStatusPage): auth is authorizer, so the route needs the authorizer".to_string()]
    );
    let guarded_status = t.replace(
        "Path: /status, Method: GET, Auth: {Authorizer: NONE}}",
        "Path: /status, Method: GET}",
    );
    assert_ne!(guarded_status, t);
    assert_eq!(
        check_routes(&guarded_status).len(),
        1,
        "a public page behind the authorizer"
    );
}

/// Bins in the template whose crate is being written on another branch.
const PENDING: &[&str] = &[];

fn repo_files() -> Files {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Files::new();
    let mut todo = vec![root.join("crates")];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
                let rel = path
                    .strip_prefix(&root)
                    .expect("prefix")
                    .to_string_lossy()
                    .replace('\\', "/");
                files.insert(rel, std::fs::read_to_string(&path).expect("read"));
            }
        }
    }
    let config = std::fs::read_to_string(root.join("infra/tocsin.yaml")).expect("config");
    files.insert("infra/tocsin.yaml".into(), config);
    files
}

fn repo_template() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"))
        .expect("template")
}

#[test]
fn the_template_matches_the_code() {
    let problems = check(&repo_files(), &repo_template(), PENDING);
    assert!(
        problems.is_empty(),
        "infra/template.yaml disagrees with the code:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_table_matches_the_stores_layout_and_every_function_and_queue_is_watched() {
    let t = repo_template();
    assert_eq!(check_table(&repo_files(), &t), Vec::<String>::new());
    assert_eq!(check_meta_monitoring(&t), Vec::<String>::new());
}

#[test]
fn a_wrong_index_or_an_unwatched_function_is_caught() {
    let t = repo_template();
    let wrong = t.replacen(
        "{AttributeName: status_sk, KeyType: RANGE}",
        "{AttributeName: status_at, KeyType: RANGE}",
        1,
    );
    assert_ne!(wrong, t);
    assert_eq!(
        check_table(&repo_files(), &wrong),
        vec![
            "Table: index by-status-keys status_pk:HASH status_sk:RANGE KEYS_ONLY is missing",
            "Table: index by-status-keys status_pk:HASH status_at:RANGE KEYS_ONLY is not the code's",
        ]
    );
    // An index that projects every attribute bills each write of a listed alert twice.
    let all = t.replacen(
        "Projection: {ProjectionType: KEYS_ONLY}",
        "Projection: {ProjectionType: ALL}",
        1,
    );
    assert_ne!(all, t);
    assert_eq!(
        check_table(&repo_files(), &all),
        vec![
            "Table: index by-status-keys status_pk:HASH status_sk:RANGE KEYS_ONLY is missing",
            "Table: index by-status-keys status_pk:HASH status_sk:RANGE ALL is not the code's",
        ]
    );
    let no_pitr = t.replace(
        "PointInTimeRecoveryEnabled: true",
        "PointInTimeRecoveryEnabled: false",
    );
    assert_eq!(
        check_table(&repo_files(), &no_pitr),
        vec!["Table: PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled must be true"]
    );
    let unwatched = t.replace("Value: !Ref RouterFunction}", "Value: !Ref IngestFunction}");
    assert_ne!(unwatched, t);
    assert_eq!(
        check_meta_monitoring(&unwatched),
        vec![
            "RouterFunction: no alarm on its Errors",
            "RouterFunction: no alarm on its Throttles",
            "RouterFunction: no alarm on its AsyncEventAge",
        ]
    );
}

#[test]
fn the_code_side_sees_what_each_real_function_needs() {
    // Guards the reader itself: if it stopped seeing the adapters, the comparison would pass vacuously.
    let files = repo_files();
    let crates = lambda_crates(&files);
    let bins: BTreeSet<&str> = crates.iter().map(|c| c.bin.as_str()).collect();
    assert!(
        ["ingest", "router", "deliver", "escalate"]
            .iter()
            .all(|b| bins.contains(b)),
        "{bins:?}"
    );
    let get = |bin: &str, kind: Option<&str>| {
        let mut problems = Vec::new();
        let n = needs(
            &files,
            crates.iter().find(|c| c.bin == bin).expect("crate"),
            kind,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        n
    };
    let ingest = get("ingest", None);
    assert_eq!(
        ingest.actions,
        BTreeSet::from(
            [
                "sns:Publish",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
                "scheduler:CreateSchedule",
                "iam:PassRole",
            ]
            .map(String::from)
        ),
        "the alerts topic, the page store and the sweep timer, nothing of the alert store"
    );
    for v in [
        "ALERTS_TOPIC_ARN",
        "TABLE_NAME",
        "SCHEDULE_GROUP",
        "SCHEDULER_ROLE_ARN",
    ] {
        assert!(
            ingest.required_env.contains(v),
            "{v} in {:?}",
            ingest.required_env
        );
    }
    let router = get("router", None);
    for a in [
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "scheduler:CreateSchedule",
        "iam:PassRole",
    ] {
        assert!(router.actions.contains(a), "{a} in {:?}", router.actions);
    }
    // create_table_if_missing and get_input are not reachable from a function.
    for a in [
        "dynamodb:CreateTable",
        "dynamodb:UpdateTimeToLive",
        "scheduler:GetSchedule",
        "dynamodb:TransactWriteItems",
    ] {
        assert!(!router.actions.contains(a), "{a} in {:?}", router.actions);
    }
    for v in [
        "TABLE_NAME",
        "DELIVERIES_TOPIC_ARN",
        "SCHEDULE_GROUP",
        "ESCALATE_FUNCTION_ARN",
        "SCHEDULER_ROLE_ARN",
    ] {
        assert!(
            router.required_env.contains(v),
            "{v} in {:?}",
            router.required_env
        );
    }
    assert!(
        router.optional_env.contains("SCHEDULER_DLQ_ARN")
            && router.optional_env.contains("TOCSIN_CONFIG")
    );
    let email = get("deliver", Some("Email"));
    let slack = get("deliver", Some("Slack"));
    assert!(email.actions.contains("ses:SendEmail"));
    assert!(slack.actions.contains("sns:Publish") && slack.actions.contains("dynamodb:GetItem"));
    assert_eq!(
        email.actions.difference(&slack.actions).collect::<Vec<_>>(),
        vec!["ses:SendEmail"]
    );
}

#[test]
fn removing_a_variable_from_the_real_template_is_caught() {
    let t = repo_template().replace("          ALERTS_TOPIC_ARN: !Ref AlertsTopic\n", "");
    assert_ne!(t, repo_template(), "the doctoring must change the template");
    let problems = check(&repo_files(), &t, PENDING);
    assert_eq!(
        problems,
        vec![
            "IngestFunction: environment variable ALERTS_TOPIC_ARN is required by bin ingest but not set"
        ]
    );
}

#[test]
fn removing_or_adding_an_action_in_the_real_template_is_caught() {
    let t = repo_template();
    let email = t.replacen(
        "              Action: [ses:SendEmail]\n",
        "              Action: [ses:SendRawEmail]\n",
        1,
    );
    assert_ne!(email, t);
    let problems = check(&repo_files(), &email, PENDING);
    assert_eq!(
        problems,
        vec![
            "DeliverOncallEmailFunction: action ses:SendEmail is called by the code but not allowed",
            "DeliverOncallEmailFunction: action ses:SendRawEmail is allowed but the code never calls it",
        ]
    );
}

/// A made-up workspace: the aws crate's re-exports, one adapter, one function.
fn tiny(main: &str, template_env: &str, actions: &str) -> (Files, String) {
    let mut files = Files::new();
    files.insert(
        "crates/aws/src/lib.rs".into(),
        "pub mod sns;\npub use sns::{SnsBus, SnsBusError};\n".into(),
    );
    files.insert(
        "crates/aws/src/sns.rs".into(),
        r#"use aws_sdk_sns::Client;
pub struct SnsBus { client: Client }
impl SnsBus {
    pub fn alerts(client: Client, t: String) -> Self { SnsBus { client } }
    async fn publish(&self, body: &str) { self.client.publish().message(body).send().await; }
    pub async fn admin(&self) { self.client.create_topic().name("x").send().await; }
}
impl Bus for SnsBus {
    async fn publish_alert(&self, a: &Alert) { let _ = "{"; self.publish("}").await }
}
#[cfg(test)]
mod tests {
    fn t() { std::env::var("TEST_ONLY"); client.delete_topic(); }
}
"#
        .into(),
    );
    files.insert(
        "crates/ingest/Cargo.toml".into(),
        "[package]\nname = \"tocsin-ingest\"\n\n[[bin]]\nname = \"ingest\"\npath = \"src/main.rs\"\n".into(),
    );
    files.insert("crates/ingest/src/main.rs".into(), main.into());
    // The generic handler names the port the adapter implements.
    files.insert(
        "crates/ingest/src/handler.rs".into(),
        "pub async fn handle<B: Bus>(bus: &B) {}\n".into(),
    );
    files.insert(
        "infra/tocsin.yaml".into(),
        "channels: {s: {type: sms}}\nroute: {notify: [{channel: s, to: [\"+447700900001\"]}]}\n"
            .into(),
    );
    files.insert(
        "crates/core/src/secret.rs".into(),
        r#"fn f() { match s { Setting::Secret(name) => secrets.get(name) } }"#.into(),
    );
    let template = format!(
        "Globals:\n  Function:\n    Runtime: provided.al2023\n    Architectures: [arm64]\n    Handler: bootstrap\n\
         Resources:\n  IngestFunction:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildMethod: rust-cargolambda\n      Binary: ingest\n\
         \x20   Properties:\n      Environment:\n        Variables:\n{template_env}\
         \x20     Policies:\n        - Statement:\n            - Effect: Allow\n              Action: {actions}\n              Resource: !Ref Topic\n"
    );
    (files, template)
}

const TINY_MAIN: &str = r#"// tocsin_lambda::env("IN_A_COMMENT")
fn main() {
    let topic = tocsin_lambda::env("ALERTS_TOPIC_ARN")?;
    let level = std::env::var("LOG_STYLE").ok();
    let bus = SnsBus::alerts(client, topic);
    lambda_runtime::run(service_fn(h)).await
}
"#;

#[test]
fn a_tiny_stack_that_agrees_has_no_problems() {
    let (files, template) = tiny(
        TINY_MAIN,
        "          ALERTS_TOPIC_ARN: !Ref Topic\n",
        "[sns:Publish]",
    );
    assert_eq!(check(&files, &template, &[]), Vec::<String>::new());
}

#[test]
fn a_missing_required_variable_is_a_problem_and_an_optional_one_is_not() {
    let (files, template) = tiny(TINY_MAIN, "          OTHER: x\n", "[sns:Publish]");
    assert_eq!(
        check(&files, &template, &[]),
        vec![
            "IngestFunction: environment variable ALERTS_TOPIC_ARN is required by bin ingest but not set",
            "IngestFunction: environment variable OTHER is set but bin ingest never reads it",
        ]
    );
    let (files, template) = tiny(
        TINY_MAIN,
        "          ALERTS_TOPIC_ARN: !Ref Topic\n          LOG_STYLE: json\n",
        "[sns:Publish]",
    );
    assert_eq!(check(&files, &template, &[]), Vec::<String>::new());
}

#[test]
fn missing_and_extra_actions_are_problems() {
    let (files, template) = tiny(
        TINY_MAIN,
        "          ALERTS_TOPIC_ARN: !Ref Topic\n",
        "[sns:CreateTopic]",
    );
    assert_eq!(
        check(&files, &template, &[]),
        vec![
            "IngestFunction: action sns:Publish is called by the code but not allowed",
            "IngestFunction: action sns:CreateTopic is allowed but the code never calls it",
        ]
    );
}

#[test]
fn a_method_the_wiring_calls_adds_its_actions() {
    let main = TINY_MAIN.replace(
        "let bus = SnsBus::alerts(client, topic);",
        "let bus = SnsBus::alerts(client, topic);\n    bus.admin().await;",
    );
    let (files, template) = tiny(
        &main,
        "          ALERTS_TOPIC_ARN: !Ref Topic\n",
        "[sns:Publish]",
    );
    assert_eq!(
        check(&files, &template, &[]),
        vec!["IngestFunction: action sns:CreateTopic is called by the code but not allowed"]
    );
}

#[test]
fn a_function_without_a_crate_and_a_crate_without_a_function_are_problems() {
    let (files, template) = tiny(
        TINY_MAIN,
        "          ALERTS_TOPIC_ARN: !Ref Topic\n",
        "[sns:Publish]",
    );
    let template = template.replace("Binary: ingest", "Binary: nope");
    assert_eq!(
        check(&files, &template, &[]),
        vec![
            "crate ingest (bin ingest) has no function in the template",
            "IngestFunction: no crate has bin nope",
        ]
    );
    // A pending bin is allowed to be absent, and must leave the list once it lands.
    assert_eq!(
        check(&files, &template, &["nope"]),
        vec!["crate ingest (bin ingest) has no function in the template"]
    );
    let (files, template) = tiny(
        TINY_MAIN,
        "          ALERTS_TOPIC_ARN: !Ref Topic\n",
        "[sns:Publish]",
    );
    assert_eq!(
        check(&files, &template, &["ingest"]),
        vec!["bin ingest has landed: take it off the pending list in tests/stack.rs"]
    );
}

#[test]
fn a_main_without_the_lambda_runtime_is_not_a_function() {
    let main = TINY_MAIN.replace("lambda_runtime::run(service_fn(h)).await", "cli::run()");
    let (files, template) = tiny(
        &main,
        "          ALERTS_TOPIC_ARN: !Ref Topic\n",
        "[sns:Publish]",
    );
    assert_eq!(
        check(&files, &template, &[]),
        vec!["IngestFunction: no crate has bin ingest"]
    );
}

#[test]
fn managed_policies_and_a_wrong_runtime_are_problems() {
    let (files, template) = tiny(
        TINY_MAIN,
        "          ALERTS_TOPIC_ARN: !Ref Topic\n",
        "[sns:Publish]",
    );
    let template = template
        .replace("Runtime: provided.al2023", "Runtime: provided.al2")
        .replace(
            "      Policies:\n",
            "      Policies:\n        - AmazonSNSFullAccess\n",
        );
    let problems = check(&files, &template, &[]);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("IngestFunction: Runtime is Some(\"provided.al2\")"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("AmazonSNSFullAccess")
            && problems[1].contains("not an explicit statement")
    );
}

#[test]
fn only_functions_are_taken_from_sibling_module_imports() {
    let src = "use crate::dynamo::{BODY, TTL_ATTRIBUTE, backend, put_new, s};\nuse crate::sdk_error::classify;\nuse crate::sns::SnsBus;";
    assert_eq!(
        imported_fns(src),
        vec![
            ("dynamo".to_string(), "backend".to_string()),
            ("dynamo".to_string(), "put_new".to_string()),
            ("dynamo".to_string(), "s".to_string()),
            ("sdk_error".to_string(), "classify".to_string()),
        ]
    );
}

#[test]
fn sdk_calls_map_to_iam_actions_with_its_exceptions() {
    let mut problems = Vec::new();
    let body = "self.client.transact_write_items().send(); TransactWriteItem::builder().put(a); \
                TransactWriteItem::builder()\n .condition_check(c); self.client\n  .batch_write_item()";
    assert_eq!(
        actions_of("dynamodb", body, &mut problems, "x"),
        BTreeSet::from(
            [
                "dynamodb:PutItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:BatchWriteItem"
            ]
            .map(String::from)
        )
    );
    assert_eq!(
        actions_of(
            "scheduler",
            "self.client.create_schedule()",
            &mut problems,
            "x"
        ),
        BTreeSet::from(["scheduler:CreateSchedule", "iam:PassRole"].map(String::from))
    );
    assert!(problems.is_empty());
    actions_of(
        "dynamodb",
        "self.client.transact_write_items()",
        &mut problems,
        "x",
    );
    assert_eq!(
        problems,
        vec!["x: TransactWriteItems with no item kind found"]
    );
}

#[test]
fn env_reads_tell_required_from_optional_and_resolve_constants() {
    let src = clean(
        r#"pub const ENV_GROUP: &str = "SCHEDULE_GROUP";
const ENV_DLQ: &str = "SCHEDULER_DLQ_ARN";
fn f(get: impl Fn(&str) -> Option<String>) {
    let value = |name: &'static str| get(name).unwrap_or_default();
    new(value(ENV_GROUP), get(ENV_DLQ), need("TABLE_NAME"), required(get, "KEY"), env("OPT"));
    let _ = '{'; let _ = "}";
    EnvFilter::try_from_default_env();
}
"#,
    );
    let mut n = Needs::default();
    env_reads(&src, &mut n);
    assert_eq!(
        n.required_env,
        BTreeSet::from(["SCHEDULE_GROUP", "TABLE_NAME", "KEY"].map(String::from))
    );
    assert_eq!(
        n.optional_env,
        BTreeSet::from(["SCHEDULER_DLQ_ARN", "OPT", "RUST_LOG"].map(String::from))
    );
}

#[test]
fn constructors_inside_a_channel_kind_arm_count_for_that_kind_only() {
    let main = clean(
        r#"fn main() {
    let n = match channel.kind {
        ChannelKind::Email => { Ses::new(c) }
        ChannelKind::Sms => Sms::new(c),
        _ => { Http::build(c) }
    };
    let s = Store::new(c);
}"#,
    );
    let arms = kind_arms(&main);
    let kinds_at = |needle: &str| {
        let at = main.find(needle).expect("needle");
        arms.iter()
            .filter(|(r, _, _)| r.contains(&at))
            .map(|(_, k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds_at("Ses::new"), vec![Some("Email".to_string())]);
    assert_eq!(kinds_at("Sms::new"), vec![Some("Sms".to_string())]);
    assert_eq!(kinds_at("Http::build"), vec![None]);
    assert_eq!(kinds_at("Store::new"), Vec::<Option<String>>::new());
}

#[test]
fn cloudformation_tags_survive_parsing() {
    let t = parse_yaml(
        "A: !Ref X\nB: !If [C, {Sid: s}, !Ref AWS::NoValue]\nC: !Sub 'arn:${X}'\nD: [a, b]\n",
    )
    .expect("yaml");
    assert_eq!(
        t.get("A"),
        Some(&Node::Tagged(
            "Ref".into(),
            Box::new(Node::Scalar("X".into()))
        ))
    );
    assert!(
        matches!(t.get("B"), Some(Node::Tagged(tag, inner)) if tag == "If" && matches!(**inner, Node::Seq(ref s) if s.len() == 3))
    );
    assert_eq!(
        t.get("D").map(Node::strings),
        Some(vec!["a".to_string(), "b".to_string()])
    );
}

#[test]
fn a_port_implementation_counts_only_where_the_function_names_the_port() {
    let (mut files, template) = tiny(
        TINY_MAIN,
        "          ALERTS_TOPIC_ARN: !Ref Topic\n",
        "[sns:Publish]",
    );
    files.insert(
        "crates/ingest/src/handler.rs".into(),
        "pub async fn handle() {}\n".into(),
    );
    assert_eq!(
        check(&files, &template, &[]),
        vec!["IngestFunction: action sns:Publish is allowed but the code never calls it"],
        "the Bus implementation publishes, but nothing in this function uses a Bus"
    );
}

#[test]
fn every_parsed_event_kind_has_an_opt_in_rule_on_each_bus() {
    let files = repo_files();
    let kinds = parsed_event_kinds(&files);
    // Guards the reader: if it stopped seeing the parsers' arms, the check would pass vacuously.
    assert!(kinds.len() >= 9, "{kinds:?}");
    assert!(kinds["aws.autoscaling"].contains("EC2 Auto Scaling Instance Refresh Failed"));
    assert!(kinds["aws.synthetics"].contains("Synthetics Canary TestRun Successful"));
    assert!(kinds["aws.health"].contains("AWS Health Abuse Event"));
    assert_eq!(check_rules(&files, &repo_template()), Vec::<String>::new());
}

/// The template without the resource `id` (its lines up to the next resource).
fn without_resource(template: &str, id: &str) -> String {
    let start = template
        .find(&format!("\n  {id}:\n"))
        .expect("resource in the template")
        + 1;
    let rest = &template[start + 1..];
    let end = re(r"\n  [A-Za-z]|\n[A-Za-z]")
        .find(rest)
        .map_or(template.len(), |m| start + 1 + m.start() + 1);
    format!("{}{}", &template[..start], &template[end..])
}

#[test]
fn a_missing_rule_an_unconditioned_rule_or_a_narrowed_pattern_is_caught() {
    let files = repo_files();
    let t = repo_template();
    let no_guardduty = without_resource(&t, "GuardDutyEventsRule");
    assert_ne!(no_guardduty, t);
    let problems = check_rules(&files, &no_guardduty);
    assert!(
        problems.contains(
            &"aws.guardduty \"GuardDuty Finding\": no rule on the default bus sends it to ingest"
                .to_string()
        ),
        "{problems:?}"
    );

    let always_on = t.replacen("    Condition: EcsEventsEnabled\n", "", 1);
    assert_ne!(always_on, t);
    assert_eq!(
        check_rules(&files, &always_on),
        vec![
            "EcsEventsRule: no Condition (each source's rule is opt-in by its parameter)",
            "EcsEventsRule: no Lambda permission for its ARN under its condition",
        ]
    );

    let narrowed = t.replacen(
        "detail-type: [ECS Deployment State Change, ECS Service Action, ECS Task State Change]\n",
        "detail-type: [ECS Deployment State Change, ECS Service Action]\n",
        2,
    );
    assert_ne!(narrowed, t);
    assert_eq!(
        check_rules(&files, &narrowed),
        vec![
            "aws.ecs \"ECS Task State Change\": no rule on the default bus sends it to ingest",
            "aws.ecs \"ECS Task State Change\": no rule on the CentralEventBus bus sends it to ingest",
        ]
    );

    let central_always = t.replacen(
        "    Condition: RdsEventsOnCentralBus\n",
        "    Condition: RdsEventsEnabled\n",
        1,
    );
    assert_ne!(central_always, t);
    let problems = check_rules(&files, &central_always);
    assert!(
        problems.contains(
            &"RdsEventsCentralRule: on CentralEventBus but not conditioned on CreateCentralBus"
                .to_string()
        ),
        "{problems:?}"
    );

    let undlq = t.replacen(
        "                  - !If [Ec2EventsEnabled, !GetAtt Ec2EventsRule.Arn, !Ref AWS::NoValue]\n",
        "",
        1,
    );
    assert_ne!(undlq, t);
    assert_eq!(
        check_rules(&files, &undlq),
        vec![
            "Ec2EventsRule: the policy of its dead-letter queue UndeliveredQueue does not name it"
        ]
    );
}
