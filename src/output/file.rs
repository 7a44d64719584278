//! Writing an archive the user asked for (`save -o`, `build -o
//! type=docker|oci|tar,dest=`): complete or not at all for files, straight
//! through for devices and pipes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::report::Failure;

/// Writes `dest` with `write`.
///
/// A regular file (or a new one) is written through a temp file in the same
/// directory, synced and renamed over it, so a failed or killed export never
/// leaves a half-written file where the user expects one. A symlink is
/// followed, so the file it points at is the one replaced. A character or
/// block device, FIFO or socket (`-o /dev/null`, `-o /dev/stdout`, a named
/// pipe) is opened and written in place, as `docker save -o` does: renaming
/// over it would replace the device node with a file.
pub fn write_output(
    dest: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let cannot = |what: &str, e: io::Error| Failure::new(format!("cannot {what} {}: {e}", dest.display()));
    match fs::metadata(dest) {
        Ok(m) if is_stream(&m.file_type()) => {
            let file = OpenOptions::new().write(true).open(dest).map_err(|e| cannot("open", e))?;
            let mut buffered = BufWriter::with_capacity(1 << 20, file);
            write(&mut buffered)?;
            buffered.flush().map_err(|e| cannot("write", e))
        }
        Ok(_) => {
            let real = fs::canonicalize(dest).map_err(|e| cannot("resolve", e))?;
            replace_atomically(&real, dest, write)
        }
        Err(_) => replace_atomically(dest, dest, write),
    }
}

fn is_stream(t: &fs::FileType) -> bool {
    t.is_char_device() || t.is_block_device() || t.is_fifo() || t.is_socket()
}

/// Writes `path` through a temp file beside it; `shown` names it in errors.
fn replace_atomically(
    path: &Path,
    shown: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let temp = dir.join(format!(".{name}.rbuild-{}", std::process::id()));
    let cannot = |what: &str, e: io::Error| Failure::new(format!("cannot {what} {}: {e}", shown.display()));
    let result = (|| {
        let file = File::create(&temp).map_err(|e| cannot("create a temp file for", e))?;
        let mut buffered = BufWriter::with_capacity(1 << 20, file);
        write(&mut buffered)?;
        let file = buffered.into_inner().map_err(|e| cannot("write", e.into_error()))?;
        file.sync_all().map_err(|e| cannot("write", e))?;
        fs::rename(&temp, path).map_err(|e| cannot("write", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_written_in_place_and_stays_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        write_output(&fifo, |w| w.write_all(b"archive").map_err(|e| Failure::new(e.to_string()))).unwrap();
        assert_eq!(reader.join().unwrap(), b"archive");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }

    #[test]
    fn a_symlinked_file_is_replaced_where_the_link_points_and_the_link_stays() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.tar");
        fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.tar");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_output(&link, |w| w.write_all(b"new").map_err(|e| Failure::new(e.to_string()))).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.tar");
        fs::write(&dest, "old").unwrap();
        let failed = write_output(&dest, |w| {
            w.write_all(b"partial").unwrap();
            Err(Failure::new("boom"))
        });
        assert!(failed.is_err());
        assert_eq!(fs::read_to_string(&dest).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
