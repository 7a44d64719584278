//! The `docker save` archive (Docker's image-spec v1.2 "combined image
//! JSON + filesystem changeset" format): `manifest.json` lists each image's
//! config file, tags and layer files; `repositories` is the older tag list.
//!
//! We write the layout Docker 25 writes, where every file is a blob under
//! `blobs/sha256/` and `oci-layout` plus `index.json` make the tar an OCI
//! layout too. Docker 20.10's `docker load` only reads `manifest.json` and
//! opens the paths it gives, and skopeo's `docker-archive:` does the same,
//! so both take it; the older layout (`<id>.json`, `<v1 id>/layer.tar`,
//! symlinks between layer directories) is read, never written.

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use super::error::{ArchiveError, Result};
use super::export::{
    ExportImage, ExportOptions, LayerBlobCompression, LayerBlobs, PlannedImage, plan_images,
};
use super::names::{blob_path, digest_in_blob_name, digest_in_config_name, normalize_entry_name};
use super::oci::{self, RefNameStyle};
use super::spool::Contents;
use super::tar_out::TarOut;
use super::verify::{VerifiedImage, verify_layer};
use rbuild_cache::store::Store;
use rbuild_oci::config::ImageConfig;
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;

pub(crate) const MANIFEST_FILE: &str = "manifest.json";
const REPOSITORIES_FILE: &str = "repositories";

/// One image in `manifest.json`. Field names and order are Docker's.
#[derive(Debug, Serialize, Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    /// `null` for an untagged image, as Docker writes it.
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<String>>,
    #[serde(rename = "Parent", default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
}

/// Writes `images` the way `docker save` does (see the module docs for the
/// layout). Layers are the store's uncompressed layer tars, copied as they
/// are; tags appear in their familiar form (`busybox:latest`).
pub fn write_docker_archive<W: Write>(
    store: &Store,
    images: &[ExportImage],
    out: W,
    opts: &ExportOptions,
) -> Result<()> {
    let images = plan_images(store, images)?;
    let blobs = LayerBlobs::prepare(store, &images, LayerBlobCompression::None)?;
    let manifests = images.iter().map(|i| oci::manifest_for(i, &blobs)).collect::<Result<Vec<_>>>()?;
    // Docker's image store keeps no index annotations: none are written.
    let index = oci::index_for(&images, &manifests, RefNameStyle::TagOnly, &ExportOptions::default())?;
    let mut tar = TarOut::new(out, opts.source_date_epoch);
    // The small files go first so a reader of the stream knows what the
    // blobs are before they arrive (`docker save` happens to put them last).
    tar.bytes(oci::INDEX_FILE, &index)?;
    tar.bytes(MANIFEST_FILE, &manifest_json(&images)?)?;
    tar.bytes(oci::LAYOUT_FILE, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    if let Some(repositories) = repositories_json(&images)? {
        tar.bytes(REPOSITORIES_FILE, &repositories)?;
    }
    oci::write_blobs(&mut tar, &images, &manifests, &blobs)?;
    tar.finish()?;
    Ok(())
}

fn manifest_json(images: &[PlannedImage]) -> Result<Vec<u8>> {
    let items: Vec<ManifestItem> = images
        .iter()
        .map(|image| ManifestItem {
            config: blob_path(&image.id),
            repo_tags: (!image.tags.is_empty()).then(|| image.tags.iter().map(Reference::familiar).collect()),
            layers: Some(image.layers.iter().map(|l| blob_path(&l.meta.diff_id)).collect()),
            parent: image.parent.map(|p| p.to_string()),
        })
        .collect();
    json_line(&items)
}

/// `{"busybox":{"latest":"<hex>"}}`. Docker 25 puts the last layer's diffID
/// there (older versions a v1 layer ID); nothing reads it when
/// `manifest.json` is present, and images without layers are left out.
fn repositories_json(images: &[PlannedImage]) -> Result<Option<Vec<u8>>> {
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let Some(top) = image.layers.last() else { continue };
        for tag in &image.tags {
            repositories
                .entry(tag.familiar_name())
                .or_default()
                .insert(tag.tag.clone().unwrap_or_default(), top.meta.diff_id.hex());
        }
    }
    if repositories.is_empty() { Ok(None) } else { json_line(&repositories).map(Some) }
}

