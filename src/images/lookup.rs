//! Finding images by what users type, the way `docker` does: tags, repo
//! digests, IDs and ID prefixes; the names commands print back.

use rbuild_cache::store::ResolveError;
use rbuild_cache::{Store, StoreError};
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;

use crate::report::Failure;

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
