//! Diff: an overlay upper directory becomes a deterministic layer tar.
//!
//! After a RUN step the upper directory of its overlay mount holds exactly
//! what the step changed, in overlay form: whiteouts for deletions, opaque
//! directories for replaced ones. Writing it out is a walk, not a
//! comparison.
//!
//! The tar follows what Docker and BuildKit produce, and is a pure
//! function of the tree (names, content, modes, owners, mtimes, xattrs,
//! link structure): two trees that agree on those give the same bytes,
//! whenever and however they were made.
//!
//! * Entries come in a depth-first walk, each directory's entries sorted
//!   by name (bytewise), a directory before its content. The upper root
//!   itself has no entry.
//! * Names are relative, without `./` or `/` in front; directories end
//!   in `/`.
//! * Headers carry numeric uid/gid (no user or group names), the mode with
//!   setuid/setgid/sticky, and the mtime in whole seconds, clamped to
//!   `clamp_mtime` when given.
//! * The second and later names of a hard-linked inode are hard-link
//!   entries pointing at the first name.
//! * A whiteout (device 0/0, or an xattr whiteout) becomes an empty
//!   `.wh.<name>` file with mode 0 and owner 0:0 in its place; an opaque
//!   directory is followed by an empty `<dir>/.wh..wh..opq` entry.
//! * Xattrs are `SCHILY.xattr.*` PAX records, except the overlay's own
//!   (`trusted.overlay.*`, `user.overlay.*`) and `security.selinux`.
//! * Sockets are left out: a tar cannot hold them.
//!
//! Overlay states we cannot turn into a correct layer are errors rather
//! than silently wrong tars: a directory renamed with `redirect_dir=on`
//! (its content stays under another lower path) and a `metacopy` file
//! (its data stays in a lower layer). Mount with both off.

use rbuild_oci::io_error::IoContext;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use super::LayerStats;
use super::error::LayerError;
use super::node::{NodeKind, TarMetadata, Xattrs, clamp, find_xattr, image_xattrs, read_xattrs};
use super::overlay::{OPAQUE_MARKER, OPAQUE_YES, OverlayXattrs, WHITEOUT_PREFIX, is_whiteout_device};
use super::tar_writer::{Entry, EntryKind, TarWriter};

/// How to write a layer tar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Namespace of the upper dir's opaque and whiteout xattrs.
    pub xattr_prefix: OverlayXattrs,
    /// SOURCE_DATE_EPOCH: any mtime later than this (seconds since the
    /// epoch) is written as this.
    pub clamp_mtime: Option<i64>,
    /// Paths relative to the upper dir to leave out, with everything below
    /// them (mount-point placeholders a RUN step created).
    pub exclude: Vec<PathBuf>,
}

/// Writes the overlay upper directory `upper` to `out` as a layer tar.
pub fn write_layer_tar<W: Write>(
    upper: &Path,
    out: W,
    opts: &WriteOptions,
) -> Result<LayerStats, LayerError> {
    // The caller's path is trusted and may go through symlinks; below it,
    // nothing is followed.
    let upper = &fs::canonicalize(upper).ctx("cannot resolve", upper)?;
    let root_meta = fs::symlink_metadata(upper).ctx("cannot inspect", upper)?;
    if !root_meta.is_dir() {
        return Err(LayerError::io(
            "cannot read upper directory",
            upper,
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    let mut walk = DiffWalk {
        writer: TarWriter::new(out),
        opts,
        excluded: opts.exclude.iter().map(|p| excluded_key(p)).collect(),
        first_name_of_inode: HashMap::new(),
        no_xattrs: Xattrs::new(),
    };

    // The root has no entry of its own, but an opaque root still has to
    // say so.
    let root_xattrs = read_xattrs(upper)?;
    if find_xattr(&root_xattrs, opts.xattr_prefix.opaque()) == Some(OPAQUE_YES) {
        let mtime = clamp(root_meta.mtime(), opts.clamp_mtime);
        walk.write_marker(OPAQUE_MARKER.to_vec(), mtime)?;
    }

    let mut stack =
        vec![DirFrame { rel: Vec::new(), abs: upper.to_path_buf(), names: sorted_names(upper)?.into_iter() }];
    while let Some(frame) = stack.last_mut() {
        let Some(name) = frame.names.next() else {
            stack.pop();
            continue;
        };
        let abs = frame.abs.join(&name);
        let mut rel = frame.rel.clone();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.as_bytes());
        if walk.excluded.contains(&rel) {
            continue;
        }
        let descend = walk.write_node(&abs, &rel, name.as_bytes())?;
        if descend {
            let names = sorted_names(&abs)?.into_iter();
            stack.push(DirFrame { rel, abs, names });
        }
    }
    walk.writer.finish()
}

/// A directory being walked: its path in the tar and on disk, and the
/// names not visited yet.
struct DirFrame {
    rel: Vec<u8>,
    abs: PathBuf,
    names: std::vec::IntoIter<OsString>,
}

struct DiffWalk<'o, W: Write> {
    writer: TarWriter<W>,
    opts: &'o WriteOptions,
    excluded: HashSet<Vec<u8>>,
    /// (device, inode) of multiply-linked files seen so far → their name.
    first_name_of_inode: HashMap<(u64, u64), Vec<u8>>,
    no_xattrs: Xattrs,
}

/// One node of the upper dir, as the tar entry for it needs it.
#[derive(Clone, Copy)]
struct PlainNode<'a> {
    abs: &'a Path,
    rel: &'a [u8],
    meta: &'a fs::Metadata,
    kind: NodeKind,
    tar_meta: TarMetadata,
    xattrs: &'a Xattrs,
    /// The directory replaces the one below (overlay's opaque xattr).
    opaque: bool,
}

