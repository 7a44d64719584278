//! Conformance with BuildKit's multi-stage tests
//! (`dockerfile_multistage_test.go`): stage names without case, `--from`
//! an image or a stage that hides one, stages out of order, no stage.

use std::fs;

use crate::harness::*;

/// testMultiStageCaseInsensitive: stage names and `--target` match
/// without regard to case.
#[test]
fn multi_stage_case_insensitive() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch AS STAge0\nCOPY foo bar\nFROM scratch AS staGE1\nCOPY --from=staGE0 bar baz\n\
FROM scratch\nCOPY --from=stage1 baz bax\n",
            ),
            ("foo", "foo-contents"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &["--target", "Stage1"]);
    assert_eq!(fs::read_to_string(out.join("baz")).unwrap(), "foo-contents");
    assert!(!out.join("bax").exists(), "the target is stage1, not the last stage");
}

/// testMultiStageImplicitFrom: `--from` an image no stage names, and a
/// stage whose name is also an image's: the stage wins.
#[test]
fn multi_stage_implicit_from() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.rbuild(&["tag", "busybox:local", "golang"]).ok();
    env.dockerfile("ctx", "FROM scratch\nCOPY --from=busybox:local /etc/passwd test\n");
    let (_, out) = build_local(&env, "ctx", &[]);
    assert!(fs::read_to_string(out.join("test")).unwrap().contains("root"));
    env.dockerfile(
        "ctx",
        "FROM busybox:local AS golang\nRUN mkdir -p /usr/bin && echo -n foo > /usr/bin/go\n\
FROM scratch\nCOPY --from=golang /usr/bin/go go\n",
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(fs::read_to_string(out.join("go")).unwrap(), "foo");
}

/// testOutOfOrderStage, testEmptyStages: `--from` a stage defined later
/// is an error at the line; a Dockerfile without FROM is an error.
#[test]
fn out_of_order_and_empty_stages() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    for src in ["/", "/d2"] {
        env.dockerfile(
            "ctx",
            &format!(
                "FROM busybox:local AS target\nCOPY --from=build {src} /out\nFROM busybox:local AS build\n\
COPY /Dockerfile /d2\nFROM target\n"
            ),
        );
        let run = env.rbuild(&["build", "ctx"]).failed();
        assert!(run.stderr.contains("build") && run.stderr.contains("Dockerfile:2"), "{}", run.stderr);
        assert!(run.stderr.contains("later"), "says the stage comes later: {}", run.stderr);
    }
    env.dockerfile("empty", "ARG foo=bar\n");
    let run = env.rbuild(&["build", "empty"]).failed();
    assert!(run.stderr.contains("no FROM"), "{}", run.stderr);
}
