//! Rootless rbuild. Run by an ordinary user, rbuild re-executes itself as
//! root of a user namespace of its own, the way `buildah unshare` and
//! `podman unshare` do: the user's uid becomes 0 inside, and the user's
//! subordinate ids (`/etc/subuid`, `/etc/subgid`) become 1, 2, … up to the
//! end of the ranges. `newuidmap` and `newgidmap` (Debian's `uidmap`), which
//! are setuid root, write those maps after checking the files; an
//! unprivileged process could only map its own single id.
//!
//! Inside, everything runs on rbuild's ordinary root code paths: the store
//! (by default under `$XDG_DATA_HOME/rbuild`), the sandbox helper, layer
//! commits. A file that the image says belongs to uid 1000 belongs to
//! subordinate id `start + 999` on the host and to 1000 inside, so layers
//! read from inside record the image's own ids. What root of a user
//! namespace cannot do (trusted xattrs, device nodes) is decided in the
//! store by [`rbuild_layer::has_host_root`]. See `docs/dev/rootless.md`.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use rbuild_builder::sandbox::probe;

use crate::report::Failure;
use crate::store_dir::store_root;

const SUBUID_FILE: &str = "/etc/subuid";
const SUBGID_FILE: &str = "/etc/subgid";

/// The byte the outer process sends once the id maps are written.
const MAPS_WRITTEN: u8 = b'm';

/// Runs this command in a user namespace when rbuild is not root. Returns
/// `None` when this process should simply go on (it is root, or the
/// command touches no store), and the inner rbuild's exit code once it has
/// run otherwise. Must be called before rbuild starts any thread: it forks.
pub fn run_in_user_namespace_unless_root(args: &[OsString]) -> Option<ExitCode> {
    // Root of the host, or root of a user namespace already (ours, or one
    // the user made): the ordinary code paths apply.
    if nix::unistd::geteuid().is_root() || !needs_the_store(args) {
        return None;
    }
    Some(match reexec_in_user_namespace(args) {
        Ok(code) => code,
        Err(failure) => failure.report(),
    })
}

/// Help, version and the commands that only talk to registries or read a
/// Dockerfile work without subordinate ids.
fn needs_the_store(args: &[OsString]) -> bool {
    let words: Vec<String> = args.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    if words.iter().any(|w| matches!(w.as_str(), "-h" | "--help" | "-V" | "--version")) {
        return false;
    }
    let mut rest = words.iter().map(String::as_str);
    let first_command = loop {
        match rest.next() {
            Some("--root" | "--log-level") => {
                rest.next();
            }
            Some(w) if w.starts_with("--root=") || w.starts_with("--log-level=") => {}
            other => break other,
        }
    };
    !matches!(first_command, None | Some("help" | "login" | "logout" | "search" | "debug"))
}

/// Who runs rbuild on the host.
struct Caller {
    name: String,
    uid: u32,
    gid: u32,
}

/// The setuid helpers that write a namespace's id maps.
struct IdMappers {
    newuidmap: PathBuf,
    newgidmap: PathBuf,
}

/// A range of subordinate ids from `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdRange {
    host_start: u32,
    count: u32,
}

fn reexec_in_user_namespace(args: &[OsString]) -> Result<ExitCode, Failure> {
    let caller = caller()?;
    let uid_ranges = subordinate_ranges_from(SUBUID_FILE, &caller, "--add-subuids")?;
    let gid_ranges = subordinate_ranges_from(SUBGID_FILE, &caller, "--add-subgids")?;
    let mappers = IdMappers { newuidmap: find_in_path("newuidmap")?, newgidmap: find_in_path("newgidmap")? };
    let mut inner = Command::new("/proc/self/exe");
    inner.arg0(&args[0]).args(&args[1..]);
    // Inside the namespace rbuild is root and would pick /var/lib/rbuild:
    // the store stays the user's own (an explicit --root still wins).
    if std::env::var_os("RBUILD_ROOT").is_none() {
        inner.env("RBUILD_ROOT", store_root(None));
    }
    run_in_new_user_namespace(&mut inner, |child| {
        run_id_mapper(&mappers.newuidmap, child, caller.uid, &uid_ranges, SUBUID_FILE)?;
        run_id_mapper(&mappers.newgidmap, child, caller.gid, &gid_ranges, SUBGID_FILE)
    })
}

