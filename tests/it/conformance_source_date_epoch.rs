//! Conformance with BuildKit's `SOURCE_DATE_EPOCH` tests
//! (`dockerfile_source_date_epoch_test.go`) that apply to a local build:
//! the clock given as a build arg.

use crate::harness::*;

/// testSourceDateEpochWithoutExporter: `--build-arg SOURCE_DATE_EPOCH`
/// sets the image's creation time and every history entry's.
/// testSourceDateEpochDockerfileDefaultInvalid (as a build arg): a value
/// that is no timestamp is an error naming it.
#[test]
fn source_date_epoch_build_arg() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n");
    env.rbuild(&["build", "-q", "-t", "sde:test", "--build-arg", "SOURCE_DATE_EPOCH=1700000001", "ctx"]).ok();
    let created = env.rbuild(&["inspect", "-f", "{{.Created}}", "sde:test"]).ok();
    assert!(created.stdout.starts_with("2023-11-14T22:13:21"), "{}", created.stdout);
    let history = env.rbuild(&["history", "--no-trunc", "--format", "{{.CreatedAt}}", "sde:test"]).ok();
    let times: Vec<&str> = history.stdout.lines().collect();
    assert!(times.len() >= 2, "{}", history.stdout);
    assert!(times.iter().all(|t| *t == times[0]), "every history entry has the epoch's time: {times:?}");
    let run = env.rbuild(&["build", "--build-arg", "SOURCE_DATE_EPOCH=not-a-timestamp", "ctx"]).failed();
    assert!(run.stderr.contains("invalid SOURCE_DATE_EPOCH: not-a-timestamp"), "{}", run.stderr);
}

/// testSourceDateEpochDockerfileDefault, …DefaultOverride, …DefaultInvalid:
/// a global `ARG SOURCE_DATE_EPOCH=…` default is the build's clock, a
/// build arg overrides it, and a default that is no timestamp is an error.
#[test]
fn source_date_epoch_dockerfile_default() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "ARG SOURCE_DATE_EPOCH=1700000001\nFROM scratch\nCOPY Dockerfile .\n");
    let created = |extra: &[&str]| {
        let mut args = vec!["build", "-q", "-t", "sde:default"];
        args.extend_from_slice(extra);
        args.push("ctx");
        env.rbuild(&args).ok();
        env.rbuild(&["inspect", "-f", "{{.Created}}", "sde:default"]).ok().stdout
    };
    assert!(created(&[]).starts_with("2023-11-14T22:13:21"));
    assert!(created(&["--build-arg", "SOURCE_DATE_EPOCH=1700000002"]).starts_with("2023-11-14T22:13:22"));
    env.dockerfile("bad", "ARG SOURCE_DATE_EPOCH=not-a-timestamp\nFROM scratch\nCOPY Dockerfile .\n");
    let run = env.rbuild(&["build", "bad"]).failed();
    assert!(run.stderr.contains("invalid SOURCE_DATE_EPOCH: not-a-timestamp"), "{}", run.stderr);
}
