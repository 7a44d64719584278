//! Mount targets inside the root: made where missing, through the root's
//! own symlinks clamped to it, and recorded so the parent can keep them
//! out of the layer.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::super::placeholders::{note_after, note_before};
use super::super::rootpath::resolve_in_root;
use super::super::spec::{ExtraMount, SandboxSpec, SandboxStatus};
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
    note_after(&mut status.parents_touched, root);
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
        if let Some(parent) = host.parent() {
            let parent_rel = parent.strip_prefix(root).unwrap_or(parent).to_string_lossy();
            // Only directories that existed count; ours go away whole.
            if !status.mountpoints_created.iter().any(|c| *c == parent_rel) {
                note_before(&mut status.parents_touched, root, parent);
            }
        }
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
    }
    Ok(())
}
