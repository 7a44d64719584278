//! Conformance with BuildKit's cache tests (`dockerfile_cache_test.go`)
//! that need no registry: `--no-cache` with cache mounts, and wildcard
//! sources whose matches change.

use std::fs;

use crate::harness::*;

/// testCacheMountModeNoCache: under `--no-cache` a cache mount starts
/// empty too; what that build leaves in it is what the next build sees.
#[test]
fn cache_mount_mode_no_cache() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local AS base\nARG FOO=abc\n\
RUN --mount=type=cache,target=/cache,mode=0773 touch /cache/$FOO && ls /cache | wc -l > /out\n\
FROM scratch\nCOPY --from=base /out /\n",
    );
    let count = |extra: &[&str]| {
        let (_, out) = build_local(&env, "ctx", extra);
        fs::read_to_string(out.join("out")).unwrap().trim().to_string()
    };
    assert_eq!(count(&["--no-cache"]), "1");
    assert_eq!(count(&["--no-cache", "--build-arg", "FOO=def"]), "1", "abc is gone: the mount started empty");
    assert_eq!(count(&["--build-arg", "FOO=ghi"]), "2", "def and ghi: a plain build keeps the mount");
}

/// testWildcardRenameCache: renaming the file a wildcard matched reruns
/// the COPY, so a later step that needs the old name fails.
#[test]
fn wildcard_rename_cache() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM busybox:local\nCOPY file* /files/\nRUN ls /files/file1\n"), ("file1", "foo")],
    );
    env.rbuild(&["build", "ctx"]).ok();
    fs::rename(ctx.join("file1"), ctx.join("file2")).unwrap();
    let run = env.rbuild(&["build", "--progress", "plain", "ctx"]).failed();
    assert!(run.stderr.contains("ls /files/file1"), "{}", run.stderr);
}
