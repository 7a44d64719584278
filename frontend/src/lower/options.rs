//! What the caller hands to lowering: the build args, the target stage and
//! the platform ([`LowerOptions`]), and the base-image lookup
//! ([`BaseResolver`]) through which the builder answers without the
//! frontend doing any I/O.

use std::collections::BTreeMap;

use super::platform::Platform;
use crate::graph::{ImageMeta, Network};

/// The default PATH BuildKit gives `FROM scratch` images and RUN steps.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone)]
pub struct LowerOptions {
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// The target platform: what the image is for.
    pub platform: Platform,
    /// The build platform: where `$BUILDPLATFORM` stages run (the host).
    pub build_platform: Platform,
    /// `--allow security.insecure`: `RUN --security=insecure` may run
    /// outside the sandbox's seccomp filter and masks.
    pub allow_insecure: bool,
    /// `--allow network.host`: `RUN --network=host` may use the host's
    /// network.
    pub allow_network_host: bool,
    /// `--network`: the mode of a RUN that names none itself.
    pub default_network: Network,
    /// `--build-context NAME=…`, names in lower case: what FROM NAME,
    /// `COPY --from=NAME` and mount `from=NAME` read when NAME is no stage,
    /// and what replaces a stage named NAME.
    pub named_contexts: BTreeMap<String, NamedContext>,
}

/// A `--build-context` as lowering sees it: an image (the caller has put a
/// directory or an OCI layout into the store as one) or another stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    Image(String),
    Stage(String),
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions {
            build_args: BTreeMap::new(),
            target: None,
            platform: Platform::host(),
            build_platform: Platform::host(),
            allow_insecure: false,
            allow_network_host: false,
            default_network: Network::Default,
            named_contexts: BTreeMap::new(),
        }
    }
}

/// What lowering needs to know about a base image. The builder implements
/// this over its store; the frontend itself does no I/O.
pub trait BaseResolver {
    /// The metadata of image `reference` (as written, expanded). `Err` is
    /// shown to the user at the FROM line.
    /// `platform` is the stage's: an image index is resolved to its entry
    /// for it, and an image for another platform is an error.
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<ImageMeta, ResolveError>;
}

/// Why a base image could not be resolved, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveError {
    pub message: String,
    pub hint: Option<String>,
}
