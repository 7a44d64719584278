//! Creating files, directories, links and device nodes under a destination
//! directory without ever following a symlink, whatever names we are given.
//!
//! Every operation is relative to a directory file descriptor. Parents are
//! opened one component at a time from the destination's own descriptor
//! with `O_DIRECTORY | O_NOFOLLOW`, so a symlink (or a file) standing where
//! a parent directory should be is an error, never a way out; the final
//! component is then created with `openat(O_CREAT | O_EXCL | O_NOFOLLOW)`,
//! `mkdirat`, `symlinkat`, `linkat` (without `AT_SYMLINK_FOLLOW`) or
//! `mknodat`, and its metadata set with `fchown`/`fchmod`/`futimens` on the
//! new file or the `AT_SYMLINK_NOFOLLOW` forms. Callers hand in names that
//! are already split into components with no `..` in them.
//!
//! Directory modes and times are applied last, children before parents:
//! writing into a directory changes its mtime, and a read-only directory
//! would stop a non-root caller from filling it.

use rbuild_oci::io_error::IoContext;
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, makedev, mkdirat,
    mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use xattr::FileExt;

use super::error::{LayerError, display_bytes};
use super::node::{Xattrs, keep_in_image};
use super::overlay::{OPAQUE_YES, OverlayXattrs};

/// How created nodes get their owners and overlay markers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TreeOptions {
    /// Set owners from the entries (needs root); otherwise everything is
    /// owned by the caller.
    pub chown: bool,
    /// Namespace of the whiteout and opaque xattrs.
    pub prefix: OverlayXattrs,
}

/// The metadata a created node receives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeAttrs<'a> {
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub mtime_nanos: u32,
    pub xattrs: &'a Xattrs,
}

impl<'a> NodeAttrs<'a> {
    /// The attributes of an existing node, to make its like.
    pub(crate) fn of(meta: &std::fs::Metadata, xattrs: &'a Xattrs) -> NodeAttrs<'a> {
        NodeAttrs {
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: meta.mtime(),
            mtime_nanos: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
            xattrs,
        }
    }
}

/// Kinds of node made with `mknodat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpecialKind {
    CharDevice,
    BlockDevice,
    Fifo,
}

/// What `open_dir` should do about a missing directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// Create it with mode 0755, as Docker does for parents a tar omits.
    Create,
    /// Report it as an error.
    Fail,
}

/// Decisions that depend on who we run as and what we were asked to do,
/// passed by value so helpers need no borrow of the whole tree.
#[derive(Debug, Clone, Copy)]
struct Policy {
    chown: bool,
    /// Root of the host (not just root in a user namespace).
    host_root: bool,
    prefix: OverlayXattrs,
}

pub(crate) struct SafeTree {
    root_path: PathBuf,
    cursor: DirCursor,
    policy: Policy,
    deferred_dirs: Vec<DeferredDir>,
    /// Directories this tree created whiteouts in.
    dirs_with_whiteouts: HashSet<Vec<Vec<u8>>>,
    /// Whether to try `mknod` for whiteouts at all. Always true outside
    /// tests, which turn it off to exercise the fallback on kernels that
    /// let anyone create whiteout devices.
    mknod_whiteouts: bool,
}

/// Mode and time of a directory, applied by [`SafeTree::finish`].
struct DeferredDir {
    components: Vec<Vec<u8>>,
    mode: u32,
    mtime: i64,
    mtime_nanos: u32,
}

impl SafeTree {
    /// Opens (creating it if needed) the destination directory. `dest`
    /// itself is trusted: it may be reached through symlinks.
    pub(crate) fn open(dest: &Path, options: TreeOptions) -> Result<SafeTree, LayerError> {
        std::fs::create_dir_all(dest).ctx("cannot create directory", dest)?;
        let root = openat(nix::fcntl::AT_FDCWD, dest, dir_flags(), Mode::empty())
            .map(File::from)
            .map_err(|e| LayerError::io("cannot open directory", dest, e.into()))?;
        Ok(SafeTree {
            root_path: dest.to_path_buf(),
            cursor: DirCursor { root, chain: Vec::new() },
            policy: Policy {
                chown: options.chown,
                host_root: super::overlay::has_host_root(),
                prefix: options.prefix,
            },
            deferred_dirs: Vec::new(),
            dirs_with_whiteouts: HashSet::new(),
            mknod_whiteouts: true,
        })
    }

