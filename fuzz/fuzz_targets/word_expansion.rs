//! Runs BuildKit-style word expansion (`Lexer::process_word` and
//! `Lexer::process_words`) over arbitrary text with a small fixed set of
//! variables, once with `\` and once with `` ` `` as the escape character.
//!
//! The first input byte picks the lexer flags (bit 0 `raw_quotes`, bit 1
//! `raw_escapes`, bit 2 `skip_process_quotes`, bit 3 `skip_unset_env`; the
//! seeds use `@`, i.e. all off); the rest, lossily decoded as UTF-8, is the
//! text. Checks that expansion never panics or hangs, and that text with
//! nothing to expand (no `$`, no quote, no escape character, no leading
//! byte-order mark, no `<<` heredoc marker, which keeps the blanks after it)
//! comes back unchanged from `process_word` and split on whitespace by
//! `process_words`.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rbuild_frontend::shell::Lexer;

/// Values chosen to exercise splitting, patterns and empty-versus-unset.
static ENV: LazyLock<Vec<(String, String)>> = LazyLock::new(|| {
    [
        ("A", "a"),
        ("EMPTY", ""),
        ("SPACES", " one  two\tthree "),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("FILE", "archive.tar.gz"),
        ("GLOB", "*?[x]"),
        ("DOLLAR", "$A ${A}"),
        ("QUOTES", "'\"\\`"),
        ("NL", "line1\nline2"),
        ("UNI", "é中\u{1F600}"),
        ("_x9", "underscore"),
        ("1", "positional"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    for escape in ['\\', '`'] {
        let lexer = Lexer {
            escape,
            raw_quotes: flags & 1 != 0,
            raw_escapes: flags & 2 != 0,
            skip_process_quotes: flags & 4 != 0,
            skip_unset_env: flags & 8 != 0,
        };
        let word = lexer.process_word(&text, &*ENV);
        let words = lexer.process_words(&text, &*ENV);

        let plain =
            !text.starts_with('\u{feff}') && !text.contains(['$', '\'', '"', escape]) && !text.contains("<<");
        if plain {
            let word = word.expect("plain text expands without error");
            assert_eq!(word.value, text, "plain text must come back unchanged");
            let words = words.expect("plain text splits without error");
            let expected: Vec<&str> = text.split(char::is_whitespace).filter(|w| !w.is_empty()).collect();
            assert_eq!(words.words, expected, "plain text must split on whitespace");
        }
    }
});
