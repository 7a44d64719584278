//! The store on disk: its versioned layout under one root, the per-process
//! scratch area, and the locks that let several rbuild processes share it.
//!
//! ```text
//! <root>/VERSION               layout version ("rbuild-store 1")
//! <root>/blobs/sha256/<hex>    configs, manifests, compressed layer blobs
//! <root>/layers/<hex16>/       one per layer: layer.tar, fs/ (overlay snapshot), meta.json
//! <root>/images/<hex>.json     one per image, named by image ID
//! <root>/refs.json             tag -> image ID
//! <root>/cache/<hex>.json      build cache index: step key -> result
//! <root>/state/                small private state (stat caches)
//! <root>/state/copy-memo/<hex> COPY description key -> diffID of the layer it made
//! <root>/tmp/<owner>/          scratch of one live process, removed when it ends
//! ```
//!
//! Everything under `layers/`, `blobs/`, `images/` and `cache/` appears by a
//! single `rename` once complete, so a killed process leaves at most a
//! scratch directory, which the next process to open the store removes.

mod atomic;
mod blobs;
mod copy_memo;
mod images;
mod layer_sizes;
mod layers;
mod platforms;
mod refs;
mod spread;

pub use atomic::{SyncBatch, is_already_there, sync_dir, unique_suffix, write_file};
pub use copy_memo::CopyKey;
pub use images::{ImageRecord, ResolveError};
pub use layers::{KnownTar, LayerMeta, LayerRef, sha256_of_file};
pub use platforms::PlatformMap;
pub use refs::RefMap;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::{IoContext, IoError};

const LAYOUT_VERSION: &str = "rbuild-store 1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("store at {0} has an unknown layout ({1:?}); it was made by another version of rbuild")]
    Layout(PathBuf, String),
    #[error("{what} {digest} is not in the store")]
    Missing { what: &'static str, digest: Digest },
    #[error("corrupt {what} {path}: {message}")]
    Corrupt { what: &'static str, path: PathBuf, message: String },
    /// A JSON file of the store (or a config handed to it) that does not parse.
    #[error("corrupt {what} {path}: {source}")]
    CorruptJson {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Layer(#[from] rbuild_layer::LayerError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether this failed because the disk (or the quota) is full.
    pub fn is_storage_full(&self) -> bool {
        rbuild_oci::io_error::is_storage_full(self)
    }
}

/// An open store. Cheap to share by reference between threads.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    scratch: Scratch,
    /// The whiteout/opaque xattr flavour of this store's snapshots here
    /// (see [`Store::overlay_xattrs`]).
    xattrs: rbuild_layer::OverlayXattrs,
}

/// This process's scratch directory. It holds a shared lock on its own lock
/// file for as long as the process lives, which is how other processes tell
/// a live scratch directory from one left by a killed process.
#[derive(Debug)]
struct Scratch {
    dir: PathBuf,
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, and removes scratch
    /// directories of processes that have died.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        // Layers hold whatever images bring, setuid files and device nodes
        // included: a new store is closed to other users of the machine
        // (Docker's /var/lib/docker is 0710 for the same reason).
        if fs::symlink_metadata(&root).is_err() {
            fs::create_dir_all(&root).ctx("create store root", &root)?;
            fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).ctx("protect store root", &root)?;
        }
        let root = root.canonicalize().ctx("resolve store root", &root)?;
        let version_file = root.join("VERSION");
        match fs::read_to_string(&version_file) {
            Ok(v) if v.trim() == LAYOUT_VERSION => {}
            Ok(v) => return Err(StoreError::Layout(root, v.trim().to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_file(&version_file, format!("{LAYOUT_VERSION}\n").as_bytes())
                    .ctx("write", &version_file)?;
            }
            Err(e) => return Err(IoError::new("read", version_file, e).into()),
        }
        for sub in ["blobs/sha256", "layers", "images", "cache", "state", "tmp"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).ctx("create", &p)?;
        }
        // The same for the content of a store made before that (or inside
        // a root the user opened up): best effort, a store we may only
        // read still opens.
        for sub in ["blobs", "layers", "state", "tmp"] {
            let p = root.join(sub);
            if fs::metadata(&p).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
                let _ = fs::set_permissions(&p, fs::Permissions::from_mode(0o700));
            }
        }
        let tmp = root.join("tmp");
        spread::spread_subdirectories(&tmp);
        remove_dead_scratch(&tmp);
        let scratch = Scratch::create(&tmp)?;
        let xattrs = layers::snapshot_xattrs(&root);
        Ok(Store { root, scratch, xattrs })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh, empty directory in this process's scratch area.
    pub fn temp_dir(&self, label: &str) -> Result<PathBuf> {
        let p = self.scratch.dir.join(format!("{label}-{}", unique_suffix()));
        fs::create_dir(&p).ctx("create temp dir", &p)?;
        Ok(p)
    }

    /// A path for a new file in this process's scratch area (not created).
    pub fn temp_path(&self, label: &str) -> PathBuf {
        self.scratch.dir.join(format!("{label}-{}", unique_suffix()))
    }

    /// Path of a small private state file (e.g. a context's stat cache).
    pub fn state_path(&self, name: &str) -> PathBuf {
        self.root.join("state").join(name)
    }

    /// Takes the store-wide lock in shared mode for as long as the guard
    /// lives. Builds hold it shared; garbage collection takes it exclusive,
    /// so it never deletes what a running build may still use.
    pub fn gc_guard(&self, exclusive: bool) -> Result<File> {
        self.lock_file("gc.lock", exclusive)
    }

    /// Serialises read-modify-write of small index files (refs).
    pub(crate) fn lock_file(&self, name: &str, exclusive: bool) -> Result<File> {
        let path = self.root.join(name);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("open lock", &path)?;
        if exclusive { f.lock() } else { f.lock_shared() }.ctx("lock", &path)?;
        Ok(f)
    }
}

