//! What an export holds, worked out before the first byte is written: each
//! image's config bytes, tags and layers (from the store), and one blob per
//! distinct layer, compressed into scratch files first when the OCI archive
//! asks for it (a tar header needs the blob's size and the blob's name is
//! its digest, so both must be known before the entry starts).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use oci_spec::image::MediaType;

use super::error::{ArchiveError, Result};
use rbuild_cache::store::{LayerRef, Store};
use rbuild_oci::config::ImageConfig;
use rbuild_oci::digest::{Digest, HashingWriter};
use rbuild_oci::io_error::IoContext;
use rbuild_oci::reference::Reference;

/// An image to export and the tags to give it in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportImage {
    pub id: Digest,
    /// Tags in any form `docker tag` accepts (`app:v1`,
    /// `docker.io/library/app:v1`); archives carry the familiar form.
    pub tags: Vec<String>,
}

/// How layers are stored in an OCI archive. Docker archives always carry
/// plain tars, as `docker save` does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LayerBlobCompression {
    /// `application/vnd.oci.image.layer.v1.tar`
    #[default]
    None,
    /// `application/vnd.oci.image.layer.v1.tar+gzip`
    Gzip,
    /// `application/vnd.oci.image.layer.v1.tar+zstd`
    Zstd,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// The mtime of every tar header; `None` means 0, so that exporting the
    /// same images twice gives identical bytes.
    pub source_date_epoch: Option<i64>,
    /// Layer compression for [`super::write_oci_archive`].
    pub oci_layer_compression: LayerBlobCompression,
    /// `--annotation index:…`: on an OCI archive's `index.json`.
    pub index_annotations: BTreeMap<String, String>,
    /// `--annotation manifest-descriptor:…`: on each manifest entry of an
    /// OCI archive's `index.json`.
    pub manifest_descriptor_annotations: BTreeMap<String, String>,
    /// More `manifest-descriptor` annotations for one image's entry only
    /// (a multi-platform build's `manifest-descriptor[os/arch]:…`).
    pub manifest_descriptor_annotations_by_image: BTreeMap<Digest, BTreeMap<String, String>>,
    /// `--annotation index-descriptor:…`: on `index.json`'s entries for
    /// the nested index of [`super::write_oci_index_archive`].
    pub index_descriptor_annotations: BTreeMap<String, String>,
}

/// One image of an export, read from the store.
pub(crate) struct PlannedImage {
    pub id: Digest,
    pub config_json: Vec<u8>,
    pub config: ImageConfig,
    pub tags: Vec<Reference>,
    pub layers: Vec<LayerRef>,
    /// The image this one was built on, when that image is exported too.
    pub parent: Option<Digest>,
    /// Its manifest's annotations, from its store record.
    pub annotations: BTreeMap<String, String>,
}

/// Reads every image to export from the store. An image listed twice is
/// exported once, with the tags of both listings; a tag listed twice is
/// kept once.
pub(crate) fn plan_images(store: &Store, images: &[ExportImage]) -> Result<Vec<PlannedImage>> {
    let mut planned: Vec<PlannedImage> = Vec::new();
    for request in images {
        let tags = request.tags.iter().map(|t| parse_export_tag(t)).collect::<Result<Vec<_>>>()?;
        if let Some(existing) = planned.iter_mut().find(|p| p.id == request.id) {
            for tag in tags {
                if !existing.tags.contains(&tag) {
                    existing.tags.push(tag);
                }
            }
            continue;
        }
        if !store.has_blob(&request.id) {
            return Err(ArchiveError::NoSuchImage(request.id));
        }
        let (config_json, config) = store.image_config(&request.id)?;
        let layers =
            config.rootfs.diff_ids.iter().map(|d| store.require_layer(d)).collect::<Result<_, _>>()?;
        let mut unique_tags = Vec::new();
        for tag in tags {
            if !unique_tags.contains(&tag) {
                unique_tags.push(tag);
            }
        }
        let record = store.image_record(&request.id)?;
        let parent = record.as_ref().and_then(|r| r.parent);
        let annotations = record.map(|r| r.annotations).unwrap_or_default();
        planned.push(PlannedImage {
            id: request.id,
            config_json,
            config,
            tags: unique_tags,
            layers,
            parent,
            annotations,
        });
    }
    // Like `docker save`, name a parent only when it is in the archive too,
    // and only when `docker load` will accept it as one: Docker 20.10
    // refuses the whole load unless the parent's history is the child's
    // minus its last entry and its layers a prefix of the child's.
    let configs: Vec<(Digest, ImageConfig)> = planned.iter().map(|p| (p.id, p.config.clone())).collect();
    for image in &mut planned {
        image.parent = image.parent.filter(|p| {
            configs
                .iter()
                .find(|(id, _)| id == p)
                .is_some_and(|(_, parent)| docker_accepts_parent(&image.config, parent))
        });
    }
    Ok(planned)
}

