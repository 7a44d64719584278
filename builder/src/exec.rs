//! What each filesystem step reads (its cache key) and does (its
//! execution): RUN in the sandbox, COPY/ADD through the copy writer,
//! WORKDIR as a mkdir.
//!
//! `COPY --link` / `ADD --link` build their layer on an empty lower, like
//! BuildKit's MergeOp: the key leaves the parent out (the same files copied
//! onto any base give the same layer), and [`chain_key`] ties the result
//! back into the stage's chain.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use rbuild_cache::Store;
use rbuild_cache::index::KeyInput;
use rbuild_frontend::graph::{
    CopyOp, CopySource, FileMode, Mount, MountSource, Network, Op, RunOp, Stage, Step, StepGraph,
};
use rbuild_layer::{ApplyOptions, LayerStack};
use rbuild_oci::digest::Digest;

use crate::context::{BuildContext, ContextError, EntryKind};
use crate::copy::{self, SrcEntry, SrcItem, Writer};
use crate::dockerignore::DockerIgnore;
use crate::download;
use crate::error::BuildError;
use crate::keys::KeyBuilder;
use crate::progress::{Event, Progress, StepId};
use crate::run_mounts;
use crate::sandbox::{self, NetMode, RunRequest};
use crate::solve::{BaseImages, BuildOptions, Lower, StageResult, view_of};
use crate::users;

/// What steps may consult while keyed and executed.
pub struct ExecEnv<'a> {
    pub store: &'a Store,
    pub ctx: &'a BuildContext,
    pub graph: &'a StepGraph,
    pub stage_results: &'a dyn Fn(usize) -> Result<Arc<StageResult>, BuildError>,
    pub bases: &'a BaseImages,
    pub opts: &'a BuildOptions,
}

/// A step's scratch dir and the upper dir in it that holds its changes.
pub struct UpperDirs {
    pub upper: PathBuf,
    scratch: PathBuf,
}

impl UpperDirs {
    pub fn cleanup(self) {
        let _ = rbuild_cache::store::remove_tree(&self.scratch);
    }
}

fn context_error(e: ContextError, span: rbuild_frontend::span::Span) -> BuildError {
    let hint = match &e {
        ContextError::Outside(_) => {
            "COPY and ADD can only read files inside the build context; move the file into the context directory"
        }
        ContextError::NotFound(_) | ContextError::NoMatch(_) => {
            "check the path is relative to the context directory and not excluded by .dockerignore"
        }
        ContextError::Pattern(..) => {
            "wildcards follow Go's filepath.Match: *, ?, [a-z], [^a-z], \\ to escape"
        }
        _ => "check the build context",
    };
    BuildError::new(crate::error::chain(&e)).at(span).hint(hint)
}

impl ExecEnv<'_> {
    pub(crate) fn image_layers(&self, reference: &str) -> Result<Vec<Digest>, BuildError> {
        let id = self
            .bases
            .get(reference)
            .ok_or_else(|| BuildError::new(format!("image {reference} was not resolved")))?;
        Ok(self.store.image_config(id)?.1.rootfs.diff_ids)
    }

    /// Layers of the filesystem a `--from` names.
    fn source_layers(&self, source: &CopySource) -> Result<Vec<Digest>, BuildError> {
        match source {
            CopySource::Stage(i) => Ok((self.stage_results)(*i)?.layers.clone()),
            CopySource::Image(r) => self.image_layers(r),
            CopySource::Context => Ok(Vec::new()),
        }
    }
}

/// True for a copy whose layer does not depend on its parent. A `--chown`
/// by name needs the parent's /etc/passwd, which ties it to the parent.
fn independent_link(c: &CopyOp) -> bool {
    c.link && c.chown.as_deref().is_none_or(|o| o.split(':').all(|p| p.parse::<u32>().is_ok()))
}

/// The key the stage's chain carries on after `step` produced `key`: the
/// step's own key, except after an independent `--link` copy, whose key
/// leaves the parent out; then the chain combines both.
pub fn chain_key(step: &Step, parent: &Digest, key: &Digest) -> Digest {
    match &step.op {
        Op::Copy(c) if independent_link(c) => {
            let mut k = KeyBuilder::new("link-chain");
            k.parent(parent).input("link", "", &key.to_string());
            k.finish().0
        }
        _ => *key,
    }
}

