//! Durations as people write them in the config: `30s`, `15m`, `1h30m`, `2d`.

use std::time::Duration;

/// Parses a duration written as one or more `<number><unit>` parts, units `d`, `h`, `m`, `s` from largest to
/// smallest, each at most once (`1h30m`, `2d`, `45s`). A bare `0` is zero. Returns `None` for anything else,
/// including an empty string and a value too large to represent.
///
/// ```
/// # use std::time::Duration;
/// # use tocsin_core::config::parse_duration;
/// assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("30m1h"), None);
/// ```
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total: u64 = 0;
    // Units must come largest first and at most once, so `1m1m` or `30m1h` read as typos, not sums.
    let mut last_unit = u64::MAX;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = match rest.as_bytes().first()? {
            b'd' => 86_400,
            b'h' => 3_600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        rest = &rest[1..];
        if unit >= last_unit {
            return None;
        }
        last_unit = unit;
        total = total.checked_add(number.checked_mul(unit)?)?;
    }
    Some(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Option<u64> {
        parse_duration(s).map(|d| d.as_secs())
    }

    #[test]
    fn every_unit_and_a_combination_parse() {
        assert_eq!(secs("30s"), Some(30));
        assert_eq!(secs("15m"), Some(900));
        assert_eq!(secs("1h"), Some(3600));
        assert_eq!(secs("1h30m"), Some(5400));
        assert_eq!(secs("2d"), Some(172_800));
        assert_eq!(secs("1d2h3m4s"), Some(93_784));
        assert_eq!(secs("0m"), Some(0));
        assert_eq!(secs("0"), Some(0));
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for bad in [
            "", "m", "15", "15x", "1.5h", "-1m", "30m1h", "1m1m", "1h 30m", " 1h", "1H",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_duration_too_large_to_represent_is_rejected() {
        assert_eq!(parse_duration("99999999999999999999s"), None);
        assert_eq!(parse_duration("18446744073709551615d"), None);
    }
}
