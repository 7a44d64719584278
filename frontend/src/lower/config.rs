//! Instructions that change only the image config (and WORKDIR, which also
//! creates its directory): ENV, LABEL, EXPOSE, WORKDIR, USER, VOLUME,
//! STOPSIGNAL, MAINTAINER, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD.
//! Each updates the stage's [`ImageMeta`](crate::graph::ImageMeta) and
//! records a step with Docker's history text.

use super::command::command_argv;
use super::expand::{expand, expand_words};
use super::healthcheck::healthcheck;
use super::history::{display, go_list};
use super::ports::expose_ports;
use super::signal::validate_signal;
use super::state::{StageCtx, StageState};
use crate::error::FrontendError;
use crate::graph::{MkdirOp, Op, Step};
use crate::instructions::{Command, HealthArgs, Instruction, Word};
use crate::mounts::absolute;
use crate::shell::Lexer;
use crate::vars::Vars;

/// Expands `key=value` pairs, all in the build environment from before the
/// instruction; an empty key is the error `empty_key`.
fn expand_pairs(
    lexer: &Lexer,
    env: &Vars,
    pairs: &[(Word, Word)],
    empty_key: &str,
) -> Result<Vec<(String, String)>, FrontendError> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        let key = expand(lexer, k, env)?;
        if key.is_empty() {
            return Err(FrontendError::new(empty_key, k.span));
        }
        out.push((key, expand(lexer, v, env)?));
    }
    Ok(out)
}

