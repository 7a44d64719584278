//! One COPY or ADD step, from its op to an upper dir holding its changes:
//! the writer set up with the step's owner and mode, its sources gathered
//! (context paths, `--from` layers, URLs, archives to extract, heredocs),
//! `--exclude` applied, then everything written by Docker's rules.

use std::fs;
use std::path::{Path, PathBuf};

use rbuild_cache::store::{CopyKey, KnownTar, LayerRef};
use rbuild_frontend::graph::{CopyOp, CopySource};
use rbuild_frontend::span::Span;
use rbuild_layer::{ApplyOptions, LayerStack};
use rbuild_oci::digest::Digest;

use super::archive::open_archive;
use super::items::{
    exclude_entries, items_from_context, items_from_dir, items_from_layers, parents_from_context,
    parents_from_layers, select_in_layers,
};
use super::prior::PriorLayer;
use super::upper::{DiskUpper, UpperTree};
use super::virtual_upper::VirtualUpper;
use super::writer::copy_items;
use super::{CopyError, SrcEntry, SrcItem, Writer};
use crate::context::EntryKind;
use crate::dockerignore::DockerIgnore;
use crate::download;
use crate::env::{ExecEnv, context_error, identity};
use crate::error::BuildError;
use crate::git;
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

/// What a COPY or ADD step produced.
pub enum Copied {
    /// The root holding its changes, to commit; with the step's
    /// description key when it has one, for the caller to remember the
    /// committed layer under (see [`stored_layer`]).
    ///
    /// `known` is the layer tar the changes make, when the description
    /// hashed it while the writer wrote (the commit need not walk them).
    Changes { root: StepRoot, memo_key: Option<CopyKey>, known: Option<KnownTar> },
    /// The layer its changes would make, already in the store: nothing
    /// was written.
    Stored(LayerRef),
}

