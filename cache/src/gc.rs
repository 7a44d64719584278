//! Garbage collection and pruning: removing the images `image prune`
//! selects, build cache nobody needs, and then every layer and blob nothing
//! references.
//!
//! What keeps a layer: being in the `rootfs` of any image record (tagged or
//! not), or being the result of a build cache entry still in the index. What
//! keeps a blob: being the config of an image record (the store keeps no
//! other blobs). Everything else is garbage, and so is a COPY memo entry
//! (`state/copy-memo/`) whose layer is not kept.
//!
//! Builds, loads and imports hold the store's gc lock shared for their whole
//! run, because layers they have made belong to no image until they finish.
//! Collection takes the lock exclusively, so it waits for them and they wait
//! for it: it never sees a half-made image.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use crate::index::CacheRecord;
use crate::store::{Result, Store};
use crate::usage::{Catalog, CatalogImage, LayerSizes};
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::{IoContext, IoError};

/// Proof that this process holds the gc lock exclusively.
#[derive(Debug)]
pub struct ExclusiveGcLock {
    _file: File,
}

/// Waits until no build, load or import is running, then holds them off.
pub fn lock_exclusive(store: &Store) -> Result<ExclusiveGcLock> {
    Ok(ExclusiveGcLock { _file: store.gc_guard(true)? })
}

/// Like [`lock_exclusive`] but gives up at once (`None`) when something is
/// running, for commands that collect garbage only as a courtesy (`rmi`).
pub fn try_lock_exclusive(store: &Store) -> Result<Option<ExclusiveGcLock>> {
    // The same file `Store::gc_guard` locks; std has no non-blocking
    // variant of that call, so open it here.
    let path = store.root().join("gc.lock");
    let file =
        OpenOptions::new().create(true).truncate(false).write(true).open(&path).ctx("open lock", &path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(ExclusiveGcLock { _file: file })),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(source)) => Err(IoError::new("lock", path, source).into()),
    }
}

/// A layer garbage collection deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedLayer {
    pub diff_id: Digest,
    /// Its size as Docker reports it.
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed_layers: Vec<RemovedLayer>,
    pub removed_blobs: Vec<Digest>,
}

impl GcReport {
    /// Bytes freed, in the measure `docker images` uses for sizes.
    pub fn reclaimed(&self) -> u64 {
        self.removed_layers.iter().map(|l| l.size).sum()
    }
}

/// Deletes every layer and blob nothing references (see the module docs).
pub fn collect_garbage(store: &Store, _lock: &ExclusiveGcLock) -> Result<GcReport> {
    let catalog = Catalog::read(store)?;
    let mut live_layers = catalog.layers_of_all_images();
    live_layers.extend(store.cache_entries()?.into_iter().filter_map(|e| e.layer));
    let mut live_blobs: BTreeSet<Digest> = catalog.images.iter().map(|i| i.id()).collect();
    // A record whose config cannot be read still owns its config blob.
    live_blobs.extend(catalog.broken.iter().map(|(id, _)| *id));

    let mut report = GcReport::default();
    let mut sizes = LayerSizes::new(store);
    let mut kept_layers = BTreeSet::new();
    for layer in store.list_layers()? {
        let diff_id = layer.meta.diff_id;
        if live_layers.contains(&diff_id) {
            kept_layers.insert(diff_id);
            continue;
        }
        let size = sizes.layer(&diff_id);
        store.remove_layer(&diff_id)?;
        store.forget_layer_size(&diff_id);
        report.removed_layers.push(RemovedLayer { diff_id, size });
    }
    // The COPY memo names layers; an entry whose layer went is useless.
    store.forget_copies_except(&kept_layers);
    for blob in store.list_blobs()? {
        if !live_blobs.contains(&blob) {
            store.remove_blob(&blob)?;
            report.removed_blobs.push(blob);
        }
    }
    Ok(report)
}

