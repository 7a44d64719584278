//! Dockerfile text to [`Ast`]: directives, line continuations, comments,
//! heredocs, flags and BuildKit's per-instruction argument shapes.
//!
//! The parser follows BuildKit's `frontend/dockerfile/parser` behaviour
//! (checked against its test corpus through [`Ast::dump`]) and adds what
//! BuildKit lacks: a column for every node, argument and flag, and errors
//! with spans and hints. It never panics and runs in time roughly linear in
//! the input.
//!
//! Submodules, in the order the text flows through them:
//! `source_lines` (BOM, line endings) → `directives` (top-of-file
//! directives) → `continuation` (joining lines into a `logical_line` with
//! its position map) → `instruction` (keyword, `flags`, then `shapes`, which
//! uses `words` and `json_array`) → `heredoc` (bodies after the line);
//! `document` drives the loop, `dump` and `go_quote` print BuildKit's dump.
//! `error` holds [`ParseError`], which every stage may return.

mod ast;
mod continuation;
mod directives;
mod document;
mod dump;
mod error;
mod flags;
mod go_quote;
mod heredoc;
mod instruction;
mod json_array;
mod logical_line;
mod printable_table;
mod shapes;
mod source_lines;
mod words;

pub use ast::*;
pub use error::ParseError;

/// Parses a whole Dockerfile.
pub fn parse(src: &str) -> Result<Ast, ParseError> {
    document::parse_document(src)
}
