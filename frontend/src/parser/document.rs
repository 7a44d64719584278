//! The top-level pass over the file: directives at the top, comments,
//! blank lines, then instruction after instruction, each followed by the
//! bodies of the heredocs it introduces. Builds the [`Ast`].

use super::ast::{Ast, Node, Warning};
use super::continuation::join_continued_lines;
use super::directives::DirectiveScanner;
use super::error::ParseError;
use super::heredoc::{find_heredoc_markers, read_heredoc_body};
use super::instruction::parse_instruction;
use super::logical_line::LogicalLine;
use super::shapes::Keyword;
use super::source_lines::{SourceLine, split_lines};
use crate::span::{Pos, Span};

pub(super) fn parse_document(src: &str) -> Result<Ast, ParseError> {
    let lines = split_lines(src);
    let mut directives = DirectiveScanner::default();
    let mut nodes: Vec<Node> = Vec::new();
    let mut warnings = Vec::new();
    let mut comments = Vec::new();
    let mut index = 0;

    while let Some(line) = lines.get(index) {
        let trimmed = line.text.trim_start();
        let indent_bytes = line.text.len() - trimmed.len();
        let indent_cols = line.text.get(..indent_bytes).map_or(0, |indent| indent.chars().count());
        let is_directive = directives.observe(line, trimmed, indent_cols + 1)?;
        if let Some(comment) = trimmed.strip_prefix('#') {
            if !is_directive {
                remember_comment(&mut comments, comment);
            }
            index += 1;
            continue;
        }

        let joined = join_continued_lines(&lines, index, indent_bytes, directives.escape());
        index = joined.next_index;
        let Some(logical) = joined.line else { continue };
        // BuildKit warns once per instruction; one warning per empty line
        // lets each be pointed at.
        warnings.extend(joined.empty_continuation_lines.into_iter().map(|(number, end_col)| Warning {
            message: "empty continuation line".to_string(),
            span: Span::new(Pos::new(number, 1), Pos::new(number, end_col)),
        }));

        let mut node = parse_instruction(&logical, 0, logical.text.len(), directives.escape(), 0)?;
        node.comments = std::mem::take(&mut comments);
        if accepts_heredocs(&node) && logical.text.contains("<<") {
            index = attach_heredocs(&mut node, &logical, &lines, index)?;
        }
        nodes.push(node);
    }

    let (Some(first), Some(last)) = (nodes.first(), nodes.last()) else {
        let end = lines.last().map_or(Pos::new(1, 1), |line| Pos::new(line.number, line.end_col()));
        return Err(ParseError {
            message: "file with no instructions".to_string(),
            span: Span::new(Pos::new(1, 1), end),
            hint: Some("a Dockerfile needs at least a FROM instruction".to_string()),
        });
    };
    let span = Span::new(first.span.start, last.span.end);
    Ok(Ast { directives: directives.into_directives(), nodes, span, warnings })
}

/// BuildKit's rule for the comments kept with an instruction: an empty `#`
/// line forgets the ones before it.
fn remember_comment(comments: &mut Vec<String>, after_hash: &str) {
    let comment = after_hash.trim();
    if comment.is_empty() {
        comments.clear();
    } else {
        comments.push(comment.to_string());
    }
}

/// `RUN`, `COPY` and `ADD` in shell form, directly or as an `ONBUILD`
/// trigger, may introduce heredocs.
fn accepts_heredocs(node: &Node) -> bool {
    let target = match (&node.next, node.keyword.as_str()) {
        (Some(trigger), "onbuild") => trigger.as_ref(),
        _ => node,
    };
    Keyword::from_lowercase(&target.keyword).is_some_and(Keyword::takes_heredocs) && !target.json
}

/// Reads the bodies of the heredocs introduced on `logical` from
/// `lines[index..]`, one after another, and returns the index of the first
/// line after the last body.
fn attach_heredocs(
    node: &mut Node,
    logical: &LogicalLine,
    lines: &[SourceLine<'_>],
    mut index: usize,
) -> Result<usize, ParseError> {
    let markers = find_heredoc_markers(&logical.text).map_err(|error| ParseError {
        message: error.message,
        span: logical.span_of(error.start, error.end),
        hint: Some("quote the whole delimiter, e.g. <<'EOF'".to_string()),
    })?;
    for marker in markers {
        let mut heredoc = marker.heredoc;
        let Some((content, delimiter_index)) = read_heredoc_body(lines, index, &heredoc) else {
            let span = logical.span_of(marker.start, marker.end);
            let tabs = if heredoc.chomp { " (leading tabs allowed)" } else { "" };
            return Err(ParseError {
                message: format!(
                    "unterminated heredoc {:?} started on line {}",
                    heredoc.name, span.start.line
                ),
                span,
                hint: Some(format!("end the heredoc with a line containing only {}{tabs}", heredoc.name)),
            });
        };
        heredoc.content = content;
        node.heredocs.push(heredoc);
        if let Some(delimiter_line) = lines.get(delimiter_index) {
            node.span.end = Pos::new(delimiter_line.number, delimiter_line.end_col());
        }
        index = delimiter_index + 1;
    }
    if let Some(trigger) = node.next.as_deref_mut() {
        trigger.heredocs = node.heredocs.clone();
        trigger.span.end = node.span.end;
    }
    Ok(index)
}
