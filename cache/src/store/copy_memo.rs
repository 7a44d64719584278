//! The COPY memo, `state/copy-memo/<key hex>`: which layer a COPY from the
//! build context made, by a cheap key of what it wrote (its *description
//! key*, computed by the builder from paths, metadata and the context's
//! content keys). A later COPY with the same key reuses that layer without
//! reading a source file. Each entry holds the layer's diffID as text.
//!
//! The memo is only a shortcut: an entry whose layer is gone, or that
//! cannot be read, is a miss (the step is then written for real), and
//! failing to remember only costs a write later. Garbage collection drops
//! the entries whose layer it leaves no more (see
//! [`Store::forget_copies_except`]).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::PathBuf;

use rbuild_oci::digest::Digest;

use super::{Store, write_file};

/// A description key: 32 bytes that stand for everything a COPY's layer
/// tar is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyKey([u8; 32]);

impl CopyKey {
    pub fn from_bytes(bytes: [u8; 32]) -> CopyKey {
        CopyKey(bytes)
    }

    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Store {
    fn copy_memo_dir(&self) -> PathBuf {
        self.state_path("copy-memo")
    }

    /// The diffID remembered for `key`, if any (one open and read). The
    /// caller still asks whether that layer is in the store.
    pub fn remembered_copy(&self, key: &CopyKey) -> Option<Digest> {
        let text = fs::read_to_string(self.copy_memo_dir().join(key.hex())).ok()?;
        Digest::parse(text.trim()).ok()
    }

    /// Remembers that the COPY described by `key` made layer `diff_id`
    /// (atomically: a reader sees no entry or the whole one). A caller may
    /// ignore a failure: the next build then writes the step again.
    pub fn remember_copy(&self, key: &CopyKey, diff_id: &Digest) -> io::Result<()> {
        let dir = self.copy_memo_dir();
        fs::create_dir_all(&dir)?;
        write_file(&dir.join(key.hex()), diff_id.to_string().as_bytes())
    }

    /// Drops every memo entry whose layer is not in `kept` (or that does
    /// not parse). For garbage collection, which holds the store's gc lock
    /// exclusively, so no build adds entries meanwhile. Returns how many
    /// went.
    pub fn forget_copies_except(&self, kept: &BTreeSet<Digest>) -> usize {
        let Ok(entries) = fs::read_dir(self.copy_memo_dir()) else { return 0 };
        let mut removed = 0;
        for e in entries.flatten() {
            let keep = fs::read_to_string(e.path())
                .ok()
                .and_then(|t| Digest::parse(t.trim()).ok())
                .is_some_and(|d| kept.contains(&d));
            if !keep && fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_copy_reads_back_until_its_layer_is_forgotten() {
        let (_dir, store) = crate::store::temp_store();
        let (a, b) = (CopyKey::from_bytes([1; 32]), CopyKey::from_bytes([2; 32]));
        let (la, lb) = (Digest::of(b"layer a"), Digest::of(b"layer b"));
        assert_eq!(store.remembered_copy(&a), None, "nothing remembered yet");
        store.remember_copy(&a, &la).unwrap();
        store.remember_copy(&b, &lb).unwrap();
        assert_eq!(store.remembered_copy(&a), Some(la));
        assert_eq!(store.remembered_copy(&b), Some(lb));

        // A damaged entry is a miss, and collection drops it.
        let damaged = CopyKey::from_bytes([3; 32]);
        fs::write(store.copy_memo_dir().join(damaged.hex()), "not a digest").unwrap();
        assert_eq!(store.remembered_copy(&damaged), None);

        assert_eq!(store.forget_copies_except(&BTreeSet::from([la])), 2);
        assert_eq!(store.remembered_copy(&a), Some(la), "its layer is kept");
        assert_eq!(store.remembered_copy(&b), None, "its layer went");
        assert!(!store.copy_memo_dir().join(damaged.hex()).exists());
    }
}
