//! The step's root: an overlay of its layers' snapshot dirs (given
//! relative to the store, to keep the mount options short) under its upper
//! dir, mounted nodev.

use std::path::Path;

use nix::mount::{MsFlags, mount};

use super::super::spec::SandboxSpec;
use super::{SetupResult, ctx};

pub(super) fn mount_overlay(spec: &SandboxSpec) -> SetupResult<()> {
    ctx(std::env::set_current_dir(&spec.store_root), || format!("enter {}", spec.store_root.display()))?;
    let lowers = if spec.lowers.is_empty() {
        spec.empty_lower.to_string_lossy().into_owned()
    } else {
        spec.lowers.join(":")
    };
    let data = mount_options(
        &lowers,
        &short(&spec.store_root, &spec.upper),
        &short(&spec.store_root, &spec.work),
        spec.userxattr,
    );
    if data.len() >= 4000 {
        return Err(format!("too many layers for one overlay mount ({} bytes of options)", data.len()));
    }
    // nodev: a step may mknod (CAP_MKNOD is in Docker's set) but never open
    // a device of the host through a node it made; Docker's device cgroup
    // has the same effect.
    ctx(mount_scratch_overlay(&spec.merged, MsFlags::MS_NODEV, &data), || {
        format!("mount overlay ({} lower layers)", spec.lowers.len())
    })
}

/// The overlay mount data for a step's root.
fn mount_options(lowers: &str, upper: &str, work: &str, userxattr: bool) -> String {
    let mut data = format!("lowerdir={lowers},upperdir={upper},workdir={work}");
    // Copy-up must copy whole files and renames must copy directories, or the
    // upper dir would not be a self-contained layer.
    data.push_str(",index=off,metacopy=off");
    if userxattr {
        // `off` still follows redirects found in lower layers, which the
        // kernel refuses with userxattr; `nofollow` neither makes nor follows
        // them, and our layers never have any.
        data.push_str(",redirect_dir=nofollow,userxattr");
    } else {
        data.push_str(",redirect_dir=off");
    }
    data
}

/// `rbuild __probe-overlay DIR trusted|userxattr`: whether a step's overlay
/// (same options, upper dir in `DIR`, which is on the store's filesystem)
/// mounts and takes a write, in a mount namespace of its own. Prints why
/// not and returns 1 when it does not.
pub fn probe_main(dir: &Path, userxattr: bool) -> i32 {
    match probe(dir, userxattr) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn probe(dir: &Path, userxattr: bool) -> SetupResult<()> {
    ctx(nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS), || "unshare mount namespace".into())?;
    ctx(mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>), || {
        "make mounts private".into()
    })?;
    let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|d| dir.join(d));
    for d in [&lower, &upper, &work, &merged] {
        ctx(std::fs::create_dir(d), || format!("create {}", d.display()))?;
    }
    ctx(std::fs::write(lower.join("file"), b"lower"), || "write the lower layer".into())?;
    let data =
        mount_options(&lower.to_string_lossy(), &upper.to_string_lossy(), &work.to_string_lossy(), userxattr);
    ctx(mount_scratch_overlay(&merged, MsFlags::MS_NODEV, &data), || "mount overlay".into())?;
    // A copy-up and a whiteout: what every RUN step may need.
    ctx(std::fs::write(merged.join("file"), b"upper"), || "write through the overlay".into())?;
    ctx(std::fs::remove_file(merged.join("file")), || "delete through the overlay".into())
}

/// Mounts an overlay whose upper dir is scratch, `volatile` where the kernel
/// has it (5.10+): the step's fsyncs and the syncfs the kernel runs when the
/// mount namespace dies are then no-ops for the upper dir. That syncfs cost
/// 20-200 ms per RUN step; a crashed build discards its scratch anyway, and
/// rbuild decides what is durable when it commits. A kernel that does not
/// know the option refuses it with EINVAL: mount without.
pub(super) fn mount_scratch_overlay(target: &Path, flags: MsFlags, data: &str) -> nix::Result<()> {
    let mount_with = |options: &str| mount(Some("overlay"), target, Some("overlay"), flags, Some(options));
    match mount_with(&format!("{data},volatile")) {
        Err(nix::errno::Errno::EINVAL) => mount_with(data),
        other => other,
    }
}

pub(super) fn short(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned()
}
