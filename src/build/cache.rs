//! The build cache beyond the store: importing `--cache-from` caches as
//! places the solver looks for steps, and exporting the build's steps with
//! `--cache-to` (`mode=min`: the final image's stages; `mode=max`: all).

use std::sync::Arc;

use rbuild_builder::options::CacheSource;
use rbuild_builder::outcome::BuildOutput;
use rbuild_cache::Store;
use rbuild_frontend::graph::{Base, StepGraph};
use rbuild_oci::digest::Digest;
use rbuild_registry::Session;
use rbuild_registry::build_cache::{self, CacheLocation, CacheMode, CacheTo, ImportedCache};

use crate::progress::Renderer;
use crate::registry::{self, ImportedCacheSource, Registries};
use crate::report::Failure;

/// Opens every `--cache-from` cache. Like BuildKit, a cache that cannot be
/// read is a warning: the build still works, only slower.
pub fn import(
    locations: &[CacheLocation],
    registries: &Registries,
    progress: &dyn Renderer,
) -> Result<Vec<Arc<dyn CacheSource>>, Failure> {
    let mut sources: Vec<Arc<dyn CacheSource>> = Vec::new();
    for location in locations {
        let session = session_for(location, registries)?;
        match ImportedCache::open(session.as_deref(), location) {
            Ok(cache) => {
                progress.line(&format!("importing cache from {location}: {} records", cache.len()));
                sources.push(Arc::new(ImportedCacheSource { session, cache }));
            }
            Err(e) => progress.line(&format!(
                "warning: cannot import cache from {location}: {}",
                rbuild_builder::error::chain(&e)
            )),
        }
    }
    Ok(sources)
}

/// Writes the records (and layers) of the build's steps to every
/// `--cache-to` destination.
pub fn export(
    store: &Store,
    registries: &Registries,
    built: &BuildOutput,
    graph: &StepGraph,
    destinations: &[CacheTo],
    progress: &dyn Renderer,
) -> Result<(), Failure> {
    let chain = target_chain(graph);
    for export in destinations {
        let keys: Vec<Digest> = built
            .steps
            .iter()
            .filter(|s| export.mode == CacheMode::Max || chain.contains(&s.stage))
            .map(|s| s.key)
            .collect();
        let session = session_for(&export.location, registries)?;
        let summary = build_cache::export(session.as_deref(), store, &keys, &export.location)
            .map_err(registry::failure)?;
        progress.line(&format!(
            "exported cache to {}: {} records, {} layers",
            export.location, summary.records, summary.layers
        ));
    }
    Ok(())
}

/// A registry session for a cache in a registry; none for a directory.
fn session_for(location: &CacheLocation, registries: &Registries) -> Result<Option<Arc<Session>>, Failure> {
    match location {
        CacheLocation::Registry(_) => Ok(Some(registries.session().map_err(registry::failure)?)),
        CacheLocation::Directory(_) => Ok(None),
    }
}

/// Labels of the target stage and the stages it is built on (`FROM
/// stage`): the steps whose layers the final image holds.
fn target_chain(graph: &StepGraph) -> Vec<String> {
    let mut labels = Vec::new();
    let mut at = Some(graph.target);
    while let Some(i) = at {
        let stage = &graph.stages[i];
        labels.push(stage.label.clone());
        at = match stage.base {
            Base::Stage(parent) if !labels.contains(&graph.stages[parent].label) => Some(parent),
            _ => None,
        };
    }
    labels
}
