//! What is in the store and how much room it takes, seen the way `docker
//! images`, `docker history` and `docker system df` see it.
//!
//! * [`Catalog`]: one consistent reading of every image record, its config
//!   and its tags, with the relations the image commands need (children of
//!   an image, dangling images, which layers tagged images use).
//! * [`LayerSizes`]: a layer's size as Docker reports it. Docker measures a
//!   layer by walking its unpacked diff: every regular file's length (a file
//!   with several hard links once) plus every symlink's target length. The
//!   same figure comes from the layer tar's headers, so that is what we
//!   read; it is remembered (`Store::remember_layer_size`) because a
//!   large layer's headers take a moment to walk.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;

use crate::store::{ImageRecord, LayerRef, Result, Store};
use rbuild_oci::config::ImageConfig;
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::IoError;
use rbuild_oci::timefmt::Timestamp;

/// One image of the store as the listing commands need it.
#[derive(Debug, Clone)]
pub struct CatalogImage {
    pub record: ImageRecord,
    /// The config blob's bytes: `inspect` reads fields our typed config
    /// does not keep (`comment`, `docker_version`, …).
    pub config_json: Vec<u8>,
    pub config: ImageConfig,
    /// Tags pointing at the image, canonical (`docker.io/library/app:v1`), sorted.
    pub tags: Vec<String>,
}

impl CatalogImage {
    pub fn id(&self) -> Digest {
        self.record.id
    }

    /// The config's `created`, or the Unix epoch when it has none (Docker
    /// shows Go's zero time there; nothing useful is lost).
    pub fn created(&self) -> Timestamp {
        self.config.created.as_deref().and_then(Timestamp::parse_rfc3339).unwrap_or(Timestamp::from_secs(0))
    }

    pub fn is_tagged(&self) -> bool {
        !self.tags.is_empty()
    }
}

/// A snapshot of every image and tag, read once.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Newest first (by when the image entered the store), then by ID.
    pub images: Vec<CatalogImage>,
    /// Every tag, canonical reference -> image ID.
    pub refs: BTreeMap<String, Digest>,
    /// Records whose config blob is missing or unreadable; `system check`
    /// reports them, the listings skip them.
    pub broken: Vec<(Digest, String)>,
}

impl Catalog {
    pub fn read(store: &Store) -> Result<Catalog> {
        let refs = store.refs()?.refs;
        let mut catalog = Catalog { refs, ..Catalog::default() };
        for record in store.list_images()? {
            match store.image_config(&record.id) {
                Ok((config_json, config)) => {
                    let tags = catalog
                        .refs
                        .iter()
                        .filter(|(_, id)| **id == record.id)
                        .map(|(t, _)| t.clone())
                        .collect();
                    catalog.images.push(CatalogImage { record, config_json, config, tags });
                }
                Err(e) => catalog.broken.push((record.id, e.to_string())),
            }
        }
        Ok(catalog)
    }

    pub fn get(&self, id: &Digest) -> Option<&CatalogImage> {
        self.images.iter().find(|i| i.id() == *id)
    }

    /// Images recorded as built on `id`.
    pub fn children(&self, id: &Digest) -> Vec<&CatalogImage> {
        self.images.iter().filter(|i| i.record.parent == Some(*id)).collect()
    }

    /// Docker's "dangling": no tag, and no image built on it (an untagged
    /// image that is some build's base is an intermediate image instead).
    pub fn is_dangling(&self, id: &Digest) -> bool {
        self.get(id).is_some_and(|i| !i.is_tagged()) && self.children(id).is_empty()
    }

    /// Whether some tagged image was built on `id`, directly or through
    /// untagged intermediate images.
    pub fn has_tagged_descendant(&self, id: &Digest) -> bool {
        let mut seen = BTreeSet::new();
        let mut todo = vec![*id];
        while let Some(current) = todo.pop() {
            for child in self.children(&current) {
                if child.is_tagged() {
                    return true;
                }
                if seen.insert(child.id()) {
                    todo.push(child.id());
                }
            }
        }
        false
    }

