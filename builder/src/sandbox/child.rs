//! The sandbox helper: runs in a fresh process (`rbuild __sandbox SPEC`),
//! unshares namespaces, mounts the overlay root and the standard mounts,
//! starts a tiny init as PID 1 of the new PID namespace, and execs the step's
//! command as its user. Every syscall of the sandbox lives here.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use super::rootpath::resolve_in_root;
use super::spec::{ExtraMount, NetMode, SandboxSpec, SandboxStatus};

type SetupResult<T> = Result<T, String>;

fn ctx<T, E: std::fmt::Display>(r: Result<T, E>, what: impl FnOnce() -> String) -> SetupResult<T> {
    r.map_err(|e| format!("{}: {e}", what()))
}

/// Entry point of `rbuild __sandbox SPEC`. Returns the process exit code.
pub fn main(spec_path: &Path) -> i32 {
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
    let mut status = SandboxStatus::default();
    match run(&spec, &mut status) {
        Ok(code) => status.exit_code = code,
        Err(e) => {
            status.exit_code = 125;
            status.setup_error = Some(e);
        }
    }
    let json = serde_json::to_vec(&status).unwrap_or_default();
    if let Err(e) = fs::write(&spec.status_file, json) {
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
    data.push_str(",index=off,metacopy=off,redirect_dir=off");
    if spec.userxattr {
        data.push_str(",userxattr");
    }
    if data.len() >= 4000 {
        return Err(format!("too many layers for one overlay mount ({} bytes of options)", data.len()));
    }
    ctx(mount(Some("overlay"), &spec.merged, Some("overlay"), MsFlags::empty(), Some(data.as_str())), || {
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

fn bind(source: &Path, target: &Path, readonly: bool) -> SetupResult<()> {
    ctx(mount(Some(source), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>), || {
        format!("bind {} on {}", source.display(), target.display())
    })?;
    if readonly {
        ctx(
            mount(
                None::<&str>,
                target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
                None::<&str>,
            ),
            || format!("make {} read-only", target.display()),
        )?;
    }
    Ok(())
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
    mask_proc();

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
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        ),
        || "mount /dev".into(),
    )?;
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = dev.join(name);
        ctx(File::create(&target), || format!("create /dev/{name}"))?;
        bind(&Path::new("/dev").join(name), &target, false)?;
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
    for m in &spec.mounts {
        // A target on a tmpfs mounted above (`/dev/pipes/…` for heredoc
        // scripts) was hidden from prepare_mountpoints: make it here, where
        // it lives only in that tmpfs and never in the layer.
        let (target, is_file) = match m {
            ExtraMount::Bind { source, target, .. } => (target, !source.is_dir()),
            ExtraMount::Tmpfs { target, .. } | ExtraMount::Layers { target, .. } => (target, false),
        };
        let host = at(target)?;
        if fs::symlink_metadata(&host).is_err() {
            let parent = host.parent().unwrap_or(root);
            ctx(fs::create_dir_all(parent), || format!("create the parent of {target}"))?;
            let made = if is_file { File::create(&host).map(drop) } else { fs::create_dir(&host) };
            ctx(made, || format!("create {target}"))?;
        }
        match m {
            ExtraMount::Bind { source, target, readonly } => bind(source, &at(target)?, *readonly)?,
            ExtraMount::Tmpfs { target, size } => {
                let opts = size.map(|s| format!("size={s}")).unwrap_or_default();
                ctx(
                    mount(
                        Some("tmpfs"),
                        &at(target)?,
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
                let flags = if upper.is_some() { MsFlags::empty() } else { MsFlags::MS_RDONLY };
                ctx(std::env::set_current_dir(&spec.store_root), || "enter store".into())?;
                ctx(
                    mount(Some("overlay"), &at(target)?, Some("overlay"), flags, Some(data.as_str())),
                    || format!("mount layers on {target}"),
                )?;
            }
        }
    }
    Ok(())
}

/// Hides the parts of /proc a build step has no business with, as Docker does.
fn mask_proc() {
    for p in
        ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/acpi", "/proc/scsi"]
    {
        let path = Path::new(p);
        if path.is_dir() {
            let _ = mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>);
        } else if path.exists() {
            let _ = mount(Some("/dev/null"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>);
        }
    }
    for p in ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"] {
        if Path::new(p).exists() {
            let _ = bind(Path::new(p), Path::new(p), true);
        }
    }
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
