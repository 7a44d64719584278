//! One COPY or ADD step, from its op to an upper dir holding its changes:
//! the writer set up with the step's owner and mode, its sources gathered
//! (context paths, `--from` layers, URLs, archives to extract, heredocs),
//! `--exclude` applied, then everything written by Docker's rules.

use std::fs;
use std::path::{Path, PathBuf};

use rbuild_frontend::graph::{CopyOp, CopySource};
use rbuild_layer::{ApplyOptions, LayerStack};

use super::archive::open_archive;
use super::items::{
    exclude_entries, items_from_context, items_from_dir, items_from_layers, select_in_layers, split_parents,
    with_parents,
};
use super::writer::copy_items;
use super::{CopyError, SrcEntry, SrcItem, Writer};
use crate::context::{ContextError, EntryKind};
use crate::dockerignore::DockerIgnore;
use crate::download;
use crate::env::{ExecEnv, context_error, identity};
use crate::error::BuildError;
use crate::snapshot::{Lower, StepRoot, discard, view_of, view_of_lowers};
use rbuild_oci::timefmt::Timestamp;

/// What a COPY writes.
#[derive(Default)]
struct Sources {
    /// Items copied by Docker's rules (into a directory or onto the path).
    items: Vec<SrcItem>,
    /// Items that keep their path below the destination (`--parents`).
    placed: Vec<SrcItem>,
}

/// Runs a COPY or ADD on top of `lowers`; returns the root holding its changes.
pub fn execute_copy(env: &ExecEnv<'_>, c: &CopyOp, lowers: &[Lower]) -> Result<StepRoot, BuildError> {
    let root = env.opts.snapshotter.prepare_diff(env.store, "copy")?;
    let mut extracted: Vec<PathBuf> = Vec::new();
    let result = copy_into(env, c, lowers, &root.upper, &mut extracted);
    for d in extracted {
        let _ = rbuild_cache::store::remove_tree(&d);
    }
    match result {
        Ok(()) => Ok(root),
        Err(e) => {
            discard(root);
            Err(e)
        }
    }
}

/// One COPY or ADD while its sources are gathered: ADD may extract an
/// archive into the destination as soon as it finds one.
struct Gathering<'e, 'w> {
    env: &'e ExecEnv<'e>,
    c: &'e CopyOp,
    w: Writer<'w>,
    /// Scratch dirs of extracted archives, removed after the step.
    extracted: &'e mut Vec<PathBuf>,
    sources: Sources,
}

fn copy_into(
    env: &ExecEnv<'_>,
    c: &CopyOp,
    lowers: &[Lower],
    upper: &Path,
    extracted: &mut Vec<PathBuf>,
) -> Result<(), BuildError> {
    let w = writer_for(env, c, lowers, upper)?;
    let mut g = Gathering { env, c, w, extracted, sources: Sources::default() };
    match &c.source {
        CopySource::Context => g.context_sources()?,
        CopySource::Stage(_) | CopySource::Image(_) => layer_sources(env, c, &mut g.sources)?,
    }
    g.url_sources()?;
    let Gathering { mut w, mut sources, .. } = g;
    if !c.exclude.is_empty() {
        let excludes = DockerIgnore::parse(&c.exclude.join("\n")).map_err(|e| {
            BuildError::new(format!("invalid --exclude pattern: {e}"))
                .hint("patterns follow .dockerignore syntax")
        })?;
        for item in sources.items.iter_mut().chain(sources.placed.iter_mut()) {
            exclude_entries(item, &excludes);
        }
    }
    write_sources(c, &mut w, &sources)?;
    w.finish()?;
    Ok(())
}

/// A writer onto `upper` with the step's owner and `--chmod`.
fn writer_for<'a>(
    env: &ExecEnv<'_>,
    c: &CopyOp,
    lowers: &[Lower],
    upper: &'a Path,
) -> Result<Writer<'a>, BuildError> {
    // A linked copy is written onto nothing: its layer must not depend on
    // what is below (names for --chown are still looked up in the parent).
    let write_lowers: Vec<PathBuf> =
        if c.link { Vec::new() } else { lowers.iter().map(|l| l.abs.clone()).collect() };
    let mut w = Writer::new(upper, write_lowers, env.store.overlay_xattrs());
    if let Some(chown) = &c.chown {
        let who = identity(&view_of_lowers(env.store, lowers), chown)?;
        w.owner = Some((who.uid, who.gid));
    } else if matches!(c.source, CopySource::Context) {
        w.owner = Some((0, 0));
    }
    w.chmod = c.chmod.clone();
    Ok(w)
}

