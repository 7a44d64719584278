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
    let keyword_end = text_start + keyword_len;

    let mut flags = Vec::new();
    let mut flag_spans = Vec::new();
    let (rest_start, rest) = match after_keyword {
        Some(offset) => {
            let after = text.get(offset..).unwrap_or("");
            let after_start = text_start + offset;
            let extracted = extract_flags(after, escape);
            for flag in extracted.flags {
                flag_spans.push(line.span_of(after_start + flag.start, after_start + flag.end));
                flags.push(flag.text);
            }
            trim_with_offset(
                after.get(extracted.rest_start..).unwrap_or(""),
                after_start + extracted.rest_start,
            )
        }
        None => (text_start + text.len(), ""),
    };

    let known = Keyword::from_lowercase(&keyword);
    let shaped = shape_arguments(known, rest, escape).map_err(|error| ParseError {
        message: error.message,
        span: line.span_of(rest_start + error.start, rest_start + error.end),
        hint: error.hint,
    })?;

    let next = match shaped.nested {
        Some((nested_start, nested_end)) => {
            if depth >= MAX_ONBUILD_NESTING {
                return Err(ParseError {
                    message: "ONBUILD instructions are nested too deeply".to_string(),
                    span: line.span_of(text_start, keyword_end),
                    hint: Some("an ONBUILD trigger cannot itself be ONBUILD".to_string()),
                });
            }
            let nested = parse_instruction(
                line,
                rest_start + nested_start,
                rest_start + nested_end,
                escape,
                depth + 1,
            )?;
            Some(Box::new(nested))
        }
        None => None,
    };

    let mut args = Vec::with_capacity(shaped.args.len());
    let mut arg_spans = Vec::with_capacity(shaped.args.len());
    for arg in shaped.args {
        arg_spans.push(line.span_of(rest_start + arg.start, rest_start + arg.end));
        args.push(arg.text);
    }

    Ok(Node {
        keyword,
        flags,
        flag_spans,
        args,
        arg_spans,
        json: shaped.json,
        original: whole.to_string(),
        heredocs: Vec::new(),
        next,
        comments: Vec::new(),
        span: Span::new(line.pos_at(text_start), line.end_pos()),
        keyword_span: line.span_of(text_start, keyword_end),
    })
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
