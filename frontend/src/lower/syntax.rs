//! The `# syntax=` directive: rbuild has one Dockerfile frontend of its
//! own, so a directive naming any other frontend image gets a warning
//! rather than being followed.

use crate::graph::Warning;
use crate::parser::Directives;

/// Frontend images whose Dockerfile dialect is the one rbuild implements.
const KNOWN_SYNTAX_IMAGES: &[&str] = &["docker/dockerfile", "docker/dockerfile-upstream"];

/// The warning for a `# syntax=` directive that names a frontend image
/// other than Docker's own; `None` when there is no directive or it is
/// Docker's.
pub(super) fn foreign_frontend_warning(directives: &Directives) -> Option<Warning> {
    let syntax = directives.syntax.as_ref().filter(|s| !is_known_syntax(&s.value))?;
    Some(Warning {
        message: format!(
            "the Dockerfile asks for the frontend image {:?}; rbuild ignores it and uses its own Dockerfile frontend (docker/dockerfile:1 syntax)",
            syntax.value
        ),
        span: Some(syntax.span),
    })
}

/// True for `docker/dockerfile:1`, `docker.io/docker/dockerfile:1.7-labs`,
/// `docker/dockerfile-upstream:master`, with or without a digest.
fn is_known_syntax(value: &str) -> bool {
    let name = value.split('@').next().unwrap_or(value);
    let name = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    };
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    KNOWN_SYNTAX_IMAGES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_frontends_are_known_with_any_tag_registry_or_digest() {
        for known in [
            "docker/dockerfile",
            "docker/dockerfile:1",
            "docker/dockerfile:1.7-labs",
            "docker.io/docker/dockerfile:1@sha256:ab",
            "docker/dockerfile-upstream:master",
        ] {
            assert!(is_known_syntax(known), "{known}");
        }
    }

    #[test]
    fn other_frontends_are_foreign() {
        for foreign in [
            "tonistiigi/dockerfile:runmount",
            "example.com/docker/dockerfile:1",
            "docker/dockerfile-labs",
            "localhost:5000/docker/dockerfile",
        ] {
            assert!(!is_known_syntax(foreign), "{foreign}");
        }
    }
}
