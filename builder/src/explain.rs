//! Why a step missed the cache, in words a user can act on. Each step's
//! place in the build (context, Dockerfile, stage, step number) keeps a
//! small record of the key it last used and what went into it; on a miss
//! the new inputs are compared with that record.

use std::collections::BTreeMap;
use std::fs;

use rbuild_cache::Store;
use rbuild_cache::index::KeyInput;
use rbuild_oci::digest::Digest;
use serde::{Deserialize, Serialize};

use crate::context::{BuildContext, EntryKind};

/// What a step last used at its place in the build.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SiteRecord {
    pub key: Option<Digest>,
    pub inputs: Vec<KeyInput>,
    /// Content digests of the context files the step read, by path.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// The stage's base image (ID), kept for the stage's first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<Digest>,
}

/// Identifies one step of one Dockerfile in one context.
pub fn site_id(prefix: &str, stage_label: &str, number: usize) -> String {
    Digest::of(format!("{prefix}\0{stage_label}\0{number}").as_bytes()).hex()[..32].to_string()
}

fn site_path(store: &Store, id: &str) -> std::path::PathBuf {
    store.state_path(&format!("sites/{id}.json"))
}

pub fn load_site(store: &Store, id: &str) -> Option<SiteRecord> {
    fs::read(site_path(store, id)).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

pub fn save_site(store: &Store, id: &str, record: &SiteRecord) {
    let path = site_path(store, id);
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    if let Ok(json) = serde_json::to_vec(record) {
        // Explanations are a convenience: failing to save one never fails a build.
        let _ = rbuild_cache::store::write_file(&path, &json);
    }
}

/// Per-file digests of everything `rels` select in the context.
pub fn context_files(ctx: &BuildContext, rels: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for rel in rels {
        for (path, entry) in ctx.subtree(rel) {
            let value = match entry.kind {
                EntryKind::File => {
                    ctx.file_digest(path).map(|d| format!("blake3:{}", d.hex())).unwrap_or_default()
                }
                EntryKind::Symlink => format!("-> {}", entry.link_target.clone().unwrap_or_default()),
                EntryKind::Dir => "dir".to_string(),
                EntryKind::Other => "other".to_string(),
            };
            out.insert(path.clone(), value);
        }
    }
    out
}

/// What is known about the step's surroundings when explaining it.
pub struct Situation<'a> {
    /// The first filesystem step after FROM: a changed parent is the base.
    pub first_step: bool,
    /// How the stage's base is called (`busybox:local`, `stage deps`).
    pub base: &'a str,
    /// Names of the build args in the step's environment.
    pub arg_names: &'a [String],
    /// The image the stage starts from, when it starts from an image.
    pub base_image: Option<Digest>,
}

fn input<'a>(inputs: &'a [KeyInput], kind: &str, name: &str) -> Option<&'a str> {
    inputs.iter().find(|i| i.kind == kind && i.name == name).map(|i| i.value.as_str())
}

/// The explanation of a miss. `prev` is the site's record from the last
/// build, `now` what the step uses this time.
pub fn explain(prev: Option<&SiteRecord>, now: &SiteRecord, situation: &Situation<'_>) -> String {
    let Some(prev) = prev else {
        return "no cache entry (first build)".to_string();
    };
    if prev.key == now.key {
        return "no cache entry (it was pruned or never completed)".to_string();
    }
    if input(&prev.inputs, "parent", "") != input(&now.inputs, "parent", "") {
        return if situation.first_step {
            match (prev.base_image, now.base_image) {
                (Some(before), Some(after)) if before != after => {
                    format!("base {} changed ({} → {})", situation.base, short(&before), short(&after))
                }
                _ => format!("base {} changed", situation.base),
            }
        } else {
            "parent step changed".to_string()
        };
    }
    let mut reasons = Vec::new();
    reasons.extend(field_changes(prev, now, situation));
    reasons.extend(file_changes(&prev.files, &now.files));
    for i in &now.inputs {
        let before = input(&prev.inputs, &i.kind, &i.name);
        if before == Some(i.value.as_str()) {
            continue;
        }
        match i.kind.as_str() {
            "stage" => reasons.push(format!("source stage {} changed", i.name)),
            "image" => reasons.push(format!("image {} changed", i.name)),
            "inline" => reasons.push(format!("inline file {} changed", i.name)),
            "file" | "context" if now.files.is_empty() => {
                reasons.push(format!("content of {} changed", i.name))
            }
            _ => {}
        }
    }
    if reasons.is_empty() { "the step's inputs changed".to_string() } else { reasons.join("; ") }
}

