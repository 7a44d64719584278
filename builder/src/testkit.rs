//! Test fixtures for the builder's own unit tests: a store and a context in
//! temporary directories, Dockerfiles planned against them, and a fake
//! [`Isolation`] that stands in for the sandbox. It runs a tiny command
//! language instead of a shell, so the solver, keys, snapshots and commits
//! around it are tested without root, namespaces or overlayfs.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rbuild_cache::Store;
use rbuild_frontend::graph::StepGraph;
use rbuild_frontend::lower::LowerOptions;

use crate::context::BuildContext;
use crate::dockerignore::DockerIgnore;
use crate::download::{HttpAnswer, UrlFetcher};
use crate::env::{ExecEnv, StageResults};
use crate::error::BuildError;
use crate::git::GitFetcher;
use crate::options::BuildOptions;
use crate::outcome::{BaseImages, BuildOutput, StageResult};
use crate::progress::Silent;
use crate::sandbox::{Isolation, RunOutcome, RunRequest, SandboxError};
use crate::snapshot::{OverlaySnapshotter, StepRoot};

/// Runs RUN commands of the form `write PATH TEXT`, `remove PATH`,
/// `fail CODE` (several joined by ` && `) by changing the step's upper dir
/// directly, and counts the commands it ran.
#[derive(Debug, Default)]
pub struct FakeIsolation {
    pub runs: AtomicUsize,
    pub commands: Mutex<Vec<String>>,
}

impl Isolation for FakeIsolation {
    fn run(
        &self,
        _store: &Store,
        root: &StepRoot,
        req: &RunRequest,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<RunOutcome, SandboxError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let script = req.process.argv.last().cloned().unwrap_or_default();
        self.commands.lock().unwrap().push(script.clone());
        for command in script.split(" && ") {
            let words: Vec<&str> = command.splitn(3, ' ').collect();
            match words.as_slice() {
                ["write", path, text] => {
                    let p = root.upper.join(path.trim_start_matches('/'));
                    fs::create_dir_all(p.parent().unwrap()).unwrap();
                    fs::write(p, text).unwrap();
                }
                ["echo", text] | ["echo", text, ..] => on_line(text),
                ["fail", code] => {
                    on_line("about to fail");
                    return Ok(RunOutcome {
                        exit_code: code.parse().unwrap(),
                        tail: vec!["about to fail".into()],
                    });
                }
                _ => panic!("the fake isolation does not know {command:?}"),
            }
        }
        Ok(RunOutcome { exit_code: 0, tail: Vec::new() })
    }
}

/// Downloads are not part of these tests.
#[derive(Debug)]
pub struct NoNetwork;

impl UrlFetcher for NoNetwork {
    fn get(&self, url: &str, _: &[(&str, &str)]) -> Result<HttpAnswer, String> {
        Err(format!("no network in unit tests ({url})"))
    }
}

impl GitFetcher for NoNetwork {
    fn resolve(&self, remote: &str, _: &str, _: Option<&Path>) -> Result<String, String> {
        Err(format!("no network in unit tests ({remote})"))
    }

    fn checkout(&self, remote: &str, _: &str, _: &Path, _: bool, _: Option<&Path>) -> Result<(), String> {
        Err(format!("no network in unit tests ({remote})"))
    }
}

/// A store and a build context in temporary directories.
pub struct Fixture {
    pub store: Store,
    pub context_dir: tempfile::TempDir,
    _store_dir: tempfile::TempDir,
    pub isolation: Arc<FakeIsolation>,
}

impl Fixture {
    pub fn new(files: &[(&str, &str)]) -> Fixture {
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path().join("store")).unwrap();
        let context_dir = tempfile::tempdir().unwrap();
        let fixture = Fixture { store, context_dir, _store_dir: store_dir, isolation: Arc::default() };
        for (path, content) in files {
            fixture.write(path, content);
        }
        fixture
    }

    /// Writes a context file.
    pub fn write(&self, path: &str, content: &str) {
        let p = self.context_dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    pub fn context(&self) -> BuildContext {
        BuildContext::open(self.context_dir.path(), &DockerIgnore::default(), None).unwrap()
    }

    pub fn options(&self) -> BuildOptions {
        BuildOptions {
            in_flight: Default::default(),
            no_cache: false,
            emptied_cache_mounts: Default::default(),
            no_cache_stages: Default::default(),
            source_date_epoch: Some(0),
            secrets: BTreeMap::new(),
            ssh: BTreeMap::new(),
            site_prefix: "test".into(),
            build_name: "test".into(),
            explain_only: false,
            cache_sources: Vec::new(),
            isolation: self.isolation.clone(),
            snapshotter: Arc::new(OverlaySnapshotter),
            http: Arc::new(NoNetwork),
            git: Arc::new(NoNetwork),
            run: Default::default(),
        }
    }

    pub fn plan(&self, dockerfile: &str, build_args: &[(&str, &str)]) -> (StepGraph, BaseImages) {
        let opts = LowerOptions {
            build_args: build_args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..LowerOptions::default()
        };
        let plan = crate::plan::plan(&self.store, dockerfile, &opts).unwrap();
        (plan.graph, plan.bases)
    }

    /// Plans and builds `dockerfile` with `opts`.
    pub fn build_with(
        &self,
        dockerfile: &str,
        build_args: &[(&str, &str)],
        opts: &BuildOptions,
    ) -> Result<BuildOutput, BuildError> {
        let (graph, bases) = self.plan(dockerfile, build_args);
        crate::solve::build(&self.store, &graph, &self.context(), &bases, opts, &Silent, &mut Vec::new())
    }

    pub fn build(&self, dockerfile: &str) -> Result<BuildOutput, BuildError> {
        self.build_with(dockerfile, &[], &self.options())
    }

    pub fn runs(&self) -> usize {
        self.isolation.runs.load(Ordering::SeqCst)
    }

    /// The files of a layer's snapshot, relative paths with their content.
    pub fn layer_files(&self, diff_id: &rbuild_oci::Digest) -> BTreeMap<String, String> {
        let dir = self.store.require_layer(diff_id).unwrap().fs_path();
        let mut out = BTreeMap::new();
        for e in walkdir::WalkDir::new(&dir).min_depth(1) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let rel = e.path().strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        out
    }
}

/// Stage results handed out by index, for keying steps outside a solve.
pub struct FixedStages(pub Vec<StageResult>);

impl StageResults for FixedStages {
    fn wait_for(&self, index: usize) -> Result<Arc<StageResult>, BuildError> {
        Ok(Arc::new(self.0[index].clone()))
    }
}

/// An environment for keying the steps of `graph` outside a solve.
pub fn env<'a>(
    fixture: &'a Fixture,
    ctx: &'a BuildContext,
    graph: &'a StepGraph,
    stages: &'a FixedStages,
    bases: &'a BaseImages,
    opts: &'a BuildOptions,
) -> ExecEnv<'a> {
    ExecEnv { store: &fixture.store, ctx, graph, stages, bases, opts }
}

/// A stage result whose filesystem is identified by `key` alone.
pub fn stage_with_key(key: &[u8]) -> StageResult {
    StageResult {
        key: rbuild_oci::Digest::of(key),
        layers: Vec::new(),
        history: Vec::new(),
        created: 0,
        base_config: None,
        base_image: None,
    }
}
