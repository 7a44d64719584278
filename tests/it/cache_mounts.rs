//! `RUN --mount=type=cache` content that travels: through `--cache-to` /
//! `--cache-from` with `mounts=` between two fresh stores sharing a
//! loopback registry (or a directory), and through `rbuild cache-mounts
//! export`/`import` files. A RUN records how many files its cache mount
//! held before it started, so each test reads what the step found.

use std::fs;

use crate::harness::*;
use crate::registry::{publish_busybox, rb};

const FILES: usize = 200;

/// A RUN that lists the mount `deps` into `/before` (the number of files it
/// found), then fills it with FILES files; `V` changes its cache key.
fn deps_dockerfile(base: &str) -> String {
    format!(
        "FROM {base}\nARG V=1\n\
RUN --mount=type=cache,id=deps,target=/cache ls /cache | wc -l > /before && \
i=0; while [ $i -lt {FILES} ]; do i=$((i+1)); [ -f /cache/f$i ] || echo dep-$i > /cache/f$i; done; echo $V > /v\n"
    )
}

/// Builds `ctx` with `V`, extra flags, into a directory; returns the run
/// and how many files the RUN found in its cache mount.
fn build_deps(env: &Env, v: &str, flags: &[&str]) -> (Run, usize) {
    let out = env.path(&format!("out-{v}"));
    let _ = fs::remove_dir_all(&out);
    let mut args = vec!["build", "--progress", "plain", "--build-arg"];
    let arg = format!("V={v}");
    args.push(&arg);
    args.extend_from_slice(flags);
    let dest = format!("type=local,dest={}", out.display());
    args.extend_from_slice(&["-o", &dest, "ctx"]);
    let run = rb(env, &args).ok();
    let before = fs::read_to_string(out.join("before")).unwrap().trim().parse().unwrap();
    (run, before)
}

#[test]
fn a_cache_mount_travels_through_a_registry_to_a_fresh_store() {
    require!(root(), busybox_static(), registry());
    let registry = TestRegistry::start();
    let cache = registry.at("ci/cache:main");
    let first = Env::with_busybox();
    let base = publish_busybox(&first, &registry);
    first.dockerfile("ctx", &deps_dockerfile(&base));
    let to = format!("type=registry,ref={cache},mode=max,mounts=true");
    let (one, found) = build_deps(&first, "1", &["--cache-to", &to]);
    assert_eq!(found, 0, "a fresh store starts with an empty mount");
    assert!(one.stderr.contains("1 cache mounts"), "{}", one.stderr);

    // A second runner, and a change that makes the RUN run again: its mount
    // holds the first runner's files before the step starts.
    let second = Env::new();
    second.dockerfile("ctx", &deps_dockerfile(&base));
    let from = format!("type=registry,ref={cache},mounts=true");
    let (two, found) = build_deps(&second, "2", &["--cache-from", &from]);
    assert_eq!(found, FILES, "{}", two.stderr);
    assert!(two.stderr.contains("cache mount deps: imported from"), "{}", two.stderr);
    assert_eq!(two.run_lines().iter().filter(|l| l.contains("RUN --mount")).count(), 1, "{}", two.stderr);

    // Without mounts= the import carries steps only, as BuildKit's does.
    let third = Env::new();
    third.dockerfile("ctx", &deps_dockerfile(&base));
    let (_, found) = build_deps(&third, "3", &["--cache-from", &format!("type=registry,ref={cache}")]);
    assert_eq!(found, 0);

    // The second runner's mount is newer than the carried one: it stays.
    let (kept, found) = build_deps(&second, "4", &["--cache-from", &from]);
    assert_eq!(found, FILES);
    assert!(kept.stderr.contains("the local copy is newer"), "{}", kept.stderr);

    // Exporting again with nothing changed in the mount writes nothing.
    let (again, _) = build_deps(&first, "1", &["--cache-to", &to]);
    assert!(again.stderr.contains("1 cache mounts (1 unchanged)"), "{}", again.stderr);
    first.rbuild(&["system", "check"]).ok();
    second.rbuild(&["system", "check"]).ok();
}

