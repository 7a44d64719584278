//! The sandbox helper: runs in a fresh process (`rbuild __sandbox SPEC`),
//! unshares namespaces, mounts the step's root and the standard mounts,
//! starts a tiny init as PID 1 of the new PID namespace, and execs the
//! step's command as its user. Every syscall of the sandbox lives in this
//! module and the ones below it:
//!
//! * [`fds`]: no descriptor of rbuild's caller reaches the step;
//! * [`overlay`]: the step's root, an overlay of its layers (or a bind of
//!   a root prepared as a directory);
//! * [`mountpoints`]: mount targets made (and recorded) inside the root;
//! * [`binds`]: bind mounts that are nodev, and read-only when asked;
//! * [`standard`]: /proc, /dev, /sys, /etc binds and the step's mounts;
//! * [`masks`]: Docker's masked and read-only kernel paths;
//! * [`init`]: PID 1, pivot_root, and the step's process;
//! * [`caps`]: Docker's default capability set;
//! * [`seccomp`]: Docker's seccomp profile, installed last;
//! * [`net`]: loopback in a fresh network namespace;
//! * [`nat`]: slirp4netns, the default network's way out;
//! * [`chroot`]: `chroot` isolation, no namespaces but a mount namespace
//!   when allowed.

mod binds;
mod caps;
mod chroot;
mod fds;
mod init;
mod limits;
mod masks;
mod mountpoints;
mod nat;
mod net;
mod overlay;
mod seccomp;
mod standard;

pub(crate) use caps::DEFAULT_CAPS;
pub use overlay::probe_main as probe_overlay_main;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use super::spec::{NetMode, SandboxSpec, SandboxStatus};

type SetupResult<T> = Result<T, String>;

fn ctx<T, E: std::fmt::Display>(r: Result<T, E>, what: impl FnOnce() -> String) -> SetupResult<T> {
    r.map_err(|e| format!("{}: {e}", what()))
}

/// Entry point of `rbuild __sandbox SPEC`. Returns the process exit code.
pub fn main(spec_path: &Path) -> i32 {
    // Whatever rbuild's caller left open and inheritable (a directory of the
    // host, a lock) would otherwise reach the step through /proc/self/fd.
    if let Err(e) = fds::close_inherited_descriptors() {
        eprintln!("rbuild sandbox: cannot close inherited descriptors: {e}");
        return 125;
    }
    // rbuild blocks SIGINT, SIGTERM and SIGHUP for its own handling, and a
    // mask is inherited through fork and exec: a step starts with none
    // blocked, as under Docker (a `timeout` or a server's shutdown in a
    // RUN relies on it), and the chroot helper's own SIGTERM must arrive.
    if let Err(e) = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    ) {
        eprintln!("rbuild sandbox: cannot unblock signals: {e}");
        return 125;
    }
    let spec: SandboxSpec = match fs::read(spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rbuild sandbox: cannot read spec {}: {e}", spec_path.display());
            return 125;
        }
    };
    // The spec may carry secret values (`env=` secrets): keep it on disk no
    // longer than it takes to read it.
    let _ = fs::remove_file(spec_path);
    let mut status = SandboxStatus::default();
    let outcome = match spec.chroot {
        Some(mode) => chroot::run(&spec, mode, &mut status),
        None => run(&spec, &mut status),
    };
    match outcome {
        Ok(code) => status.exit_code = code,
        Err(e) => {
            status.exit_code = 125;
            status.setup_error = Some(e);
        }
    }
    let json = serde_json::to_vec(&status).unwrap_or_default();
    // Over the blanks the parent wrote, without truncating: the room is
    // already taken, so a disk the step filled cannot stop the report.
    let written = OpenOptions::new().write(true).open(&spec.status_file).and_then(|mut f| f.write_all(&json));
    if let Err(e) = written {
        eprintln!("rbuild sandbox: cannot write status: {e}");
        return 125;
    }
    status.exit_code
}

fn run(spec: &SandboxSpec, status: &mut SandboxStatus) -> SetupResult<i32> {
    // If rbuild dies, so does the step.
    ctx(nix::sys::prctl::set_pdeathsig(Signal::SIGKILL), || "set parent death signal".into())?;
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    let own_network = match spec.network {
        NetMode::Shared => false,
        NetMode::Isolated | NetMode::Nat => true,
    };
    if own_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    // Read while the parent's scratch dir is still at its host path.
    let filter = spec.seccomp_filter.as_deref().map(seccomp::Filter::read).transpose()?;
    // Forked while still in every namespace of the host; killed when this
    // function returns (the step is over then, or never started).
    let mut slirp = match (spec.network, &spec.nat) {
        (NetMode::Nat, Some(nat)) => Some(nat::Slirp::fork_launcher(nat)?),
        (NetMode::Nat, None) => return Err("the default network was asked for without slirp4netns".into()),
        _ => None,
    };
    ctx(unshare(flags), || "unshare namespaces".into())?;
    if let Some(slirp) = &mut slirp {
        slirp.start()?;
    }
    // Nothing we mount may propagate back to the host.
    ctx(mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>), || {
        "make mounts private".into()
    })?;
    let root = mount_root(spec)?;
    mountpoints::prepare_mountpoints(spec, &root, status)?;
    if own_network {
        net::bring_up_loopback()?;
    }

    fork_step(
        |err_write| match init::init(spec, &root, filter.as_ref(), slirp.as_ref(), err_write) {
            Ok(code) => code,
            Err(e) => {
                report(err_write, &e);
                125
            }
        },
        wait_for,
    )
}

/// Forks the step's process: `step` runs in it, reports a setup error
/// through the descriptor it is given and returns the exit code; `wait`
/// waits for it here. A setup error the step reported is the result.
fn fork_step(step: impl FnOnce(&OwnedFd) -> i32, wait: impl FnOnce(Pid) -> i32) -> SetupResult<i32> {
    let (err_read, err_write) =
        ctx(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC), || "create pipe".into())?;
    // SAFETY: this helper process is single-threaded (it never starts a
    // runtime), so forking is sound.
    #[allow(unsafe_code)]
    let fork = unsafe { nix::unistd::fork() };
    match ctx(fork, || "fork".into())? {
        ForkResult::Child => {
            drop(err_read);
            std::process::exit(step(&err_write));
        }
        ForkResult::Parent { child } => {
            drop(err_write);
            let code = wait(child);
            let mut msg = String::new();
            let _ = File::from(err_read).read_to_string(&mut msg);
            if !msg.is_empty() {
                return Err(msg);
            }
            Ok(code)
        }
    }
}

/// Makes the step's root and returns where it is: an overlay of its
/// layers, or, for a root a copying snapshotter prepared as a directory, a
/// bind of it onto itself (a mount point, as pivot_root wants; nodev like
/// the overlay).
fn mount_root(spec: &SandboxSpec) -> SetupResult<std::path::PathBuf> {
    match &spec.prepared_root {
        Some(dir) => {
            binds::bind(dir, dir, false)?;
            Ok(dir.clone())
        }
        None => {
            overlay::mount_overlay(spec)?;
            Ok(spec.merged.clone())
        }
    }
}

fn report(pipe: &OwnedFd, msg: &str) {
    let _ = nix::unistd::write(pipe, msg.as_bytes());
}

fn wait_for(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 125,
        }
    }
}
