//! Planning a build: parse the Dockerfile, lower it with base images looked
//! up in the store, and resolve every image the graph names (FROM, COPY
//! --from, mounts) to an image ID before anything runs.

use rbuild_cache::Store;
use rbuild_frontend::error::FrontendError;
use rbuild_frontend::graph::{CopySource, ImageMeta, Mount, MountSource, Op, StepGraph};
use rbuild_frontend::lower::{BaseResolver, LowerOptions, ResolveError, lower};
use rbuild_frontend::parser::{self, Ast};
use rbuild_oci::reference::Reference;

use crate::meta::meta_from_config;
use crate::outcome::BaseImages;

pub struct Plan {
    pub ast: Ast,
    pub graph: StepGraph,
    pub bases: BaseImages,
}

/// Brings into the store an image it lacks (a registry pull), so the
/// planner itself needs no network code.
pub trait ImageFetcher {
    /// Fetches `reference` (normalised) into the store; returns its image ID.
    fn fetch(&self, reference: &Reference) -> Result<rbuild_oci::Digest, ResolveError>;
}

/// How [`plan_with`] finds images the Dockerfile names.
#[derive(Default)]
pub struct PlanOptions<'a> {
    /// Fetches images missing from the store; without it they are errors.
    pub fetcher: Option<&'a dyn ImageFetcher>,
    /// `--pull`: fetch every named image (by tag) even when the store has
    /// it, to pick up a newer one.
    pub refresh: bool,
}

/// Looks base images up in the store.
struct StoreResolver<'a> {
    store: &'a Store,
    found: BaseImages,
    fetcher: Option<&'a dyn ImageFetcher>,
    refresh: bool,
}

/// What to tell a user whose FROM names an image the store does not have.
pub fn missing_image_hint(reference: &str) -> String {
    format!(
        "load it with `rbuild load -i IMAGE.tar`, import a root filesystem with `rbuild import ROOTFS.tar {reference}`, or pull it with `rbuild pull {reference}`"
    )
}

impl StoreResolver<'_> {
    fn lookup(&mut self, reference: &str) -> Result<rbuild_oci::Digest, ResolveError> {
        if let Some(id) = self.found.get(reference) {
            return Ok(*id);
        }
        let parsed = Reference::parse(reference).map_err(|e| ResolveError {
            message: format!("{e}"),
            hint: Some(
                "an image reference looks like name[:tag], registry/name[:tag] or name@sha256:…".into(),
            ),
        })?;
        let local = self.store.resolve_image(reference, Some(&parsed.canonical()));
        // An image named by its ID (or a prefix of it) is never fetched.
        let by_id = matches!(&local, Ok(id) if self.names_an_id(reference, &parsed, id));
        let id = match (local, self.fetcher) {
            (Ok(_), Some(fetcher)) if self.refresh && !by_id => {
                fetcher.fetch(&parsed).map_err(|e| ResolveError {
                    message: format!("--pull: cannot check {reference} for a newer version: {}", e.message),
                    hint: Some(format!(
                        "the store has {reference}; build without --pull to use it{}",
                        e.hint.map(|h| format!(", or: {h}")).unwrap_or_default()
                    )),
                })?
            }
            (Ok(id), _) => id,
            (Err(rbuild_cache::StoreError::Resolve(_)), Some(fetcher)) => {
                fetcher.fetch(&parsed).map_err(|e| ResolveError {
                    message: format!(
                        "image {reference} is not in the store, and pulling it failed: {}",
                        e.message
                    ),
                    // The message says why the pull failed; the hint lists
                    // every way to get the image.
                    hint: Some(missing_image_hint(reference)),
                })?
            }
            (Err(rbuild_cache::StoreError::Resolve(_)), None) => {
                return Err(ResolveError {
                    message: format!("image {reference} is not in the store"),
                    hint: Some(missing_image_hint(reference)),
                });
            }
            (Err(other), _) => return Err(ResolveError { message: other.to_string(), hint: None }),
        };
        self.found.insert(reference.to_string(), id);
        Ok(id)
    }

    /// Whether `reference` named image `id` by its ID or an ID prefix
    /// rather than by a tag.
    fn names_an_id(&self, reference: &str, parsed: &Reference, id: &rbuild_oci::Digest) -> bool {
        let tagged = self.store.refs().is_ok_and(|r| r.refs.contains_key(&parsed.canonical()));
        !tagged && id.hex().starts_with(reference.strip_prefix("sha256:").unwrap_or(reference))
    }
}

impl BaseResolver for StoreResolver<'_> {
    fn resolve(&mut self, reference: &str, _platform: &Platform) -> Result<ImageMeta, ResolveError> {
        let id = self.lookup(reference)?;
        let (_, config) =
            self.store.image_config(&id).map_err(|e| ResolveError { message: e.to_string(), hint: None })?;
        Ok(meta_from_config(&config.config))
    }
}

/// Parses and lowers `dockerfile`; every error carries a span. Images must
/// be in the store.
pub fn plan(store: &Store, dockerfile: &str, opts: &LowerOptions) -> Result<Plan, FrontendError> {
    plan_with(store, dockerfile, opts, &PlanOptions::default())
}

/// Like [`plan`], fetching images the store lacks (or all of them, with
/// `refresh`) through `images.fetcher`.
pub fn plan_with(
    store: &Store,
    dockerfile: &str,
    opts: &LowerOptions,
    images: &PlanOptions<'_>,
) -> Result<Plan, FrontendError> {
    let ast = parser::parse(dockerfile).map_err(|e| FrontendError {
        message: e.message,
        span: e.span,
        hint: e.hint,
    })?;
    let mut resolver =
        StoreResolver { store, found: BaseImages::new(), fetcher: images.fetcher, refresh: images.refresh };
    let graph = lower(&ast, opts, &mut resolver)?;
    for stage in graph.stages.iter().filter(|s| s.needed) {
        for step in &stage.steps {
            let mut images: Vec<&str> = Vec::new();
            match &step.op {
                Op::Copy(c) => {
                    if let CopySource::Image(r) = &c.source {
                        images.push(r);
                    }
                }
                Op::Run(r) => {
                    for m in &r.mounts {
                        if let Mount::Bind { from: MountSource::Image(i), .. }
                        | Mount::Cache { from: Some(MountSource::Image(i)), .. } = m
                        {
                            images.push(i);
                        }
                    }
                }
                _ => {}
            }
            for image in images {
                resolver.lookup(image).map_err(|e| not_a_stage_or_image(&graph, image, e, step.span))?;
            }
        }
    }
    Ok(Plan { ast, graph, bases: resolver.found })
}

/// A `--from` that names neither a stage nor an image in the store.
fn not_a_stage_or_image(
    graph: &StepGraph,
    name: &str,
    e: ResolveError,
    span: rbuild_frontend::span::Span,
) -> FrontendError {
    let stages: Vec<&str> = graph.stages.iter().filter_map(|s| s.name.as_deref()).collect();
    let listed = if stages.is_empty() { "none are named".to_string() } else { stages.join(", ") };
    FrontendError::new(format!("--from={name} names no stage of this Dockerfile, and {}", e.message), span)
        .with_hint(format!(
            "stages in this Dockerfile: {listed}; to copy from an image, {}",
            missing_image_hint(name)
        ))
}