/// Root of a machine or container that refuses new namespaces to root
/// itself (no CAP_SYS_ADMIN) but allows user namespaces (a container run
/// with `--security-opt seccomp=unconfined`, Kubernetes' Unconfined
/// profile): rbuild runs as root of a user namespace of its own, which may
/// then make the sandbox's namespaces. Every id maps to itself, written
/// directly: root holds CAP_SETUID and CAP_SETGID where it runs. The map leaves out the very last id (4294967294; 4294967295 is no id
/// at all): that keeps it from reading as the machine's own map, which is
/// how the store tells (`rbuild_layer::has_host_root`) that trusted xattrs
/// and device nodes are not rbuild's to make. Returns
/// `None` when this does not apply (isolation `chroot` asked for, new
/// namespaces allowed directly, or no user namespace either).
pub fn run_as_root_of_user_namespace_if_needed(args: &[OsString]) -> Option<ExitCode> {
    if !nix::unistd::geteuid().is_root()
        || !rbuild_layer::has_host_root()
        || !needs_the_store(args)
        || isolation_asked(args).as_deref() == Some("chroot")
        || probe::sandbox_namespaces().is_ok()
        || probe::user_namespace().is_err()
    {
        return None;
    }
    let mut inner = Command::new("/proc/self/exe");
    inner.arg0(&args[0]).args(&args[1..]);
    Some(
        match run_in_new_user_namespace(&mut inner, |child| {
            for file in ["uid_map", "gid_map"] {
                let path = format!("/proc/{child}/{file}");
                std::fs::write(&path, "0 0 4294967294\n")
                    .map_err(|e| Failure::new(format!("write {path}: {e}")))?;
            }
            Ok(())
        }) {
            Ok(code) => code,
            Err(failure) => failure.report(),
        },
    )
}

/// The `--isolation` the command line (or `RBUILD_ISOLATION`) asks for.
fn isolation_asked(args: &[OsString]) -> Option<String> {
    let words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    for (i, w) in words.iter().enumerate() {
        if let Some(v) = w.strip_prefix("--isolation=") {
            return Some(v.to_string());
        }
        if w == "--isolation" {
            return words.get(i + 1).cloned();
        }
    }
    std::env::var("RBUILD_ISOLATION").ok()
}

/// Forks a child that enters a new user namespace; `map` writes its id
/// maps from here; the child then re-executes as `inner`. Waits for it and
/// returns its exit code.
fn run_in_new_user_namespace(
    inner: &mut Command,
    map: impl FnOnce(Pid) -> Result<(), Failure>,
) -> Result<ExitCode, Failure> {
    if thread_count() != 1 {
        return Err(Failure::new(
            "internal error: rbuild must enter its user namespace before it starts threads",
        ));
    }
    let (ready_read, ready_write) = pipe()?;
    let (maps_read, maps_write) = pipe()?;
    let outer = nix::unistd::getpid();
    match fork_while_single_threaded().map_err(|e| Failure::new(format!("fork: {e}")))? {
        ForkResult::Child => {
            drop(ready_read);
            drop(maps_write);
            let code = become_namespace_root(outer, ready_write, maps_read, inner);
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            drop(ready_write);
            drop(maps_read);
            let setup = write_id_maps(child, ready_read, maps_write, map);
            if let Err(failure) = setup {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Err(failure);
            }
            Ok(wait_forwarding_signals(child))
        }
    }
}

fn caller() -> Result<Caller, Failure> {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.as_raw().to_string());
    Ok(Caller { name, uid: uid.as_raw(), gid: gid.as_raw() })
}

