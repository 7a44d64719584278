//! OCI image layouts (image-spec `image-layout.md`): `oci-layout`,
//! `index.json` and `blobs/sha256/<hex>`. This module writes the manifest and
//! index JSON (shared with the docker-archive, which is an OCI layout too),
//! writes OCI archives, and reads an index back when loading.
//!
//! The JSON comes from `oci-spec`'s types, whose annotation maps are hash
//! maps; [`canonical_json`] puts their keys in order, so the same images
//! always give the same manifest digests and archive bytes.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use oci_spec::image::{
    Arch, Descriptor, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder, MediaType, Os,
    Platform, PlatformBuilder,
};
use serde::Serialize;

use super::error::{ArchiveError, Result};
use super::export::{ExportImage, ExportOptions, LayerBlobs, PlannedImage, plan_images};
use super::names::blob_path;
use super::spool::Contents;
use super::tar_out::TarOut;
use super::verify::{VerifiedImage, verify_layer};
use rbuild_cache::store::Store;
use rbuild_oci::config::{ImageConfig, host_architecture};
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;

pub(crate) const INDEX_FILE: &str = "index.json";
pub(crate) const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_JSON: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// The OCI annotation naming a manifest in an index.
pub(crate) const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The full reference containerd and Docker 25+ put beside it.
pub(crate) const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// How nested indexes may go before we stop following them.
const MAX_INDEX_DEPTH: usize = 4;

/// Writes `images` as an OCI image layout in a tar. Layers are plain tars
/// unless `opts.oci_layer_compression` says otherwise. Each tag becomes one
/// `index.json` entry whose `org.opencontainers.image.ref.name` is the
/// familiar reference (`app:v1`, as skopeo and umoci use it) and whose
/// `io.containerd.image.name` is the full one; an untagged image gets one
/// entry without names.
pub fn write_oci_archive<W: Write>(
    store: &Store,
    images: &[ExportImage],
    out: W,
    opts: &ExportOptions,
) -> Result<()> {
    let images = plan_images(store, images)?;
    let blobs = LayerBlobs::prepare(store, &images, opts.oci_layer_compression)?;
    let manifests = images.iter().map(|i| manifest_for(i, &blobs)).collect::<Result<Vec<_>>>()?;
    let index = index_for(&images, &manifests, RefNameStyle::FamiliarReference, opts)?;
    let mut tar = TarOut::new(out, opts.source_date_epoch);
    tar.bytes(LAYOUT_FILE, LAYOUT_JSON)?;
    tar.bytes(INDEX_FILE, &index)?;
    write_blobs(&mut tar, &images, &manifests, &blobs)?;
    tar.finish()?;
    Ok(())
}

/// Writes the images of one multi-platform build (one per platform, given
/// untagged) as an OCI layout in a tar: their manifests go into an image
/// index blob, and `index.json` names that index once per tag (or once,
/// unnamed), as BuildKit's multi-platform OCI export does.
pub fn write_oci_index_archive<W: Write>(
    store: &Store,
    platforms: &[ExportImage],
    tags: &[String],
    out: W,
    opts: &ExportOptions,
) -> Result<()> {
    let images = plan_images(store, platforms)?;
    let blobs = LayerBlobs::prepare(store, &images, opts.oci_layer_compression)?;
    let manifests = images.iter().map(|i| manifest_for(i, &blobs)).collect::<Result<Vec<_>>>()?;
    let nested = index_for(&images, &manifests, RefNameStyle::FamiliarReference, opts)?;
    let nested_digest = Digest::of(&nested);
    let mut entries = Vec::new();
    let mut descriptor =
        Descriptor::new(MediaType::ImageIndex, nested.len() as u64, oci_digest(&nested_digest)?);
    let descriptor_annotations: HashMap<String, String> =
        opts.index_descriptor_annotations.clone().into_iter().collect();
    if !descriptor_annotations.is_empty() {
        descriptor.set_annotations(Some(descriptor_annotations.clone()));
    }
    if tags.is_empty() {
        entries.push(descriptor.clone());
    }
    for tag in tags {
        let tag = super::export::parse_export_tag(tag)?;
        let mut named = descriptor.clone();
        let mut annotations = descriptor_annotations.clone();
        annotations.insert(IMAGE_NAME_ANNOTATION.to_string(), tag.canonical());
        annotations.insert(REF_NAME_ANNOTATION.to_string(), tag.familiar());
        named.set_annotations(Some(annotations));
        entries.push(named);
    }
    let top = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(entries)
        .build()
        .map_err(oci_json_error)?;
    let mut tar = TarOut::new(out, opts.source_date_epoch);
    tar.bytes(LAYOUT_FILE, LAYOUT_JSON)?;
    tar.bytes(INDEX_FILE, &canonical_json(&top)?)?;
    write_blobs(&mut tar, &images, &manifests, &blobs)?;
    tar.bytes(&blob_path(&nested_digest), &nested)?;
    tar.finish()?;
    Ok(())
}

