//! The step's seccomp filter: the BPF program the parent compiled from
//! Docker's profile (`sandbox::seccomp`), read before the namespaces are
//! set up and installed in the step's process just before it gives up its
//! capabilities and execs.

use std::fs;
use std::path::Path;

use super::{SetupResult, ctx};

/// A BPF program ready for `seccomp(2)`.
pub(crate) struct Filter {
    program: Vec<libc::sock_filter>,
}

impl Filter {
    /// Reads the program the parent wrote at `path`.
    pub(super) fn read(path: &Path) -> SetupResult<Filter> {
        let bytes = ctx(fs::read(path), || format!("read seccomp filter {}", path.display()))?;
        Filter::from_bytes(&bytes)
    }

    /// The program from libseccomp's export: `struct sock_filter`s in the
    /// machine's byte order.
    pub(crate) fn from_bytes(bytes: &[u8]) -> SetupResult<Filter> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(8) || bytes.len() / 8 > usize::from(u16::MAX) {
            return Err(format!("bad seccomp filter: {} bytes", bytes.len()));
        }
        let program = bytes
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Filter { program })
    }

    /// Installs the filter on the calling thread (and what it execs).
    /// `no_new_privs` is left off, as Docker leaves it, when the caller
    /// holds CAP_SYS_ADMIN in its user namespace (call this before the
    /// capabilities are dropped); without it, it is set first. Every syscall made after it (capset,
    /// setgroups, setresuid, execve) is one the profile allows.
    pub(crate) fn install(&self) -> Result<(), String> {
        let refused = match self.set_mode_filter() {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => e,
            Err(e) => return Err(format!("install seccomp filter: {e}")),
        };
        // No CAP_SYS_ADMIN (`chroot` isolation in a container): with
        // no_new_privs set, any process may install a filter. It also keeps
        // setuid programs from gaining ids, which a step running as its
        // USER already has no use for.
        nix::sys::prctl::set_no_new_privs()
            .map_err(|e| format!("install seccomp filter: {refused}; set no_new_privs: {e}"))?;
        self.set_mode_filter().map_err(|e| format!("install seccomp filter: {e}"))
    }

    #[allow(unsafe_code)]
    fn set_mode_filter(&self) -> std::io::Result<()> {
        let prog = libc::sock_fprog {
            // Checked in from_bytes.
            len: self.program.len() as u16,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `len` valid instructions that outlive
        // the call; the kernel copies them.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod bench {
    //! What the filter costs a RUN step, printed by
    //! `cargo test -p rbuild-builder --lib -- --ignored --nocapture seccomp_cost`
    //! (as root; `bench/README.md` has the latest figures).

    use std::time::{Duration, Instant};

    use super::Filter;
    use crate::sandbox::seccomp::{Host, Profile, docker_default_filter};

    const SYSCALLS: u32 = 200_000;

    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        v[v.len() / 2]
    }

    /// Times `SYSCALLS` getppid calls.
    fn syscall_loop() -> Duration {
        let start = Instant::now();
        for _ in 0..SYSCALLS {
            std::hint::black_box(nix::unistd::getppid());
        }
        start.elapsed()
    }

    /// In a forked child: the install itself, and a syscall loop before
    /// and after it, as nanoseconds.
    #[allow(unsafe_code)]
    fn install_in_child(filter: &Filter) -> [u64; 3] {
        let (read, write) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only makes syscalls, reads the clock and
        // writes to the pipe before it exits: nothing that needs a lock
        // another thread of the test harness may hold.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let before = syscall_loop();
                let start = Instant::now();
                let ok = filter.install().is_ok();
                let install = start.elapsed();
                let after = syscall_loop();
                let out = [install.as_nanos() as u64, before.as_nanos() as u64, after.as_nanos() as u64];
                let bytes: Vec<u8> = out.iter().flat_map(|n| n.to_ne_bytes()).collect();
                let _ = nix::unistd::write(&write, &bytes);
                // SAFETY: ends the forked child without running the parent's
                // exit handlers.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(write);
                let mut buf = [0u8; 24];
                let mut file = std::fs::File::from(read);
                std::io::Read::read_exact(&mut file, &mut buf).unwrap();
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0), "install failed");
                let n = |i: usize| u64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
                [n(0), n(1), n(2)]
            }
        }
    }

    #[test]
    #[ignore = "a measurement, run by hand as root"]
    fn seccomp_cost() {
        let caps: Vec<String> = crate::sandbox::child::DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
        let host = Host::this_machine(&caps);
        let compiles: Vec<Duration> = (0..20)
            .map(|_| {
                let start = Instant::now();
                Profile::shipped().unwrap().compile(&host).unwrap();
                start.elapsed()
            })
            .collect();
        let mut native_only = Profile::shipped().unwrap();
        native_only.arches.clear();
        let start = Instant::now();
        native_only.compile(&host).unwrap();
        let native_compile = start.elapsed();
        let cache = tempfile::tempdir().unwrap();
        let bytes = docker_default_filter(cache.path()).unwrap();
        let filter = Filter::from_bytes(bytes).unwrap();
        let runs: Vec<[u64; 3]> = (0..50).map(|_| install_in_child(&filter)).collect();
        let column = |i: usize| median(runs.iter().map(|r| Duration::from_nanos(r[i])).collect());
        let per_call = |d: Duration| d.as_nanos() as f64 / f64::from(SYSCALLS);
        println!("seccomp filter: {} BPF instructions", bytes.len() / 8);
        println!(
            "compile (once per store: kept in its state/sandbox/), median of 20: {:?}",
            median(compiles)
        );
        println!("compile for the native ABI alone (not what rbuild does): {native_compile:?}");
        println!("install (every RUN step), median of 50: {:?}", column(0));
        println!(
            "getppid: {:.0} ns unfiltered, {:.0} ns filtered (median of 50 x {SYSCALLS})",
            per_call(column(1)),
            per_call(column(2))
        );
        assert!(column(0) < Duration::from_millis(1), "installing the filter must cost under 1 ms");
    }
}
