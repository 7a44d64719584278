//! One instruction's text after line continuations are joined, together
//! with the map from byte offsets in that joined text back to the line and
//! column in the Dockerfile, so every argument can get an accurate span.

use std::cell::Cell;

use crate::span::{Pos, Span};

/// A run of joined text that was copied from one physical line unchanged.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Byte offset of the run in the joined text.
    offset: usize,
    line: usize,
    /// Column (in characters) of the run's first character in its line.
    col: usize,
}

/// Remembers the last answer of [`LogicalLine::pos_at`] so that asking for
/// nearby offsets costs time proportional to the distance moved, not to the
/// length of the line (a 10 MB line with many arguments stays linear).
#[derive(Debug, Clone, Copy)]
struct Cursor {
    segment: usize,
    offset: usize,
    col: usize,
}

#[derive(Debug)]
pub(super) struct LogicalLine {
    /// The joined instruction text: BuildKit's `Original`.
    pub text: String,
    segments: Vec<Segment>,
    /// The physical line the instruction starts on.
    pub first_line: usize,
    /// The last physical line consumed, including trailing comment or empty
    /// lines inside a continuation.
    pub last_line: usize,
    /// One past the last character of `last_line`.
    pub last_line_end_col: usize,
    cursor: Cell<Option<Cursor>>,
}

impl LogicalLine {
    pub fn new(first_line: usize) -> Self {
        LogicalLine {
            text: String::new(),
            segments: Vec::new(),
            first_line,
            last_line: first_line,
            last_line_end_col: 1,
            cursor: Cell::new(None),
        }
    }

    /// Appends `piece`, which starts at column `col` of physical line `line`.
    pub fn push_piece(&mut self, line: usize, col: usize, piece: &str) {
        if piece.is_empty() {
            return;
        }
        self.segments.push(Segment { offset: self.text.len(), line, col });
        self.text.push_str(piece);
    }

    /// Records that physical line `line` (ending before column `end_col`)
    /// belongs to this instruction.
    pub fn consume_line(&mut self, line: usize, end_col: usize) {
        self.last_line = line;
        self.last_line_end_col = end_col;
    }

    /// Where the instruction ends: one past the last character of its last line.
    pub fn end_pos(&self) -> Pos {
        Pos::new(self.last_line, self.last_line_end_col)
    }

    /// The source position of the character at byte `offset` of `text`. An
    /// offset at the end of the text maps to just after its last character.
    pub fn pos_at(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let index = self.segments.partition_point(|segment| segment.offset <= offset);
        let Some(segment_index) = index.checked_sub(1) else {
            return Pos::new(self.first_line, 1);
        };
        let Some(segment) = self.segments.get(segment_index) else {
            return Pos::new(self.first_line, 1);
        };
        let count = |from: usize, to: usize| self.text.get(from..to).map_or(0, |run| run.chars().count());
        let col = match self.cursor.get() {
            Some(cached) if cached.segment == segment_index && cached.offset <= offset => {
                cached.col + count(cached.offset, offset)
            }
            // Stepping back a little (an ENV separator after its value) is
            // cheaper from the cached point than from the segment start.
            Some(cached)
                if cached.segment == segment_index
                    && offset.saturating_sub(segment.offset) > cached.offset.saturating_sub(offset) =>
            {
                cached.col.saturating_sub(count(offset, cached.offset))
            }
            _ => segment.col + count(segment.offset, offset),
        };
        self.cursor.set(Some(Cursor { segment: segment_index, offset, col }));
        Pos::new(segment.line, col)
    }

    /// The span of `text[start..end]`; it ends one column past its last
    /// character, on that character's line.
    pub fn span_of(&self, start: usize, end: usize) -> Span {
        let start_pos = self.pos_at(start);
        let last_char =
            if end > start { self.text.get(start..end).and_then(|s| s.chars().next_back()) } else { None };
        match last_char {
            Some(last) => {
                let last_pos = self.pos_at(end - last.len_utf8());
                Span::new(start_pos, Pos::new(last_pos.line, last_pos.col + 1))
            }
            None => Span::new(start_pos, start_pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_line_instruction() -> LogicalLine {
        // "RUN a \" on line 3 (indented by two) and "  bé" on line 4.
        let mut line = LogicalLine::new(3);
        line.push_piece(3, 3, "RUN a ");
        line.consume_line(3, 10);
        line.push_piece(4, 1, "  bé");
        line.consume_line(4, 5);
        line
    }

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let line = two_line_instruction();
        assert_eq!(line.text, "RUN a   bé");
        assert_eq!(line.pos_at(0), Pos::new(3, 3));
        assert_eq!(line.pos_at(4), Pos::new(3, 7));
        assert_eq!(line.pos_at(8), Pos::new(4, 3));
        assert_eq!(line.pos_at(line.text.len()), Pos::new(4, 5));
        // Going backwards after a forward query still answers correctly.
        assert_eq!(line.pos_at(1), Pos::new(3, 4));
    }

    #[test]
    fn spans_end_after_their_last_character() {
        let line = two_line_instruction();
        assert_eq!(line.span_of(8, line.text.len()), Span::new(Pos::new(4, 3), Pos::new(4, 5)));
        assert_eq!(line.span_of(4, 5), Span::new(Pos::new(3, 7), Pos::new(3, 8)));
        assert_eq!(line.span_of(2, 2), Span::point(3, 5));
        assert_eq!(line.end_pos(), Pos::new(4, 5));
    }

    #[test]
    fn empty_line_maps_to_its_start() {
        let line = LogicalLine::new(7);
        assert_eq!(line.pos_at(0), Pos::new(7, 1));
        assert_eq!(line.span_of(0, 0), Span::point(7, 1));
    }
}
