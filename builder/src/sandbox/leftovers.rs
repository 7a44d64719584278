//! Ending what a `chroot` step leaves running, from rbuild's side. Under
//! the sandbox the step's PID namespace takes every process down with its
//! init; under chroot isolation there is none, so the helper kills what
//! its step left when the step's main process exits (it is their
//! subreaper, see `child::chroot`). This module is the backstop for when
//! the helper cannot: it was killed (by the OOM killer, by a user) or the
//! build is interrupted. rbuild is then the step's processes' subreaper,
//! and they are found and killed before the step's root is diffed or
//! removed:
//!
//! * a process whose root (`/proc/PID/root`) is the step's root or lies
//!   under it, wherever it is in the process tree (a `setsid`'d daemon
//!   too);
//! * a child of rbuild whose root rbuild may not read: a step's process
//!   running as its USER (without CAP_SYS_PTRACE, as under Docker's
//!   default profile, root may not look at another user's processes);
//!   rbuild itself starts nothing under another uid.
//!
//! Processes may fork while they are being killed, so the search repeats
//! until it finds none.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::SandboxError;

/// How long processes get to die after SIGKILL (one stuck in the kernel,
/// on a hung network filesystem, may not) before the step fails.
const DEATH_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes rbuild the reaper of orphans in its process tree: when a step's
/// helper dies, the step's processes become rbuild's children instead of
/// disappearing under the machine's init.
pub fn become_subreaper() {
    // Without it the search by root still finds the step's root-owned
    // processes; only USER processes of a killed helper would be missed.
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Kills every process of the step whose root is `root`, repeating until
/// none is left, and reaps those that were rbuild's children.
pub fn kill_step_processes(root: &Path) -> Result<(), SandboxError> {
    // The kernel shows roots with symbolic links resolved.
    let canonical = fs::canonicalize(root);
    let root = canonical.as_deref().unwrap_or(root);
    let me = std::process::id() as i32;
    let deadline = Instant::now() + DEATH_TIMEOUT;
    let mut own_children: Vec<i32> = Vec::new();
    loop {
        let found = step_processes(root, me);
        if found.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(SandboxError::Setup(format!(
                "processes {found:?} of the step rooted at {} did not die within {}s of SIGKILL",
                root.display(),
                DEATH_TIMEOUT.as_secs()
            )));
        }
        for &(pid, _) in &found {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        own_children.extend(found.iter().filter(|(_, ppid)| *ppid == me).map(|(pid, _)| *pid));
        own_children.sort_unstable();
        own_children.dedup();
        own_children.retain(|pid| !reaped(*pid));
        std::thread::sleep(Duration::from_millis(2));
    }
    // The last of them may have become zombies after the search: they are
    // gone (a zombie has no root), and waited for here.
    for pid in own_children {
        let _ = waitpid(Pid::from_raw(pid), None);
    }
    Ok(())
}

/// The step's processes (pid, parent pid) alive now.
fn step_processes(root: &Path, me: i32) -> Vec<(i32, i32)> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter_map(|pid| {
            let ppid = parent_of(pid)?;
            let belongs = match fs::read_link(format!("/proc/{pid}/root")) {
                Ok(its_root) => its_root.starts_with(root),
                Err(e) if e.kind() == ErrorKind::PermissionDenied => ppid == me,
                // Gone, or a zombie (no root any more): nothing to kill.
                Err(_) => false,
            };
            belongs.then_some((pid, ppid))
        })
        .collect()
}

/// The parent pid from `/proc/PID/stat` (readable for any process); the
/// command name before it is in parentheses and may contain anything.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// Reaps `pid` if it has ended; whether it has (or is not ours to wait for).
fn reaped(pid: i32) -> bool {
    !matches!(waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)), Ok(WaitStatus::StillAlive))
}
