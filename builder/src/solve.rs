//! The solver: walks the step graph, one thread per needed stage (a stage
//! waits for the stages it reads from), and for each filesystem step
//! computes its cache key, reuses the cached layer or executes the step and
//! commits its diff. Finally assembles the target's image config.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use rbuild_cache::Store;
use rbuild_cache::index::CacheRecord;
use rbuild_frontend::graph::{Base, CopySource, Op, Stage, Step, StepGraph};
use rbuild_layer::{LayerStack, WriteOptions};
use rbuild_oci::config::{History, ImageConfig, RootFs, host_architecture};
use rbuild_oci::digest::Digest;
use rbuild_oci::timefmt::Timestamp;

use crate::context::BuildContext;
use crate::error::BuildError;
use crate::exec::{self, ExecEnv};
use crate::explain;
use crate::keys::KeyBuilder;
use crate::meta::config_from_meta;
use crate::progress::{Event, Progress, StepId};

/// Settings of one build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Ignore the cache (results are still recorded).
    pub no_cache: bool,
    /// The program that serves `__sandbox` (rbuild itself).
    pub sandbox_exe: PathBuf,
    /// `SOURCE_DATE_EPOCH`: fixes every timestamp for reproducible images.
    pub source_date_epoch: Option<i64>,
    /// Secret values by id (`--secret id=…`).
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// Names this build's place (context + Dockerfile) for miss explanations.
    pub site_prefix: String,
    /// `--explain`: plan and look up every step, run none.
    pub explain_only: bool,
    /// Where else to look when the store's cache index misses
    /// (`--cache-from`), in order.
    pub cache_sources: Vec<Arc<dyn CacheSource>>,
}

/// Cached steps from outside the store (an imported registry or directory
/// cache). On a hit the source has put the step's layer into the store and
/// its record into the store's index, so the step is then an ordinary hit.
pub trait CacheSource: Send + Sync + std::fmt::Debug {
    /// The record for `key`, or `None`; an error is reported as a warning
    /// and the step runs.
    fn lookup(&self, store: &Store, key: &Digest) -> Result<Option<CacheRecord>, String>;
}

/// What happened to one filesystem step (for `--metadata-file`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// The step's cache key (for exporting the cache it used).
    #[serde(skip)]
    pub key: Digest,
    pub stage: String,
    pub step: String,
    pub cached: bool,
    /// Why it ran (absent when cached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub duration_ms: u64,
    /// diffID of the layer the step produced, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<Digest>,
    pub layer_size: u64,
}

/// What a finished stage hands to the stages after it.
#[derive(Debug, Clone)]
pub struct StageResult {
    /// The chain key of the last step: identifies the stage's filesystem.
    pub key: Digest,
    /// diffIDs, bottom layer first.
    pub layers: Vec<Digest>,
    pub history: Vec<History>,
    /// The newest timestamp in the history (seconds).
    pub created: i64,
    /// The base image's config, when the stage starts from an image.
    pub base_config: Option<ImageConfig>,
    /// The image the stage (or its base stage) started from.
    pub base_image: Option<Digest>,
}

/// The build's result, before it is stored or exported.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    pub config: ImageConfig,
    pub config_json: Vec<u8>,
    pub image_id: Digest,
    pub parent: Option<Digest>,
    pub steps_run: usize,
    pub steps_cached: usize,
    /// Every filesystem step, in the order they finished.
    pub steps: Vec<StepReport>,
}

/// A finished stage: its result, or why it failed.
type StageOutcome = Result<Arc<StageResult>, BuildError>;

/// Base images already resolved while planning: reference as written → ID.
pub type BaseImages = BTreeMap<String, Digest>;

struct Shared<'a> {
    store: &'a Store,
    graph: &'a StepGraph,
    ctx: &'a BuildContext,
    opts: &'a BuildOptions,
    progress: &'a dyn Progress,
    bases: &'a BaseImages,
    results: Mutex<Vec<Option<StageOutcome>>>,
    ready: Condvar,
    cancelled: AtomicBool,
    run_count: Mutex<(usize, usize)>,
    reports: Mutex<Vec<StepReport>>,
}

