//! Pulling an image into the store.
//!
//! 1. The manifest, by tag or digest; for a manifest list or image index,
//!    the entry for this machine's platform (or an error naming the
//!    platforms there are).
//! 2. The config, checked against its digest; it must name one diffID per
//!    layer.
//! 3. The layers, several at once: each blob streams into the store's blob
//!    area, which refuses it unless it hashes to the manifest's digest; it
//!    is then unpacked as a layer, which is refused unless its
//!    uncompressed content hashes to the config's diffID. Layers already
//!    in the store are not downloaded.
//! 4. Only then the image record and the tag appear.
//!
//! So a failed pull adds no image and moves no tag; at most it leaves
//! complete, verified layers that no image uses yet (garbage collection
//! takes them). The compressed blob is dropped once unpacked; its digest
//! is remembered ([`super::known_blobs`]) so pushing the layer back costs
//! nothing.

use super::error::{RegistryError, Result};
use super::known_blobs::remember_blob;
use super::manifest::{self, Descriptor, Parsed};
use super::progress::short_id;
use super::session::Session;
use super::transfers::try_map_bounded;
use rbuild_cache::store::Store;
use rbuild_oci::config::ImageConfig;
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::IoContext;
use rbuild_oci::platform::Platform;
use rbuild_oci::reference::Reference;

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOutcome {
    pub id: Digest,
    /// `registry/repo@sha256:…`: the digest the registry knows the image by
    /// (the list's digest when the tag named a list, as Docker records it).
    pub repo_digest: String,
    pub layers_downloaded: usize,
    pub layers_present: usize,
    /// The image the tag pointed at before, when the pull moved it.
    pub replaced: Option<Digest>,
}

/// The digest the registry currently gives `reference` (its manifest or
/// list), without downloading anything else.
pub fn remote_digest(session: &Session, reference: &Reference) -> Result<Digest> {
    Ok(session.fetch_manifest(reference)?.1)
}

/// Pulls `reference` for `platform` into the store and tags it (when it
/// names a tag). A pull for another platform than the host's records the
/// image in the store's platform index under the name, and moves the tag
/// only when the name had none.
pub fn pull(
    session: &Session,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
) -> Result<PullOutcome> {
    let _gc = store.gc_guard(false)?;
    let progress = session.progress();
    let shown = reference.familiar();
    let (bytes, top_digest) = session.fetch_manifest(reference)?;
    let (config_desc, layer_descs) = match manifest::parse(&bytes, &reference.registry, &shown)? {
        Parsed::Image { config, layers } => (config, layers),
        Parsed::List(entries) => {
            let entry = manifest::choose_platform(&entries, &shown, platform)?;
            let child = Reference { tag: None, digest: Some(entry.sha256()?), ..reference.clone() };
            let (bytes, _) = session.fetch_manifest(&child)?;
            match manifest::parse(&bytes, &reference.registry, &shown)? {
                Parsed::Image { config, layers } => (config, layers),
                Parsed::List(_) => {
                    return Err(RegistryError::Unsupported(format!(
                        "{shown}: a manifest list names another list for this platform"
                    )));
                }
            }
        }
    };
    progress.note(&format!(
        "{}: pulling from {}",
        reference.tag.as_deref().unwrap_or("digest"),
        reference.name()
    ));
    let config_digest = config_desc.sha256()?;
    let config_json = session.fetch_small_blob(reference, &config_digest, config_desc.size)?;
    let config = ImageConfig::from_json(&config_json).map_err(|e| RegistryError::Protocol {
        registry: reference.registry.clone(),
        message: format!("the config of {shown} is not a valid image config: {e}"),
    })?;
    if !config.architecture.is_empty()
        && !platform.matches(&config.os, &config.architecture, config.variant.as_deref())
    {
        return Err(RegistryError::NoPlatform {
            reference: shown,
            wanted: platform.spec(),
            available: format!("{}/{}", config.os, config.architecture),
        });
    }
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != layer_descs.len() {
        return Err(RegistryError::Protocol {
            registry: reference.registry.clone(),
            message: format!(
                "{shown}: the manifest lists {} layers but the config names {} diffIDs",
                layer_descs.len(),
                diff_ids.len()
            ),
        });
    }
    let counts = fetch_layers(session, store, reference, &layer_descs, diff_ids)?;
    let id = store.put_image(&config_json, None)?;
    let repo_digest = format!("{}@{top_digest}", reference.name());
    if let Some(mut record) = store.image_record(&id)?
        && !record.repo_digests.contains(&repo_digest)
    {
        record.repo_digests.retain(|d| !d.starts_with(&format!("{}@", reference.name())));
        record.repo_digests.push(repo_digest.clone());
        store.update_image_record(&record)?;
    }
    let replaced = match &reference.tag {
        Some(_) => tag_for_platform(
            store,
            &Reference { digest: None, ..reference.clone() }.canonical(),
            id,
            platform,
        )?,
        None => None,
    };
    progress.note(&format!("Digest: {top_digest}"));
    Ok(PullOutcome { id, repo_digest, layers_downloaded: counts.0, layers_present: counts.1, replaced })
}