/// Overlay features that make an upper dir depend on its lower layers:
/// such a directory is not a self-contained layer.
fn refuse_redirects_and_metacopy(
    abs: &Path,
    xattrs: &Xattrs,
    prefix: OverlayXattrs,
) -> Result<(), LayerError> {
    if find_xattr(xattrs, prefix.redirect()).is_some() {
        return Err(LayerError::Unsupported {
            path: abs.display().to_string(),
            what: "overlay redirect (a directory renamed with redirect_dir=on; mount with redirect_dir=off)"
                .into(),
        });
    }
    if find_xattr(xattrs, prefix.metacopy()).is_some() {
        return Err(LayerError::Unsupported {
            path: abs.display().to_string(),
            what: "overlay metacopy file (its data is in a lower layer; mount with metacopy=off)".into(),
        });
    }
    Ok(())
}

impl<W: Write> DiffWalk<'_, W> {
    /// Writes the entry (or entries) for one node; returns whether the walk
    /// should descend into it.
    fn write_node(&mut self, abs: &Path, rel: &[u8], name: &[u8]) -> Result<bool, LayerError> {
        let meta = fs::symlink_metadata(abs).ctx("cannot inspect", abs)?;
        let kind = NodeKind::of(&meta);
        let all_xattrs = read_xattrs(abs)?;
        let prefix = self.opts.xattr_prefix;
        let tar_meta = TarMetadata::of(&meta, self.opts.clamp_mtime);

        // Whiteouts first: kernels share one whiteout inode between all
        // whiteouts of a mount, which must not turn into hard links.
        if is_whiteout_device(&meta) || is_xattr_whiteout(kind, &meta, &all_xattrs, prefix) {
            let parent_len = rel.len() - name.len();
            let mut whiteout = rel[..parent_len].to_vec();
            whiteout.extend_from_slice(WHITEOUT_PREFIX);
            whiteout.extend_from_slice(name);
            self.write_marker(whiteout, tar_meta.mtime)?;
            return Ok(false);
        }
        refuse_redirects_and_metacopy(abs, &all_xattrs, prefix)?;
        let xattrs = image_xattrs(&all_xattrs);

        if kind != NodeKind::Dir && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.first_name_of_inode.get(&key) {
                let entry = Entry {
                    path: rel,
                    kind: EntryKind::HardLink { target: first },
                    meta: tar_meta,
                    xattrs: &xattrs,
                };
                self.writer.append(&entry)?;
                return Ok(false);
            }
            self.first_name_of_inode.insert(key, rel.to_vec());
        }

        let opaque = find_xattr(&all_xattrs, prefix.opaque()) == Some(OPAQUE_YES);
        self.write_plain_node(&PlainNode { abs, rel, meta: &meta, kind, tar_meta, xattrs: &xattrs, opaque })
    }

    /// Writes a node that is neither a whiteout nor a second name of a
    /// file already written; returns whether the walk should descend into it.
    fn write_plain_node(&mut self, node: &PlainNode<'_>) -> Result<bool, LayerError> {
        let PlainNode { abs, rel, meta, kind, tar_meta, xattrs, opaque } = *node;
        match kind {
            NodeKind::Dir => {
                let mut dir_path = rel.to_vec();
                dir_path.push(b'/');
                let entry = Entry { path: &dir_path, kind: EntryKind::Dir, meta: tar_meta, xattrs };
                self.writer.append(&entry)?;
                if opaque {
                    dir_path.extend_from_slice(OPAQUE_MARKER);
                    self.write_marker(dir_path, tar_meta.mtime)?;
                }
                Ok(true)
            }
            NodeKind::File => {
                let entry =
                    Entry { path: rel, kind: EntryKind::File { size: meta.len() }, meta: tar_meta, xattrs };
                write_file_entry(&mut self.writer, &entry, abs, meta)?;
                Ok(false)
            }
            NodeKind::Symlink => {
                let target = fs::read_link(abs).ctx("cannot read symlink", abs)?;
                let target = target.as_os_str().as_bytes();
                let entry = Entry { path: rel, kind: EntryKind::Symlink { target }, meta: tar_meta, xattrs };
                self.writer.append(&entry)?;
                Ok(false)
            }
            NodeKind::CharDevice | NodeKind::BlockDevice | NodeKind::Fifo => {
                let entry = Entry { path: rel, kind: special_kind(kind, meta), meta: tar_meta, xattrs };
                self.writer.append(&entry)?;
                Ok(false)
            }
            NodeKind::Socket => {
                tracing::debug!(path = %abs.display(), "leaving socket out of the layer");
                Ok(false)
            }
        }
    }

    /// Writes an empty marker file (whiteout or opaque marker).
    fn write_marker(&mut self, path: Vec<u8>, mtime: i64) -> Result<(), LayerError> {
        let entry = Entry {
            path: &path,
            kind: EntryKind::File { size: 0 },
            meta: TarMetadata::marker(mtime),
            xattrs: &self.no_xattrs,
        };
        self.writer.append(&entry)
    }
}

