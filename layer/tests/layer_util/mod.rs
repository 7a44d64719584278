//! Helpers shared by the `layer_*` integration tests: describing a tree on
//! disk so two trees can be compared, building trees with exact metadata,
//! and a sentinel directory hostile tars aim at. Raw tars, prerequisites and
//! `require!` come from `rbuild-test-support`.
#![allow(dead_code, unused_imports)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
pub use rbuild_test_support::prereq::{is_root, root, tool};
pub use rbuild_test_support::{RawTar, TEST_MTIME, partly, require};

/// Everything a layer is supposed to preserve about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub content: Option<Vec<u8>>,
    pub symlink_target: Option<Vec<u8>>,
    pub device: Option<(u64, u64)>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// For files with more than one name inside the tree: the first
    /// (sorted) of those names.
    pub link_group: Option<Vec<u8>>,
}

/// Describes every node below `root` (not `root` itself), keyed by its
/// relative path.
pub fn describe_tree(root: &Path) -> BTreeMap<Vec<u8>, NodeInfo> {
    let mut paths = Vec::new();
    for item in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let item = item.unwrap();
        paths.push(item.path().to_path_buf());
    }
    let mut by_inode: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
    let mut out = BTreeMap::new();
    for path in &paths {
        let rel = path.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
        let meta = fs::symlink_metadata(path).unwrap();
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else if ft.is_socket() {
            's'
        } else {
            'f'
        };
        if kind != 'd' && meta.nlink() > 1 {
            by_inode.entry((meta.dev(), meta.ino())).or_default().push(rel.clone());
        }
        let content = (kind == 'f').then(|| fs::read(path).unwrap());
        let symlink_target =
            (kind == 'l').then(|| fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec());
        let device = matches!(kind, 'c' | 'b')
            .then(|| (nix::sys::stat::major(meta.rdev()), nix::sys::stat::minor(meta.rdev())));
        out.insert(
            rel,
            NodeInfo {
                kind,
                mode: if kind == 'l' { 0 } else { meta.mode() & 0o7777 },
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: meta.mtime(),
                content,
                symlink_target,
                device,
                xattrs: xattrs_of(path),
                link_group: None,
            },
        );
    }
    for names in by_inode.values().filter(|names| names.len() > 1) {
        let first = names.iter().min().unwrap().clone();
        for name in names {
            out.get_mut(name).unwrap().link_group = Some(first.clone());
        }
    }
    out
}

pub fn xattrs_of(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Ok(names) = xattr::list(path) {
        for name in names {
            if let Ok(Some(value)) = xattr::get(path, &name) {
                out.insert(name.as_bytes().to_vec(), value);
            }
        }
    }
    out
}

/// Sets a node's atime and mtime (not following a final symlink).
pub fn set_mtime(path: &Path, seconds: i64) {
    let time = TimeSpec::new(seconds, 0);
    utimensat(nix::fcntl::AT_FDCWD, path, &time, &time, UtimensatFlags::NoFollowSymlink).unwrap();
}

/// Sets every mtime below `root` (and of `root`) to `seconds`, children
/// first so directory times stick.
pub fn set_all_mtimes(root: &Path, seconds: i64) {
    for item in walkdir::WalkDir::new(root).contents_first(true) {
        set_mtime(item.unwrap().path(), seconds);
    }
}

pub fn make_whiteout(path: &Path) {
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).unwrap();
}

pub fn write_file(path: &Path, content: &[u8], mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap();
    chmod(path, mode);
}

/// Writes files below `root`: (relative path, content, mode).
pub fn write_files(root: &Path, files: &[(&str, &[u8], u32)]) {
    for (path, content, mode) in files {
        write_file(&root.join(path), content, *mode);
    }
}

pub fn chmod(path: &Path, mode: u32) {
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        path,
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .unwrap();
}

pub fn lchown(path: &Path, uid: u32, gid: u32) {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// A simple tar entry as read back by the `tar` crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEntry {
    pub path: Vec<u8>,
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub link: Option<Vec<u8>>,
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub uname_empty: bool,
}

/// Reads a tar with the `tar` crate (an independent reader).
pub fn list_tar(bytes: &[u8]) -> Vec<ListedEntry> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let kind = match header.entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            tar::EntryType::Fifo => 'p',
            other => panic!("unexpected entry type {other:?}"),
        };
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().unwrap() {
            for record in pax {
                let record = record.unwrap();
                if let Some(name) = record.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_string(), record.value_bytes().to_vec()));
                }
            }
        }
        let path = entry.path_bytes().to_vec();
        let link = entry.link_name_bytes().map(|l| l.to_vec());
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        out.push(ListedEntry {
            path,
            kind,
            mode: header.mode().unwrap(),
            uid: header.uid().unwrap(),
            gid: header.gid().unwrap(),
            mtime: header.mtime().unwrap(),
            size: content.len() as u64,
            link,
            xattrs,
            uname_empty: header.username_bytes().is_none_or(|u| u.is_empty()),
        });
    }
    out
}

pub fn names(entries: &[ListedEntry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8_lossy(&e.path).into_owned()).collect()
}

/// A temporary directory holding the destination of an apply (`dest`)
/// next to a directory that must never change (`outside`, with a file
/// `victim` and a directory `secret/`). Hostile tars aim at `outside`.
pub struct Sentinel {
    pub temp: tempfile::TempDir,
    pub dest: PathBuf,
    pub outside: PathBuf,
    /// Everything in `temp` but `dest`.
    watch: rbuild_test_support::TreeWatch,
}

impl Sentinel {
    pub fn new() -> Sentinel {
        let temp = tempfile::tempdir().unwrap();
        let dest = temp.path().join("dest");
        let outside = temp.path().join("outside");
        fs::create_dir(&dest).unwrap();
        fs::create_dir_all(outside.join("secret")).unwrap();
        fs::write(outside.join("victim"), b"original").unwrap();
        fs::write(outside.join("secret/passwd"), b"root:x:0:0").unwrap();
        // `dest` itself may get new times and modes, and anything inside;
        // everything else must stay exactly as it is.
        let watch = rbuild_test_support::TreeWatch::new(temp.path(), &[&dest]);
        Sentinel { temp, dest, outside, watch }
    }

    /// Absolute path of `outside`, as text for tar names and link targets.
    pub fn outside_str(&self) -> String {
        self.outside.to_str().unwrap().to_string()
    }

    /// What differs outside `dest` from when the sentinel was made.
    pub fn changes_outside(&self) -> Vec<String> {
        let mut changed = self.watch.changes();
        if !self.dest.is_dir() || self.dest.is_symlink() {
            changed.push("dest is no longer a directory".to_string());
        }
        changed
    }

    /// Panics unless the only change in the temporary directory is below
    /// `dest`.
    pub fn assert_nothing_outside(&self) {
        let changed = self.changes_outside();
        assert!(changed.is_empty(), "changed outside dest:\n{}", changed.join("\n"));
    }

    pub fn dest_tree(&self) -> BTreeMap<Vec<u8>, NodeInfo> {
        describe_tree(&self.dest)
    }
}

pub fn os(path: &str) -> &OsStr {
    OsStr::new(path)
}

/// Reads a whole file (for readability in assertions).
pub fn read(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    fs::File::open(path).unwrap().read_to_end(&mut out).unwrap();
    out
}
