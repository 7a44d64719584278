//! Conformance with BuildKit's exporter tests (`dockerfile_export_test.go`)
//! that fit a local build.

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
