//! Tags: `refs.json` maps a canonical reference (`docker.io/library/app:v1`)
//! to an image ID. It is small, read whole, and replaced atomically under an
//! exclusive lock so concurrent `tag`/`rmi`/builds never lose an update.

use std::collections::BTreeMap;
use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, write_file};
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::{IoContext, IoError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefMap {
    pub refs: BTreeMap<String, Digest>,
}

impl RefMap {
    /// The tags pointing at an image, sorted.
    pub fn tags_of(&self, id: &Digest) -> Vec<String> {
        self.refs.iter().filter(|(_, v)| *v == id).map(|(k, _)| k.clone()).collect()
    }
}

impl Store {
    /// A consistent snapshot of all tags.
    pub fn refs(&self) -> Result<RefMap> {
        let path = self.root.join("refs.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::CorruptJson {
                what: "tag index",
                path,
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(RefMap::default()),
            Err(e) => Err(IoError::new("read", path, e).into()),
        }
    }

    /// Applies `change` to the tags atomically with respect to other
    /// processes, and returns what `change` returned.
    pub fn update_refs<T>(&self, change: impl FnOnce(&mut RefMap) -> T) -> Result<T> {
        let _lock = self.lock_file("refs.lock", true)?;
        let mut map = self.refs()?;
        let before = map.clone();
        let out = change(&mut map);
        if map != before {
            let path = self.root.join("refs.json");
            let json = serde_json::to_vec_pretty(&map).expect("refs serialize");
            write_file(&path, &json).ctx("write", &path)?;
        }
        Ok(out)
    }

    /// Points `name` at `id`, returning the image it pointed at before.
    pub fn tag(&self, name: &str, id: &Digest) -> Result<Option<Digest>> {
        self.update_refs(|m| m.refs.insert(name.to_string(), *id))
    }
}
