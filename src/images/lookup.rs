//! Finding images by what users type, the way `docker` does: tags, repo
//! digests, IDs and ID prefixes; the names commands print back.

use rbuild_cache::store::ResolveError;
use rbuild_cache::{Store, StoreError};
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;

use crate::report::Failure;

/// The images of a multi-platform name (`app:v1` built with `--platform
/// linux/amd64,linux/arm64`) by platform; empty for any other query.
pub fn platform_images(
    store: &Store,
    query: &str,
) -> Result<std::collections::BTreeMap<String, Digest>, Failure> {
    match Reference::parse(query) {
        Ok(r) if r.digest.is_none() => Ok(store.platforms_of(&r.canonical())?),
        _ => Ok(Default::default()),
    }
}

/// The image `query` names for `platform` (`--platform` of `save`): a
/// multi-platform name needs one, and must have it.
pub fn resolve_for_platform(store: &Store, query: &str, platform: Option<&str>) -> Result<Digest, Failure> {
    let members = platform_images(store, query)?;
    let has = || members.keys().cloned().collect::<Vec<_>>().join(", ");
    match platform {
        None if members.len() > 1 => Err(Failure::new(format!(
            "{query} is a multi-platform image ({}), and a docker archive holds one image",
            has()
        ))
        .hint(format!("choose one with --platform {}", members.keys().next().cloned().unwrap_or_default()))),
        None => resolve_image(store, query),
        Some(wanted) => {
            let wanted = rbuild_oci::platform::Platform::parse(wanted)
                .map_err(|e| Failure::new(format!("--platform: {e}")))?;
            if members.is_empty() {
                let id = resolve_image(store, query)?;
                let (_, config) = store.image_config(&id)?;
                if wanted.matches(&config.os, &config.architecture, config.variant.as_deref()) {
                    return Ok(id);
                }
                return Err(Failure::new(format!(
                    "{query} is an image for {}/{}, not {wanted}",
                    config.os, config.architecture
                )));
            }
            members
                .iter()
                .find(|(spec, _)| rbuild_oci::platform::Platform::parse(spec).is_ok_and(|p| p == wanted))
                .map(|(_, id)| *id)
                .ok_or_else(|| {
                    Failure::new(format!("{query} has no image for {wanted}; it has: {}", has()))
                        .hint("choose one of the platforms it has with --platform")
                })
        }
    }
}

/// Finds an image the way `docker` does: by tag (`app`, `app:v1`,
/// `docker.io/library/app:v1`), by repo digest (`app@sha256:…`), by full ID
/// (`sha256:…` or bare hex), or by a unique prefix of the ID.
pub fn resolve_image(store: &Store, query: &str) -> Result<Digest, Failure> {
    let reference = Reference::parse(query);
    if let Ok(r) = &reference
        && let Some(digest) = &r.digest
    {
        let wanted = [r.canonical(), r.familiar(), format!("{}@{digest}", r.familiar_name())];
        for record in store.list_images()? {
            if record.repo_digests.iter().any(|d| wanted.contains(d)) {
                return Ok(record.id);
            }
        }
        if r.tag.is_none() {
            return Err(no_such_image(query));
        }
    }
    let canonical = reference.as_ref().ok().map(Reference::canonical);
    match store.resolve_image(query, canonical.as_deref()) {
        Ok(id) => Ok(id),
        Err(StoreError::Resolve(ResolveError::NotFound(_))) => match reference {
            // Not found, and not even a valid name: say what is wrong with it.
            Err(e) if !is_hex(query) => Err(Failure::new(e.to_string())
                .hint("an image is named like name:tag, registry/name:tag, or by its ID")),
            _ => Err(no_such_image(query)),
        },
        Err(StoreError::Resolve(ResolveError::Ambiguous(prefix, n))) => {
            Err(Failure::new(format!("image ID prefix {prefix} is ambiguous: it matches {n} images"))
                .hint("give more characters of the ID, or a tag"))
        }
        Err(e) => Err(e.into()),
    }
}

fn is_hex(text: &str) -> bool {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn no_such_image(query: &str) -> Failure {
    Failure::new(format!("No such image: {query}")).hint("`rbuild images` lists the images in the store")
}

/// Parses a name given on the command line, with Docker's default tag.
pub fn parse_reference(text: &str) -> Result<Reference, Failure> {
    Reference::parse(text).map_err(|e| {
        Failure::new(e.to_string()).hint("an image name looks like name:tag or registry:5000/team/name:tag")
    })
}

/// The short form of a canonical tag from the store.
pub fn familiar(canonical: &str) -> String {
    Reference::parse(canonical).map(|r| r.familiar()).unwrap_or_else(|_| canonical.to_string())
}
