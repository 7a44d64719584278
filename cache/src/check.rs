//! `rbuild system check`: reads the whole store and says what is wrong.
//!
//! Checked: every blob hashes to its name; every layer's `layer.tar` hashes
//! to its diffID, its `fs/` snapshot exists and its directory is where the
//! diffID says; every image record names an existing, readable config blob
//! whose layers are all present; every tag points at an image record; every
//! build cache entry's layer is present. Nothing is changed.

use std::fs;
use std::io;
use std::path::Path;

use crate::store::{Result, Store, sha256_of_file};
use rbuild_oci::config::ImageConfig;
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::IoError;
use rbuild_oci::parallel::map_chunks;

/// One inconsistency, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is damaged: `blob sha256:…`, `layer sha256:…`, `tag app:v1`, …
    pub subject: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// What was looked at, for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub blobs: usize,
    pub layers: usize,
    pub images: usize,
    pub tags: usize,
    pub cache_entries: usize,
    pub problems: Vec<Problem>,
}

/// Checks everything (see the module docs). Hashing every blob and layer is
/// the slow part; it runs on as many threads as there are cores.
pub fn check_store(store: &Store) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    check_blobs(store, &mut report)?;
    report.problems.extend(check_layer_dirs(store)?);
    check_layers(store, &mut report)?;
    let images = store.list_images()?;
    report.images = images.len();
    for record in &images {
        report.problems.extend(check_image(store, &record.id));
    }
    report.problems.extend(check_image_record_files(store)?);
    let refs = store.refs()?;
    report.tags = refs.refs.len();
    for (tag, id) in &refs.refs {
        if !images.iter().any(|r| r.id == *id) {
            report
                .problems
                .push(problem(format!("tag {tag}"), format!("points at {id}, which is not in the store")));
        }
    }
    let entries = store.cache_entries()?;
    report.cache_entries = entries.len();
    for entry in &entries {
        if let Some(layer) = &entry.layer
            && !matches!(store.layer(layer), Ok(Some(_)))
        {
            report.problems.push(problem(
                format!("cache entry {}", entry.key.hex()),
                format!("its layer {layer} is missing ({})", entry.description),
            ));
        }
    }
    report.problems.extend(check_cache_files(store, entries.len())?);
    Ok(report)
}

fn problem(subject: String, message: String) -> Problem {
    Problem { subject, message }
}

/// Every blob's content against its digest.
fn check_blobs(store: &Store, report: &mut CheckReport) -> Result<()> {
    let blobs = store.list_blobs()?;
    report.blobs = blobs.len();
    let blob_problems = parallel_map(&blobs, |digest| {
        let path = store.blob_path(digest);
        match sha256_of_file(&path) {
            Ok(actual) if actual == *digest => None,
            Ok(actual) => Some(format!("content has digest {actual}")),
            Err(e) => Some(format!("cannot read {}: {e}", path.display())),
        }
    });
    for (digest, message) in blobs.iter().zip(blob_problems) {
        if let Some(message) = message {
            report.problems.push(problem(format!("blob {digest}"), message));
        }
    }
    Ok(())
}

/// Every layer: where it is kept, its tar against its diffID, its snapshot.
fn check_layers(store: &Store, report: &mut CheckReport) -> Result<()> {
    let layers = store.list_layers()?;
    report.layers = layers.len();
    let layer_problems = parallel_map(&layers, |layer| {
        let diff_id = layer.meta.diff_id;
        let mut found = Vec::new();
        if layer.dir != store.layer_dir(&diff_id) {
            found.push(format!(
                "stored in {} instead of {}",
                layer.dir.display(),
                store.layer_dir(&diff_id).display()
            ));
        }
        match store.layer_tar_digest(layer) {
            Ok(actual) if actual == diff_id => {}
            Ok(actual) if layer.tar_path().exists() => {
                found.push(format!("layer.tar has digest {actual}, not its diffID"))
            }
            Ok(actual) => {
                found.push(format!("its snapshot makes a tar with digest {actual}, not its diffID"))
            }
            Err(e) => found.push(format!("cannot read {}: {e}", layer.dir.display())),
        }
        if !layer.fs_path().is_dir() {
            found.push(format!("its snapshot {} is missing", layer.fs_path().display()));
        }
        found
    });
    for (layer, messages) in layers.iter().zip(layer_problems) {
        for message in messages {
            report.problems.push(problem(format!("layer {}", layer.meta.diff_id), message));
        }
    }
    Ok(())
}

/// One image: a readable config whose every layer is in the store.
fn check_image(store: &Store, id: &Digest) -> Vec<Problem> {
    let subject = format!("image {id}");
    let bytes = match store.read_blob(id) {
        Ok(bytes) => bytes,
        Err(e) => return vec![problem(subject, format!("config blob unreadable: {e}"))],
    };
    let config = match ImageConfig::from_json(&bytes) {
        Ok(config) => config,
        Err(e) => return vec![problem(subject, format!("config is not valid JSON: {e}"))],
    };
    config
        .rootfs
        .diff_ids
        .iter()
        .enumerate()
        .filter(|(_, diff_id)| !matches!(store.layer(diff_id), Ok(Some(_))))
        .map(|(index, diff_id)| problem(subject.clone(), format!("layer {index} ({diff_id}) is missing")))
        .collect()
}

/// Layer directories that [`Store::list_layers`] cannot read (no or bad
/// `meta.json`): the store skips them, so they would go unnoticed.
fn check_layer_dirs(store: &Store) -> Result<Vec<Problem>> {
    let dir = store.root().join("layers");
    let mut problems = Vec::new();
    for entry in read_dir(&dir)? {
        let meta = entry.path().join("meta.json");
        let readable = fs::read(&meta)
            .ok()
            .and_then(|b| serde_json::from_slice::<crate::store::LayerMeta>(&b).ok())
            .is_some();
        if !readable {
            problems.push(Problem {
                subject: format!("layer directory {}", entry.path().display()),
                message: "meta.json is missing or unreadable".into(),
            });
        }
    }
    Ok(problems)
}

/// Image record files the store cannot parse.
fn check_image_record_files(store: &Store) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    for entry in read_dir(&store.root().join("images"))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".json").and_then(|hex| Digest::parse(hex).ok()) else {
            continue;
        };
        match store.image_record(&id) {
            Ok(Some(record)) if record.id == id => {}
            Ok(Some(record)) => problems.push(Problem {
                subject: format!("image record {name}"),
                message: format!("names image {}", record.id),
            }),
            Ok(None) => {}
            Err(e) => {
                problems.push(Problem { subject: format!("image record {name}"), message: e.to_string() })
            }
        }
    }
    Ok(problems)
}

/// Cache index files that do not parse (the index treats them as misses).
fn check_cache_files(store: &Store, parsed: usize) -> Result<Vec<Problem>> {
    let files: Vec<_> = read_dir(&store.root().join("cache"))?
        .into_iter()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .collect();
    if files.len() == parsed {
        return Ok(Vec::new());
    }
    Ok(files
        .into_iter()
        .filter(|e| {
            fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<crate::index::CacheRecord>(&b).ok())
                .is_none()
        })
        .map(|e| Problem {
            subject: format!("cache entry {}", e.path().display()),
            message: "not a readable cache record".into(),
        })
        .collect())
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let io_err = |source| IoError::new("list", dir, source);
    Ok(fs::read_dir(dir).map_err(io_err)?.collect::<io::Result<Vec<_>>>().map_err(io_err)?)
}

/// Maps `items` on all cores, keeping the order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_chunks(items, 1, |part| part.iter().map(&f).collect())
}
