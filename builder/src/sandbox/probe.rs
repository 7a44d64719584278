//! What the environment lets rbuild do for a RUN step, found by trying it
//! in a throwaway child process: new namespaces directly (root with
//! CAP_SYS_ADMIN), a user namespace first and the others inside it (root
//! or not, where seccomp, AppArmor and the kernel allow user namespaces),
//! or a private mount namespace alone (what `chroot` isolation uses when it
//! can). Each answer is an errno, so a refusal can be explained.
//!
//! The child only makes raw system calls and `_exit`s: that keeps the fork
//! sound even in a process that already runs threads.

use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};

/// The namespaces of the `sandbox` isolation, and a mount in them.
pub fn sandbox_namespaces() -> Result<(), Errno> {
    static ANSWER: OnceLock<Result<(), Errno>> = OnceLock::new();
    *ANSWER.get_or_init(|| in_child(unshare_and_mount::<false>))
}

/// A user namespace, then the sandbox's namespaces owned by it, and a
/// mount in them: what root without CAP_SYS_ADMIN (or any user) can do
/// where user namespaces are allowed.
pub fn user_namespace() -> Result<(), Errno> {
    static ANSWER: OnceLock<Result<(), Errno>> = OnceLock::new();
    *ANSWER.get_or_init(|| in_child(unshare_and_mount::<true>))
}

/// A private mount namespace alone, and a mount in it.
pub fn mount_namespace() -> Result<(), Errno> {
    static ANSWER: OnceLock<Result<(), Errno>> = OnceLock::new();
    *ANSWER.get_or_init(|| in_child(mount_namespace_only))
}

const SANDBOX_FLAGS: libc::c_int =
    libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;

/// In the child: unshares (with a user namespace first when `USERNS`),
/// makes the mounts private and mounts a tmpfs over `/`. Returns 0 or the
/// errno of the first refusal.
#[allow(unsafe_code)]
fn unshare_and_mount<const USERNS: bool>() -> libc::c_int {
    let flags = if USERNS { SANDBOX_FLAGS | libc::CLONE_NEWUSER } else { SANDBOX_FLAGS };
    // SAFETY: unshare takes plain flags.
    if unsafe { libc::unshare(flags) } != 0 {
        return last_errno();
    }
    private_tmpfs()
}

#[allow(unsafe_code)]
fn mount_namespace_only() -> libc::c_int {
    // SAFETY: unshare takes plain flags.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return last_errno();
    }
    private_tmpfs()
}

/// Makes every mount private (nothing reaches the parent's namespace) and
/// mounts a tmpfs on `/`: the mount a sandbox needs first. AppArmor's
/// docker-default profile lets the unshare through and refuses this.
#[allow(unsafe_code)]
fn private_tmpfs() -> libc::c_int {
    let none = std::ptr::null();
    // SAFETY: the strings are NUL-terminated literals; the data pointer is null.
    let private =
        unsafe { libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) };
    if private != 0 {
        return last_errno();
    }
    // SAFETY: as above.
    let tmpfs =
        unsafe { libc::mount(c"tmpfs".as_ptr(), c"/".as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null()) };
    if tmpfs != 0 {
        return last_errno();
    }
    0
}

fn last_errno() -> libc::c_int {
    Errno::last_raw()
}

/// Runs `attempt` in a forked child and returns what it found.
#[allow(unsafe_code)]
fn in_child(attempt: fn() -> libc::c_int) -> Result<(), Errno> {
    // SAFETY: the child makes only system calls (unshare, mount) and
    // `_exit`s; it takes no lock and allocates nothing, so a lock another
    // thread held at the fork cannot hang it.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            let code = attempt();
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(code.clamp(0, 255)) }
        }
        nix::unistd::ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
                Ok(WaitStatus::Exited(_, errno)) => return Err(Errno::from_raw(errno)),
                Ok(WaitStatus::Signaled(..)) => return Err(Errno::EINTR),
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        },
    }
}
