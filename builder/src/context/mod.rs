//! The build context: one walk of the context directory (honouring
//! `.dockerignore`), source selection for COPY/ADD, and content digests
//! served from a stat cache like git's index, so a rebuild with nothing
//! changed stats every file but reads none.

mod racy;
mod stat_cache;
mod walk;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rbuild_oci::digest::{Digest, Hasher};

use stat_cache::{CachedDigest, PathMap, StatCache};

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

impl Entry {
    fn mtime_ns(&self) -> i64 {
        self.mtime.0 * 1_000_000_000 + self.mtime.1
    }
}

pub struct BuildContext {
    root: PathBuf,
    entries: BTreeMap<String, Entry>,
    cache: Mutex<CacheState>,
    cache_path: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH`: no file COPY or ADD brings in is newer.
    clamp_mtime: Option<i64>,
}

struct CacheState {
    old: StatCache,
    /// Digests taken in this build.
    new: PathMap<Hashed>,
    dirty: bool,
    files_hashed: usize,
    bytes_hashed: u64,
}

/// A digest taken in this build, with when its read started: it goes into
/// the saved cache only once [`racy::settled`] (see [`BuildContext::save_cache`]).
#[derive(Clone, Copy)]
struct Hashed {
    cached: CachedDigest,
    read_started_ns: i64,
}

impl Hashed {
    fn settled(&self) -> bool {
        racy::settled(self.cached.ctime_ns, self.read_started_ns)
    }
}

impl CacheState {
    /// The digest of `rel` if it was hashed in this build, or the cache
    /// holds one taken under the same stat fields (every saved entry is
    /// settled). A hit needs no new record: save_cache keeps every old
    /// entry whose file is still there.
    fn lookup(&self, rel: &str, entry: &Entry) -> Option<Digest> {
        if let Some(hit) = self.new.get(rel) {
            return Some(hit.cached.digest);
        }
        let c = self.old.files.get(rel)?;
        let unchanged = c.size == entry.size
            && c.mtime_ns == entry.mtime_ns()
            && c.ctime_ns == entry.ctime_ns
            && c.ino == entry.ino;
        unchanged.then_some(c.digest)
    }

    /// Keeps a digest just computed for `rel`, whose read started at
    /// `read_started_ns`.
    fn record(&mut self, rel: &str, entry: &Entry, digest: Digest, read_started_ns: i64) {
        self.files_hashed += 1;
        self.bytes_hashed += entry.size;
        self.dirty = true;
        let cached = CachedDigest {
            size: entry.size,
            mtime_ns: entry.mtime_ns(),
            ctime_ns: entry.ctime_ns,
            ino: entry.ino,
            digest,
        };
        self.new.insert(rel.to_string(), Hashed { cached, read_started_ns });
    }
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
        // The walk and the cache read are independent: overlap them when
        // the cache is large enough to be worth a thread.
        let cache_bytes = cache_path.as_deref().and_then(|p| fs::metadata(p).ok()).map_or(0, |m| m.len());
        let (entries, old) = if cache_bytes < STAT_CACHE_INLINE_BYTES {
            (walk::walk(&root, ignore), cache_path.as_deref().map(StatCache::load).unwrap_or_default())
        } else {
            std::thread::scope(|scope| {
                let old = scope.spawn(|| cache_path.as_deref().map(StatCache::load).unwrap_or_default());
                let entries = walk::walk(&root, ignore);
                (entries, old.join().expect("stat cache reader panicked"))
            })
        };
        let entries = entries?;
        Ok(BuildContext {
            root,
            entries,
            cache: Mutex::new(CacheState {
                old,
                new: PathMap::default(),
                dirty: false,
                files_hashed: 0,
                bytes_hashed: 0,
            }),
            cache_path,
            clamp_mtime: None,
        })
    }

    /// Makes COPY and ADD present no modification time later than `epoch`
    /// (`SOURCE_DATE_EPOCH`): a RUN step that reads file times (`tar`,
    /// Python's .pyc, jar and zip files) then gives the same bytes in two
    /// checkouts made at different times. The stat cache still compares
    /// the real times.
    pub fn with_mtime_clamp(mut self, epoch: Option<i64>) -> BuildContext {
        self.clamp_mtime = epoch;
        self
    }

    /// The modification time COPY gives a context entry: its own, or the
    /// epoch when that is earlier (see [`BuildContext::with_mtime_clamp`]).
    pub fn presented_mtime(&self, mtime: (i64, i64)) -> (i64, i64) {
        match self.clamp_mtime {
            Some(epoch) if mtime > (epoch, 0) => (epoch, 0),
            _ => mtime,
        }
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

    /// The content key (BLAKE3, see [`hash_file`]) of a regular file, from
    /// the stat cache when the file is unchanged.
    pub fn file_digest(&self, rel: &str) -> Result<Digest, ContextError> {
        let entry = self.entries.get_key_value(rel).ok_or_else(|| ContextError::NotFound(rel.to_string()))?;
        self.file_digests(&[entry])?.remove(0).ok_or_else(|| ContextError::NotFound(rel.to_string()))
    }

    /// A digest of everything at and below `rel`: each path (relative to
    /// `rel`), type, permission bits and content digest or link target.
    /// Owners and times are left out: COPY sets owners, and a touched but
    /// unchanged file must not invalidate the cache.
    pub fn tree_digest(&self, rel: &str) -> Result<Digest, ContextError> {
        let entries: Vec<(&String, &Entry)> = self.subtree(rel).collect();
        let digests = self.file_digests(&entries)?;
        let mut h = Hasher::new();
        for ((path, entry), digest) in entries.iter().zip(digests) {
            let name = path.strip_prefix(rel).unwrap_or(path).trim_start_matches('/');
            let kind: &[u8] = match entry.kind {
                EntryKind::File => b"File",
                EntryKind::Dir => b"Dir",
                EntryKind::Symlink => b"Symlink",
                EntryKind::Other => b"Other",
            };
            let mut octal = [0u8; 11];
            h.update(name.as_bytes());
            h.update(b"\0");
            h.update(kind);
            h.update(b"\0");
            h.update(format_octal(entry.mode & 0o7777, &mut octal));
            h.update(b"\0");
            match (entry.kind, digest) {
                (EntryKind::File, Some(digest)) => {
                    let mut text = [0u8; 71];
                    h.update(format_digest(&digest, &mut text));
                }
                (EntryKind::Symlink, _) => h.update(entry.link_target.as_deref().unwrap_or("").as_bytes()),
                _ => {}
            }
            h.update(b"\n");
        }
        Ok(h.finish())
    }

    /// The content key of each regular file among `entries` (`None` for
    /// the other kinds), each asked of the stat cache once. The files it
    /// cannot vouch for are hashed on several threads when there are enough
    /// of them: a cold build of a large context is bound by this.
    fn file_digests(&self, entries: &[(&String, &Entry)]) -> Result<Vec<Option<Digest>>, ContextError> {
        let mut digests = Vec::with_capacity(entries.len());
        let mut misses = Vec::new();
        {
            let cache = self.cache.lock().expect("stat cache lock");
            for (i, (path, entry)) in entries.iter().enumerate() {
                let known = if entry.kind == EntryKind::File { cache.lookup(path, entry) } else { None };
                if entry.kind == EntryKind::File && known.is_none() {
                    misses.push(i);
                }
                digests.push(known);
            }
        }
        // Taken before any read: a change from here on gets a later ctime.
        let read_started_ns = racy::now_ns();
        let paths: Vec<&str> = misses.iter().map(|&i| entries[i].0.as_str()).collect();
        let hashed = self.hash_files(&paths)?;
        let mut cache = self.cache.lock().expect("stat cache lock");
        for (&i, digest) in misses.iter().zip(hashed) {
            let (path, entry) = entries[i];
            cache.record(path, entry, digest, read_started_ns);
            digests[i] = Some(digest);
        }
        Ok(digests)
    }

    /// The content keys of the files at `paths` (context-relative), in
    /// order, on several threads when there are enough of them: a cold
    /// build of a large context is bound by this.
    fn hash_files(&self, paths: &[&str]) -> Result<Vec<Digest>, ContextError> {
        let hash_one = |rel: &str| hash_file(&self.root.join(rel));
        if paths.len() < PARALLEL_HASH_MIN_FILES {
            return paths.iter().map(|rel| hash_one(rel)).collect();
        }
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let batches: Vec<Result<Vec<(usize, Digest)>, ContextError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(rel) = paths.get(n) else { return Ok(done) };
                            done.push((n, hash_one(rel)?));
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("hash worker panicked")).collect()
        });
        let mut digests = vec![Digest::from_bytes([0; 32]); paths.len()];
        for (n, digest) in batches.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten() {
            digests[n] = digest;
        }
        Ok(digests)
    }

    /// Reads again, now that they are no longer racy, the files this
    /// build hashed too soon after their last change to trust the digest
    /// (a fresh checkout or an editor's save just before the build): the
    /// build's steps ran meanwhile, so most have settled, and the cache
    /// saved next vouches for them. A file whose stat fields moved since is
    /// left out (the next build hashes it); so is one still within the
    /// clock's lag. Returns how many were read again.
    fn settle_racy(&self, cache: &mut CacheState) -> usize {
        let racy: Vec<(String, CachedDigest)> =
            cache.new.iter().filter(|(_, h)| !h.settled()).map(|(rel, h)| (rel.clone(), h.cached)).collect();
        if racy.is_empty() {
            return 0;
        }
        // Files changed in the last clock tick or two (a build without a
        // RUN right after a checkout): waiting out that lag once costs less
        // than reading them all on the next build.
        if let Some(latest) = racy.iter().map(|(_, c)| c.ctime_ns).max() {
            let wait_ns = latest + racy::clock_lag_ns() + 1 - racy::now_ns();
            if (1..=racy::clock_lag_ns()).contains(&wait_ns) {
                std::thread::sleep(std::time::Duration::from_nanos(wait_ns as u64));
            }
        }
        let read_started_ns = racy::now_ns();
        let unchanged: Vec<&(String, CachedDigest)> = racy
            .iter()
            .filter(|(rel, c)| {
                racy::settled(c.ctime_ns, read_started_ns)
                    && fs::symlink_metadata(self.root.join(rel)).is_ok_and(|m| stat_matches(c, &m))
            })
            .collect();
        let paths: Vec<&str> = unchanged.iter().map(|(rel, _)| rel.as_str()).collect();
        let Ok(digests) = self.hash_files(&paths) else { return 0 };
        for ((rel, cached), digest) in unchanged.iter().zip(digests) {
            // A digest that differs means the file changed without its stat
            // fields showing it: keep what it holds now, so the next build
            // sees the change.
            let cached = CachedDigest { digest, ..*cached };
            cache.new.insert(rel.clone(), Hashed { cached, read_started_ns });
        }
        paths.len()
    }

    /// Writes the stat cache back if anything new was hashed or files went
    /// away, with only settled entries (racy ones are read again first, see
    /// [`BuildContext::settle_racy`]).
    pub fn save_cache(&self) -> io::Result<()> {
        let Some(path) = &self.cache_path else { return Ok(()) };
        let mut cache = self.cache.lock().expect("stat cache lock");
        let reread = self.settle_racy(&mut cache);
        tracing::debug!(
            files_hashed = cache.files_hashed,
            bytes_hashed = cache.bytes_hashed,
            racy_files_reread = reread,
            "context stat cache"
        );
        // Every old entry is still valid when each names a file still in
        // the context: count those by walking the context (in order, cheap)
        // and asking the hash map, not by a tree lookup per old entry.
        let old_still_present = self
            .entries
            .iter()
            .filter(|(path, entry)| {
                entry.kind == EntryKind::File && cache.old.files.contains_key(path.as_str())
            })
            .count();
        if !cache.dirty && old_still_present == cache.old.files.len() {
            return Ok(());
        }
        let mut files: PathMap<CachedDigest> =
            cache.new.iter().filter(|(_, h)| h.settled()).map(|(rel, h)| (rel.clone(), h.cached)).collect();
        // Keep entries of files not used by this build but still present.
        for (k, v) in &cache.old.files {
            if !cache.new.contains_key(k) && self.entries.get(k).is_some_and(|e| e.kind == EntryKind::File) {
                files.insert(k.clone(), *v);
            }
        }
        StatCache { files }.save(path)
    }
}

/// Whether `meta` (an lstat now) shows the stat fields `cached` was taken under.
fn stat_matches(cached: &CachedDigest, meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    cached.size == meta.len()
        && cached.mtime_ns == meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
        && cached.ctime_ns == meta.ctime() * 1_000_000_000 + meta.ctime_nsec()
        && cached.ino == meta.ino()
}

/// The content key of a file: BLAKE3 of its bytes. Only rbuild reads
/// these (cache keys, explanations), so they need not be SHA-256, which
/// costs several times more per byte on machines without SHA extensions;
/// the layer digests images carry are still SHA-256.
fn hash_file(path: &Path) -> Result<Digest, ContextError> {
    let mut f = File::open(path).map_err(io_err("read", path))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = f.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Digest::from_bytes(*h.finalize().as_bytes()))
}

/// A stat cache smaller than this (about 1,000 files) is read on the
/// walking thread: a thread costs more than reading it.
const STAT_CACHE_INLINE_BYTES: u64 = 64 << 10;

/// Files hashed in parallel beyond this many: below it a thread costs more
/// than it saves.
const PARALLEL_HASH_MIN_FILES: usize = 8;

/// `value` in octal without leading zeros (as `{:o}`), written into `buf`.
fn format_octal(mut value: u32, buf: &mut [u8; 11]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (value & 7) as u8;
        value >>= 3;
        if value == 0 {
            return &buf[start..];
        }
    }
}

/// `blake3:<hex>`, a file's content key as tree digests spell it, written into `buf`.
fn format_digest<'a>(digest: &Digest, buf: &'a mut [u8; 71]) -> &'a [u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf[..7].copy_from_slice(b"blake3:");
    for (i, byte) in digest.as_bytes().iter().enumerate() {
        buf[7 + 2 * i] = HEX[usize::from(byte >> 4)];
        buf[8 + 2 * i] = HEX[usize::from(byte & 15)];
    }
    &buf[..]
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
        // Beside the context, one per test (tests run in parallel).
        let cache = tmp.path().with_extension("statcache");
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

    /// Waits (without a deadline: the clock moves on) until a digest read
    /// from now on counts as settled for `path`'s current ctime.
    fn wait_until_settled(path: &Path) {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::symlink_metadata(path).unwrap();
        let ctime = meta.ctime() * 1_000_000_000 + meta.ctime_nsec();
        while !racy::settled(ctime, racy::now_ns()) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn reopen(t: &tempfile::TempDir, ctx: &BuildContext) -> BuildContext {
        BuildContext::open(t.path(), &DockerIgnore::empty(), ctx.cache_path.clone()).unwrap()
    }

    fn files_hashed(ctx: &BuildContext) -> usize {
        ctx.cache.lock().unwrap().files_hashed
    }

    #[test]
    fn digests_follow_content_not_mtime_and_the_cache_avoids_rereads() {
        let (t, ctx) = ctx_with(&[("src/a.txt", "one"), ("src/b.txt", "two")], "");
        wait_until_settled(&t.path().join("src/b.txt"));
        let d1 = ctx.tree_digest("src").unwrap();
        assert_eq!(ctx.bytes_hashed(), 6);
        ctx.save_cache().unwrap();
        let again = reopen(&t, &ctx);
        assert_eq!(again.tree_digest("src").unwrap(), d1);
        assert_eq!(again.bytes_hashed(), 0, "an unchanged file must not be read again");
        fs::write(t.path().join("src/b.txt"), "TWO").unwrap();
        let changed = reopen(&t, &ctx);
        assert_ne!(changed.tree_digest("src").unwrap(), d1);
        assert_eq!(changed.bytes_hashed(), 3);
        let _ = fs::remove_file(ctx.cache_path.as_ref().unwrap());
    }

    /// Makes the digest of `rel` taken in this build look as if its read
    /// had started in the same clock tick as the file's last change (what
    /// a build right after a checkout or a save sees), whatever the time
    /// really was.
    fn as_if_read_in_the_same_tick(ctx: &BuildContext, rel: &str) {
        let mut cache = ctx.cache.lock().unwrap();
        let hashed = cache.new.get_mut(rel).unwrap();
        hashed.read_started_ns = hashed.cached.ctime_ns;
    }

    #[test]
    fn a_digest_read_in_the_files_last_tick_is_read_again_before_it_is_saved() {
        let (t, ctx) = ctx_with(&[("src/a.txt", "one"), ("src/b.txt", "two")], "");
        let d1 = ctx.tree_digest("src").unwrap();
        as_if_read_in_the_same_tick(&ctx, "src/a.txt");
        as_if_read_in_the_same_tick(&ctx, "src/b.txt");
        wait_until_settled(&t.path().join("src/a.txt"));
        wait_until_settled(&t.path().join("src/b.txt"));
        // Unchanged: read once more at the end of the build, then trusted,
        // so the first rebuild after a fresh checkout reads nothing.
        ctx.save_cache().unwrap();
        assert_eq!(files_hashed(&ctx), 2);
        let again = reopen(&t, &ctx);
        assert_eq!(again.tree_digest("src").unwrap(), d1);
        assert_eq!(files_hashed(&again), 0, "settled at the end of the first build");
        let _ = fs::remove_file(ctx.cache_path.as_ref().unwrap());
    }

    #[test]
    fn a_same_size_edit_in_the_tick_of_the_read_is_never_missed() {
        let (t, ctx) = ctx_with(&[("src/a.txt", "one"), ("src/b.txt", "two")], "");
        let d1 = ctx.tree_digest("src").unwrap();
        // Edited during the build, same size. With a coarse clock (kernels
        // before 6.13, or a filesystem without fine-grained ctimes) all its
        // stat fields may stay as the walk saw them: make it so here.
        let file = t.path().join("src/b.txt");
        fs::write(&file, "TWO").unwrap();
        wait_until_settled(&file);
        {
            use std::os::unix::fs::MetadataExt;
            let meta = fs::symlink_metadata(&file).unwrap();
            let mut cache = ctx.cache.lock().unwrap();
            let hashed = cache.new.get_mut("src/b.txt").unwrap();
            hashed.cached.ctime_ns = meta.ctime() * 1_000_000_000 + meta.ctime_nsec();
            hashed.cached.mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
            hashed.cached.ino = meta.ino();
            hashed.read_started_ns = hashed.cached.ctime_ns;
        }
        ctx.save_cache().unwrap();
        let next = reopen(&t, &ctx);
        let d2 = next.tree_digest("src").unwrap();
        assert_ne!(d2, d1, "the edit must be seen");
        let (_fresh_dir, fresh) = ctx_with(&[("src/a.txt", "one"), ("src/b.txt", "TWO")], "");
        assert_eq!(d2, fresh.tree_digest("src").unwrap(), "the digest is the new content's");
        let _ = fs::remove_file(ctx.cache_path.as_ref().unwrap());
        let _ = fs::remove_file(fresh.cache_path.as_ref().unwrap());
    }

    #[test]
    fn racy_digests_are_not_saved_when_they_cannot_be_read_again() {
        let (t, ctx) = ctx_with(&[("src/a.txt", "one")], "");
        ctx.tree_digest("src").unwrap();
        as_if_read_in_the_same_tick(&ctx, "src/a.txt");
        // Replaced by another file of the same size before the build ends:
        // the digest is of a file no longer there.
        fs::write(t.path().join("src/new"), "ONE").unwrap();
        fs::rename(t.path().join("src/new"), t.path().join("src/a.txt")).unwrap();
        ctx.save_cache().unwrap();
        assert!(StatCache::load(ctx.cache_path.as_ref().unwrap()).files.is_empty());
        let next = reopen(&t, &ctx);
        next.tree_digest("src").unwrap();
        assert_eq!(files_hashed(&next), 1);
        let _ = fs::remove_file(ctx.cache_path.as_ref().unwrap());
    }

    #[test]
    fn tree_digest_keeps_its_byte_format() {
        // Cache keys of existing stores depend on these exact bytes.
        let (t, ctx) = ctx_with(&[("d/a.txt", "one"), ("d/sub/b", "two")], "");
        std::os::unix::fs::symlink("a.txt", t.path().join("d/link")).unwrap();
        let ctx = BuildContext::open(t.path(), &DockerIgnore::empty(), ctx.cache_path.clone()).unwrap();
        let mut expected = String::new();
        for (path, entry) in ctx.subtree("d") {
            let name = path.strip_prefix("d").unwrap().trim_start_matches('/');
            let content = match entry.kind {
                EntryKind::File => {
                    format!("blake3:{}", blake3::hash(&fs::read(t.path().join(path)).unwrap()).to_hex())
                }
                EntryKind::Symlink => entry.link_target.clone().unwrap(),
                _ => String::new(),
            };
            expected.push_str(&format!("{name}\0{:?}\0{:o}\0{content}\n", entry.kind, entry.mode & 0o7777));
        }
        assert_eq!(ctx.tree_digest("d").unwrap(), Digest::of(expected.as_bytes()));
    }

    #[test]
    fn the_parallel_walk_finds_what_a_plain_walk_finds() {
        let mut files = Vec::new();
        for d in 0..12 {
            for f in 0..15 {
                files.push((format!("dir{d}/sub{}/f{f}.txt", f % 3), format!("{d}{f}")));
            }
        }
        files.push(("skip/inner/keep.me".into(), "k".into()));
        files.push(("skip/other".into(), "o".into()));
        let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (t, ctx) = ctx_with(&refs, "skip\n!skip/inner/keep.me\ndir3\n**/f7.txt\n");
        let ignore = DockerIgnore::parse("skip\n!skip/inner/keep.me\ndir3\n**/f7.txt\n").unwrap();
        let expected: Vec<String> = walkdir::WalkDir::new(t.path())
            .min_depth(1)
            .into_iter()
            .map(|e| e.unwrap().path().strip_prefix(t.path()).unwrap().to_str().unwrap().to_string())
            .filter(|rel| !ignore.is_excluded(rel))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let found: Vec<String> = ctx.subtree("").map(|(p, _)| p.clone()).collect();
        assert_eq!(found, expected);
        assert!(ctx.entry("skip/inner/keep.me").is_some());
        assert!(ctx.entry("skip/other").is_none());
        assert!(ctx.entry("dir4/sub1/f7.txt").is_none());
    }
}
