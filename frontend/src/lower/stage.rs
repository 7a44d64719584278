//! Lowering one stage: start from its base (scratch, an earlier stage's
//! result, or an image the resolver describes), give it a PATH, run the
//! base image's ONBUILD triggers, then the stage's own instructions.

use super::instruction::lower_instruction;
use super::onbuild::trigger_instructions;
use super::options::{BaseResolver, DEFAULT_PATH};
use super::sources::StageSource;
use super::state::{LoweredStage, StageCtx, StageEnd, StageState};
use crate::error::FrontendError;
use crate::graph::{Base, ImageMeta, Stage};
use crate::shell::Env;
use crate::vars::Vars;

/// Lowers stage `ctx.index`; `stages` and `ends` hold the earlier stages
/// already lowered.
pub(super) fn lower_stage(
    ctx: &StageCtx,
    src: &StageSource,
    stages: &[Stage],
    ends: &[StageEnd],
    resolver: &mut dyn BaseResolver,
) -> Result<LoweredStage, FrontendError> {
    let stage = &stages[ctx.index];
    let (mut meta, inherited) = base_state(stage, stages, ends, resolver)?;
    let build_env = initial_build_env(&mut meta, &stage.base, inherited.build_env);
    // ONBUILD triggers of the base run first; they are not inherited further.
    let triggers = std::mem::take(&mut meta.onbuild);
    let mut body = trigger_instructions(&triggers, stage.span)?;
    body.extend(src.body.iter().cloned());
    let mut st = StageState::new(meta, build_env, inherited.args);
    for instr in &body {
        lower_instruction(ctx, &mut st, instr)?;
    }
    Ok(st.finish())
}

/// The config a stage starts from and what its base stage hands on (nothing
/// for scratch or an image). A resolver error is shown at the FROM line.
fn base_state(
    stage: &Stage,
    stages: &[Stage],
    ends: &[StageEnd],
    resolver: &mut dyn BaseResolver,
) -> Result<(ImageMeta, StageEnd), FrontendError> {
    Ok(match &stage.base {
        // BuildKit's empty image has `/` as its working dir.
        Base::Scratch => (ImageMeta { workdir: "/".into(), ..ImageMeta::default() }, StageEnd::default()),
        Base::Stage(i) => (stages[*i].meta.clone(), ends[*i].clone()),
        Base::Image(r) => {
            let meta = resolver.resolve(r, &stage.platform).map_err(|e| FrontendError {
                message: e.message,
                span: stage.span,
                hint: e.hint,
            })?;
            (meta, StageEnd::default())
        }
    })
}

