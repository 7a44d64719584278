//! `RUN --mount=…` and inline scripts, made ready for the sandbox: cache
//! directories in the store's `state/cache-mounts/` (locked per their
//! sharing mode, seeded from `--cache-from` caches that carry them, their
//! use noted for `cache-mounts ls`), bind sources materialised from the context or a stage,
//! secrets written to private scratch files, SSH agents forwarded through
//! a socket of the step's own ([`crate::ssh_forward`]), and a `#!` heredoc body
//! mounted as a file under `/dev/pipes`. Nothing here lands in the step's
//! layer: every mount target the sandbox had to create is removed from it.

use std::fs::{self, File};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use rbuild_cache::mounts;
use rbuild_frontend::graph::{CacheSharing, INLINE_SCRIPT_DIR, Mount, MountSource, RunOp};

use crate::context::EntryKind;
use crate::copy::items::items_from_layers;
use crate::copy::{SrcEntry, SrcItem, Writer};
use crate::env::ExecEnv;
use crate::error::BuildError;
use crate::sandbox::ExtraMount;
use crate::snapshot::{top_first_distinct, view_of};
use crate::ssh_forward::SshForward;

/// Everything a RUN step mounts, and what to clean up after it.
pub struct Prepared {
    pub mounts: Vec<ExtraMount>,
    /// `KEY=value` added to the command's environment (secrets with `env=`).
    pub env: Vec<String>,
    /// Secret values, to mask in the step's output.
    pub secret_values: Vec<Vec<u8>>,
    scratch: Vec<PathBuf>,
    /// Held for the step's duration: cache mount locks.
    _locks: Vec<Flock<File>>,
    /// Forwarding SSH agents until the step ends.
    agents: Vec<SshForward>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // The forwarders first: each is stopped through its socket, which
        // lives in a scratch directory.
        self.agents.clear();
        for dir in &self.scratch {
            let _ = rbuild_cache::store::remove_tree(dir);
        }
    }
}

/// Prepares the mounts of `run` (in order) and its inline script. `note`
/// takes lines for the step's output (a cache mount seeded from an
/// imported cache, or why it could not be).
pub fn prepare(env: &ExecEnv<'_>, run: &RunOp, note: &dyn Fn(String)) -> Result<Prepared, BuildError> {
    let mut out = Prepared {
        mounts: Vec::new(),
        env: Vec::new(),
        secret_values: Vec::new(),
        scratch: Vec::new(),
        _locks: Vec::new(),
        agents: Vec::new(),
    };
    if let Some(script) = &run.script {
        let dir = env.store.temp_dir("script")?;
        out.scratch.push(dir.clone());
        let file = dir.join("script");
        fs::write(&file, script.content.as_bytes())?;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o755))?;
        out.mounts.push(ExtraMount::Bind {
            source: file,
            target: format!("{INLINE_SCRIPT_DIR}/{}", script.name),
            readonly: true,
        });
    }
    for m in &run.mounts {
        prepare_one(env, m, &mut out, note)?;
    }
    Ok(out)
}

