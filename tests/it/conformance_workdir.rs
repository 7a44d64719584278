//! Conformance with BuildKit's WORKDIR tests (`dockerfile_workdir_test.go`).

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::harness::*;

/// testWorkdirCreatesDir, testWorkdirUser, testWorkdirExists: WORKDIR
/// makes its directory (owned by USER), and leaves one that exists as it
/// is.
#[test]
fn workdir_creates_dir_owned_by_user() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nWORKDIR /foo\nWORKDIR /\n\
RUN mkdir /existing && chown 1234:5678 /existing\nUSER app\nWORKDIR /mydir\nWORKDIR /existing\n",
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert!(out.join("foo").is_dir());
    let owner = |p: &str| {
        let m = fs::metadata(out.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("mydir"), (1000, 1000), "made for USER app");
    assert_eq!(owner("existing"), (1234, 5678), "an existing directory keeps its owner");
}

/// testWorkdirCopyIgnoreRelative: `COPY --from` sources are absolute in
/// the other stage whatever its WORKDIR.
#[test]
fn workdir_copy_ignore_relative() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM scratch AS base\nWORKDIR /foo\nCOPY Dockerfile /\nFROM scratch\nCOPY --from=base Dockerfile .\n");
    let (_, out) = build_local(&env, "ctx", &[]);
    assert!(fs::read_to_string(out.join("Dockerfile")).unwrap().starts_with("FROM scratch AS base"));
}

/// testWorkdirSourceDateEpochReproducible: with SOURCE_DATE_EPOCH, a
/// WORKDIR-only image is the same when built again from a fresh store.
#[test]
fn workdir_source_date_epoch_reproducible() {
    require!(root(), busybox_static());
    let ids: Vec<String> = (0..2)
        .map(|_| {
            // The base is imported with a fixed time too: its ID is part of ours.
            let env = Env::new();
            let tarball = busybox_rootfs().to_str().unwrap();
            env.rbuild_with(&["import", tarball, "busybox:local"], None, &[("SOURCE_DATE_EPOCH", "0")]).ok();
            env.dockerfile("ctx", "FROM busybox:local\nWORKDIR /mydir\n");
            let run = env.rbuild(&["build", "-q", "--build-arg", "SOURCE_DATE_EPOCH=1673364896", "ctx"]).ok();
            std::thread::sleep(std::time::Duration::from_millis(1100));
            run.stdout.trim().to_string()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
}
