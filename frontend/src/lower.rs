//! Lowering: typed instructions to a [`StepGraph`]. Tracks each stage's
//! state (env, args, user, workdir, shell, config) the way BuildKit's
//! Dockerfile frontend does, expands variables where BuildKit does, resolves
//! stage references, and decides which stages the target needs.
//!
//! BuildKit keeps two environments per stage, and so do we: the image
//! config's `Env` (changed by ENV only) and the *build* environment that
//! expansion and RUN see, which also holds every ARG with a value, set in
//! order (a later ARG or ENV of the same name wins). A stage built `FROM`
//! another stage inherits both, and the args it declared.
//!
//! Which words are expanded follows BuildKit's instruction table: ENV,
//! LABEL, ARG defaults, EXPOSE, WORKDIR, USER, VOLUME, STOPSIGNAL, COPY/ADD
//! sources, destination, `--chown`, `--chmod`, ADD `--checksum`, RUN
//! `--mount` fields and unquoted COPY heredoc bodies; FROM with the global
//! args only. RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER,
//! ONBUILD, `--network`, `--exclude` are taken as written (the shell does its
//! own expansion), and `--from` refuses variables.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::duration::parse_go_duration;
use crate::error::FrontendError;
use crate::filemode;
use crate::graph::*;
use crate::instructions::{self, Command, CopyArgs, Instruction, Kind, Word};
use crate::mounts::{absolute, clean, mount_from, parse_mount};
use crate::parser::{self, Ast, Heredoc};
use crate::shell::{Env, Lexer};
use crate::span::Span;
use crate::vars::Vars;

/// The default PATH BuildKit gives `FROM scratch` images and RUN steps.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Proxy build args: passed to RUN without being declared and kept out of
/// the cache key and the history, as Docker does. Matched without regard to
/// case; each is given to the command in both spellings.
const PROXY_ARGS: &[&str] = &["http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy"];

fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// Frontend images whose Dockerfile dialect is the one rbuild implements.
const KNOWN_SYNTAX_IMAGES: &[&str] = &["docker/dockerfile", "docker/dockerfile-upstream"];

