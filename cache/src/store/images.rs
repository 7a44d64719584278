//! Images: the config blob is the image (its digest is the image ID); a
//! small record beside it (`images/<hex>.json`) keeps what the config does
//! not say: the parent image of a build, when it entered the store, the
//! registry digests it is known by, and the annotations its manifest
//! carries when exported or pushed.

use std::collections::BTreeMap;
use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, write_file};
use rbuild_oci::config::ImageConfig;
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::{IoContext, IoError};
use rbuild_oci::timefmt::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// sha256 of the config blob.
    pub id: Digest,
    /// The image this one was built on, when built here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
    /// When the image entered this store (seconds since the epoch).
    pub added: i64,
    /// Manifest digests this image is known by in registries (`repo@sha256:…`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
    /// `--annotation`s of the last build that made this image, written into
    /// its OCI manifest by every export and push (the manifest is made
    /// then; the image ID, the config's digest, does not change).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image ID prefix {0} is ambiguous: it matches {1} images")]
    Ambiguous(String, usize),
}

impl Store {
    fn image_record_path(&self, id: &Digest) -> std::path::PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    /// Stores an image from its config bytes. Every layer the config names
    /// must already be in the store. Returns the image ID.
    pub fn put_image(&self, config_json: &[u8], parent: Option<Digest>) -> Result<Digest> {
        let config = ImageConfig::from_json(config_json).map_err(|source| StoreError::CorruptJson {
            what: "image config",
            path: "<new image>".into(),
            source,
        })?;
        for diff_id in &config.rootfs.diff_ids {
            self.require_layer(diff_id)?;
        }
        let id = self.put_blob(config_json)?;
        let path = self.image_record_path(&id);
        if !path.exists() {
            let record = ImageRecord {
                id,
                parent,
                added: Timestamp::now().secs,
                repo_digests: Vec::new(),
                annotations: BTreeMap::new(),
            };
            write_file(&path, &serde_json::to_vec_pretty(&record).expect("record serializes"))
                .ctx("write", &path)?;
        }
        Ok(id)
    }

    /// Stores an image and points `names` at it in one step with respect to
    /// `rmi`, which untags and removes under the same lock: a concurrent
    /// removal of the same image ID (an identical build, say) can then never
    /// leave the names pointing at an image whose record or config is gone.
    pub fn put_image_tagged(
        &self,
        config_json: &[u8],
        parent: Option<Digest>,
        names: &[String],
    ) -> Result<Digest> {
        self.update_refs(|refs| {
            let id = self.put_image(config_json, parent)?;
            for name in names {
                refs.refs.insert(name.clone(), id);
            }
            Ok(id)
        })?
    }

    pub fn image_record(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        let path = self.image_record_path(id);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| StoreError::CorruptJson {
                what: "image record",
                path,
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IoError::new("read", path, e).into()),
        }
    }

    /// Rewrites an image's record (e.g. to add a repo digest).
    pub fn update_image_record(&self, record: &ImageRecord) -> Result<()> {
        let path = self.image_record_path(&record.id);
        Ok(write_file(&path, &serde_json::to_vec_pretty(record).expect("record serializes"))
            .ctx("write", &path)?)
    }

    /// The raw config bytes and their parsed form.
    pub fn image_config(&self, id: &Digest) -> Result<(Vec<u8>, ImageConfig)> {
        let bytes = self.read_blob(id)?;
        let config = ImageConfig::from_json(&bytes).map_err(|source| StoreError::CorruptJson {
            what: "image config",
            path: self.blob_path(id),
            source,
        })?;
        Ok((bytes, config))
    }

    /// Every image ID in the store.
    pub fn list_images(&self) -> Result<Vec<ImageRecord>> {
        let dir = self.root.join("images");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).ctx("list", &dir)? {
            let e = e.ctx("list", &dir)?;
            let name = e.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else { continue };
            let Ok(id) = Digest::parse(hex) else { continue };
            if let Some(rec) = self.image_record(&id)? {
                out.push(rec);
            }
        }
        out.sort_by(|a, b| b.added.cmp(&a.added).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Removes an image record and its config blob (not its layers: those
    /// go with garbage collection, since other images may share them).
    pub fn remove_image(&self, id: &Digest) -> Result<()> {
        let path = self.image_record_path(id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(IoError::new("remove", path, e).into());
            }
            _ => {}
        }
        self.remove_blob(id)
    }

    /// Finds an image by tag (already normalised by the caller, e.g.
    /// `docker.io/library/app:v1`), by full ID (`sha256:…` or bare hex), or
    /// by a unique prefix of the ID's hex.
    pub fn resolve_image(&self, query: &str, normalized_ref: Option<&str>) -> Result<Digest> {
        if let Some(name) = normalized_ref
            && let Some(id) = self.refs()?.refs.get(name)
        {
            return Ok(*id);
        }
        if let Ok(id) = Digest::parse(query) {
            if self.image_record(&id)?.is_some() {
                return Ok(id);
            }
            return Err(ResolveError::NotFound(query.to_string()).into());
        }
        let prefix = query.strip_prefix("sha256:").unwrap_or(query);
        if !prefix.is_empty() && prefix.len() < 64 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            let prefix = prefix.to_ascii_lowercase();
            let matches: Vec<Digest> = self
                .list_images()?
                .into_iter()
                .map(|r| r.id)
                .filter(|id| id.hex().starts_with(&prefix))
                .collect();
            match matches.len() {
                0 => {}
                1 => return Ok(matches[0]),
                n => return Err(ResolveError::Ambiguous(query.to_string(), n).into()),
            }
        }
        Err(ResolveError::NotFound(query.to_string()).into())
    }
}
