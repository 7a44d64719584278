//! ADD of git repositories: the ref is resolved to a commit first (one
//! `ls-remote`, none for a full commit id), the step is keyed by that
//! commit, so a branch that moved runs the step again and an unchanged one
//! hits the cache; only a step that runs checks the commit out.
//!
//! The builder reaches the repository through [`GitFetcher`], which the
//! command line implements by running `git`, so the builder links no git
//! or network code. Repositories over ssh (`git@host:repo`) use the
//! build's `--ssh default` agent, as BuildKit does.

use std::fs;
use std::path::Path;

use rbuild_frontend::graph::GitSource;

use crate::env::ExecEnv;
use crate::error::BuildError;

/// Access to git remotes for `ADD <repository>`.
pub trait GitFetcher: Send + Sync + std::fmt::Debug {
    /// The commit `reference` names in `remote` (empty: the remote's HEAD).
    /// A build asks once per remote and reference: later calls answer the
    /// same, so the step's key and its content agree.
    fn resolve(&self, remote: &str, reference: &str, ssh_agent: Option<&Path>) -> Result<String, String>;

    /// Checks `commit` of `remote` out into the empty directory `dest`,
    /// with submodules; `.git` is left there only with `keep_git_dir`.
    fn checkout(
        &self,
        remote: &str,
        commit: &str,
        dest: &Path,
        keep_git_dir: bool,
        ssh_agent: Option<&Path>,
    ) -> Result<(), String>;
}

/// The name ADD shows for a git source.
pub fn display(g: &GitSource) -> String {
    let mut s = g.remote.clone();
    if !g.reference.is_empty() || !g.subdir.is_empty() {
        s.push('#');
        s.push_str(&g.reference);
    }
    if !g.subdir.is_empty() {
        s.push(':');
        s.push_str(&g.subdir);
    }
    s
}

/// The commit `g` resolves to, checked against ADD `--checksum` and the
/// URL's `?commit=` (the commit or a prefix of it).
pub fn resolve(env: &ExecEnv<'_>, g: &GitSource, checksum: Option<&str>) -> Result<String, BuildError> {
    let agent = env.opts.ssh.get("default").map(|p| p.as_path());
    let commit = env.opts.git.resolve(&g.remote, &g.reference, agent).map_err(|e| unreachable(g, &e))?;
    let expected = [checksum, Some(g.commit.as_str())];
    if let Some(expected) = expected.into_iter().flatten().find(|e| !commit.starts_with(e)) {
        return Err(BuildError::new(format!(
            "ADD {}: expected checksum to match {expected}, but the ref resolved to commit {commit}",
            display(g)
        ))
        .hint("the ref moved or the checksum is wrong: check the commit with git ls-remote")
        .at(g.span));
    }
    Ok(commit)
}

/// Checks `commit` of `g` out below `scratch` and returns the directory
/// ADD copies (the repository, or its subdirectory).
pub fn checkout(
    env: &ExecEnv<'_>,
    g: &GitSource,
    commit: &str,
    keep_git_dir: bool,
    scratch: &Path,
) -> Result<std::path::PathBuf, BuildError> {
    let agent = env.opts.ssh.get("default").map(|p| p.as_path());
    let tree = scratch.join("repo");
    fs::create_dir(&tree)?;
    env.opts.git.checkout(&g.remote, commit, &tree, keep_git_dir, agent).map_err(|e| unreachable(g, &e))?;
    if g.subdir.is_empty() {
        return Ok(tree);
    }
    let sub = tree.join(&g.subdir);
    // The subdirectory must be a directory of the checkout itself, not a
    // symlink out of it.
    let inside = sub.canonicalize().ok().filter(|p| p.starts_with(tree.canonicalize().unwrap_or_default()));
    match inside {
        Some(p) if p.is_dir() => Ok(p),
        _ => {
            Err(BuildError::new(format!("ADD {}: commit {commit} has no directory {}", display(g), g.subdir))
                .hint("check the path after the ':' in REPOSITORY#REF:SUBDIR")
                .at(g.span))
        }
    }
}

fn unreachable(g: &GitSource, why: &str) -> BuildError {
    BuildError::new(format!("ADD {}: {why}", display(g)))
        .hint("check the repository URL and ref, and that the server is reachable (ssh remotes use --ssh default)")
        .at(g.span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbuild_frontend::span::Span;

    #[test]
    fn sources_display_as_written() {
        let g = |r: &str, s: &str| GitSource {
            remote: "https://h/r.git".into(),
            reference: r.into(),
            subdir: s.into(),
            commit: String::new(),
            span: Span::default(),
        };
        assert_eq!(display(&g("", "")), "https://h/r.git");
        assert_eq!(display(&g("v1", "")), "https://h/r.git#v1");
        assert_eq!(display(&g("v1", "docs")), "https://h/r.git#v1:docs");
        assert_eq!(display(&g("", "docs")), "https://h/r.git#:docs");
    }
}
