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
    ctx(mount_scratch_overlay(&spec.merged, MsFlags::MS_NODEV, &data), || {
        format!("mount overlay ({} lower layers)", spec.lowers.len())
    })
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