#[derive(Debug, Clone)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform { os: "linux".into(), architecture: architecture.into(), variant: None }
    }

    pub fn spec(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{}", self.os, self.architecture, v),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// The automatic platform args (`TARGETPLATFORM`, `BUILDARCH`, …).
    fn args(&self) -> Vec<(String, String)> {
        let variant = self.variant.clone().unwrap_or_default();
        let mut out = Vec::new();
        for prefix in ["BUILD", "TARGET"] {
            out.push((format!("{prefix}PLATFORM"), self.spec()));
            out.push((format!("{prefix}OS"), self.os.clone()));
            out.push((format!("{prefix}ARCH"), self.architecture.clone()));
            out.push((format!("{prefix}VARIANT"), variant.clone()));
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct LowerOptions {
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Platform,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions { build_args: BTreeMap::new(), target: None, platform: Platform::host() }
    }
}

/// What lowering needs to know about a base image. The builder implements
/// this over its store; the frontend itself does no I/O.
pub trait BaseResolver {
    /// The metadata of image `reference` (as written, expanded). `Err` is
    /// shown to the user at the FROM line.
    fn resolve(&mut self, reference: &str) -> Result<ImageMeta, ResolveError>;
}

/// Why a base image could not be resolved, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveError {
    pub message: String,
    pub hint: Option<String>,
}

struct StageSource {
    from: Instruction,
    body: Vec<Instruction>,
}

/// What a lowered stage hands to a stage built `FROM` it.
#[derive(Debug, Clone, Default)]
struct StageEnd {
    build_env: Vars,
    args: Vec<(String, Option<String>)>,
}

/// Lowers a parsed Dockerfile.
pub fn lower(
    ast: &Ast,
    opts: &LowerOptions,
    resolver: &mut dyn BaseResolver,
) -> Result<StepGraph, FrontendError> {
    let lexer = Lexer::new(ast.directives.escape);
    let mut warnings: Vec<Warning> = Vec::new();
    if let Some(syntax) = &ast.directives.syntax
        && !is_known_syntax(&syntax.value)
    {
        warnings.push(Warning {
            message: format!(
                "the Dockerfile asks for the frontend image {:?}; rbuild ignores it and uses its own Dockerfile frontend (docker/dockerfile:1 syntax)",
                syntax.value
            ),
            span: Some(syntax.span),
        });
    }
    // The platform args are in the global scope without being declared.
    let mut globals = Vars::from(opts.platform.args());
    let mut used_build_args: BTreeSet<String> = BTreeSet::new();
    let mut sources: Vec<StageSource> = Vec::new();

    for node in &ast.nodes {
        let instr = instructions::from_node(node)?;
        match (&instr.kind, sources.last_mut()) {
            (Kind::From { .. }, _) => sources.push(StageSource { from: instr, body: Vec::new() }),
            (_, Some(stage)) => stage.body.push(instr),
            (Kind::Arg(decls), None) => {
                for (name, default) in decls {
                    let value = match opts.build_args.get(&name.text) {
                        Some(v) => {
                            used_build_args.insert(name.text.clone());
                            v.clone()
                        }
                        None => match default {
                            Some(d) => expand(&lexer, d, &globals)?,
                            // A global ARG without a value is set, and empty.
                            None => globals.lookup(&name.text).unwrap_or_default().to_string(),
                        },
                    };
                    globals.set(&name.text, &value);
                }
            }
            (_, None) => {
                return Err(FrontendError::new(
                    format!("{} before the first FROM", instr.keyword),
                    instr.span,
                )
                .with_hint("only ARG may come before the first FROM; start each stage with FROM <image>"));
            }
        }
    }
    if sources.is_empty() {
        return Err(FrontendError::new("the Dockerfile has no FROM instruction", ast.span)
            .with_hint("start the build stage with FROM <image>"));
    }

    // First pass: stage names, bases and references, to know what the target needs.
    let mut stages: Vec<Stage> = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (index, src) in sources.iter().enumerate() {
        let Kind::From { image, name, platform } = &src.from.kind else {
            unreachable!("stages start with FROM")
        };
        let image_ref = expand(&lexer, image, &globals)?;
        if image_ref.is_empty() {
            return Err(FrontendError::new("FROM names an empty image", image.span)
                .with_hint("check the build args used in the image name"));
        }
        if let Some(p) = platform {
            let want = expand(&lexer, p, &globals)?;
            if !platform_matches(&want, &opts.platform) {
                return Err(FrontendError::new(
                    format!(
                        "platform {want:?} is not supported: rbuild builds for the host platform {}",
                        opts.platform.spec()
                    ),
                    p.span,
                )
                .with_hint(format!("remove --platform or use --platform={}", opts.platform.spec())));
            }
        }
        let base = if image_ref.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else if let Some(&i) = names.get(&image_ref.to_ascii_lowercase()) {
            Base::Stage(i)
        } else {
            Base::Image(image_ref.clone())
        };
        let stage_name = name.as_ref().map(|n| n.text.to_ascii_lowercase());
        if let Some(n) = &stage_name {
            if names.contains_key(n) {
                return Err(FrontendError::new(
                    format!("duplicate stage name {n:?}"),
                    name.as_ref().map_or(src.from.span, |w| w.span),
                )
                .with_hint("give each stage a different name"));
            }
            names.insert(n.clone(), index);
        }
        let mut deps = BTreeSet::new();
        if let Base::Stage(i) = base {
            deps.insert(i);
        }
        for instr in &src.body {
            for from in referenced_sources(instr)? {
                if let Some(i) = stage_ref(&from.text, &names, index, from.span)? {
                    deps.insert(i);
                }
            }
        }
        let from_text = match &stage_name {
            Some(n) => format!("FROM {image_ref} AS {n}"),
            None => format!("FROM {image_ref}"),
        };
        stages.push(Stage {
            index,
            label: stage_name.clone().unwrap_or_else(|| format!("stage-{index}")),
            name: stage_name,
            base,
            span: src.from.span,
            needed: false,
            deps,
            steps: Vec::new(),
            meta: ImageMeta::default(),
            from_text,
        });
    }

    let target = match &opts.target {
        Some(t) => match names.get(&t.to_ascii_lowercase()) {
            Some(&i) => i,
            None => {
                let known: Vec<&str> = names.keys().map(String::as_str).collect();
                return Err(FrontendError::new(
                    format!("target stage {t:?} could not be found"),
                    Span::default(),
                )
                .with_hint(if known.is_empty() {
                    "the Dockerfile has no named stages (name one with FROM <image> AS <name>)".to_string()
                } else {
                    format!("stages in this Dockerfile: {}", known.join(", "))
                }));
            }
        },
        None => stages.len() - 1,
    };
    mark_needed(&mut stages, target);

    // Second pass: lower the stages the target needs, in order (a stage only
    // ever refers to earlier ones). An ONBUILD trigger of a base image can
    // name a stage nothing else needed; then that stage is added and the
    // pass starts again.
    loop {
        let mut ends: Vec<StageEnd> = vec![StageEnd::default(); stages.len()];
        let mut newly_needed = None;
        for index in 0..stages.len() {
            if !stages[index].needed {
                continue;
            }
            let ctx = StageCtx { lexer: &lexer, opts, globals: &globals, names: &names, index };
            let lowered = ctx.lower_stage(&sources[index], &stages, &ends, resolver, &mut used_build_args)?;
            let missing = lowered.referenced.iter().copied().find(|&i| !stages[i].needed);
            stages[index].steps = lowered.steps;
            stages[index].meta = lowered.meta;
            stages[index].deps.extend(lowered.referenced);
            ends[index] = lowered.end;
            if let Some(i) = missing {
                newly_needed = Some(i);
                break;
            }
        }
        match newly_needed {
            Some(i) => mark_needed(&mut stages, i),
            None => break,
        }
    }

    for arg in opts.build_args.keys() {
        if !used_build_args.contains(arg) && !is_proxy_arg(arg) {
            warnings.push(Warning {
                message: format!("build arg {arg:?} was given but no ARG in the built stages declares it"),
                span: None,
            });
        }
    }
    Ok(StepGraph { stages, target, warnings })
}

/// True for `docker/dockerfile:1`, `docker.io/docker/dockerfile:1.7-labs`,
/// `docker/dockerfile-upstream:master`, with or without a digest.
fn is_known_syntax(value: &str) -> bool {
    let name = value.split('@').next().unwrap_or(value);
    let name = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    };
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    KNOWN_SYNTAX_IMAGES.contains(&name)
}

