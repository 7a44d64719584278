//! The JSON (exec) form of arguments: `["executable", "arg"]`.
//!
//! Text counts as the JSON form only if it is one complete, valid JSON
//! value that is an array, as Go's `encoding/json` would accept it. Valid
//! JSON whose elements are not all strings is an error; anything that is not
//! valid JSON is not the JSON form at all (the caller falls back to the
//! shell form). Written by hand, without recursion, so every element keeps
//! its byte range and hostile nesting cannot exhaust the stack.

/// A decoded string element and the byte range of its quoted source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JsonString {
    pub value: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum JsonArray {
    /// Not a valid JSON array: use the shell form.
    NotJson,
    /// A valid array of strings.
    Strings(Vec<JsonString>),
    /// A valid array with an element at this byte range that is not a string.
    NonStringElement { start: usize, end: usize },
}

/// Go's decoder refuses deeper nesting than this; so do we.
const MAX_NESTING: usize = 10_000;

/// Parses `text` (which must start with `[`, after JSON whitespace).
pub(super) fn parse_json_array(text: &str) -> JsonArray {
    let mut scanner = Scanner { bytes: text.as_bytes(), text, pos: 0 };
    scanner.skip_whitespace();
    if scanner.peek() != Some(b'[') {
        return JsonArray::NotJson;
    }
    scanner.pos += 1;
    let mut strings = Vec::new();
    let mut first_non_string = None;
    scanner.skip_whitespace();
    if scanner.peek() == Some(b']') {
        scanner.pos += 1;
    } else {
        loop {
            scanner.skip_whitespace();
            let start = scanner.pos;
            if scanner.peek() == Some(b'"') {
                let Some(value) = scanner.string() else { return JsonArray::NotJson };
                strings.push(JsonString { value, start, end: scanner.pos });
            } else {
                if !scanner.skip_value() {
                    return JsonArray::NotJson;
                }
                first_non_string.get_or_insert((start, scanner.pos));
            }
            scanner.skip_whitespace();
            match scanner.next_byte() {
                Some(b',') => continue,
                Some(b']') => break,
                _ => return JsonArray::NotJson,
            }
        }
    }
    scanner.skip_whitespace();
    if scanner.pos != scanner.bytes.len() {
        return JsonArray::NotJson;
    }
    match first_non_string {
        Some((start, end)) => JsonArray::NonStringElement { start, end },
        None => JsonArray::Strings(strings),
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

/// What a nested container expects next while skipping a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Array,
    Object,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat_literal(&mut self, literal: &[u8]) -> bool {
        let matches = self.bytes.get(self.pos..self.pos + literal.len()) == Some(literal);
        if matches {
            self.pos += literal.len();
        }
        matches
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> bool {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return false,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return false;
            }
            self.skip_digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return false;
            }
            self.skip_digits();
        }
        true
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// Decodes a string starting at the opening quote. Lone UTF-16
    /// surrogates become U+FFFD, as Go decodes them.
    fn string(&mut self) -> Option<String> {
        self.pos += 1;
        let mut value = String::new();
        loop {
            let run_start = self.pos;
            while self.peek().is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20) {
                self.pos += 1;
            }
            value.push_str(self.text.get(run_start..self.pos)?);
            match self.next_byte()? {
                b'"' => return Some(value),
                b'\\' => {}
                _ => return None,
            }
            let escaped = match self.next_byte()? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\x08',
                b'f' => '\x0c',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => self.unicode_escape()?,
                _ => return None,
            };
            value.push(escaped);
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` already consumed),
    /// joining a surrogate pair when one follows.
    fn unicode_escape(&mut self) -> Option<char> {
        let unit = self.hex4()?;
        if !(0xD800..0xE000).contains(&unit) {
            return Some(char::from_u32(unit).unwrap_or('\u{fffd}'));
        }
        if (0xD800..0xDC00).contains(&unit) && self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u") {
            let saved = self.pos;
            self.pos += 2;
            if let Some(low) = self.hex4().filter(|low| (0xDC00..0xE000).contains(low)) {
                let combined = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                return Some(char::from_u32(combined).unwrap_or('\u{fffd}'));
            }
            // Not a pair: the next escape is decoded on its own.
            self.pos = saved;
        }
        Some('\u{fffd}')
    }

    /// Skips one JSON value of any kind; false if it is malformed.
    fn skip_value(&mut self) -> bool {
        let mut stack: Vec<Container> = Vec::new();
        loop {
            // Read one value (or open a container).
            self.skip_whitespace();
            let complete_value = match self.peek() {
                Some(b'"') => self.string().is_some(),
                Some(b't') => self.eat_literal(b"true"),
                Some(b'f') => self.eat_literal(b"false"),
                Some(b'n') => self.eat_literal(b"null"),
                Some(b'-' | b'0'..=b'9') => self.number(),
                Some(open @ (b'[' | b'{')) => {
                    if stack.len() >= MAX_NESTING {
                        return false;
                    }
                    self.pos += 1;
                    self.skip_whitespace();
                    let (container, close) =
                        if open == b'[' { (Container::Array, b']') } else { (Container::Object, b'}') };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        true
                    } else {
                        stack.push(container);
                        if container == Container::Object && !self.object_key() {
                            return false;
                        }
                        continue;
                    }
                }
                _ => false,
            };
            if !complete_value {
                return false;
            }
            // After a value: close containers or move to the next element.
            loop {
                let Some(&container) = stack.last() else { return true };
                self.skip_whitespace();
                match (self.next_byte(), container) {
                    (Some(b','), Container::Array) => break,
                    (Some(b','), Container::Object) => {
                        if !self.object_key() {
                            return false;
                        }
                        break;
                    }
                    (Some(b']'), Container::Array) | (Some(b'}'), Container::Object) => {
                        stack.pop();
                    }
                    _ => return false,
                }
            }
        }
    }

    /// Reads `"key" :` inside an object.
    fn object_key(&mut self) -> bool {
        self.skip_whitespace();
        if self.peek() != Some(b'"') || self.string().is_none() {
            return false;
        }
        self.skip_whitespace();
        self.next_byte() == Some(b':')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Option<Vec<String>> {
        match parse_json_array(text) {
            JsonArray::Strings(strings) => Some(strings.into_iter().map(|s| s.value).collect()),
            _ => None,
        }
    }

    #[test]
    fn string_arrays() {
        assert_eq!(values("[]"), Some(vec![]));
        assert_eq!(values("[ \"a\", \"b\" ]"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(values("[\t\"a\",\t\"b\"\t]"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            values(r#"["\" \\ \/ \b \f \n \r \t \u0000 \u2603 \ud83d\ude00 \ud800x"]"#),
            Some(vec!["\" \\ / \x08 \x0c \n \r \t \0 ☃ 😀 \u{fffd}x".into()])
        );
    }

    #[test]
    fn invalid_json_is_not_the_json_form() {
        for text in [
            "['a']",
            "[\"a\"",
            "[\"a]",
            "[\"a\",]",
            "[\"a\"] x",
            "[\"a\" \"b\"]",
            "[\"\\x\"]",
            "[01]",
            "[\"a\u{b}\"]",
            "[\"tab\there\"]",
            "[1.]",
            "[{\"a\" 1}]",
            "echo",
        ] {
            assert_eq!(parse_json_array(text), JsonArray::NotJson, "{text}");
        }
    }

    #[test]
    fn valid_json_with_other_elements_points_at_the_first() {
        assert_eq!(
            parse_json_array(r#"[ "echo", [ "nested json" ] ]"#),
            JsonArray::NonStringElement { start: 10, end: 27 }
        );
        assert!(matches!(
            parse_json_array(r#"["a", 1, {"k": [true, null, -1.5e3]}]"#),
            JsonArray::NonStringElement { start: 6, end: 7 }
        ));
        assert_eq!(parse_json_array("[1, \"a\""), JsonArray::NotJson);
    }

    #[test]
    fn element_ranges_include_quotes() {
        let JsonArray::Strings(strings) = parse_json_array(r#"[ "a", "bc" ]"#) else { panic!("not json") };
        assert_eq!((strings[1].start, strings[1].end), (7, 11));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = format!("[{}{}]", "[".repeat(MAX_NESTING + 5), "]".repeat(MAX_NESTING + 5));
        assert_eq!(parse_json_array(&deep), JsonArray::NotJson);
        let fine = format!("[{}{}]", "[".repeat(100), "]".repeat(100));
        assert!(matches!(parse_json_array(&fine), JsonArray::NonStringElement { .. }));
    }
}
