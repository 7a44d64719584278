//! Heredocs (`RUN <<EOF`, `COPY <<A <<B /dir/`, `RUN 3<<-"EOF" python3`).
//!
//! Finding them follows BuildKit: the joined instruction line is split into
//! words by a small shell-style lexer that keeps quotes and escapes, where
//! `<<` followed by blanks sticks to the next word (`<<  EOF` is one word).
//! A word of the form `[digits]<<[-][blanks]delimiter`, whose delimiter has
//! no `<` and lexes to exactly one word, introduces a heredoc; the delimiter
//! is its name with quotes and escapes removed, and any quoting in it turns
//! expansion off. If the line cannot be lexed (an unclosed quote), it has no
//! heredocs, as in BuildKit.
//!
//! The lexer mirrors BuildKit's treatment of quotes, escapes and `$` forms
//! closely enough to split words the same way; variables are never
//! expanded here (they are all "unset", so `$X` stays `$X`). That includes
//! one BuildKit quirk: lexing the inside of `${name<modifier>…}` discards
//! the word being built, so `<<${X:-y}` is not a heredoc there or here.
//!
//! Bodies are the physical lines after the instruction, up to a line equal
//! to the delimiter (with `<<-`, leading tabs are ignored on that line and
//! removed from body lines). Each body line ends in `\n`; CR line endings
//! are normalised away.

use super::ast::Heredoc;
use super::source_lines::SourceLine;

/// A heredoc introduced on an instruction line; the byte range is that of
/// the `<<…` word in the joined line. The content is still empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HeredocMarker {
    pub heredoc: Heredoc,
    pub start: usize,
    pub end: usize,
}

/// A `<<` word whose delimiter cannot be lexed (e.g. an unclosed quote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HeredocWordError {
    pub message: String,
    pub start: usize,
    pub end: usize,
}

/// The heredocs introduced on `line`, in order.
pub(super) fn find_heredoc_markers(line: &str) -> Result<Vec<HeredocMarker>, HeredocWordError> {
    let Ok(words) = lex_words(line, QuoteMode::Keep, true) else {
        return Ok(Vec::new());
    };
    let mut markers = Vec::new();
    for word in words {
        match heredoc_from_word(&word.text) {
            Ok(Some(heredoc)) => markers.push(HeredocMarker { heredoc, start: word.start, end: word.end }),
            Ok(None) => {}
            Err(message) => return Err(HeredocWordError { message, start: word.start, end: word.end }),
        }
    }
    Ok(markers)
}

/// Collects the body of `heredoc` from `lines[start..]`. Returns the body
/// and the index of the delimiter line, or `None` if the file ends first.
pub(super) fn read_heredoc_body(
    lines: &[SourceLine<'_>],
    start: usize,
    heredoc: &Heredoc,
) -> Option<(String, usize)> {
    let mut body = String::new();
    for (index, line) in lines.iter().enumerate().skip(start) {
        let text = if heredoc.chomp { line.text.trim_start_matches('\t') } else { line.text };
        if text == heredoc.name {
            return Some((body, index));
        }
        body.push_str(text);
        body.push('\n');
    }
    None
}

/// The pieces of a `[digits]<<[-][blanks]delimiter` word.
#[derive(Debug, PartialEq, Eq)]
struct MarkerParts<'a> {
    file_descriptor: u32,
    chomp: bool,
    delimiter: &'a str,
}

fn split_marker(word: &str) -> Option<MarkerParts<'_>> {
    let digits_end = word.find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len());
    let digits = word.get(..digits_end)?;
    let after_arrows = word.get(digits_end..)?.strip_prefix("<<")?;
    let (chomp, after_dash) = match after_arrows.strip_prefix('-') {
        Some(after) => (true, after),
        None => (false, after_arrows),
    };
    let delimiter = after_dash.trim_start_matches([' ', '\t', '\n', '\x0c', '\r']);
    if delimiter.contains('<') {
        return None;
    }
    // An out-of-range descriptor is treated as absent, like a failed parse in BuildKit.
    let file_descriptor = digits.parse().unwrap_or(0);
    Some(MarkerParts { file_descriptor, chomp, delimiter })
}