/// The cache key of a filesystem step and the inputs it was made from.
pub fn step_key(
    env: &ExecEnv<'_>,
    stage: &Stage,
    step: &Step,
    parent: &Digest,
) -> Result<(Digest, Vec<KeyInput>), BuildError> {
    let _ = stage;
    match &step.op {
        Op::Run(run) => {
            let mut k = KeyBuilder::new("run");
            // Proxy variables stay out on purpose: a different proxy gives
            // the same result (and Docker leaves them out too).
            k.parent(parent)
                .list("argv", &run.argv)
                .list("env", &run.env)
                .field("user", &run.user)
                .field("workdir", &run.workdir)
                .field("network", &format!("{:?}", run.network));
            if let Some(script) = &run.script {
                k.input("script", &script.name, &Digest::of(script.content.as_bytes()).to_string());
            }
            for m in &run.mounts {
                mount_key(env, m, &mut k)?;
            }
            Ok(k.finish())
        }
        Op::Copy(c) => copy_key(env, c, parent),
        Op::Mkdir(m) => {
            let mut k = KeyBuilder::new("mkdir");
            k.parent(parent).field("path", &m.path).field("user", &m.user);
            Ok(k.finish())
        }
        Op::Meta => Err(BuildError::new("metadata steps have no cache key")),
    }
}

fn mount_key(env: &ExecEnv<'_>, m: &Mount, k: &mut KeyBuilder) -> Result<(), BuildError> {
    match m {
        // Cache mounts never change a step's result by design (BuildKit
        // leaves them out of the key too); secrets by id only, never value.
        Mount::Cache { target, .. } => k.field("mount-cache", target),
        Mount::Tmpfs { target, .. } => k.field("mount-tmpfs", target),
        Mount::Secret { id, target, env: var, .. } => k.field(
            "mount-secret",
            &format!("{id}:{}:{}", target.clone().unwrap_or_default(), var.clone().unwrap_or_default()),
        ),
        Mount::Ssh { target, .. } => k.field("mount-ssh", target),
        Mount::Bind { target, from, source, readwrite } => {
            k.field("mount-bind", &format!("{target}:{source}:{readwrite}"));
            match from {
                MountSource::Context => {
                    let rel = crate::context::clean_relative(source).unwrap_or_default();
                    let d = env.ctx.tree_digest(&rel).map_err(|e| context_error(e, Default::default()))?;
                    k.input("context", &rel, &d.to_string())
                }
                MountSource::Stage(i) => {
                    k.input("stage", &i.to_string(), &(env.stage_results)(*i)?.key.to_string())
                }
                MountSource::Image(r) => {
                    let id = env.bases.get(r).map(|d| d.to_string()).unwrap_or_default();
                    k.input("image", r, &id)
                }
            }
        }
    };
    Ok(())
}

fn chmod_text(m: &Option<FileMode>) -> String {
    match m {
        None => String::new(),
        Some(FileMode::Octal(m)) => format!("{m:o}"),
        Some(FileMode::Symbolic(s)) => s.clone(),
    }
}

