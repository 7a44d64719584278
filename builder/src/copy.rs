//! COPY, ADD (local sources) and WORKDIR: writes the step's files straight
//! into a fresh upper directory, resolving destination paths through the
//! merged view of the parent layers (symlinks followed, clamped to the
//! root), so no mount is needed and a hostile image cannot redirect writes
//! outside the layer.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat};

use rbuild_layer::LayerStack;
use rbuild_oci::compress::{Compression, decompress_auto, read_head};

use rbuild_frontend::filemode::apply_symbolic;
use rbuild_frontend::graph::FileMode;

use crate::context::{BuildContext, EntryKind};
use crate::dockerignore::DockerIgnore;
use crate::pathmatch;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Layer(#[from] rbuild_layer::LayerError),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CopyError + 'a {
    move |source| CopyError::Io { action, path: path.to_path_buf(), source }
}

/// One file, directory or link to write, relative to the item it belongs to.
#[derive(Debug, Clone)]
pub struct SrcEntry {
    /// Path below the copied item ("" for the item itself).
    pub rel: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    /// Where to read the content (regular files) on the host.
    pub host_path: PathBuf,
    pub link_target: Option<String>,
}

/// A top-level source item (a file or a directory and its contents).
#[derive(Debug, Clone)]
pub struct SrcItem {
    /// The basename used when copying into a directory.
    pub name: String,
    pub entries: Vec<SrcEntry>,
}

impl SrcItem {
    fn is_dir(&self) -> bool {
        self.entries.first().is_some_and(|e| e.kind == EntryKind::Dir)
    }
}

/// The items a context source path selects.
pub fn items_from_context(ctx: &BuildContext, rels: &[String]) -> Vec<SrcItem> {
    rels.iter()
        .map(|rel| {
            let entries = if rel.is_empty() {
                // The context root itself: its contents, as a directory.
                let root_meta = fs::metadata(ctx.root()).ok();
                let mut v = vec![SrcEntry {
                    rel: String::new(),
                    kind: EntryKind::Dir,
                    mode: root_meta.as_ref().map_or(0o40755, |m| m.mode()),
                    uid: 0,
                    gid: 0,
                    mtime: root_meta.as_ref().map_or((0, 0), |m| (m.mtime(), m.mtime_nsec())),
                    host_path: ctx.root().to_path_buf(),
                    link_target: None,
                }];
                v.extend(ctx.subtree("").map(|(p, e)| context_entry(ctx, p, p, e)));
                v
            } else {
                ctx.subtree(rel)
                    .map(|(p, e)| {
                        let below = p.strip_prefix(rel.as_str()).unwrap_or(p).trim_start_matches('/');
                        context_entry(ctx, p, below, e)
                    })
                    .collect()
            };
            SrcItem { name: rel.rsplit('/').next().unwrap_or("").to_string(), entries }
        })
        .collect()
}

fn context_entry(ctx: &BuildContext, path: &str, rel: &str, e: &crate::context::Entry) -> SrcEntry {
    SrcEntry {
        rel: rel.to_string(),
        kind: e.kind,
        mode: e.mode,
        // Context files are owned by root in the image unless --chown says otherwise.
        uid: 0,
        gid: 0,
        mtime: e.mtime,
        host_path: ctx.root().join(path),
        link_target: e.link_target.clone(),
    }
}

/// The items a path selects in a stage's or image's filesystem (owners kept).
pub fn items_from_layers(view: &LayerStack, paths: &[String]) -> Result<Vec<SrcItem>, CopyError> {
    let mut items = Vec::new();
    for path in paths {
        let Some(found) = view.lookup(path, true)? else {
            return Err(CopyError::Invalid(format!("{path}: no such file or directory in the source")));
        };
        let root = found.merged_path.clone();
        let mut entries = Vec::new();
        view.walk(&root, |f: &rbuild_layer::Found| {
            let m = &f.metadata;
            let merged = f.merged_path.as_str();
            let rel =
                merged.strip_prefix(root.as_str()).unwrap_or(merged).trim_start_matches('/').to_string();
            let ft = m.file_type();
            let kind = if ft.is_symlink() {
                EntryKind::Symlink
            } else if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            let link_target = if kind == EntryKind::Symlink {
                fs::read_link(&f.real_path).ok().map(|t| t.to_string_lossy().into_owned())
            } else {
                None
            };
            entries.push(SrcEntry {
                rel,
                kind,
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                mtime: (m.mtime(), m.mtime_nsec()),
                host_path: f.real_path.clone(),
                link_target,
            });
            Ok(())
        })?;
        // Copied into a directory, the item keeps the name it was asked by,
        // even when that name is a symlink to something else.
        let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string();
        items.push(SrcItem { name, entries });
    }
    Ok(items)
}