fn platform_matches(want: &str, host: &Platform) -> bool {
    let mut parts = want.split('/');
    let os = parts.next().unwrap_or("");
    let arch = parts.next();
    os == host.os
        && arch.is_none_or(|a| a == host.architecture || (a == "x86_64" && host.architecture == "amd64"))
}

fn mark_needed(stages: &mut [Stage], target: usize) {
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if stages[i].needed {
            continue;
        }
        stages[i].needed = true;
        todo.extend(stages[i].deps.iter().copied());
    }
}

/// The `--from` values an instruction reads (COPY flags and RUN mounts).
/// Neither may use variables: stage dependencies are decided before any
/// expansion, as in BuildKit.
fn referenced_sources(instr: &Instruction) -> Result<Vec<Word>, FrontendError> {
    Ok(match &instr.kind {
        Kind::Copy(c) | Kind::Add(c) => c.from.iter().cloned().collect(),
        Kind::Run { mounts, .. } => {
            let mut out = Vec::new();
            for m in mounts {
                if let Some(from) = mount_from(&m.text) {
                    if from.contains('$') {
                        return Err(FrontendError::new(
                            "from= of a mount doesn't support variable expansion",
                            m.span,
                        )
                        .with_hint("define an alias stage (FROM ${VAR} AS name) and mount from=name"));
                    }
                    out.push(Word { text: from, span: m.span });
                }
            }
            out
        }
        _ => Vec::new(),
    })
}

/// Resolves a `--from` value to an earlier stage; `None` means an image.
fn stage_ref(
    value: &str,
    names: &BTreeMap<String, usize>,
    current: usize,
    span: Span,
) -> Result<Option<usize>, FrontendError> {
    if let Ok(i) = value.parse::<usize>() {
        if i >= current {
            return Err(FrontendError::new(
                format!("--from={i} refers to the current or a later stage"),
                span,
            )
            .with_hint("refer to an earlier stage by name or index"));
        }
        return Ok(Some(i));
    }
    match names.get(&value.to_ascii_lowercase()) {
        Some(&i) if i < current => Ok(Some(i)),
        Some(_) => {
            Err(FrontendError::new(format!("--from={value} refers to the current or a later stage"), span)
                .with_hint("a stage can only copy from stages defined above it"))
        }
        None => Ok(None),
    }
}

fn expand(lexer: &Lexer, word: &Word, env: &dyn Env) -> Result<String, FrontendError> {
    expand_text(lexer, &word.text, word.span, env)
}

fn expand_text(lexer: &Lexer, text: &str, span: Span, env: &dyn Env) -> Result<String, FrontendError> {
    lexer
        .process_word(text, env)
        .map(|e| e.value)
        .map_err(|e| FrontendError::new(format!("cannot expand {text:?}: {}", e.message), span))
}

struct StageCtx<'a> {
    lexer: &'a Lexer,
    opts: &'a LowerOptions,
    /// The global scope: platform args and the ARGs before the first FROM.
    globals: &'a Vars,
    names: &'a BTreeMap<String, usize>,
    index: usize,
}

/// The mutable state of one stage while it is lowered.
struct StageState {
    meta: ImageMeta,
    /// The build environment (see the module docs).
    build_env: Vars,
    /// The args declared so far (inherited from a base stage first), with
    /// their values, for the history of RUN steps.
    args: Vec<(String, Option<String>)>,
    /// The names in `args`.
    arg_names: HashSet<String>,
    cmd_set_here: bool,
    steps: Vec<Step>,
    /// Stages read by COPY --from and mounts.
    referenced: BTreeSet<usize>,
}

struct LoweredStage {
    steps: Vec<Step>,
    meta: ImageMeta,
    end: StageEnd,
    referenced: BTreeSet<usize>,
}