    /// Creates (or keeps, if one is already there) a directory. An empty
    /// `components` is the destination itself, which only gets metadata.
    pub(crate) fn make_dir(
        &mut self,
        components: &[Vec<u8>],
        attrs: &NodeAttrs<'_>,
        entry: &[u8],
    ) -> Result<(), LayerError> {
        let policy = self.policy;
        match components.split_last() {
            None => {
                let root = &self.cursor.root;
                set_owner_fd(root, attrs, policy, entry)?;
                set_xattrs_fd(root, attrs.xattrs, policy, entry)?;
            }
            Some((name, parents)) => {
                let parent = self.cursor.open_dir(parents, Missing::Create, entry)?;
                let kept_existing = clear_slot(parent, name, true, entry)?;
                if !kept_existing {
                    mkdirat(parent, name.as_slice(), Mode::from_bits_truncate(0o700))
                        .map_err(|e| LayerError::apply(entry, "create directory", e.into()))?;
                }
                let dir =
                    open_subdir(parent, name).map_err(|e| LayerError::apply(entry, "open directory", e))?;
                set_owner_fd(&dir, attrs, policy, entry)?;
                set_xattrs_fd(&dir, attrs.xattrs, policy, entry)?;
            }
        }
        self.deferred_dirs.push(DeferredDir {
            components: components.to_vec(),
            mode: attrs.mode,
            mtime: attrs.mtime,
            mtime_nanos: attrs.mtime_nanos,
        });
        Ok(())
    }

    /// Creates a regular file (replacing whatever is there) and lets
    /// `write_content` fill it; returns what that reports as written.
    pub(crate) fn make_file(
        &mut self,
        components: &[Vec<u8>],
        attrs: &NodeAttrs<'_>,
        entry: &[u8],
        write_content: impl FnOnce(&mut File) -> Result<u64, LayerError>,
    ) -> Result<u64, LayerError> {
        let policy = self.policy;
        let (name, parents) = split_name(components, entry)?;
        let parent = self.cursor.open_dir(parents, Missing::Create, entry)?;
        clear_slot(parent, name, false, entry)?;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut file = openat(parent, name.as_slice(), flags, Mode::from_bits_truncate(0o600))
            .map(File::from)
            .map_err(|e| LayerError::apply(entry, "create file", e.into()))?;
        let written = write_content(&mut file)?;
        // Order matters: chown clears setuid/setgid and file capabilities,
        // so owner first, then mode, then xattrs (security.capability).
        set_owner_fd(&file, attrs, policy, entry)?;
        fchmod(&file, Mode::from_bits_truncate(attrs.mode))
            .map_err(|e| LayerError::apply(entry, "set mode", e.into()))?;
        set_xattrs_fd(&file, attrs.xattrs, policy, entry)?;
        let time = timespec(attrs);
        futimens(&file, &time, &time).map_err(|e| LayerError::apply(entry, "set times", e.into()))?;
        Ok(written)
    }

    /// Creates a symlink. The target is stored as given and never resolved.
    pub(crate) fn make_symlink(
        &mut self,
        components: &[Vec<u8>],
        target: &[u8],
        attrs: &NodeAttrs<'_>,
        entry: &[u8],
    ) -> Result<(), LayerError> {
        let policy = self.policy;
        let (name, parents) = split_name(components, entry)?;
        let parent = self.cursor.open_dir(parents, Missing::Create, entry)?;
        clear_slot(parent, name, false, entry)?;
        symlinkat(target, parent, name.as_slice())
            .map_err(|e| LayerError::apply(entry, "create symlink", e.into()))?;
        set_owner_at(parent, name, attrs, policy, entry)?;
        set_xattrs_at(parent, name, attrs.xattrs, policy, entry)?;
        set_times_at(parent, name, attrs, entry)
    }

