//! Hostile and broken layer tars. Each case applies a tar into `dest` next
//! to an `outside` directory, and checks both the outcome and that nothing
//! outside `dest` was created, changed or removed.

mod layer_util;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use layer_util::*;
use rbuild_layer::{ApplyOptions, LayerError, OverlayXattrs, apply_layer_tar};
use tar::EntryType;

fn options() -> ApplyOptions {
    ApplyOptions::for_current_user(OverlayXattrs::Trusted)
}

/// Applies `tar` in a fresh sentinel, expects an error whose message
/// contains every one of `needles`, and checks nothing leaked.
fn expect_refused(tar: &[u8], needles: &[&str]) -> LayerError {
    let sentinel = Sentinel::new();
    expect_refused_in(&sentinel, tar, needles)
}

fn expect_refused_in(sentinel: &Sentinel, tar: &[u8], needles: &[&str]) -> LayerError {
    let err = apply_layer_tar(tar, &sentinel.dest, &options()).expect_err("hostile tar was accepted");
    let message = err.to_string();
    for needle in needles {
        assert!(message.contains(needle), "error {message:?} does not mention {needle:?}");
    }
    sentinel.assert_nothing_outside();
    err
}

#[test]
fn dotdot_entry_is_refused() {
    let tar = RawTar::new().file("../outside/victim", b"pwned").finish();
    let err = expect_refused(&tar, &["../outside/victim", "`..`"]);
    assert!(matches!(err, LayerError::UnsafeEntry { .. }));
}

#[test]
fn dotdot_in_the_middle_is_refused() {
    let tar = RawTar::new().dir("a/").file("a/../../outside/victim", b"pwned").finish();
    expect_refused(&tar, &["a/../../outside/victim"]);
    // Even a `..` that would stay inside is not accepted.
    let tar = RawTar::new().dir("a/").file("a/../b", b"x").finish();
    expect_refused(&tar, &["a/../b"]);
}

#[test]
fn absolute_path_is_refused() {
    let sentinel = Sentinel::new();
    let name = format!("{}/victim", sentinel.outside_str());
    let tar = RawTar::new().file(&name, b"pwned").finish();
    expect_refused_in(&sentinel, &tar, &[&name, "absolute"]);
}

#[test]
fn writing_through_an_absolute_symlink_is_refused() {
    let sentinel = Sentinel::new();
    let tar = RawTar::new().symlink("evil", &sentinel.outside_str()).file("evil/victim", b"pwned").finish();
    expect_refused_in(&sentinel, &tar, &["evil/victim", "not a directory"]);
    // The symlink itself was created inside; what it points at is untouched.
    assert!(fs::symlink_metadata(sentinel.dest.join("evil")).unwrap().file_type().is_symlink());
}

#[test]
fn writing_through_a_relative_symlink_is_refused() {
    let tar = RawTar::new().symlink("evil", "../outside").file("evil/new-file", b"pwned").finish();
    expect_refused(&tar, &["evil/new-file"]);
}

#[test]
fn creating_directories_through_a_symlink_is_refused() {
    let sentinel = Sentinel::new();
    let tar = RawTar::new()
        .symlink("evil", &sentinel.outside_str())
        .dir("evil/newdir/")
        .file("evil/newdir/file", b"pwned")
        .finish();
    expect_refused_in(&sentinel, &tar, &["evil/newdir/"]);
    // Implied parents go through the same check.
    let tar = RawTar::new().symlink("evil", &sentinel.outside_str()).file("evil/a/b/c", b"pwned").finish();
    expect_refused_in(&sentinel, &tar, &["evil/a/b/c"]);
}

#[test]
fn writing_through_a_symlink_chain_is_refused() {
    let sentinel = Sentinel::new();
    let tar = RawTar::new()
        .symlink("a", "b")
        .symlink("b", &sentinel.outside_str())
        .file("a/victim", b"pwned")
        .finish();
    expect_refused_in(&sentinel, &tar, &["a/victim"]);
}

#[test]
fn symlink_loop_fails_without_hanging() {
    let tar = RawTar::new().symlink("a", "b").symlink("b", "a").file("a/x", b"x").finish();
    expect_refused(&tar, &["a/x"]);
}

