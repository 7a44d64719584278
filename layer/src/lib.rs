//! Layers on disk: applying a layer tar into an overlay-format snapshot
//! directory, writing an overlay upper directory out as a deterministic
//! layer tar, and reading a stack of snapshot directories as one tree.
//!
//! Two representations of a layer meet here:
//!
//! * the **layer tar** (OCI/Docker format): deletions are empty files named
//!   `.wh.<name>`, and a directory that replaces the one below carries an
//!   empty `.wh..wh..opq` entry;
//! * the **snapshot directory** (overlayfs format), usable as a `lowerdir`:
//!   a deletion is a character device 0/0 named like the deleted entry, and
//!   a replacing directory carries the `<prefix>overlay.opaque=y` xattr.
//!
//! [`write_layer_tar`] turns an overlay upper dir into a tar,
//! [`apply_layer_tar`] turns a tar into a snapshot dir, and [`LayerStack`]
//! reads a stack of snapshot dirs the way an overlay mount would show them,
//! without mounting anything; [`LayerStack::prepare_root`] copies a stack
//! into a real directory for a step and finds the step's changes by
//! comparison, where no overlay can be mounted.

mod apply;
mod copy_root;
mod diff;
mod error;
mod node;
mod overlay;
mod reuse_root;
mod safe_tree;
mod stack;
mod stack_export;
mod tar_encode;
mod tar_reader;
mod tar_writer;
mod virtual_tar;
mod write_watch;

pub use apply::{ApplyOptions, apply_layer_tar, apply_layer_tar_auto};
pub use copy_root::PreparedRoot;
pub use diff::{WriteOptions, write_layer_tar};
pub use error::LayerError;
pub use node::{has_any_xattrs, has_image_xattrs};
pub use overlay::{OverlayXattrs, has_host_root};
pub use stack::{Found, LayerStack};
pub use stack_export::FlatTarOptions;
pub use virtual_tar::{VirtualEntry, VirtualKind, VirtualTar};

/// Counts describing one tar written or applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Tar entries written or read, whiteouts and opaque markers included
    /// (PAX and GNU extension headers are not entries of their own).
    pub entries: u64,
    /// Bytes of the uncompressed tar stream, end-of-archive blocks included.
    pub tar_bytes: u64,
    /// Bytes of regular-file content.
    pub content_bytes: u64,
    /// Bytes of symlink targets (with `content_bytes`, what Docker counts
    /// as a layer's size).
    pub link_target_bytes: u64,
}
