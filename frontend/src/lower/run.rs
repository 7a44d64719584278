//! RUN to a run step: `--network` and `--security`, `--mount`s (fields
//! expanded, `from=` resolved to a stage or an image), the argv (see the
//! `command` module), the environment the command sees, and the history
//! text, which names the build args but never the proxy args.

use super::build_args::{proxy_env, visible_args};
use super::command::{run_argv, sole_heredoc, summarize_heredoc};
use super::expand::expand_text;
use super::history::display;
use super::options::DEFAULT_PATH;
use super::references::{Source, resolve_source};
use super::state::{StageCtx, StageState};
use crate::error::FrontendError;
use crate::graph::{Mount, MountSource, Network, Op, RunOp, Security, Step};
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
    let network = network_mode(network.as_ref(), ctx.opts.default_network, ctx.opts.allow_network_host)?;
    let security = security_mode(security.as_ref(), ctx.opts.allow_insecure)?;
    let mounts = run_mounts(ctx, st, mounts)?;
    let (argv, script) = run_argv(command, heredocs, &st.meta);
    let args = visible_args(&st.args, &st.build_env);
    let created_by = created_by(&args, &argv);
    let op = RunOp {
        argv,
        env: with_ssh_auth_sock(run_env(&st.build_env), &mounts),
        proxy_env: proxy_env(&ctx.opts.build_args, &st.args, &st.build_env),
        args,
        user: st.meta.user.clone(),
        workdir: if st.meta.workdir.is_empty() { "/".into() } else { st.meta.workdir.clone() },
        network,
        security,
        mounts,
        script,
    };
    let text = progress_text(instr, command, heredocs);
    st.steps.push(Step { op: Op::Run(op), span: instr.span, created_by, text });
    Ok(())
}

/// `--network` is taken as written, as BuildKit does; without one, the
/// build's `--network` (`default`) applies. `host` needs the build's
/// `--allow network.host`, as BuildKit's entitlement.
fn network_mode(
    flag: Option<&Word>,
    build_default: Network,
    host_allowed: bool,
) -> Result<Network, FrontendError> {
    let Some(w) = flag else { return Ok(build_default) };
    match w.text.as_str() {
        "default" => Ok(Network::Default),
        "none" => Ok(Network::None),
        "host" if host_allowed => Ok(Network::Host),
        "host" => Err(FrontendError::new(
            "RUN --network=host is not allowed: the build was not started with --allow network.host",
            w.span,
        )
        .with_hint(
            "if this Dockerfile is trusted, build with --allow network.host; otherwise remove --network=host",
        )),
        other => Err(FrontendError::new(format!("unsupported network mode {other:?}"), w.span)
            .with_hint("use --network=default, none or host")),
    }
}

