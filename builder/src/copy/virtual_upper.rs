//! A COPY's upper directory as a description: the [`UpperTree`] that
//! records what the writer would create (names, kinds, owners, modes,
//! times, where each file's content comes from) without writing anything,
//! and a key of the layer that upper directory would make (its
//! *description key*, see [`VirtualUpper::description_key`]), cheap enough
//! to compute on every build: no file is read.
//!
//! It mirrors what the kernel does to the real upper: creating or removing
//! a name changes its directory's mtime to "now", modes and owners are
//! exactly what the writer sets, new nodes have no xattrs and one link.
//! Anything whose result it cannot know in advance (a time taken at the
//! moment of writing and never set afterwards, a heredoc, a lower-layer
//! symlink it would have to see through) makes the description unusable,
//! and the step is then written for real: a description may miss a
//! stored layer, never name a different one.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use rbuild_cache::store::{CopyKey, KnownTar};
use rbuild_layer::{LayerStack, VirtualEntry, VirtualKind, VirtualTar};
use rbuild_oci::digest::{Digest, HashingWriter};

use super::CopyError;
use super::upper::{NodeInfo, NodeMeta, Stamp, UpperTree, parent_of};

/// What a described node is.
#[derive(Debug, Clone)]
enum Kind {
    /// `merges_lower`: a directory of the parent layers is at the same
    /// path, so names the upper lacks show through from below.
    Dir {
        merges_lower: bool,
    },
    File(Option<PathBuf>),
    Symlink(String),
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    meta: NodeMeta,
}

/// The upper directory a COPY would write, described.
pub struct VirtualUpper {
    /// The parent layers (top first) the upper would lie on.
    lowers: LayerStack,
    /// Nodes by resolved path (`/app/src`).
    nodes: BTreeMap<String, Node>,
    /// Why the description cannot stand for the real upper, when it cannot.
    unknowable: Option<String>,
}

fn unsupported(what: impl Into<String>) -> CopyError {
    CopyError::Invalid(what.into())
}

impl VirtualUpper {
    pub fn new(lowers: LayerStack) -> VirtualUpper {
        VirtualUpper { lowers, nodes: BTreeMap::new(), unknowable: None }
    }

    /// A name was created or removed in `path`'s directory: its mtime is now
    /// the time of the write (the upper root has no entry of its own).
    fn touch_parent(&mut self, path: &str) -> Result<(), CopyError> {
        let parent = parent_of(path);
        if parent == "/" {
            return Ok(());
        }
        match self.nodes.get_mut(parent) {
            Some(Node { kind: Kind::Dir { .. }, meta }) => {
                meta.mtime = Stamp::Now;
                Ok(())
            }
            _ => Err(unsupported(format!("{path}: its parent is not a directory of the upper"))),
        }
    }

    fn insert(&mut self, path: &str, kind: Kind, meta: NodeMeta) -> Result<(), CopyError> {
        if self.nodes.contains_key(path) {
            return Err(unsupported(format!("{path} exists")));
        }
        self.touch_parent(path)?;
        self.nodes.insert(path.to_string(), Node { kind, meta });
        Ok(())
    }

    /// The parent layers' view at `path`, for a path whose components the
    /// upper holds only as directories that merge with the lower ones. A
    /// lower symlink on the way would be followed through the merged view,
    /// upper included: not described.
    fn lookup_lower(&self, path: &str) -> Result<Option<NodeInfo>, CopyError> {
        let Some(found) = self.lowers.lookup(path, false)? else {
            // Missing; make sure no lower symlink was followed on the way.
            let mut prefix = String::new();
            for part in path.split('/').filter(|p| !p.is_empty()) {
                prefix = format!("{prefix}/{part}");
                if prefix == path {
                    break;
                }
                match self.lowers.lookup(&prefix, false)? {
                    None => break,
                    Some(f) if f.metadata.is_dir() => {}
                    Some(_) => {
                        return Err(unsupported(format!("{prefix}: a lower non-directory on the way")));
                    }
                }
            }
            return Ok(None);
        };
        if found.merged_path != path {
            return Err(unsupported(format!("{path}: reached through a lower symlink")));
        }
        NodeInfo::of_found(&found).map(Some)
    }

