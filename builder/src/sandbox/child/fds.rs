//! Descriptors: the helper closes everything rbuild's caller left open and
//! inheritable (a directory of the host, a lock), which would otherwise
//! reach the step through /proc/self/fd.

use std::fs;

use nix::errno::Errno;

/// Closes every descriptor above stderr. Called first thing, while the
/// helper holds none of its own.
pub(super) fn close_inherited_descriptors() -> std::io::Result<()> {
    if close_from(3).is_ok() {
        return Ok(());
    }
    // Kernels before 5.9 have no close_range: go through the list.
    let fds: Vec<i32> = fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // One of them was read_dir's own handle, closed by now: EBADF is fine.
        match close_one(fd) {
            Ok(()) | Err(Errno::EBADF) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[allow(unsafe_code)]
pub(super) fn close_from(first: u32) -> nix::Result<()> {
    // SAFETY: nothing in this process owns a descriptor above stderr yet
    // (see close_inherited_descriptors), so no live handle is invalidated.
    let rc = unsafe { libc::close_range(first, libc::c_uint::MAX, 0) };
    Errno::result(rc).map(drop)
}

#[allow(unsafe_code)]
pub(super) fn close_one(fd: i32) -> nix::Result<()> {
    // SAFETY: as in close_from: the descriptor was inherited, not owned by
    // any object of this process.
    let rc = unsafe { libc::close(fd) };
    Errno::result(rc).map(drop)
}
