//! Build records on disk: one JSON file per build under the store's
//! `state/builds/`, named `<start ms>-<id>.json` so the newest sort last
//! and an ID is known even when a file's content is damaged. Writing one
//! is a plain write and rename, no fsync: a record is a report, and a
//! no-op rebuild must not wait for the disk (a record lost to a power cut
//! is reported as unreadable, never crashes a command).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rbuild_cache::Store;

use super::model::{BuildRecord, RECORD_VERSION};
use crate::report::Failure;

/// A record file found in the store, read or not.
#[derive(Debug)]
pub struct RecordFile {
    pub id: String,
    pub started_ms: i64,
    pub path: PathBuf,
}

/// Why a record cannot be shown.
#[derive(Debug)]
pub enum Unreadable {
    Garbled(String),
    Newer(u32),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::Garbled(why) => write!(f, "it is damaged ({why})"),
            Unreadable::Newer(v) => {
                write!(
                    f,
                    "it was written by a newer rbuild (record version {v}, this one reads {RECORD_VERSION})"
                )
            }
        }
    }
}

pub fn records_dir(store: &Store) -> PathBuf {
    store.state_path("builds")
}

/// Writes `record` (its `id` and `started_ms` name the file).
pub fn save(store: &Store, record: &BuildRecord) -> io::Result<PathBuf> {
    let dir = records_dir(store);
    fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{:013}-{}.json", record.started_ms, record.id));
    // Written in the process's scratch area, which a later rbuild clears
    // if this one is killed before the rename: no half-written record is
    // ever left among the records.
    let tmp = store.temp_path("build-record");
    fs::write(&tmp, serde_json::to_vec(record).expect("a build record serializes"))?;
    fs::rename(&tmp, &path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    Ok(path)
}

/// Every record file, newest first (by name: no file is opened).
pub fn list(store: &Store) -> Result<Vec<RecordFile>, Failure> {
    let dir = records_dir(store);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Failure::new(format!("cannot list build records in {}: {e}", dir.display()))),
    };
    let mut files: Vec<RecordFile> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (started, id) = name.strip_suffix(".json")?.split_once('-')?;
            Some(RecordFile { id: id.to_string(), started_ms: started.parse().ok()?, path: e.path() })
        })
        .collect();
    files.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then_with(|| b.id.cmp(&a.id)));
    Ok(files)
}

/// Reads one record file.
pub fn read(file: &RecordFile) -> Result<BuildRecord, Unreadable> {
    let bytes = fs::read(&file.path).map_err(|e| Unreadable::Garbled(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| Unreadable::Garbled(format!("not JSON: {e}")))?;
    let version = value.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0) as u32;
    if version > RECORD_VERSION {
        return Err(Unreadable::Newer(version));
    }
    let mut record: BuildRecord =
        serde_json::from_value(value).map_err(|e| Unreadable::Garbled(e.to_string()))?;
    // The name is the authority on which record this is.
    record.id.clone_from(&file.id);
    if record.started_ms == 0 {
        record.started_ms = file.started_ms;
    }
    Ok(record)
}

/// The record `name` means: `last`, `last~N` (the N+1th newest), or a
/// unique prefix of an ID.
pub fn resolve(store: &Store, name: &str) -> Result<RecordFile, Failure> {
    let mut files = list(store)?;
    if let Some(back) = name.strip_prefix("last") {
        let n: usize = match back.strip_prefix('~') {
            None if back.is_empty() => 0,
            Some(n) => n.parse().map_err(|_| bad_name(name))?,
            None => return Err(bad_name(name)),
        };
        if n >= files.len() {
            return Err(Failure::new(format!(
                "no build record {name}: the store has {} build record{}",
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            ))
            .hint("`rbuild builds ls` lists them"));
        }
        return Ok(files.swap_remove(n));
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_name(name));
    }
    let wanted = name.to_ascii_lowercase();
    let mut matching: Vec<RecordFile> = files.into_iter().filter(|f| f.id.starts_with(&wanted)).collect();
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => Err(Failure::new(format!("no build record with ID {name}"))
            .hint("`rbuild builds ls` lists the records; `last` names the newest")),
        n => Err(Failure::new(format!(
            "build ID prefix {name} is ambiguous: {n} records match ({})",
            matching.iter().take(5).map(|f| short(&f.id)).collect::<Vec<_>>().join(", ")
        ))
        .hint("give more characters of the ID")),
    }
}

fn bad_name(name: &str) -> Failure {
    Failure::new(format!("{name:?} is not a build ID"))
        .hint("give a build ID (or a unique prefix of one), `last`, or `last~N`")
}

/// The 12 characters of an ID that listings show.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub fn remove(file: &RecordFile) -> Result<(), Failure> {
    match fs::remove_file(&file.path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(Failure::new(format!("cannot remove build record {}: {e}", file.path.display())))
        }
        _ => Ok(()),
    }
}

/// A fresh record ID: hex of a digest of the start time, the process and
/// where the build runs, so two builds started together still differ.
pub fn new_id(started_ns: u128, site: &Path) -> String {
    let seed = format!("{started_ns}\0{}\0{}", std::process::id(), site.display());
    rbuild_oci::digest::Digest::of(seed.as_bytes()).hex()[..20].to_string()
}

/// `builder prune`: removes the records whose steps have no entry left in
/// the build cache (all of them with `all`), among builds started before
/// `until` (seconds) when given. Returns how many went.
pub fn prune_with_cache(store: &Store, all: bool, until: Option<i64>) -> Result<usize, Failure> {
    let live: std::collections::BTreeSet<rbuild_oci::digest::Digest> =
        store.cache_entries()?.into_iter().map(|e| e.key).collect();
    let mut removed = 0;
    for file in list(store)? {
        if until.is_some_and(|t| file.started_ms.div_euclid(1000) >= t) {
            continue;
        }
        // A record that cannot be read explains nothing any more: it goes too.
        let orphaned =
            read(&file).map_or(true, |r| r.steps.iter().all(|s| s.key.is_none_or(|k| !live.contains(&k))));
        if all || orphaned {
            remove(&file)?;
            removed += 1;
        }
    }
    Ok(removed)
}