/// What `org.opencontainers.image.ref.name` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefNameStyle {
    /// `app:v1`: what skopeo, buildah and umoci read and write.
    FamiliarReference,
    /// `v1`: what `docker save` (25+) writes in its index.json.
    TagOnly,
}

/// An image manifest, serialised.
pub(crate) struct ManifestBlob {
    pub digest: Digest,
    pub json: Vec<u8>,
}

/// The OCI image manifest of one image.
pub(crate) fn manifest_for(image: &PlannedImage, blobs: &LayerBlobs) -> Result<ManifestBlob> {
    let config =
        Descriptor::new(MediaType::ImageConfig, image.config_json.len() as u64, oci_digest(&image.id)?);
    let mut layers = Vec::with_capacity(image.layers.len());
    for layer in &image.layers {
        let blob = blobs.get(&layer.meta.diff_id)?;
        layers.push(Descriptor::new(blob.media_type.clone(), blob.size, oci_digest(&blob.digest)?));
    }
    let mut manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .map_err(oci_json_error)?;
    if !image.annotations.is_empty() {
        manifest.set_annotations(Some(image.annotations.clone().into_iter().collect()));
    }
    let json = canonical_json(&manifest)?;
    Ok(ManifestBlob { digest: Digest::of(&json), json })
}

/// `index.json`: one entry per tag of each image, with the `--annotation`s
/// for the index and its manifest descriptors in `opts`.
pub(crate) fn index_for(
    images: &[PlannedImage],
    manifests: &[ManifestBlob],
    style: RefNameStyle,
    opts: &ExportOptions,
) -> Result<Vec<u8>> {
    let mut entries = Vec::new();
    for (image, manifest) in images.iter().zip(manifests) {
        let mut descriptor = Descriptor::new(
            MediaType::ImageManifest,
            manifest.json.len() as u64,
            oci_digest(&manifest.digest)?,
        );
        descriptor.set_platform(platform_of(&image.config));
        let mut descriptor_annotations: HashMap<String, String> =
            opts.manifest_descriptor_annotations.clone().into_iter().collect();
        if let Some(own) = opts.manifest_descriptor_annotations_by_image.get(&image.id) {
            descriptor_annotations.extend(own.clone());
        }
        if !descriptor_annotations.is_empty() {
            descriptor.set_annotations(Some(descriptor_annotations.clone()));
        }
        if image.tags.is_empty() {
            entries.push(descriptor);
            continue;
        }
        for tag in &image.tags {
            let ref_name = match style {
                RefNameStyle::FamiliarReference => tag.familiar(),
                RefNameStyle::TagOnly => tag.tag.clone().unwrap_or_default(),
            };
            let mut annotations = descriptor_annotations.clone();
            annotations.insert(IMAGE_NAME_ANNOTATION.to_string(), tag.canonical());
            annotations.insert(REF_NAME_ANNOTATION.to_string(), ref_name);
            let mut named = descriptor.clone();
            named.set_annotations(Some(annotations));
            entries.push(named);
        }
    }
    let mut index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(entries)
        .build()
        .map_err(oci_json_error)?;
    if !opts.index_annotations.is_empty() {
        index.set_annotations(Some(opts.index_annotations.clone().into_iter().collect()));
    }
    canonical_json(&index)
}

/// Writes `blobs/sha256/` with each image's config, manifest and layers,
/// every blob once, in image order.
pub(crate) fn write_blobs<W: Write>(
    tar: &mut TarOut<W>,
    images: &[PlannedImage],
    manifests: &[ManifestBlob],
    blobs: &LayerBlobs,
) -> Result<()> {
    tar.dir("blobs")?;
    tar.dir("blobs/sha256")?;
    let mut written = std::collections::BTreeSet::new();
    for (image, manifest) in images.iter().zip(manifests) {
        if written.insert(image.id) {
            tar.bytes(&blob_path(&image.id), &image.config_json)?;
        }
        if written.insert(manifest.digest) {
            tar.bytes(&blob_path(&manifest.digest), &manifest.json)?;
        }
        for layer in &image.layers {
            let blob = blobs.get(&layer.meta.diff_id)?;
            if written.insert(blob.digest) {
                tar.file(&blob_path(&blob.digest), &blob.path, blob.size)?;
            }
        }
    }
    Ok(())
}

