//! Getting images into the store from files: `rbuild load` (docker or OCI
//! archives and layouts) and `rbuild import` (a root filesystem tarball),
//! with a byte counter on a terminal.

use std::fs;
use std::io::{self, IsTerminal, Read};
use std::path::Path;

use rbuild_archive::{ImportOptions, LoadInput};
use rbuild_builder::plan::plan;
use rbuild_cache::Store;
use rbuild_frontend::lower::LowerOptions;
use rbuild_oci::config::RunConfig;
use rbuild_oci::reference::Reference;
use rbuild_oci::timefmt::Timestamp;

use crate::cli::{ImportArgs, LoadArgs};
use crate::images::progress::{ByteProgress, ProgressReader};
use crate::report::{Failure, archive_failure};
use crate::source_date_epoch;

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
        created: source_date_epoch::from_env().map_or_else(Timestamp::now, Timestamp::from_secs),
    };
    let id = rbuild_archive::import_rootfs(store, &mut reader, &opts).map_err(archive_failure)?;
    if let Some(r) = &reference {
        store.tag(&r.canonical(), &id)?;
    }
    println!("{id}");
    Ok(())
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