fn copy_key(env: &ExecEnv<'_>, c: &CopyOp, parent: &Digest) -> Result<(Digest, Vec<KeyInput>), BuildError> {
    let mut k = KeyBuilder::new(if c.extract_archives { "add" } else { "copy" });
    if !independent_link(c) {
        k.parent(parent);
    }
    k.field("dest", &c.dest)
        .field("dest_is_dir", &c.dest_is_dir.to_string())
        .field("chown", c.chown.as_deref().unwrap_or(""))
        .field("chmod", &chmod_text(&c.chmod))
        .field("user", &c.user)
        .list("exclude", &c.exclude)
        .field("flags", &format!("link={} parents={} unpack-urls={}", c.link, c.parents, c.unpack_urls));
    for (name, content) in &c.inline {
        k.input("inline", name, &Digest::of(content.as_bytes()).to_string());
    }
    for u in &c.urls {
        // With a checksum the content is known without asking; without one
        // the download (conditional, cached) decides the key.
        let content = match &c.checksum {
            Some(sum) => sum.clone(),
            None => download::fetch(env.store, &u.path, None).map_err(|e| e.at(u.span))?.digest.to_string(),
        };
        k.input("url", &u.path, &content);
    }
    match &c.source {
        CopySource::Context => {
            for p in &c.paths {
                let pattern = if c.parents { parents_pattern(&p.path) } else { p.path.clone() };
                let rels = env.ctx.select(&pattern).map_err(|e| context_error(e, p.span))?;
                for rel in rels {
                    let d = env.ctx.tree_digest(&rel).map_err(|e| context_error(e, p.span))?;
                    k.input("file", if rel.is_empty() { "." } else { &rel }, &d.to_string());
                }
            }
        }
        CopySource::Stage(i) => {
            let key = (env.stage_results)(*i)?.key;
            k.input("stage", &env.graph.stages[*i].label, &key.to_string());
            k.list("paths", &c.paths.iter().map(|p| p.path.clone()).collect::<Vec<_>>());
        }
        CopySource::Image(r) => {
            let id = env.bases.get(r).map(|d| d.to_string()).unwrap_or_default();
            k.input("image", r, &id);
            k.list("paths", &c.paths.iter().map(|p| p.path.clone()).collect::<Vec<_>>());
        }
    }
    Ok(k.finish())
}

/// `--parents` source `a/./b/c` selects `a/b/c`.
fn parents_pattern(source: &str) -> String {
    let (pivot, rest) = copy::split_parents(source);
    if pivot.is_empty() { rest } else { format!("{pivot}/{rest}") }
}

/// Runs a filesystem step on top of `lowers` (top first). Returns the
/// upper dir with its changes, or None when nothing can have changed.
pub fn execute(
    env: &ExecEnv<'_>,
    step: &Step,
    lowers: &[Lower],
    id: &StepId,
    progress: &dyn Progress,
) -> Result<Option<UpperDirs>, BuildError> {
    match &step.op {
        Op::Run(run) => execute_run(env, run, lowers, id, progress).map(Some),
        Op::Copy(c) => execute_copy(env, c, lowers).map(Some),
        Op::Mkdir(m) => {
            let view = stack(env.store, lowers);
            if view.lookup(&m.path, true)?.is_some_and(|f| f.metadata.is_dir()) {
                return Ok(None);
            }
            let dirs = new_upper(env.store, "workdir")?;
            let mut w = Writer::new(
                &dirs.upper,
                lowers.iter().map(|l| l.abs.clone()).collect(),
                env.store.overlay_xattrs(),
            );
            if !m.user.is_empty() {
                let who = identity(&view, &m.user)?;
                w.owner = Some((who.uid, who.gid));
            }
            w.ensure_dir(&m.path)?;
            w.finish()?;
            Ok(Some(dirs))
        }
        Op::Meta => Ok(None),
    }
}

fn stack(store: &Store, lowers: &[Lower]) -> LayerStack {
    LayerStack::new(lowers.iter().map(|l| l.abs.clone()).collect(), store.overlay_xattrs())
}

fn new_upper(store: &Store, label: &str) -> Result<UpperDirs, BuildError> {
    let scratch = store.temp_dir(label)?;
    let upper = scratch.join("upper");
    fs::create_dir(&upper)?;
    Ok(UpperDirs { upper, scratch })
}