impl StageCtx<'_> {
    fn lower_stage(
        &self,
        src: &StageSource,
        stages: &[Stage],
        ends: &[StageEnd],
        resolver: &mut dyn BaseResolver,
        used: &mut BTreeSet<String>,
    ) -> Result<LoweredStage, FrontendError> {
        let stage = &stages[self.index];
        let (mut meta, inherited) = match &stage.base {
            Base::Scratch => (ImageMeta::default(), StageEnd::default()),
            Base::Stage(i) => (stages[*i].meta.clone(), ends[*i].clone()),
            Base::Image(r) => {
                let meta = resolver.resolve(r).map_err(|e| FrontendError {
                    message: e.message,
                    span: stage.span,
                    hint: e.hint,
                })?;
                (meta, StageEnd::default())
            }
        };
        // Every image gets a PATH, as BuildKit gives it (config included).
        if meta.env_get("PATH").is_none() {
            meta.env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        let mut build_env = if matches!(stage.base, Base::Stage(_)) {
            inherited.build_env.clone()
        } else {
            Vars::from(meta.env.clone())
        };
        if build_env.lookup("PATH").is_none() {
            build_env.set("PATH", DEFAULT_PATH);
        }
        // ONBUILD triggers of the base run first; they are not inherited further.
        let triggers = std::mem::take(&mut meta.onbuild);
        let mut body: Vec<Instruction> = Vec::new();
        for trigger in &triggers {
            let ast = parser::parse(trigger).map_err(|e| {
                FrontendError::new(
                    format!("invalid ONBUILD trigger {trigger:?} in the base image: {}", e.message),
                    stage.span,
                )
            })?;
            if ast.nodes.len() != 1 {
                return Err(FrontendError::new(
                    format!("ONBUILD trigger {trigger:?} of the base image is not a single instruction"),
                    stage.span,
                ));
            }
            for node in &ast.nodes {
                let mut instr = instructions::from_node(node).map_err(|e| {
                    FrontendError::new(
                        format!("invalid ONBUILD trigger {trigger:?}: {}", e.message),
                        stage.span,
                    )
                })?;
                if matches!(instr.kind, Kind::Onbuild(_) | Kind::From { .. }) {
                    return Err(FrontendError::new(
                        format!("{} isn't allowed as an ONBUILD trigger", instr.keyword),
                        stage.span,
                    ));
                }
                instr.span = stage.span;
                body.push(instr);
            }
        }
        body.extend(src.body.iter().cloned());

        let mut st = StageState {
            meta,
            build_env,
            arg_names: inherited.args.iter().map(|(k, _)| k.clone()).collect(),
            args: inherited.args,
            cmd_set_here: false,
            steps: Vec::new(),
            referenced: BTreeSet::new(),
        };
        for instr in &body {
            self.lower_instruction(instr, &mut st, used)?;
        }
        Ok(LoweredStage {
            steps: st.steps,
            meta: st.meta,
            end: StageEnd { build_env: st.build_env, args: st.args },
            referenced: st.referenced,
        })
    }

    fn push_meta(&self, st: &mut StageState, instr: &Instruction, text: String) {
        st.steps.push(Step {
            op: Op::Meta,
            span: instr.span,
            created_by: format!("/bin/sh -c #(nop) {text}"),
            text,
        });
    }

    /// A `--from` value: an earlier stage (remembered as read) or an image.
    fn source_of(
        &self,
        st: &mut StageState,
        value: &str,
        span: Span,
    ) -> Result<Option<usize>, FrontendError> {
        let found = stage_ref(value, self.names, self.index, span)?;
        if let Some(i) = found {
            st.referenced.insert(i);
        }
        Ok(found)
    }

    fn lower_instruction(
        &self,
        instr: &Instruction,
        st: &mut StageState,
        used: &mut BTreeSet<String>,
    ) -> Result<(), FrontendError> {
        let lexer = self.lexer;
        match &instr.kind {
            Kind::From { .. } => unreachable!("FROM starts a stage"),
            Kind::Env(pairs) => {
                // Every value sees the environment from before the
                // instruction: `ENV a=1 b=$a` takes the old `a`, as Docker.
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    let key = expand(lexer, k, &st.build_env)?;
                    if key.is_empty() {
                        return Err(FrontendError::new("ENV names an empty variable", k.span));
                    }
                    expanded.push((key, expand(lexer, v, &st.build_env)?));
                }
                for (k, v) in &expanded {
                    st.meta.env_set(k, v);
                    st.build_env.set(k, v);
                }
                let text = expanded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
                self.push_meta(st, instr, format!("ENV {text}"));
            }
            Kind::Label(pairs) => {
                let mut text = Vec::new();
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    let key = expand(lexer, k, &st.build_env)?;
                    if key.is_empty() {
                        return Err(FrontendError::new("LABEL names an empty key", k.span));
                    }
                    let value = expand(lexer, v, &st.build_env)?;
                    text.push(format!("{key}={value}"));
                    expanded.push((key, value));
                }
                st.meta.labels.extend(expanded);
                self.push_meta(st, instr, format!("LABEL {}", text.join(" ")));
            }
            Kind::Arg(decls) => {
                let mut text = Vec::new();
                for (name, default) in decls {
                    // A --build-arg wins, then the default (expanded in the
                    // build environment so far), then a global of the same name.
                    let value = match self.opts.build_args.get(&name.text) {
                        Some(v) => {
                            used.insert(name.text.clone());
                            Some(v.clone())
                        }
                        None => match default {
                            Some(d) => Some(expand(lexer, d, &st.build_env)?),
                            None => self.globals.lookup(&name.text).map(str::to_string),
                        },
                    };
                    if let Some(v) = &value {
                        st.build_env.set(&name.text, v);
                    }
                    text.push(match &value {
                        Some(v) => format!("{}={v}", name.text),
                        None => name.text.clone(),
                    });
                    // A redeclared arg moves to the end (rare: scan only then).
                    if !st.arg_names.insert(name.text.clone()) {
                        st.args.retain(|(k, _)| *k != name.text);
                    }
                    st.args.push((name.text.clone(), value));
                }
                self.push_meta(st, instr, format!("ARG {}", text.join(" ")));
            }
            Kind::Expose(ports) => {
                let mut added = Vec::new();
                for p in ports {
                    let words = lexer.process_words(&p.text, &st.build_env).map_err(|e| {
                        FrontendError::new(format!("cannot expand {:?}: {}", p.text, e.message), p.span)
                    })?;
                    added.extend(expose_ports(&words.value, p.span)?);
                }
                st.meta.exposed_ports.extend(added.iter().cloned());
                self.push_meta(st, instr, format!("EXPOSE {}", added.join(" ")));
            }
            Kind::Workdir(w) => {
                let path = expand(lexer, w, &st.build_env)?;
                if path.is_empty() {
                    return Err(FrontendError::new("WORKDIR names an empty path", w.span)
                        .with_hint("check the variables used in the path"));
                }
                st.meta.workdir = absolute(&path, &st.meta.workdir);
                let text = format!("WORKDIR {}", st.meta.workdir);
                st.steps.push(Step {
                    op: Op::Mkdir(MkdirOp { path: st.meta.workdir.clone(), user: st.meta.user.clone() }),
                    span: instr.span,
                    created_by: text.clone(),
                    text: display(instr),
                });
            }
            Kind::User(w) => {
                st.meta.user = expand(lexer, w, &st.build_env)?;
                if st.meta.user.is_empty() {
                    return Err(FrontendError::new("USER names an empty user", w.span)
                        .with_hint("write USER name[:group] or USER uid[:gid]"));
                }
                self.push_meta(st, instr, format!("USER {}", st.meta.user));
            }
            Kind::Volume(paths) => {
                let mut added = Vec::new();
                for p in paths {
                    let v = expand(lexer, p, &st.build_env)?;
                    if v.trim().is_empty() {
                        return Err(FrontendError::new(
                            "VOLUME specified can not be an empty string",
                            p.span,
                        ));
                    }
                    added.push(v);
                }
                st.meta.volumes.extend(added.iter().cloned());
                self.push_meta(st, instr, format!("VOLUME {}", go_list(&added)));
            }
            Kind::StopSignal(w) => {
                let sig = expand(lexer, w, &st.build_env)?;
                validate_signal(&sig, w.span)?;
                st.meta.stop_signal = Some(sig.clone());
                self.push_meta(st, instr, format!("STOPSIGNAL {sig}"));
            }
            Kind::Maintainer(w) => {
                st.meta.maintainer = Some(w.text.clone());
                self.push_meta(st, instr, format!("MAINTAINER {}", w.text));
            }
            Kind::Cmd(c) => {
                let argv = self.argv(c, &st.meta);
                st.meta.cmd = Some(argv.clone());
                st.meta.args_escaped = false;
                st.cmd_set_here = true;
                self.push_meta(st, instr, format!("CMD {}", go_list(&argv)));
            }
            Kind::Entrypoint(c) => {
                let argv = self.argv(c, &st.meta);
                st.meta.entrypoint = Some(argv.clone());
                if !st.cmd_set_here {
                    // As Docker: a new ENTRYPOINT drops a CMD inherited from the base.
                    st.meta.cmd = None;
                }
                self.push_meta(st, instr, format!("ENTRYPOINT {}", go_list(&argv)));
            }
            Kind::Shell(shell) => {
                st.meta.shell = shell.clone();
                self.push_meta(st, instr, format!("SHELL {}", go_list(shell)));
            }
            Kind::Healthcheck(h) => {
                st.meta.healthcheck = Some(healthcheck(h, &st.meta)?);
                let test = st.meta.healthcheck.as_ref().map(|h| go_list(&h.test)).unwrap_or_default();
                self.push_meta(st, instr, format!("HEALTHCHECK {test}"));
            }
            Kind::Onbuild(inner) => {
                let text = inner.original.trim().to_string();
                st.meta.onbuild.push(text.clone());
                self.push_meta(st, instr, format!("ONBUILD {text}"));
            }
            Kind::Run { command, mounts, network, security, heredocs } => {
                self.lower_run(instr, st, command, mounts, network.as_ref(), security.as_ref(), heredocs)?;
            }
            Kind::Copy(c) | Kind::Add(c) => {
                let is_add = matches!(instr.kind, Kind::Add(_));
                let op = self.copy_op(c, is_add, st)?;
                st.steps.push(Step {
                    op: Op::Copy(op),
                    span: instr.span,
                    created_by: display(instr),
                    text: display(instr),
                });
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn lower_run(
        &self,
        instr: &Instruction,
        st: &mut StageState,
        command: &Command,
        mounts: &[Word],
        network: Option<&Word>,
        security: Option<&Word>,
        heredocs: &[Heredoc],
    ) -> Result<(), FrontendError> {
        let lexer = self.lexer;
        // `--network` is taken as written, as BuildKit does.
        let network = match network {
            None => Network::Default,
            Some(w) => match w.text.as_str() {
                "default" => Network::Default,
                "none" => Network::None,
                "host" => Network::Host,
                other => {
                    return Err(FrontendError::new(format!("unsupported network mode {other:?}"), w.span)
                        .with_hint("use --network=default, none or host"));
                }
            },
        };
        if let Some(w) = security {
            match w.text.as_str() {
                "sandbox" => {}
                "insecure" => {
                    return Err(FrontendError::new(
                        "RUN --security=insecure is not supported: rbuild runs every step sandboxed",
                        w.span,
                    )
                    .with_hint("remove --security=insecure; steps that need full privileges cannot be built with rbuild"));
                }
                other => {
                    return Err(FrontendError::new(format!("unsupported security mode {other:?}"), w.span)
                        .with_hint("use --security=sandbox"));
                }
            }
        }
        let mut parsed_mounts = Vec::new();
        for m in mounts {
            let env = st.build_env.clone();
            let mut expand_field = |v: &str| expand_text(lexer, v, m.span, &env);
            let mut resolve_from = |f: &str| -> Result<MountSource, FrontendError> {
                Ok(match stage_ref(f, self.names, self.index, m.span)? {
                    Some(i) => MountSource::Stage(i),
                    None => MountSource::Image(f.to_string()),
                })
            };
            let mount = parse_mount(&m.text, m.span, &st.meta.workdir, &mut expand_field, &mut resolve_from)?;
            if let Mount::Bind { from: MountSource::Stage(i), .. }
            | Mount::Cache { from: Some(MountSource::Stage(i)), .. } = &mount
            {
                st.referenced.insert(*i);
            }
            parsed_mounts.push(mount);
        }
        let mut script = None;
        let argv = match command {
            Command::Shell(cmd) if !heredocs.is_empty() => {
                let mut shell = st.meta.shell_or_default();
                if heredocs.len() == 1 && is_sole_heredoc(cmd) {
                    let body = &heredocs[0];
                    if body.content.starts_with("#!") {
                        // A script with its own interpreter: run the file,
                        // not the shell (BuildKit mounts it the same way).
                        let path = format!("{INLINE_SCRIPT_DIR}/{}", body.name);
                        script =
                            Some(InlineScript { name: body.name.clone(), content: body.content.clone() });
                        vec![path]
                    } else {
                        shell.push(body.content.clone());
                        shell
                    }
                } else {
                    // The shell itself reads the heredocs (`python3 <<EOF`,
                    // several bodies on one line): give it the text back whole.
                    let mut text = cmd.clone();
                    for h in heredocs {
                        text.push('\n');
                        text.push_str(&h.content);
                        text.push_str(&h.name);
                    }
                    shell.push(text);
                    shell
                }
            }
            c => self.argv(c, &st.meta),
        };
        let mut env: Vec<String> = st.build_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if st.build_env.lookup("PATH").is_none() {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        let declared = |k: &str| st.args.iter().any(|(a, _)| a.eq_ignore_ascii_case(k));
        let mut proxy_env = Vec::new();
        for (k, v) in &self.opts.build_args {
            if !is_proxy_arg(k) || declared(k) {
                continue;
            }
            for spelling in [k.to_ascii_uppercase(), k.to_ascii_lowercase()] {
                if st.build_env.lookup(&spelling).is_none()
                    && !proxy_env.iter().any(|e: &String| e.starts_with(&format!("{spelling}=")))
                {
                    proxy_env.push(format!("{spelling}={v}"));
                }
            }
        }
        // The history names every declared arg with the value the step sees.
        let args: Vec<(String, String)> = st
            .args
            .iter()
            .map(|(k, v)| {
                let value =
                    st.build_env.lookup(k).map(str::to_string).or_else(|| v.clone()).unwrap_or_default();
                (k.clone(), value)
            })
            .collect();
        let prefix = if args.is_empty() {
            String::new()
        } else {
            format!(
                "|{} {} ",
                args.len(),
                args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
            )
        };
        let mut text = display(instr);
        if let Some(h) = heredocs.first()
            && heredocs.len() == 1
            && matches!(command, Command::Shell(c) if is_sole_heredoc(c))
        {
            text.push_str(&format!(" ({})", summarize_heredoc(&h.content)));
        }
        st.steps.push(Step {
            op: Op::Run(RunOp {
                argv: argv.clone(),
                env,
                args,
                user: st.meta.user.clone(),
                workdir: if st.meta.workdir.is_empty() { "/".into() } else { st.meta.workdir.clone() },
                network,
                mounts: parsed_mounts,
                proxy_env,
                script,
            }),
            span: instr.span,
            created_by: format!("RUN {prefix}{}", argv.join(" ")),
            text,
        });
        Ok(())
    }

    /// Exec form as is; shell form wrapped in the stage's shell.
    fn argv(&self, c: &Command, meta: &ImageMeta) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = meta.shell_or_default();
                v.push(s.clone());
                v
            }
        }
    }

    fn copy_op(&self, c: &CopyArgs, is_add: bool, st: &mut StageState) -> Result<CopyOp, FrontendError> {
        let lexer = self.lexer;
        let source = match &c.from {
            None => CopySource::Context,
            Some(w) => match self.source_of(st, &w.text, w.span)? {
                Some(i) => CopySource::Stage(i),
                None => CopySource::Image(w.text.clone()),
            },
        };
        let env = &st.build_env;
        let mut paths = Vec::new();
        let mut urls = Vec::new();
        for s in &c.sources {
            let p = expand(lexer, s, env)?;
            if p.is_empty() {
                return Err(FrontendError::new("a source path is empty", s.span)
                    .with_hint("check the variables used in the source"));
            }
            if is_git_source(&p) {
                return Err(FrontendError::new(
                    format!("{p} is a git repository, which rbuild cannot fetch"),
                    s.span,
                )
                .with_hint("clone it into the build context first, or fetch it in a RUN step"));
            }
            if p.starts_with("http://") || p.starts_with("https://") {
                if !is_add {
                    return Err(FrontendError::new(
                        format!("COPY cannot fetch {p}: only ADD takes URLs"),
                        s.span,
                    )
                    .with_hint("use ADD for URLs, or download the file into the context"));
                }
                if !matches!(source, CopySource::Context) {
                    return Err(FrontendError::new("ADD of a URL cannot be combined with --from", s.span));
                }
                urls.push(SourcePath { path: p, span: s.span });
                continue;
            }
            paths.push(SourcePath { path: p, span: s.span });
        }
        let dest_raw = expand(lexer, &c.dest, env)?;
        if dest_raw.is_empty() {
            return Err(FrontendError::new("the destination is empty", c.dest.span)
                .with_hint("check the variables used in the destination"));
        }
        let sources = paths.len() + urls.len() + c.heredocs.len();
        if sources > 1 && !dest_raw.ends_with('/') {
            return Err(FrontendError::new(
                format!(
                    "when using {} with more than one source file, the destination must be a directory and end with a /",
                    if is_add { "ADD" } else { "COPY" }
                ),
                c.dest.span,
            )
            .with_hint(format!("write {dest_raw}/")));
        }
        let dest_is_dir = dest_raw.ends_with('/') || sources > 1;
        let dest = absolute(&dest_raw, &st.meta.workdir);
        let dest = if dest_raw.ends_with('/') && dest != "/" { format!("{dest}/") } else { clean(&dest) };
        let chown = c.chown.as_ref().map(|w| expand(lexer, w, env)).transpose()?.filter(|s| !s.is_empty());
        let chmod = match &c.chmod {
            None => None,
            Some(w) => {
                let v = expand(lexer, w, env)?;
                Some(filemode::parse(&v).map_err(|m| {
                    FrontendError::new(m, w.span).with_hint(
                        "use an octal mode such as --chmod=0755, or a symbolic one such as --chmod=u+x",
                    )
                })?)
            }
        };
        let checksum = match &c.checksum {
            None => None,
            Some(w) => {
                let v = expand(lexer, w, env)?;
                if urls.len() != 1 || !paths.is_empty() {
                    return Err(FrontendError::new(
                        "--checksum needs exactly one source, and it must be a URL",
                        w.span,
                    )
                    .with_hint("write ADD --checksum=sha256:<hex> https://… <dest>"));
                }
                let hex = v
                    .strip_prefix("sha256:")
                    .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
                if hex.is_none() {
                    return Err(FrontendError::new(format!("invalid checksum {v:?}"), w.span)
                        .with_hint("write --checksum=sha256:<64 hex digits>"));
                }
                Some(v.to_ascii_lowercase())
            }
        };
        // Heredoc bodies are expanded unless the delimiter was quoted; quotes
        // inside them are text, and the escape is always `\` (BuildKit's raw
        // expansion).
        let raw = Lexer { skip_process_quotes: true, ..Lexer::new('\\') };
        let mut inline = Vec::new();
        for h in &c.heredocs {
            let content =
                if h.expand { expand_text(&raw, &h.content, c.dest.span, env)? } else { h.content.clone() };
            inline.push((h.name.clone(), content));
        }
        let extract_archives = is_add && c.unpack.unwrap_or(true);
        Ok(CopyOp {
            source,
            paths,
            urls,
            inline,
            dest,
            dest_is_dir,
            chown,
            chmod,
            link: c.link,
            parents: c.parents,
            exclude: c.exclude.clone(),
            extract_archives,
            unpack_urls: is_add && c.unpack == Some(true),
            checksum,
            user: st.meta.user.clone(),
        })
    }
}

