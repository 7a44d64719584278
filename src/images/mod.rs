//! The image workflow commands: images, tag, rmi, inspect, history, save,
//! image prune, builder prune, system df and system check. Each behaves as
//! its `docker` namesake does, on rbuild's store.
//!
//! This file holds what several commands share: finding an image by name
//! or ID, `--filter` parsing, label matching, and `rbuild tag`.
//! Submodules: `list` (images), `rmi`, `inspect`, `history`, `save`,
//! `prune` (image and builder prune), `df`, `check`, and the shared output
//! pieces `table` (docker's column alignment), `template` (Go templates),
//! `units` (sizes and times) and `progress` (byte counters on a terminal).

mod check;
mod df;
mod history;
mod inspect;
mod list;
pub mod progress;
mod prune;
mod rmi;
mod save;
mod table;
mod template;
mod units;

use std::collections::BTreeMap;

use rbuild_cache::store::ResolveError;
use rbuild_cache::usage::CatalogImage;
use rbuild_cache::{Store, StoreError};
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;
use rbuild_oci::timefmt::Timestamp;

pub use check::system_check;
pub use df::system_df;
pub use history::history;
pub use inspect::inspect;
pub use list::list;
pub use prune::{builder_prune, prune};
pub use rmi::rmi;
pub use save::save;

use crate::cli::TagArgs;
use crate::report::Failure;

/// Finds an image the way `docker` does: by tag (`app`, `app:v1`,
/// `docker.io/library/app:v1`), by repo digest (`app@sha256:…`), by full ID
/// (`sha256:…` or bare hex), or by a unique prefix of the ID.
pub(crate) fn resolve_image(store: &Store, query: &str) -> Result<Digest, Failure> {
    let reference = Reference::parse(query);
    if let Ok(r) = &reference
        && let Some(digest) = &r.digest
    {
        let wanted = [r.canonical(), r.familiar(), format!("{}@{digest}", r.familiar_name())];
        for record in store.list_images()? {
            if record.repo_digests.iter().any(|d| wanted.contains(d)) {
                return Ok(record.id);
            }
        }
        if r.tag.is_none() {
            return Err(no_such_image(query));
        }
    }
    let canonical = reference.as_ref().ok().map(Reference::canonical);
    match store.resolve_image(query, canonical.as_deref()) {
        Ok(id) => Ok(id),
        Err(StoreError::Resolve(ResolveError::NotFound(_))) => match reference {
            // Not found, and not even a valid name: say what is wrong with it.
            Err(e) if !is_hex(query) => Err(Failure::new(e.to_string())
                .hint("an image is named like name:tag, registry/name:tag, or by its ID")),
            _ => Err(no_such_image(query)),
        },
        Err(StoreError::Resolve(ResolveError::Ambiguous(prefix, n))) => {
            Err(Failure::new(format!("image ID prefix {prefix} is ambiguous: it matches {n} images"))
                .hint("give more characters of the ID, or a tag"))
        }
        Err(e) => Err(e.into()),
    }
}

fn is_hex(text: &str) -> bool {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn no_such_image(query: &str) -> Failure {
    Failure::new(format!("No such image: {query}")).hint("`rbuild images` lists the images in the store")
}

/// Parses a name given on the command line, with Docker's default tag.
pub(crate) fn parse_reference(text: &str) -> Result<Reference, Failure> {
    Reference::parse(text).map_err(|e| {
        Failure::new(e.to_string()).hint("an image name looks like name:tag or registry:5000/team/name:tag")
    })
}

/// The short form of a canonical tag from the store.
pub(crate) fn familiar(canonical: &str) -> String {
    Reference::parse(canonical).map(|r| r.familiar()).unwrap_or_else(|_| canonical.to_string())
}

/// `--filter key=value` flags, grouped by key.
#[derive(Debug, Default)]
pub(crate) struct Filters {
    by_key: BTreeMap<String, Vec<String>>,
}

impl Filters {
    /// Parses the flags, refusing keys the command does not know, as the
    /// daemon does (`invalid filter 'x'`).
    pub fn parse(flags: &[String], known: &[&str]) -> Result<Filters, Failure> {
        let mut filters = Filters::default();
        for flag in flags {
            let Some((key, value)) = flag.split_once('=') else {
                return Err(Failure::new(format!("bad format of filter {flag:?} (expected name=value)")));
            };
            let key = key.trim().to_ascii_lowercase();
            if !known.contains(&key.as_str()) {
                return Err(Failure::new(format!("invalid filter '{key}'"))
                    .hint(format!("filters here are: {}", known.join(", "))));
            }
            filters.add(&key, value);
        }
        Ok(filters)
    }

    pub fn add(&mut self, key: &str, value: &str) {
        self.by_key.entry(key.to_string()).or_default().push(value.to_string());
    }

    pub fn values(&self, key: &str) -> &[String] {
        self.by_key.get(key).map_or(&[], Vec::as_slice)
    }

    /// A boolean filter (`dangling=true`); `None` when not given.
    pub fn bool_value(&self, key: &str) -> Result<Option<bool>, Failure> {
        let Some(value) = self.values(key).last() else { return Ok(None) };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(Failure::new(format!("invalid filter '{key}={value}'"))
                .hint(format!("use {key}=true or {key}=false"))),
        }
    }

    /// `until=` as a time: images or entries made before it qualify.
    pub fn until(&self) -> Result<Option<Timestamp>, Failure> {
        self.values("until").last().map(|v| units::parse_until(v).map_err(Failure::new)).transpose()
    }
}

/// Whether an image has every `label=KEY` / `label=KEY=VALUE` asked for.
pub(crate) fn labels_match(wanted: &[String], image: &CatalogImage) -> bool {
    let labels = image.config.config.labels.as_ref();
    wanted.iter().all(|filter| {
        let (key, value) = match filter.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (filter.as_str(), None),
        };
        match labels.and_then(|l| l.get(key)) {
            Some(actual) => value.is_none_or(|v| v == actual),
            None => false,
        }
    })
}

/// Where `rbuild tag` notes when an image was last tagged (`inspect`'s
/// `Metadata.LastTagTime`).
fn last_tag_time_path(store: &Store, id: &Digest) -> std::path::PathBuf {
    store.state_path(&format!("last-tag-time/{}", id.hex()))
}

pub(crate) fn last_tag_time(store: &Store, id: &Digest) -> Option<Timestamp> {
    let text = std::fs::read_to_string(last_tag_time_path(store, id)).ok()?;
    Timestamp::parse_rfc3339(text.trim())
}

/// `rbuild tag SOURCE TARGET`: points TARGET at SOURCE's image. A tag that
/// pointed elsewhere moves; the image it leaves may become `<none>`.
pub fn tag(store: &Store, args: TagArgs) -> Result<(), Failure> {
    let id = resolve_image(store, &args.source)?;
    let target = parse_reference(&args.target)?;
    if target.digest.is_some() {
        return Err(Failure::new(format!(
            "refusing to create a tag with a digest reference: {}",
            args.target
        ))
        .hint("a tag is name:tag; digests come from registries"));
    }
    store.tag(&target.canonical(), &id)?;
    let path = last_tag_time_path(store, &id);
    if let Some(dir) = path.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        // Only `inspect` reads this; a failure to note it fails nothing.
        let _ = rbuild_cache::store::write_file(&path, Timestamp::now().to_rfc3339().as_bytes());
    }
    Ok(())
}

/// Asks "Are you sure?" on the terminal the way docker's prune commands do;
/// anything but y/yes (including no input at all) is a no.
pub(crate) fn confirm(warning: &str) -> bool {
    use std::io::{BufRead, Write};
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
