//! Pushing an image from the store.
//!
//! For each layer, cheapest first: a compressed form the registry already
//! has in this repository (one HEAD request); a cross-repository mount
//! from another repository of the same registry known to hold it; else
//! compress it with the parallel, deterministic gzip ([`gzip`]) into
//! scratch and upload it in one streamed request. Several layers move at
//! once. Then the config, then the OCI image manifest under the tag (for a
//! multi-platform image, each platform's manifest under its digest, then an
//! OCI image index, or a Docker manifest list, under the tag). The
//! compressed digest of every layer is remembered, so the next push of the
//! same layer is a HEAD request.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};

use super::error::{RegistryError, Result};
use super::known_blobs::{KnownBlob, known_blobs, remember_blob};
use super::manifest::{
    self, DOCKER_LIST, Descriptor, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, PlatformJson,
};
use super::progress::short_id;
use super::session::Session;
use super::transfers::try_map_bounded;
use rbuild_cache::store::Store;
use rbuild_oci::compress::parallel_gzip as gzip;
use rbuild_oci::digest::{Digest, HashingWriter};
use rbuild_oci::io_error::IoContext;
use rbuild_oci::platform::Platform;
use rbuild_oci::reference::Reference;

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    pub layers_uploaded: usize,
    pub layers_mounted: usize,
    pub layers_present: usize,
}

/// How one layer got into the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerFate {
    AlreadyThere,
    Mounted,
    Uploaded,
}

/// Pushes image `id` to `target` (which must name a tag).
pub fn push(session: &Session, store: &Store, id: &Digest, target: &Reference) -> Result<PushOutcome> {
    let _gc = store.gc_guard(false)?;
    needs_tag(target)?;
    push_image(session, store, id, target, false)
}

fn needs_tag(target: &Reference) -> Result<()> {
    if target.tag.is_none() {
        return Err(RegistryError::InvalidReference {
            input: target.familiar(),
            message: "a push needs a tag to put the image under".into(),
        });
    }
    Ok(())
}

/// The `--annotation`s of a pushed index: on the index itself, and on
/// each platform's entry (same order as the images).
#[derive(Debug, Clone, Default)]
pub struct IndexAnnotations {
    pub index: BTreeMap<String, String>,
    pub descriptors: Vec<BTreeMap<String, String>>,
}

/// Pushes one image per platform, each manifest by its digest, then an OCI
/// image index naming them under `target`'s tag (BuildKit's and Buildah's
/// multi-platform push). Returns the index's digest and size.
pub fn push_index(
    session: &Session,
    store: &Store,
    images: &[(Platform, Digest)],
    target: &Reference,
    annotations: &IndexAnnotations,
) -> Result<PushOutcome> {
    let _gc = store.gc_guard(false)?;
    needs_tag(target)?;
    let mut entries = Vec::new();
    let mut layers = (0, 0, 0);
    for (i, (platform, id)) in images.iter().enumerate() {
        let pushed = push_image(session, store, id, target, true)?;
        layers.0 += pushed.layers_uploaded;
        layers.1 += pushed.layers_mounted;
        layers.2 += pushed.layers_present;
        let mut entry = Descriptor::new(OCI_MANIFEST, &pushed.digest, pushed.size);
        entry.platform = Some(PlatformJson {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
        });
        entry.annotations = annotations.descriptors.get(i).filter(|a| !a.is_empty()).cloned();
        entries.push(entry);
    }
    let mut index_json = manifest::image_index_json(&entries, &annotations.index, OCI_INDEX);
    if let Err(refused) = session.put_manifest(target, &index_json, OCI_INDEX) {
        // A registry that takes only Docker's types: the same list under
        // Docker's media type; if that fails too, the first error says why.
        if matches!(refused, RegistryError::Unreachable { .. } | RegistryError::Unauthorized { .. }) {
            return Err(refused);
        }
        index_json = manifest::image_index_json(&entries, &annotations.index, DOCKER_LIST);
        session.put_manifest(target, &index_json, DOCKER_LIST).map_err(|_| refused)?;
    }
    let digest = Digest::of(&index_json);
    session.progress().note(&format!(
        "{}: index digest: {digest} size: {}",
        target.tag.as_deref().unwrap_or_default(),
        index_json.len()
    ));
    Ok(PushOutcome {
        digest,
        size: index_json.len() as u64,
        layers_uploaded: layers.0,
        layers_mounted: layers.1,
        layers_present: layers.2,
    })
}

