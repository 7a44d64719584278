//! `ADD <git repository>` through the `git` program: `ls-remote` to
//! resolve a ref, then a shallow fetch of exactly that commit and a
//! checkout (with submodules). Running git itself gives every transport
//! git has (https with credential helpers, ssh, git://) and its exact
//! checkout rules, with no git code in rbuild.
//!
//! ssh remotes get the build's `--ssh default` agent and nothing else
//! (not the caller's `$SSH_AUTH_SOCK`, as in BuildKit), in batch mode so a
//! missing key or an unknown host is an error rather than a prompt (a
//! `GIT_SSH_COMMAND` of the caller's own is used as given); git never
//! prompts for credentials either.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use rbuild_builder::git::GitFetcher;

#[derive(Debug, Default)]
pub struct GitCli {
    /// Commits resolved by this build, by remote and reference: asked once,
    /// so the key and the checkout of a step see the same commit.
    resolved: Mutex<BTreeMap<(String, String), String>>,
}

impl GitFetcher for GitCli {
    fn resolve(&self, remote: &str, reference: &str, ssh_agent: Option<&Path>) -> Result<String, String> {
        if is_full_commit(reference) {
            return Ok(reference.to_ascii_lowercase());
        }
        let memo = (remote.to_string(), reference.to_string());
        if let Some(c) = self.resolved.lock().unwrap_or_else(|e| e.into_inner()).get(&memo) {
            return Ok(c.clone());
        }
        let listing = run(git(ssh_agent).args(["ls-remote", "--", remote]))?;
        let refs: BTreeMap<&str, &str> =
            listing.lines().filter_map(|l| l.split_once('\t')).map(|(sha, name)| (name, sha)).collect();
        let commit = pick(&refs, reference).ok_or_else(|| {
            if reference.is_empty() {
                "the repository has no HEAD to check out".to_string()
            } else {
                format!("repository does not contain ref {reference}")
            }
        })?;
        self.resolved.lock().unwrap_or_else(|e| e.into_inner()).insert(memo, commit.to_string());
        Ok(commit.to_string())
    }

    fn checkout(
        &self,
        remote: &str,
        commit: &str,
        dest: &Path,
        keep_git_dir: bool,
        ssh_agent: Option<&Path>,
    ) -> Result<(), String> {
        let in_dest = || {
            let mut c = git(ssh_agent);
            c.arg("-C").arg(dest);
            c
        };
        // The local repository must use the remote's hash: a 64-digit
        // commit id is SHA-256.
        let format = if commit.len() == 64 { "--object-format=sha256" } else { "--object-format=sha1" };
        run(git(ssh_agent).args(["init", "-q", format]).arg(dest))?;
        run(in_dest().args(["remote", "add", "origin", remote]))?;
        // Just that commit; a server that refuses to serve a commit by id
        // (protocol v0 without allowReachableSHA1InWant) gets a full fetch.
        if run(in_dest().args(["fetch", "-q", "--depth=1", "--no-tags", "origin", commit])).is_err() {
            run(in_dest().args(["fetch", "-q", "--no-tags", "origin", "+refs/*:refs/remotes/origin/*"]))?;
        }
        run(in_dest().args(["-c", "advice.detachedHead=false", "checkout", "-q", commit]))?;
        if dest.join(".gitmodules").exists() {
            run(in_dest().args(["submodule", "update", "-q", "--init", "--recursive", "--depth=1"]))?;
        }
        if !keep_git_dir {
            std::fs::remove_dir_all(dest.join(".git")).map_err(|e| format!("remove .git: {e}"))?;
        }
        Ok(())
    }
}

/// The commit `reference` names among `refs` (ls-remote's `name → id`):
/// HEAD for none, then a tag (peeled to its commit), a branch, or a full
/// ref name, in git's own order of precedence.
fn pick<'a>(refs: &BTreeMap<&str, &'a str>, reference: &str) -> Option<&'a str> {
    if reference.is_empty() {
        return refs.get("HEAD").copied();
    }
    let candidates = [
        format!("refs/tags/{reference}^{{}}"),
        format!("refs/tags/{reference}"),
        format!("refs/heads/{reference}"),
        format!("{reference}^{{}}"),
        reference.to_string(),
        format!("refs/{reference}"),
    ];
    candidates.iter().find_map(|c| refs.get(c.as_str()).copied())
}

fn is_full_commit(reference: &str) -> bool {
    matches!(reference.len(), 40 | 64) && reference.chars().all(|c| c.is_ascii_hexdigit())
}

/// `git` that never prompts, with only the build's agent for ssh.
fn git(ssh_agent: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    c.env("GIT_TERMINAL_PROMPT", "0").env_remove("GIT_DIR").env_remove("GIT_WORK_TREE").stdin(Stdio::null());
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        c.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    match ssh_agent {
        Some(agent) => c.env("SSH_AUTH_SOCK", agent),
        None => c.env_remove("SSH_AUTH_SOCK"),
    };
    c
}

/// Runs git; its stdout, or what it said went wrong.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot run git: {e} (install git)"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(git_complaint(&String::from_utf8_lossy(&out.stderr)))
}

/// git's error lines on one line, without its generic advice (the hint
/// rbuild prints says the same).
fn git_complaint(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| l.trim().trim_start_matches("fatal: ").trim_start_matches("error: "))
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("hint:")
                && !l.starts_with("Please make sure you have the correct access rights")
                && !l.starts_with("and the repository exists")
        })
        .collect();
    if lines.is_empty() { "git failed".to_string() } else { lines.join("; ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_resolve_as_git_does() {
        let refs: BTreeMap<&str, &str> = [
            ("HEAD", "h"),
            ("refs/heads/main", "m"),
            ("refs/heads/v1", "branch-v1"),
            ("refs/tags/v1", "tag-object"),
            ("refs/tags/v1^{}", "tagged-commit"),
            ("refs/tags/light", "l"),
            ("refs/pull/7/head", "p"),
        ]
        .into_iter()
        .collect();
        assert_eq!(pick(&refs, ""), Some("h"));
        assert_eq!(pick(&refs, "main"), Some("m"));
        assert_eq!(pick(&refs, "v1"), Some("tagged-commit"), "a tag before a branch, peeled");
        assert_eq!(pick(&refs, "light"), Some("l"));
        assert_eq!(pick(&refs, "refs/heads/v1"), Some("branch-v1"));
        assert_eq!(pick(&refs, "pull/7/head"), Some("p"));
        assert_eq!(pick(&refs, "nope"), None);
        assert!(is_full_commit(&"a".repeat(40)) && !is_full_commit("abc1234"));
    }

    #[test]
    fn git_errors_keep_the_cause_and_drop_the_advice() {
        let denied = "git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.\n\n\
Please make sure you have the correct access rights\nand the repository exists.\n";
        assert_eq!(
            git_complaint(denied),
            "git@h: Permission denied (publickey).; Could not read from remote repository."
        );
        assert_eq!(git_complaint(""), "git failed");
    }
}