/// The items of a plain directory tree on the host (e.g. an extracted archive).
pub fn items_from_dir(dir: &Path, name: &str) -> Result<SrcItem, CopyError> {
    let mut entries = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.map_err(|e| CopyError::Invalid(e.to_string()))?;
        let m = e.path().symlink_metadata().map_err(io_err("stat", e.path()))?;
        let rel = e.path().strip_prefix(dir).unwrap_or(e.path()).to_string_lossy().into_owned();
        let ft = m.file_type();
        let kind = if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        };
        entries.push(SrcEntry {
            rel,
            kind,
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            mtime: (m.mtime(), m.mtime_nsec()),
            host_path: e.path().to_path_buf(),
            link_target: if kind == EntryKind::Symlink {
                fs::read_link(e.path()).ok().map(|t| t.to_string_lossy().into_owned())
            } else {
                None
            },
        });
    }
    Ok(SrcItem { name: name.to_string(), entries })
}

/// Writes files into `upper` as they should appear on top of `lowers`.
pub struct Writer<'a> {
    upper: &'a Path,
    /// The parent layers' snapshot dirs, top first.
    lowers: Vec<PathBuf>,
    xattrs: rbuild_layer::OverlayXattrs,
    /// Owner for new files and dirs; None keeps each entry's own.
    pub owner: Option<(u32, u32)>,
    /// Mode override for copied entries (`--chmod`).
    pub chmod: Option<FileMode>,
    resolved_dirs: HashMap<String, String>,
    /// Directories copied up from a lower layer, with the mtime they had
    /// there: writing into them changes it, and [`Writer::finish`] puts it
    /// back, so the layer depends only on the inputs, not on when it ran.
    copied_up: Vec<(PathBuf, (i64, i64))>,
}

impl<'a> Writer<'a> {
    pub fn new(upper: &'a Path, lowers: Vec<PathBuf>, xattrs: rbuild_layer::OverlayXattrs) -> Writer<'a> {
        Writer {
            upper,
            lowers,
            xattrs,
            owner: None,
            chmod: None,
            resolved_dirs: HashMap::new(),
            copied_up: Vec::new(),
        }
    }

    /// Restores the mtimes of copied-up directories, deepest first.
    pub fn finish(self) -> Result<(), CopyError> {
        for (path, mtime) in self.copied_up.iter().rev() {
            if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                set_times(path, *mtime, false)?;
            }
        }
        Ok(())
    }

    /// The merged view: what we wrote so far on top of the parent layers.
    fn view(&self) -> LayerStack {
        let mut dirs = vec![self.upper.to_path_buf()];
        dirs.extend(self.lowers.iter().cloned());
        LayerStack::new(dirs, self.xattrs)
    }

