//! Bad input to the image commands: each is refused with a clear message
//! and exit code 1, and the store's images and tags stay as they were.

use std::fs;

use crate::harness::*;

/// What the user sees of the store: every image with its tags.
fn visible_state(env: &Env) -> String {
    env.rbuild(&["images", "-a", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]).ok().stdout
}

fn refused(env: &Env, args: &[&str], expect: &str) {
    let before = visible_state(env);
    let snapshot = env.store_snapshot();
    let run = env.rbuild(args).failed();
    assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
    assert!(run.stderr.contains(expect), "{args:?}: expected {expect:?} in:\n{}", run.stderr);
    assert_eq!(visible_state(env), before, "{args:?} changed the images");
    let after = env.store_snapshot();
    // Only blobs and layers that a failed load streamed in may remain, and
    // garbage collection removes them.
    let new: Vec<&String> = after.keys().filter(|k| !snapshot.contains_key(*k)).collect();
    assert!(new.iter().all(|k| k.starts_with("layers/") || k.starts_with("blobs/")), "{args:?} left {new:?}");
    if !new.is_empty() {
        env.rbuild(&["builder", "prune", "-a", "-f"]).ok();
        env.rbuild(&["image", "prune", "-f"]).ok();
        assert_eq!(env.store_snapshot().keys().collect::<Vec<_>>(), snapshot.keys().collect::<Vec<_>>());
    }
}

#[test]
fn unknown_ambiguous_and_malformed_names() {
    require!(busybox_static());
    let env = Env::with_busybox();
    for command in [&["inspect"][..], &["history"], &["rmi"], &["save", "-o", "x.tar"], &["tag"]] {
        let mut args = command.to_vec();
        args.push("nothere:v1");
        if command[0] == "tag" {
            args.push("new:tag");
        }
        refused(&env, &args, "No such image: nothere:v1");
    }
    refused(&env, &["tag", "busybox:local", "UPPER:case"], "repository name must be lowercase");
    refused(&env, &["rmi", "bad//name"], "invalid reference format");
    refused(&env, &["inspect", "-f", "{{.Os", "busybox:local"], "template");
    refused(&env, &["images", "-f", "before=nothere"], "No such image: nothere");
    assert!(!env.path("x.tar").exists());
}

#[test]
fn corrupt_truncated_and_lying_archives_are_refused() {
    require!(busybox_static());
    let env = Env::with_busybox();
    let good = env.path("good.tar");
    env.rbuild(&["save", "-o", good.to_str().unwrap(), "busybox:local"]).ok();
    env.rbuild(&["tag", "busybox:local", "other:1"]).ok();
    let bytes = fs::read(&good).unwrap();

    let garbage = env.path("garbage.tar");
    fs::write(&garbage, b"this is not an archive at all, just text\n".repeat(40)).unwrap();
    refused(&env, &["load", "-i", garbage.to_str().unwrap()], "not a tar archive");

    let truncated = env.path("truncated.tar");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refused(&env, &["load", "-i", truncated.to_str().unwrap()], "error");

    // Flip one byte inside the layer's content: its digest no longer matches.
    let lying = env.path("lying.tar");
    let mut changed = bytes.clone();
    let at = find(&changed, b"bin/busybox").expect("the layer holds busybox") + 4096;
    changed[at] ^= 0xff;
    fs::write(&lying, changed).unwrap();
    refused(&env, &["load", "-i", lying.to_str().unwrap()], "digest");

    // An archive with an entry climbing out of its root.
    let escaping = env.path("escaping.tar");
    let evil = rbuild_test_support::RawTar::new().file("../../escaped", b"evil").finish();
    fs::write(&escaping, &evil).unwrap();
    refused(&env, &["load", "-i", escaping.to_str().unwrap()], "..");
    refused(&env, &["import", escaping.to_str().unwrap(), "evil:1"], "..");
    assert!(!env.work.path().parent().unwrap().join("escaped").exists());
    env.rbuild(&["system", "check"]).ok();
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