impl Gathering<'_, '_> {
    /// Context sources; ADD extracts a local archive into the destination
    /// right away instead of listing it.
    fn context_sources(&mut self) -> Result<(), BuildError> {
        let (env, c) = (self.env, self.c);
        for p in &c.paths {
            if c.parents {
                let placed = context_with_parents(env, &p.path).map_err(|e| context_error(e, p.span))?;
                self.sources.placed.extend(placed);
                continue;
            }
            let rels = env.ctx.select(&p.path).map_err(|e| context_error(e, p.span))?;
            for item in items_from_context(env.ctx, &rels) {
                let single_file = item.entries.len() == 1 && item.entries[0].kind == EntryKind::File;
                if c.extract_archives
                    && single_file
                    && self.extract(&item.entries[0].host_path, &item.name).map_err(|e| e.at(p.span))?
                {
                    continue;
                }
                self.sources.items.push(item);
            }
        }
        Ok(())
    }

    /// ADD of URLs: downloaded (or taken from the download cache), extracted
    /// with `--unpack`, else copied as a file.
    fn url_sources(&mut self) -> Result<(), BuildError> {
        let (env, c) = (self.env, self.c);
        for u in &c.urls {
            let got = download::fetch(env.store, env.opts.http.as_ref(), &u.path, c.checksum.as_deref())
                .map_err(|e| e.at(u.span))?;
            let name = download::file_name(&u.path);
            if c.unpack_urls && self.extract(&got.path, &name).map_err(|e| e.at(u.span))? {
                continue;
            }
            let mtime = got.modified.map_or_else(|| (Timestamp::now().secs, 0), |s| (s, 0));
            self.sources.items.push(SrcItem {
                name,
                entries: vec![SrcEntry {
                    rel: String::new(),
                    kind: EntryKind::File,
                    // Downloads are private to root unless --chmod says otherwise, as in Docker.
                    mode: 0o100600,
                    uid: 0,
                    gid: 0,
                    mtime,
                    host_path: got.path.clone(),
                    link_target: None,
                }],
            });
        }
        Ok(())
    }

    /// Extracts `archive` into the destination if it is one (ADD). Returns
    /// false when the file is not an archive and must be copied as it is.
    fn extract(&mut self, archive: &Path, name: &str) -> Result<bool, BuildError> {
        let Some(reader) = open_archive(archive)? else { return Ok(false) };
        let store = self.env.store;
        let dir = store.temp_dir("add")?;
        self.extracted.push(dir.clone());
        let out = dir.join("tree");
        fs::create_dir(&out)?;
        let opts =
            ApplyOptions { xattr_prefix: store.overlay_xattrs(), same_owner: true, skip_devices: true };
        rbuild_layer::apply_layer_tar(reader, &out, &opts).map_err(|e| {
            BuildError::caused_by(e).context(format!("extract {name}")).hint(
                "rbuild refuses archive entries that would land outside the destination; rebuild the archive with relative paths",
            )
        })?;
        let mut tree = items_from_dir(&out, name)?;
        // The archive's content merges into the destination; the destination
        // directory keeps its own metadata, and entries keep the archive's
        // owners unless --chown says otherwise.
        tree.entries.retain(|e| !e.rel.is_empty());
        let w = &mut self.w;
        if self.c.chown.is_some() {
            let (uid, gid) = w.owner.unwrap_or((0, 0));
            for e in &mut tree.entries {
                e.uid = uid;
                e.gid = gid;
            }
        }
        w.ensure_dir(&self.c.dest)?;
        let saved_owner = w.owner.take();
        w.write_item(&tree, &self.c.dest)?;
        w.owner = saved_owner;
        Ok(true)
    }
}

/// Sources in a stage's or image's filesystem (`--from`).
fn layer_sources(env: &ExecEnv<'_>, c: &CopyOp, out: &mut Sources) -> Result<(), BuildError> {
    let view = view_of(env.store, &env.source_layers(&c.source)?)?;
    for p in &c.paths {
        let at = |e: CopyError| BuildError::from(e).at(p.span);
        if c.parents {
            out.placed.extend(layer_with_parents(&view, &p.path).map_err(at)?);
        } else {
            let found = select_in_layers(&view, &p.path).map_err(at)?;
            out.items.extend(items_from_layers(&view, &found).map_err(at)?);
        }
    }
    Ok(())
}

