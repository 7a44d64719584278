//! Helpers shared by the `layer_*` integration tests: describing a tree on
//! disk so two trees can be compared, building trees with exact metadata,
//! and building (possibly hostile) tars byte by byte.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// True (after saying why) when the test needs root and we are not.
pub fn skip_without_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipping {test}: needs root (mknod, chown, trusted.* xattrs)");
    true
}

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

/// Builds tars header by header, bypassing the `tar` crate's path checks
/// so that hostile names can be written.
#[derive(Default)]
pub struct RawTar {
    bytes: Vec<u8>,
}

pub const TEST_MTIME: u64 = 1_600_000_000;

impl RawTar {
    pub fn new() -> RawTar {
        RawTar::default()
    }

    /// Appends a header whose name (and link name) fields hold the given
    /// bytes verbatim, followed by `data`.
    pub fn raw(mut self, name: &[u8], kind: tar::EntryType, link: &[u8], mode: u32, data: &[u8]) -> RawTar {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(TEST_MTIME);
        header.set_size(data.len() as u64);
        {
            let raw = header.as_mut_bytes();
            assert!(name.len() <= 100 && link.len() <= 100, "use pax() for long names");
            raw[..100].fill(0);
            raw[..name.len()].copy_from_slice(name);
            raw[157..257].fill(0);
            raw[157..157 + link.len()].copy_from_slice(link);
        }
        header.set_cksum();
        self.push_header_and_data(header.as_bytes(), data);
        self
    }

    pub fn file(self, name: &str, data: &[u8]) -> RawTar {
        self.raw(name.as_bytes(), tar::EntryType::Regular, b"", 0o644, data)
    }

    pub fn file_mode(self, name: &str, mode: u32, data: &[u8]) -> RawTar {
        self.raw(name.as_bytes(), tar::EntryType::Regular, b"", mode, data)
    }

    pub fn dir(self, name: &str) -> RawTar {
        self.raw(name.as_bytes(), tar::EntryType::Directory, b"", 0o755, b"")
    }

    pub fn symlink(self, name: &str, target: &str) -> RawTar {
        self.raw(name.as_bytes(), tar::EntryType::Symlink, target.as_bytes(), 0o777, b"")
    }

    pub fn hardlink(self, name: &str, target: &str) -> RawTar {
        self.raw(name.as_bytes(), tar::EntryType::Link, target.as_bytes(), 0o644, b"")
    }

    /// A device node entry.
    pub fn device(mut self, name: &str, kind: tar::EntryType, major: u32, minor: u32, mode: u32) -> RawTar {
        let mut header = tar::Header::new_ustar();
        header.set_path(name).unwrap();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_mtime(TEST_MTIME);
        header.set_size(0);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        header.set_cksum();
        self.push_header_and_data(header.as_bytes(), b"");
        self
    }

    /// A PAX extended header with the given records, for the next entry.
    pub fn pax(self, records: &[(&str, &[u8])]) -> RawTar {
        let mut data = Vec::new();
        for (key, value) in records {
            let body = key.len() + value.len() + 3;
            let mut len = body + 1;
            while body + len.to_string().len() != len {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.raw(b"PaxHeaders/x", tar::EntryType::XHeader, b"", 0o644, &data)
    }

    /// A GNU long-name header for the next entry.
    pub fn gnu_long_name(mut self, name: &[u8]) -> RawTar {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::GNULongName);
        {
            let raw = header.as_mut_bytes();
            raw[..13].copy_from_slice(b"././@LongLink");
        }
        let mut data = name.to_vec();
        data.push(0);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.push_header_and_data(header.as_bytes(), &data);
        self
    }

    /// A header that announces `size` bytes of content, with none written.
    pub fn declared(mut self, name: &[u8], kind: tar::EntryType, size: u64) -> RawTar {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_mtime(TEST_MTIME);
        header.set_size(size);
        header.as_mut_bytes()[..name.len()].copy_from_slice(name);
        header.set_cksum();
        self.bytes.extend_from_slice(header.as_bytes());
        self
    }

    /// Raw bytes appended as they are.
    pub fn bytes(mut self, bytes: &[u8]) -> RawTar {
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// The archive with its end-of-archive marker.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0u8; 1024]);
        self.bytes
    }

    /// The archive without its end-of-archive marker.
    pub fn unterminated(self) -> Vec<u8> {
        self.bytes
    }

    fn push_header_and_data(&mut self, header: &[u8], data: &[u8]) {
        self.bytes.extend_from_slice(header);
        self.bytes.extend_from_slice(data);
        let rem = data.len() % 512;
        if rem != 0 {
            self.bytes.resize(self.bytes.len() + 512 - rem, 0);
        }
    }
}

/// A temporary directory holding the destination of an apply (`dest`)
/// next to a directory that must never change (`outside`, with a file
/// `victim` and a directory `secret/`). Hostile tars aim at `outside`.
pub struct Sentinel {
    pub temp: tempfile::TempDir,
    pub dest: PathBuf,
    pub outside: PathBuf,
    before: BTreeMap<Vec<u8>, NodeInfo>,
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
        let before = describe_tree(temp.path());
        let mut sentinel = Sentinel { temp, dest, outside, before };
        sentinel.before.retain(|path, _| !path.starts_with(b"dest/"));
        sentinel
    }

    /// Absolute path of `outside`, as text for tar names and link targets.
    pub fn outside_str(&self) -> String {
        self.outside.to_str().unwrap().to_string()
    }

    /// Paths outside `dest` that differ from when the sentinel was made.
    pub fn changes_outside(&self) -> Vec<String> {
        let mut now = describe_tree(self.temp.path());
        now.retain(|path, _| !path.starts_with(b"dest/"));
        let mut changed = Vec::new();
        if !now.contains_key(&b"dest"[..]) {
            changed.push("dest vanished".to_string());
        }
        // `dest` itself may get new times and modes; everything else must
        // be exactly as it was.
        for path in now.keys().chain(self.before.keys()) {
            if path.as_slice() != b"dest" && now.get(path) != self.before.get(path) {
                changed.push(String::from_utf8_lossy(path).into_owned());
            }
        }
        changed
    }

    /// Panics unless the only change in the temporary directory is below
    /// `dest`.
    pub fn assert_nothing_outside(&self) {
        let changed = self.changes_outside();
        assert!(changed.is_empty(), "changed outside dest: {changed:?}");
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
