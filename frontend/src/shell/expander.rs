//! The walk over one input: quotes, escapes, `$name`, `${name…}` forms and
//! `<<` heredoc markers, producing the expanded text and its words.
//!
//! BuildKit's lexer is recursive descent, and its observable behaviour
//! depends on that shape: which errors replace which, when a variable counts
//! as looked up, what happens to the word in progress. We keep the same shape
//! but hold the open constructs on an explicit stack of [`Frame`]s instead of
//! the call stack, so `${a:-${b:-…}}` nested any number of levels deep costs
//! heap memory proportional to the input and never overflows a thread stack
//! (BuildKit has no depth limit either).
//!
//! The stack always alternates the same way: a [`TextFrame`] reads plain
//! text; inside it a `"` opens a [`QuotedFrame`]; inside either, a `${name…}`
//! form with a word part opens a [`BracedFrame`] with a new [`TextFrame`] on
//! top of it reading that word part up to its delimiter.

use std::collections::BTreeSet;

use super::cursor::Cursor;
use super::env::Env;
use super::error::ShellError;
use super::lexer::Lexer;
use super::pattern;
use super::unicode_class::{is_go_digit, is_go_letter};
use super::word_splitter::WordList;

/// The raw result of one walk, before the public [`super::Expansion`] is made.
#[derive(Debug)]
pub(super) struct Walked {
    pub(super) text: String,
    pub(super) words: Vec<String>,
    pub(super) matched: BTreeSet<String>,
    pub(super) unmatched: BTreeSet<String>,
}

enum Frame {
    Text(TextFrame),
    Quoted(QuotedFrame),
    Braced(BracedFrame),
}

/// Plain text read up to `stop` (the end of input for the outermost frame).
struct TextFrame {
    stop: Option<char>,
    /// Whether escape characters stay in the output. The lexer's setting
    /// applies at the top; the pattern parts of `${v#…}`, `${v%…}` and
    /// `${v/…/…}` keep them (the pattern still needs its backslashes), the
    /// word parts of every other form drop them. Double quotes follow the
    /// text frame they are in.
    keep_escapes: bool,
    text: String,
}

/// The inside of `"…"`.
struct QuotedFrame {
    opening: usize,
    text: String,
}

/// A `${name…}` form whose word part the frame above it is reading.
struct BracedFrame {
    name: String,
    /// Offset of the `$`, where errors about the whole form point.
    dollar: usize,
    /// Offset of the first character after the name.
    modifier_at: usize,
    form: BracedForm,
}

enum BracedForm {
    /// `${name<op>word}`: `-`, `+`, `?`, `#`, `##`, `%`, `%%`, with or
    /// without `:`, or anything else after `:` (reported once the word part
    /// has been read, as BuildKit does).
    Operator {
        operator: char,
        /// The leading `:`: an empty value counts as unset.
        empty_is_unset: bool,
        /// The modifier as written, for messages (`:-`, `#`, …).
        spelled: String,
    },
    /// `${name/pattern/…}` or `${name//pattern/…}`, reading the pattern.
    ReplacePattern { replace_all: bool },
    /// `${name/pattern/replacement}`, reading the replacement.
    ReplaceWith { replace_all: bool, pattern: String },
}

/// The most bytes one walk may produce by substitution: variable values,
/// `${name/pattern/replacement}` results and, under `skip_unset_env`, the
/// re-spelled forms. Nested `${v//p/${v//p/…}}` multiplies lengths at every
/// level (an empty pattern puts the replacement between every two
/// characters), so a few dozen bytes of input would otherwise ask for
/// gigabytes; BuildKit has no limit and runs out of memory. No real word
/// comes near this: a single `exec` argument or environment entry is
/// limited to 128 KiB by Linux.
pub(super) const MAX_SUBSTITUTED_BYTES: usize = 16 << 20;

/// What one step of the walk left to do.
enum Flow {
    Continue,
    Finished(String),
}

