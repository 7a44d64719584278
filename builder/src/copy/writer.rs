//! The writer of a COPY-like step's upper directory: entries land where
//! Docker puts them, parents are copied up with their lower-layer metadata,
//! and owners, modes and times are set exactly.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat};
use rbuild_frontend::filemode::apply_symbolic;
use rbuild_frontend::graph::FileMode;
use rbuild_layer::LayerStack;
use rbuild_oci::timefmt::Timestamp;

use super::items::{SrcEntry, SrcItem};
use super::{CopyError, io_err};
use crate::context::EntryKind;

/// Writes files into `upper` as they should appear on top of `lowers`.
pub struct Writer<'a> {
    upper: &'a Path,
    /// The parent layers' snapshot dirs, top first.
    lowers: Vec<PathBuf>,
    xattrs: rbuild_layer::OverlayXattrs,
    /// Owner for new files and dirs; None keeps each entry's own.
    pub owner: Option<(u32, u32)>,
    /// Mode override for copied entries (`--chmod`).
    pub chmod: Option<FileMode>,
    resolved_dirs: HashMap<String, String>,
    /// Directories copied up from a lower layer, with the mtime they had
    /// there: writing into them changes it, and [`Writer::finish`] puts it
    /// back, so the layer depends only on the inputs, not on when it ran.
    copied_up: Vec<(PathBuf, (i64, i64))>,
}

impl<'a> Writer<'a> {
    pub fn new(upper: &'a Path, lowers: Vec<PathBuf>, xattrs: rbuild_layer::OverlayXattrs) -> Writer<'a> {
        Writer {
            upper,
            lowers,
            xattrs,
            owner: None,
            chmod: None,
            resolved_dirs: HashMap::new(),
            copied_up: Vec::new(),
        }
    }

    /// Restores the mtimes of copied-up directories, deepest first.
    pub fn finish(self) -> Result<(), CopyError> {
        for (path, mtime) in self.copied_up.iter().rev() {
            if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                set_times(path, *mtime, false)?;
            }
        }
        Ok(())
    }

    /// The merged view: what we wrote so far on top of the parent layers.
    fn view(&self) -> LayerStack {
        let mut dirs = vec![self.upper.to_path_buf()];
        dirs.extend(self.lowers.iter().cloned());
        LayerStack::new(dirs, self.xattrs)
    }