/// `git@host:repo`, `git://…`, or an http(s) URL of a `.git` repository
/// (optionally with `#ref`), as BuildKit recognises them.
fn is_git_source(p: &str) -> bool {
    if p.starts_with("git@") || p.starts_with("git://") || p.starts_with("ssh://") {
        return true;
    }
    let base = p.split('#').next().unwrap_or(p);
    (p.starts_with("http://") || p.starts_with("https://")) && (base.ends_with(".git") || p.contains(".git#"))
}

/// True when a RUN's shell text is nothing but one heredoc marker.
fn is_sole_heredoc(cmd: &str) -> bool {
    let t = cmd.trim();
    t.starts_with("<<") && !t.contains(char::is_whitespace)
}

/// The first lines of a heredoc, for progress (`RUN <<EOF (echo hi…)`).
fn summarize_heredoc(content: &str) -> String {
    let lines: Vec<&str> = content.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match lines.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        [first, ..] => format!("{first}..."),
    }
}

/// The instruction as written, continuations joined, for progress lines.
fn display(instr: &Instruction) -> String {
    let flat: String = instr.original.split_whitespace().collect::<Vec<_>>().join(" ");
    let (kw, rest) = flat.split_once(' ').unwrap_or((&flat, ""));
    if rest.is_empty() { kw.to_uppercase() } else { format!("{} {rest}", kw.to_uppercase()) }
}

