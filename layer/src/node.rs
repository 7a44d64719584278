//! Reading one filesystem node the way a tar entry needs it: its kind, the
//! numeric metadata a layer keeps, and its xattrs in a stable order.

use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::error::LayerError;
use super::overlay::is_overlay_xattr;

/// Extended attributes as (name, value) pairs, sorted by name.
pub(crate) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The kinds of filesystem node, as far as layers care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    File,
    Dir,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    /// Sockets cannot be stored in a tar; they are left out.
    Socket,
}

impl NodeKind {
    pub(crate) fn of(meta: &Metadata) -> NodeKind {
        let ft = meta.file_type();
        if ft.is_dir() {
            NodeKind::Dir
        } else if ft.is_symlink() {
            NodeKind::Symlink
        } else if ft.is_char_device() {
            NodeKind::CharDevice
        } else if ft.is_block_device() {
            NodeKind::BlockDevice
        } else if ft.is_fifo() {
            NodeKind::Fifo
        } else if ft.is_socket() {
            NodeKind::Socket
        } else {
            NodeKind::File
        }
    }
}

/// The numeric metadata a tar header carries for a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TarMetadata {
    /// Permission bits with setuid/setgid/sticky; no file-type bits.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch, after clamping.
    pub mtime: i64,
}

impl TarMetadata {
    pub(crate) fn of(meta: &Metadata, clamp_mtime: Option<i64>) -> TarMetadata {
        TarMetadata {
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: clamp(meta.mtime(), clamp_mtime),
        }
    }

    /// What whiteouts and opaque markers get: no permissions, owned by
    /// root, only the time taken from the node they stand for.
    pub(crate) fn marker(mtime: i64) -> TarMetadata {
        TarMetadata { mode: 0, uid: 0, gid: 0, mtime }
    }
}

/// SOURCE_DATE_EPOCH semantics: times after the epoch given are set to it,
/// earlier ones are kept.
pub(crate) fn clamp(mtime: i64, clamp_mtime: Option<i64>) -> i64 {
    match clamp_mtime {
        Some(limit) if mtime > limit => limit,
        _ => mtime,
    }
}

/// All xattrs of `path` (not following a final symlink), sorted by name so
/// the tar does not depend on the order the filesystem lists them in.
pub(crate) fn read_xattrs(path: &Path) -> Result<Xattrs, LayerError> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(LayerError::io("cannot list xattrs of", path, e)),
    };
    let mut xattrs = Vec::new();
    for name in names {
        match xattr::get(path, &name) {
            Ok(Some(value)) => xattrs.push((name.as_bytes().to_vec(), value)),
            // Removed between list and get: it is simply not there.
            Ok(None) => {}
            Err(e) => return Err(LayerError::io("cannot read xattr of", path, e)),
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

/// Which xattrs belong in an image: everything but the overlay's own
/// bookkeeping and the build host's SELinux label (a label is assigned by
/// the host that runs the container, and Docker and BuildKit leave it out
/// too).
pub(crate) fn keep_in_image(name: &[u8]) -> bool {
    !is_overlay_xattr(name) && name != b"security.selinux"
}

/// The xattrs of `all` that go into a tar or an exported tree.
pub(crate) fn image_xattrs(all: &Xattrs) -> Xattrs {
    all.iter().filter(|(name, _)| keep_in_image(name)).cloned().collect()
}

/// True when `path` carries xattrs a layer tar would record. A freshly
/// made directory that has some (an inherited default ACL, a security
/// module's label) says new nodes beside it get them too.
pub fn has_image_xattrs(path: &Path) -> Result<bool, LayerError> {
    Ok(read_xattrs(path)?.iter().any(|(name, _)| keep_in_image(name)))
}

/// Whether `path` (not followed) carries any extended attribute at all.
pub fn has_any_xattrs(path: &Path) -> Result<bool, LayerError> {
    match xattr::list(path) {
        Ok(mut names) => Ok(names.next().is_some()),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(false),
        Err(e) => Err(LayerError::io("cannot list xattrs of", path, e)),
    }
}

/// Looks one xattr up in a list read by [`read_xattrs`].
pub(crate) fn find_xattr<'a>(xattrs: &'a Xattrs, name: &str) -> Option<&'a [u8]> {
    xattrs.iter().find(|(n, _)| n.as_slice() == name.as_bytes()).map(|(_, v)| v.as_slice())
}
