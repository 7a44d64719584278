//! Crash-safe file writes: write a temp file in the same directory, fsync
//! it, rename it over the target, fsync the directory. A reader sees the old
//! content or the new one, never a mix.
//!
//! A build writes dozens of small records (cache index, explanations, layer
//! metadata), and an fsync each costs a journal commit, milliseconds on
//! many disks: most of a small cold build. During a [`SyncBatch`] the
//! writes stay atomic (temp file and rename) but their fsyncs wait for the
//! batch's end, where they are issued together on several threads (the
//! filesystem then commits them in few journal transactions) before the
//! build reports success. A process killed mid-build still sees old or new
//! content; only a power loss before the batch ends can lose the records
//! of that build, which the next build recomputes.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Paths whose fsync waits for the end of the running batch (None: no batch).
static DEFERRED: Mutex<Option<BTreeSet<PathBuf>>> = Mutex::new(None);

/// Defers this process's store fsyncs until [`SyncBatch::finish`] (or
/// drop, which syncs too but cannot report an error).
#[derive(Debug)]
pub struct SyncBatch {
    finished: bool,
}

impl SyncBatch {
    pub fn begin() -> SyncBatch {
        let mut deferred = DEFERRED.lock().unwrap_or_else(|e| e.into_inner());
        deferred.get_or_insert_with(BTreeSet::new);
        SyncBatch { finished: false }
    }

    /// Makes every write of the batch durable: each file, then each
    /// directory a rename happened in.
    pub fn finish(mut self) -> io::Result<()> {
        self.finished = true;
        sync_deferred()
    }
}

impl Drop for SyncBatch {
    fn drop(&mut self) {
        if !self.finished {
            let _ = sync_deferred();
        }
    }
}

fn sync_deferred() -> io::Result<()> {
    let paths = DEFERRED.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = paths.into_iter().partition(|p| p.is_dir());
    sync_all_parallel(&files)?;
    sync_all_parallel(&dirs)
}

/// fsyncs `paths` from a few threads at once; a path gone since (removed
/// by a later step of the same build) needs no sync.
fn sync_all_parallel(paths: &[PathBuf]) -> io::Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let workers = paths.len().min(8);
    let chunk = paths.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    for path in part {
                        match File::open(path) {
                            Ok(f) => f.sync_all()?,
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("sync worker panicked"))
    })
}

/// Queues `path` for the running batch; false when no batch runs.
fn defer(path: &Path) -> bool {
    let mut deferred = DEFERRED.lock().unwrap_or_else(|e| e.into_inner());
    match deferred.as_mut() {
        Some(set) => {
            set.insert(path.to_path_buf());
            true
        }
        None => false,
    }
}

/// Atomically replaces `path` with `bytes`. Inside a store open in this
/// process the temp file is made in its scratch dir, so a process killed
/// midway leaves nothing beside `path` (the next start removes the scratch
/// dir); elsewhere, or where the scratch dir is on another filesystem, it is
/// made beside `path`.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp_name = format!(".{name}.tmp.{}.{}", std::process::id(), unique_suffix());
    if let Some(scratch) = super::live_scratch_for(path) {
        match write_and_rename(&scratch.join(&tmp_name), path, dir, bytes) {
            Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {}
            done => return done,
        }
    }
    write_and_rename(&dir.join(&tmp_name), path, dir, bytes)
}

fn write_and_rename(tmp: &Path, path: &Path, dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
        f.write_all(bytes)?;
        if defer(path) {
            fs::rename(tmp, path)?;
            defer(dir);
            return Ok(());
        }
        f.sync_all()?;
        fs::rename(tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// Makes a rename or create in `dir` durable (at the end of a running
/// [`SyncBatch`]).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    if defer(dir) {
        return Ok(());
    }
    File::open(dir)?.sync_all()
}

/// A number that differs between calls in one process.
pub fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// True for the errors `rename` gives when the target directory already
/// exists and is not empty: another process committed the same thing first.
pub fn is_already_there(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST))
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn a_batch_defers_fsyncs_to_its_end_and_writes_stay_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        let batch = SyncBatch::begin();
        write_file(&path, b"one").unwrap();
        write_file(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let pending = DEFERRED.lock().unwrap().clone().unwrap();
        assert!(pending.contains(&path) && pending.contains(dir.path()), "{pending:?}");
        // A file removed before the end needs no sync and is no error.
        let gone = dir.path().join("gone");
        write_file(&gone, b"x").unwrap();
        fs::remove_file(&gone).unwrap();
        batch.finish().unwrap();
        assert!(DEFERRED.lock().unwrap().is_none(), "the batch ended");
        // Outside a batch nothing is queued.
        write_file(&path, b"three").unwrap();
        assert!(DEFERRED.lock().unwrap().is_none());
        assert_eq!(fs::read(&path).unwrap(), b"three");
    }
}