#[test]
fn hard_link_to_outside_is_refused() {
    let tar = RawTar::new().hardlink("link", "../outside/victim").finish();
    expect_refused(&tar, &["link", "hard link target"]);

    let sentinel = Sentinel::new();
    let target = format!("{}/victim", sentinel.outside_str());
    let tar = RawTar::new().hardlink("link", &target).finish();
    expect_refused_in(&sentinel, &tar, &["link", "absolute"]);
    let victim = fs::metadata(sentinel.outside.join("victim")).unwrap();
    assert_eq!(victim.nlink(), 1);
}

#[test]
fn hard_link_to_a_name_not_in_the_layer_is_refused() {
    let tar = RawTar::new().hardlink("link", "nothere").finish();
    expect_refused(&tar, &["link", "not an earlier file"]);
    // A target that only comes later does not count either.
    let tar = RawTar::new().hardlink("link", "later").file("later", b"x").finish();
    expect_refused(&tar, &["not an earlier file"]);
    // Nor does a directory.
    let tar = RawTar::new().dir("d/").hardlink("link", "d").finish();
    expect_refused(&tar, &["not an earlier file"]);
}

#[test]
fn hard_link_through_a_symlink_is_refused() {
    let sentinel = Sentinel::new();
    let tar = RawTar::new().symlink("evil", &sentinel.outside_str()).hardlink("link", "evil/victim").finish();
    expect_refused_in(&sentinel, &tar, &["link"]);
}

#[test]
fn hard_link_to_a_symlink_links_the_symlink_itself() {
    let sentinel = Sentinel::new();
    let target = format!("{}/victim", sentinel.outside_str());
    let tar = RawTar::new().symlink("sym", &target).hardlink("hard", "sym").finish();
    apply_layer_tar(&tar[..], &sentinel.dest, &options()).unwrap();
    let hard = fs::symlink_metadata(sentinel.dest.join("hard")).unwrap();
    assert!(hard.file_type().is_symlink());
    assert_eq!(fs::metadata(sentinel.outside.join("victim")).unwrap().nlink(), 1);
    sentinel.assert_nothing_outside();
}

#[test]
fn whiteouts_of_dot_and_dotdot_are_refused() {
    for name in [".wh...", ".wh..", ".wh.", "sub/.wh...", ".wh.x/y"] {
        let tar = RawTar::new().dir("sub/").file(name, b"").finish();
        let err = expect_refused(&tar, &[name]);
        assert!(matches!(err, LayerError::UnsafeEntry { .. }), "{name}: {err}");
    }
}

#[test]
fn whiteouts_and_opaque_markers_through_a_symlink_are_refused() {
    let sentinel = Sentinel::new();
    let tar = RawTar::new().symlink("evil", &sentinel.outside_str()).file("evil/.wh.victim", b"").finish();
    expect_refused_in(&sentinel, &tar, &["evil/.wh.victim"]);
    assert_eq!(fs::read(sentinel.outside.join("victim")).unwrap(), b"original");

    let sentinel = Sentinel::new();
    let tar = RawTar::new().symlink("evil", &sentinel.outside_str()).file("evil/.wh..wh..opq", b"").finish();
    expect_refused_in(&sentinel, &tar, &["evil/.wh..wh..opq"]);
    assert!(xattrs_of(&sentinel.outside).is_empty());
}

#[test]
fn devices_are_skipped_or_created_inside() {
    let tar = RawTar::new()
        .device("dev/sda", EntryType::Block, 8, 0, 0o660)
        .device("dev/null", EntryType::Char, 1, 3, 0o666)
        .finish();
    let sentinel = Sentinel::new();
    let skip = ApplyOptions { skip_devices: true, ..options() };
    apply_layer_tar(&tar[..], &sentinel.dest, &skip).unwrap();
    assert!(!sentinel.dest.join("dev/sda").exists() && !sentinel.dest.join("dev/null").exists());
    sentinel.assert_nothing_outside();

    require!(root());
    let sentinel = Sentinel::new();
    let create = ApplyOptions { skip_devices: false, ..options() };
    apply_layer_tar(&tar[..], &sentinel.dest, &create).unwrap();
    let sda = fs::symlink_metadata(sentinel.dest.join("dev/sda")).unwrap();
    assert!(sda.file_type().is_block_device());
    assert_eq!((nix::sys::stat::major(sda.rdev()), nix::sys::stat::minor(sda.rdev())), (8, 0));
    assert_eq!(sda.mode() & 0o7777, 0o660);
    sentinel.assert_nothing_outside();
}

