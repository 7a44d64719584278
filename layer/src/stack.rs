//! A merged, read-only view of a stack of snapshot directories, resolved in
//! userspace the way an overlay mount with those directories as lowerdirs
//! would show them, without mounting anything.
//!
//! Rules, as in overlayfs:
//! * for a name in a merged directory, the topmost layer that has it wins;
//! * a whiteout there (device 0/0 or xattr whiteout) means the name does
//!   not exist, and hides it in every layer below;
//! * a non-directory hides everything below it;
//! * a directory merges with directories of the same path below it, down
//!   to and including the first opaque one (an opaque directory shows
//!   nothing from below); the root always merges all layers;
//! * symlinks are resolved against the merged tree: an absolute target
//!   starts again at the merged root, and `..` never climbs above it (as
//!   `filepath-securejoin` does). At most 40 symlinks are followed per
//!   lookup.
//!
//! One case is deliberately not mirrored: a whiteout inside an opaque
//! directory of a lower layer is hidden here, while the kernel's readdir
//! of such a directory lists it. It is redundant there, and
//! [`super::apply_layer_tar`] never leaves one behind.
//!
//! Every path a [`Found`] points to is made of real directories inside
//! its layer (each component was `lstat`ed as a directory), so it can be
//! opened directly. Merged paths are reported as `String`s; names that are
//! not UTF-8 are shown lossily there, while [`LayerStack::read_dir`] and
//! the exports keep exact bytes.

use rbuild_oci::io_error::IoContext;
use std::collections::{BTreeMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::LayerError;
use super::overlay::{OverlayXattrs, is_opaque_dir, is_whiteout_at};

/// Symlinks followed in one lookup before giving up, as Linux does.
const MAX_SYMLINKS: usize = 40;

/// Snapshot directories read as one tree. Any list of directories is a
/// valid stack, so the fields are public.
#[derive(Debug, Clone)]
pub struct LayerStack {
    /// Top (newest) layer first.
    pub dirs: Vec<PathBuf>,
    /// Namespace of the opaque and whiteout xattrs in these directories.
    pub prefix: OverlayXattrs,
}

/// Where a merged path lives.
#[derive(Debug, Clone)]
pub struct Found {
    /// The path in the layer directory that provides it.
    pub real_path: PathBuf,
    /// Index in the stack (0 = top) of that layer.
    pub layer_index: usize,
    /// `lstat` of `real_path`.
    pub metadata: Metadata,
    /// The resolved merged path, absolute (`/etc/passwd`; `/` for the root).
    pub merged_path: String,
}

/// A directory of the merged tree and the layers that contribute to it,
/// top first.
#[derive(Debug, Clone)]
pub(crate) struct MergedDir {
    pub components: Vec<OsString>,
    pub layers: Vec<usize>,
}

/// One name of a merged directory.
#[derive(Debug, Clone)]
pub(crate) struct MergedChild {
    pub name: OsString,
    pub layer: usize,
    pub real_path: PathBuf,
    pub metadata: Metadata,
    /// For a directory: the layers it merges, top first. Empty otherwise.
    pub dir_layers: Vec<usize>,
}

/// A node met by [`LayerStack::walk_below`].
pub(crate) struct WalkItem<'a> {
    /// Path from the merged root, one name per component.
    pub components: &'a [OsString],
    pub child: &'a MergedChild,
}

impl LayerStack {
    /// A stack of snapshot directories, `dirs[0]` on top.
    pub fn new(dirs: Vec<PathBuf>, prefix: OverlayXattrs) -> LayerStack {
        LayerStack { dirs, prefix }
    }

    /// Resolves `path` (absolute or relative to the merged root) through
    /// the stack. Symlinks in the middle of the path are always followed;
    /// a symlink in the last component only with `follow_final_symlink`.
    /// `Ok(None)` when the path does not exist (or goes through a
    /// non-directory).
    pub fn lookup(&self, path: &str, follow_final_symlink: bool) -> Result<Option<Found>, LayerError> {
        Ok(self.resolve(path, follow_final_symlink)?.map(|resolved| resolved.found))
    }

    /// The merged entries of the directory at `path` (symlinks followed),
    /// sorted by name, whiteouts and hidden lower entries left out.
    pub fn read_dir(&self, path: &str) -> Result<Vec<(OsString, Found)>, LayerError> {
        let dir = self.resolve_dir(path)?;
        let entries = self.list(&dir)?;
        Ok(entries
            .into_iter()
            .map(|child| {
                let mut components = dir.components.clone();
                components.push(child.name.clone());
                let found = found_for(&child, &components);
                (child.name, found)
            })
            .collect())
    }

