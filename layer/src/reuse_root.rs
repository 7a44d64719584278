//! Carrying a prepared root on to the next RUN step of a stage (the
//! copying snapshotter), instead of copying the whole merged tree again.
//!
//! After [`PreparedRoot::write_changes`], a root is the merged tree it was
//! prepared from, with the step's deletions made and every node the step
//! changed moved out into the upper dir, which became a layer. Applying
//! that layer's snapshot dir onto the root puts the changed nodes back; so
//! does applying any later layer (a COPY step's, a cache hit's) in turn.
//! An applied layer counts exactly as it does in the merged view
//! [`LayerStack::prepare_root`] copies:
//!
//! * a whiteout removes what is there;
//! * an opaque directory replaces the directory there with all it held;
//! * a directory merges with one that is there, taking the layer's owner,
//!   mode, mtime and xattrs (and losing xattrs the layer's lacks);
//! * anything else replaces what is there: files are reflinked or copied
//!   (never hard-linked to the snapshot: the store stays out of reach of
//!   the next step), each name of a hard link on its own, as preparation
//!   copies them; sockets, and device nodes without root of the host, are
//!   left out (and what they replace is removed).
//!
//! Then a new baseline is recorded over the whole root, as after a fresh
//! preparation, so the next step's changes are found the same way.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rbuild_oci::io_error::IoContext;

use super::LayerStats;
use super::copy_root::PreparedRoot;
use super::diff::sorted_names;
use super::error::LayerError;
use super::node::{NodeKind, image_xattrs, read_xattrs};
use super::overlay::{OverlayXattrs, is_opaque_dir, is_whiteout_at};
use super::safe_tree::{NodeAttrs, SafeTree, SpecialKind, TreeOptions, join_components};
use super::stack::LayerStack;
use super::stack_export::{CopyTree, FileJob, copy_files};

impl LayerStack {
    /// Makes `root`, a root that held the merged tree of this stack's
    /// lower part with the changes of its last step moved out, into the
    /// root of this whole stack: applies `new_layers` (snapshot dirs of
    /// this stack, bottom first) onto it, then records its baseline.
    pub fn carry_root(&self, root: &Path, new_layers: &[PathBuf]) -> Result<PreparedRoot, LayerError> {
        let how = CopyTree::for_prepared_root();
        let options = TreeOptions { chown: how.chown, prefix: self.prefix };
        let mut stats = LayerStats::default();
        for layer in new_layers {
            let mut tree = SafeTree::open(root, options)?;
            let mut apply = Apply { layer, prefix: self.prefix, how, tree: &mut tree, files: Vec::new() };
            apply.dir(&mut Vec::new(), &mut stats)?;
            let files = std::mem::take(&mut apply.files);
            stats.content_bytes += copy_files(root, options, &mut tree, files)?;
            tree.finish()?;
        }
        PreparedRoot::record(self.clone(), root, stats)
    }
}

/// One layer's snapshot dir being applied onto a root.
struct Apply<'a> {
    layer: &'a Path,
    prefix: OverlayXattrs,
    how: CopyTree,
    tree: &'a mut SafeTree,
    /// Regular files to copy once the walk is done (several at a time).
    files: Vec<FileJob>,
}

impl Apply<'_> {
    /// Applies the directory at `components` of the layer (its own entry
    /// already applied) and everything below it.
    fn dir(&mut self, components: &mut Vec<Vec<u8>>, stats: &mut LayerStats) -> Result<(), LayerError> {
        let dir_path = self.layer.join(std::ffi::OsStr::from_bytes(&join_components(components)));
        for name in sorted_names(&dir_path)? {
            let path = dir_path.join(&name);
            components.push(name.as_bytes().to_vec());
            self.node(&path, components, stats)?;
            components.pop();
        }
        Ok(())
    }

    fn node(
        &mut self,
        path: &Path,
        components: &mut Vec<Vec<u8>>,
        stats: &mut LayerStats,
    ) -> Result<(), LayerError> {
        let entry = join_components(components);
        let meta = fs::symlink_metadata(path).ctx("cannot inspect", path)?;
        if is_whiteout_at(path, &meta, self.prefix).ctx("cannot inspect", path)? {
            return self.tree.remove(components, &entry);
        }
        let kind = NodeKind::of(&meta);
        let xattrs = image_xattrs(&read_xattrs(path)?);
        let attrs = NodeAttrs {
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: meta.mtime(),
            mtime_nanos: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
            xattrs: &xattrs,
        };
        stats.entries += 1;
        match kind {
            NodeKind::Dir => {
                if is_opaque_dir(path, self.prefix).ctx("cannot read xattrs of", path)? {
                    self.tree.remove(components, &entry)?;
                }
                self.tree.make_dir(components, &attrs, &entry)?;
                self.tree.drop_xattrs_except(components, &xattrs, &entry)?;
                return self.dir(components, stats);
            }
            NodeKind::File => self.files.push(FileJob {
                components: components.clone(),
                source: path.to_path_buf(),
                mode: attrs.mode,
                uid: attrs.uid,
                gid: attrs.gid,
                mtime: (attrs.mtime, attrs.mtime_nanos),
                xattrs: xattrs.clone(),
            }),
            NodeKind::Symlink => {
                let target = fs::read_link(path).ctx("cannot read symlink", path)?;
                self.tree.make_symlink(components, target.as_os_str().as_bytes(), &attrs, &entry)?;
            }
            NodeKind::CharDevice | NodeKind::BlockDevice if !self.how.devices => {
                self.tree.remove(components, &entry)?;
            }
            NodeKind::CharDevice | NodeKind::BlockDevice | NodeKind::Fifo => {
                let special = match kind {
                    NodeKind::CharDevice => SpecialKind::CharDevice,
                    NodeKind::BlockDevice => SpecialKind::BlockDevice,
                    _ => SpecialKind::Fifo,
                };
                let rdev = meta.rdev();
                let device = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
                self.tree.make_special(components, special, device, &attrs, &entry)?;
            }
            NodeKind::Socket => self.tree.remove(components, &entry)?,
        }
        Ok(())
    }
}
