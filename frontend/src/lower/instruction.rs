//! One instruction of a stage, sent to the module that lowers its kind.

use super::build_args::lower_arg;
use super::config;
use super::copy::lower_copy;
use super::run::lower_run;
use super::state::{StageCtx, StageState};
use crate::error::FrontendError;
use crate::instructions::{Instruction, Kind};

pub(super) fn lower_instruction(
    ctx: &StageCtx,
    st: &mut StageState,
    instr: &Instruction,
) -> Result<(), FrontendError> {
    match &instr.kind {
        Kind::From { .. } => unreachable!("FROM starts a stage"),
        Kind::Arg(decls) => lower_arg(ctx, st, instr, decls)?,
        Kind::Run { .. } => lower_run(ctx, st, instr)?,
        Kind::Copy(c) => lower_copy(ctx, st, instr, c, false)?,
        Kind::Add(c) => lower_copy(ctx, st, instr, c, true)?,
        Kind::Env(pairs) => config::env(ctx, st, instr, pairs)?,
        Kind::Label(pairs) => config::label(ctx, st, instr, pairs)?,
        Kind::Expose(ports) => config::expose(ctx, st, instr, ports)?,
        Kind::Workdir(w) => config::workdir(ctx, st, instr, w)?,
        Kind::User(w) => config::user(ctx, st, instr, w)?,
        Kind::Volume(paths) => config::volume(ctx, st, instr, paths)?,
        Kind::StopSignal(w) => config::stop_signal(ctx, st, instr, w)?,
        Kind::Maintainer(w) => config::maintainer(st, instr, w),
        Kind::Cmd(c) => config::cmd(st, instr, c),
        Kind::Entrypoint(c) => config::entrypoint(st, instr, c),
        Kind::Shell(shell) => config::shell(st, instr, shell),
        Kind::Healthcheck(h) => config::health(st, instr, h)?,
        Kind::Onbuild(trigger) => config::onbuild(st, instr, trigger),
    }
    Ok(())
}