    /// Creates a hard link at `components` to the existing `target`. The
    /// target's parents are opened with the same no-follow walk, and
    /// `linkat` without `AT_SYMLINK_FOLLOW` links a symlink itself, never
    /// what it points to.
    pub(crate) fn make_hardlink(
        &mut self,
        components: &[Vec<u8>],
        target: &[Vec<u8>],
        entry: &[u8],
    ) -> Result<(), LayerError> {
        let (name, parents) = split_name(components, entry)?;
        let (target_name, target_parents) = split_name(target, entry)?;
        let target_dir = self.cursor.open_uncached(target_parents, entry)?;
        let parent = self.cursor.open_dir(parents, Missing::Create, entry)?;
        clear_slot(parent, name, false, entry)?;
        linkat(&target_dir, target_name.as_slice(), parent, name.as_slice(), AtFlags::empty())
            .map_err(|e| LayerError::apply(entry, "create hard link", e.into()))
    }

    /// Moves the node `from_name` of the open directory `from_dir` (a tree
    /// this process owns) to `components`, replacing whatever is there.
    /// The node keeps its inode, so hard links between moved names stay.
    pub(crate) fn adopt(
        &mut self,
        components: &[Vec<u8>],
        from_dir: &File,
        from_name: &[u8],
        entry: &[u8],
    ) -> Result<(), LayerError> {
        let (name, parents) = split_name(components, entry)?;
        let parent = self.cursor.open_dir(parents, Missing::Create, entry)?;
        clear_slot(parent, name, false, entry)?;
        nix::fcntl::renameat(from_dir, from_name, parent, name.as_slice())
            .map_err(|e| LayerError::apply(entry, "move into the upper directory", e.into()))
    }

    /// Creates a device node or fifo.
    pub(crate) fn make_special(
        &mut self,
        components: &[Vec<u8>],
        kind: SpecialKind,
        (major, minor): (u64, u64),
        attrs: &NodeAttrs<'_>,
        entry: &[u8],
    ) -> Result<(), LayerError> {
        let policy = self.policy;
        let (name, parents) = split_name(components, entry)?;
        let parent = self.cursor.open_dir(parents, Missing::Create, entry)?;
        clear_slot(parent, name, false, entry)?;
        let (flag, dev) = match kind {
            SpecialKind::CharDevice => (SFlag::S_IFCHR, makedev(major, minor)),
            SpecialKind::BlockDevice => (SFlag::S_IFBLK, makedev(major, minor)),
            SpecialKind::Fifo => (SFlag::S_IFIFO, 0),
        };
        mknodat(parent, name.as_slice(), flag, Mode::empty(), dev)
            .map_err(|e| LayerError::apply(entry, "create device node or fifo", e.into()))?;
        set_owner_at(parent, name, attrs, policy, entry)?;
        // chmod follows symlinks, but this name is the node mknodat just
        // made inside a directory we hold open; nothing else writes here.
        fchmodat(parent, name.as_slice(), Mode::from_bits_truncate(attrs.mode), FchmodatFlags::FollowSymlink)
            .map_err(|e| LayerError::apply(entry, "set mode", e.into()))?;
        set_xattrs_at(parent, name, attrs.xattrs, policy, entry)?;
        set_times_at(parent, name, attrs, entry)
    }