fn platform_of(config: &ImageConfig) -> Option<Platform> {
    if config.architecture.is_empty() || config.os.is_empty() {
        return None;
    }
    let mut builder = PlatformBuilder::default()
        .architecture(Arch::from(config.architecture.as_str()))
        .os(Os::from(config.os.as_str()));
    if let Some(variant) = &config.variant {
        builder = builder.variant(variant.clone());
    }
    if let Some(version) = &config.os_version {
        builder = builder.os_version(version.clone());
    }
    builder.build().ok()
}

fn oci_digest(digest: &Digest) -> Result<oci_spec::image::Digest> {
    digest.to_string().parse().map_err(|e| ArchiveError::Unsupported(format!("digest {digest}: {e}")))
}

fn oci_json_error(err: oci_spec::OciSpecError) -> ArchiveError {
    ArchiveError::Unsupported(format!("building OCI JSON: {err}"))
}

/// Serialises with every `annotations` map in key order (`oci-spec` keeps
/// them in hash maps, whose order changes from run to run).
pub(crate) fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut tree = serde_json::to_value(value)
        .map_err(|e| ArchiveError::Unsupported(format!("serialising JSON: {e}")))?;
    sort_annotations(&mut tree);
    serde_json::to_vec(&tree).map_err(|e| ArchiveError::Unsupported(format!("serialising JSON: {e}")))
}

fn sort_annotations(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "annotations"
                    && let serde_json::Value::Object(annotations) = child
                {
                    let sorted: BTreeMap<String, serde_json::Value> =
                        std::mem::take(annotations).into_iter().collect();
                    annotations.extend(sorted);
                }
                sort_annotations(child);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(sort_annotations),
        _ => {}
    }
}

// ---- loading ----

/// Reads `index.json` and every image it lists (for a nested index, the
/// manifest for this machine's platform), checking every blob against its
/// descriptor.
pub(crate) fn read_oci_index(store: &Store, contents: &Contents) -> Result<Vec<VerifiedImage>> {
    if contents.has(LAYOUT_FILE) {
        let (path, layout) = contents.read_small(LAYOUT_FILE, "OCI layout file", "the layout version")?;
        let layout: oci_spec::image::OciLayout = serde_json::from_slice(&layout)
            .map_err(|source| ArchiveError::UnparsableJson { path, what: "OCI layout file", source })?;
        if !layout.image_layout_version().starts_with("1.") {
            return Err(ArchiveError::Unsupported(format!(
                "OCI layout version {} is not supported (only 1.x is)",
                layout.image_layout_version()
            )));
        }
    }
    let (path, json) = contents.read_small(INDEX_FILE, "OCI image index", "the list of images")?;
    let index: ImageIndex = serde_json::from_slice(&json).map_err(|source| ArchiveError::UnparsableJson {
        path,
        what: "OCI image index",
        source,
    })?;
    let mut images = Vec::new();
    for descriptor in index.manifests() {
        let names = names_of(descriptor);
        collect_images(store, contents, descriptor, &names, 0, &mut images)?;
    }
    if images.is_empty() && !index.manifests().is_empty() {
        return Err(ArchiveError::Unsupported(format!(
            "index.json lists no image manifest this machine ({}/{}) can use",
            "linux",
            host_architecture()
        )));
    }
    Ok(images)
}

/// The tags an index entry asks for. `io.containerd.image.name` is a full
/// reference; `org.opencontainers.image.ref.name` is used when it is one too
/// (`app:v1`). A bare tag (`v1`) names no repository, so it is not a tag we
/// can apply, and neither is a name that does not parse as a reference.
fn names_of(descriptor: &Descriptor) -> Vec<Reference> {
    let Some(annotations) = descriptor.annotations() else { return Vec::new() };
    let as_tag = |s: &String| Reference::parse(s).ok().filter(|r| r.tag.is_some() && r.digest.is_none());
    if let Some(name) = annotations.get(IMAGE_NAME_ANNOTATION).and_then(as_tag) {
        return vec![name];
    }
    annotations
        .get(REF_NAME_ANNOTATION)
        .filter(|r| r.contains(':') || r.contains('/'))
        .and_then(as_tag)
        .into_iter()
        .collect()
}

