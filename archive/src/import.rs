//! `docker import`: a root filesystem tarball becomes an image of one layer.
//! The tar is kept byte for byte (after decompression), so the layer's
//! diffID is the sha256 of the uncompressed tarball, as with Docker.

use std::io::Read;

use super::error::Result;
use rbuild_cache::store::Store;
use rbuild_oci::config::{History, ImageConfig, RootFs, RunConfig, host_architecture};
use rbuild_oci::digest::Digest;
use rbuild_oci::timefmt::Timestamp;

/// What to put in the imported image's config besides its one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// How containers of the image run: the result of applying the
    /// `--change` instructions (`CMD`, `ENV`, `WORKDIR`, …), which the caller
    /// parses; this crate knows no Dockerfile syntax.
    pub changes: RunConfig,
    /// The history comment (`--message`). Docker's default, used for
    /// `None`, is "Imported from -" (the tarball came as a stream).
    pub message: Option<String>,
    /// The image's and its history entry's creation time.
    pub created: Timestamp,
}

impl Default for ImportOptions {
    /// No changes, Docker's default message, created now.
    fn default() -> Self {
        ImportOptions { changes: RunConfig::default(), message: None, created: Timestamp::now() }
    }
}

/// Imports `tarball` (plain, gzip or zstd) and returns the new image's ID.
/// The image is for this machine's platform (linux and its architecture,
/// as `docker import` without `--platform`), and untagged: tag it with
/// [`Store::tag`].
pub fn import_rootfs(store: &Store, tarball: &mut dyn Read, opts: &ImportOptions) -> Result<Digest> {
    // The layer belongs to no image until put_image; keep gc off it.
    let _gc = store.gc_guard(false)?;
    let layer = store.commit_tar(tarball, None)?;
    let created = opts.created.to_rfc3339();
    let config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: host_architecture().to_string(),
        os: "linux".to_string(),
        os_version: None,
        variant: None,
        config: opts.changes.clone(),
        rootfs: RootFs { diff_ids: vec![layer.meta.diff_id], ..RootFs::default() },
        history: vec![History {
            created: Some(created),
            comment: Some(opts.message.clone().unwrap_or_else(|| "Imported from -".to_string())),
            ..History::default()
        }],
    };
    Ok(store.put_image(&config.to_json(), None)?)
}