/// `sha256:0123456789ab`: enough of an image ID to tell two apart.
fn short(id: &Digest) -> String {
    format!("sha256:{}", &id.hex()[..12])
}

fn field_changes(prev: &SiteRecord, now: &SiteRecord, situation: &Situation<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for i in now.inputs.iter().filter(|i| i.kind == "field" || i.kind == "list") {
        let Some(before) = input(&prev.inputs, &i.kind, &i.name) else {
            out.push("the instruction changed".to_string());
            continue;
        };
        if before == i.value {
            continue;
        }
        if i.name == "env" {
            out.extend(env_changes(before, &i.value, situation.arg_names));
        } else if i.name == "argv" {
            out.push("the command changed".to_string());
        } else {
            out.push(format!("the instruction changed ({})", i.name));
        }
    }
    out.dedup();
    out
}

fn env_changes(before: &str, after: &str, arg_names: &[String]) -> Vec<String> {
    let parse = |s: &str| -> BTreeMap<String, String> {
        serde_json::from_str::<Vec<String>>(s)
            .unwrap_or_default()
            .into_iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect()
    };
    let (b, a) = (parse(before), parse(after));
    let mut names: Vec<&String> = b.keys().chain(a.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| {
            if arg_names.contains(k) { format!("build arg {k} changed") } else { format!("ENV {k} changed") }
        })
        .collect()
}

/// How many changed, added or removed files an explanation names; the rest
/// are counted ("and 4 more").
const NAMED_FILES: usize = 5;

/// "file changed: a", "3 files added: src/new/1, src/new/2, src/new/3", …
/// Up to [`NAMED_FILES`] paths are named over all three lists, changed
/// files first; the rest are counted.
fn file_changes(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let changed: Vec<&String> = after
        .iter()
        .filter(|(k, v)| before.get(*k).is_some_and(|b| b != *v && *v != "dir"))
        .map(|(k, _)| k)
        .collect();
    // Directories are containers, not files: only their contents count.
    let added: Vec<&String> =
        after.iter().filter(|(k, v)| *v != "dir" && !before.contains_key(*k)).map(|(k, _)| k).collect();
    let removed: Vec<&String> =
        before.iter().filter(|(k, v)| *v != "dir" && !after.contains_key(*k)).map(|(k, _)| k).collect();
    let mut names_left = NAMED_FILES;
    let mut out = Vec::new();
    for (list, verb) in [(&changed, "changed"), (&added, "added"), (&removed, "removed")] {
        let named = list.len().min(names_left);
        names_left -= named;
        let names: Vec<&str> = list[..named].iter().map(|p| p.as_str()).collect();
        let rest = list.len() - named;
        out.push(match (list.len(), named) {
            (0, _) => continue,
            (1, 1) => format!("file {verb}: {}", names[0]),
            (n, 0) => format!("{n} files {verb} under {}", common_dir(list)),
            (n, _) if rest == 0 => format!("{n} files {verb}: {}", names.join(", ")),
            (n, _) => format!("{n} files {verb}: {} and {rest} more", names.join(", ")),
        });
    }
    out
}

