//! The overlayfs on-disk conventions a snapshot directory follows, and the
//! OCI tar conventions they are translated to and from.
//!
//! In a snapshot (or upper) directory:
//! * a deleted name is a **whiteout**: a character device with device
//!   number 0/0 (kernels 6.7+ also accept an empty regular file carrying the
//!   `<ns>whiteout` xattr; we read those and write them only as a fallback
//!   when `mknod` is not allowed);
//! * a directory that replaces the lower one instead of merging with it is
//!   **opaque**: it carries `<ns>opaque` = `y`.
//!
//! `<ns>` is `trusted.overlay.` for a normal mount, and `user.overlay.` for
//! a mount with `userxattr` (rootless builds).
//!
//! In a layer tar, a whiteout is an empty file `.wh.<name>` and an opaque
//! directory is marked by an empty `.wh..wh..opq` entry inside it.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::OnceLock;

/// Whether this process is root of the host: uid 0 in the initial user
/// namespace. Only such a process can set `trusted.*` xattrs or create
/// device nodes; root inside a user namespace (rootless rbuild) can own
/// files as any mapped id but can do neither of those.
pub fn has_host_root() -> bool {
    static HOST_ROOT: OnceLock<bool> = OnceLock::new();
    *HOST_ROOT.get_or_init(|| nix::unistd::geteuid().is_root() && in_initial_user_namespace())
}

/// The initial user namespace maps every id to itself (`0 0 4294967295`);
/// any other namespace maps less.
fn in_initial_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => map.split_whitespace().eq(["0", "0", "4294967295"]),
        // Without /proc there is no way to be in a namespace of our making.
        Err(_) => true,
    }
}

/// Which xattr namespace the overlay mount uses for its own bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OverlayXattrs {
    /// `trusted.overlay.*`: the kernel default, needs CAP_SYS_ADMIN.
    #[default]
    Trusted,
    /// `user.overlay.*`: overlay mounted with `userxattr` inside a user
    /// namespace (rootless).
    User,
}

impl OverlayXattrs {
    /// The namespace prefix, dot included: `trusted.overlay.` or `user.overlay.`.
    pub fn namespace(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.",
            OverlayXattrs::User => "user.overlay.",
        }
    }

    /// Marks a directory that hides everything below it (value `y`).
    pub fn opaque(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.opaque",
            OverlayXattrs::User => "user.overlay.opaque",
        }
    }

    /// Marks an empty regular file as a whiteout (kernel 6.7+).
    pub(crate) fn whiteout(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.whiteout",
            OverlayXattrs::User => "user.overlay.whiteout",
        }
    }

    /// Marks a directory as holding xattr whiteouts (the kernel 6.7 form;
    /// 6.8+ reads `opaque` = `x` instead, and we write both).
    pub(crate) fn whiteouts(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.whiteouts",
            OverlayXattrs::User => "user.overlay.whiteouts",
        }
    }

    /// Set by overlayfs on a renamed directory when `redirect_dir` is on;
    /// the directory's content then lives under another lower path.
    pub(crate) fn redirect(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.redirect",
            OverlayXattrs::User => "user.overlay.redirect",
        }
    }

    /// Set by overlayfs when `metacopy` is on: the upper file holds only
    /// metadata and its data is still in a lower layer.
    pub(crate) fn metacopy(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.metacopy",
            OverlayXattrs::User => "user.overlay.metacopy",
        }
    }
}

/// Tar name prefix of a whiteout entry.
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Tar name of the entry that marks its directory opaque.
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// AUFS kept its own metadata under names with this prefix; such entries
/// carry nothing an overlay snapshot needs.
pub(crate) const AUFS_META_PREFIX: &[u8] = b".wh..wh.";

/// The value of the opaque xattr that means "opaque". (`x` means "holds
/// xattr whiteouts" and is not opaque.)
pub(crate) const OPAQUE_YES: &[u8] = b"y";

/// True for the overlay's own xattrs, in either namespace. They describe
/// the overlay mount, not the image, so they never go into a tar and are
/// never restored from one (a hostile `redirect` could point a lookup
/// elsewhere in the lower layers).
pub(crate) fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// A character device with device number 0/0.
pub(crate) fn is_whiteout_device(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether `path` (already `lstat`ed as `meta`) is a whiteout in either of
/// the forms overlayfs accepts.
pub(crate) fn is_whiteout_at(path: &Path, meta: &Metadata, prefix: OverlayXattrs) -> std::io::Result<bool> {
    if is_whiteout_device(meta) {
        return Ok(true);
    }
    // Only an empty regular file can be an xattr whiteout, which keeps the
    // extra getxattr off the common path.
    if meta.file_type().is_file() && meta.len() == 0 {
        return has_xattr(path, prefix.whiteout());
    }
    Ok(false)
}

/// Whether the directory at `path` is opaque.
pub(crate) fn is_opaque_dir(path: &Path, prefix: OverlayXattrs) -> std::io::Result<bool> {
    Ok(read_xattr(path, prefix.opaque())?.as_deref() == Some(OPAQUE_YES))
}

fn has_xattr(path: &Path, name: &str) -> std::io::Result<bool> {
    Ok(read_xattr(path, name)?.is_some())
}

/// `lgetxattr`, treating "this filesystem has no xattrs" as "not set".
fn read_xattr(path: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    match xattr::get(path, name) {
        Ok(value) => Ok(value),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(None),
        Err(e) => Err(e),
    }
}
