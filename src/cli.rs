//! The command line: every subcommand and flag, in clap's derive form.
//! `rbuild -t app:v1 .` without a subcommand means `rbuild build …`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rbuild_builder::snapshot::select::SnapshotterChoice;

#[derive(Debug, Parser)]
#[command(name = "rbuild", version, about = "Build OCI/Docker images from Dockerfiles, without a daemon")]
pub struct Cli {
    /// Store directory (default /var/lib/rbuild as root, $XDG_DATA_HOME/rbuild otherwise)
    #[arg(long, global = true, env = "RBUILD_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Log level for diagnostics on stderr (error, warn, info, debug, trace)
    #[arg(long, global = true, env = "RBUILD_LOG", value_name = "LEVEL", default_value = "warn")]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile
    Build(Box<BuildArgs>),
    /// Load images from a docker-archive or OCI archive (plain, gzip or zstd)
    Load(LoadArgs),
    /// Create an image from a root filesystem tarball
    Import(ImportArgs),
    /// Developer tools: print the parse tree or the step graph
    Debug {
        #[command(subcommand)]
        what: DebugCommand,
    },
    /// List images
    Images(ImagesArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Remove images
    Rmi(RmiArgs),
    /// Show low-level information about images
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Write images to a docker-archive (to stdout without -o)
    Save(SaveArgs),
    /// Manage images (ls, rm, inspect, history, save, load, import, tag, prune)
    Image {
        #[command(subcommand)]
        what: ImageCommand,
    },
    /// Records of past builds: list, show, compare, remove
    Builds {
        #[command(subcommand)]
        what: Option<BuildsCommand>,
    },
    /// Manage the build cache
    Builder {
        #[command(subcommand)]
        what: BuilderCommand,
    },
    /// Manage RUN --mount=type=cache directories (ls, export, import, rm, prune)
    #[command(name = "cache-mounts")]
    CacheMounts {
        #[command(subcommand)]
        what: CacheMountsCommand,
    },
    /// Store-wide information and checks
    System {
        #[command(subcommand)]
        what: SystemCommand,
    },
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry (credentials go to Docker's config.json)
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// List a registry's repositories (and their tags) whose name contains a term
    Search(SearchArgs),
}

/// How to reach registries that do not have a verified TLS certificate.
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryFlags {
    /// Allow plain HTTP or an unverified certificate for this registry (repeatable; registries on this machine always may)
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Print only the image reference
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The platform to pull of a multi-platform image (default: the host's)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push every tag of the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Print only the pushed references
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[arg(value_name = "NAME[:TAG]")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin: a command line is visible to other users)
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
    /// The registry (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Show at most this many repositories
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    #[command(flatten)]
    pub registry: RegistryFlags,
    /// REGISTRY/TERM, e.g. localhost:5000/app
    #[arg(value_name = "REGISTRY/TERM")]
    pub query: String,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    Inspect(InspectArgs),
    History(HistoryArgs),
    Save(SaveArgs),
    Load(LoadArgs),
    Import(ImportArgs),
    Tag(TagArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
}

#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(Debug, Subcommand)]
pub enum CacheMountsCommand {
    /// List cache mounts: id, size, last use and the builds that used them
    #[command(visible_alias = "list")]
    Ls,
    /// Write a cache mount's content as a tar (.gz/.tgz or .zst names compress)
    Export(MountsExportArgs),
    /// Make a tar (plain, gzip or zstd) the content of a cache mount
    Import(MountsImportArgs),
    /// Remove cache mounts
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(value_name = "ID", required = true)]
        ids: Vec<String>,
    },
    /// Remove the least recently used cache mounts
    Prune(MountsPruneArgs),
}

#[derive(Debug, Args)]
pub struct MountsExportArgs {
    /// The cache mount's id (its target path when the Dockerfile gives no id=)
    #[arg(value_name = "ID")]
    pub id: String,
    /// The tar to write
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct MountsImportArgs {
    #[arg(value_name = "ID")]
    pub id: String,
    /// A tar written by `cache-mounts export` (or any tar of the content)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct MountsPruneArgs {
    /// Keep the most recently used mounts up to this much storage
    #[arg(long, value_name = "SIZE")]
    pub keep_storage: Option<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum BuildsCommand {
    /// List build records, newest first
    #[command(visible_alias = "list")]
    Ls(BuildsLsArgs),
    /// One build: its options and every step (cached or ran and why, times, sizes)
    Show(BuildsShowArgs),
    /// Compare two builds step by step
    Diff(BuildsDiffArgs),
    /// Remove build records
    #[command(visible_alias = "remove")]
    Rm(BuildsRmArgs),
    /// Remove build records, all or all but the newest
    Prune(BuildsPruneArgs),
}

#[derive(Debug, Default, Args)]
pub struct BuildsLsArgs {
    /// Only show build IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a Go template, `table`, `table TEMPLATE` or `json`
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Show full build IDs
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct BuildsShowArgs {
    /// A build ID (or a unique prefix), `last` or `last~N`
    #[arg(value_name = "BUILD")]
    pub build: String,
    /// Also write the build's timings report (HTML), to PATH or to rbuild-timings/
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true)]
    pub timings: Option<Option<PathBuf>>,
    /// Print the record as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BuildsDiffArgs {
    /// The earlier build (ID, prefix, `last~N`)
    #[arg(value_name = "A")]
    pub a: String,
    /// The later build
    #[arg(value_name = "B")]
    pub b: String,
}

#[derive(Debug, Args)]
pub struct BuildsRmArgs {
    /// Build IDs (or unique prefixes), `last`, `last~N`
    #[arg(value_name = "BUILD", required = true)]
    pub builds: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BuildsPruneArgs {
    /// Keep the newest N records
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep: usize,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (until=24h: only records of builds started earlier)
    #[arg(long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage of images and build cache
    Df(DfArgs),
    /// Verify every blob's digest and every reference in the store
    Check,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output (dangling=true|false, reference=PATTERN, label=K[=V], before=IMAGE, since=IMAGE)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Format output: table [TEMPLATE], json, or a Go template
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output using a Go template
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    /// Format output using a Go template
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compress {
    Gzip,
    Zstd,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file instead of stdout (`.tar.gz`/`.tgz` compresses with gzip, `.tar.zst` with zstd)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Compress the archive
    #[arg(long, value_enum)]
    pub compress: Option<Compress>,
    /// The platform to save of a multi-platform image (linux/arm64)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. until=24h)
    #[arg(long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BuilderPruneArgs {
    /// Remove all build cache, not just entries unused by tagged images
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Amount of disk space to keep for cache (e.g. 512MB, 2GB)
    #[arg(long, value_name = "SIZE")]
    pub keep_storage: Option<String>,
    /// Provide filter values (e.g. until=24h)
    #[arg(long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Format output using a Go template
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Tty,
    Plain,
    Quiet,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (name:tag); may be given several times
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,

    /// The Dockerfile (default: CONTEXT/Dockerfile); `-` reads it from stdin
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Set a build-time variable
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,

    /// Build this stage and the stages it needs, not the last one
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,

    /// Do not use the cache
    #[arg(long)]
    pub no_cache: bool,

    /// Output: type=docker|oci|tar,dest=FILE, type=local,dest=DIR, type=image,name=REF[,push=true], or a directory
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub output: Vec<String>,

    /// Write the image ID to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,

    /// How to show progress
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,

    /// Print only the image ID
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// A secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR
    #[arg(long, value_name = "SPEC")]
    pub secret: Vec<String>,

    /// An SSH agent for RUN --mount=type=ssh and ADD git@…: default (the agent in
    /// $SSH_AUTH_SOCK), ID=SOCKET or ID=KEYFILE[,KEYFILE]
    #[arg(long, value_name = "ID[=SOCKET|KEYFILE]")]
    pub ssh: Vec<String>,

    /// Target platforms, comma-separated (linux/amd64,linux/arm64); foreign RUN steps need QEMU (qemu-user-static)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// Add a label to the image
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// Write JSON about the build (image ID, each step: cached, why it ran, time, layer)
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,

    /// Only plan: print which steps would run and why, run nothing
    #[arg(long)]
    pub explain: bool,

    /// Ask the frontend instead of building: `check` (report build-check
    /// violations, exit 1 if any), `outline` (build args, secrets and SSH ids
    /// the target uses), `targets` (the stages); add `,format=json` for JSON
    #[arg(long, value_name = "METHOD[,format=json]")]
    pub call: Option<String>,

    /// Same as --call=check
    #[arg(long)]
    pub check: bool,

    /// An extra named context for FROM NAME, COPY --from=NAME and
    /// RUN --mount=from=NAME: a directory, docker-image://REF,
    /// oci-layout://PATH[:TAG], or target:STAGE
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_context: Vec<String>,

    /// Write an HTML timings report (chart and step table) to PATH, or to rbuild-timings/
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true)]
    pub timings: Option<Option<PathBuf>>,

    /// Check registries for newer versions of the images the Dockerfile names
    #[arg(long)]
    pub pull: bool,

    /// Grant an entitlement: `security.insecure` lets `RUN --security=insecure`
    /// run without the seccomp filter, masked paths and capability limits;
    /// `network.host` allows `--network host`
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,

    /// Add a line to /etc/hosts of every RUN (`host-gateway` is the host's address)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,

    /// A resource limit for every RUN, e.g. nofile=1024:2048 (-1 is unlimited)
    #[arg(long, value_name = "TYPE=SOFT[:HARD]")]
    pub ulimit: Vec<String>,

    /// Size of /dev/shm in every RUN (default 64m)
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,

    /// Network of every RUN without its own --network: default, none, or host
    /// (host needs --allow network.host)
    #[arg(long, value_name = "MODE")]
    pub network: Option<String>,

    /// How RUN steps are isolated: auto (the default), sandbox (namespaces) or chroot
    /// (no namespace: for containers under a default profile); also RBUILD_ISOLATION
    #[arg(long, value_name = "MODE")]
    pub isolation: Option<String>,

    /// Where RUN steps' roots come from: overlay (an overlayfs mount), copy
    /// (a copied directory, for stores where overlayfs cannot mount), or auto
    #[arg(long, env = "RBUILD_SNAPSHOTTER", value_name = "auto|overlay|copy", default_value = "auto")]
    pub snapshotter: SnapshotterChoice,

    /// Run these stages' steps even when cached (comma-separated; may be repeated)
    #[arg(long = "no-cache-filter", value_name = "STAGE[,STAGE]")]
    pub no_cache_filter: Vec<String>,

    /// Push the image to its registry under every -t tag
    #[arg(long)]
    pub push: bool,

    /// Add an OCI annotation: [TYPE[,TYPE][[os/arch]]:]KEY=VALUE, TYPE manifest (the
    /// default), index or manifest-descriptor (those two need -o type=oci)
    #[arg(long = "annotation", value_name = "[TYPE:]KEY=VALUE")]
    pub annotations: Vec<String>,

    /// Export the build cache: type=registry,ref=REF[,mode=min|max] or type=local,dest=DIR[,mode=min|max]
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,

    /// Use build cache from type=registry,ref=REF, type=local,src=DIR, or REF
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,

    #[command(flatten)]
    pub registry: RegistryFlags,

    /// The build context directory
    #[arg(value_name = "CONTEXT")]
    pub context: PathBuf,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this file instead of stdin
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print only the loaded image references
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message for the history
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// The root filesystem tarball (plain or gzip), or - for stdin
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Name for the image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Print a Dockerfile's parse tree in BuildKit's dump format
    Ast {
        #[arg(value_name = "DOCKERFILE")]
        file: PathBuf,
    },
    /// Print the step graph a build would solve (stages, steps, dependencies)
    Graph(GraphArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz (render with `dot -Tsvg`)
    Dot,
    Json,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "dot")]
    pub format: GraphFormat,
    /// Lower for this stage as the target
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Set a build-time variable
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// The build context directory
    #[arg(value_name = "CONTEXT")]
    pub context: PathBuf,
}

const SUBCOMMANDS: &[&str] = &[
    "build",
    "load",
    "import",
    "debug",
    "help",
    "images",
    "tag",
    "rmi",
    "inspect",
    "history",
    "save",
    "image",
    "builder",
    "cache-mounts",
    "system",
    "pull",
    "push",
    "login",
    "logout",
    "search",
    "builds",
];

/// Inserts `build` when the first non-global argument is not a subcommand,
/// so `rbuild -t app:v1 .` works like `rbuild build -t app:v1 .`.
pub fn with_default_subcommand(args: Vec<OsString>) -> Vec<OsString> {
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--root" || a == "--log-level" {
            i += 2;
            continue;
        }
        if a.starts_with("--root=") || a.starts_with("--log-level=") {
            i += 1;
            continue;
        }
        break;
    }
    let Some(first) = args.get(i).map(|a| a.to_string_lossy().into_owned()) else { return args };
    if SUBCOMMANDS.contains(&first.as_str()) || matches!(first.as_str(), "-h" | "--help" | "-V" | "--version")
    {
        return args;
    }
    let mut out = args;
    out.insert(i, OsString::from("build"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn build_is_the_default_subcommand() {
        assert_eq!(
            with_default_subcommand(os(&["rbuild", "-t", "a", "."])),
            os(&["rbuild", "build", "-t", "a", "."])
        );
        assert_eq!(
            with_default_subcommand(os(&["rbuild", "--root", "/x", "."])),
            os(&["rbuild", "--root", "/x", "build", "."])
        );
        assert_eq!(
            with_default_subcommand(os(&["rbuild", "load", "-i", "f"])),
            os(&["rbuild", "load", "-i", "f"])
        );
        assert_eq!(with_default_subcommand(os(&["rbuild", "--help"])), os(&["rbuild", "--help"]));
    }
}