fn subordinate_ranges_from(file: &str, caller: &Caller, usermod_flag: &str) -> Result<Vec<IdRange>, Failure> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let ranges = subordinate_ranges(&text, &caller.name, caller.uid);
    if ranges.is_empty() {
        return Err(Failure::new(format!(
            "rbuild runs as an ordinary user in a user namespace, which needs subordinate ids, \
             but {file} has no entry for {}",
            caller.name
        ))
        .hint(format!(
            "as root, give {name} 65536 ids that no other user has, for example: \
             usermod {usermod_flag} 100000-165535 {name}",
            name = caller.name
        )));
    }
    Ok(ranges)
}

/// The ranges `/etc/subuid`-style `text` gives the user (by name or uid).
fn subordinate_ranges(text: &str, name: &str, uid: u32) -> Vec<IdRange> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let owner = fields.next()?;
            let host_start = fields.next()?.parse().ok()?;
            let count = fields.next()?.parse().ok()?;
            let ours = owner == name || owner.parse::<u32>() == Ok(uid);
            (ours && count > 0).then_some(IdRange { host_start, count })
        })
        .collect()
}

/// `newuidmap`'s arguments after the pid: the caller's own id as 0, then
/// the subordinate ranges one after another from 1.
fn map_arguments(own_id: u32, ranges: &[IdRange]) -> Vec<String> {
    let mut args = vec!["0".to_string(), own_id.to_string(), "1".to_string()];
    let mut inside: u64 = 1;
    for range in ranges {
        args.extend([inside.to_string(), range.host_start.to_string(), range.count.to_string()]);
        inside += u64::from(range.count);
    }
    args
}

fn find_in_path(tool: &str) -> Result<PathBuf, Failure> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Failure::new(format!("{tool} is not installed; rootless rbuild needs it to map subordinate ids"))
                .hint("install it as root: apt-get install uidmap")
        })
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(1)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Failure> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Failure::new(format!("create pipe: {e}")))
}

#[allow(unsafe_code)]
fn fork_while_single_threaded() -> nix::Result<ForkResult> {
    // SAFETY: the caller checked that this process has one thread, so the
    // child cannot inherit a lock some other thread held mid-update.
    unsafe { nix::unistd::fork() }
}

/// The child: enters a new user namespace, tells the parent, waits for the
/// maps, and re-executes rbuild, which then starts as uid 0 with every
/// capability of the namespace. Returns only on failure, with an exit code.
fn become_namespace_root(outer: Pid, ready: OwnedFd, maps_written: OwnedFd, inner: &mut Command) -> i32 {
    // The outer rbuild only waits and forwards signals: if it is killed,
    // the build must not go on unwatched.
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() || nix::unistd::getppid() != outer {
        return 1;
    }
    // One byte: 0, or the errno of a failed unshare.
    let status = match unshare(CloneFlags::CLONE_NEWUSER) {
        Ok(()) => 0,
        Err(errno) => u8::try_from(errno as i32).unwrap_or(u8::MAX),
    };
    if nix::unistd::write(&ready, &[status]).is_err() || status != 0 {
        return 1;
    }
    drop(ready);
    let mut byte = [0u8; 1];
    if !matches!(nix::unistd::read(&maps_written, &mut byte), Ok(1)) || byte[0] != MAPS_WRITTEN {
        // The parent could not write the maps and says why.
        return 1;
    }
    let error = inner.exec();
    eprintln!("rbuild: cannot re-execute itself in its user namespace: {error}");
    127
}

