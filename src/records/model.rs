//! What a build record holds, as it is written to the store. Every field
//! but the ID has a default, so a record written by an older rbuild (fewer
//! fields) still reads; a newer version number is reported, not guessed at.

use rbuild_builder::outcome::StepReport;
use rbuild_oci::digest::Digest;
use serde::{Deserialize, Serialize};

/// The record format this rbuild writes and reads.
pub const RECORD_VERSION: u32 = 1;

/// One build, from its options to each step's fate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildRecord {
    pub version: u32,
    /// Hex, unique in the store; commands accept any unique prefix.
    pub id: String,
    /// Milliseconds since the epoch when the build started.
    pub started_ms: i64,
    pub duration_ms: u64,
    pub status: BuildStatus,
    /// Why the build failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<Digest>,
    pub tags: Vec<String>,
    pub options: RecordedOptions,
    /// A digest of everything the build read from the context (paths and
    /// contents): equal digests, same context as far as the build cares.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_digest: Option<Digest>,
    /// Every filesystem step, in the order they started.
    pub steps: Vec<StepRecord>,
    /// The build checks' findings (`LINE: Rule: message`); older records
    /// have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check_warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    #[default]
    Completed,
    Failed,
    /// `--explain`: planned, nothing ran.
    Planned,
}

impl BuildStatus {
    pub fn word(self) -> &'static str {
        match self {
            BuildStatus::Completed => "completed",
            BuildStatus::Failed => "failed",
            BuildStatus::Planned => "planned",
        }
    }
}

/// The options that decide what a build does.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordedOptions {
    pub context: String,
    pub dockerfile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `--build-arg`s as given (`KEY=VALUE`, or `KEY` taken from the environment).
    pub build_args: Vec<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub labels: Vec<String>,
    pub outputs: Vec<String>,
}

/// One filesystem step of a build.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepRecord {
    pub stage: String,
    pub number: usize,
    pub instruction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Digest>,
    pub cached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Milliseconds after the build started.
    pub started_ms: u64,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<Digest>,
    pub layer_size: u64,
    pub context_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_digest: Option<Digest>,
    /// Cached: how long the step took when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_ms: Option<u64>,
}

impl From<&StepReport> for StepRecord {
    fn from(r: &StepReport) -> StepRecord {
        StepRecord {
            stage: r.stage.clone(),
            number: r.number,
            instruction: r.step.clone(),
            key: Some(r.key),
            cached: r.cached,
            reason: r.reason.clone(),
            started_ms: r.started_ms,
            duration_ms: r.duration_ms,
            layer: r.layer,
            layer_size: r.layer_size,
            context_bytes: r.context_bytes,
            context_digest: r.context_digest,
            saved_ms: r.saved_ms,
        }
    }
}

impl StepRecord {
    /// `[stage 2] RUN make`
    pub fn title(&self) -> String {
        format!("[{} {}] {}", self.stage, self.number, self.instruction)
    }

    pub fn ended_ms(&self) -> u64 {
        self.started_ms + self.duration_ms
    }
}

impl BuildRecord {
    /// The steps that ran and those served from the cache.
    pub fn counts(&self) -> (usize, usize) {
        let cached = self.steps.iter().filter(|s| s.cached).count();
        (self.steps.len() - cached, cached)
    }

    /// What the cache saved: the sum of the cached steps' original times.
    pub fn saved_ms(&self) -> u64 {
        self.steps.iter().filter(|s| s.cached).filter_map(|s| s.saved_ms).sum()
    }

    /// The record's steps in start order, with the build-wide context
    /// digest made from theirs.
    pub fn set_steps(&mut self, reports: &[StepReport]) {
        let mut steps: Vec<StepRecord> = reports.iter().map(StepRecord::from).collect();
        steps.sort_by_key(|s| (s.started_ms, s.stage.clone(), s.number));
        let mut read: Vec<String> =
            steps.iter().filter_map(|s| s.context_digest.map(|d| d.to_string())).collect();
        // Stages run in parallel: the order steps started in is no part of the context.
        read.sort();
        self.context_digest = (!read.is_empty()).then(|| Digest::of(read.join("\n").as_bytes()));
        self.steps = steps;
    }
}
