//! A step's root as a real directory, for stores where no overlay can be
//! mounted (the copying snapshotter). [`LayerStack::prepare_root`] copies
//! the merged tree of a stack into a fresh directory and records a baseline
//! of every node in it; after the step, [`PreparedRoot::write_changes`]
//! compares the directory with that baseline and moves what changed into
//! an upper directory in overlay format, as an overlay mount of the same
//! stack would have left it, so both give the same layer tar:
//!
//! * a node whose content or metadata changed is there whole (overlay's
//!   copy-up with `metacopy=off`), with the directories above it and their
//!   metadata;
//! * a node that is gone is a whiteout (a 0/0 character device, or the
//!   xattr form where `mknod` is refused);
//! * a directory made where the lower layers had something that the step
//!   deleted (a directory removed and made again, a file replaced by a
//!   directory) is opaque;
//! * names the step linked together stay hard links. Hard links of the
//!   lower layers are separate files in the prepared root, as they are
//!   under an overlay without `index`: a write through one name leaves the
//!   other as it was.
//!
//! The baseline is a `statx` of every node: inode, birth time, ctime,
//! mtime, size, mode and owner. The ctime is the witness that matters:
//! every write, chmod, chown, setxattr, link or rename of a node sets it to
//! the current time. So that "the current time" is later than every ctime
//! recorded, preparation waits until the clock has passed the newest one
//! (a few milliseconds); if the clock will not pass it (it was set back),
//! regular files that look unchanged are compared by content as well.
//!
//! What no comparison can see, a file opened for writing and closed
//! unchanged (which overlayfs copies up: `useradd` does it to
//! `/etc/.pwd.lock`), inotify reports (see `write_watch`).
//!
//! Nodes are reached through directory descriptors opened without
//! following symlinks, so a tree the step left behind cannot redirect the
//! comparison (or a move) outside the root.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use rbuild_oci::io_error::IoContext;
use xattr::FileExt;

use super::LayerStats;
use super::error::LayerError;
use super::node::{Xattrs, keep_in_image};
use super::safe_tree::{NodeAttrs, SafeTree, TreeOptions, join_components, list_names, open_subdir};
use super::stack::LayerStack;
use super::stack_export::CopyTree;
use super::write_watch::{WriteWatch, Written};

/// How much later than the newest recorded ctime the clock must read
/// before the step may start: more than one tick of the coarse clock that
/// file times come from (4 ms at HZ=250, 10 ms at HZ=100).
const SETTLE_MARGIN: Duration = Duration::from_millis(20);
/// How long preparation waits for the clock to get there.
const SETTLE_LIMIT: Duration = Duration::from_millis(200);

/// A prepared root's baseline: what every node looked like when the step
/// was handed the root.
#[derive(Debug)]
pub struct PreparedRoot {
    stack: LayerStack,
    baseline: BaseNode,
    /// The clock did not pass the newest ctime: compare regular files by
    /// content too.
    compare_content: bool,
    stats: LayerStats,
    /// Files opened for writing while the step ran.
    watch: std::sync::Mutex<WriteWatch>,
    /// Directories (as path components) whose change time moved only
    /// because the sandbox made and removed its mount placeholders in them:
    /// compared without it.
    placeholder_parents: std::sync::Mutex<HashSet<Vec<Vec<u8>>>>,
}

/// One node of the baseline; a directory has its children.
#[derive(Debug)]
struct BaseNode {
    stamp: Stamp,
    children: BTreeMap<Vec<u8>, BaseNode>,
    /// A directory's inotify watch.
    watch: Option<i32>,
}

/// What `statx` says of a node, as far as a change shows in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    /// File type and permission bits.
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    ino: u64,
    mtime: (i64, u32),
    ctime: (i64, u32),
    /// Birth time where the filesystem records one: tells a directory
    /// made again from the one it replaced when the inode number is reused.
    btime: Option<(i64, u32)>,
}

