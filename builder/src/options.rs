//! What one build is asked to do and the services it is handed: settings
//! (`--no-cache`, `SOURCE_DATE_EPOCH`, secrets, `--explain`), and the
//! seams through which the builder reaches what it does not own itself:
//! where RUN steps run ([`Isolation`]), where roots and diffs live
//! ([`Snapshotter`]), imported caches ([`CacheSource`]) and the network for
//! `ADD <url>` ([`UrlFetcher`]) and `ADD <git repository>` ([`GitFetcher`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rbuild_cache::Store;
use rbuild_cache::index::CacheRecord;
use rbuild_oci::digest::Digest;

pub use crate::download::UrlFetcher;
pub use crate::git::GitFetcher;
pub use crate::in_flight::InFlight;
pub use crate::run_settings::RunSettings;
pub use crate::sandbox::Isolation;
pub use crate::snapshot::Snapshotter;

/// Settings of one build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Ignore the cache (results are still recorded); cache mounts start
    /// empty too.
    pub no_cache: bool,
    /// The cache mounts this `--no-cache` build has emptied already (each
    /// once, before its first use).
    pub emptied_cache_mounts: Arc<Mutex<BTreeSet<PathBuf>>>,
    /// `--no-cache-filter`: stages (by index) whose steps ignore the cache;
    /// the other stages may still hit it.
    pub no_cache_stages: BTreeSet<usize>,
    /// `SOURCE_DATE_EPOCH`: fixes every timestamp for reproducible images.
    pub source_date_epoch: Option<i64>,
    /// Secret values by id (`--secret id=…`).
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// SSH agent sockets by id (`--ssh`), for `RUN --mount=type=ssh`; they
    /// never enter a cache key (changing the agent or its keys reruns
    /// nothing, as in BuildKit).
    pub ssh: BTreeMap<String, PathBuf>,
    /// Names this build's place (context + Dockerfile) for miss explanations.
    pub site_prefix: String,
    /// How `cache-mounts ls` names this build among a mount's users: its
    /// first tag, else its context directory.
    pub build_name: String,
    /// `--explain`: plan and look up every step, run none.
    pub explain_only: bool,
    /// Where else to look when the store's cache index misses
    /// (`--cache-from`), in order.
    pub cache_sources: Vec<Arc<dyn CacheSource>>,
    /// Runs RUN steps.
    pub isolation: Arc<dyn Isolation>,
    /// Prepares step roots and turns their changes into layers.
    pub snapshotter: Arc<dyn Snapshotter>,
    /// Downloads `ADD <url>` sources.
    pub http: Arc<dyn UrlFetcher>,
    /// Resolves and checks out `ADD <git repository>` sources.
    pub git: Arc<dyn GitFetcher>,
    /// `--add-host`, `--ulimit`, `--shm-size`: given to every RUN.
    pub run: RunSettings,
    /// The steps this build is running or ran, shared by the solvers of a
    /// multi-platform build's graphs.
    pub in_flight: Arc<InFlight>,
}

/// Cached steps from outside the store (an imported registry or directory
/// cache). On a hit the source has put the step's layer into the store and
/// its record into the store's index, so the step is then an ordinary hit.
pub trait CacheSource: Send + Sync + std::fmt::Debug {
    /// The record for `key`, or `None`; an error is reported as a warning
    /// and the step runs.
    fn lookup(&self, store: &Store, key: &Digest) -> Result<Option<CacheRecord>, String>;

    /// Seeds the store's cache mount `id` from this source when the source
    /// carries a copy written later than the local one (or there is no
    /// local one). `Ok(Some(note))` says what was done, for the progress
    /// output; an error is reported as a warning and the step runs with
    /// the mount it has. Called once per mount and build, before the first
    /// step that mounts it.
    fn seed_cache_mount(&self, _store: &Store, _id: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
}
