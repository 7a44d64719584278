//! The overlay snapshotter: a RUN step's root is an overlayfs of the
//! parent layers' snapshot dirs under a fresh upper dir, so nothing is
//! copied before the step runs and the upper dir is exactly its diff.

use std::fs;

use rbuild_cache::Store;

use super::{Lower, RootMount, Snapshotter, StepRoot};
use crate::error::BuildError;

/// Prepares overlay roots in the store's scratch space; the isolation
/// mounts them (inside its own mount namespace).
#[derive(Debug, Default)]
pub struct OverlaySnapshotter;

impl Snapshotter for OverlaySnapshotter {
    fn prepare_root(&self, store: &Store, lowers: &[Lower]) -> Result<StepRoot, BuildError> {
        let scratch = store.temp_dir("run")?;
        let [upper, work, merged, empty] = ["upper", "work", "merged", "empty"].map(|d| scratch.join(d));
        for d in [&upper, &work, &merged, &empty] {
            fs::create_dir(d)?;
        }
        let lowers = lowers.iter().map(|l| l.rel.clone()).collect();
        Ok(StepRoot { scratch, upper, mount: Some(RootMount::Overlay { lowers, work, merged, empty }) })
    }
}
