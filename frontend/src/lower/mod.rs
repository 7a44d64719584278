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
//! `testing` and `fixture` are test support only.

mod build_args;
mod command;
mod config;
mod copy;
mod expand;
#[cfg(test)]
mod fixture;
mod healthcheck;
mod history;
mod instruction;
mod onbuild;
mod options;
mod plan;
pub(crate) mod platform;
mod ports;
mod references;
mod run;
mod signal;
mod sources;
mod stage;
mod state;
mod syntax;
#[cfg(test)]
mod testing;

use std::collections::{BTreeMap, BTreeSet};

pub use options::{BaseResolver, DEFAULT_PATH, LowerOptions, NamedContext, ResolveError};
pub use platform::Platform;

use self::build_args::unused_build_arg_warnings;
use self::plan::{Plan, mark_needed, plan_stages, select_target};
use self::sources::replace_named_stages;
use self::sources::{StageSource, read_sources};
use self::stage::lower_stage;
use self::state::{StageCtx, StageEnd};
use self::syntax::foreign_frontend_warning;
use crate::error::FrontendError;
use crate::graph::{Stage, StepGraph, Warning};
use crate::parser::Ast;
use crate::shell::{Env, Lexer};
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
    let mut sources = read_sources(ast, opts, &lexer, &mut used_build_args)?;
    replace_named_stages(&mut sources.stages, &opts.named_contexts);
    let Plan { mut stages, names } =
        plan_stages(&sources.stages, &lexer, &sources.globals, &opts.platform, &opts.named_contexts)?;
    let target = select_target(opts.target.as_deref(), &names, stages.len())?;
    mark_needed(&mut stages, target);
    let passes =
        Passes { lexer: &lexer, opts, globals: &sources.globals, names: &names, sources: &sources.stages };
    passes.lower_needed(&mut stages, resolver, &mut used_build_args)?;
    warnings.extend(unused_build_arg_warnings(&opts.build_args, &used_build_args));
    let source_date_epoch =
        sources.globals.lookup("SOURCE_DATE_EPOCH").filter(|v| !v.is_empty()).map(str::to_string);
    Ok(StepGraph { stages, target, warnings, source_date_epoch, platform: opts.platform.clone() })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Base, CopySource, ImageMeta, Op};
    use crate::lower::testing::linux_amd64;
    use crate::parser::parse;

    /// Every image exists; `onbuild:side` has a trigger that copies from a
    /// stage named `side`.
    struct Images;

    impl BaseResolver for Images {
        fn resolve(
            &mut self,
            reference: &str,
            _platform: &crate::graph::Platform,
        ) -> Result<ImageMeta, ResolveError> {
            let mut meta = ImageMeta::default();
            if reference == "onbuild:side" {
                meta.onbuild = vec!["COPY --from=side /out /in".into()];
            }
            Ok(meta)
        }
    }

    fn lower_src(
        src: &str,
        build_args: &[(&str, &str)],
        target: Option<&str>,
    ) -> Result<StepGraph, FrontendError> {
        let opts = LowerOptions {
            build_args: build_args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            target: target.map(str::to_string),
            platform: linux_amd64(),
            build_platform: linux_amd64(),
            allow_insecure: false,
            allow_network_host: false,
            default_network: crate::graph::Network::Default,
            named_contexts: Default::default(),
        };
        lower(&parse(src).unwrap(), &opts, &mut Images)
    }

    fn step_texts(stage: &Stage) -> Vec<&str> {
        stage.steps.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn only_the_stages_the_target_needs_are_lowered() {
        let src = "FROM img AS base\nRUN base\nFROM img AS unused\nRUN unused\nFROM base AS app\nRUN app\nFROM img AS test\nCOPY --from=app / /\nRUN test\n";
        let g = lower_src(src, &[], Some("App")).unwrap();
        assert_eq!(g.target, 2);
        let needed: Vec<bool> = g.stages.iter().map(|s| s.needed).collect();
        assert_eq!(needed, [true, false, true, false]);
        assert_eq!(step_texts(&g.stages[2]), ["RUN app"]);
        assert!(
            g.stages[1].steps.is_empty() && g.stages[3].steps.is_empty(),
            "unneeded stages stay unlowered"
        );
        let g = lower_src(src, &[], None).unwrap();
        assert_eq!(g.target, 3, "without --target, the last stage");
        assert_eq!(g.stages.iter().map(|s| s.needed).collect::<Vec<_>>(), [true, false, true, true]);
        assert_eq!(g.stages[3].deps, BTreeSet::from([2]));
    }

    #[test]
    fn an_onbuild_trigger_can_make_another_stage_needed() {
        let src = "FROM img AS side\nRUN side\nFROM img AS other\nRUN other\nFROM onbuild:side\nRUN own\n";
        let g = lower_src(src, &[], None).unwrap();
        assert!(g.stages[0].needed, "the trigger reads it");
        assert_eq!(step_texts(&g.stages[0]), ["RUN side"], "and it is lowered");
        assert!(!g.stages[1].needed);
        let last = &g.stages[2];
        assert_eq!(last.deps, BTreeSet::from([0]));
        assert_eq!(step_texts(last), ["COPY --from=side /out /in", "RUN own"]);
        assert!(matches!(&last.steps[0].op, Op::Copy(c) if c.source == CopySource::Stage(0)));
    }

    #[test]
    fn build_args_of_stages_not_built_are_reported_unused() {
        let src = "ARG GLOBAL\nFROM img AS a\nARG ONLY_IN_A\nFROM img\nARG USED\n";
        let g =
            lower_src(src, &[("GLOBAL", "1"), ("ONLY_IN_A", "2"), ("USED", "3"), ("http_proxy", "p")], None)
                .unwrap();
        let messages: Vec<&str> = g.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            messages,
            ["build arg \"ONLY_IN_A\" was given but no ARG in the built stages declares it"]
        );
        let g = lower_src(src, &[("ONLY_IN_A", "2")], Some("a")).unwrap();
        assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    }

    #[test]
    fn a_foreign_syntax_warns_before_anything_else() {
        let g = lower_src("# syntax=example/frontend:2\nFROM img\n", &[("UNUSED", "1")], None).unwrap();
        assert_eq!(g.warnings.len(), 2);
        assert!(
            g.warnings[0]
                .message
                .starts_with("the Dockerfile asks for the frontend image \"example/frontend:2\"")
        );
        assert_eq!(g.warnings[0].span.map(|s| s.start.line), Some(1));
        assert_eq!(g.warnings[1].span, None);
    }

    #[test]
    fn global_args_reach_from_but_not_the_stage_until_declared() {
        let g = lower_src("ARG V=1\nFROM img:$V\nRUN a\nARG V\nRUN b\n", &[], None).unwrap();
        let stage = &g.stages[0];
        assert_eq!(stage.base, Base::Image("img:1".into()));
        let envs: Vec<Vec<String>> = stage
            .steps
            .iter()
            .filter_map(|s| if let Op::Run(r) = &s.op { Some(r.env.clone()) } else { None })
            .collect();
        assert!(!envs[0].iter().any(|e| e.starts_with("V=")), "{:?}", envs[0]);
        assert!(envs[1].contains(&"V=1".to_string()), "{:?}", envs[1]);
    }

    #[test]
    fn named_contexts_stand_for_images_and_stages_and_replace_stages() {
        let contexts = [
            ("deps".to_string(), NamedContext::Image("sha256:feed".into())),
            ("alias".to_string(), NamedContext::Stage("tools".into())),
            ("base".to_string(), NamedContext::Image("other:1".into())),
        ];
        let opts = LowerOptions { named_contexts: contexts.into_iter().collect(), ..LowerOptions::default() };
        let src = "FROM img AS tools\nRUN tools\nFROM img AS base\nRUN replaced\nFROM deps\nCOPY --from=deps /a /a\nCOPY --from=alias /b /b\nCOPY --from=BASE /c /c\nRUN --mount=from=deps,target=/m true\n";
        let g = lower(&parse(src).unwrap(), &opts, &mut Images).unwrap();
        assert_eq!(
            g.stages[1].base,
            Base::Image("other:1".into()),
            "a stage named like a context is replaced"
        );
        assert!(step_texts(&g.stages[1]).is_empty(), "and its instructions dropped");
        let last = &g.stages[2];
        assert_eq!(last.base, Base::Image("sha256:feed".into()));
        let sources: Vec<CopySource> = last
            .steps
            .iter()
            .filter_map(|s| if let Op::Copy(c) = &s.op { Some(c.source.clone()) } else { None })
            .collect();
        assert_eq!(
            sources,
            [CopySource::Image("sha256:feed".into()), CopySource::Stage(0), CopySource::Stage(1)],
            "a stage name wins over a context of the same name only when no context replaced it"
        );
        let Op::Run(run) = &last.steps[3].op else { panic!("a RUN") };
        assert!(
            matches!(&run.mounts[0], crate::graph::Mount::Bind { from: crate::graph::MountSource::Image(i), .. } if i == "sha256:feed")
        );
        let bad = [("x".to_string(), NamedContext::Stage("nope".into()))];
        let opts = LowerOptions { named_contexts: bad.into_iter().collect(), ..LowerOptions::default() };
        let e = lower(&parse("FROM img\nCOPY --from=x /a /a\n").unwrap(), &opts, &mut Images).unwrap_err();
        assert_eq!(e.message, "--build-context x=target:nope names no stage of this Dockerfile");
    }

    #[test]
    fn errors_stop_lowering_with_their_span() {
        let e =
            lower_src("FROM img AS a\nFROM img\nCOPY --from=a /x /x\nRUN --network=bridge x\n", &[], None)
                .unwrap_err();
        assert_eq!(e.message, "unsupported network mode \"bridge\"");
        assert_eq!(e.span.start.line, 4);
        let e = lower_src("FROM img\n", &[], Some("nope")).unwrap_err();
        assert_eq!(e.message, "target stage \"nope\" could not be found");
    }
}