    /// Resolves `path` through the merged view: every symlink followed
    /// within the root, missing components kept as they are.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<String, CopyError> {
        let view = self.view();
        let mut done: Vec<String> = Vec::new();
        let mut pending: Vec<String> =
            path.split('/').filter(|s| !s.is_empty()).rev().map(str::to_string).collect();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let candidate = format!(
                "/{}",
                done.iter().chain(std::iter::once(&part)).cloned().collect::<Vec<_>>().join("/")
            );
            let is_last = pending.is_empty();
            let found = view.lookup(&candidate, false)?;
            match found {
                Some(f) if f.metadata.file_type().is_symlink() && (follow_last || !is_last) => {
                    hops += 1;
                    if hops > 40 {
                        return Err(CopyError::Invalid(format!(
                            "too many levels of symbolic links in {path}"
                        )));
                    }
                    let target = fs::read_link(&f.real_path).map_err(io_err("read link", &f.real_path))?;
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    pending.extend(target.split('/').filter(|s| !s.is_empty()).rev().map(str::to_string));
                }
                _ => done.push(part),
            }
        }
        Ok(format!("/{}", done.join("/")))
    }

    fn upper_path(&self, resolved: &str) -> PathBuf {
        self.upper.join(resolved.trim_start_matches('/'))
    }

    /// Makes directory `path` exist in the merged view, creating it (and
    /// copying up its parents' metadata) in the upper dir. Returns its
    /// resolved path.
    pub fn ensure_dir(&mut self, path: &str) -> Result<String, CopyError> {
        if let Some(r) = self.resolved_dirs.get(path) {
            return Ok(r.clone());
        }
        let resolved = self.resolve(path, true)?;
        let mut cur = String::new();
        for part in resolved.split('/').filter(|s| !s.is_empty()) {
            cur = format!("{cur}/{part}");
            let up = self.upper_path(&cur);
            match fs::symlink_metadata(&up) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => fs::remove_file(&up).map_err(io_err("replace", &up))?,
                Err(_) => {}
            }
            let lower = self.view().lookup(&cur, false)?.filter(|f| f.metadata.is_dir());
            fs::create_dir(&up).map_err(io_err("create directory", &up))?;
            match lower {
                // Copy-up: the directory keeps the lower layer's metadata.
                Some(f) => {
                    let m = &f.metadata;
                    set_meta(&up, m.mode(), m.uid(), m.gid(), (m.mtime(), m.mtime_nsec()), false)?;
                    self.copied_up.push((up.clone(), (m.mtime(), m.mtime_nsec())));
                }
                None => {
                    let (uid, gid) = self.owner.unwrap_or((0, 0));
                    let now = now();
                    set_meta(&up, 0o40755, uid, gid, now, false)?;
                }
            }
        }
        self.resolved_dirs.insert(path.to_string(), resolved.clone());
        Ok(resolved)
    }

    /// True when `path` is a directory in the merged view (symlinks followed).
    pub fn is_dir(&self, path: &str) -> Result<bool, CopyError> {
        let resolved = self.resolve(path, true)?;
        Ok(self.view().lookup(&resolved, false)?.is_some_and(|f| f.metadata.is_dir()))
    }

    /// Copies one item to `dest` (the item itself lands at `dest`; for a
    /// directory, its contents are merged into `dest`).
    pub fn write_item(&mut self, item: &SrcItem, dest: &str) -> Result<(), CopyError> {
        for e in &item.entries {
            let target = if e.rel.is_empty() {
                dest.to_string()
            } else {
                format!("{}/{}", dest.trim_end_matches('/'), e.rel)
            };
            self.write_entry(e, &target)?;
        }
        // Directory mtimes last: writing their contents changed them.
        for e in item.entries.iter().rev().filter(|e| e.kind == EntryKind::Dir) {
            let target = if e.rel.is_empty() {
                dest.to_string()
            } else {
                format!("{}/{}", dest.trim_end_matches('/'), e.rel)
            };
            let resolved = self.resolve(&target, true)?;
            set_times(&self.upper_path(&resolved), e.mtime, false)?;
        }
        Ok(())
    }

    fn write_entry(&mut self, e: &SrcEntry, target: &str) -> Result<(), CopyError> {
        let (parent, name) = split_parent(target);
        if name.is_empty() {
            // The root directory itself: nothing to create.
            return Ok(());
        }
        let parent = self.ensure_dir(parent)?;
        let resolved = format!("{}/{name}", parent.trim_end_matches('/'));
        let up = self.upper_path(&resolved);
        let (uid, gid) = self.owner.unwrap_or((e.uid, e.gid));
        let mode = apply_chmod(self.chmod.as_ref(), e.mode, e.kind == EntryKind::Dir);
        match e.kind {
            EntryKind::Dir => {
                match fs::symlink_metadata(&up) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        fs::remove_file(&up).map_err(io_err("replace", &up))?;
                        fs::create_dir(&up).map_err(io_err("create directory", &up))?;
                    }
                    Err(_) => {
                        // A directory that already exists below keeps merging.
                        fs::create_dir(&up).map_err(io_err("create directory", &up))?;
                    }
                }
                set_meta(&up, mode, uid, gid, e.mtime, false)?;
                self.resolved_dirs.insert(target.to_string(), resolved);
            }
            EntryKind::File => {
                remove_existing(&up)?;
                fs::copy(&e.host_path, &up).map_err(io_err("copy", &e.host_path))?;
                set_meta(&up, mode, uid, gid, e.mtime, false)?;
            }
            EntryKind::Symlink => {
                remove_existing(&up)?;
                let link = e.link_target.clone().unwrap_or_default();
                symlink(&link, &up).map_err(io_err("create symlink", &up))?;
                set_meta(&up, mode, uid, gid, e.mtime, true)?;
            }
            EntryKind::Other => {
                // Sockets, fifos and devices are not copied (Docker skips them too).
            }
        }
        Ok(())
    }

    /// Writes an inline file (a COPY heredoc).
    pub fn write_inline(&mut self, dest: &str, content: &[u8], mode: u32) -> Result<(), CopyError> {
        let (parent, name) = split_parent(dest);
        let parent = self.ensure_dir(parent)?;
        let up = self.upper_path(&format!("{}/{name}", parent.trim_end_matches('/')));
        remove_existing(&up)?;
        fs::write(&up, content).map_err(io_err("write", &up))?;
        let (uid, gid) = self.owner.unwrap_or((0, 0));
        let mode = apply_chmod(self.chmod.as_ref(), 0o100000 | mode, false);
        set_meta(&up, mode, uid, gid, now(), false)
    }
}

