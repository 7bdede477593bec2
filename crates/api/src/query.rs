//! Query strings and form bodies (`application/x-www-form-urlencoded`): `+` is a space, `%XX` a byte,
//! and the result must be UTF-8. A malformed one is a 400, never a panic.

use crate::ApiError;

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let (Some(h), Some(l)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(ApiError::BadRequest(
                        "malformed percent-encoding in the query or form".into(),
                    ));
                };
                out.push(h << 4 | l);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::BadRequest("the query or form is not UTF-8".into()))
}

/// The pairs of a query string or form body, in order (a name may repeat).
pub fn parse_query(s: &str) -> Result<Vec<(String, String)>, ApiError> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent_and_refuse_broken_escapes() {
        assert_eq!(
            parse_query("a=1&b=x+y%2Fz&&c").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y/z".into()),
                ("c".into(), String::new())
            ]
        );
        assert_eq!(parse_query("k=%C3%A9").unwrap()[0].1, "é");
        assert!(parse_query("k=%zz").is_err());
        assert!(parse_query("k=%4").is_err());
        assert!(parse_query("k=%ff").is_err(), "not UTF-8");
    }
}
