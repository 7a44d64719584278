//! Isolation: where a RUN step's command runs, behind the [`Isolation`]
//! seam. [`NamespaceSandbox`] is the one that ships: the parent side
//! ([`run`]) writes a [`SandboxSpec`] for the step's prepared root, starts
//! `rbuild __sandbox SPEC` (see [`child`]), streams its output, and reads
//! the helper's status; the step's changes stay in the root's upper dir.

pub mod child;
pub mod chroot;
pub mod error;
mod leftovers;
pub mod nat;
mod placeholders;
pub mod probe;
pub mod rootpath;
pub mod seccomp;
pub mod spec;
mod staging;
pub mod target;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use chroot::ChrootIsolation;
pub use error::SandboxError;
pub use spec::{ChrootMode, ExtraMount, NatSpec, NetMode, Process, SandboxSpec, SandboxStatus};

use rbuild_cache::Store;

use crate::run_settings::RunSettings;
use crate::snapshot::{RootMount, StepRoot};
use rbuild_oci::io_error::IoError;

/// An io error while setting a step up: `action` on `path` (empty for
/// pipes and processes).
fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SandboxError + 'a {
    move |source| SandboxError::Io(IoError::new(action, path, source))
}

/// Runs one RUN step's command on a root a snapshotter prepared.
pub trait Isolation: Send + Sync + std::fmt::Debug {
    /// Runs `req` in `root`, passing each output line to `on_line`. The
    /// command's changes are left in `root.written_tree()`; a command that fails is
    /// an outcome with its exit code, not an error.
    fn run(
        &self,
        store: &Store,
        root: &StepRoot,
        req: &RunRequest,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<RunOutcome, SandboxError>;
}

/// Namespaces (mount, PID, UTS, IPC, and network unless the host's is
/// asked for; behind slirp4netns's NAT by default), the root
/// mounted in them, Docker's capabilities, masked paths and seccomp
/// profile: a helper
/// process (`exe __sandbox SPEC`, normally rbuild itself) sets it up.
#[derive(Debug, Clone)]
pub struct NamespaceSandbox {
    pub exe: PathBuf,
    /// Whether default-network steps get a namespace of their own behind
    /// NAT; where slirp4netns cannot run they share the host's network
    /// (the build says so at its start, see `nat::find_slirp4netns`).
    pub nat: bool,
}

impl Isolation for NamespaceSandbox {
    fn run(
        &self,
        store: &Store,
        root: &StepRoot,
        req: &RunRequest,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<RunOutcome, SandboxError> {
        let network = if req.network == NetMode::Nat && !self.nat { NetMode::Shared } else { req.network };
        run(store, &self.exe, root, req, network, on_line)
    }
}

/// One command to run in a prepared root.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub process: Process,
    pub network: NetMode,
    pub mounts: Vec<ExtraMount>,
    /// Bytes fed to the command's standard input.
    pub stdin: Option<Vec<u8>>,
    /// The build's `--add-host`, `--ulimit` and `--shm-size`.
    pub settings: RunSettings,
    /// `RUN --security=insecure`: no seccomp filter, no masked or read-only
    /// kernel paths, every capability.
    pub unconfined: bool,
}

/// How a finished command ended. Its changes are in the root's upper dir,
/// mount placeholders removed.
#[derive(Debug)]
pub struct RunOutcome {
    pub exit_code: i32,
    /// The last lines the command printed.
    pub tail: Vec<String>,
}

const TAIL_LINES: usize = 20;
/// Bytes reserved for the helper's status report (a few hundred are used).
const STATUS_ROOM: usize = 16 * 1024;

/// Sandbox helpers running now, so an interrupted build can stop them:
/// each helper's pid and, for a chroot step, the step's root (whose
/// processes no PID namespace takes down with the helper).
static LIVE_HELPERS: std::sync::Mutex<Vec<(u32, Option<PathBuf>)>> = std::sync::Mutex::new(Vec::new());

/// Kills every running sandbox helper. A namespace helper is the parent of
/// its step's PID 1, so the step's processes die with it and its mounts
/// go with its mount namespace; a chroot step's processes are found and
/// killed once its helper is gone.
pub fn kill_running() {
    let helpers = LIVE_HELPERS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (pid, _) in &helpers {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    for (pid, root) in helpers {
        if let Some(root) = root {
            // Only a dead helper's orphans have come to rbuild.
            wait_until_dead(pid);
            let _ = leftovers::kill_step_processes(&root);
        }
    }
}

/// Waits (briefly) until `pid`, which another thread waits for, has ended:
/// a zombie or gone.
fn wait_until_dead(pid: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat)
                if !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            _ => return,
        }
    }
}

