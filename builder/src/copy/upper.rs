//! Where a COPY-like step's writer puts its changes, behind one seam: the
//! [`UpperTree`] a [`super::Writer`] writes into and looks the merged view
//! up through. [`DiskUpper`] is the real upper directory; the in-memory
//! [`super::virtual_upper::VirtualUpper`] records the same operations so the
//! layer they would make can be hashed before anything is written.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat};
use rbuild_layer::{Found, LayerStack, OverlayXattrs};
use rbuild_oci::timefmt::Timestamp;

use super::link_batch::{LinkBatch, PendingLink};
use super::prior::{self, PriorLayer};
use super::{CopyError, io_err};

pub use super::node::{NodeMeta, Stamp};

/// A node of the merged view (the upper on top of the parent layers), as
/// the writer needs it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// `st_mode`, type bits included.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Stamp,
    /// A symlink's target.
    pub link_target: Option<String>,
}

impl NodeInfo {
    /// What a lookup in snapshot dirs found (a symlink's target read).
    pub fn of_found(found: &Found) -> Result<NodeInfo, CopyError> {
        let m = &found.metadata;
        let link_target = if m.file_type().is_symlink() {
            let target = fs::read_link(&found.real_path).map_err(io_err("read link", &found.real_path))?;
            Some(target.to_string_lossy().into_owned())
        } else {
            None
        };
        Ok(NodeInfo {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            mtime: Stamp::At((m.mtime(), m.mtime_nsec())),
            link_target,
        })
    }

    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
}

/// The operations a writer performs on its upper tree. Paths are resolved
/// absolute paths of the merged view (`/app/src`); the root is never
/// created, removed or changed.
pub trait UpperTree {
    /// What the upper itself holds at `path`: `Some(true)` a directory,
    /// `Some(false)` anything else, `None` nothing.
    fn upper_kind(&self, path: &str) -> Option<bool>;
    /// The merged view at `path` (every earlier component a directory or
    /// missing; a final symlink is not followed).
    fn lookup(&self, path: &str) -> Result<Option<NodeInfo>, CopyError>;
    /// Removes whatever the upper holds at `path`, a whole tree for a
    /// directory; nothing there is fine.
    fn remove(&mut self, path: &str) -> Result<(), CopyError>;
    fn create_dir(&mut self, path: &str, meta: NodeMeta) -> Result<(), CopyError>;
    /// A regular file with `source`'s content, or empty without one.
    fn create_file(&mut self, path: &str, source: Option<&Path>, meta: NodeMeta) -> Result<(), CopyError>;
    /// A regular file with the content of `source`, a file of a stored
    /// layer (which nothing ever writes to); a copy unless the tree can do
    /// better.
    fn create_file_from_stored(
        &mut self,
        path: &str,
        source: &Path,
        meta: NodeMeta,
    ) -> Result<(), CopyError> {
        self.create_file(path, Some(source), meta)
    }
    /// A regular file with `content` (a heredoc).
    fn write_file(&mut self, path: &str, content: &[u8], meta: NodeMeta) -> Result<(), CopyError>;
    fn create_symlink(&mut self, path: &str, target: &str, meta: NodeMeta) -> Result<(), CopyError>;
    fn set_mtime(&mut self, path: &str, mtime: Stamp) -> Result<(), CopyError>;
    /// Finishes whatever the tree put off: after this the upper holds
    /// everything written.
    fn settle(&mut self) -> Result<(), CopyError> {
        Ok(())
    }
}

/// The step's real upper directory on top of its parent layers' snapshots.
///
/// A file the step writes is a hard link to a stored layer's file when
/// nothing could tell the two apart: the stored file has the bytes, owner,
/// mode and time the copy would get and carries no xattrs, its layer is
/// not one of this step's parents (so no root built on the new layer shows
/// both names), and no other file of this step links to it (so the new
/// layer holds no hard link of its own, which its tar would record as
/// one). Two kinds of stored files are offered: the source files of a
/// `COPY --from` (same bytes by construction), and the files of the layer
/// the same step made in an earlier build (bytes compared), so an edit
/// rebuild writes only the files that changed. It saves a copy of the
/// content: on this kind of machine fresh page cache costs about 3 ms per
/// MB (`docs/dev/performance.md`). Layers are never written to (RUN steps
/// see them through overlayfs, which copies a file up before changing it;
/// the copying snapshotter copies content), so a shared inode never
/// changes, and removing either layer leaves the other's name. What a RUN
/// step can tell is the link count `stat` shows.
pub struct DiskUpper<'a> {
    upper: &'a Path,
    /// The merged view: the upper, then the parent layers' snapshot dirs,
    /// top first.
    view: LayerStack,
    /// The parent layers' snapshot dirs.
    lowers: Vec<PathBuf>,
    /// Inodes (device, number) this step has linked to.
    linked: HashSet<(u64, u64)>,
    /// A layer whose identical files may be linked (see [`DiskUpper::reusing`]).
    prior: Option<PriorLayer>,
    /// Scratch space for comparing contents, kept between files.
    compare_buf: Vec<u8>,
    /// Links to the prior layer's files checked ahead, made together.
    batch: LinkBatch,
    /// What this step made in the upper (which starts empty): directories,
    /// and every path it created. A name never made below a directory the
    /// step made holds nothing to remove, which needs no `lstat`.
    made_dirs: HashSet<String>,
    made: HashSet<String>,
    /// Whether files may be links at all (`RBUILD_COPY_LINKS=0` copies
    /// every file, to measure what links save).
    may_link: bool,
}

