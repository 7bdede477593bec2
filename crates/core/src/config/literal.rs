//! Literal fast paths for regex matchers. Most routing regexes are a literal, a prefix (`checkout-.*`),
//! a suffix, a substring or a list of literals (`a|b|c`); testing those with string operations instead of
//! the regex engine makes a route tree of thousands of rules cheap to walk (Prometheus optimizes its
//! label matchers the same way). Anything else keeps the compiled regex.

/// A regex (anchored at both ends) that is really a string test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// `.*`: anything.
    Any,
    /// `abc`: exactly.
    Exact(String),
    /// `abc.*`: starts with.
    Prefix(String),
    /// `.*abc`: ends with.
    Suffix(String),
    /// `.*abc.*`: contains.
    Contains(String),
    /// `a|b|c`: one of.
    OneOf(Vec<String>),
}

impl Literal {
    /// The fast path for a regex source, if it has one.
    pub fn analyze(src: &str) -> Option<Literal> {
        if src == ".*" {
            return Some(Literal::Any);
        }
        if src.contains('|') {
            let parts: Option<Vec<String>> = src.split('|').map(unescape).collect();
            return parts.filter(|p| p.len() > 1).map(Literal::OneOf);
        }
        let (lead, rest) = match src.strip_prefix(".*") {
            Some(r) => (true, r),
            None => (false, src),
        };
        let (trail, core) = match rest.strip_suffix(".*") {
            // `\.*` is an escaped dot repeated, not a trailing wildcard.
            Some(c) if !c.ends_with('\\') => (true, c),
            _ => (false, rest),
        };
        let lit = unescape(core)?;
        Some(match (lead, trail) {
            (false, false) => Literal::Exact(lit),
            (false, true) => Literal::Prefix(lit),
            (true, false) => Literal::Suffix(lit),
            (true, true) => Literal::Contains(lit),
        })
    }

    /// Whether `v` matches.
    pub fn is_match(&self, v: &str) -> bool {
        match self {
            Literal::Any => true,
            Literal::Exact(s) => v == s,
            Literal::Prefix(s) => v.starts_with(s.as_str()),
            Literal::Suffix(s) => v.ends_with(s.as_str()),
            Literal::Contains(s) => v.contains(s.as_str()),
            Literal::OneOf(list) => list.iter().any(|s| s == v),
        }
    }
}

/// The literal a regex fragment stands for, if it has no regex syntax but escaped punctuation.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => out.push(e),
                _ => return None,
            },
            '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' => {
                return None;
            }
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;

    #[test]
    fn common_shapes_get_fast_paths_and_the_rest_keep_the_regex() {
        assert_eq!(
            Literal::analyze("checkout-.*"),
            Some(Literal::Prefix("checkout-".into()))
        );
        assert_eq!(
            Literal::analyze(".*-5xx"),
            Some(Literal::Suffix("-5xx".into()))
        );
        assert_eq!(
            Literal::analyze(".*-5xx.*"),
            Some(Literal::Contains("-5xx".into()))
        );
        assert_eq!(
            Literal::analyze("a\\.b"),
            Some(Literal::Exact("a.b".into()))
        );
        assert_eq!(
            Literal::analyze("eu-west-1|us-east-1"),
            Some(Literal::OneOf(vec!["eu-west-1".into(), "us-east-1".into()]))
        );
        for complex in [
            "(?i)down", "a.b", "x[0-9]+", "a\\d", "a\\.*", "(a|b)c", "^a$",
        ] {
            assert_eq!(Literal::analyze(complex), None, "{complex}");
        }
    }

    proptest! {
        /// Wherever a fast path is taken, it agrees with the anchored regex it replaces.
        #[test]
        fn fast_paths_agree_with_the_regex(
            pat in "(\\.\\*)?[a-c\\-]{0,3}(\\\\\\.)?[a-c]{0,2}(\\|[a-c]{1,2})?(\\.\\*)?",
            v in "[a-c\\-\\.]{0,6}",
        ) {
            if let Some(lit) = Literal::analyze(&pat) {
                let re = Regex::new(&format!("^(?:{pat})$")).unwrap();
                prop_assert_eq!(lit.is_match(&v), re.is_match(&v), "pattern {:?} value {:?}", pat, v);
            }
        }
    }
}
