//! The context walk: every entry of the context directory that
//! `.dockerignore` keeps, with one lstat each, on several threads.
//!
//! A no-op rebuild of a large context costs about this walk and nothing
//! else, so it is built for that: the ignore rules are asked with the name
//! alone before any stat (readdir's file type says whether an excluded
//! entry is a directory worth descending into), each stat goes through
//! the open directory (`fstatat`, no path lookup from the root), and
//! directories are shared out to up to [`MAX_WORKERS`] threads.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Condvar, Mutex};

use super::{ContextError, Entry, EntryKind, io_err};
use crate::dockerignore::DockerIgnore;

/// More threads than this only contend for the same directory inodes.
const MAX_WORKERS: usize = 4;

/// Directories waiting to be read, shared by the workers.
struct Queue {
    pending: Vec<String>,
    /// Workers reading a directory right now (they may add more).
    busy: usize,
    failed: Option<ContextError>,
}

/// Walks `root` (already canonical) and returns its entries by path.
pub fn walk(root: &Path, ignore: &DockerIgnore) -> Result<BTreeMap<String, Entry>, ContextError> {
    // While there is one directory at a time to read (a small context, or
    // the chain of directories above a large one), read it on this thread:
    // a thread costs more than a small directory.
    let mut found = Vec::new();
    let mut pending = vec![String::new()];
    while let [single] = pending.as_slice() {
        let dir = single.clone();
        let mut subdirs = Vec::new();
        read_dir(root, &dir, ignore, &mut found, &mut subdirs)?;
        pending = subdirs;
    }
    if !pending.is_empty() {
        found.extend(walk_in_parallel(root, ignore, pending)?);
    }
    // Sorted input builds the map in one pass.
    found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(found.into_iter().collect())
}

/// Reads `pending` and everything below on up to [`MAX_WORKERS`] threads.
fn walk_in_parallel(
    root: &Path,
    ignore: &DockerIgnore,
    pending: Vec<String>,
) -> Result<Vec<(String, Entry)>, ContextError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_WORKERS);
    let queue = Mutex::new(Queue { pending, busy: 0, failed: None });
    let wake = Condvar::new();
    let found: Vec<(String, Entry)> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..workers).map(|_| scope.spawn(|| work(root, ignore, &queue, &wake))).collect();
        handles.into_iter().flat_map(|h| h.join().expect("context walk worker panicked")).collect()
    });
    if let Some(error) = queue.into_inner().expect("walk queue").failed {
        return Err(error);
    }
    Ok(found)
}

/// One worker: takes directories until none is left and no one is busy.
fn work(root: &Path, ignore: &DockerIgnore, queue: &Mutex<Queue>, wake: &Condvar) -> Vec<(String, Entry)> {
    let mut found = Vec::new();
    let mut subdirs = Vec::new();
    loop {
        let dir = {
            let mut state = queue.lock().expect("walk queue");
            loop {
                if state.failed.is_some() {
                    return found;
                }
                if let Some(dir) = state.pending.pop() {
                    state.busy += 1;
                    break dir;
                }
                if state.busy == 0 {
                    return found;
                }
                state = wake.wait(state).expect("walk queue");
            }
        };
        let result = read_dir(root, &dir, ignore, &mut found, &mut subdirs);
        let mut state = queue.lock().expect("walk queue");
        state.busy -= 1;
        match result {
            Ok(()) => state.pending.append(&mut subdirs),
            Err(error) => {
                state.failed.get_or_insert(error);
            }
        }
        drop(state);
        wake.notify_all();
    }
}

/// Reads one directory: its kept entries go to `found`, the directories
/// to descend into to `subdirs`.
fn read_dir(
    root: &Path,
    rel: &str,
    ignore: &DockerIgnore,
    found: &mut Vec<(String, Entry)>,
    subdirs: &mut Vec<String>,
) -> Result<(), ContextError> {
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    for item in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
        let item = item.map_err(io_err("read directory", &dir))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        let child_rel = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        if ignore.is_excluded_clean(&child_rel) {
            // An exception (`!dir/keep`) may re-include something below.
            let is_dir = item.file_type().map_err(io_err("stat", &item.path()))?.is_dir();
            if is_dir && !ignore.can_skip_dir(&child_rel) {
                subdirs.push(child_rel);
            }
            continue;
        }
        let meta = item.metadata().map_err(io_err("stat", &item.path()))?;
        let kind = EntryKind::of(meta.file_type());
        let link_target = if kind == EntryKind::Symlink {
            let path = item.path();
            Some(fs::read_link(&path).map_err(io_err("read link", &path))?.to_string_lossy().into_owned())
        } else {
            None
        };
        if kind == EntryKind::Dir {
            subdirs.push(child_rel.clone());
        }
        found.push((
            child_rel,
            Entry {
                kind,
                mode: meta.mode(),
                size: meta.len(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                uid: meta.uid(),
                gid: meta.gid(),
                ino: meta.ino(),
                ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
                link_target,
            },
        ));
    }
    Ok(())
}
