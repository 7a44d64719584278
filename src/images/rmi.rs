//! `rbuild rmi` / `rbuild image rm`, with Docker's rules:
//!
//! * By tag, when the image has other tags: only that tag goes ("Untagged").
//! * By tag, when it is the image's last tag, or by ID: the tags go and the
//!   image is deleted, then each untagged base image that nothing else is
//!   built on (unless `--no-prune`), then the layers no image or build
//!   cache entry uses any more.
//! * Refused without `-f`: deleting by ID an image with several tags, and
//!   deleting an image some tagged image was built on.

use rbuild_cache::Store;
use rbuild_cache::gc;
use rbuild_cache::usage::Catalog;
use rbuild_oci::digest::Digest;

use super::freed::FreedLayers;
use super::lookup::{familiar, parse_reference, resolve_image};
use super::table::short_id;
use crate::cli::RmiArgs;
use crate::report::Failure;

pub fn rmi(store: &Store, args: RmiArgs) -> Result<(), Failure> {
    let mut failures = Vec::new();
    let mut deleted_layers_of: Vec<Vec<Digest>> = Vec::new();
    for query in &args.images {
        match remove_one(store, query, &args) {
            Ok(deleted) => deleted_layers_of.extend(deleted),
            Err(failure) => failures.push(failure),
        }
    }
    if !deleted_layers_of.is_empty() {
        print_collected_layers(store, &deleted_layers_of)?;
    }
    // Like docker: report every failure, fail if any.
    let last = failures.pop();
    for failure in failures {
        eprintln!("error: {}", failure.message);
    }
    last.map_or(Ok(()), Err)
}

/// Removes what one argument names; returns the layer lists of the images
/// it deleted (for reporting the layers garbage collection then frees). A
/// multi-platform name goes with its index: the other platforms' images
/// are deleted too unless something else names them.
fn remove_one(store: &Store, query: &str, args: &RmiArgs) -> Result<Vec<Vec<Digest>>, Failure> {
    let name = parse_reference(query).ok().map(|r| r.canonical());
    let members = match &name {
        Some(n) => store.platforms_of(n)?,
        None => Default::default(),
    };
    let mut deleted = remove_tagged(store, query, args)?;
    if let Some(n) = name.filter(|_| !members.is_empty()) {
        store.update_platform_images(|m| m.remove(&n))?;
        for id in members.values() {
            let layers = store.image_config(id).map(|(_, c)| c.rootfs.diff_ids).unwrap_or_default();
            if store.image_record(id)?.is_some() && gc::remove_if_untagged(store, id)? {
                println!("Deleted: {id}");
                deleted.push(layers);
            }
        }
    }
    Ok(deleted)
}

fn remove_tagged(store: &Store, query: &str, args: &RmiArgs) -> Result<Vec<Vec<Digest>>, Failure> {
    let id = resolve_image(store, query)?;
    let catalog = Catalog::read(store)?;
    let tags = catalog.get(&id).map(|i| i.tags.clone()).unwrap_or_default();
    let named_tag = parse_reference(query).ok().map(|r| r.canonical()).filter(|t| tags.contains(t));

    if let Some(tag) = &named_tag
        && tags.len() > 1
    {
        untag(store, tag, &id)?;
        println!("Untagged: {}", familiar(tag));
        return Ok(Vec::new());
    }
    if !args.force {
        if named_tag.is_none() && tags.len() > 1 {
            return Err(conflict(&id, "image is referenced in multiple repositories")
                .hint(format!("it is tagged {}; remove those tags, or pass -f", tag_list(&tags))));
        }
        if catalog.has_tagged_descendant(&id) {
            let children: Vec<String> = catalog
                .images
                .iter()
                .filter(|i| i.is_tagged() && i.record.parent == Some(id))
                .flat_map(|i| i.tags.iter().map(|t| familiar(t)))
                .collect();
            let users =
                if children.is_empty() { String::new() } else { format!(" ({})", children.join(", ")) };
            return Err(conflict(&id, &format!("image has dependent child images{users}"))
                .hint("remove the images built on it first, or pass -f (their layers are kept)"));
        }
    }
    let mut deleted = vec![delete_image(store, &id, &tags)?];
    if !args.no_prune {
        let parent = catalog.get(&id).and_then(|i| i.record.parent);
        for base in gc::remove_untagged_bases(store, parent)? {
            println!("Deleted: {}", base.id);
            deleted.push(base.layers);
        }
    }
    Ok(deleted)
}

fn conflict(id: &Digest, why: &str) -> Failure {
    Failure::new(format!("conflict: unable to delete {} (must be forced) - {why}", short_id(&id.to_string())))
}

fn tag_list(tags: &[String]) -> String {
    tags.iter().map(|t| familiar(t)).collect::<Vec<_>>().join(", ")
}

/// Removes one tag, if it still points at `id`.
fn untag(store: &Store, tag: &str, id: &Digest) -> Result<(), Failure> {
    store.update_refs(|refs| {
        if refs.refs.get(tag) == Some(id) {
            refs.refs.remove(tag);
        }
    })?;
    Ok(())
}

/// Drops the image's tags and the image, printing what went; returns its layers.
fn delete_image(store: &Store, id: &Digest, tags: &[String]) -> Result<Vec<Digest>, Failure> {
    let layers = store.image_config(id).map(|(_, c)| c.rootfs.diff_ids).unwrap_or_default();
    // Untag and remove under the tag lock, as a build stores and tags under
    // it: an identical build finishing now cannot end up with its tag on a
    // removed image.
    let (removed_tags, removed) = store.update_refs(|refs| {
        let mine = refs.tags_of(id);
        for tag in &mine {
            refs.refs.remove(tag);
        }
        (mine, store.remove_image(id))
    })?;
    for tag in tags.iter().filter(|t| removed_tags.contains(t)) {
        println!("Untagged: {}", familiar(tag));
    }
    removed?;
    println!("Deleted: {id}");
    Ok(layers)
}

/// Collects garbage if no build is running (otherwise `image prune` will),
/// and prints the deleted images' layers that went, by chain ID as docker
/// prints them, top layer first.
fn print_collected_layers(store: &Store, deleted_layers_of: &[Vec<Digest>]) -> Result<(), Failure> {
    let Some(lock) = gc::try_lock_exclusive(store)? else { return Ok(()) };
    let report = gc::collect_garbage(store, &lock)?;
    let mut freed = FreedLayers::new(&report);
    for layers in deleted_layers_of {
        for chain_id in freed.chain_ids_of(layers) {
            println!("Deleted: {chain_id}");
        }
    }
    Ok(())
}
