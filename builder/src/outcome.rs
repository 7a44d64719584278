//! What solving produces: a finished stage's filesystem and history for
//! the stages after it, a report per step (for `--metadata-file` and
//! cache export), and the target's image before it is stored.

use std::collections::BTreeMap;

use rbuild_oci::config::{History, ImageConfig};
use rbuild_oci::digest::Digest;
use rbuild_oci::platform::Platform;

/// Base images already resolved while planning: reference as written → ID
/// for the graph's target platform, [`base_key`] for a stage on another.
pub type BaseImages = BTreeMap<String, Digest>;

/// Where [`BaseImages`] keeps `reference` resolved for `platform`: the
/// reference itself for the target platform (COPY --from and mounts read
/// images for it), the reference and the platform otherwise.
pub fn base_key(reference: &str, platform: &Platform, target: &Platform) -> String {
    if platform == target { reference.to_string() } else { format!("{reference} for {platform}") }
}

/// What happened to one filesystem step (for `--metadata-file`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// The step's cache key (for exporting the cache it used).
    #[serde(skip)]
    pub key: Digest,
    pub stage: String,
    /// The step's number in its stage, as progress shows it (`[stage 2/4]`).
    pub number: usize,
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
    /// When the step started, in milliseconds after the build started.
    pub started_ms: u64,
    /// Bytes of the context files the step reads (COPY/ADD sources, bind
    /// mounts of the context).
    pub context_bytes: u64,
    /// A digest of what the step reads from the context (paths and
    /// contents), absent when it reads nothing from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_digest: Option<Digest>,
    /// For a cached step: how long it took when it ran, the time the cache
    /// saved (absent when not known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_ms: Option<u64>,
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
