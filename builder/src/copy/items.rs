//! Source selection for COPY and ADD: the entries a context path, a path
//! in a stage's or image's layers, or an extracted archive stands for, and
//! the `--parents` (pivots, `**` patterns) and `--exclude` rules applied to
//! them.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rbuild_layer::LayerStack;

use super::{CopyError, io_err};
use crate::context::{BuildContext, ContextError, EntryKind};
use crate::dockerignore::DockerIgnore;
use crate::pathmatch;

/// One file, directory or link to write, relative to the item it belongs to.
#[derive(Debug, Clone)]
pub struct SrcEntry {
    /// Path below the copied item ("" for the item itself).
    pub rel: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    /// Where to read the content (regular files) on the host; empty for a
    /// file that is written empty (a socket or fifo in the context).
    pub host_path: PathBuf,
    pub link_target: Option<String>,
    /// `host_path` is a file of a stored layer (a stage's or an image's
    /// snapshot), which nothing ever writes to: a copy of it may share its
    /// inode (see [`super::upper::DiskUpper`]).
    pub stored: bool,
}

/// A top-level source item (a file or a directory and its contents).
#[derive(Debug, Clone)]
pub struct SrcItem {
    /// The basename used when copying into a directory.
    pub name: String,
    pub entries: Vec<SrcEntry>,
}

impl SrcEntry {
    /// An entry for what an lstat found at `host_path` (owners kept).
    pub fn from_metadata(rel: String, m: &fs::Metadata, host_path: &Path) -> SrcEntry {
        let kind = EntryKind::of(m.file_type());
        let link_target = if kind == EntryKind::Symlink {
            fs::read_link(host_path).ok().map(|t| t.to_string_lossy().into_owned())
        } else {
            None
        };
        SrcEntry {
            rel,
            kind,
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            mtime: (m.mtime(), m.mtime_nsec()),
            host_path: host_path.to_path_buf(),
            link_target,
            stored: false,
        }
    }
}

impl SrcItem {
    pub fn is_dir(&self) -> bool {
        self.entries.first().is_some_and(|e| e.kind == EntryKind::Dir)
    }
}

/// The items a context source path selects.
pub fn items_from_context(ctx: &BuildContext, rels: &[String]) -> Vec<SrcItem> {
    rels.iter()
        .map(|rel| {
            let entries = if rel.is_empty() {
                // The context root itself: its contents, as a directory.
                let root_meta = fs::metadata(ctx.root()).ok();
                let mut v = vec![SrcEntry {
                    rel: String::new(),
                    kind: EntryKind::Dir,
                    mode: root_meta.as_ref().map_or(0o40755, |m| m.mode()),
                    uid: 0,
                    gid: 0,
                    mtime: ctx
                        .presented_mtime(root_meta.as_ref().map_or((0, 0), |m| (m.mtime(), m.mtime_nsec()))),
                    host_path: ctx.root().to_path_buf(),
                    link_target: None,
                    stored: false,
                }];
                v.extend(ctx.subtree("").map(|(p, e)| context_entry(ctx, p, p, e)));
                v
            } else {
                ctx.subtree(rel)
                    .map(|(p, e)| {
                        let below = p.strip_prefix(rel.as_str()).unwrap_or(p).trim_start_matches('/');
                        context_entry(ctx, p, below, e)
                    })
                    .collect()
            };
            SrcItem { name: rel.rsplit('/').next().unwrap_or("").to_string(), entries }
        })
        .collect()
}

fn context_entry(ctx: &BuildContext, path: &str, rel: &str, e: &crate::context::Entry) -> SrcEntry {
    // BuildKit's context transfer turns sockets and fifos into empty
    // regular files; so does COPY here (a file without a host path).
    let (kind, host_path) = match e.kind {
        EntryKind::Other => (EntryKind::File, PathBuf::new()),
        kind => (kind, ctx.root().join(path)),
    };
    SrcEntry {
        rel: rel.to_string(),
        kind,
        mode: e.mode,
        // Context files are owned by root in the image unless --chown says otherwise.
        uid: 0,
        gid: 0,
        mtime: ctx.presented_mtime(e.mtime),
        host_path,
        link_target: e.link_target.clone(),
        stored: false,
    }
}

/// The items a path selects in a stage's or image's filesystem (owners kept).
pub fn items_from_layers(view: &LayerStack, paths: &[String]) -> Result<Vec<SrcItem>, CopyError> {
    let mut items = Vec::new();
    for path in paths {
        let Some(found) = view.lookup(path, true)? else {
            return Err(CopyError::Invalid(format!("{path}: no such file or directory in the source")));
        };
        let root = found.merged_path.clone();
        let mut entries = Vec::new();
        view.walk(&root, |f: &rbuild_layer::Found| {
            let merged = f.merged_path.as_str();
            let rel =
                merged.strip_prefix(root.as_str()).unwrap_or(merged).trim_start_matches('/').to_string();
            let entry = SrcEntry::from_metadata(rel, &f.metadata, &f.real_path);
            entries.push(SrcEntry { stored: true, ..entry });
            Ok(())
        })?;
        // Copied into a directory, the item keeps the name it was asked by,
        // even when that name is a symlink to something else.
        let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string();
        items.push(SrcItem { name, entries });
    }
    Ok(items)
}

