//! The writer of a COPY-like step's upper directory: entries land where
//! Docker puts them, parents are copied up with their lower-layer metadata,
//! and owners, modes and times are set exactly. What it writes into, and
//! reads the merged view from, is an [`UpperTree`]: the real upper
//! directory, or a description of it (see [`super::virtual_upper`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rbuild_frontend::filemode::apply_symbolic;
use rbuild_frontend::graph::FileMode;

use super::CopyError;
use super::items::{SrcEntry, SrcItem};
use super::upper::{DiskUpper, NodeMeta, Stamp, UpperTree};
use crate::context::EntryKind;

/// Writes files into an upper tree as they should appear on top of the
/// parent layers.
pub struct Writer<'a, T: UpperTree = DiskUpper<'a>> {
    tree: T,
    /// Owner for new files and dirs; None keeps each entry's own.
    pub owner: Option<(u32, u32)>,
    /// Mode override for copied entries (`--chmod`).
    pub chmod: Option<FileMode>,
    resolved_dirs: HashMap<String, String>,
    /// Directories copied up from a lower layer, with the mtime they had
    /// there: writing into them changes it, and [`Writer::finish`] puts it
    /// back, so the layer depends only on the inputs, not on when it ran.
    copied_up: Vec<(String, Stamp)>,
    _upper: std::marker::PhantomData<&'a Path>,
}

impl<'a> Writer<'a> {
    /// A writer onto the upper directory `upper` over `lowers` (the parent
    /// layers' snapshot dirs, top first).
    pub fn new(upper: &'a Path, lowers: Vec<PathBuf>, xattrs: rbuild_layer::OverlayXattrs) -> Writer<'a> {
        Writer::onto(DiskUpper::new(upper, lowers, xattrs))
    }
}

impl<'a, T: UpperTree> Writer<'a, T> {
    /// A writer onto `tree`.
    pub fn onto(tree: T) -> Writer<'a, T> {
        Writer {
            tree,
            owner: None,
            chmod: None,
            resolved_dirs: HashMap::new(),
            copied_up: Vec::new(),
            _upper: std::marker::PhantomData,
        }
    }

    /// Restores the mtimes of copied-up directories, deepest first.
    pub fn finish(mut self) -> Result<T, CopyError> {
        self.tree.settle()?;
        for (path, mtime) in self.copied_up.iter().rev() {
            if self.tree.upper_kind(path) == Some(true) {
                self.tree.set_mtime(path, *mtime)?;
            }
        }
        Ok(self.tree)
    }

    /// Resolves `path` through the merged view: every symlink followed
    /// within the root, missing components kept as they are.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<String, CopyError> {
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
            let found = self.tree.lookup(&candidate)?;
            match found {
                Some(f) if f.is_symlink() && (follow_last || !is_last) => {
                    hops += 1;
                    if hops > 40 {
                        return Err(CopyError::Invalid(format!(
                            "too many levels of symbolic links in {path}"
                        )));
                    }
                    let target = f.link_target.unwrap_or_default();
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
            match self.tree.upper_kind(&cur) {
                Some(true) => continue,
                Some(false) => self.tree.remove(&cur)?,
                None => {}
            }
            let lower = self.tree.lookup(&cur)?.filter(|f| f.is_dir());
            match lower {
                // Copy-up: the directory keeps the lower layer's metadata.
                Some(f) => {
                    let meta = NodeMeta { mode: f.mode, uid: f.uid, gid: f.gid, mtime: f.mtime };
                    self.tree.create_dir(&cur, meta)?;
                    self.copied_up.push((cur.clone(), f.mtime));
                }
                None => {
                    let (uid, gid) = self.owner.unwrap_or((0, 0));
                    let meta = NodeMeta { mode: self.created_dir_mode(), uid, gid, mtime: Stamp::Now };
                    self.tree.create_dir(&cur, meta)?;
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
        Ok(self.tree.lookup(&resolved)?.is_some_and(|f| f.is_dir()))
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
            self.tree.set_mtime(&resolved, Stamp::At(e.mtime))?;
            // The copied directory's time wins over the one a copy-up keeps.
            self.copied_up.retain(|(p, _)| *p != resolved);
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
        let (uid, gid) = self.owner.unwrap_or((e.uid, e.gid));
        let mode = apply_chmod(self.chmod.as_ref(), e.mode, e.kind == EntryKind::Dir);
        let meta = NodeMeta { mode, uid, gid, mtime: Stamp::At(e.mtime) };
        match e.kind {
            EntryKind::Dir => {
                if self.tree.lookup(&resolved)?.is_some_and(|f| f.is_dir()) {
                    // A directory that exists keeps its owner and mode (only
                    // its time follows the source, set by write_item):
                    // the copy merges into it.
                    self.ensure_dir(&resolved)?;
                } else {
                    self.tree.remove(&resolved)?;
                    let meta = if e.rel.is_empty() {
                        // The destination of a directory's contents is made
                        // like a missing parent: root's (or --chown's), 0755
                        // (or an octal --chmod), whoever owned the source.
                        let (uid, gid) = self.owner.unwrap_or((0, 0));
                        NodeMeta { mode: self.created_dir_mode(), uid, gid, ..meta }
                    } else {
                        meta
                    };
                    self.tree.create_dir(&resolved, meta)?;
                }
                self.resolved_dirs.insert(target.to_string(), resolved);
            }
            EntryKind::File => {
                self.tree.remove(&resolved)?;
                if e.stored {
                    self.tree.create_file_from_stored(&resolved, &e.host_path, meta)?;
                } else {
                    let source = (!e.host_path.as_os_str().is_empty()).then_some(e.host_path.as_path());
                    self.tree.create_file(&resolved, source, meta)?;
                }
            }
            EntryKind::Symlink => {
                self.tree.remove(&resolved)?;
                let link = e.link_target.clone().unwrap_or_default();
                self.tree.create_symlink(&resolved, &link, meta)?;
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
        let resolved = format!("{}/{name}", parent.trim_end_matches('/'));
        self.tree.remove(&resolved)?;
        let (uid, gid) = self.owner.unwrap_or((0, 0));
        let mode = apply_chmod(self.chmod.as_ref(), 0o100000 | mode, false);
        self.tree.write_file(&resolved, content, NodeMeta { mode, uid, gid, mtime: Stamp::Now })
    }
}

/// Copies `items` to `dest` with BuildKit's rules: into a directory when
/// `dest_is_dir` (or when `dest` already is one), else to `dest` itself.
/// No items (wildcards that matched nothing) write nothing.
pub fn copy_items<T: UpperTree>(
    w: &mut Writer<'_, T>,
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

/// `--chmod` applied to one entry's mode (type bits kept).
pub fn apply_chmod(chmod: Option<&FileMode>, mode: u32, is_dir: bool) -> u32 {
    match chmod {
        None => mode,
        Some(FileMode::Octal(m)) => (mode & !0o7777) | m,
        Some(FileMode::Symbolic(spec)) => apply_symbolic(spec, mode, is_dir),
    }
}
