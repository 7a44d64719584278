//! Layers in the store: `layers/<first 16 hex of diffID>/` holds the layer
//! tar (`layer.tar`, whose sha256 is the diffID), its unpacked overlay
//! snapshot (`fs/`) and `meta.json`. The short name keeps overlay's mount
//! options (one page) short when an image has many layers.
//!
//! A layer a build step commits keeps only its snapshot at first: the tar
//! is streamed through SHA-256 for the diffID and thrown away, and written
//! (from the snapshot, with the same options, checked against the diffID)
//! the first time an export, push or check asks for it
//! ([`Store::layer_tar`]). Most intermediate layers are never exported, so
//! a build writes each byte once, into the snapshot.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, is_already_there, remove_tree, sync_dir, write_file};
use rbuild_layer::{self, ApplyOptions, OverlayXattrs, WriteOptions};
use rbuild_oci::digest::{Digest, HashingReader, HashingWriter};
use rbuild_oci::hash_behind::HashBehind;
use rbuild_oci::io_error::{IoContext, IoError};

/// What a layer's tar stream is, as a commit needs it: its digest (the
/// layer's diffID), its length and its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownTar {
    pub diff_id: Digest,
    pub size: u64,
    pub stats: rbuild_layer::LayerStats,
}

impl KnownTar {
    /// Walks an upper dir and hashes its layer tar (the walk reads the
    /// files while the hash runs on another core).
    fn of_upper(upper: &Path, opts: &WriteOptions) -> Result<KnownTar> {
        let mut hasher = HashBehind::new();
        let stats = rbuild_layer::write_layer_tar(upper, &mut hasher, opts)?;
        let (diff_id, size) = hasher.finish();
        Ok(KnownTar { diff_id, size, stats })
    }
}

/// What the store records about a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    pub diff_id: Digest,
    /// Size of the uncompressed tar in bytes.
    pub size: u64,
    /// Bytes of file content in the layer (what `docker history` shows).
    pub content_size: u64,
    /// Present while `layer.tar` has not been written: how to write it
    /// from the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_tar: Option<TarRecipe>,
}

/// The options a deferred layer tar is written with, as at commit time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarRecipe {
    /// SOURCE_DATE_EPOCH of the build that committed the layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clamp_mtime: Option<i64>,
    /// The snapshot marks whiteouts with `user.overlay.*` xattrs (rootless).
    #[serde(default)]
    pub user_xattrs: bool,
    /// Paths of the snapshot the tar leaves out (see [`WriteOptions::exclude`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<PathBuf>,
}

impl TarRecipe {
    fn of(opts: &WriteOptions) -> TarRecipe {
        TarRecipe {
            clamp_mtime: opts.clamp_mtime,
            user_xattrs: opts.xattr_prefix == OverlayXattrs::User,
            exclude: opts.exclude.clone(),
        }
    }

    fn write_options(&self) -> WriteOptions {
        WriteOptions {
            xattr_prefix: if self.user_xattrs { OverlayXattrs::User } else { OverlayXattrs::Trusted },
            clamp_mtime: self.clamp_mtime,
            exclude: self.exclude.clone(),
        }
    }
}

/// A committed layer: its metadata and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    pub meta: LayerMeta,
    pub dir: PathBuf,
}

impl LayerRef {
    pub fn diff_id(&self) -> Digest {
        self.meta.diff_id
    }

    pub fn tar_path(&self) -> PathBuf {
        self.dir.join("layer.tar")
    }

    /// The unpacked snapshot, usable as an overlay lowerdir.
    pub fn fs_path(&self) -> PathBuf {
        self.dir.join("fs")
    }
}

/// `trusted.overlay.*` for root of the host; `user.overlay.*` for root
/// inside a user namespace (rootless), which cannot set trusted.* xattrs,
/// and for a store on overlayfs itself (in a container), where neither
/// trusted.overlay.* xattrs nor whiteout devices can be made: the
/// overlayfs below keeps them for itself. No overlay mounts there (see the
/// copying snapshotter), so the flavour only has to agree with itself.
pub(super) fn snapshot_xattrs(root: &Path) -> OverlayXattrs {
    use nix::sys::statfs::{OVERLAYFS_SUPER_MAGIC, statfs};
    let on_overlayfs = statfs(root).is_ok_and(|s| s.filesystem_type() == OVERLAYFS_SUPER_MAGIC);
    if rbuild_layer::has_host_root() && !on_overlayfs { OverlayXattrs::Trusted } else { OverlayXattrs::User }
}

