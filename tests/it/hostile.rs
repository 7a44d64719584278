//! Hostile layers and archives through the real binary: docker and OCI
//! archives given to `rbuild load` (as files and as directories) and tar
//! archives given to `ADD`, each built here with entries that try to climb
//! out (`..`, absolute names, writes through symlinks, hard links to files
//! outside), to plant devices or setuid files, to confuse with duplicates
//! and whiteouts, or to break the reader (truncation, oversized headers).
//!
//! Every case runs in an [`Arena`]: afterwards nothing beside the store and
//! the work dir may have changed and the canary's content must be in no
//! file rbuild wrote. Refused input must fail with exit code 1 and a message
//! that says what was wrong, add no image, and leave a consistent store.
//! `cache/tests/layer_hostile.rs` covers the tar rules at the library level;
//! these cases check that every command that unpacks a tar uses them.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::harness::*;
use crate::hostile_support::*;

/// Loads `archive` and expects a refusal whose message contains `expect`.
fn load_refused(arena: &Arena, case: &str, archive: &[u8], expect: &str) {
    let file = arena.path(&format!("{case}.tar"));
    fs::write(&file, archive).unwrap();
    let before = images(arena);
    let run = arena.env.rbuild(&["load", "-i", file.to_str().unwrap()]);
    assert_eq!(run.code, 1, "case {case}: load should be refused\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(expect), "case {case}: expected {expect:?} in:\n{}", run.stderr);
    assert_eq!(images(arena), before, "case {case}: a refused load added an image");
    arena.assert_nothing_escaped(case);
    assert_store_consistent(&arena.env, case);
}

/// Loads `archive`, which is harmless enough to be accepted.
fn load_accepted(arena: &Arena, case: &str, archive: &[u8]) {
    let file = arena.path(&format!("{case}.tar"));
    fs::write(&file, archive).unwrap();
    let run = arena.env.rbuild(&["load", "-i", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "case {case}: load should succeed\n{}\n{}", run.stdout, run.stderr);
    arena.assert_nothing_escaped(case);
    assert_store_consistent(&arena.env, case);
}

fn images(arena: &Arena) -> String {
    arena
        .env
        .rbuild(&["images", "-a", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .ok()
        .stdout
}

/// `../x` from the sentinel's parent directory's point of view, deep enough
/// to climb out of any store path.
fn climb(arena: &Arena, rel: &str) -> String {
    let depth = arena.sentinel.components().count() + 8;
    format!("{}{}/{rel}", "../".repeat(depth), arena.sentinel.to_str().unwrap().trim_start_matches('/'))
}

#[test]
fn hostile_layers_in_docker_archives_are_refused() {
    require!(root());
    let arena = Arena::new();
    let s = arena.sentinel.to_str().unwrap().to_string();
    let canary = arena.canary.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dotdot-entry", RawTar::new().file("../../../../pwned-dotdot", b"x").finish(), "`..`"),
        ("dotdot-inside", RawTar::new().dir("a/").file("a/../../pwned", b"x").finish(), "`..`"),
        ("absolute-entry", RawTar::new().file(&format!("{s}/pwned-abs"), b"x").finish(), "absolute path"),
        (
            "file-through-absolute-symlink",
            RawTar::new().symlink("evil", &s).file("evil/pwned-abs-link", b"x").finish(),
            "is not a directory",
        ),
        (
            "file-through-climbing-symlink",
            RawTar::new().symlink("up", &climb(&arena, "")).file("up/pwned-climb", b"x").finish(),
            "is not a directory",
        ),
        (
            "dir-through-symlink-chain",
            RawTar::new().symlink("a", "b").symlink("b", &s).dir("a/pwned-dir/").finish(),
            "is not a directory",
        ),
        ("hardlink-to-absolute-outside", RawTar::new().hardlink("stolen", &canary).finish(), "absolute path"),
        (
            "hardlink-climbing-out",
            RawTar::new().hardlink("stolen", &climb(&arena, "canary.txt")).finish(),
            "`..`",
        ),
        (
            "hardlink-through-symlink",
            RawTar::new().symlink("s", &s).hardlink("stolen", "s/canary.txt").finish(),
            "not an earlier file",
        ),
        (
            "dir-replaced-by-symlink-then-written",
            RawTar::new().dir("d/").symlink("d", &format!("{s}/sub")).file("d/pwned-dup", b"x").finish(),
            "is not a directory",
        ),
        (
            "whiteout-through-symlink",
            RawTar::new().symlink("d", &format!("{s}/sub")).file("d/.wh.file", b"").finish(),
            "is not a directory",
        ),
        (
            "opaque-marker-through-symlink",
            RawTar::new().symlink("d", &format!("{s}/sub")).file("d/.wh..wh..opq", b"").finish(),
            "is not a directory",
        ),
        ("whiteout-of-dotdot", RawTar::new().file(".wh..", b"").finish(), "deletes no nameable entry"),
        ("whiteout-of-root", RawTar::new().dir("etc/").file("etc/.wh.", b"").finish(), "deletes no nameable"),
        (
            "pax-path-climbing-out",
            RawTar::new().pax(&[("path", b"../../../pwned-pax")]).file("innocent", b"x").finish(),
            "`..`",
        ),
        (
            "oversized-pax-header",
            RawTar::new().pax(&[("size", b"99999999999999")]).file("big", b"x").finish(),
            "size",
        ),
    ];
    for (case, layer, expect) in cases {
        let tag = format!("evil-{case}:1");
        load_refused(&arena, case, &docker_archive(&tag, &[layer]), expect);
    }
}

/// Odd but harmless layers load: a link to `/`, a link to the canary,
/// `./` names, a hard link to an earlier file, AUFS metadata. And a link
/// in one layer with a file "below" it in the next: each layer is its own
/// snapshot, so the file lands in a real directory of the upper layer, in
/// the store, in RUN steps and in an exported tree alike.
#[test]
fn odd_but_harmless_layers_load_and_stay_inside() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let s = arena.sentinel.to_str().unwrap().to_string();
    let odd = RawTar::new()
        .symlink("root-link", "/")
        .symlink("canary-link", arena.canary.to_str().unwrap())
        .dir("./etc/")
        .file("./etc/hosts", b"127.0.0.1 localhost\n")
        .hardlink("etc/hosts-again", "etc/hosts")
        .file(".wh..wh.plnk/1234.5678", b"aufs")
        .file("etc/hosts", b"replaced\n")
        .finish();
    load_accepted(&arena, "odd-but-harmless", &docker_archive("odd:1", &[odd]));

    let below = RawTar::new().symlink("dir", &s).finish();
    let above = RawTar::new().file("dir/pwned-cross-layer", b"above").finish();
    load_accepted(&arena, "cross-layer-link-then-file", &docker_archive("cross:1", &[below, above]));
    let out = arena.path("cross-out");
    let dir = arena.path("cross");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM cross:1\nCOPY --from=busybox:local /bin/ /bin/\nRUN echo run > /dir/pwned-by-run && cat /dir/pwned-cross-layer\n",
    )
    .unwrap();
    let dest = format!("type=local,dest={}", out.display());
    arena.env.rbuild(&["build", "--progress", "plain", "-o", &dest, "cross"]).ok();
    assert_eq!(fs::read_to_string(out.join("dir/pwned-cross-layer")).unwrap(), "above");
    assert_eq!(fs::read_to_string(out.join("dir/pwned-by-run")).unwrap(), "run\n");
    arena.assert_nothing_escaped("cross-layer-build");
}

/// An image may list one layer twice, and two steps in a row may make the
/// same layer (three quick `RUN echo` on an image without /etc/hosts did):
/// the steps after them still get a root to run in, and binding the
/// whole of a one-layer image works too.
#[test]
fn repeated_layers_and_one_layer_images_still_mount() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let layer = RawTar::new().dir("data/").file("data/x", b"same").finish();
    load_accepted(&arena, "layer-listed-twice", &docker_archive("twice:1", &[layer.clone(), layer.clone()]));
    load_accepted(&arena, "one-layer-image", &docker_archive("once:1", &[layer]));
    let dockerfile = "FROM twice:1\nCOPY --from=busybox:local /bin/ /bin/\nRUN cat /data/x\n\
FROM busybox:local\nRUN echo one\nRUN echo two\nRUN echo three\n\
RUN --mount=type=bind,from=once:1,target=/once cat /once/data/x\n\
COPY --from=0 /data/x /x\n";
    let run = build_in(&arena, "repeated", dockerfile, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    arena.assert_nothing_escaped("repeated-layers");
}

#[test]
fn broken_layer_tars_in_archives_are_refused() {
    require!(root());
    let arena = Arena::new();
    let good = RawTar::new().dir("etc/").file("etc/hello", &[b'h'; 3000]).finish();
    // A layer cut inside a file's content: the archive entry itself is
    // complete, so only the layer reader can notice.
    let cut = good[..1536].to_vec();
    load_refused(&arena, "truncated-layer", &docker_archive("evil-cut:1", &[cut]), "layer 1");
    // A header block whose checksum is wrong after a valid entry.
    let mut damaged = RawTar::new().file("ok", b"ok").unterminated();
    let mut bad_header = RawTar::new().file("next", b"next").unterminated();
    bad_header[148] ^= 0x11;
    damaged.extend_from_slice(&bad_header);
    damaged.extend_from_slice(&[0u8; 1024]);
    load_refused(&arena, "bad-checksum", &docker_archive("evil-sum:1", &[damaged]), "layer 1");
    // A GNU base-256 size field claiming an exabyte.
    let mut huge = RawTar::new().file("huge", b"").unterminated();
    huge[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0]);
    let mut header = tar::Header::from_byte_slice(&huge[..512]).clone();
    header.set_cksum();
    huge[..512].copy_from_slice(header.as_bytes());
    huge.extend_from_slice(&[0u8; 1024]);
    load_refused(&arena, "exabyte-size", &docker_archive("evil-huge:1", &[huge]), "layer 1");
    // The whole archive cut short in the middle of the layer.
    let whole = docker_archive("evil-short:1", &[good]);
    load_refused(&arena, "truncated-archive", &whole[..whole.len() - 3000], "");
}

