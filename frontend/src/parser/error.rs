//! The parser's one error type, in its own module so that every stage of
//! the parser can return it without depending on the module that drives them.

use crate::span::Span;

/// A syntax error with the place it was found and a hint for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
    pub span: Span,
    pub hint: Option<String>,
}
