//! Parser directives (`# syntax=…`, `# escape=…`, `# check=…`): recognised
//! only in the comment lines at the very top of the file. The first line
//! that is not a known directive (an instruction, a blank line, an ordinary
//! comment, an unknown `# name=value`) ends the directive block for good,
//! after which such lines are plain comments.

use super::ast::{Directive, Directives};
use super::error::ParseError;
use super::source_lines::SourceLine;
use crate::span::{Pos, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirectiveName {
    Syntax,
    Escape,
    Check,
}

impl DirectiveName {
    fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "syntax" => Some(DirectiveName::Syntax),
            "escape" => Some(DirectiveName::Escape),
            "check" => Some(DirectiveName::Check),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            DirectiveName::Syntax => "syntax",
            DirectiveName::Escape => "escape",
            DirectiveName::Check => "check",
        }
    }
}

/// Watches the top lines of the file for directives.
#[derive(Debug, Default)]
pub(super) struct DirectiveScanner {
    finished: bool,
    directives: Directives,
    /// Each directive seen so far with the line it was on, to report repeats.
    seen: Vec<(DirectiveName, usize)>,
}

impl DirectiveScanner {
    /// The escape character in force now.
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    pub fn into_directives(self) -> Directives {
        self.directives
    }

    /// Looks at one top-level line (`trimmed` is its text without leading
    /// whitespace, starting at column `trimmed_col`). Returns whether the
    /// line was a directive; errors for a repeated directive or a bad escape.
    pub fn observe(
        &mut self,
        line: &SourceLine<'_>,
        trimmed: &str,
        trimmed_col: usize,
    ) -> Result<bool, ParseError> {
        if self.finished {
            return Ok(false);
        }
        let Some(found) = recognise(trimmed) else {
            self.finished = true;
            return Ok(false);
        };
        let Some(name) = DirectiveName::from_name(found.name) else {
            self.finished = true;
            return Ok(false);
        };
        let line_span = Span::new(Pos::new(line.number, trimmed_col), Pos::new(line.number, line.end_col()));
        if let Some((_, first_line)) = self.seen.iter().find(|(seen, _)| *seen == name) {
            return Err(ParseError {
                message: format!("only one {} parser directive can be used", name.as_str()),
                span: line_span,
                hint: Some(format!(
                    "the first `# {}=` directive is on line {first_line}; remove one of them",
                    name.as_str()
                )),
            });
        }
        self.seen.push((name, line.number));

        let value_col = trimmed_col + trimmed.get(..found.value_start).map_or(0, |head| head.chars().count());
        let value_span = Span::new(
            Pos::new(line.number, value_col),
            Pos::new(line.number, value_col + found.value.chars().count()),
        );
        let directive = Directive { value: found.value.to_string(), span: value_span };
        match name {
            DirectiveName::Escape => match found.value {
                "\\" => self.directives.escape = '\\',
                "`" => self.directives.escape = '`',
                other => {
                    return Err(ParseError {
                        message: format!("invalid escape token '{other}' does not match ` or \\"),
                        span: value_span,
                        hint: Some("use `# escape=\\` (the default) or `# escape=``".to_string()),
                    });
                }
            },
            DirectiveName::Syntax => self.directives.syntax = Some(directive),
            DirectiveName::Check => self.directives.check = Some(directive),
        }
        Ok(true)
    }
}

/// A `# name = value` line taken apart; `value_start` is a byte offset into
/// the line given to [`recognise`].
#[derive(Debug, PartialEq, Eq)]
struct DirectiveSyntax<'a> {
    name: &'a str,
    value: &'a str,
    value_start: usize,
}

