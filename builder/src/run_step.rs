//! One RUN step: the user and environment it runs with, its mounts made
//! ready ([`crate::run_mounts`]), a root from the snapshotter, the command
//! run by the isolation with its output streamed (secrets masked), and a
//! failure that says what exited how.

use std::io;

use rbuild_frontend::graph::{Network, RunOp, Security};

use crate::env::{ExecEnv, identity};
use crate::error::BuildError;
use crate::progress::{Event, Progress, StepId};
use crate::run_mounts::{self, mask};
use crate::sandbox::{NetMode, Process, RunRequest};
use crate::snapshot::{Lower, StepRoot, discard, view_of_lowers};

/// Runs `run` on top of `lowers`; returns the root holding its changes.
pub fn execute_run(
    env: &ExecEnv<'_>,
    run: &RunOp,
    lowers: &[Lower],
    id: &StepId,
    progress: &dyn Progress,
) -> Result<StepRoot, BuildError> {
    let view = view_of_lowers(env.store, lowers);
    let who = identity(&view, &run.user)?;
    let mut vars = run.env.clone();
    if !vars.iter().any(|v| v.starts_with("HOME=")) {
        vars.push(format!("HOME={}", if who.home.is_empty() { "/" } else { &who.home }));
    }
    vars.extend(run.proxy_env.iter().cloned());
    let note = |line: String| progress.event(Event::Log { step: id.clone(), line });
    let prepared = run_mounts::prepare(env, run, &note)?;
    vars.extend(prepared.env.iter().cloned());
    let secrets = prepared.secret_values.clone();
    let req = RunRequest {
        process: Process {
            argv: run.argv.clone(),
            env: vars,
            cwd: run.workdir.clone(),
            uid: who.uid,
            gid: who.gid,
            groups: who.groups.clone(),
        },
        network: match run.network {
            Network::None => NetMode::Isolated,
            Network::Default => NetMode::Nat,
            Network::Host => NetMode::Shared,
        },
        mounts: prepared.mounts.clone(),
        stdin: None,
        settings: env.opts.run.clone(),
        unconfined: run.security == Security::Insecure,
    };
    let root = env.opts.snapshotter.prepare_root(env.store, lowers)?;
    let outcome = env.opts.isolation.run(env.store, &root, &req, &mut |line| {
        // A secret's value never reaches the progress output.
        let line = if secrets.is_empty() { line.to_string() } else { mask(line, &secrets) };
        progress.event(Event::Log { step: id.clone(), line });
    });
    drop(prepared);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            discard(root);
            let hint = e.hint().map(str::to_string);
            let mut e = BuildError::from(e);
            e.hint = hint;
            return Err(e);
        }
    };
    if outcome.exit_code != 0 {
        // A command that failed on a full disk says so only in its output;
        // the filesystem itself tells, before the step's files are gone.
        let filled_disk = filesystem_is_full(&root.upper);
        discard(root);
        let mut e = BuildError::new(format!(
            "process \"{}\" did not complete successfully: exit code: {}",
            run.argv.join(" "),
            outcome.exit_code
        ));
        e.exit_code = Some(outcome.exit_code);
        e.tail = outcome.tail.iter().map(|l| mask(l, &secrets)).collect();
        if filled_disk {
            e.cause = Some(std::sync::Arc::new(io::Error::new(
                io::ErrorKind::StorageFull,
                "the step filled the disk holding the store",
            )));
        }
        return Err(e);
    }
    Ok(root)
}

/// Whether the filesystem holding `path` has (next to) no free space left:
/// less than 1 MiB, counting the blocks only root may use, since the step
/// may have run as root.
fn filesystem_is_full(path: &std::path::Path) -> bool {
    nix::sys::statvfs::statvfs(path)
        .is_ok_and(|s| s.blocks_free().saturating_mul(s.fragment_size()) < 1 << 20)
}
