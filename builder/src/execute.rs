//! Executing one filesystem step on top of its parent layers: RUN through
//! the isolation ([`crate::run_step`]), COPY and ADD through the copy
//! writer ([`crate::copy::step`]), WORKDIR as a mkdir. Each returns the
//! step's root with its changes for the snapshotter to commit.

use rbuild_frontend::graph::{MkdirOp, Op, Step};

use rbuild_cache::store::{CopyKey, KnownTar, LayerRef};

use crate::copy::Writer;
use crate::copy::step::Copied;
use crate::env::{ExecEnv, identity};
use crate::error::BuildError;
use crate::progress::{Event, Progress, StepId};
use crate::snapshot::{Lower, StepRoot, discard, view_of_lowers};

/// What a filesystem step produced.
pub enum Executed {
    /// Its root with the changes, to commit; a COPY's description key
    /// (see [`crate::copy::step::Copied`]) goes with it, for the committed
    /// layer to be remembered under.
    Changes { root: StepRoot, memo_key: Option<CopyKey>, known: Option<KnownTar> },
    /// The layer its changes make, found in the store without writing them.
    Stored(LayerRef),
}

/// Runs a filesystem step on top of `lowers` (top first). Returns its root
/// with the changes (or the stored layer they would make), or `None` when
/// nothing can have changed. `prior` is the layer the same step made in an
/// earlier build, if it is still stored: a COPY links the files it would
/// write again.
pub fn execute(
    env: &ExecEnv<'_>,
    step: &Step,
    lowers: &[Lower],
    prior: Option<&LayerRef>,
    id: &StepId,
    progress: &dyn Progress,
) -> Result<Option<Executed>, BuildError> {
    let changes = match &step.op {
        Op::Run(run) => crate::run_step::execute_run(env, run, lowers, id, progress)?,
        Op::Copy(c) => match crate::copy::step::execute_copy(env, c, lowers, prior)? {
            Copied::Changes { root, memo_key, known } => {
                return Ok(Some(Executed::Changes { root, memo_key, known }));
            }
            Copied::Stored(layer) => {
                let line = format!("layer {} is already stored: nothing written", layer.diff_id());
                progress.event(Event::Log { step: id.clone(), line });
                return Ok(Some(Executed::Stored(layer)));
            }
        },
        Op::Mkdir(m) => match make_workdir(env, m, lowers)? {
            Some(root) => root,
            None => return Ok(None),
        },
        Op::Meta => return Ok(None),
    };
    Ok(Some(Executed::Changes { root: changes, memo_key: None, known: None }))
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