/// Runs a COPY or ADD on top of `lowers`: returns the stored layer it
/// would make when the memo knows one (see [`stored_layer`]), else the
/// root holding its changes. `prior` is the layer this step made in an
/// earlier build, whose identical files are linked instead of copied
/// ([`super::upper::DiskUpper::reusing`]).
pub fn execute_copy(
    env: &ExecEnv<'_>,
    c: &CopyOp,
    lowers: &[Lower],
    prior: Option<&LayerRef>,
) -> Result<Copied, BuildError> {
    let mut prior = prior.map(|l| PriorLayer::new(l.fs_path()));
    let root = env.opts.snapshotter.prepare_diff(env.store, "copy")?;
    let (memo_key, described) = match stored_layer(env, c, lowers, &root.upper) {
        Ok(Described::Stored(layer)) => {
            discard(root);
            return Ok(Copied::Stored(layer));
        }
        Ok(Described::ToWrite(memo_key, described)) => (memo_key, described),
        Err(e) => {
            discard(root);
            return Err(e);
        }
    };
    let mut extracted: Vec<PathBuf> = Vec::new();
    let clamp = env.opts.source_date_epoch;
    // The described layer tar is hashed on another core while the writer
    // writes it; a description that cannot be hashed leaves the commit to
    // walk what was written.
    let (result, known) = std::thread::scope(|scope| {
        let hashing = described.as_ref().map(|tree| scope.spawn(move || tree.layer_tar(clamp)));
        // The files to write are known: the earlier layer's are checked on
        // all cores before the writer starts. (A `COPY --from` links its
        // sources instead.)
        if let Some(p) = prior.as_mut()
            && let Some(tree) = &described
            && c.source == CopySource::Context
        {
            p.check_ahead(tree.planned_files());
        }
        let result = copy_into(env, c, lowers, &root.upper, prior, &mut extracted);
        let known = hashing.and_then(|h| h.join().ok()).and_then(Result::ok).flatten();
        (result, known)
    });
    for d in extracted {
        let _ = rbuild_cache::store::remove_tree(&d);
    }
    match result {
        Ok(()) => Ok(Copied::Changes { root, memo_key, known }),
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
    prior: Option<PriorLayer>,
    extracted: &mut Vec<PathBuf>,
) -> Result<(), BuildError> {
    let w = writer_for(env, c, lowers, upper, prior)?;
    let mut g = Gathering { env, c, w, extracted, sources: Sources::default() };
    match &c.source {
        CopySource::Context => g.context_sources()?,
        CopySource::Stage(_) | CopySource::Image(_) => layer_sources(env, c, &mut g.sources)?,
    }
    g.url_sources()?;
    g.git_sources()?;
    let Gathering { mut w, mut sources, .. } = g;
    apply_excludes(c, &mut sources)?;
    write_sources(c, &mut w, &sources)?;
    w.finish()?;
    Ok(())
}

/// Drops the entries `--exclude` names from every item.
fn apply_excludes(c: &CopyOp, sources: &mut Sources) -> Result<(), BuildError> {
    if c.exclude.is_empty() {
        return Ok(());
    }
    let excludes = DockerIgnore::parse(&c.exclude.join("\n")).map_err(|e| {
        BuildError::new(format!("invalid --exclude pattern: {e}"))
            .hint("patterns follow .dockerignore syntax")
    })?;
    for item in sources.items.iter_mut().chain(sources.placed.iter_mut()) {
        exclude_entries(item, &excludes);
    }
    Ok(())
}

/// What [`stored_layer`] found out about a step before writing it.
enum Described {
    /// The memo names a layer the store holds: nothing to write.
    Stored(LayerRef),
    /// The step is to be written; with its description key when it has
    /// one, under which the committed layer is remembered, and the
    /// description itself when there is one (its layer tar is hashed
    /// while the writer writes).
    ToWrite(Option<CopyKey>, Option<VirtualUpper>),
}

/// The stored layer a COPY would make, found without writing it or reading
/// a source file: the step is written into a [`VirtualUpper`] (the same
/// writer, recording instead of writing), its description key is computed
/// from the entries that upper would give and what stands for each file's
/// content (the context's content keys from the stat cache; for a
/// `COPY --from`, the file's path in its stored layer), and the store's
/// COPY memo is asked which layer that key made before.
///
/// A miss is written for real, and the committed layer is remembered under
/// the key (by the caller, which commits). That is all a hit needs: any
/// layer this rbuild commits for a described COPY leaves its memo entry, so
/// hashing the described layer tar before writing (reading every source
/// file, 50 ms for 32 MB) would only find layers committed by an older
/// rbuild, which are simply written again once. Misses (a `--no-cache`
/// rebuild after a RUN that touched the destination's parent, an edited
/// file) are the common case: their description is hashed on another core
/// while the writer writes, in place of the commit's walk
/// ([`execute_copy`]).
///
/// `ToWrite(None)` when the step is not a plain copy (ADD's
/// archives, URLs and git repositories are written for real), when its
/// result depends on when it is written (a directory it creates keeps the
/// time of creation), or when a file's content key is not known.
fn stored_layer(
    env: &ExecEnv<'_>,
    c: &CopyOp,
    lowers: &[Lower],
    upper: &Path,
) -> Result<Described, BuildError> {
    // A copy of files from the context or a stage's or image's layers;
    // ADD's archives, URLs and git repositories are written for real.
    let plain_copy = c.urls.is_empty() && c.git.is_empty() && !c.extract_archives;
    // New nodes in the real upper would carry xattrs (an inherited default
    // ACL, a security label) when the fresh upper dir itself does.
    if !plain_copy || rbuild_layer::has_image_xattrs(upper).unwrap_or(true) {
        return Ok(Described::ToWrite(None, None));
    }
    let started = std::time::Instant::now();
    let description = (|| -> Result<(Option<CopyKey>, VirtualUpper), BuildError> {
        let mut sources = Sources::default();
        match &c.source {
            CopySource::Context => context_items(env, c, &mut sources, |item, _| Ok(Some(item)))?,
            CopySource::Stage(_) | CopySource::Image(_) => layer_sources(env, c, &mut sources)?,
        }
        apply_excludes(c, &mut sources)?;
        let lower_dirs = if c.link { Vec::new() } else { lowers.iter().map(|l| l.abs.clone()).collect() };
        let tree = VirtualUpper::new(LayerStack::new(lower_dirs, env.store.overlay_xattrs()));
        let mut w = Writer::onto(tree);
        set_owner_and_mode(env, c, lowers, &mut w)?;
        write_sources(c, &mut w, &sources)?;
        let content_key = |source: &Path| match c.source {
            CopySource::Context => context_content_key(env, source),
            CopySource::Stage(_) | CopySource::Image(_) => stored_content_key(env, source),
        };
        let tree = w.finish()?;
        Ok((tree.description_key(env.opts.source_date_epoch, content_key), tree))
    })();
    let (key, described) = match description {
        Ok((key, tree)) => (key, Some(tree)),
        // The real copy reports the same problem, or none if the
        // description was what failed.
        Err(e) => {
            tracing::debug!(error = %e, "COPY not described; writing it");
            (None, None)
        }
    };
    let remembered = key.and_then(|k| env.store.remembered_copy(&k));
    let stored = match remembered {
        Some(diff_id) => env.store.layer(&diff_id)?,
        None => None,
    };
    // On a miss this is what describing cost on top of the copy.
    tracing::debug!(elapsed = ?started.elapsed(), key = ?key.map(|k| k.hex()), stored = ?stored.as_ref().map(|l| l.diff_id()), "described a COPY");
    Ok(match stored {
        Some(layer) => Described::Stored(layer),
        None => Described::ToWrite(key, described),
    })
}

/// A context file's content key and size, from the stat cache (the step's
/// cache key asked for it already), by the host path the writer reads it
/// from: `None` for a path outside the context or a file the context
/// cannot vouch for.
fn context_content_key(env: &ExecEnv<'_>, source: &Path) -> Option<(Digest, u64)> {
    let rel = source.strip_prefix(env.ctx.root()).ok()?.to_str()?;
    let entry = env.ctx.entry(rel)?;
    if entry.kind != EntryKind::File {
        return None;
    }
    Some((env.ctx.file_digest(rel).ok()?, entry.size))
}

/// What stands for the content of a file of a stored layer: its path in the
/// store. A layer's snapshot never changes and its directory is named by
/// its diffID, so the path names the bytes (a `COPY --from` of an unchanged
/// stage is then described without reading a file).
fn stored_content_key(env: &ExecEnv<'_>, source: &Path) -> Option<(Digest, u64)> {
    let below = source.strip_prefix(env.store.root().join("layers")).ok()?;
    let meta = std::fs::symlink_metadata(source).ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut named = b"rbuild stored file\0".to_vec();
    named.extend_from_slice(below.as_os_str().as_encoded_bytes());
    Some((Digest::of(&named), meta.len()))
}

/// A writer onto `upper` with the step's owner and `--chmod`.
fn writer_for<'a>(
    env: &ExecEnv<'_>,
    c: &CopyOp,
    lowers: &[Lower],
    upper: &'a Path,
    prior: Option<PriorLayer>,
) -> Result<Writer<'a>, BuildError> {
    // A linked copy is written onto nothing: its layer must not depend on
    // what is below (names for --chown are still looked up in the parent).
    let write_lowers: Vec<PathBuf> =
        if c.link { Vec::new() } else { lowers.iter().map(|l| l.abs.clone()).collect() };
    let tree = DiskUpper::new(upper, write_lowers, env.store.overlay_xattrs()).reusing(prior);
    let mut w = Writer::onto(tree);
    set_owner_and_mode(env, c, lowers, &mut w)?;
    Ok(w)
}

