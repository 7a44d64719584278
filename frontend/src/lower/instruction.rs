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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::graph::{MkdirOp, Op};
    use crate::lower::fixture::{Fixture, empty_state};
    use crate::lower::testing::instructions;
    use crate::shell::Env;
    use crate::span::{Pos, Span};

    /// Lowers every instruction of `src` into `st`, in order.
    fn lower_all(fx: &Fixture, st: &mut StageState, src: &str) -> Result<(), FrontendError> {
        for instr in instructions(src) {
            lower_instruction(&fx.ctx(), st, &instr)?;
        }
        Ok(())
    }

    fn lowered(src: &str) -> StageState {
        let mut st = empty_state();
        lower_all(&Fixture::new(), &mut st, src).unwrap_or_else(|e| panic!("{e}"));
        st
    }

    fn texts(st: &StageState) -> Vec<&str> {
        st.steps.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn env_and_label_accumulate_in_the_image_config() {
        let st = lowered("ENV A=1 B=2\nLABEL x=1 y=2\nARG C=3\nENV A=3 D=$C\nLABEL x=$A\n");
        let env: Vec<(&str, &str)> = st.meta.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(env, [("A", "3"), ("B", "2"), ("D", "3")], "redefined in place, ARG kept out");
        let labels = BTreeMap::from([("x".to_string(), "3".to_string()), ("y".to_string(), "2".to_string())]);
        assert_eq!(st.meta.labels, labels);
        assert_eq!(st.build_env.lookup("C"), Some("3"), "ARG is in the build environment");
        assert_eq!(texts(&st), ["ENV A=1 B=2", "LABEL x=1 y=2", "ARG C=3", "ENV A=3 D=3", "LABEL x=3"]);
        assert_eq!(st.steps[0].created_by, "/bin/sh -c #(nop) ENV A=1 B=2");
        assert!(st.steps.iter().all(|s| s.op == Op::Meta));
    }

    #[test]
    fn workdir_chains_and_creates_the_directory_as_the_user() {
        let st = lowered("WORKDIR /app\nUSER web\nENV SUB=src\nWORKDIR $SUB/../lib/\nWORKDIR  x\n");
        assert_eq!(st.meta.workdir, "/app/lib/x");
        let mkdirs: Vec<(&str, &str, &str)> = st
            .steps
            .iter()
            .filter_map(|s| match &s.op {
                Op::Mkdir(MkdirOp { path, user }) => {
                    Some((path.as_str(), user.as_str(), s.created_by.as_str()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            mkdirs,
            [
                ("/app", "", "WORKDIR /app"),
                ("/app/lib", "web", "WORKDIR /app/lib"),
                ("/app/lib/x", "web", "WORKDIR /app/lib/x")
            ]
        );
        assert_eq!(st.steps[3].text, "WORKDIR $SUB/../lib/", "progress shows the instruction as written");
    }

    #[test]
    fn expose_splits_variables_into_ports() {
        let st = lowered("ARG PORTS=\"53/udp 80\"\nEXPOSE $PORTS 8000-8001/tcp\n");
        let ports: Vec<&str> = st.meta.exposed_ports.iter().map(String::as_str).collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert_eq!(texts(&st)[1], "EXPOSE 53/udp 80/tcp 8000/tcp 8001/tcp");
        let mut st = empty_state();
        let e = lower_all(&Fixture::new(), &mut st, "EXPOSE 80 http\n").unwrap_err();
        assert_eq!(e.message, "invalid port \"http\" in EXPOSE");
        assert_eq!(e.span, Span::new(Pos::new(1, 11), Pos::new(1, 15)), "at the word");
    }

    #[test]
    fn stopsignal_user_and_volume_expand_and_check() {
        let st = lowered(
            "ARG S=TERM\nSTOPSIGNAL SIG$S\nUSER ${S}:0\nVOLUME [\"/data\", \"/$S\"]\nMAINTAINER me <$S>\n",
        );
        assert_eq!(st.meta.stop_signal.as_deref(), Some("SIGTERM"));
        assert_eq!(st.meta.user, "TERM:0");
        assert_eq!(st.meta.volumes.iter().map(String::as_str).collect::<Vec<_>>(), ["/TERM", "/data"]);
        assert_eq!(texts(&st)[3], "VOLUME [\"/data\" \"/TERM\"]");
        assert_eq!(st.meta.maintainer.as_deref(), Some("me <$S>"), "MAINTAINER is not expanded");
        let fx = Fixture::new();
        let e = lower_all(&fx, &mut empty_state(), "STOPSIGNAL SIGNOPE\n").unwrap_err();
        assert_eq!((e.message.as_str(), e.span.start.col), ("invalid signal \"SIGNOPE\"", 12));
        let e = lower_all(&fx, &mut empty_state(), "USER $NOBODY\n").unwrap_err();
        assert_eq!(e.message, "USER names an empty user");
        let e = lower_all(&fx, &mut empty_state(), "VOLUME /a $NONE\n").unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.span.start.col),
            ("VOLUME specified can not be an empty string", 11)
        );
        let e = lower_all(&fx, &mut empty_state(), "WORKDIR $NONE\n").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("check the variables used in the path"));
    }

    #[test]
    fn cmd_entrypoint_and_shell() {
        let mut st = empty_state();
        st.meta.cmd = Some(vec!["inherited".into()]);
        st.meta.args_escaped = true;
        lower_all(&Fixture::new(), &mut st, "ENTRYPOINT [\"tini\"]\n").unwrap();
        assert_eq!(st.meta.cmd, None, "a new ENTRYPOINT drops an inherited CMD");
        lower_all(&Fixture::new(), &mut st, "SHELL [\"/bin/bash\", \"-c\"]\nCMD serve $PORT\nENTRYPOINT e\n")
            .unwrap();
        assert_eq!(
            st.meta.cmd.as_deref(),
            Some(&["/bin/bash".to_string(), "-c".into(), "serve $PORT".into()][..])
        );
        assert_eq!(
            st.meta.entrypoint.as_deref(),
            Some(&["/bin/bash".to_string(), "-c".into(), "e".into()][..])
        );
        assert!(!st.meta.args_escaped);
        assert_eq!(texts(&st)[2], "CMD [\"/bin/bash\" \"-c\" \"serve $PORT\"]");
    }

    #[test]
    fn healthcheck_and_onbuild_are_recorded() {
        let st =
            lowered("HEALTHCHECK --interval=5s CMD [\"true\"]\nONBUILD   RUN echo $HI  \nONBUILD COPY . /\n");
        let check = st.meta.healthcheck.as_ref().unwrap();
        assert_eq!(
            (check.test.as_slice(), check.interval_ns),
            (&["CMD".to_string(), "true".into()][..], 5_000_000_000)
        );
        assert_eq!(st.meta.onbuild, ["RUN echo $HI", "COPY . /"], "triggers as written, not expanded");
        assert_eq!(
            texts(&st),
            ["HEALTHCHECK [\"CMD\" \"true\"]", "ONBUILD RUN echo $HI", "ONBUILD COPY . /"]
        );
    }

    #[test]
    fn onbuild_heredocs_are_stored_with_their_bodies() {
        let st = lowered(
            "ONBUILD RUN <<EOF\necho hi > /dest\nEOF\nONBUILD COPY <<-A <<B /d/\n\tone\n\tA\ntwo\nB\n",
        );
        assert_eq!(st.meta.onbuild, ["RUN <<EOF\necho hi > /dest\nEOF", "COPY <<-A <<B /d/\none\nA\ntwo\nB"]);
        let again = crate::parser::parse(&st.meta.onbuild[1]).unwrap();
        let bodies: Vec<&str> = again.nodes[0].heredocs.iter().map(|h| h.content.as_str()).collect();
        assert_eq!(bodies, ["one\n", "two\n"], "the stored trigger parses back to the same heredocs");
    }

    #[test]
    fn run_copy_and_add_become_filesystem_steps() {
        let st = lowered("RUN make\nCOPY a /a\nADD b.tgz /b/\n");
        let kinds: Vec<&str> = st
            .steps
            .iter()
            .map(|s| match &s.op {
                Op::Run(_) => "run",
                Op::Copy(c) if c.extract_archives => "add",
                Op::Copy(_) => "copy",
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["run", "copy", "add"]);
        assert!(st.steps.iter().all(|s| s.is_filesystem()));
    }
}