/// Builds the graph's target stage.
pub fn build(
    store: &Store,
    graph: &StepGraph,
    ctx: &BuildContext,
    bases: &BaseImages,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildOutput, BuildError> {
    let _gc = store.gc_guard(false)?;
    let shared = Shared {
        store,
        graph,
        ctx,
        opts,
        progress,
        bases,
        results: Mutex::new(vec![None; graph.stages.len()]),
        ready: Condvar::new(),
        cancelled: AtomicBool::new(false),
        run_count: Mutex::new((0, 0)),
        reports: Mutex::new(Vec::new()),
    };
    std::thread::scope(|scope| {
        for stage in graph.stages.iter().filter(|s| s.needed) {
            let shared = &shared;
            scope.spawn(move || {
                let result = shared.build_stage(stage).map(Arc::new);
                if result.is_err() {
                    shared.cancelled.store(true, Ordering::SeqCst);
                }
                shared.results.lock().expect("results lock")[stage.index] = Some(result);
                shared.ready.notify_all();
            });
        }
    });
    let target = graph.target;
    let results = shared.results.into_inner().expect("results lock");
    // Report the first failure in stage order (the root cause), not a
    // stage that merely gave up because another failed.
    for r in results.iter().flatten() {
        if let Err(e) = r
            && e.message != CANCELLED
        {
            return Err(e.clone());
        }
    }
    let result = match &results[target] {
        Some(Ok(r)) => r.clone(),
        Some(Err(e)) => return Err(e.clone()),
        None => return Err(BuildError::new("the target stage did not run")),
    };
    let (run, cached) = *shared.run_count.lock().expect("count lock");
    let mut out = assemble(&graph.stages[target], &result, opts)?;
    out.steps_run = run;
    out.steps_cached = cached;
    out.steps = shared.reports.into_inner().expect("reports lock");
    Ok(out)
}

const CANCELLED: &str = "cancelled because another stage failed";

fn rfc3339(secs: i64) -> String {
    Timestamp::from_secs(secs).to_rfc3339()
}

/// The image config of the target stage.
fn assemble(stage: &Stage, result: &StageResult, opts: &BuildOptions) -> Result<BuildOutput, BuildError> {
    let created = opts.source_date_epoch.unwrap_or(result.created);
    let base = result.base_config.as_ref();
    let config = ImageConfig {
        created: Some(rfc3339(created)),
        author: stage.meta.maintainer.clone(),
        architecture: base
            .map(|b| b.architecture.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| host_architecture().into()),
        os: base.map(|b| b.os.clone()).filter(|o| !o.is_empty()).unwrap_or_else(|| "linux".into()),
        os_version: None,
        variant: base.and_then(|b| b.variant.clone()),
        config: config_from_meta(&stage.meta),
        rootfs: RootFs { fs_type: "layers".into(), diff_ids: result.layers.clone() },
        history: result.history.clone(),
    };
    let config_json = config.to_json();
    Ok(BuildOutput {
        image_id: Digest::of(&config_json),
        config,
        config_json,
        parent: result.base_image,
        steps_run: 0,
        steps_cached: 0,
        steps: Vec::new(),
    })
}

impl Shared<'_> {
    fn wait_for(&self, index: usize) -> Result<Arc<StageResult>, BuildError> {
        let mut results = self.results.lock().expect("results lock");
        loop {
            if let Some(r) = &results[index] {
                return r.clone().map_err(|_| BuildError::new(CANCELLED));
            }
            results = self.ready.wait(results).expect("results lock");
        }
    }

    fn step_id(&self, stage: &Stage, number: usize, text: &str) -> StepId {
        let total = stage.steps.iter().filter(|s| s.is_filesystem()).count() + 1;
        StepId { stage: stage.index, label: stage.label.clone(), number, total, text: text.to_string() }
    }

    fn start(&self, stage: &Stage) -> Result<StageResult, BuildError> {
        let from = self.step_id(stage, 1, &stage.from_text);
        let started = match &stage.base {
            Base::Scratch => {
                let mut k = KeyBuilder::new("scratch");
                k.field("platform", host_architecture());
                StageResult {
                    key: k.finish().0,
                    layers: Vec::new(),
                    history: Vec::new(),
                    created: 0,
                    base_config: None,
                    base_image: None,
                }
            }
            Base::Stage(i) => (*self.wait_for(*i)?).clone(),
            Base::Image(reference) => {
                let id = *self.bases.get(reference).ok_or_else(|| {
                    BuildError::new(format!("base image {reference} was not resolved")).at(stage.span)
                })?;
                let (_, config) = self.store.image_config(&id)?;
                for d in &config.rootfs.diff_ids {
                    if self.store.layer(d)?.is_none() {
                        return Err(BuildError::new(format!(
                            "layer {d} of {reference} is missing from the store"
                        ))
                        .at(stage.span)
                        .hint("the store is damaged: run `rbuild system check`, then load the image again"));
                    }
                }
                let mut k = KeyBuilder::new("image");
                k.input("image", reference, &id.to_string());
                let created =
                    config.created.as_deref().and_then(Timestamp::parse_rfc3339).map_or(0, |t| t.secs);
                StageResult {
                    key: k.finish().0,
                    layers: config.rootfs.diff_ids.clone(),
                    history: config.history.clone(),
                    created,
                    base_config: Some(config),
                    base_image: Some(id),
                }
            }
        };
        self.progress.event(Event::Cached { step: from });
        Ok(started)
    }

    fn build_stage(&self, stage: &Stage) -> Result<StageResult, BuildError> {
        // Stages this one reads from are waited for where they are read
        // (COPY --from, mounts), so independent early steps start at once.
        let mut state = self.start(stage)?;
        let base = match &stage.base {
            Base::Scratch => "scratch".to_string(),
            Base::Image(r) => format!("image {r}"),
            Base::Stage(i) => format!("stage {}", self.graph.stages[*i].label),
        };
        let mut number = 1;
        for step in &stage.steps {
            if self.cancelled.load(Ordering::SeqCst) {
                return Err(BuildError::new(CANCELLED));
            }
            if !step.is_filesystem() {
                let created = self.opts.source_date_epoch.unwrap_or(state.created);
                state.history.push(History {
                    created: Some(rfc3339(created)),
                    created_by: Some(step.created_by.clone()),
                    comment: Some("buildkit.dockerfile.v0".into()),
                    empty_layer: true,
                    ..Default::default()
                });
                continue;
            }
            number += 1;
            let id = self.step_id(stage, number, &step.text);
            let situation =
                explain::Situation { first_step: number == 2, base: &base, arg_names: &arg_names(step) };
            self.run_step(stage, step, &id, &situation, &mut state)
                .map_err(|e| e.at(step.span).step(id.title()))?;
        }
        Ok(state)
    }

    /// What the step reads from the context, file by file (for explaining
    /// a miss); empty for steps that read no context files.
    fn context_files(&self, step: &Step) -> BTreeMap<String, String> {
        let Op::Copy(c) = &step.op else { return BTreeMap::new() };
        if c.source != CopySource::Context {
            return BTreeMap::new();
        }
        let rels: Vec<String> =
            c.paths.iter().filter_map(|p| self.ctx.select(&p.path).ok()).flatten().collect();
        explain::context_files(self.ctx, &rels)
    }

    fn run_step(
        &self,
        stage: &Stage,
        step: &Step,
        id: &StepId,
        situation: &explain::Situation<'_>,
        state: &mut StageResult,
    ) -> Result<(), BuildError> {
        let env = ExecEnv {
            store: self.store,
            ctx: self.ctx,
            graph: self.graph,
            stage_results: &|i| self.wait_for(i),
            bases: self.bases,
            opts: self.opts,
        };
        let parent_key = state.key;
        let (key, inputs) = exec::step_key(&env, stage, step, &parent_key)?;
        let site = explain::site_id(&self.opts.site_prefix, &stage.label, id.number);
        let previous = explain::load_site(self.store, &site);
        let remember = |inputs: &[rbuild_cache::index::KeyInput]| {
            let record = explain::SiteRecord {
                key: Some(key),
                inputs: inputs.to_vec(),
                files: self.context_files(step),
            };
            explain::save_site(self.store, &site, &record);
            record
        };
        let cached = if self.opts.no_cache { None } else { self.lookup_cache(&key)? };
        let t0 = Instant::now();
        let (layer, created, reason) = match cached {
            Some(record) => {
                self.progress.event(Event::Cached { step: id.clone() });
                self.run_count.lock().expect("count lock").1 += 1;
                if previous.as_ref().and_then(|p| p.key) != Some(key) {
                    remember(&inputs);
                }
                (record.layer, record.created, None)
            }
            None => {
                let now_site = if self.opts.explain_only {
                    explain::SiteRecord {
                        key: Some(key),
                        inputs: inputs.clone(),
                        files: self.context_files(step),
                    }
                } else {
                    remember(&inputs)
                };
                let reason = if self.opts.no_cache {
                    "--no-cache".to_string()
                } else {
                    explain::explain(previous.as_ref(), &now_site, situation)
                };
                if self.opts.explain_only {
                    self.progress.event(Event::WouldRun { step: id.clone(), reason: reason.clone() });
                    self.run_count.lock().expect("count lock").0 += 1;
                    state.key = exec::chain_key(step, &parent_key, &key);
                    self.report(key, stage, step, false, Some(reason), t0, None);
                    return Ok(());
                }
                self.progress.event(Event::Started { step: id.clone(), reason: reason.clone() });
                let lowers = self.snapshot_dirs(&state.layers)?;
                let upper = match exec::execute(&env, step, &lowers, id, self.progress) {
                    Ok(u) => u,
                    Err(e) => {
                        self.progress.event(Event::Failed { step: id.clone(), elapsed: t0.elapsed() });
                        return Err(e);
                    }
                };
                let write = WriteOptions {
                    xattr_prefix: self.store.overlay_xattrs(),
                    clamp_mtime: self.opts.source_date_epoch,
                    exclude: Vec::new(),
                };
                let committed = match upper {
                    Some(dirs) => {
                        let layer = self.store.commit_upper(&dirs.upper, &write);
                        dirs.cleanup();
                        layer?
                    }
                    None => None,
                };
                let now = Timestamp::now().secs;
                let record = CacheRecord {
                    key,
                    layer: committed.as_ref().map(|l| l.diff_id()),
                    created: now,
                    description: format!("[{}] {}", stage.label, step.text),
                    inputs,
                };
                self.store.cache_insert(&record)?;
                self.progress.event(Event::Done { step: id.clone(), elapsed: t0.elapsed() });
                self.run_count.lock().expect("count lock").0 += 1;
                (record.layer, now, Some(reason))
            }
        };
        self.report(key, stage, step, reason.is_none(), reason, t0, layer);
        state.key = exec::chain_key(step, &parent_key, &key);
        if let Some(l) = layer {
            state.layers.push(l);
        }
        state.created = state.created.max(created);
        state.history.push(History {
            created: Some(rfc3339(self.opts.source_date_epoch.unwrap_or(created))),
            created_by: Some(step.created_by.clone()),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: layer.is_none(),
            ..Default::default()
        });
        Ok(())
    }

    /// The store's cached result for `key`, else the first cache source's.
    fn lookup_cache(&self, key: &Digest) -> Result<Option<CacheRecord>, BuildError> {
        if let Some(record) = self.store.cache_lookup(key)? {
            return Ok(Some(record));
        }
        for source in &self.opts.cache_sources {
            match source.lookup(self.store, key) {
                Ok(Some(record)) => return Ok(Some(record)),
                Ok(None) => {}
                Err(message) => self
                    .progress
                    .event(Event::Note { message: format!("warning: imported cache: {message}") }),
            }
        }
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        key: Digest,
        stage: &Stage,
        step: &Step,
        cached: bool,
        reason: Option<String>,
        t0: Instant,
        layer: Option<Digest>,
    ) {
        let layer_size = layer.and_then(|d| self.store.layer(&d).ok().flatten()).map_or(0, |l| l.meta.size);
        self.reports.lock().expect("reports lock").push(StepReport {
            key,
            stage: stage.label.clone(),
            step: step.text.clone(),
            cached,
            reason,
            duration_ms: t0.elapsed().as_millis() as u64,
            layer,
            layer_size,
        });
    }

    /// The snapshot dirs of a layer chain, top first, each layer once.
    fn snapshot_dirs(&self, layers: &[Digest]) -> Result<Vec<Lower>, BuildError> {
        top_first_distinct(layers)
            .iter()
            .map(|d| {
                let l = self.store.require_layer(d)?;
                Ok(Lower { abs: l.fs_path(), rel: self.store.snapshot_rel_path(d) })
            })
            .collect()
    }
}