fn prepare_one(
    env: &ExecEnv<'_>,
    m: &Mount,
    out: &mut Prepared,
    note: &dyn Fn(String),
) -> Result<(), BuildError> {
    match m {
        Mount::Tmpfs { target, size } => {
            out.mounts.push(ExtraMount::Tmpfs { target: target.clone(), size: *size });
        }
        Mount::Cache { id, target, sharing, from, source, uid, gid, mode, readonly } => {
            seed_from_imported_caches(env, id, note);
            let (dir, lock) = cache_dir(env, id, *sharing)?;
            out._locks.push(lock);
            // `--no-cache` starts cache mounts empty too (BuildKit's rule);
            // what this build leaves in them stays for the next. The first
            // step of the build to reach a mount empties it, and the others
            // wait for that (and the new directory) under the same lock, so
            // none can bind the directory while it is being replaced.
            // A stage the mount is seeded from is waited for before the lock
            // below is taken, so no step holds it while another stage runs.
            if let Some(MountSource::Stage(i)) = from {
                env.stages.wait_for(*i)?;
            }
            let mut emptying = if env.opts.no_cache {
                Some(env.opts.emptied_cache_mounts.lock().unwrap_or_else(|e| e.into_inner()))
            } else {
                None
            };
            if let Some(done) = emptying.as_mut()
                && done.insert(dir.clone())
                && dir.exists()
            {
                rbuild_cache::store::remove_tree(&dir)?;
            }
            if !dir.exists() {
                create_cache_dir(env, &dir, from.as_ref(), source, (*uid, *gid, *mode))
                    .map_err(|e| e.context(format!("prepare cache mount {id}")))?;
            }
            drop(emptying);
            // Only notes for `cache-mounts ls` and exports: never fails the step.
            if let Err(e) =
                mounts::note_use(env.store, id, (*uid, *gid, *mode), !*readonly, &env.opts.build_name)
            {
                note(format!("warning: cache mount {id}: cannot record its use: {e}"));
            }
            out.mounts.push(ExtraMount::Bind { source: dir, target: target.clone(), readonly: *readonly });
        }
        Mount::Secret { id, target, env: var, required, uid, gid, mode } => {
            let secret = SecretMount {
                id,
                target: target.as_deref(),
                var: var.as_deref(),
                owner: (*uid, *gid),
                mode: *mode,
            };
            prepare_secret(env, &secret, *required, out)?;
        }
        Mount::Ssh { id, target, required, uid, gid, mode } => {
            let Some(agent) = env.opts.ssh.get(id) else {
                if *required {
                    return Err(BuildError::new(format!(
                        "RUN --mount=type=ssh,required=true needs SSH agent {id}, but the build was given none"
                    ))
                    .hint(format!("pass one with --ssh {id} (the agent in $SSH_AUTH_SOCK), --ssh {id}=SOCKET or --ssh {id}=KEYFILE")));
                }
                // Optional, as in BuildKit: the step runs without a socket.
                return Ok(());
            };
            let dir = env.store.temp_dir("ssh")?;
            out.scratch.push(dir.clone());
            let socket = dir.join("agent.sock");
            let forward = SshForward::start(&socket, agent, (*uid, *gid, *mode))
                .map_err(|e| BuildError::new(format!("forward SSH agent {id} to {target}: {e}")))?;
            out.agents.push(forward);
            out.mounts.push(ExtraMount::Bind { source: socket, target: target.clone(), readonly: false });
        }
        Mount::Bind { target, from, source, readwrite } => {
            let tree = bind_source(env, from, source, out)?;
            let mount = bind_mount(env, tree, target, *readwrite, out)?;
            out.mounts.push(mount);
        }
    }
    Ok(())
}

/// Lets each `--cache-from` cache seed mount `id` before a step uses it
/// (each source does so once per build); a failure is a warning and the
/// step goes on with the mount it has.
fn seed_from_imported_caches(env: &ExecEnv<'_>, id: &str, note: &dyn Fn(String)) {
    for source in &env.opts.cache_sources {
        match source.seed_cache_mount(env.store, id) {
            Ok(Some(done)) => note(done),
            Ok(None) => {}
            Err(why) => note(format!("warning: cache mount {id} not imported: {why}")),
        }
    }
}

/// What a `type=secret` mount asks for.
struct SecretMount<'a> {
    id: &'a str,
    target: Option<&'a str>,
    var: Option<&'a str>,
    owner: (u32, u32),
    mode: u32,
}