fn heredoc_from_word(word: &str) -> Result<Option<Heredoc>, String> {
    let Some(parts) = split_marker(word) else {
        return Ok(None);
    };
    if parts.delimiter.is_empty() {
        return Ok(None);
    }
    let describe =
        |error: LexError| format!("invalid heredoc delimiter {:?}: {}", parts.delimiter, error.describe());
    let cooked = lex_words(parts.delimiter, QuoteMode::Remove, false).map_err(describe)?;
    let [name] = cooked.as_slice() else {
        return Ok(None);
    };
    let raw = lex_words(parts.delimiter, QuoteMode::Keep, false).map_err(describe)?;
    let [raw_name] = raw.as_slice() else {
        return Err(format!("invalid heredoc delimiter {:?}: inconsistent word splitting", parts.delimiter));
    };
    // Quotes that disappear when quotes are processed were quoting something.
    let expand = count_quotes(&name.text) == count_quotes(&raw_name.text);
    Ok(Some(Heredoc {
        name: name.text.clone(),
        content: String::new(),
        expand,
        chomp: parts.chomp,
        file_descriptor: parts.file_descriptor,
    }))
}

fn count_quotes(text: &str) -> usize {
    text.chars().filter(|&c| c == '\'' || c == '"').count()
}

/// Whether quote characters stay in the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteMode {
    Keep,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LexError {
    UnclosedSingleQuote,
    UnclosedDoubleQuote,
    Missing(char),
    BadSubstitution,
    UnsupportedModifier,
    TooDeep,
}

impl LexError {
    fn describe(self) -> String {
        match self {
            LexError::UnclosedSingleQuote => {
                "unexpected end of statement while looking for matching single-quote".into()
            }
            LexError::UnclosedDoubleQuote => {
                "unexpected end of statement while looking for matching double-quote".into()
            }
            LexError::Missing(c) => format!("missing '{c}'"),
            LexError::BadSubstitution => "bad substitution".into(),
            LexError::UnsupportedModifier => "unsupported modifier in substitution".into(),
            LexError::TooDeep => "substitutions nested too deeply".into(),
        }
    }
}

/// The lexer's escape character is always the backslash here, whatever the
/// `escape` directive says, as in BuildKit.
const LEX_ESCAPE: char = '\\';

/// Nested `${…}` forms are lexed recursively; beyond this depth the line
/// is treated as unlexable instead of risking the stack.
const MAX_SUBSTITUTION_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
struct ShellWord {
    text: String,
    start: usize,
    end: usize,
}

/// Where lexed text goes: split into words (top level) or kept as one
/// string (inside `${…}`).
enum Sink<'s> {
    Words { words: &'s mut Vec<ShellWord>, current: &'s mut ShellWord },
    Text(&'s mut String),
}

impl Sink<'_> {
    /// Adds a character that splits words if it is whitespace.
    fn add_char(&mut self, c: char, at: usize, after: usize) {
        match self {
            Sink::Words { words, current } => {
                if c.is_whitespace() {
                    if !current.text.is_empty() {
                        words.push(std::mem::replace(
                            *current,
                            ShellWord { text: String::new(), start: 0, end: 0 },
                        ));
                    }
                } else {
                    Self::push_to_word(current, c, at, after);
                }
            }
            Sink::Text(text) => text.push(c),
        }
    }

    /// Adds a character that never splits words (escaped or quoted).
    fn add_raw_char(&mut self, c: char, at: usize, after: usize) {
        match self {
            Sink::Words { current, .. } => Self::push_to_word(current, c, at, after),
            Sink::Text(text) => text.push(c),
        }
    }

    fn add_raw(&mut self, piece: &str, at: usize, after: usize) {
        for c in piece.chars() {
            self.add_raw_char(c, at, after);
        }
    }

    /// Adds substituted text, which is split on whitespace like BuildKit does.
    fn add_split(&mut self, piece: &str, at: usize, after: usize) {
        for c in piece.chars() {
            self.add_char(c, at, after);
        }
    }

    /// Forgets the word being built (see the module docs).
    fn discard_current_word(&mut self) {
        if let Sink::Words { current, .. } = self {
            current.text.clear();
        }
    }

    fn push_to_word(current: &mut ShellWord, c: char, at: usize, after: usize) {
        if current.text.is_empty() {
            current.start = at;
        }
        current.text.push(c);
        current.end = after;
    }
}

