//! Integration tests: the real `rbuild` binary against real contexts.

mod bad_input;
mod build;
mod explain;
mod harness;
mod interop;
mod interrupt;
mod reproducible;
