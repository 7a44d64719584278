//! Pruning and garbage collection: exactly what nothing references goes,
//! never what a tagged image, any image record, a kept cache entry or a
//! running build needs; `system df` and `system check` tell the truth.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::images::build_image;

/// Layer directories in the store.
fn layer_count(env: &Env) -> usize {
    fs::read_dir(env.root.path().join("layers")).unwrap().count()
}

fn cache_count(env: &Env) -> usize {
    fs::read_dir(env.root.path().join("cache")).unwrap().count()
}

#[test]
fn image_prune_removes_dangling_images_and_their_layers_only() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let old = build_image(&env, "one", "RUN echo 1 > /n\n", "app:v1");
    build_image(&env, "two", "RUN echo 2 > /n\n", "app:v1");
    let kept = build_image(&env, "three", "RUN echo 3 > /n\n", "keep:v1");
    assert_eq!(layer_count(&env), 4);
    // Without -f and no "y" on stdin, nothing happens.
    let asked = env.rbuild(&["image", "prune"]).ok();
    assert!(asked.stdout.starts_with("WARNING! This will remove all dangling images.\n"), "{}", asked.stdout);
    assert_eq!(env.rbuild(&["images", "-q", "-a"]).ok().stdout.lines().count(), 4);

    // The untagged image's layer is still held by the build cache entry.
    let out = env.rbuild(&["image", "prune", "-f"]).ok().stdout;
    assert_eq!(out, format!("Deleted Images:\ndeleted: {old}\n\nTotal reclaimed space: 0B\n"));
    assert_eq!(layer_count(&env), 4, "cache entries keep their layers");
    // Dropping the cache that no tagged image uses frees that layer (2 bytes).
    let out = env.rbuild(&["builder", "prune", "-f"]).ok().stdout;
    assert!(out.starts_with("Deleted build cache objects:\n"), "{out}");
    assert!(out.ends_with("\nTotal reclaimed space: 2B\n"), "{out}");
    assert_eq!(layer_count(&env), 3);
    assert_eq!(cache_count(&env), 2, "entries whose layers tagged images use stay");
    env.rbuild(&["system", "check"]).ok();

    // A rebuild of a tagged image is still all cached.
    env.rbuild(&["build", "--progress", "plain", "-t", "keep:v1", "three"]).ok();
    assert_eq!(env.rbuild(&["images", "-q", "--no-trunc", "keep"]).ok().stdout.trim(), kept);

    // -a: every image, tagged or not (rbuild has no containers to keep one
    // in use); the build cache still holds the layers builds made.
    env.rbuild(&["tag", "keep:v1", "other:v1"]).ok();
    env.rbuild(&["rmi", "keep:v1"]).ok();
    let out = env.rbuild(&["image", "prune", "-a", "-f"]).ok().stdout;
    for name in ["app:v1", "busybox:local", "other:v1"] {
        assert!(out.contains(&format!("\nuntagged: {name}\n")), "{out}");
    }
    assert!(out.contains(&format!("\ndeleted: {kept}\n")), "{out}");
    assert!(!out.ends_with("Total reclaimed space: 0B\n"), "busybox's layer is freed: {out}");
    assert_eq!(env.rbuild(&["images", "-q", "-a"]).ok().stdout, "");
    assert_eq!(layer_count(&env), 2, "cache entries keep the layers builds made");
    let all = env.rbuild(&["builder", "prune", "-a", "-f"]).ok().stdout;
    assert!(all.contains("Deleted build cache objects:"), "{all}");
    assert_eq!(cache_count(&env), 0);
    assert_eq!(layer_count(&env), 0, "nothing holds a layer any more");
    env.rbuild(&["system", "check"]).ok();
}