/// Runs the sandbox helper `exe` (normally rbuild itself) on `root`, with
/// the network the isolation gives the step (`req.network` unless it has
/// to fall back).
pub fn run(
    store: &Store,
    exe: &Path,
    root: &StepRoot,
    req: &RunRequest,
    network: NetMode,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutcome, SandboxError> {
    let spec = spec_for(store, root, req, network)?;
    run_spec(exe, root, &spec, req, on_line)
}

/// Runs the helper `exe` on a written-out `spec` for `root`.
fn run_spec(
    exe: &Path,
    root: &StepRoot,
    spec: &SandboxSpec,
    req: &RunRequest,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutcome, SandboxError> {
    // The helper reports through this file after the step, when the step
    // may have filled the disk: its room is taken now, and the helper
    // writes over the blanks (JSON ignores the ones left over).
    fs::write(&spec.status_file, vec![b' '; STATUS_ROOM]).map_err(io_err("write", &spec.status_file))?;
    let spec_path = root.scratch.join("spec.json");
    fs::write(&spec_path, serde_json::to_vec(spec).expect("spec serializes"))
        .map_err(io_err("write", &spec_path))?;
    let stdin = match &req.stdin {
        Some(bytes) => {
            let p = root.scratch.join("stdin");
            fs::write(&p, bytes).map_err(io_err("write", &p))?;
            Stdio::from(fs::File::open(&p).map_err(io_err("open", &p))?)
        }
        None => Stdio::null(),
    };
    let chroot_root = spec.chroot.map(|_| spec.merged.clone());
    let helper = run_helper(exe, &spec_path, stdin, chroot_root.as_deref(), on_line);
    if let Some(root) = &chroot_root {
        // Whatever became of the helper, nothing of the step may go on
        // writing into the root once it is diffed (or removed).
        leftovers::kill_step_processes(root)?;
    }
    let (helper_status, tail) = helper?;
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&helper_status) {
        // Killed from outside (the OOM killer, a user): its status file
        // holds only the blanks reserved for it.
        return Err(SandboxError::Setup(format!(
            "the sandbox helper was killed by signal {signal} before the step ended; last output: {}",
            tail.join(" | ")
        )));
    }
    let status: SandboxStatus = match fs::read(&spec.status_file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            SandboxError::Setup(format!(
                "bad status from the sandbox helper ({e}); last output: {}",
                tail.join(" | ")
            ))
        })?,
        Err(_) => {
            return Err(SandboxError::Setup(format!(
                "the sandbox helper ended without a status ({helper_status}); last output: {}",
                tail.join(" | ")
            )));
        }
    };
    if let Some(e) = status.setup_error {
        return Err(SandboxError::Setup(e));
    }
    placeholders::remove(root, &status);
    Ok(RunOutcome { exit_code: status.exit_code, tail })
}

