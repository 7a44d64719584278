//! What a multi-platform build does with its images (one per `--platform`):
//! stored as an index under each tag (the store's platform index, the tag
//! itself on the host's image), written out (`-o type=oci`: an OCI index;
//! `-o type=local|tar`: one `linux_arm64/` directory per platform), and
//! pushed as an image index; `--annotation`s go to each platform's
//! manifest (kept in its image record), the index and their descriptors.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rbuild_archive::{ExportImage, ExportOptions};
use rbuild_builder::outcome::BuildOutput;
use rbuild_builder::snapshot::view_of;
use rbuild_cache::Store;
use rbuild_frontend::graph::StepGraph;
use rbuild_oci::digest::Digest;
use rbuild_oci::platform::Platform;
use rbuild_oci::reference::Reference;
use rbuild_registry::push::IndexAnnotations;

use super::annotations::Annotations;
use super::publish;
use super::request::Request;
use crate::output::{Output, file::write_output};
use crate::progress::Renderer;
use crate::registry::{self, Registries};
use crate::report::{Failure, archive_failure};
use crate::source_date_epoch;

/// Progress names each step with its platform as BuildKit does:
/// `[linux/arm64 app 2/3]`, and `[linux/amd64->arm64 build 2/3]` for a
/// stage on another platform than the target's.
pub fn label_stages(graph: &mut StepGraph) {
    let target = graph.platform.clone();
    for stage in &mut graph.stages {
        stage.label = if stage.platform == target {
            format!("{target} {}", stage.label)
        } else {
            let arch = target.spec().trim_start_matches(&format!("{}/", target.os)).to_string();
            format!("{}->{arch} {}", stage.platform, stage.label)
        };
    }
}

/// The stored images of a multi-platform build, in `--platform` order.
pub struct PlatformImages {
    pub images: Vec<(Platform, Digest)>,
    /// The `--annotation`s of each image (same order).
    pub annotations: Vec<Annotations>,
}

impl PlatformImages {
    /// The image a plain tag points at: the host's, else the first.
    pub fn representative(&self) -> Digest {
        let host = Platform::host();
        self.images.iter().find(|(p, _)| *p == host).unwrap_or(&self.images[0]).1
    }

    /// Each image's `manifest-descriptor` annotations, for its entry in an
    /// index.
    fn descriptor_annotations(&self) -> impl Iterator<Item = (Digest, BTreeMap<String, String>)> + '_ {
        self.images.iter().zip(&self.annotations).map(|((_, id), a)| (*id, a.manifest_descriptor.clone()))
    }
}

/// Stores every platform's image, with its manifest annotations, and makes
/// each tag an index of them.
pub fn store(
    store: &Store,
    request: &Request,
    builds: &[BuildOutput],
    progress: &dyn Renderer,
) -> Result<PlatformImages, Failure> {
    let mut images = Vec::new();
    for ((platform, built), annotations) in request.platforms.iter().zip(builds).zip(&request.annotations) {
        let id = store.put_image(&built.config_json, built.parent)?;
        publish::keep_manifest_annotations(store, &id, &annotations.manifest)?;
        progress.line(&format!("writing image {id} for {platform}"));
        images.push((platform.clone(), id));
    }
    let images = PlatformImages { images, annotations: request.annotations.clone() };
    let names: Vec<String> = request.tags.iter().map(Reference::canonical).collect();
    name(store, &images, &names, progress)?;
    Ok(images)
}

/// Points `names` at the images: the platform index gets every platform,
/// the tag the representative image.
fn name(
    store: &Store,
    images: &PlatformImages,
    names: &[String],
    progress: &dyn Renderer,
) -> Result<(), Failure> {
    store.update_platform_images(|m| {
        for name in names {
            m.insert(name.clone(), images.images.iter().map(|(p, id)| (p.spec(), *id)).collect());
        }
    })?;
    let representative = images.representative();
    store.update_refs(|refs| {
        for name in names {
            refs.refs.insert(name.clone(), representative);
        }
    })?;
    for name in names {
        let specs: Vec<String> = images.images.iter().map(|(p, _)| p.spec()).collect();
        progress.line(&format!("naming to {name} ({})", specs.join(", ")));
    }
    Ok(())
}