fn docker_accepts_parent(child: &ImageConfig, parent: &ImageConfig) -> bool {
    parent.history.len() + 1 == child.history.len()
        && child.history.starts_with(&parent.history)
        && child.rootfs.diff_ids.starts_with(&parent.rootfs.diff_ids)
}

pub(crate) fn parse_export_tag(tag: &str) -> Result<Reference> {
    let reference = Reference::parse(tag)
        .map_err(|e| ArchiveError::InvalidTag { tag: tag.to_string(), reason: e.reason.to_string() })?;
    if reference.digest.is_some() {
        return Err(ArchiveError::InvalidTag {
            tag: tag.to_string(),
            reason: "an archive can only carry name:tag references, not digests".into(),
        });
    }
    Ok(reference)
}

/// A layer as it goes into the archive.
pub(crate) struct LayerBlob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: MediaType,
    /// The file holding the blob's bytes.
    pub path: PathBuf,
}

/// The distinct layer blobs of an export, keyed by diffID. Compressed blobs
/// live in scratch files that go away with this value.
pub(crate) struct LayerBlobs {
    by_diff_id: BTreeMap<Digest, LayerBlob>,
    scratch_files: Vec<PathBuf>,
}

impl LayerBlobs {
    pub fn prepare(
        store: &Store,
        images: &[PlannedImage],
        compression: LayerBlobCompression,
    ) -> Result<Self> {
        let mut blobs = LayerBlobs { by_diff_id: BTreeMap::new(), scratch_files: Vec::new() };
        for layer in images.iter().flat_map(|i| &i.layers) {
            if blobs.by_diff_id.contains_key(&layer.meta.diff_id) {
                continue;
            }
            let blob = match compression {
                LayerBlobCompression::None => LayerBlob {
                    digest: layer.meta.diff_id,
                    size: layer.meta.size,
                    media_type: MediaType::ImageLayer,
                    path: store.layer_tar(layer)?,
                },
                LayerBlobCompression::Gzip | LayerBlobCompression::Zstd => {
                    let path = store.temp_path("export-layer");
                    blobs.scratch_files.push(path.clone());
                    let (digest, size) = compress_layer(&store.layer_tar(layer)?, &path, compression)?;
                    let media_type = if compression == LayerBlobCompression::Gzip {
                        MediaType::ImageLayerGzip
                    } else {
                        MediaType::ImageLayerZstd
                    };
                    LayerBlob { digest, size, media_type, path }
                }
            };
            blobs.by_diff_id.insert(layer.meta.diff_id, blob);
        }
        Ok(blobs)
    }

    pub fn get(&self, diff_id: &Digest) -> Result<&LayerBlob> {
        self.by_diff_id.get(diff_id).ok_or_else(|| {
            ArchiveError::Unsupported(format!("layer {diff_id} was not prepared for export (internal error)"))
        })
    }
}

impl Drop for LayerBlobs {
    fn drop(&mut self) {
        for path in &self.scratch_files {
            let _ = fs::remove_file(path);
        }
    }
}

/// Compresses a layer tar into `dest`, returning the compressed digest and
/// size. Gzip gets a zero mtime and no file name in its header, and both
/// encoders run single-threaded, so the bytes depend only on the input.
fn compress_layer(
    source: &std::path::Path,
    dest: &std::path::Path,
    compression: LayerBlobCompression,
) -> Result<(Digest, u64)> {
    let mut input = File::open(source).ctx("open", source)?;
    let file = File::create(dest).ctx("create", dest)?;
    let hashed = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let hashed = match compression {
        LayerBlobCompression::Gzip => {
            let mut encoder = flate2::GzBuilder::new().mtime(0).write(hashed, flate2::Compression::default());
            io::copy(&mut input, &mut encoder).ctx("compress", source)?;
            encoder.finish().ctx("compress", source)?
        }
        _ => {
            let mut encoder = zstd::stream::write::Encoder::new(hashed, 3).ctx("compress", source)?;
            io::copy(&mut input, &mut encoder).ctx("compress", source)?;
            encoder.finish().ctx("compress", source)?
        }
    };
    let (mut buffered, digest, size) = hashed.finish();
    buffered.flush().ctx("write", dest)?;
    Ok((digest, size))
}
