//! Conformance with BuildKit's `RUN --mount` tests
//! (`dockerfile_mount_test.go`). Most of them check inside the build, with
//! `RUN` commands that fail when the mount is not what BuildKit makes; the
//! build succeeding is then the assertion, as in BuildKit.

use std::fs;

use crate::harness::*;

/// Each BuildKit test's Dockerfile (on our busybox): every RUN check in it
/// must pass.
#[test]
fn mounts_checked_inside_the_build() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let cases = [
        (
            "testMountTmpfs",
            "FROM busybox:local\nRUN --mount=target=/mytmp,type=tmpfs touch /mytmp/foo\nRUN [ ! -f /mytmp/foo ]\n",
        ),
        (
            "testCacheMountUser",
            "FROM busybox:local\nRUN --mount=type=cache,target=/mycache,uid=1001,gid=1002,mode=0751 \
[ \"$(stat -c '%u %g %f' /mycache)\" = '1001 1002 41e9' ]\n",
        ),
        (
            "testCacheMountDefaultID",
            "FROM busybox:local\nRUN --mount=type=cache,target=/mycache touch /mycache/foo\n\
RUN --mount=type=cache,target=/mycache2 [ ! -f /mycache2/foo ]\n\
RUN --mount=type=cache,target=/mycache [ -f /mycache/foo ]\n",
        ),
        (
            "testMountEnvVar",
            "FROM busybox:local\nENV SOME_PATH=/mycache\nRUN --mount=type=cache,target=/mycache touch /mycache/foo\n\
RUN --mount=type=cache,target=$SOME_PATH [ -f $SOME_PATH/foo ]\n",
        ),
        (
            "testMountArg",
            "FROM busybox:local\nARG MNT_TYPE=cache\nRUN --mount=type=$MNT_TYPE,target=/mycache2 touch /mycache2/foo\n\
RUN --mount=type=cache,target=/mycache2 [ -f /mycache2/foo ]\n",
        ),
        (
            "testMountEnvAcrossStages",
            "FROM busybox:local AS stage1\nENV MNT_ID=mycache\nENV MNT_TYPE2=cache\n\
RUN --mount=type=cache,id=mycache,target=/abcabc touch /abcabc/foo\n\
RUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/cbacba [ -f /cbacba/foo ]\n\
FROM stage1\nRUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/whatever [ -f /whatever/foo ]\n",
        ),
        (
            "testMountMetaArg",
            "ARG META_PATH=/tmp/meta\nFROM busybox:local\nARG META_PATH\n\
RUN --mount=type=cache,id=mycache,target=/tmp/meta touch /tmp/meta/foo\n\
RUN --mount=type=cache,id=mycache,target=$META_PATH [ -f /tmp/meta/foo ]\n",
        ),
    ];
    for (name, dockerfile) in cases {
        env.dockerfile(name, dockerfile);
        let run = env.rbuild(&["build", "--progress", "plain", name]);
        assert_eq!(run.code, 0, "{name}: a check failed\n{}", run.stderr);
    }
}

/// testMountTmpfsSize: `size=` sets the tmpfs size.
#[test]
fn mount_tmpfs_size() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nRUN --mount=type=tmpfs,target=/dev/shm,size=128m mount | grep /dev/shm > /tmpfssize\n",
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    let line = fs::read_to_string(out.join("tmpfssize")).unwrap();
    assert!(line.contains("size=131072k"), "{line}");
}

/// testMountDuplicate: two bind mounts of the context (a directory and a
/// file in it) in one RUN, and a changed context file reaches the next
/// build.
#[test]
fn mount_duplicate() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    for text in ["foo\n", "updated\n"] {
        env.context(
            "ctx",
            &[
                (
                    "Dockerfile",
                    "FROM busybox:local\nRUN --mount=source=.,target=/tmp/test --mount=source=b.txt,target=/tmp/b.txt \
cat /tmp/test/a.txt /tmp/b.txt > /combined.txt\n",
                ),
                ("a.txt", text),
                ("b.txt", "bar\n"),
            ],
        );
        let (_, out) = build_local(&env, "ctx", &[]);
        assert_eq!(fs::read_to_string(out.join("combined.txt")).unwrap(), format!("{text}bar\n"));
    }
}

