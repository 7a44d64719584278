//! The `rbuild` command line: parses arguments, opens the store, and hands
//! each command to its module. Errors print with a hint and exit 1.
//!
//! Modules, lowest first (each uses only modules above it in this list):
//! `report` (failures), `cli` (flags), `store_dir`, `source_date_epoch`,
//! `dockerfile`, `progress`, `output` (a build's outputs and writing files
//! the user names), `registry`, `images` (the image commands), `records`
//! (build records, `rbuild builds`, `--timings`), `load`, `build`, `debug`,
//! `rootless`.

mod build;
mod cli;
mod debug;
mod dockerfile;
mod git_remote;
mod images;
mod load;
mod output;
mod progress;
mod records;
mod registry;
mod report;
mod rootless;
mod source_date_epoch;
mod store_dir;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{BuilderCommand, Cli, Command, ImageCommand, SystemCommand};
use crate::report::Failure;
use crate::store_dir::{open_store, store_root};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The sandbox helper: rbuild re-executes itself to set up each RUN step
    // in a single-threaded process, before anything else starts.
    if args.get(1).is_some_and(|a| a == "__sandbox") {
        let Some(spec) = args.get(2) else { return ExitCode::from(125) };
        let code = rbuild_builder::sandbox::child::main(std::path::Path::new(spec));
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    // The overlay probe of `--snapshotter auto`, started by a build (inside
    // its user namespace when rootless).
    if args.get(1).is_some_and(|a| a == "__probe-overlay") {
        let (Some(dir), Some(flavour)) = (args.get(2), args.get(3)) else { return ExitCode::from(125) };
        let code = rbuild_builder::sandbox::child::probe_overlay_main(
            std::path::Path::new(dir),
            flavour == "userxattr",
        );
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    // Not root: run as root of a user namespace (before any thread starts).
    if let Some(code) = rootless::run_in_user_namespace_unless_root(&args) {
        return code;
    }
    // Root that may not make namespaces but may make a user namespace:
    // root of one of its own (before any thread starts, too).
    if let Some(code) = rootless::run_as_root_of_user_namespace_if_needed(&args) {
        return code;
    }
    let cli = Cli::parse_from(cli::with_default_subcommand(args));
    handle_interrupts();
    init_logging(&cli.log_level);
    let result = run(cli);
    if let Some(code) = interrupted() {
        // The interrupt handler is cleaning up and will exit; a failure the
        // interruption caused is not the user's error.
        std::thread::sleep(std::time::Duration::from_secs(30));
        return ExitCode::from(code);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log piped to a file or a test stays plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn run(cli: Cli) -> Result<(), Failure> {
    let root = store_root(cli.root);
    match cli.command {
        Command::Build(args) => build::run(&open_store(&root)?, *args),
        Command::Load(args) => load::load(&open_store(&root)?, args),
        Command::Import(args) => load::import(&open_store(&root)?, args),
        Command::Debug { what } => debug::run(what, &root),
        Command::Images(args) => images::list(&open_store(&root)?, args),
        Command::Tag(args) => images::tag(&open_store(&root)?, args),
        Command::Rmi(args) => images::rmi(&open_store(&root)?, args),
        Command::Inspect(args) => images::inspect(&open_store(&root)?, args),
        Command::History(args) => images::history(&open_store(&root)?, args),
        Command::Save(args) => images::save(&open_store(&root)?, args),
        Command::Image { what } => {
            let store = open_store(&root)?;
            match what {
                ImageCommand::Ls(args) => images::list(&store, args),
                ImageCommand::Rm(args) => images::rmi(&store, args),
                ImageCommand::Inspect(args) => images::inspect(&store, args),
                ImageCommand::History(args) => images::history(&store, args),
                ImageCommand::Save(args) => images::save(&store, args),
                ImageCommand::Load(args) => load::load(&store, args),
                ImageCommand::Import(args) => load::import(&store, args),
                ImageCommand::Tag(args) => images::tag(&store, args),
                ImageCommand::Prune(args) => images::prune(&store, args),
            }
        }
        Command::Builder { what: BuilderCommand::Prune(args) } => {
            images::builder_prune(&open_store(&root)?, args, &records::prune_with_cache)
        }
        Command::CacheMounts { what } => images::cache_mounts(&open_store(&root)?, what),
        Command::Builds { what } => records::builds_command(&open_store(&root)?, what),
        Command::Pull(args) => registry::pull_command(&open_store(&root)?, args),
        Command::Push(args) => registry::push_command(&open_store(&root)?, args),
        Command::Login(args) => registry::login_command(args),
        Command::Logout(args) => registry::logout_command(args),
        Command::Search(args) => registry::search_command(args),
        Command::System { what } => {
            let store = open_store(&root)?;
            match what {
                SystemCommand::Df(args) => images::system_df(&store, args),
                SystemCommand::Check => images::system_check(&store),
            }
        }
    }
}

/// 128 + the signal that interrupted us, or 0.
static INTERRUPTED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn interrupted() -> Option<u8> {
    match INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        code => Some(code),
    }
}

/// On SIGINT, SIGTERM or SIGHUP: stop running steps, remove this process's
/// scratch space, and exit with 128 + the signal number, as a shell would
/// report. Nothing half-written is visible in the store: every commit is a
/// rename, and a step that did not finish never got one.
fn handle_interrupts() {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    // Blocked here, so every thread started later has them blocked and only
    // the waiting thread below receives them. Child processes start with a
    // clean mask (std::process::Command resets it).
    if pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).is_err() {
        return;
    }
    std::thread::spawn(move || {
        if let Ok(signal) = set.wait() {
            INTERRUPTED.store(128 + signal as u8, std::sync::atomic::Ordering::SeqCst);
            rbuild_builder::sandbox::kill_running();
            rbuild_cache::store::remove_own_scratch();
            eprintln!("rbuild: interrupted by {signal}; the store is unchanged by the unfinished work");
            std::process::exit(128 + signal as i32);
        }
    });
}
