//! `chroot` isolation, the parent's side: for environments that allow no
//! new namespace (a container under Docker's or Kubernetes' default
//! profile). The step runs chrooted into its root as its user, with the
//! sandbox's capabilities, seccomp filter, ulimits and umask, but shares
//! the host's (the container's) processes, network, hostname and IPC.
//! Where a private mount namespace can still be made, the helper mounts
//! /proc, /dev, /sys and the RUN mounts in it; where not, they are copied
//! into the root and out again ([`super::staging`]), which needs a root
//! that is a plain directory (the copying snapshotter).

use std::path::PathBuf;

use rbuild_cache::Store;

use super::placeholders;
use super::spec::ChrootMode;
use super::{
    Isolation, NetMode, RunOutcome, RunRequest, SandboxError, leftovers, probe, run_spec, spec_for, staging,
};
use crate::snapshot::StepRoot;

#[derive(Debug, Clone)]
pub struct ChrootIsolation {
    /// The helper (`exe __sandbox SPEC`), normally rbuild itself.
    pub exe: PathBuf,
}

/// What `chroot` isolation leaves shared with the environment rbuild runs
/// in, said once per build.
pub const CHROOT_CAVEAT: &str = "chroot isolation: RUN steps share this machine's (or container's) \
     processes, network, hostname and IPC, and can see and signal rbuild's own processes; only the \
     filesystem root, user, capabilities and seccomp filter are the step's own";

/// Added when no mount namespace can be made either.
pub const NO_MOUNT_CAVEAT: &str = "no mount is allowed here: RUN steps see an empty /proc and /sys, \
     /dev holds only null, zero, full, random, urandom and tty, and RUN --mount content is copied in \
     and out instead of mounted";

impl ChrootIsolation {
    /// Whether the helper will have a private mount namespace.
    pub fn mode() -> ChrootMode {
        ChrootMode { mount_namespace: probe::mount_namespace().is_ok() }
    }
}

impl Isolation for ChrootIsolation {
    fn run(
        &self,
        store: &Store,
        root: &StepRoot,
        req: &RunRequest,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<RunOutcome, SandboxError> {
        let mode = Self::mode();
        // No PID namespace ends the step's processes if its helper dies:
        // they come to rbuild then, which kills them (see `leftovers`).
        leftovers::become_subreaper();
        // chroot makes no network namespace: every step shares the host's
        // network (the build's caveat says so), so no NAT is started for it.
        let mut spec = spec_for(store, root, req, NetMode::Shared)?;
        spec.chroot = Some(mode);
        if mode.mount_namespace {
            return run_spec(&self.exe, root, &spec, req, on_line);
        }
        if spec.prepared_root.is_none() {
            return Err(SandboxError::Setup(
                "chroot isolation cannot mount the step's overlay root here (no mount namespace \
                 can be made: the environment lacks CAP_SYS_ADMIN or its seccomp/AppArmor profile \
                 refuses mounts); use the copying snapshotter (--snapshotter=copy), or run rbuild \
                 where it may mount (--cap-add=SYS_ADMIN, or --privileged)"
                    .into(),
            ));
        }
        let staged = staging::stage(&spec.merged, &root.scratch, &spec)?;
        let outcome = run_spec(&self.exe, root, &spec, req, on_line);
        let put_back = placeholders::plan(&spec.merged, staged.touched());
        // Taken out whatever happened: a secret must not stay in the root.
        let undone = staged.undo();
        placeholders::put_back(root, put_back);
        let outcome = outcome?;
        undone?;
        Ok(outcome)
    }
}