/// What `image prune` (or `rmi`'s pruning of bases) did to one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedImage {
    pub id: Digest,
    /// The names it lost, canonical: its tags, then, when the image itself
    /// went, the registry digests it was known by (`repo@sha256:…`).
    pub untagged: Vec<String>,
    /// Whether the image itself went. False when a tag it was given while
    /// prune ran kept it: then only the names prune saw went.
    pub deleted: bool,
    /// Its layers, bottom first, so the caller can say which of them
    /// garbage collection then freed.
    pub layers: Vec<Digest>,
}

/// Which images `image prune` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneScope {
    /// Dangling images: no tag, and no image built on them.
    Dangling,
    /// `-a`: every image, tagged or not, since rbuild has no containers to
    /// keep one in use. An untagged image something was built on is left
    /// to go with the last image built on it, as Docker leaves it.
    Unused,
}

/// Removes the images of `scope` that `selected` accepts, as `docker image
/// prune` does: each loses its tags and goes, then each untagged base it
/// was built on that nothing else is built on goes too. A tagged image
/// something was built on goes as well (its layers stay while the images
/// built on it use them). Layers are left for [`collect_garbage`].
pub fn prune_images(
    store: &Store,
    _lock: &ExclusiveGcLock,
    scope: PruneScope,
    selected: &dyn Fn(&CatalogImage) -> bool,
) -> Result<Vec<PrunedImage>> {
    let catalog = Catalog::read(store)?;
    // A platform's image of a multi-platform name is named through the
    // name's index, not dangling.
    let indexed = store.platform_image_ids()?;
    let candidates: Vec<&CatalogImage> = catalog
        .images
        .iter()
        .filter(|image| {
            let has_children = !catalog.children(&image.id()).is_empty();
            let in_scope = match scope {
                PruneScope::Dangling => !image.is_tagged() && !has_children && !indexed.contains(&image.id()),
                PruneScope::Unused => image.is_tagged() || !has_children,
            };
            in_scope && selected(image)
        })
        .collect();
    let mut pruned = Vec::new();
    for image in candidates {
        let Some(outcome) = untag_and_remove(store, image, scope)? else { continue };
        let deleted = outcome.deleted;
        pruned.push(outcome);
        if deleted {
            pruned.extend(remove_untagged_bases(store, image.record.parent)?);
        }
    }
    Ok(pruned)
}

/// Drops the tags `image` had when prune read the store and, unless it
/// has others by now, the image. Under the tag lock, so a concurrent
/// `rbuild tag` either lands before (and, for dangling prune, keeps the
/// image) or finds the image gone. `None` when nothing was done: the image
/// went meanwhile, or was tagged meanwhile and is no longer dangling.
fn untag_and_remove(store: &Store, image: &CatalogImage, scope: PruneScope) -> Result<Option<PrunedImage>> {
    let id = image.id();
    let (untagged, deleted) = store.update_refs(|refs| -> Result<(Vec<String>, bool)> {
        let current = refs.tags_of(&id);
        if scope == PruneScope::Dangling && !current.is_empty() {
            return Ok((Vec::new(), false));
        }
        let seen: Vec<String> = current.iter().filter(|t| image.tags.contains(t)).cloned().collect();
        for tag in &seen {
            refs.refs.remove(tag);
        }
        if seen.len() < current.len() || store.image_record(&id)?.is_none() {
            return Ok((seen, false));
        }
        store.remove_image(&id)?;
        Ok((seen, true))
    })??;
    if untagged.is_empty() && !deleted {
        return Ok(None);
    }
    let mut untagged = untagged;
    if deleted {
        untagged.extend(image.record.repo_digests.iter().cloned());
    }
    Ok(Some(PrunedImage { id, untagged, deleted, layers: image.config.rootfs.diff_ids.clone() }))
}

