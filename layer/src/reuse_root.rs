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
use std::path::{Path, PathBuf};

use rbuild_oci::io_error::IoContext;

use super::LayerStats;
use super::copy_root::PreparedRoot;
use super::diff::sorted_names;
use super::error::LayerError;
use super::node::{NodeKind, image_xattrs, read_xattrs};
use super::overlay::{OverlayXattrs, is_opaque_dir, is_whiteout_at};
use super::safe_tree::{NodeAttrs, SafeTree, TreeOptions, join_components};
use super::stack::LayerStack;
use super::stack_export::{CopyTree, FileJob, copy_files, make_special_like};

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
        let attrs = NodeAttrs::of(&meta, &xattrs);
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
            NodeKind::File => self.files.push(FileJob::new(components, path, &attrs)),
            NodeKind::Symlink => {
                let target = fs::read_link(path).ctx("cannot read symlink", path)?;
                self.tree.make_symlink(components, target.as_os_str().as_bytes(), &attrs, &entry)?;
            }
            NodeKind::CharDevice | NodeKind::BlockDevice if !self.how.devices => {
                self.tree.remove(components, &entry)?;
            }
            NodeKind::CharDevice | NodeKind::BlockDevice | NodeKind::Fifo => {
                make_special_like(self.tree, components, kind, &meta, &attrs, &entry)?;
            }
            NodeKind::Socket => self.tree.remove(components, &entry)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::super::copy_root::tests::inodes;
    use super::super::overlay::OverlayXattrs;
    use super::*;

    /// Everything a step can see of a tree but inode numbers and the
    /// root's own metadata, by path.
    fn describe(root: &Path) -> BTreeMap<PathBuf, String> {
        walkdir::WalkDir::new(root)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let m = e.path().symlink_metadata().unwrap();
                let content = if m.is_file() {
                    String::from_utf8_lossy(&fs::read(e.path()).unwrap()).into_owned()
                } else if m.is_symlink() {
                    fs::read_link(e.path()).unwrap().display().to_string()
                } else {
                    String::new()
                };
                let xattrs: Vec<_> = xattr::list(e.path()).unwrap().collect();
                let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                let shown = format!(
                    "{:o} {}:{} links {} mtime {}.{} {content:?} {xattrs:?}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    m.nlink(),
                    m.mtime(),
                    m.mtime_nsec()
                );
                (rel, shown)
            })
            .collect()
    }

    #[test]
    fn a_carried_root_is_the_tree_a_fresh_copy_gives_and_finds_only_the_next_changes() {
        let temp = tempfile::tempdir().unwrap();
        let [lower, root, upper, fresh, next] =
            ["lower", "root", "upper", "fresh", "next"].map(|d| temp.path().join(d));
        for d in ["etc", "d/sub", "swap", "x"] {
            fs::create_dir_all(lower.join(d)).unwrap();
        }
        for (f, content) in
            [("etc/a", "a"), ("etc/b", "b"), ("d/sub/y", "y"), ("swap/s", "s"), ("tofile", "t")]
        {
            fs::write(lower.join(f), content).unwrap();
        }
        fs::write(lower.join("x/f"), "x").unwrap();
        xattr::set(lower.join("x"), "user.note", b"dir").unwrap();
        fs::hard_link(lower.join("etc/a"), lower.join("etc/a2")).unwrap();
        let prefix = OverlayXattrs::User;
        let below = LayerStack::new(vec![lower.clone()], prefix);
        let prepared = below.prepare_root(&root).unwrap();

        fs::write(root.join("etc/a"), "changed").unwrap();
        fs::remove_file(root.join("etc/b")).unwrap();
        fs::remove_dir_all(root.join("d")).unwrap();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/new"), "new").unwrap();
        fs::remove_dir_all(root.join("swap")).unwrap();
        fs::write(root.join("swap"), "now a file").unwrap();
        fs::remove_file(root.join("tofile")).unwrap();
        fs::create_dir(root.join("tofile")).unwrap();
        fs::set_permissions(root.join("etc/a2"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(root.join("h1"), "h").unwrap();
        fs::hard_link(root.join("h1"), root.join("h2")).unwrap();
        prepared.write_changes(&root, &upper).unwrap();

        let whole = LayerStack::new(vec![upper.clone(), lower.clone()], prefix);
        let carried = whole.carry_root(&root, std::slice::from_ref(&upper)).unwrap();
        whole.prepare_root(&fresh).unwrap();
        assert_eq!(describe(&root), describe(&fresh), "a carried root differs from a fresh copy");
        let carried_inodes = inodes(&root);
        assert!(carried_inodes.is_disjoint(&inodes(&upper)), "a carried file is the layer's file");
        assert!(carried_inodes.is_disjoint(&inodes(&lower)), "a carried file is the base's file");

        // The next step's changes are found against the new baseline.
        fs::write(root.join("d/new"), "newer").unwrap();
        carried.write_changes(&root, &next).unwrap();
        let changed: Vec<_> = describe(&next).into_keys().collect();
        assert_eq!(changed, [PathBuf::from("d"), PathBuf::from("d/new")]);

        // A layer made elsewhere on top (a cache hit between two RUNs):
        // its whiteouts, opaque directory and dropped xattr count too.
        let [elsewhere, other] = ["elsewhere", "other"].map(|d| temp.path().join(d));
        let next_stack = LayerStack::new(vec![next.clone(), upper.clone(), lower.clone()], prefix);
        let prepared = next_stack.prepare_root(&elsewhere).unwrap();
        fs::remove_file(elsewhere.join("etc/a2")).unwrap();
        fs::remove_dir_all(elsewhere.join("d")).unwrap();
        fs::create_dir(elsewhere.join("d")).unwrap();
        fs::write(elsewhere.join("d/z"), "z").unwrap();
        xattr::remove(elsewhere.join("x"), "user.note").unwrap();
        fs::remove_file(elsewhere.join("swap")).unwrap();
        fs::create_dir(elsewhere.join("swap")).unwrap();
        prepared.write_changes(&elsewhere, &other).unwrap();
        let top = LayerStack::new(vec![other.clone(), next.clone(), upper.clone(), lower.clone()], prefix);
        top.carry_root(&root, &[next.clone(), other.clone()]).unwrap();
        let fresh_top = temp.path().join("fresh-top");
        top.prepare_root(&fresh_top).unwrap();
        assert_eq!(describe(&root), describe(&fresh_top), "a root carried over two layers differs");
        assert!(!root.join("etc/a2").exists() && root.join("d/z").exists() && !root.join("d/new").exists());
    }
}