    /// Every layer some image of the store uses.
    pub fn layers_of_all_images(&self) -> BTreeSet<Digest> {
        self.images.iter().flat_map(|i| i.config.rootfs.diff_ids.iter().copied()).collect()
    }

    /// Every layer some tagged image uses.
    pub fn layers_of_tagged_images(&self) -> BTreeSet<Digest> {
        self.images
            .iter()
            .filter(|i| i.is_tagged())
            .flat_map(|i| i.config.rootfs.diff_ids.iter().copied())
            .collect()
    }
}

/// Layer sizes as Docker reports them, computed once per layer and kept.
#[derive(Debug)]
pub struct LayerSizes<'s> {
    store: &'s Store,
    known: BTreeMap<Digest, u64>,
}

impl<'s> LayerSizes<'s> {
    pub fn new(store: &'s Store) -> Self {
        LayerSizes { store, known: BTreeMap::new() }
    }

    /// The size of one layer; a layer missing from the store counts 0 (the
    /// listings still work on a damaged store; `system check` reports it).
    pub fn layer(&mut self, diff_id: &Digest) -> u64 {
        if let Some(size) = self.known.get(diff_id) {
            return *size;
        }
        let size = match self.store.layer(diff_id) {
            Ok(Some(layer)) => remembered_layer_size(self.store, &layer).unwrap_or(layer.meta.content_size),
            _ => 0,
        };
        self.known.insert(*diff_id, size);
        size
    }

    /// An image's size: the sum of its layers, as `docker images` shows.
    pub fn image(&mut self, config: &ImageConfig) -> u64 {
        config.rootfs.diff_ids.iter().map(|d| self.layer(d)).sum()
    }
}

/// The layer's Docker size as remembered, else from its tar (and then
/// remembered).
fn remembered_layer_size(store: &Store, layer: &LayerRef) -> Result<u64> {
    if let Some(size) = store.remembered_layer_size(&layer.meta.diff_id) {
        return Ok(size);
    }
    let size = docker_size_of_tar(&store.layer_tar(layer)?)?;
    store.remember_layer_size(&layer.meta.diff_id, size);
    Ok(size)
}

/// Regular-file bytes plus symlink target lengths, from the tar's headers
/// (seeking past file contents). Hard links carry no content of their own,
/// so each file is counted once, as Docker's directory walk does.
pub fn docker_size_of_tar(path: &std::path::Path) -> Result<u64> {
    let io_err = |source: io::Error| IoError::new("read layer", path, source);
    let file = File::open(path).map_err(io_err)?;
    let mut archive = tar::Archive::new(file);
    let mut total = 0u64;
    for entry in archive.entries_with_seek().map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => total += entry.size(),
            tar::EntryType::Symlink => {
                total += entry.link_name_bytes().map_or(0, |target| target.len() as u64);
            }
            _ => {}
        }
    }
    Ok(total)
}

/// Bytes taken by everything under `path` (files counted once per inode),
/// for cache-mount directories, which have no layer tar to read.
pub fn directory_size(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() || !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.len();
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_size_counts_files_once_and_symlink_targets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer.tar");
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        let mut add = |name: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
            let mut h = tar::Header::new_ustar();
            h.set_path(name).unwrap();
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if let Some(target) = link {
                h.set_link_name(target).unwrap();
            }
            h.set_cksum();
            builder.append(&h, data).unwrap();
        };
        add("dir/", tar::EntryType::Directory, b"", None);
        add("dir/file", tar::EntryType::Regular, &[7u8; 1000], None);
        add("dir/hard", tar::EntryType::Link, b"", Some("dir/file"));
        add("dir/sym", tar::EntryType::Symlink, b"", Some("file"));
        add("dir/.wh.gone", tar::EntryType::Regular, b"", None);
        builder.finish().unwrap();
        drop(builder);
        assert_eq!(docker_size_of_tar(&path).unwrap(), 1000 + 4);
    }
}