/// One parent layer of a step: its snapshot dir, absolute and relative to
/// the store root (for short overlay mount options).
#[derive(Debug, Clone)]
pub struct Lower {
    pub abs: PathBuf,
    pub rel: String,
}

/// A layer chain (bottom first, as an image lists it) top first, with each
/// layer only at its topmost place. An image may list one layer twice (two
/// steps that made the same change, or a hostile image); overlayfs refuses
/// a lower directory given twice (ELOOP), and the upper occurrence already
/// shows all the lower one would: whatever it holds or hides wins over
/// everything below it either way.
pub fn top_first_distinct(layers: &[Digest]) -> Vec<Digest> {
    let mut seen = std::collections::HashSet::new();
    layers.iter().rev().filter(|d| seen.insert(**d)).copied().collect()
}

/// A merged read-only view of a stage's or image's layers.
pub fn view_of(store: &Store, layers: &[Digest]) -> Result<LayerStack, BuildError> {
    let dirs = layers
        .iter()
        .rev()
        .map(|d| Ok(store.require_layer(d)?.fs_path()))
        .collect::<Result<Vec<_>, BuildError>>()?;
    Ok(LayerStack::new(dirs, store.overlay_xattrs()))
}

/// Names of the build args a RUN step sees (to tell "build arg X changed"
/// from "ENV X changed").
fn arg_names(step: &Step) -> Vec<String> {
    match &step.op {
        Op::Run(r) => r.args.iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_layers_keep_only_their_topmost_place() {
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        // Bottom first in, top first out.
        assert_eq!(top_first_distinct(&[a, b, a, c, b]), vec![b, c, a]);
        assert_eq!(top_first_distinct(&[a, b, c]), vec![c, b, a]);
    }
}
