//! `chroot` isolation, the helper's side: no PID, UTS, IPC or network
//! namespace, where the environment allows none (a container under the
//! runtime's default profile). When a private mount namespace can still be
//! made, the root and its /proc, /dev, /sys and RUN mounts are mounted as
//! in the sandbox; otherwise the parent has copied all of it into the root
//! beforehand and nothing is mounted here. Either way the step's process
//! is chrooted into the root and becomes its user as in the sandbox
//! (ulimits, seccomp filter, Docker's capabilities, groups, umask), and
//! every process it leaves behind is killed when it ends: this helper is
//! their subreaper, since no PID namespace takes them down. When rbuild
//! dies (even by SIGKILL), the parent death signal, SIGTERM here, ends the
//! step's main process and then all the rest the same way.

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::super::spec::{ChrootMode, SandboxSpec, SandboxStatus};
use super::{SetupResult, ctx, fork_step, init, masks, mount_root, mountpoints, report, seccomp, standard};

pub(super) fn run(spec: &SandboxSpec, mode: ChrootMode, status: &mut SandboxStatus) -> SetupResult<i32> {
    // SIGTERM, not SIGKILL: the step's processes must go with this helper.
    install_stop_handler()?;
    ctx(nix::sys::prctl::set_pdeathsig(Signal::SIGTERM), || "set parent death signal".into())?;
    let filter = spec.seccomp_filter.as_deref().map(seccomp::Filter::read).transpose()?;
    let mut root = spec.merged.clone();
    if mode.mount_namespace {
        ctx(unshare(CloneFlags::CLONE_NEWNS), || "unshare the mount namespace".into())?;
        ctx(
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>),
            || "make mounts private".into(),
        )?;
        root = mount_root(spec)?;
        mountpoints::prepare_mountpoints(spec, &root, status)?;
        standard::mount_standard(spec, &root)?;
    } else if spec.prepared_root.is_none() {
        return Err("chroot isolation without a mount namespace needs a root prepared as a plain \
                    directory (the copying snapshotter), not an overlay"
            .into());
    }
    // Orphans of the step come to this process, which kills them at the end.
    ctx(nix::sys::prctl::set_child_subreaper(true), || "become the step's subreaper".into())?;

    fork_step(
        |err_write| {
            let e = enter_root(spec, mode, &root)
                .err()
                .unwrap_or_else(|| init::exec_command(spec, filter.as_ref()));
            report(err_write, &e);
            127
        },
        |child| {
            STEP_MAIN.store(child.as_raw(), Ordering::SeqCst);
            if STOP_ASKED.load(Ordering::SeqCst) {
                let _ = kill(child, Signal::SIGKILL);
            }
            let code = init::reap_until(child);
            kill_leftovers();
            code
        },
    )
}

/// The step's main process, once forked (0 before).
static STEP_MAIN: AtomicI32 = AtomicI32::new(0);
/// Whether SIGTERM came (rbuild died, or asks the step to stop).
static STOP_ASKED: AtomicBool = AtomicBool::new(false);

/// On SIGTERM the step's main process is killed, so that the wait for it
/// ends and everything else the step started is killed after it.
fn install_stop_handler() -> SetupResult<()> {
    extern "C" fn on_stop(_: std::ffi::c_int) {
        // Only async-signal-safe work here: an atomic and kill(2).
        STOP_ASKED.store(true, Ordering::SeqCst);
        let main = STEP_MAIN.load(Ordering::SeqCst);
        if main > 0 {
            let _ = kill(nix::unistd::Pid::from_raw(main), Signal::SIGKILL);
        }
    }
    let action = SigAction::new(SigHandler::Handler(on_stop), SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: the handler touches only atomics and calls kill(2), both
    // async-signal-safe.
    #[allow(unsafe_code)]
    let installed = unsafe { sigaction(Signal::SIGTERM, &action) };
    ctx(installed.map(|_| ()), || "handle SIGTERM".into())
}

/// In the step's process: its own session, the root, and Docker's masked
/// kernel paths where /proc and /sys are mounted.
fn enter_root(spec: &SandboxSpec, mode: ChrootMode, root: &std::path::Path) -> SetupResult<()> {
    // Its own session: a step's job control never reaches rbuild's terminal.
    let _ = nix::unistd::setsid();
    nix::unistd::chroot(root).map_err(|e| match e {
        nix::errno::Errno::EPERM => "chroot isolation cannot chroot into the step's root: EPERM; it needs \
                                     CAP_SYS_CHROOT (in Docker's and Kubernetes' default set: was it \
                                     dropped? add --cap-add=SYS_CHROOT)"
            .to_string(),
        e => format!("chroot into {}: {e}", root.display()),
    })?;
    ctx(std::env::set_current_dir("/"), || "enter /".into())?;
    if mode.mount_namespace && !spec.unconfined {
        masks::mask_kernel_files()?;
    }
    Ok(())
}

/// Kills every process the step left running (daemons a package started,
/// background jobs) and reaps them, until none is left.
fn kill_leftovers() {
    loop {
        let children = children_of_self();
        if children.is_empty() {
            return;
        }
        for pid in &children {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        for pid in children {
            let _ = waitpid(Pid::from_raw(pid), None);
        }
    }
}

/// This process's children, from /proc (the helper still sees the host's).
fn children_of_self() -> Vec<i32> {
    let me = std::process::id();
    fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
