//! `RUN --mount=type=cache` directories as things of their own: where each
//! lives (`state/cache-mounts/<sha256 of its id>`), what is known of it
//! (`<hex>.json` beside it: the id, the owner and mode it was made with,
//! when a build last wrote it, when and by which builds it was used, and
//! its last export), and whole-mount operations: list, write as a
//! deterministic tar, install from a tar atomically, remove.
//!
//! A mount is in use while a step holds `<hex>.lock` (shared, or exclusive
//! for `sharing=locked`). Replacing or removing a mount takes that lock
//! exclusively without waiting, so a running step never sees its mount
//! change under it; `sharing=private` copies (`<hex>.1`, …) are scratch
//! for one step and only ever removed with their mount.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{Result, Store, StoreError, remove_tree, unique_suffix, write_file};
use crate::usage::directory_size;
use rbuild_layer::{ApplyOptions, WriteOptions, apply_layer_tar_auto, write_layer_tar};
use rbuild_oci::digest::{Digest, Hasher, HashingWriter};
use rbuild_oci::io_error::{IoContext, IoError};
use rbuild_oci::timefmt::Timestamp;

/// How many builds `used_by` remembers.
const USED_BY_KEPT: usize = 5;

/// What the store knows of one cache mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountMeta {
    pub id: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// Seconds since the epoch: when a build last mounted it writable, or,
    /// for an imported copy, when the build that wrote that copy did.
    pub written: i64,
    /// Seconds since the epoch: when a build last mounted it.
    pub last_used: i64,
    /// The builds that used it, most recent last.
    #[serde(default)]
    pub used_by: Vec<String>,
    /// Its last export, to skip exporting it again while it is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported: Option<ExportedMount>,
}

/// What the last export of a mount wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedMount {
    /// [`fingerprint`] of the directory when it was exported.
    pub fingerprint: Digest,
    /// sha256 of the uncompressed tar.
    pub tar_digest: Digest,
    /// The compressed blob.
    pub blob: Digest,
    pub blob_size: u64,
    /// The content's size ([`directory_size`]).
    pub size: u64,
}

/// A cache mount found in the store.
#[derive(Debug, Clone)]
pub struct MountEntry {
    pub dir: PathBuf,
    /// `None` for a mount made before rbuild kept metadata: its id is
    /// then unknown (only its hash is, the directory's name).
    pub meta: Option<MountMeta>,
    /// Bytes of its content, private copies included.
    pub size: u64,
}

impl MountEntry {
    /// The id, or the directory's name when the id is unknown.
    pub fn name(&self) -> String {
        match &self.meta {
            Some(meta) => meta.id.clone(),
            None => self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }

    /// When it was last used, from the metadata or else the directory.
    pub fn last_used(&self) -> i64 {
        self.meta.as_ref().map_or_else(|| fs::metadata(&self.dir).map_or(0, |m| m.mtime()), |m| m.last_used)
    }
}

pub fn mounts_dir(store: &Store) -> PathBuf {
    store.state_path("cache-mounts")
}

/// The directory of cache mount `id`.
pub fn mount_dir(store: &Store, id: &str) -> PathBuf {
    mounts_dir(store).join(Digest::of(id.as_bytes()).hex())
}

fn meta_path(dir: &Path) -> PathBuf {
    dir.with_extension("json")
}

/// The lock a step holds while it uses the mount at `dir`.
pub fn lock_path(dir: &Path) -> PathBuf {
    let ext = dir.extension().map(|e| format!("{}.", e.to_string_lossy())).unwrap_or_default();
    dir.with_extension(format!("{ext}lock"))
}

pub fn open_lock(dir: &Path) -> Result<File> {
    let path = lock_path(dir);
    Ok(OpenOptions::new().create(true).truncate(false).write(true).open(&path).ctx("open lock", &path)?)
}

pub fn read_meta(store: &Store, id: &str) -> Result<Option<MountMeta>> {
    read_meta_at(&mount_dir(store, id))
}

fn read_meta_at(dir: &Path) -> Result<Option<MountMeta>> {
    let path = meta_path(dir);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| StoreError::CorruptJson {
            what: "cache mount metadata",
            path,
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IoError::new("read", path, e).into()),
    }
}

