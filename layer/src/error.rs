//! The one error type of the layer module. Every variant names the path or
//! tar entry it is about, so a failed build says which file broke it.

use std::io;
use std::path::PathBuf;

use rbuild_oci::io_error::IoError;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A filesystem operation on a path we were reading or writing failed
    /// (its action reads "cannot open", "cannot inspect", ...).
    #[error(transparent)]
    Io(#[from] IoError),

    /// Writing the tar stream to its destination failed.
    #[error("cannot write the tar stream: {0}")]
    WriteTar(#[source] io::Error),

    /// Reading the tar stream (or decompressing it) failed.
    #[error("cannot read the tar stream at byte {offset}: {source}")]
    ReadTar {
        offset: u64,
        #[source]
        source: io::Error,
    },

    /// The stream ended before the archive did. `source` is the
    /// decompressor's error when it was the one to notice.
    #[error("tar archive is truncated: {detail}")]
    Truncated {
        detail: String,
        #[source]
        source: Option<io::Error>,
    },

    /// A header block that is not a valid tar header.
    #[error("invalid tar header at byte {offset}: {reason}")]
    BadHeader { offset: u64, reason: String },

    /// An entry that would write outside the destination, or that is
    /// otherwise not something a well-formed layer contains.
    #[error("refusing tar entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },

    /// Creating something on disk for a tar entry failed.
    #[error("cannot {op} for tar entry {entry:?}: {source}")]
    Apply {
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    /// Something valid in principle that this implementation does not handle
    /// (sparse tar entries, overlay redirects, ...).
    #[error("{path:?}: unsupported {what}")]
    Unsupported { path: String, what: String },

    /// A file changed size while it was being archived.
    #[error("{path} changed while it was being archived: {detail}", path = .path.display())]
    FileChanged { path: PathBuf, detail: String },

    /// More than 40 symlinks were followed resolving one path.
    #[error("too many levels of symbolic links resolving {path:?}")]
    SymlinkLoop { path: String },

    /// The path does not exist in the merged view of a layer stack.
    #[error("{path:?} does not exist in the layer stack")]
    NotFound { path: String },

    /// The path exists in the merged view but is not a directory.
    #[error("{path:?} is not a directory in the layer stack")]
    NotADirectory { path: String },

    /// The path exists in the merged view but is not a regular file.
    #[error("{path:?} is not a regular file in the layer stack")]
    NotAFile { path: String },

    /// The stream is compressed with a format layers may not use here.
    #[error("layer is compressed with {0}, which is not supported (use gzip, zstd or none)")]
    UnsupportedCompression(&'static str),
}

impl LayerError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> LayerError {
        LayerError::Io(IoError::new(action, path, source))
    }

    /// Whether this failed because the disk (or the quota) is full.
    pub fn is_storage_full(&self) -> bool {
        rbuild_oci::io_error::is_storage_full(self)
    }

    pub(crate) fn unsafe_entry(entry: &[u8], reason: impl Into<String>) -> LayerError {
        LayerError::UnsafeEntry { entry: display_bytes(entry), reason: reason.into() }
    }

    pub(crate) fn apply(entry: &[u8], op: &'static str, source: io::Error) -> LayerError {
        LayerError::Apply { entry: display_bytes(entry), op, source }
    }
}

/// Paths are bytes on Linux; error messages show them lossily.
pub(crate) fn display_bytes(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
