//! Files a step opened for writing, seen through inotify (`IN_CLOSE_WRITE`
//! on every directory of a prepared root). Overlayfs copies a file up when
//! it is opened for writing, changed or not (`useradd` opens
//! `/etc/.pwd.lock` and closes it untouched), so the copying snapshotter
//! must count such a file as changed although nothing in its `statx`
//! shows it. A thread drains the events while the step runs, so a step
//! writing many files does not overflow the kernel's queue.
//!
//! Best effort: without inotify (or past the watch limit) nothing is
//! watched and only real changes count.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// (watch descriptor of a directory, name in it).
pub(crate) type Written = HashSet<(i32, Vec<u8>)>;

/// An inotify instance watching directories for files closed after
/// being opened for writing.
#[derive(Debug)]
pub(crate) struct WriteWatch {
    fd: Option<OwnedFd>,
    reader: Option<(Arc<AtomicBool>, JoinHandle<Written>)>,
}

impl WriteWatch {
    /// A watch with no directory yet; inert if inotify is not available.
    pub(crate) fn new() -> WriteWatch {
        // SAFETY: plain syscall with flags; the result is checked.
        #[allow(unsafe_code)]
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        // SAFETY: a new descriptor nothing else owns.
        #[allow(unsafe_code)]
        let fd = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
        WriteWatch { fd, reader: None }
    }

    /// Watches the open directory `dir`; its watch descriptor, or `None`
    /// (then this watch gives up altogether: a partial one would be
    /// misleading only in what it leaves out, so it stays, but no new
    /// directory is added after the limit).
    pub(crate) fn add(&mut self, dir: &File) -> Option<i32> {
        let fd = self.fd.as_ref()?;
        let path = CString::new(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()?;
        // SAFETY: `path` is NUL-terminated and outlives the call.
        #[allow(unsafe_code)]
        let wd = unsafe {
            libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_CLOSE_WRITE | libc::IN_ONLYDIR)
        };
        if wd < 0 {
            tracing::debug!(error = %io::Error::last_os_error(), "cannot watch a prepared root's directory");
            self.fd = None;
            return None;
        }
        Some(wd)
    }

    /// Starts draining events (call once every directory is watched).
    pub(crate) fn start(&mut self) {
        let Some(fd) = self.fd.take() else { return };
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || drain(File::from(fd), &stopped));
        self.reader = Some((stop, handle));
    }

    /// Stops watching and returns what was written.
    pub(crate) fn finish(&mut self) -> Written {
        match self.reader.take() {
            Some((stop, handle)) => {
                stop.store(true, Ordering::Relaxed);
                handle.join().unwrap_or_default()
            }
            None => Written::new(),
        }
    }
}

impl Drop for WriteWatch {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Reads events until stopped (and then the ones still queued).
fn drain(mut inotify: File, stop: &AtomicBool) -> Written {
    let mut written = Written::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match inotify.read(&mut buf) {
            Ok(n) => parse(&buf[..n], &mut written),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::Relaxed) {
                    return written;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!(error = %e, "reading inotify events failed");
                return written;
            }
        }
    }
}

/// `struct inotify_event`: wd (i32), mask, cookie, len (u32), name.
fn parse(mut events: &[u8], written: &mut Written) {
    const HEADER: usize = 16;
    while events.len() >= HEADER {
        let word = |at: usize| [events[at], events[at + 1], events[at + 2], events[at + 3]];
        let wd = i32::from_ne_bytes(word(0));
        let mask = u32::from_ne_bytes(word(4));
        let len = u32::from_ne_bytes(word(12)) as usize;
        let Some(name) = events.get(HEADER..HEADER + len) else { return };
        if mask & libc::IN_Q_OVERFLOW != 0 {
            tracing::debug!("inotify queue overflowed: files opened for writing but unchanged may be missed");
        } else if len > 0 {
            let name = name.split(|&b| b == 0).next().unwrap_or_default();
            written.insert((wd, name.to_vec()));
        }
        events = &events[HEADER + len..];
    }
}
