//! Writing the merged tree of a [`LayerStack`] out in one piece: as a plain
//! directory (`-o type=local`) or as one flat tar (`rbuild export`, squash).
//! Neither contains whiteouts or opaque markers: what they hide is simply
//! absent.
//!
//! Hard links are kept where both names are the same inode of the same
//! layer; a file copied up into a newer layer is a different file there,
//! as it is in the mounted overlay.

use rbuild_oci::io_error::IoContext;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::LayerStats;
use super::diff::{special_kind, write_file_entry};
use super::error::LayerError;
use super::node::{NodeKind, TarMetadata, Xattrs, image_xattrs, read_xattrs};
use super::safe_tree::{NodeAttrs, SafeTree, SpecialKind, TreeOptions, join_components};
use super::stack::{LayerStack, WalkItem};
use super::tar_writer::{Entry, EntryKind, TarWriter};

/// Options for [`LayerStack::write_flat_tar_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlatTarOptions {
    /// SOURCE_DATE_EPOCH: later mtimes are written as this.
    pub clamp_mtime: Option<i64>,
}

/// How [`LayerStack::copy_tree`] copies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyTree {
    /// Give every node its owner (needs root, of the host or a user namespace).
    pub chown: bool,
    /// Two names of one inode of one layer stay one inode; otherwise each
    /// name is a file of its own.
    pub keep_hard_links: bool,
    /// Make device nodes (needs CAP_MKNOD); otherwise they are left out.
    pub devices: bool,
}

/// A regular file to make, and where its content comes from.
pub(crate) struct FileJob {
    pub components: Vec<Vec<u8>>,
    pub source: PathBuf,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: (i64, u32),
    pub xattrs: Xattrs,
}

impl FileJob {
    /// A copy of `source` to `components` with `attrs`.
    pub(crate) fn new(components: &[Vec<u8>], source: &Path, attrs: &NodeAttrs<'_>) -> FileJob {
        FileJob {
            components: components.to_vec(),
            source: source.to_path_buf(),
            mode: attrs.mode,
            uid: attrs.uid,
            gid: attrs.gid,
            mtime: (attrs.mtime, attrs.mtime_nanos),
            xattrs: attrs.xattrs.clone(),
        }
    }
}

/// Makes at `components` the device node or fifo (`kind`) that `meta`
/// describes.
pub(crate) fn make_special_like(
    tree: &mut SafeTree,
    components: &[Vec<u8>],
    kind: NodeKind,
    meta: &fs::Metadata,
    attrs: &NodeAttrs<'_>,
    entry: &[u8],
) -> Result<(), LayerError> {
    let special = match kind {
        NodeKind::CharDevice => SpecialKind::CharDevice,
        NodeKind::BlockDevice => SpecialKind::BlockDevice,
        _ => SpecialKind::Fifo,
    };
    let rdev = meta.rdev();
    tree.make_special(
        components,
        special,
        (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev)),
        attrs,
        entry,
    )
}

/// A second name to link (path, first name), made once every file exists.
type HardLinkJob = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Below this many files one thread does it all.
const PARALLEL_FROM: usize = 64;
/// Threads that fill files: creating files is mostly waiting on the
/// filesystem's journal, so a few help even on two cores (`cp -a` of the
/// app benchmark's 2,000 files in four parts takes two thirds of the time).
const COPY_THREADS: usize = 4;

/// Makes the regular files (their directories exist already); returns the
/// bytes copied. Each thread walks with its own [`SafeTree`] on `dest`.
pub(crate) fn copy_files(
    dest: &Path,
    options: TreeOptions,
    tree: &mut SafeTree,
    files: Vec<FileJob>,
) -> Result<u64, LayerError> {
    let make = |tree: &mut SafeTree, job: &FileJob| {
        let attrs = NodeAttrs {
            mode: job.mode,
            uid: job.uid,
            gid: job.gid,
            mtime: job.mtime.0,
            mtime_nanos: job.mtime.1,
            xattrs: &job.xattrs,
        };
        let name = join_components(&job.components);
        tree.make_file(&job.components, &attrs, &name, |out| copy_file(&job.source, out))
    };
    if files.len() < PARALLEL_FROM {
        return files.iter().try_fold(0, |bytes, job| Ok(bytes + make(tree, job)?));
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || -> Result<u64, LayerError> {
        let mut tree = SafeTree::open(dest, options)?;
        let mut bytes = 0;
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(job) = files.get(i) else { return Ok(bytes) };
            bytes += make(&mut tree, job).inspect_err(|_| {
                // Stop the others early: nothing after an error counts.
                next.store(files.len(), std::sync::atomic::Ordering::Relaxed);
            })?;
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..COPY_THREADS).map(|_| scope.spawn(worker)).collect();
        handles.into_iter().try_fold(0, |total, handle| {
            Ok(total + handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?)
        })
    })
}

