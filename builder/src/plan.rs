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
use crate::outcome::{BaseImages, base_key};
use rbuild_oci::platform::Platform;

pub struct Plan {
    pub ast: Ast,
    pub graph: StepGraph,
    pub bases: BaseImages,
}

/// Brings into the store an image it lacks (a registry pull), so the
/// planner itself needs no network code.
pub trait ImageFetcher {
    /// Fetches `reference` (normalised) for `platform` into the store
    /// (from an index, the entry for it); returns its image ID.
    fn fetch(&self, reference: &Reference, platform: &Platform) -> Result<rbuild_oci::Digest, ResolveError>;
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
    /// The graph's target platform (see [`base_key`]).
    target: Platform,
}

/// What to tell a user whose FROM names an image the store does not have.
pub fn missing_image_hint(reference: &str) -> String {
    format!(
        "load it with `rbuild load -i IMAGE.tar`, import a root filesystem with `rbuild import ROOTFS.tar {reference}`, or pull it with `rbuild pull {reference}`"
    )
}

impl StoreResolver<'_> {
    fn lookup(&mut self, reference: &str, platform: &Platform) -> Result<rbuild_oci::Digest, ResolveError> {
        let key = base_key(reference, platform, &self.target);
        if let Some(id) = self.found.get(&key) {
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
        let local = match local {
            Ok(id) if !by_id => self.for_platform(&parsed, id, platform),
            Ok(id) => self.check_platform(reference, id, platform).map(|_| id),
            Err(e) => Err(e),
        };
        // Said instead of "not in the store" when the store has the name
        // for other platforms only.
        let missing = match &local {
            Err(rbuild_cache::StoreError::Resolve(rbuild_cache::store::ResolveError::NotFound(m)))
                if m.contains(" is for ") =>
            {
                m.clone()
            }
            _ => format!("image {reference} is not in the store"),
        };
        let id = match (local, self.fetcher) {
            (Ok(_), Some(fetcher)) if self.refresh && !by_id => {
                fetcher.fetch(&parsed, platform).map_err(|e| ResolveError {
                    message: format!("--pull: cannot check {reference} for a newer version: {}", e.message),
                    hint: Some(format!(
                        "the store has {reference}; build without --pull to use it{}",
                        e.hint.map(|h| format!(", or: {h}")).unwrap_or_default()
                    )),
                })?
            }
            (Ok(id), _) => id,
            (Err(rbuild_cache::StoreError::Resolve(_)), Some(fetcher)) if !by_id => {
                fetcher.fetch(&parsed, platform).map_err(|e| ResolveError {
                    message: format!("{missing}, and pulling it failed: {}", e.message),
                    // The message says why the pull failed; the hint lists
                    // every way to get the image.
                    hint: Some(missing_image_hint(reference)),
                })?
            }
            (Err(rbuild_cache::StoreError::Resolve(_)), None) => {
                return Err(ResolveError { message: missing, hint: Some(missing_image_hint(reference)) });
            }
            (Err(other), _) => return Err(ResolveError { message: other.to_string(), hint: None }),
        };
        self.found.insert(key, id);
        Ok(id)
    }

    /// The image `parsed` names for `platform`: the tagged one when it is
    /// for that platform, else the name's entry for it in the store's
    /// platform index; a "not found" error when the store has neither, so
    /// it is fetched.
    fn for_platform(
        &self,
        parsed: &Reference,
        tagged: rbuild_oci::Digest,
        platform: &Platform,
    ) -> Result<rbuild_oci::Digest, rbuild_cache::StoreError> {
        if image_platform_matches(self.store, &tagged, platform)? {
            return Ok(tagged);
        }
        let entries = self.store.platforms_of(&parsed.canonical())?;
        let entry = entries.iter().find(|(spec, _)| Platform::parse(spec).is_ok_and(|p| p == *platform));
        if let Some((_, id)) = entry
            && self.store.image_record(id)?.is_some()
        {
            return Ok(*id);
        }
        let (_, config) = self.store.image_config(&tagged)?;
        let mut has: Vec<String> = entries.into_keys().collect();
        if has.is_empty() {
            has.push(format!("{}/{}", config.os, config.architecture));
        }
        Err(rbuild_cache::StoreError::Resolve(rbuild_cache::store::ResolveError::NotFound(format!(
            "image {} in the store is for {}, not {platform}",
            parsed.familiar(),
            has.join(", ")
        ))))
    }

    /// An image named by its ID must be for the stage's platform.
    fn check_platform(
        &self,
        reference: &str,
        id: rbuild_oci::Digest,
        platform: &Platform,
    ) -> Result<(), rbuild_cache::StoreError> {
        if image_platform_matches(self.store, &id, platform)? {
            return Ok(());
        }
        let (_, config) = self.store.image_config(&id)?;
        Err(rbuild_cache::StoreError::Resolve(rbuild_cache::store::ResolveError::NotFound(format!(
            "image {reference} is for {}/{}, not {platform}",
            config.os, config.architecture
        ))))
    }

    /// Whether `reference` named image `id` by its ID or an ID prefix
    /// rather than by a tag.
    fn names_an_id(&self, reference: &str, parsed: &Reference, id: &rbuild_oci::Digest) -> bool {
        let tagged = self.store.refs().is_ok_and(|r| r.refs.contains_key(&parsed.canonical()));
        !tagged && id.hex().starts_with(reference.strip_prefix("sha256:").unwrap_or(reference))
    }
}

/// Whether image `id` runs on `platform` (an image whose config names no
/// architecture is taken to run anywhere, as Docker does).
fn image_platform_matches(
    store: &Store,
    id: &rbuild_oci::Digest,
    platform: &Platform,
) -> Result<bool, rbuild_cache::StoreError> {
    let (_, config) = store.image_config(id)?;
    Ok(config.architecture.is_empty()
        || platform.matches(
            if config.os.is_empty() { "linux" } else { &config.os },
            &config.architecture,
            config.variant.as_deref(),
        ))
}

impl BaseResolver for StoreResolver<'_> {
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<ImageMeta, ResolveError> {
        let id = self.lookup(reference, platform)?;
        let (_, config) =
            self.store.image_config(&id).map_err(|e| ResolveError { message: e.to_string(), hint: None })?;
        Ok(meta_from_config(&config.config))
    }
}

/// A [`BaseResolver`] over the store, fetching what it lacks through
/// `images.fetcher`: for readers of base images outside a plan (the build
/// checks, which look at stages a plan does not lower).
pub fn store_resolver<'a>(store: &'a Store, images: &PlanOptions<'a>) -> impl BaseResolver + 'a {
    StoreResolver {
        store,
        found: BaseImages::new(),
        fetcher: images.fetcher,
        refresh: false,
        target: Platform::host(),
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
    let mut resolver = StoreResolver {
        store,
        found: BaseImages::new(),
        fetcher: images.fetcher,
        refresh: images.refresh,
        target: opts.platform.clone(),
    };
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
                resolver
                    .lookup(image, &graph.platform)
                    .map_err(|e| not_a_stage_or_image(&graph, image, e, step.span))?;
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
