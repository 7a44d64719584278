//! Executing one filesystem step on top of its parent layers: RUN through
//! the isolation ([`crate::run_step`]), COPY and ADD through the copy
//! writer ([`crate::copy::step`]), WORKDIR as a mkdir. Each returns the
//! step's root with its changes for the snapshotter to commit.

use rbuild_frontend::graph::{MkdirOp, Op, Step};

use crate::copy::Writer;
use crate::env::{ExecEnv, identity};
use crate::error::BuildError;
use crate::progress::{Progress, StepId};
use crate::snapshot::{Lower, StepRoot, discard, view_of_lowers};

/// Runs a filesystem step on top of `lowers` (top first). Returns its root
/// with the changes, or `None` when nothing can have changed.
pub fn execute(
    env: &ExecEnv<'_>,
    step: &Step,
    lowers: &[Lower],
    id: &StepId,
    progress: &dyn Progress,
) -> Result<Option<StepRoot>, BuildError> {
    match &step.op {
        Op::Run(run) => crate::run_step::execute_run(env, run, lowers, id, progress).map(Some),
        Op::Copy(c) => crate::copy::step::execute_copy(env, c, lowers).map(Some),
        Op::Mkdir(m) => make_workdir(env, m, lowers),
        Op::Meta => Ok(None),
    }
}

/// WORKDIR: the directory, owned by USER, unless it already exists.
fn make_workdir(env: &ExecEnv<'_>, m: &MkdirOp, lowers: &[Lower]) -> Result<Option<StepRoot>, BuildError> {
    let view = view_of_lowers(env.store, lowers);
    if view.lookup(&m.path, true)?.is_some_and(|f| f.metadata.is_dir()) {
        return Ok(None);
    }
    let root = env.opts.snapshotter.prepare_diff(env.store, "workdir")?;
    let written = (|| -> Result<(), BuildError> {
        let mut w = Writer::new(
            &root.upper,
            lowers.iter().map(|l| l.abs.clone()).collect(),
            env.store.overlay_xattrs(),
        );
        if !m.user.is_empty() {
            let who = identity(&view, &m.user)?;
            w.owner = Some((who.uid, who.gid));
        }
        w.ensure_dir(&m.path)?;
        w.finish()?;
        Ok(())
    })();
    match written {
        Ok(()) => Ok(Some(root)),
        Err(e) => {
            discard(root);
            Err(e)
        }
    }
}
