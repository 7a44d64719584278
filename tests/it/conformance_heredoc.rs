//! Conformance with BuildKit's heredoc tests (`dockerfile_heredoc_test.go`).

use std::fs;

use crate::harness::*;

/// testOnBuildHeredoc: an `ONBUILD RUN <<EOF` trigger is stored with its
/// body and runs in a stage built on the image. (BuildKit pushes the base
/// to a registry; rbuild's store holds it just as well.)
#[test]
fn on_build_heredoc() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("base", "FROM busybox:local\nONBUILD RUN <<EOF\necho \"hello world\" >> /dest\nEOF\n");
    env.rbuild(&["build", "-q", "-t", "onbuild-heredoc:base", "base"]).ok();
    let onbuild = env.rbuild(&["inspect", "-f", "{{json .Config.OnBuild}}", "onbuild-heredoc:base"]).ok();
    assert_eq!(onbuild.stdout.trim(), r#"["RUN <<EOF\necho \"hello world\" >> /dest\nEOF"]"#);
    env.dockerfile(
        "child",
        "FROM onbuild-heredoc:base AS base\nFROM scratch\nCOPY --from=base /dest /dest\n",
    );
    let (_, out) = build_local(&env, "child", &[]);
    assert_eq!(fs::read_to_string(out.join("dest")).unwrap(), "hello world\n");
}