fn pairs_text(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// ENV sets the image config's env and the build environment. Every value
/// sees the environment from before the instruction: `ENV a=1 b=$a` takes
/// the old `a`, as Docker.
pub(super) fn env(
    ctx: &StageCtx,
    st: &mut StageState,
    instr: &Instruction,
    pairs: &[(Word, Word)],
) -> Result<(), FrontendError> {
    let expanded = expand_pairs(ctx.lexer, &st.build_env, pairs, "ENV names an empty variable")?;
    for (k, v) in &expanded {
        st.meta.env_set(k, v);
        st.build_env.set(k, v);
    }
    st.push_meta(instr, format!("ENV {}", pairs_text(&expanded)));
    Ok(())
}

pub(super) fn label(
    ctx: &StageCtx,
    st: &mut StageState,
    instr: &Instruction,
    pairs: &[(Word, Word)],
) -> Result<(), FrontendError> {
    let expanded = expand_pairs(ctx.lexer, &st.build_env, pairs, "LABEL names an empty key")?;
    let text = pairs_text(&expanded);
    st.meta.labels.extend(expanded);
    st.push_meta(instr, format!("LABEL {text}"));
    Ok(())
}

/// EXPOSE: each word is split after expansion, since a variable may hold
/// several ports.
pub(super) fn expose(
    ctx: &StageCtx,
    st: &mut StageState,
    instr: &Instruction,
    ports: &[Word],
) -> Result<(), FrontendError> {
    let mut added = Vec::new();
    for p in ports {
        let words = expand_words(ctx.lexer, p, &st.build_env)?;
        added.extend(expose_ports(&words, p.span)?);
    }
    st.meta.exposed_ports.extend(added.iter().cloned());
    st.push_meta(instr, format!("EXPOSE {}", added.join(" ")));
    Ok(())
}

/// WORKDIR resolves against the previous one and creates the directory.
pub(super) fn workdir(
    ctx: &StageCtx,
    st: &mut StageState,
    instr: &Instruction,
    w: &Word,
) -> Result<(), FrontendError> {
    let path = expand(ctx.lexer, w, &st.build_env)?;
    if path.is_empty() {
        return Err(FrontendError::new("WORKDIR names an empty path", w.span)
            .with_hint("check the variables used in the path"));
    }
    st.meta.workdir = absolute(&path, &st.meta.workdir);
    st.steps.push(Step {
        op: Op::Mkdir(MkdirOp { path: st.meta.workdir.clone(), user: st.meta.user.clone() }),
        span: instr.span,
        created_by: format!("WORKDIR {}", st.meta.workdir),
        text: display(instr),
    });
    Ok(())
}

pub(super) fn user(
    ctx: &StageCtx,
    st: &mut StageState,
    instr: &Instruction,
    w: &Word,
) -> Result<(), FrontendError> {
    st.meta.user = expand(ctx.lexer, w, &st.build_env)?;
    if st.meta.user.is_empty() {
        return Err(FrontendError::new("USER names an empty user", w.span)
            .with_hint("write USER name[:group] or USER uid[:gid]"));
    }
    st.push_meta(instr, format!("USER {}", st.meta.user));
    Ok(())
}

pub(super) fn volume(
    ctx: &StageCtx,
    st: &mut StageState,
    instr: &Instruction,
    paths: &[Word],
) -> Result<(), FrontendError> {
    let mut added = Vec::new();
    for p in paths {
        let v = expand(ctx.lexer, p, &st.build_env)?;
        if v.trim().is_empty() {
            return Err(FrontendError::new("VOLUME specified can not be an empty string", p.span));
        }
        added.push(v);
    }
    st.meta.volumes.extend(added.iter().cloned());
    st.push_meta(instr, format!("VOLUME {}", go_list(&added)));
    Ok(())
}

pub(super) fn stop_signal(
    ctx: &StageCtx,
    st: &mut StageState,
    instr: &Instruction,
    w: &Word,
) -> Result<(), FrontendError> {
    let sig = expand(ctx.lexer, w, &st.build_env)?;
    validate_signal(&sig, w.span)?;
    st.meta.stop_signal = Some(sig.clone());
    st.push_meta(instr, format!("STOPSIGNAL {sig}"));
    Ok(())
}

/// MAINTAINER is taken as written.
pub(super) fn maintainer(st: &mut StageState, instr: &Instruction, w: &Word) {
    st.meta.maintainer = Some(w.text.clone());
    st.push_meta(instr, format!("MAINTAINER {}", w.text));
}

pub(super) fn cmd(st: &mut StageState, instr: &Instruction, c: &Command) {
    let argv = command_argv(c, &st.meta);
    st.meta.cmd = Some(argv.clone());
    st.meta.args_escaped = false;
    st.cmd_set_here = true;
    st.push_meta(instr, format!("CMD {}", go_list(&argv)));
}

pub(super) fn entrypoint(st: &mut StageState, instr: &Instruction, c: &Command) {
    let argv = command_argv(c, &st.meta);
    st.meta.entrypoint = Some(argv.clone());
    if !st.cmd_set_here {
        // As Docker: a new ENTRYPOINT drops a CMD inherited from the base.
        st.meta.cmd = None;
    }
    st.push_meta(instr, format!("ENTRYPOINT {}", go_list(&argv)));
}

pub(super) fn shell(st: &mut StageState, instr: &Instruction, shell: &[String]) {
    st.meta.shell = shell.to_vec();
    st.push_meta(instr, format!("SHELL {}", go_list(shell)));
}

pub(super) fn health(st: &mut StageState, instr: &Instruction, h: &HealthArgs) -> Result<(), FrontendError> {
    let check = healthcheck(h)?;
    let test = go_list(&check.test);
    st.meta.healthcheck = Some(check);
    st.push_meta(instr, format!("HEALTHCHECK {test}"));
    Ok(())
}

/// ONBUILD records its trigger as written, heredoc bodies included (each
/// after a newline, ended by its delimiter, as BuildKit stores them); a
/// stage built `FROM` this one runs it (see the `onbuild` module).
pub(super) fn onbuild(st: &mut StageState, instr: &Instruction, trigger: &Instruction) {
    let mut text = trigger.original.trim().to_string();
    for heredoc in trigger.heredocs() {
        text.push('\n');
        text.push_str(&heredoc.content);
        text.push_str(&heredoc.name);
    }
    st.meta.onbuild.push(text.clone());
    st.push_meta(instr, format!("ONBUILD {text}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::Kind;
    use crate::lower::testing::instruction;
    use crate::shell::Env;

    fn pairs(src: &str) -> Vec<(Word, Word)> {
        match instruction(src).kind {
            Kind::Env(p) | Kind::Label(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pairs_expand_in_the_environment_from_before_the_instruction() {
        let env =
            Vars::from(vec![("a".to_string(), "old".to_string()), ("K".to_string(), "key".to_string())]);
        let got =
            expand_pairs(&Lexer::new('\\'), &env, &pairs("ENV a=new b=$a $K=\"x y\""), "empty").unwrap();
        assert_eq!(
            got,
            [("a".into(), "new".into()), ("b".into(), "old".into()), ("key".into(), "x y".into())]
        );
        assert_eq!(pairs_text(&got), "a=new b=old key=x y");
        assert_eq!(env.lookup("a"), Some("old"), "the environment is not changed here");
    }

    #[test]
    fn an_empty_key_is_the_given_error_at_the_key() {
        let p = pairs("LABEL ok=1 ${NOPE}=x");
        let e =
            expand_pairs(&Lexer::new('\\'), &Vars::default(), &p, "LABEL names an empty key").unwrap_err();
        assert_eq!(e.message, "LABEL names an empty key");
        assert_eq!(e.span, p[1].0.span);
        assert_eq!(e.span.start.col, 12);
    }
}