impl Stamp {
    fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// Whether both stamps are of the same node (not one made in its place).
    fn same_node(&self, other: &Stamp) -> bool {
        self.ino == other.ino
            && self.file_type() == other.file_type()
            && match (self.btime, other.btime) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    fn attrs<'x>(&self, xattrs: &'x Xattrs) -> NodeAttrs<'x> {
        NodeAttrs {
            mode: self.mode & 0o7777,
            uid: u64::from(self.uid),
            gid: u64::from(self.gid),
            mtime: self.mtime.0,
            mtime_nanos: self.mtime.1,
            xattrs,
        }
    }
}

impl LayerStack {
    /// Copies the merged tree into `dest` (created if missing) as the root
    /// of a step, and records its baseline. Files are reflinked where the
    /// filesystem can, copied otherwise, and never hard-linked to the
    /// snapshot dirs: a step cannot change a layer through its root.
    pub fn prepare_root(&self, dest: &Path) -> Result<PreparedRoot, LayerError> {
        let stats = self.copy_tree(dest, CopyTree::for_prepared_root())?;
        PreparedRoot::record(self.clone(), dest, stats)
    }
}

impl CopyTree {
    /// How a step's root is copied: every name a file of its own.
    pub(crate) fn for_prepared_root() -> CopyTree {
        CopyTree {
            // Root of a user namespace (rootless) owns files as any mapped id.
            chown: nix::unistd::geteuid().is_root(),
            keep_hard_links: false,
            devices: super::overlay::has_host_root(),
        }
    }
}

