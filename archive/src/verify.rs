//! Step 2 of a load, shared by both archive formats: a layer named by a
//! manifest is checked against the digests the manifest and the config
//! give, and an image whose every part passed becomes a [`VerifiedImage`],
//! ready to be published.

use rbuild_cache::store::Store;
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;

use super::error::{ArchiveError, Result};
use super::spool::{Content, Contents, layer_facts};

/// An image whose config and layers have been checked, ready to become
/// visible.
pub(crate) struct VerifiedImage {
    pub id: Digest,
    pub config_json: Vec<u8>,
    pub diff_ids: Vec<Digest>,
    pub tags: Vec<Reference>,
    /// The parent a docker-archive names (`Parent`), if it is loaded too.
    pub parent: Option<Digest>,
}

/// Checks that the layer stored under `path` has the diffID the config
/// expects, committing it first if the streaming pass could not. With
/// `expected_blob`, the raw bytes must also have that digest (and size,
/// when one is given).
pub(crate) fn verify_layer(
    store: &Store,
    contents: &Contents,
    path: &str,
    image: &str,
    index: usize,
    expected_diff_id: &Digest,
    expected_blob: Option<(&Digest, Option<u64>)>,
) -> Result<()> {
    let Some((name, content)) = contents.lookup(path)? else {
        return Err(ArchiveError::MissingFile {
            path: path.to_string(),
            needed_for: format!("layer {index} of {image}"),
        });
    };
    if let Content::WrongDigest { named, actual } = content {
        return Err(ArchiveError::BlobDigestMismatch {
            path: name,
            named_by: "its file name".into(),
            expected: *named,
            actual: *actual,
        });
    }
    let facts = layer_facts(store, content).map_err(|reason| ArchiveError::BadLayer {
        image: image.to_string(),
        index,
        path: name.clone(),
        reason: Box::new(reason),
    })?;
    if let Some((digest, size)) = expected_blob {
        if facts.blob_digest != *digest {
            return Err(ArchiveError::BlobDigestMismatch {
                path: name,
                named_by: format!("the manifest of {image}"),
                expected: *digest,
                actual: facts.blob_digest,
            });
        }
        if let Some(size) = size
            && facts.blob_size != size
        {
            return Err(ArchiveError::BlobSizeMismatch {
                path: name,
                expected: size,
                actual: facts.blob_size,
            });
        }
    }
    if facts.diff_id != *expected_diff_id {
        return Err(ArchiveError::LayerDiffIdMismatch {
            image: image.to_string(),
            index,
            expected: *expected_diff_id,
            actual: facts.diff_id,
        });
    }
    Ok(())
}
