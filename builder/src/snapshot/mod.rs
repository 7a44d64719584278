//! Snapshots: where a step's root filesystem comes from and how its
//! changes become a layer, behind the [`Snapshotter`] seam (after
//! containerd's Prepare/Commit). Every snapshotter hands out changes in one
//! format, an overlay-style upper directory (a deletion is a 0/0 character
//! device, a replacing directory carries the opaque xattr), so committing a
//! layer is the same whichever prepared the root.
//!
//! Two snapshotters: [`OverlaySnapshotter`] (a RUN's root is an overlay
//! mount) and [`CopySnapshotter`] (a RUN's root is a real directory, for
//! stores where overlayfs cannot be mounted); [`select`] picks one.
//!
//! Also here: the read-only views of a layer chain that COPY --from, bind
//! mounts and USER lookups read, which need no mount at all.

mod copy;
mod overlay;
pub mod select;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rbuild_cache::Store;
use rbuild_cache::store::{KnownTar, LayerRef};
use rbuild_layer::{LayerStack, PreparedRoot, WriteOptions};
use rbuild_oci::digest::Digest;

use crate::error::BuildError;

pub use copy::CopySnapshotter;
pub use overlay::OverlaySnapshotter;

/// One parent layer of a step: its snapshot dir, absolute and relative to
/// the store root (for short overlay mount options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lower {
    pub abs: PathBuf,
    pub rel: String,
}

/// A step's private directories: the upper dir that collects its changes,
/// inside a scratch dir removed when the step is discarded, and when it is
/// committed unless the snapshotter keeps its root for a later step.
#[derive(Debug)]
pub struct StepRoot {
    pub scratch: PathBuf,
    /// The step's changes, in overlay format.
    pub upper: PathBuf,
    /// How an isolation makes the whole root visible to a RUN step; `None`
    /// for steps that write their changes directly (COPY, ADD, WORKDIR).
    pub mount: Option<RootMount>,
}

/// How a RUN step's root is assembled.
#[derive(Debug, Clone)]
pub enum RootMount {
    /// An overlay of snapshot dirs (store-relative, top first) under the
    /// upper dir, mounted by the isolation at `merged`. `empty` serves as
    /// the only lower when there are no layers.
    Overlay { lowers: Vec<String>, work: PathBuf, merged: PathBuf, empty: PathBuf },
    /// A real directory holding the whole root, which the isolation uses as
    /// it is (a bind mount of it, or a chroot into it): no overlay mount.
    /// The step writes into it; its changes are found at commit by
    /// comparing with the baseline recorded when it was prepared.
    Prepared { dir: PathBuf, baseline: Arc<PreparedRoot> },
}

impl StepRoot {
    /// The prepared root directory, for an isolation that runs the step in
    /// a real directory; `None` when the root must be mounted (overlay).
    pub fn prepared_dir(&self) -> Option<&Path> {
        match &self.mount {
            Some(RootMount::Prepared { dir, .. }) => Some(dir),
            _ => None,
        }
    }

    /// Where the step's writes land while it runs: the upper dir under an
    /// overlay, the root itself when it was prepared as a directory.
    pub fn written_tree(&self) -> &Path {
        self.prepared_dir().unwrap_or(&self.upper)
    }
}

/// Prepares step roots on top of parent layers and commits their changes.
pub trait Snapshotter: Send + Sync + std::fmt::Debug {
    /// A writable root for a RUN step on top of `lowers` (top first).
    fn prepare_root(&self, store: &Store, lowers: &[Lower]) -> Result<StepRoot, BuildError>;

    /// An empty upper dir for a step that writes its changes itself.
    fn prepare_diff(&self, store: &Store, label: &str) -> Result<StepRoot, BuildError> {
        let scratch = store.temp_dir(label)?;
        let upper = scratch.join("upper");
        std::fs::create_dir(&upper)?;
        Ok(StepRoot { scratch, upper, mount: None })
    }

    /// Turns a finished step's changes into a layer (`None`: no change
    /// worth a layer) and removes its scratch dir (the copying snapshotter
    /// keeps the root in it for the next RUN built on that layer). `known`
    /// is the layer tar of an upper dir written by a described COPY, hashed
    /// while it was written: the upper is then not walked again.
    fn commit(
        &self,
        store: &Store,
        root: StepRoot,
        opts: &WriteOptions,
        known: Option<KnownTar>,
    ) -> Result<Option<LayerRef>, BuildError> {
        commit_upper(store, root, opts, known)
    }
}