    /// Resolves `path` through the merged view: every symlink followed
    /// within the root, missing components kept as they are.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<String, CopyError> {
        let view = self.view();
        let mut done: Vec<String> = Vec::new();
        let mut pending: Vec<String> =
            path.split('/').filter(|s| !s.is_empty()).rev().map(str::to_string).collect();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let candidate = format!(
                "/{}",
                done.iter().chain(std::iter::once(&part)).cloned().collect::<Vec<_>>().join("/")
            );
            let is_last = pending.is_empty();
            let found = view.lookup(&candidate, false)?;
            match found {
                Some(f) if f.metadata.file_type().is_symlink() && (follow_last || !is_last) => {
                    hops += 1;
                    if hops > 40 {
                        return Err(CopyError::Invalid(format!(
                            "too many levels of symbolic links in {path}"
                        )));
                    }
                    let target = fs::read_link(&f.real_path).map_err(io_err("read link", &f.real_path))?;
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    pending.extend(target.split('/').filter(|s| !s.is_empty()).rev().map(str::to_string));
                }
                _ => done.push(part),
            }
        }
        Ok(format!("/{}", done.join("/")))
    }

    fn upper_path(&self, resolved: &str) -> PathBuf {
        self.upper.join(resolved.trim_start_matches('/'))
    }

    /// Makes directory `path` exist in the merged view, creating it (and
    /// copying up its parents' metadata) in the upper dir. Returns its
    /// resolved path.
    pub fn ensure_dir(&mut self, path: &str) -> Result<String, CopyError> {
        if let Some(r) = self.resolved_dirs.get(path) {
            return Ok(r.clone());
        }
        let resolved = self.resolve(path, true)?;
        let mut cur = String::new();
        for part in resolved.split('/').filter(|s| !s.is_empty()) {
            cur = format!("{cur}/{part}");
            let up = self.upper_path(&cur);
            match fs::symlink_metadata(&up) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => fs::remove_file(&up).map_err(io_err("replace", &up))?,
                Err(_) => {}
            }
            let lower = self.view().lookup(&cur, false)?.filter(|f| f.metadata.is_dir());
            fs::create_dir(&up).map_err(io_err("create directory", &up))?;
            match lower {
                // Copy-up: the directory keeps the lower layer's metadata.
                Some(f) => {
                    let m = &f.metadata;
                    set_meta(&up, m.mode(), m.uid(), m.gid(), (m.mtime(), m.mtime_nsec()), false)?;
                    self.copied_up.push((up.clone(), (m.mtime(), m.mtime_nsec())));
                }
                None => {
                    let (uid, gid) = self.owner.unwrap_or((0, 0));
                    let now = now();
                    set_meta(&up, self.created_dir_mode(), uid, gid, now, false)?;
                }
            }
        }
        self.resolved_dirs.insert(path.to_string(), resolved.clone());
        Ok(resolved)
    }

    /// The mode of a directory the step creates on the way to a destination
    /// (or as the destination of a directory's contents): an octal
    /// `--chmod`, else 0755, as BuildKit creates them. A symbolic `--chmod`
    /// applies to copied entries only.
    fn created_dir_mode(&self) -> u32 {
        match &self.chmod {
            Some(FileMode::Octal(m)) => 0o40000 | (m & 0o777),
            _ => 0o40755,
        }
    }

    /// True when `path` is a directory in the merged view (symlinks followed).
    pub fn is_dir(&self, path: &str) -> Result<bool, CopyError> {
        let resolved = self.resolve(path, true)?;
        Ok(self.view().lookup(&resolved, false)?.is_some_and(|f| f.metadata.is_dir()))
    }

    /// Copies one item to `dest` (the item itself lands at `dest`; for a
    /// directory, its contents are merged into `dest`).
    pub fn write_item(&mut self, item: &SrcItem, dest: &str) -> Result<(), CopyError> {
        for e in &item.entries {
            let target = if e.rel.is_empty() {
                dest.to_string()
            } else {
                format!("{}/{}", dest.trim_end_matches('/'), e.rel)
            };
            self.write_entry(e, &target)?;
        }
        // Directory mtimes last: writing their contents changed them.
        for e in item.entries.iter().rev().filter(|e| e.kind == EntryKind::Dir) {
            let target = if e.rel.is_empty() {
                dest.to_string()
            } else {
                format!("{}/{}", dest.trim_end_matches('/'), e.rel)
            };
            let resolved = self.resolve(&target, true)?;
            let up = self.upper_path(&resolved);
            set_times(&up, e.mtime, false)?;
            // The copied directory's time wins over the one a copy-up keeps.
            self.copied_up.retain(|(p, _)| *p != up);
        }
        Ok(())
    }

    fn write_entry(&mut self, e: &SrcEntry, target: &str) -> Result<(), CopyError> {
        let (parent, name) = split_parent(target);
        if name.is_empty() {
            // The root directory itself: nothing to create.
            return Ok(());
        }
        let parent = self.ensure_dir(parent)?;
        let resolved = format!("{}/{name}", parent.trim_end_matches('/'));
        let up = self.upper_path(&resolved);
        let (uid, gid) = self.owner.unwrap_or((e.uid, e.gid));
        let mode = apply_chmod(self.chmod.as_ref(), e.mode, e.kind == EntryKind::Dir);
        match e.kind {
            EntryKind::Dir => {
                if self.view().lookup(&resolved, false)?.is_some_and(|f| f.metadata.is_dir()) {
                    // A directory that exists keeps its owner and mode (only
                    // its time follows the source, set by write_item):
                    // the copy merges into it.
                    self.ensure_dir(&resolved)?;
                } else {
                    remove_existing(&up)?;
                    fs::create_dir(&up).map_err(io_err("create directory", &up))?;
                    if e.rel.is_empty() {
                        // The destination of a directory's contents is made
                        // like a missing parent: root's (or --chown's), 0755
                        // (or an octal --chmod), whoever owned the source.
                        let (uid, gid) = self.owner.unwrap_or((0, 0));
                        set_meta(&up, self.created_dir_mode(), uid, gid, e.mtime, false)?;
                    } else {
                        set_meta(&up, mode, uid, gid, e.mtime, false)?;
                    }
                }
                self.resolved_dirs.insert(target.to_string(), resolved);
            }
            EntryKind::File => {
                remove_existing(&up)?;
                if e.host_path.as_os_str().is_empty() {
                    fs::File::create(&up).map_err(io_err("create", &up))?;
                } else {
                    fs::copy(&e.host_path, &up).map_err(io_err("copy", &e.host_path))?;
                }
                set_meta(&up, mode, uid, gid, e.mtime, false)?;
            }
            EntryKind::Symlink => {
                remove_existing(&up)?;
                let link = e.link_target.clone().unwrap_or_default();
                symlink(&link, &up).map_err(io_err("create symlink", &up))?;
                set_meta(&up, mode, uid, gid, e.mtime, true)?;
            }
            EntryKind::Other => {
                // Sockets, fifos and devices are not copied (Docker skips them too).
            }
        }
        Ok(())
    }

    /// Writes an inline file (a COPY heredoc).
    pub fn write_inline(&mut self, dest: &str, content: &[u8], mode: u32) -> Result<(), CopyError> {
        let (parent, name) = split_parent(dest);
        let parent = self.ensure_dir(parent)?;
        let up = self.upper_path(&format!("{}/{name}", parent.trim_end_matches('/')));
        remove_existing(&up)?;
        fs::write(&up, content).map_err(io_err("write", &up))?;
        let (uid, gid) = self.owner.unwrap_or((0, 0));
        let mode = apply_chmod(self.chmod.as_ref(), 0o100000 | mode, false);
        set_meta(&up, mode, uid, gid, now(), false)
    }
}

