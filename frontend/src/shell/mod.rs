//! Word expansion as BuildKit's shell lexer does it: quotes, escapes and
//! `$var`/`${var…}` forms, with the set of variables each word used.
//!
//! [`Lexer::process_word`] is BuildKit's `ProcessWord`/`ProcessWordWithMatches`
//! (one word in, one word out) and [`Lexer::process_words`] its `ProcessWords`
//! (text in, whitespace-separated words out). Supported forms:
//!
//! * `$name`, `${name}`; names are letters, digits and `_`, or a run of
//!   digits, or one of `@ * # ? - $ ! 0`; a `$` that starts no name is literal.
//! * `${name:-word}`, `${name-word}`, `${name:+word}`, `${name+word}`,
//!   `${name:?message}`, `${name?message}`: with `:` an empty value counts as
//!   unset. `word` is itself expanded and may nest to any depth (an explicit
//!   stack, not recursion, keeps deep nesting off the thread stack).
//! * `${name#pattern}`, `${name##pattern}`, `${name%pattern}`,
//!   `${name%%pattern}`, `${name/pattern/replacement}`,
//!   `${name//pattern/replacement}`, with `*` and `?` wildcards (no bracket
//!   expressions; see the `pattern` module).
//! * `'…'` (literal), `"…"` (expanding; the escape character escapes only `"`,
//!   `$` and itself) and the escape character (`\` or `` ` ``) outside quotes.
//!
//! BuildKit's quirks are reproduced on purpose, since Dockerfiles must expand
//! the same under both: `[` in patterns is literal, `?`/`*` never match a
//! newline, `${v//p/r}` treats `$0` and `$$` in `r` as regexp template
//! references, text before a nested `${v<op>…}` is lost from the *words* of
//! [`Lexer::process_words`], a leading byte-order mark is dropped. Where we
//! differ, it is deliberate:
//!
//! * input ending right after `${name` reports `syntax error: missing '}'`
//!   (BuildKit: `unsupported modifier (\u{FFFD}) in substitution`);
//! * [`Lexer::process_words`] also reports matched/unmatched variables;
//! * names are compared case-sensitively, as BuildKit does on Unix only;
//! * one walk may produce at most 16 MiB by substitution (variable values,
//!   `${name/…/…}` results), reporting `expansion too long` beyond that:
//!   nested `${v//p/${v//p/…}}` grows exponentially, and BuildKit simply runs
//!   out of memory.
//!
//! The module is split by concern: `cursor` reads characters, `expander`
//! walks the grammar, `word_splitter` builds words, `pattern` matches shell
//! patterns, `unicode_class` decides what is a letter or digit the way Go
//! does, `lexer` holds the [`Lexer`] settings, `env` and `error` the public
//! helper types.

mod cursor;
mod env;
mod error;
mod expander;
mod lexer;
mod pattern;
mod unicode_class;
mod word_splitter;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

pub use env::Env;
pub use error::ShellError;
pub use lexer::Lexer;

use expander::Expander;

/// The result of expanding a word or a line of words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    /// [`Lexer::process_word`]: the expanded word. [`Lexer::process_words`]:
    /// the words joined by single spaces.
    pub value: String,
    /// The input split into words after expansion (whitespace outside quotes
    /// and escapes separates them, including whitespace from variable values).
    /// Computed by both methods, as BuildKit does.
    pub words: Vec<String>,
    /// Variables that were referenced and set (possibly to the empty string).
    pub matched: BTreeSet<String>,
    /// Variables that were referenced and not set.
    pub unmatched: BTreeSet<String>,
}

impl Lexer {
    /// One word in, one word out (quotes removed, variables expanded).
    /// Whitespace is kept as it is in the result.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<Expansion, ShellError> {
        let walked = Expander::new(self, env, word).run()?;
        Ok(Expansion {
            value: walked.text,
            words: walked.words,
            matched: walked.matched,
            unmatched: walked.unmatched,
        })
    }

    /// Splits `text` into words the way BuildKit does (whitespace outside
    /// quotes, including whitespace that came from a variable's value),
    /// expanding each.
    ///
    /// Like BuildKit, text of the current word that precedes a
    /// `${name<op>…}` form is dropped from the words (`a${x:-b}c` gives
    /// `["bc"]`); see the `word_splitter` module.
    pub fn process_words(&self, text: &str, env: &dyn Env) -> Result<Expansion, ShellError> {
        let walked = Expander::new(self, env, text).run()?;
        Ok(Expansion {
            value: walked.words.join(" "),
            words: walked.words,
            matched: walked.matched,
            unmatched: walked.unmatched,
        })
    }
}
