//! The stat cache on disk: for each context file the stat fields it had
//! when it was last hashed, and the digest. Like git's index it lets a
//! rebuild with nothing changed stat every file and read none.
//!
//! It holds only settled entries (see [`super::racy`]): a digest taken so
//! soon after the file's last change that a further change could keep its
//! stat fields is never written here, so every entry is trusted while its
//! fields match.
//!
//! The format is a small binary one, because a no-op rebuild of a large
//! context reads and (when anything changed) writes it whole: `RBSTAT4\n`,
//! the entry count (u32 LE),
//! then per entry the path length (u32 LE) and bytes, size (u64), mtime
//! and ctime in ns (i64), inode (u64) and the 32-byte BLAKE3 content key. A file that
//! cannot be read as that (missing, older format, truncated) is an empty
//! cache: every file is hashed again, which is always correct. (`RBSTAT3`
//! caches also held racy entries, checked against the time the cache was
//! written, which could be long after the file was read: they are not read.)

use std::collections::HashMap;
use std::io;

/// Context paths to what is known of them. FxHash instead of SipHash: the
/// keys are our own paths, not attacker-chosen, and a no-op rebuild of a
/// large context looks every file up here.
pub type PathMap<V> = HashMap<String, V, rustc_hash::FxBuildHasher>;
use std::path::Path;

use rbuild_oci::digest::Digest;

const MAGIC: &[u8; 8] = b"RBSTAT4\n";
const FIXED_ENTRY_BYTES: usize = 8 + 8 + 8 + 8 + 32;

/// The stat fields a cached digest was computed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedDigest {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub digest: Digest,
}

#[derive(Debug, Default)]
pub struct StatCache {
    pub files: PathMap<CachedDigest>,
}

impl StatCache {
    /// Reads the cache at `path`; anything unreadable is an empty cache.
    pub fn load(path: &Path) -> StatCache {
        std::fs::read(path).ok().and_then(|bytes| StatCache::decode(&bytes)).unwrap_or_default()
    }

    /// Writes the cache atomically (a reader sees the old or the new file).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        rbuild_cache::store::write_file(path, &self.encode())
    }

    pub fn encode(&self) -> Vec<u8> {
        let paths: usize = self.files.keys().map(String::len).sum();
        let mut out = Vec::with_capacity(12 + paths + self.files.len() * (4 + FIXED_ENTRY_BYTES));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.files.len() as u32).to_le_bytes());
        for (path, entry) in &self.files {
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(path.as_bytes());
            out.extend_from_slice(&entry.size.to_le_bytes());
            out.extend_from_slice(&entry.mtime_ns.to_le_bytes());
            out.extend_from_slice(&entry.ctime_ns.to_le_bytes());
            out.extend_from_slice(&entry.ino.to_le_bytes());
            out.extend_from_slice(entry.digest.as_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<StatCache> {
        let mut input = Reader(bytes);
        if input.take(MAGIC.len())? != MAGIC {
            return None;
        }
        let count = u32::from_le_bytes(input.array()?) as usize;
        // Bound the allocation by what the bytes can hold, not by the count.
        let mut files = PathMap::with_capacity_and_hasher(
            count.min(bytes.len() / (4 + FIXED_ENTRY_BYTES)),
            Default::default(),
        );
        for _ in 0..count {
            let len = u32::from_le_bytes(input.array()?) as usize;
            let path = std::str::from_utf8(input.take(len)?).ok()?.to_string();
            let entry = CachedDigest {
                size: u64::from_le_bytes(input.array()?),
                mtime_ns: i64::from_le_bytes(input.array()?),
                ctime_ns: i64::from_le_bytes(input.array()?),
                ino: u64::from_le_bytes(input.array()?),
                digest: Digest::from_bytes(input.array()?),
            };
            files.insert(path, entry);
        }
        input.0.is_empty().then_some(StatCache { files })
    }
}

/// A cursor over the encoded bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StatCache {
        let mut files = PathMap::default();
        for (i, name) in ["a", "dir/b", "ünïcode/ç"].iter().enumerate() {
            let n = i as u64;
            files.insert(
                name.to_string(),
                CachedDigest {
                    size: 10 + n,
                    mtime_ns: -5 + i as i64,
                    ctime_ns: 1_700_000_000_000_000_000 + i as i64,
                    ino: 99 + n,
                    digest: Digest::of(name.as_bytes()),
                },
            );
        }
        StatCache { files }
    }

    #[test]
    fn round_trips_every_field() {
        let cache = sample();
        let decoded = StatCache::decode(&cache.encode()).expect("decodes");
        assert_eq!(decoded.files, cache.files);
    }

    #[test]
    fn damaged_or_foreign_files_are_an_empty_cache() {
        let bytes = sample().encode();
        for cut in [0, 7, 8, 11, bytes.len() - 1] {
            assert!(StatCache::decode(&bytes[..cut]).is_none(), "truncated at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(StatCache::decode(&trailing).is_none());
        assert!(StatCache::decode(br#"{"written_ns":1,"files":{}}"#).is_none());
        let mut older = bytes.clone();
        older[..8].copy_from_slice(b"RBSTAT3\n");
        assert!(StatCache::decode(&older).is_none(), "RBSTAT3 held racy entries");
        let mut huge_count = bytes[..8].to_vec();
        huge_count.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(StatCache::decode(&huge_count).is_none());
        let dir = tempfile::tempdir().unwrap();
        assert!(StatCache::load(&dir.path().join("absent")).files.is_empty());
    }
}
