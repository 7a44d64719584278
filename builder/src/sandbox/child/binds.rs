//! Bind mounts of host files and trees into the root: never a usable
//! device through them (nodev, recursively), read-only when asked, with
//! a fallback for kernels without `mount_setattr`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

use super::super::target::set_mount_attrs;
use super::{SetupResult, ctx};

/// Binds a host device node (`/dev/null`, …) as it is.
pub(super) fn bind_device(source: &Path, target: &Path) -> SetupResult<()> {
    ctx(mount(Some(source), target, None::<&str>, MsFlags::MS_BIND, None::<&str>), || {
        format!("bind {} on {}", source.display(), target.display())
    })
}

/// Binds a host file or directory tree, with no device usable through it
/// and, if asked, read-only.
pub(super) fn bind(source: &Path, target: &Path, readonly: bool) -> SetupResult<()> {
    bind_unrestricted(source, target)?;
    restrict(target, readonly)
}

pub(super) fn bind_unrestricted(source: &Path, target: &Path) -> SetupResult<()> {
    ctx(mount(Some(source), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>), || {
        format!("bind {} on {}", source.display(), target.display())
    })
}

/// Adds `nodev`, and `ro` if asked, to the mount at `target` and every
/// mount below it, keeping its other flags (see [`set_mount_attrs`]).
/// Kernels without `mount_setattr` (before 5.12) get a remount that repeats
/// the current flags.
pub(super) fn restrict(target: &Path, read_only: bool) -> SetupResult<()> {
    match add_mount_flags_recursively(target, read_only) {
        Ok(()) => Ok(()),
        Err(Errno::ENOSYS) => remount_restricted(target, read_only),
        Err(e) => Err(format!("restrict the mount on {}: {e}", target.display())),
    }
}

pub(super) fn add_mount_flags_recursively(target: &Path, read_only: bool) -> nix::Result<()> {
    let path = CString::new(target.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut attr_set = libc::MOUNT_ATTR_NODEV;
    if read_only {
        attr_set |= libc::MOUNT_ATTR_RDONLY;
    }
    set_mount_attrs(libc::AT_FDCWD, &path, libc::AT_RECURSIVE, attr_set)
}

pub(super) fn remount_restricted(target: &Path, read_only: bool) -> SetupResult<()> {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let current = ctx(statvfs(target), || format!("read the flags of {}", target.display()))?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NODEV;
    if read_only || current.flags().contains(FsFlags::ST_RDONLY) {
        flags |= MsFlags::MS_RDONLY;
    }
    for (has, keep) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.flags().contains(has) {
            flags |= keep;
        }
    }
    ctx(mount(None::<&str>, target, None::<&str>, flags, None::<&str>), || {
        format!("restrict the mount on {}", target.display())
    })
}
