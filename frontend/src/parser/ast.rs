//! The syntax tree the parser produces: one [`Node`] per instruction, with
//! its raw arguments shaped exactly as BuildKit's parser shapes them (so the
//! tree can be dumped in BuildKit's format), plus the spans and heredocs the
//! later stages need.

use crate::span::Span;

/// Parser directives found at the top of the file (`# syntax=`, `# escape=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    pub syntax: Option<Directive>,
    pub check: Option<Directive>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives { escape: '\\', syntax: None, check: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The value with surrounding blanks removed (`docker/dockerfile:1`).
    pub value: String,
    /// Where the value is written.
    pub span: Span,
}

/// A heredoc attached to an instruction (`RUN <<EOF`, `COPY <<A <<B /dir/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word without quotes or `-` (`EOF` for `<<-"EOF"`).
    pub name: String,
    /// The body: the lines between the opening line and the delimiter, each
    /// ending in `\n` (CRLF files included); with `<<-` leading tabs are
    /// already stripped.
    pub content: String,
    /// False when the delimiter was quoted: the body is used verbatim.
    pub expand: bool,
    /// True for `<<-`.
    pub chomp: bool,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 by default.
    pub file_descriptor: u32,
}

/// One instruction of the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword in lower case (`from`, `run`, …), also for unknown keywords.
    pub keyword: String,
    /// The leading `--name[=value]` words with quotes removed, in order.
    pub flags: Vec<String>,
    /// Where each element of `flags` was written (its raw word, quotes
    /// included). Same length as `flags`; lets flag errors point at the flag.
    pub flag_spans: Vec<Span>,
    /// The arguments, shaped per instruction as BuildKit's dispatch table
    /// shapes them (see the corpus README): JSON elements, whitespace words,
    /// ENV/LABEL `key value sep` triples, or the whole rest as one string.
    /// `ONBUILD` has none (its trigger is in `next`); an unknown keyword keeps
    /// the whole rest of its line as one string.
    pub args: Vec<String>,
    /// Where each element of `args` starts and ends in the file, where known.
    /// Same length as `args`; for a whole-rest-of-line argument it spans the rest.
    /// A JSON element's span includes its quotes; the empty separator of the
    /// legacy `ENV key value` form has an empty span right after the key.
    pub arg_spans: Vec<Span>,
    /// True when the arguments were written in JSON (exec) form.
    pub json: bool,
    /// The instruction text with continuations joined, as BuildKit's `Original`.
    pub original: String,
    /// Heredocs introduced on this instruction's line, in order. For
    /// `ONBUILD RUN <<EOF` they are on both the `ONBUILD` node (as in
    /// BuildKit) and its trigger in `next`.
    pub heredocs: Vec<Heredoc>,
    /// The nested instruction of `ONBUILD`.
    pub next: Option<Box<Node>>,
    /// Comment lines directly above the instruction, without the `#` and
    /// trimmed. As in BuildKit, blank lines do not separate a comment from
    /// the instruction below it, an empty `#` line starts the list afresh,
    /// and parser directives are not comments.
    pub comments: Vec<String>,
    /// From the keyword to the end of the last continuation/heredoc line.
    pub span: Span,
    /// The span of the keyword alone.
    pub keyword_span: Span,
}

/// A non-fatal finding of the parser (e.g. an empty continuation line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
    pub span: Span,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    pub directives: Directives,
    pub nodes: Vec<Node>,
    /// First line of the first instruction to last line of the last one.
    pub span: Span,
    pub warnings: Vec<Warning>,
}
