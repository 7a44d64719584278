//! The build cache beyond the store: importing `--cache-from` caches as
//! places the solver looks for steps (and cache mounts are seeded from), and
//! exporting the build's steps with `--cache-to` (`mode=min`: the final
//! image's stages; `mode=max`: all) and, with `mounts=`, its cache mounts.

use std::sync::Arc;

use rbuild_builder::options::CacheSource;
use rbuild_builder::outcome::BuildOutput;
use rbuild_cache::Store;
use rbuild_frontend::graph::{Base, Mount, Op, StepGraph};
use rbuild_oci::digest::Digest;
use rbuild_registry::Session;
use rbuild_registry::build_cache::{
    self, CacheFrom, CacheLocation, CacheMode, CacheTo, ImportedCache, MountExport,
};
use rbuild_registry::cache_mounts::MountSelection;

use crate::progress::Renderer;
use crate::registry::{self, ImportedCacheSource, Registries};
use crate::report::Failure;

/// Opens every `--cache-from` cache. Like BuildKit, a cache that cannot be
/// read is a warning: the build still works, only slower.
pub fn import(
    caches: &[CacheFrom],
    registries: &Registries,
    progress: &dyn Renderer,
) -> Result<Vec<Arc<dyn CacheSource>>, Failure> {
    let mut sources: Vec<Arc<dyn CacheSource>> = Vec::new();
    for CacheFrom { location, mounts } in caches {
        let session = session_for(location, registries)?;
        match ImportedCache::open(session.as_deref(), location) {
            Ok(cache) => {
                let cache = cache.select_mounts(mounts);
                let carried = match cache.mount_count() {
                    0 => String::new(),
                    n => format!(", {n} cache mounts"),
                };
                progress.line(&format!("importing cache from {location}: {} records{carried}", cache.len()));
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
/// `--cache-to` destination: of every platform's build, each step once.
pub fn export(
    store: &Store,
    registries: &Registries,
    builds: &[(&BuildOutput, &StepGraph)],
    destinations: &[CacheTo],
    progress: &dyn Renderer,
) -> Result<(), Failure> {
    let chain: Vec<String> = builds.iter().flat_map(|(_, graph)| target_chain(graph)).collect();
    for export in destinations {
        let mut keys: Vec<Digest> = Vec::new();
        let steps = builds.iter().flat_map(|(built, _)| &built.steps);
        for s in steps.filter(|s| export.mode == CacheMode::Max || chain.contains(&s.stage)) {
            if !keys.contains(&s.key) {
                keys.push(s.key);
            }
        }
        let mut ids: Vec<String> = Vec::new();
        for id in builds.iter().flat_map(|(_, graph)| mount_ids(graph, &export.mounts)) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mounts = MountExport { ids, max_size: export.max_mount_size };
        let session = session_for(&export.location, registries)?;
        let summary = build_cache::export(session.as_deref(), store, &keys, &export.location, &mounts)
            .map_err(registry::failure)?;
        for warning in &summary.warnings {
            progress.line(&format!("warning: {warning}"));
        }
        let carried = match (summary.mounts, summary.mounts_unchanged) {
            (0, _) => String::new(),
            (n, 0) => format!(", {n} cache mounts"),
            (n, same) => format!(", {n} cache mounts ({same} unchanged)"),
        };
        progress.line(&format!(
            "exported cache to {}: {} records, {} layers{carried}",
            export.location, summary.records, summary.layers
        ));
    }
    Ok(())
}

/// The cache mounts an export carries: with `mounts=true` every one the
/// build's RUN steps mount, else the ids named.
fn mount_ids(graph: &StepGraph, selection: &MountSelection) -> Vec<String> {
    match selection {
        MountSelection::Nothing => Vec::new(),
        MountSelection::Ids(ids) => ids.clone(),
        MountSelection::All => {
            let mut ids = Vec::new();
            let runs = graph.stages.iter().flat_map(|s| &s.steps).filter_map(|step| match &step.op {
                Op::Run(run) => Some(run),
                _ => None,
            });
            for mount in runs.flat_map(|run| &run.mounts) {
                if let Mount::Cache { id, .. } = mount
                    && !ids.contains(id)
                {
                    ids.push(id.clone());
                }
            }
            ids
        }
    }
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