fn common_dir(paths: &[&String]) -> String {
    let first: Vec<&str> = paths[0].split('/').collect();
    let mut len = first.len().saturating_sub(1);
    for p in &paths[1..] {
        let parts: Vec<&str> = p.split('/').collect();
        len = len.min(parts.len().saturating_sub(1));
        while len > 0 && parts[..len] != first[..len] {
            len -= 1;
        }
    }
    if len == 0 { "the context".to_string() } else { format!("{}/", first[..len].join("/")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &[u8], inputs: &[(&str, &str, &str)], files: &[(&str, &str)]) -> SiteRecord {
        SiteRecord {
            key: Some(Digest::of(key)),
            inputs: inputs
                .iter()
                .map(|(k, n, v)| KeyInput { kind: k.to_string(), name: n.to_string(), value: v.to_string() })
                .collect(),
            files: files.iter().map(|(p, d)| (p.to_string(), d.to_string())).collect(),
            base_image: None,
        }
    }

    const SIT: Situation<'static> =
        Situation { first_step: false, base: "busybox:local", arg_names: &[], base_image: None };

    #[test]
    fn first_build_and_parent_and_base() {
        let now = rec(b"1", &[("parent", "", "p1")], &[]);
        assert_eq!(explain(None, &now, &SIT), "no cache entry (first build)");
        let prev = rec(b"0", &[("parent", "", "p0")], &[]);
        assert_eq!(explain(Some(&prev), &now, &SIT), "parent step changed");
        let first = Situation { first_step: true, ..SIT };
        assert_eq!(explain(Some(&prev), &now, &first), "base busybox:local changed");
        // With the image IDs known, the explanation shows both.
        let (old_id, new_id) = (Digest::of(b"old image"), Digest::of(b"new image"));
        let prev = SiteRecord { base_image: Some(old_id), ..prev };
        let now = SiteRecord { base_image: Some(new_id), ..now };
        assert_eq!(
            explain(Some(&prev), &now, &first),
            format!(
                "base busybox:local changed (sha256:{} → sha256:{})",
                &old_id.hex()[..12],
                &new_id.hex()[..12]
            )
        );
    }

    #[test]
    fn files_changed_added_removed() {
        let prev = rec(b"0", &[("parent", "", "p")], &[("src/d07/f13.txt", "a"), ("src/old.txt", "o")]);
        let now = rec(
            b"1",
            &[("parent", "", "p")],
            &[("src/d07/f13.txt", "b"), ("src/new/1", "x"), ("src/new/2", "y"), ("src/new/3", "z")],
        );
        assert_eq!(
            explain(Some(&prev), &now, &SIT),
            "file changed: src/d07/f13.txt; 3 files added: src/new/1, src/new/2, src/new/3; file removed: src/old.txt"
        );
    }

    #[test]
    fn five_files_are_named_and_the_rest_counted() {
        let before: Vec<(String, String)> = (0..9).map(|i| (format!("src/f{i}"), "a".to_string())).collect();
        let mut after = before.clone();
        for (_, digest) in after.iter_mut().take(4) {
            *digest = "b".to_string();
        }
        after.extend((0..3).map(|i| (format!("src/new/n{i}"), "x".to_string())));
        after.retain(|(p, _)| p != "src/f8" && p != "src/f7");
        fn as_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
            v.iter().map(|(p, d)| (p.as_str(), d.as_str())).collect()
        }
        let prev = rec(b"0", &[("parent", "", "p")], &as_refs(&before));
        let now = rec(b"1", &[("parent", "", "p")], &as_refs(&after));
        assert_eq!(
            explain(Some(&prev), &now, &SIT),
            "4 files changed: src/f0, src/f1, src/f2, src/f3; \
             3 files added: src/new/n0 and 2 more; 2 files removed under src/"
        );
    }

    #[test]
    fn build_args_and_env() {
        let args = vec!["VERSION".to_string()];
        let sit = Situation { arg_names: &args, ..SIT };
        let prev = rec(b"0", &[("parent", "", "p"), ("list", "env", r#"["VERSION=1","A=x"]"#)], &[]);
        let now = rec(b"1", &[("parent", "", "p"), ("list", "env", r#"["VERSION=2","A=y"]"#)], &[]);
        assert_eq!(explain(Some(&prev), &now, &sit), "ENV A changed; build arg VERSION changed");
    }
}
