//! `rbuild images` / `rbuild image ls`: which images are listed (Docker's
//! daemon rules for `-a` and the filters) and how each row prints (the
//! docker CLI's rows: one per tag, `<none>` for untagged images, digests).

use gtmpl::Value;
use rbuild_cache::Store;
use rbuild_cache::usage::{Catalog, CatalogImage, LayerSizes};
use rbuild_oci::reference::{Reference, matches_reference_filter};
use rbuild_oci::timefmt::Timestamp;

use super::filters::{Filters, labels_match};
use super::format::RowFormat;
use super::lookup::resolve_image;
use super::table::short_id;
use super::template::html_escaped_object;
use super::units::{go_time_string, human_size, image_size, parse_until, time_ago};
use crate::cli::ImagesArgs;
use crate::report::Failure;

const DEFAULT_FORMAT: &str = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const DEFAULT_FORMAT_WITH_DIGEST: &str =
    "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// When a multi-platform name is listed, each of its rows says its platform.
const DEFAULT_FORMAT_WITH_PLATFORM: &str =
    "{{.Repository}}\t{{.Tag}}\t{{.Platform}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const DEFAULT_FORMAT_WITH_DIGEST_AND_PLATFORM: &str =
    "{{.Repository}}\t{{.Tag}}\t{{.Platform}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// The filters `docker images` knows.
const FILTER_KEYS: &[&str] = &["dangling", "label", "before", "since", "reference", "until"];

pub fn list(store: &Store, args: ImagesArgs) -> Result<(), Failure> {
    let mut filters = Filters::parse(&args.filters, FILTER_KEYS)?;
    if let Some(repository) = &args.repository {
        filters.add("reference", repository);
    }
    let catalog = Catalog::read(store)?;
    // Multi-platform names: each platform's image is listed under the name,
    // with a PLATFORM column.
    let mut platforms: std::collections::BTreeMap<rbuild_oci::Digest, Vec<(String, String)>> =
        Default::default();
    for (name, images) in store.platform_images()? {
        for (spec, id) in images {
            platforms.entry(id).or_default().push((name.clone(), spec));
        }
    }
    let selection = Selection::from_filters(store, &catalog, &filters)?;
    let mut sizes = LayerSizes::new(store);

    let mut listed: Vec<(&CatalogImage, Vec<Reference>, Vec<Reference>)> = Vec::new();
    for image in &catalog.images {
        if !selection.accepts(image) {
            continue;
        }
        let index_names = platforms.get(&image.id()).into_iter().flatten().map(|(name, _)| name);
        let mut names: Vec<&String> = image.tags.iter().collect();
        names.extend(index_names.filter(|n| !image.tags.contains(n)));
        let tags: Vec<Reference> = names
            .into_iter()
            .filter_map(|t| Reference::parse(t).ok())
            .filter(|r| selection.reference_matches(r))
            .collect();
        let digests: Vec<Reference> = image
            .record
            .repo_digests
            .iter()
            .filter_map(|d| Reference::parse_without_default_tag(d).ok())
            .filter(|r| r.digest.is_some() && selection.reference_matches(r))
            .collect();
        let has_names = !tags.is_empty() || !digests.is_empty();
        if has_names {
            if selection.dangling == Some(true) && !tags.is_empty() {
                continue;
            }
        } else {
            // An untagged image shows with -a, or when it is dangling (no
            // image built on it); never when the user asked for names.
            let shown = args.all || catalog.children(&image.id()).is_empty();
            if !shown || selection.dangling == Some(false) || !selection.references.is_empty() {
                continue;
            }
        }
        listed.push((image, tags, digests));
    }
    // Docker orders by creation in whole seconds; within one second, the
    // image that entered the store last comes first.
    listed.sort_by(|a, b| {
        (b.0.created().secs.cmp(&a.0.created().secs))
            .then(b.0.record.added.cmp(&a.0.record.added))
            .then(a.0.id().cmp(&b.0.id()))
    });

    let mut rows = Vec::new();
    for (image, tags, digests) in &listed {
        let size = sizes.image(&image.config);
        for (repository, tag, digest) in row_names(tags, digests, args.digests) {
            let full =
                format!("{}:{tag}", Reference::parse(&repository).map(|r| r.name()).unwrap_or_default());
            let platform = platforms
                .get(&image.id())
                .and_then(|p| p.iter().find(|(name, _)| *name == full))
                .map(|(_, spec)| spec.clone());
            rows.push(Row { image, repository, tag, digest, size, no_trunc: args.no_trunc, platform });
        }
    }
    print_rows(&rows, &args)
}

/// What the filters select, resolved once.
struct Selection {
    dangling: Option<bool>,
    references: Vec<String>,
    labels: Vec<String>,
    before: Option<Timestamp>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

impl Selection {
    fn from_filters(store: &Store, catalog: &Catalog, filters: &Filters) -> Result<Selection, Failure> {
        let created_of = |query: &str| -> Result<Timestamp, Failure> {
            let id = resolve_image(store, query)?;
            Ok(catalog.get(&id).map_or(Timestamp::from_secs(0), CatalogImage::created))
        };
        let single = |key: &str| filters.values(key).last().cloned();
        Ok(Selection {
            dangling: filters.bool_value("dangling")?,
            references: filters.values("reference").to_vec(),
            labels: filters.values("label").to_vec(),
            before: single("before").map(|q| created_of(&q)).transpose()?,
            since: single("since").map(|q| created_of(&q)).transpose()?,
            until: single("until").map(|v| parse_until(&v).map_err(Failure::new)).transpose()?,
        })
    }