#[test]
fn intermediate_images_show_with_all_and_go_with_prune_all() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let base = env.rbuild(&["images", "-q", "--no-trunc"]).ok().stdout.trim().to_string();
    build_image(&env, "app", "RUN echo 1 > /n\n", "app:v1");
    // Move busybox's only tag away: it becomes an untagged base of app:v1.
    env.rbuild(&["tag", "app:v1", "busybox:local"]).ok();
    let shown = env.rbuild(&["images", "-q", "--no-trunc"]).ok().stdout;
    assert!(!shown.contains(&base), "intermediate images are hidden: {shown}");
    let all = env
        .rbuild(&["images", "-a", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "--no-trunc"])
        .ok()
        .stdout;
    assert!(all.contains(&format!("<none>:<none> {base}")), "{all}");
    let dangling = env.rbuild(&["images", "-q", "-f", "dangling=true"]).ok().stdout;
    assert_eq!(dangling, "", "an image something was built on is not dangling");
    assert_eq!(env.rbuild(&["image", "prune", "-f"]).ok().stdout, "Total reclaimed space: 0B\n");
    let out =
        env.rbuild(&["image", "prune", "-a", "-f", "--filter", "until=2000-01-01T00:00:00Z"]).ok().stdout;
    assert_eq!(out, "Total reclaimed space: 0B\n", "until in the past selects nothing");
    env.rbuild(&["image", "prune", "-a", "-f", "--filter", "until=bogus"]).failed();
    let out = env.rbuild(&["image", "prune", "-a", "-f", "--filter", "label=nothing"]).ok().stdout;
    assert_eq!(out, "Total reclaimed space: 0B\n", "a label nobody has selects nothing");
    // -a takes app:v1 with both its names, and then the untagged base it
    // was built on, which nothing else is built on any more.
    let app = env.rbuild(&["images", "-q", "--no-trunc", "app:v1"]).ok().stdout.trim().to_string();
    let out = env.rbuild(&["image", "prune", "-a", "-f"]).ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    let expected_start = [
        "Deleted Images:".to_string(),
        "untagged: app:v1".into(),
        "untagged: busybox:local".into(),
        format!("deleted: {app}"),
    ];
    assert_eq!(lines[..4], expected_start, "{out}");
    assert!(lines.contains(&format!("deleted: {base}").as_str()), "{out}");
    assert_eq!(env.rbuild(&["images", "-q", "-a"]).ok().stdout, "");
    env.rbuild(&["system", "check"]).ok();
}

#[test]
fn builder_prune_keep_storage_keeps_the_newest() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    for (i, size) in [(1, 3000), (2, 5000)] {
        let extra = format!("RUN head -c {size} /dev/zero > /f{i}\n");
        build_image(&env, &format!("c{i}"), &extra, &format!("t:{i}"));
        std::thread::sleep(Duration::from_millis(1100));
    }
    env.rbuild(&["rmi", "t:1", "t:2"]).ok();
    env.rbuild(&["image", "prune", "-f"]).ok();
    assert_eq!(cache_count(&env), 2);
    // 8 kB of cache, keep 6 KiB: only the older entry goes.
    let out = env.rbuild(&["builder", "prune", "-f", "--keep-storage", "6KB"]).ok().stdout;
    assert!(out.ends_with("Total reclaimed space: 3kB\n"), "{out}");
    assert_eq!(cache_count(&env), 1);
    let df = env.rbuild(&["system", "df"]).ok().stdout;
    let lines: Vec<&str> = df.lines().collect();
    assert_eq!(lines[0], "TYPE          TOTAL     ACTIVE    SIZE      RECLAIMABLE");
    assert!(lines[1].starts_with("Images        1         1         1.984MB   0B (0%)"), "{df}");
    assert_eq!(lines[2], "Build Cache   1         0         5kB       5kB");
    env.rbuild(&["builder", "prune", "-f", "--keep-storage", "lots"]).failed();
}

