//! Fills in a build's record while `rbuild build` runs and writes it when
//! the build ends, however it ends; then the `--timings` report.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rbuild_builder::outcome::StepReport;
use rbuild_cache::Store;
use rbuild_oci::digest::Digest;

use super::model::{BuildRecord, BuildStatus, RECORD_VERSION, RecordedOptions};
use super::{store, timings};
use crate::cli::BuildArgs;
use crate::report::Failure;

/// A build's record in the making.
pub struct Recorder {
    record: BuildRecord,
    clock: Instant,
    /// `--timings`: `Some(None)` for the default place.
    timings: Option<Option<PathBuf>>,
    /// `--explain` builds nothing and leaves no record.
    plan_only: bool,
}

impl Recorder {
    pub fn start(args: &BuildArgs) -> Recorder {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let context = absolute(&args.context);
        let dockerfile = match args.file.as_deref() {
            Some(f) if f == Path::new("-") => "-".to_string(),
            Some(f) => absolute(f).display().to_string(),
            None => context.join("Dockerfile").display().to_string(),
        };
        let record = BuildRecord {
            version: RECORD_VERSION,
            id: store::new_id(since_epoch.as_nanos(), &context),
            started_ms: since_epoch.as_millis() as i64,
            options: RecordedOptions {
                context: context.display().to_string(),
                dockerfile,
                target: args.target.clone(),
                build_args: args.build_args.clone(),
                no_cache: args.no_cache,
                pull: args.pull,
                labels: args.labels.clone(),
                outputs: args.output.clone(),
            },
            tags: args.tags.clone(),
            ..BuildRecord::default()
        };
        Recorder { record, clock: Instant::now(), timings: args.timings.clone(), plan_only: args.explain }
    }

    /// The steps as the solver reported them.
    pub fn steps(&mut self, steps: &[StepReport]) {
        self.record.set_steps(steps);
    }

    /// What the build checks found.
    pub fn check_warnings(&mut self, warnings: Vec<String>) {
        self.record.check_warnings = warnings;
    }

    pub fn image(&mut self, id: Digest) {
        self.record.image_id = Some(id);
    }

    /// Writes the record for a build that ended with `result`, then the
    /// timings report if asked for. A record that cannot be written is a
    /// warning (the build happened all the same); a report that cannot be
    /// written is an error, after the record is stored.
    pub fn finish(mut self, store: &Store, result: Result<(), Failure>) -> Result<(), Failure> {
        if self.plan_only {
            return result;
        }
        self.record.duration_ms = self.clock.elapsed().as_millis() as u64;
        let writing = Instant::now();
        if let Err(f) = &result {
            self.record.status = BuildStatus::Failed;
            self.record.error = Some(f.message.clone());
        }
        if let Err(e) = store::save(store, &self.record) {
            eprintln!("warning: cannot write the build record: {e}");
        }
        result?;
        let report = match &self.timings {
            Some(path) => timings::write_report(&self.record, path.as_deref()).map_err(|f| {
                f.hint(format!(
                    "the build itself succeeded and is recorded: `rbuild builds show {} --timings=PATH` writes the report elsewhere",
                    store::short(&self.record.id)
                ))
            })
            .map(drop),
            None => Ok(()),
        };
        // bench/record-overhead reads this: what the record and the report cost a build.
        tracing::debug!(micros = writing.elapsed().as_micros() as u64, "build record written");
        report
    }
}

/// `path` made absolute against the current directory.
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    }
}

/// "; the cache saved 3.2s" for the build's closing line, or nothing when
/// no cached step has a known original time.
pub fn cache_saved_note(steps: &[StepReport]) -> String {
    let saved: u64 = steps.iter().filter(|s| s.cached).filter_map(|s| s.saved_ms).sum();
    if saved == 0 { String::new() } else { format!("; the cache saved {}", super::cells::secs(saved)) }
}