/// Every image gets a PATH, as BuildKit gives it (config included). A stage
/// built on a stage continues that stage's build environment; otherwise it
/// starts from the image's env.
fn initial_build_env(meta: &mut ImageMeta, base: &Base, inherited: Vars) -> Vars {
    if meta.env_get("PATH").is_none() {
        meta.env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    let mut build_env = if matches!(base, Base::Stage(_)) { inherited } else { Vars::from(meta.env.clone()) };
    if build_env.lookup("PATH").is_none() {
        build_env.set("PATH", DEFAULT_PATH);
    }
    build_env
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::graph::{Op, RunOp};
    use crate::lower::fixture::Fixture;
    use crate::lower::options::ResolveError;
    use crate::lower::plan::{Plan, plan_stages};
    use crate::lower::sources::{Sources, read_sources};
    use crate::parser::parse;
    use crate::span::{Pos, Span};

    /// Images by reference, remembering which were asked for.
    #[derive(Default)]
    struct Images(Vec<String>);

    impl BaseResolver for Images {
        fn resolve(
            &mut self,
            reference: &str,
            _platform: &crate::graph::Platform,
        ) -> Result<ImageMeta, ResolveError> {
            self.0.push(reference.to_string());
            let mut meta = ImageMeta::default();
            match reference {
                "missing" => {
                    return Err(ResolveError {
                        message: "no such image".into(),
                        hint: Some("pull it".into()),
                    });
                }
                "with-path" => {
                    meta.env = vec![("PATH".into(), "/opt/bin".into()), ("LANG".into(), "C".into())]
                }
                "triggers" => {
                    meta.onbuild = vec!["ENV FROM_TRIGGER=1".into(), "RUN echo $FROM_TRIGGER".into()];
                    meta.user = "base-user".into();
                }
                _ => {}
            }
            Ok(meta)
        }
    }

    fn prepare(src: &str) -> (Sources, Plan) {
        let fx = Fixture::new();
        let sources = read_sources(&parse(src).unwrap(), &fx.opts, &fx.lexer, &mut BTreeSet::new()).unwrap();
        let plan = plan_stages(
            &sources.stages,
            &fx.lexer,
            &sources.globals,
            &fx.opts.platform,
            &fx.opts.named_contexts,
        )
        .unwrap();
        (sources, plan)
    }

    /// Lowers the last stage of `src`; the earlier stages ended with the
    /// config and the [`StageEnd`] `earlier` gives.
    fn lower_last(
        src: &str,
        earlier: &[(ImageMeta, StageEnd)],
        images: &mut Images,
    ) -> Result<LoweredStage, FrontendError> {
        let (sources, mut plan) = prepare(src);
        for (stage, (meta, _)) in plan.stages.iter_mut().zip(earlier) {
            stage.meta = meta.clone();
        }
        let ends: Vec<StageEnd> = earlier.iter().map(|(_, end)| end.clone()).collect();
        let mut fx = Fixture::new();
        fx.index = plan.stages.len() - 1;
        fx.names = plan.names;
        lower_stage(&fx.ctx(), &sources.stages[fx.index], &plan.stages, &ends, images)
    }

    #[test]
    fn an_image_base_is_resolved_and_given_a_path() {
        let mut images = Images::default();
        let s = lower_last("ARG TAG=1\nFROM app:$TAG\nRUN true\n", &[], &mut images).unwrap();
        assert_eq!(images.0, ["app:1"]);
        assert_eq!(s.meta.env, [("PATH".to_string(), DEFAULT_PATH.to_string())]);
        assert_eq!(s.end.build_env.lookup("PATH"), Some(DEFAULT_PATH));
        let s = lower_last("FROM with-path\n", &[], &mut images).unwrap();
        assert_eq!(s.meta.env_get("PATH"), Some("/opt/bin"), "an image's own PATH stays");
        assert_eq!(
            s.end.build_env.iter().cloned().collect::<Vec<_>>(),
            s.meta.env,
            "the build env starts as the image env"
        );
    }

    #[test]
    fn a_resolver_error_is_shown_at_the_from_line() {
        let e = lower_last("FROM img\n\nFROM missing AS m\n", &[Default::default()], &mut Images::default())
            .err()
            .unwrap();
        assert_eq!(e.message, "no such image");
        assert_eq!(e.hint.as_deref(), Some("pull it"));
        assert_eq!(e.span.start, Pos::new(3, 1));
    }

    #[test]
    fn scratch_needs_no_resolver() {
        let mut images = Images::default();
        let s = lower_last("FROM scratch\nCOPY a /\n", &[], &mut images).unwrap();
        assert!(images.0.is_empty());
        assert_eq!(s.meta.env, [("PATH".to_string(), DEFAULT_PATH.to_string())]);
        assert_eq!(s.steps.len(), 1);
    }

    #[test]
    fn base_triggers_run_first_at_the_from_line_and_are_not_inherited() {
        let s = lower_last("FROM triggers\nRUN own\n", &[], &mut Images::default()).unwrap();
        let texts: Vec<&str> = s.steps.iter().map(|st| st.text.as_str()).collect();
        assert_eq!(texts, ["ENV FROM_TRIGGER=1", "RUN echo $FROM_TRIGGER", "RUN own"]);
        let from = Span::new(Pos::new(1, 1), Pos::new(1, 14));
        assert_eq!((s.steps[0].span, s.steps[1].span), (from, from));
        assert_eq!(s.steps[2].span.start.line, 2);
        assert_eq!(s.meta.env_get("FROM_TRIGGER"), Some("1"));
        assert!(s.meta.onbuild.is_empty());
        assert_eq!(s.meta.user, "base-user");
    }

    #[test]
    fn a_stage_base_hands_on_its_config_build_env_and_args() {
        let meta = ImageMeta {
            workdir: "/w".into(),
            env: vec![("PATH".into(), "/bin".into())],
            onbuild: vec!["RUN from-base".into()],
            ..Default::default()
        };
        let end = StageEnd {
            build_env: Vars::from(vec![("PATH".into(), "/bin".into()), ("V".into(), "arg".into())]),
            args: vec![("V".into(), Some("arg".into()))],
        };
        let mut images = Images::default();
        let s = lower_last("FROM img AS base\nFROM base\nRUN x\n", &[(meta, end)], &mut images).unwrap();
        assert!(images.0.is_empty(), "a stage base is not resolved");
        let runs: Vec<&RunOp> =
            s.steps.iter().filter_map(|st| if let Op::Run(r) = &st.op { Some(r) } else { None }).collect();
        assert_eq!(runs[0].argv[2], "from-base", "the base stage's ONBUILD runs first");
        assert_eq!((runs[1].argv[2].as_str(), runs[1].workdir.as_str()), ("x", "/w"));
        assert_eq!(
            runs[1].env,
            ["PATH=/bin", "V=arg"],
            "the base stage's build env, its ARG values included"
        );
        assert_eq!(runs[1].args, [("V".to_string(), "arg".to_string())]);
        assert_eq!(s.end.args, [("V".to_string(), Some("arg".to_string()))]);
        assert_eq!(s.meta.workdir, "/w");
    }
}