/// `--security=sandbox` (the default), or `insecure` when the build was
/// started with `--allow security.insecure`, as BuildKit requires.
fn security_mode(flag: Option<&Word>, allowed: bool) -> Result<Security, FrontendError> {
    let Some(w) = flag else { return Ok(Security::Sandbox) };
    match w.text.as_str() {
        "sandbox" => Ok(Security::Sandbox),
        "insecure" if allowed => Ok(Security::Insecure),
        "insecure" => Err(FrontendError::new(
            "RUN --security=insecure is not allowed: the build was not started with --allow security.insecure",
            w.span,
        )
        .with_hint(
            "if this Dockerfile is trusted, build with --allow security.insecure; otherwise remove --security=insecure",
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
            Ok(match resolve_source(f, ctx.names, &ctx.opts.named_contexts, ctx.index, m.span)? {
                Source::Stage(i) => MountSource::Stage(i),
                Source::Image(reference) => MountSource::Image(reference),
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
    number_ssh_targets(&mut parsed);
    Ok(parsed)
}

/// An ssh mount without a target goes to `/run/buildkit/ssh_agent.N`, N
/// counting the RUN's ssh mounts from 0 (BuildKit's default).
fn number_ssh_targets(mounts: &mut [Mount]) {
    let ssh_targets = mounts.iter_mut().filter_map(|m| match m {
        Mount::Ssh { target, .. } => Some(target),
        _ => None,
    });
    for (n, target) in ssh_targets.enumerate() {
        if target.is_empty() {
            *target = format!("/run/buildkit/ssh_agent.{n}");
        }
    }
}

/// `SSH_AUTH_SOCK` names the first ssh mount's socket unless the
/// environment sets it already, as BuildKit does (whether or not the build
/// was given that agent).
fn with_ssh_auth_sock(mut env: Vec<String>, mounts: &[Mount]) -> Vec<String> {
    let first = mounts.iter().find_map(|m| match m {
        Mount::Ssh { target, .. } => Some(target),
        _ => None,
    });
    if let Some(target) = first
        && !env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK="))
    {
        env.push(format!("SSH_AUTH_SOCK={target}"));
    }
    env
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use crate::graph::{CacheSharing, InlineScript};
    use crate::lower::fixture::{Fixture, empty_state};
    use crate::lower::testing::instruction;
    use crate::span::{Pos, Span};

    fn word(text: &str) -> Word {
        Word { text: text.into(), span: Span::new(Pos::new(2, 5), Pos::new(2, 20)) }
    }

    /// Lowers one RUN in `st` and returns its step.
    fn run(fx: &Fixture, st: &mut StageState, src: &str) -> Result<Step, FrontendError> {
        lower_run(&fx.ctx(), st, &instruction(src))?;
        Ok(st.steps.pop().expect("a step"))
    }

    fn op(step: &Step) -> &RunOp {
        let Op::Run(r) = &step.op else { panic!("{:?}", step.op) };
        r
    }

    #[test]
    fn network_modes_and_errors() {
        assert_eq!(network_mode(None, Network::Default, false), Ok(Network::Default));
        assert_eq!(network_mode(None, Network::None, false), Ok(Network::None), "the build's --network");
        assert_eq!(
            network_mode(Some(&word("default")), Network::None, false),
            Ok(Network::Default),
            "a RUN's own --network wins"
        );
        assert_eq!(network_mode(Some(&word("none")), Network::Default, false), Ok(Network::None));
        assert_eq!(network_mode(Some(&word("host")), Network::Default, true), Ok(Network::Host));
        let e = network_mode(Some(&word("host")), Network::Default, false).unwrap_err();
        assert!(e.message.contains("--allow network.host"), "{}", e.message);
        assert_eq!(e.span, word("").span, "the error points at the flag");
        assert_eq!(network_mode(Some(&word("default")), Network::Default, false), Ok(Network::Default));
        let e = network_mode(Some(&word("bridge")), Network::Default, false).unwrap_err();
        assert_eq!(e.message, "unsupported network mode \"bridge\"");
        assert_eq!(e.span, word("").span);
        assert!(
            network_mode(Some(&word("NONE")), Network::Default, false).is_err(),
            "taken as written, case included"
        );
    }

    #[test]
    fn ssh_mounts_are_numbered_and_the_first_is_ssh_auth_sock() {
        let fx = Fixture::new();
        let mut st = empty_state();
        let step =
            run(&fx, &mut st, "RUN --mount=type=ssh,id=a --mount=type=ssh,target=/s --mount=type=ssh true")
                .unwrap();
        let targets: Vec<&str> = op(&step)
            .mounts
            .iter()
            .filter_map(|m| match m {
                Mount::Ssh { target, .. } => Some(target.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(targets, ["/run/buildkit/ssh_agent.0", "/s", "/run/buildkit/ssh_agent.2"]);
        assert!(op(&step).env.contains(&"SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0".to_string()));
        st.build_env.set("SSH_AUTH_SOCK", "/mine");
        let step = run(&fx, &mut st, "RUN --mount=type=ssh true").unwrap();
        let socks: Vec<&String> = op(&step).env.iter().filter(|e| e.starts_with("SSH_AUTH_SOCK=")).collect();
        assert_eq!(socks, ["SSH_AUTH_SOCK=/mine"], "a set SSH_AUTH_SOCK is kept");
        let step = run(&fx, &mut empty_state(), "RUN true").unwrap();
        assert!(!op(&step).env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK")));
    }

    #[test]
    fn insecure_needs_the_builds_permission() {
        for allowed in [false, true] {
            assert_eq!(security_mode(None, allowed), Ok(Security::Sandbox));
            assert_eq!(security_mode(Some(&word("sandbox")), allowed), Ok(Security::Sandbox));
            let e = security_mode(Some(&word("relaxed")), allowed).unwrap_err();
            assert_eq!(e.message, "unsupported security mode \"relaxed\"");
        }
        assert_eq!(security_mode(Some(&word("insecure")), true), Ok(Security::Insecure));
        let e = security_mode(Some(&word("insecure")), false).unwrap_err();
        assert!(e.message.contains("--allow security.insecure"), "{}", e.message);
        assert_eq!(e.span, word("").span);
    }

    #[test]
    fn history_names_the_args_before_the_command() {
        let args = [("A".to_string(), "1".to_string()), ("B".to_string(), String::new())];
        let argv = ["/bin/sh".to_string(), "-c".to_string(), "make all".to_string()];
        assert_eq!(created_by(&args, &argv), "RUN |2 A=1 B= /bin/sh -c make all");
        assert_eq!(created_by(&[], &argv), "RUN /bin/sh -c make all");
    }

    #[test]
    fn the_environment_gets_a_default_path() {
        let env = Vars::from(vec![("A".to_string(), "1".to_string())]);
        assert_eq!(run_env(&env), ["A=1".to_string(), format!("PATH={DEFAULT_PATH}")]);
        let env =
            Vars::from(vec![("PATH".to_string(), "/bin".to_string()), ("A".to_string(), "1".to_string())]);
        assert_eq!(run_env(&env), ["PATH=/bin", "A=1"]);
    }

    #[test]
    fn a_run_step_carries_user_workdir_args_and_proxies() {
        let fx = Fixture::new().build_args(&[("HTTP_PROXY", "http://p"), ("V", "cli")]);
        let mut st = empty_state();
        st.meta.user = "app".into();
        st.args = vec![("V".into(), Some("cli".into()))];
        st.build_env.set("V", "cli");
        let step = run(&fx, &mut st, "RUN --network=none echo $V").unwrap();
        let r = op(&step);
        assert_eq!(r.argv, ["/bin/sh", "-c", "echo $V"]);
        assert_eq!(r.env, ["V=cli".to_string(), format!("PATH={DEFAULT_PATH}")]);
        assert_eq!(r.args, [("V".to_string(), "cli".to_string())]);
        assert_eq!(r.proxy_env, ["HTTP_PROXY=http://p", "http_proxy=http://p"]);
        assert_eq!((r.user.as_str(), r.workdir.as_str(), r.network), ("app", "/", Network::None));
        assert_eq!(step.created_by, "RUN |1 V=cli /bin/sh -c echo $V", "proxies stay out of the history");
        assert_eq!(step.text, "RUN --network=none echo $V");
    }

    #[test]
    fn mounts_expand_resolve_and_mark_stages_read() {
        let fx = Fixture::new().stages(&["deps", ""]);
        let mut st = empty_state();
        st.meta.workdir = "/src".into();
        st.build_env.set("C", "/root/.cache");
        let step = run(
            &fx,
            &mut st,
            "RUN --mount=type=cache,target=$C,sharing=locked --mount=type=bind,from=deps,target=vendor --mount=type=bind,from=alpine,target=/a --mount=type=cache,from=1,target=/b make",
        )
        .unwrap();
        let m = &op(&step).mounts;
        assert!(
            matches!(&m[0], Mount::Cache { target, sharing: CacheSharing::Locked, from: None, .. } if target == "/root/.cache")
        );
        assert!(
            matches!(&m[1], Mount::Bind { target, from: MountSource::Stage(0), .. } if target == "/src/vendor")
        );
        assert!(matches!(&m[2], Mount::Bind { from: MountSource::Image(i), .. } if i == "alpine"));
        assert!(matches!(&m[3], Mount::Cache { from: Some(MountSource::Stage(1)), .. }));
        assert_eq!(st.referenced, BTreeSet::from([0, 1]));
        let e = run(&fx, &mut st, "RUN --mount=type=bind,from=2,target=/x true").unwrap_err();
        assert_eq!(e.message, "--from=2 refers to the current or a later stage");
        assert_eq!(e.span.start, Pos::new(1, 5), "at the mount");
    }

    #[test]
    fn heredoc_runs_show_a_summary_and_shebangs_run_as_scripts() {
        let fx = Fixture::new();
        let mut st = empty_state();
        let step = run(&fx, &mut st, "RUN <<EOF\n\napt-get update\napt-get install -y git\nEOF\n").unwrap();
        assert_eq!(step.text, "RUN <<EOF (apt-get update...)");
        let step = run(&fx, &mut st, "RUN <<EOF\n#!/bin/busybox sh\necho hi\nEOF\n").unwrap();
        assert_eq!(op(&step).argv, ["/dev/pipes/EOF"]);
        assert_eq!(
            op(&step).script,
            Some(InlineScript { name: "EOF".into(), content: "#!/bin/busybox sh\necho hi\n".into() })
        );
        let step = run(&fx, &mut st, "RUN cat <<EOF\nx\nEOF\n").unwrap();
        assert_eq!(step.text, "RUN cat <<EOF", "no summary when the shell reads the heredoc");
    }
}