#[test]
fn hostile_outer_archives_are_refused() {
    require!(root());
    let arena = Arena::new();
    let canary = arena.canary.to_str().unwrap().to_string();
    let layer = RawTar::new().file("ok", b"ok").finish();
    let good = docker_archive("ok:1", std::slice::from_ref(&layer));

    // The manifest is a link to a file outside the archive.
    let mut linked = RawTar::new();
    for (name, _, data) in tar_entries(&good) {
        if name != "manifest.json" {
            linked = linked.file(&name, &data);
        }
    }
    // An absolute link is taken inside the archive, where nothing is there.
    let linked = linked.symlink("manifest.json", &canary).finish();
    load_refused(&arena, "outer-symlink-to-canary", &linked, "no manifest.json");

    // A layer named by a link that climbs out.
    let mut climbing = RawTar::new();
    for (name, _, data) in tar_entries(&good) {
        if name.ends_with("layer.tar") {
            climbing = climbing.symlink(&name, "../../../../../../../../etc/passwd");
        } else {
            climbing = climbing.file(&name, &data);
        }
    }
    load_refused(&arena, "outer-layer-link-climbing", &climbing.finish(), "leads outside the archive");

    // An absolute entry name in the outer archive.
    let absolute = RawTar::new().file(&format!("{}/pwned-outer", arena.sentinel.display()), b"x").finish();
    load_refused(&arena, "outer-absolute-name", &absolute, "absolute");

    // An OCI layout directory whose layer blob is a link to the canary:
    // absolute, it is taken inside the directory (and is missing there);
    // climbing out with `..`, it is refused.
    let oci = oci_archive("evil-dir:1", std::slice::from_ref(&layer));
    let dir = arena.path("oci-dir");
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    for (name, _, data) in tar_entries(&oci) {
        fs::write(dir.join(&name), &data).unwrap();
    }
    let blob = rbuild_oci::digest::Digest::of(&gzip(&layer));
    let blob_path = dir.join("blobs/sha256").join(blob.hex());
    let climbing = format!("../../{}", climb(&arena, "canary.txt"));
    for (case, target, expect) in [
        ("oci-dir-blob-absolute-link", arena.canary.to_str().unwrap(), "is missing from the archive"),
        ("oci-dir-blob-climbing-link", climbing.as_str(), "leads outside the directory"),
    ] {
        let _ = fs::remove_file(&blob_path);
        std::os::unix::fs::symlink(target, &blob_path).unwrap();
        let before = images(&arena);
        let run = arena.env.rbuild(&["load", "-i", dir.to_str().unwrap()]);
        assert_eq!(run.code, 1, "case {case}: must be refused:\n{}", run.stderr);
        assert!(run.stderr.contains(expect), "case {case}: expected {expect:?} in:\n{}", run.stderr);
        assert_eq!(images(&arena), before);
        arena.assert_nothing_escaped(case);
    }
}

