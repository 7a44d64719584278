//! A streaming tar writer for layers: headers from [`super::tar_encode`],
//! file content copied through one large reusable buffer (never a whole
//! file in memory), counts kept for [`LayerStats`].

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use super::LayerStats;
use super::error::LayerError;
use super::node::{TarMetadata, Xattrs};
use super::tar_encode::{BLOCK_SIZE, HeaderSpec, encode_header, padding, typeflag};

/// Size of the output buffer and of the file copy buffer. Large enough that
/// file content moves in few syscalls, small enough to not matter.
pub(crate) const COPY_BUFFER_SIZE: usize = 1 << 20;

/// What kind of entry to write, with the data only that kind has.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EntryKind<'a> {
    File { size: u64 },
    Dir,
    Symlink { target: &'a [u8] },
    HardLink { target: &'a [u8] },
    CharDevice { major: u64, minor: u64 },
    BlockDevice { major: u64, minor: u64 },
    Fifo,
}

/// One entry: `path` is relative, without a leading `/`, and ends in `/`
/// for directories.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub path: &'a [u8],
    pub kind: EntryKind<'a>,
    pub meta: TarMetadata,
    pub xattrs: &'a Xattrs,
}

pub(crate) struct TarWriter<W: Write> {
    out: BufWriter<W>,
    stats: LayerStats,
    header: Vec<u8>,
    copy_buffer: Vec<u8>,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        TarWriter {
            out: BufWriter::with_capacity(COPY_BUFFER_SIZE, out),
            stats: LayerStats::default(),
            header: Vec::with_capacity(4 * BLOCK_SIZE),
            copy_buffer: Vec::new(),
        }
    }

    /// Writes an entry that has no content (anything but a non-empty file).
    pub(crate) fn append(&mut self, entry: &Entry<'_>) -> Result<(), LayerError> {
        debug_assert!(!matches!(entry.kind, EntryKind::File { size } if size > 0));
        self.write_header(entry)
    }

    /// Writes a regular-file entry and `size` bytes read from `file`.
    /// `source` names the file in errors. A file that turns out shorter than
    /// its size was when it was `stat`ed is an error: padding it would put
    /// bytes in the layer that were never in the file.
    pub(crate) fn append_file(
        &mut self,
        entry: &Entry<'_>,
        file: &mut File,
        source: &Path,
    ) -> Result<(), LayerError> {
        let EntryKind::File { size } = entry.kind else {
            return self.write_header(entry);
        };
        self.write_header(entry)?;
        if self.copy_buffer.is_empty() {
            self.copy_buffer = vec![0u8; COPY_BUFFER_SIZE];
        }
        let mut remaining = size;
        while remaining > 0 {
            let want = remaining.min(self.copy_buffer.len() as u64) as usize;
            let n = match file.read(&mut self.copy_buffer[..want]) {
                Ok(0) => {
                    return Err(LayerError::FileChanged {
                        path: source.to_path_buf(),
                        detail: format!("it shrank to {} of {size} bytes", size - remaining),
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LayerError::io("cannot read", source, e)),
            };
            self.out.write_all(&self.copy_buffer[..n]).map_err(LayerError::WriteTar)?;
            remaining -= n as u64;
        }
        self.write_zeros(padding(size))?;
        self.stats.content_bytes += size;
        self.stats.tar_bytes += size + padding(size) as u64;
        Ok(())
    }

    /// Writes the end-of-archive marker (two zero blocks), flushes, and
    /// returns the counts.
    pub(crate) fn finish(mut self) -> Result<LayerStats, LayerError> {
        self.write_zeros(2 * BLOCK_SIZE)?;
        self.stats.tar_bytes += 2 * BLOCK_SIZE as u64;
        self.out.flush().map_err(LayerError::WriteTar)?;
        Ok(self.stats)
    }

    fn write_header(&mut self, entry: &Entry<'_>) -> Result<(), LayerError> {
        let (flag, size, link_target, dev_major, dev_minor) = match entry.kind {
            EntryKind::File { size } => (typeflag::REGULAR, size, &b""[..], 0, 0),
            EntryKind::Dir => (typeflag::DIRECTORY, 0, &b""[..], 0, 0),
            EntryKind::Symlink { target } => {
                self.stats.link_target_bytes += target.len() as u64;
                (typeflag::SYMLINK, 0, target, 0, 0)
            }
            EntryKind::HardLink { target } => (typeflag::HARD_LINK, 0, target, 0, 0),
            EntryKind::CharDevice { major, minor } => (typeflag::CHAR_DEVICE, 0, &b""[..], major, minor),
            EntryKind::BlockDevice { major, minor } => (typeflag::BLOCK_DEVICE, 0, &b""[..], major, minor),
            EntryKind::Fifo => (typeflag::FIFO, 0, &b""[..], 0, 0),
        };
        let spec = HeaderSpec {
            name: entry.path,
            typeflag: flag,
            meta: entry.meta,
            size,
            link_target,
            dev_major,
            dev_minor,
            xattrs: entry.xattrs,
        };
        self.header.clear();
        encode_header(&spec, &mut self.header)?;
        self.out.write_all(&self.header).map_err(LayerError::WriteTar)?;
        self.stats.tar_bytes += self.header.len() as u64;
        self.stats.entries += 1;
        Ok(())
    }

    fn write_zeros(&mut self, mut len: usize) -> Result<(), LayerError> {
        const ZEROS: [u8; BLOCK_SIZE] = [0; BLOCK_SIZE];
        while len > 0 {
            let n = len.min(BLOCK_SIZE);
            self.out.write_all(&ZEROS[..n]).map_err(LayerError::WriteTar)?;
            len -= n;
        }
        Ok(())
    }
}
