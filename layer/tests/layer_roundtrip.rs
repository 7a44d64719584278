//! Writing trees as layer tars and applying them back: what survives the
//! trip, what the tar looks like, and that the bytes are deterministic.

mod layer_util;

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;
use std::process::Command;

use layer_util::*;
use rbuild_layer::{
    ApplyOptions, LayerError, OverlayXattrs, WriteOptions, apply_layer_tar, apply_layer_tar_auto,
    write_layer_tar,
};

const BASE_MTIME: i64 = 1_550_000_000;

/// A valid `security.capability` value (v2) granting CAP_NET_RAW.
const CAP_NET_RAW: [u8; 20] = [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

fn long_dir_path() -> String {
    format!("deep/{}/{}", "d".repeat(60), "e".repeat(60))
}

/// A tree with one of everything a layer can hold. Owners, devices and
/// trusted/security xattrs only when `privileged`. `reverse` creates the
/// nodes in the opposite order (different inode numbers and directory
/// order on disk, same tree).
fn build_sample_tree(root: &Path, privileged: bool, reverse: bool) {
    type Step = Box<dyn Fn(&Path)>;
    // Each of these creates its own parents and depends on no other.
    let mut independent: Vec<Step> = vec![
        Box::new(|r| write_file(&r.join("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n", 0o644)),
        Box::new(|r| write_file(&r.join("empty"), b"", 0o600)),
        Box::new(|r| write_file(&r.join("usr/bin/bash"), &b"#!bash\n".repeat(1000), 0o755)),
        Box::new(|r| write_file(&r.join("usr/bin/su"), b"setuid", 0o4755)),
        Box::new(|r| write_file(&r.join("usr/bin/sg"), b"setgid", 0o2711)),
        Box::new(|r| {
            fs::create_dir_all(r.join("tmp")).unwrap();
            chmod(&r.join("tmp"), 0o1777);
            fs::create_dir_all(r.join("srv/shared")).unwrap();
            chmod(&r.join("srv/shared"), 0o2775);
        }),
        Box::new(|r| {
            fs::create_dir_all(r.join("usr/bin")).unwrap();
            symlink("bash", r.join("usr/bin/sh")).unwrap();
        }),
        Box::new(|r| symlink("/etc/passwd", r.join("abs-link")).unwrap()),
        Box::new(|r| symlink(format!("{}/target", "x".repeat(150)), r.join("long-link")).unwrap()),
        Box::new(|r| {
            let dir = r.join(long_dir_path());
            fs::create_dir_all(&dir).unwrap();
            write_file(&dir.join("f".repeat(120)), b"deep file", 0o640);
        }),
        Box::new(|r| {
            fs::create_dir_all(r.join("run")).unwrap();
            nix::unistd::mkfifo(&r.join("run/fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600))
                .unwrap();
            chmod(&r.join("run/fifo"), 0o620);
        }),
        Box::new(|r| write_file(&r.join(OsStr::from_bytes(b"bin\xffary")), b"not utf-8", 0o644)),
    ];
    // These need what the independent steps made.
    let mut dependent: Vec<Step> = vec![
        Box::new(|r| {
            fs::create_dir_all(r.join("usr/sbin")).unwrap();
            fs::hard_link(r.join("usr/bin/bash"), r.join("usr/bin/rbash")).unwrap();
            fs::hard_link(r.join("usr/bin/bash"), r.join("usr/sbin/bash-link")).unwrap();
        }),
        Box::new(|r| xattr::set(r.join("etc/passwd"), "user.comment", b"hello").unwrap()),
    ];
    if privileged {
        independent.push(Box::new(|r| {
            write_file(&r.join("home/user/notes.txt"), b"notes", 0o600);
            lchown(&r.join("home/user/notes.txt"), 1000, 1000);
            lchown(&r.join("home/user"), 1000, 1000);
            symlink("notes.txt", r.join("home/user/link")).unwrap();
            lchown(&r.join("home/user/link"), 1000, 1001);
        }));
        independent.push(Box::new(|r| {
            write_file(&r.join("big-ids"), b"large ids", 0o644);
            lchown(&r.join("big-ids"), 3_000_000, 3_000_001);
        }));
        independent.push(Box::new(|r| {
            fs::create_dir_all(r.join("dev")).unwrap();
            use nix::sys::stat::{Mode, SFlag, makedev, mknod};
            mknod(&r.join("dev/null"), SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), makedev(1, 3))
                .unwrap();
            chmod(&r.join("dev/null"), 0o666);
            mknod(&r.join("dev/loop9"), SFlag::S_IFBLK, Mode::from_bits_truncate(0o660), makedev(7, 9))
                .unwrap();
            chmod(&r.join("dev/loop9"), 0o660);
        }));
        independent.push(Box::new(|r| {
            write_file(&r.join("usr/bin/ping"), b"ping", 0o755);
            xattr::set(r.join("usr/bin/ping"), "security.capability", &CAP_NET_RAW).unwrap();
        }));
        dependent.push(Box::new(|r| xattr::set(r.join("etc"), "trusted.note", b"kept").unwrap()));
    }
    if reverse {
        independent.reverse();
        dependent.reverse();
    }
    for step in independent.iter().chain(&dependent) {
        step(root);
    }
    set_all_mtimes(root, BASE_MTIME);
    set_mtime(&root.join("etc/passwd"), BASE_MTIME + 7);
    set_mtime(&root.join("usr/bin/sh"), BASE_MTIME + 9);
}

fn apply_options() -> ApplyOptions {
    ApplyOptions::for_current_user(OverlayXattrs::Trusted)
}

fn layer_bytes(upper: &Path, opts: &WriteOptions) -> Vec<u8> {
    let mut out = Vec::new();
    let stats = write_layer_tar(upper, &mut out, opts).unwrap();
    assert_eq!(stats.tar_bytes, out.len() as u64);
    out
}

#[test]
fn tree_survives_write_then_apply() {
    let privileged = partly(root(), "devices, owners, setuid bits and capabilities");
    let temp = tempfile::tempdir().unwrap();
    let source = temp.path().join("source");
    fs::create_dir(&source).unwrap();
    build_sample_tree(&source, privileged, false);

    let tar = layer_bytes(&source, &WriteOptions::default());
    let dest = temp.path().join("dest");
    let stats = apply_layer_tar(&tar[..], &dest, &apply_options()).unwrap();
    assert_eq!(stats.tar_bytes, tar.len() as u64);

    let expected = describe_tree(&source);
    let actual = describe_tree(&dest);
    for (path, node) in &expected {
        assert_eq!(actual.get(path), Some(node), "{}", String::from_utf8_lossy(path));
    }
    assert_eq!(actual.len(), expected.len());
    if privileged {
        // chown clears file capabilities; they must be set after it.
        assert_eq!(
            xattr::get(dest.join("usr/bin/ping"), "security.capability").unwrap().unwrap(),
            CAP_NET_RAW
        );
        assert_eq!(fs::symlink_metadata(dest.join("usr/bin/su")).unwrap().mode() & 0o7777, 0o4755);
    }
}

#[test]
fn identical_trees_made_at_different_times_give_identical_bytes() {
    let privileged = partly(root(), "devices, owners, setuid bits and capabilities");
    let temp = tempfile::tempdir().unwrap();
    let first = temp.path().join("first");
    let second = temp.path().join("second");
    fs::create_dir(&first).unwrap();
    build_sample_tree(&first, privileged, false);
    // Different ctimes, inode numbers and on-disk directory order.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fs::create_dir(&second).unwrap();
    build_sample_tree(&second, privileged, true);

    let opts = WriteOptions::default();
    let a = layer_bytes(&first, &opts);
    let b = layer_bytes(&second, &opts);
    assert!(a == b, "tars of identical trees differ");
    // And writing the same tree twice is stable too.
    assert!(layer_bytes(&first, &opts) == a);
}

#[test]
fn tar_follows_layer_conventions() {
    let privileged = partly(root(), "devices, owners, setuid bits and capabilities");
    let temp = tempfile::tempdir().unwrap();
    build_sample_tree(temp.path(), privileged, false);
    let tar = layer_bytes(temp.path(), &WriteOptions::default());
    let entries = list_tar(&tar);
    let names = names(&entries);

    // Depth-first, sorted per directory, parents first, no "./" or "/".
    let mut expected_order = Vec::new();
    for item in walkdir::WalkDir::new(temp.path()).min_depth(1).sort_by_file_name() {
        let item = item.unwrap();
        let rel = item.path().strip_prefix(temp.path()).unwrap().to_string_lossy().into_owned();
        expected_order.push(if item.file_type().is_dir() { format!("{rel}/") } else { rel });
    }
    assert_eq!(names, expected_order);
    for entry in &entries {
        assert!(!entry.path.starts_with(b"/") && !entry.path.starts_with(b"./"));
        assert!(entry.uname_empty, "user names must not be written");
    }

    let find =
        |name: &str| entries.iter().find(|e| e.path == name.as_bytes()).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(find("usr/bin/bash").kind, 'f');
    assert_eq!(find("usr/bin/rbash").kind, 'h');
    assert_eq!(find("usr/bin/rbash").link.as_deref(), Some(&b"usr/bin/bash"[..]));
    assert_eq!(find("usr/sbin/bash-link").link.as_deref(), Some(&b"usr/bin/bash"[..]));
    assert_eq!(find("usr/bin/su").mode, 0o4755);
    assert_eq!(find("tmp/").mode, 0o1777);
    assert_eq!(find("etc/passwd").mtime, (BASE_MTIME + 7) as u64);
    assert_eq!(find("etc/passwd").xattrs, vec![("user.comment".to_string(), b"hello".to_vec())]);
    let long_link = find("long-link");
    assert_eq!(long_link.link.as_ref().unwrap().len(), 157);
    let deep = format!("{}/{}", long_dir_path(), "f".repeat(120));
    assert_eq!(find(&deep).size, 9);
    assert_eq!(find("run/fifo").kind, 'p');
    if privileged {
        assert_eq!((find("big-ids").uid, find("big-ids").gid), (3_000_000, 3_000_001));
        assert_eq!((find("home/user/link").uid, find("home/user/link").gid), (1000, 1001));
        assert_eq!(find("dev/null").kind, 'c');
        assert_eq!(
            find("usr/bin/ping").xattrs,
            vec![("security.capability".to_string(), CAP_NET_RAW.to_vec())]
        );
    }
}

#[test]
fn whiteouts_and_opaque_dirs_round_trip() {
    require!(root());
    let temp = tempfile::tempdir().unwrap();
    let upper = temp.path().join("upper");
    fs::create_dir_all(upper.join("dir")).unwrap();
    make_whiteout(&upper.join("gone"));
    make_whiteout(&upper.join("dir/gone-too"));
    write_file(&upper.join("opq/kept"), b"new content", 0o644);
    write_file(&upper.join("opq/-sorts-before-marker"), b"x", 0o644);
    xattr::set(upper.join("opq"), "trusted.overlay.opaque", b"y").unwrap();
    // Overlay bookkeeping that must not leak into the layer.
    xattr::set(upper.join("dir"), "trusted.overlay.impure", b"y").unwrap();
    xattr::set(upper.join("dir"), "trusted.overlay.origin", b"\x00\xfb").unwrap();
    set_all_mtimes(&upper, BASE_MTIME);

    let tar = layer_bytes(&upper, &WriteOptions::default());
    let entries = list_tar(&tar);
    assert_eq!(
        names(&entries),
        [
            "dir/",
            "dir/.wh.gone-too",
            ".wh.gone",
            "opq/",
            "opq/.wh..wh..opq",
            "opq/-sorts-before-marker",
            "opq/kept"
        ]
    );
    for marker in ["dir/.wh.gone-too", ".wh.gone", "opq/.wh..wh..opq"] {
        let e = entries.iter().find(|e| e.path == marker.as_bytes()).unwrap();
        assert_eq!(
            (e.kind, e.mode, e.uid, e.gid, e.size, e.mtime),
            ('f', 0, 0, 0, 0, BASE_MTIME as u64),
            "{marker}"
        );
    }
    assert!(entries.iter().all(|e| e.xattrs.iter().all(|(name, _)| !name.contains("overlay"))));

    let dest = temp.path().join("snapshot");
    apply_layer_tar(&tar[..], &dest, &apply_options()).unwrap();
    let gone = fs::symlink_metadata(dest.join("gone")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&gone.file_type()) && gone.rdev() == 0);
    assert!(fs::symlink_metadata(dest.join("dir/gone-too")).unwrap().rdev() == 0);
    assert_eq!(xattr::get(dest.join("opq"), "trusted.overlay.opaque").unwrap().as_deref(), Some(&b"y"[..]));
    assert!(!dest.join("opq/.wh..wh..opq").exists());
    assert_eq!(xattr::get(dest.join("dir"), "trusted.overlay.impure").unwrap(), None);

    // Writing the applied snapshot gives the same layer back.
    assert!(layer_bytes(&dest, &WriteOptions::default()) == tar);
}

#[test]
fn user_namespace_xattrs_are_honoured() {
    let temp = tempfile::tempdir().unwrap();
    let upper = temp.path().join("upper");
    write_file(&upper.join("opq/file"), b"x", 0o644);
    xattr::set(upper.join("opq"), "user.overlay.opaque", b"y").unwrap();
    // An opaque marker in the other namespace means nothing here.
    write_file(&upper.join("other/file"), b"x", 0o644);
    if partly(root(), "a trusted.overlay.opaque marker in user mode") {
        xattr::set(upper.join("other"), "trusted.overlay.opaque", b"y").unwrap();
    }
    let opts = WriteOptions { xattr_prefix: OverlayXattrs::User, ..Default::default() };
    let tar = layer_bytes(&upper, &opts);
    assert_eq!(names(&list_tar(&tar)), ["opq/", "opq/.wh..wh..opq", "opq/file", "other/", "other/file"]);

    let dest = temp.path().join("dest");
    let apply = ApplyOptions { xattr_prefix: OverlayXattrs::User, ..apply_options() };
    apply_layer_tar(&tar[..], &dest, &apply).unwrap();
    assert_eq!(xattr::get(dest.join("opq"), "user.overlay.opaque").unwrap().as_deref(), Some(&b"y"[..]));
    assert_eq!(xattr::get(dest.join("opq"), "trusted.overlay.opaque").unwrap(), None);
}

#[test]
fn mtimes_are_clamped_and_excluded_paths_left_out() {
    let temp = tempfile::tempdir().unwrap();
    let upper = temp.path();
    write_file(&upper.join("new"), b"new", 0o644);
    write_file(&upper.join("old"), b"old", 0o644);
    write_file(&upper.join("mnt/cache/placeholder"), b"", 0o644);
    write_file(&upper.join("mnt/kept"), b"", 0o644);
    fs::create_dir(upper.join("secret")).unwrap();
    set_all_mtimes(upper, 2_000_000_000);
    set_mtime(&upper.join("old"), 1_000);

    let opts = WriteOptions {
        clamp_mtime: Some(1_700_000_000),
        exclude: vec!["/mnt/cache".into(), "./secret/".into()],
        ..Default::default()
    };
    let entries = list_tar(&layer_bytes(upper, &opts));
    assert_eq!(names(&entries), ["mnt/", "mnt/kept", "new", "old"]);
    let mtime = |name: &str| entries.iter().find(|e| e.path == name.as_bytes()).unwrap().mtime;
    assert_eq!(mtime("new"), 1_700_000_000);
    assert_eq!(mtime("mnt/"), 1_700_000_000);
    assert_eq!(mtime("old"), 1_000);
}

#[test]
fn empty_upper_gives_an_empty_tar() {
    let temp = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let stats = write_layer_tar(temp.path(), &mut out, &WriteOptions::default()).unwrap();
    assert_eq!((stats.entries, stats.tar_bytes, stats.content_bytes), (0, 1024, 0));
    assert_eq!(out, vec![0u8; 1024]);
}

#[test]
fn stats_count_entries_and_content() {
    let temp = tempfile::tempdir().unwrap();
    let upper = temp.path().join("upper");
    write_file(&upper.join("a"), &[7u8; 1000], 0o644);
    write_file(&upper.join("d/b"), &[8u8; 24], 0o644);
    let mut out = Vec::new();
    let written = write_layer_tar(&upper, &mut out, &WriteOptions::default()).unwrap();
    assert_eq!((written.entries, written.content_bytes), (3, 1024));
    let applied = apply_layer_tar(&out[..], &temp.path().join("dest"), &apply_options()).unwrap();
    assert_eq!(applied, written);
}

#[test]
fn compressed_layers_are_recognised_by_their_bytes() {
    let temp = tempfile::tempdir().unwrap();
    let upper = temp.path().join("upper");
    write_file(&upper.join("hello"), b"hello world", 0o644);
    let tar = layer_bytes(&upper, &WriteOptions::default());

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();

    for (label, blob) in [("plain", tar.clone()), ("gzip", gz.clone()), ("zstd", zst)] {
        let dest = temp.path().join(label);
        let stats = apply_layer_tar_auto(&blob[..], &dest, &apply_options()).unwrap();
        assert_eq!(stats.tar_bytes, tar.len() as u64, "{label}");
        assert_eq!(fs::read(dest.join("hello")).unwrap(), b"hello world", "{label}");
    }

    // A gzip stream cut short is a truncated layer, not a short one.
    let err =
        apply_layer_tar_auto(&gz[..gz.len() - 12], &temp.path().join("cut"), &apply_options()).unwrap_err();
    assert!(matches!(err, LayerError::Truncated { .. }), "{err}");

    let err =
        apply_layer_tar_auto(&b"BZh91AY&SY"[..], &temp.path().join("bz"), &apply_options()).unwrap_err();
    assert!(matches!(err, LayerError::UnsupportedCompression("bzip2")), "{err}");
}

#[test]
fn trailing_padding_after_the_end_marker_is_consumed() {
    let temp = tempfile::tempdir().unwrap();
    let mut tar = RawTar::new().file("a", b"content").finish();
    // Classic tar pads archives to 10 KiB records.
    tar.resize(10240, 0);
    let stats = apply_layer_tar(&tar[..], &temp.path().join("dest"), &apply_options()).unwrap();
    assert_eq!(stats.tar_bytes, 10240);
}

/// GNU tar must extract our layers to the same tree (it is the reference
/// reader for PAX records and long names outside Go).
#[test]
fn gnu_tar_reads_our_layers() {
    require!(root(), tool("tar"));
    let temp = tempfile::tempdir().unwrap();
    let source = temp.path().join("source");
    fs::create_dir(&source).unwrap();
    build_sample_tree(&source, true, false);
    let tar_path = temp.path().join("layer.tar");
    let file = fs::File::create(&tar_path).unwrap();
    write_layer_tar(&source, file, &WriteOptions::default()).unwrap();

    let extracted = temp.path().join("extracted");
    fs::create_dir(&extracted).unwrap();
    let status = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "--same-owner", "-p", "-xf"])
        .arg(&tar_path)
        .arg("-C")
        .arg(&extracted)
        .status()
        .unwrap();
    assert!(status.success());
    // GNU tar does not restore directory times it had to touch, nor our
    // ownership of the extraction root; compare everything else.
    let mut expected = describe_tree(&source);
    let mut actual = describe_tree(&extracted);
    for tree in [&mut expected, &mut actual] {
        for node in tree.values_mut() {
            if node.kind == 'd' {
                node.mtime = 0;
            }
        }
    }
    assert_eq!(actual, expected);
}

