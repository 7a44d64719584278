//! Splitting argument text into words, the two ways BuildKit does it:
//! plain runs of ASCII blanks (`FROM`, `EXPOSE`, the non-JSON `COPY`), and
//! the quote-aware split used by `ENV`, `LABEL` and `ARG`, which keeps the
//! quotes and escape characters in the words (they are removed later, when
//! words are expanded).

/// A word with the byte range of its source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Word {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// The blanks of BuildKit's `[\t\v\f\r ]+` separator.
pub(super) fn is_separator_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

/// ASCII whitespace as Go's `unicode.IsSpace` sees it (vertical tab
/// included). BuildKit scans flags and the `HEALTHCHECK` type byte by byte,
/// so only these characters separate words there; non-ASCII spaces don't.
pub(super) fn is_ascii_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Byte ranges of the pieces of `text` between runs of separator blanks.
/// Like Go's `Regexp.Split`, a leading or trailing run yields an empty piece.
pub(super) fn split_on_blanks(text: &str) -> Vec<(usize, usize)> {
    let mut pieces = Vec::new();
    let mut piece_start = 0;
    let mut in_blanks = false;
    for (index, c) in text.char_indices() {
        if is_separator_blank(c) {
            if !in_blanks {
                pieces.push((piece_start, index));
                in_blanks = true;
            }
        } else if in_blanks {
            piece_start = index;
            in_blanks = false;
        }
    }
    pieces.push(if in_blanks { (text.len(), text.len()) } else { (piece_start, text.len()) });
    pieces
}

/// Splits `text` at the first run of separator blanks: `(head, tail_start)`,
/// where `tail_start` is `None` when there is no blank.
pub(super) fn split_first_blank_run(text: &str) -> (usize, Option<usize>) {
    let Some(head_end) = text.find(is_separator_blank) else {
        return (text.len(), None);
    };
    let tail_start = text
        .get(head_end..)
        .and_then(|tail| tail.find(|c: char| !is_separator_blank(c)))
        .map_or(text.len(), |offset| head_end + offset);
    (head_end, Some(tail_start))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    BetweenWords,
    InWord,
    InQuote(char),
}

/// Splits on Unicode whitespace outside quotes. Quotes and escape
/// characters stay in the words; an escaped character never splits or
/// opens a quote, except inside single quotes where the escape character is
/// literal. An escape character at the very end of the text is dropped.
pub(super) fn split_quote_aware(text: &str, escape: char) -> Vec<Word> {
    let mut words = Vec::new();
    let mut phase = Phase::BetweenWords;
    let mut current = String::new();
    let mut start = 0;
    let mut end = 0;
    let mut chars = text.char_indices().peekable();

    while let Some((index, c)) = chars.next() {
        let after = index + c.len_utf8();
        match phase {
            Phase::BetweenWords | Phase::InWord => {
                if c.is_whitespace() {
                    if phase == Phase::InWord {
                        finish_word(&mut words, &mut current, start, end);
                        phase = Phase::BetweenWords;
                    }
                    continue;
                }
                if phase == Phase::BetweenWords {
                    phase = Phase::InWord;
                    start = index;
                }
                if c == '\'' || c == '"' {
                    phase = Phase::InQuote(c);
                }
                if c == escape {
                    let Some((escaped_index, escaped)) = chars.next() else { continue };
                    current.push(c);
                    current.push(escaped);
                    end = escaped_index + escaped.len_utf8();
                    continue;
                }
                current.push(c);
                end = after;
            }
            Phase::InQuote(quote) => {
                if c == quote {
                    phase = Phase::InWord;
                } else if c == escape && quote != '\'' {
                    let Some((escaped_index, escaped)) = chars.next() else {
                        phase = Phase::InWord;
                        continue;
                    };
                    current.push(c);
                    current.push(escaped);
                    end = escaped_index + escaped.len_utf8();
                    continue;
                }
                current.push(c);
                end = after;
            }
        }
    }
    if phase != Phase::BetweenWords {
        finish_word(&mut words, &mut current, start, end);
    }
    words
}

fn finish_word(words: &mut Vec<Word>, current: &mut String, start: usize, end: usize) {
    if !current.is_empty() {
        words.push(Word { text: std::mem::take(current), start, end });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        split_quote_aware(text, '\\').into_iter().map(|word| word.text).collect()
    }

    #[test]
    fn blank_split_keeps_empty_edges_like_go() {
        assert_eq!(split_on_blanks("a  b\tc"), vec![(0, 1), (3, 4), (5, 6)]);
        assert_eq!(split_on_blanks("a\u{a0}b"), vec![(0, 4)]);
        assert_eq!(split_on_blanks(" a"), vec![(0, 0), (1, 2)]);
        assert_eq!(split_first_blank_run("ENV  a b"), (3, Some(5)));
        assert_eq!(split_first_blank_run("ENV"), (3, None));
    }

    #[test]
    fn quote_aware_split_keeps_quotes_and_escapes() {
        assert_eq!(texts("foo bar 'abc xyz'"), ["foo", "bar", "'abc xyz'"]);
        assert_eq!(texts(r#"abc="123 456" def"#), [r#"abc="123 456""#, "def"]);
        assert_eq!(texts(r"foo\ bar"), [r"foo\ bar"]);
        assert_eq!(texts(r#"a=\"b c"#), [r#"a=\"b"#, "c"]);
        assert_eq!(texts(r"name='a\'b'"), [r"name='a\'b'"]);
        assert_eq!(texts(r#"n="a\"b""#), [r#"n="a\"b""#]);
        assert_eq!(texts("föo bàr \"âbc xÿz\""), ["föo", "bàr", "\"âbc xÿz\""]);
        assert_eq!(texts("trailing\\"), ["trailing"]);
    }

    #[test]
    fn word_ranges() {
        let words = split_quote_aware("  a=1   b=\"x y\"", '\\');
        assert_eq!((words[0].start, words[0].end), (2, 5));
        assert_eq!((words[1].start, words[1].end), (8, 15));
    }
}
