//! COPY, ADD and WORKDIR: the step's files are written straight into a
//! fresh upper directory, resolving destination paths through the merged
//! view of the parent layers (symlinks followed, clamped to the root), so
//! no mount is needed and a hostile image cannot redirect writes outside
//! the layer.
//!
//! * [`items`]: what a source selects (context, a stage's or image's
//!   layers, an extracted archive), as entries to write;
//! * [`writer`]: writing entries into the upper dir with Docker's rules;
//! * [`archive`]: recognising a local tar archive for ADD;
//! * [`node`]: the owner, mode and time a written node gets;
//! * [`upper`]: the upper tree the writer writes into (the real upper dir);
//! * [`link_batch`]: hard links decided but made together, on every core;
//! * [`prior`]: the layer the same COPY made before, whose unchanged files
//!   are shared instead of written;
//! * [`virtual_upper`]: the same tree described in memory, to learn the
//!   layer's diffID before writing (a stored layer is then reused);
//! * [`step`]: one COPY or ADD step from its op to its upper dir.

pub mod archive;
pub mod items;
pub mod link_batch;
pub mod node;
pub mod prior;
pub mod step;
pub mod upper;
pub mod virtual_upper;
pub mod writer;

use std::io;
use std::path::Path;

use rbuild_oci::io_error::IoError;

pub use items::{SrcEntry, SrcItem};
pub use writer::Writer;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Layer(#[from] rbuild_layer::LayerError),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CopyError + 'a {
    move |source| CopyError::Io(IoError::new(action, path, source))
}
