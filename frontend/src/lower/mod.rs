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
//!
//! The work flows through the submodules in this order, each using only
//! modules before it:
//! `platform` and `options` (what the caller gives) → `syntax` (the
//! `# syntax=` warning) → `expand`, `history` (texts), `references`
//! (`--from` values to stages) → `state` (what a stage carries) →
//! `build_args` (global scope, ARG, proxy args) → `sources` (nodes to the
//! global scope and stages) → `plan` (FROM, names, dependencies, target) →
//! `ports`, `signal`, `healthcheck`, `command` (values of single
//! instructions) → `config`, `run`, `copy` (per-instruction lowering) →
//! `instruction` (dispatch) → `onbuild` (a base image's triggers) → `stage`
//! (one stage from its base) → [`lower`] here, which runs the passes.

mod build_args;
mod command;
mod config;
mod copy;
mod expand;
mod healthcheck;
mod history;
mod instruction;
mod onbuild;
mod options;
mod plan;
mod platform;
mod ports;
mod references;
mod run;
mod signal;
mod sources;
mod stage;
mod state;
mod syntax;

use std::collections::{BTreeMap, BTreeSet};

pub use options::{BaseResolver, DEFAULT_PATH, LowerOptions, ResolveError};
pub use platform::Platform;

use self::build_args::unused_build_arg_warnings;
use self::plan::{Plan, mark_needed, plan_stages, select_target};
use self::sources::{StageSource, read_sources};
use self::stage::lower_stage;
use self::state::{StageCtx, StageEnd};
use self::syntax::foreign_frontend_warning;
use crate::error::FrontendError;
use crate::graph::{Stage, StepGraph, Warning};
use crate::parser::Ast;
use crate::shell::Lexer;
use crate::vars::Vars;

/// Lowers a parsed Dockerfile.
pub fn lower(
    ast: &Ast,
    opts: &LowerOptions,
    resolver: &mut dyn BaseResolver,
) -> Result<StepGraph, FrontendError> {
    let lexer = Lexer::new(ast.directives.escape);
    let mut warnings: Vec<Warning> = foreign_frontend_warning(&ast.directives).into_iter().collect();
    let mut used_build_args = BTreeSet::new();
    let sources = read_sources(ast, opts, &lexer, &mut used_build_args)?;
    let Plan { mut stages, names } = plan_stages(&sources.stages, &lexer, &sources.globals, &opts.platform)?;
    let target = select_target(opts.target.as_deref(), &names, stages.len())?;
    mark_needed(&mut stages, target);
    let passes =
        Passes { lexer: &lexer, opts, globals: &sources.globals, names: &names, sources: &sources.stages };
    passes.lower_needed(&mut stages, resolver, &mut used_build_args)?;
    warnings.extend(unused_build_arg_warnings(&opts.build_args, &used_build_args));
    Ok(StepGraph { stages, target, warnings })
}

/// What the lowering passes share: everything a stage may read but its
/// index.
struct Passes<'a> {
    lexer: &'a Lexer,
    opts: &'a LowerOptions,
    globals: &'a Vars,
    names: &'a BTreeMap<String, usize>,
    sources: &'a [StageSource],
}

impl Passes<'_> {
    /// Lowers the stages the target needs, in order (a stage only ever
    /// refers to earlier ones). An ONBUILD trigger of a base image can name
    /// a stage nothing else needed; then that stage is added and the pass
    /// starts again.
    fn lower_needed(
        &self,
        stages: &mut [Stage],
        resolver: &mut dyn BaseResolver,
        used_build_args: &mut BTreeSet<String>,
    ) -> Result<(), FrontendError> {
        while let Some(missing) = self.lower_pass(stages, resolver, used_build_args)? {
            mark_needed(stages, missing);
        }
        Ok(())
    }

    /// One pass over the needed stages; returns the first stage found to be
    /// read by a lowered stage without being needed.
    fn lower_pass(
        &self,
        stages: &mut [Stage],
        resolver: &mut dyn BaseResolver,
        used_build_args: &mut BTreeSet<String>,
    ) -> Result<Option<usize>, FrontendError> {
        let mut ends: Vec<StageEnd> = vec![StageEnd::default(); stages.len()];
        for index in 0..stages.len() {
            if !stages[index].needed {
                continue;
            }
            let lowered = lower_stage(&self.ctx(index), &self.sources[index], stages, &ends, resolver)?;
            let missing = lowered.referenced.iter().copied().find(|&i| !stages[i].needed);
            used_build_args.extend(lowered.used_build_args);
            let stage = &mut stages[index];
            stage.steps = lowered.steps;
            stage.meta = lowered.meta;
            stage.deps.extend(lowered.referenced);
            ends[index] = lowered.end;
            if missing.is_some() {
                return Ok(missing);
            }
        }
        Ok(None)
    }

    fn ctx(&self, index: usize) -> StageCtx<'_> {
        StageCtx { lexer: self.lexer, opts: self.opts, globals: self.globals, names: self.names, index }
    }
}
