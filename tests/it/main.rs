//! Integration tests: the real `rbuild` binary against real contexts.

mod bad_input;
mod build;
mod explain;
mod harness;
mod images;
mod images_archive;
mod images_bad_input;
mod images_debian;
mod images_gc;
mod interop;
mod interrupt;
mod lang_copy;
mod lang_docker;
mod lang_run;
mod registry;
mod reproducible;
