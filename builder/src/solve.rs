//! The solver: walks the step graph, one thread per needed stage (a stage
//! waits for the stages it reads from), and for each filesystem step
//! computes its cache key, reuses the cached layer or executes the step and
//! commits its diff. Finally assembles the target's image config.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use rbuild_cache::Store;
use rbuild_cache::index::{CacheRecord, KeyInput};
use rbuild_cache::store::LayerRef;
use rbuild_frontend::graph::{Base, CopySource, Op, Stage, Step, StepGraph};
use rbuild_layer::WriteOptions;
use rbuild_oci::config::{History, ImageConfig, RootFs};
use rbuild_oci::digest::Digest;
use rbuild_oci::timefmt::Timestamp;

use crate::context::{BuildContext, EntryKind};
use crate::env::{ExecEnv, StageResults};
use crate::error::BuildError;
use crate::execute::{Executed, execute};
use crate::explain;
use crate::keys::{KeyBuilder, chain_key, for_platform, step_key};
use crate::meta::config_from_meta;
use crate::options::BuildOptions;
use crate::outcome::{BaseImages, BuildOutput, StageResult, StepReport, base_key};
use crate::progress::{Event, Progress, StepId};
use crate::snapshot::lowers_of;

/// A finished stage: its result, or why it failed.
type StageOutcome = Result<Arc<StageResult>, BuildError>;

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
    /// When solving began: step start times are reported relative to it.
    started: Instant,
}

/// Builds the graph's target stage. However the build ends, `finished`
/// receives a report of every step that finished (a failed build's record
/// keeps them).
pub fn build(
    store: &Store,
    graph: &StepGraph,
    ctx: &BuildContext,
    bases: &BaseImages,
    opts: &BuildOptions,
    progress: &dyn Progress,
    finished: &mut Vec<StepReport>,
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
        started: Instant::now(),
    };
    let run_stage = |stage: &Stage| {
        let result = shared.build_stage(stage).map(Arc::new);
        if result.is_err() {
            shared.cancelled.store(true, Ordering::SeqCst);
        }
        shared.results.lock().expect("results lock")[stage.index] = Some(result);
        shared.ready.notify_all();
    };
    let needed: Vec<&Stage> = graph.stages.iter().filter(|s| s.needed).collect();
    if let [only] = needed.as_slice() {
        // Nothing to wait for or overlap with: no thread to start.
        run_stage(only);
    } else {
        std::thread::scope(|scope| {
            for stage in needed {
                scope.spawn(move || run_stage(stage));
            }
        });
    }
    // The steps' leftover scratch dirs, removed while later steps ran.
    crate::snapshot::wait_for_discards();
    let target = graph.target;
    finished.clone_from(&shared.reports.lock().expect("reports lock"));
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
    let mut out = assemble(&graph.stages[target], &result, opts);
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
fn assemble(stage: &Stage, result: &StageResult, opts: &BuildOptions) -> BuildOutput {
    let created = opts.source_date_epoch.unwrap_or(result.created);
    let base = result.base_config.as_ref();
    let config = ImageConfig {
        created: Some(rfc3339(created)),
        author: stage.meta.maintainer.clone(),
        architecture: base
            .map(|b| b.architecture.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| stage.platform.architecture.clone()),
        os: base.map(|b| b.os.clone()).filter(|o| !o.is_empty()).unwrap_or_else(|| stage.platform.os.clone()),
        os_version: None,
        variant: match base {
            Some(b) => b.variant.clone(),
            None => stage.platform.variant.clone(),
        },
        config: config_from_meta(&stage.meta),
        rootfs: RootFs { fs_type: "layers".into(), diff_ids: result.layers.clone() },
        history: result.history.clone(),
    };
    let config_json = config.to_json();
    BuildOutput {
        image_id: Digest::of(&config_json),
        config,
        config_json,
        parent: result.base_image,
        steps_run: 0,
        steps_cached: 0,
        steps: Vec::new(),
    }
}

/// The history entry of one step.
fn history_entry(step: &Step, created: i64, empty_layer: bool) -> History {
    History {
        created: Some(rfc3339(created)),
        created_by: Some(step.created_by.clone()),
        comment: Some("buildkit.dockerfile.v0".into()),
        empty_layer,
        ..Default::default()
    }
}

