//! The layer tar of a tree that exists only as a description: the bytes
//! [`super::write_layer_tar`] would write for an upper directory holding
//! exactly these nodes, produced without the directory. A caller that
//! knows what a step would write (a COPY from the build context) streams
//! this into SHA-256 to learn the layer's diffID before writing anything.
//!
//! The caller gives the nodes in the order the diff walk visits them
//! (depth first, each directory's names sorted bytewise, a directory
//! before its content), each with the metadata the written node would
//! have: the tar of a node is a pure function of that (see [`super::diff`]).
//! Only nodes a step writes itself are described: no whiteouts, opaque
//! directories, hard links or xattrs.

use std::fs;
use std::io::Write;
use std::path::Path;

use rbuild_oci::io_error::IoContext;

use super::LayerStats;
use super::diff::write_file_entry;
use super::error::LayerError;
use super::node::{TarMetadata, Xattrs, clamp};
use super::tar_writer::{Entry, EntryKind, TarWriter};

/// What a described node is, with where a file's content comes from.
#[derive(Debug, Clone, Copy)]
pub enum VirtualKind<'a> {
    Dir,
    /// A regular file with the content `source` has when it is read (its
    /// size is taken from the open file); `None` for an empty file.
    File(Option<&'a Path>),
    Symlink(&'a [u8]),
}

/// One node of the described upper directory.
#[derive(Debug, Clone, Copy)]
pub struct VirtualEntry<'a> {
    /// Path below the upper directory: relative, `/`-separated, no
    /// trailing `/`.
    pub path: &'a [u8],
    pub kind: VirtualKind<'a>,
    /// Permission bits with setuid/setgid/sticky (type bits ignored).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time in seconds since the epoch, before clamping.
    pub mtime: i64,
}

/// Writes the layer tar of described nodes.
pub struct VirtualTar<W: Write> {
    writer: TarWriter<W>,
    clamp_mtime: Option<i64>,
    no_xattrs: Xattrs,
}

impl<W: Write> VirtualTar<W> {
    /// A writer whose times are clamped to `clamp_mtime` (SOURCE_DATE_EPOCH),
    /// as [`super::WriteOptions::clamp_mtime`] clamps them.
    pub fn new(out: W, clamp_mtime: Option<i64>) -> VirtualTar<W> {
        VirtualTar { writer: TarWriter::new(out), clamp_mtime, no_xattrs: Xattrs::new() }
    }

    /// Appends one node; a file's content is read from its source now.
    /// A source that is not a regular file any more, or that shrinks
    /// while it is read, is an error.
    pub fn append(&mut self, node: &VirtualEntry<'_>) -> Result<(), LayerError> {
        let meta = TarMetadata {
            mode: node.mode & 0o7777,
            uid: u64::from(node.uid),
            gid: u64::from(node.gid),
            mtime: clamp(node.mtime, self.clamp_mtime),
        };
        let xattrs = &self.no_xattrs;
        match node.kind {
            VirtualKind::Dir => {
                let mut path = node.path.to_vec();
                path.push(b'/');
                self.writer.append(&Entry { path: &path, kind: EntryKind::Dir, meta, xattrs })
            }
            VirtualKind::Symlink(target) => {
                let entry = Entry { path: node.path, kind: EntryKind::Symlink { target }, meta, xattrs };
                self.writer.append(&entry)
            }
            VirtualKind::File(None) => {
                let entry = Entry { path: node.path, kind: EntryKind::File { size: 0 }, meta, xattrs };
                self.writer.append(&entry)
            }
            VirtualKind::File(Some(source)) => {
                let stat = fs::symlink_metadata(source).ctx("cannot inspect", source)?;
                if !stat.is_file() {
                    return Err(LayerError::FileChanged {
                        path: source.to_path_buf(),
                        detail: "it is no longer a regular file".to_string(),
                    });
                }
                let entry =
                    Entry { path: node.path, kind: EntryKind::File { size: stat.len() }, meta, xattrs };
                write_file_entry(&mut self.writer, &entry, source, &stat)
            }
        }
    }

    /// Ends the archive (flushing it into the output, which a caller that
    /// passed `&mut` keeps); returns the counts [`super::write_layer_tar`]
    /// would have returned.
    pub fn finish(self) -> Result<LayerStats, LayerError> {
        self.writer.finish()
    }
}