impl Scratch {
    fn create(tmp: &Path) -> Result<Scratch> {
        let dir = tmp.join(format!("p{}-{}", std::process::id(), nonce()));
        // Lock first, then create the directory: another process cleaning
        // up must never see our directory without our lock held.
        let lock_path = dir.with_extension("lock");
        let lock = loop {
            let lock = File::create(&lock_path).ctx("create", &lock_path)?;
            lock.lock_shared().ctx("lock", &lock_path)?;
            // A cleaner may have removed the file between create and lock
            // (it looked unlocked): then our lock guards nothing; retry.
            let locked_ino = lock.metadata().ctx("stat", &lock_path)?.ino();
            if fs::metadata(&lock_path).is_ok_and(|m| m.ino() == locked_ino) {
                break lock;
            }
        };
        fs::create_dir(&dir).ctx("create scratch dir", &dir)?;
        // Each step's scratch dir lands in a block group of its own.
        spread::spread_subdirectories(&dir);
        LIVE_SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).push(dir.clone());
        Ok(Scratch { dir, _lock: lock })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        LIVE_SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).retain(|d| d != &self.dir);
        let _ = remove_tree(&self.dir);
        let _ = fs::remove_file(self.dir.with_extension("lock"));
    }
}

/// A store of its own in a temporary directory, for tests; the directory
/// goes when the guard drops.
#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("store")).expect("open store");
    (dir, store)
}

/// Scratch dirs of stores open in this process, so an interrupted process
/// can clean up on its way out (destructors do not run on `exit`).
static LIVE_SCRATCH: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// The scratch dir of an open store that holds `path`, if any: temp files
/// made there are removed with the scratch dir by the next process to open
/// the store if this one dies, where a temp file beside `path` would stay.
pub(crate) fn live_scratch_for(path: &Path) -> Option<PathBuf> {
    let dirs = LIVE_SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    // A scratch dir is ROOT/tmp/pPID-NONCE.
    dirs.iter()
        .find(|d| d.parent().and_then(Path::parent).is_some_and(|root| path.starts_with(root)))
        .cloned()
}

/// Removes this process's scratch dirs. For a signal handler about to exit;
/// anything it misses is removed by the next process that opens the store.
pub fn remove_own_scratch() {
    let dirs = LIVE_SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for dir in dirs {
        let _ = remove_tree(&dir);
        let _ = fs::remove_file(dir.with_extension("lock"));
    }
}

/// A value unlikely to repeat across processes with the same pid.
fn nonce() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 40)
}

/// Removes scratch dirs whose owner no longer holds its lock.
fn remove_dead_scratch(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else { return };
    // Owners lock `<dir>.lock` before creating `<dir>` and remove `<dir>`
    // before the lock file, so: a lock nobody holds marks a dead owner, and
    // a directory without a lock file belongs to an owner that died while
    // cleaning up.
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "lock") {
            let Ok(f) = File::open(&path) else { continue };
            if f.try_lock().is_ok() {
                let _ = remove_tree(&path.with_extension(""));
                let _ = fs::remove_file(&path);
            }
        } else if !path.with_extension("lock").exists() {
            let _ = remove_tree(&path);
        }
    }
}

/// Removes a directory tree, first making read-only dirs writable (overlay
/// work dirs are created with mode 000).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(m) if !m.is_dir() => return fs::remove_file(path),
        Ok(_) => {}
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(_) => {
            use std::os::unix::fs::PermissionsExt;
            for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
                if entry.file_type().is_dir() {
                    let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700));
                }
            }
            fs::remove_dir_all(path)
        }
    }
}
