//! Which snapshotter a build uses: `--snapshotter auto|overlay|copy` (or
//! `RBUILD_SNAPSHOTTER`). `auto` takes the overlay snapshotter where an
//! overlay with its upper dir in the store's scratch space can be mounted,
//! and the copying one where it cannot (the store on overlayfs itself, no
//! CAP_SYS_ADMIN, a filesystem overlayfs refuses). Finding out takes a
//! mount in a helper process, so the answer is kept in the store's state,
//! keyed by the store's filesystem, the kernel and who runs rbuild: one
//! probe per store and place, not per build.

use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;

use rbuild_cache::Store;
use serde::{Deserialize, Serialize};

use super::{CopySnapshotter, OverlaySnapshotter, Snapshotter};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotterChoice {
    /// Overlay where it mounts, copy where not.
    #[default]
    Auto,
    Overlay,
    Copy,
}

impl FromStr for SnapshotterChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(SnapshotterChoice::Auto),
            "overlay" => Ok(SnapshotterChoice::Overlay),
            "copy" => Ok(SnapshotterChoice::Copy),
            other => Err(format!(
                "unknown snapshotter {other:?}: expected auto, overlay or copy (e.g. --snapshotter copy)"
            )),
        }
    }
}

/// The snapshotter a build got, and why.
#[derive(Debug, Clone)]
pub struct Selection {
    pub snapshotter: Arc<dyn Snapshotter>,
    /// `overlay` or `copy`.
    pub name: &'static str,
    /// Why this one: asked for, or what the probe found.
    pub reason: String,
}

impl Selection {
    /// The line shown at the start of a build's progress.
    pub fn describe(&self) -> String {
        format!("snapshotter: {} ({})", self.name, self.reason)
    }
}

/// Picks the snapshotter for a build on `store`; `helper` is the
/// executable that answers `__probe-overlay DIR` (rbuild itself).
pub fn select(choice: SnapshotterChoice, store: &Store, helper: &Path) -> Selection {
    match choice {
        SnapshotterChoice::Overlay => overlay("--snapshotter overlay".into()),
        SnapshotterChoice::Copy => copy("--snapshotter copy".into()),
        SnapshotterChoice::Auto => match overlay_mounts(store, helper) {
            Ok(()) => overlay("overlayfs mounts on the store's filesystem".into()),
            Err(why) => copy(format!("overlayfs refused by the store's filesystem: {why}")),
        },
    }
}

fn overlay(reason: String) -> Selection {
    Selection { snapshotter: Arc::new(OverlaySnapshotter), name: "overlay", reason }
}

fn copy(reason: String) -> Selection {
    Selection { snapshotter: Arc::new(CopySnapshotter::default()), name: "copy", reason }
}

/// A probe's answer as kept in the store's state.
#[derive(Debug, Serialize, Deserialize)]
struct ProbeRecord {
    /// Where and by whom it was found (see [`probe_key`]).
    key: String,
    /// `None`: the overlay mounted.
    refused: Option<String>,
}

/// Whether an overlay whose upper dir is in the store's scratch space
/// mounts, from the kept answer when it was found in the same place.
fn overlay_mounts(store: &Store, helper: &Path) -> Result<(), String> {
    let record_path = store.state_path("overlay-probe.json");
    let key = probe_key(store);
    let kept = std::fs::read(&record_path).ok().and_then(|b| serde_json::from_slice::<ProbeRecord>(&b).ok());
    if let Some(record) = kept.filter(|r| r.key == key) {
        return record.refused.map_or(Ok(()), Err);
    }
    let answer = probe(store, helper);
    let record = ProbeRecord { key, refused: answer.clone().err() };
    if let Ok(bytes) = serde_json::to_vec(&record) {
        // Only a cache: a store we cannot write to probes again next time.
        let _ = rbuild_cache::store::write_file(&record_path, &bytes);
    }
    answer
}

/// The store's filesystem (device and type), the kernel, and whether
/// rbuild runs as root of the host: what decides whether overlay mounts.
fn probe_key(store: &Store) -> String {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(store.root()).map(|m| m.dev()).unwrap_or(0);
    let fs_type = nix::sys::statfs::statfs(store.root())
        .map(|s| format!("{:?}", s.filesystem_type()))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let host_root = rbuild_layer::has_host_root();
    format!("dev={dev} fs={fs_type} kernel={} host_root={host_root}", kernel.trim())
}

/// Runs `helper __probe-overlay DIR` on a scratch dir of the store.
fn probe(store: &Store, helper: &Path) -> Result<(), String> {
    let dir = store.temp_dir("overlay-probe").map_err(|e| e.to_string())?;
    let userxattr = store.overlay_xattrs() == rbuild_layer::OverlayXattrs::User;
    let output = Command::new(helper)
        .arg("__probe-overlay")
        .arg(&dir)
        .arg(if userxattr { "userxattr" } else { "trusted" })
        .stdin(Stdio::null())
        .env_clear()
        .output();
    let _ = rbuild_cache::store::remove_tree(&dir);
    match output {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(if text.is_empty() { format!("the probe ended with {}", out.status) } else { text })
        }
        Err(e) => Err(format!("cannot start {}: {e}", helper.display())),
    }
}
