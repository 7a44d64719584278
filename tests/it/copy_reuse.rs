//! A COPY from the build context whose layer is already in the store is
//! not written again: a `--no-cache` rebuild describes each copy, finds
//! its layer through the store's COPY memo (description key -> diffID),
//! says so in the step's progress and gives the same image; a copy whose
//! result changed, or depends on when it is written, is written as before,
//! and so is one whose memo entry is lost. A `COPY --from` of a stage
//! that did not change finds its layer the same way when only its parent
//! changed.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use crate::harness::*;

const DOCKERFILE: &str = "FROM busybox:local\n\
COPY . /ctx\n\
COPY --chown=1000:1000 --chmod=640 src/ /etc/owned\n\
COPY src/*.txt /etc/\n\
COPY --link src /linked\n\
COPY one.txt /etc/one.conf\n\
RUN ls -lR /ctx /etc/owned > /listing\n";

/// The line a step prints when its layer was found without writing it.
const REUSED: &str = "is already stored: nothing written";

/// A context with nested and empty dirs, links, long and unicode names,
/// odd modes and a `.dockerignore`.
fn context(env: &Env) -> std::path::PathBuf {
    let long = "l".repeat(110);
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", DOCKERFILE),
            (".dockerignore", "*.log\nsrc/skip\n"),
            ("one.txt", "one\n"),
            ("noise.log", "ignored\n"),
            ("src/a.txt", "alpha\n"),
            ("src/b.txt", "beta\n"),
            ("src/skip/x", "excluded\n"),
            ("src/nested/deeper/c.bin", "gamma\n"),
            (&format!("src/{long}/{long}.txt"), "long\n"),
            ("src/grüße.txt", "unicode\n"),
        ],
    );
    fs::create_dir_all(ctx.join("src/empty")).unwrap();
    symlink("a.txt", ctx.join("src/link")).unwrap();
    fs::hard_link(ctx.join("src/a.txt"), ctx.join("src/hard")).unwrap();
    fs::set_permissions(ctx.join("src/b.txt"), fs::Permissions::from_mode(0o4755)).unwrap();
    ctx
}

fn build(env: &Env, extra: &[&str], vars: &[(&str, &str)]) -> (Run, String) {
    let iid = env.path("iid");
    let mut args = vec!["build", "--progress", "plain", "--iidfile", iid.to_str().unwrap(), "-t", "reuse:v1"];
    args.extend_from_slice(extra);
    args.push("ctx");
    let run = env.rbuild_with(&args, None, vars).ok();
    let id = fs::read_to_string(&iid).unwrap();
    (run, id)
}

/// The image's diffIDs, bottom first.
fn layers(env: &Env) -> Vec<serde_json::Value> {
    env.inspect_json("reuse:v1", ".RootFS.Layers").as_array().cloned().unwrap_or_default()
}

fn reused(run: &Run) -> usize {
    run.stderr.lines().filter(|l| l.contains(REUSED)).count()
}

#[test]
fn a_no_cache_rebuild_reuses_stored_copy_layers_and_gives_the_same_image() {
    require!(root(), busybox_static());
    for epoch in [None, Some("1700000000")] {
        let env = Env::with_busybox();
        context(&env);
        let vars: Vec<(&str, &str)> = epoch.map(|e| ("SOURCE_DATE_EPOCH", e)).into_iter().collect();
        let (first, first_id) = build(&env, &[], &vars);
        assert_eq!(reused(&first), 0, "a fresh store has none of the layers:\n{}", first.stderr);
        let first_layers = layers(&env);
        let (again, again_id) = build(&env, &["--no-cache"], &vars);
        assert_eq!(reused(&again), 5, "each of the five COPY steps finds its layer:\n{}", again.stderr);
        assert_eq!(again.run_lines().len(), 6, "--no-cache still runs every step:\n{}", again.stderr);
        // The base and the five copies; the RUN's layer holds its file's
        // time of writing unless SOURCE_DATE_EPOCH clamps it.
        assert_eq!(first_layers[..6], layers(&env)[..6]);
        if epoch.is_some() {
            assert_eq!(first_id, again_id, "the same image with SOURCE_DATE_EPOCH");
        }
    }
}