/// Changes the metadata of mount `id` (starting from `fresh` when it has
/// none) under a lock, so concurrent builds do not lose each other's notes.
pub fn update_meta(
    store: &Store,
    id: &str,
    fresh: MountMeta,
    change: impl FnOnce(&mut MountMeta),
) -> Result<()> {
    let dir = mount_dir(store, id);
    let parent = mounts_dir(store);
    fs::create_dir_all(&parent).ctx("create", &parent)?;
    let lock_file = parent.join("meta.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .ctx("open lock", &lock_file)?;
    lock.lock().ctx("lock", &lock_file)?;
    // Unreadable metadata is replaced rather than blocking every build.
    let mut meta = read_meta_at(&dir).ok().flatten().unwrap_or(fresh);
    change(&mut meta);
    let path = meta_path(&dir);
    write_file(&path, &serde_json::to_vec_pretty(&meta).expect("metadata serializes")).ctx("write", &path)?;
    Ok(())
}

/// Notes that a build (`user`) mounted `id` now, writable or not.
pub fn note_use(store: &Store, id: &str, owner: (u32, u32, u32), writable: bool, user: &str) -> Result<()> {
    let now = Timestamp::now().secs;
    let fresh = MountMeta {
        id: id.to_string(),
        uid: owner.0,
        gid: owner.1,
        mode: owner.2,
        written: now,
        last_used: now,
        used_by: Vec::new(),
        exported: None,
    };
    update_meta(store, id, fresh, |meta| {
        meta.last_used = now;
        if writable {
            meta.written = now;
        }
        if !user.is_empty() {
            meta.used_by.retain(|u| u != user);
            meta.used_by.push(user.to_string());
            let excess = meta.used_by.len().saturating_sub(USED_BY_KEPT);
            meta.used_by.drain(..excess);
        }
    })
}

/// Every cache mount of the store, most recently used first.
pub fn list(store: &Store) -> Result<Vec<MountEntry>> {
    let dir = mounts_dir(store);
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(&dir) else { return Ok(out) };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only mounts themselves: not private copies (`<hex>.1`), half-made
        // ones (`<hex>.new-…`), metadata or locks.
        if name.contains('.') || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let meta = read_meta_at(&path)?;
        let size =
            directory_size(&path) + private_copies(&path).iter().map(|p| directory_size(p)).sum::<u64>();
        out.push(MountEntry { dir: path, meta, size });
    }
    out.sort_by(|a, b| b.last_used().cmp(&a.last_used()).then_with(|| a.name().cmp(&b.name())));
    Ok(out)
}

/// Finds a mount by id, or by its directory's name for one without metadata.
pub fn find(store: &Store, name: &str) -> Result<Option<MountEntry>> {
    Ok(list(store)?.into_iter().find(|m| m.name() == name))
}

/// `sharing=private` copies of the mount at `dir`.
fn private_copies(dir: &Path) -> Vec<PathBuf> {
    let Some(base) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else { return Vec::new() };
    let Some(parent) = dir.parent() else { return Vec::new() };
    let Ok(entries) = fs::read_dir(parent) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(&format!("{base}.")).is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                && e.file_type().is_ok_and(|t| t.is_dir())
        })
        .map(|e| e.path())
        .collect()
}

/// Takes the mount's lock exclusively if nobody uses it; `None` if a step does.
fn lock_unused(dir: &Path) -> Result<Option<File>> {
    let lock = open_lock(dir)?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(IoError::new("lock", lock_path(dir), e).into()),
    }
}

/// Why a whole-mount operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("cache mount {0} is in use by a running build")]
    InUse(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cache mount {id}: {message}")]
    BadTar { id: String, message: String },
}