/// An inode of one layer: (layer index, device, inode number).
type InodeKey = (usize, u64, u64);

impl LayerStack {
    /// Copies the merged tree into `dest` (created if missing) as a plain
    /// directory: content, modes, mtimes, xattrs (but the overlay's own),
    /// symlinks and hard links; owners and device nodes only when running
    /// as root of the host. `dest` itself keeps its own owner, mode and times. Nothing
    /// is created through a symlink, even one the tree itself contains.
    pub fn export_dir(&self, dest: &Path) -> Result<LayerStats, LayerError> {
        // Root of a user namespace (rootless) could chown, but the files
        // would then belong to subordinate ids the user cannot remove: the
        // user gets a tree of their own, as any non-root caller does.
        let host_root = super::overlay::has_host_root();
        let how = CopyTree { chown: host_root, keep_hard_links: true, devices: host_root };
        self.copy_tree(dest, how)
    }

    /// Copies the merged tree into `dest` as [`CopyTree`] says.
    pub(crate) fn copy_tree(&self, dest: &Path, how: CopyTree) -> Result<LayerStats, LayerError> {
        let options = TreeOptions { chown: how.chown, prefix: self.prefix };
        let mut tree = SafeTree::open(dest, options)?;
        let mut first_name_of_inode: HashMap<InodeKey, Vec<Vec<u8>>> = HashMap::new();
        let mut stats = LayerStats::default();
        // Files are filled after the walk, on several threads (see
        // `copy_files`); hard links to them are made once they exist.
        let mut files: Vec<FileJob> = Vec::new();
        let mut links: Vec<HardLinkJob> = Vec::new();

        self.walk_below(self.root_dir(), &mut |item: &WalkItem<'_>| {
            let components: Vec<Vec<u8>> = item.components.iter().map(|c| c.as_bytes().to_vec()).collect();
            let name = join_components(&components);
            let child = item.child;
            let meta = &child.metadata;
            let kind = NodeKind::of(meta);
            let linked = how.keep_hard_links && kind != NodeKind::Dir && meta.nlink() > 1;
            let key = (child.layer, meta.dev(), meta.ino());
            if linked && let Some(first) = first_name_of_inode.get(&key) {
                links.push((components, first.clone()));
                stats.entries += 1;
                return Ok(());
            }

            let xattrs = image_xattrs(&read_xattrs(&child.real_path)?);
            let attrs = NodeAttrs::of(meta, &xattrs);
            match kind {
                NodeKind::Dir => tree.make_dir(&components, &attrs, &name)?,
                NodeKind::File => files.push(FileJob::new(&components, &child.real_path, &attrs)),
                NodeKind::Symlink => {
                    let target =
                        fs::read_link(&child.real_path).ctx("cannot read symlink", &child.real_path)?;
                    tree.make_symlink(&components, target.as_os_str().as_bytes(), &attrs, &name)?;
                }
                NodeKind::CharDevice | NodeKind::BlockDevice if !how.devices => {
                    tracing::debug!(path = %child.real_path.display(), "not copying device node without root");
                    return Ok(());
                }
                NodeKind::CharDevice | NodeKind::BlockDevice | NodeKind::Fifo => {
                    make_special_like(&mut tree, &components, kind, meta, &attrs, &name)?;
                }
                NodeKind::Socket => return Ok(()),
            }
            if linked {
                first_name_of_inode.insert(key, components);
            }
            stats.entries += 1;
            Ok(())
        })?;
        stats.content_bytes += copy_files(dest, options, &mut tree, files)?;
        for (components, first) in links {
            let name = join_components(&components);
            tree.make_hardlink(&components, &first, &name)?;
        }
        tree.finish()?;
        Ok(stats)
    }

    /// Writes the merged tree as one tar, by the rules of
    /// [`super::write_layer_tar`] minus whiteouts and opaque markers.
    pub fn write_flat_tar<W: Write>(&self, out: W) -> Result<LayerStats, LayerError> {
        self.write_flat_tar_with(out, &FlatTarOptions::default())
    }

    /// [`LayerStack::write_flat_tar`] with options.
    pub fn write_flat_tar_with<W: Write>(
        &self,
        out: W,
        opts: &FlatTarOptions,
    ) -> Result<LayerStats, LayerError> {
        let mut writer = TarWriter::new(out);
        let mut first_name_of_inode: HashMap<InodeKey, Vec<u8>> = HashMap::new();

        self.walk_below(self.root_dir(), &mut |item: &WalkItem<'_>| {
            let parts: Vec<&[u8]> = item.components.iter().map(|c| c.as_bytes()).collect();
            let mut rel = parts.join(&b'/');
            let child = item.child;
            let meta = &child.metadata;
            let kind = NodeKind::of(meta);
            let xattrs = image_xattrs(&read_xattrs(&child.real_path)?);
            let tar_meta = TarMetadata::of(meta, opts.clamp_mtime);

            if kind != NodeKind::Dir && meta.nlink() > 1 {
                let key = (child.layer, meta.dev(), meta.ino());
                if let Some(first) = first_name_of_inode.get(&key) {
                    let entry = Entry {
                        path: &rel,
                        kind: EntryKind::HardLink { target: first },
                        meta: tar_meta,
                        xattrs: &xattrs,
                    };
                    return writer.append(&entry);
                }
                first_name_of_inode.insert(key, rel.clone());
            }
            match kind {
                NodeKind::Dir => {
                    rel.push(b'/');
                    writer.append(&Entry {
                        path: &rel,
                        kind: EntryKind::Dir,
                        meta: tar_meta,
                        xattrs: &xattrs,
                    })
                }
                NodeKind::File => {
                    let entry = Entry {
                        path: &rel,
                        kind: EntryKind::File { size: meta.len() },
                        meta: tar_meta,
                        xattrs: &xattrs,
                    };
                    write_file_entry(&mut writer, &entry, &child.real_path, meta)
                }
                NodeKind::Symlink => {
                    let target =
                        fs::read_link(&child.real_path).ctx("cannot read symlink", &child.real_path)?;
                    let kind = EntryKind::Symlink { target: target.as_os_str().as_bytes() };
                    writer.append(&Entry { path: &rel, kind, meta: tar_meta, xattrs: &xattrs })
                }
                NodeKind::CharDevice | NodeKind::BlockDevice | NodeKind::Fifo => {
                    let kind = special_kind(kind, meta);
                    writer.append(&Entry { path: &rel, kind, meta: tar_meta, xattrs: &xattrs })
                }
                NodeKind::Socket => Ok(()),
            }
        })?;
        writer.finish()
    }
}

/// Copies a file's content into the empty file `out`: a reflink (`FICLONE`)
/// where the filesystem shares extents copy-on-write (btrfs, XFS), so the
/// copy costs no data and no space until one side writes; otherwise the
/// kernel copies directly (`io::copy` uses `copy_file_range`). Never a hard
/// link: writing to the copy must leave the source as it was.
fn copy_file(source: &Path, out: &mut File) -> Result<u64, LayerError> {
    let mut input =
        File::options().read(true).custom_flags(libc::O_NOFOLLOW).open(source).ctx("cannot open", source)?;
    if reflink(&input, out) {
        return Ok(input.metadata().ctx("cannot inspect", source)?.len());
    }
    Ok(io::copy(&mut input, out).ctx("cannot copy", source)?)
}

/// Whether `out` now shares `input`'s extents. Any failure (another
/// filesystem, one without reflinks) means "copy instead"; asking costs
/// one failed syscall.
fn reflink(input: &File, out: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: both descriptors are open for the duration of the call, and
    // FICLONE takes the source descriptor by value.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::ioctl(out.as_raw_fd(), libc::FICLONE, input.as_raw_fd()) };
    rc == 0
}