    /// Visits the merged tree at `path` (symlinks in `path` followed) and
    /// everything below it, depth first, each directory's entries in name
    /// order, a directory before its content. Symlinks met on the way are
    /// reported, not followed. The first error from `visit` stops the walk.
    pub fn walk<F>(&self, path: &str, mut visit: F) -> Result<(), LayerError>
    where
        F: FnMut(&Found) -> Result<(), LayerError>,
    {
        let Some(start) = self.resolve(path, true)? else {
            return Err(LayerError::NotFound { path: path.to_string() });
        };
        visit(&start.found)?;
        if let Some(dir) = start.dir {
            self.walk_below(dir, &mut |item| visit(&found_for(item.child, item.components)))?;
        }
        Ok(())
    }

    /// The content of the regular file at `path` (symlinks followed), or
    /// `None` if nothing is there. Meant for small files (`/etc/passwd`).
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, LayerError> {
        let Some(found) = self.lookup(path, true)? else {
            return Ok(None);
        };
        if !found.metadata.is_file() {
            return Err(LayerError::NotAFile { path: found.merged_path });
        }
        let mut file = fs::File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&found.real_path)
            .ctx("cannot open", &found.real_path)?;
        let mut content = Vec::with_capacity(found.metadata.len() as usize);
        file.read_to_end(&mut content).ctx("cannot read", &found.real_path)?;
        Ok(Some(content))
    }

    /// The merged root: every layer contributes.
    pub(crate) fn root_dir(&self) -> MergedDir {
        MergedDir { components: Vec::new(), layers: (0..self.dirs.len()).collect() }
    }

    /// Visits everything below `dir` (not `dir` itself), depth first and
    /// sorted, without following symlinks.
    pub(crate) fn walk_below(
        &self,
        dir: MergedDir,
        visit: &mut dyn FnMut(&WalkItem<'_>) -> Result<(), LayerError>,
    ) -> Result<(), LayerError> {
        let first = self.list(&dir)?.into_iter();
        let mut stack = vec![(dir.components, first)];
        while let Some((dir_components, children)) = stack.last_mut() {
            let Some(child) = children.next() else {
                stack.pop();
                continue;
            };
            let mut components = dir_components.clone();
            components.push(child.name.clone());
            visit(&WalkItem { components: &components, child: &child })?;
            if child.metadata.is_dir() {
                let sub = MergedDir { components, layers: child.dir_layers };
                let children = self.list(&sub)?.into_iter();
                stack.push((sub.components, children));
            }
        }
        Ok(())
    }

    /// The entries of a merged directory, sorted by name.
    pub(crate) fn list(&self, dir: &MergedDir) -> Result<Vec<MergedChild>, LayerError> {
        // None records a name whited out by an upper layer.
        let mut decided: BTreeMap<Vec<u8>, Option<MergedChild>> = BTreeMap::new();
        for (position, &layer) in dir.layers.iter().enumerate() {
            let dir_path = self.layer_path(layer, &dir.components);
            let listing = match fs::read_dir(&dir_path) {
                Ok(listing) => listing,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(LayerError::io("cannot list directory", dir_path, e)),
            };
            for item in listing {
                let name = item.ctx("cannot list directory", &dir_path)?.file_name();
                if decided.contains_key(name.as_bytes()) {
                    continue;
                }
                let child = self.examine(dir, position, &name)?;
                decided.insert(name.into_vec(), child);
            }
        }
        Ok(decided.into_values().flatten().collect())
    }

    /// Looks `name` up in a merged directory, top layer first.
    pub(crate) fn child(&self, dir: &MergedDir, name: &OsStr) -> Result<Option<MergedChild>, LayerError> {
        for position in 0..dir.layers.len() {
            let path = self.layer_path(dir.layers[position], &dir.components).join(name);
            match fs::symlink_metadata(&path) {
                Ok(_) => return self.examine(dir, position, name),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(LayerError::io("cannot inspect", path, e)),
            }
        }
        Ok(None)
    }

    /// What `name` in the layer at `dir.layers[position]` stands for, given
    /// that no layer above has it: `None` for a whiteout.
    fn examine(
        &self,
        dir: &MergedDir,
        position: usize,
        name: &OsStr,
    ) -> Result<Option<MergedChild>, LayerError> {
        let layer = dir.layers[position];
        let real_path = self.layer_path(layer, &dir.components).join(name);
        let metadata = fs::symlink_metadata(&real_path).ctx("cannot inspect", &real_path)?;
        if is_whiteout_at(&real_path, &metadata, self.prefix).ctx("cannot inspect", &real_path)? {
            return Ok(None);
        }
        let dir_layers =
            if metadata.is_dir() { self.merged_layers(dir, position, name, &real_path)? } else { Vec::new() };
        Ok(Some(MergedChild { name: name.to_os_string(), layer, real_path, metadata, dir_layers }))
    }

    /// Layers a directory found in `dir.layers[position]` merges with.
    fn merged_layers(
        &self,
        dir: &MergedDir,
        position: usize,
        name: &OsStr,
        top_path: &Path,
    ) -> Result<Vec<usize>, LayerError> {
        let mut layers = vec![dir.layers[position]];
        if is_opaque_dir(top_path, self.prefix).ctx("cannot read xattrs of", top_path)? {
            return Ok(layers);
        }
        for &layer in &dir.layers[position + 1..] {
            let path = self.layer_path(layer, &dir.components).join(name);
            let metadata = match fs::symlink_metadata(&path) {
                Ok(metadata) => metadata,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(LayerError::io("cannot inspect", path, e)),
            };
            // A whiteout or any non-directory ends the merge: it hides
            // everything further down.
            if !metadata.is_dir() {
                break;
            }
            layers.push(layer);
            if is_opaque_dir(&path, self.prefix).ctx("cannot read xattrs of", &path)? {
                break;
            }
        }
        Ok(layers)
    }

    fn layer_path(&self, layer: usize, components: &[OsString]) -> PathBuf {
        let mut path = self.dirs[layer].clone();
        path.extend(components);
        path
    }

    fn resolve_dir(&self, path: &str) -> Result<MergedDir, LayerError> {
        match self.resolve(path, true)? {
            None => Err(LayerError::NotFound { path: path.to_string() }),
            Some(Resolved { dir: Some(dir), .. }) => Ok(dir),
            Some(Resolved { found, .. }) => Err(LayerError::NotADirectory { path: found.merged_path }),
        }
    }

    /// The resolution loop shared by the lookups.
    fn resolve(&self, path: &str, follow_final_symlink: bool) -> Result<Option<Resolved>, LayerError> {
        if self.dirs.is_empty() {
            return Ok(None);
        }
        let mut pending: VecDeque<OsString> = VecDeque::new();
        push_components(&mut pending, path.as_bytes());
        // The chain of directories resolved so far, root first; `..` pops.
        let mut chain: Vec<(MergedDir, Option<MergedChild>)> = vec![(self.root_dir(), None)];
        let mut symlinks_followed = 0;

        while let Some(name) = pending.pop_front() {
            if name.as_bytes() == b".." {
                // The root is its own parent: `..` cannot leave the tree.
                if chain.len() > 1 {
                    chain.pop();
                }
                continue;
            }
            // The chain never loses the root, so this always matches.
            let Some((dir, _)) = chain.last() else { return Ok(None) };
            let Some(child) = self.child(dir, &name)? else {
                return Ok(None);
            };
            let is_last = pending.is_empty();
            if child.metadata.file_type().is_symlink() && (!is_last || follow_final_symlink) {
                symlinks_followed += 1;
                if symlinks_followed > MAX_SYMLINKS {
                    return Err(LayerError::SymlinkLoop { path: path.to_string() });
                }
                let target = fs::read_link(&child.real_path).ctx("cannot read symlink", &child.real_path)?;
                let target = target.into_os_string().into_vec();
                if target.is_empty() {
                    return Ok(None);
                }
                if target.starts_with(b"/") {
                    chain.truncate(1);
                }
                let mut expanded = VecDeque::new();
                push_components(&mut expanded, &target);
                expanded.extend(pending.drain(..));
                pending = expanded;
                continue;
            }
            let mut components = dir.components.clone();
            components.push(name);
            if child.metadata.is_dir() {
                let merged = MergedDir { components, layers: child.dir_layers.clone() };
                chain.push((merged, Some(child)));
                continue;
            }
            if !is_last {
                // A file in the middle of a path: ENOTDIR, so not found.
                return Ok(None);
            }
            return Ok(Some(Resolved { found: found_for(&child, &components), dir: None }));
        }

        let Some((dir, child)) = chain.pop() else { return Ok(None) };
        let found = match child {
            Some(child) => found_for(&child, &dir.components),
            None => self.root_found()?,
        };
        Ok(Some(Resolved { found, dir: Some(dir) }))
    }

    /// The merged root is the top layer's root.
    fn root_found(&self) -> Result<Found, LayerError> {
        let real_path = self.dirs[0].clone();
        let metadata = fs::metadata(&real_path).ctx("cannot inspect", &real_path)?;
        Ok(Found { real_path, layer_index: 0, metadata, merged_path: "/".to_string() })
    }
}

/// A resolved path, with the merged directory when it is one.
struct Resolved {
    found: Found,
    dir: Option<MergedDir>,
}

/// Appends the meaningful components of a `/`-separated path (dropping
/// empty and `.` ones; `..` is kept for the resolver).
fn push_components(out: &mut VecDeque<OsString>, path: &[u8]) {
    for part in path.split(|&b| b == b'/') {
        if !part.is_empty() && part != b"." {
            out.push_back(OsStr::from_bytes(part).to_os_string());
        }
    }
}

fn found_for(child: &MergedChild, components: &[OsString]) -> Found {
    Found {
        real_path: child.real_path.clone(),
        layer_index: child.layer,
        metadata: child.metadata.clone(),
        merged_path: merged_path_string(components),
    }
}

fn merged_path_string(components: &[OsString]) -> String {
    let mut out = String::new();
    for component in components {
        out.push('/');
        out.push_str(&component.to_string_lossy());
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}
