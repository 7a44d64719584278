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
        if bytes.is_empty() || bytes.len() % 8 != 0 || bytes.len() / 8 > usize::from(u16::MAX) {
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
    /// `no_new_privs` is left off, as Docker leaves it, so the caller must
    /// hold CAP_SYS_ADMIN in its user namespace: call this before the
    /// capabilities are dropped. Every syscall made after it (capset,
    /// setgroups, setresuid, execve) is one the profile allows.
    #[allow(unsafe_code)]
    pub(crate) fn install(&self) -> Result<(), String> {
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
            return Err(format!("install seccomp filter: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }
}
