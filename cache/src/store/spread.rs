//! Where ext2/3/4 puts the store's scratch directories: the `T` attribute
//! (`FS_TOPDIR_FL`, `chattr +T`) on a directory makes the Orlov allocator
//! place each new subdirectory in a block group of its own choosing, with
//! many free inodes, instead of next to its parent.
//!
//! Why it matters: on ext4 without a journal (as on this project's CI
//! machines), allocating an inode skips every inode of the group freed in
//! the last 5–10 seconds, checking them one at a time. A build frees
//! thousands of inodes in its scratch dirs (a `RUN rm -rf` over a lower
//! directory creates and drops a whiteout per file), and the next build's
//! COPY allocated its files in the same group: measured on the bench `app`
//! context, back-to-back edit rebuilds spent 0.6–1.2 s in that scan in a
//! COPY of 2,000 files that otherwise takes 0.3 s (`docs/dev/performance.md`).
//! Spread out, each step's files land where nothing was just deleted. On
//! other filesystems the flag does not exist and nothing changes.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

nix::ioctl_read!(get_inode_flags, b'f', 1, libc::c_long);
nix::ioctl_write_ptr!(set_inode_flags, b'f', 2, libc::c_long);

/// `FS_TOPDIR_FL` from linux/fs.h.
const TOPDIR: libc::c_long = 0x0002_0000;

/// Marks `dir` so its new subdirectories are spread over the filesystem;
/// best effort (the filesystem may not know the flag, or refuse it).
pub(crate) fn spread_subdirectories(dir: &Path) {
    let Ok(handle) = File::open(dir) else { return };
    let Some(flags) = inode_flags(&handle) else { return };
    if flags & TOPDIR != 0 {
        return;
    }
    let flags = flags | TOPDIR;
    // SAFETY: the ioctl reads one flags word through a pointer to a live
    // local of the size its request number encodes, on an open fd.
    #[allow(unsafe_code)]
    let _ = unsafe { set_inode_flags(handle.as_raw_fd(), &flags) };
}

/// The inode flags of an open file; `None` where the filesystem has none.
fn inode_flags(handle: &File) -> Option<libc::c_long> {
    let mut flags: libc::c_long = 0;
    // SAFETY: the ioctl writes one flags word through a pointer to a live
    // local of the size its request number encodes, on an open fd.
    #[allow(unsafe_code)]
    let got = unsafe { get_inode_flags(handle.as_raw_fd(), &mut flags) };
    got.ok().map(|_| flags)
}

/// Whether `dir` carries the attribute; `None` where the filesystem has
/// no such flags.
#[cfg(test)]
fn spreads_subdirectories(dir: &Path) -> Option<bool> {
    inode_flags(&File::open(dir).ok()?).map(|flags| flags & TOPDIR != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_parent_spreads_its_subdirectories_where_the_filesystem_can() {
        let temp = tempfile::tempdir().unwrap();
        let ext = nix::sys::statfs::statfs(temp.path())
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::EXT4_SUPER_MAGIC);
        assert_ne!(spreads_subdirectories(temp.path()), Some(true), "a new directory has no T attribute");
        spread_subdirectories(temp.path());
        // Idempotent, and harmless on a path that is not there.
        spread_subdirectories(temp.path());
        spread_subdirectories(&temp.path().join("missing"));
        if ext {
            assert_eq!(spreads_subdirectories(temp.path()), Some(true));
        } else {
            eprintln!("{} is not ext2/3/4: only checked that nothing fails", temp.path().display());
            assert!(temp.path().is_dir());
        }
    }
}
