//! `docker load`: reading a docker-archive, an OCI archive or an OCI layout
//! directory into the store.
//!
//! Loading happens in three steps, and only the last one changes what the
//! store shows:
//!
//! 1. take every entry in ([`super::spool`]): layers are committed as they
//!    stream, the rest is kept for step 2;
//! 2. read the manifests (`manifest.json` first, as `docker load` does, else
//!    `index.json`) and check every digest: config bytes against the image
//!    ID or descriptor, blobs against their descriptors, layers against the
//!    config's `rootfs.diff_ids`;
//! 3. write the image records, then all tags in one atomic update. If a
//!    record cannot be written, the ones this load added are removed again.
//!
//! So a failed load leaves no new image and no new tag; at most it leaves
//! layers that no image uses yet, each complete and valid.

use std::io::Read;
use std::path::PathBuf;

use super::error::{ArchiveError, Result};
use super::spool::Contents;
use super::verify::VerifiedImage;
use super::{docker, oci};
use rbuild_cache::store::Store;
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;

/// Where an archive comes from.
pub enum LoadInput {
    /// A tar stream, plain, gzip or zstd; it is read once, front to back,
    /// so a pipe works.
    Reader(Box<dyn Read>),
    /// An unpacked archive: an OCI layout directory or an extracted
    /// docker-archive.
    Dir(PathBuf),
}

impl std::fmt::Debug for LoadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadInput::Reader(_) => f.write_str("LoadInput::Reader(..)"),
            LoadInput::Dir(dir) => f.debug_tuple("LoadInput::Dir").field(dir).finish(),
        }
    }
}

/// One image a load made available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: Digest,
    /// The tags now pointing at it, in the canonical form the store keeps
    /// (`docker.io/library/busybox:latest`); print them with
    /// `Reference::parse(t)?.familiar()`.
    pub tags: Vec<String>,
    /// Tags that pointed at another image before this load moved them here.
    pub replaced: Vec<ReplacedTag>,
}

/// A tag a load took from another image (Docker prints "renaming the old
/// one with ID … to empty string").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacedTag {
    pub tag: String,
    pub previous: Digest,
}

/// Loads every image of an archive. See the module documentation for what
/// is checked and what a failure leaves behind.
pub fn load(store: &Store, input: LoadInput) -> Result<Vec<LoadedImage>> {
    // Layers committed in step 1 belong to no image until step 3; the shared
    // gc lock keeps a concurrent garbage collection from taking them.
    let _gc = store.gc_guard(false)?;
    let contents = match input {
        LoadInput::Reader(reader) => Contents::from_stream(store, reader)?,
        LoadInput::Dir(dir) => Contents::from_dir(store, &dir)?,
    };
    let images = if contents.has(docker::MANIFEST_FILE) {
        docker::read_docker_manifest(store, &contents)?
    } else if contents.has(oci::INDEX_FILE) {
        oci::read_oci_index(store, &contents)?
    } else {
        return Err(ArchiveError::NoManifest);
    };
    publish(store, images)
}

/// Step 3: image records, then tags. Images listed more than once are
/// written once with all their tags.
fn publish(store: &Store, images: Vec<VerifiedImage>) -> Result<Vec<LoadedImage>> {
    let mut merged: Vec<VerifiedImage> = Vec::new();
    for image in images {
        match merged.iter_mut().find(|m| m.id == image.id) {
            Some(existing) => {
                for tag in image.tags {
                    if !existing.tags.contains(&tag) {
                        existing.tags.push(tag);
                    }
                }
                existing.parent = existing.parent.or(image.parent);
            }
            None => merged.push(image),
        }
    }
    let loaded_ids: Vec<Digest> = merged.iter().map(|m| m.id).collect();

    let mut added: Vec<(Digest, bool)> = Vec::new();
    let result = write_records_and_tags(store, &merged, &loaded_ids, &mut added);
    if result.is_err() {
        for (id, blob_was_there) in added {
            // Undo only what this load created.
            if blob_was_there {
                let _ = remove_image_record_only(store, &id);
            } else {
                let _ = store.remove_image(&id);
            }
        }
    }
    result
}

fn write_records_and_tags(
    store: &Store,
    images: &[VerifiedImage],
    loaded_ids: &[Digest],
    added: &mut Vec<(Digest, bool)>,
) -> Result<Vec<LoadedImage>> {
    for image in images {
        let record_was_there = store.image_record(&image.id)?.is_some();
        let blob_was_there = store.has_blob(&image.id);
        // A parent is kept only when it came in the same archive and its
        // layers are the start of this image's, as `docker load` checks.
        let parent = image.parent.filter(|p| {
            loaded_ids.contains(p)
                && images
                    .iter()
                    .find(|i| i.id == *p)
                    .is_some_and(|pi| image.diff_ids.starts_with(&pi.diff_ids))
        });
        let id = store.put_image(&image.config_json, parent)?;
        if !record_was_there {
            added.push((id, blob_was_there));
        }
        if id != image.id {
            return Err(ArchiveError::Unsupported(format!(
                "image {} was stored as {id} (internal error)",
                image.id
            )));
        }
    }
    let mut loaded: Vec<LoadedImage> = images
        .iter()
        .map(|i| LoadedImage {
            id: i.id,
            tags: i.tags.iter().map(Reference::canonical).collect(),
            replaced: Vec::new(),
        })
        .collect();
    store.update_refs(|refs| {
        for image in loaded.iter_mut() {
            for tag in &image.tags {
                if let Some(previous) = refs.refs.insert(tag.clone(), image.id)
                    && previous != image.id
                {
                    image.replaced.push(ReplacedTag { tag: tag.clone(), previous });
                }
            }
        }
    })?;
    // A tag given to two images of one archive ends on the last; don't
    // report it for the first.
    let final_refs = store.refs()?;
    for image in loaded.iter_mut() {
        image.tags.retain(|t| final_refs.refs.get(t) == Some(&image.id));
    }
    Ok(loaded)
}

/// Removes an image record but not its config blob, which was in the store
/// before this load. `Store` has no call for that, so this follows the
/// layout `store/mod.rs` documents (`images/<hex>.json`).
fn remove_image_record_only(store: &Store, id: &Digest) -> std::io::Result<()> {
    std::fs::remove_file(store.root().join("images").join(format!("{}.json", id.hex())))
}