/// Whitespace as BuildKit's directive pattern understands it (`\s` in Go's
/// regular expressions: no vertical tab).
fn is_pattern_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// Matches `#`, optional whitespace, a name (`[a-zA-Z][a-zA-Z0-9]*`),
/// optional whitespace, `=`, then a non-empty value with surrounding
/// whitespace removed.
fn recognise(trimmed: &str) -> Option<DirectiveSyntax<'_>> {
    let after_hash = trimmed.strip_prefix('#')?;
    let body = after_hash.trim_start();

    let name_len = body
        .char_indices()
        .find(|&(index, c)| if index == 0 { !c.is_ascii_alphabetic() } else { !c.is_ascii_alphanumeric() })
        .map_or(body.len(), |(index, _)| index);
    if name_len == 0 {
        return None;
    }
    let name = body.get(..name_len)?;
    let after_name = body.get(name_len..)?.trim_start_matches(is_pattern_space);
    let after_equals = after_name.strip_prefix('=')?;
    if after_equals.is_empty() {
        return None;
    }

    let leading = after_equals.len() - after_equals.trim_start_matches(is_pattern_space).len();
    let trimmed_value = after_equals.trim_matches(is_pattern_space);
    let (value_offset, value) = if trimmed_value.is_empty() {
        // The pattern needs at least one value character, so an all-blank
        // value backtracks to its last blank character (BuildKit then
        // rejects it for `escape`, and keeps it for the others).
        let last = after_equals.chars().next_back()?;
        let offset = after_equals.len() - last.len_utf8();
        (offset, after_equals.get(offset..)?)
    } else {
        (leading, trimmed_value)
    };
    let value_start = trimmed.len() - after_equals.len() + value_offset;
    Some(DirectiveSyntax { name, value, value_start })
}

#[cfg(test)]
mod tests {
    use super::super::source_lines::split_lines;
    use super::*;

    fn scan(src: &str) -> (DirectiveScanner, Vec<Result<bool, ParseError>>) {
        let mut scanner = DirectiveScanner::default();
        let results = split_lines(src)
            .iter()
            .map(|line| {
                let trimmed = line.text.trim_start();
                let col = line.text.len() - trimmed.len() + 1;
                scanner.observe(line, trimmed, col)
            })
            .collect();
        (scanner, results)
    }

    #[test]
    fn recognises_directive_syntax() {
        let found = recognise("# Escape = ` ").expect("a directive");
        assert_eq!((found.name, found.value, found.value_start), ("Escape", "`", 11));
        assert_eq!(recognise("#syntax=docker/dockerfile:1").map(|d| d.value), Some("docker/dockerfile:1"));
        assert_eq!(recognise("# check=skip=all").map(|d| d.value), Some("skip=all"));
        assert_eq!(recognise("# escape= ").map(|d| d.value), Some(" "));
        assert_eq!(recognise("# escape="), None);
        assert_eq!(recognise("# just a comment"), None);
        assert_eq!(recognise("# 1x=y"), None);
        assert_eq!(recognise("FROM x"), None);
    }

    #[test]
    fn directives_stop_at_first_other_line() {
        let (scanner, results) = scan("# syntax=a\n# ESCAPE = `\n\n# check=x\n");
        assert_eq!(
            results.iter().map(|r| *r.as_ref().expect("no error")).collect::<Vec<_>>(),
            [true, true, false, false]
        );
        let directives = scanner.into_directives();
        assert_eq!(directives.escape, '`');
        assert_eq!(directives.syntax.map(|d| d.value), Some("a".to_string()));
        assert!(directives.check.is_none());
    }

    #[test]
    fn unknown_directive_ends_the_block() {
        let (scanner, results) = scan("# foo=bar\n# escape=`\n");
        assert!(results.iter().all(|r| r == &Ok(false)));
        assert_eq!(scanner.escape(), '\\');
    }

    #[test]
    fn directive_value_span() {
        let (scanner, _) = scan("  # syntax = docker/dockerfile:1\n");
        let syntax = scanner.into_directives().syntax.expect("syntax");
        assert_eq!(syntax.span, Span::new(Pos::new(1, 14), Pos::new(1, 33)));
    }

    #[test]
    fn repeated_and_invalid_directives_are_errors() {
        let (_, results) = scan("# syntax=a\n# Syntax=b\n");
        let error = results[1].clone().expect_err("repeat");
        assert_eq!(error.message, "only one syntax parser directive can be used");
        assert_eq!(error.span.start, Pos::new(2, 1));
        assert!(error.hint.as_deref().is_some_and(|hint| hint.contains("line 1")));

        let (_, results) = scan("# escape=x\n");
        let error = results[0].clone().expect_err("bad escape");
        assert!(error.message.contains("invalid escape token 'x'"));
        assert_eq!(error.span, Span::new(Pos::new(1, 10), Pos::new(1, 11)));
    }
}
