//! `--build-context NAME=VALUE` through the real binary: a directory (with
//! its own `.dockerignore`), `docker-image://`, `target:` and
//! `oci-layout://`, each read by FROM, `COPY --from` and `RUN --mount=from`,
//! and malformed values.

use std::fs;

use crate::harness::*;

#[test]
fn a_directory_context_is_read_with_its_own_dockerignore_and_stays_cached() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "vendor",
        &[
            ("lib/a.txt", "a"),
            ("drafts/b.txt", "b"),
            ("notes.txt", "n"),
            (".dockerignore", "drafts\nnotes.txt\n"),
        ],
    );
    // `base` is a stage the directory replaces (its RUN would fail).
    let dockerfile = "FROM busybox:local AS base\nRUN exit 1\nFROM deps AS copied\nFROM busybox:local\nCOPY --from=deps /lib /from-copy\nCOPY --from=copied / /from-stage/\nCOPY --from=base /lib/a.txt /replaced-a\nRUN --mount=from=deps,target=/m find /m -type f | sort > /mounted\n";
    env.dockerfile("ctx", dockerfile);
    // The main context's .dockerignore does not apply to the named one.
    fs::write(env.path("ctx/.dockerignore"), "lib\n").unwrap();
    let vendor = env.path("vendor");
    let flag = format!("deps={}", vendor.display());
    let replace = format!("base={}", vendor.display());
    let (run, out) = build_local(&env, "ctx", &["--build-context", &flag, "--build-context", &replace]);
    assert_contents(
        &out,
        &[
            ("replaced-a", "a"),
            ("from-copy/a.txt", "a"),
            ("from-stage/lib/a.txt", "a"),
            ("mounted", "/m/.dockerignore\n/m/lib/a.txt\n"),
        ],
    );
    assert!(
        !out.join("from-stage/drafts").exists() && !out.join("from-stage/notes.txt").exists(),
        "{}",
        run.stderr
    );
    let rebuild = || {
        env.rbuild(&[
            "build",
            "--progress",
            "plain",
            "--build-context",
            &flag,
            "--build-context",
            &replace,
            "ctx",
        ])
        .ok()
    };
    let again = rebuild();
    assert!(again.run_lines().is_empty(), "unchanged files: every step cached: {}", again.stderr);
    fs::write(vendor.join("lib/a.txt"), "changed").unwrap();
    let changed = rebuild();
    assert!(!changed.run_lines().is_empty(), "a changed file re-runs: {}", changed.stderr);
    fs::write(vendor.join("notes.txt"), "ignored edit").unwrap();
    let ignored = rebuild();
    assert!(ignored.run_lines().is_empty(), "an ignored file changes nothing: {}", ignored.stderr);
}

#[test]
fn image_and_target_contexts_stand_in_for_names() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let dockerfile = "FROM scratch AS build\nCOPY marker /marker\nFROM nowhere.invalid/base:1 AS base\nRUN echo from-base > /base-marker\nFROM base\nCOPY --from=alias /marker /copied-marker\nRUN --mount=from=alias,target=/m cat /m/marker > /mounted-marker\n";
    env.context("ctx", &[("Dockerfile", dockerfile), ("marker", "built")]);
    let (_, out) = build_local(
        &env,
        "ctx",
        &[
            "--build-context",
            "nowhere.invalid/base:1=docker-image://busybox:local",
            "--build-context",
            "alias=target:build",
        ],
    );
    assert_contents(
        &out,
        &[("base-marker", "from-base\n"), ("copied-marker", "built"), ("mounted-marker", "built")],
    );
    assert!(out.join("bin/busybox").exists(), "the image stood in for the FROM");
    // A context named like a stage replaces the stage, as in BuildKit.
    let (_, out) = build_local(
        &env,
        "ctx",
        &["--build-context", "base=docker-image://busybox:local", "--build-context", "alias=target:build"],
    );
    assert!(!out.join("base-marker").exists(), "the replaced stage's RUN does not run");
    assert_contents(&out, &[("copied-marker", "built")]);
}

#[test]
fn an_oci_layout_context_is_used_without_tagging_the_store() {
    require!(root(), busybox_static());
    let archive = require!(base("busybox.oci.tar"));
    let env = Env::new();
    let layout = env.path("layout");
    fs::create_dir_all(&layout).unwrap();
    sh(&format!("tar xf {} -C {}", archive.display(), layout.display()));
    env.dockerfile("ctx", "FROM img\nRUN echo ok > /ok\n");
    let tag = fs::read_to_string(layout.join("index.json")).unwrap();
    let ref_name: serde_json::Value = serde_json::from_str(&tag).unwrap();
    let ref_name = ref_name["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap()
        .to_string();
    let tag = ref_name.rsplit(':').next().unwrap();
    let flag = format!("img=oci-layout://{}:{tag}", layout.display());
    let (_, out) = build_local(&env, "ctx", &["--build-context", &flag]);
    assert_contents(&out, &[("ok", "ok\n")]);
    let tagged = env.rbuild(&["inspect", &ref_name]).failed();
    assert!(
        tagged.stderr.contains(&ref_name),
        "the layout's {ref_name} must not become a tag: {}",
        tagged.stderr
    );
    let missing = format!("img=oci-layout://{}:nosuchtag", layout.display());
    let run = env.rbuild(&["build", "--build-context", &missing, "ctx"]).failed();
    assert!(run.stderr.contains("has no image nosuchtag"), "{}", run.stderr);
}

#[test]
fn malformed_build_contexts_say_what_was_expected() {
    let env = Env::new();
    env.dockerfile("ctx", "FROM x\n");
    let before = env.store_snapshot();
    for (value, why) in [
        ("novalue", "expected NAME=VALUE"),
        ("x=./missing-dir", "is not a directory"),
        ("x=git://host/repo", "git:// contexts are not supported"),
        ("x=target:", "target: needs a stage name"),
        ("x=oci-layout://./missing", "is no OCI layout"),
    ] {
        let run = env.rbuild(&["build", "--build-context", value, "ctx"]).failed();
        assert!(
            run.stderr.contains(&format!("error: invalid --build-context {value:?}: ")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(why), "{value}: {}", run.stderr);
        assert!(run.stderr.contains("hint: write NAME=DIR"), "{}", run.stderr);
    }
    env.dockerfile("stage", "FROM scratch\nCOPY --from=x /a /a\n");
    let run = env.rbuild(&["build", "--build-context", "x=target:nope", "stage"]).failed();
    assert!(
        run.stderr.contains("--build-context x=target:nope names no stage of this Dockerfile"),
        "{}",
        run.stderr
    );
    assert_eq!(env.store_snapshot(), before, "nothing was stored");
}
