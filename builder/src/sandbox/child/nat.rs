//! The default network of a step, helper side: slirp4netns attached to
//! the step's fresh network namespace, configuring `eth0` (10.0.2.100,
//! default route via 10.0.2.2) and carrying its traffic out through the
//! host's network, the host's loopback excepted.
//!
//! slirp4netns must run in the host's network namespace and join the
//! step's only to open its tap device, and under rootless rbuild the
//! helper, once in a namespace of its own, may not go back. So before the
//! helper unshares anything it forks a launcher that stays behind in the
//! host's namespaces (PID namespace included: the helper's PID is the
//! launcher's to name) and waits; once the helper has its new namespace
//! the launcher execs slirp4netns on it. slirp4netns starts while the
//! helper and the step's PID 1 mount the root; PID 1 waits for it to
//! report the interface configured only before the command starts. It
//! dies with the helper.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::mount::{MsFlags, mount};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use super::super::spec::NatSpec;
use super::{SetupResult, ctx};

/// The step's interface, named as in Docker and BuildKit.
const INTERFACE: &str = "eth0";
/// slirp4netns's largest MTU, as rootless podman uses it: fewer, larger
/// packets through the user-mode stack.
const MTU: &str = "--mtu=65520";
/// How long slirp4netns may take to configure the interface (it takes a
/// few tens of milliseconds).
const READY_TIMEOUT_MS: u16 = 10_000;

/// A launcher forked, then slirp4netns, serving the helper's namespace.
pub(super) struct Slirp {
    pid: Pid,
    /// Written (and closed) once the helper has its network namespace.
    go: Option<OwnedFd>,
    /// slirp4netns writes `1` here once `eth0` is configured.
    ready: OwnedFd,
    spec: NatSpec,
    /// slirp4netns's log, opened now: the wait may come after pivot_root,
    /// when the log's path is no longer in reach.
    log: File,
}

impl Slirp {
    /// Forks the launcher; call before the helper leaves the host's
    /// namespaces. The helper must be single-threaded.
    pub(super) fn fork_launcher(spec: &NatSpec) -> SetupResult<Slirp> {
        let helper = nix::unistd::getpid();
        // Everything the launcher needs is made before the fork.
        let exe = ctx(CString::new(spec.slirp4netns.as_os_str().as_bytes()), || "slirp4netns path".into())?;
        let (go_read, go_write) = ctx(nix::unistd::pipe2(OFlag::O_CLOEXEC), || "create pipe".into())?;
        // The launcher lets the write end survive its exec into slirp4netns.
        let (ready_read, ready_write) = ctx(nix::unistd::pipe2(OFlag::O_CLOEXEC), || "create pipe".into())?;
        let args: Vec<CString> = [
            "slirp4netns".to_string(),
            "--configure".into(),
            MTU.into(),
            // 10.0.2.2 would otherwise be the host's 127.0.0.1.
            "--disable-host-loopback".into(),
            // It parses the step's packets with the caller's privileges:
            // as rootless podman, confine it (its own mount namespace with
            // little but /etc and /run, capabilities dropped, a seccomp
            // filter).
            "--enable-sandbox".into(),
            "--enable-seccomp".into(),
            format!("--ready-fd={}", ready_write.as_raw_fd()),
            helper.to_string(),
            INTERFACE.into(),
        ]
        .into_iter()
        .map(|a| CString::new(a).expect("no NUL in slirp4netns arguments"))
        .collect();
        let log = ctx(File::create(&spec.log), || format!("create {}", spec.log.display()))?;
        let log_reader = ctx(File::open(&spec.log), || format!("open {}", spec.log.display()))?;
        // SAFETY: the helper is single-threaded (it never starts a runtime).
        #[allow(unsafe_code)]
        let fork = unsafe { nix::unistd::fork() };
        match ctx(fork, || "fork".into())? {
            ForkResult::Child => {
                drop((go_write, ready_read));
                launch(helper, &go_read, &ready_write, &log, &exe, &args);
                std::process::exit(127);
            }
            ForkResult::Parent { child } => {
                drop((go_read, ready_write, log));
                Ok(Slirp {
                    pid: child,
                    go: Some(go_write),
                    ready: ready_read,
                    spec: spec.clone(),
                    log: log_reader,
                })
            }
        }
    }

