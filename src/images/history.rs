//! `rbuild history`: one row per entry of the image config's history,
//! newest first, with the columns and truncation of `docker history`.
//!
//! Each entry that is not an `empty_layer` made the next layer of
//! `rootfs.diff_ids`, and its SIZE is that layer's size. The IMAGE column
//! names the image on its newest row and, where this store knows the base
//! image the build started from, that image on the row where its own
//! history ends; other rows are `<missing>`, as in docker.

use gtmpl::Value;
use rbuild_cache::Store;
use rbuild_cache::usage::{Catalog, LayerSizes};
use rbuild_oci::digest::Digest;
use rbuild_oci::timefmt::Timestamp;

use super::format::RowFormat;
use super::lookup::{no_such_image, resolve_image};
use super::table::{ellipsis, short_id};
use super::template::html_escaped_object;
use super::units::{image_size, rfc3339_seconds, time_ago};
use crate::cli::HistoryArgs;
use crate::report::Failure;

const DEFAULT_FORMAT: &str = "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
/// Docker cuts CREATED BY to this many characters unless --no-trunc.
const CREATED_BY_WIDTH: usize = 45;

/// One history entry, resolved against the image's layers.
struct Entry {
    id: Option<Digest>,
    created: Timestamp,
    created_by: String,
    size: u64,
    comment: String,
}

pub fn history(store: &Store, args: HistoryArgs) -> Result<(), Failure> {
    let id = resolve_image(store, &args.image)?;
    let catalog = Catalog::read(store)?;
    let entries = entries(store, &catalog, &id).ok_or_else(|| no_such_image(&args.image))??;
    print_entries(&entries, &args)
}

/// The image's history, newest first; `None` when the image is gone.
fn entries(store: &Store, catalog: &Catalog, id: &Digest) -> Option<Result<Vec<Entry>, Failure>> {
    let image = catalog.get(id)?;
    let history = &image.config.history;
    let layers = &image.config.rootfs.diff_ids;
    let mut sizes = LayerSizes::new(store);
    let mut next_layer = 0;
    let mut out = Vec::with_capacity(history.len());
    for entry in history {
        let size = if entry.empty_layer {
            0
        } else {
            let Some(layer) = layers.get(next_layer) else {
                return Some(Err(Failure::new(format!(
                    "image {id} is inconsistent: its history has more non-empty entries than it has layers"
                ))));
            };
            next_layer += 1;
            sizes.layer(layer)
        };
        out.push(Entry {
            id: None,
            created: entry
                .created
                .as_deref()
                .and_then(Timestamp::parse_rfc3339)
                .unwrap_or(Timestamp::from_secs(0)),
            created_by: entry.created_by.clone().unwrap_or_default().replace('\t', " "),
            size,
            comment: entry.comment.clone().unwrap_or_default(),
        });
    }
    // Name the rows where this image and its recorded bases end.
    let mut current = Some(image);
    while let Some(img) = current {
        let len = img.config.history.len();
        let is_prefix = len <= history.len() && history[..len] == img.config.history[..];
        if !is_prefix || len == 0 {
            break;
        }
        if out[len - 1].id.is_none() {
            out[len - 1].id = Some(img.id());
        }
        current = img.record.parent.and_then(|p| catalog.get(&p));
    }
    out.reverse();
    Some(Ok(out))
}

fn row_value(entry: &Entry, args: &HistoryArgs) -> Value {
    let id = match (&entry.id, args.no_trunc) {
        (None, _) => "<missing>".to_string(),
        (Some(id), true) => id.to_string(),
        (Some(id), false) => short_id(&id.to_string()),
    };
    let created_at = rfc3339_seconds(entry.created);
    let created_by =
        if args.no_trunc { entry.created_by.clone() } else { ellipsis(&entry.created_by, CREATED_BY_WIDTH) };
    let (created_since, size) = if args.human {
        (time_ago(entry.created), image_size(entry.size))
    } else {
        (created_at.clone(), entry.size.to_string())
    };
    html_escaped_object(vec![
        ("Comment", entry.comment.clone().into()),
        ("CreatedAt", created_at.into()),
        ("CreatedBy", created_by.into()),
        ("CreatedSince", created_since.into()),
        ("ID", id.into()),
        ("Size", size.into()),
    ])
}

fn header_value() -> Value {
    html_escaped_object(vec![
        ("Comment", "COMMENT".into()),
        ("CreatedAt", "CREATED AT".into()),
        ("CreatedBy", "CREATED BY".into()),
        ("CreatedSince", "CREATED".into()),
        ("ID", "IMAGE".into()),
        ("Size", "SIZE".into()),
    ])
}

fn print_entries(entries: &[Entry], args: &HistoryArgs) -> Result<(), Failure> {
    let format = RowFormat::parse(args.format.as_deref(), DEFAULT_FORMAT, args.quiet)?;
    format.print(&header_value(), entries.iter().map(|entry| row_value(entry, args)))
}
