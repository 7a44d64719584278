//! What can go wrong exporting, loading or importing an image archive. The
//! messages name the entry, image and layer at fault, because the person
//! reading them usually has only the archive and the message to go on.

use std::io;
use std::sync::Arc;

use rbuild_cache::store::StoreError;
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::IoError;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Io(#[from] IoError),
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
    /// The archive ends early. `source` is the reader's error when it was
    /// a failed read that showed it.
    #[error("truncated archive: {detail}")]
    Truncated {
        detail: String,
        #[source]
        source: Option<io::Error>,
    },
    #[error("archive has no manifest.json or index.json")]
    NoManifest,
    #[error("unsafe name {name:?} in archive: {reason}")]
    UnsafeName { name: String, reason: &'static str },
    #[error("{path} is missing from the archive (needed for {needed_for})")]
    MissingFile { path: String, needed_for: String },
    #[error("{path} is not a valid {what}: {message}")]
    InvalidJson { path: String, what: &'static str, message: String },
    /// Like `InvalidJson`, with the parser's error.
    #[error("{path} is not a valid {what}: {source}")]
    UnparsableJson {
        path: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
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
    #[error("layer {index} of {image} ({path}): {reason}")]
    BadLayer {
        image: String,
        index: usize,
        path: String,
        #[source]
        reason: Box<NotALayer>,
    },
    #[error("{image}: the manifest lists {layers} layers but the config has {diff_ids} diffIDs")]
    LayerCountMismatch { image: String, layers: usize, diff_ids: usize },
    #[error("invalid tag {tag:?}: {reason}")]
    InvalidTag { tag: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
}

/// Why a file an image names as a layer is not one.
#[derive(Debug, thiserror::Error)]
pub enum NotALayer {
    /// The store could not take it as a layer tar. Shared, because the
    /// verdict is kept with the archive's contents until a manifest asks.
    #[error("not a readable layer tar: {0}")]
    Unreadable(#[source] Arc<StoreError>),
    #[error("content has digest {actual}, but its name says {named}")]
    WrongDigest { named: Digest, actual: Digest },
    #[error(transparent)]
    Io(#[from] IoError),
    /// Reading the rest of it failed.
    #[error("{0}")]
    Read(#[source] io::Error),
}

impl ArchiveError {
    /// Whether this failed because the disk (or the quota) is full.
    pub fn is_storage_full(&self) -> bool {
        rbuild_oci::io_error::is_storage_full(self)
    }
}

pub(crate) type Result<T, E = ArchiveError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's errno values (the crate does not link libc).
    const ENOSPC: i32 = 28;
    const EACCES: i32 = 13;

    fn layer_commit_failed(errno: i32) -> ArchiveError {
        let io = IoError::new("write", "/store/layers/x/layer.tar", io::Error::from_raw_os_error(errno));
        let unreadable = NotALayer::Unreadable(Arc::new(StoreError::Io(io)));
        ArchiveError::BadLayer {
            image: "app:v1".into(),
            index: 1,
            path: "l.tar".into(),
            reason: Box::new(unreadable),
        }
    }

    #[test]
    fn a_full_disk_under_a_bad_layer_is_recognised() {
        assert!(layer_commit_failed(ENOSPC).is_storage_full());
        assert!(!layer_commit_failed(EACCES).is_storage_full());
        assert_eq!(
            layer_commit_failed(EACCES).to_string(),
            "layer 1 of app:v1 (l.tar): not a readable layer tar: write /store/layers/x/layer.tar: \
             Permission denied (os error 13)"
        );
    }
}
