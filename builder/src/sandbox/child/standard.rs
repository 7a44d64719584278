//! The mounts every step gets, and the step's own: /proc, a minimal /dev
//! (the host's null, zero, full, random, urandom and tty bound in, a fresh
//! devpts and /dev/shm), /sys read-only, /etc/resolv.conf and /etc/hosts,
//! then the RUN --mount targets, each opened without leaving the root.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

use super::super::rootpath::resolve_in_root;
use super::super::spec::{ExtraMount, SandboxSpec};
use super::super::target::{Target, bind_tree, open_root};
use super::binds::{bind, bind_device, bind_unrestricted, restrict};
use super::{SetupResult, ctx};

/// `path` inside the root, its symlinks resolved as if the root were `/`.
fn at(root: &Path, path: &str) -> SetupResult<PathBuf> {
    ctx(resolve_in_root(root, path), || format!("resolve {path}"))
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC);

/// Every mount of the step, in order: the standard ones, then its own.
pub(super) fn mount_standard(spec: &SandboxSpec, root: &Path) -> SetupResult<()> {
    mount_proc(&at(root, "/proc")?)?;
    mount_dev(&at(root, "/dev")?, spec.shm_size)?;
    mount_sys(&at(root, "/sys")?)?;
    for (source, target) in &spec.etc_binds {
        bind(source, &at(root, target)?, false)?;
    }
    mount_extra(spec, root)
}

/// A fresh /proc of the step's PID namespace. Inside a container the
/// kernel refuses one to a user namespace (EPERM) while the container's
/// /proc has paths masked by mounts over them, as Docker's and Kubernetes'
/// default profiles do: the container's /proc is then bound instead, its
/// masks with it (the step sees the container's processes there, not only
/// its own).
fn mount_proc(proc: &Path) -> SetupResult<()> {
    match mount(Some("proc"), proc, Some("proc"), NOSUID_NODEV_NOEXEC, None::<&str>) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) => bind_unrestricted(Path::new("/proc"), proc).map_err(|e| {
            format!(
                "mount /proc: EPERM (the container's /proc has masked paths), and binding it \
                 failed too ({e}); run the container with --security-opt systempaths=unconfined \
                 or build with --isolation=chroot"
            )
        }),
        Err(e) => Err(format!("mount /proc: {e}")),
    }
}

/// Docker's /dev/shm when `--shm-size` is not given: 64 MiB.
const DEFAULT_SHM_BYTES: u64 = 64 << 20;

/// A minimal /dev: a few host devices bound in, a private devpts and shm
/// (`shm_size` bytes, Docker's 64 MiB when unset).
fn mount_dev(dev: &Path, shm_size: Option<u64>) -> SetupResult<()> {
    ctx(
        mount(
            Some("tmpfs"),
            dev,
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
    ctx(
        mount(
            Some("shm"),
            &dev.join("shm"),
            Some("tmpfs"),
            NOSUID_NODEV_NOEXEC,
            Some(format!("mode=1777,size={}", shm_size.unwrap_or(DEFAULT_SHM_BYTES)).as_str()),
        ),
        || "mount /dev/shm".into(),
    )?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ctx(std::os::unix::fs::symlink(target, dev.join(link)), || format!("link /dev/{link}"))?;
    }
    Ok(())
}

/// /sys, read-only.
fn mount_sys(sys: &Path) -> SetupResult<()> {
    let sys_flags = NOSUID_NODEV_NOEXEC | MsFlags::MS_RDONLY;
    if mount(Some("sysfs"), sys, Some("sysfs"), sys_flags, None::<&str>).is_err() {
        // Without a network namespace of our own sysfs may refuse a new
        // instance; a read-only bind of the host's is what Docker falls back to.
        bind(Path::new("/sys"), sys, true)?;
    }
    Ok(())
}

/// The step's RUN --mount targets.
fn mount_extra(spec: &SandboxSpec, root: &Path) -> SetupResult<()> {
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
                    restrict(&at(root, target)?, *readonly)?;
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
                let mounted = if upper.is_some() {
                    super::overlay::mount_scratch_overlay(Path::new(&at_handle), flags, &data)
                } else {
                    mount(Some("overlay"), &at_handle, Some("overlay"), flags, Some(data.as_str()))
                };
                ctx(mounted, || format!("mount layers on {target}"))?;
            }
        }
    }
    Ok(())
}