/// Resolves USER against the image's own /etc/passwd and /etc/group.
fn identity(view: &LayerStack, user: &str) -> Result<users::Identity, BuildError> {
    let read = |p: &str| -> Result<Option<String>, BuildError> {
        Ok(match view.read_file(p) {
            Ok(Some(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
            Ok(None) | Err(_) => None,
        })
    };
    let passwd = read("/etc/passwd")?;
    let group = read("/etc/group")?;
    users::resolve(user, passwd.as_deref(), group.as_deref()).map_err(|e| {
        BuildError::new(e).hint("create the user in an earlier RUN (e.g. adduser) or use a numeric uid:gid")
    })
}

fn execute_run(
    env: &ExecEnv<'_>,
    run: &RunOp,
    lowers: &[Lower],
    id: &StepId,
    progress: &dyn Progress,
) -> Result<UpperDirs, BuildError> {
    let view = stack(env.store, lowers);
    let who = identity(&view, &run.user)?;
    let mut vars = run.env.clone();
    if !vars.iter().any(|v| v.starts_with("HOME=")) {
        vars.push(format!("HOME={}", if who.home.is_empty() { "/" } else { &who.home }));
    }
    vars.extend(run.proxy_env.iter().cloned());
    let prepared = run_mounts::prepare(env, run)?;
    vars.extend(prepared.env.iter().cloned());
    let secrets = prepared.secret_values.clone();
    let req = RunRequest {
        lowers: lowers.iter().map(|l| l.rel.clone()).collect(),
        argv: run.argv.clone(),
        env: vars,
        cwd: run.workdir.clone(),
        uid: who.uid,
        gid: who.gid,
        groups: who.groups.clone(),
        network: match run.network {
            Network::None => NetMode::Isolated,
            Network::Default | Network::Host => NetMode::Shared,
        },
        mounts: prepared.mounts.clone(),
        stdin: None,
    };
    let outcome = sandbox::run(env.store, &env.opts.sandbox_exe, &req, &mut |line| {
        // A secret's value never reaches the progress output.
        let line = if secrets.is_empty() { line.to_string() } else { run_mounts::mask(line, &secrets) };
        progress.event(Event::Log { step: id.clone(), line });
    });
    drop(prepared);
    let outcome = outcome?;
    let dirs = UpperDirs { upper: outcome.upper, scratch: outcome.scratch };
    if outcome.exit_code != 0 {
        dirs.cleanup();
        let shown = shell_words(&run.argv);
        let mut e = BuildError::new(format!(
            "process \"{shown}\" did not complete successfully: exit code: {}",
            outcome.exit_code
        ));
        e.exit_code = Some(outcome.exit_code);
        e.tail = outcome.tail.iter().map(|l| run_mounts::mask(l, &secrets)).collect();
        return Err(e);
    }
    Ok(dirs)
}

fn shell_words(argv: &[String]) -> String {
    argv.join(" ")
}

fn execute_copy(env: &ExecEnv<'_>, c: &CopyOp, lowers: &[Lower]) -> Result<UpperDirs, BuildError> {
    let dirs = new_upper(env.store, "copy")?;
    let mut extracted: Vec<PathBuf> = Vec::new();
    let result = copy_into(env, c, lowers, &dirs, &mut extracted);
    for d in extracted {
        let _ = rbuild_cache::store::remove_tree(&d);
    }
    match result {
        Ok(()) => Ok(dirs),
        Err(e) => {
            dirs.cleanup();
            Err(e)
        }
    }
}

fn copy_into(
    env: &ExecEnv<'_>,
    c: &CopyOp,
    lowers: &[Lower],
    dirs: &UpperDirs,
    extracted: &mut Vec<PathBuf>,
) -> Result<(), BuildError> {
    // A linked copy is written onto nothing: its layer must not depend on
    // what is below (names for --chown are still looked up in the parent).
    let write_lowers: Vec<PathBuf> =
        if c.link { Vec::new() } else { lowers.iter().map(|l| l.abs.clone()).collect() };
    let mut w = Writer::new(&dirs.upper, write_lowers, env.store.overlay_xattrs());
    if let Some(chown) = &c.chown {
        let view = stack(env.store, lowers);
        let who = identity(&view, chown)?;
        w.owner = Some((who.uid, who.gid));
    } else if matches!(c.source, CopySource::Context) {
        w.owner = Some((0, 0));
    }
    w.chmod = c.chmod.clone();
    let excludes = if c.exclude.is_empty() {
        None
    } else {
        Some(DockerIgnore::parse(&c.exclude.join("\n")).map_err(|e| {
            BuildError::new(format!("invalid --exclude pattern: {e}"))
                .hint("patterns follow .dockerignore syntax")
        })?)
    };
    let mut items: Vec<SrcItem> = Vec::new();
    // Items that keep their source path below the destination (--parents).
    let mut placed: Vec<SrcItem> = Vec::new();
    match &c.source {
        CopySource::Context => {
            for p in &c.paths {
                if c.parents {
                    placed.extend(context_with_parents(env, &p.path).map_err(|e| context_error(e, p.span))?);
                    continue;
                }
                let rels = env.ctx.select(&p.path).map_err(|e| context_error(e, p.span))?;
                for item in copy::items_from_context(env.ctx, &rels) {
                    let single_file = item.entries.len() == 1 && item.entries[0].kind == EntryKind::File;
                    if c.extract_archives
                        && single_file
                        && extract(env, c, &item.entries[0].host_path, &item.name, &mut w, extracted)
                            .map_err(|e| e.at(p.span))?
                    {
                        continue;
                    }
                    items.push(item);
                }
            }
        }
        CopySource::Stage(_) | CopySource::Image(_) => {
            let layers = env.source_layers(&c.source)?;
            let view = view_of(env.store, &layers)?;
            for p in &c.paths {
                let at = |e: copy::CopyError| BuildError::new(crate::error::chain(&e)).at(p.span);
                if c.parents {
                    let (pivot, rest) = copy::split_parents(&p.path);
                    let pattern =
                        if pivot.is_empty() { format!("/{rest}") } else { format!("{pivot}/{rest}") };
                    let base = copy::select_in_layers(&view, if pivot.is_empty() { "/" } else { &pivot })
                        .map_err(at)?;
                    let base = base.first().cloned().unwrap_or_else(|| "/".into());
                    for found in copy::select_in_layers(&view, &pattern).map_err(at)? {
                        let rel = found
                            .strip_prefix(base.trim_end_matches('/'))
                            .unwrap_or(&found)
                            .trim_start_matches('/')
                            .to_string();
                        let item =
                            copy::items_from_layers(&view, std::slice::from_ref(&found)).map_err(at)?;
                        let parents = layer_parents(&view, &base, &rel).map_err(at)?;
                        for i in item {
                            placed.push(copy::with_parents(i, &rel, parents.clone()));
                        }
                    }
                    continue;
                }
                let found = copy::select_in_layers(&view, &p.path).map_err(at)?;
                items.extend(copy::items_from_layers(&view, &found).map_err(at)?);
            }
        }
    }
    for u in &c.urls {
        let got = download::fetch(env.store, &u.path, c.checksum.as_deref()).map_err(|e| e.at(u.span))?;
        let name = download::file_name(&u.path);
        if c.unpack_urls && extract(env, c, &got.path, &name, &mut w, extracted).map_err(|e| e.at(u.span))? {
            continue;
        }
        let mtime = got.modified.map_or_else(now, |s| (s, 0));
        items.push(SrcItem {
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
    if let Some(ex) = &excludes {
        for item in items.iter_mut().chain(placed.iter_mut()) {
            copy::exclude_entries(item, ex);
        }
    }
    for (name, content) in &c.inline {
        let target = if c.dest_is_dir || c.dest.ends_with('/') {
            format!("{}/{name}", c.dest.trim_end_matches('/'))
        } else {
            c.dest.clone()
        };
        w.write_inline(&target, content.as_bytes(), 0o644)?;
    }
    if !placed.is_empty() {
        w.ensure_dir(&c.dest)?;
        for item in &placed {
            w.write_item(item, &c.dest)?;
        }
    }
    if !items.is_empty() || (c.inline.is_empty() && placed.is_empty()) {
        copy::copy_items(&mut w, &items, &c.dest, c.dest_is_dir || items.len() > 1 && c.dest.ends_with('/'))?;
    }
    w.finish()?;
    Ok(())
}

/// Extracts `archive` into the destination if it is one (ADD). Returns
/// false when the file is not an archive and must be copied as it is.
fn extract(
    env: &ExecEnv<'_>,
    c: &CopyOp,
    archive: &std::path::Path,
    name: &str,
    w: &mut Writer<'_>,
    extracted: &mut Vec<PathBuf>,
) -> Result<bool, BuildError> {
    let Some(reader) = copy::open_archive(archive)? else { return Ok(false) };
    let dir = env.store.temp_dir("add")?;
    extracted.push(dir.clone());
    let out = dir.join("tree");
    fs::create_dir(&out)?;
    let opts =
        ApplyOptions { xattr_prefix: env.store.overlay_xattrs(), same_owner: true, skip_devices: true };
    rbuild_layer::apply_layer_tar(reader, &out, &opts).map_err(|e| {
        BuildError::new(format!("extract {name}: {}", crate::error::chain(&e))).hint(
            "rbuild refuses archive entries that would land outside the destination; rebuild the archive with relative paths",
        )
    })?;
    let mut tree = copy::items_from_dir(&out, name)?;
    // The archive's content merges into the destination; the destination
    // directory keeps its own metadata, and entries keep the archive's
    // owners unless --chown says otherwise.
    tree.entries.retain(|e| !e.rel.is_empty());
    if c.chown.is_some() {
        let (uid, gid) = w.owner.unwrap_or((0, 0));
        for e in &mut tree.entries {
            e.uid = uid;
            e.gid = gid;
        }
    }
    w.ensure_dir(&c.dest)?;
    let saved_owner = w.owner.take();
    w.write_item(&tree, &c.dest)?;
    w.owner = saved_owner;
    Ok(true)
}

/// `COPY --parents` from the context: each match below the pivot, with its
/// parent directories, placed at the same relative path in the destination.
fn context_with_parents(env: &ExecEnv<'_>, source: &str) -> Result<Vec<SrcItem>, ContextError> {
    let (pivot, rest) = copy::split_parents(source);
    let pivot =
        crate::context::clean_relative(&pivot).ok_or_else(|| ContextError::Outside(source.to_string()))?;
    let pattern = if pivot.is_empty() { rest } else { format!("{pivot}/{rest}") };
    let mut out = Vec::new();
    for rel in env.ctx.select(&pattern)? {
        let below = rel.strip_prefix(pivot.as_str()).unwrap_or(&rel).trim_start_matches('/').to_string();
        let mut parents = Vec::new();
        let mut acc = String::new();
        let components: Vec<&str> = below.split('/').collect();
        for part in &components[..components.len().saturating_sub(1)] {
            acc = if acc.is_empty() { part.to_string() } else { format!("{acc}/{part}") };
            let full = if pivot.is_empty() { acc.clone() } else { format!("{pivot}/{acc}") };
            if let Some(e) = env.ctx.entry(&full) {
                parents.push(SrcEntry {
                    rel: acc.clone(),
                    kind: EntryKind::Dir,
                    mode: e.mode,
                    uid: 0,
                    gid: 0,
                    mtime: e.mtime,
                    host_path: env.ctx.root().join(&full),
                    link_target: None,
                });
            }
        }
        for item in copy::items_from_context(env.ctx, std::slice::from_ref(&rel)) {
            out.push(copy::with_parents(item, &below, parents.clone()));
        }
    }
    Ok(out)
}

/// The directories between `base` and `rel` in a stage's filesystem, as entries.
fn layer_parents(view: &LayerStack, base: &str, rel: &str) -> Result<Vec<SrcEntry>, copy::CopyError> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut acc = String::new();
    let components: Vec<&str> = rel.split('/').collect();
    for part in &components[..components.len().saturating_sub(1)] {
        acc = if acc.is_empty() { part.to_string() } else { format!("{acc}/{part}") };
        let full = format!("{}/{acc}", base.trim_end_matches('/'));
        if let Some(f) = view.lookup(&full, true)? {
            let m = &f.metadata;
            out.push(SrcEntry {
                rel: acc.clone(),
                kind: EntryKind::Dir,
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                mtime: (m.mtime(), m.mtime_nsec()),
                host_path: f.real_path.clone(),
                link_target: None,
            });
        }
    }
    Ok(out)
}

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, 0)
}
