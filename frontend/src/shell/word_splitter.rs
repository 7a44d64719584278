//! Splitting expanded text into words the way BuildKit's `ProcessWords` does,
//! including the quirk of a buffer shared between nesting levels.
//!
//! Whitespace that came from the input or from a variable's value ends the
//! current word; text produced by quotes, escapes and `<<` markers is taken
//! as-is, so `"a b"` and `a\ b` stay one word.
//!
//! BuildKit keeps the partial word in a single buffer that every nesting
//! level shares and clears when it starts reading, so text gathered before a
//! `${v<op>…}` is lost: `ProcessWords("hello${x:-a}bye")` gives `["abye"]`.
//! Only the outermost level's words are ever used, so we build words there
//! alone and reproduce the quirk by clearing the word in progress whenever a
//! nested word part starts (see `Expander::begin_word_part`).

/// The finished words of one nesting level; the word in progress lives in a
/// buffer owned by the caller.
#[derive(Debug, Default)]
pub(super) struct WordList {
    words: Vec<String>,
    /// Set once anything was added since the last word ended; whitespace only
    /// ends a word while this is set.
    in_word: bool,
}

impl WordList {
    /// Adds a character that whitespace-splitting applies to.
    pub(super) fn push_splittable(&mut self, buffer: &mut String, ch: char) {
        if !ch.is_whitespace() {
            self.push_literal(buffer, ch);
        } else if self.in_word && !buffer.is_empty() {
            self.words.push(std::mem::take(buffer));
            self.in_word = false;
        }
    }

    /// Adds each character of a variable's value, splitting on whitespace.
    pub(super) fn push_splittable_str(&mut self, buffer: &mut String, text: &str) {
        for ch in text.chars() {
            self.push_splittable(buffer, ch);
        }
    }

    /// Adds a character that belongs to the word even if it is whitespace.
    pub(super) fn push_literal(&mut self, buffer: &mut String, ch: char) {
        buffer.push(ch);
        self.in_word = true;
    }

    /// Adds quoted or marker text that belongs to the word as a whole.
    pub(super) fn push_literal_str(&mut self, buffer: &mut String, text: &str) {
        buffer.push_str(text);
        self.in_word = true;
    }

    /// Ends the word in progress (if it has any text) and returns all words.
    pub(super) fn finish(mut self, buffer: &mut String) -> Vec<String> {
        if !buffer.is_empty() {
            self.words.push(std::mem::take(buffer));
        }
        self.words
    }
}