/// Layers written by GNU tar (PAX and GNU formats, with `./` prefixes and a
/// root entry) apply to the same tree.
#[test]
fn layers_written_by_gnu_tar_apply() {
    require!(root(), tool("tar"));
    let temp = tempfile::tempdir().unwrap();
    let source = temp.path().join("source");
    fs::create_dir(&source).unwrap();
    build_sample_tree(&source, true, false);
    for format in ["pax", "gnu"] {
        let tar_path = temp.path().join(format!("{format}.tar"));
        // The GNU format has no xattr records.
        let xattr_flags: &[&str] = if format == "pax" { &["--xattrs", "--xattrs-include=*"] } else { &[] };
        let status = Command::new("tar")
            .args(xattr_flags)
            .args(["--numeric-owner", &format!("--format={format}"), "-cf"])
            .arg(&tar_path)
            .arg("-C")
            .arg(&source)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let dest = temp.path().join(format!("from-{format}"));
        apply_layer_tar(fs::File::open(&tar_path).unwrap(), &dest, &apply_options()).unwrap();
        let mut expected = describe_tree(&source);
        let mut actual = describe_tree(&dest);
        if format == "gnu" {
            for node in expected.values_mut().chain(actual.values_mut()) {
                node.xattrs.clear();
            }
        }
        assert_eq!(actual, expected, "{format}");
    }
}

