//! Cache mounts carried by an exported build cache (`mounts=` of
//! `--cache-to` and `--cache-from`), so `RUN --mount=type=cache` content
//! reaches a fresh CI runner.
//!
//! Each mount travels as a blob of its own: its deterministic tar
//! ([`rbuild_cache::mounts::write_tar`]) gzip-compressed on every core,
//! listed in the cache config with its id, the owner and mode it was made
//! with, its size and when the build that wrote it ran. Only the mount's
//! own directory is written: secrets, ssh sockets and whatever the step
//! wrote elsewhere are never part of it.
//!
//! Export skips work it can prove unneeded: a mount whose stat data
//! ([`rbuild_cache::mounts::fingerprint`]) matches its last export is not
//! written again, and a blob the destination has is not sent again. Mounts
//! larger than `max-size=` are left out with a warning.
//!
//! Import happens when a step first mounts the id: the local mount is
//! replaced only when it is absent or was written before the carried one.
//! The blob is downloaded whole and checked against its digest before the
//! swap ([`rbuild_cache::mounts::install`]), so a corrupt or truncated blob
//! leaves the local mount as it was.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{RegistryError, Result};
use super::session::Session;
use rbuild_cache::mounts::{self, ExportedMount, MountMeta};
use rbuild_cache::store::Store;
use rbuild_cache::usage::directory_size;
use rbuild_oci::digest::{Digest, HashingWriter};
use rbuild_oci::io_error::IoContext;
use rbuild_oci::reference::Reference;
use rbuild_oci::timefmt::Timestamp;

/// Mounts larger than this are not exported unless `max-size=` says more.
pub const DEFAULT_MAX_MOUNT_SIZE: u64 = 2 << 30;

/// Which cache mounts an export writes or an import reads (`mounts=`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MountSelection {
    /// None (the default, as in BuildKit, which never carries them).
    #[default]
    Nothing,
    /// `mounts=true`: every cache mount the build used (export), or every
    /// one the cache carries (import).
    All,
    /// `mounts=ID1,ID2`: these ids.
    Ids(Vec<String>),
}

impl MountSelection {
    pub fn parse(value: &str) -> MountSelection {
        match value.trim() {
            "" | "false" | "0" => MountSelection::Nothing,
            "true" | "1" => MountSelection::All,
            ids => MountSelection::Ids(
                ids.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
            ),
        }
    }

    pub fn includes(&self, id: &str) -> bool {
        match self {
            MountSelection::Nothing => false,
            MountSelection::All => true,
            MountSelection::Ids(ids) => ids.iter().any(|i| i == id),
        }
    }
}

/// One cache mount in a cache config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheMountBlob {
    pub id: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// Bytes of content.
    pub size: u64,
    /// Seconds since the epoch: when the build that wrote it ran.
    pub written: i64,
    /// sha256 of the uncompressed tar.
    pub tar_digest: Digest,
    /// The compressed blob.
    pub digest: Digest,
    pub blob_size: u64,
    pub media_type: String,
}

/// What exporting the mounts did.
#[derive(Debug, Default)]
pub struct MountsExported {
    pub mounts: Vec<CacheMountBlob>,
    /// Mounts unchanged since their last export, not written again.
    pub unchanged: usize,
    /// Mounts left out, and why (too large, absent).
    pub warnings: Vec<String>,
}

/// Where an export's blobs go, or an import's come from.
pub(crate) enum BlobPlace<'a> {
    Registry(&'a Session, &'a Reference),
    /// An OCI layout's `blobs/sha256`.
    Directory(&'a Path),
}

impl BlobPlace<'_> {
    /// Whether the blob is there. A registry checks what it stores; in a
    /// directory a file of the right size counts (hashing a large blob on
    /// every export would cost what skipping it saves).
    fn has(&self, digest: &Digest, size: u64) -> Result<bool> {
        match self {
            BlobPlace::Registry(session, reference) => session.has_blob(reference, digest),
            BlobPlace::Directory(blobs) => {
                Ok(fs::metadata(blobs.join(digest.hex())).is_ok_and(|m| m.is_file() && m.len() == size))
            }
        }
    }

    /// Stores the file `path` (whose digest is `digest`) unless it is there.
    fn put(&self, path: &Path, digest: &Digest, size: u64) -> Result<()> {
        if self.has(digest, size)? {
            return Ok(());
        }
        match self {
            BlobPlace::Registry(session, reference) => {
                session.upload_file(reference, path, digest, size, None)
            }
            BlobPlace::Directory(blobs) => {
                let dest = blobs.join(digest.hex());
                File::open(path).and_then(|f| f.sync_all()).ctx("sync", path)?;
                fs::rename(path, &dest).ctx("write", &dest)?;
                Ok(())
            }
        }
    }

    /// Copies the blob into `dest`, checked against its digest and size.
    fn fetch(&self, digest: &Digest, size: u64, dest: &Path) -> Result<()> {
        let file = File::create(dest).ctx("create", dest)?;
        let mut out = HashingWriter::new(BufWriter::new(file));
        let what = format!("cache mount blob {digest}");
        match self {
            BlobPlace::Registry(session, reference) => {
                let mut blob = session.open_blob(reference, digest, size, None)?;
                let copied = io::copy(&mut blob, &mut out);
                blob.check(copied)?;
            }
            BlobPlace::Directory(blobs) => {
                let path = blobs.join(digest.hex());
                let mut file = File::open(&path).ctx("open", &path)?;
                io::copy(&mut file, &mut out).ctx("read", &path)?;
            }
        }
        let (buffered, actual, len) = out.finish();
        buffered.into_inner().map_err(|e| e.into_error()).ctx("write", dest)?;
        if actual != *digest || len != size {
            let place = match self {
                BlobPlace::Registry(_, reference) => reference.registry.clone(),
                BlobPlace::Directory(blobs) => blobs.display().to_string(),
            };
            return Err(RegistryError::digest_mismatch(&place, what, digest, &actual));
        }
        Ok(())
    }
}