fn collect_images(
    store: &Store,
    contents: &Contents,
    descriptor: &Descriptor,
    names: &[Reference],
    depth: usize,
    out: &mut Vec<VerifiedImage>,
) -> Result<()> {
    let media_type = descriptor.media_type().to_string();
    let is_manifest = *descriptor.media_type() == MediaType::ImageManifest || media_type == DOCKER_MANIFEST;
    let is_index = *descriptor.media_type() == MediaType::ImageIndex || media_type == DOCKER_MANIFEST_LIST;
    if is_manifest {
        out.push(verify_manifest(store, contents, descriptor, names)?);
    } else if is_index && depth < MAX_INDEX_DEPTH {
        let digest = our_digest(descriptor.digest())?;
        let json = read_blob(contents, &digest, descriptor.size(), "OCI image index", "index.json")?;
        let child: ImageIndex = serde_json::from_slice(&json).map_err(|source| {
            ArchiveError::UnparsableJson { path: blob_path(&digest), what: "OCI image index", source }
        })?;
        // Of a multi-platform image, load the one this machine runs; an
        // index without platforms (rare) is taken whole.
        for entry in child.manifests() {
            let usable = match entry.platform() {
                Some(p) => {
                    p.os().to_string() == "linux" && p.architecture().to_string() == host_architecture()
                }
                None => true,
            };
            if usable && !is_attestation(entry) {
                collect_images(store, contents, entry, names, depth + 1, out)?;
            }
        }
    }
    // Other media types (signatures, attestations, artifacts) are not images.
    Ok(())
}

/// BuildKit's provenance manifests sit in the index beside the image.
fn is_attestation(descriptor: &Descriptor) -> bool {
    descriptor
        .annotations()
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .is_some_and(|t| t == "attestation-manifest")
}

fn verify_manifest(
    store: &Store,
    contents: &Contents,
    descriptor: &Descriptor,
    names: &[Reference],
) -> Result<VerifiedImage> {
    let manifest_digest = our_digest(descriptor.digest())?;
    let image_name = match names.first() {
        Some(name) => name.familiar(),
        None => format!("image with manifest {manifest_digest}"),
    };
    let json = read_blob(contents, &manifest_digest, descriptor.size(), "OCI image manifest", "index.json")?;
    let manifest: ImageManifest = serde_json::from_slice(&json).map_err(|source| {
        ArchiveError::UnparsableJson { path: blob_path(&manifest_digest), what: "OCI image manifest", source }
    })?;
    let config_digest = our_digest(manifest.config().digest())?;
    let (config_path, config_json) = contents.read_small(
        &blob_path(&config_digest),
        "image config",
        &format!("the config of {image_name}"),
    )?;
    let actual_id = Digest::of(&config_json);
    if actual_id != config_digest {
        return Err(ArchiveError::ConfigDigestMismatch {
            image: image_name,
            named_by: "its manifest".into(),
            expected: config_digest,
            actual: actual_id,
        });
    }
    if config_json.len() as u64 != manifest.config().size() {
        return Err(ArchiveError::BlobSizeMismatch {
            path: config_path,
            expected: manifest.config().size(),
            actual: config_json.len() as u64,
        });
    }
    let config = ImageConfig::from_json(&config_json).map_err(|source| ArchiveError::UnparsableJson {
        path: config_path,
        what: "image config",
        source,
    })?;
    let diff_ids = config.rootfs.diff_ids;
    if manifest.layers().len() != diff_ids.len() {
        return Err(ArchiveError::LayerCountMismatch {
            image: image_name,
            layers: manifest.layers().len(),
            diff_ids: diff_ids.len(),
        });
    }
    for (i, (layer, diff_id)) in manifest.layers().iter().zip(&diff_ids).enumerate() {
        let blob_digest = our_digest(layer.digest())?;
        verify_layer(
            store,
            contents,
            &blob_path(&blob_digest),
            &image_name,
            i + 1,
            diff_id,
            Some((&blob_digest, Some(layer.size()))),
        )?;
    }
    Ok(VerifiedImage { id: actual_id, config_json, diff_ids, tags: names.to_vec(), parent: None })
}

/// A JSON blob, checked against the digest and size its descriptor gives.
fn read_blob(
    contents: &Contents,
    digest: &Digest,
    size: u64,
    what: &'static str,
    named_by: &str,
) -> Result<Vec<u8>> {
    let (path, bytes) =
        contents.read_small(&blob_path(digest), what, &format!("the {what} {named_by} lists"))?;
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(ArchiveError::BlobDigestMismatch {
            path,
            named_by: named_by.to_string(),
            expected: *digest,
            actual,
        });
    }
    if bytes.len() as u64 != size {
        return Err(ArchiveError::BlobSizeMismatch { path, expected: size, actual: bytes.len() as u64 });
    }
    Ok(bytes)
}

fn our_digest(digest: &oci_spec::image::Digest) -> Result<Digest> {
    Digest::parse(digest.as_ref())
        .map_err(|_| ArchiveError::Unsupported(format!("digest {digest}: only sha256 digests are supported")))
}
