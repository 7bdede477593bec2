//! Matcher strings, `FIELD OP VALUE`, parsed into [`Matcher`]s with one-line errors.

use super::{Field, MatchOp, Matcher};
use crate::model::Severity;

/// What a matcher string should look like, for errors.
const SHAPE: &str =
    "expected FIELD OP VALUE with OP one of =, !=, =~, !~ (like `alarm_name =~ \"checkout-.*\"`)";

/// Parses `alarm_name =~ "checkout-.*"`: a field name, an operator, and a value that is either the rest of
/// the string (trimmed) or a double-quoted string with `\"` and `\\` escapes.
pub(super) fn parse_matcher(s: &str) -> Result<Matcher, String> {
    let text = s.trim();
    let field_len = text
        .find(|c: char| c.is_whitespace() || matches!(c, '=' | '!' | '~' | '"'))
        .unwrap_or(text.len());
    let (name, rest) = text.split_at(field_len);
    if name.is_empty() {
        return Err(format!("invalid matcher `{s}`: no field name; {SHAPE}"));
    }
    let rest = rest.trim_start();
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchOp::Re, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchOp::NotRe, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchOp::Ne, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchOp::Eq, r)
    } else {
        return Err(format!(
            "invalid matcher `{s}`: no operator after `{name}`; {SHAPE}"
        ));
    };
    let rest = rest.trim();
    let value = if rest.starts_with('"') {
        unquote(rest).map_err(|why| format!("invalid matcher `{s}`: {why}"))?
    } else if rest.is_empty() {
        return Err(format!(
            "invalid matcher `{s}`: no value after the operator (write \"\" for the empty string)"
        ));
    } else {
        rest.to_string()
    };
    let field = Field::parse(name);
    check_known_values(&field, op, &value)
        .map_err(|why| format!("invalid matcher `{s}`: {why}"))?;
    if matches!(op, MatchOp::Re | MatchOp::NotRe) {
        // Checked on its own first: `Matcher::new` wraps the pattern in `^(?:...)$`, so an unbalanced
        // `a)|(b` would otherwise compile into a different regex than the one written.
        regex::Regex::new(&value)
            .map_err(|e| format!("invalid regex `{value}`: {}", one_line(&e.to_string())))?;
    }
    Matcher::new(field, op, value.clone())
        .map_err(|e| format!("invalid regex `{value}`: {}", one_line(&e.to_string())))
}

/// A double-quoted value with its quotes, `\"` and `\\` escapes resolved; nothing may follow it.
fn unquote(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars().skip(1);
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let trailing: String = chars.collect();
                return if trailing.trim().is_empty() {
                    Ok(out)
                } else {
                    Err(format!(
                        "unexpected `{}` after the quoted value",
                        trailing.trim()
                    ))
                };
            }
            '\\' => match chars.next() {
                Some(e @ ('"' | '\\')) => out.push(e),
                Some(e) => return Err(format!("unknown escape `\\{e}` (only \\\" and \\\\)")),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated quoted value".into())
}

/// Fields with a closed set of values: an `=` or `!=` on anything else is a typo that silently never
/// (or always) matches, so it is refused here.
fn check_known_values(field: &Field, op: MatchOp, value: &str) -> Result<(), String> {
    if !matches!(op, MatchOp::Eq | MatchOp::Ne) {
        return Ok(());
    }
    let severities = Severity::ALL.map(Severity::as_str);
    // Tier and priority come from the service catalogue, so an alert may lack them: "" stays allowed.
    let allowed: &[&str] = match field {
        Field::Severity => &severities,
        Field::State => &["ALARM", "OK", "INSUFFICIENT_DATA"],
        Field::Tier => &["1", "2", "3", "4", ""],
        Field::Priority => &["P1", "P2", "P3", "P4", "P5", ""],
        _ => return Ok(()),
    };
    if allowed.contains(&value) {
        Ok(())
    } else {
        let named: Vec<&str> = allowed.iter().copied().filter(|v| !v.is_empty()).collect();
        Err(format!(
            "`{value}` is never a value of this field (expected {})",
            named.join(", ")
        ))
    }
}

/// The regex crate's errors span several lines (the pattern, a caret, the reason); keep the reason.
pub(super) fn one_line(message: &str) -> String {
    let reason = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| {
            message
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(": ")
        });
    let mut chars = reason.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operator_parses_with_or_without_spaces() {
        for (text, op) in [
            ("alarm_name=x", MatchOp::Eq),
            ("alarm_name != x", MatchOp::Ne),
            ("alarm_name=~x.*", MatchOp::Re),
            ("alarm_name  !~  \"x.*\"", MatchOp::NotRe),
        ] {
            let m = parse_matcher(text).expect(text);
            assert_eq!(m.op, op, "{text}");
            assert_eq!(m.field, Field::AlarmName);
        }
    }

    #[test]
    fn quoted_values_resolve_their_escapes() {
        let m = parse_matcher(r#"description = "say \"hi\" \\ bye""#).expect("valid");
        assert_eq!(m.value, r#"say "hi" \ bye"#);
        let empty = parse_matcher(r#"region != """#).expect("valid");
        assert_eq!(empty.value, "");
    }

    #[test]
    fn an_unquoted_value_is_the_trimmed_rest() {
        let m = parse_matcher("label.team = payments and more ").expect("valid");
        assert_eq!(m.field, Field::Label("team".into()));
        assert_eq!(m.value, "payments and more");
    }

    #[test]
    fn malformed_matchers_say_what_was_expected() {
        for bad in [
            "",
            "alarm_name",
            "alarm_name ~ x",
            "= x",
            "alarm_name =",
            r#"a = "x"#,
            r#"a = "x" y"#,
            r#"a = "\n""#,
        ] {
            let e = parse_matcher(bad).expect_err(bad);
            assert!(!e.contains('\n'), "{e}");
            assert!(e.starts_with("invalid matcher"), "{e}");
        }
        let e = parse_matcher("alarm_name ~ x").expect_err("no op");
        assert!(e.contains("expected FIELD OP VALUE"), "{e}");
    }

    #[test]
    fn a_bad_regex_is_one_line_and_names_the_pattern() {
        let e = parse_matcher("alarm_name =~ \"checkout-(\"").expect_err("bad regex");
        assert_eq!(e, "invalid regex `checkout-(`: unclosed group");
    }

    #[test]
    fn a_regex_cannot_escape_its_anchors() {
        assert!(parse_matcher("alarm_name =~ \"a)|(b\"").is_err());
    }

    #[test]
    fn closed_fields_refuse_values_they_never_take() {
        assert!(parse_matcher("severity = critical").is_ok());
        let e = parse_matcher("severity = crit").expect_err("typo");
        assert!(e.contains("critical, high, medium, low, info"), "{e}");
        assert!(parse_matcher("state = ALARM").is_ok());
        assert!(parse_matcher("state = alarm").is_err());
        assert!(parse_matcher("severity =~ crit.*").is_ok());
    }
}
