//! What a step may consult while it is keyed and executed: the store, the
//! build context, the graph, the results of the stages it reads from, the
//! resolved base images and the build's options. Also the lookups every
//! kind of step shares: the layers a `--from` names, USER resolution in
//! the image's own files, and the context errors with their hints.

use std::sync::Arc;

use rbuild_cache::Store;
use rbuild_frontend::graph::{CopySource, StepGraph};
use rbuild_frontend::span::Span;
use rbuild_layer::LayerStack;
use rbuild_oci::digest::Digest;

use crate::context::{BuildContext, ContextError};
use crate::error::BuildError;
use crate::options::BuildOptions;
use crate::outcome::{BaseImages, StageResult};
use crate::users;

/// The results of other stages, as they finish.
pub trait StageResults: Sync {
    /// Waits for stage `index` to finish and returns its result.
    fn wait_for(&self, index: usize) -> Result<Arc<StageResult>, BuildError>;
}

/// What steps may consult while keyed and executed.
pub struct ExecEnv<'a> {
    pub store: &'a Store,
    pub ctx: &'a BuildContext,
    pub graph: &'a StepGraph,
    /// The results of the stages a step reads from.
    pub stages: &'a dyn StageResults,
    pub bases: &'a BaseImages,
    pub opts: &'a BuildOptions,
}

impl ExecEnv<'_> {
    /// The layers of an image the plan resolved.
    pub fn image_layers(&self, reference: &str) -> Result<Vec<Digest>, BuildError> {
        let id = self
            .bases
            .get(reference)
            .ok_or_else(|| BuildError::new(format!("image {reference} was not resolved")))?;
        Ok(self.store.image_config(id)?.1.rootfs.diff_ids)
    }

    /// Layers of the filesystem a `--from` names.
    pub fn source_layers(&self, source: &CopySource) -> Result<Vec<Digest>, BuildError> {
        match source {
            CopySource::Stage(i) => Ok(self.stages.wait_for(*i)?.layers.clone()),
            CopySource::Image(r) => self.image_layers(r),
            CopySource::Context => Ok(Vec::new()),
        }
    }
}

/// A context error at `span`, with the hint that helps for its kind.
pub fn context_error(e: ContextError, span: Span) -> BuildError {
    let hint = match &e {
        ContextError::Outside(_) => {
            "COPY and ADD can only read files inside the build context; move the file into the context directory"
        }
        ContextError::NotFound(_) => {
            "check the path is relative to the context directory and not excluded by .dockerignore"
        }
        ContextError::Pattern(..) => {
            "wildcards follow Go's filepath.Match: *, ?, [a-z], [^a-z], \\ to escape"
        }
        _ => "check the build context",
    };
    BuildError::from(e).at(span).hint(hint)
}

/// Resolves USER against the image's own /etc/passwd and /etc/group.
pub fn identity(view: &LayerStack, user: &str) -> Result<users::Identity, BuildError> {
    let read = |p: &str| match view.read_file(p) {
        Ok(Some(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
        Ok(None) | Err(_) => None,
    };
    let passwd = read("/etc/passwd");
    let group = read("/etc/group");
    users::resolve(user, passwd.as_deref(), group.as_deref()).map_err(|e| {
        BuildError::new(e).hint("create the user in an earlier RUN (e.g. adduser) or use a numeric uid:gid")
    })
}
