//! Writing a built image out as the user asked with `-o`: a docker or OCI
//! archive (through [`super::file::write_output`], so a failed export
//! leaves nothing half-written), the root filesystem as one tar, or the
//! root filesystem as a directory.

use std::fs;
use std::path::Path;

use rbuild_archive::{ExportImage, ExportOptions};
use rbuild_builder::snapshot::view_of;
use rbuild_cache::Store;
use rbuild_layer::LayerStack;
use rbuild_oci::config::ImageConfig;
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;

use super::file::write_output;
use super::spec::Output;
use crate::build::Annotations;
use crate::progress::Renderer;
use crate::report::{Failure, archive_failure};
use crate::source_date_epoch;

/// Writes one build output.
pub fn export(
    store: &Store,
    id: &Digest,
    config: &ImageConfig,
    tags: &[Reference],
    annotations: &Annotations,
    output: &Output,
    progress: &dyn Renderer,
) -> Result<(), Failure> {
    let images = [ExportImage { id: *id, tags: tags.iter().map(|t| t.familiar()).collect() }];
    let opts = ExportOptions {
        source_date_epoch: source_date_epoch::from_env(),
        index_annotations: annotations.index.clone(),
        manifest_descriptor_annotations: annotations.manifest_descriptor.clone(),
        ..Default::default()
    };
    match output {
        Output::DockerArchive(dest) => {
            progress.line(&format!("exporting docker archive to {}", dest.display()));
            write_output(dest, |w| {
                rbuild_archive::write_docker_archive(store, &images, w, &opts).map_err(archive_failure)
            })
        }
        Output::OciArchive(dest) => {
            progress.line(&format!("exporting OCI archive to {}", dest.display()));
            write_output(dest, |w| {
                rbuild_archive::write_oci_archive(store, &images, w, &opts).map_err(archive_failure)
            })
        }
        Output::RootfsTar(dest) => {
            progress.line(&format!("exporting root filesystem tar to {}", dest.display()));
            let view =
                view_of(store, &config.rootfs.diff_ids).map_err(|e| Failure::new(e.message.clone()))?;
            write_output(dest, |w| view.write_flat_tar(w).map(|_| ()).map_err(|e| Failure::caused_by(&e)))
        }
        Output::LocalDir(dest) => {
            progress.line(&format!("exporting root filesystem to {}", dest.display()));
            let view =
                view_of(store, &config.rootfs.diff_ids).map_err(|e| Failure::new(e.message.clone()))?;
            export_dir(&view, dest)
        }
    }
}

/// Writes the merged tree into `dest` (created if missing; must be empty or absent).
fn export_dir(view: &LayerStack, dest: &Path) -> Result<(), Failure> {
    if dest.exists() && fs::read_dir(dest).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Failure::new(format!("output directory {} is not empty", dest.display()))
            .hint("choose a new or empty directory for -o type=local,dest=DIR"));
    }
    fs::create_dir_all(dest).map_err(|e| Failure::new(format!("cannot create {}: {e}", dest.display())))?;
    view.export_dir(dest).map(|_| ()).map_err(|e| Failure::caused_by(&e))
}
