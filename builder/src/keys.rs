//! Cache keys: a step's key is the sha256 of a versioned, canonical,
//! length-prefixed encoding of the op's output-relevant fields, its parent's
//! key and the digests of everything it reads. See docs/dev/cache-keys.md.
//!
//! [`KeyBuilder`] is the encoding; [`step_key`] says, op by op, what goes
//! into it (RUN, its mounts, COPY/ADD, WORKDIR), and [`chain_key`] how a
//! stage's chain carries on after a step. These functions define when a
//! cached result may be reused: the tests below pin what must and must
//! not change a key.
//!
//! `COPY --link` / `ADD --link` build their layer on an empty lower, like
//! BuildKit's MergeOp: the key leaves the parent out (the same files copied
//! onto any base give the same layer), and [`chain_key`] ties the result
//! back into the stage's chain.

use rbuild_cache::index::KeyInput;
use rbuild_frontend::graph::{CopyOp, CopySource, FileMode, Mount, MountSource, Op, RunOp, Security, Step};
use rbuild_oci::digest::{Digest, Hasher};
use rbuild_oci::platform::Platform;

use crate::context::{ContextError, EntryKind};
use crate::copy::items::parents_from_context;
use crate::download;
use crate::env::{ExecEnv, context_error};
use crate::error::BuildError;

/// Bump when the encoding changes, or what a step makes of the same inputs
/// (2: COPY's directory owners and modes follow BuildKit): old entries are
/// then simply missed.
pub const KEY_VERSION: &str = "rbuild-step-key/2";

/// Builds one key and remembers its named inputs (for miss explanations).
pub struct KeyBuilder {
    hasher: Hasher,
    inputs: Vec<KeyInput>,
}

impl KeyBuilder {
    pub fn new(op: &str) -> KeyBuilder {
        let mut k = KeyBuilder { hasher: Hasher::new(), inputs: Vec::new() };
        k.raw(KEY_VERSION);
        k.raw(op);
        k
    }

    fn raw(&mut self, s: &str) {
        // Length-prefixed, so ("ab","c") and ("a","bc") never collide.
        self.hasher.update(&(s.len() as u64).to_le_bytes());
        self.hasher.update(s.as_bytes());
    }

    /// A field of the op itself (argv, dest, flags…).
    pub fn field(&mut self, name: &str, value: &str) -> &mut Self {
        self.raw(name);
        self.raw(value);
        self.record("field", name, value.to_string());
        self
    }

    /// A list field.
    pub fn list(&mut self, name: &str, values: &[String]) -> &mut Self {
        self.raw(name);
        self.hasher.update(&(values.len() as u64).to_le_bytes());
        for v in values {
            self.raw(v);
        }
        self.record("list", name, serde_json::to_string(values).unwrap_or_default());
        self
    }

    fn record(&mut self, kind: &str, name: &str, value: String) {
        self.inputs.push(KeyInput { kind: kind.to_string(), name: name.to_string(), value });
    }

    /// Something the step reads, recorded for explaining misses.
    pub fn input(&mut self, kind: &str, name: &str, value: &str) -> &mut Self {
        self.raw(kind);
        self.raw(name);
        self.raw(value);
        self.inputs.push(KeyInput {
            kind: kind.to_string(),
            name: name.to_string(),
            value: value.to_string(),
        });
        self
    }

    pub fn parent(&mut self, parent: &Digest) -> &mut Self {
        self.input("parent", "", &parent.to_string())
    }

    pub fn finish(self) -> (Digest, Vec<KeyInput>) {
        (self.hasher.finish(), self.inputs)
    }
}

