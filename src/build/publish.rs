//! What happens to a built image: `--label`s added to its config, the image
//! stored under its `-t` tags, more names from `-o type=image`, pushes, and
//! the files that tell scripts about it (`--iidfile`, `--metadata-file`).

use std::collections::BTreeMap;
use std::path::Path;

use rbuild_builder::outcome::BuildOutput;
use rbuild_cache::Store;
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;

use super::request::Request;
use crate::progress::Renderer;
use crate::registry::{self, Registries};
use crate::report::Failure;

/// Adds `--label KEY=VALUE`s to the config; the image ID follows the new
/// config.
pub fn add_labels(built: &mut BuildOutput, labels: &[String]) {
    if labels.is_empty() {
        return;
    }
    let config_labels = built.config.config.labels.get_or_insert_with(BTreeMap::new);
    for l in labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        config_labels.insert(k.to_string(), v.to_string());
    }
    built.config_json = built.config.to_json();
    built.image_id = Digest::of(&built.config_json);
}

/// Puts the image into the store under its `-t` tags, its record holding
/// this build's manifest annotations (none replaces an earlier build's);
/// returns its ID.
pub fn store_and_tag(
    store: &Store,
    built: &BuildOutput,
    tags: &[Reference],
    annotations: &BTreeMap<String, String>,
    progress: &dyn Renderer,
) -> Result<Digest, Failure> {
    let names: Vec<String> = tags.iter().map(Reference::canonical).collect();
    let id = store.put_image_tagged(&built.config_json, built.parent, &names)?;
    keep_manifest_annotations(store, &id, annotations)?;
    progress.line(&format!("writing image {id}"));
    for name in &names {
        progress.line(&format!("naming to {name}"));
    }
    Ok(id)
}

/// Records `annotations` as the manifest annotations of the stored image
/// `id` (none replaces an earlier build's), so every later export and push
/// writes them.
pub fn keep_manifest_annotations(
    store: &Store,
    id: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Result<(), Failure> {
    if let Some(mut record) = store.image_record(id)?
        && record.annotations != *annotations
    {
        record.annotations = annotations.clone();
        store.update_image_record(&record)?;
    }
    Ok(())
}

/// Tags the image with the names of `-o type=image` outputs, then pushes:
/// every `-t` tag with `--push`, and the image outputs that ask for it,
/// each name once.
pub fn name_and_push(
    store: &Store,
    registries: &Registries,
    id: &Digest,
    request: &Request,
    push_tags: bool,
    progress: &dyn Renderer,
) -> Result<(), Failure> {
    for name in request.image_outputs.iter().flat_map(|image| &image.names) {
        store.tag(&name.canonical(), id)?;
        progress.line(&format!("naming to {}", name.canonical()));
    }
    for target in &names_to_push(request, push_tags) {
        let session = registries.session().map_err(registry::failure)?;
        progress.line(&format!("pushing {}", target.familiar()));
        let pushed = rbuild_registry::push::push(&session, store, id, target).map_err(registry::failure)?;
        progress.line(&format!("pushed {}@{}", target.familiar(), pushed.digest));
    }
    Ok(())
}

/// Every name a build pushes, each once: the `-t` tags with `--push`, then
/// the names of `-o type=image` outputs that ask for it.
pub fn names_to_push(request: &Request, push_tags: bool) -> Vec<Reference> {
    let mut to_push: Vec<Reference> = if push_tags { request.tags.clone() } else { Vec::new() };
    for name in request.image_outputs.iter().filter(|image| image.push).flat_map(|image| &image.names) {
        if !to_push.contains(name) {
            to_push.push(name.clone());
        }
    }
    to_push
}

/// `--iidfile`: the image ID.
pub fn write_iidfile(path: &Path, id: &Digest) -> Result<(), Failure> {
    write(path, id.to_string())
}

/// `--metadata-file`: the image ID, its names and every step (cached, why
/// it ran, time, layer), in BuildKit's key names where it has one.
pub fn write_metadata(
    path: &Path,
    id: &Digest,
    tags: &[Reference],
    built: &BuildOutput,
) -> Result<(), Failure> {
    let meta = serde_json::json!({
        "containerimage.config.digest": id.to_string(),
        "image.name": tags.iter().map(|t| t.canonical()).collect::<Vec<_>>().join(","),
        "rbuild.steps": built.steps,
    });
    write(path, serde_json::to_string_pretty(&meta).expect("metadata serializes"))
}

fn write(path: &Path, text: String) -> Result<(), Failure> {
    std::fs::write(path, text).map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))
}