    /// The nodes in the order the layer tar holds them (the diff walk's:
    /// depth first, names sorted bytewise within each directory, i.e. paths
    /// ordered by their components), with the metadata their tar entries
    /// get. `None` when the description cannot stand for the real upper,
    /// when a node keeps the time of writing, or when the upper would be
    /// empty (no layer).
    fn tar_entries(&self) -> Option<Vec<VirtualEntry<'_>>> {
        if self.unknowable.is_some() || self.nodes.is_empty() {
            return None;
        }
        let mut order: Vec<(&String, &Node)> = self.nodes.iter().collect();
        order.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
        let mut entries = Vec::with_capacity(order.len());
        for (path, node) in order {
            let Stamp::At((mtime, _)) = node.meta.mtime else {
                return None;
            };
            let (kind, mode) = match &node.kind {
                Kind::Dir { .. } => (VirtualKind::Dir, node.meta.mode),
                Kind::File(source) => (VirtualKind::File(source.as_deref()), node.meta.mode),
                // A symlink's own mode is always 0777 on Linux.
                Kind::Symlink(target) => (VirtualKind::Symlink(target.as_bytes()), 0o777),
            };
            entries.push(VirtualEntry {
                path: path.trim_start_matches('/').as_bytes(),
                kind,
                mode,
                uid: node.meta.uid,
                gid: node.meta.gid,
                mtime,
            });
        }
        Some(entries)
    }

    /// The diffID of the layer the described upper would make, or `None`
    /// when [`VirtualUpper::tar_entries`] gives none; what proves, in the
    /// tests, that the description is exactly the layer the writer makes.
    #[cfg(test)]
    pub fn diff_id(&self, clamp_mtime: Option<i64>) -> Result<Option<Digest>, CopyError> {
        Ok(self.layer_tar(clamp_mtime)?.filter(|k| k.stats.entries > 0).map(|k| k.diff_id))
    }

    /// The layer tar the described upper makes (digest, length, counts),
    /// or `None` when [`VirtualUpper::tar_entries`] gives none. Reads every
    /// source file once: a COPY hashes it on another core while the writer
    /// writes, and its commit then need not walk what was written.
    pub fn layer_tar(&self, clamp_mtime: Option<i64>) -> Result<Option<KnownTar>, CopyError> {
        let Some(entries) = self.tar_entries() else { return Ok(None) };
        let mut hasher = HashingWriter::new(io::sink());
        let mut tar = VirtualTar::new(&mut hasher, clamp_mtime);
        for entry in &entries {
            tar.append(entry)?;
        }
        let stats = tar.finish()?;
        let (_, diff_id, size) = hasher.finish();
        Ok(Some(KnownTar { diff_id, size, stats }))
    }

    /// The regular files the step writes from a source, as (destination
    /// path, source, metadata): what [`super::prior::PriorLayer::check_ahead`]
    /// checks before the real writer runs.
    pub fn planned_files(&self) -> Vec<(String, PathBuf, NodeMeta)> {
        self.nodes
            .iter()
            .filter_map(|(path, node)| match &node.kind {
                Kind::File(Some(source)) => Some((path.clone(), source.clone(), node.meta)),
                _ => None,
            })
            .collect()
    }

    /// The *description key* of the layer the described upper would make:
    /// BLAKE3 over a format tag, the time clamp and exactly the entries
    /// [`VirtualUpper::diff_id`] feeds to [`VirtualTar`] (path, kind, mode,
    /// owner, mtime, link target, file size), each regular file's content
    /// standing as its content key. `content_key` gives a source file's
    /// (content key, size), e.g. from the build context's stat cache,
    /// without reading it. The layer tar is a function of these alone, so
    /// equal keys mean equal layers (as long as each file holds what its
    /// content key says, which is what the step's cache key relies on too).
    ///
    /// `None` where `diff_id` gives none, and when a file's content key is
    /// not known.
    pub fn description_key(
        &self,
        clamp_mtime: Option<i64>,
        mut content_key: impl FnMut(&Path) -> Option<(Digest, u64)>,
    ) -> Option<CopyKey> {
        let entries = self.tar_entries()?;
        let mut h = blake3::Hasher::new();
        // Bumped whenever the layer tar of the same entries may change
        // (rbuild's tar writer) or this encoding does.
        h.update(b"rbuild copy description v1\0");
        match clamp_mtime {
            Some(epoch) => h.update(b"clamp").update(&epoch.to_le_bytes()),
            None => h.update(b"no clamp"),
        };
        // Every variable-length field carries its length, so no two entry
        // sequences encode alike.
        let bytes = |h: &mut blake3::Hasher, b: &[u8]| {
            h.update(&(b.len() as u64).to_le_bytes()).update(b);
        };
        for e in &entries {
            bytes(&mut h, e.path);
            h.update(&e.mode.to_le_bytes()).update(&e.uid.to_le_bytes()).update(&e.gid.to_le_bytes());
            h.update(&e.mtime.to_le_bytes());
            match e.kind {
                VirtualKind::Dir => {
                    h.update(b"d");
                }
                // An empty file (a socket or fifo of the context).
                VirtualKind::File(None) => {
                    h.update(b"e");
                }
                VirtualKind::File(Some(source)) => {
                    let (key, size) = content_key(source)?;
                    h.update(b"f").update(key.as_bytes()).update(&size.to_le_bytes());
                }
                VirtualKind::Symlink(target) => {
                    h.update(b"l");
                    bytes(&mut h, target);
                }
            }
        }
        Some(CopyKey::from_bytes(*h.finalize().as_bytes()))
    }
}