/// The blob of the one cache mount a directory cache carries.
fn mount_blob(cache: &std::path::Path) -> std::path::PathBuf {
    let blobs = cache.join("blobs/sha256");
    for entry in fs::read_dir(&blobs).unwrap().flatten() {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&fs::read(entry.path()).unwrap()) else {
            continue;
        };
        if let Some(digest) = json["mounts"][0]["digest"].as_str() {
            return blobs.join(digest.trim_start_matches("sha256:"));
        }
    }
    panic!("no cache config with mounts in {}", cache.display());
}

/// A store whose mount `deps` was written before the one a directory cache
/// carries, and that cache with its mount blob damaged by `damage`: the
/// import is refused with a warning, the store's own mount (with a marker
/// file) stays as it was, and the build goes on with it.
fn damaged_blob_is_refused(damage: fn(&mut Vec<u8>)) {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let second = Env::with_busybox();
    second.dockerfile("ctx", &deps_dockerfile("busybox:local"));
    build_deps(&second, "0", &[]);
    let marker = "written-by-the-second-store";
    second.dockerfile(
        "mark",
        &format!(
            "FROM busybox:local\nRUN --mount=type=cache,id=deps,target=/cache echo {marker} > /cache/marker\n"
        ),
    );
    rb(&second, &["build", "-q", "mark"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let first = Env::with_busybox();
    first.dockerfile("ctx", &deps_dockerfile("busybox:local"));
    let to = format!("type=local,dest={},mounts=deps", cache.display());
    build_deps(&first, "1", &["--cache-to", &to]);
    let blob = mount_blob(&cache);
    let mut bytes = fs::read(&blob).unwrap();
    damage(&mut bytes);
    fs::write(&blob, &bytes).unwrap();

    let from = format!("type=local,src={},mounts=true", cache.display());
    let (run, found) = build_deps(&second, "2", &["--cache-from", &from]);
    assert!(run.stderr.contains("warning: cache mount deps not imported"), "{}", run.stderr);
    assert_eq!(found, FILES + 1, "the local mount, marker and all: {}", run.stderr);
    let mounts = second.root.path().join("state/cache-mounts");
    let with_marker: Vec<_> =
        fs::read_dir(&mounts).unwrap().flatten().filter(|e| e.path().join("marker").is_file()).collect();
    assert_eq!(with_marker.len(), 1, "no half-installed copy beside it");
    assert_eq!(fs::read_to_string(with_marker[0].path().join("marker")).unwrap().trim(), marker);
    second.rbuild(&["system", "check"]).ok();
}

#[test]
fn a_corrupt_mount_blob_leaves_the_local_mount_and_the_build_goes_on() {
    require!(root(), busybox_static());
    damaged_blob_is_refused(|bytes| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
    });
}

#[test]
fn a_truncated_mount_blob_leaves_the_local_mount_and_the_build_goes_on() {
    require!(root(), busybox_static());
    damaged_blob_is_refused(|bytes| bytes.truncate(bytes.len() / 2));
}

#[test]
fn a_mount_over_max_size_is_left_out_with_a_warning() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nRUN --mount=type=cache,id=big,target=/cache head -c 300000 /dev/zero > /cache/blob && echo 0 > /before\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let to = format!("type=local,dest={},mounts=true,max-size=100k", dir.path().join("c").display());
    let run = rb(&env, &["build", "--progress", "plain", "--cache-to", &to, "ctx"]).ok();
    assert!(
        run.stderr.contains(
            "warning: cache mount big is 300000 bytes, more than max-size (102400 bytes); not exported"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("cache mounts"), "nothing carried: {}", run.stderr);
}

#[test]
fn secrets_and_files_outside_the_mount_never_travel() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let secret = "s3cret-token-value";
    let outside = "written-outside-the-mount";
    fs::write(env.path("token"), secret).unwrap();
    env.dockerfile(
        "ctx",
        &format!(
            "FROM busybox:local\n\
RUN --mount=type=cache,id=deps,target=/cache --mount=type=secret,id=tok,target=/cache/token \
cat /cache/token > /dev/null && echo {outside} > /elsewhere && echo kept > /cache/kept\n"
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("c");
    let to = format!("type=local,dest={},mounts=true", cache.display());
    let secret_flag = format!("id=tok,src={}", env.path("token").display());
    rb(&env, &["build", "--secret", &secret_flag, "--cache-to", &to, "ctx"]).ok();
    let carried = sh(&format!("gzip -dc {}", mount_blob(&cache).display()));
    assert!(carried.contains("kept"), "the mount's own file travels");
    assert!(!carried.contains(secret), "a secret mounted inside the cache mount never travels");
    assert!(!carried.contains(outside));
    let file = env.path("deps.tar");
    rb(&env, &["cache-mounts", "export", "deps", "-o", file.to_str().unwrap()]).ok();
    let exported = String::from_utf8_lossy(&fs::read(&file).unwrap()).into_owned();
    assert!(exported.contains("kept") && !exported.contains(secret) && !exported.contains(outside));
}

#[test]
fn cache_mounts_commands_list_export_import_remove_and_prune() {
    require!(root(), busybox_static());
    let first = Env::with_busybox();
    first.dockerfile("ctx", &deps_dockerfile("busybox:local"));
    rb(&first, &["build", "-q", "-t", "app:v1", "ctx"]).ok();
    first
        .dockerfile("small", "FROM busybox:local\nRUN --mount=type=cache,id=small,target=/s echo x > /s/x\n");
    rb(&first, &["build", "-q", "small"]).ok();

    let ls = rb(&first, &["cache-mounts", "ls"]).ok().stdout;
    let lines: Vec<&str> = ls.lines().collect();
    assert!(lines[0].starts_with("CACHE ID"), "{ls}");
    assert!(lines.iter().any(|l| l.starts_with("deps ") && l.contains("app:v1")), "{ls}");
    assert!(lines.iter().any(|l| l.starts_with("small ")), "{ls}");

    // Export, then import into another store: its next build finds the files.
    let file = first.path("deps.tar.gz");
    rb(&first, &["cache-mounts", "export", "deps", "-o", file.to_str().unwrap()]).ok();
    let second = Env::with_busybox();
    second.dockerfile("ctx", &deps_dockerfile("busybox:local"));
    rb(&second, &["cache-mounts", "import", "deps", file.to_str().unwrap()]).ok();
    let (_, found) = build_deps(&second, "2", &[]);
    assert_eq!(found, FILES);

    // A truncated file: refused, the mount as it was.
    let bytes = fs::read(&file).unwrap();
    fs::write(&file, &bytes[..bytes.len() / 3]).unwrap();
    let bad = rb(&second, &["cache-mounts", "import", "deps", file.to_str().unwrap()]).failed();
    assert!(bad.stderr.contains("left as it was"), "{}", bad.stderr);
    let (_, found) = build_deps(&second, "3", &[]);
    assert_eq!(found, FILES);
    rb(&second, &["cache-mounts", "export", "nope", "-o", "x.tar"]).failed();

    // rm, then prune down to nothing.
    rb(&first, &["cache-mounts", "rm", "small"]).ok();
    let ls = rb(&first, &["cache-mounts", "ls"]).ok().stdout;
    assert!(!ls.contains("small"), "{ls}");
    let pruned = rb(&first, &["cache-mounts", "prune", "-f", "--keep-storage", "0"]).ok().stdout;
    assert!(pruned.contains("deps\n"), "{pruned}");
    assert_eq!(rb(&first, &["cache-mounts", "ls"]).ok().stdout.lines().count(), 1);
    first.rbuild(&["system", "check"]).ok();
}

#[test]
fn a_hostile_tar_is_refused_and_nothing_outside_the_mount_is_touched() {
    require!(root());
    let env = Env::new();
    let escape = env.work.path().join("escaped");
    let evil = rbuild_test_support::RawTar::new()
        .file("ok", b"fine")
        .file("../../../../../../escaped-by-cache-mount", b"evil")
        .symlink("link", escape.to_str().unwrap())
        .file("link/through", b"evil")
        .finish();
    fs::write(env.path("evil.tar"), evil).unwrap();
    let run = rb(&env, &["cache-mounts", "import", "deps", "evil.tar"]).failed();
    assert!(run.stderr.contains("left as it was"), "{}", run.stderr);
    assert!(!escape.exists());
    assert!(!std::path::Path::new("/escaped-by-cache-mount").exists());
    assert_eq!(rb(&env, &["cache-mounts", "ls"]).ok().stdout.lines().count(), 1, "no mount was made");
    let mounts = env.root.path().join("state/cache-mounts");
    let left: Vec<_> =
        fs::read_dir(&mounts).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.iter().all(|n| n.to_string_lossy().ends_with(".lock")), "{left:?}");
}
