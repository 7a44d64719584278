//! Mount targets inside the root: made where missing, through the root's
//! own symlinks clamped to it, and recorded so the parent can keep them
//! out of the layer.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::super::placeholders::changed_times;
use super::super::rootpath::resolve_in_root;
use super::super::spec::{ExtraMount, SandboxSpec, SandboxStatus, TouchedParent};
use super::{SetupResult, ctx};

/// Creates every mount target that does not exist yet, remembering which
/// ones we made so the parent can keep them out of the layer.
pub(super) fn prepare_mountpoints(
    spec: &SandboxSpec,
    root: &Path,
    status: &mut SandboxStatus,
) -> SetupResult<()> {
    let mut dirs: Vec<&str> = vec!["/proc", "/dev", "/sys"];
    let mut files: Vec<&str> = Vec::new();
    for (_, target) in &spec.etc_binds {
        files.push(target);
    }
    for m in &spec.mounts {
        match m {
            ExtraMount::Bind { source, target, .. } if !source.is_dir() => files.push(target),
            ExtraMount::Bind { target, .. }
            | ExtraMount::Tmpfs { target, .. }
            | ExtraMount::Layers { target, .. } => dirs.push(target),
        }
    }
    for d in dirs {
        ensure(root, d, true, status)?;
    }
    for f in files {
        ensure(root, f, false, status)?;
    }
    Ok(())
}

/// Makes `path` (inside `root`) exist as a directory or file, creating
/// missing parents, and records what was created.
pub(super) fn ensure(root: &Path, path: &str, dir: bool, status: &mut SandboxStatus) -> SetupResult<()> {
    let mut rel = PathBuf::new();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        rel.push(part);
        let rel_str = format!("/{}", rel.to_string_lossy());
        let host = ctx(resolve_in_root(root, &rel_str), || format!("resolve {rel_str}"))?;
        if fs::symlink_metadata(&host).is_ok() {
            continue;
        }
        let last = i + 1 == parts.len();
        let parent = host.parent().map(Path::to_path_buf);
        let parent_before = parent.as_deref().and_then(dir_times);
        if last && !dir {
            ctx(OpenOptions::new().write(true).create_new(true).mode(0o644).open(&host), || {
                format!("create {rel_str}")
            })?;
        } else {
            ctx(fs::create_dir(&host), || format!("create {rel_str}"))?;
            let _ = fs::set_permissions(&host, fs::Permissions::from_mode(0o755));
        }
        // Record where it really is: a symlinked parent may have moved it.
        let created = host.strip_prefix(root).unwrap_or(&host).to_string_lossy().into_owned();
        status.mountpoints_created.push(created);
        if let (Some(parent), Some(before)) = (parent, parent_before) {
            note_touched_parent(root, &parent, before, status);
        }
    }
    Ok(())
}

/// A directory's access and modification times, as (seconds, nanoseconds).
fn dir_times(path: &Path) -> Option<[(i64, i64); 2]> {
    let m = fs::symlink_metadata(path).ok()?;
    Some([(m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec())])
}

/// Remembers that a placeholder was made in `parent`: its times from
/// before the first one, and its modification time now. Only directories
/// that existed count; the ones we created go away whole.
fn note_touched_parent(root: &Path, parent: &Path, before: [(i64, i64); 2], status: &mut SandboxStatus) {
    let rel = parent.strip_prefix(root).unwrap_or(parent).to_string_lossy().into_owned();
    if status.mountpoints_created.contains(&rel) {
        return;
    }
    let Some((after_mtime, after_ctime)) = changed_times(parent) else { return };
    match status.parents_touched.iter_mut().find(|t| t.path == rel) {
        Some(known) => (known.after_mtime, known.after_ctime) = (after_mtime, after_ctime),
        None => status.parents_touched.push(TouchedParent { path: rel, before, after_mtime, after_ctime }),
    }
}
