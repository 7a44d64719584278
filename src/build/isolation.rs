//! `--isolation=auto|sandbox|chroot` (and `RBUILD_ISOLATION`): which
//! isolation runs the build's RUN steps. `auto` takes the sandbox where new
//! namespaces can be made (root, or root of rbuild's own user namespace,
//! see `rootless.rs`) and `chroot` where none can (a container under its
//! runtime's default profile). The choice is shown once at the start of the
//! build's progress, with what `chroot` cannot isolate.

use std::path::PathBuf;
use std::sync::Arc;

use rbuild_builder::sandbox::chroot::{CHROOT_CAVEAT, NO_MOUNT_CAVEAT};
use rbuild_builder::sandbox::{ChrootIsolation, Isolation, NamespaceSandbox, nat, probe};

use crate::report::Failure;

/// The isolation a build uses, and the lines that tell the user about it.
pub struct Chosen {
    pub isolation: Arc<dyn Isolation>,
    /// `isolation: …`, the first progress line.
    pub banner: String,
    /// What the isolation leaves shared, said once.
    pub caveats: Vec<String>,
}

/// Picks the isolation `flag` (else `RBUILD_ISOLATION`, else `auto`) asks for.
pub fn choose(flag: Option<&str>) -> Result<Chosen, Failure> {
    let from_env = std::env::var("RBUILD_ISOLATION").ok().filter(|v| !v.is_empty());
    let wanted = flag.map(str::to_string).or(from_env).unwrap_or_else(|| "auto".into());
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(format!("cannot find the rbuild executable: {e}")))?;
    let namespaces = probe::sandbox_namespaces();
    match wanted.as_str() {
        "sandbox" => match namespaces {
            Ok(()) => Ok(sandbox(exe)),
            Err(e) => Err(Failure::new(format!(
                "--isolation=sandbox needs new namespaces, and this environment refuses them ({e}{})",
                user_namespace_note()
            ))
            .hint(
                "inside a container, run it with --security-opt seccomp=unconfined (rbuild then \
                 makes them in a user namespace of its own; AppArmor must allow mounts too: \
                 --security-opt apparmor=unconfined) or with --privileged; or build with \
                 --isolation=chroot (or auto), which needs no namespace",
            )),
        },
        "chroot" => Ok(chroot(exe, "asked for".into())),
        "auto" => Ok(match namespaces {
            Ok(()) => sandbox(exe),
            Err(e) => chroot(exe, format!("new namespaces are refused here: {e}{}", user_namespace_note())),
        }),
        other => Err(Failure::new(format!("unknown isolation {other:?}"))
            .hint("use --isolation=auto, sandbox or chroot (or RBUILD_ISOLATION)")),
    }
}

/// Why the user namespace route did not help either, when it was tried.
fn user_namespace_note() -> String {
    match probe::user_namespace() {
        Err(e) => format!("; in a user namespace too: {e}"),
        Ok(()) => String::new(),
    }
}

fn sandbox(exe: PathBuf) -> Chosen {
    let how = if rbuild_layer::has_host_root() {
        "namespaces"
    } else {
        "namespaces inside rbuild's user namespace"
    };
    // Default-network steps get a namespace of their own behind NAT where
    // slirp4netns can run, else the host's network, said here once (as
    // BuildKit falls back to the host's network without its bridge).
    let (nat, caveats) = match nat::find_slirp4netns() {
        Ok(_) => (true, Vec::new()),
        Err(u) => (
            false,
            vec![format!(
                "network: RUN steps on the default network share the host's network here: {}; to give \
                 each a network of its own behind NAT, {}",
                u.why, u.remedy
            )],
        ),
    };
    Chosen {
        isolation: Arc::new(NamespaceSandbox { exe, nat }),
        banner: format!("isolation: sandbox ({how})"),
        caveats,
    }
}

fn chroot(exe: PathBuf, why: String) -> Chosen {
    let mut caveats = vec![CHROOT_CAVEAT.to_string()];
    let mode = ChrootIsolation::mode();
    if !mode.mount_namespace {
        caveats.push(NO_MOUNT_CAVEAT.to_string());
    }
    let mounts = if mode.mount_namespace { "with a mount namespace" } else { "without mounts" };
    Chosen {
        isolation: Arc::new(ChrootIsolation { exe }),
        banner: format!("isolation: chroot, {mounts} ({why})"),
        caveats,
    }
}
