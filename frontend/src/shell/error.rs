//! The single error type of word expansion, and BuildKit's way of showing it.

use std::fmt::Write as _;

/// Why a word could not be expanded.
///
/// `message` is the text BuildKit puts after `failed to process "<word>": `
/// (for example `syntax error: missing '}'`); [`ShellError::describe`]
/// rebuilds the whole line. `offset` counts characters (not bytes) from the
/// start of the input and points at the construct that is wrong: the opening
/// quote of an unterminated string, the modifier character of an unsupported
/// `${name<modifier>…}`, or else the `$` of the form that failed (bad
/// syntax, missing `}`, a failed `?` check, an invalid pattern). When the
/// input ends inside nested forms, BuildKit blames the outermost unclosed one
/// and so do we.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShellError {
    pub message: String,
    pub offset: usize,
}

impl ShellError {
    pub(super) fn new(message: impl Into<String>, offset: usize) -> ShellError {
        ShellError { message: message.into(), offset }
    }

    /// The message as BuildKit prints it, `failed to process "<input>": <message>`,
    /// with `input` quoted the way Go's `%q` does for ordinary text.
    pub fn describe(&self, input: &str) -> String {
        format!("failed to process {}: {}", go_quote(input), self.message)
    }
}

/// Double-quotes `text` with Go-style escapes.
///
/// Go's `strconv.Quote` keeps every printable character and escapes the rest;
/// telling printable from not needs Unicode tables we do not carry, so this
/// escapes control characters, non-ASCII spaces and the invisible format
/// characters people actually paste (zero-width space, joiners, bidi marks,
/// BOM, soft hyphen). That is exact for everything but rare format characters.
fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for ch in text.chars() {
        match ch {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\u{07}' => quoted.push_str("\\a"),
            '\u{08}' => quoted.push_str("\\b"),
            '\u{0C}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{0B}' => quoted.push_str("\\v"),
            ' ' => quoted.push(' '),
            _ if u32::from(ch) < 0x20 || ch == '\u{7F}' => {
                let _ = write!(quoted, "\\x{:02x}", u32::from(ch));
            }
            _ if ch.is_control() || ch.is_whitespace() || is_invisible_format(ch) => {
                if u32::from(ch) <= 0xFFFF {
                    let _ = write!(quoted, "\\u{:04x}", u32::from(ch));
                } else {
                    let _ = write!(quoted, "\\U{:08x}", u32::from(ch));
                }
            }
            _ => quoted.push(ch),
        }
    }
    quoted.push('"');
    quoted
}

fn is_invisible_format(ch: char) -> bool {
    matches!(ch, '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}
