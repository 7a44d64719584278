//! The Dockerfile frontend: bytes in, an immutable step graph out.
//!
//! `parser` turns text into an [`parser::Ast`] whose nodes keep their spans,
//! `shell` expands variables in words the way BuildKit does, `instructions`
//! types and validates each node, and `lower` turns the stages into a
//! step graph. No I/O happens here beyond the bytes we are given.
//! `checks` runs BuildKit's build checks (lint rules) over a parsed file.
//! `duration` is Go's duration syntax, which HEALTHCHECK flags use and other
//! crates may share.

pub mod checks;
pub mod duration;
pub mod error;
pub mod filemode;
pub mod flags;
pub mod graph;
pub mod instructions;
pub mod lower;
pub mod mounts;
pub mod parser;
pub mod shell;
pub mod span;
mod vars;