/// Removes the mount at `dir` with its private copies and metadata,
/// unless a step is using it.
pub fn remove(entry: &MountEntry) -> std::result::Result<(), MountError> {
    let dir = &entry.dir;
    let Some(_lock) = lock_unused(dir)? else { return Err(MountError::InUse(entry.name())) };
    for copy in private_copies(dir) {
        remove_tree(&copy).ctx("remove", &copy).map_err(StoreError::from)?;
    }
    remove_tree(dir).ctx("remove", dir).map_err(StoreError::from)?;
    let meta = meta_path(dir);
    match fs::remove_file(&meta) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(StoreError::from(IoError::new("remove", meta, e)).into());
        }
        _ => {}
    }
    Ok(())
}

/// Writes the content of the mount directory `dir` as a tar, by the layer
/// tar's rules (a pure function of the tree; the directory itself has no
/// entry). Returns the tar's sha256.
pub fn write_tar(store: &Store, dir: &Path, out: &mut dyn Write) -> Result<Digest> {
    let mut hashed = HashingWriter::new(out);
    let opts = WriteOptions { xattr_prefix: store.overlay_xattrs(), ..WriteOptions::default() };
    write_layer_tar(dir, &mut hashed, &opts)?;
    let (_, digest, _) = hashed.finish();
    Ok(digest)
}

/// Makes `tar` (plain, gzip or zstd) the content of mount `meta.id`, all
/// at once: unpacked beside the mount (refusing entries that escape it),
/// then swapped in while no step uses the mount. Anything wrong with the
/// tar leaves the existing mount as it was.
pub fn install(store: &Store, meta: MountMeta, tar: &mut dyn Read) -> std::result::Result<(), MountError> {
    let dir = mount_dir(store, &meta.id);
    let parent = mounts_dir(store);
    fs::create_dir_all(&parent).ctx("create", &parent).map_err(StoreError::from)?;
    let fresh = dir.with_extension(format!("new-{}", unique_suffix()));
    let unpacked = (|| -> std::result::Result<(), MountError> {
        let opts = ApplyOptions::for_current_user(store.overlay_xattrs());
        apply_layer_tar_auto(tar, &fresh, &opts)
            .map_err(|e| MountError::BadTar { id: meta.id.clone(), message: e.to_string() })?;
        let owner = (Some(nix::unistd::Uid::from_raw(meta.uid)), Some(nix::unistd::Gid::from_raw(meta.gid)));
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(&fresh, owner.0, owner.1)
                .map_err(|e| StoreError::from(IoError::new("chown", fresh.clone(), e.into())))?;
        }
        fs::set_permissions(&fresh, fs::Permissions::from_mode(meta.mode & 0o7777))
            .ctx("chmod", &fresh)
            .map_err(StoreError::from)?;
        Ok(())
    })();
    if let Err(e) = unpacked {
        let _ = remove_tree(&fresh);
        return Err(e);
    }
    let Some(_lock) = lock_unused(&dir)? else {
        let _ = remove_tree(&fresh);
        return Err(MountError::InUse(meta.id.clone()));
    };
    let old = dir.with_extension(format!("old-{}", unique_suffix()));
    let had_old = dir.exists();
    if had_old {
        fs::rename(&dir, &old).ctx("rename", &dir).map_err(StoreError::from)?;
    }
    if let Err(e) = fs::rename(&fresh, &dir) {
        if had_old {
            let _ = fs::rename(&old, &dir);
        }
        let _ = remove_tree(&fresh);
        return Err(StoreError::from(IoError::new("rename", fresh, e)).into());
    }
    if had_old {
        let _ = remove_tree(&old);
    }
    let id = meta.id.clone();
    update_meta(store, &id, meta.clone(), |m| {
        let used_by = std::mem::take(&mut m.used_by);
        *m = MountMeta { used_by, exported: None, ..meta };
    })?;
    Ok(())
}

