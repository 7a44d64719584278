//! Multi-platform names: `platforms.json` maps a canonical reference to
//! the image for each platform it has (`linux/arm64` → image ID), an image
//! index in the store's terms. The tag itself (`refs.json`) points at one
//! of them (the host's when there is one), so single-platform commands see
//! an ordinary image; a build or pull for another platform finds its image
//! here. Changed under the tags' lock.

use std::collections::BTreeMap;
use std::fs;
use std::io;

use super::{Result, Store, StoreError, write_file};
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::{IoContext, IoError};

/// Reference → platform (`os/arch[/variant]`) → image ID.
pub type PlatformMap = BTreeMap<String, BTreeMap<String, Digest>>;

impl Store {
    fn platforms_path(&self) -> std::path::PathBuf {
        self.root.join("platforms.json")
    }

    /// Every multi-platform name and its images.
    pub fn platform_images(&self) -> Result<PlatformMap> {
        let path = self.platforms_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::CorruptJson {
                what: "platform index",
                path,
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(PlatformMap::new()),
            Err(e) => Err(IoError::new("read", path, e).into()),
        }
    }

    /// The images `name` has per platform (empty when it is not a
    /// multi-platform name).
    pub fn platforms_of(&self, name: &str) -> Result<BTreeMap<String, Digest>> {
        Ok(self.platform_images()?.remove(name).unwrap_or_default())
    }

    /// Changes the platform index under the tags' lock.
    pub fn update_platform_images<T>(&self, change: impl FnOnce(&mut PlatformMap) -> T) -> Result<T> {
        let _lock = self.lock_file("refs.lock", true)?;
        let mut map = self.platform_images()?;
        let before = map.clone();
        let out = change(&mut map);
        map.retain(|_, images| !images.is_empty());
        if map != before {
            let path = self.platforms_path();
            write_file(&path, &serde_json::to_vec_pretty(&map).expect("platforms serialize"))
                .ctx("write", &path)?;
        }
        Ok(out)
    }

    /// Every image some multi-platform name holds (they are tagged through
    /// it, not dangling).
    pub fn platform_image_ids(&self) -> Result<Vec<Digest>> {
        Ok(self.platform_images()?.into_values().flat_map(|m| m.into_values()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_an_image_per_platform_and_empty_names_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        store
            .update_platform_images(|m| {
                let e = m.entry("r/app:v1".into()).or_default();
                e.insert("linux/amd64".into(), a);
                e.insert("linux/arm64".into(), b);
            })
            .unwrap();
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.platforms_of("r/app:v1").unwrap().get("linux/arm64"), Some(&b));
        assert_eq!(reopened.platform_image_ids().unwrap().len(), 2);
        reopened.update_platform_images(|m| m.get_mut("r/app:v1").unwrap().clear()).unwrap();
        assert!(reopened.platform_images().unwrap().is_empty());
    }
}
