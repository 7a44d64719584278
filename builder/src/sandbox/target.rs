//! Mount targets inside a step's root that no symlink and no rename race can
//! move outside it.
//!
//! A target such as `/cache/d/x` may lie inside a directory another build is
//! changing at the same moment (a shared cache mount): resolving it to a
//! path first and mounting on that path later lets a directory swapped for a
//! symlink in between redirect the mount, or the directory made for it, onto
//! the host (the class of CVE-2021-30465 and CVE-2024-23651). Here every
//! lookup is one `openat2(RESOLVE_IN_ROOT)` relative to a handle on the
//! root, so symlinks resolve as if the root were `/`; missing parts are made
//! with `mkdirat` through a handle on their parent; and the mount goes onto
//! the handle itself (`/proc/self/fd/N`), never onto a path looked up again.
//! Binds are cloned as detached trees, given their flags, and attached with
//! `move_mount`, so no moment exists where the bind is writable or reached
//! by a second lookup.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

/// An opened mount target.
pub struct Target {
    fd: OwnedFd,
}

impl Target {
    /// Opens `path` (absolute, as the step sees it) inside the directory
    /// `root` refers to, creating what is missing: directories, and the last
    /// part as an empty file when `is_file`. A symlink on the way whose
    /// target is missing is an error (targets in the image's own layers
    /// were made before, by `prepare_mountpoints`; this is for targets
    /// inside mounts).
    pub fn open(root: &OwnedFd, path: &str, is_file: bool) -> io::Result<Target> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        for (i, part) in parts.iter().enumerate() {
            let prefix = parts[..=i].join("/");
            match open_in_root(root, &prefix, OFlag::empty()) {
                Ok(_) => continue,
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
            let parent = open_in_root(root, &parts[..i].join("/"), OFlag::O_DIRECTORY)?;
            let made = if is_file && i + 1 == parts.len() {
                nix::fcntl::openat(
                    &parent,
                    *part,
                    OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
                .map(drop)
            } else {
                nix::sys::stat::mkdirat(&parent, *part, Mode::from_bits_truncate(0o755))
            };
            match made {
                // Someone else made it meanwhile: the final open decides.
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let fd = open_in_root(root, &parts.join("/"), OFlag::empty())?;
        Ok(Target { fd })
    }

    /// The path that names exactly this target, whatever happens to its
    /// name meanwhile.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// An `O_PATH` handle on `rel` (relative, `""` for the root itself) with
/// every symlink and `..` kept inside `root`.
fn open_in_root(root: &OwnedFd, rel: &str, extra: OFlag) -> nix::Result<OwnedFd> {
    let rel = if rel.is_empty() { "." } else { rel };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | extra)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root.as_fd(), rel, how)
}

/// Opens the directory a step's root is in, for [`Target::open`].
pub fn open_root(root: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?)
}

/// Binds the tree at `source` (and the mounts below it) onto `target`, with
/// `nodev` and, if asked, read-only set before it becomes visible.
/// `Err(ENOSYS)` on kernels without the new mount API (before 5.12).
pub fn bind_tree(source: &Path, target: &Target, read_only: bool) -> nix::Result<()> {
    let tree = open_tree_clone(source)?;
    let mut attr_set = libc::MOUNT_ATTR_NODEV;
    if read_only {
        attr_set |= libc::MOUNT_ATTR_RDONLY;
    }
    set_mount_attrs(tree.as_raw_fd(), c"", libc::AT_EMPTY_PATH | libc::AT_RECURSIVE, attr_set)?;
    move_mount_onto(&tree, target)
}

/// Adds `attr_set` to the mounts at `path` (relative to `dirfd`, or the
/// handle itself with `AT_EMPTY_PATH`), keeping their other flags: a mount
/// namespace owned by a user namespace (rootless) inherits the host's
/// mounts with `nosuid`, `nodev`, `noexec` locked, so a remount that leaves
/// one out is refused, while `mount_setattr` only adds.
#[allow(unsafe_code)]
pub fn set_mount_attrs(dirfd: i32, path: &std::ffi::CStr, at_flags: i32, attr_set: u64) -> nix::Result<()> {
    let attr = libc::mount_attr { attr_set, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: `path` is NUL-terminated and `attr` is a mount_attr of the size
    // passed; both outlive the call, which only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            at_flags as libc::c_uint,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(rc).map(drop)
}

#[allow(unsafe_code)]
fn open_tree_clone(source: &Path) -> nix::Result<OwnedFd> {
    let path = CString::new(source.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let flags = libc::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let rc = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let fd = Errno::result(rc)? as i32;
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[allow(unsafe_code)]
fn move_mount_onto(tree: &OwnedFd, target: &Target) -> nix::Result<()> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both descriptors are live for the call; the paths are empty
    // NUL-terminated strings.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_and_dot_dots_resolve_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root.path().join("up")).unwrap();
        let handle = open_root(root.path()).unwrap();
        // Dangling inside the root: refused, nothing made anywhere.
        assert!(Target::open(&handle, "/abs/made/deep", false).is_err());
        // The absolute link is followed as if the root were `/`.
        let inside = root.path().join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        Target::open(&handle, "/abs/made/deep", false).unwrap();
        Target::open(&handle, "/up/file", true).unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing made outside the root");
        assert!(inside.join("made/deep").is_dir());
        assert!(root.path().join("file").is_file());
    }
}