/// Removes `parent` if it is untagged and no image is built on it any
/// more, then its own parent on the same terms, and so on down the chain:
/// what Docker does after deleting an image, so removing a build does not
/// leave its untagged bases behind.
pub fn remove_untagged_bases(store: &Store, mut parent: Option<Digest>) -> Result<Vec<PrunedImage>> {
    let mut removed = Vec::new();
    while let Some(candidate) = parent {
        let Some(record) = store.image_record(&candidate)? else { break };
        let records = store.list_images()?;
        if records.iter().any(|r| r.parent == Some(candidate)) {
            break;
        }
        let layers = store.image_config(&candidate).map(|(_, c)| c.rootfs.diff_ids).unwrap_or_default();
        if !remove_if_untagged(store, &candidate)? {
            break;
        }
        removed.push(PrunedImage {
            id: candidate,
            untagged: record.repo_digests.clone(),
            deleted: true,
            layers,
        });
        parent = record.parent;
    }
    Ok(removed)
}

/// Removes an image unless a tag points at it, checking under the tag lock
/// so a concurrent `rbuild tag` cannot lose its image.
pub fn remove_if_untagged(store: &Store, id: &Digest) -> Result<bool> {
    if store.platform_image_ids()?.contains(id) {
        return Ok(false);
    }
    store
        .update_refs(|refs| if refs.tags_of(id).is_empty() { Some(store.remove_image(id)) } else { None })?
        .map_or(Ok(false), |removed| removed.map(|()| true))
}

