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
