//! Word expansion for lowering: the shell lexer's `ProcessWord` and
//! `ProcessWords` with their errors turned into frontend errors at the
//! word's span.

use crate::error::FrontendError;
use crate::instructions::Word;
use crate::shell::{Env, Lexer, ShellError};
use crate::span::Span;

/// One word in, one word out (quotes removed, variables expanded).
pub(super) fn expand(lexer: &Lexer, word: &Word, env: &dyn Env) -> Result<String, FrontendError> {
    expand_text(lexer, &word.text, word.span, env)
}

/// [`expand`] for text that is not a [`Word`] of its own (a mount field, a
/// heredoc body), reported at `span`.
pub(super) fn expand_text(
    lexer: &Lexer,
    text: &str,
    span: Span,
    env: &dyn Env,
) -> Result<String, FrontendError> {
    lexer.process_word(text, env).map(|e| e.value).map_err(|e| cannot_expand(text, span, &e))
}

/// A word split into words after expansion, joined by single spaces
/// (EXPOSE: a variable may hold several ports).
pub(super) fn expand_words(lexer: &Lexer, word: &Word, env: &dyn Env) -> Result<String, FrontendError> {
    lexer
        .process_words(&word.text, env)
        .map(|e| e.value)
        .map_err(|e| cannot_expand(&word.text, word.span, &e))
}

fn cannot_expand(text: &str, span: Span, error: &ShellError) -> FrontendError {
    FrontendError::new(format!("cannot expand {text:?}: {}", error.message), span)
}
