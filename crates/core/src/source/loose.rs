//! Lenient JSON building blocks for the source parsers: values that never fail to deserialize on a
//! wrong type, so that every type problem is reported later by the parser, with the field's path,
//! instead of by serde with only a line and column.
//!
//! Deserializing into these types fails only on JSON syntax (and duplicate keys), which serde reports
//! with a line and column. Strings borrow from the input when they hold no escapes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use chrono::{DateTime, Utc};

use super::ParseError;
use super::text::{check_name, clean_text, parse_time, quote};

/// Any JSON value; arrays and objects are only recorded as such (use [`List`], [`Obj`] or [`Map`] for
/// their contents).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Val<'_> {
    /// What was found, for error messages: the value itself for scalars.
    pub(crate) fn describe(&self) -> String {
        match self {
            Val::Null => "null".to_owned(),
            Val::Bool(b) => format!("boolean {b}"),
            Val::Num(n) => format!("number {n}"),
            Val::Str(s) => format!("string {}", quote(s)),
            Val::Array => "an array".to_owned(),
            Val::Object => "an object".to_owned(),
        }
    }

    /// The string, if this is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Val<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor(PhantomData))
    }
}

struct ValVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ValVisitor<'a> {
    type Value = Val<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Val::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Val::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Val::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Val::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Val::Num(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Val::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Val::Object)
    }
}

/// The JSON kind of a value that was not the one expected, for error messages.
fn kind_of_scalar(v: &Val<'_>) -> &'static str {
    match v {
        Val::Null => "null",
        Val::Bool(_) => "a boolean",
        Val::Num(_) => "a number",
        Val::Str(_) => "a string",
        Val::Array => "an array",
        Val::Object => "an object",
    }
}

/// A JSON object read as `T`, or the kind of value found instead.
#[derive(Debug)]
pub(crate) enum Obj<T> {
    Ok(T),
    Wrong(&'static str),
}

impl<T> Obj<T> {
    /// The object, or an error at `at` naming what was found instead.
    pub(crate) fn get(&self, at: &str) -> Result<&T, ParseError> {
        match self {
            Obj::Ok(t) => Ok(t),
            Obj::Wrong(kind) => Err(ParseError::new(
                at,
                format!("expected an object, found {kind}"),
            )),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjVisitor(PhantomData))
    }
}

struct ObjVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Obj::Ok)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Obj::Wrong("an array"))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Obj::Wrong("null"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Obj::Wrong("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Obj::Wrong("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Obj::Wrong("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Obj::Wrong("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Obj::Wrong("a string"))
    }
}

