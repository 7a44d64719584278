//! A forward-only reader over the characters of one input, counting positions
//! in characters so errors can point at them.

/// Reads characters one at a time, with one character of lookahead.
#[derive(Debug)]
pub(super) struct Cursor {
    chars: Vec<char>,
    position: usize,
}

impl Cursor {
    /// BuildKit reads words with Go's `text/scanner`, which silently drops a
    /// byte-order mark at the very start of its input; we do the same so a
    /// stray BOM expands identically. Positions still count the BOM, so
    /// offsets keep pointing into the original text.
    pub(super) fn new(text: &str) -> Cursor {
        let chars: Vec<char> = text.chars().collect();
        let position = usize::from(chars.first() == Some(&'\u{FEFF}'));
        Cursor { chars, position }
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    /// Returns the current character and moves past it.
    pub(super) fn next_char(&mut self) -> Option<char> {
        let current = self.peek();
        if current.is_some() {
            self.position += 1;
        }
        current
    }

    pub(super) fn advance(&mut self) {
        let _ = self.next_char();
    }

    pub(super) fn at_end(&self) -> bool {
        self.position >= self.chars.len()
    }

    /// Character offset of the next character to be read.
    pub(super) fn position(&self) -> usize {
        self.position
    }
}
