//! Build cache shared through a registry or a directory
//! (`--cache-to` / `--cache-from`).
//!
//! # Format
//!
//! An exported cache is one OCI image manifest whose config blob (media
//! type [`CACHE_CONFIG_MEDIA_TYPE`]) lists cache index records — step key
//! → layer diffID, the time the step ran, its description and inputs —
//! and, for each layer a record names, the compressed blob that carries
//! it. The manifest's `layers` are those blobs (gzip, the same bytes a
//! push of the image sends, so a registry stores each layer once for both).
//! In a registry the manifest goes under the cache reference's tag; in a
//! directory it is an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`).
//!
//! Keeping the step's original `created` time matters: a cached step's
//! history entry takes it, so a build served from imported records yields
//! the very image (same config bytes, same ID) that made the cache.
//!
//! # Import is lazy
//!
//! Opening an import fetches only the manifest and the config (the
//! records). A layer is fetched when a step's key hits an imported record
//! whose layer the store does not have; it is verified like any pulled
//! layer, then the record enters the local index. Keys that never hit
//! cost nothing.
//!
//! `mode=min` (the default) exports the steps of the final image's stage
//! chain; `mode=max` every step of every stage the build ran. The caller
//! chooses the keys; this module writes and reads them.
//!
//! With `mounts=true` (or `mounts=ID1,ID2`) an export also carries cache
//! mounts, and an import seeds them ([`super::cache_mounts`]): the config's
//! `mounts` lists them and the manifest's `layers` end with their blobs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::cache_mounts::{
    BlobPlace, CacheMountBlob, DEFAULT_MAX_MOUNT_SIZE, MountSelection, MountsExported, export_mounts,
    seed_mount,
};
use super::error::{RegistryError, Result};
use super::known_blobs::{known_blobs, remember_blob};
use super::manifest::{self, Descriptor, OCI_LAYER_GZIP, OCI_MANIFEST, Parsed};
use super::session::Session;
use rbuild_cache::index::CacheRecord;
use rbuild_cache::store::{Store, write_file};
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::IoContext;
use rbuild_oci::reference::Reference;

/// Media type of the config blob that lists the records.
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.rbuild.cache.config.v1+json";
/// The tag an OCI layout's single cache manifest is named by.
const LAYOUT_REF_NAME: &str = "rbuild-cache";

/// Which steps an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// The final image's stage chain only.
    #[default]
    Min,
    /// Every step of every stage built.
    Max,
}

/// Where a cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    Registry(Reference),
    Directory(PathBuf),
}

impl std::fmt::Display for CacheLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheLocation::Registry(r) => write!(f, "{}", r.familiar()),
            CacheLocation::Directory(d) => write!(f, "{}", d.display()),
        }
    }
}

/// A `--cache-to` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTo {
    pub location: CacheLocation,
    pub mode: CacheMode,
    /// `mounts=`: the cache mounts to carry.
    pub mounts: MountSelection,
    /// `max-size=`: larger mounts are left out.
    pub max_mount_size: u64,
}

/// A `--cache-from` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheFrom {
    pub location: CacheLocation,
    /// `mounts=`: the carried cache mounts to seed the store's from.
    pub mounts: MountSelection,
}

/// The fields of a `type=…,key=value,…` spec. A piece without `=` goes on
/// the previous value, so `mounts=pip,apt` lists two ids.
fn fields(spec: &str) -> Result<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for field in spec.split(',') {
        match (field.split_once('='), &last) {
            (Some((k, v)), _) => {
                let key = k.trim().to_string();
                out.insert(key.clone(), v.trim().to_string());
                last = Some(key);
            }
            (None, Some(key)) => {
                let value = out.get_mut(key).expect("inserted above");
                value.push(',');
                value.push_str(field.trim());
            }
            (None, None) => return Err(bad_spec(spec, &format!("{field:?} is not key=value"))),
        }
    }
    Ok(out)
}

fn bad_spec(spec: &str, why: &str) -> RegistryError {
    RegistryError::InvalidReference {
        input: spec.to_string(),
        message: format!(
            "{why}; write type=registry,ref=REGISTRY/NAME:TAG or type=local,dest=DIR (to) / type=local,src=DIR (from)"
        ),
    }
}

