//! What the parent tells the sandbox helper: a plain serialisable spec, so
//! the namespaced child needs nothing from the parent's memory.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::run_settings::Ulimit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetMode {
    /// The host's network (`--network=host`).
    Shared,
    /// A fresh network namespace with only `lo` (`--network=none`).
    Isolated,
    /// A fresh network namespace with `lo` and `eth0`, whose traffic
    /// slirp4netns carries out through the host (user-mode NAT); the
    /// host's loopback stays out of reach. BuildKit's default.
    Nat,
}

/// How the helper starts slirp4netns for a [`NetMode::Nat`] step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatSpec {
    /// The slirp4netns executable, found by the parent (the helper runs
    /// with an empty environment).
    pub slirp4netns: PathBuf,
    /// Where slirp4netns writes its messages, read when it fails.
    pub log: PathBuf,
}

/// An extra mount inside the root, applied after the standard ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtraMount {
    /// Bind a host path (a directory or a file) at `target`.
    Bind { source: PathBuf, target: String, readonly: bool },
    /// A fresh tmpfs.
    Tmpfs { target: String, size: Option<u64> },
    /// A read-only overlay of snapshot dirs (store-relative, top first), for
    /// `--mount=type=bind,from=<stage>`; `upper`/`work` make it writable
    /// (changes discarded).
    Layers { lowers: Vec<String>, target: String, upper: Option<(PathBuf, PathBuf)> },
}

/// The step's process: what runs, as whom, where, with which environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub argv: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// The helper changes into this directory so overlay lowerdirs can be
    /// given as short relative paths.
    pub store_root: PathBuf,
    /// Snapshot dirs relative to `store_root`, top layer first. May be empty.
    pub lowers: Vec<String>,
    /// An empty directory used as the only lower when `lowers` is empty.
    pub empty_lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// A root prepared as a real directory (the copying snapshotter): bound
    /// onto itself and used as it is, instead of the overlay above.
    #[serde(default)]
    pub prepared_root: Option<PathBuf>,
    /// Use `user.overlay.*` xattrs (rootless overlay).
    pub userxattr: bool,
    pub process: Process,
    pub hostname: String,
    pub network: NetMode,
    /// Set when `network` is [`NetMode::Nat`].
    #[serde(default)]
    pub nat: Option<NatSpec>,
    /// Host files bound over `/etc/resolv.conf` and `/etc/hosts` (copies,
    /// so a step writing them never touches the host's).
    pub etc_binds: Vec<(PathBuf, String)>,
    pub mounts: Vec<ExtraMount>,
    /// Where the helper writes its [`SandboxStatus`].
    pub status_file: PathBuf,
    /// The seccomp program (BPF) the step runs under; `None` runs it
    /// without one (`RUN --security=insecure`).
    pub seccomp_filter: Option<PathBuf>,
    /// `RUN --security=insecure`: kernel paths left unmasked and writable,
    /// capabilities kept.
    pub unconfined: bool,
    /// `--ulimit`: limits set on the command before it starts.
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// `--shm-size`: bytes of /dev/shm (64 MiB when unset, as Docker).
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// Set for `chroot` isolation: no namespaces but, when allowed, a
    /// private mount namespace.
    #[serde(default)]
    pub chroot: Option<ChrootMode>,
}

/// How a `chroot` step is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChrootMode {
    /// A private mount namespace could be made: the root's /proc, /dev,
    /// /sys and RUN mounts are mounted as in the sandbox. Without it the
    /// parent copied everything into the root beforehand
    /// (`sandbox::staging`) and the helper mounts nothing.
    pub mount_namespace: bool,
}

/// What the helper reports back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxStatus {
    /// The command's exit code, or 128 + signal.
    pub exit_code: i32,
    /// Set when the sandbox itself could not be set up (not the command's failure).
    pub setup_error: Option<String>,
    /// Paths (relative to the root) the helper created only to mount on;
    /// they must not end up in the layer.
    pub mountpoints_created: Vec<String>,
    /// Existing directories the helper created those in, with their times
    /// before and after: the parent puts the times back once the
    /// placeholders are gone, so a step that changed nothing there leaves
    /// nothing there in its layer.
    #[serde(default)]
    pub parents_touched: Vec<TouchedParent>,
}

/// An existing directory that got a mount placeholder created in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchedParent {
    /// Relative to the root ("" for the root itself).
    pub path: String,
    /// Access and modification times before the first placeholder.
    pub before: [(i64, i64); 2],
    /// Modification time right after the last placeholder: if the step
    /// left it so, the step added or removed nothing there.
    pub after_mtime: (i64, i64),
    /// Change time right after the last placeholder: if the step left it
    /// so, the step changed nothing of the directory (entries, mode,
    /// owner, xattrs all move it).
    pub after_ctime: (i64, i64),
}
