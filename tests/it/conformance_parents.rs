//! Conformance with BuildKit's `COPY --parents` tests
//! (`dockerfile_parents_test.go`): pivots (`/./`), wildcards before the
//! pivot, `**` after it, several sources, and what may match nothing.

use std::fs;

use crate::harness::*;

/// The tree testCopyRelativeParents copies from, made in a stage.
const BASE: &str = "FROM busybox:local AS base\nWORKDIR /test\n\
RUN mkdir -p a/b/c/d/e a/b2/c/d/e a/b/c2/d/e a/b/c2/d/e2 \
&& touch a/b/c/d/foo a/b/c/d/e/bay a/b2/c/d/e/bar a/b/c2/d/e/baz a/b/c2/d/e2/baz\n";

/// The smaller tree of testCopyParentsMissingDirectory.
const SMALL_BASE: &str = "FROM busybox:local AS base\nWORKDIR /test\n\
RUN mkdir -p a/b/c/d/e && touch a/b/c/d/foo a/b/c/d/e/bay\n";

/// Builds `target` of a Dockerfile made of `base` and `stages`; returns
/// what the target's `/out` holds.
fn out_of(env: &Env, base: &str, stages: &str, target: &str) -> Vec<String> {
    env.dockerfile("ctx", &format!("{base}{stages}"));
    let (_, out) = build_local(env, "ctx", &["--target", target]);
    files_under(&out.join("out"))
}

/// testCopyParents: without a pivot the whole path is kept below the
/// destination, also for a wildcard and a relative destination.
#[test]
fn copy_parents() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY --parents foo1/foo2/bar /\nWORKDIR /test\nCOPY --parents foo1/foo2/ba* .\n",
            ),
            ("foo1/foo2/bar", "testing"),
            ("foo1/foo2/baz", "testing2"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(fs::read_to_string(out.join("foo1/foo2/bar")).unwrap(), "testing");
    assert!(!out.join("foo1/foo2/baz").exists(), "the first COPY names bar only");
    assert_eq!(fs::read_to_string(out.join("test/foo1/foo2/bar")).unwrap(), "testing");
    assert_eq!(fs::read_to_string(out.join("test/foo1/foo2/baz")).unwrap(), "testing2");
}

/// testCopyRelativeParents: every target of BuildKit's test, its checks
/// made on the exported `/out`.
#[test]
fn copy_relative_parents() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let cases: [(&str, &str, &[&str], &[&str]); 7] = [
        ("middle", "/test/a/b/./c/d", &["c/d/e", "c/d/foo"], &["a", "e"]),
        ("end", "/test/a/b/c/d/.", &["test/a/b/c/d/e", "test/a/b/c/d/foo"], &[]),
        ("start", "./test/a/b/c/d", &["test/a/b/c/d/e", "test/a/b/c/d/foo"], &[]),
        ("double", "/test/a/./b/./c", &["b/c/d/e", "b/c/d/foo"], &[]),
        ("wildcard", "/test/a/./*/c", &["b/c/d/e", "b2/c/d/e/bar"], &[]),
        ("doublewildcard", "/test/a/b*/./c/**/e", &["c/d/e", "c/d/e/bay", "c/d/e/bar"], &[]),
        (
            "doubleinputs",
            "/test/a/b/c*/./d/**/baz /test/a/b*/./c/**/bar",
            &["d/e/baz", "d/e2/baz", "c/d/e/bar"],
            &["d/e/bay"],
        ),
    ];
    for (target, sources, present, absent) in cases {
        let stage = format!("FROM busybox:local AS {target}\nCOPY --from=base --parents {sources} /out/\n");
        let got = out_of(&env, BASE, &stage, target);
        for p in present {
            assert!(got.iter().any(|g| g == p), "{target}: /out/{p} missing from {got:?}");
        }
        for p in absent {
            assert!(!got.iter().any(|g| g == p), "{target}: /out/{p} must not exist: {got:?}");
        }
    }
}

/// testCopyParentsMissingDirectory: a plain path that is missing fails
/// the build; a wildcard that matches nothing copies nothing and still
/// makes the destination.
#[test]
fn copy_parents_missing_directory() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let stage = "FROM busybox:local AS normal\nCOPY --from=base --parents /test/a/b/c/d /out/\n";
    let normal = out_of(&env, SMALL_BASE, stage, "normal");
    assert!(normal.iter().any(|p| p == "test/a/b/c/d/e/bay"), "{normal:?}");
    assert!(!normal.iter().any(|p| p == "e" || p == "a"), "{normal:?}");
    for (target, source) in
        [("wildcard-nonexistent", "/test/a/b2*/c"), ("wildcard-afterpivot", "/test/a/b/./c2*")]
    {
        let stage = format!("FROM busybox:local AS {target}\nCOPY --from=base --parents {source} /out/\n");
        let got = out_of(&env, SMALL_BASE, &stage, target);
        assert!(got.is_empty(), "{target}: nothing matches, /out is empty: {got:?}");
    }
    let missing = "FROM busybox:local\nCOPY --from=base --parents /test/nonexistent-file /out/\n";
    env.dockerfile("bad", &format!("{SMALL_BASE}{missing}"));
    let run = env.rbuild(&["build", "bad"]).failed();
    assert!(run.stderr.contains("/test/nonexistent-file"), "the error names the path: {}", run.stderr);
    assert!(run.stderr.contains("Dockerfile:5"), "and the line: {}", run.stderr);
}