fn cache_reference(spec: &str, text: &str) -> Result<Reference> {
    let reference = Reference::parse(text).map_err(|e| bad_spec(spec, &e.to_string()))?;
    if reference.digest.is_some() {
        return Err(bad_spec(spec, "a cache reference names a tag, not a digest"));
    }
    Ok(reference)
}

impl CacheTo {
    /// `type=registry,ref=R[,mode=min|max]` or `type=local,dest=DIR[,mode=…]`.
    pub fn parse(spec: &str) -> Result<CacheTo> {
        let f = fields(spec)?;
        let mode = match f.get("mode").map(String::as_str) {
            None | Some("min") => CacheMode::Min,
            Some("max") => CacheMode::Max,
            Some(other) => return Err(bad_spec(spec, &format!("mode {other:?} is not min or max"))),
        };
        let location = match (f.get("type").map(String::as_str), f.get("ref"), f.get("dest")) {
            (Some("registry"), Some(r), _) => CacheLocation::Registry(cache_reference(spec, r)?),
            (Some("local"), _, Some(d)) => CacheLocation::Directory(PathBuf::from(d)),
            (Some("registry"), None, _) => return Err(bad_spec(spec, "type=registry needs ref=")),
            (Some("local"), _, None) => return Err(bad_spec(spec, "type=local needs dest=")),
            (other, ..) => {
                return Err(bad_spec(spec, &format!("unknown cache type {:?}", other.unwrap_or(""))));
            }
        };
        let max_mount_size = match f.get("max-size") {
            None => DEFAULT_MAX_MOUNT_SIZE,
            Some(text) => rbuild_oci::size::parse_ram_size(text).map_err(|e| bad_spec(spec, &e))?,
        };
        let mounts = f.get("mounts").map(|m| MountSelection::parse(m)).unwrap_or_default();
        Ok(CacheTo { location, mode, mounts, max_mount_size })
    }
}

/// Parses a `--cache-from` value: `type=registry,ref=R`, `type=local,src=DIR`
/// (either with `mounts=`), or a bare reference (as `docker build
/// --cache-from` takes).
pub fn parse_cache_from(spec: &str) -> Result<CacheFrom> {
    if !spec.contains('=') {
        let location = CacheLocation::Registry(cache_reference(spec, spec)?);
        return Ok(CacheFrom { location, mounts: MountSelection::Nothing });
    }
    let f = fields(spec)?;
    let location = match (f.get("type").map(String::as_str), f.get("ref"), f.get("src")) {
        (Some("registry"), Some(r), _) => CacheLocation::Registry(cache_reference(spec, r)?),
        (Some("local"), _, Some(d)) => CacheLocation::Directory(PathBuf::from(d)),
        (Some("registry"), None, _) => return Err(bad_spec(spec, "type=registry needs ref=")),
        (Some("local"), _, None) => return Err(bad_spec(spec, "type=local needs src=")),
        (other, ..) => {
            return Err(bad_spec(spec, &format!("unknown cache type {:?}", other.unwrap_or(""))));
        }
    };
    let mounts = f.get("mounts").map(|m| MountSelection::parse(m)).unwrap_or_default();
    Ok(CacheFrom { location, mounts })
}

/// The config blob of an exported cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheConfig {
    pub version: u32,
    pub records: Vec<CacheRecord>,
    pub layers: Vec<CacheLayer>,
    /// Cache mounts carried (`mounts=`); older readers ignore the field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<CacheMountBlob>,
}

/// A layer a record names, and the blob that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLayer {
    pub diff_id: Digest,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportSummary {
    pub records: usize,
    pub layers: usize,
    /// Cache mounts carried, and how many of them were unchanged since
    /// their last export (nothing written for those).
    pub mounts: usize,
    pub mounts_unchanged: usize,
    /// Mounts left out, and why.
    pub warnings: Vec<String>,
}

/// The cache mounts an export carries: these ids, up to this size each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountExport {
    pub ids: Vec<String>,
    pub max_size: u64,
}