/// A JSON array of `T`, or the kind of value found instead.
#[derive(Debug)]
pub(crate) enum List<T> {
    Ok(Vec<T>),
    Wrong(&'static str),
}

impl<T> List<T> {
    /// The elements, or an error at `at` naming what was found instead.
    pub(crate) fn get(&self, at: &str) -> Result<&[T], ParseError> {
        match self {
            List::Ok(v) => Ok(v),
            List::Wrong(kind) => Err(ParseError::new(
                at,
                format!("expected an array, found {kind}"),
            )),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor(PhantomData))
    }
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Never trust a size hint from input; a few slots cover every real payload.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(8));
        while let Some(t) = seq.next_element()? {
            out.push(t);
        }
        Ok(List::Ok(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(List::Wrong("an object"))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(List::Wrong("null"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(List::Wrong("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(List::Wrong("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(List::Wrong("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(List::Wrong("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(List::Wrong("a string"))
    }
}

/// A JSON object with arbitrary keys (labels, dimensions), in input order.
#[derive(Debug, Default)]
pub(crate) struct Map<'a>(pub(crate) Vec<(Cow<'a, str>, Val<'a>)>);

impl<'a> Map<'a> {
    /// The value under `key`; the last one wins on duplicates, as in most JSON readers.
    pub(crate) fn get(&self, key: &str) -> Option<&Val<'a>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Map<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

struct MapVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for MapVisitor<'a> {
    type Value = Map<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(16));
        while let Some((k, v)) = map.next_entry::<Val<'a>, Val<'a>>()? {
            // JSON object keys are always strings.
            if let Val::Str(k) = k {
                out.push((k, v));
            }
        }
        Ok(Map(out))
    }
}

/// The keys of a JSON object, to say what was found when no shape matched.
#[derive(Debug, Default)]
pub(crate) struct Keys(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut out = Vec::new();
                while let Some((k, _)) = map.next_entry::<String, IgnoredAny>()? {
                    out.push(k);
                }
                Ok(Keys(out))
            }
        }
        d.deserialize_map(V)
    }
}

// Typed reads of loose values. Each takes the field's path, relative to the object being parsed,
// so that the error names it; callers prefix the path of the enclosing object on the way out.

/// A required string.
pub(crate) fn req_str<'v>(v: Option<&'v Val<'_>>, at: &str) -> Result<&'v str, ParseError> {
    match v {
        Some(Val::Str(s)) => Ok(s),
        None | Some(Val::Null) => Err(ParseError::new(at, "required field is missing")),
        Some(other) => Err(wrong(at, "a string", other)),
    }
}

/// A required name (alarm name, alertname, key): a string free of control and bidi characters.
pub(crate) fn req_name<'v>(v: Option<&'v Val<'_>>, at: &str) -> Result<&'v str, ParseError> {
    let name = req_str(v, at)?;
    check_name(name).map_err(|reason| ParseError::new(at, reason))?;
    Ok(name)
}

/// A required timestamp, in any of the forms [`parse_time`] reads.
pub(crate) fn req_time(v: Option<&Val<'_>>, at: &str) -> Result<DateTime<Utc>, ParseError> {
    let s = req_str(v, at)?;
    parse_time(s).ok_or_else(|| {
        ParseError::new(
            at,
            format!(
                "invalid timestamp {} (expected RFC 3339, such as 2024-03-01T10:15:00.123+0000)",
                quote(s)
            ),
        )
    })
}

/// An optional string: absent or null is `None`.
pub(crate) fn opt_str<'v>(v: Option<&'v Val<'_>>, at: &str) -> Result<Option<&'v str>, ParseError> {
    match v {
        Some(Val::Str(s)) => Ok(Some(s)),
        None | Some(Val::Null) => Ok(None),
        Some(other) => Err(wrong(at, "a string", other)),
    }
}

/// An optional string that AWS sometimes leaves empty: empty is `None` too.
pub(crate) fn opt_nonempty<'v>(
    v: Option<&'v Val<'_>>,
    at: &str,
) -> Result<Option<&'v str>, ParseError> {
    Ok(opt_str(v, at)?.filter(|s| !s.trim().is_empty()))
}

/// An optional number. Numeric strings are accepted, since AWS writes some numbers as strings;
/// an empty string counts as absent; anything else that is not a finite number is an error.
pub(crate) fn opt_num(v: Option<&Val<'_>>, at: &str) -> Result<Option<f64>, ParseError> {
    match v {
        None | Some(Val::Null) => Ok(None),
        Some(Val::Num(n)) => Ok(Some(*n)),
        Some(Val::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(Val::Str(s)) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Some(n)),
            _ => Err(ParseError::new(
                at,
                format!("expected a number, found string {}", quote(s)),
            )),
        },
        Some(other) => Err(wrong(at, "a number", other)),
    }
}

/// A label value: strings as they are, numbers and booleans as their JSON text, since
/// generators disagree on whether `"port": 443` is a number.
pub(crate) fn label_value<'v>(v: &'v Val<'_>, at: &str) -> Result<Cow<'v, str>, ParseError> {
    match v {
        Val::Str(s) => Ok(Cow::Borrowed(s)),
        Val::Num(n) => Ok(Cow::Owned(format_num(*n))),
        Val::Bool(b) => Ok(Cow::Borrowed(if *b { "true" } else { "false" })),
        other => Err(wrong(at, "a string", other)),
    }
}

