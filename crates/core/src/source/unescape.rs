//! JSON string unescaping into a buffer kept from one call to the next, for the `Message` of an SNS
//! notification: a whole JSON document inside a JSON string, every quote of it escaped. serde_json
//! unescapes such a string into a scratch buffer that starts empty and doubles as it fills, a dozen
//! reallocations for a CloudWatch alarm message, and copies each run between escapes through a call;
//! here the output is reserved at the escaped text's length (never shorter than the result) in a
//! buffer the thread keeps, and filled in one pass.
//! The same rules as serde_json's: the escapes of RFC 8259, `\u` surrogate pairs joined, a lone
//! surrogate rejected (property-tested against serde_json in `tests`).

/// The unescaped content of `raw`, a JSON string's text between (not including) its quotes, as
/// serde_json read it: no raw control character or quote is left (serde_json rejected them), so the
/// only work is the escapes. An error names the problem and the byte offset in `raw`.
#[cfg(test)]
pub(crate) fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    unescape_into(raw, &mut out)?;
    Ok(out)
}

/// [`unescape`] into `out`, which is cleared first and keeps its capacity.
pub(crate) fn unescape_into(raw: &str, out: &mut String) -> Result<(), String> {
    let bytes = raw.as_bytes();
    out.clear();
    out.reserve(bytes.len());
    let mut i = 0;
    while let Some(step) = memchr::memchr(b'\\', &bytes[i..]) {
        // A backslash is ASCII, so the run before it ends on a character boundary.
        out.push_str(&raw[i..i + step]);
        i += step;
        let simple = match bytes.get(i + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let (c, len) = unicode(bytes, i)?;
                out.push(c);
                i += len;
                continue;
            }
            _ => return Err(format!("invalid escape at byte offset {i}")),
        };
        out.push(simple);
        i += 2;
    }
    out.push_str(&raw[i..]);
    Ok(())
}

/// The character of the `\u` escape at `at` (two escapes for a surrogate pair), and the length of
/// its text.
fn unicode(bytes: &[u8], at: usize) -> Result<(char, usize), String> {
    let invalid = || format!("invalid \\u escape at byte offset {at}");
    let first = hex4(bytes, at + 2).ok_or_else(invalid)?;
    let (c, len) = match first {
        0xD800..=0xDBFF => {
            let low = (bytes.get(at + 6) == Some(&b'\\') && bytes.get(at + 7) == Some(&b'u'))
                .then(|| hex4(bytes, at + 8))
                .flatten()
                .filter(|low| (0xDC00..=0xDFFF).contains(low))
                .ok_or_else(|| {
                    format!("lone leading surrogate in \\u escape at byte offset {at}")
                })?;
            let c = 0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
            (c, 12)
        }
        0xDC00..=0xDFFF => {
            return Err(format!(
                "lone trailing surrogate in \\u escape at byte offset {at}"
            ));
        }
        c => (u32::from(c), 6),
    };
    Ok((char::from_u32(c).ok_or_else(invalid)?, len))
}

/// The four hex digits at `at`, if there are four.
fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = bytes.get(at..at + 4)?;
    let mut v: u16 = 0;
    for &d in digits {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        v = v << 4 | u16::from(n);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use proptest::prelude::*;

    use super::unescape;

    fn serde(raw: &str) -> Option<String> {
        serde_json::from_str::<String>(&format!("\"{raw}\"")).ok()
    }

    #[test]
    fn every_escape_of_rfc_8259_is_read() {
        assert_eq!(
            unescape(r#"a\"b\\c\/d\be\ff\ng\rh\ti\u00e9\u20AC\ud83d\ude00"#).unwrap(),
            "a\"b\\c/d\u{8}e\u{c}f\ng\rh\ti\u{e9}\u{20ac}\u{1f600}"
        );
    }

    #[test]
    fn bad_escapes_are_errors_naming_where() {
        for (raw, why) in [
            (r"ab\x", "invalid escape at byte offset 2"),
            (r"\u12", "invalid \\u escape at byte offset 0"),
            (
                r"x\ud83dy",
                "lone leading surrogate in \\u escape at byte offset 1",
            ),
            (
                r"\ude00",
                "lone trailing surrogate in \\u escape at byte offset 0",
            ),
            ("trailing\\", "invalid escape at byte offset 8"),
        ] {
            assert_eq!(unescape(raw).unwrap_err(), why, "{raw}");
        }
    }

    proptest! {
        #[test]
        fn any_string_serde_json_escapes_comes_back_whole(s in any::<String>()) {
            let quoted = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(unescape(&quoted[1..quoted.len() - 1]).unwrap(), s);
        }

        #[test]
        fn it_agrees_with_serde_json_on_any_mix_of_escapes(
            parts in prop::collection::vec(prop::sample::select(vec![
                "a", "é", "\\\"", "\\\\", "\\/", "\\b", "\\n", "\\t", "\\u00e9", "\\uD83D", "\\uDE00",
                "\\ud83d\\ude00", "\\u12", "\\x", "\\uZZZZ", "\\u0000",
            ]), 0..12)
        ) {
            let raw: String = parts.concat();
            prop_assert_eq!(unescape(&raw).ok(), serde(&raw), "{}", raw);
        }
    }
}