/// Pushes the layers, config and manifest of `id`; the manifest goes under
/// `target`'s tag, or under its own digest when `by_digest` (an index's
/// entry).
fn push_image(
    session: &Session,
    store: &Store,
    id: &Digest,
    target: &Reference,
    by_digest: bool,
) -> Result<PushOutcome> {
    let (config_json, config) = store.image_config(id)?;
    for diff_id in &config.rootfs.diff_ids {
        store.require_layer(diff_id)?;
    }
    session.progress().note(&format!("The push refers to repository [{}]", target.name()));
    let (layers, fates) = push_layers(session, store, target, &config.rootfs.diff_ids)?;
    let config_digest = session.upload_bytes(target, &config_json)?;
    let config_desc = Descriptor::new(OCI_CONFIG, &config_digest, config_json.len() as u64);
    // The build's `--annotation`s, kept in the image's record.
    let annotations = store.image_record(id)?.map(|r| r.annotations).unwrap_or_default();
    let manifest_json = manifest::image_manifest_json(&config_desc, &layers, &annotations);
    let digest = Digest::of(&manifest_json);
    let put_as = if by_digest {
        Reference { tag: None, digest: Some(digest), ..target.clone() }
    } else {
        target.clone()
    };
    session.put_manifest(&put_as, &manifest_json, OCI_MANIFEST)?;
    let repo_digest = format!("{}@{digest}", target.name());
    if let Some(mut record) = store.image_record(id)?
        && !record.repo_digests.contains(&repo_digest)
    {
        record.repo_digests.retain(|d| !d.starts_with(&format!("{}@", target.name())));
        record.repo_digests.push(repo_digest);
        store.update_image_record(&record)?;
    }
    let count = |fate| fates.iter().filter(|f| **f == fate).count();
    session.progress().note(&format!(
        "{}: digest: {digest} size: {}",
        target.tag.as_deref().unwrap_or_default(),
        manifest_json.len()
    ));
    Ok(PushOutcome {
        digest,
        size: manifest_json.len() as u64,
        layers_uploaded: count(LayerFate::Uploaded),
        layers_mounted: count(LayerFate::Mounted),
        layers_present: count(LayerFate::AlreadyThere),
    })
}

/// Pushes every layer, `parallel_transfers` at a time; returns their
/// descriptors in order.
fn push_layers(
    session: &Session,
    store: &Store,
    target: &Reference,
    diff_ids: &[Digest],
) -> Result<(Vec<Descriptor>, Vec<LayerFate>)> {
    let workers = session.settings().parallel_transfers;
    let pushed =
        try_map_bounded(diff_ids.len(), workers, |i| push_layer(session, store, target, &diff_ids[i]))?;
    let (descriptors, fates) = pushed.into_iter().unzip();
    Ok((descriptors, fates))
}

/// The OCI media type for a layer blob of any known media type.
fn oci_layer_media_type(media_type: &str) -> &'static str {
    if media_type.ends_with("zstd") {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    } else if media_type.ends_with("gzip") {
        OCI_LAYER_GZIP
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    }
}

pub(crate) fn push_layer(
    session: &Session,
    store: &Store,
    target: &Reference,
    diff_id: &Digest,
) -> Result<(Descriptor, LayerFate)> {
    let progress = session.progress();
    let item = short_id(diff_id);
    let known = known_blobs(store, diff_id);
    let descriptor_of =
        |k: &KnownBlob| Descriptor::new(oci_layer_media_type(&k.media_type), &k.digest, k.size);
    for k in &known {
        if session.has_blob(target, &k.digest)? {
            let _ = remember_blob(store, diff_id, k.digest, k.size, &k.media_type, Some(&target.name()));
            progress.end(&item, "Layer already exists");
            return Ok((descriptor_of(k), LayerFate::AlreadyThere));
        }
    }
    let same_registry = format!("{}/", target.registry);
    for k in &known {
        for repo in &k.repositories {
            let Some(path) = repo.strip_prefix(&same_registry) else { continue };
            if path != target.repository && session.mount_blob(target, path, &k.digest) {
                let _ = remember_blob(store, diff_id, k.digest, k.size, &k.media_type, Some(&target.name()));
                progress.end(&item, &format!("Mounted from {path}"));
                return Ok((descriptor_of(k), LayerFate::Mounted));
            }
        }
    }
    let layer = store.require_layer(diff_id)?;
    let scratch = store.temp_path("push-layer");
    let result = (|| {
        progress.begin(&item, "Compressing", Some(layer.meta.size));
        let (digest, size) =
            compress_layer(&store.layer_tar(&layer)?, &scratch, &|n| progress.advance(&item, n))?;
        let fate = if session.has_blob(target, &digest)? {
            progress.end(&item, "Layer already exists");
            LayerFate::AlreadyThere
        } else {
            progress.begin(&item, "Pushing", Some(size));
            session.upload_file(target, &scratch, &digest, size, Some(&item))?;
            progress.end(&item, "Pushed");
            LayerFate::Uploaded
        };
        let _ = remember_blob(store, diff_id, digest, size, OCI_LAYER_GZIP, Some(&target.name()));
        Ok((Descriptor::new(OCI_LAYER_GZIP, &digest, size), fate))
    })();
    let _ = std::fs::remove_file(&scratch);
    if result.is_err() {
        progress.end(&item, "Failed");
    }
    result
}

/// Gzips a layer tar into `dest` on every core; returns the compressed
/// digest and size.
pub(crate) fn compress_layer(
    source: &std::path::Path,
    dest: &std::path::Path,
    progress: &dyn Fn(u64),
) -> Result<(Digest, u64)> {
    let mut input = File::open(source).ctx("open", source)?;
    let file = File::create(dest).ctx("create", dest)?;
    let mut hashed = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    gzip::compress(&mut input, &mut hashed, gzip::DEFAULT_LEVEL, threads, progress)
        .ctx("compress", source)?;
    let (mut buffered, digest, size) = hashed.finish();
    buffered.flush().ctx("write", dest)?;
    Ok((digest, size))
}
