//! PID 1 of the step's PID namespace: finishes the mounts that need the
//! new namespace, pivots into the root, and becomes the step's process in a
//! child (working dir, user, groups, capabilities, umask, exec), reaping
//! every process until that child exits.

use std::ffi::CString;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use super::super::spec::SandboxSpec;
use super::nat::Slirp;
use super::seccomp::Filter;
use super::{SetupResult, ctx, report};

/// PID 1 of the new PID namespace: finishes the mounts that need the new
/// namespace (`/proc`), pivots into the root, then runs the command in a
/// child and reaps every process until it exits.
pub(super) fn init(
    spec: &SandboxSpec,
    root: &Path,
    filter: Option<&Filter>,
    slirp: Option<&Slirp>,
    err: &OwnedFd,
) -> SetupResult<i32> {
    ctx(nix::sys::prctl::set_pdeathsig(Signal::SIGKILL), || "set parent death signal".into())?;
    // Its own session, as runc gives a container and the chroot isolation
    // gives a step: job control never reaches rbuild's terminal, and where
    // the kernel groups CPU time by session (autogroup), the step gets a
    // share of its own instead of splitting the caller's with whatever else
    // runs in that terminal (an apt-get ran 2.5x slower beside a cargo build).
    let _ = nix::unistd::setsid();
    // pivot_root moves the root of every process in the mount namespace:
    // take a namespace of our own so the helper keeps seeing the host.
    ctx(unshare(CloneFlags::CLONE_NEWNS), || "unshare mount namespace".into())?;
    ctx(nix::unistd::sethostname(&spec.hostname), || "set hostname".into())?;
    super::standard::mount_standard(spec, root)?;
    ctx(std::env::set_current_dir(root), || "enter root".into())?;
    ctx(nix::unistd::pivot_root(".", "."), || "pivot_root".into())?;
    // The old root is stacked on top of the new one: detach it.
    ctx(umount2(".", MntFlags::MNT_DETACH), || "detach old root".into())?;
    ctx(std::env::set_current_dir("/"), || "enter /".into())?;
    if !spec.unconfined {
        super::masks::mask_kernel_files()?;
    }
    // slirp4netns has been configuring eth0 while the root was mounted;
    // the command needs it now.
    if let Some(slirp) = slirp {
        slirp.wait_ready()?;
    }

    // SAFETY: still single-threaded (we are the forked child of a
    // single-threaded process).
    #[allow(unsafe_code)]
    let fork = unsafe { nix::unistd::fork() };
    match ctx(fork, || "fork".into())? {
        ForkResult::Child => {
            let e = exec_command(spec, filter);
            report(err, &e);
            std::process::exit(127);
        }
        ForkResult::Parent { child } => Ok(reap_until(child)),
    }
}

pub(super) fn reap_until(main: Pid) -> i32 {
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => return code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 125,
        }
    }
}

/// Becomes the step's process: working dir, seccomp filter, capabilities,
/// user, exec. Returns only on failure, with the reason.
pub(super) fn exec_command(spec: &SandboxSpec, filter: Option<&Filter>) -> String {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if let Err(e) = fs::create_dir_all(&spec.process.cwd) {
        return format!("cannot create working directory {}: {e}", spec.process.cwd);
    }
    if let Err(e) = std::env::set_current_dir(&spec.process.cwd) {
        return format!("cannot enter working directory {}: {e}", spec.process.cwd);
    }
    // Before the capabilities go: raising a hard limit takes CAP_SYS_RESOURCE.
    if let Err(e) = super::limits::apply(&spec.ulimits) {
        return e;
    }
    // Without no_new_privs, installing a filter takes CAP_SYS_ADMIN (of
    // the user namespace rbuild runs in): here, before the capabilities go.
    // What follows (capset, setgroups, setresuid, execve) is allowed by
    // the profile, so the command is the first thing the filter judges.
    if let Some(filter) = filter
        && let Err(e) = filter.install()
    {
        return e;
    }
    if !spec.unconfined
        && let Err(e) = super::caps::drop_capabilities()
    {
        return e;
    }
    // Docker's umask, not whatever rbuild was started with: the modes of
    // the files a step creates go into the layer.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));

    let groups: Vec<Gid> = spec.process.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if let Err(e) = nix::unistd::setgroups(&groups) {
        return format!("setgroups: {e}");
    }
    let gid = Gid::from_raw(spec.process.gid);
    if let Err(e) = nix::unistd::setresgid(gid, gid, gid) {
        return format!("setgid {}: {e}{}", spec.process.gid, needs_cap(e, "CAP_SETGID"));
    }
    let uid = Uid::from_raw(spec.process.uid);
    if let Err(e) = nix::unistd::setresuid(uid, uid, uid) {
        return format!("setuid {}: {e}{}", spec.process.uid, needs_cap(e, "CAP_SETUID"));
    }
    // The change of ids cleared the parent death signal; under chroot
    // isolation no PID namespace ends the step if its helper is killed.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let Some(program) = spec.process.argv.first() else {
        return "empty command".into();
    };
    let path_var =
        spec.process.env.iter().find_map(|kv| kv.strip_prefix("PATH=")).unwrap_or(crate::DEFAULT_PATH);
    let resolved = if program.contains('/') {
        PathBuf::from(program)
    } else {
        match path_var.split(':').map(|d| Path::new(d).join(program)).find(|p| is_executable(p)) {
            Some(p) => p,
            None => return format!("exec: {program:?}: executable file not found in $PATH"),
        }
    };
    let to_c = |s: &str| CString::new(s.as_bytes()).unwrap_or_default();
    let argv: Vec<CString> = spec.process.argv.iter().map(|a| to_c(a)).collect();
    let env: Vec<CString> = spec.process.env.iter().map(|a| to_c(a)).collect();
    let path = to_c(&resolved.to_string_lossy());
    match nix::unistd::execve(&path, &argv, &env) {
        Ok(never) => match never {},
        Err(e) => format!("exec {}: {e}", resolved.display()),
    }
}

/// The hint for an EPERM that a missing capability explains.
fn needs_cap(e: nix::errno::Errno, cap: &str) -> String {
    if e == nix::errno::Errno::EPERM {
        format!(" (running a step as its USER needs {cap}, in Docker's default set: was it dropped?)")
    } else {
        String::new()
    }
}

pub(super) fn is_executable(p: &Path) -> bool {
    fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}