/// Exports the records of `keys` (and their layers), and the cache mounts
/// `mounts` names, to `location`. `session` is needed for a registry.
pub fn export(
    session: Option<&Session>,
    store: &Store,
    keys: &[Digest],
    location: &CacheLocation,
    mounts: &MountExport,
) -> Result<ExportSummary> {
    let _gc = store.gc_guard(false)?;
    let mut seen = BTreeSet::new();
    let mut records = Vec::new();
    for key in keys {
        if seen.insert(*key)
            && let Some(record) = store.cache_lookup(key)?
        {
            records.push(record);
        }
    }
    records.sort_by_key(|r| r.key);
    let diff_ids: Vec<Digest> =
        records.iter().filter_map(|r| r.layer).collect::<BTreeSet<_>>().into_iter().collect();
    let mut layers = Vec::new();
    match location {
        CacheLocation::Registry(reference) => {
            let session = session
                .ok_or_else(|| RegistryError::Unsupported("a registry cache needs a session".into()))?;
            for diff_id in &diff_ids {
                let (descriptor, _) = super::push::push_layer(session, store, reference, diff_id)?;
                layers.push(CacheLayer {
                    diff_id: *diff_id,
                    digest: descriptor.sha256()?,
                    size: descriptor.size,
                    media_type: descriptor.media_type,
                });
            }
        }
        CacheLocation::Directory(dir) => {
            fs::create_dir_all(dir.join("blobs/sha256")).ctx("create", dir)?;
            for diff_id in &diff_ids {
                layers.push(export_layer_to_dir(store, dir, diff_id)?);
            }
        }
    }
    let carried = if mounts.ids.is_empty() {
        MountsExported::default()
    } else {
        let blobs_dir;
        let place = match location {
            CacheLocation::Registry(reference) => {
                BlobPlace::Registry(session.expect("checked above"), reference)
            }
            CacheLocation::Directory(dir) => {
                blobs_dir = dir.join("blobs/sha256");
                BlobPlace::Directory(&blobs_dir)
            }
        };
        export_mounts(&place, store, &mounts.ids, mounts.max_size)?
    };
    let config = CacheConfig { version: 1, records, layers, mounts: carried.mounts };
    let config_json = serde_json::to_vec(&config).expect("cache config serializes");
    let config_desc =
        Descriptor::new(CACHE_CONFIG_MEDIA_TYPE, &Digest::of(&config_json), config_json.len() as u64);
    // Mount blobs are layers of the manifest too, so a registry keeps them.
    let layer_descs: Vec<Descriptor> = config
        .layers
        .iter()
        .map(|l| Descriptor::new(&l.media_type, &l.digest, l.size))
        .chain(config.mounts.iter().map(|m| Descriptor::new(&m.media_type, &m.digest, m.blob_size)))
        .collect();
    let manifest_json = manifest::image_manifest_json(&config_desc, &layer_descs, &Default::default());
    match location {
        CacheLocation::Registry(reference) => {
            let session = session.expect("checked above");
            session.upload_bytes(reference, &config_json)?;
            session.put_manifest(reference, &manifest_json, OCI_MANIFEST)?;
        }
        CacheLocation::Directory(dir) => {
            write_layout_blob(dir, &config_json)?;
            let manifest_digest = write_layout_blob(dir, &manifest_json)?;
            let mut descriptor = Descriptor::new(OCI_MANIFEST, &manifest_digest, manifest_json.len() as u64);
            descriptor.annotations = Some(BTreeMap::from([(
                "org.opencontainers.image.ref.name".to_string(),
                LAYOUT_REF_NAME.to_string(),
            )]));
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": manifest::OCI_INDEX,
                "manifests": [descriptor],
            });
            write_file(&dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).ctx("write", dir)?;
            write_file(&dir.join("index.json"), &serde_json::to_vec(&index).expect("index serializes"))
                .ctx("write", dir)?;
        }
    }
    Ok(ExportSummary {
        records: config.records.len(),
        layers: config.layers.len(),
        mounts: config.mounts.len(),
        mounts_unchanged: carried.unchanged,
        warnings: carried.warnings,
    })
}

fn layout_blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

fn write_layout_blob(dir: &Path, bytes: &[u8]) -> Result<Digest> {
    let digest = Digest::of(bytes);
    let path = layout_blob_path(dir, &digest);
    if !path.is_file() {
        write_file(&path, bytes).ctx("write", &path)?;
    }
    Ok(digest)
}