#[test]
fn setuid_is_kept_inside_and_never_lands_outside() {
    let sentinel = Sentinel::new();
    let tar = RawTar::new()
        .file_mode("bin/su", 0o4755, b"su")
        .symlink("evil", &sentinel.outside_str())
        .file_mode("evil/su", 0o4755, b"su")
        .finish();
    expect_refused_in(&sentinel, &tar, &["evil/su"]);
    let su = fs::symlink_metadata(sentinel.dest.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755);
    assert!(!sentinel.outside.join("su").exists());
}

#[test]
fn replacing_a_directory_with_a_file_or_symlink_cannot_escape() {
    // dir → file: later children have no directory to go into.
    let tar = RawTar::new().dir("d/").file("d/f", b"x").file("d", b"now a file").file("d/g", b"x").finish();
    let sentinel = Sentinel::new();
    expect_refused_in(&sentinel, &tar, &["d/g"]);
    assert_eq!(fs::read(sentinel.dest.join("d")).unwrap(), b"now a file");

    // dir → symlink to outside: later children must not follow it.
    let sentinel = Sentinel::new();
    let tar = RawTar::new()
        .dir("d/")
        .file("d/f", b"x")
        .symlink("d", &sentinel.outside_str())
        .file("d/victim", b"pwned")
        .finish();
    expect_refused_in(&sentinel, &tar, &["d/victim"]);
    assert_eq!(fs::read(sentinel.outside.join("victim")).unwrap(), b"original");
}

#[test]
fn later_duplicates_replace_earlier_entries() {
    let sentinel = Sentinel::new();
    let tar = RawTar::new()
        .file("f", b"file first")
        .dir("f/")
        .file("f/x", b"inside")
        .file("g", b"one")
        .file("g", b"two")
        .dir("d/")
        .file("d/kept", b"kept")
        .dir("d/")
        .finish();
    apply_layer_tar(&tar[..], &sentinel.dest, &options()).unwrap();
    assert_eq!(fs::read(sentinel.dest.join("f/x")).unwrap(), b"inside");
    assert_eq!(fs::read(sentinel.dest.join("g")).unwrap(), b"two");
    // A second entry for an existing directory keeps its content.
    assert_eq!(fs::read(sentinel.dest.join("d/kept")).unwrap(), b"kept");
    sentinel.assert_nothing_outside();
}

#[test]
fn dot_slash_prefixes_are_normalised() {
    let sentinel = Sentinel::new();
    let tar = RawTar::new().dir("./").dir("./a/").file("./a/./b", b"b").file(".//c", b"c").finish();
    apply_layer_tar(&tar[..], &sentinel.dest, &options()).unwrap();
    assert_eq!(fs::read(sentinel.dest.join("a/b")).unwrap(), b"b");
    assert_eq!(fs::read(sentinel.dest.join("c")).unwrap(), b"c");
    sentinel.assert_nothing_outside();

    // The root entry can only be a directory.
    let tar = RawTar::new().file("./", b"x").finish();
    expect_refused(&tar, &["destination directory itself"]);
}

#[test]
fn truncated_archives_are_errors() {
    let full = RawTar::new().file("a", &[1u8; 1000]).file("b", b"bee").finish();

    // Cut inside a file's content.
    let err = expect_refused(&full[..700], &["\"a\""]);
    assert!(matches!(err, LayerError::Truncated { .. }), "{err}");
    // Cut inside the second header.
    let err = expect_refused(&full[..512 + 1024 + 100], &["inside the header"]);
    assert!(matches!(err, LayerError::Truncated { .. }), "{err}");
    // Cut exactly between entries: no end-of-archive marker.
    let err = expect_refused(&full[..512 + 1024 + 1024], &["end-of-archive"]);
    assert!(matches!(err, LayerError::Truncated { .. }), "{err}");
    // Nothing at all.
    let err = expect_refused(&[], &["end-of-archive"]);
    assert!(matches!(err, LayerError::Truncated { .. }), "{err}");
}