/// Streams a regular file into the tar; shared with the flat-tar export.
pub(crate) fn write_file_entry<W: Write>(
    writer: &mut TarWriter<W>,
    entry: &Entry<'_>,
    path: &Path,
    meta: &Metadata,
) -> Result<(), LayerError> {
    if meta.len() == 0 {
        return writer.append(entry);
    }
    let mut file =
        File::options().read(true).custom_flags(libc::O_NOFOLLOW).open(path).ctx("cannot open", path)?;
    // Read once, front to back: ask for a larger readahead. Only a hint,
    // so a failure changes nothing; a file within the default readahead
    // window gains nothing from it but a system call.
    if meta.len() > 128 << 10 {
        let _ = nix::fcntl::posix_fadvise(&file, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
    }
    writer.append_file(entry, &mut file, path)
}

/// Tar kind of a device node or fifo.
pub(crate) fn special_kind(kind: NodeKind, meta: &Metadata) -> EntryKind<'static> {
    let rdev = meta.rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    match kind {
        NodeKind::CharDevice => EntryKind::CharDevice { major, minor },
        NodeKind::BlockDevice => EntryKind::BlockDevice { major, minor },
        _ => EntryKind::Fifo,
    }
}

fn is_xattr_whiteout(kind: NodeKind, meta: &Metadata, xattrs: &Xattrs, prefix: OverlayXattrs) -> bool {
    kind == NodeKind::File && meta.len() == 0 && find_xattr(xattrs, prefix.whiteout()).is_some()
}

/// Names in a directory, sorted bytewise.
pub(crate) fn sorted_names(dir: &Path) -> Result<Vec<OsString>, LayerError> {
    let mut names = Vec::new();
    for item in fs::read_dir(dir).ctx("cannot list directory", dir)? {
        names.push(item.ctx("cannot list directory", dir)?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// An exclude path as the walk spells relative names: no leading `/` or
/// `./`, no trailing `/`, no empty or `.` components.
fn excluded_key(path: &Path) -> Vec<u8> {
    let parts: Vec<&[u8]> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.as_bytes()),
            _ => None,
        })
        .collect();
    parts.join(&b'/')
}