/// Heredocs, then `--parents` items, then the rest by Docker's rules.
fn write_sources(c: &CopyOp, w: &mut Writer<'_>, sources: &Sources) -> Result<(), BuildError> {
    for (name, content) in &c.inline {
        let target = if c.dest_is_dir || c.dest.ends_with('/') {
            format!("{}/{name}", c.dest.trim_end_matches('/'))
        } else {
            c.dest.clone()
        };
        w.write_inline(&target, content.as_bytes(), 0o644)?;
    }
    if !sources.placed.is_empty() {
        w.ensure_dir(&c.dest)?;
        for item in &sources.placed {
            w.write_item(item, &c.dest)?;
        }
    }
    let items = &sources.items;
    if !items.is_empty() || (c.inline.is_empty() && sources.placed.is_empty()) {
        copy_items(w, items, &c.dest, c.dest_is_dir || items.len() > 1 && c.dest.ends_with('/'))?;
    }
    Ok(())
}

/// The directory prefixes of `rel` (`a/b/c` → `a`, `a/b`), shallowest first.
fn parent_prefixes(rel: &str) -> Vec<String> {
    let components: Vec<&str> = rel.split('/').collect();
    (1..components.len()).map(|n| components[..n].join("/")).collect()
}

/// `COPY --parents` from the context: each match below the pivot, with its
/// parent directories, placed at the same relative path in the destination.
fn context_with_parents(env: &ExecEnv<'_>, source: &str) -> Result<Vec<SrcItem>, ContextError> {
    let (pivot, rest) = split_parents(source);
    let pivot =
        crate::context::clean_relative(&pivot).ok_or_else(|| ContextError::Outside(source.to_string()))?;
    let pattern = if pivot.is_empty() { rest } else { format!("{pivot}/{rest}") };
    let mut out = Vec::new();
    for rel in env.ctx.select(&pattern)? {
        let below = rel.strip_prefix(pivot.as_str()).unwrap_or(&rel).trim_start_matches('/').to_string();
        let mut parents = Vec::new();
        for acc in parent_prefixes(&below) {
            let full = if pivot.is_empty() { acc.clone() } else { format!("{pivot}/{acc}") };
            if let Some(e) = env.ctx.entry(&full) {
                parents.push(SrcEntry {
                    rel: acc,
                    kind: EntryKind::Dir,
                    mode: e.mode,
                    uid: 0,
                    gid: 0,
                    mtime: env.ctx.presented_mtime(e.mtime),
                    host_path: env.ctx.root().join(&full),
                    link_target: None,
                });
            }
        }
        for item in items_from_context(env.ctx, std::slice::from_ref(&rel)) {
            out.push(with_parents(item, &below, parents.clone()));
        }
    }
    Ok(out)
}

/// `COPY --parents --from`: as [`context_with_parents`], in a stage's or
/// image's filesystem (owners kept).
fn layer_with_parents(view: &LayerStack, source: &str) -> Result<Vec<SrcItem>, CopyError> {
    let (pivot, rest) = split_parents(source);
    let pattern = if pivot.is_empty() { format!("/{rest}") } else { format!("{pivot}/{rest}") };
    let base = select_in_layers(view, if pivot.is_empty() { "/" } else { &pivot })?;
    let base = base.first().cloned().unwrap_or_else(|| "/".into());
    let mut out = Vec::new();
    for found in select_in_layers(view, &pattern)? {
        let rel = found
            .strip_prefix(base.trim_end_matches('/'))
            .unwrap_or(&found)
            .trim_start_matches('/')
            .to_string();
        let parents = layer_parents(view, &base, &rel)?;
        for item in items_from_layers(view, std::slice::from_ref(&found))? {
            out.push(with_parents(item, &rel, parents.clone()));
        }
    }
    Ok(out)
}

/// The directories between `base` and `rel` in a stage's filesystem, as entries.
fn layer_parents(view: &LayerStack, base: &str, rel: &str) -> Result<Vec<SrcEntry>, CopyError> {
    let mut out = Vec::new();
    for acc in parent_prefixes(rel) {
        let full = format!("{}/{acc}", base.trim_end_matches('/'));
        if let Some(f) = view.lookup(&full, true)? {
            out.push(SrcEntry {
                kind: EntryKind::Dir,
                ..SrcEntry::from_metadata(acc, &f.metadata, &f.real_path)
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parent_prefixes;

    #[test]
    fn parent_prefixes_are_shallowest_first() {
        assert_eq!(parent_prefixes("a/b/c"), vec!["a".to_string(), "a/b".to_string()]);
        assert!(parent_prefixes("file").is_empty());
    }
}
