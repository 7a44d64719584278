//! RUN to a run step: `--network` and `--security`, `--mount`s (fields
//! expanded, `from=` resolved to a stage or an image), the argv (see the
//! `command` module), the environment the command sees, and the history
//! text, which names the build args but never the proxy args.

use super::build_args::{proxy_env, visible_args};
use super::command::{run_argv, sole_heredoc, summarize_heredoc};
use super::expand::expand_text;
use super::history::display;
use super::options::DEFAULT_PATH;
use super::references::stage_ref;
use super::state::{StageCtx, StageState};
use crate::error::FrontendError;
use crate::graph::{Mount, MountSource, Network, Op, RunOp, Step};
use crate::instructions::{Command, Instruction, Kind, Word};
use crate::mounts::parse_mount;
use crate::parser::Heredoc;
use crate::shell::Env;
use crate::vars::Vars;

pub(super) fn lower_run(
    ctx: &StageCtx,
    st: &mut StageState,
    instr: &Instruction,
) -> Result<(), FrontendError> {
    let Kind::Run { command, mounts, network, security, heredocs } = &instr.kind else {
        unreachable!("lower_run is given RUN instructions")
    };
    let network = network_mode(network.as_ref())?;
    check_security(security.as_ref())?;
    let mounts = run_mounts(ctx, st, mounts)?;
    let (argv, script) = run_argv(command, heredocs, &st.meta);
    let args = visible_args(&st.args, &st.build_env);
    let created_by = created_by(&args, &argv);
    let op = RunOp {
        argv,
        env: run_env(&st.build_env),
        proxy_env: proxy_env(&ctx.opts.build_args, &st.args, &st.build_env),
        args,
        user: st.meta.user.clone(),
        workdir: if st.meta.workdir.is_empty() { "/".into() } else { st.meta.workdir.clone() },
        network,
        mounts,
        script,
    };
    let text = progress_text(instr, command, heredocs);
    st.steps.push(Step { op: Op::Run(op), span: instr.span, created_by, text });
    Ok(())
}

/// `--network` is taken as written, as BuildKit does.
fn network_mode(flag: Option<&Word>) -> Result<Network, FrontendError> {
    let Some(w) = flag else { return Ok(Network::Default) };
    match w.text.as_str() {
        "default" => Ok(Network::Default),
        "none" => Ok(Network::None),
        "host" => Ok(Network::Host),
        other => Err(FrontendError::new(format!("unsupported network mode {other:?}"), w.span)
            .with_hint("use --network=default, none or host")),
    }
}

/// Only `--security=sandbox` (the default) can be built: every step runs
/// sandboxed.
fn check_security(flag: Option<&Word>) -> Result<(), FrontendError> {
    let Some(w) = flag else { return Ok(()) };
    match w.text.as_str() {
        "sandbox" => Ok(()),
        "insecure" => Err(FrontendError::new(
            "RUN --security=insecure is not supported: rbuild runs every step sandboxed",
            w.span,
        )
        .with_hint(
            "remove --security=insecure; steps that need full privileges cannot be built with rbuild",
        )),
        other => Err(FrontendError::new(format!("unsupported security mode {other:?}"), w.span)
            .with_hint("use --security=sandbox")),
    }
}

/// Parses each `--mount`, expanding its fields in the build environment
/// and resolving relative targets against WORKDIR; a stage a bind or cache
/// mount reads is remembered as referenced.
fn run_mounts(ctx: &StageCtx, st: &mut StageState, mounts: &[Word]) -> Result<Vec<Mount>, FrontendError> {
    let mut parsed = Vec::new();
    for m in mounts {
        let mut expand_field = |v: &str| expand_text(ctx.lexer, v, m.span, &st.build_env);
        let mut resolve_from = |f: &str| -> Result<MountSource, FrontendError> {
            Ok(match stage_ref(f, ctx.names, ctx.index, m.span)? {
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
        parsed.push(mount);
    }
    Ok(parsed)
}

/// The build environment as `KEY=value`, with BuildKit's default PATH when
/// none is set.
fn run_env(build_env: &Vars) -> Vec<String> {
    let mut env: Vec<String> = build_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if build_env.lookup("PATH").is_none() {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env
}

/// Docker's history text: `RUN |2 A=1 B=2 argv…`, the count and the args
/// the step sees first when there are any.
fn created_by(args: &[(String, String)], argv: &[String]) -> String {
    let prefix = if args.is_empty() {
        String::new()
    } else {
        format!(
            "|{} {} ",
            args.len(),
            args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
        )
    };
    format!("RUN {prefix}{}", argv.join(" "))
}

/// The instruction as written; a RUN that is a single heredoc also shows
/// the start of its body.
fn progress_text(instr: &Instruction, command: &Command, heredocs: &[Heredoc]) -> String {
    let mut text = display(instr);
    if let Some(h) = sole_heredoc(command, heredocs) {
        text.push_str(&format!(" ({})", summarize_heredoc(&h.content)));
    }
    text
}
