//! `rbuild image prune` and `rbuild builder prune`: choose what goes (in
//! `rbuild_cache::gc`), ask first unless `-f`, then collect the layers and
//! blobs nothing references any more, and report like docker does.
//!
//! Both hold the store's gc lock exclusively from start to end, so they
//! wait for running builds, loads and imports, which hold it shared.

use rbuild_cache::Store;
use rbuild_cache::gc::{self, CacheItemKind, CachePruneOptions, ExclusiveGcLock, PruneScope};
use rbuild_cache::usage::CatalogImage;

use super::filters::{Filters, labels_match};
use super::freed::FreedLayers;
use super::lookup::familiar;
use super::units::{human_size, parse_ram_size};
use crate::cli::{BuilderPruneArgs, ImagePruneArgs};
use crate::report::Failure;

pub fn prune(store: &Store, args: ImagePruneArgs) -> Result<(), Failure> {
    let filters = Filters::parse(&args.filters, &["until", "label", "label!"])?;
    let until = filters.until()?;
    let wanted_labels = filters.values("label").to_vec();
    let unwanted_labels = filters.values("label!").to_vec();
    // Docker's own words: rbuild has no containers, so with -a every
    // image qualifies.
    let (scope, warning) = if args.all {
        (
            PruneScope::Unused,
            "WARNING! This will remove all images without at least one container associated to them.",
        )
    } else {
        (PruneScope::Dangling, "WARNING! This will remove all dangling images.")
    };
    if !args.force && !confirm(warning) {
        return Ok(());
    }
    // As the daemon filters: created at or before `until`; every `label=`
    // present; not every `label!=` present (several `label!=` spare only
    // the images that have them all).
    let selected = |image: &CatalogImage| {
        until.is_none_or(|t| image.created() <= t)
            && labels_match(&wanted_labels, image)
            && (unwanted_labels.is_empty() || !labels_match(&unwanted_labels, image))
    };
    let lock = lock_waiting(store)?;
    let pruned = gc::prune_images(store, &lock, scope, &selected)?;
    let collected = gc::collect_garbage(store, &lock)?;
    if !pruned.is_empty() {
        let mut freed = FreedLayers::new(&collected);
        println!("Deleted Images:");
        for image in &pruned {
            for name in &image.untagged {
                println!("untagged: {}", familiar(name));
            }
            if image.deleted {
                println!("deleted: {}", image.id);
                for chain_id in freed.chain_ids_of(&image.layers) {
                    println!("deleted: {chain_id}");
                }
            }
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

/// Asks "Are you sure?" as docker's prune commands do, on stdout; anything
/// but y/yes (including no input at all) is a no. Like docker, an answer
/// piped in counts; when stdin is not a terminal and gave no yes, stderr
/// says how to prune without asking, since nobody saw the question.
pub fn confirm(warning: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let answered = std::io::stdin().lock().read_line(&mut answer).is_ok();
    let yes = answered && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    if !yes && !std::io::stdin().is_terminal() {
        eprintln!(
            "nothing removed: stdin is not a terminal and did not answer yes; pass -f to prune without asking"
        );
    }
    yes
}