#[test]
fn hostile_gzip_layers_in_oci_archives_are_refused() {
    require!(root());
    let arena = Arena::new();
    let s = arena.sentinel.to_str().unwrap().to_string();
    let through = RawTar::new().symlink("evil", &s).file("evil/pwned-oci", b"x").finish();
    load_refused(
        &arena,
        "oci-file-through-symlink",
        &oci_archive("evil-oci:1", &[through]),
        "is not a directory",
    );
    let dotdot = RawTar::new().file("../pwned-oci-dotdot", b"x").finish();
    load_refused(&arena, "oci-dotdot", &oci_archive("evil-oci2:1", &[dotdot]), "`..`");
}

/// Links that point outside the root, device nodes and setuid files are
/// legitimate image content: they load, but only ever live inside the
/// store, the links are never followed on the host, and the store is
/// closed to other users so nobody can run a setuid file or open a device
/// node there.
#[test]
fn links_devices_and_setuid_files_stay_inside_a_private_store() {
    require!(root(), busybox_static());
    let arena = Arena::new();
    let store = arena.path("fresh-store");
    let layer = RawTar::new()
        .symlink("canary-link", arena.canary.to_str().unwrap())
        .symlink("up", "../../../../../../../../..")
        .device("disk", tar::EntryType::Block, 8, 0, 0o666)
        .device("mem", tar::EntryType::Char, 1, 1, 0o666)
        .file_mode("suid-shell", 0o4755, b"#!/bin/sh\n")
        .finish();
    let file = arena.path("devices.tar");
    fs::write(&file, docker_archive("devices:1", &[layer])).unwrap();
    let run = rbuild_at(&store, &["load", "-i", file.to_str().unwrap()], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mode = fs::metadata(&store).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "a new store must be private to its owner (mode {mode:o})");
    let fs_dir = fs::read_dir(store.join("layers")).unwrap().next().unwrap().unwrap().path().join("fs");
    let suid = fs::metadata(fs_dir.join("suid-shell")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o4755, "setuid bits are image content and are kept");
    assert!(fs::symlink_metadata(fs_dir.join("canary-link")).unwrap().file_type().is_symlink());
    // Built on and exported as a directory, links stay links and nothing
    // is followed.
    let out = arena.path("devices-out");
    let dest = format!("type=local,dest={}", out.display());
    let run = rbuild_at(&store, &["build", "-o", &dest, "-f", "-", "."], Some(b"FROM devices:1\n"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(fs::symlink_metadata(out.join("canary-link")).unwrap().file_type().is_symlink());
    assert!(fs::symlink_metadata(out.join("up")).unwrap().file_type().is_symlink());
    assert_eq!(fs::metadata(out.join("suid-shell")).unwrap().mode() & 0o7777, 0o4755);
    fs::remove_dir_all(&store).unwrap();
    arena.assert_nothing_escaped("links-devices-setuid");
}

/// Entries from a tar file's `tar -t` listing.
fn tar_entries(bytes: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let kind = entry.header().entry_type();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        out.push((name, kind, data));
    }
    out
}

/// Builds `dockerfile` in a context holding `files`; returns the run.
pub fn build_in(arena: &Arena, name: &str, dockerfile: &str, files: &[(&str, &[u8])]) -> Run {
    let dir = arena.path(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    for (path, content) in files {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    arena.env.rbuild(&["build", "--progress", "plain", name])
}

#[test]
fn hostile_archives_given_to_add_are_refused() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let s = arena.sentinel.to_str().unwrap().to_string();
    let canary = arena.canary.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("add-dotdot", RawTar::new().file("../../../../../pwned-add", b"x").finish(), "`..`"),
        ("add-absolute", RawTar::new().file(&format!("{s}/pwned-add-abs"), b"x").finish(), "absolute"),
        (
            "add-file-through-symlink",
            RawTar::new().symlink("evil", &s).file("evil/pwned-add-link", b"x").finish(),
            "is not a directory",
        ),
        ("add-hardlink-to-canary", RawTar::new().hardlink("stolen", &canary).finish(), "absolute"),
        (
            "add-hardlink-climbing",
            RawTar::new().hardlink("stolen", &climb(&arena, "canary.txt")).finish(),
            "`..`",
        ),
        (
            "add-gzip-through-symlink",
            gzip(&RawTar::new().symlink("e", &s).dir("e/pwned-gz/").finish()),
            "is not a directory",
        ),
    ];
    for (case, archive, expect) in cases {
        let run = build_in(
            &arena,
            case,
            "FROM busybox:local\nADD evil.tar /dest/\nRUN ls -laR /dest\n",
            &[("evil.tar", &archive)],
        );
        assert_eq!(run.code, 1, "case {case}: ADD should fail\n{}", run.stderr);
        assert!(
            run.stderr.contains("extract evil.tar") && run.stderr.contains(expect),
            "case {case}: expected the entry's problem ({expect}) in:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("Dockerfile:2"),
            "case {case}: the error names the step:\n{}",
            run.stderr
        );
        arena.assert_nothing_escaped(case);
    }
    assert_store_consistent(&arena.env, "refused ADDs");
}

#[test]
fn add_keeps_devices_out_and_setuid_and_links_inside_the_image() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let s = arena.sentinel.to_str().unwrap().to_string();
    let first = RawTar::new()
        .device("disk", tar::EntryType::Block, 8, 0, 0o666)
        .device("mem", tar::EntryType::Char, 1, 1, 0o666)
        .file_mode("suid", 0o4755, b"#!/bin/sh\n")
        .symlink("x", &s)
        .symlink("canary-link", arena.canary.to_str().unwrap())
        .finish();
    // A second archive whose directory has the name of the first one's link:
    // its content goes into the image, never through the link.
    let second = RawTar::new().dir("x/").file("x/pwned-second", b"second").finish();
    let out = arena.path("add-out");
    let dir = arena.path("add-ok");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM busybox:local\nADD first.tar second.tar /dest/\nRUN test ! -e /dest/disk && test -u /dest/suid\n",
    )
    .unwrap();
    fs::write(dir.join("first.tar"), first).unwrap();
    fs::write(dir.join("second.tar"), second).unwrap();
    arena
        .env
        .rbuild(&[
            "build",
            "--progress",
            "plain",
            "-o",
            &format!("type=local,dest={}", out.display()),
            "add-ok",
        ])
        .ok();
    assert!(!out.join("dest/disk").exists() && !out.join("dest/mem").exists(), "ADD leaves devices out");
    assert_eq!(fs::metadata(out.join("dest/suid")).unwrap().mode() & 0o7777, 0o4755);
    assert_eq!(fs::read_to_string(out.join("dest/x/pwned-second")).unwrap(), "second");
    assert!(fs::symlink_metadata(out.join("dest/canary-link")).unwrap().file_type().is_symlink());
    arena.assert_nothing_escaped("add-devices-setuid-links");
}