/// Go's `%q` of a string slice: `["a" "b"]`, as Docker's history shows.
fn go_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| serde_json::to_string(s).unwrap_or_default()).collect();
    format!("[{}]", quoted.join(" "))
}

/// EXPOSE values: `80`, `80/udp`, `8000-8002/tcp` → `80/tcp` etc.
fn expose_ports(value: &str, span: Span) -> Result<Vec<String>, FrontendError> {
    let mut out = Vec::new();
    for item in value.split_whitespace() {
        let (ports, proto) = match item.split_once('/') {
            Some((p, proto)) => (p, proto.to_ascii_lowercase()),
            None => (item, "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(FrontendError::new(format!("invalid protocol {proto:?} in EXPOSE {item}"), span)
                .with_hint("use tcp, udp or sctp"));
        }
        let bad = || {
            FrontendError::new(format!("invalid port {item:?} in EXPOSE"), span)
                .with_hint("write a port (1-65535) or a range like 8000-8010")
        };
        let (lo, hi) = match ports.split_once('-') {
            Some((a, b)) => (a.parse::<u16>().map_err(|_| bad())?, b.parse::<u16>().map_err(|_| bad())?),
            None => {
                let p = ports.parse::<u16>().map_err(|_| bad())?;
                (p, p)
            }
        };
        if lo == 0 || hi < lo {
            return Err(bad());
        }
        for p in lo..=hi {
            out.push(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

fn validate_signal(sig: &str, span: Span) -> Result<(), FrontendError> {
    let name = sig.trim_start_matches("SIG");
    let known = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
        "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ",
        "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    let ok = sig.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n))
        || known.contains(&name)
        || name.strip_prefix("RTMIN").is_some()
        || name.strip_prefix("RTMAX").is_some();
    if ok {
        Ok(())
    } else {
        Err(FrontendError::new(format!("invalid signal {sig:?}"), span)
            .with_hint("use a name like SIGTERM or a number"))
    }
}

fn healthcheck(h: &instructions::HealthArgs, meta: &ImageMeta) -> Result<Healthcheck, FrontendError> {
    let Some(cmd) = &h.command else {
        return Ok(Healthcheck { test: vec!["NONE".into()], ..Default::default() });
    };
    let test = match cmd {
        Command::Exec(v) => std::iter::once("CMD".to_string()).chain(v.iter().cloned()).collect(),
        Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
    };
    let _ = meta;
    let duration = |w: &Option<Word>, what: &str| -> Result<i64, FrontendError> {
        match w {
            None => Ok(0),
            Some(w) => {
                // A negative duration is as invalid here as a malformed one.
                let ns = parse_go_duration(&w.text).filter(|ns| *ns >= 0).ok_or_else(|| {
                    FrontendError::new(format!("invalid {what} {:?}", w.text), w.span)
                        .with_hint("write a duration such as 30s or 1m30s")
                })?;
                if ns < 1_000_000 && ns != 0 {
                    return Err(FrontendError::new(
                        format!("{what} {:?} cannot be less than 1ms", w.text),
                        w.span,
                    ));
                }
                Ok(ns)
            }
        }
    };
    let retries = match &h.retries {
        None => 0,
        Some(w) => w
            .text
            .parse::<i64>()
            .ok()
            .filter(|r| *r >= 0)
            .ok_or_else(|| FrontendError::new(format!("invalid --retries {:?}", w.text), w.span))?,
    };
    Ok(Healthcheck {
        test,
        interval_ns: duration(&h.interval, "--interval")?,
        timeout_ns: duration(&h.timeout, "--timeout")?,
        start_period_ns: duration(&h.start_period, "--start-period")?,
        start_interval_ns: duration(&h.start_interval, "--start-interval")?,
        retries,
    })
}
