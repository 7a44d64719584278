//! The build cache index: `cache/<key hex>.json` maps a step's cache key to
//! its result (the layer it produced, if any) and records the inputs the key
//! was made from, so a later miss can be explained.

use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use crate::store::{Result, Store, write_file};
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::{IoContext, IoError};

/// One input that went into a key: what it is, its name, and its digest or value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInput {
    pub kind: String,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub key: Digest,
    /// The layer the step produced; `None` when it changed no file.
    pub layer: Option<Digest>,
    /// Seconds since the epoch when the entry was made.
    pub created: i64,
    /// The instruction as written, for `builder prune`/debugging.
    pub description: String,
    #[serde(default)]
    pub inputs: Vec<KeyInput>,
    /// How long the step took to run, in milliseconds (0: not known, as in
    /// entries made by older versions or imported without it). A later hit
    /// reports it as the time the cache saved.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duration_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Store {
    fn cache_path(&self, key: &Digest) -> std::path::PathBuf {
        self.root().join("cache").join(format!("{}.json", key.hex()))
    }

    /// The cached result of a step, if its layer is still in the store.
    pub fn cache_lookup(&self, key: &Digest) -> Result<Option<CacheRecord>> {
        let path = self.cache_path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(IoError::new("read", path, e).into()),
        };
        let Ok(record) = serde_json::from_slice::<CacheRecord>(&bytes) else {
            // A damaged entry is a miss, not a failed build.
            return Ok(None);
        };
        if let Some(layer) = &record.layer
            && self.layer(layer)?.is_none()
        {
            return Ok(None);
        }
        // Mark the entry used, for `builder prune --keep-storage` (least
        // recently used goes first). Failing to is harmless.
        if let Ok(f) = fs::File::options().write(true).open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        Ok(Some(record))
    }

    pub fn cache_insert(&self, record: &CacheRecord) -> Result<()> {
        let path = self.cache_path(&record.key);
        write_file(&path, &serde_json::to_vec(record).expect("cache record serializes"))
            .ctx("write", path)?;
        Ok(())
    }

    /// Every cache entry (for prune and `system df`).
    pub fn cache_entries(&self) -> Result<Vec<CacheRecord>> {
        let dir = self.root().join("cache");
        let mut out = Vec::new();
        let entries = fs::read_dir(&dir).ctx("list", &dir)?;
        for e in entries.flatten() {
            if let Ok(bytes) = fs::read(e.path())
                && let Ok(rec) = serde_json::from_slice::<CacheRecord>(&bytes)
            {
                out.push(rec);
            }
        }
        Ok(out)
    }

    pub fn cache_remove(&self, key: &Digest) -> Result<()> {
        let path = self.cache_path(key);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(IoError::new("remove", path, e).into()),
            _ => Ok(()),
        }
    }
}