/// The step's `--chown` (root for context files without one) and `--chmod`.
fn set_owner_and_mode<T: UpperTree>(
    env: &ExecEnv<'_>,
    c: &CopyOp,
    lowers: &[Lower],
    w: &mut Writer<'_, T>,
) -> Result<(), BuildError> {
    if let Some(chown) = &c.chown {
        let who = identity(&view_of_lowers(env.store, lowers), chown)?;
        w.owner = Some((who.uid, who.gid));
    } else if matches!(c.source, CopySource::Context) {
        w.owner = Some((0, 0));
    }
    w.chmod = c.chmod.clone();
    Ok(())
}

impl Gathering<'_, '_> {
    /// Context sources; ADD extracts a local archive into the destination
    /// right away instead of listing it.
    fn context_sources(&mut self) -> Result<(), BuildError> {
        let mut sources = std::mem::take(&mut self.sources);
        let listed =
            context_items(self.env, self.c, &mut sources, |item, span| self.unless_extracted(item, span));
        self.sources = sources;
        listed
    }

    /// `item`, unless it is a local archive ADD extracts (then `None`).
    fn unless_extracted(&mut self, item: SrcItem, span: Span) -> Result<Option<SrcItem>, BuildError> {
        let single_file = item.entries.len() == 1
            && item.entries[0].kind == EntryKind::File
            && !item.entries[0].host_path.as_os_str().is_empty();
        if self.c.extract_archives
            && single_file
            && self.extract(&item.entries[0].host_path, &item.name).map_err(|e| e.at(span))?
        {
            return Ok(None);
        }
        Ok(Some(item))
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
                    stored: false,
                }],
            });
        }
        Ok(())
    }

    /// ADD of git repositories: the commit the ref names is checked out
    /// (with `.git` only under `--keep-git-dir`) and its files, or its
    /// subdirectory's, are merged into the destination, owned by root
    /// unless `--chown` says otherwise. Files keep the times the checkout
    /// gave them, as in BuildKit, clamped to `SOURCE_DATE_EPOCH` as files
    /// from the context are.
    fn git_sources(&mut self) -> Result<(), BuildError> {
        let (env, c) = (self.env, self.c);
        for g in &c.git {
            let commit = git::resolve(env, g, c.checksum.as_deref())?;
            let scratch = env.store.temp_dir("git")?;
            self.extracted.push(scratch.clone());
            let tree = git::checkout(env, g, &commit, c.keep_git_dir, &scratch)?;
            let mut item = items_from_dir(&tree, "").map_err(|e| BuildError::from(e).at(g.span))?;
            item.entries.retain(|e| !e.rel.is_empty());
            let (uid, gid) = self.w.owner.unwrap_or((0, 0));
            for e in &mut item.entries {
                e.uid = uid;
                e.gid = gid;
                if let Some(epoch) = env.opts.source_date_epoch
                    && e.mtime.0 > epoch
                {
                    e.mtime = (epoch, 0);
                }
            }
            self.w.ensure_dir(&c.dest)?;
            self.w.write_item(&item, &c.dest)?;
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

/// The context's items for the step's paths, in order: `--parents` ones
/// placed below the destination, the others passed through `keep` (which
/// may consume one, as ADD does with an archive) and listed to copy.
fn context_items(
    env: &ExecEnv<'_>,
    c: &CopyOp,
    out: &mut Sources,
    mut keep: impl FnMut(SrcItem, Span) -> Result<Option<SrcItem>, BuildError>,
) -> Result<(), BuildError> {
    for p in &c.paths {
        if c.parents {
            let placed = parents_from_context(env.ctx, &p.path).map_err(|e| context_error(e, p.span))?;
            out.placed.extend(placed);
            continue;
        }
        for (name, rel) in env.ctx.select_named(&p.path).map_err(|e| context_error(e, p.span))? {
            let Some(mut item) = items_from_context(env.ctx, std::slice::from_ref(&rel)).pop() else {
                continue;
            };
            item.name = name;
            if let Some(item) = keep(item, p.span)? {
                out.items.push(item);
            }
        }
    }
    Ok(())
}

/// Sources in a stage's or image's filesystem (`--from`).
fn layer_sources(env: &ExecEnv<'_>, c: &CopyOp, out: &mut Sources) -> Result<(), BuildError> {
    let view = view_of(env.store, &env.source_layers(&c.source)?)?;
    for p in &c.paths {
        let at = |e: CopyError| BuildError::from(e).at(p.span);
        if c.parents {
            out.placed.extend(parents_from_layers(&view, &p.path).map_err(at)?);
        } else {
            let found = select_in_layers(&view, &p.path).map_err(at)?;
            out.items.extend(items_from_layers(&view, &found).map_err(at)?);
        }
    }
    Ok(())
}

/// Heredocs, then `--parents` items, then the rest by Docker's rules.
fn write_sources<T: UpperTree>(
    c: &CopyOp,
    w: &mut Writer<'_, T>,
    sources: &Sources,
) -> Result<(), BuildError> {
    for (name, content) in &c.inline {
        let target = if c.dest_is_dir || c.dest.ends_with('/') {
            format!("{}/{name}", c.dest.trim_end_matches('/'))
        } else {
            c.dest.clone()
        };
        w.write_inline(&target, content.as_bytes(), 0o644)?;
    }
    if c.parents {
        // The destination exists afterwards even when the patterns matched
        // nothing, as in BuildKit (the pivot is copied, filtered).
        w.ensure_dir(&c.dest)?;
        for item in &sources.placed {
            w.write_item(item, &c.dest)?;
        }
    }
    copy_items(w, &sources.items, &c.dest, c.dest_is_dir)?;
    Ok(())
}
