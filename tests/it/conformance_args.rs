//! Conformance with BuildKit's ARG tests (`dockerfile_args_test.go`): the
//! predefined args a stage can declare.

use std::fs;

use crate::harness::*;

/// testTargetStageNameArg: `ARG TARGETSTAGE` holds the name of the stage
/// being built (the `--target`, else the last stage's name, else
/// `default`), whichever stage declares it; undeclared it is empty.
#[test]
fn target_stage_name_arg() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let stages = "FROM busybox:local AS base\nWORKDIR /out\n\
RUN echo -n \"value:$TARGETSTAGE\" > /out/first\n\
ARG TARGETSTAGE\nRUN echo -n \"value:$TARGETSTAGE\" > /out/second\n\
FROM scratch AS foo\nCOPY --from=base /out/ /\n\
FROM scratch\nCOPY --from=base /out/ /\n";
    env.dockerfile("ctx", stages);
    let read = |out: &std::path::Path, name: &str| fs::read_to_string(out.join(name)).unwrap();
    let (_, out) = build_local(&env, "ctx", &["--target", "foo"]);
    assert_eq!((read(&out, "first"), read(&out, "second")), ("value:".into(), "value:foo".into()));
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(read(&out, "second"), "value:default", "an unnamed last stage");
    env.dockerfile("ctx", &format!("{stages}FROM scratch AS final\nCOPY --from=base /out/ /\n"));
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(read(&out, "second"), "value:final", "the last stage's name");
}