/// Copies a label or annotation map into `out` under `prefix`, cleaning keys and values as free
/// text.
pub(crate) fn copy_labels(
    from: &Map<'_>,
    at: &str,
    prefix: &str,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ParseError> {
    for (k, v) in &from.0 {
        let value =
            label_value(v, "").map_err(|e| ParseError::new(format!("{at}.{k}"), e.reason))?;
        out.insert(format!("{prefix}{}", clean_text(k)), clean_text(&value));
    }
    Ok(())
}

/// A number as a label: integral values without a fraction (`300`, not `300.0`).
pub(crate) fn format_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        // Periods and counts on every alarm: digits by hand, without the formatting machinery.
        let mut digits = [0u8; 20];
        let mut rest = n.abs() as u64;
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let mut out = String::with_capacity(digits.len() - i + 1);
        if n < 0.0 {
            out.push('-');
        }
        out.extend(digits[i..].iter().map(|&d| char::from(d)));
        out
    } else {
        format!("{n}")
    }
}

fn wrong(at: &str, expected: &str, found: &Val<'_>) -> ParseError {
    let found = match found {
        Val::Str(_) | Val::Num(_) | Val::Bool(_) => found.describe(),
        other => kind_of_scalar(other).to_owned(),
    };
    ParseError::new(at, format!("expected {expected}, found {found}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(bound(deserialize = "'de: 'a"))]
    struct Probe<'a> {
        a: Option<Val<'a>>,
        o: Option<Obj<Map<'a>>>,
        l: Option<List<Val<'a>>>,
    }

    #[test]
    fn wrong_types_deserialize_and_are_reported_later_with_their_path() {
        let p: Probe = serde_json::from_str(r#"{"a":[1,{"x":2}],"o":"str","l":{"k":1}}"#).unwrap();
        assert_eq!(p.a, Some(Val::Array));
        let err = p.o.as_ref().unwrap().get("o").unwrap_err();
        assert_eq!(err.to_string(), "o: expected an object, found a string");
        let err = p.l.as_ref().unwrap().get("l").unwrap_err();
        assert_eq!(err.to_string(), "l: expected an array, found an object");
    }

    #[test]
    fn unescaped_strings_borrow_from_the_input() {
        let p: Probe = serde_json::from_str(r#"{"a":"plain","o":{"k":"v\n"}}"#).unwrap();
        assert!(matches!(p.a, Some(Val::Str(Cow::Borrowed("plain")))));
        let Some(Obj::Ok(m)) = p.o else { panic!() };
        assert_eq!(m.get("k"), Some(&Val::Str(Cow::Owned("v\n".into()))));
    }

    #[test]
    fn numbers_accept_numeric_strings_but_not_words() {
        let v = Val::Str("80.5".into());
        assert_eq!(opt_num(Some(&v), "t").unwrap(), Some(80.5));
        let v = Val::Str("eighty".into());
        assert_eq!(
            opt_num(Some(&v), "Trigger.Threshold")
                .unwrap_err()
                .to_string(),
            r#"Trigger.Threshold: expected a number, found string "eighty""#
        );
        let v = Val::Str("NaN".into());
        assert!(opt_num(Some(&v), "t").is_err());
        assert_eq!(opt_num(Some(&Val::Str("".into())), "t").unwrap(), None);
    }

    #[test]
    fn integral_numbers_print_without_a_fraction() {
        assert_eq!(format_num(300.0), "300");
        assert_eq!(format_num(0.5), "0.5");
        assert_eq!(format_num(0.0), "0");
        assert_eq!(format_num(-120.0), "-120");
        assert_eq!(format_num(86_400.0), "86400");
    }
}