    /// Records the deletion of `components` as an overlay whiteout: a
    /// character device 0/0. Without the right to `mknod` and with
    /// `user.overlay.` xattrs (rootless), falls back to the other form
    /// overlayfs reads (kernel 6.7+): an empty file with the `whiteout`
    /// xattr, in a directory marked as holding such files.
    ///
    /// Inside an opaque directory a whiteout is redundant (nothing below
    /// shows through) and worse than useless: the kernel lists a lower
    /// opaque directory as it is, whiteouts included. None is made there.
    pub(crate) fn make_whiteout(
        &mut self,
        components: &[Vec<u8>],
        mtime: i64,
        mtime_nanos: u32,
        entry: &[u8],
    ) -> Result<(), LayerError> {
        let policy = self.policy;
        let (name, parents) = split_name(components, entry)?;
        let parent = self.cursor.open_dir(parents, Missing::Create, entry)?;
        clear_slot(parent, name, false, entry)?;
        if is_opaque(parent, policy.prefix).map_err(|e| LayerError::apply(entry, "read opaque xattr", e))? {
            return Ok(());
        }
        let no_xattrs = Xattrs::new();
        let attrs = NodeAttrs { mode: 0, uid: 0, gid: 0, mtime, mtime_nanos, xattrs: &no_xattrs };
        let device = if self.mknod_whiteouts {
            mknodat(parent, name.as_slice(), SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        } else {
            Err(Errno::EPERM)
        };
        match device {
            Ok(()) => set_times_at(parent, name, &attrs, entry)?,
            Err(Errno::EPERM) if policy.prefix == OverlayXattrs::User => {
                make_xattr_whiteout(parent, name, &attrs, policy.prefix, entry)?;
            }
            Err(e) => return Err(LayerError::apply(entry, "create whiteout device", e.into())),
        }
        self.dirs_with_whiteouts.insert(parents.to_vec());
        Ok(())
    }

    /// Marks a directory (created if missing) opaque, and removes the
    /// whiteouts made in it before the marker came (see `make_whiteout`).
    pub(crate) fn mark_opaque(&mut self, components: &[Vec<u8>], entry: &[u8]) -> Result<(), LayerError> {
        let prefix = self.policy.prefix;
        let dir = self.cursor.open_dir(components, Missing::Create, entry)?;
        dir.set_xattr(prefix.opaque(), OPAQUE_YES)
            .map_err(|e| LayerError::apply(entry, "mark directory opaque", e))?;
        if self.dirs_with_whiteouts.remove(components) {
            remove_whiteouts(dir, prefix)
                .map_err(|e| LayerError::apply(entry, "remove redundant whiteouts", e))?;
        }
        Ok(())
    }

    /// Removes whatever is at `components` (a directory with everything
    /// below it); nothing there, or no directory on the way, is fine.
    pub(crate) fn remove(&mut self, components: &[Vec<u8>], entry: &[u8]) -> Result<(), LayerError> {
        let (name, parents) = split_name(components, entry)?;
        let Some(parent) =
            self.cursor.open_if_present(parents).map_err(|e| LayerError::apply(entry, "open parent", e))?
        else {
            return Ok(());
        };
        clear_slot(parent, name, false, entry).map(|_| ())
    }

    /// Removes the image xattrs of the directory at `components` that
    /// `keep` does not list (`make_dir` on an existing directory only adds).
    pub(crate) fn drop_xattrs_except(
        &mut self,
        components: &[Vec<u8>],
        keep: &Xattrs,
        entry: &[u8],
    ) -> Result<(), LayerError> {
        let dir = self.cursor.open_dir(components, Missing::Fail, entry)?;
        let names = match dir.list_xattr() {
            Ok(names) => names,
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(()),
            Err(e) => return Err(LayerError::apply(entry, "list xattrs", e)),
        };
        for name in names {
            let bytes = name.as_bytes();
            if keep_in_image(bytes) && !keep.iter().any(|(kept, _)| kept == bytes) {
                dir.remove_xattr(&name).map_err(|e| LayerError::apply(entry, "remove xattr", e))?;
            }
        }
        Ok(())
    }

    /// Applies directory modes and times, the latest entry for a directory
    /// winning, children before parents. Directories replaced by something
    /// else since are skipped.
    pub(crate) fn finish(mut self) -> Result<(), LayerError> {
        let deferred = std::mem::take(&mut self.deferred_dirs);
        let mut done: HashSet<&[Vec<u8>]> = HashSet::new();
        for dir in deferred.iter().rev() {
            if !done.insert(dir.components.as_slice()) {
                continue;
            }
            let shown = join_components(&dir.components);
            let Some(file) = self.cursor.open_if_present(&dir.components).map_err(|e| {
                LayerError::io("cannot open directory", self.root_path.join(OsStr::from_bytes(&shown)), e)
            })?
            else {
                continue;
            };
            fchmod(file, Mode::from_bits_truncate(dir.mode))
                .map_err(|e| LayerError::apply(&shown, "set directory mode", e.into()))?;
            let time = TimeSpec::new(dir.mtime, i64::from(dir.mtime_nanos));
            futimens(file, &time, &time)
                .map_err(|e| LayerError::apply(&shown, "set directory times", e.into()))?;
        }
        Ok(())
    }
}

/// Directories opened for the previous operation, kept open because tar
/// entries come grouped by directory: the next entry usually needs the same
/// parents, and reusing them saves a walk from the root per entry.
struct DirCursor {
    root: File,
    /// Open directories along one path from the root, outermost first.
    chain: Vec<(Vec<u8>, File)>,
}

impl DirCursor {
    /// Opens the directory at `components` below the root.
    fn open_dir(
        &mut self,
        components: &[Vec<u8>],
        missing: Missing,
        entry: &[u8],
    ) -> Result<&File, LayerError> {
        let common =
            self.chain.iter().zip(components).take_while(|((open, _), wanted)| open == *wanted).count();
        self.chain.truncate(common);
        for (depth, component) in components.iter().enumerate().skip(common) {
            let parent = self.chain.last().map_or(&self.root, |(_, dir)| dir);
            let dir = open_or_create_subdir(parent, component, missing)
                .map_err(|e| parent_error(entry, &components[..=depth], e))?;
            self.chain.push((component.clone(), dir));
        }
        Ok(self.chain.last().map_or(&self.root, |(_, dir)| dir))
    }