impl<'a> DiskUpper<'a> {
    pub fn new(upper: &'a Path, lowers: Vec<PathBuf>, xattrs: OverlayXattrs) -> DiskUpper<'a> {
        let mut dirs = vec![upper.to_path_buf()];
        dirs.extend(lowers.iter().cloned());
        let may_link = std::env::var_os("RBUILD_COPY_LINKS").is_none_or(|v| v != "0");
        DiskUpper {
            upper,
            view: LayerStack::new(dirs, xattrs),
            lowers,
            linked: HashSet::new(),
            prior: None,
            compare_buf: Vec::new(),
            batch: LinkBatch::default(),
            made_dirs: HashSet::new(),
            made: HashSet::new(),
            may_link,
        }
    }

    /// Also offers the files of `layer` (see [`super::prior`]): a file
    /// written at a path where that layer holds the same bytes with the
    /// same owner, mode and time becomes a link to it. Given the layer the
    /// same step made in an earlier build, a rebuild after editing a few
    /// files of a large `COPY` writes only those.
    pub fn reusing(mut self, layer: Option<PriorLayer>) -> Self {
        self.prior = layer;
        self
    }

    /// Links `dest` to the stored file `stored` when the link is
    /// indistinguishable from the file the step would write (see the
    /// type's doc) and, with `same_bytes_as`, that file holds the same
    /// bytes; false when it did not.
    fn link_to_stored(
        &mut self,
        stored: &Path,
        dest: &Path,
        meta: NodeMeta,
        same_bytes_as: Option<&Path>,
    ) -> bool {
        if !self.may_link || self.lowers.iter().any(|l| stored.starts_with(l)) {
            return false;
        }
        let Some(m) = prior::shareable(stored, meta) else { return false };
        if self.linked.contains(&(m.dev(), m.ino())) {
            return false;
        }
        if let Some(other) = same_bytes_as {
            let mut buf = std::mem::take(&mut self.compare_buf);
            let same = prior::same_bytes(other, stored, m.len(), &mut buf);
            self.compare_buf = buf;
            if !same {
                return false;
            }
        }
        self.link((m.dev(), m.ino()), stored, dest)
    }

    /// Links `dest` to `stored` (inode `inode`) unless this step links to
    /// that inode already. Any failure (another filesystem, a link limit,
    /// protected_hardlinks for an unprivileged store) just means a copy.
    fn link(&mut self, inode: (u64, u64), stored: &Path, dest: &Path) -> bool {
        if self.linked.contains(&inode) || fs::hard_link(stored, dest).is_err() {
            return false;
        }
        self.linked.insert(inode);
        true
    }

    /// Shares the prior layer's file for `path` when it was checked ahead
    /// against this very source and metadata, else checks it now.
    fn link_prior(&mut self, path: &str, dest: &Path, source: &Path, meta: NodeMeta) -> bool {
        if !self.may_link {
            return false;
        }
        let Some(prior) = self.prior.as_mut() else { return false };
        if let Some(c) = prior.take_checked(path)
            && c.source == source
            && c.meta == meta
        {
            if !self.linked.insert(c.inode) {
                return false;
            }
            self.batch.defer(path, PendingLink { stored: c.path, dest: dest.to_path_buf(), meta });
            return true;
        }
        let Some(candidate) = prior.file(path) else { return false };
        self.link_to_stored(&candidate, dest, meta, Some(source))
    }

    /// Makes the batched links before anything at or below `path` is
    /// looked at (all of them without a path); a link that cannot be made
    /// becomes a copy.
    fn settle_links(&self, path: Option<&str>) -> Result<(), CopyError> {
        if path.is_some_and(|p| !self.batch.covers(p)) {
            return Ok(());
        }
        for l in self.batch.flush() {
            fs::copy(&l.stored, &l.dest).map_err(io_err("copy", &l.stored))?;
            set_meta(&l.dest, l.meta, false)?;
        }
        Ok(())
    }

    fn path(&self, resolved: &str) -> PathBuf {
        self.upper.join(resolved.trim_start_matches('/'))
    }
}

impl UpperTree for DiskUpper<'_> {
    fn upper_kind(&self, path: &str) -> Option<bool> {
        if self.batch.covers(path) {
            // Pending links are regular files.
            return self
                .settle_links(Some(path))
                .ok()
                .and_then(|()| fs::symlink_metadata(self.path(path)).ok().map(|m| m.is_dir()));
        }
        fs::symlink_metadata(self.path(path)).ok().map(|m| m.is_dir())
    }