/// The items of a plain directory tree on the host (e.g. an extracted archive).
pub fn items_from_dir(dir: &Path, name: &str) -> Result<SrcItem, CopyError> {
    let mut entries = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.map_err(|e| CopyError::Invalid(e.to_string()))?;
        let m = e.path().symlink_metadata().map_err(io_err("stat", e.path()))?;
        let rel = e.path().strip_prefix(dir).unwrap_or(e.path()).to_string_lossy().into_owned();
        entries.push(SrcEntry::from_metadata(rel, &m, e.path()));
    }
    Ok(SrcItem { name: name.to_string(), entries })
}

/// Drops the entries `--exclude` patterns name. Patterns are matched, with
/// `.dockerignore` rules, against each entry's path below the copied source
/// (as BuildKit does), so a single-file source is never excluded by them.
pub fn exclude_entries(item: &mut SrcItem, excludes: &DockerIgnore) {
    item.entries.retain(|e| e.rel.is_empty() || !excludes.is_excluded(&e.rel));
}

/// The merged paths a COPY --from source selects in a stage's filesystem:
/// the path itself, or with wildcards every path whose components match
/// (Go's `filepath.Match`, one component at a time).
pub fn select_in_layers(view: &LayerStack, source: &str) -> Result<Vec<String>, CopyError> {
    let cleaned = clean_abs(source);
    if !pathmatch::has_wildcards(&cleaned) {
        return Ok(vec![pathmatch::unescape(&cleaned)]);
    }
    let mut current = vec!["/".to_string()];
    for part in cleaned.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for dir in &current {
            if !pathmatch::has_wildcards(part) {
                let p = join(dir, &pathmatch::unescape(part));
                if view.lookup(&p, false)?.is_some() {
                    next.push(p);
                }
                continue;
            }
            let Ok(children) = view.read_dir(dir) else { continue };
            let mut names: Vec<String> =
                children.into_iter().map(|(n, _)| n.to_string_lossy().into_owned()).collect();
            names.sort();
            for name in names {
                let hit = pathmatch::matches(part, &name)
                    .map_err(|e| CopyError::Invalid(format!("{source}: {e}")))?;
                if hit {
                    next.push(join(dir, &name));
                }
            }
        }
        current = next;
    }
    Ok(current)
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") }
}

fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `COPY --parents`: a source is split at its first `/./` into the pivot
/// (wildcards allowed; the root without one) and the pattern below it,
/// which is kept below the destination and may use `**`.
pub fn split_parents(source: &str) -> (String, String) {
    match source.split_once("/./") {
        Some((pivot, rest)) => (pivot.to_string(), rest.trim_start_matches('/').to_string()),
        None => (String::new(), source.trim_start_matches("./").trim_start_matches('/').to_string()),
    }
}

/// Of the entries below one pivot (paths relative to it, parents before
/// children), the ones `--parents` copies, as BuildKit's include filter
/// picks them: each path the pattern matches (`.dockerignore` rules, so
/// `**` spans directories), everything below it, and the directories on
/// the way to it.
fn parents_selection(entries: Vec<SrcEntry>, pattern: &str) -> Result<Vec<SrcEntry>, ContextError> {
    let matcher = DockerIgnore::parse(pattern)
        .map_err(|e| ContextError::Pattern(pattern.to_string(), e.to_string()))?;
    let mut keep: std::collections::HashSet<String> = std::collections::HashSet::new();
    for e in entries.iter().filter(|e| !e.rel.is_empty() && matcher.is_excluded(&e.rel)) {
        let mut path = e.rel.as_str();
        keep.insert(path.to_string());
        while let Some((parent, _)) = path.rsplit_once('/') {
            if !keep.insert(parent.to_string()) {
                break;
            }
            path = parent;
        }
    }
    Ok(entries.into_iter().filter(|e| keep.contains(&e.rel)).collect())
}

/// `COPY --parents` from the context: one item per pivot match, its
/// entries placed at their path below the pivot.
pub fn parents_from_context(ctx: &BuildContext, source: &str) -> Result<Vec<SrcItem>, ContextError> {
    let (pivot, rest) = split_parents(source);
    if !pathmatch::has_wildcards(source) {
        // A plain path must exist; a pattern may match nothing.
        ctx.select(&format!("{pivot}/{rest}"))?;
    }
    let mut items = Vec::new();
    for base in ctx.select(if pivot.is_empty() { "." } else { &pivot })? {
        let entries = ctx
            .subtree(&base)
            .map(|(p, e)| {
                let below = p.strip_prefix(base.as_str()).unwrap_or(p).trim_start_matches('/');
                context_entry(ctx, p, below, e)
            })
            .collect();
        items.push(SrcItem { name: String::new(), entries: parents_selection(entries, &rest)? });
    }
    Ok(items)
}

/// `COPY --parents --from`: as [`parents_from_context`], in a stage's or
/// image's filesystem (owners kept).
pub fn parents_from_layers(view: &LayerStack, source: &str) -> Result<Vec<SrcItem>, CopyError> {
    let (pivot, rest) = split_parents(source);
    if !pathmatch::has_wildcards(source) {
        let full = clean_abs(&format!("{pivot}/{rest}"));
        if view.lookup(&full, true)?.is_none() {
            return Err(CopyError::Invalid(format!("{full}: no such file or directory in the source")));
        }
    }
    let mut items = Vec::new();
    for base in select_in_layers(view, if pivot.is_empty() { "/" } else { &pivot })? {
        let Some(item) = items_from_layers(view, &[base])?.pop() else { continue };
        let entries =
            parents_selection(item.entries, &rest).map_err(|e| CopyError::Invalid(e.to_string()))?;
        items.push(SrcItem { name: String::new(), entries });
    }
    Ok(items)
}