impl PreparedRoot {
    /// Records the baseline of `dest`, which holds the merged tree of
    /// `stack` (`stats`: what it took to put it there), and watches it.
    pub(crate) fn record(
        stack: LayerStack,
        dest: &Path,
        stats: LayerStats,
    ) -> Result<PreparedRoot, LayerError> {
        let root = open_root(dest)?;
        let mut newest = (i64::MIN, 0);
        let stamp = stamp_of(&root, b"").ctx("cannot inspect", dest)?;
        let mut watch = WriteWatch::new();
        let baseline = record(&root, stamp, dest, &mut Recording { newest: &mut newest, watch: &mut watch })?;
        watch.start();
        let settled = wait_until_past(newest);
        Ok(PreparedRoot {
            stack,
            baseline,
            compare_content: !settled,
            stats,
            watch: std::sync::Mutex::new(watch),
            placeholder_parents: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// Says that the directory at `rel` (relative to the root) changed only
    /// by the sandbox's placeholders coming and going, its times put back:
    /// the change time this left is not the step's change.
    pub fn note_placeholder_parent(&self, rel: &Path) {
        let components = rel.iter().map(|c| c.as_bytes().to_vec()).collect();
        self.placeholder_parents.lock().unwrap_or_else(|e| e.into_inner()).insert(components);
    }

    /// Whether a directory's stamp differs from its baseline in anything the
    /// step did.
    fn dir_changed(&self, components: &[Vec<u8>], now: Stamp, base: Stamp) -> bool {
        if now == base {
            return false;
        }
        let only_ctime = Stamp { ctime: base.ctime, ..now } == base;
        !(only_ctime
            && self.placeholder_parents.lock().unwrap_or_else(|e| e.into_inner()).contains(components))
    }

    /// The snapshot dirs the root was prepared from, top first.
    pub fn layer_dirs(&self) -> &[std::path::PathBuf] {
        &self.stack.dirs
    }

    /// Entries and bytes copied into the root.
    pub fn stats(&self) -> LayerStats {
        self.stats
    }

    /// Moves everything that changed in `root` since it was prepared into
    /// `upper` (created if missing), in overlay format, and writes
    /// whiteouts for what is gone. `root` is left without the nodes moved
    /// out: discard it, or make it whole again by applying the layer the
    /// upper dir becomes (`LayerStack::carry_root`).
    pub fn write_changes(&self, root: &Path, upper: &Path) -> Result<(), LayerError> {
        let root_dir = open_root(root)?;
        let tree = SafeTree::open(
            upper,
            TreeOptions { chown: nix::unistd::geteuid().is_root(), prefix: self.stack.prefix },
        )?;
        let written = self.watch.lock().unwrap_or_else(|e| e.into_inner()).finish();
        let mut writer = ChangeWriter { prepared: self, tree, ancestors: Vec::new(), root, written };
        let stamp = stamp_of(&root_dir, b"").ctx("cannot inspect", root)?;
        writer.walk_dir(&root_dir, &mut Vec::new(), &self.baseline, stamp)?;
        writer.tree.finish()
    }
}

/// A directory on the way down to the node being looked at, to be made
/// in the upper dir (with the metadata it had when visited, before
/// anything moved out of it) once something below it changed.
struct Ancestor {
    components: Vec<Vec<u8>>,
    stamp: Stamp,
    xattrs: Xattrs,
    made: bool,
}

struct ChangeWriter<'p> {
    prepared: &'p PreparedRoot,
    tree: SafeTree,
    ancestors: Vec<Ancestor>,
    root: &'p Path,
    /// Files opened for writing (overlayfs copies those up even unchanged).
    written: Written,
}

impl ChangeWriter<'_> {
    fn walk_dir(
        &mut self,
        dir: &File,
        components: &mut Vec<Vec<u8>>,
        base: &BaseNode,
        stamp: Stamp,
    ) -> Result<(), LayerError> {
        let xattrs = fd_xattrs(dir).map_err(|e| self.error("cannot read xattrs of", components, e))?;
        self.ancestors.push(Ancestor { components: components.clone(), stamp, xattrs, made: false });
        if !components.is_empty() && self.prepared.dir_changed(components, stamp, base.stamp) {
            self.make_ancestors()?;
        }
        let mut names = list_names(dir).map_err(|e| self.error("cannot list directory", components, e))?;
        names.sort();
        for name in &names {
            components.push(name.clone());
            let now = stamp_of(dir, name).map_err(|e| self.error("cannot inspect", components, e))?;
            match base.children.get(name) {
                Some(old) if old.stamp.same_node(&now) && now.is_dir() => {
                    let sub = open_subdir(dir, name).map_err(|e| self.error("cannot open", components, e))?;
                    self.walk_dir(&sub, components, old, now)?;
                }
                Some(old) if old.stamp.same_node(&now) => {
                    let opened_for_writing =
                        base.watch.is_some_and(|wd| self.written.contains(&(wd, name.clone())));
                    if old.stamp != now || opened_for_writing || self.content_differs(dir, components)? {
                        self.adopt(dir, components, false)?;
                    }
                }
                // Something else in the place of a lower node: a directory
                // there hides whatever the lower layers have below it.
                Some(_) => self.adopt(dir, components, now.is_dir())?,
                None => self.adopt(dir, components, false)?,
            }
            components.pop();
        }
        let present: HashSet<&Vec<u8>> = names.iter().collect();
        for name in base.children.keys().filter(|n| !present.contains(n)) {
            components.push(name.clone());
            self.make_ancestors()?;
            let (secs, nanos) = now();
            self.tree.make_whiteout(components, secs, nanos, &join_components(components))?;
            components.pop();
        }
        self.ancestors.pop();
        Ok(())
    }

    /// Makes the directories on the way to the current node in the upper
    /// dir (the root needs no entry).
    fn make_ancestors(&mut self) -> Result<(), LayerError> {
        for ancestor in self.ancestors.iter_mut().filter(|a| !a.made) {
            if !ancestor.components.is_empty() {
                let attrs = ancestor.stamp.attrs(&ancestor.xattrs);
                let entry = join_components(&ancestor.components);
                self.tree.make_dir(&ancestor.components, &attrs, &entry)?;
            }
            ancestor.made = true;
        }
        Ok(())
    }

    /// Moves the node at `components` (in `dir`) into the upper dir.
    fn adopt(&mut self, dir: &File, components: &[Vec<u8>], opaque: bool) -> Result<(), LayerError> {
        self.make_ancestors()?;
        let entry = join_components(components);
        let name = components.last().map(Vec::as_slice).unwrap_or_default();
        self.tree.adopt(components, dir, name, &entry)?;
        if opaque {
            self.tree.mark_opaque(components, &entry)?;
        }
        Ok(())
    }

    /// Whether a regular file that looks unchanged differs from the lower
    /// layers' file (only asked when the clock could not be trusted).
    fn content_differs(&self, dir: &File, components: &[Vec<u8>]) -> Result<bool, LayerError> {
        if !self.prepared.compare_content {
            return Ok(false);
        }
        let path = String::from_utf8_lossy(&join_components(components)).into_owned();
        let Some(found) = self.prepared.stack.lookup(&path, false)? else { return Ok(true) };
        if !found.metadata.is_file() {
            return Ok(false);
        }
        let name = components.last().map(Vec::as_slice).unwrap_or_default();
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let shown = self.shown(components);
        let mut now = openat(dir, name, flags, Mode::empty())
            .map(File::from)
            .map_err(|e| LayerError::io("cannot open", &shown, e.into()))?;
        let mut before = File::open(&found.real_path).ctx("cannot open", &found.real_path)?;
        Ok(!same_bytes(&mut now, &mut before).ctx("cannot compare", &shown)?)
    }

    /// An io error about the node at `components` (its path made only then).
    fn error(&self, action: &'static str, components: &[Vec<u8>], e: io::Error) -> LayerError {
        LayerError::io(action, self.shown(components), e)
    }

    fn shown(&self, components: &[Vec<u8>]) -> std::path::PathBuf {
        self.root.join(OsStr::from_bytes(&join_components(components)))
    }
}

/// What [`record`] keeps track of besides the baseline.
struct Recording<'r> {
    /// The newest ctime met.
    newest: &'r mut (i64, u32),
    watch: &'r mut WriteWatch,
}

