//! The build context: one walk of the context directory (honouring
//! `.dockerignore`), source selection for COPY/ADD, and content digests
//! served from a stat cache like git's index, so a rebuild with nothing
//! changed stats every file but reads none.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rbuild_oci::digest::{Digest, Hasher};
use serde::{Deserialize, Serialize};

use crate::dockerignore::DockerIgnore;
use rbuild_oci::io_error::IoError;

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0}: no such file or directory in the build context")]
    NotFound(String),
    #[error("{0}: the path is outside the build context")]
    Outside(String),
    #[error("invalid pattern {0:?}: {1}")]
    Pattern(String, String),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContextError + 'a {
    move |source| ContextError::Io(IoError::new(action, path, source))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

impl EntryKind {
    /// The kind an lstat's file type says.
    pub fn of(file_type: fs::FileType) -> EntryKind {
        if file_type.is_symlink() {
            EntryKind::Symlink
        } else if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        }
    }
}

/// What one lstat said about a context entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: EntryKind,
    pub mode: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub uid: u32,
    pub gid: u32,
    ino: u64,
    ctime_ns: i64,
    pub link_target: Option<String>,
}

/// The stat cache on disk: path -> (stat fields, digest).
#[derive(Debug, Default, Serialize, Deserialize)]
struct StatCache {
    /// When the cache was written (ns since the epoch); an entry whose
    /// ctime is not older than this is re-hashed ("racy" entries, as git).
    written_ns: i64,
    files: HashMap<String, CachedDigest>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedDigest {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    digest: Digest,
}

/// Files changed this close to the moment the cache was written may have
/// changed again within the same coarse filesystem clock tick; they are
/// hashed again rather than trusted.
const RACY_MARGIN_NS: i64 = 50_000_000;

pub struct BuildContext {
    root: PathBuf,
    entries: BTreeMap<String, Entry>,
    cache: Mutex<CacheState>,
    cache_path: Option<PathBuf>,
}

struct CacheState {
    old: StatCache,
    new: HashMap<String, CachedDigest>,
    dirty: bool,
    bytes_hashed: u64,
}

impl BuildContext {
    /// Walks `root`, leaving out what `ignore` excludes. `cache_path` is
    /// where the stat cache lives between builds (None: no cache).
    pub fn open(
        root: &Path,
        ignore: &DockerIgnore,
        cache_path: Option<PathBuf>,
    ) -> Result<BuildContext, ContextError> {
        let root = root.canonicalize().map_err(io_err("open build context", root))?;
        let mut entries = BTreeMap::new();
        walk(&root, "", ignore, &mut entries)?;
        let old = cache_path
            .as_ref()
            .and_then(|p| fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<StatCache>(&b).ok())
            .unwrap_or_default();
        Ok(BuildContext {
            root,
            entries,
            cache: Mutex::new(CacheState { old, new: HashMap::new(), dirty: false, bytes_hashed: 0 }),
            cache_path,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn entry(&self, rel: &str) -> Option<&Entry> {
        self.entries.get(rel)
    }

    /// Number of entries (files, dirs, links) in the context.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes read to compute digests so far (0 on a no-op rebuild).
    pub fn bytes_hashed(&self) -> u64 {
        self.cache.lock().map(|c| c.bytes_hashed).unwrap_or(0)
    }

    /// The context-relative paths a COPY source selects. A source without
    /// wildcards names one path (symlinks in it are followed inside the
    /// context); one with wildcards matches each path component with Go's
    /// `filepath.Match` rules and may match nothing, which BuildKit allows.
    /// Returns `("", …)` for the context root.
    pub fn select(&self, source: &str) -> Result<Vec<String>, ContextError> {
        Ok(self.select_named(source)?.into_iter().map(|(_, rel)| rel).collect())
    }

    /// As [`select`](Self::select), each path with the name it was selected
    /// by: the last component of the source or of the wildcard match, which
    /// a copy into a directory keeps even when it is a link to something
    /// else (links are followed, as BuildKit follows them).
    pub fn select_named(&self, source: &str) -> Result<Vec<(String, String)>, ContextError> {
        let cleaned = clean_relative(source).ok_or_else(|| ContextError::Outside(source.to_string()))?;
        let base_name = |p: &str| p.rsplit('/').next().unwrap_or("").to_string();
        if !has_wildcards(&cleaned) {
            let cleaned = crate::pathmatch::unescape(&cleaned);
            let resolved = self.resolve_links(&cleaned, source)?;
            if resolved.is_empty() || self.entries.contains_key(&resolved) {
                return Ok(vec![(base_name(&cleaned), resolved)]);
            }
            return Err(ContextError::NotFound(source.to_string()));
        }
        // Go's filepath.Match, one component at a time (Docker's rules).
        let parts: Vec<&str> = cleaned.split('/').collect();
        for part in &parts {
            crate::pathmatch::matches(part, "")
                .map_err(|e| ContextError::Pattern(source.to_string(), e.to_string()))?;
        }
        let found: Vec<String> = self
            .entries
            .keys()
            .filter(|p| {
                let names: Vec<&str> = p.split('/').collect();
                names.len() == parts.len()
                    && parts
                        .iter()
                        .zip(&names)
                        .all(|(pat, name)| crate::pathmatch::matches(pat, name).unwrap_or(false))
            })
            .cloned()
            .collect();
        found
            .into_iter()
            .map(|p| {
                let resolved = self.resolve_links(&p, source)?;
                if !self.entries.contains_key(&resolved) {
                    return Err(ContextError::NotFound(p));
                }
                Ok((base_name(&p), resolved))
            })
            .collect()
    }

    /// Follows symlinks in `rel` with the context as the root.
    fn resolve_links(&self, rel: &str, original: &str) -> Result<String, ContextError> {
        let mut parts: Vec<String> = Vec::new();
        let mut pending: Vec<String> =
            rel.split('/').filter(|s| !s.is_empty()).rev().map(str::to_string).collect();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                parts.pop();
                continue;
            }
            if part == "." {
                continue;
            }
            parts.push(part);
            let joined = parts.join("/");
            if let Some(Entry { kind: EntryKind::Symlink, link_target: Some(target), .. }) =
                self.entries.get(&joined)
            {
                hops += 1;
                if hops > 40 {
                    return Err(ContextError::NotFound(original.to_string()));
                }
                parts.pop();
                if target.starts_with('/') {
                    parts.clear();
                }
                pending.extend(target.split('/').filter(|s| !s.is_empty()).rev().map(str::to_string));
            }
        }
        Ok(parts.join("/"))
    }

    /// Entries at and below `rel` (all entries for ""), sorted by path.
    pub fn subtree<'a>(&'a self, rel: &'a str) -> impl Iterator<Item = (&'a String, &'a Entry)> + 'a {
        let prefix = if rel.is_empty() { String::new() } else { format!("{rel}/") };
        let own = self.entries.get_key_value(rel).into_iter();
        own.chain(self.entries.range(prefix.clone()..).take_while(move |(k, _)| k.starts_with(&prefix)))
    }

    /// The sha256 of a regular file's content, from the stat cache when the
    /// file is unchanged.
    pub fn file_digest(&self, rel: &str) -> Result<Digest, ContextError> {
        let entry = self.entries.get(rel).ok_or_else(|| ContextError::NotFound(rel.to_string()))?;
        {
            let mut cache = self.cache.lock().expect("stat cache lock");
            if let Some(hit) = cache.new.get(rel) {
                return Ok(hit.digest);
            }
            let racy_before = cache.old.written_ns;
            if let Some(c) = cache.old.files.get(rel)
                && c.size == entry.size
                && c.mtime_ns == entry.mtime.0 * 1_000_000_000 + entry.mtime.1
                && c.ctime_ns == entry.ctime_ns
                && c.ino == entry.ino
                && c.ctime_ns < racy_before - RACY_MARGIN_NS
            {
                let c = c.clone();
                let digest = c.digest;
                cache.new.insert(rel.to_string(), c);
                return Ok(digest);
            }
        }
        let path = self.root.join(rel);
        let digest = hash_file(&path)?;
        let mut cache = self.cache.lock().expect("stat cache lock");
        cache.bytes_hashed += entry.size;
        cache.dirty = true;
        cache.new.insert(
            rel.to_string(),
            CachedDigest {
                size: entry.size,
                mtime_ns: entry.mtime.0 * 1_000_000_000 + entry.mtime.1,
                ctime_ns: entry.ctime_ns,
                ino: entry.ino,
                digest,
            },
        );
        Ok(digest)
    }

    /// A digest of everything at and below `rel`: each path (relative to
    /// `rel`), type, permission bits and content digest or link target.
    /// Owners and times are left out: COPY sets owners, and a touched but
    /// unchanged file must not invalidate the cache.
    pub fn tree_digest(&self, rel: &str) -> Result<Digest, ContextError> {
        let mut h = Hasher::new();
        for (path, entry) in self.subtree(rel) {
            let name = path.strip_prefix(rel).unwrap_or(path).trim_start_matches('/');
            let content = match entry.kind {
                EntryKind::File => self.file_digest(path)?.to_string(),
                EntryKind::Symlink => entry.link_target.clone().unwrap_or_default(),
                _ => String::new(),
            };
            h.update(format!("{name}\0{:?}\0{:o}\0{content}\n", entry.kind, entry.mode & 0o7777).as_bytes());
        }
        Ok(h.finish())
    }

    /// Writes the stat cache back if anything new was hashed or files went away.
    pub fn save_cache(&self) -> io::Result<()> {
        let Some(path) = &self.cache_path else { return Ok(()) };
        let cache = self.cache.lock().expect("stat cache lock");
        let old_still_valid = cache.old.files.keys().filter(|k| self.entries.contains_key(*k)).count();
        if !cache.dirty && old_still_valid == cache.old.files.len() {
            return Ok(());
        }
        // Keep entries of files not used by this build but still present.
        let mut files = cache.new.clone();
        for (k, v) in &cache.old.files {
            if self.entries.contains_key(k) && !files.contains_key(k) {
                files.insert(k.clone(), v.clone());
            }
        }
        let now = rbuild_oci::timefmt::Timestamp::now();
        let out = StatCache { written_ns: now.secs * 1_000_000_000 + i64::from(now.nanos), files };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        rbuild_cache::store::write_file(path, &serde_json::to_vec(&out).map_err(io::Error::other)?)
    }
}

fn hash_file(path: &Path) -> Result<Digest, ContextError> {
    let mut f = File::open(path).map_err(io_err("read", path))?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

fn walk(
    root: &Path,
    rel: &str,
    ignore: &DockerIgnore,
    out: &mut BTreeMap<String, Entry>,
) -> Result<(), ContextError> {
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    let read = fs::read_dir(&dir).map_err(io_err("read directory", &dir))?;
    for item in read {
        let item = item.map_err(io_err("read directory", &dir))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        let child_rel = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        let path = item.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        let is_dir = meta.is_dir();
        if ignore.is_excluded(&child_rel) {
            if is_dir && !ignore.can_skip_dir(&child_rel) {
                // An exception (`!dir/keep`) may re-include something below.
                walk(root, &child_rel, ignore, out)?;
            }
            continue;
        }
        let kind = EntryKind::of(meta.file_type());
        let link_target = if kind == EntryKind::Symlink {
            Some(fs::read_link(&path).map_err(io_err("read link", &path))?.to_string_lossy().into_owned())
        } else {
            None
        };
        out.insert(
            child_rel.clone(),
            Entry {
                kind,
                mode: meta.mode(),
                size: meta.len(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                uid: meta.uid(),
                gid: meta.gid(),
                ino: meta.ino(),
                ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
                link_target,
            },
        );
        if is_dir {
            walk(root, &child_rel, ignore, out)?;
        }
    }
    Ok(())
}

/// Cleans a context-relative source path; `None` if it climbs out of the context.
pub fn clean_relative(p: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

pub fn has_wildcards(p: &str) -> bool {
    crate::pathmatch::has_wildcards(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_with(files: &[(&str, &str)], ignore: &str) -> (tempfile::TempDir, BuildContext) {
        let tmp = tempfile::tempdir().unwrap();
        for (p, content) in files {
            let path = tmp.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        let ignore = DockerIgnore::parse(ignore).unwrap();
        let cache = tmp.path().join("../statcache-test").with_file_name(format!("sc-{}", std::process::id()));
        let ctx = BuildContext::open(tmp.path(), &ignore, Some(cache)).unwrap();
        (tmp, ctx)
    }

    #[test]
    fn dockerignore_and_exceptions_apply() {
        let (_t, ctx) = ctx_with(
            &[
                ("a.txt", "a"),
                ("node_modules/x.js", "x"),
                ("x.log", "l"),
                ("keep.log", "k"),
                ("src/d1/f.txt", "f"),
            ],
            "node_modules\n*.log\n!keep.log\n",
        );
        assert!(ctx.entry("a.txt").is_some());
        assert!(ctx.entry("node_modules").is_none());
        assert!(ctx.entry("node_modules/x.js").is_none());
        assert!(ctx.entry("x.log").is_none());
        assert!(ctx.entry("keep.log").is_some());
        assert!(ctx.entry("src/d1/f.txt").is_some());
    }

    #[test]
    fn selection_with_and_without_wildcards() {
        let (_t, ctx) = ctx_with(&[("a.txt", "a"), ("b.txt", "b"), ("c.md", "c"), ("src/x.txt", "x")], "");
        assert_eq!(ctx.select("*.txt").unwrap(), vec!["a.txt", "b.txt"]);
        assert_eq!(ctx.select("./src/../a.txt").unwrap(), vec!["a.txt"]);
        assert_eq!(ctx.select(".").unwrap(), vec![""]);
        assert!(matches!(ctx.select("../etc/passwd"), Err(ContextError::Outside(_))));
        assert!(matches!(ctx.select("missing"), Err(ContextError::NotFound(_))));
        assert!(ctx.select("*.rs").unwrap().is_empty(), "a wildcard may match nothing (BuildKit)");
        // Wildcards in directory components, Go's rules (no `{a,b}`).
        assert_eq!(ctx.select("s*/*.txt").unwrap(), vec!["src/x.txt"]);
        assert_eq!(ctx.select("[ab].txt").unwrap(), vec!["a.txt", "b.txt"]);
        assert!(matches!(ctx.select("{a,b}.txt"), Err(ContextError::NotFound(_))));
        assert!(matches!(ctx.select("[a.txt"), Err(ContextError::Pattern(..))));
    }

    #[test]
    fn digests_follow_content_not_mtime_and_the_cache_avoids_rereads() {
        let (t, ctx) = ctx_with(&[("src/a.txt", "one"), ("src/b.txt", "two")], "");
        let d1 = ctx.tree_digest("src").unwrap();
        assert_eq!(ctx.bytes_hashed(), 6);
        std::thread::sleep(std::time::Duration::from_millis(60));
        ctx.save_cache().unwrap();
        let ignore = DockerIgnore::empty();
        let again = BuildContext::open(t.path(), &ignore, ctx.cache_path.clone()).unwrap();
        assert_eq!(again.tree_digest("src").unwrap(), d1);
        assert_eq!(again.bytes_hashed(), 0, "an unchanged file must not be read again");
        fs::write(t.path().join("src/b.txt"), "TWO").unwrap();
        let changed = BuildContext::open(t.path(), &ignore, ctx.cache_path.clone()).unwrap();
        assert_ne!(changed.tree_digest("src").unwrap(), d1);
        assert_eq!(changed.bytes_hashed(), 3);
        let _ = fs::remove_file(ctx.cache_path.as_ref().unwrap());
    }
}
