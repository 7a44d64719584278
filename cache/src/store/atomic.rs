//! Crash-safe file writes: write a temp file in the same directory, fsync
//! it, rename it over the target, fsync the directory. A reader sees the old
//! content or the new one, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Atomically replaces `path` with `bytes`. Inside a store open in this
/// process the temp file is made in its scratch dir, so a process killed
/// midway leaves nothing beside `path` (the next start removes the scratch
/// dir); elsewhere, or where the scratch dir is on another filesystem, it is
/// made beside `path`.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp_name = format!(".{name}.tmp.{}.{}", std::process::id(), unique_suffix());
    if let Some(scratch) = super::live_scratch_for(path) {
        match write_and_rename(&scratch.join(&tmp_name), path, dir, bytes) {
            Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {}
            done => return done,
        }
    }
    write_and_rename(&dir.join(&tmp_name), path, dir, bytes)
}

fn write_and_rename(tmp: &Path, path: &Path, dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// Makes a rename or create in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A number that differs between calls in one process.
pub fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// True for the errors `rename` gives when the target directory already
/// exists and is not empty: another process committed the same thing first.
pub fn is_already_there(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST))
}
