//! Untrusted text made safe for one-line outputs (logs, the terminal timeline, error messages): control
//! characters and bidirectional overrides are shown as `\u{..}` escapes instead of acting on the reader's
//! terminal or reordering what they see.

use std::borrow::Cow;

/// Whether `c` would act on a terminal or reorder text rather than show as itself.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `s` with every unsafe character (newlines included) replaced by its `\u{..}` escape; borrowed when
/// there is none.
pub fn one_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_plain_text_is_borrowed() {
        assert_eq!(one_line("a\nb\u{1b}[31m"), "a\\u{a}b\\u{1b}[31m");
        assert_eq!(one_line("evil\u{202E}gnp.exe"), "evil\\u{202e}gnp.exe");
        assert!(matches!(one_line("plain é"), Cow::Borrowed(_)));
    }
}
