//! `rbuild image prune` and `rbuild builder prune`: choose what goes (in
//! `rbuild_cache::gc`), ask first unless `-f`, then collect the layers and
//! blobs nothing references any more, and report like docker does.
//!
//! Both hold the store's gc lock exclusively from start to end, so they
//! wait for running builds, loads and imports, which hold it shared.

use rbuild_cache::Store;
use rbuild_cache::gc::{self, CacheItemKind, CachePruneOptions, ExclusiveGcLock};
use rbuild_cache::usage::CatalogImage;

use super::filters::{Filters, labels_match};
use super::units::{human_size, parse_ram_size};
use crate::cli::{BuilderPruneArgs, ImagePruneArgs};
use crate::report::Failure;

pub fn prune(store: &Store, args: ImagePruneArgs) -> Result<(), Failure> {
    let filters = Filters::parse(&args.filters, &["until", "label", "label!"])?;
    let until = filters.until()?;
    let wanted_labels = filters.values("label").to_vec();
    let unwanted_labels = filters.values("label!").to_vec();
    let warning = if args.all {
        "WARNING! This will remove all images without at least one tag."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !args.force && !confirm(warning) {
        return Ok(());
    }
    let selected = |image: &CatalogImage| {
        until.is_none_or(|t| image.created() < t)
            && labels_match(&wanted_labels, image)
            && (unwanted_labels.is_empty()
                || !unwanted_labels.iter().any(|l| labels_match(std::slice::from_ref(l), image)))
    };
    let lock = lock_waiting(store)?;
    let pruned = gc::prune_images(store, &lock, args.all, &selected)?;
    let collected = gc::collect_garbage(store, &lock)?;
    if !pruned.is_empty() {
        println!("Deleted Images:");
        for image in &pruned {
            println!("deleted: {}", image.id);
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(collected.reclaimed()));
    Ok(())
}

/// What `builder prune` removes besides the cache: the build records whose
/// steps it no longer holds (`all`: every record; `until`: only older ones).
/// Given by the caller, as records are a layer above the image commands.
pub type RecordPruner<'a> = &'a dyn Fn(&Store, bool, Option<i64>) -> Result<usize, Failure>;

pub fn builder_prune(
    store: &Store,
    args: BuilderPruneArgs,
    prune_records: RecordPruner<'_>,
) -> Result<(), Failure> {
    let filters = Filters::parse(&args.filters, &["until"])?;
    let options = CachePruneOptions {
        all: args.all,
        unused_since: filters.until()?.map(|t| t.secs),
        keep_bytes: args
            .keep_storage
            .as_deref()
            .map(parse_ram_size)
            .transpose()
            .map_err(|e| Failure::new(e).hint("--keep-storage takes a size like 512MB or 2GB"))?,
    };
    let warning = if args.all {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    if !args.force && !confirm(warning) {
        return Ok(());
    }
    let lock = lock_waiting(store)?;
    let report = gc::prune_cache(store, &lock, &options)?;
    let collected = gc::collect_garbage(store, &lock)?;
    let records = prune_records(store, args.all, options.unused_since)?;
    let mounts: u64 =
        report.removed.iter().filter(|i| matches!(i.kind, CacheItemKind::Mount(_))).map(|i| i.size).sum();
    if !report.removed.is_empty() {
        println!("Deleted build cache objects:");
        for item in &report.removed {
            println!("{}", item.id());
        }
        println!();
    }
    if records > 0 {
        println!("Deleted build records: {records}");
    }
    println!("Total reclaimed space: {}", human_size(collected.reclaimed() + mounts));
    Ok(())
}

/// Takes the gc lock exclusively, saying so when it has to wait.
fn lock_waiting(store: &Store) -> Result<ExclusiveGcLock, Failure> {
    if let Some(lock) = gc::try_lock_exclusive(store)? {
        return Ok(lock);
    }
    eprintln!("waiting for running builds, loads and imports to finish…");
    Ok(gc::lock_exclusive(store)?)
}

/// Asks "Are you sure?" on the terminal the way docker's prune commands do;
/// anything but y/yes (including no input at all) is a no.
pub fn confirm(warning: &str) -> bool {
    use std::io::{BufRead, Write};
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
