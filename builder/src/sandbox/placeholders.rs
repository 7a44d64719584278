//! What the sandbox helper made only to mount on (`/proc`, `/etc/hosts`,
//! a `RUN --mount` target), taken back out of the step's tree once the step
//! is over, so that it never reaches the layer: the placeholders themselves,
//! and the change their creation made to the directories holding them.
//!
//! Without the second part every RUN layer carried `etc/` (copied up to
//! hold `/etc/hosts` and `/etc/resolv.conf`) with the step's time, so
//! `RUN true` was never an empty layer and two equal steps made equal
//! layers only within the same second. Docker and BuildKit leave a
//! directory out of the layer when the step did not change it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use super::spec::{SandboxStatus, TouchedParent};
use crate::snapshot::{RootMount, StepRoot};

/// A file's modification and change times, each as (seconds, nanoseconds).
fn changed_times(path: &Path) -> Option<((i64, i64), (i64, i64))> {
    let m = fs::symlink_metadata(path).ok()?;
    Some(((m.mtime(), m.mtime_nsec()), (m.ctime(), m.ctime_nsec())))
}

/// Notes `parent`, an existing directory of the tree at `root`, before a
/// placeholder is made in it (once: the first time counts).
pub(crate) fn note_before(touched: &mut Vec<TouchedParent>, root: &Path, parent: &Path) {
    let rel = parent.strip_prefix(root).unwrap_or(parent).to_string_lossy().into_owned();
    if touched.iter().any(|t| t.path == rel) {
        return;
    }
    let Ok(m) = fs::symlink_metadata(parent) else { return };
    let mtime = (m.mtime(), m.mtime_nsec());
    touched.push(TouchedParent {
        path: rel,
        before: [(m.atime(), m.atime_nsec()), mtime],
        after_mtime: mtime,
        after_ctime: (m.ctime(), m.ctime_nsec()),
    });
}

/// Takes the times of the noted directories once every placeholder is
/// made: what the step found, to tell its own changes by.
pub(crate) fn note_after(touched: &mut [TouchedParent], root: &Path) {
    for t in touched {
        if let Some((mtime, ctime)) = changed_times(&root.join(&t.path)) {
            (t.after_mtime, t.after_ctime) = (mtime, ctime);
        }
    }
}

/// Removes the placeholders of a finished step and gives the directories
/// they were made in the times the step saw last.
pub(super) fn remove(root: &StepRoot, status: &SandboxStatus) {
    let tree = root.written_tree();
    let plan = plan(tree, &status.parents_touched);
    remove_created(tree, &status.mountpoints_created);
    put_back(root, plan);
}

/// What to do with each noted directory once its placeholders are gone;
/// decided before anything is removed, which moves both times. A
/// directory the step added to or removed from keeps the times the step
/// left it with; one it only changed the mode, owner or xattrs of (its
/// change time) keeps its old times and stays in the layer.
pub(crate) fn plan(tree: &Path, touched: &[TouchedParent]) -> Vec<Restore> {
    touched
        .iter()
        .filter_map(|t| {
            let dir = tree.join(&t.path);
            let m = fs::symlink_metadata(&dir).ok()?;
            let (mtime, ctime) = ((m.mtime(), m.mtime_nsec()), (m.ctime(), m.ctime_nsec()));
            let times = if mtime == t.after_mtime { t.before } else { [(m.atime(), m.atime_nsec()), mtime] };
            let unchanged = mtime == t.after_mtime && ctime == t.after_ctime && !t.path.is_empty();
            Some(Restore { rel: t.path.clone(), dir, times, unchanged })
        })
        .collect()
}

/// Carries out a [`plan`] once the placeholders are gone.
pub(crate) fn put_back(root: &StepRoot, plan: Vec<Restore>) {
    // In an overlay upper an unchanged directory is only a copy-up of the
    // lower one (same mode, owner and xattrs, as its change time says);
    // with nothing in it, the lower one shows through unchanged. A
    // prepared root is the whole tree: its directories stay, and its
    // baseline is told that their new change time is not the step's.
    let upper = matches!(root.mount, Some(RootMount::Overlay { .. }));
    for r in plan {
        if upper && r.unchanged && is_empty_dir(&r.dir) && fs::remove_dir(&r.dir).is_ok() {
            continue;
        }
        if let (true, Some(RootMount::Prepared { baseline, .. })) = (r.unchanged, &root.mount) {
            baseline.note_placeholder_parent(Path::new(&r.rel));
        }
        let [(a_s, a_ns), (m_s, m_ns)] = r.times;
        let _ = utimensat(
            nix::fcntl::AT_FDCWD,
            &r.dir,
            &TimeSpec::new(a_s as _, a_ns as _),
            &TimeSpec::new(m_s as _, m_ns as _),
            UtimensatFlags::NoFollowSymlink,
        );
    }
}

/// A directory that held placeholders, and what to make of it once they
/// are gone.
pub(crate) struct Restore {
    /// Relative to the root.
    rel: String,
    dir: PathBuf,
    /// Access and modification times to put back.
    times: [(i64, i64); 2],
    /// The step changed nothing of it.
    unchanged: bool,
}

/// Removes the mount targets the helper created, deepest first, unless the
/// command put something of its own there.
fn remove_created(tree: &Path, created: &[String]) {
    for rel in created.iter().rev() {
        let p = tree.join(rel.trim_start_matches('/'));
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir(&p);
            }
            Ok(m) if m.is_file() && m.len() == 0 => {
                let _ = fs::remove_file(&p);
            }
            _ => {}
        }
    }
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}
