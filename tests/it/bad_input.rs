//! Bad input: each gives a clear error naming the file and line, exit code
//! 1, and leaves the store exactly as it was.

use std::fs;

use crate::harness::*;

/// Runs a build that must fail, and checks exit code, message and store.
fn fails(env: &Env, ctx: &str, args: &[&str], expect: &[&str]) -> Run {
    let before = env.store_snapshot();
    let mut all = vec!["build", "--progress", "plain"];
    all.extend_from_slice(args);
    all.push(ctx);
    let run = env.rbuild(&all).failed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    for e in expect {
        assert!(run.stderr.contains(e), "expected {e:?} in:\n{}", run.stderr);
    }
    assert!(run.stderr.contains("hint:"), "every error carries a hint:\n{}", run.stderr);
    assert_eq!(env.store_snapshot(), before, "the store must be unchanged");
    run
}

#[test]
fn missing_dockerfile_and_missing_context() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context("empty", &[("readme", "x")]);
    fails(&env, "empty", &[], &["cannot find the Dockerfile", "empty/Dockerfile"]);
    fails(&env, "no-such-dir", &[], &["no-such-dir"]);
}

#[test]
fn unknown_instruction_names_line_and_suggests() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM busybox:local\nRUN true\nCOPPY a b\n");
    let run =
        fails(&env, "ctx", &[], &["unknown instruction: COPPY", "Dockerfile:3:1", "did you mean COPY?"]);
    assert!(run.stderr.contains("^^^^^"), "shows a caret: {}", run.stderr);
}

#[test]
fn copy_of_a_missing_source_and_of_a_path_outside_the_context() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM busybox:local\nCOPY missing.txt /\n");
    fails(&env, "ctx", &[], &["missing.txt", "Dockerfile:2"]);
    fs::write(env.path("secret.txt"), "do not read").unwrap();
    fs::write(env.path("ctx/Dockerfile"), "FROM busybox:local\nCOPY ../secret.txt /\n").unwrap();
    fails(&env, "ctx", &[], &["outside the build context", "Dockerfile:2"]);
}

#[test]
fn add_of_a_tar_with_parent_entries_is_refused() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.dockerfile("ctx", "FROM busybox:local\nADD evil.tar /opt/\n");
    // A tar whose entry climbs out of the destination.
    let evil = rbuild_test_support::RawTar::new().file("../../escaped", b"evil").finish();
    fs::write(ctx.join("evil.tar"), evil).unwrap();
    fails(&env, "ctx", &[], &["Dockerfile:2", ".."]);
    assert!(!env.path("escaped").exists() && !env.work.path().join("../escaped").exists());
}

#[test]
fn unknown_stage_in_copy_from() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM busybox:local\nCOPY --from=nosuchstage /x /x\n");
    fails(&env, "ctx", &[], &["nosuchstage", "Dockerfile:2"]);
}

#[test]
fn from_an_image_that_is_not_in_the_store() {
    require!(root());
    let env = Env::new();
    env.dockerfile("ctx", "FROM nothere:v9\nRUN true\n");
    fails(&env, "ctx", &[], &["nothere:v9", "Dockerfile:1", "rbuild load"]);
}