/// testMountInvalid, testMountFromError: a misspelt flag, key or mount
/// type is an error that suggests the right word; `from=` takes no
/// variables.
#[test]
fn mount_invalid() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let cases: [(&str, &[&str]); 4] = [
        (
            "FROM scratch\nRUN --mont=target=/mytmp,type=tmpfs /bin/true\n",
            &["--mont", "did you mean --mount?"],
        ),
        ("FROM scratch\nRUN --mount=typ=tmpfs /bin/true\n", &["\"typ\"", "did you mean type?"]),
        ("FROM scratch\nRUN --mount=type=tmp /bin/true\n", &["unsupported mount type \"tmp\"", "tmpfs"]),
        (
            "FROM busybox:local AS test\nRUN touch /tmp/test\nFROM busybox:local\nENV ttt=test\n\
RUN --mount=from=$ttt,type=cache,target=/tmp ls\n",
            &["doesn't support variable expansion"],
        ),
    ];
    for (dockerfile, wanted) in cases {
        env.dockerfile("bad", dockerfile);
        let run = env.rbuild(&["build", "bad"]).failed();
        for w in wanted {
            assert!(run.stderr.contains(w), "{dockerfile}: expected {w:?} in\n{}", run.stderr);
        }
    }
}

/// testMountContext: a mount without a type binds the context;
/// testMountRWCache (its first half): an `rw` bind of another stage's
/// directory lets the step write there, and the writes are discarded.
#[test]
fn mount_context_and_rw_stage() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local AS build\nRUN mkdir /out && echo foo > /out/foo\n\
FROM busybox:local\nRUN --mount=target=/context [ \"$(cat /context/testfile)\" = contents0 ]\n\
RUN --mount=from=build,src=/out,target=/out,rw touch /out/bar && ls /out > /listed\n",
            ),
            ("testfile", "contents0"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(&out, &[("listed", "bar\nfoo\n")]);
    assert!(!out.join("out").exists(), "the mount's writes stay out of the layer");
}

/// testMountRWCache (its second half): a step that binds a path of another
/// stage is keyed by that path's content: when the stage reruns for a
/// change elsewhere and makes the same path again, the step stays cached.
#[test]
fn mount_from_stage_is_keyed_by_the_path() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let dockerfile = "FROM busybox:local AS build\nCOPY cachebust /\nRUN mkdir out && echo foo > out/foo\n\
FROM busybox:local AS second\n\
RUN --mount=from=build,src=out,target=/out,rw touch /out/bar && head -c 100 /dev/urandom | sha256sum > /unique\n\
FROM scratch\nCOPY --from=second /unique /unique\n";
    let unique = |bust: &str| {
        env.context("ctx", &[("Dockerfile", dockerfile), ("cachebust", bust)]);
        fs::read_to_string(build_local(&env, "ctx", &[]).1.join("unique")).unwrap()
    };
    let first = unique("0");
    assert_eq!(unique("1"), first, "out/ is the same: the RUN that mounts it stays cached");
}

/// testCacheMountParallel: two stages running at once, each with a cache
/// mount inside another cache mount, under `--no-cache`, again and again.
#[test]
fn cache_mount_parallel() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local AS b1\nRUN --mount=type=cache,target=/foo/bar --mount=type=cache,target=/foo/bar/baz echo 1\n\
FROM busybox:local AS b2\nRUN --mount=type=cache,target=/foo/bar --mount=type=cache,target=/foo/bar/baz echo 2\n\
FROM scratch\nCOPY --from=b1 /etc/passwd p1\nCOPY --from=b2 /etc/passwd p2\n",
    );
    for _ in 0..5 {
        env.rbuild(&["build", "--no-cache", "ctx"]).ok();
    }
}
