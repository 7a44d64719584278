//! Watching a directory tree for changes: everything below a directory
//! (except the subtrees a test is allowed to change) listed before a test
//! acts and compared after, to prove that a hostile input created, changed
//! or deleted nothing it must not. The fixture behind the layer tests'
//! sentinel directory and the integration tests' arena.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Files up to this size are compared by content too.
const CONTENT_LIMIT: u64 = 1 << 20;

/// What the listing records about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime_ns: i64,
    link_target: Option<PathBuf>,
    content: Option<Vec<u8>>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

/// A listing of a tree, taken when made, to compare with the tree later.
pub struct TreeWatch {
    root: PathBuf,
    allowed: Vec<PathBuf>,
    before: BTreeMap<String, Node>,
}

impl TreeWatch {
    /// Lists `root` (itself included) and everything below it, except the
    /// paths in `allowed` and what is below them.
    pub fn new(root: &Path, allowed: &[&Path]) -> TreeWatch {
        let mut watch = TreeWatch {
            root: root.to_path_buf(),
            allowed: allowed.iter().map(|p| p.to_path_buf()).collect(),
            before: BTreeMap::new(),
        };
        watch.rebaseline();
        watch
    }

    /// Takes the listing again, for a test that planted files of its own.
    pub fn rebaseline(&mut self) {
        self.before = self.listing();
    }

    /// Every difference from the listing, one line each: `new: PATH`,
    /// `deleted: PATH`, `changed: PATH BEFORE -> NOW`. Empty when nothing
    /// changed.
    pub fn changes(&self) -> Vec<String> {
        let now = self.listing();
        let mut diff = Vec::new();
        for (path, node) in &now {
            match self.before.get(path) {
                None => diff.push(format!("new: {path}")),
                Some(old) if old != node => diff.push(format!("changed: {path} {old:?} -> {node:?}")),
                Some(_) => {}
            }
        }
        diff.extend(self.before.keys().filter(|p| !now.contains_key(*p)).map(|p| format!("deleted: {p}")));
        diff
    }

    /// Every path under the root but the allowed ones, symlinks not followed.
    fn listing(&self) -> BTreeMap<String, Node> {
        let mut out = BTreeMap::new();
        let mut todo = vec![self.root.clone()];
        while let Some(path) = todo.pop() {
            let Ok(meta) = fs::symlink_metadata(&path) else { continue };
            if meta.is_dir()
                && let Ok(entries) = fs::read_dir(&path)
            {
                todo.extend(entries.flatten().map(|e| e.path()).filter(|p| !self.allowed.contains(p)));
            }
            let rel = path.strip_prefix(&self.root).unwrap().to_string_lossy().into_owned();
            out.insert(rel, node_of(&path, &meta));
        }
        out
    }
}

fn node_of(path: &Path, meta: &fs::Metadata) -> Node {
    let file_type = meta.file_type();
    let kind = if file_type.is_dir() {
        'd'
    } else if file_type.is_symlink() {
        'l'
    } else if file_type.is_file() {
        'f'
    } else {
        'o'
    };
    let xattrs = xattr::list(path)
        .map(|names| {
            names
                .filter_map(|name| {
                    let value = xattr::get(path, &name).ok()??;
                    Some((name.to_string_lossy().into_owned(), value))
                })
                .collect()
        })
        .unwrap_or_default();
    Node {
        kind,
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        size: if kind == 'f' { meta.len() } else { 0 },
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        link_target: (kind == 'l').then(|| fs::read_link(path).unwrap_or_default()),
        content: (kind == 'f' && meta.len() <= CONTENT_LIMIT).then(|| fs::read(path).unwrap_or_default()),
        xattrs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_outside_the_allowed_subtree_are_seen() {
        let temp = std::env::temp_dir().join(format!("rbuild-test-watch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&temp);
        fs::create_dir_all(temp.join("allowed")).unwrap();
        fs::create_dir_all(temp.join("kept/sub")).unwrap();
        fs::write(temp.join("kept/file"), b"before").unwrap();
        let mut watch = TreeWatch::new(&temp, &[&temp.join("allowed")]);
        fs::write(temp.join("allowed/new"), b"x").unwrap();
        assert_eq!(watch.changes(), Vec::<String>::new());

        fs::write(temp.join("kept/file"), b"after!").unwrap();
        fs::write(temp.join("kept/sub/new"), b"x").unwrap();
        let changes = watch.changes();
        assert!(changes.iter().any(|c| c.starts_with("changed: kept/file ")), "{changes:?}");
        assert!(changes.contains(&"new: kept/sub/new".to_string()), "{changes:?}");

        watch.rebaseline();
        fs::remove_file(temp.join("kept/sub/new")).unwrap();
        assert!(watch.changes().contains(&"deleted: kept/sub/new".to_string()));
        fs::remove_dir_all(&temp).unwrap();
    }
}