/// Records `dir` (stamped `stamp`) and everything below it, and watches
/// every directory for files opened for writing.
fn record(dir: &File, stamp: Stamp, shown: &Path, rec: &mut Recording<'_>) -> Result<BaseNode, LayerError> {
    let mut children = BTreeMap::new();
    for name in list_names(dir).ctx("cannot list directory", shown)? {
        let path = shown.join(OsStr::from_bytes(&name));
        let child = stamp_of(dir, &name).ctx("cannot inspect", &path)?;
        *rec.newest = (*rec.newest).max(child.ctime);
        let node = if child.is_dir() {
            let sub = open_subdir(dir, &name).ctx("cannot open", &path)?;
            record(&sub, child, &path, rec)?
        } else {
            BaseNode { stamp: child, children: BTreeMap::new(), watch: None }
        };
        children.insert(name, node);
    }
    *rec.newest = (*rec.newest).max(stamp.ctime);
    Ok(BaseNode { stamp, children, watch: rec.watch.add(dir) })
}

/// Waits until the clock reads later than `ctime` by more than a tick;
/// false when it does not get there in time.
fn wait_until_past(ctime: (i64, u32)) -> bool {
    let target = Duration::new(ctime.0.max(0) as u64, ctime.1) + SETTLE_MARGIN;
    let deadline = std::time::Instant::now() + SETTLE_LIMIT;
    loop {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        if now >= target {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep((target - now).min(Duration::from_millis(5)));
    }
}

fn now() -> (i64, u32) {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (t.as_secs() as i64, t.subsec_nanos())
}

fn open_root(path: &Path) -> Result<File, LayerError> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| LayerError::io("cannot open directory", path, e))
}

/// `statx` of `name` in `dir` (of `dir` itself for an empty name), not
/// following a final symlink.
fn stamp_of(dir: &File, name: &[u8]) -> io::Result<Stamp> {
    let path = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut flags = libc::AT_SYMLINK_NOFOLLOW;
    if name.is_empty() {
        flags |= libc::AT_EMPTY_PATH;
    }
    let mut buf = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: `path` is NUL-terminated and `buf` is a writable statx
    // buffer; both outlive the call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::statx(
            dir.as_raw_fd(),
            path.as_ptr(),
            flags,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            buf.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statx succeeded, so it filled the buffer (which started zeroed).
    #[allow(unsafe_code)]
    let st = unsafe { buf.assume_init() };
    let time = |t: libc::statx_timestamp| (t.tv_sec, t.tv_nsec);
    Ok(Stamp {
        mode: u32::from(st.stx_mode),
        uid: st.stx_uid,
        gid: st.stx_gid,
        size: st.stx_size,
        ino: st.stx_ino,
        mtime: time(st.stx_mtime),
        ctime: time(st.stx_ctime),
        btime: (st.stx_mask & libc::STATX_BTIME != 0).then(|| time(st.stx_btime)),
    })
}

