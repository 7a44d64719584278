//! The layer a COPY made when it last ran at the same place in the
//! Dockerfile, and which of its files this run can share instead of
//! writing them again (see [`super::upper::DiskUpper`]): a file qualifies
//! where the layer holds, at the same path below real directories of its
//! own, the same bytes with the owner, mode and time this run gives, and
//! no xattrs.
//!
//! When the step was described first ([`super::virtual_upper`]), every
//! file it will write is known before the writer starts, and the checks
//! (a stat, an xattr list and a comparison of both files' bytes each) run
//! on all cores ahead of it ([`PriorLayer::check_ahead`]); the writer then
//! only links. Other files are checked one by one as they are written.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rbuild_oci::parallel::map_chunks;

use super::node::{NodeMeta, Stamp};

/// A file the writer may link, checked ahead.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The prior layer's file.
    pub path: PathBuf,
    /// What it was checked against: the source and the node's metadata.
    pub source: PathBuf,
    pub meta: NodeMeta,
    /// Its inode (device, number).
    pub inode: (u64, u64),
}

/// A stored layer offered to a COPY for sharing files.
#[derive(Debug)]
pub struct PriorLayer {
    dir: PathBuf,
    /// Directories of the layer (relative paths) known to be real
    /// directories all the way down, or not.
    real_dirs: HashMap<String, bool>,
    /// Files checked ahead, by destination path.
    checked: HashMap<String, Checked>,
}

impl PriorLayer {
    /// The layer whose snapshot dir is `dir`.
    pub fn new(dir: PathBuf) -> PriorLayer {
        PriorLayer { dir, real_dirs: HashMap::new(), checked: HashMap::new() }
    }

    /// Where the layer would hold the file at `path` (absolute in the
    /// image), when every directory on the way there is a real directory
    /// of the layer: a symlink there would lead out of the store.
    pub fn file(&mut self, path: &str) -> Option<PathBuf> {
        let rel = path.trim_start_matches('/');
        let (parent, _) = rel.rsplit_once('/').unwrap_or(("", rel));
        let mut prefix = String::new();
        for part in parent.split('/').filter(|p| !p.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            let real = match self.real_dirs.get(&prefix) {
                Some(known) => *known,
                None => {
                    let real = fs::symlink_metadata(self.dir.join(&prefix)).is_ok_and(|m| m.is_dir());
                    self.real_dirs.insert(prefix.clone(), real);
                    real
                }
            };
            if !real {
                return None;
            }
        }
        Some(self.dir.join(rel))
    }

    /// Checks the files a step will write, `(destination path, source,
    /// metadata)`, against the layer, on up to as many threads as there are
    /// cores; [`PriorLayer::take_checked`] then answers for each.
    pub fn check_ahead(&mut self, planned: Vec<(String, PathBuf, NodeMeta)>) {
        let candidates: Vec<(String, PathBuf, PathBuf, NodeMeta)> = planned
            .into_iter()
            .filter_map(|(dest, source, meta)| {
                let path = self.file(&dest)?;
                Some((dest, path, source, meta))
            })
            .collect();
        let found = map_chunks(&candidates, 64, |part| {
            let mut buf = Vec::new();
            part.iter()
                .filter_map(|(dest, path, source, meta)| {
                    let m = shareable(path, *meta)?;
                    same_bytes(source, path, m.len(), &mut buf).then(|| {
                        let checked = Checked {
                            path: path.clone(),
                            source: source.clone(),
                            meta: *meta,
                            inode: (m.dev(), m.ino()),
                        };
                        (dest.clone(), checked)
                    })
                })
                .collect()
        });
        self.checked.extend(found);
    }

    /// The layer's file checked ahead for `dest`, if it qualified.
    pub fn take_checked(&mut self, dest: &str) -> Option<Checked> {
        self.checked.remove(dest)
    }
}

/// The stored file's metadata when a link to it would look exactly like
/// the file the writer makes with `meta`: a regular file with that owner,
/// mode and time, and no xattrs.
pub fn shareable(stored: &Path, meta: NodeMeta) -> Option<fs::Metadata> {
    let m = fs::symlink_metadata(stored).ok()?;
    let same = m.file_type().is_file()
        && m.uid() == meta.uid
        && m.gid() == meta.gid
        && m.mode() & 0o7777 == meta.mode & 0o7777
        && meta.mtime == Stamp::At((m.mtime(), m.mtime_nsec()));
    (same && !rbuild_layer::has_any_xattrs(stored).unwrap_or(true)).then_some(m)
}

/// Whether the files at `a` and `b` both hold exactly the same `len`
/// bytes; `buf` is scratch space. Reading both from the page cache costs
/// far less than writing a copy into fresh pages.
pub fn same_bytes(a: &Path, b: &Path, len: u64, buf: &mut Vec<u8>) -> bool {
    use std::io::Read;
    const HALF: usize = 64 << 10;
    let (Ok(mut fa), Ok(mut fb)) = (fs::File::open(a), fs::File::open(b)) else { return false };
    let same_len = |f: &fs::File| f.metadata().is_ok_and(|m| m.len() == len);
    if !same_len(&fa) || !same_len(&fb) {
        return false;
    }
    buf.resize(2 * HALF, 0);
    let (bufa, bufb) = buf.split_at_mut(HALF);
    let mut left = len;
    while left > 0 {
        let want = HALF.min(usize::try_from(left).unwrap_or(usize::MAX));
        if fa.read_exact(&mut bufa[..want]).is_err() || fb.read_exact(&mut bufb[..want]).is_err() {
            return false;
        }
        if bufa[..want] != bufb[..want] {
            return false;
        }
        left -= want as u64;
    }
    true
}