/// One thing the build cache holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheItemKind {
    /// An entry of the cache index: a step's result.
    Step(CacheRecord),
    /// A `RUN --mount=type=cache` directory (`state/cache-mounts/<hex>`).
    Mount(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheItem {
    pub kind: CacheItemKind,
    /// Seconds since the epoch: when the entry was made or, as far as the
    /// file system's access times tell, last read.
    pub last_used: i64,
    pub created: i64,
    /// The step's layer (or the mount's content) size as Docker measures.
    pub size: u64,
    /// The step's layer is also part of an image, so removing the entry
    /// frees nothing (Docker's "shared").
    pub shared: bool,
    /// Kept by `builder prune` without `--all`: its layer is part of a
    /// tagged image, so the next build of that image needs it.
    pub in_use: bool,
}

impl CacheItem {
    /// A short identifier for listings: the key's hex, or the mount's name.
    pub fn id(&self) -> String {
        match &self.kind {
            CacheItemKind::Step(record) => record.key.hex(),
            CacheItemKind::Mount(path) => {
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            }
        }
    }

    pub fn description(&self) -> String {
        match &self.kind {
            CacheItemKind::Step(record) => record.description.clone(),
            CacheItemKind::Mount(_) => "cache mount".to_string(),
        }
    }

    fn layer(&self) -> Option<Digest> {
        match &self.kind {
            CacheItemKind::Step(record) => record.layer,
            CacheItemKind::Mount(_) => None,
        }
    }
}

/// Every cache entry and cache mount, most recently used first.
pub fn cache_items(store: &Store, catalog: &Catalog, sizes: &mut LayerSizes<'_>) -> Result<Vec<CacheItem>> {
    let image_layers = catalog.layers_of_all_images();
    let tagged_layers = catalog.layers_of_tagged_images();
    let mut items = Vec::new();
    for record in store.cache_entries()? {
        let path = store.root().join("cache").join(format!("{}.json", record.key.hex()));
        let last_used = record.created.max(file_used_time(&path));
        let (size, shared, in_use) = match &record.layer {
            Some(layer) => (sizes.layer(layer), image_layers.contains(layer), tagged_layers.contains(layer)),
            None => (0, false, false),
        };
        items.push(CacheItem {
            created: record.created,
            kind: CacheItemKind::Step(record),
            last_used,
            size,
            shared,
            in_use,
        });
    }
    for mount in crate::mounts::list(store)? {
        let created =
            fs::metadata(&mount.dir).ok().and_then(|m| m.created().ok()).map_or(0, secs_since_epoch);
        items.push(CacheItem {
            last_used: mount.last_used().max(file_used_time(&mount.dir)).max(created),
            created,
            size: mount.size,
            kind: CacheItemKind::Mount(mount.dir),
            shared: false,
            in_use: false,
        });
    }
    items.sort_by(|a, b| b.last_used.cmp(&a.last_used).then_with(|| a.id().cmp(&b.id())));
    Ok(items)
}

fn secs_since_epoch(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The later of a path's access and modification times.
/// When an entry was last used: its file's mtime, which a cache hit
/// refreshes (`Store::cache_lookup`). Not the atime: merely reading every
/// entry (as prune and `system df` do) would count as use.
fn file_used_time(path: &std::path::Path) -> i64 {
    fs::metadata(path).map_or(0, |m| m.modified().map_or(0, secs_since_epoch))
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePruneOptions {
    /// Remove entries tagged images use too (`--all`).
    pub all: bool,
    /// Only entries last used before this time (seconds since the epoch).
    pub unused_since: Option<i64>,
    /// Keep the most recently used entries up to this many bytes.
    pub keep_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePruneReport {
    pub removed: Vec<CacheItem>,
}

impl CachePruneReport {
    /// Bytes the removed entries held that no image shares.
    pub fn reclaimed(&self) -> u64 {
        let mut seen = BTreeSet::new();
        self.removed
            .iter()
            .filter(|i| !i.shared && i.layer().is_none_or(|l| seen.insert(l)))
            .map(|i| i.size)
            .sum()
    }
}

/// Removes build cache entries and cache mounts as `docker builder prune`
/// does: without `all` only those no tagged image needs; `unused_since`
/// spares what was used later; `keep_bytes` spares the most recently used
/// up to that much storage. Layers are left for [`collect_garbage`].
pub fn prune_cache(
    store: &Store,
    _lock: &ExclusiveGcLock,
    opts: &CachePruneOptions,
) -> Result<CachePruneReport> {
    let catalog = Catalog::read(store)?;
    let mut sizes = LayerSizes::new(store);
    let items = cache_items(store, &catalog, &mut sizes)?;

    // Storage the cache holds: each unshared layer once, plus mounts.
    let mut holders: BTreeMap<Digest, usize> = BTreeMap::new();
    for item in &items {
        if let Some(layer) = item.layer() {
            *holders.entry(layer).or_default() += 1;
        }
    }
    let charge = |item: &CacheItem| if item.shared { 0 } else { item.size };
    let mut counted = BTreeSet::new();
    let mut total: u64 =
        items.iter().filter(|i| i.layer().is_none_or(|l| counted.insert(l))).map(&charge).sum();

    let mut report = CachePruneReport::default();
    // Least recently used first, so keep-storage spares the newest.
    for item in items.iter().rev() {
        let candidate = (opts.all || !item.in_use) && opts.unused_since.is_none_or(|t| item.last_used < t);
        if !candidate {
            continue;
        }
        if let Some(keep) = opts.keep_bytes
            && total <= keep
        {
            break;
        }
        match &item.kind {
            CacheItemKind::Step(record) => store.cache_remove(&record.key)?,
            CacheItemKind::Mount(path) => {
                let entry = crate::mounts::MountEntry { dir: path.clone(), meta: None, size: item.size };
                match crate::mounts::remove(&entry) {
                    // Builds hold the gc lock, so only a stray process can be using it.
                    Err(crate::mounts::MountError::InUse(_)) => continue,
                    Err(crate::mounts::MountError::Store(e)) => return Err(e),
                    Err(e) => {
                        return Err(crate::store::StoreError::Corrupt {
                            what: "cache mount",
                            path: path.clone(),
                            message: e.to_string(),
                        });
                    }
                    Ok(()) => {}
                }
            }
        }
        match item.layer() {
            Some(layer) => {
                let left = holders.entry(layer).or_default();
                *left = left.saturating_sub(1);
                if *left == 0 {
                    total = total.saturating_sub(charge(item));
                }
            }
            None => total = total.saturating_sub(charge(item)),
        }
        report.removed.push(item.clone());
    }
    Ok(report)
}
