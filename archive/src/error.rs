//! What can go wrong exporting, loading or importing an image archive. The
//! messages name the entry, image and layer at fault, because the person
//! reading them usually has only the archive and the message to go on.

use std::io;
use std::path::PathBuf;

use rbuild_cache::store::StoreError;
use rbuild_oci::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image {0} is not in the store")]
    NoSuchImage(Digest),
    #[error("writing the archive: {0}")]
    Write(#[source] io::Error),
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
    #[error("input is empty: expected a docker-archive or an OCI archive")]
    Empty,
    #[error("input is not a tar archive (plain, gzip or zstd): {0}")]
    NotAnArchive(String),
    #[error("truncated archive: {0}")]
    Truncated(String),
    #[error("archive has no manifest.json or index.json")]
    NoManifest,
    #[error("unsafe name {name:?} in archive: {reason}")]
    UnsafeName { name: String, reason: &'static str },
    #[error("{path} is missing from the archive (needed for {needed_for})")]
    MissingFile { path: String, needed_for: String },
    #[error("{path} is not a valid {what}: {message}")]
    InvalidJson { path: String, what: &'static str, message: String },
    #[error("{path} is {size} bytes, more than the {limit} bytes allowed for a {what}")]
    TooLarge { path: String, what: &'static str, size: u64, limit: u64 },
    #[error("config of {image}: content has digest {actual}, but {named_by} says {expected}")]
    ConfigDigestMismatch { image: String, named_by: String, expected: Digest, actual: Digest },
    #[error("{path}: content has digest {actual}, but {named_by} says {expected}")]
    BlobDigestMismatch { path: String, named_by: String, expected: Digest, actual: Digest },
    #[error("{path}: content is {actual} bytes, but its descriptor says {expected}")]
    BlobSizeMismatch { path: String, expected: u64, actual: u64 },
    #[error("layer {index} of {image}: content has diffID {actual}, config says {expected}")]
    LayerDiffIdMismatch { image: String, index: usize, expected: Digest, actual: Digest },
    #[error("layer {index} of {image} ({path}): {message}")]
    BadLayer { image: String, index: usize, path: String, message: String },
    #[error("{image}: the manifest lists {layers} layers but the config has {diff_ids} diffIDs")]
    LayerCountMismatch { image: String, layers: usize, diff_ids: usize },
    #[error("invalid tag {tag:?}: {reason}")]
    InvalidTag { tag: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
}

pub(crate) type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// Attaches what was being done, and to which file, to an io error.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, action: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| ArchiveError::Io { action, path: path.to_path_buf(), source })
    }
}
