//! Layers' Docker sizes, remembered in `state/layer-sizes/<diffID hex>`:
//! a commit knows the figure without reading a tar, and `usage` reads it
//! back instead of walking a large layer's tar headers again.

use std::fs;
use std::path::PathBuf;

use rbuild_oci::digest::Digest;

use super::{Store, write_file};

impl Store {
    fn layer_size_path(&self, diff_id: &Digest) -> PathBuf {
        self.state_path(&format!("layer-sizes/{}", diff_id.hex()))
    }

    /// The remembered Docker size of a layer, if there is one.
    pub fn remembered_layer_size(&self, diff_id: &Digest) -> Option<u64> {
        fs::read_to_string(self.layer_size_path(diff_id)).ok().and_then(|s| s.trim().parse().ok())
    }

    /// Remembers a layer's Docker size. Failing to remember only costs
    /// time later.
    pub fn remember_layer_size(&self, diff_id: &Digest, size: u64) {
        let path = self.layer_size_path(diff_id);
        if let Some(dir) = path.parent()
            && fs::create_dir_all(dir).is_ok()
        {
            let _ = write_file(&path, size.to_string().as_bytes());
        }
    }

    /// Forgets a layer's remembered size (when the layer is deleted).
    pub fn forget_layer_size(&self, diff_id: &Digest) {
        let _ = fs::remove_file(self.layer_size_path(diff_id));
    }
}