    fn accepts(&self, image: &CatalogImage) -> bool {
        let created = image.created();
        self.before.is_none_or(|t| created < t)
            && self.since.is_none_or(|t| created > t)
            && self.until.is_none_or(|t| created < t)
            && labels_match(&self.labels, image)
    }

    fn reference_matches(&self, reference: &Reference) -> bool {
        self.references.is_empty() || self.references.iter().any(|p| matches_reference_filter(p, reference))
    }
}

/// The (repository, tag, digest) of each row of one image, as the docker
/// CLI lays them out: a row per tag (times each digest of the same
/// repository with --digests), then rows for digests of other repositories.
fn row_names(tags: &[Reference], digests: &[Reference], show_digests: bool) -> Vec<(String, String, String)> {
    if tags.is_empty() && digests.is_empty() {
        return vec![("<none>".into(), "<none>".into(), "<none>".into())];
    }
    let mut repositories: Vec<String> = tags.iter().map(Reference::familiar_name).collect();
    repositories.dedup();
    let digests_of = |repository: &str| -> Vec<String> {
        digests
            .iter()
            .filter(|d| d.familiar_name() == repository)
            .filter_map(|d| d.digest.map(|x| x.to_string()))
            .collect()
    };
    let mut rows = Vec::new();
    let mut seen_repositories = Vec::new();
    for tag in tags {
        let repository = tag.familiar_name();
        let tag_name = tag.tag.clone().unwrap_or_default();
        let repo_digests = if show_digests { digests_of(&repository) } else { Vec::new() };
        if repo_digests.is_empty() {
            rows.push((repository.clone(), tag_name, "<none>".into()));
        } else {
            for digest in repo_digests {
                rows.push((repository.clone(), tag_name.clone(), digest));
            }
        }
        seen_repositories.push(repository);
    }
    let mut digest_only: Vec<String> =
        digests.iter().map(Reference::familiar_name).filter(|r| !seen_repositories.contains(r)).collect();
    digest_only.dedup();
    for repository in digest_only {
        if show_digests {
            for digest in digests_of(&repository) {
                rows.push((repository.clone(), "<none>".into(), digest));
            }
        } else {
            rows.push((repository, "<none>".into(), String::new()));
        }
    }
    rows
}

struct Row<'a> {
    image: &'a CatalogImage,
    repository: String,
    tag: String,
    digest: String,
    size: u64,
    no_trunc: bool,
    /// For a multi-platform name: the platform this image is for.
    platform: Option<String>,
}

impl Row<'_> {
    fn value(&self) -> Value {
        let id = self.image.id().to_string();
        let created = self.image.created();
        html_escaped_object(vec![
            ("Containers", "N/A".into()),
            ("CreatedAt", go_time_string(created).into()),
            ("CreatedSince", time_ago(created).into()),
            ("Digest", self.digest.clone().into()),
            ("ID", if self.no_trunc { id } else { short_id(&id) }.into()),
            ("Platform", self.platform.clone().unwrap_or_default().into()),
            ("Repository", self.repository.clone().into()),
            ("SharedSize", "N/A".into()),
            ("Size", image_size(self.size).into()),
            ("Tag", self.tag.clone().into()),
            ("UniqueSize", "N/A".into()),
            ("VirtualSize", human_size(self.size).into()),
        ])
    }
}

/// The header row: each field's column title, as the docker CLI names them.
fn header_value() -> Value {
    html_escaped_object(vec![
        ("Containers", "CONTAINERS".into()),
        ("CreatedAt", "CREATED AT".into()),
        ("CreatedSince", "CREATED".into()),
        ("Digest", "DIGEST".into()),
        ("ID", "IMAGE ID".into()),
        ("Platform", "PLATFORM".into()),
        ("Repository", "REPOSITORY".into()),
        ("SharedSize", "SHARED SIZE".into()),
        ("Size", "SIZE".into()),
        ("Tag", "TAG".into()),
        ("UniqueSize", "UNIQUE SIZE".into()),
        ("VirtualSize", "VIRTUAL SIZE".into()),
    ])
}

fn print_rows(rows: &[Row<'_>], args: &ImagesArgs) -> Result<(), Failure> {
    let multi = rows.iter().any(|r| r.platform.is_some());
    let columns = match (args.digests, multi) {
        (false, false) => DEFAULT_FORMAT,
        (true, false) => DEFAULT_FORMAT_WITH_DIGEST,
        (false, true) => DEFAULT_FORMAT_WITH_PLATFORM,
        (true, true) => DEFAULT_FORMAT_WITH_DIGEST_AND_PLATFORM,
    };
    let format = RowFormat::parse(args.format.as_deref(), columns, args.quiet)?;
    format.print(&header_value(), rows.iter().map(|row| row.value()))
}