fn short_name(diff_id: &Digest) -> String {
    diff_id.hex()[..16].to_string()
}

impl Store {
    /// The whiteout/opaque xattr flavour this process's snapshots and
    /// overlay mounts use.
    pub fn overlay_xattrs(&self) -> OverlayXattrs {
        self.xattrs
    }

    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(short_name(diff_id))
    }

    /// The snapshot path relative to the store root (`layers/<hex16>/fs`),
    /// for compact overlay mount options.
    pub fn snapshot_rel_path(&self, diff_id: &Digest) -> String {
        format!("layers/{}/fs", short_name(diff_id))
    }

    /// Looks a layer up; `None` when it is not (completely) in the store.
    pub fn layer(&self, diff_id: &Digest) -> Result<Option<LayerRef>> {
        let dir = self.layer_dir(diff_id);
        let meta_path = dir.join("meta.json");
        let bytes = match fs::read(&meta_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(IoError::new("read", meta_path, e).into()),
        };
        let meta: LayerMeta = serde_json::from_slice(&bytes).map_err(|source| StoreError::CorruptJson {
            what: "layer metadata",
            path: meta_path.clone(),
            source,
        })?;
        if meta.diff_id != *diff_id {
            // Two diffIDs sharing 16 hex digits: astronomically unlikely, but
            // never serve the wrong layer.
            return Ok(None);
        }
        Ok(Some(LayerRef { meta, dir }))
    }

    /// Like [`Store::layer`], but a missing layer is an error.
    pub fn require_layer(&self, diff_id: &Digest) -> Result<LayerRef> {
        self.layer(diff_id)?.ok_or(StoreError::Missing { what: "layer", digest: *diff_id })
    }

    /// Turns a finished overlay upper directory into a layer. The directory
    /// is moved into the store (not copied). Returns `None` when the upper
    /// dir holds no change, in which case it is removed.
    pub fn commit_upper(&self, upper: &Path, opts: &WriteOptions) -> Result<Option<LayerRef>> {
        let staging = self.temp_dir("layer")?;
        let result = self.commit_upper_in(upper, opts, &staging);
        let _ = remove_tree(&staging);
        result
    }

    /// Commits `upper` as a layer whose tar is written later (see the
    /// module doc): the tar stream only feeds the diffID hash.
    fn commit_upper_in(&self, upper: &Path, opts: &WriteOptions, staging: &Path) -> Result<Option<LayerRef>> {
        let known = KnownTar::of_upper(upper, opts)?;
        self.publish_upper(upper, opts, staging, known)
    }

    /// Like [`Store::commit_upper`] for an upper dir whose layer tar is
    /// already known (hashed from a description of what was written into
    /// it, while it was written), so the upper is not walked again. Builds
    /// with debug assertions walk it anyway and refuse a description that
    /// does not match.
    pub fn commit_upper_known(
        &self,
        upper: &Path,
        opts: &WriteOptions,
        known: KnownTar,
    ) -> Result<Option<LayerRef>> {
        if cfg!(debug_assertions) {
            let walked = KnownTar::of_upper(upper, opts)?;
            if walked != known {
                return Err(StoreError::Corrupt {
                    what: "layer",
                    path: upper.to_path_buf(),
                    message: format!("its description gave {known:?}, the written upper {walked:?}"),
                });
            }
        }
        let staging = self.temp_dir("layer")?;
        let result = self.publish_upper(upper, opts, &staging, known);
        let _ = remove_tree(&staging);
        result
    }

    /// Moves `upper`, whose layer tar is `known`, into the store as a layer
    /// (or drops it: no change, or a layer the store has).
    fn publish_upper(
        &self,
        upper: &Path,
        opts: &WriteOptions,
        staging: &Path,
        known: KnownTar,
    ) -> Result<Option<LayerRef>> {
        let KnownTar { diff_id, size, stats } = known;
        if stats.entries == 0 {
            let _ = remove_tree(upper);
            return Ok(None);
        }
        if let Some(existing) = self.layer(&diff_id)? {
            let _ = remove_tree(upper);
            return Ok(Some(existing));
        }
        fs::rename(upper, staging.join("fs")).ctx("move snapshot", upper)?;
        let recipe = TarRecipe::of(opts);
        let meta = LayerMeta { diff_id, size, content_size: stats.content_bytes, deferred_tar: Some(recipe) };
        let layer = self.publish_layer(staging, meta)?;
        self.remember_layer_size(&diff_id, stats.content_bytes + stats.link_target_bytes);
        Ok(Some(layer))
    }

    /// The path of the layer's tar, writing it first if it was deferred.
    /// The written tar must hash to the diffID (a snapshot changed since
    /// its commit is reported as corrupt, never exported).
    pub fn layer_tar(&self, layer: &LayerRef) -> Result<PathBuf> {
        let path = layer.tar_path();
        let Some(recipe) = &layer.meta.deferred_tar else { return Ok(path) };
        if path.exists() {
            return Ok(path);
        }
        let temp = self.temp_path("layer-tar");
        let written = self.write_deferred_tar(layer, recipe, &temp);
        match written {
            Ok(()) => match fs::rename(&temp, &path) {
                Ok(()) => Ok(path),
                Err(e) => {
                    let _ = fs::remove_file(&temp);
                    Err(IoError::new("write", path, e).into())
                }
            },
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(e)
            }
        }
    }

    fn write_deferred_tar(&self, layer: &LayerRef, recipe: &TarRecipe, dest: &Path) -> Result<()> {
        let file = File::create(dest).ctx("create", dest)?;
        let mut writer = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        let action = || format!("write the tar of layer {} into", layer.meta.diff_id);
        match rbuild_layer::write_layer_tar(&layer.fs_path(), &mut writer, &recipe.write_options()) {
            Err(rbuild_layer::LayerError::WriteTar(e)) => {
                return Err(IoError::new(action(), layer.tar_path(), e).into());
            }
            other => other?,
        };
        let (buf, digest, _) = writer.finish();
        buf.into_inner().map_err(|e| IoError::new(action(), layer.tar_path(), e.into_error()))?;
        self.expect_diff_id(layer, digest)
    }

    /// The digest of the layer's tar, from `layer.tar` or, when that was
    /// deferred, from a tar stream of the snapshot (nothing written).
    pub fn layer_tar_digest(&self, layer: &LayerRef) -> Result<Digest> {
        let path = layer.tar_path();
        match &layer.meta.deferred_tar {
            Some(recipe) if !path.exists() => {
                Ok(KnownTar::of_upper(&layer.fs_path(), &recipe.write_options())?.diff_id)
            }
            _ => Ok(sha256_of_file(&path).ctx("read", &path)?),
        }
    }

    fn expect_diff_id(&self, layer: &LayerRef, digest: Digest) -> Result<()> {
        if digest == layer.meta.diff_id {
            return Ok(());
        }
        Err(StoreError::Corrupt {
            what: "layer",
            path: layer.fs_path(),
            message: format!(
                "its snapshot now makes a tar with digest {digest}, not its diffID {}; \
                 remove the images that use it (`rbuild rmi`) and rebuild",
                layer.meta.diff_id
            ),
        })
    }

    /// Reads a layer tar (plain, gzip or zstd), unpacks it as a snapshot and
    /// keeps the uncompressed tar. With `expected`, the uncompressed content
    /// must hash to that diffID or nothing is stored.
    pub fn commit_tar(&self, reader: &mut dyn Read, expected: Option<&Digest>) -> Result<LayerRef> {
        if let Some(d) = expected
            && let Some(existing) = self.layer(d)?
        {
            io::copy(reader, &mut io::sink()).ctx("read layer", Path::new("<stream>"))?;
            return Ok(existing);
        }
        let staging = self.temp_dir("layer")?;
        let result = self.commit_tar_in(reader, expected, &staging);
        let _ = remove_tree(&staging);
        result
    }

    fn commit_tar_in(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
        staging: &Path,
    ) -> Result<LayerRef> {
        let tar_path = staging.join("layer.tar");
        let fs_dir = staging.join("fs");
        fs::create_dir(&fs_dir).ctx("create", &fs_dir)?;
        let decompressed =
            rbuild_oci::compress::decompress_auto(reader).ctx("read layer", Path::new("<stream>"))?;
        let file = File::create(&tar_path).ctx("create", &tar_path)?;
        let mut tee = TeeReader {
            inner: HashingReader::new(decompressed),
            copy: BufWriter::with_capacity(1 << 20, file),
        };
        let opts = ApplyOptions {
            xattr_prefix: self.overlay_xattrs(),
            same_owner: nix::unistd::geteuid().is_root(),
            skip_devices: !rbuild_layer::has_host_root(),
        };
        let stats = rbuild_layer::apply_layer_tar(&mut tee, &fs_dir, &opts)?;
        // The tar reader stops at the end-of-archive marker; the diffID covers
        // every byte, padding included.
        io::copy(&mut tee, &mut io::sink()).ctx("read layer", &tar_path)?;
        let TeeReader { inner, copy } = tee;
        let (_, diff_id, size) = inner.finish();
        let file = copy.into_inner().map_err(|e| e.into_error()).ctx("write", &tar_path)?;
        if let Some(want) = expected
            && *want != diff_id
        {
            return Err(StoreError::Corrupt {
                what: "layer",
                path: tar_path,
                message: format!("content has diffID {diff_id}, but the image says {want}"),
            });
        }
        if let Some(existing) = self.layer(&diff_id)? {
            return Ok(existing);
        }
        file.sync_all().ctx("sync", &tar_path)?;
        let meta = LayerMeta { diff_id, size, content_size: stats.content_bytes, deferred_tar: None };
        self.publish_layer(staging, meta)
    }

    /// Writes meta.json into a complete staging dir and renames it into
    /// place. If another process published the same layer first, theirs wins.
    fn publish_layer(&self, staging: &Path, meta: LayerMeta) -> Result<LayerRef> {
        let meta_path = staging.join("meta.json");
        let json = serde_json::to_vec(&meta).expect("layer meta serializes");
        write_file(&meta_path, &json).ctx("write", &meta_path)?;
        let dest = self.layer_dir(&meta.diff_id);
        match fs::rename(staging, &dest) {
            Ok(()) => {
                sync_dir(&self.root.join("layers")).ctx("sync", &dest)?;
                Ok(LayerRef { meta, dir: dest })
            }
            Err(e) if is_already_there(&e) => self.require_layer(&meta.diff_id),
            Err(e) => Err(IoError::new("commit layer", dest, e).into()),
        }
    }

    /// Every layer in the store.
    pub fn list_layers(&self) -> Result<Vec<LayerRef>> {
        let dir = self.root.join("layers");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).ctx("list", &dir)? {
            let e = e.ctx("list", &dir)?;
            let meta_path = e.path().join("meta.json");
            if let Ok(bytes) = fs::read(&meta_path)
                && let Ok(meta) = serde_json::from_slice::<LayerMeta>(&bytes)
            {
                out.push(LayerRef { meta, dir: e.path() });
            }
        }
        out.sort_by_key(|l| l.meta.diff_id);
        Ok(out)
    }

    /// Deletes a layer: first its meta.json (so it stops being visible),
    /// then the rest.
    pub fn remove_layer(&self, diff_id: &Digest) -> Result<()> {
        let dir = self.layer_dir(diff_id);
        let doomed = self.temp_path("doomed-layer");
        match fs::rename(&dir, &doomed) {
            Ok(()) => Ok(remove_tree(&doomed).ctx("remove", &doomed)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(IoError::new("remove layer", dir, e).into()),
        }
    }
}