    /// Opens the directory at `components` without touching the cache, for
    /// when two directories are needed at once.
    fn open_uncached(&self, components: &[Vec<u8>], entry: &[u8]) -> Result<File, LayerError> {
        let mut current =
            self.root.try_clone().map_err(|e| LayerError::apply(entry, "duplicate descriptor", e))?;
        for (depth, component) in components.iter().enumerate() {
            current = open_subdir(&current, component)
                .map_err(|e| parent_error(entry, &components[..=depth], e))?;
        }
        Ok(current)
    }

    /// Like `open_dir`, but a path that is gone or no longer a directory all
    /// the way down gives `None`.
    fn open_if_present(&mut self, components: &[Vec<u8>]) -> io::Result<Option<&File>> {
        match self.open_dir(components, Missing::Fail, b"") {
            Ok(dir) => Ok(Some(dir)),
            Err(LayerError::UnsafeEntry { .. }) => Ok(None),
            Err(LayerError::Apply { source, .. })
                if matches!(source.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) =>
            {
                Ok(None)
            }
            Err(LayerError::Apply { source, .. }) => Err(source),
            Err(other) => Err(io::Error::other(other.to_string())),
        }
    }
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// Opens a subdirectory, refusing to follow a symlink in its place.
pub(crate) fn open_subdir(parent: &File, name: &[u8]) -> io::Result<File> {
    Ok(File::from(openat(parent, name, dir_flags() | OFlag::O_NOFOLLOW, Mode::empty())?))
}

fn open_or_create_subdir(parent: &File, name: &[u8], missing: Missing) -> io::Result<File> {
    match open_subdir(parent, name) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && missing == Missing::Create => {
            match mkdirat(parent, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
            let dir = open_subdir(parent, name)?;
            // mkdir's mode went through the umask; implied parents get
            // exactly 0755 wherever we run.
            fchmod(&dir, Mode::from_bits_truncate(0o755))?;
            Ok(dir)
        }
        other => other,
    }
}

/// Turns a failure to open a parent into an error that says which one.
fn parent_error(entry: &[u8], path: &[Vec<u8>], e: io::Error) -> LayerError {
    match e.raw_os_error() {
        // O_NOFOLLOW on a symlink gives ELOOP; O_DIRECTORY on a file ENOTDIR.
        Some(libc::ELOOP | libc::ENOTDIR) => LayerError::unsafe_entry(
            entry,
            format!(
                "{:?} is not a directory (a symlink or file stands in its place)",
                display_bytes(&join_components(path))
            ),
        ),
        _ => LayerError::apply(entry, "open parent directory", e),
    }
}

fn split_name<'c>(
    components: &'c [Vec<u8>],
    entry: &[u8],
) -> Result<(&'c Vec<u8>, &'c [Vec<u8>]), LayerError> {
    components
        .split_last()
        .ok_or_else(|| LayerError::unsafe_entry(entry, "names the destination directory itself"))
}

pub(crate) fn join_components(components: &[Vec<u8>]) -> Vec<u8> {
    components.join(&b'/')
}

/// Makes room for a new node at `parent/name`: removes a non-directory, and
/// removes a directory (recursively) unless `keep_dir`. Returns whether a
/// directory was kept.
fn clear_slot(parent: &File, name: &[u8], keep_dir: bool, entry: &[u8]) -> Result<bool, LayerError> {
    let stat = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(LayerError::apply(entry, "inspect existing path", e.into())),
    };
    let is_dir = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    if is_dir && keep_dir {
        return Ok(true);
    }
    if is_dir {
        remove_tree_at(parent, name)
            .map_err(|e| LayerError::apply(entry, "replace existing directory", e))?;
    } else {
        unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| LayerError::apply(entry, "replace existing file", e.into()))?;
    }
    Ok(false)
}