    /// Lets slirp4netns attach to the helper's network namespace, which
    /// the helper has now.
    pub(super) fn start(&mut self) -> SetupResult<()> {
        let go = self.go.take().expect("start is called once");
        ctx(nix::unistd::write(&go, b"1"), || "start slirp4netns".into()).map(drop)
    }

    /// Waits until slirp4netns has configured `eth0`.
    pub(super) fn wait_ready(&self) -> SetupResult<()> {
        let mut fds = [PollFd::new(self.ready.as_fd(), PollFlags::POLLIN)];
        let polled = loop {
            match poll(&mut fds, PollTimeout::from(READY_TIMEOUT_MS)) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        match ctx(polled, || "wait for slirp4netns".into())? {
            0 => Err(self.failure("did not configure the network in time")),
            _ => {
                let mut byte = [0u8; 1];
                match nix::unistd::read(&self.ready, &mut byte) {
                    Ok(1) if byte[0] == b'1' => Ok(()),
                    _ => Err(self.failure("stopped before the network was configured")),
                }
            }
        }
    }

    fn failure(&self, what: &str) -> String {
        let mut said = String::new();
        let _ = (&self.log).read_to_string(&mut said);
        let said = said.trim();
        format!(
            "the step's network: {} {what}{}",
            self.spec.slirp4netns.display(),
            if said.is_empty() { String::new() } else { format!(": {}", said.replace('\n', " | ")) }
        )
    }
}

impl Drop for Slirp {
    /// slirp4netns keeps no state worth a clean shutdown: the step is over.
    /// Its exit is not waited for: closing its tap device makes the kernel
    /// unregister the step's `eth0`, tens of milliseconds that would
    /// otherwise sit between the step's end and its commit. The helper
    /// exits next, and init (or a subreaper) reaps the orphan, except
    /// where rbuild itself is PID 1 (a container's entrypoint), which
    /// reaps no orphans: then it is waited for here.
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        if nix::unistd::getppid() == Pid::from_raw(1) {
            let _ = waitpid(self.pid, None);
        }
    }
}

/// In the launcher: dies with the helper, waits for its word, then
/// becomes slirp4netns with its output in the log. Returns on failure.
fn launch(helper: Pid, go: &OwnedFd, ready: &OwnedFd, log: &File, exe: &CString, args: &[CString]) {
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() || nix::unistd::getppid() != helper {
        return;
    }
    let mut word = [0u8; 1];
    if !matches!(nix::unistd::read(go, &mut word), Ok(1)) {
        // The helper failed before it had a namespace to serve.
        return;
    }
    // slirp4netns's --enable-sandbox makes a mount namespace of its own
    // but makes only `/` private in it before it pivots and detaches the
    // old root: unmounts of the host's shared mounts below `/` then
    // propagate back and tear down other containers' root filesystems
    // (dockerd's overlays). A private copy of ours, made first, keeps
    // every such unmount in here.
    let private = unshare(CloneFlags::CLONE_NEWNS).is_ok()
        && mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
            .is_ok();
    if !private {
        return;
    }
    let devnull = File::open("/dev/null");
    let redirected = devnull.is_ok_and(|null| nix::unistd::dup2_stdin(&null).is_ok())
        && fcntl(ready, FcntlArg::F_SETFD(FdFlag::empty())).is_ok()
        && nix::unistd::dup2_stdout(log).is_ok()
        && nix::unistd::dup2_stderr(log).is_ok();
    if redirected {
        let _ = nix::unistd::execv(exe, args);
    }
}