pub(super) struct Expander<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    cursor: Cursor,
    frames: Vec<Frame>,
    /// Words of the outermost text frame; nested word parts never produce
    /// words of their own (BuildKit discards them).
    words: WordList,
    /// The word in progress; see the `word_splitter` module for why opening a
    /// nested word part clears it.
    word_buffer: String,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    /// What is left of [`MAX_SUBSTITUTED_BYTES`] for this walk.
    substitution_budget: usize,
}

impl<'a> Expander<'a> {
    pub(super) fn new(lexer: &'a Lexer, env: &'a dyn Env, input: &str) -> Expander<'a> {
        Expander {
            lexer,
            env,
            cursor: Cursor::new(input),
            frames: Vec::new(),
            words: WordList::default(),
            word_buffer: String::new(),
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
            substitution_budget: MAX_SUBSTITUTED_BYTES,
        }
    }

    pub(super) fn run(mut self) -> Result<Walked, ShellError> {
        self.frames.push(Frame::Text(TextFrame {
            stop: None,
            keep_escapes: self.lexer.raw_escapes,
            text: String::new(),
        }));
        loop {
            match self.step() {
                Ok(Flow::Continue) => {}
                Ok(Flow::Finished(text)) => {
                    let words = std::mem::take(&mut self.words).finish(&mut self.word_buffer);
                    return Ok(Walked { text, words, matched: self.matched, unmatched: self.unmatched });
                }
                Err(error) => return Err(self.unwind(error)),
            }
        }
    }

    fn step(&mut self) -> Result<Flow, ShellError> {
        match self.frames.last() {
            Some(Frame::Text(frame)) => {
                let (stop, keep_escapes) = (frame.stop, frame.keep_escapes);
                self.step_text(stop, keep_escapes)
            }
            Some(Frame::Quoted(frame)) => {
                let opening = frame.opening;
                self.step_quoted(opening)
            }
            // A braced frame always has the text frame of its word part on
            // top while the walk runs, so neither case occurs.
            Some(Frame::Braced(_)) | None => {
                Err(ShellError::new("internal error: expansion stack out of order", self.cursor.position()))
            }
        }
    }

    /// Takes the frames off the stack after `error`, letting each enclosing
    /// `${…}` restate it: when the input ran out inside a word part, BuildKit
    /// reports the missing delimiter of that form instead of what went wrong
    /// further in (the outermost such form wins). Other errors pass through.
    fn unwind(&mut self, mut error: ShellError) -> ShellError {
        while let Some(frame) = self.frames.pop() {
            if let Frame::Braced(braced) = frame
                && self.cursor.at_end()
            {
                error = match braced.form {
                    BracedForm::ReplacePattern { .. } => {
                        ShellError::new("syntax error: missing '/' in ${}", braced.dollar)
                    }
                    BracedForm::Operator { .. } | BracedForm::ReplaceWith { .. } => {
                        missing_brace(braced.dollar)
                    }
                };
            }
        }
        error
    }

    fn step_text(&mut self, stop: Option<char>, keep_escapes: bool) -> Result<Flow, ShellError> {
        let Some(ch) = self.cursor.peek() else { return self.end_text(stop) };
        if Some(ch) == stop {
            self.cursor.advance();
            let text = self.pop_text();
            self.finish_word_part(text)?;
            return Ok(Flow::Continue);
        }
        let quotes_are_special = !self.lexer.skip_process_quotes;
        match ch {
            '$' => {
                if let Some(value) = self.begin_dollar()? {
                    self.append_value(value);
                }
            }
            '<' => {
                let marker = self.read_heredoc_marker();
                self.append_literal(&marker);
            }
            '\'' if quotes_are_special => {
                let quoted = self.read_single_quoted()?;
                self.append_literal(&quoted);
            }
            '"' if quotes_are_special => {
                let opening = self.cursor.position();
                self.cursor.advance();
                let text = if self.lexer.raw_quotes { "\"".to_owned() } else { String::new() };
                self.frames.push(Frame::Quoted(QuotedFrame { opening, text }));
            }
            _ if ch == self.lexer.escape => {
                self.cursor.advance();
                if keep_escapes {
                    self.append_char(ch, false);
                }
                // An escape character at the very end escapes nothing and is
                // dropped (unless kept above).
                let Some(escaped) = self.cursor.next_char() else { return self.end_text(stop) };
                self.append_char(escaped, false);
            }
            _ => {
                self.cursor.advance();
                self.append_char(ch, true);
            }
        }
        Ok(Flow::Continue)
    }

    /// The input ended inside a text frame: the walk is done if this is the
    /// outermost one, otherwise its delimiter is missing.
    fn end_text(&mut self, stop: Option<char>) -> Result<Flow, ShellError> {
        let text = self.pop_text();
        match stop {
            None => Ok(Flow::Finished(text)),
            // Every enclosing `${…}` restates this in `unwind`.
            Some(stop) => Err(ShellError::new(
                format!("unexpected end of statement while looking for matching {stop}"),
                self.cursor.position(),
            )),
        }
    }

    fn pop_text(&mut self) -> String {
        match self.frames.pop() {
            Some(Frame::Text(frame)) => frame.text,
            _ => String::new(),
        }
    }

    /// `"…"`: variables expand; the escape character escapes only `"`, `$`
    /// and itself and is otherwise kept (so `"a\tb"` stays `a\tb`).
    fn step_quoted(&mut self, opening: usize) -> Result<Flow, ShellError> {
        let escape = self.lexer.escape;
        match self.cursor.peek() {
            None => {
                self.frames.pop();
                return Err(ShellError::new(
                    "unexpected end of statement while looking for matching double-quote",
                    opening,
                ));
            }
            Some('"') => {
                self.cursor.advance();
                let mut text = match self.frames.pop() {
                    Some(Frame::Quoted(frame)) => frame.text,
                    _ => String::new(),
                };
                if self.lexer.raw_quotes {
                    text.push('"');
                }
                self.append_literal(&text);
            }
            Some('$') => {
                if let Some(value) = self.begin_dollar()? {
                    self.append_value(value);
                }
            }
            Some(ch) => {
                self.cursor.advance();
                let mut literal = ch;
                if ch == escape {
                    if self.enclosing_text_keeps_escapes() {
                        // BuildKit keeps the escape here and then also writes
                        // it again below when it escaped nothing, so `"\t"`
                        // gives `\\t` in this mode.
                        self.append_char(ch, false);
                    }
                    match self.cursor.peek() {
                        // The missing closing quote is reported next step.
                        None => return Ok(Flow::Continue),
                        Some(next) if next == '"' || next == '$' || next == escape => {
                            self.cursor.advance();
                            literal = next;
                        }
                        Some(_) => {}
                    }
                }
                self.append_char(literal, false);
            }
        }
        Ok(Flow::Continue)
    }

    fn enclosing_text_keeps_escapes(&self) -> bool {
        self.frames.iter().rev().find_map(|frame| match frame {
            Frame::Text(text) => Some(text.keep_escapes),
            _ => None,
        }) == Some(true)
    }

    /// `'…'`: everything up to the next `'` is literal; nothing escapes a `'`.
    fn read_single_quoted(&mut self) -> Result<String, ShellError> {
        let opening = self.cursor.position();
        let mut quoted = String::new();
        self.cursor.advance();
        if self.lexer.raw_quotes {
            quoted.push('\'');
        }
        loop {
            match self.cursor.next_char() {
                None => {
                    return Err(ShellError::new(
                        "unexpected end of statement while looking for matching single-quote",
                        opening,
                    ));
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        quoted.push('\'');
                    }
                    return Ok(quoted);
                }
                Some(ch) => quoted.push(ch),
            }
        }
    }

    /// `<` is literal unless doubled: `<<` and any blanks after it are kept
    /// together as one unsplittable piece, so `<< EOF` stays a single word
    /// for heredoc detection.
    fn read_heredoc_marker(&mut self) -> String {
        self.cursor.advance();
        if self.cursor.peek() != Some('<') {
            return "<".to_owned();
        }
        self.cursor.advance();
        let mut marker = "<<".to_owned();
        while let Some(blank @ (' ' | '\t' | '\r')) = self.cursor.peek() {
            marker.push(blank);
            self.cursor.advance();
        }
        marker
    }

    /// Starts the `$…` at the cursor. Forms without a word part are expanded
    /// at once and their value returned; the others push their frames and
    /// return `None`, their value arriving in [`Self::finish_word_part`].
    fn begin_dollar(&mut self) -> Result<Option<String>, ShellError> {
        let dollar = self.cursor.position();
        self.cursor.advance();
        if self.cursor.peek() != Some('{') {
            let name = self.read_name();
            if name.is_empty() {
                // `$` before something that cannot start a name is literal.
                return Ok(Some("$".to_owned()));
            }
            return Ok(Some(match self.lookup(&name, dollar)? {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            }));
        }

        self.cursor.advance();
        match self.cursor.peek() {
            None => return Err(missing_brace(dollar)),
            Some('{' | '}' | ':') => return Err(ShellError::new("syntax error: bad substitution", dollar)),
            Some(_) => {}
        }
        let name = self.read_name();
        let modifier_at = self.cursor.position();
        // BuildKit reports "unsupported modifier (\u{FFFD})" when the input
        // ends right after the name; saying what is missing is clearer.
        let Some(modifier) = self.cursor.next_char() else { return Err(missing_brace(dollar)) };
        let (form, stop, keep_escapes) = match modifier {
            '}' => {
                return Ok(Some(match self.lookup(&name, dollar)? {
                    Some(value) => value,
                    None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                    None => String::new(),
                }));
            }
            ':' => {
                // Whatever follows the colon is the operator, even `}` (which
                // then no longer closes the form), exactly as in BuildKit.
                let Some(operator) = self.cursor.next_char() else { return Err(missing_brace(dollar)) };
                let spelled = format!(":{operator}");
                if operator == '#' || operator == '%' {
                    return Err(unsupported_modifier(&spelled, modifier_at));
                }
                (BracedForm::Operator { operator, empty_is_unset: true, spelled }, '}', false)
            }
            '+' | '-' | '?' | '#' | '%' => {
                let is_pattern = modifier == '#' || modifier == '%';
                let form = BracedForm::Operator {
                    operator: modifier,
                    empty_is_unset: false,
                    spelled: modifier.to_string(),
                };
                (form, '}', is_pattern)
            }
            '/' => {
                let replace_all = self.cursor.peek() == Some('/');
                if replace_all {
                    self.cursor.advance();
                }
                (BracedForm::ReplacePattern { replace_all }, '/', true)
            }
            other => return Err(unsupported_modifier(&other.to_string(), modifier_at)),
        };
        self.frames.push(Frame::Braced(BracedFrame { name, dollar, modifier_at, form }));
        self.begin_word_part(stop, keep_escapes);
        Ok(None)
    }

    fn begin_word_part(&mut self, stop: char, keep_escapes: bool) {
        // BuildKit's nested scan clears the shared word buffer, dropping the
        // outer word gathered so far; see the `word_splitter` module.
        self.word_buffer.clear();
        self.frames.push(Frame::Text(TextFrame { stop: Some(stop), keep_escapes, text: String::new() }));
    }

    /// A word part ended at its delimiter: finish the `${…}` form below it.
    fn finish_word_part(&mut self, word: String) -> Result<(), ShellError> {
        let Some(Frame::Braced(braced)) = self.frames.pop() else {
            return Err(ShellError::new("internal error: word part outside ${…}", self.cursor.position()));
        };
        let value = match braced.form {
            BracedForm::Operator { operator, empty_is_unset, spelled } => {
                let operation = Operation {
                    name: braced.name,
                    operator,
                    empty_is_unset,
                    spelled,
                    dollar: braced.dollar,
                    modifier_at: braced.modifier_at,
                };
                self.apply_operator(operation, word)?
            }
            BracedForm::ReplacePattern { replace_all } => {
                self.frames.push(Frame::Braced(BracedFrame {
                    form: BracedForm::ReplaceWith { replace_all, pattern: word },
                    ..braced
                }));
                self.begin_word_part('}', true);
                return Ok(());
            }
            BracedForm::ReplaceWith { replace_all, pattern } => {
                self.apply_replacement(&braced.name, braced.dollar, replace_all, &pattern, &word)?
            }
        };
        self.append_value(value);
        Ok(())
    }

    fn apply_operator(&mut self, op: Operation, word: String) -> Result<String, ShellError> {
        // Looked up only now, after the word part: an error inside the word
        // part leaves this name neither matched nor unmatched.
        let value = self.lookup(&op.name, op.dollar)?;
        if value.is_none() && self.lexer.skip_unset_env {
            // A copy of the word part: nested forms would copy it again at
            // every level.
            let kept = format!("${{{}{}{}}}", op.name, op.spelled, word);
            self.charge(kept.len(), op.dollar)?;
            return Ok(kept);
        }
        let counts_as_set = value.as_deref().is_some_and(|value| !(op.empty_is_unset && value.is_empty()));
        match op.operator {
            '-' => Ok(if counts_as_set { value.unwrap_or_default() } else { word }),
            '+' => Ok(if counts_as_set { word } else { String::new() }),
            '?' => {
                let Some(value) = value else {
                    return Err(required_variable(&op.name, &word, "is not allowed to be unset", op.dollar));
                };
                if op.empty_is_unset && value.is_empty() {
                    return Err(required_variable(&op.name, &word, "is not allowed to be empty", op.dollar));
                }
                Ok(value)
            }
            '#' | '%' => {
                let value = value.unwrap_or_default();
                let (pattern, longest) = match word.strip_prefix(op.operator) {
                    Some(rest) => (rest, true),
                    None => (word.as_str(), false),
                };
                let trimmed = if op.operator == '#' {
                    pattern::remove_prefix(pattern, &value, longest)
                } else {
                    pattern::remove_suffix(pattern, &value, longest)
                };
                trimmed.map_err(|message| ShellError::new(message, op.dollar))
            }
            _ => Err(unsupported_modifier(&op.spelled, op.modifier_at)),
        }
    }

    fn apply_replacement(
        &mut self,
        name: &str,
        dollar: usize,
        replace_all: bool,
        pattern_text: &str,
        replacement: &str,
    ) -> Result<String, ShellError> {
        let value = self.lookup(name, dollar)?;
        if value.is_none() && self.lexer.skip_unset_env {
            // BuildKit writes a single `/` back even for `//`.
            let kept = format!("${{{name}/{pattern_text}/{replacement}}}");
            self.charge(kept.len(), dollar)?;
            return Ok(kept);
        }
        let value = value.unwrap_or_default();
        let replaced = if replace_all {
            pattern::replace_all(pattern_text, &value, replacement, self.substitution_budget)
                .map_err(|message| ShellError::new(message, dollar))?
                .ok_or_else(|| too_long(dollar))?
        } else {
            pattern::replace_first(pattern_text, &value, replacement)
                .map_err(|message| ShellError::new(message, dollar))?
        };
        self.charge(replaced.len(), dollar)?;
        Ok(replaced)
    }

    /// Counts `len` newly produced bytes against [`MAX_SUBSTITUTED_BYTES`];
    /// `at` is the `$` of the form that produced them.
    fn charge(&mut self, len: usize, at: usize) -> Result<(), ShellError> {
        match self.substitution_budget.checked_sub(len) {
            Some(left) => {
                self.substitution_budget = left;
                Ok(())
            }
            None => Err(too_long(at)),
        }
    }

    /// Reads a variable name: a run of decimal digits (positional parameters,
    /// never set in a Dockerfile but still names), one special-parameter
    /// character, or letters, digits and `_` not starting with a digit.
    fn read_name(&mut self) -> String {
        let mut name = String::new();
        let Some(first) = self.cursor.peek() else { return name };
        if is_go_digit(first) {
            while let Some(digit) = self.cursor.peek().filter(|&ch| is_go_digit(ch)) {
                name.push(digit);
                self.cursor.advance();
            }
            return name;
        }
        if is_special_parameter(first) {
            self.cursor.advance();
            name.push(first);
            return name;
        }
        while let Some(ch) = self.cursor.peek().filter(|&ch| ch == '_' || is_go_letter(ch) || is_go_digit(ch))
        {
            name.push(ch);
            self.cursor.advance();
        }
        name
    }

    /// Looks `name` up and records whether it was set. The copy of the value
    /// counts against the substitution budget (`at` is the `$`).
    fn lookup(&mut self, name: &str, at: usize) -> Result<Option<String>, ShellError> {
        let value = self.env.lookup(name);
        let seen = if value.is_some() { &mut self.matched } else { &mut self.unmatched };
        if !seen.contains(name) {
            seen.insert(name.to_owned());
        }
        if let Some(value) = value {
            self.charge(value.len(), at)?;
        }
        Ok(value.map(str::to_owned))
    }

    /// Adds a variable's value to the innermost open text; in the outermost
    /// text its whitespace separates words.
    fn append_value(&mut self, value: String) {
        let outermost = self.frames.len() == 1;
        if outermost {
            self.words.push_splittable_str(&mut self.word_buffer, &value);
        }
        if let Some(text) = self.innermost_text() {
            // Moving instead of copying keeps a value passed up through many
            // levels of `${a:-${b:-…}}` from being copied at every level.
            if text.is_empty() {
                *text = value;
            } else {
                text.push_str(&value);
            }
        }
    }

    /// Adds quoted text or a heredoc marker, which is never split.
    fn append_literal(&mut self, literal: &str) {
        if self.frames.len() == 1 {
            self.words.push_literal_str(&mut self.word_buffer, literal);
        }
        if let Some(text) = self.innermost_text() {
            text.push_str(literal);
        }
    }

    /// Adds one character; `splittable` when it came unescaped from the input.
    fn append_char(&mut self, ch: char, splittable: bool) {
        if self.frames.len() == 1 {
            if splittable {
                self.words.push_splittable(&mut self.word_buffer, ch);
            } else {
                self.words.push_literal(&mut self.word_buffer, ch);
            }
        }
        if let Some(text) = self.innermost_text() {
            text.push(ch);
        }
    }

    fn innermost_text(&mut self) -> Option<&mut String> {
        match self.frames.last_mut() {
            Some(Frame::Text(frame)) => Some(&mut frame.text),
            Some(Frame::Quoted(frame)) => Some(&mut frame.text),
            Some(Frame::Braced(_)) | None => None,
        }
    }
}

/// A `${name<op>word}` form whose word part has been read.
struct Operation {
    name: String,
    operator: char,
    empty_is_unset: bool,
    spelled: String,
    dollar: usize,
    modifier_at: usize,
}

/// POSIX special parameters (`$@`, `$*`, `$#`, `$?`, `$-`, `$$`, `$!`,
/// `$0`): never set in a Dockerfile, but read as one-character names.
fn is_special_parameter(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

fn too_long(dollar: usize) -> ShellError {
    ShellError::new(
        format!("expansion too long: substitutions produce more than {} MiB", MAX_SUBSTITUTED_BYTES >> 20),
        dollar,
    )
}

fn missing_brace(dollar: usize) -> ShellError {
    ShellError::new("syntax error: missing '}'", dollar)
}

fn unsupported_modifier(spelled: &str, at: usize) -> ShellError {
    ShellError::new(format!("unsupported modifier ({spelled}) in substitution"), at)
}

fn required_variable(name: &str, word: &str, default_message: &str, dollar: usize) -> ShellError {
    let message = if word.is_empty() { default_message } else { word };
    ShellError::new(format!("{name}: {message}"), dollar)
}
