//! The command line: every subcommand and flag, in clap's derive form.
//! `rbuild -t app:v1 .` without a subcommand means `rbuild build …`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    Build(BuildArgs),
    /// Load images from a docker-archive or OCI archive (plain, gzip or zstd)
    Load(LoadArgs),
    /// Create an image from a root filesystem tarball
    Import(ImportArgs),
    /// Developer tools: print the parse tree or the step graph
    Debug {
        #[command(subcommand)]
        what: DebugCommand,
    },
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

    /// Output: type=docker|oci|tar,dest=FILE, type=local,dest=DIR, or a directory
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

    /// Target platform (only the host platform is supported)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// Add a label to the image
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

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
}

const SUBCOMMANDS: &[&str] = &["build", "load", "import", "debug", "help"];

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