/// What the helper needs to know, written down for it.
///
/// `network` is the one the step gets, which the isolation may have
/// changed from `req.network`.
fn spec_for(
    store: &Store,
    root: &StepRoot,
    req: &RunRequest,
    network: NetMode,
) -> Result<SandboxSpec, SandboxError> {
    // A prepared root is used as it is; the overlay fields then name it
    // (nothing is mounted from them).
    let (lowers, work, merged, empty, prepared_root) = match &root.mount {
        Some(RootMount::Overlay { lowers, work, merged, empty }) => {
            (lowers.clone(), work.clone(), merged.clone(), empty.clone(), None)
        }
        Some(RootMount::Prepared { dir, .. }) => {
            (Vec::new(), dir.clone(), dir.clone(), dir.clone(), Some(dir.clone()))
        }
        None => return Err(SandboxError::Setup("the step's root was not prepared for a RUN step".into())),
    };
    let nat = match network {
        NetMode::Nat => {
            Some(NatSpec { slirp4netns: nat::slirp4netns()?, log: root.scratch.join("slirp4netns.log") })
        }
        NetMode::Shared | NetMode::Isolated => None,
    };
    let mut etc_binds = Vec::new();
    for name in ["resolv.conf", "hosts"] {
        let host = Path::new("/etc").join(name);
        let copy = root.scratch.join(name);
        let mut content = fs::read(&host).unwrap_or_else(|_| default_etc(name).into());
        if name == "resolv.conf" && nat.is_some() {
            content = nat::resolv_conf(&String::from_utf8_lossy(&content)).into_bytes();
        }
        if name == "hosts" {
            if !content.is_empty() && !content.ends_with(b"\n") {
                content.push(b'\n');
            }
            content.extend_from_slice(req.settings.hosts_lines().as_bytes());
        }
        fs::write(&copy, content).map_err(io_err("write", &copy))?;
        etc_binds.push((copy, format!("/etc/{name}")));
    }
    let seccomp_filter = if req.unconfined {
        None
    } else {
        let filter =
            seccomp::docker_default_filter(&store.state_path("sandbox")).map_err(SandboxError::Setup)?;
        let path = root.scratch.join("seccomp.bpf");
        fs::write(&path, filter).map_err(io_err("write", &path))?;
        Some(path)
    };
    Ok(SandboxSpec {
        store_root: store.root().to_path_buf(),
        lowers,
        empty_lower: empty,
        upper: root.upper.clone(),
        work,
        merged,
        prepared_root,
        // The store decides, so snapshots, upper dirs and mounts agree:
        // `user.overlay.*` whenever rbuild is not root of the host.
        userxattr: store.overlay_xattrs() == rbuild_layer::OverlayXattrs::User,
        process: req.process.clone(),
        hostname: "rbuild".into(),
        network,
        nat,
        etc_binds,
        mounts: req.mounts.clone(),
        status_file: root.scratch.join("status.json"),
        seccomp_filter,
        unconfined: req.unconfined,
        ulimits: req.settings.ulimits.clone(),
        shm_size: req.settings.shm_size,
        chroot: None,
    })
}

/// Starts `exe __sandbox SPEC`, passes each line it prints to `on_line`,
/// and waits for it; returns how it ended and its last lines.
fn run_helper(
    exe: &Path,
    spec_path: &Path,
    stdin: Stdio,
    chroot_root: Option<&Path>,
    on_line: &mut dyn FnMut(&str),
) -> Result<(std::process::ExitStatus, Vec<String>), SandboxError> {
    let (reader, writer) = std::io::pipe().map_err(io_err("create pipe", Path::new("")))?;
    let writer2 = writer.try_clone().map_err(io_err("clone pipe", Path::new("")))?;
    let mut child = Command::new(exe)
        .arg("__sandbox")
        .arg(spec_path)
        .stdin(stdin)
        .stdout(writer)
        .stderr(writer2)
        .env_clear()
        .spawn()
        .map_err(io_err("start sandbox helper", exe))?;
    let pid = child.id();
    LIVE_HELPERS.lock().unwrap_or_else(|e| e.into_inner()).push((pid, chroot_root.map(Path::to_path_buf)));
    // Waited for beside the reading: when a chroot helper dies before its
    // step's processes (it was killed), they still hold the output pipe
    // open, and only killing them ends the reading.
    let (helper_status, streamed) = std::thread::scope(|scope| {
        let waiter = scope.spawn(move || {
            let status = child.wait();
            if let Some(root) = chroot_root {
                let _ = leftovers::kill_step_processes(root);
            }
            status
        });
        let streamed = stream_lines(reader, on_line);
        (waiter.join().expect("the helper's waiter does not panic"), streamed)
    });
    LIVE_HELPERS.lock().unwrap_or_else(|e| e.into_inner()).retain(|(p, _)| *p != pid);
    let tail = streamed.map_err(io_err("read step output", Path::new("")))?;
    let helper_status = helper_status.map_err(io_err("wait for sandbox helper", Path::new("")))?;
    Ok((helper_status, tail))
}

/// Passes each line of the helper's output to `on_line` until the pipe
/// closes; returns the last lines.
fn stream_lines(reader: std::io::PipeReader, on_line: &mut dyn FnMut(&str)) -> std::io::Result<Vec<String>> {
    let mut tail: Vec<String> = Vec::new();
    for line in BufReader::new(reader).split(b'\n') {
        let text = String::from_utf8_lossy(&line?).trim_end_matches('\r').to_string();
        on_line(&text);
        if tail.len() == TAIL_LINES {
            tail.remove(0);
        }
        tail.push(text);
    }
    Ok(tail)
}

fn default_etc(name: &str) -> &'static str {
    match name {
        "hosts" => "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        _ => "",
    }
}
