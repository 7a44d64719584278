//! Leading `--flag` words of an instruction (`COPY --from=build a b`).
//! Flags are taken from the front of the arguments for every instruction:
//! each word that starts with `--` is a flag, quotes inside it are removed
//! and the escape character makes the next character literal; a bare `--`
//! ends the flags and is dropped; the first other word starts the
//! arguments.
//!
//! BuildKit walks this text byte by byte: only ASCII whitespace separates
//! words, which we follow, but it also garbles non-ASCII characters inside
//! flags, which we don't (they are kept intact).

use super::words::is_ascii_space;

/// A flag with quotes removed and the byte range of its raw word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Flag {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// The flags at the start of `text` and the byte offset where the
/// arguments begin (possibly at leading whitespace, or `text.len()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExtractedFlags {
    pub flags: Vec<Flag>,
    pub rest_start: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    BetweenWords,
    InWord,
    InQuote(char),
}

/// A flag word being read.
struct PendingFlag {
    text: String,
    start: usize,
    /// A quoted empty string (`--x=""`) still makes a word.
    had_quotes: bool,
}

pub(super) fn extract_flags(text: &str, escape: char) -> ExtractedFlags {
    let mut flags = Vec::new();
    let mut phase = Phase::BetweenWords;
    let mut pending = PendingFlag { text: String::new(), start: 0, had_quotes: false };
    let mut chars = text.char_indices().peekable();

    while let Some((index, c)) = chars.next() {
        if phase == Phase::BetweenWords {
            if is_ascii_space(c) {
                continue;
            }
            let starts_flag = c == '-' && chars.peek().is_some_and(|&(_, next)| next == '-');
            if !starts_flag {
                return ExtractedFlags { flags, rest_start: index };
            }
            phase = Phase::InWord;
            pending = PendingFlag { text: String::new(), start: index, had_quotes: false };
        }
        match phase {
            Phase::BetweenWords => {}
            Phase::InWord => {
                if is_ascii_space(c) {
                    if pending.text == "--" {
                        return ExtractedFlags { flags, rest_start: index };
                    }
                    push_flag(&mut flags, &mut pending, index);
                    phase = Phase::BetweenWords;
                } else if c == '\'' || c == '"' {
                    pending.had_quotes = true;
                    phase = Phase::InQuote(c);
                } else if c == escape {
                    // An escape at the very end is dropped.
                    if let Some((_, escaped)) = chars.next() {
                        pending.text.push(escaped);
                    }
                } else {
                    pending.text.push(c);
                }
            }
            Phase::InQuote(quote) => {
                if c == quote {
                    phase = Phase::InWord;
                } else if c == escape {
                    match chars.next() {
                        Some((_, escaped)) => pending.text.push(escaped),
                        None => phase = Phase::InWord,
                    }
                } else {
                    pending.text.push(c);
                }
            }
        }
    }

    if phase != Phase::BetweenWords && pending.text != "--" {
        push_flag(&mut flags, &mut pending, text.len());
    }
    ExtractedFlags { flags, rest_start: text.len() }
}

fn push_flag(flags: &mut Vec<Flag>, pending: &mut PendingFlag, end: usize) {
    if pending.had_quotes || !pending.text.is_empty() {
        flags.push(Flag { text: std::mem::take(&mut pending.text), start: pending.start, end });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag_texts(text: &str) -> (Vec<String>, &str) {
        let extracted = extract_flags(text, '\\');
        let rest = text.get(extracted.rest_start..).unwrap_or("");
        (extracted.flags.into_iter().map(|flag| flag.text).collect(), rest)
    }

    #[test]
    fn leading_flags_are_split_off() {
        assert_eq!(
            flag_texts("--user=me --doit=true foo /tmp/"),
            (vec!["--user=me".into(), "--doit=true".into()], "foo /tmp/")
        );
        assert_eq!(flag_texts("foo --not-a-flag"), (vec![], "foo --not-a-flag"));
        assert_eq!(flag_texts("--a"), (vec!["--a".into()], ""));
        assert_eq!(flag_texts("-a b"), (vec![], "-a b"));
        // A non-ASCII space is not a separator: it starts the arguments.
        assert_eq!(flag_texts("\u{a0} --a b"), (vec![], "\u{a0} --a b"));
    }

    #[test]
    fn double_dash_ends_flags_and_is_dropped() {
        assert_eq!(flag_texts("--doit=true -- foo /tmp/"), (vec!["--doit=true".into()], " foo /tmp/"));
        assert_eq!(flag_texts("-- --x"), (vec![], " --x"));
        assert_eq!(flag_texts("--x --"), (vec!["--x".into()], ""));
    }

    #[test]
    fn quotes_removed_and_escapes_processed() {
        assert_eq!(flag_texts(r#"--label="a b" x"#).0, vec!["--label=a b".to_string()]);
        assert_eq!(flag_texts(r#"--x='it\'s' y"#).0, vec!["--x=it's".to_string()]);
        assert_eq!(flag_texts(r"--path=a\ b c").0, vec!["--path=a b".to_string()]);
        assert_eq!(flag_texts(r#"--empty="" c"#).0, vec!["--empty=".to_string()]);
        assert_eq!(flag_texts("--chown=é x").0, vec!["--chown=é".to_string()]);
    }

    #[test]
    fn flag_ranges_cover_the_raw_word() {
        let extracted = extract_flags(r#"  --a="b c"  d"#, '\\');
        assert_eq!((extracted.flags[0].start, extracted.flags[0].end), (2, 11));
        assert_eq!(extracted.rest_start, 13);
    }
}
