//! What each filesystem step reads (its cache key) and does (its
//! execution): RUN in the sandbox, COPY/ADD through the copy writer,
//! WORKDIR as a mkdir.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use rbuild_cache::Store;
use rbuild_cache::digest::Digest;
use rbuild_cache::index::KeyInput;
use rbuild_cache::layer::{ApplyOptions, LayerStack};
use rbuild_frontend::graph::{
    CopyOp, CopySource, Mount, MountSource, Network, Op, RunOp, Stage, Step, StepGraph,
};

use crate::context::{BuildContext, ContextError};
use crate::copy::{self, Writer};
use crate::error::BuildError;
use crate::keys::KeyBuilder;
use crate::progress::{Event, Progress, StepId};
use crate::sandbox::{self, ExtraMount, NetMode, RunRequest};
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
        _ => "check the build context",
    };
    BuildError::new(crate::error::chain(&e)).at(span).hint(hint)
}

impl ExecEnv<'_> {
    fn image_layers(&self, reference: &str) -> Result<Vec<Digest>, BuildError> {
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
            CopySource::Context | CopySource::Url => Ok(Vec::new()),
        }
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
            k.parent(parent)
                .list("argv", &run.argv)
                .list("env", &run.env)
                .field("user", &run.user)
                .field("workdir", &run.workdir)
                .field("network", &format!("{:?}", run.network));
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

fn copy_key(env: &ExecEnv<'_>, c: &CopyOp, parent: &Digest) -> Result<(Digest, Vec<KeyInput>), BuildError> {
    let mut k = KeyBuilder::new(if c.extract_archives { "add" } else { "copy" });
    k.parent(parent)
        .field("dest", &c.dest)
        .field("dest_is_dir", &c.dest_is_dir.to_string())
        .field("chown", c.chown.as_deref().unwrap_or(""))
        .field("chmod", &c.chmod.map(|m| format!("{m:o}")).unwrap_or_default())
        .field("user", &c.user)
        .list("exclude", &c.exclude)
        .field("flags", &format!("link={} parents={}", c.link, c.parents));
    for (name, content) in &c.inline {
        k.input("inline", name, &Digest::of(content.as_bytes()).to_string());
    }
    match &c.source {
        CopySource::Context => {
            for p in &c.paths {
                let rels = env.ctx.select(&p.path).map_err(|e| context_error(e, p.span))?;
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
        CopySource::Url => {
            return Err(BuildError::new("ADD of a URL is not supported yet")
                .hint("download the file into the build context and ADD it from there"));
        }
    }
    Ok(k.finish())
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
    let mut scratch_for_mounts: Vec<PathBuf> = Vec::new();
    let mut mounts = Vec::new();
    for m in &run.mounts {
        mounts.push(translate_mount(env, m, &mut vars, &mut scratch_for_mounts)?);
    }
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
        mounts,
        stdin: None,
    };
    let outcome = sandbox::run(env.store, &env.opts.sandbox_exe, &req, &mut |line| {
        progress.event(Event::Log { step: id.clone(), line: line.to_string() });
    });
    for s in scratch_for_mounts {
        let _ = rbuild_cache::store::remove_tree(&s);
    }
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
        e.tail = outcome.tail;
        return Err(e);
    }
    Ok(dirs)
}

fn shell_words(argv: &[String]) -> String {
    argv.join(" ")
}

fn translate_mount(
    env: &ExecEnv<'_>,
    m: &Mount,
    vars: &mut Vec<String>,
    scratch: &mut Vec<PathBuf>,
) -> Result<ExtraMount, BuildError> {
    match m {
        Mount::Tmpfs { target, size } => Ok(ExtraMount::Tmpfs { target: target.clone(), size: *size }),
        Mount::Cache { id, target, uid, gid, mode, .. } => {
            let dir = env.store.state_path(&format!("cache-mounts/{}", Digest::of(id.as_bytes()).hex()));
            if !dir.exists() {
                fs::create_dir_all(&dir)?;
                nix::unistd::chown(
                    &dir,
                    Some(nix::unistd::Uid::from_raw(*uid)),
                    Some(nix::unistd::Gid::from_raw(*gid)),
                )
                .map_err(|e| BuildError::new(format!("prepare cache mount {id}: {e}")))?;
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&dir, fs::Permissions::from_mode(*mode))?;
            }
            Ok(ExtraMount::Bind { source: dir, target: target.clone(), readonly: false })
        }
        Mount::Secret { id, target, env: var, required, uid, gid, mode } => {
            let Some(value) = env.opts.secrets.get(id) else {
                if *required {
                    return Err(BuildError::new(format!("secret {id} is required but was not given"))
                        .hint(format!("pass it with --secret id={id},src=FILE")));
                }
                return Ok(ExtraMount::Tmpfs {
                    target: target.clone().unwrap_or_else(|| format!("/run/secrets/{id}")),
                    size: Some(0),
                });
            };
            if let Some(var) = var {
                vars.push(format!("{var}={}", String::from_utf8_lossy(value)));
            }
            let dir = env.store.temp_dir("secret")?;
            scratch.push(dir.clone());
            let file = dir.join("value");
            fs::write(&file, value)?;
            nix::unistd::chown(
                &file,
                Some(nix::unistd::Uid::from_raw(*uid)),
                Some(nix::unistd::Gid::from_raw(*gid)),
            )
            .map_err(|e| BuildError::new(format!("prepare secret {id}: {e}")))?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&file, fs::Permissions::from_mode(*mode))?;
            match target {
                Some(t) => Ok(ExtraMount::Bind { source: file, target: t.clone(), readonly: true }),
                None => Ok(ExtraMount::Tmpfs { target: format!("/run/secrets/.{id}"), size: Some(0) }),
            }
        }
        Mount::Ssh { id, .. } => Err(BuildError::new(format!(
            "RUN --mount=type=ssh ({id}) needs an SSH agent, and none was given"
        ))
        .hint("pass one with --ssh default=$SSH_AUTH_SOCK")),
        Mount::Bind { target, from, source, readwrite } => {
            let rw = if *readwrite {
                let dir = env.store.temp_dir("bind")?;
                scratch.push(dir.clone());
                fs::create_dir(dir.join("upper"))?;
                fs::create_dir(dir.join("work"))?;
                Some((dir.join("upper"), dir.join("work")))
            } else {
                None
            };
            let lowers = match from {
                MountSource::Context => {
                    let rel = crate::context::clean_relative(source).ok_or_else(|| {
                        BuildError::new(format!("bind source {source} is outside the build context"))
                    })?;
                    let host = crate::sandbox::rootpath::resolve_in_root(env.ctx.root(), &rel)?;
                    vec![host.to_string_lossy().into_owned()]
                }
                MountSource::Stage(_) | MountSource::Image(_) => {
                    let layers = match from {
                        MountSource::Stage(i) => (env.stage_results)(*i)?.layers.clone(),
                        MountSource::Image(r) => env.image_layers(r)?,
                        MountSource::Context => Vec::new(),
                    };
                    if !source.is_empty() && source != "/" && source != "." {
                        return Err(BuildError::new(format!(
                            "--mount=type=bind,from=… with source={source} is not supported yet: mount the whole stage and use the path inside it"
                        )));
                    }
                    layers.iter().rev().map(|d| env.store.snapshot_rel_path(d)).collect()
                }
            };
            if lowers.is_empty() {
                let empty = env.store.temp_dir("empty")?;
                scratch.push(empty.clone());
                return Ok(ExtraMount::Layers {
                    lowers: vec![empty.to_string_lossy().into_owned()],
                    target: target.clone(),
                    upper: rw,
                });
            }
            Ok(ExtraMount::Layers { lowers, target: target.clone(), upper: rw })
        }
    }
}

