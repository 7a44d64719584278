//! Conformance with BuildKit's exporter tests (`dockerfile_export_test.go`)
//! and `.dockerignore` tests (`dockerfile_dockerignore_test.go`) that fit a
//! local build.

use crate::harness::*;

/// testTarExporterBasic: `-o type=tar` holds the root filesystem.
#[test]
fn tar_exporter_basic() {
    require!(root(), busybox_static(), tool("tar"));
    let env = Env::with_busybox();
    env.context("ctx", &[("Dockerfile", "FROM scratch\nCOPY foo foo\n"), ("foo", "data")]);
    let tar = env.path("out.tar");
    env.rbuild(&["build", "-o", &format!("type=tar,dest={}", tar.display()), "ctx"]).ok();
    assert_eq!(sh(&format!("tar -xOf {} foo", tar.display())), "data");
}

/// testDockerignoreInvalid: a `.dockerignore` with a lone `!` fails the
/// build quickly, naming the file.
#[test]
fn dockerignore_invalid() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context("ctx", &[("Dockerfile", "FROM scratch\nCOPY . .\n"), (".dockerignore", "!\n")]);
    let started = std::time::Instant::now();
    let run = env.rbuild(&["build", "ctx"]).failed();
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert!(run.stderr.contains(".dockerignore"), "{}", run.stderr);
}
