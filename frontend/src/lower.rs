//! Lowering: typed instructions to a [`StepGraph`]. Tracks each stage's
//! state (env, args, user, workdir, shell, config) the way BuildKit's
//! Dockerfile frontend does, expands variables where BuildKit does, resolves
//! stage references, and decides which stages the target needs.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::FrontendError;
use crate::graph::*;
use crate::instructions::{self, Command, CopyArgs, Instruction, Kind, Word};
use crate::mounts::{absolute, clean, parse_mount};
use crate::parser::{self, Ast};
use crate::shell::{Env, Lexer};
use crate::span::Span;

/// The default PATH BuildKit gives `FROM scratch` images and RUN steps.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Build args passed through to RUN without being declared, and kept out
/// of history, as Docker does.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

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

/// Variables visible to expansion: build args first, then env, later wins.
struct Scope<'a> {
    args: &'a [(String, Option<String>)],
    env: &'a [(String, String)],
}

impl Env for Scope<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        if let Some((_, v)) = self.env.iter().find(|(k, _)| k == name) {
            return Some(v);
        }
        self.args.iter().rev().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref())
    }
}

struct StageSource {
    from: Instruction,
    body: Vec<Instruction>,
}

/// Lowers a parsed Dockerfile.
pub fn lower(
    ast: &Ast,
    opts: &LowerOptions,
    resolver: &mut dyn BaseResolver,
) -> Result<StepGraph, FrontendError> {
    let lexer = Lexer::new(ast.directives.escape);
    let mut globals: Vec<(String, Option<String>)> = Vec::new();
    let mut used_build_args: BTreeSet<String> = BTreeSet::new();
    let mut sources: Vec<StageSource> = Vec::new();
    let mut warnings: Vec<Warning> = Vec::new();
    let platform_args: Vec<(String, Option<String>)> =
        opts.platform.args().into_iter().map(|(k, v)| (k, Some(v))).collect();

    for node in &ast.nodes {
        let instr = instructions::from_node(node)?;
        match (&instr.kind, sources.last_mut()) {
            (Kind::From { .. }, _) => sources.push(StageSource { from: instr, body: Vec::new() }),
            (_, Some(stage)) => stage.body.push(instr),
            (Kind::Arg(decls), None) => {
                for (name, default) in decls {
                    let value = arg_value(&lexer, name, default.as_ref(), opts, &platform_args, &globals)?;
                    if opts.build_args.contains_key(&name.text) {
                        used_build_args.insert(name.text.clone());
                    }
                    globals.push((name.text.clone(), value));
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

    let mut global_scope = platform_args.clone();
    global_scope.extend(globals.iter().cloned());

    // First pass: stage names, bases and references, to know what the target needs.
    let mut stages: Vec<Stage> = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (index, src) in sources.iter().enumerate() {
        let Kind::From { image, name, platform } = &src.from.kind else {
            unreachable!("stages start with FROM")
        };
        let scope = Scope { args: &global_scope, env: &[] };
        let image_ref = expand(&lexer, image, &scope)?;
        if image_ref.is_empty() {
            return Err(FrontendError::new("FROM names an empty image", image.span)
                .with_hint("check the build args used in the image name"));
        }
        if let Some(p) = platform {
            let want = expand(&lexer, p, &scope)?;
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
            for from in referenced_sources(instr) {
                let from_text = expand(&lexer, &from, &scope)?;
                if let Some(i) = stage_ref(&from_text, &names, index, from.span)? {
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
    // ever refers to earlier ones).
    for index in 0..stages.len() {
        if !stages[index].needed {
            continue;
        }
        let ctx = StageCtx {
            lexer: &lexer,
            opts,
            globals: &global_scope,
            platform_args: &platform_args,
            names: &names,
            index,
        };
        let (steps, meta) = ctx.lower_stage(&sources[index], &stages, resolver, &mut used_build_args)?;
        stages[index].steps = steps;
        stages[index].meta = meta;
    }

    for arg in opts.build_args.keys() {
        if !used_build_args.contains(arg) && !PROXY_ARGS.contains(&arg.as_str()) {
            warnings.push(Warning {
                message: format!("build arg {arg:?} was given but no ARG in the built stages declares it"),
                span: None,
            });
        }
    }
    Ok(StepGraph { stages, target, warnings })
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

/// The `--from` values an instruction reads (COPY/ADD flags and RUN mounts).
fn referenced_sources(instr: &Instruction) -> Vec<Word> {
    match &instr.kind {
        Kind::Copy(c) | Kind::Add(c) => c.from.iter().cloned().collect(),
        Kind::Run { mounts, .. } => mounts
            .iter()
            .filter_map(|m| {
                m.text
                    .split(',')
                    .find_map(|f| f.trim().strip_prefix("from="))
                    .map(|v| Word { text: v.to_string(), span: m.span })
            })
            .collect(),
        _ => Vec::new(),
    }
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

fn expand(lexer: &Lexer, word: &Word, scope: &Scope<'_>) -> Result<String, FrontendError> {
    lexer
        .process_word(&word.text, scope)
        .map(|e| e.value)
        .map_err(|e| FrontendError::new(format!("cannot expand {:?}: {}", word.text, e.message), word.span))
}

/// The value an ARG takes: a --build-arg, else its default (expanded),
/// else a global of the same name, else a platform arg.
fn arg_value(
    lexer: &Lexer,
    name: &Word,
    default: Option<&Word>,
    opts: &LowerOptions,
    platform_args: &[(String, Option<String>)],
    visible: &[(String, Option<String>)],
) -> Result<Option<String>, FrontendError> {
    if let Some(v) = opts.build_args.get(&name.text) {
        return Ok(Some(v.clone()));
    }
    if let Some(d) = default {
        let scope = Scope { args: visible, env: &[] };
        return expand(lexer, d, &scope).map(Some);
    }
    Ok(platform_args.iter().find(|(k, _)| *k == name.text).and_then(|(_, v)| v.clone()))
}

struct StageCtx<'a> {
    lexer: &'a Lexer,
    opts: &'a LowerOptions,
    globals: &'a [(String, Option<String>)],
    platform_args: &'a [(String, Option<String>)],
    names: &'a BTreeMap<String, usize>,
    index: usize,
}

/// The mutable state of one stage while it is lowered.
struct StageState {
    meta: ImageMeta,
    args: Vec<(String, Option<String>)>,
    cmd_set_here: bool,
    steps: Vec<Step>,
}

impl StageCtx<'_> {
    fn lower_stage(
        &self,
        src: &StageSource,
        stages: &[Stage],
        resolver: &mut dyn BaseResolver,
        used: &mut BTreeSet<String>,
    ) -> Result<(Vec<Step>, ImageMeta), FrontendError> {
        let stage = &stages[self.index];
        let mut meta = match &stage.base {
            Base::Scratch => {
                ImageMeta { env: vec![("PATH".into(), DEFAULT_PATH.into())], ..Default::default() }
            }
            Base::Stage(i) => stages[*i].meta.clone(),
            Base::Image(r) => resolver.resolve(r).map_err(|e| FrontendError {
                message: e.message,
                span: stage.span,
                hint: e.hint,
            })?,
        };
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
            for node in &ast.nodes {
                let mut instr = instructions::from_node(node).map_err(|e| {
                    FrontendError::new(
                        format!("invalid ONBUILD trigger {trigger:?}: {}", e.message),
                        stage.span,
                    )
                })?;
                instr.span = stage.span;
                body.push(instr);
            }
        }
        body.extend(src.body.iter().cloned());

        let mut st = StageState { meta, args: Vec::new(), cmd_set_here: false, steps: Vec::new() };
        for instr in &body {
            self.lower_instruction(instr, &mut st, used)?;
        }
        Ok((st.steps, st.meta))
    }

    fn scope<'s>(&self, st: &'s StageState) -> Scope<'s> {
        Scope { args: &st.args, env: &st.meta.env }
    }

    fn push_meta(&self, st: &mut StageState, instr: &Instruction, text: String) {
        st.steps.push(Step {
            op: Op::Meta,
            span: instr.span,
            created_by: format!("/bin/sh -c #(nop) {text}"),
            text,
            meta: st.meta.clone(),
        });
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
                let scope = self.scope(st);
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    let key = expand(lexer, k, &scope)?;
                    if key.is_empty() {
                        return Err(FrontendError::new("ENV names an empty variable", k.span));
                    }
                    expanded.push((key, expand(lexer, v, &scope)?));
                }
                for (k, v) in &expanded {
                    st.meta.env_set(k, v);
                }
                let text = expanded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
                self.push_meta(st, instr, format!("ENV {text}"));
            }
            Kind::Label(pairs) => {
                let scope = self.scope(st);
                let mut text = Vec::new();
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    let key = expand(lexer, k, &scope)?;
                    let value = expand(lexer, v, &scope)?;
                    text.push(format!("{key}={value}"));
                    expanded.push((key, value));
                }
                st.meta.labels.extend(expanded);
                self.push_meta(st, instr, format!("LABEL {}", text.join(" ")));
            }
            Kind::Arg(decls) => {
                let mut text = Vec::new();
                for (name, default) in decls {
                    let visible: Vec<(String, Option<String>)> =
                        self.globals.iter().chain(st.args.iter()).cloned().collect();
                    let mut value =
                        arg_value(lexer, name, default.as_ref(), self.opts, self.platform_args, &visible)?;
                    if value.is_none() && default.is_none() {
                        value = self
                            .globals
                            .iter()
                            .rev()
                            .find(|(k, _)| *k == name.text)
                            .and_then(|(_, v)| v.clone());
                    }
                    if self.opts.build_args.contains_key(&name.text) {
                        used.insert(name.text.clone());
                    }
                    text.push(match &value {
                        Some(v) => format!("{}={v}", name.text),
                        None => name.text.clone(),
                    });
                    st.args.retain(|(k, _)| *k != name.text);
                    st.args.push((name.text.clone(), value));
                }
                self.push_meta(st, instr, format!("ARG {}", text.join(" ")));
            }
            Kind::Expose(ports) => {
                let scope = self.scope(st);
                let mut added = Vec::new();
                for p in ports {
                    added.extend(expose_ports(&expand(lexer, p, &scope)?, p.span)?);
                }
                st.meta.exposed_ports.extend(added.iter().cloned());
                self.push_meta(st, instr, format!("EXPOSE {}", added.join(" ")));
            }
            Kind::Workdir(w) => {
                let path = expand(lexer, w, &self.scope(st))?;
                st.meta.workdir = absolute(&path, &st.meta.workdir);
                let text = format!("WORKDIR {}", st.meta.workdir);
                st.steps.push(Step {
                    op: Op::Mkdir(MkdirOp { path: st.meta.workdir.clone(), user: st.meta.user.clone() }),
                    span: instr.span,
                    created_by: text.clone(),
                    text: display(instr),
                    meta: st.meta.clone(),
                });
            }
            Kind::User(w) => {
                st.meta.user = expand(lexer, w, &self.scope(st))?;
                self.push_meta(st, instr, format!("USER {}", st.meta.user));
            }
            Kind::Volume(paths) => {
                let scope = self.scope(st);
                let mut added = Vec::new();
                for p in paths {
                    let v = expand(lexer, p, &scope)?;
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
                let sig = expand(lexer, w, &self.scope(st))?;
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
            Kind::Run { command, mounts, network, heredocs } => {
                let scope = self.scope(st);
                let network = match network {
                    None => Network::Default,
                    Some(w) => match expand(lexer, w, &scope)?.as_str() {
                        "default" => Network::Default,
                        "none" => Network::None,
                        "host" => Network::Host,
                        other => {
                            return Err(FrontendError::new(
                                format!("unsupported network mode {other:?}"),
                                w.span,
                            )
                            .with_hint("use --network=default, none or host"));
                        }
                    },
                };
                let mut parsed_mounts = Vec::new();
                for m in mounts {
                    let value = expand(lexer, m, &scope)?;
                    let mut resolve_from = |f: &str| -> Result<MountSource, FrontendError> {
                        Ok(match stage_ref(f, self.names, self.index, m.span)? {
                            Some(i) => MountSource::Stage(i),
                            None => MountSource::Image(f.to_string()),
                        })
                    };
                    parsed_mounts.push(parse_mount(&value, m.span, &st.meta.workdir, &mut resolve_from)?);
                }
                let argv = match command {
                    Command::Shell(cmd) if !heredocs.is_empty() => {
                        let mut shell = st.meta.shell_or_default();
                        let sole = heredocs.len() == 1 && is_sole_heredoc(cmd);
                        if sole {
                            shell.push(heredocs[0].content.clone());
                        } else {
                            let mut script = cmd.clone();
                            for h in heredocs {
                                script.push('\n');
                                script.push_str(&h.content);
                                script.push_str(&h.name);
                            }
                            shell.push(script);
                        }
                        shell
                    }
                    c => self.argv(c, &st.meta),
                };
                let args: Vec<(String, String)> =
                    st.args.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone()))).collect();
                let mut env: Vec<String> = Vec::new();
                let mut env_keys = BTreeSet::new();
                for (k, v) in &st.meta.env {
                    env.push(format!("{k}={v}"));
                    env_keys.insert(k.clone());
                }
                for (k, v) in &args {
                    if !env_keys.contains(k) {
                        env.push(format!("{k}={v}"));
                    }
                }
                for (k, v) in &self.opts.build_args {
                    if PROXY_ARGS.contains(&k.as_str())
                        && !env_keys.contains(k)
                        && !args.iter().any(|(a, _)| a == k)
                    {
                        env.push(format!("{k}={v}"));
                    }
                }
                if !st.meta.env.iter().any(|(k, _)| k == "PATH") {
                    env.push(format!("PATH={DEFAULT_PATH}"));
                }
                let prefix = if args.is_empty() {
                    String::new()
                } else {
                    format!(
                        "|{} {} ",
                        args.len(),
                        args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
                    )
                };
                st.steps.push(Step {
                    op: Op::Run(RunOp {
                        argv: argv.clone(),
                        env,
                        args,
                        user: st.meta.user.clone(),
                        workdir: if st.meta.workdir.is_empty() {
                            "/".into()
                        } else {
                            st.meta.workdir.clone()
                        },
                        network,
                        mounts: parsed_mounts,
                        stdin: None,
                    }),
                    span: instr.span,
                    created_by: format!("RUN {prefix}{}", argv.join(" ")),
                    text: display(instr),
                    meta: st.meta.clone(),
                });
            }
            Kind::Copy(c) | Kind::Add(c) => {
                let is_add = matches!(instr.kind, Kind::Add(_));
                let op = self.copy_op(c, is_add, st)?;
                st.steps.push(Step {
                    op: Op::Copy(op),
                    span: instr.span,
                    created_by: display(instr),
                    text: display(instr),
                    meta: st.meta.clone(),
                });
            }
        }
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

    fn copy_op(&self, c: &CopyArgs, is_add: bool, st: &StageState) -> Result<CopyOp, FrontendError> {
        let lexer = self.lexer;
        let scope = self.scope(st);
        let source = match &c.from {
            None => CopySource::Context,
            Some(w) => {
                let value = expand(lexer, w, &scope)?;
                match stage_ref(&value, self.names, self.index, w.span)? {
                    Some(i) => CopySource::Stage(i),
                    None => CopySource::Image(value),
                }
            }
        };
        let mut paths = Vec::new();
        let mut any_url = false;
        for s in &c.sources {
            let p = expand(lexer, s, &scope)?;
            if p.starts_with("http://") || p.starts_with("https://") || p.starts_with("git@") {
                if !is_add {
                    return Err(FrontendError::new(
                        format!("COPY cannot fetch {p}: only ADD takes URLs"),
                        s.span,
                    )
                    .with_hint("use ADD for URLs, or download the file into the context"));
                }
                any_url = true;
            }
            paths.push(SourcePath { path: p, span: s.span });
        }
        let dest_raw = expand(lexer, &c.dest, &scope)?;
        let dest_is_dir = dest_raw.ends_with('/') || paths.len() + c.heredocs.len() > 1;
        let dest = absolute(&dest_raw, &st.meta.workdir);
        let dest = if dest_raw.ends_with('/') && dest != "/" { format!("{dest}/") } else { clean(&dest) };
        let chown = c.chown.as_ref().map(|w| expand(lexer, w, &scope)).transpose()?;
        let chmod = match &c.chmod {
            None => None,
            Some(w) => {
                let v = expand(lexer, w, &scope)?;
                Some(u32::from_str_radix(&v, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| {
                    FrontendError::new(format!("invalid --chmod value {v:?}"), w.span)
                        .with_hint("use an octal mode such as --chmod=0755")
                })?)
            }
        };
        if any_url && !matches!(source, CopySource::Context) {
            return Err(FrontendError::new("ADD of a URL cannot be combined with --from", c.dest.span));
        }
        let inline = c
            .heredocs
            .iter()
            .map(|h| -> Result<(String, String), FrontendError> {
                let content = if h.expand {
                    lexer
                        .process_word(&h.content, &scope)
                        .map(|e| e.value)
                        .unwrap_or_else(|_| h.content.clone())
                } else {
                    h.content.clone()
                };
                Ok((h.name.clone(), content))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CopyOp {
            source: if any_url { CopySource::Url } else { source },
            paths,
            inline,
            dest,
            dest_is_dir,
            chown,
            chmod,
            link: c.link,
            parents: c.parents,
            exclude: c.exclude.clone(),
            extract_archives: is_add,
            checksum: c.checksum.clone(),
            user: st.meta.user.clone(),
        })
    }
}

/// True when a RUN's shell text is nothing but one heredoc marker.
fn is_sole_heredoc(cmd: &str) -> bool {
    let t = cmd.trim();
    t.starts_with("<<") && !t.contains(char::is_whitespace)
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
                let ns = parse_go_duration(&w.text).ok_or_else(|| {
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

/// Go's `time.ParseDuration` for the units Dockerfiles use (h, m, s, ms, us, ns).
pub fn parse_go_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    Some(total as i64)
}
