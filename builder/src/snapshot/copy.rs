//! The copying snapshotter, for stores where overlayfs cannot be mounted
//! (a store on overlayfs itself, no CAP_SYS_ADMIN, a filesystem overlay
//! refuses): a RUN step's root is a real directory prepared from its
//! layers' snapshot dirs (reflinked or copied, never hard-linked to them),
//! and at commit its changes are found by comparing it with what was
//! prepared, written as the same overlay-format upper dir an overlay mount
//! would have left (see `rbuild_layer::PreparedRoot`), so the layer is the
//! same byte for byte.

use std::fs;
use std::sync::Arc;

use rbuild_cache::Store;
use rbuild_cache::store::LayerRef;
use rbuild_layer::WriteOptions;

use super::{Lower, RootMount, Snapshotter, StepRoot, commit_upper, discard, view_of_lowers};
use crate::error::BuildError;

/// Prepares RUN roots as directories in the store's scratch space (which
/// the store removes when a build is killed), so nothing outlives a step.
#[derive(Debug, Default)]
pub struct CopySnapshotter;

impl Snapshotter for CopySnapshotter {
    fn prepare_root(&self, store: &Store, lowers: &[Lower]) -> Result<StepRoot, BuildError> {
        let scratch = store.temp_dir("run")?;
        let (dir, upper) = (scratch.join("root"), scratch.join("upper"));
        let started = std::time::Instant::now();
        let prepared = view_of_lowers(store, lowers).prepare_root(&dir);
        let baseline = match prepared {
            Ok(baseline) => baseline,
            Err(e) => {
                let _ = rbuild_cache::store::remove_tree(&scratch);
                return Err(e.into());
            }
        };
        let stats = baseline.stats();
        tracing::debug!(
            entries = stats.entries,
            bytes = stats.content_bytes,
            elapsed = ?started.elapsed(),
            "prepared a root by copying"
        );
        fs::create_dir(&upper)?;
        let mount = Some(RootMount::Prepared { dir, baseline: Arc::new(baseline) });
        Ok(StepRoot { scratch, upper, mount })
    }

    fn commit(
        &self,
        store: &Store,
        root: StepRoot,
        opts: &WriteOptions,
    ) -> Result<Option<LayerRef>, BuildError> {
        if let Some(RootMount::Prepared { dir, baseline }) = &root.mount {
            let started = std::time::Instant::now();
            if let Err(e) = baseline.write_changes(dir, &root.upper) {
                discard(root);
                return Err(e.into());
            }
            tracing::debug!(elapsed = ?started.elapsed(), "found a copied root's changes");
        }
        let started = std::time::Instant::now();
        let layer = commit_upper(store, root, opts);
        tracing::debug!(elapsed = ?started.elapsed(), "committed the changes");
        layer
    }
}