/// Copies `items` to `dest` with BuildKit's rules: into a directory when
/// `dest_is_dir` (or when `dest` already is one), else to `dest` itself.
/// No items (wildcards that matched nothing) write nothing.
pub fn copy_items(
    w: &mut Writer<'_>,
    items: &[SrcItem],
    dest: &str,
    dest_is_dir: bool,
) -> Result<(), CopyError> {
    if dest_is_dir && !items.is_empty() {
        w.ensure_dir(dest)?;
    }
    // Item by item, as BuildKit copies a wildcard's matches: a file goes
    // into `dest` when that is a directory by then (a trailing `/`, or made
    // so by an earlier match), else onto it; a directory's contents merge
    // into it.
    for item in items {
        let into_dir = dest_is_dir || (!item.is_dir() && w.is_dir(dest)?);
        let target = if into_dir && !item.is_dir() {
            format!("{}/{}", dest.trim_end_matches('/'), item.name)
        } else {
            dest.trim_end_matches('/').to_string()
        };
        let target = if target.is_empty() { "/".to_string() } else { target };
        w.write_item(item, &target)?;
    }
    Ok(())
}

fn split_parent(path: &str) -> (&str, &str) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => ("/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => ("/", trimmed),
    }
}

fn remove_existing(p: &Path) -> Result<(), CopyError> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => rbuild_cache::store::remove_tree(p).map_err(io_err("replace", p)),
        Ok(_) => fs::remove_file(p).map_err(io_err("replace", p)),
        Err(_) => Ok(()),
    }
}

/// The time new entries get, as (seconds, nanoseconds).
fn now() -> (i64, i64) {
    let t = Timestamp::now();
    (t.secs, i64::from(t.nanos))
}

fn set_times(p: &Path, mtime: (i64, i64), is_link: bool) -> Result<(), CopyError> {
    let ts = TimeSpec::new(mtime.0, mtime.1);
    let flag = if is_link { UtimensatFlags::NoFollowSymlink } else { UtimensatFlags::FollowSymlink };
    utimensat(nix::fcntl::AT_FDCWD, p, &ts, &ts, flag).map_err(|e| io_err("set times of", p)(e.into()))
}

/// Sets owner, mode (not for symlinks) and mtime of a new entry.
fn set_meta(
    p: &Path,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    is_link: bool,
) -> Result<(), CopyError> {
    fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("set owner of", p)(e.into()))?;
    if !is_link {
        // chown clears setuid/setgid bits, so the mode goes on after it.
        fs::set_permissions(p, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(io_err("set mode of", p))?;
    }
    set_times(p, mtime, is_link)
}

/// `--chmod` applied to one entry's mode (type bits kept).
pub fn apply_chmod(chmod: Option<&FileMode>, mode: u32, is_dir: bool) -> u32 {
    match chmod {
        None => mode,
        Some(FileMode::Octal(m)) => (mode & !0o7777) | m,
        Some(FileMode::Symbolic(spec)) => apply_symbolic(spec, mode, is_dir),
    }
}
