//! A build's outputs: the `-o` specs ([`spec`]), writing the image out as
//! an archive, a root filesystem tar or a directory ([`export`]), and
//! writing a file the user named whole or not at all ([`file`], which
//! `save -o` uses too).

mod export;
pub mod file;
mod spec;

pub use export::export;
pub use spec::{ImageOutput, Output, parse_image_output, parse_output};
