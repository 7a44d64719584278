//! Conformance with BuildKit's `.dockerignore` tests
//! (`dockerfile_dockerignore_test.go`).

use crate::harness::*;

/// testDockerignore: patterns with an exception, and the Dockerfile and
/// `.dockerignore` themselves left out of `COPY . .`.
#[test]
fn dockerignore() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM scratch\nCOPY . .\n"),
            (".dockerignore", "ba*\nDockerfile\n!bay\n.dockerignore\n"),
            ("foo", "foo-contents"),
            ("bar", "bar-contents"),
            ("baz", "baz-contents"),
            ("bay", "bay-contents"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(files_under(&out), ["bay", "foo"]);
    assert_contents(&out, &[("bay", "bay-contents"), ("foo", "foo-contents")]);
}

/// testDockerignoreOverride: `<Dockerfile>.dockerignore` next to the
/// Dockerfile wins over the context's `.dockerignore` (which would leave
/// out everything), for each Dockerfile; the RUN checks are BuildKit's.
#[test]
fn dockerignore_override() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox:local\nCOPY . .\nRUN [ -f foo ] && [ ! -f bar ]\n"),
            ("Dockerfile.dockerignore", "bar\n"),
            ("Dockerfile2", "FROM busybox:local\nCOPY . .\nRUN [ ! -f foo ] && [ -f bar ]\n"),
            ("Dockerfile2.dockerignore", "foo\n"),
            (".dockerignore", "*\n"),
            ("foo", "contents0"),
            ("bar", "contents0"),
        ],
    );
    env.rbuild(&["build", "ctx"]).ok();
    let second = ctx.join("Dockerfile2");
    env.rbuild(&["build", "-f", second.to_str().unwrap(), "ctx"]).ok();
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