/// Removes `parent/name` and, if it is a directory, everything below it,
/// without following symlinks.
pub(crate) fn remove_tree_at(parent: &File, name: &[u8]) -> io::Result<()> {
    match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => return Ok(()),
        // Linux reports a directory passed to unlink as EISDIR.
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    let dir = open_subdir(parent, name)?;
    // A read-only directory cannot be emptied by its non-root owner.
    let _ = fchmod(&dir, Mode::from_bits_truncate(0o700));
    for child in list_names(&dir)? {
        remove_tree_at(&dir, &child)?;
    }
    unlinkat(parent, name, UnlinkatFlags::RemoveDir).map_err(io::Error::from)
}

/// Names in a directory, without `.` and `..`.
pub(crate) fn list_names(dir: &File) -> io::Result<Vec<Vec<u8>>> {
    let mut handle = nix::dir::Dir::openat(dir, ".", dir_flags(), Mode::empty())?;
    let mut names = Vec::new();
    for item in handle.iter() {
        let name = item?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// `/proc/self/fd/<dir>/<name>`: a path that reaches `name` inside an open
/// directory, for the calls that have no `*at` form (`lsetxattr`). The final
/// component is not followed by the `l*` calls it is used with.
pub(crate) fn proc_path(dir: &File, name: &[u8]) -> PathBuf {
    let mut path = OsString::from(format!("/proc/self/fd/{}/", dir.as_raw_fd()));
    path.push(OsStr::from_bytes(name));
    PathBuf::from(path)
}

fn timespec(attrs: &NodeAttrs<'_>) -> TimeSpec {
    TimeSpec::new(attrs.mtime, i64::from(attrs.mtime_nanos))
}

fn owner_ids(attrs: &NodeAttrs<'_>, entry: &[u8]) -> Result<(Uid, Gid), LayerError> {
    let uid = u32::try_from(attrs.uid)
        .map_err(|_| LayerError::unsafe_entry(entry, format!("uid {} out of range", attrs.uid)))?;
    let gid = u32::try_from(attrs.gid)
        .map_err(|_| LayerError::unsafe_entry(entry, format!("gid {} out of range", attrs.gid)))?;
    Ok((Uid::from_raw(uid), Gid::from_raw(gid)))
}

fn set_owner_fd(file: &File, attrs: &NodeAttrs<'_>, policy: Policy, entry: &[u8]) -> Result<(), LayerError> {
    if !policy.chown {
        return Ok(());
    }
    let (uid, gid) = owner_ids(attrs, entry)?;
    fchown(file, Some(uid), Some(gid)).map_err(|e| LayerError::apply(entry, "set owner", e.into()))
}

fn set_owner_at(
    parent: &File,
    name: &[u8],
    attrs: &NodeAttrs<'_>,
    policy: Policy,
    entry: &[u8],
) -> Result<(), LayerError> {
    if !policy.chown {
        return Ok(());
    }
    let (uid, gid) = owner_ids(attrs, entry)?;
    fchownat(parent, name, Some(uid), Some(gid), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| LayerError::apply(entry, "set owner", e.into()))
}

fn set_times_at(parent: &File, name: &[u8], attrs: &NodeAttrs<'_>, entry: &[u8]) -> Result<(), LayerError> {
    let time = timespec(attrs);
    utimensat(parent, name, &time, &time, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| LayerError::apply(entry, "set times", e.into()))
}

fn set_xattrs_fd(file: &File, xattrs: &Xattrs, policy: Policy, entry: &[u8]) -> Result<(), LayerError> {
    for (name, value) in xattrs.iter().filter(|(name, _)| keep_in_image(name)) {
        if let Err(e) = file.set_xattr(OsStr::from_bytes(name), value) {
            xattr_failure(name, e, policy, entry)?;
        }
    }
    Ok(())
}

fn set_xattrs_at(
    parent: &File,
    name: &[u8],
    xattrs: &Xattrs,
    policy: Policy,
    entry: &[u8],
) -> Result<(), LayerError> {
    let mut path = None;
    for (key, value) in xattrs.iter().filter(|(key, _)| keep_in_image(key)) {
        let path = path.get_or_insert_with(|| proc_path(parent, name));
        if let Err(e) = xattr::set(&*path, OsStr::from_bytes(key), value) {
            xattr_failure(key, e, policy, entry)?;
        }
    }
    Ok(())
}

/// Without root of the host, `security.*` and `trusted.*` xattrs may not be
/// settable; losing them is expected then (rootless builds cannot grant
/// capabilities either).
/// Any other failure is an error.
fn xattr_failure(name: &[u8], e: io::Error, policy: Policy, entry: &[u8]) -> Result<(), LayerError> {
    let privileged = name.starts_with(b"security.") || name.starts_with(b"trusted.");
    if privileged && !policy.host_root {
        tracing::debug!(entry = %display_bytes(entry), xattr = %display_bytes(name), error = %e, "xattr not restored");
        return Ok(());
    }
    Err(LayerError::apply(entry, "set xattr", e))
}

fn is_opaque(dir: &File, prefix: OverlayXattrs) -> io::Result<bool> {
    match dir.get_xattr(prefix.opaque()) {
        Ok(value) => Ok(value.as_deref() == Some(OPAQUE_YES)),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The fallback whiteout: an empty, mode-0 file with `<ns>whiteout`, its
/// directory marked with `<ns>whiteouts` (read by kernel 6.7) and `<ns>opaque`
/// = `x` (read by 6.8+; "x" is not opaque).
fn make_xattr_whiteout(
    parent: &File,
    name: &[u8],
    attrs: &NodeAttrs<'_>,
    prefix: OverlayXattrs,
    entry: &[u8],
) -> Result<(), LayerError> {
    let fail = |op| move |e: io::Error| LayerError::apply(entry, op, e);
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let file = openat(parent, name, flags, Mode::empty())
        .map(File::from)
        .map_err(|e| LayerError::apply(entry, "create whiteout file", e.into()))?;
    file.set_xattr(prefix.whiteout(), OPAQUE_YES).map_err(fail("mark whiteout file"))?;
    let time = timespec(attrs);
    futimens(&file, &time, &time).map_err(|e| LayerError::apply(entry, "set times", e.into()))?;
    parent.set_xattr(prefix.whiteouts(), OPAQUE_YES).map_err(fail("mark directory as holding whiteouts"))?;
    if parent.get_xattr(prefix.opaque()).map_err(fail("read opaque xattr"))?.is_none() {
        parent.set_xattr(prefix.opaque(), b"x").map_err(fail("mark directory as holding whiteouts"))?;
    }
    Ok(())
}

/// Deletes the whiteouts of `dir` (0/0 devices, and empty regular files
/// carrying the whiteout xattr) and the directory's marker for the latter.
fn remove_whiteouts(dir: &File, prefix: OverlayXattrs) -> io::Result<()> {
    for name in list_names(dir)? {
        let stat = fstatat(dir, name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let file_type = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        let is_device_whiteout = file_type == SFlag::S_IFCHR && stat.st_rdev == 0;
        let is_xattr_whiteout = file_type == SFlag::S_IFREG
            && stat.st_size == 0
            && xattr::get(proc_path(dir, &name), prefix.whiteout())?.is_some();
        if is_device_whiteout || is_xattr_whiteout {
            unlinkat(dir, name.as_slice(), UnlinkatFlags::NoRemoveDir)?;
        }
    }
    match dir.remove_xattr(prefix.whiteouts()) {
        Err(e) if e.raw_os_error() != Some(libc::ENODATA) => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_xattrs() -> Xattrs {
        Xattrs::new()
    }

    fn comps(path: &str) -> Vec<Vec<u8>> {
        path.split('/').map(|c| c.as_bytes().to_vec()).collect()
    }

    #[test]
    fn whiteouts_fall_back_to_xattrs_when_mknod_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let dest = temp.path().join("snapshot");
        let mut tree =
            SafeTree::open(&dest, TreeOptions { chown: false, prefix: OverlayXattrs::User }).unwrap();
        tree.mknod_whiteouts = false;
        let xattrs = no_xattrs();
        let dir_attrs =
            NodeAttrs { mode: 0o755, uid: 0, gid: 0, mtime: 1000, mtime_nanos: 0, xattrs: &xattrs };
        tree.make_dir(&comps("etc"), &dir_attrs, b"etc/").unwrap();
        tree.make_whiteout(&comps("etc/hosts"), 1000, 0, b"etc/.wh.hosts").unwrap();
        tree.make_dir(&comps("mixed"), &dir_attrs, b"mixed/").unwrap();
        tree.make_whiteout(&comps("mixed/a"), 1000, 0, b"mixed/.wh.a").unwrap();
        tree.mark_opaque(&comps("mixed"), b"mixed/.wh..wh..opq").unwrap();
        // Inside an already opaque directory no whiteout is needed.
        tree.make_whiteout(&comps("mixed/b"), 1000, 0, b"mixed/.wh.b").unwrap();
        tree.finish().unwrap();

        let hosts = dest.join("etc/hosts");
        let meta = std::fs::symlink_metadata(&hosts).unwrap();
        assert!(meta.is_file() && meta.len() == 0);
        assert!(xattr::get(&hosts, "user.overlay.whiteout").unwrap().is_some());
        assert!(xattr::get(dest.join("etc"), "user.overlay.whiteouts").unwrap().is_some());
        assert_eq!(xattr::get(dest.join("etc"), "user.overlay.opaque").unwrap().as_deref(), Some(&b"x"[..]));
        assert_eq!(
            xattr::get(dest.join("mixed"), "user.overlay.opaque").unwrap().as_deref(),
            Some(&b"y"[..])
        );
        assert!(xattr::get(dest.join("mixed"), "user.overlay.whiteouts").unwrap().is_none());
        assert_eq!(std::fs::read_dir(dest.join("mixed")).unwrap().count(), 0);

        if !nix::unistd::geteuid().is_root() {
            return;
        }
        // The kernel hides an xattr whiteout in a userxattr mount.
        let lower = temp.path().join("lower");
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/hosts"), b"hosts").unwrap();
        std::fs::write(lower.join("etc/passwd"), b"passwd").unwrap();
        let merged = temp.path().join("merged");
        std::fs::create_dir(&merged).unwrap();
        let options = format!("lowerdir={}:{},userxattr", dest.display(), lower.display());
        use nix::mount::{MntFlags, MsFlags, mount, umount2};
        mount(Some("overlay"), &merged, Some("overlay"), MsFlags::MS_RDONLY, Some(options.as_str())).unwrap();
        let visible: Vec<_> =
            std::fs::read_dir(merged.join("etc")).unwrap().map(|e| e.unwrap().file_name()).collect();
        umount2(&merged, MntFlags::MNT_DETACH).unwrap();
        assert_eq!(visible, ["passwd"]);
    }
}