#[test]
fn garbage_collection_waits_for_running_builds() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    build_image(&env, "one", "RUN echo 1 > /n\n", "app:v1");
    env.rbuild(&["rmi", "app:v1"]).ok();
    // Stand in for a running build: hold the store's gc lock shared.
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(env.root.path().join("gc.lock"))
        .unwrap();
    lock.lock_shared().unwrap();
    let mut prune = Command::new(RBUILD)
        .arg("--root")
        .arg(env.root.path())
        .args(["builder", "prune", "-a", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(prune.try_wait().unwrap().is_none(), "prune must wait for the build");
    assert_eq!(cache_count(&env), 1, "nothing removed while the build runs");
    let started = Instant::now();
    drop(lock);
    let out = prune.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(String::from_utf8_lossy(&out.stderr).contains("waiting for running builds"));
    assert_eq!(cache_count(&env), 0);
}

#[test]
fn concurrent_builds_and_prunes_keep_the_store_consistent() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    for i in 0..3 {
        env.dockerfile(
            &format!("c{i}"),
            &format!("FROM busybox:local\nLABEL prunable=yes\nRUN echo {i} > /n\nRUN echo more-{i} >> /n\n"),
        );
    }
    let spawn = |args: &[&str]| {
        Command::new(RBUILD)
            .arg("--root")
            .arg(env.root.path())
            .args(args)
            .current_dir(env.work.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut children = Vec::new();
    // Started a little apart: two processes opening the store in the same
    // instant can race on scratch-directory cleanup (reported separately).
    let stagger = || std::thread::sleep(Duration::from_millis(150));
    for round in 0..2 {
        for i in 0..3 {
            children.push(spawn(&[
                "build",
                "-q",
                "--no-cache",
                "-t",
                &format!("c{i}:r{round}"),
                &format!("c{i}"),
            ]));
            stagger();
        }
        children.push(spawn(&["builder", "prune", "-a", "-f"]));
        stagger();
        // Every image the builds make, not the busybox:local they start from.
        children.push(spawn(&["image", "prune", "-a", "-f", "--filter", "label=prunable"]));
        stagger();
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    env.rbuild(&["system", "check"]).ok();
    for i in 0..3 {
        // The prunes may have taken the image; building it again must work.
        env.rbuild(&["build", "-q", "-t", &format!("c{i}:r1"), &format!("c{i}")]).ok();
        let run = env.rbuild(&["save", "-o", "/dev/null", &format!("c{i}:r1")]);
        run.ok();
        // Written through, as docker save does; never renamed over.
        use std::os::unix::fs::FileTypeExt;
        let null = std::fs::symlink_metadata("/dev/null").unwrap();
        assert!(null.file_type().is_char_device(), "save -o /dev/null replaced the device node");
    }
}

#[test]
fn system_check_reports_each_kind_of_damage() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let id = build_image(&env, "one", "RUN echo 1 > /n\n", "app:v1");
    let ok = env.rbuild(&["system", "check"]).ok().stdout;
    assert!(ok.contains("no problems found"), "{ok}");
    let root = env.root.path();
    // A layer tar whose bytes changed and a snapshot gone (the imported
    // base, which keeps its tar), a built layer (its tar not written yet)
    // whose snapshot changed, a config blob gone.
    let layers: Vec<_> = fs::read_dir(root.join("layers")).unwrap().flatten().map(|e| e.path()).collect();
    let (with_tar, deferred): (Vec<_>, Vec<_>) = layers.iter().partition(|l| l.join("layer.tar").exists());
    assert_eq!((with_tar.len(), deferred.len()), (1, 1), "a base layer with its tar, a built one without");
    let mut tar = fs::read(with_tar[0].join("layer.tar")).unwrap();
    tar[600] ^= 1;
    fs::write(with_tar[0].join("layer.tar"), tar).unwrap();
    fs::remove_dir_all(with_tar[0].join("fs")).unwrap();
    fs::write(deferred[0].join("fs/n"), "2\n").unwrap();
    let hex = id.trim_start_matches("sha256:");
    fs::remove_file(root.join("blobs/sha256").join(hex)).unwrap();
    // And a tag to nowhere.
    let refs_path = root.join("refs.json");
    let mut refs: serde_json::Value = serde_json::from_slice(&fs::read(&refs_path).unwrap()).unwrap();
    refs["refs"]["docker.io/library/ghost:1"] = serde_json::json!(format!("sha256:{}", "ab".repeat(32)));
    fs::write(&refs_path, serde_json::to_vec(&refs).unwrap()).unwrap();

    let run = env.rbuild(&["system", "check"]).failed();
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("layer.tar has digest"), "{}", run.stdout);
    assert!(run.stdout.contains("/fs is missing"), "{}", run.stdout);
    assert!(run.stdout.contains("its snapshot makes a tar with digest"), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("image {id}: config blob unreadable")), "{}", run.stdout);
    assert!(run.stdout.contains("tag docker.io/library/ghost:1: points at"), "{}", run.stdout);
    assert!(run.stderr.contains("problem(s) found"), "{}", run.stderr);
}

/// A built layer's tar is written when an export first needs it, from the
/// snapshot, and must hash to the diffID the build recorded: a snapshot
/// changed behind rbuild's back is refused, never exported.
#[test]
fn built_layers_write_their_tar_when_first_exported() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    build_image(&env, "one", "RUN echo 1 > /n\n", "app:v1");
    let root = env.root.path();
    let built = |marker: &str| -> std::path::PathBuf {
        fs::read_dir(root.join("layers"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|l| l.join("fs").join(marker).exists())
            .unwrap()
    };
    let layer = built("n");
    assert!(!layer.join("layer.tar").exists(), "a build writes no layer tar");
    let out = env.path("one.tar");
    env.rbuild(&["save", "-o", out.to_str().unwrap(), "app:v1"]).ok();
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(layer.join("meta.json")).unwrap()).unwrap();
    let tar_digest = format!("sha256:{}", sh(&format!("sha256sum {}", layer.join("layer.tar").display())));
    assert_eq!(tar_digest.split_whitespace().next().unwrap(), meta["diff_id"].as_str().unwrap());
    env.rbuild(&["system", "check"]).ok();

    build_image(&env, "two", "RUN echo 2 > /m\n", "app:v2");
    fs::write(built("m").join("fs/m"), "3\n").unwrap();
    let refused = env.path("two.tar");
    let run = env.rbuild(&["save", "-o", refused.to_str().unwrap(), "app:v2"]).failed();
    assert!(run.stderr.contains("snapshot now makes a tar with digest"), "{}", run.stderr);
    assert!(!refused.exists(), "nothing written for a refused export");
}