#[test]
fn a_changed_source_or_a_time_dependent_copy_is_written() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = context(&env);
    build(&env, &[], &[]);
    // One file changes: the three copies that include it make new layers,
    // the two that do not (one.txt, the wildcard) are reused.
    fs::write(ctx.join("src/nested/deeper/c.bin"), "changed\n").unwrap();
    let out = env.path("out");
    let dest = format!("type=local,dest={}", out.display());
    let (run, _) = build(&env, &["--no-cache", "-o", &dest], &[]);
    assert_eq!(reused(&run), 2, "{}", run.stderr);
    assert_eq!(fs::read_to_string(out.join("ctx/src/nested/deeper/c.bin")).unwrap(), "changed\n");
    assert_eq!(fs::read_to_string(out.join("linked/nested/deeper/c.bin")).unwrap(), "changed\n");

    // A directory the copy creates keeps the time it was made at: no
    // stored layer can be this copy's, so it is written every time.
    env.dockerfile("ctx", "FROM busybox:local\nCOPY one.txt /made/here/\n");
    build(&env, &[], &[]);
    let (run, _) = build(&env, &["--no-cache"], &[]);
    assert_eq!(reused(&run), 0, "{}", run.stderr);
}

/// Entries of the store's COPY memo.
fn memo_entries(env: &Env) -> usize {
    fs::read_dir(env.root.path().join("state/copy-memo")).map_or(0, |d| d.count())
}

#[test]
fn the_copy_memo_finds_the_layer_and_losing_it_only_costs_a_write() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = context(&env);
    env.dockerfile("ctx", "FROM busybox:local\nCOPY src/ /dst/\n");
    let (first, _) = build(&env, &[], &[]);
    assert_eq!(reused(&first), 0, "{}", first.stderr);
    assert_eq!(memo_entries(&env), 1, "the written copy is remembered");
    let written = layers(&env);
    let (again, _) = build(&env, &["--no-cache"], &[]);
    assert_eq!(reused(&again), 1, "{}", again.stderr);
    assert_eq!(layers(&env), written);

    // Without its memo the store writes the copy again, the same layer,
    // and remembers it anew.
    fs::remove_dir_all(env.root.path().join("state/copy-memo")).unwrap();
    let (lost, _) = build(&env, &["--no-cache"], &[]);
    assert_eq!(reused(&lost), 0, "{}", lost.stderr);
    assert_eq!(layers(&env), written, "written again, the same layer");
    let (back, _) = build(&env, &["--no-cache"], &[]);
    assert_eq!(reused(&back), 1, "{}", back.stderr);

    // A file's new content: the copy is written, with it.
    fs::write(ctx.join("src/a.txt"), "changed\n").unwrap();
    let out = env.path("out");
    let dest = format!("type=local,dest={}", out.display());
    let (changed, _) = build(&env, &["--no-cache", "-o", &dest], &[]);
    assert_eq!(reused(&changed), 0, "{}", changed.stderr);
    assert_eq!(fs::read_to_string(out.join("dst/a.txt")).unwrap(), "changed\n");
    assert_ne!(layers(&env), written);
    assert_eq!(memo_entries(&env), 2);

    // Garbage collection drops the entries whose layer it removes; the
    // next build writes the copy again.
    // (The earlier builds' images, untagged now, hold layers too.)
    env.rbuild(&["rmi", "reuse:v1"]).ok();
    env.rbuild(&["image", "prune", "-f"]).ok();
    env.rbuild(&["builder", "prune", "-a", "-f"]).ok();
    assert_eq!(memo_entries(&env), 0, "every memo entry named a removed layer");
    let (rebuilt, _) = build(&env, &["--no-cache"], &[]);
    assert_eq!(reused(&rebuilt), 0, "{}", rebuilt.stderr);
    assert_eq!(memo_entries(&env), 1);
}

#[test]
fn a_copy_from_an_unchanged_stage_under_a_changed_parent_takes_its_stored_layer() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local AS deps\n\
                 RUN mkdir /deps && echo a > /deps/a && echo b > /deps/b\n\
                 FROM busybox:local\n\
                 WORKDIR /srv\n\
                 COPY changing.txt ./\n\
                 COPY --from=deps /deps ./deps\n\
                 RUN cat /srv/deps/a /srv/changing.txt > /srv/out\n",
            ),
            ("changing.txt", "one\n"),
        ],
    );
    let (first, _) = build_local(&env, "ctx", &[]);
    assert_eq!(reused(&first), 0, "{}", first.stderr);
    fs::write(ctx.join("changing.txt"), "two\n").unwrap();
    let (second, out) = build_local(&env, "ctx", &[]);
    let line =
        second.stderr.lines().find(|l| l.contains(REUSED)).unwrap_or_else(|| panic!("{}", second.stderr));
    // The step is numbered in the progress; the reuse is the COPY --from's.
    assert_eq!(reused(&second), 1, "only the COPY --from finds its layer:\n{}", second.stderr);
    let step = line.split_whitespace().next().unwrap();
    assert!(
        second.stderr.lines().any(|l| l.starts_with(step) && l.contains("COPY --from=deps")),
        "the reused layer is the COPY --from's:\n{}",
        second.stderr
    );
    assert_contents(&out, &[("srv/deps/a", "a\n"), ("srv/deps/b", "b\n"), ("srv/out", "a\ntwo\n")]);
}