/// A layer's gzip blob in the layout: reused when a known form is already
/// there, else compressed in place.
fn export_layer_to_dir(store: &Store, dir: &Path, diff_id: &Digest) -> Result<CacheLayer> {
    for known in known_blobs(store, diff_id) {
        if known.media_type.ends_with("gzip") && layout_blob_path(dir, &known.digest).is_file() {
            return Ok(CacheLayer {
                diff_id: *diff_id,
                digest: known.digest,
                size: known.size,
                media_type: OCI_LAYER_GZIP.into(),
            });
        }
    }
    let layer = store.require_layer(diff_id)?;
    let tmp = dir.join("blobs/sha256").join(format!(".incoming-{}", std::process::id()));
    let compressed = super::push::compress_layer(&store.layer_tar(&layer)?, &tmp, &|_| {});
    let (digest, size) = match compressed {
        Ok(done) => done,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let dest = layout_blob_path(dir, &digest);
    File::open(&tmp).and_then(|f| f.sync_all()).ctx("sync", &tmp)?;
    fs::rename(&tmp, &dest).ctx("write", &dest)?;
    let _ = remember_blob(store, diff_id, digest, size, OCI_LAYER_GZIP, None);
    Ok(CacheLayer { diff_id: *diff_id, digest, size, media_type: OCI_LAYER_GZIP.into() })
}

/// An imported cache: its records, read up front, and where to fetch the
/// layers they name.
#[derive(Debug)]
pub struct ImportedCache {
    location: CacheLocation,
    records: BTreeMap<Digest, CacheRecord>,
    layers: BTreeMap<Digest, CacheLayer>,
    /// The carried cache mounts this build may seed from (`mounts=`).
    mounts: BTreeMap<String, CacheMountBlob>,
    /// Mount ids already considered in this build.
    seeded: Mutex<BTreeSet<String>>,
}

impl ImportedCache {
    /// Reads the records of the cache at `location`.
    pub fn open(session: Option<&Session>, location: &CacheLocation) -> Result<ImportedCache> {
        let config_json = match location {
            CacheLocation::Registry(reference) => {
                let session = session
                    .ok_or_else(|| RegistryError::Unsupported("a registry cache needs a session".into()))?;
                let (bytes, _) = session.fetch_manifest(reference)?;
                let config = cache_config_descriptor(&bytes, &reference.registry, &reference.familiar())?;
                session.fetch_small_blob(reference, &config.sha256()?, config.size)?
            }
            CacheLocation::Directory(dir) => read_layout_config(dir)?,
        };
        let config: CacheConfig = serde_json::from_slice(&config_json).map_err(|e| {
            RegistryError::Unsupported(format!("the cache at {location} is not an rbuild cache: {e}"))
        })?;
        if config.version != 1 {
            return Err(RegistryError::Unsupported(format!(
                "the cache at {location} has format version {}; this rbuild reads version 1",
                config.version
            )));
        }
        Ok(ImportedCache {
            location: location.clone(),
            records: config.records.into_iter().map(|r| (r.key, r)).collect(),
            layers: config.layers.into_iter().map(|l| (l.diff_id, l)).collect(),
            mounts: config.mounts.into_iter().map(|m| (m.id.clone(), m)).collect(),
            seeded: Mutex::new(BTreeSet::new()),
        })
    }

    /// Narrows the carried mounts to those `selection` names.
    pub fn select_mounts(mut self, selection: &MountSelection) -> ImportedCache {
        self.mounts.retain(|id, _| selection.includes(id));
        self
    }

    /// How many cache mounts this import may seed.
    pub fn mount_count(&self) -> usize {
        self.mounts.len()
    }

    /// Seeds the store's cache mount `id` from this cache, once per build:
    /// see [`super::cache_mounts`].
    pub fn seed_mount(&self, session: Option<&Session>, store: &Store, id: &str) -> Result<Option<String>> {
        let Some(carried) = self.mounts.get(id) else { return Ok(None) };
        if !self.seeded.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string()) {
            return Ok(None);
        }
        let blobs_dir;
        let place = match &self.location {
            CacheLocation::Registry(reference) => BlobPlace::Registry(
                session
                    .ok_or_else(|| RegistryError::Unsupported("a registry cache needs a session".into()))?,
                reference,
            ),
            CacheLocation::Directory(dir) => {
                blobs_dir = dir.join("blobs/sha256");
                BlobPlace::Directory(&blobs_dir)
            }
        };
        seed_mount(&place, store, carried, &self.location.to_string())
    }

    pub fn location(&self) -> &CacheLocation {
        &self.location
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The record for `key`, with its layer brought into the store and the
    /// record added to the local index; `None` when the cache has no such
    /// key.
    pub fn lookup(
        &self,
        session: Option<&Session>,
        store: &Store,
        key: &Digest,
    ) -> Result<Option<CacheRecord>> {
        let Some(record) = self.records.get(key) else { return Ok(None) };
        if let Some(diff_id) = &record.layer
            && store.layer(diff_id)?.is_none()
        {
            let layer = self.layers.get(diff_id).ok_or_else(|| {
                RegistryError::Unsupported(format!(
                    "the cache at {} names layer {diff_id} but carries no blob for it",
                    self.location
                ))
            })?;
            self.fetch_layer(session, store, layer)?;
        }
        store.cache_insert(record)?;
        Ok(Some(record.clone()))
    }

    fn fetch_layer(&self, session: Option<&Session>, store: &Store, layer: &CacheLayer) -> Result<()> {
        match &self.location {
            CacheLocation::Registry(reference) => {
                let session = session
                    .ok_or_else(|| RegistryError::Unsupported("a registry cache needs a session".into()))?;
                let descriptor = Descriptor::new(&layer.media_type, &layer.digest, layer.size);
                super::pull::fetch_layer(session, store, reference, &descriptor, &layer.diff_id)?;
            }
            CacheLocation::Directory(dir) => {
                let path = layout_blob_path(dir, &layer.digest);
                let mut file = File::open(&path).ctx("open", &path)?;
                let had_blob = store.has_blob(&layer.digest);
                let (digest, _) = store.put_blob_from(&mut file, Some(&layer.digest))?;
                let blob = store.blob_path(&digest);
                let committed = File::open(&blob)
                    .ctx("open", &blob)
                    .map_err(RegistryError::from)
                    .and_then(|mut f| Ok(store.commit_tar(&mut f, Some(&layer.diff_id))?));
                if !had_blob {
                    let _ = store.remove_blob(&digest);
                }
                committed?;
                let _ =
                    remember_blob(store, &layer.diff_id, layer.digest, layer.size, &layer.media_type, None);
            }
        }
        Ok(())
    }
}

fn cache_config_descriptor(manifest_json: &[u8], registry: &str, what: &str) -> Result<Descriptor> {
    match manifest::parse(manifest_json, registry, what)? {
        Parsed::Image { config, .. } if config.media_type == CACHE_CONFIG_MEDIA_TYPE => Ok(config),
        _ => Err(RegistryError::Unsupported(format!(
            "{what} is not an rbuild build cache (its config is not {CACHE_CONFIG_MEDIA_TYPE})"
        ))),
    }
}

/// The cache config of an OCI layout written by [`export`], checking each
/// blob against its digest.
fn read_layout_config(dir: &Path) -> Result<Vec<u8>> {
    let read_verified = |digest: &Digest| -> Result<Vec<u8>> {
        let path = layout_blob_path(dir, digest);
        let bytes = fs::read(&path).ctx("read", &path)?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(RegistryError::digest_mismatch(
                &dir.display().to_string(),
                format!("blob {digest}"),
                digest,
                &actual,
            ));
        }
        Ok(bytes)
    };
    let index_path = dir.join("index.json");
    let index = fs::read(&index_path).ctx("read", &index_path)?;
    let shown = dir.display().to_string();
    let entries = match manifest::parse(&index, &shown, "index.json")? {
        Parsed::List(entries) => entries,
        Parsed::Image { .. } => {
            return Err(RegistryError::Unsupported(format!("{shown}/index.json is not an index")));
        }
    };
    let entry = entries
        .iter()
        .find(|e| {
            e.annotations
                .as_ref()
                .and_then(|a| a.get("org.opencontainers.image.ref.name"))
                .is_some_and(|n| n == LAYOUT_REF_NAME)
        })
        .or(entries.first())
        .ok_or_else(|| RegistryError::Unsupported(format!("{shown}/index.json lists no manifest")))?;
    let manifest_json = read_verified(&entry.sha256()?)?;
    let config = cache_config_descriptor(&manifest_json, &shown, &format!("the manifest in {shown}"))?;
    read_verified(&config.sha256()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_specs_parse() {
        let to = CacheTo::parse("type=registry,ref=127.0.0.1:5000/app:cache,mode=max").unwrap();
        assert_eq!(to.mode, CacheMode::Max);
        assert!(
            matches!(&to.location, CacheLocation::Registry(r) if r.repository == "app" && r.tag.as_deref() == Some("cache"))
        );
        assert_eq!(
            CacheTo::parse("type=local,dest=/tmp/c").unwrap().location,
            CacheLocation::Directory("/tmp/c".into())
        );
        assert_eq!(CacheTo::parse("type=local,dest=/tmp/c").unwrap().mode, CacheMode::Min);
        assert!(CacheTo::parse("type=local").is_err());
        assert!(CacheTo::parse("type=gha").is_err());
        assert!(CacheTo::parse("type=registry,ref=a,mode=medium").is_err());
        assert_eq!(
            parse_cache_from("type=local,src=/c").unwrap().location,
            CacheLocation::Directory("/c".into())
        );
        assert!(matches!(
            parse_cache_from("localhost:5000/app:cache").unwrap().location,
            CacheLocation::Registry(_)
        ));
        let with_mounts = CacheTo::parse("type=local,dest=/c,mounts=pip,apt,max-size=1g").unwrap();
        assert_eq!(with_mounts.mounts, MountSelection::Ids(vec!["pip".into(), "apt".into()]));
        assert_eq!(with_mounts.max_mount_size, 1 << 30);
        assert_eq!(parse_cache_from("type=local,src=/c,mounts=true").unwrap().mounts, MountSelection::All);
        assert_eq!(CacheTo::parse("type=local,dest=/c").unwrap().mounts, MountSelection::Nothing);
        assert!(CacheTo::parse("type=local,dest=/c,mounts=true,max-size=huge").is_err());
    }

    #[test]
    fn a_directory_cache_round_trips_records_and_layers() {
        let src_dir = tempfile::tempdir().unwrap();
        let src = Store::open(src_dir.path().join("store")).unwrap();
        let mut tar = Vec::new();
        {
            let mut builder = tar::Builder::new(&mut tar);
            let mut header = tar::Header::new_gnu();
            header.set_size(5);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, "hello.txt", &b"hello"[..]).unwrap();
            builder.finish().unwrap();
        }
        let layer = src.commit_tar(&mut &tar[..], None).unwrap();
        let with_layer = CacheRecord {
            key: Digest::of(b"step 1"),
            layer: Some(layer.diff_id()),
            created: 1_700_000_000,
            description: "[stage-0] RUN make".into(),
            duration_ms: 0,
            inputs: Vec::new(),
        };
        let without_layer = CacheRecord { key: Digest::of(b"step 2"), layer: None, ..with_layer.clone() };
        src.cache_insert(&with_layer).unwrap();
        src.cache_insert(&without_layer).unwrap();
        let out = src_dir.path().join("cache");
        let location = CacheLocation::Directory(out.clone());
        let keys = [with_layer.key, without_layer.key, with_layer.key];
        let summary = export(None, &src, &keys, &location, &MountExport::default()).unwrap();
        assert_eq!(summary, ExportSummary { records: 2, layers: 1, ..ExportSummary::default() });

        let dst_dir = tempfile::tempdir().unwrap();
        let dst = Store::open(dst_dir.path()).unwrap();
        let imported = ImportedCache::open(None, &location).unwrap();
        assert_eq!(imported.len(), 2);
        assert!(imported.lookup(None, &dst, &Digest::of(b"unknown")).unwrap().is_none());
        assert!(dst.layer(&layer.diff_id()).unwrap().is_none(), "nothing is fetched before a hit");
        let hit = imported.lookup(None, &dst, &with_layer.key).unwrap().unwrap();
        assert_eq!(hit, with_layer);
        assert!(dst.layer(&layer.diff_id()).unwrap().is_some(), "the hit brought the layer");
        assert_eq!(dst.cache_lookup(&with_layer.key).unwrap(), Some(with_layer.clone()));

        // A tampered blob is refused and the store stays without the layer.
        let tampered_dir = tempfile::tempdir().unwrap();
        let tampered = Store::open(tampered_dir.path()).unwrap();
        let blob = imported.layers.values().next().unwrap().digest;
        fs::write(layout_blob_path(&out, &blob), b"not the layer").unwrap();
        assert!(imported.lookup(None, &tampered, &with_layer.key).is_err());
        assert!(tampered.layer(&layer.diff_id()).unwrap().is_none());
        assert!(tampered.cache_lookup(&with_layer.key).unwrap().is_none());
    }
}
