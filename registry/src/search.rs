//! `rbuild search REGISTRY/TERM`: the repositories of a registry's catalog
//! (`/v2/_catalog`, paged) whose name contains TERM, with their tags.
//! Docker Hub has no catalog; its search API is not a Distribution API
//! and is not used.

use super::error::{RegistryError, Result};
use super::session::Session;
use rbuild_oci::reference::Reference;

/// Repositories asked for per catalog page.
const PAGE: usize = 100;
/// Most catalog pages read, so a huge registry cannot keep us forever.
const MAX_PAGES: usize = 100;

/// One matching repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// `registry/path`.
    pub name: String,
    /// Its tags, sorted (empty when they could not be listed).
    pub tags: Vec<String>,
}

/// Splits `REGISTRY/TERM` (TERM may be empty or contain `/`).
pub fn split_query(query: &str) -> Result<(String, String)> {
    let (registry, term) = query.split_once('/').unwrap_or((query, ""));
    let valid = Reference::parse(&format!("{registry}/x")).is_ok_and(|r| r.registry == registry);
    if registry.is_empty() || !valid {
        return Err(RegistryError::InvalidReference {
            input: query.to_string(),
            message: "search needs a registry first, e.g. localhost:5000/app (Docker Hub has no catalog)"
                .into(),
        });
    }
    Ok((registry.to_string(), term.to_string()))
}

/// Repositories of `registry` whose path contains `term`, at most `limit`.
pub fn search(session: &Session, registry: &str, term: &str, limit: usize) -> Result<Vec<Found>> {
    let mut names: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = session.catalog_page(registry, PAGE, last.as_deref())?;
        let full = page.len() >= PAGE;
        last = page.last().cloned();
        names.extend(page.into_iter().filter(|r| r.contains(term)));
        if !full || names.len() >= limit {
            break;
        }
    }
    names.sort();
    names.dedup();
    names.truncate(limit);
    let mut found = Vec::new();
    for repository in names {
        let reference = Reference {
            registry: registry.to_string(),
            repository: repository.clone(),
            tag: None,
            digest: None,
        };
        let mut tags = session.tags(&reference, None).unwrap_or_default();
        tags.sort();
        found.push(Found { name: format!("{registry}/{repository}"), tags });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_a_registry_first() {
        assert_eq!(split_query("localhost:5000/app").unwrap(), ("localhost:5000".into(), "app".into()));
        assert_eq!(split_query("127.0.0.1:5000").unwrap(), ("127.0.0.1:5000".into(), String::new()));
        assert_eq!(split_query("reg.lan/team/app").unwrap(), ("reg.lan".into(), "team/app".into()));
        assert!(split_query("busybox").is_err());
    }
}