/// The xattrs of an open directory that belong in an image, sorted.
fn fd_xattrs(dir: &File) -> io::Result<Xattrs> {
    let names = match dir.list_xattr() {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut xattrs = Vec::new();
    for name in names.filter(|n| keep_in_image(n.as_bytes())) {
        if let Some(value) = dir.get_xattr(&name)? {
            xattrs.push((name.as_bytes().to_vec(), value));
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

fn same_bytes(a: &mut File, b: &mut File) -> io::Result<bool> {
    let (mut buf_a, mut buf_b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = a.read(&mut buf_a)?;
        if n == 0 {
            return Ok(b.read(&mut buf_b[..1])? == 0);
        }
        match b.read_exact(&mut buf_b[..n]) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            other => other?,
        }
        if buf_a[..n] != buf_b[..n] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashSet;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use super::super::overlay::{OverlayXattrs, is_opaque_dir, is_whiteout_at};
    use super::*;

    /// The (device, inode) of every non-directory under `dir`.
    pub(crate) fn inodes(dir: &Path) -> HashSet<(u64, u64)> {
        walkdir::WalkDir::new(dir)
            .into_iter()
            .map(|e| e.unwrap().metadata().unwrap())
            .filter(|m| !m.is_dir())
            .map(|m| (m.dev(), m.ino()))
            .collect()
    }

    #[test]
    fn a_prepared_root_shares_no_inode_with_its_layer_and_its_changes_come_out_in_overlay_form() {
        let temp = tempfile::tempdir().unwrap();
        let [lower, root, upper] = ["lower", "root", "upper"].map(|d| temp.path().join(d));
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::create_dir_all(lower.join("d")).unwrap();
        fs::write(lower.join("etc/a"), "a").unwrap();
        fs::write(lower.join("etc/b"), "b").unwrap();
        fs::write(lower.join("etc/same"), "same").unwrap();
        fs::write(lower.join("d/x"), "x").unwrap();
        fs::write(lower.join("h1"), "h").unwrap();
        fs::hard_link(lower.join("h1"), lower.join("h2")).unwrap();
        let prefix = OverlayXattrs::User;
        let prepared = LayerStack::new(vec![lower.clone()], prefix).prepare_root(&root).unwrap();
        assert!(inodes(&root).is_disjoint(&inodes(&lower)), "a prepared file is a layer's file");

        fs::write(root.join("etc/a"), "changed").unwrap();
        fs::remove_file(root.join("etc/b")).unwrap();
        fs::remove_dir_all(root.join("d")).unwrap();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/y"), "y").unwrap();
        fs::write(root.join("h1"), "through one name").unwrap();
        fs::write(root.join("n"), "new").unwrap();
        prepared.write_changes(&root, &upper).unwrap();

        assert_eq!(fs::read_to_string(lower.join("etc/a")).unwrap(), "a", "the layer is untouched");
        assert_eq!(fs::read_to_string(lower.join("h2")).unwrap(), "h");
        assert_eq!(fs::read_to_string(upper.join("etc/a")).unwrap(), "changed");
        let b = upper.join("etc/b");
        assert!(
            is_whiteout_at(&b, &fs::symlink_metadata(&b).unwrap(), prefix).unwrap(),
            "etc/b is a whiteout"
        );
        assert!(!upper.join("etc/same").exists(), "an unchanged file is not copied up");
        assert!(is_opaque_dir(&upper.join("d"), prefix).unwrap(), "d was made again: opaque");
        assert_eq!(fs::read_to_string(upper.join("d/y")).unwrap(), "y");
        assert!(!upper.join("d/x").exists());
        assert_eq!(fs::read_to_string(upper.join("h1")).unwrap(), "through one name");
        assert!(!upper.join("h2").exists(), "the other name of a lower hard link is not copied up");
        assert_eq!(fs::read_to_string(upper.join("n")).unwrap(), "new");
    }
}
