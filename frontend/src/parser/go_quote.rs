//! Go's `strconv.Quote`, which BuildKit's AST dump uses for every string:
//! double quotes around the text, `\"` and `\\` escaped, printable
//! characters (including non-ASCII ones) kept as they are, the usual
//! single-letter escapes for control characters, `\xNN` for other ASCII
//! control bytes, and `\uNNNN` / `\UNNNNNNNN` for other unprintable
//! characters.

use std::fmt::Write;

use super::printable_table::PRINTABLE_RANGES;

/// Appends `text` to `out` quoted as Go's `strconv.Quote` would quote it.
pub(super) fn push_go_quoted(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_printable(c) => out.push(c),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            // Writing to a String cannot fail, so the results are ignored.
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x1_0000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols
/// and the ASCII space.
fn is_printable(c: char) -> bool {
    let code = c as u32;
    if code < 0x80 {
        return (0x20..0x7f).contains(&code);
    }
    let index = PRINTABLE_RANGES.partition_point(|&(first, _)| first <= code);
    index.checked_sub(1).and_then(|i| PRINTABLE_RANGES.get(i)).is_some_and(|&(_, last)| code <= last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(text: &str) -> String {
        let mut out = String::new();
        push_go_quoted(&mut out, text);
        out
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("abc"), r#""abc""#);
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("\x07\x08\x0c\n\r\t\x0b"), r#""\a\b\f\n\r\t\v""#);
        assert_eq!(quote("\0\x1b\x7f"), r#""\x00\x1b\x7f""#);
        assert_eq!(quote("♥ ☃ 한국어 é"), "\"♥ ☃ 한국어 é\"");
        assert_eq!(quote("\u{a0}\u{ad}\u{200b}\u{feff}"), r#""\u00a0\u00ad\u200b\ufeff""#);
        assert_eq!(quote("\u{85}"), r#""\u0085""#);
        assert_eq!(quote("😀\u{e0001}\u{10ffff}"), "\"😀\\U000e0001\\U0010ffff\"");
        assert_eq!(quote(""), r#""""#);
    }
}