/// Splits `text` into shell words without expanding anything.
fn lex_words(text: &str, quotes: QuoteMode, keep_escapes: bool) -> Result<Vec<ShellWord>, LexError> {
    let mut lexer = ShellLexer { text, pos: 0, quotes, depth: 0, nested_scans: 0 };
    let mut words = Vec::new();
    let mut current = ShellWord { text: String::new(), start: 0, end: 0 };
    lexer.scan(None, keep_escapes, &mut Sink::Words { words: &mut words, current: &mut current })?;
    if !current.text.is_empty() {
        words.push(current);
    }
    Ok(words)
}

struct ShellLexer<'a> {
    text: &'a str,
    pos: usize,
    quotes: QuoteMode,
    depth: usize,
    /// How many nested `${…}` scans have run, to notice when one ran.
    nested_scans: usize,
}

impl ShellLexer<'_> {
    fn peek(&self) -> Option<char> {
        self.text.get(self.pos..).and_then(|rest| rest.chars().next())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn keep_quotes(&self) -> bool {
        self.quotes == QuoteMode::Keep
    }

    /// Lexes until `stop` (consumed) or, without one, the end of the text.
    fn scan(&mut self, stop: Option<char>, keep_escapes: bool, sink: &mut Sink<'_>) -> Result<(), LexError> {
        while let Some(c) = self.peek() {
            let at = self.pos;
            if Some(c) == stop {
                self.bump();
                return Ok(());
            }
            match c {
                '$' => {
                    let scans_before = self.nested_scans;
                    let piece = self.dollar()?;
                    if self.nested_scans != scans_before {
                        sink.discard_current_word();
                    }
                    sink.add_split(&piece, at, self.pos);
                }
                '<' => {
                    let piece = self.angle_brackets();
                    sink.add_raw(&piece, at, self.pos);
                }
                '\'' => {
                    let piece = self.single_quoted()?;
                    sink.add_raw(&piece, at, self.pos);
                }
                '"' => {
                    let scans_before = self.nested_scans;
                    let piece = self.double_quoted(keep_escapes)?;
                    if self.nested_scans != scans_before {
                        sink.discard_current_word();
                    }
                    sink.add_raw(&piece, at, self.pos);
                }
                LEX_ESCAPE => {
                    self.bump();
                    if keep_escapes {
                        sink.add_raw_char(c, at, self.pos);
                    }
                    let Some(escaped) = self.bump() else { break };
                    sink.add_raw_char(escaped, at, self.pos);
                }
                _ => {
                    self.bump();
                    sink.add_char(c, at, self.pos);
                }
            }
        }
        match stop {
            Some(stop) => Err(LexError::Missing(stop)),
            None => Ok(()),
        }
    }

    /// Lexes a nested piece up to `stop` into one string.
    fn nested(&mut self, stop: char, keep_escapes: bool) -> Result<String, LexError> {
        if self.depth >= MAX_SUBSTITUTION_DEPTH {
            return Err(LexError::TooDeep);
        }
        self.depth += 1;
        self.nested_scans += 1;
        let mut text = String::new();
        let result = self.scan(Some(stop), keep_escapes, &mut Sink::Text(&mut text));
        self.depth -= 1;
        result.map(|()| text)
    }

    /// `<` alone, or `<<` with any blanks after it (so the delimiter joins
    /// the `<<` word).
    fn angle_brackets(&mut self) -> String {
        self.bump();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.bump();
        let mut piece = "<<".to_string();
        while let Some(blank @ (' ' | '\t' | '\r')) = self.peek() {
            piece.push(blank);
            self.bump();
        }
        piece
    }

    fn single_quoted(&mut self) -> Result<String, LexError> {
        self.bump();
        let mut piece = String::new();
        if self.keep_quotes() {
            piece.push('\'');
        }
        loop {
            match self.bump() {
                None => return Err(LexError::UnclosedSingleQuote),
                Some('\'') => {
                    if self.keep_quotes() {
                        piece.push('\'');
                    }
                    return Ok(piece);
                }
                Some(c) => piece.push(c),
            }
        }
    }

    fn double_quoted(&mut self, keep_escapes: bool) -> Result<String, LexError> {
        self.bump();
        let mut piece = String::new();
        if self.keep_quotes() {
            piece.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(LexError::UnclosedDoubleQuote),
                Some('"') => {
                    self.bump();
                    if self.keep_quotes() {
                        piece.push('"');
                    }
                    return Ok(piece);
                }
                Some('$') => piece.push_str(&self.dollar()?),
                Some(c) => {
                    self.bump();
                    let mut literal = c;
                    if c == LEX_ESCAPE {
                        if keep_escapes {
                            piece.push(c);
                        }
                        match self.peek() {
                            // The closing quote is missing; the loop reports it.
                            None => continue,
                            Some(next @ ('"' | '$' | LEX_ESCAPE)) => {
                                self.bump();
                                literal = next;
                            }
                            // Other escapes stay literal (and BuildKit then
                            // writes the escape character once more).
                            Some(_) => {}
                        }
                    }
                    piece.push(literal);
                }
            }
        }
    }

    /// `$name`, `${name}`, `${name<modifier>word}`, `${name/pattern/repl}`,
    /// reproduced unexpanded; errors where BuildKit's lexer errors.
    fn dollar(&mut self) -> Result<String, LexError> {
        self.bump();
        if self.peek() != Some('{') {
            let name = self.name();
            return Ok(format!("${name}"));
        }
        self.bump();
        match self.peek() {
            None => return Err(LexError::Missing('}')),
            Some('{' | '}' | ':') => return Err(LexError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        match self.bump() {
            Some('}') => Ok(format!("${{{name}}}")),
            Some(':') => {
                let modifier = self.bump();
                if matches!(modifier, Some('#' | '%')) {
                    return Err(LexError::UnsupportedModifier);
                }
                let word = self.nested('}', false)?;
                let modifier = modifier.map(String::from).unwrap_or_default();
                Ok(format!("${{{name}:{modifier}{word}}}"))
            }
            Some(modifier @ ('+' | '-' | '?' | '#' | '%')) => {
                let word = self.nested('}', matches!(modifier, '#' | '%'))?;
                Ok(format!("${{{name}{modifier}{word}}}"))
            }
            Some('/') => {
                // `${x//a/b}` (replace all) loses its second slash in BuildKit's
                // reconstruction too; only word boundaries matter here.
                if self.peek() == Some('/') {
                    self.bump();
                }
                let pattern = self.nested('/', true)?;
                let replacement = self.nested('}', true)?;
                Ok(format!("${{{name}/{pattern}/{replacement}}}"))
            }
            _ => Err(LexError::UnsupportedModifier),
        }
    }

    /// A variable name: digits, one special parameter character, or
    /// letters, digits and underscores.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_numeric() => {
                while let Some(digit) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(digit);
                    self.bump();
                }
            }
            Some(special @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                name.push(special);
                self.bump();
            }
            _ => {
                while let Some(c) = self.peek().filter(|&c| c.is_alphanumeric() || c == '_') {
                    name.push(c);
                    self.bump();
                }
            }
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::super::source_lines::split_lines;
    use super::*;

    fn words(text: &str) -> Vec<String> {
        lex_words(text, QuoteMode::Keep, true).expect("lexes").into_iter().map(|w| w.text).collect()
    }

    fn names(line: &str) -> Vec<String> {
        find_heredoc_markers(line).expect("no error").into_iter().map(|m| m.heredoc.name).collect()
    }

    fn single(word: &str) -> Heredoc {
        heredoc_from_word(word).expect("no error").expect("a heredoc")
    }

    #[test]
    fn lexer_keeps_quotes_and_escapes_and_glues_arrows() {
        assert_eq!(words(r#"RUN "<<EOF" '<<X' a\ b"#), [r#"RUN"#, r#""<<EOF""#, "'<<X'", r"a\ b"]);
        assert_eq!(words("RUN <<  EOF  > foo"), ["RUN", "<<  EOF", ">", "foo"]);
        assert_eq!(words("echo $HOME ${A:-x y}"), ["echo", "$HOME", "${A:-x", "y}"]);
        assert!(lex_words("echo 'open", QuoteMode::Keep, true).is_err());
        assert!(lex_words("echo ${", QuoteMode::Keep, true).is_err());
        assert!(lex_words("echo ${}", QuoteMode::Keep, true).is_err());
        assert!(lex_words("echo ${a:#x}", QuoteMode::Keep, true).is_err());
    }

    #[test]
    fn marker_words() {
        let heredoc = single("<<EOF");
        assert_eq!(
            (heredoc.name.as_str(), heredoc.expand, heredoc.chomp, heredoc.file_descriptor),
            ("EOF", true, false, 0)
        );
        let heredoc = single("3<<-'EOF'");
        assert_eq!(
            (heredoc.name.as_str(), heredoc.expand, heredoc.chomp, heredoc.file_descriptor),
            ("EOF", false, true, 3)
        );
        for word in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<-\"EOF\"",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            assert_eq!(single(word).name, "EOF", "{word}");
        }
        for word in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh", "a<<EOF", "<<\"\""] {
            assert_eq!(heredoc_from_word(word), Ok(None), "{word}");
        }
        for word in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(heredoc_from_word(word).is_err(), "{word}");
        }
    }

    #[test]
    fn quoting_any_part_disables_expansion() {
        assert_eq!((single("<<eo'f'").name, single("<<eo'f'").expand), ("eof".to_string(), false));
        assert_eq!((single(r"<<eo\'f").name, single(r"<<eo\'f").expand), ("eo'f".to_string(), true));
        assert_eq!((single(r"<<'e'o\'f").name, single(r"<<'e'o\'f").expand), ("eo'f".to_string(), false));
        assert_eq!(single("<<'one two'").name, "one two");
        assert_eq!(single("<<$EOF").name, "$EOF");
        assert_eq!(single("<<file.txt").name, "file.txt");
    }

    #[test]
    fn markers_in_lines() {
        assert_eq!(names("RUN <<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<-EOF"), ["EOF"]);
        assert_eq!(names("RUN << -EOF"), ["-EOF"]);
        assert_eq!(names("RUN <<'EOF'"), ["EOF"]);
        assert_eq!(names("RUN 4<<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<EOF <<EOF2"), ["EOF", "EOF2"]);
        assert_eq!(names("RUN python3 <<EOF > out"), ["EOF"]);
        assert_eq!(names("RUN << $A"), ["$A"]);
        // BuildKit loses the `<<` when a `${…}` form with a modifier follows.
        assert!(names("RUN <<${A:-b}").is_empty());
        assert!(names("RUN << ${A:-b c}").is_empty());
        assert_eq!(names("COPY <<A <<B /dir/"), ["A", "B"]);
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names("RUN \"<<EOF\"").is_empty());
        assert!(names("RUN echo 'unclosed <<EOF").is_empty());
        let markers = find_heredoc_markers("RUN a <<X").expect("no error");
        assert_eq!((markers[0].start, markers[0].end), (6, 9));
    }

    #[test]
    fn bodies() {
        let lines = split_lines("RUN <<-A\n\tone\n\t\ttwo\n\tA\nafter\n");
        let heredoc = single("<<-A");
        assert_eq!(read_heredoc_body(&lines, 1, &heredoc), Some(("one\ntwo\n".to_string(), 3)));
        let heredoc = single("<<A");
        assert_eq!(read_heredoc_body(&lines, 1, &heredoc), None);
        let lines = split_lines("x\r\nbody\r\nEOF\r\n");
        assert_eq!(read_heredoc_body(&lines, 1, &single("<<EOF")), Some(("body\n".to_string(), 2)));
    }

    #[test]
    fn deep_substitutions_do_not_overflow() {
        let line = format!("RUN <<EOF {}", "${a:-".repeat(100_000));
        assert!(names(&line).is_empty());
    }
}