#[test]
fn garbage_and_oversized_headers_are_errors() {
    let mut garbage = vec![0u8; 512];
    for (i, b) in garbage.iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    garbage.extend_from_slice(&[0u8; 1024]);
    let err = expect_refused(&garbage, &["checksum"]);
    assert!(matches!(err, LayerError::BadHeader { .. }), "{err}");

    // A PAX header claiming 2 GiB is refused before anything is read.
    let tar = RawTar::new().declared(b"PaxHeaders/x", EntryType::XHeader, 2 << 30).finish();
    let err = expect_refused(&tar, &["extension header"]);
    assert!(matches!(err, LayerError::BadHeader { .. }), "{err}");

    // A PAX size larger than the stream is truncation, not a short file.
    let tar = RawTar::new().pax(&[("size", b"1000000000000")]).file("big", b"").finish();
    let err = expect_refused(&tar, &["big"]);
    assert!(matches!(err, LayerError::Truncated { .. }), "{err}");

    // Malformed PAX records.
    let tar = RawTar::new().pax(&[("path", b"x")]).file("f", b"").finish();
    let mut broken = tar.clone();
    broken[512] = b'8'; // the record length no longer matches the record
    let err = expect_refused(&broken, &["PAX"]);
    assert!(matches!(err, LayerError::BadHeader { .. }), "{err}");

    // An extension header with no entry after it.
    let tar = RawTar::new().pax(&[("path", b"x")]).finish();
    expect_refused(&tar, &["not followed by an entry"]);
}

#[test]
fn extension_names_are_checked_like_any_other() {
    // PAX path with a `..` and a NUL.
    let tar = RawTar::new().pax(&[("path", b"../../outside/victim")]).file("innocent", b"pwned").finish();
    expect_refused(&tar, &["../../outside/victim"]);
    let tar = RawTar::new().pax(&[("path", b"ok\0/../../x")]).file("innocent", b"pwned").finish();
    expect_refused(&tar, &["NUL"]);
    // GNU long name with `..`.
    let long = format!("{}../../outside/victim", "a/".repeat(60));
    let tar = RawTar::new().gnu_long_name(long.as_bytes()).file("short", b"pwned").finish();
    expect_refused(&tar, &["`..`"]);
    // PAX linkpath of a hard link pointing outside.
    let tar = RawTar::new().pax(&[("linkpath", b"../outside/victim")]).hardlink("link", "ok").finish();
    expect_refused(&tar, &["hard link target"]);
}

#[test]
fn overlay_xattrs_in_a_tar_are_not_restored() {
    require!(root());
    let sentinel = Sentinel::new();
    let tar = RawTar::new()
        .pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc"), ("SCHILY.xattr.user.kept", b"1")])
        .dir("d/")
        .finish();
    apply_layer_tar(&tar[..], &sentinel.dest, &options()).unwrap();
    let xattrs = xattrs_of(&sentinel.dest.join("d"));
    assert_eq!(xattrs.keys().cloned().collect::<Vec<_>>(), vec![b"user.kept".to_vec()]);
    sentinel.assert_nothing_outside();
}

#[test]
fn unsupported_entry_types_are_named() {
    let tar = RawTar::new().raw(b"sparse", EntryType::GNUSparse, b"", 0o644, b"").finish();
    let err = expect_refused(&tar, &["sparse"]);
    assert!(matches!(err, LayerError::Unsupported { .. }), "{err}");
    let tar = RawTar::new().raw(b"label", EntryType::new(b'V'), b"", 0o644, b"").finish();
    expect_refused(&tar, &["label", "'V'"]);
}

#[test]
fn aufs_metadata_is_skipped() {
    let sentinel = Sentinel::new();
    let tar =
        RawTar::new().dir(".wh..wh.plnk/").file(".wh..wh.plnk/1234.5678", b"x").file("real", b"y").finish();
    apply_layer_tar(&tar[..], &sentinel.dest, &options()).unwrap();
    let tree = sentinel.dest_tree();
    assert_eq!(tree.keys().cloned().collect::<Vec<_>>(), vec![b"real".to_vec()]);
    sentinel.assert_nothing_outside();
}

/// The check every case relies on does notice a change outside `dest`.
#[test]
fn sentinel_notices_changes_outside() {
    let sentinel = Sentinel::new();
    fs::write(sentinel.outside.join("victim"), b"changed").unwrap();
    assert!(!sentinel.changes_outside().is_empty());
    let sentinel = Sentinel::new();
    fs::write(sentinel.temp.path().join("new-file"), b"x").unwrap();
    assert!(!sentinel.changes_outside().is_empty());
    let sentinel = Sentinel::new();
    fs::write(sentinel.dest.join("inside"), b"x").unwrap();
    assert!(sentinel.changes_outside().is_empty());
}
