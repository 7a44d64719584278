//! Getting images in and out: `rbuild load`, `rbuild import`, and the
//! build outputs (docker/OCI archives, a root filesystem dir or tar).

use std::fs;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

use rbuild_archive::{ExportImage, ExportOptions, ImportOptions, LoadInput};
use rbuild_builder::plan::plan;
use rbuild_builder::snapshot::view_of;
use rbuild_cache::Store;
use rbuild_frontend::lower::LowerOptions;
use rbuild_oci::config::{ImageConfig, RunConfig};
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;
use rbuild_oci::timefmt::Timestamp;

use crate::build::Output;
use crate::cli::{ImportArgs, LoadArgs};
use crate::images::progress::{ByteProgress, ProgressReader};
use crate::progress::Renderer;
use crate::report::Failure;

fn archive_failure(e: rbuild_archive::ArchiveError) -> Failure {
    Failure::new(rbuild_builder::error::chain(&e))
        .hint("the store is unchanged; check the file is a complete docker save or OCI archive")
}

pub fn load(store: &Store, args: LoadArgs) -> Result<(), Failure> {
    let input = match &args.input {
        Some(p) if p.is_dir() => LoadInput::Dir(p.clone()),
        Some(p) => LoadInput::Reader(open_counted(p, "loading")?),
        None => {
            if io::stdin().is_terminal() {
                return Err(Failure::new("no input: stdin is a terminal")
                    .hint("use -i FILE or pipe an archive into rbuild load"));
            }
            LoadInput::Reader(counted(io::stdin(), "loading", None))
        }
    };
    let loaded = rbuild_archive::load(store, input).map_err(archive_failure)?;
    for image in &loaded {
        if image.tags.is_empty() {
            println!("Loaded image ID: {}", image.id);
        }
        for t in &image.tags {
            let shown = Reference::parse(t).map(|r| r.familiar()).unwrap_or_else(|_| t.to_string());
            if args.quiet {
                println!("{shown}");
            } else {
                println!("Loaded image: {shown}");
            }
        }
    }
    Ok(())
}

/// Turns `-c` changes (Dockerfile instructions) into the image's run config.
fn changes_to_config(store: &Store, changes: &[String]) -> Result<RunConfig, Failure> {
    if changes.is_empty() {
        return Ok(RunConfig::default());
    }
    let mut text = String::from("FROM scratch\n");
    for c in changes {
        text.push_str(c);
        text.push('\n');
    }
    let planned = plan(store, &text, &LowerOptions::default()).map_err(|e| {
        Failure::new(format!("invalid --change: {}", e.message))
            .hint("each change is one Dockerfile instruction, e.g. -c 'CMD [\"sh\"]'")
    })?;
    for stage in &planned.graph.stages {
        for step in &stage.steps {
            if step.is_filesystem() {
                return Err(Failure::new(format!(
                    "--change {} would change files; only metadata instructions are allowed",
                    step.text
                )));
            }
        }
    }
    let mut meta = planned.graph.stages[planned.graph.target].meta.clone();
    // FROM scratch adds a default PATH; an imported image has none unless asked.
    if !changes.iter().any(|c| c.trim_start().to_ascii_uppercase().starts_with("ENV")) {
        meta.env.clear();
    }
    Ok(rbuild_builder::meta::config_from_meta(&meta))
}

pub fn import(store: &Store, args: ImportArgs) -> Result<(), Failure> {
    let reference = args
        .reference
        .as_deref()
        .map(|r| Reference::parse(r).map_err(|e| Failure::new(format!("invalid reference {r:?}: {e}"))))
        .transpose()?;
    let mut reader: Box<dyn Read> = if args.file.as_os_str() == "-" {
        counted(io::stdin(), "importing", None)
    } else {
        open_counted(&args.file, "importing")?
    };
    let opts = ImportOptions {
        changes: changes_to_config(store, &args.changes)?,
        message: args.message.clone(),
        // SOURCE_DATE_EPOCH makes imports reproducible too.
        created: source_date_epoch().map_or_else(Timestamp::now, Timestamp::from_secs),
    };
    let id = rbuild_archive::import_rootfs(store, &mut reader, &opts).map_err(archive_failure)?;
    if let Some(r) = &reference {
        store.tag(&r.canonical(), &id)?;
    }
    println!("{id}");
    Ok(())
}

/// Writes one build output.
pub fn export(
    store: &Store,
    id: &Digest,
    config: &ImageConfig,
    tags: &[Reference],
    output: &Output,
    progress: &dyn Renderer,
) -> Result<(), Failure> {
    let images = [ExportImage { id: *id, tags: tags.iter().map(|t| t.familiar()).collect() }];
    let opts = ExportOptions { source_date_epoch: source_date_epoch(), ..Default::default() };
    match output {
        Output::DockerArchive(dest) => {
            progress.line(&format!("exporting docker archive to {}", dest.display()));
            crate::output_file::write_output(dest, |w| {
                rbuild_archive::write_docker_archive(store, &images, w, &opts).map_err(archive_failure)
            })
        }
        Output::OciArchive(dest) => {
            progress.line(&format!("exporting OCI archive to {}", dest.display()));
            crate::output_file::write_output(dest, |w| {
                rbuild_archive::write_oci_archive(store, &images, w, &opts).map_err(archive_failure)
            })
        }
        Output::RootfsTar(dest) => {
            progress.line(&format!("exporting root filesystem tar to {}", dest.display()));
            let view =
                view_of(store, &config.rootfs.diff_ids).map_err(|e| Failure::new(e.message.clone()))?;
            crate::output_file::write_output(dest, |w| {
                view.write_flat_tar(w).map(|_| ()).map_err(|e| Failure::new(rbuild_builder::error::chain(&e)))
            })
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
fn export_dir(view: &rbuild_layer::LayerStack, dest: &PathBuf) -> Result<(), Failure> {
    if dest.exists() && fs::read_dir(dest).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Failure::new(format!("output directory {} is not empty", dest.display()))
            .hint("choose a new or empty directory for -o type=local,dest=DIR"));
    }
    fs::create_dir_all(dest).map_err(|e| Failure::new(format!("cannot create {}: {e}", dest.display())))?;
    view.export_dir(dest).map(|_| ()).map_err(|e| Failure::new(rbuild_builder::error::chain(&e)))
}

/// `SOURCE_DATE_EPOCH` from the environment, when set to a number.
pub fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok())
}

/// A reader that shows bytes read on a terminal (nothing otherwise).
fn counted<R: Read + 'static>(inner: R, label: &str, total: Option<u64>) -> Box<dyn Read> {
    Box::new(ProgressReader { inner, progress: ByteProgress::new(label, total) })
}

fn open_counted(path: &Path, label: &str) -> Result<Box<dyn Read>, Failure> {
    let file =
        fs::File::open(path).map_err(|e| Failure::new(format!("cannot open {}: {e}", path.display())))?;
    let size = file.metadata().ok().map(|m| m.len());
    Ok(counted(file, label, size))
}
