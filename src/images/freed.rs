//! Which layers of the images a command deleted garbage collection then
//! freed, named as Docker names them in `rmi` and `image prune` output:
//! by chain ID, top layer first, each layer once.

use std::collections::BTreeSet;

use rbuild_cache::gc::GcReport;
use rbuild_oci::digest::{Digest, Hasher};

/// The layers one garbage collection removed, and those already reported.
pub struct FreedLayers {
    removed: BTreeSet<Digest>,
    reported: BTreeSet<Digest>,
}

impl FreedLayers {
    pub fn new(report: &GcReport) -> FreedLayers {
        FreedLayers {
            removed: report.removed_layers.iter().map(|l| l.diff_id).collect(),
            reported: BTreeSet::new(),
        }
    }

    /// The chain IDs of the layers of `diff_ids` (an image's, bottom first)
    /// that were removed and not reported yet, top first.
    pub fn chain_ids_of(&mut self, diff_ids: &[Digest]) -> Vec<Digest> {
        let chain = chain_ids(diff_ids);
        diff_ids
            .iter()
            .zip(chain)
            .rev()
            .filter(|(diff_id, _)| self.removed.contains(diff_id) && self.reported.insert(**diff_id))
            .map(|(_, chain_id)| chain_id)
            .collect()
    }
}

/// Docker's chain IDs: the first layer's is its diffID, each next one
/// sha256 of "<previous chain ID> <diffID>".
fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => *diff_id,
            Some(previous) => {
                let mut hasher = Hasher::new();
                hasher.update(format!("{previous} {diff_id}").as_bytes());
                hasher.finish()
            }
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbuild_cache::gc::RemovedLayer;

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let chain = chain_ids(&[a, b]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn only_removed_layers_are_named_top_first_and_once() {
        let [a, b, c] = [Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c")];
        let report = GcReport {
            removed_layers: [b, c].iter().map(|&diff_id| RemovedLayer { diff_id, size: 1 }).collect(),
            removed_blobs: Vec::new(),
        };
        let mut freed = FreedLayers::new(&report);
        let chain = chain_ids(&[a, b, c]);
        assert_eq!(freed.chain_ids_of(&[a, b, c]), vec![chain[2], chain[1]]);
        // A second image with the same layers: already reported.
        assert_eq!(freed.chain_ids_of(&[a, b, c]), Vec::<Digest>::new());
    }
}