/// Points `name` at `id` pulled for `platform`: the host's image takes the
/// tag; another platform's goes into the platform index (taking the tag
/// only when the name had none). Returns the image the tag pointed at
/// before, when it moved.
fn tag_for_platform(store: &Store, name: &str, id: Digest, platform: &Platform) -> Result<Option<Digest>> {
    let host = *platform == Platform::host();
    store.update_platform_images(|m| {
        // A name with platforms recorded keeps every platform's image.
        if !host || m.contains_key(name) {
            m.entry(name.to_string()).or_default().insert(platform.spec(), id);
        }
    })?;
    let moved = store.update_refs(|refs| match refs.refs.get(name) {
        Some(_) if !host => None,
        _ => refs.refs.insert(name.to_string(), id),
    })?;
    Ok(moved.filter(|old| *old != id))
}

/// Downloads the missing layers, `parallel_transfers` at a time. Returns
/// (downloaded, already present).
fn fetch_layers(
    session: &Session,
    store: &Store,
    reference: &Reference,
    blobs: &[Descriptor],
    diff_ids: &[Digest],
) -> Result<(usize, usize)> {
    let workers = session.settings().parallel_transfers;
    let fetched = try_map_bounded(blobs.len(), workers, |i| {
        fetch_layer(session, store, reference, &blobs[i], &diff_ids[i])
    })?;
    let downloaded = fetched.iter().filter(|was_fetched| **was_fetched).count();
    Ok((downloaded, blobs.len() - downloaded))
}

/// One layer; false when it was already in the store.
pub(crate) fn fetch_layer(
    session: &Session,
    store: &Store,
    reference: &Reference,
    blob: &Descriptor,
    diff_id: &Digest,
) -> Result<bool> {
    let progress = session.progress();
    let blob_digest = blob.sha256()?;
    let item = short_id(&blob_digest);
    if store.layer(diff_id)?.is_some() {
        let _ =
            remember_blob(store, diff_id, blob_digest, blob.size, &blob.media_type, Some(&reference.name()));
        progress.end(&item, "Already exists");
        return Ok(false);
    }
    progress.begin(&item, "Downloading", Some(blob.size));
    let had_blob = store.has_blob(&blob_digest);
    let mut attempt = 1;
    let stored = loop {
        let mut reader = session.open_blob(reference, &blob_digest, blob.size, Some(&item))?;
        let outcome = store.put_blob_from(&mut reader, Some(&blob_digest));
        let failed_in_transfer =
            outcome.is_err() && matches!(reader.failure, Some(RegistryError::Unreachable { .. }));
        match reader.check(outcome) {
            Ok(stored) => break stored,
            // A connection that broke mid-blob is worth another try; a
            // wrong digest is not.
            Err(_) if failed_in_transfer && attempt < 3 => {
                attempt += 1;
                progress.note(&format!("{item}: download interrupted, retrying"));
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Err(RegistryError::Store(rbuild_cache::store::StoreError::Corrupt { message, .. })) => {
                progress.end(&item, "Failed");
                return Err(RegistryError::DigestMismatch {
                    registry: reference.registry.clone(),
                    what: format!("layer blob of {}", reference.familiar()),
                    expected: blob_digest.to_string(),
                    actual: message,
                });
            }
            Err(e) => {
                progress.end(&item, "Failed");
                return Err(e);
            }
        }
    };
    progress.begin(&item, "Extracting", None);
    let blob_path = store.blob_path(&stored.0);
    let committed = std::fs::File::open(&blob_path)
        .ctx("open", &blob_path)
        .map_err(RegistryError::from)
        .and_then(|mut file| Ok(store.commit_tar(&mut file, Some(diff_id))?));
    // The uncompressed layer is what the store keeps; the compressed copy
    // would only double the disk use.
    if !had_blob {
        let _ = store.remove_blob(&blob_digest);
    }
    if let Err(e) = committed {
        progress.end(&item, "Failed");
        return Err(e);
    }
    let _ = remember_blob(store, diff_id, blob_digest, stored.1, &blob.media_type, Some(&reference.name()));
    progress.end(&item, "Pull complete");
    Ok(true)
}