/// True for a copy whose layer does not depend on its parent. A `--chown`
/// by name needs the parent's /etc/passwd, which ties it to the parent.
pub fn independent_link(c: &CopyOp) -> bool {
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

/// A RUN in a stage for a platform the host does not run natively gives
/// another result than the same RUN natively (another binary runs, under an
/// emulator): its key adds the platform. Native steps keep their keys, so a
/// `$BUILDPLATFORM` stage has the same keys in every platform's graph.
pub fn for_platform(
    step: &Step,
    platform: &Platform,
    key: Digest,
    inputs: Vec<KeyInput>,
) -> (Digest, Vec<KeyInput>) {
    if !matches!(step.op, Op::Run(_)) || *platform == Platform::host() {
        return (key, inputs);
    }
    let mut k = KeyBuilder::new("run-on-platform");
    k.input("run", "", &key.to_string()).field("platform", &platform.spec());
    let (key, mut own) = k.finish();
    let mut all = inputs;
    all.append(&mut own);
    (key, all)
}

/// The cache key of a filesystem step and the inputs it was made from.
pub fn step_key(
    env: &ExecEnv<'_>,
    step: &Step,
    parent: &Digest,
) -> Result<(Digest, Vec<KeyInput>), BuildError> {
    match &step.op {
        Op::Run(run) => run_key(env, run, parent),
        Op::Copy(c) => copy_key(env, c, parent),
        Op::Mkdir(m) => {
            let mut k = KeyBuilder::new("mkdir");
            k.parent(parent).field("path", &m.path).field("user", &m.user);
            Ok(k.finish())
        }
        Op::Meta => Err(BuildError::new("metadata steps have no cache key")),
    }
}

fn run_key(env: &ExecEnv<'_>, run: &RunOp, parent: &Digest) -> Result<(Digest, Vec<KeyInput>), BuildError> {
    let mut k = KeyBuilder::new("run");
    // Proxy variables stay out on purpose: a different proxy gives the
    // same result (and Docker leaves them out too).
    k.parent(parent)
        .list("argv", &run.argv)
        .list("env", &run.env)
        .field("user", &run.user)
        .field("workdir", &run.workdir)
        .field("network", &format!("{:?}", run.network));
    // Only when asked, so the keys of ordinary steps stay as they were.
    if run.security == Security::Insecure {
        k.field("security", "insecure");
    }
    if let Some(script) = &run.script {
        k.input("script", &script.name, &Digest::of(script.content.as_bytes()).to_string());
    }
    for m in &run.mounts {
        mount_key(env, m, &mut k)?;
    }
    env.opts.run.add_to_key(&mut k);
    Ok(k.finish())
}

/// What a RUN mount adds to the step's key.
pub fn mount_key(env: &ExecEnv<'_>, m: &Mount, k: &mut KeyBuilder) -> Result<(), BuildError> {
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
                // By the mounted path's content: a change elsewhere in the
                // stage does not rerun the step (BuildKit's rule).
                MountSource::Stage(i) => match crate::stage_paths::stage_path_digest(env, *i, source)? {
                    Some(d) => k.input("stage-path", &format!("{i}:{source}"), &d.to_string()),
                    None => k.input("stage", &i.to_string(), &env.stages.wait_for(*i)?.key.to_string()),
                },
                MountSource::Image(r) => {
                    let id = env.bases.get(r.as_str()).map(|d| d.to_string()).unwrap_or_default();
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

/// The key of a COPY or ADD: its flags, then every source by content.
pub fn copy_key(
    env: &ExecEnv<'_>,
    c: &CopyOp,
    parent: &Digest,
) -> Result<(Digest, Vec<KeyInput>), BuildError> {
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
            None => download::fetch(env.store, env.opts.http.as_ref(), &u.path, None)
                .map_err(|e| e.at(u.span))?
                .digest
                .to_string(),
        };
        k.input("url", &u.path, &content);
    }
    // A repository by the commit its ref names now: a moved branch misses.
    for g in &c.git {
        let commit = crate::git::resolve(env, g, c.checksum.as_deref())?;
        k.input("git", &crate::git::display(g), &commit);
    }
    if c.keep_git_dir {
        k.field("keep-git-dir", "true");
    }
    copy_sources_key(env, c, &mut k)?;
    Ok(k.finish())
}

fn copy_sources_key(env: &ExecEnv<'_>, c: &CopyOp, k: &mut KeyBuilder) -> Result<(), BuildError> {
    match &c.source {
        CopySource::Context => {
            for p in &c.paths {
                if c.parents {
                    parents_key(env, &p.path, k).map_err(|e| context_error(e, p.span))?;
                    continue;
                }
                let rels = env.ctx.select(&p.path).map_err(|e| context_error(e, p.span))?;
                for rel in rels {
                    let d = env.ctx.tree_digest(&rel).map_err(|e| context_error(e, p.span))?;
                    k.input("file", if rel.is_empty() { "." } else { &rel }, &d.to_string());
                }
            }
        }
        CopySource::Stage(i) => {
            let key = env.stages.wait_for(*i)?.key;
            k.input("stage", &env.graph.stages[*i].label, &key.to_string());
            k.list("paths", &c.paths.iter().map(|p| p.path.clone()).collect::<Vec<_>>());
        }
        CopySource::Image(r) => {
            let id = env.bases.get(r.as_str()).map(|d| d.to_string()).unwrap_or_default();
            k.input("image", r, &id);
            k.list("paths", &c.paths.iter().map(|p| p.path.clone()).collect::<Vec<_>>());
        }
    }
    Ok(())
}

/// A `--parents` source from the context, entry by entry as it is copied:
/// its path below the pivot, type, permission bits and content.
fn parents_key(env: &ExecEnv<'_>, source: &str, k: &mut KeyBuilder) -> Result<(), ContextError> {
    for item in parents_from_context(env.ctx, source)? {
        for e in &item.entries {
            let content = match e.kind {
                // A special file arrives empty (it has no host path).
                EntryKind::File => match e.host_path.strip_prefix(env.ctx.root()) {
                    Ok(rel) => env.ctx.file_digest(&rel.to_string_lossy())?.to_string(),
                    Err(_) => String::new(),
                },
                EntryKind::Symlink => e.link_target.clone().unwrap_or_default(),
                _ => String::new(),
            };
            k.input("parents", &e.rel, &format!("{:?} {:o} {content}", e.kind, e.mode & 0o7777));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{FixedStages, Fixture, env, stage_with_key};

    #[test]
    fn keys_are_stable_and_sensitive_to_every_part() {
        let make = |a: &str, b: &str| {
            let mut k = KeyBuilder::new("run");
            k.field("argv", a).field("env", b);
            k.finish().0
        };
        assert_eq!(make("x", "y"), make("x", "y"));
        assert_ne!(make("x", "y"), make("xy", ""));
        assert_ne!(make("x", "y"), make("x", "z"));
        let mut with_parent = KeyBuilder::new("run");
        with_parent.parent(&Digest::of(b"p"));
        let (_, inputs) = with_parent.finish();
        assert_eq!(inputs[0].kind, "parent");
    }

    #[test]
    fn only_foreign_run_steps_add_their_platform() {
        let (graph, _) = Fixture::new(&[("a", "1")]).plan("FROM scratch\nCOPY a /a\nRUN true\n", &[]);
        let steps = &graph.stages[0].steps;
        let (copy, run) = (&steps[0], &steps[1]);
        let key = Digest::of(b"key");
        let host = Platform::host();
        let foreign =
            Platform::parse(if host.architecture == "s390x" { "linux/arm64" } else { "linux/s390x" })
                .unwrap();
        assert_eq!(for_platform(run, &host, key, Vec::new()).0, key, "a native RUN keeps its key");
        assert_eq!(for_platform(copy, &foreign, key, Vec::new()).0, key, "a COPY is the same everywhere");
        let (foreign_key, inputs) = for_platform(run, &foreign, key, Vec::new());
        assert_ne!(foreign_key, key);
        assert!(inputs.iter().any(|i| i.name == "platform" && i.value == foreign.spec()), "{inputs:?}");
        let other = Platform::parse("linux/riscv64").unwrap();
        assert_ne!(for_platform(run, &other, key, Vec::new()).0, foreign_key, "each platform its own key");
    }

    /// The keys of the target stage's filesystem steps, in order, each on
    /// top of `parent`; stage `i` of the graph has the key `stage-i`.
    fn keys_of(fixture: &Fixture, dockerfile: &str, args: &[(&str, &str)], parent: &[u8]) -> Vec<Digest> {
        keys_with(fixture, dockerfile, args, parent, &fixture.options())
    }

    fn keys_with(
        fixture: &Fixture,
        dockerfile: &str,
        args: &[(&str, &str)],
        parent: &[u8],
        opts: &crate::options::BuildOptions,
    ) -> Vec<Digest> {
        let (graph, bases) = fixture.plan(dockerfile, args);
        let stages = FixedStages(
            (0..graph.stages.len()).map(|i| stage_with_key(format!("stage-{i}").as_bytes())).collect(),
        );
        let ctx = fixture.context();
        let env = env(fixture, &ctx, &graph, &stages, &bases, opts);
        let stage = &graph.stages[graph.target];
        stage
            .steps
            .iter()
            .filter(|s| s.is_filesystem())
            .map(|s| step_key(&env, s, &Digest::of(parent)).unwrap().0)
            .collect()
    }

    fn key(fixture: &Fixture, dockerfile: &str) -> Digest {
        keys_of(fixture, dockerfile, &[], b"parent")[0]
    }

    #[test]
    fn run_keys_follow_command_env_user_workdir_network_and_parent() {
        let f = Fixture::new(&[]);
        let base = key(&f, "FROM scratch\nRUN write /a x\n");
        assert_eq!(base, key(&f, "FROM scratch\nRUN write /a x\n"));
        assert_ne!(base, key(&f, "FROM scratch\nRUN write /a y\n"));
        assert_ne!(base, key(&f, "FROM scratch\nENV A=1\nRUN write /a x\n"));
        assert_ne!(base, key(&f, "FROM scratch\nUSER 1000\nRUN write /a x\n"));
        assert_ne!(base, key(&f, "FROM scratch\nWORKDIR /w\nRUN write /a x\n")); // the WORKDIR step is first
        let workdir_run = keys_of(&f, "FROM scratch\nWORKDIR /w\nRUN write /a x\n", &[], b"parent")[1];
        assert_ne!(base, workdir_run);
        assert_ne!(base, key(&f, "FROM scratch\nRUN --network=none write /a x\n"));
        assert_ne!(base, keys_of(&f, "FROM scratch\nRUN write /a x\n", &[], b"other parent")[0]);
    }

    #[test]
    fn run_keys_ignore_proxies_but_not_build_args_it_uses() {
        let f = Fixture::new(&[]);
        let file = "FROM scratch\nARG V\nRUN write /a x\n";
        let with = |args: &[(&str, &str)]| keys_of(&f, file, args, b"p")[0];
        assert_eq!(with(&[("HTTP_PROXY", "http://a:3128")]), with(&[("HTTP_PROXY", "http://b:3128")]));
        assert_eq!(with(&[]), with(&[("HTTP_PROXY", "http://a:3128")]));
        assert_ne!(with(&[("V", "1")]), with(&[("V", "2")]));
    }

    #[test]
    fn mounts_add_their_target_and_sources_but_never_secret_values_or_cache_ids() {
        let f = Fixture::new(&[("dir/f", "one")]);
        let cache = |id: &str, target: &str| {
            key(&f, &format!("FROM scratch\nRUN --mount=type=cache,id={id},target={target} write /a x\n"))
        };
        assert_eq!(cache("a", "/c"), cache("b", "/c"));
        assert_ne!(cache("a", "/c"), cache("a", "/d"));
        let secret = "FROM scratch\nRUN --mount=type=secret,id=tok write /a x\n";
        let with_secret = |value: &[u8]| {
            let mut opts = f.options();
            opts.secrets.insert("tok".into(), value.to_vec());
            keys_with(&f, secret, &[], b"parent", &opts)[0]
        };
        assert_eq!(with_secret(b"one"), with_secret(b"two"), "a secret's value never reaches a key");
        assert_ne!(key(&f, secret), key(&f, "FROM scratch\nRUN --mount=type=secret,id=other write /a x\n"));
        let bind = "FROM scratch\nRUN --mount=type=bind,source=dir,target=/d write /a x\n";
        let before = key(&f, bind);
        f.write("dir/f", "two");
        assert_ne!(before, key(&f, bind), "a bind mount of the context is keyed by its content");
    }

    #[test]
    fn copy_keys_follow_content_and_flags_not_times() {
        let f = Fixture::new(&[("a.txt", "one")]);
        let copy = "FROM scratch\nCOPY a.txt /a.txt\n";
        let before = key(&f, copy);
        let path = f.context_dir.path().join("a.txt");
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        assert_eq!(before, key(&f, copy), "a new mtime alone does not change the key");
        assert_ne!(before, key(&f, "FROM scratch\nCOPY --chmod=600 a.txt /a.txt\n"));
        assert_ne!(before, key(&f, "FROM scratch\nCOPY --chown=1:1 a.txt /a.txt\n"));
        assert_ne!(before, key(&f, "FROM scratch\nCOPY a.txt /b.txt\n"));
        assert_ne!(before, key(&f, "FROM scratch\nADD a.txt /a.txt\n"));
        f.write("a.txt", "two");
        assert_ne!(before, key(&f, copy));
    }

    #[test]
    fn linked_copies_leave_the_parent_out_and_chain_it_back_in() {
        let f = Fixture::new(&[("a.txt", "one")]);
        let linked = "FROM scratch\nCOPY --link a.txt /a.txt\n";
        let on = |parent: &[u8]| keys_of(&f, linked, &[], parent)[0];
        assert_eq!(on(b"p1"), on(b"p2"), "the same files onto any base give the same layer");
        let (graph, _) = f.plan(linked, &[]);
        let step = graph.stages[0].steps.iter().find(|s| s.is_filesystem()).unwrap();
        let key = on(b"p1");
        assert_ne!(chain_key(step, &Digest::of(b"p1"), &key), chain_key(step, &Digest::of(b"p2"), &key));
        assert_ne!(chain_key(step, &Digest::of(b"p1"), &key), key);
        // A --chown by name reads the parent's /etc/passwd: the parent counts.
        let by_name = "FROM scratch\nCOPY --link --chown=app a.txt /a.txt\n";
        assert_ne!(keys_of(&f, by_name, &[], b"p1")[0], keys_of(&f, by_name, &[], b"p2")[0]);
        // An unlinked copy: the chain key is the step's own key.
        let (graph, _) = f.plan("FROM scratch\nCOPY a.txt /a.txt\n", &[]);
        let step = graph.stages[0].steps.iter().find(|s| s.is_filesystem()).unwrap();
        assert_eq!(chain_key(step, &Digest::of(b"p1"), &key), key);
    }

    #[test]
    fn copies_from_a_stage_follow_that_stage() {
        let f = Fixture::new(&[]);
        let file = "FROM scratch AS a\nRUN write /x 1\nFROM scratch AS b\nRUN write /x 1\nFROM scratch\nCOPY --from=a /x /x\n";
        let from_a = key(&f, file);
        assert_eq!(from_a, key(&f, file));
        assert_ne!(from_a, key(&f, &file.replace("--from=a", "--from=b")), "stages a and b have other keys");
    }

    #[test]
    fn workdir_keys_follow_path_and_user() {
        let f = Fixture::new(&[]);
        let w = key(&f, "FROM scratch\nWORKDIR /w\n");
        assert_ne!(w, key(&f, "FROM scratch\nWORKDIR /v\n"));
        assert_ne!(w, key(&f, "FROM scratch\nUSER 1000\nWORKDIR /w\n"));
    }
}
