//! The step graph: what the builder solves. Immutable once lowered; every
//! variable is expanded, every stage reference resolved to an index; each stage
//! carries the image metadata after its last step.

use std::collections::{BTreeMap, BTreeSet};

use crate::span::Span;
pub use rbuild_oci::platform::Platform;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepGraph {
    pub stages: Vec<Stage>,
    /// Index of the stage whose result is the build's result.
    pub target: usize,
    pub warnings: Vec<Warning>,
    /// The value of a global `ARG SOURCE_DATE_EPOCH` (its default, or the
    /// build arg that overrides it), when declared and not empty: the
    /// build's clock unless the caller is given one (BuildKit's rule).
    pub source_date_epoch: Option<String>,
    /// The target platform the graph was lowered for.
    pub platform: Platform,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
    pub span: Option<Span>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// The `AS name`, lower-cased as BuildKit does.
    pub name: Option<String>,
    /// How progress names the stage: its name, or `stage-<index>`.
    pub label: String,
    pub base: Base,
    /// The FROM line.
    pub span: Span,
    /// Only stages the target needs are lowered and built.
    pub needed: bool,
    /// Stages this one reads from (its base stage, `COPY --from`, mounts).
    pub deps: BTreeSet<usize>,
    pub steps: Vec<Step>,
    /// The image metadata after the last step.
    pub meta: ImageMeta,
    /// The stage's own `FROM` text after expansion (`FROM busybox AS deps`).
    pub from_text: String,
    /// The platform the stage's image is for: its `FROM --platform=…`, else
    /// its base stage's, else the build's target platform.
    pub platform: Platform,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// An image reference as written after expansion (`busybox:local`).
    Image(String),
    Stage(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    /// The instruction's span in the Dockerfile.
    pub span: Span,
    /// The instruction as shown in progress (`COPY src/ ./src/`).
    pub text: String,
    /// The history `created_by` text.
    pub created_by: String,
}

impl Step {
    /// True for steps that may change the filesystem (shown in progress).
    pub fn is_filesystem(&self) -> bool {
        !matches!(self.op, Op::Meta)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Run(RunOp),
    Copy(CopyOp),
    /// WORKDIR: creates the directory if missing.
    Mkdir(MkdirOp),
    /// ENV, LABEL, CMD, …: changes only the image config.
    Meta,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOp {
    /// The full argv (shell form already wrapped in the shell).
    pub argv: Vec<String>,
    /// `KEY=value`: the image env plus the stage's build args.
    pub env: Vec<String>,
    /// The build args visible to this step (name, value), for the key and history.
    pub args: Vec<(String, String)>,
    pub user: String,
    pub workdir: String,
    pub network: Network,
    pub security: Security,
    pub mounts: Vec<Mount>,
    /// Proxy variables from `--build-arg` (`HTTP_PROXY`, …) that no ARG
    /// declares: passed to the command but, as in Docker, kept out of the
    /// cache key and the history.
    pub proxy_env: Vec<String>,
    /// A `#!` heredoc run as a program: its body is mounted read-only at
    /// `/dev/pipes/<name>` (never written into the layer) and `argv` runs it.
    pub script: Option<InlineScript>,
}

/// The body of a `RUN <<EOF` heredoc that starts with `#!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineScript {
    /// The heredoc's delimiter, used as the file name.
    pub name: String,
    pub content: String,
}

/// Where BuildKit mounts a `#!` heredoc, and so do we.
pub const INLINE_SCRIPT_DIR: &str = "/dev/pipes";

/// `RUN --security`: the sandbox (Docker's seccomp profile, masked paths
/// and capabilities), or `insecure`, without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    Cache {
        id: String,
        target: String,
        sharing: CacheSharing,
        from: Option<MountSource>,
        source: String,
        uid: u32,
        gid: u32,
        mode: u32,
        readonly: bool,
    },
    Bind {
        target: String,
        from: MountSource,
        source: String,
        readwrite: bool,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
    Secret {
        id: String,
        target: Option<String>,
        env: Option<String>,
        required: bool,
        uid: u32,
        gid: u32,
        mode: u32,
    },
    Ssh {
        id: String,
        target: String,
        required: bool,
        uid: u32,
        gid: u32,
        mode: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    Context,
    Stage(usize),
    Image(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOp {
    pub source: CopySource,
    /// Source paths as written (expanded), relative to the source root; may
    /// hold wildcards.
    pub paths: Vec<SourcePath>,
    /// ADD: remote files to download (`http://`, `https://`), by URL.
    pub urls: Vec<SourcePath>,
    /// ADD: git repositories to check out into the destination.
    pub git: Vec<GitSource>,
    /// ADD `--keep-git-dir`: a git checkout keeps its `.git` directory.
    pub keep_git_dir: bool,
    /// Files given inline as heredocs (`COPY <<EOF /x`): name and content.
    pub inline: Vec<(String, String)>,
    /// The absolute destination (resolved against WORKDIR).
    pub dest: String,
    /// True when the destination is a directory (`/`-terminated, or several sources).
    pub dest_is_dir: bool,
    pub chown: Option<String>,
    pub chmod: Option<FileMode>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// ADD: local archives are extracted (`--unpack` can force it for URLs
    /// or turn it off).
    pub extract_archives: bool,
    /// ADD `--unpack`: extract a downloaded archive too.
    pub unpack_urls: bool,
    /// ADD <url> `--checksum`: the expected `sha256:<hex>` of the download;
    /// for a git repository, the commit (full or a prefix, lower-case hex).
    pub checksum: Option<String>,
    /// The user the step runs as (for resolving `--chown` names).
    pub user: String,
}

/// A `--chmod` value: an octal mode, or a symbolic one as chmod(1) takes
/// (`u+x,go=rX`), applied to each copied entry's own mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMode {
    Octal(u32),
    Symbolic(String),
}

/// `ADD <repository>[?QUERY][#REF[:SUBDIR]]`, split as BuildKit splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The repository URL, without the fragment.
    pub remote: String,
    /// A branch, tag, full ref or commit; empty for the remote's HEAD.
    pub reference: String,
    /// The directory of the repository to add; empty for all of it.
    pub subdir: String,
    /// `?commit=` (or `?checksum=`): the commit, or a prefix of it, the
    /// ref must resolve to; empty when not given.
    pub commit: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePath {
    pub path: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    Context,
    Stage(usize),
    Image(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkdirOp {
    pub path: String,
    pub user: String,
}

/// Image metadata as the Dockerfile builds it up: what ends in the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageMeta {
    /// Ordered as first defined; a redefinition replaces in place.
    pub env: Vec<(String, String)>,
    pub user: String,
    pub workdir: String,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// The shell for shell-form commands; empty means the default `/bin/sh -c`.
    pub shell: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    pub onbuild: Vec<String>,
    pub maintainer: Option<String>,
    pub args_escaped: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    pub interval_ns: i64,
    pub timeout_ns: i64,
    pub start_period_ns: i64,
    pub start_interval_ns: i64,
    pub retries: i64,
}

impl ImageMeta {
    pub fn env_get(&self, key: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn env_set(&mut self, key: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.env.push((key.to_string(), value.to_string())),
        }
    }

    /// The shell for shell-form commands.
    pub fn shell_or_default(&self) -> Vec<String> {
        if self.shell.is_empty() { vec!["/bin/sh".into(), "-c".into()] } else { self.shell.clone() }
    }
}