/// Go's archive/tar (what Docker and BuildKit read layers with) sees the
/// same entries as the tar crate.
#[test]
fn go_archive_tar_reads_our_layers() {
    require!(tool("go"));
    let temp = tempfile::tempdir().unwrap();
    let source = temp.path().join("source");
    fs::create_dir(&source).unwrap();
    build_sample_tree(&source, partly(root(), "devices and owners in the sample tree"), false);
    let tar = layer_bytes(&source, &WriteOptions::default());

    let program = temp.path().join("list.go");
    fs::write(
        &program,
        r#"package main

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"sort"
)

func main() {
	tr := tar.NewReader(os.Stdin)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		n, _ := io.Copy(io.Discard, tr)
		var keys []string
		for k := range h.PAXRecords {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		xattrs := ""
		for _, k := range keys {
			if len(k) > 13 && k[:13] == "SCHILY.xattr." {
				xattrs += fmt.Sprintf("%s=%x;", k[13:], h.PAXRecords[k])
			}
		}
		fmt.Printf("%x %c %x %o %d %d %d %d %q %s\n", h.Name, h.Typeflag, h.Linkname, h.Mode, h.Uid, h.Gid, h.ModTime.Unix(), n, h.Uname, xattrs)
	}
}
"#,
    )
    .unwrap();
    let mut child = Command::new("go")
        .arg("run")
        .arg(&program)
        .env("GOCACHE", temp.path().join("gocache"))
        .env("GO111MODULE", "off")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "go failed: {text}");

    let expected: Vec<String> = list_tar(&tar)
        .iter()
        .map(|e| {
            let xattrs: String = e.xattrs.iter().map(|(k, v)| format!("{k}={};", hex::encode(v))).collect();
            format!(
                "{} {} {} {:o} {} {} {} {} \"\" {}",
                hex::encode(&e.path),
                match e.kind {
                    'f' => '0',
                    'h' => '1',
                    'l' => '2',
                    'c' => '3',
                    'b' => '4',
                    'd' => '5',
                    'p' => '6',
                    other => other,
                },
                hex::encode(e.link.clone().unwrap_or_default()),
                e.mode,
                e.uid,
                e.gid,
                e.mtime,
                e.size,
                xattrs
            )
        })
        .collect();
    let actual: Vec<&str> = text.lines().collect();
    assert_eq!(actual, expected);
}
