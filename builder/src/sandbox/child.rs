//! The sandbox helper: runs in a fresh process (`rbuild __sandbox SPEC`),
//! unshares namespaces, mounts the overlay root and the standard mounts,
//! starts a tiny init as PID 1 of the new PID namespace, and execs the step's
//! command as its user. Every syscall of the sandbox lives here.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use super::rootpath::resolve_in_root;
use super::spec::{ExtraMount, NetMode, SandboxSpec, SandboxStatus};
use super::target::{Target, bind_tree, open_root, set_mount_attrs};

type SetupResult<T> = Result<T, String>;

fn ctx<T, E: std::fmt::Display>(r: Result<T, E>, what: impl FnOnce() -> String) -> SetupResult<T> {
    r.map_err(|e| format!("{}: {e}", what()))
}

/// Entry point of `rbuild __sandbox SPEC`. Returns the process exit code.
pub fn main(spec_path: &Path) -> i32 {
    // Whatever rbuild's caller left open and inheritable (a directory of the
    // host, a lock) would otherwise reach the step through /proc/self/fd.
    if let Err(e) = close_inherited_descriptors() {
        eprintln!("rbuild sandbox: cannot close inherited descriptors: {e}");
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
    match run(&spec, &mut status) {
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

/// Closes every descriptor above stderr. Called first thing, while the
/// helper holds none of its own.
fn close_inherited_descriptors() -> std::io::Result<()> {
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
fn close_from(first: u32) -> nix::Result<()> {
    // SAFETY: nothing in this process owns a descriptor above stderr yet
    // (see close_inherited_descriptors), so no live handle is invalidated.
    let rc = unsafe { libc::close_range(first, libc::c_uint::MAX, 0) };
    Errno::result(rc).map(drop)
}

#[allow(unsafe_code)]
fn close_one(fd: i32) -> nix::Result<()> {
    // SAFETY: as in close_from: the descriptor was inherited, not owned by
    // any object of this process.
    let rc = unsafe { libc::close(fd) };
    Errno::result(rc).map(drop)
}

fn run(spec: &SandboxSpec, status: &mut SandboxStatus) -> SetupResult<i32> {
    // If rbuild dies, so does the step.
    ctx(nix::sys::prctl::set_pdeathsig(Signal::SIGKILL), || "set parent death signal".into())?;
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if spec.network == NetMode::Isolated {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    ctx(unshare(flags), || "unshare namespaces".into())?;
    // Nothing we mount may propagate back to the host.
    ctx(mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>), || {
        "make mounts private".into()
    })?;
    mount_overlay(spec)?;
    let root = spec.merged.clone();
    prepare_mountpoints(spec, &root, status)?;
    if spec.network == NetMode::Isolated {
        bring_up_loopback()?;
    }

    let (err_read, err_write) =
        ctx(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC), || "create pipe".into())?;
    // SAFETY: this helper process is single-threaded (it never starts a
    // runtime), so forking is sound.
    #[allow(unsafe_code)]
    let fork = unsafe { nix::unistd::fork() };
    match ctx(fork, || "fork".into())? {
        ForkResult::Child => {
            drop(err_read);
            let code = match init(spec, &root, &err_write) {
                Ok(code) => code,
                Err(e) => {
                    report(&err_write, &e);
                    125
                }
            };
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            drop(err_write);
            let code = wait_for(child);
            let mut msg = String::new();
            let _ = File::from(err_read).read_to_string(&mut msg);
            if !msg.is_empty() {
                return Err(msg);
            }
            Ok(code)
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

fn mount_overlay(spec: &SandboxSpec) -> SetupResult<()> {
    ctx(std::env::set_current_dir(&spec.store_root), || format!("enter {}", spec.store_root.display()))?;
    let lowers = if spec.lowers.is_empty() {
        spec.empty_lower.to_string_lossy().into_owned()
    } else {
        spec.lowers.join(":")
    };
    let mut data = format!(
        "lowerdir={lowers},upperdir={},workdir={}",
        short(&spec.store_root, &spec.upper),
        short(&spec.store_root, &spec.work)
    );
    // Copy-up must copy whole files and renames must copy directories, or the
    // upper dir would not be a self-contained layer.
    data.push_str(",index=off,metacopy=off");
    if spec.userxattr {
        // `off` still follows redirects found in lower layers, which the
        // kernel refuses with userxattr; `nofollow` neither makes nor follows
        // them, and our layers never have any.
        data.push_str(",redirect_dir=nofollow,userxattr");
    } else {
        data.push_str(",redirect_dir=off");
    }
    if data.len() >= 4000 {
        return Err(format!("too many layers for one overlay mount ({} bytes of options)", data.len()));
    }
    // nodev: a step may mknod (CAP_MKNOD is in Docker's set) but never open
    // a device of the host through a node it made; Docker's device cgroup
    // has the same effect.
    ctx(mount(Some("overlay"), &spec.merged, Some("overlay"), MsFlags::MS_NODEV, Some(data.as_str())), || {
        format!("mount overlay ({} lower layers)", spec.lowers.len())
    })
}

fn short(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned()
}

/// Creates every mount target that does not exist yet, remembering which
/// ones we made so the parent can keep them out of the layer.
fn prepare_mountpoints(spec: &SandboxSpec, root: &Path, status: &mut SandboxStatus) -> SetupResult<()> {
    let mut dirs: Vec<&str> = vec!["/proc", "/dev", "/sys"];
    let mut files: Vec<&str> = Vec::new();
    for (_, target) in &spec.etc_binds {
        files.push(target);
    }
    for m in &spec.mounts {
        match m {
            ExtraMount::Bind { source, target, .. } if !source.is_dir() => files.push(target),
            ExtraMount::Bind { target, .. }
            | ExtraMount::Tmpfs { target, .. }
            | ExtraMount::Layers { target, .. } => dirs.push(target),
        }
    }
    for d in dirs {
        ensure(root, d, true, status)?;
    }
    for f in files {
        ensure(root, f, false, status)?;
    }
    Ok(())
}

/// Makes `path` (inside `root`) exist as a directory or file, creating
/// missing parents, and records what was created.
fn ensure(root: &Path, path: &str, dir: bool, status: &mut SandboxStatus) -> SetupResult<()> {
    let mut rel = PathBuf::new();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        rel.push(part);
        let rel_str = format!("/{}", rel.to_string_lossy());
        let host = ctx(resolve_in_root(root, &rel_str), || format!("resolve {rel_str}"))?;
        if fs::symlink_metadata(&host).is_ok() {
            continue;
        }
        let last = i + 1 == parts.len();
        if last && !dir {
            ctx(OpenOptions::new().write(true).create_new(true).mode(0o644).open(&host), || {
                format!("create {rel_str}")
            })?;
        } else {
            ctx(fs::create_dir(&host), || format!("create {rel_str}"))?;
            let _ = fs::set_permissions(&host, fs::Permissions::from_mode(0o755));
        }
        // Record where it really is: a symlinked parent may have moved it.
        let created = host.strip_prefix(root).unwrap_or(&host).to_string_lossy().into_owned();
        status.mountpoints_created.push(created);
    }
    Ok(())
}

/// Binds a host device node (`/dev/null`, …) as it is.
fn bind_device(source: &Path, target: &Path) -> SetupResult<()> {
    ctx(mount(Some(source), target, None::<&str>, MsFlags::MS_BIND, None::<&str>), || {
        format!("bind {} on {}", source.display(), target.display())
    })
}

/// Binds a host file or directory tree, with no device usable through it
/// and, if asked, read-only.
fn bind(source: &Path, target: &Path, readonly: bool) -> SetupResult<()> {
    bind_unrestricted(source, target)?;
    restrict(target, readonly)
}

fn bind_unrestricted(source: &Path, target: &Path) -> SetupResult<()> {
    ctx(mount(Some(source), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>), || {
        format!("bind {} on {}", source.display(), target.display())
    })
}

/// Adds `nodev`, and `ro` if asked, to the mount at `target` and every
/// mount below it, keeping its other flags (see [`set_mount_attrs`]).
/// Kernels without `mount_setattr` (before 5.12) get a remount that repeats
/// the current flags.
fn restrict(target: &Path, read_only: bool) -> SetupResult<()> {
    match add_mount_flags_recursively(target, read_only) {
        Ok(()) => Ok(()),
        Err(Errno::ENOSYS) => remount_restricted(target, read_only),
        Err(e) => Err(format!("restrict the mount on {}: {e}", target.display())),
    }
}

fn add_mount_flags_recursively(target: &Path, read_only: bool) -> nix::Result<()> {
    let path = CString::new(target.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut attr_set = libc::MOUNT_ATTR_NODEV;
    if read_only {
        attr_set |= libc::MOUNT_ATTR_RDONLY;
    }
    set_mount_attrs(libc::AT_FDCWD, &path, libc::AT_RECURSIVE, attr_set)
}

fn remount_restricted(target: &Path, read_only: bool) -> SetupResult<()> {
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

/// PID 1 of the new PID namespace: finishes the mounts that need the new
/// namespace (`/proc`), pivots into the root, then runs the command in a
/// child and reaps every process until it exits.
fn init(spec: &SandboxSpec, root: &Path, err: &OwnedFd) -> SetupResult<i32> {
    ctx(nix::sys::prctl::set_pdeathsig(Signal::SIGKILL), || "set parent death signal".into())?;
    // pivot_root moves the root of every process in the mount namespace:
    // take a namespace of our own so the helper keeps seeing the host.
    ctx(unshare(CloneFlags::CLONE_NEWNS), || "unshare mount namespace".into())?;
    ctx(nix::unistd::sethostname(&spec.hostname), || "set hostname".into())?;
    mount_standard(spec, root)?;
    ctx(std::env::set_current_dir(root), || "enter root".into())?;
    ctx(nix::unistd::pivot_root(".", "."), || "pivot_root".into())?;
    // The old root is stacked on top of the new one: detach it.
    ctx(umount2(".", MntFlags::MNT_DETACH), || "detach old root".into())?;
    ctx(std::env::set_current_dir("/"), || "enter /".into())?;
    mask_kernel_files()?;

    // SAFETY: still single-threaded (we are the forked child of a
    // single-threaded process).
    #[allow(unsafe_code)]
    let fork = unsafe { nix::unistd::fork() };
    match ctx(fork, || "fork".into())? {
        ForkResult::Child => {
            let e = exec_command(spec);
            report(err, &e);
            std::process::exit(127);
        }
        ForkResult::Parent { child } => Ok(reap_until(child)),
    }
}

fn reap_until(main: Pid) -> i32 {
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

fn mount_standard(spec: &SandboxSpec, root: &Path) -> SetupResult<()> {
    let at = |p: &str| -> SetupResult<PathBuf> { ctx(resolve_in_root(root, p), || format!("resolve {p}")) };
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    ctx(mount(Some("proc"), &at("/proc")?, Some("proc"), nosuid, None::<&str>), || "mount /proc".into())?;
    let dev = at("/dev")?;
    ctx(
        mount(
            Some("tmpfs"),
            &dev,
            Some("tmpfs"),
            // Only the device nodes bound below work; one the step makes does not.
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        ),
        || "mount /dev".into(),
    )?;
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = dev.join(name);
        ctx(File::create(&target), || format!("create /dev/{name}"))?;
        bind_device(&Path::new("/dev").join(name), &target)?;
    }
    for dir in ["pts", "shm", "mqueue"] {
        ctx(fs::create_dir(dev.join(dir)), || format!("create /dev/{dir}"))?;
    }
    ctx(
        mount(
            Some("devpts"),
            &dev.join("pts"),
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        ),
        || "mount /dev/pts".into(),
    )?;
    ctx(std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx")), || "link /dev/ptmx".into())?;
    ctx(mount(Some("shm"), &dev.join("shm"), Some("tmpfs"), nosuid, Some("mode=1777,size=65536k")), || {
        "mount /dev/shm".into()
    })?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ctx(std::os::unix::fs::symlink(target, dev.join(link)), || format!("link /dev/{link}"))?;
    }
    let sys = at("/sys")?;
    let sys_flags = nosuid | MsFlags::MS_RDONLY;
    if mount(Some("sysfs"), &sys, Some("sysfs"), sys_flags, None::<&str>).is_err() {
        // Without a network namespace of our own sysfs may refuse a new
        // instance; a read-only bind of the host's is what Docker falls back to.
        bind(Path::new("/sys"), &sys, true)?;
    }
    for (source, target) in &spec.etc_binds {
        bind(source, &at(target)?, false)?;
    }
    let root_handle = ctx(open_root(root), || "open the step's root".into())?;
    for m in &spec.mounts {
        // A target on a tmpfs mounted above (`/dev/pipes/…` for heredoc
        // scripts) was hidden from prepare_mountpoints, and one inside a
        // cache mount may be in a directory another build changes right
        // now: open (and make) it here without ever leaving the root.
        let (target, is_file) = match m {
            ExtraMount::Bind { source, target, .. } => (target, !source.is_dir()),
            ExtraMount::Tmpfs { target, .. } | ExtraMount::Layers { target, .. } => (target, false),
        };
        let handle =
            ctx(Target::open(&root_handle, target, is_file), || format!("open mount target {target}"))?;
        let at_handle = handle.proc_path();
        match m {
            ExtraMount::Bind { source, target, readonly } => match bind_tree(source, &handle, *readonly) {
                Ok(()) => {}
                // Before Linux 5.12: bind through the handle, then restrict
                // the mount now on top of it by path.
                Err(Errno::ENOSYS) => {
                    bind_unrestricted(source, &at_handle)?;
                    restrict(&at(target)?, *readonly)?;
                }
                Err(e) => return Err(format!("bind {} on {target}: {e}", source.display())),
            },
            ExtraMount::Tmpfs { target, size } => {
                let opts = size.map(|s| format!("size={s}")).unwrap_or_default();
                ctx(
                    mount(
                        Some("tmpfs"),
                        &at_handle,
                        Some("tmpfs"),
                        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                        Some(opts.as_str()),
                    ),
                    || format!("mount tmpfs on {target}"),
                )?;
            }
            ExtraMount::Layers { lowers, target, upper } => {
                let mut data = format!("lowerdir={}", lowers.join(":"));
                if let Some((u, w)) = upper {
                    data.push_str(&format!(",upperdir={},workdir={}", u.display(), w.display()));
                }
                if spec.userxattr {
                    data.push_str(",userxattr");
                }
                let flags =
                    if upper.is_some() { MsFlags::MS_NODEV } else { MsFlags::MS_NODEV | MsFlags::MS_RDONLY };
                ctx(std::env::set_current_dir(&spec.store_root), || "enter store".into())?;
                ctx(mount(Some("overlay"), &at_handle, Some("overlay"), flags, Some(data.as_str())), || {
                    format!("mount layers on {target}")
                })?;
            }
        }
    }
    Ok(())
}

/// What Docker hides from a container: files that reveal or drive the
/// host's hardware and kernel internals.
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// What Docker leaves visible but read-only: the kernel's tunables. Without
/// this, a step running as root could write `/proc/sys` or
/// `/proc/sysrq-trigger`, which reach the whole machine.
const READ_ONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Masks and write-protects the kernel files above (run after pivot_root).
/// A path that exists but cannot be protected fails the step: running it
/// with the host's kernel knobs writable is not an option.
fn mask_kernel_files() -> SetupResult<()> {
    for p in MASKED_PATHS {
        let path = Path::new(p);
        let hidden = match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
            }
            Ok(_) => mount(Some("/dev/null"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>),
            Err(_) => continue,
        };
        ctx(hidden, || format!("mask {p}"))?;
    }
    for p in READ_ONLY_PATHS {
        let path = Path::new(p);
        if fs::symlink_metadata(path).is_ok() {
            bind(path, path, true)?;
        }
    }
    Ok(())
}

/// Docker's default capability set; everything else is dropped.
const DEFAULT_CAPS: &[caps::Capability] = &[
    caps::Capability::CAP_CHOWN,
    caps::Capability::CAP_DAC_OVERRIDE,
    caps::Capability::CAP_FSETID,
    caps::Capability::CAP_FOWNER,
    caps::Capability::CAP_MKNOD,
    caps::Capability::CAP_NET_RAW,
    caps::Capability::CAP_SETGID,
    caps::Capability::CAP_SETUID,
    caps::Capability::CAP_SETFCAP,
    caps::Capability::CAP_SETPCAP,
    caps::Capability::CAP_NET_BIND_SERVICE,
    caps::Capability::CAP_SYS_CHROOT,
    caps::Capability::CAP_KILL,
    caps::Capability::CAP_AUDIT_WRITE,
];

fn drop_capabilities() -> SetupResult<()> {
    for cap in caps::all() {
        if !DEFAULT_CAPS.contains(&cap) {
            ctx(caps::drop(None, caps::CapSet::Bounding, cap), || format!("drop {cap}"))?;
        }
    }
    let keep: caps::CapsHashSet = DEFAULT_CAPS.iter().copied().collect();
    for set in [caps::CapSet::Inheritable, caps::CapSet::Effective, caps::CapSet::Permitted] {
        let current = ctx(caps::read(None, set), || "read capabilities".into())?;
        let wanted: caps::CapsHashSet = current.intersection(&keep).copied().collect();
        ctx(caps::set(None, set, &wanted), || "set capabilities".into())?;
    }
    Ok(())
}

/// Becomes the step's process: working dir, stdin, user, capabilities, exec.
/// Returns only on failure, with the reason.
fn exec_command(spec: &SandboxSpec) -> String {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if let Err(e) = fs::create_dir_all(&spec.cwd) {
        return format!("cannot create working directory {}: {e}", spec.cwd);
    }
    if let Err(e) = std::env::set_current_dir(&spec.cwd) {
        return format!("cannot enter working directory {}: {e}", spec.cwd);
    }
    if let Err(e) = drop_capabilities() {
        return e;
    }
    // Docker's umask, not whatever rbuild was started with: the modes of
    // the files a step creates go into the layer.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));

    let groups: Vec<Gid> = spec.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if let Err(e) = nix::unistd::setgroups(&groups) {
        return format!("setgroups: {e}");
    }
    let gid = Gid::from_raw(spec.gid);
    if let Err(e) = nix::unistd::setresgid(gid, gid, gid) {
        return format!("setgid {}: {e}", spec.gid);
    }
    let uid = Uid::from_raw(spec.uid);
    if let Err(e) = nix::unistd::setresuid(uid, uid, uid) {
        return format!("setuid {}: {e}", spec.uid);
    }
    let Some(program) = spec.argv.first() else {
        return "empty command".into();
    };
    let path_var = spec.env.iter().find_map(|kv| kv.strip_prefix("PATH=")).unwrap_or(crate::DEFAULT_PATH);
    let resolved = if program.contains('/') {
        PathBuf::from(program)
    } else {
        match path_var.split(':').map(|d| Path::new(d).join(program)).find(|p| is_executable(p)) {
            Some(p) => p,
            None => return format!("exec: {program:?}: executable file not found in $PATH"),
        }
    };
    let to_c = |s: &str| CString::new(s.as_bytes()).unwrap_or_default();
    let argv: Vec<CString> = spec.argv.iter().map(|a| to_c(a)).collect();
    let env: Vec<CString> = spec.env.iter().map(|a| to_c(a)).collect();
    let path = to_c(&resolved.to_string_lossy());
    match nix::unistd::execve(&path, &argv, &env) {
        Ok(never) => match never {},
        Err(e) => format!("exec {}: {e}", resolved.display()),
    }
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Sets `lo` up in a fresh network namespace.
fn bring_up_loopback() -> SetupResult<()> {
    let sock = ctx(
        nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        ),
        || "open socket".into(),
    )?;
    set_interface_up(sock.as_raw_fd(), "lo").map_err(|e| format!("bring up lo: {e}"))
}

#[allow(unsafe_code)]
fn set_interface_up(fd: i32, name: &str) -> std::io::Result<()> {
    // SAFETY: `ifreq` is plain old data; we zero it, copy a NUL-terminated
    // name shorter than IFNAMSIZ, and pass valid pointers to ioctl.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in name.bytes().enumerate().take(libc::IFNAMSIZ - 1) {
            req.ifr_name[i] = b as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
