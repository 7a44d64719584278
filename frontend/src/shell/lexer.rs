//! The [`Lexer`] settings: the escape character and BuildKit's `Lex`
//! switches. Kept apart from the module that runs them, so the expander can
//! read the settings without depending on its own caller.

/// How words are read. The defaults ([`Lexer::new`]) are those of ordinary
/// Dockerfile instructions; the flags reproduce BuildKit's `Lex` switches used
/// for heredoc detection and for `RUN`-style text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character: `\` by default, `` ` `` under `# escape=`` ` ``.
    pub escape: char,
    /// Keep the quote characters of `'…'` and `"…"` in the output (their
    /// contents are still processed). BuildKit's `RawQuotes`.
    pub raw_quotes: bool,
    /// Keep escape characters in the output next to what they escape.
    /// BuildKit's `RawEscapes`. Inside `${name-word}`-style word parts the
    /// escapes are always removed, inside `#`/`%`/`/` patterns always kept.
    pub raw_escapes: bool,
    /// Treat `'` and `"` as ordinary characters. BuildKit's `SkipProcessQuotes`.
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written (`$x`, `${x}`,
    /// `${x:-word}` with `word` expanded) instead of expanding them, so a
    /// later stage can expand them. BuildKit's `SkipUnsetEnv`.
    pub skip_unset_env: bool,
}

impl Default for Lexer {
    fn default() -> Lexer {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer with the given escape character and all flags off.
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }
}