/// Writes the `-o` outputs (`type=docker` was refused when the flags were
/// read).
pub fn export(
    store: &Store,
    images: &PlatformImages,
    request: &Request,
    progress: &dyn Renderer,
) -> Result<(), Failure> {
    for output in &request.outputs {
        match output {
            Output::OciArchive(dest) => {
                progress.line(&format!("exporting OCI index archive to {}", dest.display()));
                let per_platform: Vec<ExportImage> =
                    images.images.iter().map(|(_, id)| ExportImage { id: *id, tags: Vec::new() }).collect();
                let names: Vec<String> = request.tags.iter().map(Reference::familiar).collect();
                let index = Annotations::for_index(&images.annotations);
                let opts = ExportOptions {
                    source_date_epoch: source_date_epoch::from_env(),
                    index_annotations: index.index,
                    index_descriptor_annotations: index.index_descriptor,
                    manifest_descriptor_annotations_by_image: images.descriptor_annotations().collect(),
                    ..Default::default()
                };
                write_output(dest, |w| {
                    rbuild_archive::write_oci_index_archive(store, &per_platform, &names, w, &opts)
                        .map_err(archive_failure)
                })?;
            }
            Output::LocalDir(dest) => {
                progress.line(&format!("exporting root filesystems to {}/<platform>", dest.display()));
                if dest.exists() && fs::read_dir(dest).map(|mut d| d.next().is_some()).unwrap_or(true) {
                    return Err(Failure::new(format!("output directory {} is not empty", dest.display()))
                        .hint("choose a new or empty directory for -o type=local,dest=DIR"));
                }
                for (platform, id) in &images.images {
                    let dir = dest.join(platform.dir_name());
                    fs::create_dir_all(&dir)
                        .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
                    let (_, config) = store.image_config(id)?;
                    let view = view_of(store, &config.rootfs.diff_ids)
                        .map_err(|e| Failure::new(e.message.clone()))?;
                    view.export_dir(&dir).map_err(|e| Failure::caused_by(&e))?;
                }
            }
            Output::RootfsTar(dest) => {
                progress.line(&format!("exporting root filesystems tar to {}", dest.display()));
                write_output(dest, |w| write_platform_tars(store, images, w))?;
            }
            Output::DockerArchive(_) => {
                unreachable!("refused with several platforms when the flags were read")
            }
        }
    }
    Ok(())
}

/// One tar with a `linux_arm64/` directory per platform: each platform's
/// flat root filesystem tar, its entries moved under the directory.
fn write_platform_tars(
    store: &Store,
    images: &PlatformImages,
    out: &mut dyn std::io::Write,
) -> Result<(), Failure> {
    let mut builder = tar::Builder::new(out);
    for (platform, id) in &images.images {
        let (_, config) = store.image_config(id)?;
        let view = view_of(store, &config.rootfs.diff_ids).map_err(|e| Failure::new(e.message.clone()))?;
        let mut flat = Vec::new();
        view.write_flat_tar(&mut flat).map_err(|e| Failure::caused_by(&e))?;
        let prefix = Path::new(&platform.dir_name()).to_path_buf();
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        builder.append_data(&mut dir, &prefix, std::io::empty()).map_err(tar_failure)?;
        let mut archive = tar::Archive::new(flat.as_slice());
        for entry in archive.entries().map_err(tar_failure)? {
            let mut entry = entry.map_err(tar_failure)?;
            let path = prefix.join(entry.path().map_err(tar_failure)?);
            let mut header = entry.header().clone();
            if let Ok(Some(link)) = entry.link_name()
                && header.entry_type() == tar::EntryType::Link
            {
                builder.append_link(&mut header, &path, prefix.join(link)).map_err(tar_failure)?;
                continue;
            }
            builder.append_data(&mut header, &path, &mut entry).map_err(tar_failure)?;
        }
    }
    builder.finish().map_err(tar_failure)
}

fn tar_failure(e: std::io::Error) -> Failure {
    Failure::new(format!("cannot write the root filesystems tar: {e}"))
}

/// Names from `-o type=image` become indexes too; then every name to push
/// (`--push`'s tags, `push=true` outputs) gets each platform's manifest and
/// then the index.
pub fn name_and_push(
    store: &Store,
    registries: &Registries,
    images: &PlatformImages,
    request: &Request,
    push_tags: bool,
    progress: &dyn Renderer,
) -> Result<(), Failure> {
    for image in &request.image_outputs {
        let names: Vec<String> = image.names.iter().map(Reference::canonical).collect();
        name(store, images, &names, progress)?;
    }
    for target in &super::publish::names_to_push(request, push_tags) {
        let session = registries.session().map_err(registry::failure)?;
        progress.line(&format!("pushing {} ({} platforms)", target.familiar(), images.images.len()));
        let annotations = IndexAnnotations {
            index: Annotations::for_index(&images.annotations).index,
            descriptors: images.descriptor_annotations().map(|(_, a)| a).collect(),
        };
        let pushed = rbuild_registry::push::push_index(&session, store, &images.images, target, &annotations)
            .map_err(registry::failure)?;
        progress.line(&format!("pushed {}@{}", target.familiar(), pushed.digest));
    }
    Ok(())
}