/// A digest of what `stat` says about every entry under `dir` (names,
/// types, sizes, modes, owners, modification and change times, inode
/// numbers, link targets): it changes whenever the content may have, and
/// costs a directory walk, not a read of every file.
pub fn fingerprint(dir: &Path) -> Result<Digest> {
    let mut hasher = Hasher::new();
    let walk = walkdir::WalkDir::new(dir).sort_by_file_name();
    for entry in walk {
        let entry = entry.map_err(|e| {
            let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| dir.to_path_buf());
            StoreError::from(IoError::new("walk", path, e.into()))
        })?;
        let meta = entry
            .metadata()
            .map_err(|e| StoreError::from(IoError::new("stat", entry.path().to_path_buf(), e.into())))?;
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        hasher.update(rel.as_os_str().as_encoded_bytes());
        let fields = [
            meta.mode() as i64,
            meta.uid() as i64,
            meta.gid() as i64,
            meta.size() as i64,
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
            meta.ino() as i64,
            meta.rdev() as i64,
        ];
        for field in fields {
            hasher.update(&field.to_le_bytes());
        }
        if entry.path_is_symlink()
            && let Ok(target) = fs::read_link(entry.path())
        {
            hasher.update(target.as_os_str().as_encoded_bytes());
        }
        hasher.update(b"\0");
    }
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, written: i64) -> MountMeta {
        MountMeta {
            id: id.into(),
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            mode: 0o755,
            written,
            last_used: written,
            used_by: Vec::new(),
            exported: None,
        }
    }

    #[test]
    fn a_mount_round_trips_through_its_tar_and_a_bad_tar_changes_nothing() {
        let (_tmp, store) = crate::store::temp_store();
        let dir = mount_dir(&store, "pip");
        fs::create_dir_all(dir.join("wheels")).unwrap();
        fs::write(dir.join("wheels/a.whl"), b"wheel").unwrap();
        note_use(&store, "pip", (0, 0, 0o755), true, "app:v1").unwrap();
        let mut tar = Vec::new();
        let digest = write_tar(&store, &dir, &mut tar).unwrap();
        assert_eq!(digest, Digest::of(&tar));
        let mut again = Vec::new();
        assert_eq!(write_tar(&store, &dir, &mut again).unwrap(), digest, "deterministic");

        let (_tmp2, other) = crate::store::temp_store();
        install(&other, meta("pip", 7), &mut &tar[..]).unwrap();
        assert_eq!(fs::read(mount_dir(&other, "pip").join("wheels/a.whl")).unwrap(), b"wheel");
        assert_eq!(read_meta(&other, "pip").unwrap().unwrap().written, 7);

        let truncated = &tar[..tar.len() / 2];
        assert!(install(&other, meta("pip", 9), &mut &truncated[..700]).is_err());
        assert_eq!(fs::read(mount_dir(&other, "pip").join("wheels/a.whl")).unwrap(), b"wheel");
        assert_eq!(read_meta(&other, "pip").unwrap().unwrap().written, 7);
        let names: Vec<String> = fs::read_dir(mounts_dir(&other))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".new-") || n.contains(".old-")), "{names:?}");
    }

    #[test]
    fn the_fingerprint_follows_changes_and_only_them() {
        let (_tmp, store) = crate::store::temp_store();
        let dir = mount_dir(&store, "x");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f"), b"1").unwrap();
        let first = fingerprint(&dir).unwrap();
        assert_eq!(fingerprint(&dir).unwrap(), first);
        fs::write(dir.join("f"), b"2").unwrap();
        assert_ne!(fingerprint(&dir).unwrap(), first);
    }

    #[test]
    fn a_mount_in_use_is_neither_replaced_nor_removed() {
        let (_tmp, store) = crate::store::temp_store();
        let dir = mount_dir(&store, "busy");
        fs::create_dir_all(&dir).unwrap();
        note_use(&store, "busy", (0, 0, 0o755), true, "").unwrap();
        let held = open_lock(&dir).unwrap();
        held.lock_shared().unwrap();
        let entry = find(&store, "busy").unwrap().unwrap();
        assert!(matches!(remove(&entry), Err(MountError::InUse(_))));
        drop(held);
        remove(&entry).unwrap();
        assert!(list(&store).unwrap().is_empty());
    }
}