/// Writes the cache mounts `ids` to `place`.
pub(crate) fn export_mounts(
    place: &BlobPlace<'_>,
    store: &Store,
    ids: &[String],
    max_size: u64,
) -> Result<MountsExported> {
    let mut out = MountsExported::default();
    for id in ids {
        let dir = mounts::mount_dir(store, id);
        if !dir.is_dir() {
            out.warnings.push(format!("cache mount {id} is not in the store; not exported"));
            continue;
        }
        let Some(meta) = mounts::read_meta(store, id)? else {
            out.warnings.push(format!(
                "cache mount {id} was made before rbuild kept cache mount ids; not exported (the next build that mounts it records it)"
            ));
            continue;
        };
        // Shared: a `sharing=locked` step does not write while we read.
        let lock = mounts::open_lock(&dir)?;
        lock.lock_shared().ctx("lock", mounts::lock_path(&dir))?;
        let fingerprint = mounts::fingerprint(&dir)?;
        let unchanged = meta.exported.clone().filter(|e| e.fingerprint == fingerprint);
        let size = unchanged.as_ref().map_or_else(|| directory_size(&dir), |e| e.size);
        if size > max_size {
            out.warnings.push(format!(
                "cache mount {id} is {size} bytes, more than max-size ({max_size} bytes); not exported"
            ));
            continue;
        }
        let exported = match unchanged {
            Some(e) if place.has(&e.blob, e.blob_size)? => {
                out.unchanged += 1;
                e
            }
            _ => {
                let e = write_mount_blob(place, store, &dir, fingerprint, size)?;
                mounts::update_meta(store, id, meta.clone(), |m| m.exported = Some(e.clone()))?;
                e
            }
        };
        out.mounts.push(CacheMountBlob {
            id: id.clone(),
            uid: meta.uid,
            gid: meta.gid,
            mode: meta.mode,
            size,
            written: meta.written,
            tar_digest: exported.tar_digest,
            digest: exported.blob,
            blob_size: exported.blob_size,
            media_type: super::manifest::OCI_LAYER_GZIP.into(),
        });
    }
    Ok(out)
}

/// The mount's tar, compressed, stored in `place`.
fn write_mount_blob(
    place: &BlobPlace<'_>,
    store: &Store,
    dir: &Path,
    fingerprint: Digest,
    size: u64,
) -> Result<ExportedMount> {
    let tar_path = store.temp_path("mount-tar");
    let gz_path = store.temp_path("mount-gz");
    let result = (|| {
        let mut tar = BufWriter::new(File::create(&tar_path).ctx("create", &tar_path)?);
        let tar_digest = mounts::write_tar(store, dir, &mut tar)?;
        tar.into_inner().map_err(|e| e.into_error()).ctx("write", &tar_path)?;
        let (blob, blob_size) = super::push::compress_layer(&tar_path, &gz_path, &|_| {})?;
        place.put(&gz_path, &blob, blob_size)?;
        Ok(ExportedMount { fingerprint, tar_digest, blob, blob_size, size })
    })();
    let _ = fs::remove_file(&tar_path);
    let _ = fs::remove_file(&gz_path);
    result
}

/// Seeds the store's mount from `carried` unless the local one was
/// written as late or later. Returns what was done, for the build output.
pub(crate) fn seed_mount(
    place: &BlobPlace<'_>,
    store: &Store,
    carried: &CacheMountBlob,
    from: &str,
) -> Result<Option<String>> {
    let id = &carried.id;
    let local = mounts::read_meta(store, id)?.filter(|_| mounts::mount_dir(store, id).is_dir());
    if let Some(local) = &local {
        if local.exported.as_ref().is_some_and(|e| e.tar_digest == carried.tar_digest) {
            return Ok(None);
        }
        if local.written >= carried.written {
            return Ok(Some(format!("cache mount {id}: the local copy is newer than {from}'s; kept")));
        }
    }
    let download = store.temp_path("mount-blob");
    let result = (|| {
        place.fetch(&carried.digest, carried.blob_size, &download)?;
        let meta = MountMeta {
            id: id.clone(),
            uid: carried.uid,
            gid: carried.gid,
            mode: carried.mode,
            written: carried.written,
            last_used: Timestamp::now().secs,
            used_by: Vec::new(),
            exported: None,
        };
        let mut file = File::open(&download).ctx("open", &download)?;
        mounts::install(store, meta, &mut file).map_err(|e| match e {
            mounts::MountError::Store(e) => RegistryError::Store(e),
            other => RegistryError::CacheMount(other.to_string()),
        })
    })();
    let _ = fs::remove_file(&download);
    result?;
    Ok(Some(format!("cache mount {id}: imported from {from} ({} bytes)", carried.size)))
}