fn execute_copy(env: &ExecEnv<'_>, c: &CopyOp, lowers: &[Lower]) -> Result<UpperDirs, BuildError> {
    let dirs = new_upper(env.store, "copy")?;
    let result = (|| -> Result<(), BuildError> {
        let mut w = Writer::new(
            &dirs.upper,
            lowers.iter().map(|l| l.abs.clone()).collect(),
            env.store.overlay_xattrs(),
        );
        if let Some(chown) = &c.chown {
            let view = stack(env.store, lowers);
            let who = identity(&view, chown)?;
            w.owner = Some((who.uid, who.gid));
        } else if matches!(c.source, CopySource::Context) {
            w.owner = Some((0, 0));
        }
        w.chmod = c.chmod;
        let mut items = Vec::new();
        let mut extracted: Vec<PathBuf> = Vec::new();
        match &c.source {
            CopySource::Context => {
                for p in &c.paths {
                    let rels = env.ctx.select(&p.path).map_err(|e| context_error(e, p.span))?;
                    for item in copy::items_from_context(env.ctx, &rels) {
                        let single_file = item.entries.len() == 1
                            && item.entries[0].kind == crate::context::EntryKind::File;
                        if c.extract_archives
                            && single_file
                            && copy::looks_like_archive(&item.entries[0].host_path)
                        {
                            let dir = env.store.temp_dir("add")?;
                            extracted.push(dir.clone());
                            let out = dir.join("tree");
                            fs::create_dir(&out)?;
                            let f = fs::File::open(&item.entries[0].host_path)?;
                            let opts = ApplyOptions {
                                xattr_prefix: env.store.overlay_xattrs(),
                                same_owner: true,
                                skip_devices: true,
                            };
                            rbuild_cache::layer::apply_layer_tar_auto(f, &out, &opts).map_err(|e| {
                                BuildError::new(format!("extract {}: {}", p.path, crate::error::chain(&e)))
                                    .at(p.span)
                                    .hint("rbuild refuses archive entries that would land outside the destination; rebuild the archive with relative paths")
                            })?;
                            let mut tree = copy::items_from_dir(&out, &item.name)?;
                            // The archive's content merges into the destination; the
                            // destination directory keeps its own metadata, and entries
                            // keep the archive's owners unless --chown says otherwise.
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
                            continue;
                        }
                        items.push(item);
                    }
                }
            }
            CopySource::Stage(_) | CopySource::Image(_) => {
                let layers = env.source_layers(&c.source)?;
                let view = view_of(env.store, &layers)?;
                let paths: Vec<String> = c.paths.iter().map(|p| p.path.clone()).collect();
                items = copy::items_from_layers(&view, &paths).map_err(|e| {
                    BuildError::new(crate::error::chain(&e)).at(c
                        .paths
                        .first()
                        .map(|p| p.span)
                        .unwrap_or_default())
                })?;
            }
            CopySource::Url => return Err(BuildError::new("ADD of a URL is not supported yet")),
        }
        for (name, content) in &c.inline {
            let target = if c.dest_is_dir || c.dest.ends_with('/') {
                format!("{}/{name}", c.dest.trim_end_matches('/'))
            } else {
                c.dest.clone()
            };
            w.write_inline(&target, content.as_bytes(), 0o644)?;
        }
        if !items.is_empty() || c.inline.is_empty() {
            copy::copy_items(
                &mut w,
                &items,
                &c.dest,
                c.dest_is_dir || items.len() > 1 && c.dest.ends_with('/'),
            )?;
        }
        for d in extracted {
            let _ = rbuild_cache::store::remove_tree(&d);
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(dirs),
        Err(e) => {
            dirs.cleanup();
            Err(e)
        }
    }
}