/// Copies `items` to `dest` with Docker's rules: into a directory when
/// `dest_is_dir` (or when `dest` already is one), else to `dest` itself.
pub fn copy_items(
    w: &mut Writer<'_>,
    items: &[SrcItem],
    dest: &str,
    dest_is_dir: bool,
) -> Result<(), CopyError> {
    let into_dir =
        dest_is_dir || items.len() > 1 || (items.first().is_some_and(|i| !i.is_dir()) && w.is_dir(dest)?);
    if items.len() > 1 && !dest_is_dir {
        return Err(CopyError::Invalid(format!(
            "when copying more than one source file, the destination must be a directory and end with a /, but it is {dest}"
        )));
    }
    for item in items {
        let target = if into_dir && !item.is_dir() {
            format!("{}/{}", dest.trim_end_matches('/'), item.name)
        } else {
            dest.trim_end_matches('/').to_string()
        };
        let target = if target.is_empty() { "/".to_string() } else { target };
        w.write_item(item, &target)?;
    }
    if items.is_empty() && dest_is_dir {
        w.ensure_dir(dest)?;
    }
    Ok(())
}

fn split_parent(path: &str) -> (&str, &str) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => ("/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => ("/", trimmed),
    }
}

fn remove_existing(p: &Path) -> Result<(), CopyError> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => rbuild_cache::store::remove_tree(p).map_err(io_err("replace", p)),
        Ok(_) => fs::remove_file(p).map_err(io_err("replace", p)),
        Err(_) => Ok(()),
    }
}

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, i64::from(d.subsec_nanos()))
}

fn set_times(p: &Path, mtime: (i64, i64), is_link: bool) -> Result<(), CopyError> {
    let ts = TimeSpec::new(mtime.0, mtime.1);
    let flag = if is_link { UtimensatFlags::NoFollowSymlink } else { UtimensatFlags::FollowSymlink };
    utimensat(nix::fcntl::AT_FDCWD, p, &ts, &ts, flag).map_err(|e| CopyError::Io {
        action: "set times of",
        path: p.to_path_buf(),
        source: e.into(),
    })
}

/// Sets owner, mode (not for symlinks) and mtime of a new entry.
fn set_meta(
    p: &Path,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    is_link: bool,
) -> Result<(), CopyError> {
    fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| CopyError::Io { action: "set owner of", path: p.to_path_buf(), source: e.into() })?;
    if !is_link {
        // chown clears setuid/setgid bits, so the mode goes on after it.
        fs::set_permissions(p, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(io_err("set mode of", p))?;
    }
    set_times(p, mtime, is_link)
}

/// `--chmod` applied to one entry's mode (type bits kept).
pub fn apply_chmod(chmod: Option<&FileMode>, mode: u32, is_dir: bool) -> u32 {
    match chmod {
        None => mode,
        Some(FileMode::Octal(m)) => (mode & !0o7777) | m,
        Some(FileMode::Symbolic(spec)) => apply_symbolic(spec, mode, is_dir),
    }
}