/// JSON followed by a newline, as Go's `json.Encoder` writes it.
fn json_line<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut bytes =
        serde_json::to_vec(value).map_err(|e| ArchiveError::Unsupported(format!("serialising JSON: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

// ---- loading ----

/// Reads `manifest.json` and checks each image it lists: the config's
/// sha256 is the image ID (and matches the config's file name when that is
/// a digest), and each layer file holds the layer the config's
/// `rootfs.diff_ids` names.
pub(crate) fn read_docker_manifest(store: &Store, contents: &Contents) -> Result<Vec<VerifiedImage>> {
    let (path, json) = contents.read_small(MANIFEST_FILE, "docker-archive manifest", "the list of images")?;
    let items: Option<Vec<ManifestItem>> = serde_json::from_slice(&json).map_err(|source| {
        ArchiveError::UnparsableJson { path: path.clone(), what: "docker-archive manifest", source }
    })?;
    let items = items.ok_or_else(|| ArchiveError::InvalidJson {
        path,
        what: "docker-archive manifest",
        message: "it is null (an archive without images has [])".into(),
    })?;
    let mut images = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        images.push(verify_item(store, contents, item, n + 1)?);
    }
    Ok(images)
}

fn verify_item(
    store: &Store,
    contents: &Contents,
    item: &ManifestItem,
    position: usize,
) -> Result<VerifiedImage> {
    let tags = item.repo_tags.iter().flatten().map(|t| parse_repo_tag(t)).collect::<Result<Vec<_>>>()?;
    let image_name = match tags.first() {
        Some(tag) => tag.familiar(),
        None => format!("image {position} of manifest.json"),
    };
    let (config_path, config_json) =
        contents.read_small(&item.config, "image config", &format!("the config of {image_name}"))?;
    let id = Digest::of(&config_json);
    for name in [item.config.as_str(), config_path.as_str()] {
        let normalized = normalize_entry_name(name).unwrap_or_default();
        if let Some(named) = digest_in_config_name(&normalized)
            && named != id
        {
            return Err(ArchiveError::ConfigDigestMismatch {
                image: image_name,
                named_by: format!("its file name {name}"),
                expected: named,
                actual: id,
            });
        }
    }
    let config = ImageConfig::from_json(&config_json).map_err(|source| ArchiveError::UnparsableJson {
        path: config_path,
        what: "image config",
        source,
    })?;
    let diff_ids = config.rootfs.diff_ids;
    let layers = item.layers.as_deref().unwrap_or_default();
    if layers.len() != diff_ids.len() {
        return Err(ArchiveError::LayerCountMismatch {
            image: image_name,
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    for (i, (layer_path, diff_id)) in layers.iter().zip(&diff_ids).enumerate() {
        // A layer named blobs/sha256/<hex> must hash to <hex> as well.
        let named = normalize_entry_name(layer_path).ok().and_then(|p| digest_in_blob_name(&p));
        verify_layer(
            store,
            contents,
            layer_path,
            &image_name,
            i + 1,
            diff_id,
            named.as_ref().map(|d| (d, None)),
        )?;
    }
    let parent = item.parent.as_deref().and_then(|p| Digest::parse(p).ok());
    Ok(VerifiedImage { id, config_json, diff_ids, tags, parent })
}

/// A `RepoTags` entry must name a repository and a tag, as `docker load`
/// requires.
fn parse_repo_tag(tag: &str) -> Result<Reference> {
    let reference = Reference::parse_without_default_tag(tag)
        .map_err(|e| ArchiveError::InvalidTag { tag: tag.to_string(), reason: e.reason.to_string() })?;
    if reference.tag.is_none() || reference.digest.is_some() {
        return Err(ArchiveError::InvalidTag {
            tag: tag.to_string(),
            reason: "RepoTags entries must be name:tag".into(),
        });
    }
    Ok(reference)
}
