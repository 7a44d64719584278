//! The compressed forms a layer is known by in registries:
//! `layers/<hex16>/compressed.json`, beside the layer it describes.
//!
//! A layer is stored uncompressed; registries hold it compressed, under the
//! digest of the compressed bytes. Remembering that digest (from our own
//! deterministic gzip, or from the registry a layer was pulled from) lets a
//! push ask the registry "do you have it?" before compressing anything, so
//! pushing the same layer again costs one HEAD request, and lets a push
//! mount the blob from another repository of the same registry.
//!
//! The file is a cache: losing it only costs a recompression. It is
//! replaced atomically; two processes updating it at once may lose one
//! entry, never corrupt it.

use serde::{Deserialize, Serialize};

use rbuild_cache::store::{Store, write_file};
use rbuild_oci::digest::Digest;

/// Repositories remembered per blob, newest first.
const MAX_REPOSITORIES: usize = 16;

/// One compressed form of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownBlob {
    /// Digest of the compressed bytes.
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// Repositories (`registry/path`) known to hold it, newest first.
    #[serde(default)]
    pub repositories: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KnownBlobsFile {
    blobs: Vec<KnownBlob>,
}

fn file_path(store: &Store, diff_id: &Digest) -> std::path::PathBuf {
    store.layer_dir(diff_id).join("compressed.json")
}

/// Every compressed form known for a layer (none when the file is missing
/// or damaged).
pub fn known_blobs(store: &Store, diff_id: &Digest) -> Vec<KnownBlob> {
    std::fs::read(file_path(store, diff_id))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<KnownBlobsFile>(&bytes).ok())
        .map(|f| f.blobs)
        .unwrap_or_default()
}

/// Records that `blob` is a compressed form of the layer `diff_id`, held
/// by `repository` when given. The layer must be in the store.
pub fn remember_blob(
    store: &Store,
    diff_id: &Digest,
    digest: Digest,
    size: u64,
    media_type: &str,
    repository: Option<&str>,
) -> std::io::Result<()> {
    if !store.layer_dir(diff_id).join("meta.json").is_file() {
        return Ok(());
    }
    let mut blobs = known_blobs(store, diff_id);
    let index = match blobs.iter().position(|b| b.digest == digest) {
        Some(i) => i,
        None => {
            blobs.push(KnownBlob {
                digest,
                size,
                media_type: media_type.to_string(),
                repositories: Vec::new(),
            });
            blobs.len() - 1
        }
    };
    let entry = &mut blobs[index];
    if let Some(repo) = repository {
        entry.repositories.retain(|r| r != repo);
        entry.repositories.insert(0, repo.to_string());
        entry.repositories.truncate(MAX_REPOSITORIES);
    }
    let json = serde_json::to_vec_pretty(&KnownBlobsFile { blobs }).expect("known blobs serialize");
    write_file(&file_path(store, diff_id), &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_forms_and_repositories_of_a_stored_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut tar = Vec::new();
        {
            let mut builder = tar::Builder::new(&mut tar);
            let mut header = tar::Header::new_gnu();
            header.set_size(2);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, "a.txt", &b"hi"[..]).unwrap();
            builder.finish().unwrap();
        }
        let layer = store.commit_tar(&mut &tar[..], None).unwrap();
        let diff_id = layer.diff_id();
        let blob = Digest::of(b"compressed");
        assert!(known_blobs(&store, &diff_id).is_empty());
        remember_blob(&store, &diff_id, blob, 10, "gzip", Some("reg/a")).unwrap();
        remember_blob(&store, &diff_id, blob, 10, "gzip", Some("reg/b")).unwrap();
        remember_blob(&store, &diff_id, blob, 10, "gzip", Some("reg/a")).unwrap();
        let known = known_blobs(&store, &diff_id);
        assert_eq!(known.len(), 1);
        assert_eq!(known[0].repositories, vec!["reg/a".to_string(), "reg/b".to_string()]);
        // A layer that is not in the store gets no file.
        let absent = Digest::of(b"absent");
        remember_blob(&store, &absent, blob, 10, "gzip", None).unwrap();
        assert!(!store.layer_dir(&absent).exists());
    }
}