/// A secret as a private file bound at its target and/or an environment
/// variable; an optional secret that was not given is simply absent, as in
/// BuildKit.
fn prepare_secret(
    env: &ExecEnv<'_>,
    s: &SecretMount<'_>,
    required: bool,
    out: &mut Prepared,
) -> Result<(), BuildError> {
    let id = s.id;
    let Some(value) = env.opts.secrets.get(id) else {
        if required {
            return Err(BuildError::new(format!("secret {id} is required but was not given"))
                .hint(format!("pass it with --secret id={id},src=FILE or --secret id={id},env=VAR")));
        }
        return Ok(());
    };
    if !value.is_empty() {
        out.secret_values.push(value.clone());
    }
    if let Some(var) = s.var {
        out.env.push(format!("{var}={}", String::from_utf8_lossy(value)));
    }
    if let Some(t) = s.target {
        let dir = env.store.temp_dir("secret")?;
        out.scratch.push(dir.clone());
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        let file = dir.join("value");
        fs::write(&file, value)?;
        chown(&file, s.owner.0, s.owner.1)
            .map_err(|e| BuildError::new(format!("prepare secret {id}: {e}")))?;
        fs::set_permissions(&file, fs::Permissions::from_mode(s.mode))?;
        out.mounts.push(ExtraMount::Bind { source: file, target: t.to_string(), readonly: true });
    }
    Ok(())
}

/// How a bind source is mounted: read-only as it is, or writable with the
/// writes thrown away (a private copy of a file, an overlay of a tree).
fn bind_mount(
    env: &ExecEnv<'_>,
    tree: BindTree,
    target: &str,
    readwrite: bool,
    out: &mut Prepared,
) -> Result<ExtraMount, BuildError> {
    let target = target.to_string();
    Ok(match (tree, readwrite) {
        (BindTree::File(path), false) => ExtraMount::Bind { source: path, target, readonly: true },
        (BindTree::File(path), true) => {
            let dir = env.store.temp_dir("bind")?;
            out.scratch.push(dir.clone());
            let copy_path = dir.join("file");
            fs::copy(&path, &copy_path)?;
            ExtraMount::Bind { source: copy_path, target, readonly: false }
        }
        (BindTree::Layers(lowers), rw) => ExtraMount::Layers {
            lowers,
            target,
            upper: if rw { Some(scratch_upper(env, out)?) } else { None },
        },
        (BindTree::Dir(dir), false) => ExtraMount::Bind { source: dir, target, readonly: true },
        (BindTree::Dir(dir), true) => ExtraMount::Layers {
            lowers: vec![dir.to_string_lossy().into_owned()],
            target,
            upper: Some(scratch_upper(env, out)?),
        },
    })
}

fn scratch_upper(env: &ExecEnv<'_>, out: &mut Prepared) -> Result<(PathBuf, PathBuf), BuildError> {
    let dir = env.store.temp_dir("bind")?;
    out.scratch.push(dir.clone());
    fs::create_dir(dir.join("upper"))?;
    fs::create_dir(dir.join("work"))?;
    Ok((dir.join("upper"), dir.join("work")))
}

fn chown(path: &Path, uid: u32, gid: u32) -> nix::Result<()> {
    nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(uid)), Some(nix::unistd::Gid::from_raw(gid)))
}

/// The directory of cache mount `id` and the lock that grants it. Shared
/// mounts hold a shared lock (any number at once); locked ones an exclusive
/// lock (one step at a time, waiting for the others); private ones the
/// first instance nobody else holds, making a new one when all are busy.
fn cache_dir(
    env: &ExecEnv<'_>,
    id: &str,
    sharing: CacheSharing,
) -> Result<(PathBuf, Flock<File>), BuildError> {
    let base = mounts::mount_dir(env.store, id);
    if let Some(parent) = base.parent() {
        fs::create_dir_all(parent)?;
    }
    let instance = |n: usize| if n == 0 { base.clone() } else { base.with_extension(n.to_string()) };
    let open_lock = |dir: &Path| -> Result<File, BuildError> { Ok(mounts::open_lock(dir)?) };
    let lock_err = |e: nix::errno::Errno| BuildError::new(format!("lock cache mount {id}: {e}"));
    match sharing {
        CacheSharing::Shared | CacheSharing::Locked => {
            let how =
                if sharing == CacheSharing::Shared { FlockArg::LockShared } else { FlockArg::LockExclusive };
            let lock = Flock::lock(open_lock(&base)?, how).map_err(|(_, e)| lock_err(e))?;
            Ok((base, lock))
        }
        CacheSharing::Private => {
            for n in 0.. {
                let dir = instance(n);
                match Flock::lock(open_lock(&dir)?, FlockArg::LockExclusiveNonblock) {
                    Ok(lock) => return Ok((dir, lock)),
                    Err((_, nix::errno::Errno::EWOULDBLOCK)) => continue,
                    Err((_, e)) => return Err(lock_err(e)),
                }
            }
            unreachable!("the instance loop only ends by returning")
        }
    }
}