/// One step's place in its stage, for progress and explanations.
struct StepPlace<'a> {
    stage: &'a Stage,
    step: &'a Step,
    id: StepId,
    situation: explain::Situation<'a>,
}

/// A step that missed the cache, about to run.
struct Miss {
    key: Digest,
    inputs: Vec<KeyInput>,
    /// Why it runs.
    reason: String,
    /// The key it had when it last ran at this place in the Dockerfile.
    prior_key: Option<Digest>,
}

/// How a step was satisfied.
struct StepResult {
    layer: Option<Digest>,
    created: i64,
    /// Why it ran; `None` when it came from the cache.
    reason: Option<String>,
    /// Cached: how long the step took when it ran.
    saved_ms: Option<u64>,
    /// Ran: how long it took, as the cache index records it.
    ran_ms: Option<u64>,
}

impl StageResults for Shared<'_> {
    fn wait_for(&self, index: usize) -> Result<Arc<StageResult>, BuildError> {
        let mut results = self.results.lock().expect("results lock");
        loop {
            if let Some(r) = &results[index] {
                return r.clone().map_err(|_| BuildError::new(CANCELLED));
            }
            results = self.ready.wait(results).expect("results lock");
        }
    }
}

impl Shared<'_> {
    fn env(&self) -> ExecEnv<'_> {
        ExecEnv {
            store: self.store,
            ctx: self.ctx,
            graph: self.graph,
            stages: self,
            bases: self.bases,
            opts: self.opts,
        }
    }

    fn step_id(&self, stage: &Stage, number: usize, text: &str) -> StepId {
        let total = stage.steps.iter().filter(|s| s.is_filesystem()).count() + 1;
        StepId { stage: stage.index, label: stage.label.clone(), number, total, text: text.to_string() }
    }

    /// The stage's starting point: nothing, another stage, or an image.
    fn start(&self, stage: &Stage) -> Result<StageResult, BuildError> {
        let started = match &stage.base {
            Base::Scratch => {
                // No platform: the empty filesystem is the same for every
                // platform, so COPY-only scratch stages are shared between
                // the platforms of a build (a RUN on a foreign platform adds
                // its platform to its own key).
                let k = KeyBuilder::new("scratch");
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
            Base::Image(reference) => self.start_from_image(stage, reference)?,
        };
        self.progress.event(Event::Cached { step: self.step_id(stage, 1, &stage.from_text) });
        Ok(started)
    }

    fn start_from_image(&self, stage: &Stage, reference: &str) -> Result<StageResult, BuildError> {
        let key = base_key(reference, &stage.platform, &self.graph.platform);
        let id = *self.bases.get(&key).ok_or_else(|| {
            BuildError::new(format!("base image {reference} was not resolved")).at(stage.span)
        })?;
        let (_, config) = self.store.image_config(&id)?;
        for d in &config.rootfs.diff_ids {
            if self.store.layer(d)?.is_none() {
                return Err(BuildError::new(format!("layer {d} of {reference} is missing from the store"))
                    .at(stage.span)
                    .hint("the store is damaged: run `rbuild system check`, then load the image again"));
            }
        }
        let mut k = KeyBuilder::new("image");
        k.input("image", reference, &id.to_string());
        let created = config.created.as_deref().and_then(Timestamp::parse_rfc3339).map_or(0, |t| t.secs);
        Ok(StageResult {
            key: k.finish().0,
            layers: config.rootfs.diff_ids.clone(),
            history: config.history.clone(),
            created,
            base_config: Some(config),
            base_image: Some(id),
        })
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
                state.history.push(history_entry(step, created, true));
                continue;
            }
            number += 1;
            let arg_names = arg_names(step);
            let place = StepPlace {
                stage,
                step,
                id: self.step_id(stage, number, &step.text),
                situation: explain::Situation {
                    first_step: number == 2,
                    base: &base,
                    arg_names: &arg_names,
                    base_image: matches!(stage.base, Base::Image(_)).then_some(state.base_image).flatten(),
                },
            };
            self.run_step(&place, &mut state).map_err(|e| e.at(step.span).step(place.id.title()))?;
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

    /// Keys one step, then serves it from the cache or runs it, and adds
    /// its layer and history to the stage.
    fn run_step(&self, place: &StepPlace<'_>, state: &mut StageResult) -> Result<(), BuildError> {
        let parent_key = state.key;
        let (key, inputs) = step_key(&self.env(), place.step, &parent_key)?;
        let (key, inputs) = for_platform(place.step, &place.stage.platform, key, inputs);
        // Two graphs of a multi-platform build (or two identical stages)
        // may reach the same key at once: the second waits for the first
        // and then finds its result in the cache.
        let claim = (!self.opts.explain_only).then(|| self.opts.in_flight.claim(key));
        let ran_in_this_build = claim.as_ref().is_some_and(|c| c.ran_before);
        let site = explain::site_id(&self.opts.site_prefix, &place.stage.label, place.id.number);
        let previous = explain::load_site(self.store, &site);
        // Built only when needed: listing the files a step read costs a
        // lookup per file, which a no-op rebuild must not pay.
        let now_site = || explain::SiteRecord {
            key: Some(key),
            inputs: inputs.clone(),
            files: self.context_files(place.step),
            base_image: place.situation.base_image.filter(|_| place.situation.first_step),
        };
        let forced = if ran_in_this_build {
            None
        } else if self.opts.no_cache {
            Some("--no-cache")
        } else if self.opts.no_cache_stages.contains(&place.stage.index) {
            Some("--no-cache-filter")
        } else {
            None
        };
        let cached = if forced.is_some() { None } else { self.lookup_cache(&key)? };
        let t0 = Instant::now();
        let outcome = match cached {
            Some(record) => {
                self.progress.event(Event::Cached { step: place.id.clone() });
                self.run_count.lock().expect("count lock").1 += 1;
                if previous.as_ref().and_then(|p| p.key) != Some(key) {
                    explain::save_site(self.store, &site, &now_site());
                }
                StepResult {
                    layer: record.layer,
                    created: record.created,
                    reason: None,
                    saved_ms: (record.duration_ms > 0).then_some(record.duration_ms),
                    ran_ms: None,
                }
            }
            None => {
                let now_site = now_site();
                if !self.opts.explain_only {
                    explain::save_site(self.store, &site, &now_site);
                }
                let reason = if let Some(flag) = forced {
                    flag.to_string()
                } else {
                    explain::explain(previous.as_ref(), &now_site, &place.situation)
                };
                if self.opts.explain_only {
                    self.progress.event(Event::WouldRun { step: place.id.clone(), reason: reason.clone() });
                    self.run_count.lock().expect("count lock").0 += 1;
                    state.key = chain_key(place.step, &parent_key, &key);
                    let outcome = StepResult {
                        layer: None,
                        created: 0,
                        reason: Some(reason),
                        saved_ms: None,
                        ran_ms: None,
                    };
                    self.report(key, &inputs, place, &outcome, t0);
                    return Ok(());
                }
                let miss = Miss {
                    key,
                    inputs: inputs.clone(),
                    reason,
                    prior_key: previous.as_ref().and_then(|p| p.key),
                };
                let ran = self.execute_and_commit(place, miss, t0, &state.layers)?;
                if let Some(c) = &claim {
                    c.ran();
                }
                ran
            }
        };
        self.report(key, &inputs, place, &outcome, t0);
        state.key = chain_key(place.step, &parent_key, &key);
        if let Some(l) = outcome.layer {
            state.layers.push(l);
        }
        state.created = state.created.max(outcome.created);
        let created = self.opts.source_date_epoch.unwrap_or(outcome.created);
        state.history.push(history_entry(place.step, created, outcome.layer.is_none()));
        Ok(())
    }

    /// Runs a step that missed the cache on top of `layers`, commits its
    /// changes and records the result in the cache index.
    fn execute_and_commit(
        &self,
        place: &StepPlace<'_>,
        miss: Miss,
        t0: Instant,
        layers: &[Digest],
    ) -> Result<StepResult, BuildError> {
        let Miss { key, inputs, reason, prior_key } = miss;
        let id = &place.id;
        self.progress.event(Event::Started { step: id.clone(), reason: reason.clone() });
        let lowers = lowers_of(self.store, layers)?;
        let prior = self.prior_layer(place.step, prior_key);
        let root = match execute(&self.env(), place.step, &lowers, prior.as_ref(), id, self.progress) {
            Ok(r) => r,
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
        let executed_in = t0.elapsed();
        let committed = match root {
            Some(Executed::Changes { root, memo_key, known }) => {
                let committed = self.opts.snapshotter.commit(self.store, root, &write, known)?;
                // A COPY with a description key remembers the layer it made,
                // so the next one with the same key writes nothing.
                if let (Some(key), Some(layer)) = (memo_key, &committed)
                    && let Err(e) = self.store.remember_copy(&key, &layer.diff_id())
                {
                    tracing::debug!(error = %e, "could not remember a COPY's layer");
                }
                committed
            }
            Some(Executed::Stored(layer)) => Some(layer),
            None => None,
        };
        // Where a step's time went: its own work, then turning it into a layer.
        tracing::debug!(step = %place.step.text, executed = ?executed_in, committed = ?(t0.elapsed() - executed_in), "ran a step");
        let now = Timestamp::now().secs;
        let ran_ms = t0.elapsed().as_millis() as u64;
        let record = CacheRecord {
            key,
            layer: committed.as_ref().map(|l| l.diff_id()),
            created: now,
            description: format!("[{}] {}", place.stage.label, place.step.text),
            inputs,
            duration_ms: ran_ms,
        };
        self.store.cache_insert(&record)?;
        self.progress.event(Event::Done { step: id.clone(), elapsed: t0.elapsed() });
        self.run_count.lock().expect("count lock").0 += 1;
        Ok(StepResult {
            layer: record.layer,
            created: now,
            reason: Some(reason),
            saved_ms: None,
            ran_ms: Some(ran_ms),
        })
    }

    /// The layer a COPY or ADD made when it last ran at this place in the
    /// Dockerfile (the key its site record names), if it is still stored.
    fn prior_layer(&self, step: &Step, prior_key: Option<Digest>) -> Option<LayerRef> {
        if !matches!(step.op, Op::Copy(_)) {
            return None;
        }
        let record = self.store.cache_lookup(&prior_key?).ok()??;
        self.store.layer(&record.layer?).ok()?
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

    fn report(
        &self,
        key: Digest,
        inputs: &[KeyInput],
        place: &StepPlace<'_>,
        outcome: &StepResult,
        t0: Instant,
    ) {
        let layer = outcome.layer;
        let layer_size = layer.and_then(|d| self.store.layer(&d).ok().flatten()).map_or(0, |l| l.meta.size);
        let (context_bytes, context_digest) = self.context_read(inputs);
        self.reports.lock().expect("reports lock").push(StepReport {
            key,
            stage: place.stage.label.clone(),
            number: place.id.number,
            step: place.step.text.clone(),
            cached: outcome.reason.is_none(),
            reason: outcome.reason.clone(),
            duration_ms: outcome.ran_ms.unwrap_or_else(|| t0.elapsed().as_millis() as u64),
            layer,
            layer_size,
            started_ms: t0.saturating_duration_since(self.started).as_millis() as u64,
            context_bytes,
            context_digest,
            saved_ms: outcome.saved_ms,
        });
    }
}

impl Shared<'_> {
    /// The bytes of context files a step's key read, and a digest of which
    /// files with which content (from the key's inputs: no file is read again).
    fn context_read(&self, inputs: &[KeyInput]) -> (u64, Option<Digest>) {
        let read: Vec<&KeyInput> =
            inputs.iter().filter(|i| i.kind == "file" || i.kind == "context").collect();
        if read.is_empty() {
            return (0, None);
        }
        let mut bytes = 0;
        let mut listing = String::new();
        for i in read {
            let rel = if i.name == "." { "" } else { i.name.as_str() };
            bytes += self
                .ctx
                .subtree(rel)
                .filter(|(_, e)| e.kind == EntryKind::File)
                .map(|(_, e)| e.size)
                .sum::<u64>();
            listing.push_str(&format!("{}\0{}\n", i.name, i.value));
        }
        (bytes, Some(Digest::of(listing.as_bytes())))
    }
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
    //! The solver around its seams: a fake isolation runs RUN steps, so
    //! caching, commits, stage order and failures are checked without root.

    use crate::testkit::Fixture;

    const APP: &str = "FROM scratch\nCOPY a.txt /a.txt\nRUN write /b.txt made\n";

    #[test]
    fn a_second_build_is_all_cached_and_gives_the_same_image() {
        let f = Fixture::new(&[("a.txt", "one")]);
        let first = f.build(APP).unwrap();
        assert_eq!((first.steps_run, first.steps_cached, f.runs()), (2, 0, 1));
        assert_eq!(first.config.rootfs.diff_ids.len(), 2);
        let copied = f.layer_files(&first.config.rootfs.diff_ids[0]);
        assert_eq!(copied.get("a.txt").map(String::as_str), Some("one"));
        let ran = f.layer_files(&first.config.rootfs.diff_ids[1]);
        assert_eq!(ran.get("b.txt").map(String::as_str), Some("made"));
        let second = f.build(APP).unwrap();
        assert_eq!((second.steps_run, second.steps_cached, f.runs()), (0, 2, 1));
        assert_eq!(first.image_id, second.image_id);
        assert!(second.steps.iter().all(|s| s.cached && s.reason.is_none()));
    }

    #[test]
    fn a_changed_file_reruns_the_steps_after_it_and_says_why() {
        let f = Fixture::new(&[("a.txt", "one")]);
        let first = f.build(APP).unwrap();
        f.write("a.txt", "two");
        let second = f.build(APP).unwrap();
        assert_eq!((second.steps_run, f.runs()), (2, 2));
        assert_ne!(first.image_id, second.image_id);
        let reason = second.steps[0].reason.as_deref().unwrap();
        assert!(reason.contains("a.txt"), "the reason names the file: {reason}");
    }

    #[test]
    fn a_failing_run_names_its_exit_code_and_caches_nothing() {
        let f = Fixture::new(&[]);
        let file = "FROM scratch\nRUN fail 3\n";
        let e = f.build(file).unwrap_err();
        assert_eq!(e.exit_code, Some(3));
        assert_eq!(e.tail, vec!["about to fail".to_string()]);
        assert!(e.step.as_deref().unwrap().contains("RUN fail 3"), "{:?}", e.step);
        assert!(e.message.contains("exit code: 3"), "{}", e.message);
        assert!(f.build(file).is_err());
        assert_eq!(f.runs(), 2, "a failed step is never served from the cache");
    }

    #[test]
    fn stages_hand_their_files_to_copy_from() {
        let f = Fixture::new(&[]);
        let file =
            "FROM scratch AS gen\nRUN write /out/x generated\nFROM scratch\nCOPY --from=gen /out/x /x\n";
        let out = f.build(file).unwrap();
        assert_eq!(out.config.rootfs.diff_ids.len(), 1);
        assert_eq!(
            f.layer_files(&out.config.rootfs.diff_ids[0]).get("x").map(String::as_str),
            Some("generated")
        );
    }

    #[test]
    fn explain_runs_nothing_and_no_cache_runs_everything() {
        let f = Fixture::new(&[("a.txt", "one")]);
        let mut explain = f.options();
        explain.explain_only = true;
        let planned = f.build_with(APP, &[], &explain).unwrap();
        assert_eq!((planned.steps_run, f.runs()), (2, 0));
        assert!(planned.steps.iter().all(|s| !s.cached && s.reason.is_some()));
        f.build(APP).unwrap();
        let mut no_cache = f.options();
        no_cache.no_cache = true;
        let forced = f.build_with(APP, &[], &no_cache).unwrap();
        assert_eq!((forced.steps_run, f.runs()), (2, 2));
        assert_eq!(forced.steps[1].reason.as_deref(), Some("--no-cache"));
    }

    #[test]
    fn history_marks_steps_without_layers_as_empty() {
        let f = Fixture::new(&[]);
        let out = f.build("FROM scratch\nENV A=1\nRUN write /x 1\nWORKDIR /\n").unwrap();
        let empty: Vec<bool> = out.config.history.iter().map(|h| h.empty_layer).collect();
        // ENV: no layer; RUN: a layer; WORKDIR / exists already: no layer.
        assert_eq!(empty, vec![true, false, true]);
        assert_eq!(out.config.rootfs.diff_ids.len(), 1);
    }
}