/// Copies everything read through it to a writer.
struct TeeReader<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// The sha256 of a file's content, streamed.
pub fn sha256_of_file(path: &Path) -> io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut writer = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut writer)?;
    Ok(writer.finish().1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper_with_a_file(store: &Store) -> PathBuf {
        let upper = store.temp_dir("upper").unwrap();
        fs::create_dir(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hello"), "hello\n").unwrap();
        upper
    }

    #[test]
    fn a_known_tar_commits_the_upper_under_its_digest_and_a_wrong_one_is_refused_in_checked_builds() {
        let (_dir, store) = crate::store::temp_store();
        let opts = WriteOptions::default();
        let upper = upper_with_a_file(&store);
        let known = KnownTar::of_upper(&upper, &opts).unwrap();

        let wrong = KnownTar { diff_id: Digest::of(b"something else"), ..known };
        let refused = store.commit_upper_known(&upper, &opts, wrong);
        if cfg!(debug_assertions) {
            assert!(matches!(refused, Err(StoreError::Corrupt { .. })), "{refused:?}");
            assert!(upper.join("etc/hello").exists(), "a refused upper stays where it was");
        } else {
            // Trusted as given: what the description makes is what was written.
            assert_eq!(refused.unwrap().unwrap().diff_id(), wrong.diff_id);
            return;
        }

        let layer = store.commit_upper_known(&upper, &opts, known).unwrap().expect("a layer");
        assert_eq!(layer.diff_id(), known.diff_id);
        assert!(!upper.exists(), "the upper moved into the store");
        assert_eq!(fs::read_to_string(layer.fs_path().join("etc/hello")).unwrap(), "hello\n");
        // The tar written later hashes to the diffID it was committed under.
        assert_eq!(store.layer_tar_digest(&layer).unwrap(), known.diff_id);
    }
}