/// Creates a cache mount's directory: owned and moded as the mount says,
/// seeded from `from`'s `source` path when given.
fn create_cache_dir(
    env: &ExecEnv<'_>,
    dir: &Path,
    from: Option<&MountSource>,
    source: &str,
    (uid, gid, mode): (u32, u32, u32),
) -> Result<(), BuildError> {
    let tmp = dir.with_extension(format!("new-{}", rbuild_cache::store::unique_suffix()));
    fs::create_dir(&tmp)?;
    let filled = (|| -> Result<(), BuildError> {
        if let Some(from) = from {
            let layers = match from {
                MountSource::Stage(i) => env.stages.wait_for(*i)?.layers.clone(),
                MountSource::Image(r) => env.image_layers(r)?,
                MountSource::Context => Vec::new(),
            };
            let view = view_of(env.store, &layers)?;
            let path = if source.is_empty() { "/".to_string() } else { source.to_string() };
            if view.lookup(&path, true)?.is_some() {
                let items = items_from_layers(&view, &[path])?;
                let mut w = Writer::new(&tmp, Vec::new(), env.store.overlay_xattrs());
                for item in &items {
                    for e in item.entries.iter().filter(|e| !e.rel.is_empty()) {
                        let one = SrcItem {
                            name: String::new(),
                            entries: vec![SrcEntry { rel: String::new(), ..e.clone() }],
                        };
                        w.write_item(&one, &format!("/{}", e.rel))?;
                    }
                }
            }
        }
        chown(&tmp, uid, gid).map_err(|e| BuildError::new(e.to_string()))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
        Ok(())
    })();
    match filled.and_then(|()| fs::rename(&tmp, dir).map_err(BuildError::from)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = rbuild_cache::store::remove_tree(&tmp);
            // Another build may have created it meanwhile; that one is as good.
            if dir.is_dir() { Ok(()) } else { Err(e) }
        }
    }
}

/// What a bind mount shows.
enum BindTree {
    /// A whole filesystem: overlay of snapshot dirs (store-relative, top first).
    Layers(Vec<String>),
    /// A materialised directory tree.
    Dir(PathBuf),
    File(PathBuf),
}

fn bind_source(
    env: &ExecEnv<'_>,
    from: &MountSource,
    source: &str,
    out: &mut Prepared,
) -> Result<BindTree, BuildError> {
    let layers = match from {
        MountSource::Context => return context_bind_source(env, source, out),
        MountSource::Stage(i) => env.stages.wait_for(*i)?.layers.clone(),
        MountSource::Image(r) => env.image_layers(r)?,
    };
    if source.is_empty() || source == "/" || source == "." {
        let mut lowers: Vec<String> =
            top_first_distinct(&layers).iter().map(|d| env.store.snapshot_rel_path(d)).collect();
        // Without an upper dir, overlayfs wants two lower dirs at least.
        if lowers.len() < 2 {
            let empty = env.store.temp_dir("empty")?;
            out.scratch.push(empty.clone());
            lowers.push(empty.to_string_lossy().into_owned());
        }
        return Ok(BindTree::Layers(lowers));
    }
    let view = view_of(env.store, &layers)?;
    let Some(found) = view.lookup(source, true)? else {
        return Err(BuildError::new(format!("bind source {source} does not exist in the source stage"))
            .hint("check the path inside the stage or image given with from="));
    };
    if !found.metadata.is_dir() {
        return Ok(BindTree::File(found.real_path));
    }
    let items = items_from_layers(&view, std::slice::from_ref(&found.merged_path))?;
    let tree = bind_tree_dir(env, out)?;
    for item in &items {
        materialize(&item.entries, &tree)?;
    }
    Ok(BindTree::Dir(tree))
}