impl UpperTree for VirtualUpper {
    fn upper_kind(&self, path: &str) -> Option<bool> {
        self.nodes.get(path).map(|n| matches!(n.kind, Kind::Dir { .. }))
    }

    fn lookup(&self, path: &str) -> Result<Option<NodeInfo>, CopyError> {
        if path == "/" {
            return self.lookup_lower(path);
        }
        // Walk down the upper: a non-directory hides everything below it,
        // a directory that does not merge with a lower one shows only what
        // the upper holds, and below the upper's last component the parent
        // layers answer.
        let mut prefix = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            prefix = format!("{prefix}/{part}");
            let Some(node) = self.nodes.get(&prefix) else {
                return self.lookup_lower(path);
            };
            if prefix == path {
                return Ok(Some(node.info()));
            }
            match node.kind {
                Kind::Dir { merges_lower: true } => {}
                Kind::Dir { merges_lower: false } => {
                    return Ok(self.nodes.get(path).map(Node::info));
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    fn remove(&mut self, path: &str) -> Result<(), CopyError> {
        if self.nodes.remove(path).is_none() {
            return Ok(());
        }
        let below = format!("{path}/");
        let doomed: Vec<String> = self
            .nodes
            .range(below.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&below))
            .cloned()
            .collect();
        for k in doomed {
            self.nodes.remove(&k);
        }
        self.touch_parent(path)
    }

    fn create_dir(&mut self, path: &str, meta: NodeMeta) -> Result<(), CopyError> {
        let parent = parent_of(path);
        let parent_merges = parent == "/"
            || matches!(self.nodes.get(parent), Some(Node { kind: Kind::Dir { merges_lower: true }, .. }));
        let merges_lower = parent_merges && self.lookup_lower(path)?.is_some_and(|f| f.is_dir());
        self.insert(path, Kind::Dir { merges_lower }, meta)
    }

    fn create_file(&mut self, path: &str, source: Option<&Path>, meta: NodeMeta) -> Result<(), CopyError> {
        self.insert(path, Kind::File(source.map(Path::to_path_buf)), meta)
    }

    fn write_file(&mut self, path: &str, _content: &[u8], meta: NodeMeta) -> Result<(), CopyError> {
        // Heredocs are not described (their time is the time of writing).
        self.unknowable = Some(format!("{path}: written from a heredoc"));
        self.insert(path, Kind::File(None), meta)
    }

    fn create_symlink(&mut self, path: &str, target: &str, meta: NodeMeta) -> Result<(), CopyError> {
        self.insert(path, Kind::Symlink(target.to_string()), meta)
    }

    fn set_mtime(&mut self, path: &str, mtime: Stamp) -> Result<(), CopyError> {
        match self.nodes.get_mut(path) {
            Some(node) => {
                node.meta.mtime = mtime;
                Ok(())
            }
            None => Err(unsupported(format!("{path}: not in the upper"))),
        }
    }
}

impl Node {
    fn info(&self) -> NodeInfo {
        let (type_bits, link_target) = match &self.kind {
            Kind::Dir { .. } => (libc::S_IFDIR, None),
            Kind::File(_) => (libc::S_IFREG, None),
            Kind::Symlink(t) => (libc::S_IFLNK, Some(t.clone())),
        };
        let mode = if link_target.is_some() { 0o777 } else { self.meta.mode & 0o7777 };
        NodeInfo {
            mode: type_bits | mode,
            uid: self.meta.uid,
            gid: self.meta.gid,
            mtime: self.meta.mtime,
            link_target,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The description must give exactly the diffID of the layer the real
    //! writer makes: each case writes the same items both ways, on top of
    //! the same lower layer, and compares.

    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::path::Path;

    use rbuild_frontend::graph::FileMode;
    use rbuild_layer::{OverlayXattrs, WriteOptions, write_layer_tar};
    use rbuild_oci::digest::HashingWriter;

    use super::*;
    use crate::copy::items::items_from_dir;
    use crate::copy::writer::{Writer, copy_items};
    use crate::copy::{SrcItem, upper::UpperTree};

    /// How one COPY is made: owner, mode and time clamp.
    #[derive(Default, Clone)]
    struct Opts {
        owner: Option<(u32, u32)>,
        chmod: Option<FileMode>,
        clamp: Option<i64>,
        link: bool,
    }

    fn xattrs() -> OverlayXattrs {
        OverlayXattrs::Trusted
    }

    fn write<T: UpperTree>(mut w: Writer<'_, T>, items: &[SrcItem], dest: &str, into: bool, o: &Opts) -> T {
        w.owner = o.owner;
        w.chmod = o.chmod.clone();
        copy_items(&mut w, items, dest, into).unwrap();
        w.finish().unwrap()
    }

    /// (diffID of the really written layer, the description's diffID).
    fn both(
        lower: &Path,
        items: &[SrcItem],
        dest: &str,
        into: bool,
        o: &Opts,
    ) -> (Option<Digest>, Option<Digest>) {
        let lowers = if o.link { Vec::new() } else { vec![lower.to_path_buf()] };
        let upper = tempfile::tempdir().unwrap();
        write(Writer::new(upper.path(), lowers.clone(), xattrs()), items, dest, into, o);
        let mut hasher = HashingWriter::new(std::io::sink());
        let opts = WriteOptions { xattr_prefix: xattrs(), clamp_mtime: o.clamp, exclude: Vec::new() };
        let stats = write_layer_tar(upper.path(), &mut hasher, &opts).unwrap();
        let real = (stats.entries > 0).then(|| hasher.finish().1);
        let tree =
            write(Writer::onto(VirtualUpper::new(LayerStack::new(lowers, xattrs()))), items, dest, into, o);
        (real, tree.diff_id(o.clamp).unwrap())
    }

    fn set_mtime(p: &Path, secs: i64) {
        let ts = nix::sys::time::TimeSpec::new(secs, 123);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            p,
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }

    /// A source tree with what tars get wrong: nesting, empty dirs,
    /// symlinks, hard links, names over 100 bytes, unicode, odd modes.
    fn tricky_tree(root: &Path) {
        let long = "n".repeat(120);
        fs::create_dir_all(root.join("a/b/c")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::create_dir_all(root.join(format!("deep/{long}"))).unwrap();
        fs::write(root.join("a/b/c/file.txt"), "content\n").unwrap();
        fs::write(root.join("a.txt"), "a sibling sorting before a/\n").unwrap();
        fs::write(root.join(format!("deep/{long}/{long}.dat")), vec![7u8; 70_000]).unwrap();
        fs::write(root.join("grüße-日本.txt"), "unicode\n").unwrap();
        fs::write(root.join("zero"), "").unwrap();
        fs::write(root.join("setuid"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::write(root.join("setgid"), "x").unwrap();
        fs::set_permissions(root.join("setgid"), fs::Permissions::from_mode(0o2711)).unwrap();
        fs::write(root.join("none"), "x").unwrap();
        fs::set_permissions(root.join("none"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(root.join("empty"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::hard_link(root.join("a/b/c/file.txt"), root.join("hard")).unwrap();
        symlink("a/b/c/file.txt", root.join("rel-link")).unwrap();
        symlink(format!("/{long}/{long}/target"), root.join("long-link")).unwrap();
        let mut t = 1_600_000_000;
        for e in walkdir::WalkDir::new(root).contents_first(true) {
            t += 1000;
            set_mtime(e.unwrap().path(), t);
        }
    }

    /// A lower layer with `/app` (0700, 5:6) holding `sub` (0711) and a file
    /// `a.txt` the copy replaces with a file, `/etc`, and `/link` → `/app`.
    fn lower_layer(root: &Path) {
        fs::create_dir_all(root.join("app/a/b")).unwrap();
        fs::write(root.join("app/a.txt"), "old").unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        symlink("/app", root.join("link")).unwrap();
        fs::set_permissions(root.join("app"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(root.join("app/a"), fs::Permissions::from_mode(0o711)).unwrap();
        nix::unistd::chown(&root.join("app"), Some(5.into()), Some(6.into())).unwrap();
        set_mtime(&root.join("app"), 1_500_000_000);
        set_mtime(&root.join("etc"), 1_500_000_100);
    }

    fn assert_same(lower: &Path, items: &[SrcItem], dest: &str, into: bool, o: &Opts) {
        let (real, described) = both(lower, items, dest, into, o);
        assert!(real.is_some(), "{dest}: the copy wrote nothing");
        assert_eq!(described, real, "{dest}: the description's diffID differs from the written layer's");
    }

    #[test]
    fn described_layers_hash_like_written_ones() {
        rbuild_test_support::require!(rbuild_test_support::prereq::root());
        let dir = tempfile::tempdir().unwrap();
        let (src, lower) = (dir.path().join("src"), dir.path().join("lower"));
        fs::create_dir(&src).unwrap();
        fs::create_dir(&lower).unwrap();
        tricky_tree(&src);
        lower_layer(&lower);
        let tree = items_from_dir(&src, "src").unwrap();
        let root = Opts { owner: Some((0, 0)), ..Opts::default() };

        // A directory's contents to a path that does not exist yet.
        assert_same(&lower, std::slice::from_ref(&tree), "/ctx", false, &root);
        // ... into a directory of the lower layer with other modes, merging
        // into its subdirectories and replacing a file.
        let mut merged = tree.clone();
        assert_same(&lower, std::slice::from_ref(&merged), "/app", false, &root);
        // ... through a lower symlink.
        assert_same(&lower, std::slice::from_ref(&merged), "/link/new", false, &root);
        // --chown, octal and symbolic --chmod, SOURCE_DATE_EPOCH, --link.
        for o in [
            Opts { owner: Some((1000, 1001)), ..Opts::default() },
            Opts { chmod: Some(FileMode::Octal(0o640)), ..root.clone() },
            Opts { chmod: Some(FileMode::Symbolic("u+x,g-w,o=".into())), ..root.clone() },
            Opts { clamp: Some(1_600_000_500), ..root.clone() },
            Opts { link: true, ..root.clone() },
        ] {
            assert_same(&lower, std::slice::from_ref(&tree), "/ctx", false, &o);
            assert_same(&lower, std::slice::from_ref(&tree), "/app", false, &o);
        }
        // A directory into a new directory named with a trailing slash: it
        // is created at the time of writing, then takes the source's time.
        merged.name = "sub".into();
        assert_same(&lower, std::slice::from_ref(&merged), "/new/", true, &root);

        // Single files: onto a file path, and (a wildcard's matches) into
        // an existing directory, which keeps its lower time.
        let file = items_from_dir(&src.join("a.txt"), "a.txt").unwrap();
        let unicode = items_from_dir(&src.join("grüße-日本.txt"), "grüße-日本.txt").unwrap();
        let link = items_from_dir(&src.join("rel-link"), "rel-link").unwrap();
        assert_same(&lower, std::slice::from_ref(&file), "/etc/conf", false, &root);
        assert_same(&lower, &[file.clone(), unicode.clone(), link.clone()], "/etc/", true, &root);
        assert_same(&lower, &[file.clone(), unicode.clone()], "/app", true, &root);
    }

    #[test]
    fn a_directory_left_with_the_time_of_writing_is_not_described() {
        rbuild_test_support::require!(rbuild_test_support::prereq::root());
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("f");
        fs::write(&src, "x").unwrap();
        let file = items_from_dir(&src, "f").unwrap();
        let root = Opts { owner: Some((0, 0)), ..Opts::default() };
        // `/a/b/` does not exist: both are made at the time of the copy
        // and keep it, so no stored layer can be the right one.
        let (real, described) = both(dir.path(), std::slice::from_ref(&file), "/a/b/", true, &root);
        assert!(real.is_some());
        assert_eq!(described, None);
        // Nor has it a description key: no memo entry can name its layer.
        let tree = write(
            Writer::onto(VirtualUpper::new(LayerStack::new(Vec::new(), xattrs()))),
            &[file],
            "/a/b/",
            true,
            &root,
        );
        assert_eq!(tree.description_key(None, |_| Some((Digest::of(b"x"), 1))), None);
    }

    /// The description key of copying `src` to `/ctx` (no lower layer),
    /// with each file's content key from `keys` (by file name), else the
    /// SHA-256 of its content.
    fn key_of(
        src: &Path,
        dest: &str,
        o: &Opts,
        keys: &std::collections::HashMap<&str, Digest>,
    ) -> Option<CopyKey> {
        let item = items_from_dir(src, "src").unwrap();
        let tree = write(
            Writer::onto(VirtualUpper::new(LayerStack::new(Vec::new(), xattrs()))),
            std::slice::from_ref(&item),
            dest,
            false,
            o,
        );
        tree.description_key(o.clamp, |source| {
            let name = source.file_name()?.to_str()?;
            let content = fs::read(source).unwrap();
            let key = keys.get(name).copied().unwrap_or_else(|| Digest::of(&content));
            Some((key, content.len() as u64))
        })
    }

    #[test]
    fn the_description_key_changes_with_what_the_layer_holds_and_only_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("a.txt"), "a\n").unwrap();
        fs::write(src.join("sub/b.txt"), "b\n").unwrap();
        symlink("a.txt", src.join("link")).unwrap();
        for (p, t) in [
            ("a.txt", 1_600_000_100),
            ("sub/b.txt", 1_600_000_200),
            ("sub", 1_600_000_300),
            ("", 1_600_000_400),
        ] {
            set_mtime(&src.join(p), t);
        }
        let root = Opts { owner: Some((0, 0)), ..Opts::default() };
        let none = std::collections::HashMap::new();
        let base = key_of(&src, "/ctx", &root, &none).expect("a plain copy has a key");

        // Stable: described again, and after a change the tar cannot show
        // (nanoseconds: tar headers hold whole seconds).
        assert_eq!(key_of(&src, "/ctx", &root, &none), Some(base));
        let ts = nix::sys::time::TimeSpec::new(1_600_000_100, 999);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &src.join("a.txt"),
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        assert_eq!(key_of(&src, "/ctx", &root, &none), Some(base), "only the nanoseconds moved");

        let differs = |key: Option<CopyKey>, what: &str| {
            assert!(key.is_some(), "{what}: no key");
            assert_ne!(key, Some(base), "{what}: the key did not change");
        };
        // A file's content key.
        let other = std::collections::HashMap::from([("b.txt", Digest::of(b"other content"))]);
        differs(key_of(&src, "/ctx", &root, &other), "content key");
        // Where it lands, its owner, the clamp.
        differs(key_of(&src, "/elsewhere", &root, &none), "destination path");
        differs(key_of(&src, "/ctx", &Opts { owner: Some((1, 0)), ..root.clone() }, &none), "owner");
        differs(key_of(&src, "/ctx", &Opts { clamp: Some(1_600_000_150), ..root.clone() }, &none), "clamp");
        // A file's mode, then its time; each restored gives the key back.
        fs::set_permissions(src.join("a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
        differs(key_of(&src, "/ctx", &root, &none), "mode");
        fs::set_permissions(src.join("a.txt"), fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(key_of(&src, "/ctx", &root, &none), Some(base), "mode restored");
        set_mtime(&src.join("sub/b.txt"), 1_600_000_201);
        differs(key_of(&src, "/ctx", &root, &none), "mtime");
        set_mtime(&src.join("sub/b.txt"), 1_600_000_200);
        // A file's name (the directory's time restored: renaming touches it).
        fs::rename(src.join("sub/b.txt"), src.join("sub/c.txt")).unwrap();
        set_mtime(&src.join("sub"), 1_600_000_300);
        differs(key_of(&src, "/ctx", &root, &none), "file name");
        fs::rename(src.join("sub/c.txt"), src.join("sub/b.txt")).unwrap();
        set_mtime(&src.join("sub"), 1_600_000_300);
        assert_eq!(key_of(&src, "/ctx", &root, &none), Some(base), "everything restored");

        // A file whose content key is not known: no key at all.
        let item = items_from_dir(&src, "src").unwrap();
        let tree = write(
            Writer::onto(VirtualUpper::new(LayerStack::new(Vec::new(), xattrs()))),
            std::slice::from_ref(&item),
            "/ctx",
            false,
            &root,
        );
        assert_eq!(tree.description_key(None, |_| None), None);
    }
}