/// Commits a step root's upper dir as a layer and removes its scratch dir
/// (in the background, see [`discard_in_background`]).
fn commit_upper(
    store: &Store,
    root: StepRoot,
    opts: &WriteOptions,
    known: Option<KnownTar>,
) -> Result<Option<LayerRef>, BuildError> {
    let layer = match known {
        Some(known) => store.commit_upper_known(&root.upper, opts, known),
        None => store.commit_upper(&root.upper, opts),
    };
    discard_in_background(root);
    Ok(layer?)
}

/// Scratch dirs of committed steps still being removed.
static DISCARDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Removes a committed step's scratch dir on a thread of its own. What is
/// left there once the upper dir is a layer (a RUN's overlay work dir,
/// mount point, spec, status and /etc files; a copied root under the
/// copying snapshotter) is litter, and its unlinks (tens of milliseconds
/// for a RUN step on a busy disk, measured) need not hold up the next step.
/// [`wait_for_discards`] waits for them at the end of the build.
pub fn discard_in_background(root: StepRoot) {
    let scratch = root.scratch.clone();
    let spawned = std::thread::Builder::new().name("discard".into()).spawn(move || discard(root));
    match spawned {
        Ok(handle) => DISCARDING.lock().unwrap_or_else(|e| e.into_inner()).push(handle),
        Err(_) => {
            let _ = rbuild_cache::store::remove_tree(&scratch);
        }
    }
}

/// Waits until every scratch dir handed to [`discard_in_background`] is gone.
pub fn wait_for_discards() {
    let pending = std::mem::take(&mut *DISCARDING.lock().unwrap_or_else(|e| e.into_inner()));
    for handle in pending {
        let _ = handle.join();
    }
}

/// Removes a step's scratch dir and everything in it.
pub fn discard(root: StepRoot) {
    let _ = rbuild_cache::store::remove_tree(&root.scratch);
}

/// A layer chain (bottom first, as an image lists it) top first, with each
/// layer only at its topmost place. An image may list one layer twice (two
/// steps that made the same change, or a hostile image); overlayfs refuses
/// a lower directory given twice (ELOOP), and the upper occurrence already
/// shows all the lower one would: whatever it holds or hides wins over
/// everything below it either way.
pub fn top_first_distinct(layers: &[Digest]) -> Vec<Digest> {
    let mut seen = std::collections::HashSet::new();
    layers.iter().rev().filter(|d| seen.insert(**d)).copied().collect()
}

/// The snapshot dirs of a layer chain, top first, each layer once.
pub fn lowers_of(store: &Store, layers: &[Digest]) -> Result<Vec<Lower>, BuildError> {
    top_first_distinct(layers)
        .iter()
        .map(|d| {
            let l = store.require_layer(d)?;
            Ok(Lower { abs: l.fs_path(), rel: store.snapshot_rel_path(d) })
        })
        .collect()
}

/// A merged read-only view of a stage's or image's layers.
pub fn view_of(store: &Store, layers: &[Digest]) -> Result<LayerStack, BuildError> {
    Ok(view_of_lowers(store, &lowers_of(store, layers)?))
}

/// The merged read-only view of snapshot dirs given top first.
pub fn view_of_lowers(store: &Store, lowers: &[Lower]) -> LayerStack {
    LayerStack::new(lowers.iter().map(|l| l.abs.clone()).collect(), store.overlay_xattrs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_dir_discarded_in_the_background_is_gone_once_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join("run-1");
        let upper = scratch.join("upper");
        std::fs::create_dir_all(upper.join("work/work")).unwrap();
        std::fs::write(scratch.join("status.json"), b"{}").unwrap();
        discard_in_background(StepRoot { scratch: scratch.clone(), upper, mount: None });
        wait_for_discards();
        // Another test's wait may have taken this handle and still be
        // joining it: give it a moment rather than fail on that.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while scratch.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!scratch.exists(), "the scratch dir is removed by the time the build ends");
    }

    #[test]
    fn repeated_layers_keep_only_their_topmost_place() {
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        // Bottom first in, top first out.
        assert_eq!(top_first_distinct(&[a, b, a, c, b]), vec![b, c, a]);
        assert_eq!(top_first_distinct(&[a, b, c]), vec![c, b, a]);
    }
}
