//! One instruction's joined text to a [`Node`]: the keyword, the leading
//! flags, the arguments in the shape its keyword calls for, the nested
//! trigger of `ONBUILD`, and spans for all of them.

use super::ast::Node;
use super::error::ParseError;
use super::flags::extract_flags;
use super::logical_line::LogicalLine;
use super::shapes::{Keyword, shape_arguments};
use super::words::split_first_blank_run;
use crate::span::Span;

/// `ONBUILD ONBUILD …` is rejected later anyway; nesting is bounded here so
/// that a hostile line cannot recurse without limit.
const MAX_ONBUILD_NESTING: usize = 8;

/// Parses `line.text[start..end]` as one instruction. `depth` counts the
/// enclosing `ONBUILD`s.
pub(super) fn parse_instruction(
    line: &LogicalLine,
    start: usize,
    end: usize,
    escape: char,
    depth: usize,
) -> Result<Node, ParseError> {
    let whole = line.text.get(start..end).unwrap_or("");
    let (text_start, text) = trim_with_offset(whole, start);

    let (keyword_len, after_keyword) = split_first_blank_run(text);
    let raw_keyword = text.get(..keyword_len).unwrap_or("");
    let keyword = lowercase_like_go(raw_keyword);
    let keyword_span = line.span_of(text_start, text_start + keyword_len);

    let flags = match after_keyword {
        Some(offset) => leading_flags(line, text.get(offset..).unwrap_or(""), text_start + offset, escape),
        None => LeadingFlags { rest_start: text_start + text.len(), ..LeadingFlags::default() },
    };
    let rest_start = flags.rest_start;

    let known = Keyword::from_lowercase(&keyword);
    let shaped = shape_arguments(known, flags.rest, escape).map_err(|error| ParseError {
        message: error.message,
        span: line.span_of(rest_start + error.start, rest_start + error.end),
        hint: error.hint,
    })?;
    let next = match shaped.nested {
        Some(range) => Some(Box::new(nested_trigger(line, range, rest_start, keyword_span, escape, depth)?)),
        None => None,
    };
    let (args, arg_spans) = shaped
        .args
        .into_iter()
        .map(|arg| (arg.text, line.span_of(rest_start + arg.start, rest_start + arg.end)))
        .unzip();

    Ok(Node {
        keyword,
        flags: flags.flags,
        flag_spans: flags.spans,
        args,
        arg_spans,
        json: shaped.json,
        original: whole.to_string(),
        heredocs: Vec::new(),
        next,
        comments: Vec::new(),
        span: Span::new(line.pos_at(text_start), line.end_pos()),
        keyword_span,
    })
}

/// The flags after the keyword and where the arguments after them start.
#[derive(Default)]
struct LeadingFlags<'a> {
    flags: Vec<String>,
    spans: Vec<Span>,
    /// Offset in the line of `rest`.
    rest_start: usize,
    /// The arguments, trimmed.
    rest: &'a str,
}

/// Takes the `--flags` from `after` (the text after the keyword, at
/// `after_start` in the line).
fn leading_flags<'a>(
    line: &LogicalLine,
    after: &'a str,
    after_start: usize,
    escape: char,
) -> LeadingFlags<'a> {
    let extracted = extract_flags(after, escape);
    let mut flags = Vec::new();
    let mut spans = Vec::new();
    for flag in extracted.flags {
        spans.push(line.span_of(after_start + flag.start, after_start + flag.end));
        flags.push(flag.text);
    }
    let (rest_start, rest) =
        trim_with_offset(after.get(extracted.rest_start..).unwrap_or(""), after_start + extracted.rest_start);
    LeadingFlags { flags, spans, rest_start, rest }
}

/// The instruction an `ONBUILD` carries, at `range` of its arguments
/// (which start at `rest_start`); nesting is bounded.
fn nested_trigger(
    line: &LogicalLine,
    (nested_start, nested_end): (usize, usize),
    rest_start: usize,
    keyword_span: Span,
    escape: char,
    depth: usize,
) -> Result<Node, ParseError> {
    if depth >= MAX_ONBUILD_NESTING {
        return Err(ParseError {
            message: "ONBUILD instructions are nested too deeply".to_string(),
            span: keyword_span,
            hint: Some("an ONBUILD trigger cannot itself be ONBUILD".to_string()),
        });
    }
    parse_instruction(line, rest_start + nested_start, rest_start + nested_end, escape, depth + 1)
}

/// `text` without surrounding whitespace, and the offset where that starts.
fn trim_with_offset(text: &str, offset: usize) -> (usize, &str) {
    let trimmed_start = text.trim_start();
    (offset + text.len() - trimmed_start.len(), trimmed_start.trim_end())
}

/// Go's `strings.ToLower`: per character, and `İ` becomes a plain `i`.
fn lowercase_like_go(keyword: &str) -> String {
    let mut lower = String::with_capacity(keyword.len());
    for c in keyword.chars() {
        if c == '\u{130}' {
            lower.push('i');
        } else {
            lower.extend(c.to_lowercase());
        }
    }
    lower
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Pos;

    fn one_line(text: &str) -> LogicalLine {
        let mut line = LogicalLine::new(1);
        line.push_piece(1, 1, text);
        line.consume_line(1, text.chars().count() + 1);
        line
    }

    fn parse_text(text: &str) -> Result<Node, ParseError> {
        let line = one_line(text);
        parse_instruction(&line, 0, line.text.len(), '\\', 0)
    }

    #[test]
    fn keyword_flags_and_arguments() {
        let node = parse_text("COPY --from=build --chmod=755 a b/").expect("parses");
        assert_eq!(node.keyword, "copy");
        assert_eq!(node.flags, ["--from=build", "--chmod=755"]);
        assert_eq!(node.flag_spans[1], Span::new(Pos::new(1, 19), Pos::new(1, 30)));
        assert_eq!(node.args, ["a", "b/"]);
        assert_eq!(node.arg_spans, [Span::point(1, 31).with_end(1, 32), Span::point(1, 33).with_end(1, 35)]);
        assert_eq!(node.keyword_span, Span::new(Pos::new(1, 1), Pos::new(1, 5)));
    }

    #[test]
    fn keyword_alone_and_unknown_keywords() {
        let node = parse_text("HEALTHCHECK").expect("parses");
        assert!(node.args.is_empty());
        let node = parse_text("Frobnicate  a b").expect("parses");
        assert_eq!(
            (node.keyword.as_str(), node.args.as_slice()),
            ("frobnicate", ["a b".to_string()].as_slice())
        );
    }

    #[test]
    fn onbuild_nests_its_trigger() {
        let node = parse_text("ONBUILD --x RUN [\"a\"]").expect("parses");
        assert_eq!(node.flags, ["--x"]);
        let trigger = node.next.expect("trigger");
        assert_eq!(
            (trigger.keyword.as_str(), trigger.json, trigger.original.as_str()),
            ("run", true, "RUN [\"a\"]")
        );
        assert_eq!(trigger.keyword_span, Span::new(Pos::new(1, 13), Pos::new(1, 16)));
        assert!(parse_text(&"ONBUILD ".repeat(50)).is_err());
    }

    #[test]
    fn lowercases_like_go() {
        assert_eq!(lowercase_like_go("RUN"), "run");
        assert_eq!(lowercase_like_go("İ"), "i");
    }

    trait WithEnd {
        fn with_end(self, line: usize, col: usize) -> Span;
    }

    impl WithEnd for Span {
        fn with_end(self, line: usize, col: usize) -> Span {
            Span::new(self.start, Pos::new(line, col))
        }
    }
}
