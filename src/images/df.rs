//! `rbuild system df`: how much room images and the build cache take and
//! how much pruning would give back, in `docker system df`'s layout.
//!
//! * Images: every distinct layer of every image counts once. ACTIVE counts
//!   tagged images; RECLAIMABLE is what the layers no tagged image uses take
//!   (what `image prune -a` frees).
//! * Build Cache: entries and cache mounts; SIZE counts what is not also
//!   part of an image (Docker's "shared"), and all of it is reclaimable.
//!   ACTIVE counts the entries a tagged image's layers keep.

use std::collections::BTreeSet;

use gtmpl::Value;
use rbuild_cache::Store;
use rbuild_cache::gc::{CacheItem, cache_items};
use rbuild_cache::usage::{Catalog, LayerSizes};
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;
use rbuild_oci::timefmt::Timestamp;

use super::format::RowFormat;
use super::table::{align, ellipsis, short_id};
use super::template::html_escaped_object;
use super::units::{human_size, time_ago};
use crate::cli::DfArgs;
use crate::report::Failure;

const DEFAULT_FORMAT: &str = "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

struct Summary {
    kind: &'static str,
    total: usize,
    active: usize,
    size: u64,
    reclaimable: u64,
    show_percent: bool,
}

impl Summary {
    fn value(&self) -> Value {
        let reclaimable = if self.show_percent && self.size > 0 {
            format!("{} ({}%)", human_size(self.reclaimable), self.reclaimable * 100 / self.size)
        } else {
            human_size(self.reclaimable)
        };
        html_escaped_object(vec![
            ("Active", self.active.to_string().into()),
            ("Reclaimable", reclaimable.into()),
            ("Size", human_size(self.size).into()),
            ("TotalCount", self.total.to_string().into()),
            ("Type", self.kind.into()),
        ])
    }
}

fn header_value() -> Value {
    html_escaped_object(vec![
        ("Active", "ACTIVE".into()),
        ("Reclaimable", "RECLAIMABLE".into()),
        ("Size", "SIZE".into()),
        ("TotalCount", "TOTAL".into()),
        ("Type", "TYPE".into()),
    ])
}

pub fn system_df(store: &Store, args: DfArgs) -> Result<(), Failure> {
    let catalog = Catalog::read(store)?;
    let mut sizes = LayerSizes::new(store);
    let all_layers = catalog.layers_of_all_images();
    let tagged_layers = catalog.layers_of_tagged_images();
    let images = Summary {
        kind: "Images",
        total: catalog.images.len(),
        active: catalog.images.iter().filter(|i| i.is_tagged()).count(),
        size: all_layers.iter().map(|l| sizes.layer(l)).sum(),
        reclaimable: all_layers.difference(&tagged_layers).map(|l| sizes.layer(l)).sum(),
        show_percent: true,
    };
    let items = cache_items(store, &catalog, &mut sizes)?;
    let cache_size = unshared_size(&items);
    let cache = Summary {
        kind: "Build Cache",
        total: items.len(),
        active: items.iter().filter(|i| i.in_use).count(),
        size: cache_size,
        reclaimable: cache_size,
        show_percent: false,
    };
    if args.verbose && args.format.is_none() {
        return print_verbose(&catalog, &mut sizes, &items);
    }
    let format = RowFormat::parse(args.format.as_deref(), DEFAULT_FORMAT, false)?;
    format.print(&header_value(), [images.value(), cache.value()])
}

/// The cache's own storage: each layer no image shares counted once, plus mounts.
fn unshared_size(items: &[CacheItem]) -> u64 {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    items
        .iter()
        .filter(|i| !i.shared)
        .filter(|i| match &i.kind {
            rbuild_cache::gc::CacheItemKind::Step(record) => {
                record.layer.is_none_or(|l| seen.insert(l.to_string()))
            }
            rbuild_cache::gc::CacheItemKind::Mount(_) => true,
        })
        .map(|i| i.size)
        .sum()
}

/// `docker system df -v`: a row per image and per cache entry.
fn print_verbose(catalog: &Catalog, sizes: &mut LayerSizes<'_>, items: &[CacheItem]) -> Result<(), Failure> {
    // How many images use each layer, for SHARED SIZE.
    let mut users: std::collections::BTreeMap<Digest, usize> = Default::default();
    for image in &catalog.images {
        let distinct: BTreeSet<Digest> = image.config.rootfs.diff_ids.iter().copied().collect();
        for layer in distinct {
            *users.entry(layer).or_default() += 1;
        }
    }
    let mut text =
        String::from("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n");
    for image in &catalog.images {
        let size = sizes.image(&image.config);
        let shared: u64 = image
            .config
            .rootfs
            .diff_ids
            .iter()
            .filter(|l| users.get(l).copied().unwrap_or(0) > 1)
            .map(|l| sizes.layer(l))
            .sum();
        let names: Vec<(String, String)> = if image.tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            image
                .tags
                .iter()
                .filter_map(|t| Reference::parse(t).ok())
                .map(|r| (r.familiar_name(), r.tag.unwrap_or_default()))
                .collect()
        };
        for (repository, tag) in names {
            text.push_str(&format!(
                "{repository}\t{tag}\t{}\t{}\t{}\t{}\t{}\t0\n",
                short_id(&image.id().to_string()),
                time_ago(image.created()),
                human_size(size),
                human_size(shared),
                human_size(size - shared),
            ));
        }
    }
    print!("Images space usage:\n\n{}\n", align(&text));
    println!("Build cache usage: {}\n", human_size(unshared_size(items)));
    let mut text = String::from("CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tSHARED\tDESCRIPTION\n");
    for item in items {
        let kind = match item.kind {
            rbuild_cache::gc::CacheItemKind::Step(_) => "regular",
            rbuild_cache::gc::CacheItemKind::Mount(_) => "exec.cachemount",
        };
        text.push_str(&format!(
            "{}\t{kind}\t{}\t{}\t{}\t{}\t{}\n",
            short_id(&item.id()),
            human_size(item.size),
            time_ago(Timestamp::from_secs(item.created)),
            time_ago(Timestamp::from_secs(item.last_used)),
            item.shared,
            ellipsis(&item.description(), 60),
        ));
    }
    print!("{}", align(&text));
    Ok(())
}
