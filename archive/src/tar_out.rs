//! The tar writer for archives we produce. Every header gets the same
//! owner (0:0), mode and mtime, so the same images always give the same
//! bytes. Headers and the end-of-archive marker come from the `tar` crate;
//! a layer file's bytes are copied with `io::copy` straight from the file to
//! the output, which on Linux lets the kernel move them (copy_file_range or
//! splice) when the output is a file or a pipe.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::error::{ArchiveError, Result};
use rbuild_oci::io_error::{IoContext, IoError};

const BLOCK: u64 = 512;

pub(crate) struct TarOut<W: Write> {
    builder: tar::Builder<W>,
    mtime: u64,
}

impl<W: Write> TarOut<W> {
    /// `mtime` is `SOURCE_DATE_EPOCH` when set; times before 1970 become 0.
    pub(crate) fn new(out: W, mtime: Option<i64>) -> Self {
        TarOut { builder: tar::Builder::new(out), mtime: mtime.unwrap_or(0).max(0) as u64 }
    }

    fn header(&self, name: &str, size: u64, kind: tar::EntryType) -> Result<tar::Header> {
        let mut header = tar::Header::new_ustar();
        header.set_path(name).map_err(ArchiveError::Write)?;
        header.set_entry_type(kind);
        header.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.mtime);
        header.set_size(size);
        header.set_cksum();
        Ok(header)
    }

    pub(crate) fn dir(&mut self, name: &str) -> Result<()> {
        let header = self.header(name, 0, tar::EntryType::Directory)?;
        self.builder.append(&header, io::empty()).map_err(ArchiveError::Write)
    }

    pub(crate) fn bytes(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let header = self.header(name, data.len() as u64, tar::EntryType::Regular)?;
        self.builder.append(&header, data).map_err(ArchiveError::Write)
    }

    /// Appends the file at `path`, which must be `size` bytes long.
    pub(crate) fn file(&mut self, name: &str, path: &Path, size: u64) -> Result<()> {
        let mut file = File::open(path).ctx("open", path)?;
        let actual = file.metadata().ctx("stat", path)?.len();
        if actual != size {
            let changed = io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file is {actual} bytes, the store recorded {size}"),
            );
            return Err(IoError::new("export", path, changed).into());
        }
        let header = self.header(name, size, tar::EntryType::Regular)?;
        // `Builder::append` copies through `&mut dyn Read`/`dyn Write`, which
        // hides the concrete types std needs to pick copy_file_range/splice;
        // writing the same header and padding ourselves keeps them visible.
        let out = self.builder.get_mut();
        out.write_all(header.as_bytes()).map_err(ArchiveError::Write)?;
        // The 1 MiB buffer serves writers std cannot hand to the kernel
        // (`&mut dyn Write`, a BufWriter): fewer, larger reads. For a file or
        // pipe, std still sees through BufReader<File> to the kernel copy.
        let mut reader = io::BufReader::with_capacity(1 << 20, &mut file);
        let copied = io::copy(&mut reader, out).map_err(ArchiveError::Write)?;
        if copied != size {
            let changed = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file changed while being written: {copied} of {size} bytes copied"),
            );
            return Err(IoError::new("export", path, changed).into());
        }
        let padding = (BLOCK - size % BLOCK) % BLOCK;
        out.write_all(&[0u8; BLOCK as usize][..padding as usize]).map_err(ArchiveError::Write)
    }

    /// Writes the end-of-archive marker and hands the output back.
    pub(crate) fn finish(self) -> Result<W> {
        let mut out = self.builder.into_inner().map_err(ArchiveError::Write)?;
        out.flush().map_err(ArchiveError::Write)?;
        Ok(out)
    }
}