/// Opens `file` as a tar stream if it is a tar archive, plain or gzip,
/// bzip2, xz or zstd compressed, recognised by content as Docker does for
/// ADD. `Ok(None)`: not an archive (it is copied as a file).
pub fn open_archive(file: &Path) -> io::Result<Option<Box<dyn io::Read>>> {
    let open = || -> io::Result<Box<dyn io::Read>> {
        let f = io::BufReader::new(File::open(file)?);
        let head = read_head(&mut File::open(file)?)?;
        Ok(match Compression::sniff(&head) {
            Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(f)),
            Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(f)),
            _ => decompress_auto(f)?,
        })
    };
    let mut probe = match open() {
        Ok(r) => r,
        Err(_) => return Ok(None),
    };
    let mut block = [0u8; 512];
    match read_up_to(&mut probe, &mut block) {
        Ok(512) if is_tar_header(&block) => Ok(Some(open()?)),
        _ => Ok(None),
    }
}

fn read_up_to(r: &mut dyn io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// ustar magic, or a valid old-style header checksum.
fn is_tar_header(block: &[u8; 512]) -> bool {
    if &block[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok());
    let sum: u64 =
        block.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { u64::from(*b) }).sum();
    stored == Some(sum) && block[0] != 0
}

/// Checks that `file` is a tar archive (plain or compressed) for ADD.
pub fn looks_like_archive(file: &Path) -> bool {
    matches!(open_archive(file), Ok(Some(_)))
}

/// Drops the entries `--exclude` patterns name. Patterns are matched, with
/// `.dockerignore` rules, against each entry's path below the copied source
/// (as BuildKit does), so a single-file source is never excluded by them.
pub fn exclude_entries(item: &mut SrcItem, excludes: &DockerIgnore) {
    item.entries.retain(|e| e.rel.is_empty() || !excludes.is_excluded(&e.rel));
}

/// The merged paths a COPY --from source selects in a stage's filesystem:
/// the path itself, or with wildcards every path whose components match
/// (Go's `filepath.Match`, one component at a time).
pub fn select_in_layers(view: &LayerStack, source: &str) -> Result<Vec<String>, CopyError> {
    let cleaned = clean_abs(source);
    if !pathmatch::has_wildcards(&cleaned) {
        return Ok(vec![pathmatch::unescape(&cleaned)]);
    }
    let mut current = vec!["/".to_string()];
    for part in cleaned.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for dir in &current {
            if !pathmatch::has_wildcards(part) {
                let p = join(dir, &pathmatch::unescape(part));
                if view.lookup(&p, false)?.is_some() {
                    next.push(p);
                }
                continue;
            }
            let Ok(children) = view.read_dir(dir) else { continue };
            let mut names: Vec<String> =
                children.into_iter().map(|(n, _)| n.to_string_lossy().into_owned()).collect();
            names.sort();
            for name in names {
                let hit = pathmatch::matches(part, &name)
                    .map_err(|e| CopyError::Invalid(format!("{source}: {e}")))?;
                if hit {
                    next.push(join(dir, &name));
                }
            }
        }
        current = next;
    }
    if current.is_empty() {
        return Err(CopyError::Invalid(format!(
            "{source}: no source files were specified (nothing matches)"
        )));
    }
    Ok(current)
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") }
}

fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `COPY --parents`: a source is split at a `/./` pivot (or taken from the
/// root); the part after it is kept below the destination. Returns the
/// pivot and the pattern below it.
pub fn split_parents(source: &str) -> (String, String) {
    match source.split_once("/./") {
        Some((pivot, rest)) => (pivot.to_string(), rest.trim_start_matches('/').to_string()),
        None => (String::new(), source.trim_start_matches("./").trim_start_matches('/').to_string()),
    }
}

/// Wraps `item` (found at `rel` below the pivot) so that writing it into the
/// destination directory recreates `rel`: the parent directories come
/// first with their source metadata, then the item itself.
pub fn with_parents(item: SrcItem, rel: &str, parents: Vec<SrcEntry>) -> SrcItem {
    let mut entries = parents;
    for mut e in item.entries {
        e.rel = if e.rel.is_empty() { rel.to_string() } else { format!("{rel}/{}", e.rel) };
        entries.push(e);
    }
    SrcItem { name: String::new(), entries }
}