/// The parent: waits for the child's namespace, maps the ids into it with
/// `map`, and lets the child go on.
fn write_id_maps(
    child: Pid,
    ready: OwnedFd,
    maps_written: OwnedFd,
    map: impl FnOnce(Pid) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut status = [0u8; 1];
    match nix::unistd::read(&ready, &mut status) {
        Ok(1) if status[0] == 0 => {}
        Ok(1) => {
            let errno = nix::errno::Errno::from_raw(i32::from(status[0]));
            return Err(Failure::new(format!("cannot create a user namespace: {errno}")).hint(
                "unprivileged user namespaces may be turned off: as root, check that \
                 `sysctl user.max_user_namespaces` is above 0 (and, on older Debian kernels, \
                 set `sysctl kernel.unprivileged_userns_clone=1`); in a container, its seccomp \
                 profile must allow them (docker run --security-opt seccomp=unconfined)",
            ));
        }
        _ => return Err(Failure::new("the process meant to enter the user namespace ended early")),
    }
    map(child)?;
    nix::unistd::write(&maps_written, &[MAPS_WRITTEN])
        .map_err(|e| Failure::new(format!("resume the process in the user namespace: {e}")))?;
    Ok(())
}

fn run_id_mapper(
    tool: &Path,
    child: Pid,
    own_id: u32,
    ranges: &[IdRange],
    file: &str,
) -> Result<(), Failure> {
    let out = Command::new(tool)
        .arg(child.as_raw().to_string())
        .args(map_arguments(own_id, ranges))
        .output()
        .map_err(|e| Failure::new(format!("run {}: {e}", tool.display())))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Failure::new(format!(
        "{} could not map the subordinate ids of {file}: {}",
        tool.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
    .hint(format!(
        "{} must be setuid root (reinstall the uidmap package), and the ranges in {file} \
         must not overlap another user's",
        tool.display()
    )))
}

/// Waits for the inner rbuild and exits as it did. Interrupts sent to this
/// process alone (`kill`, `timeout`) are passed on, so the inner rbuild
/// can clean up as it does when run directly.
fn wait_forwarding_signals(child: Pid) -> ExitCode {
    let mut forwarded = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        forwarded.add(signal);
    }
    if pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None).is_ok() {
        std::thread::spawn(move || {
            while let Ok(signal) = forwarded.wait() {
                let _ = kill(child, signal);
            }
        });
    }
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return ExitCode::from(code.clamp(0, 255) as u8),
            Ok(WaitStatus::Signaled(_, signal, _)) => return ExitCode::from(128 + signal as u8),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return ExitCode::from(125),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn subordinate_ranges_match_name_or_uid() {
        let text =
            "alice:100000:65536\nbob:165536:65536\n# comment\n1001:300000:1000\nalice:500000:10\nbad line\n";
        assert_eq!(
            subordinate_ranges(text, "alice", 1000),
            vec![IdRange { host_start: 100000, count: 65536 }, IdRange { host_start: 500000, count: 10 }]
        );
        assert_eq!(
            subordinate_ranges(text, "carol", 1001),
            vec![IdRange { host_start: 300000, count: 1000 }]
        );
        assert!(subordinate_ranges(text, "dave", 1002).is_empty());
        assert!(subordinate_ranges("eve:1:0\n", "eve", 7).is_empty(), "an empty range maps nothing");
    }

    #[test]
    fn the_caller_becomes_root_and_subordinates_follow() {
        let ranges =
            [IdRange { host_start: 100000, count: 65536 }, IdRange { host_start: 500000, count: 10 }];
        assert_eq!(
            map_arguments(1000, &ranges),
            ["0", "1000", "1", "1", "100000", "65536", "65537", "500000", "10"]
        );
    }

    #[test]
    fn help_and_registry_commands_need_no_namespace() {
        assert!(needs_the_store(&os(&["rbuild", "-t", "a", "."])));
        assert!(needs_the_store(&os(&["rbuild", "--root", "/x", "images"])));
        assert!(needs_the_store(&os(&["rbuild", "--log-level=debug", "import", "x.tar"])));
        assert!(!needs_the_store(&os(&["rbuild", "--root", "/x", "login", "localhost:5000"])));
        assert!(!needs_the_store(&os(&["rbuild", "build", "--help"])));
        assert!(!needs_the_store(&os(&["rbuild", "--version"])));
        assert!(!needs_the_store(&os(&["rbuild"])));
        assert!(!needs_the_store(&os(&["rbuild", "debug", "ast", "Dockerfile"])));
    }
}
