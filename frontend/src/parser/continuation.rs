//! Line continuations: joins the physical lines of one instruction into a
//! [`LogicalLine`] the way BuildKit does. The escape character at the end of
//! a line (optionally followed by spaces or tabs) continues the instruction;
//! the next line is appended with its leading whitespace kept; comment lines
//! inside the continuation are dropped; whitespace-only lines are dropped
//! too but reported, because BuildKit warns about them; running out of
//! lines simply ends the instruction.

use super::logical_line::LogicalLine;
use super::source_lines::SourceLine;

/// The result of reading one instruction's lines.
#[derive(Debug)]
pub(super) struct JoinedLines {
    /// `None` when the first line was blank: there is no instruction.
    pub line: Option<LogicalLine>,
    /// Index (into the physical lines) of the first line not consumed.
    pub next_index: usize,
    /// Numbers and end columns of the whitespace-only lines that were
    /// skipped inside the continuation.
    pub empty_continuation_lines: Vec<(usize, usize)>,
}

/// Reads the instruction starting at `lines[start]`, whose text begins after
/// `indent_bytes` bytes of leading whitespace.
pub(super) fn join_continued_lines(
    lines: &[SourceLine<'_>],
    start: usize,
    indent_bytes: usize,
    escape: char,
) -> JoinedLines {
    let Some(first) = lines.get(start) else {
        return JoinedLines { line: None, next_index: start, empty_continuation_lines: Vec::new() };
    };
    let first_text = first.text.get(indent_bytes..).unwrap_or("");
    let (kept, mut continues) = strip_continuation(first_text, escape);
    if !continues && kept.is_empty() {
        return JoinedLines { line: None, next_index: start + 1, empty_continuation_lines: Vec::new() };
    }

    let mut logical = LogicalLine::new(first.number);
    let indent_cols = first.text.get(..indent_bytes).map_or(0, |indent| indent.chars().count());
    logical.push_piece(first.number, indent_cols + 1, kept);
    logical.consume_line(first.number, first.end_col());

    let mut empty_continuation_lines = Vec::new();
    let mut index = start + 1;
    while continues {
        let Some(line) = lines.get(index) else { break };
        index += 1;
        logical.consume_line(line.number, line.end_col());
        let trimmed = line.text.trim_start();
        if trimmed.starts_with('#') {
            continue;
        }
        if trimmed.is_empty() {
            empty_continuation_lines.push((line.number, line.end_col()));
            continue;
        }
        let (kept, more) = strip_continuation(line.text, escape);
        logical.push_piece(line.number, 1, kept);
        continues = more;
    }
    JoinedLines { line: Some(logical), next_index: index, empty_continuation_lines }
}

/// Removes a trailing continuation marker. Returns the text to keep and
/// whether the instruction continues on the next line.
///
/// The marker is the escape character followed only by spaces or tabs, and
/// it counts only when it is the first character of the line or follows a
/// character other than the escape character (so `C:\\` is not continued;
/// BuildKit has the same rule and the same blind spot for `\\\`).
pub(super) fn strip_continuation(text: &str, escape: char) -> (&str, bool) {
    let without_blanks = text.trim_end_matches([' ', '\t']);
    let Some(before_marker) = without_blanks.strip_suffix(escape) else {
        return (text, false);
    };
    if before_marker.ends_with(escape) {
        return (text, false);
    }
    (before_marker, true)
}

#[cfg(test)]
mod tests {
    use super::super::source_lines::split_lines;
    use super::*;

    #[test]
    fn continuation_marker_rules() {
        assert_eq!(strip_continuation("echo a \\", '\\'), ("echo a ", true));
        assert_eq!(strip_continuation("echo a \\ \t ", '\\'), ("echo a ", true));
        assert_eq!(strip_continuation("\\", '\\'), ("", true));
        assert_eq!(strip_continuation("path\\\\", '\\'), ("path\\\\", false));
        assert_eq!(strip_continuation("echo a \\", '`'), ("echo a \\", false));
        assert_eq!(strip_continuation("echo a `", '`'), ("echo a ", true));
        assert_eq!(strip_continuation("plain", '\\'), ("plain", false));
    }

    #[test]
    fn joins_lines_dropping_comments_and_reporting_empty_ones() {
        let lines = split_lines("  RUN a \\\n# note\n   \n  b \\\nc\nRUN d\n");
        let joined = join_continued_lines(&lines, 0, 2, '\\');
        let line = joined.line.expect("an instruction");
        assert_eq!(line.text, "RUN a   b c");
        assert_eq!((line.first_line, line.last_line), (1, 5));
        assert_eq!(joined.next_index, 5);
        assert_eq!(joined.empty_continuation_lines, vec![(3, 4)]);
    }

    #[test]
    fn blank_line_is_not_an_instruction_and_eof_ends_a_continuation() {
        let lines = split_lines("   \nRUN x \\");
        assert!(join_continued_lines(&lines, 0, 3, '\\').line.is_none());
        let joined = join_continued_lines(&lines, 1, 0, '\\');
        assert_eq!(joined.line.map(|l| l.text), Some("RUN x ".to_string()));
        assert_eq!(joined.next_index, 2);
    }
}