    fn lookup(&self, path: &str) -> Result<Option<NodeInfo>, CopyError> {
        self.settle_links(Some(path))?;
        self.view.lookup(path, false)?.map(|f| NodeInfo::of_found(&f)).transpose()
    }

    fn remove(&mut self, path: &str) -> Result<(), CopyError> {
        if self.made_dirs.contains(parent_of(path)) && !self.made.contains(path) {
            return Ok(());
        }
        self.made.remove(path);
        self.settle_links(Some(path))?;
        let p = self.path(path);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                // Pending links may be below it.
                self.settle_links(None)?;
                rbuild_cache::store::remove_tree(&p).map_err(io_err("replace", &p))
            }
            Ok(_) => fs::remove_file(&p).map_err(io_err("replace", &p)),
            Err(_) => Ok(()),
        }
    }

    fn create_dir(&mut self, path: &str, meta: NodeMeta) -> Result<(), CopyError> {
        let p = self.path(path);
        fs::create_dir(&p).map_err(io_err("create directory", &p))?;
        self.made.insert(path.to_string());
        self.made_dirs.insert(path.to_string());
        set_meta(&p, meta, false)
    }

    fn create_file(&mut self, path: &str, source: Option<&Path>, meta: NodeMeta) -> Result<(), CopyError> {
        let p = self.path(path);
        self.made.insert(path.to_string());
        if let Some(source) = source
            && self.link_prior(path, &p, source, meta)
        {
            return Ok(());
        }
        match source {
            Some(source) => fs::copy(source, &p).map(|_| ()).map_err(io_err("copy", source))?,
            None => fs::File::create(&p).map(|_| ()).map_err(io_err("create", &p))?,
        }
        set_meta(&p, meta, false)
    }

    fn create_file_from_stored(
        &mut self,
        path: &str,
        source: &Path,
        meta: NodeMeta,
    ) -> Result<(), CopyError> {
        if self.link_to_stored(source, &self.path(path), meta, None) {
            self.made.insert(path.to_string());
            return Ok(());
        }
        self.create_file(path, Some(source), meta)
    }

    fn write_file(&mut self, path: &str, content: &[u8], meta: NodeMeta) -> Result<(), CopyError> {
        let p = self.path(path);
        self.made.insert(path.to_string());
        fs::write(&p, content).map_err(io_err("write", &p))?;
        set_meta(&p, meta, false)
    }

    fn create_symlink(&mut self, path: &str, target: &str, meta: NodeMeta) -> Result<(), CopyError> {
        let p = self.path(path);
        self.made.insert(path.to_string());
        symlink(target, &p).map_err(io_err("create symlink", &p))?;
        set_meta(&p, meta, true)
    }

    fn set_mtime(&mut self, path: &str, mtime: Stamp) -> Result<(), CopyError> {
        // A directory's time is set after its contents: links change it.
        self.settle_links(None)?;
        set_times(&self.path(path), mtime, false)
    }

    fn settle(&mut self) -> Result<(), CopyError> {
        self.settle_links(None)
    }
}

/// The directory part of a resolved path (`/a/b` -> `/a`, `/a` -> `/`).
pub(super) fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The time new entries get, as (seconds, nanoseconds).
fn now() -> (i64, i64) {
    let t = Timestamp::now();
    (t.secs, i64::from(t.nanos))
}

fn set_times(p: &Path, mtime: Stamp, is_link: bool) -> Result<(), CopyError> {
    let (secs, nanos) = match mtime {
        Stamp::At(t) => t,
        Stamp::Now => now(),
    };
    let ts = TimeSpec::new(secs, nanos);
    let flag = if is_link { UtimensatFlags::NoFollowSymlink } else { UtimensatFlags::FollowSymlink };
    utimensat(nix::fcntl::AT_FDCWD, p, &ts, &ts, flag).map_err(|e| io_err("set times of", p)(e.into()))
}

/// Sets owner, mode (not for symlinks) and mtime of a new entry.
fn set_meta(p: &Path, meta: NodeMeta, is_link: bool) -> Result<(), CopyError> {
    fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("set owner of", p)(e.into()))?;
    if !is_link {
        // chown clears setuid/setgid bits, so the mode goes on after it.
        fs::set_permissions(p, fs::Permissions::from_mode(meta.mode & 0o7777))
            .map_err(io_err("set mode of", p))?;
    }
    set_times(p, meta.mtime, is_link)
}
