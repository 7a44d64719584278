//! The copying snapshotter, for stores where overlayfs cannot be mounted
//! (a store on overlayfs itself, no CAP_SYS_ADMIN, a filesystem overlay
//! refuses): a RUN step's root is a real directory prepared from its
//! layers' snapshot dirs (reflinked or copied, never hard-linked to them),
//! and at commit its changes are found by comparing it with what was
//! prepared, written as the same overlay-format upper dir an overlay mount
//! would have left (see `rbuild_layer::PreparedRoot`), so the layer is the
//! same byte for byte.
//!
//! A committed step's root is kept (see [`KeptRoot`]): when a later RUN
//! builds on its layer, that root becomes the later step's root once the
//! layers made since are applied to it, instead of a copy of the whole
//! merged tree per RUN.

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rbuild_cache::Store;
use rbuild_cache::store::{KnownTar, LayerRef, remove_tree};
use rbuild_layer::{PreparedRoot, WriteOptions};

use super::{Lower, RootMount, Snapshotter, StepRoot, commit_upper, discard, view_of_lowers};
use crate::error::BuildError;

/// Kept roots at most: one per stage running at the same time is what
/// helps; each costs the disk space of a step's merged tree.
const MAX_KEPT: usize = 2;

/// Prepares RUN roots as directories in the store's scratch space (which
/// the store removes when a build ends or is killed).
#[derive(Debug)]
pub struct CopySnapshotter {
    /// Roots of committed steps, oldest first.
    kept: Mutex<Vec<KeptRoot>>,
    /// Whether committed roots are kept at all (`RBUILD_COPY_REUSE=0`
    /// turns it off, to measure what keeping them saves).
    reuse: bool,
}

impl Default for CopySnapshotter {
    fn default() -> CopySnapshotter {
        let reuse = std::env::var_os("RBUILD_COPY_REUSE").is_none_or(|v| v != "0");
        CopySnapshotter { kept: Mutex::new(Vec::new()), reuse }
    }
}

/// The root of a committed RUN step: the merged tree of `lowers` with the
/// step's changes made, where the changed nodes themselves moved into the
/// step's layer (`layer`, `None` when it made none). A step on top of
/// that layer (and maybe more) gets this root once `layer` and the layers
/// above it are applied.
#[derive(Debug)]
struct KeptRoot {
    /// The scratch dir holding it, removed with it.
    scratch: PathBuf,
    dir: PathBuf,
    /// The snapshot dirs it was prepared from, top first.
    lowers: Vec<PathBuf>,
    /// The snapshot dir of the layer the step made.
    layer: Option<PathBuf>,
}

impl KeptRoot {
    /// The snapshot dirs to apply (bottom first) to make this root the
    /// merged tree of `lowers` (top first); `None` when it is not below it.
    fn layers_to_apply(&self, lowers: &[Lower]) -> Option<Vec<PathBuf>> {
        let added = lowers.len().checked_sub(self.lowers.len())?;
        let (new, below) = lowers.split_at(added);
        if !below.iter().map(|l| &l.abs).eq(self.lowers.iter()) {
            return None;
        }
        if let Some(layer) = &self.layer
            && new.last().map(|l| &l.abs) != Some(layer)
        {
            return None;
        }
        Some(new.iter().rev().map(|l| l.abs.clone()).collect())
    }
}

impl CopySnapshotter {
    /// Takes a kept root that can become the root of `lowers`, with the
    /// layers to apply to it.
    fn take_kept(&self, lowers: &[Lower]) -> Option<(KeptRoot, Vec<PathBuf>)> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let (at, layers) =
            kept.iter().enumerate().find_map(|(i, k)| Some((i, k.layers_to_apply(lowers)?)))?;
        Some((kept.remove(at), layers))
    }

    fn keep(&self, root: KeptRoot) {
        if !self.reuse {
            let _ = remove_tree(&root.scratch);
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.push(root);
        while kept.len() > MAX_KEPT {
            let _ = remove_tree(&kept.remove(0).scratch);
        }
    }

    /// The baseline of `dir` as the root of `lowers`: a kept root carried
    /// on where one fits, a fresh copy otherwise.
    fn make_root(
        &self,
        store: &Store,
        lowers: &[Lower],
        dir: &std::path::Path,
    ) -> Result<PreparedRoot, BuildError> {
        let stack = view_of_lowers(store, lowers);
        let started = Instant::now();
        if let Some((kept, layers)) = self.take_kept(lowers) {
            let moved = fs::rename(&kept.dir, dir);
            let _ = remove_tree(&kept.scratch);
            let carried = match moved {
                Ok(()) => stack.carry_root(dir, &layers).map_err(BuildError::from),
                Err(e) => Err(BuildError::from(e)),
            };
            match carried {
                Ok(prepared) => {
                    tracing::debug!(
                        layers = layers.len(),
                        bytes = prepared.stats().content_bytes,
                        elapsed = ?started.elapsed(),
                        "reused the previous step's root"
                    );
                    return Ok(prepared);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot reuse the previous step's root; copying afresh");
                    let _ = remove_tree(dir);
                }
            }
        }
        let prepared = stack.prepare_root(dir)?;
        let stats = prepared.stats();
        tracing::debug!(
            entries = stats.entries,
            bytes = stats.content_bytes,
            elapsed = ?started.elapsed(),
            "prepared a root by copying"
        );
        Ok(prepared)
    }
}

impl Snapshotter for CopySnapshotter {
    fn prepare_root(&self, store: &Store, lowers: &[Lower]) -> Result<StepRoot, BuildError> {
        let scratch = store.temp_dir("run")?;
        let (dir, upper) = (scratch.join("root"), scratch.join("upper"));
        let baseline = match self.make_root(store, lowers, &dir) {
            Ok(baseline) => baseline,
            Err(e) => {
                let _ = remove_tree(&scratch);
                return Err(e);
            }
        };
        fs::create_dir(&upper)?;
        let mount = Some(RootMount::Prepared { dir, baseline: Arc::new(baseline) });
        Ok(StepRoot { scratch, upper, mount })
    }

    fn commit(
        &self,
        store: &Store,
        root: StepRoot,
        opts: &WriteOptions,
        known: Option<KnownTar>,
    ) -> Result<Option<LayerRef>, BuildError> {
        // A copied root's changes are found by comparison: only an upper
        // written directly (a COPY) can come with its tar known.
        let Some(RootMount::Prepared { dir, baseline }) = &root.mount else {
            return commit_upper(store, root, opts, known);
        };
        let started = Instant::now();
        if let Err(e) = baseline.write_changes(dir, &root.upper) {
            discard(root);
            return Err(e.into());
        }
        tracing::debug!(elapsed = ?started.elapsed(), "found a copied root's changes");
        let started = Instant::now();
        let layer = match store.commit_upper(&root.upper, opts) {
            Ok(layer) => layer,
            Err(e) => {
                discard(root);
                return Err(e.into());
            }
        };
        tracing::debug!(elapsed = ?started.elapsed(), "committed the changes");
        let _ = remove_tree(&root.upper);
        self.keep(KeptRoot {
            lowers: baseline.layer_dirs().to_vec(),
            layer: layer.as_ref().map(LayerRef::fs_path),
            dir: dir.clone(),
            scratch: root.scratch,
        });
        Ok(layer)
    }
}