/// A bind of a context path: the context as the build sees it, so
/// .dockerignore'd files stay out.
fn context_bind_source(env: &ExecEnv<'_>, source: &str, out: &mut Prepared) -> Result<BindTree, BuildError> {
    let rel = crate::context::clean_relative(source).ok_or_else(|| {
        BuildError::new(format!("bind source {source} is outside the build context"))
            .hint("mount a path inside the context directory")
    })?;
    let entries: Vec<SrcEntry> = env
        .ctx
        .subtree(&rel)
        .map(|(p, e)| SrcEntry {
            rel: p.strip_prefix(rel.as_str()).unwrap_or(p).trim_start_matches('/').to_string(),
            kind: e.kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime: e.mtime,
            host_path: env.ctx.root().join(p),
            link_target: e.link_target.clone(),
            stored: false,
        })
        .collect();
    if !rel.is_empty() && entries.is_empty() {
        return Err(BuildError::new(format!("bind source {source} is not in the build context"))
            .hint("check the path, and that .dockerignore does not exclude it"));
    }
    if entries.len() == 1 && entries[0].kind == EntryKind::File {
        return Ok(BindTree::File(entries[0].host_path.clone()));
    }
    let tree = bind_tree_dir(env, out)?;
    if rel.is_empty() {
        fs::set_permissions(&tree, fs::Permissions::from_mode(0o755))?;
    }
    materialize(&entries, &tree)?;
    Ok(BindTree::Dir(tree))
}

/// A fresh directory to materialise a bind source in, removed after the step.
fn bind_tree_dir(env: &ExecEnv<'_>, out: &mut Prepared) -> Result<PathBuf, BuildError> {
    let dir = env.store.temp_dir("bind")?;
    out.scratch.push(dir.clone());
    let tree = dir.join("tree");
    fs::create_dir(&tree)?;
    Ok(tree)
}

/// Recreates entries below `dest`: directories with their owner and mode,
/// files as hard links (copies across filesystems), symlinks as they are.
/// Only ever mounted read-only or as an overlay lower, so the links are
/// never written through.
fn materialize(entries: &[SrcEntry], dest: &Path) -> Result<(), BuildError> {
    for e in entries {
        let path = if e.rel.is_empty() { dest.to_path_buf() } else { dest.join(&e.rel) };
        match e.kind {
            EntryKind::Dir => {
                if !path.exists() {
                    fs::create_dir_all(&path)?;
                }
                let _ = chown(&path, e.uid, e.gid);
                fs::set_permissions(&path, fs::Permissions::from_mode(e.mode & 0o7777))?;
            }
            EntryKind::File => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                if fs::hard_link(&e.host_path, &path).is_err() {
                    fs::copy(&e.host_path, &path)?;
                    let _ = chown(&path, e.uid, e.gid);
                }
            }
            EntryKind::Symlink => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                symlink(e.link_target.clone().unwrap_or_default(), &path)?;
            }
            EntryKind::Other => {}
        }
    }
    Ok(())
}

/// Replaces every secret value in a line of output with `****`.
pub fn mask(line: &str, secrets: &[Vec<u8>]) -> String {
    let mut out = line.to_string();
    for s in secrets {
        let text = String::from_utf8_lossy(s);
        for candidate in [text.as_ref(), text.trim_end()] {
            if !candidate.is_empty() && out.contains(candidate) {
                out = out.replace(candidate, "****");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_output() {
        let secrets = vec![b"s3cr3t\n".to_vec()];
        assert_eq!(mask("token is s3cr3t!", &secrets), "token is ****!");
        assert_eq!(mask("nothing here", &secrets), "nothing here");
    }
}
