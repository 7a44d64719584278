//! Integration tests: the real `rbuild` binary against real contexts.

mod bad_input;
mod build;
mod concurrency;
mod crash;
mod disk;
mod explain;
mod harness;
mod hostile;
mod hostile_context;
mod hostile_frontend;
mod hostile_support;
mod images;
mod images_archive;
mod images_bad_input;
mod images_debian;
mod images_gc;
mod insight;
mod interop;
mod interrupt;
mod isolation;
mod lang_copy;
mod lang_docker;
mod lang_run;
mod registry;
mod reproducible;
mod rootless;
