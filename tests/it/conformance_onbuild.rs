//! Conformance with BuildKit's ONBUILD tests (`dockerfile_onbuild_test.go`).
//! BuildKit pushes each base image to a registry and builds on it; here the
//! bases are tagged in the test's store, which FROM reads the same way.

use std::fs;

use crate::harness::*;

/// Builds `dockerfile` as image `tag` in the store.
fn image(env: &Env, tag: &str, dockerfile: &str) {
    let dir = tag.replace([':', '/'], "-");
    env.dockerfile(&dir, dockerfile);
    env.rbuild(&["build", "-q", "-t", tag, &dir]).ok();
}

/// Builds `dockerfile` and returns its exported root filesystem.
fn export(env: &Env, dockerfile: &str) -> std::path::PathBuf {
    env.dockerfile("final", dockerfile);
    build_local(env, "final", &[]).1
}

/// testOnBuildCleared: triggers run in the image built on the one that
/// declared them, and not again in an image built on that one.
#[test]
fn on_build_cleared() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    image(&env, "onbuild:base", "FROM busybox:local\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n");
    image(&env, "onbuild:child", "FROM onbuild:base\n");
    let onbuild = env.rbuild(&["inspect", "-f", "{{json .Config.OnBuild}}", "onbuild:child"]).ok();
    assert!(
        matches!(onbuild.stdout.trim(), "null" | "[]"),
        "the child's config has no triggers: {}",
        onbuild.stdout
    );
    let out = export(&env, "FROM onbuild:child AS base\nFROM scratch\nCOPY --from=base /out /\n");
    assert_eq!(fs::read_to_string(out.join("foo")).unwrap(), "11");
}

/// testOnBuildWithChildStage: the triggers run once, at the start of the
/// stage built on the image; a stage built on that stage does not rerun them.
#[test]
fn on_build_with_child_stage() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    image(
        &env,
        "onbuild:base",
        "FROM busybox:local\nONBUILD RUN mkdir -p /out && echo -n yes >> /out/didrun\n",
    );
    let out = export(
        &env,
        "FROM onbuild:base AS base\nRUN [ -f /out/didrun ] && touch /step1\nRUN rm /out/didrun\n\
RUN [ ! -f /out/didrun ] && touch /step2\nFROM base AS child\nRUN [ ! -f /out/didrun ] && touch /step3\n\
FROM scratch\nCOPY --from=child /step* /\n",
    );
    assert_eq!(files_under(&out), ["step1", "step2", "step3"]);
}

/// testOnBuildInheritedStageRun, testOnBuildInheritedStageWithFrom: a stage
/// built on a stage of the same Dockerfile that declared triggers runs
/// them, also a `COPY --from` of another stage.
#[test]
fn on_build_inherited_stage() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let out = export(
        &env,
        "FROM busybox:local AS base\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n\
FROM base AS mid\nRUN cp /out/foo /out/bar\nFROM scratch\nCOPY --from=mid /out/bar /\n",
    );
    assert_eq!(fs::read_to_string(out.join("bar")).unwrap(), "11");
    let out = export(
        &env,
        "FROM busybox:local AS src\nRUN mkdir -p /in && echo -n 12 > /in/file\n\
FROM busybox:local AS base\nONBUILD COPY --from=src /in/file /out/foo\n\
FROM base AS mid\nRUN cp /out/foo /out/bar\nFROM scratch\nCOPY --from=mid /out/bar /\n",
    );
    assert_eq!(fs::read_to_string(out.join("bar")).unwrap(), "12");
}

/// testOnBuildNewDeps: a trigger may read an image nothing else names
/// (`COPY --from=<image>`) or a stage of the child's Dockerfile
/// (`RUN --mount=from=<stage>`), which then gets built.
#[test]
fn on_build_new_deps() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    image(
        &env,
        "onbuild:copy",
        "FROM busybox:local\nONBUILD COPY --from=busybox:local /etc/passwd /out/passwd2\n",
    );
    let out = export(
        &env,
        "FROM onbuild:copy AS base\nRUN cat /out/passwd2 > /out/passwd3\nFROM scratch\nCOPY --from=base /out /\n",
    );
    assert!(fs::read_to_string(out.join("passwd3")).unwrap().starts_with("root:"));
    image(
        &env,
        "onbuild:mount",
        "FROM busybox:local\nONBUILD RUN --mount=type=bind,target=/in,from=inputstage \
mkdir /out && cat /in/foo > /out/bar && cat /in/out/passwd2 > /out/bar2\n",
    );
    let out = export(
        &env,
        "FROM onbuild:copy AS inputstage\nRUN echo -n foo > /foo\n\
FROM onbuild:mount AS base\nRUN echo -n bar3 > /out/bar3\nFROM scratch\nCOPY --from=base /out /\n",
    );
    assert_eq!(fs::read_to_string(out.join("bar")).unwrap(), "foo");
    assert!(fs::read_to_string(out.join("bar2")).unwrap().starts_with("root:"));
    assert_eq!(fs::read_to_string(out.join("bar3")).unwrap(), "bar3");
}

/// testOnBuildWithCacheMount: a trigger's cache mount is the same cache a
/// later RUN of the child mounts.
#[test]
fn on_build_with_cache_mount() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    image(
        &env,
        "onbuild:cache",
        "FROM busybox:local\nONBUILD RUN --mount=type=cache,target=/cache echo -n 42 >> /cache/foo && echo -n 11 >> /bar\n",
    );
    env.dockerfile(
        "final",
        "FROM onbuild:cache\nRUN --mount=type=cache,target=/cache [ \"$(cat /cache/foo)\" = 42 ] && [ \"$(cat /bar)\" = 11 ]\n",
    );
    env.rbuild(&["build", "final"]).ok();
}
