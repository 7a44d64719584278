//! The userspace merged view: lookups through whiteouts, opaque
//! directories and symlinks, listings, walks, reads and exports.

mod layer_util;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use layer_util::*;
use rbuild_layer::{FlatTarOptions, LayerError, LayerStack, OverlayXattrs, WriteOptions, write_layer_tar};

/// Three snapshot dirs, top first:
///
/// * layer 2 (bottom): the base system, symlinks, a symlink loop;
/// * layer 1: overrides /etc/passwd, deletes /etc/hosts, libm.so and
///   /opt/old, makes /opt/app opaque, turns /dir-then-file into a file;
/// * layer 0 (top): brings /etc/hosts back, adds files and symlinks.
fn build_stack(root: &Path, whiteout: fn(&Path), prefix: OverlayXattrs) -> LayerStack {
    let l2 = root.join("l2");
    write_files(
        &l2,
        &[
            ("etc/passwd", b"base", 0o644),
            ("etc/hosts", b"base hosts", 0o644),
            ("etc/shadow", b"shadow", 0o600),
            ("usr/lib/libc.so", b"libc", 0o755),
            ("usr/lib/libm.so", b"libm", 0o755),
            ("opt/app/config", b"old config", 0o644),
            ("opt/app/data/x", b"x", 0o644),
            ("opt/old/file", b"old", 0o644),
            ("dir-then-file/child", b"child", 0o644),
        ],
    );
    fs::create_dir_all(l2.join("usr/bin")).unwrap();
    symlink("/etc/passwd", l2.join("link-abs")).unwrap();
    symlink("etc/hosts", l2.join("link-rel")).unwrap();
    symlink("../../../../etc/passwd", l2.join("link-up")).unwrap();
    symlink("loop2", l2.join("loop1")).unwrap();
    symlink("loop1", l2.join("loop2")).unwrap();
    symlink("usr/lib", l2.join("lib")).unwrap();

    let l1 = root.join("l1");
    write_file(&l1.join("etc/passwd"), b"middle", 0o644);
    whiteout(&l1.join("etc/hosts"));
    fs::create_dir_all(l1.join("usr/lib")).unwrap();
    whiteout(&l1.join("usr/lib/libm.so"));
    write_file(&l1.join("opt/app/config"), b"new config", 0o644);
    xattr::set(l1.join("opt/app"), prefix.opaque(), b"y").unwrap();
    whiteout(&l1.join("opt/old"));
    write_file(&l1.join("dir-then-file"), b"now a file", 0o644);

    let l0 = root.join("l0");
    write_file(&l0.join("etc/hosts"), b"top hosts", 0o644);
    write_file(&l0.join("usr/lib/new.so"), b"new", 0o755);
    fs::create_dir_all(l0.join("usr/bin")).unwrap();
    symlink("../lib/libc.so", l0.join("usr/bin/tool")).unwrap();
    symlink("/usr/lib", l0.join("abs-dir-link")).unwrap();
    write_file(&l0.join("opt/app/extra"), b"extra", 0o644);

    LayerStack::new(vec![l0, l1, l2], prefix)
}

/// A stack whose whiteouts are 0/0 device nodes (making them needs root).
fn stack_with_device_whiteouts(dir: &Path) -> rbuild_test_support::Need<LayerStack> {
    root()?;
    Ok(build_stack(dir, make_whiteout, OverlayXattrs::Trusted))
}

/// Where a lookup landed: (layer, merged path), or None.
fn landed(stack: &LayerStack, path: &str, follow: bool) -> Option<(usize, String)> {
    stack.lookup(path, follow).unwrap().map(|found| (found.layer_index, found.merged_path))
}

fn listing(stack: &LayerStack, path: &str) -> Vec<(String, usize)> {
    stack
        .read_dir(path)
        .unwrap()
        .into_iter()
        .map(|(name, found)| (name.into_string().unwrap(), found.layer_index))
        .collect()
}

#[test]
fn topmost_layer_wins_and_whiteouts_hide() {
    let temp = tempfile::tempdir().unwrap();
    let stack = require!(stack_with_device_whiteouts(temp.path()));
    assert_eq!(landed(&stack, "/etc/passwd", true), Some((1, "/etc/passwd".into())));
    assert_eq!(landed(&stack, "etc/hosts", true), Some((0, "/etc/hosts".into())));
    assert_eq!(landed(&stack, "/etc/shadow", true), Some((2, "/etc/shadow".into())));
    assert_eq!(landed(&stack, "/usr/lib/libm.so", true), None);
    assert_eq!(landed(&stack, "/opt/old", true), None);
    assert_eq!(landed(&stack, "/opt/old/file", true), None);
    assert_eq!(stack.read_file("/etc/passwd").unwrap().unwrap(), b"middle");
    assert_eq!(stack.read_file("/etc/hosts").unwrap().unwrap(), b"top hosts");
    assert_eq!(stack.read_file("/nope").unwrap(), None);
    assert!(matches!(stack.read_file("/etc"), Err(LayerError::NotAFile { .. })));

    let found = stack.lookup("/etc/shadow", true).unwrap().unwrap();
    assert_eq!(found.real_path, stack.dirs[2].join("etc/shadow"));
    assert!(found.metadata.is_file());
}

#[test]
fn opaque_directories_stop_the_merge() {
    let temp = tempfile::tempdir().unwrap();
    let stack = require!(stack_with_device_whiteouts(temp.path()));
    assert_eq!(listing(&stack, "/opt/app"), [("config".to_string(), 1), ("extra".to_string(), 0)]);
    assert_eq!(stack.read_file("/opt/app/config").unwrap().unwrap(), b"new config");
    assert_eq!(landed(&stack, "/opt/app/data/x", true), None);
    assert_eq!(listing(&stack, "/opt"), [("app".to_string(), 0)]);
}

#[test]
fn directories_merge_across_layers_without_whiteouts() {
    let temp = tempfile::tempdir().unwrap();
    let stack = require!(stack_with_device_whiteouts(temp.path()));
    assert_eq!(listing(&stack, "/usr/lib"), [("libc.so".to_string(), 2), ("new.so".to_string(), 0)]);
    assert_eq!(listing(&stack, "/etc"), [("hosts".into(), 0), ("passwd".into(), 1), ("shadow".into(), 2)]);
    let root: Vec<String> = listing(&stack, "/").into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        root,
        [
            "abs-dir-link",
            "dir-then-file",
            "etc",
            "lib",
            "link-abs",
            "link-rel",
            "link-up",
            "loop1",
            "loop2",
            "opt",
            "usr"
        ]
    );
    // A file in an upper layer hides a directory below it entirely.
    assert!(stack.lookup("/dir-then-file", true).unwrap().unwrap().metadata.is_file());
    assert_eq!(landed(&stack, "/dir-then-file/child", true), None);
    assert!(matches!(stack.read_dir("/dir-then-file"), Err(LayerError::NotADirectory { .. })));
    assert!(matches!(stack.read_dir("/missing"), Err(LayerError::NotFound { .. })));
}

#[test]
fn symlinks_resolve_inside_the_merged_root() {
    let temp = tempfile::tempdir().unwrap();
    let stack = require!(stack_with_device_whiteouts(temp.path()));
    // Absolute targets start at the merged root, not the host's.
    assert_eq!(landed(&stack, "/link-abs", true), Some((1, "/etc/passwd".into())));
    assert_eq!(landed(&stack, "/link-abs", false), Some((2, "/link-abs".into())));
    assert_eq!(landed(&stack, "/link-rel", true), Some((0, "/etc/hosts".into())));
    // `..` stops at the root.
    assert_eq!(landed(&stack, "/link-up", true), Some((1, "/etc/passwd".into())));
    assert_eq!(landed(&stack, "../../../etc/shadow", true), Some((2, "/etc/shadow".into())));
    // Symlinked directories in the middle of a path are followed.
    assert_eq!(landed(&stack, "/lib/libc.so", false), Some((2, "/usr/lib/libc.so".into())));
    assert_eq!(landed(&stack, "/usr/bin/tool", true), Some((2, "/usr/lib/libc.so".into())));
    // `..` after a symlink goes up from where the link led.
    assert_eq!(landed(&stack, "/abs-dir-link/../../etc/shadow", true), Some((2, "/etc/shadow".into())));
    // Whiteouts apply after resolution too.
    assert_eq!(landed(&stack, "/lib/libm.so", true), None);
    // Through a file is not found; a loop is an error, not a hang.
    assert_eq!(landed(&stack, "/etc/passwd/x", true), None);
    assert!(matches!(stack.lookup("/loop1", true), Err(LayerError::SymlinkLoop { .. })));
    assert!(matches!(stack.lookup("/loop1/x", false), Err(LayerError::SymlinkLoop { .. })));
    assert!(stack.lookup("/loop1", false).unwrap().unwrap().metadata.file_type().is_symlink());
    // The root.
    let root = stack.lookup("/", true).unwrap().unwrap();
    assert_eq!((root.layer_index, root.merged_path.as_str()), (0, "/"));
    assert_eq!(landed(&stack, "/etc/..", true), Some((0, "/".into())));
    // Physical, as in the kernel: /lib/.. is /usr, not /.
    assert_eq!(stack.read_file("/lib/../lib/new.so").unwrap().unwrap(), b"new");
    assert_eq!(stack.read_file("/lib/../usr/lib/new.so").unwrap(), None);
}

#[test]
fn walk_visits_the_merged_tree_in_order() {
    let temp = tempfile::tempdir().unwrap();
    let stack = require!(stack_with_device_whiteouts(temp.path()));
    let mut seen = Vec::new();
    stack
        .walk("/", |found| {
            seen.push(found.merged_path.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(
        seen,
        [
            "/",
            "/abs-dir-link",
            "/dir-then-file",
            "/etc",
            "/etc/hosts",
            "/etc/passwd",
            "/etc/shadow",
            "/lib",
            "/link-abs",
            "/link-rel",
            "/link-up",
            "/loop1",
            "/loop2",
            "/opt",
            "/opt/app",
            "/opt/app/config",
            "/opt/app/extra",
            "/usr",
            "/usr/bin",
            "/usr/bin/tool",
            "/usr/lib",
            "/usr/lib/libc.so",
            "/usr/lib/new.so",
        ]
    );

    // Walking from a symlinked directory follows it.
    let mut below = Vec::new();
    stack
        .walk("/lib", |found| {
            below.push(found.merged_path.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(below, ["/usr/lib", "/usr/lib/libc.so", "/usr/lib/new.so"]);

    // An error from the visitor stops the walk.
    let mut count = 0;
    let err = stack
        .walk("/", |found| {
            count += 1;
            if found.merged_path == "/etc" {
                Err(LayerError::NotFound { path: "stop".into() })
            } else {
                Ok(())
            }
        })
        .unwrap_err();
    assert!(matches!(err, LayerError::NotFound { .. }));
    assert_eq!(count, 4);
}

#[test]
fn export_dir_and_flat_tar_show_the_merged_tree() {
    let temp = tempfile::tempdir().unwrap();
    let stack = require!(stack_with_device_whiteouts(temp.path()));
    let exported = temp.path().join("exported");
    stack.export_dir(&exported).unwrap();
    let tree = describe_tree(&exported);
    let paths: Vec<String> = tree.keys().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let mut walked = Vec::new();
    stack
        .walk("/", |found| {
            walked.push(found.merged_path.trim_start_matches('/').to_string());
            Ok(())
        })
        .unwrap();
    walked.remove(0);
    walked.sort();
    assert_eq!(paths, walked);
    assert!(tree.values().all(|node| node.kind != 'c' && node.xattrs.is_empty()));
    assert_eq!(fs::read(exported.join("opt/app/config")).unwrap(), b"new config");
    assert_eq!(fs::read_link(exported.join("link-abs")).unwrap(), PathBuf::from("/etc/passwd"));

    // The flat tar is exactly the layer tar of the exported tree.
    let mut flat = Vec::new();
    stack.write_flat_tar(&mut flat).unwrap();
    let mut of_export = Vec::new();
    write_layer_tar(&exported, &mut of_export, &WriteOptions::default()).unwrap();
    assert!(
        flat == of_export,
        "flat tar {:?} vs {:?}",
        names(&list_tar(&flat)),
        names(&list_tar(&of_export))
    );
    assert!(names(&list_tar(&flat)).iter().all(|n| !n.contains(".wh.")));

    let mut clamped = Vec::new();
    stack.write_flat_tar_with(&mut clamped, &FlatTarOptions { clamp_mtime: Some(1000) }).unwrap();
    assert!(list_tar(&clamped).iter().all(|e| e.mtime <= 1000));
}

#[test]
fn hard_links_survive_export_within_a_layer() {
    let temp = tempfile::tempdir().unwrap();
    let bottom = temp.path().join("bottom");
    write_file(&bottom.join("a"), b"shared", 0o644);
    fs::hard_link(bottom.join("a"), bottom.join("b")).unwrap();
    write_file(&bottom.join("c"), b"shared too", 0o644);
    fs::hard_link(bottom.join("c"), bottom.join("d")).unwrap();
    // The top layer has its own copy of `c` (a copy-up): no longer linked.
    let top = temp.path().join("top");
    write_file(&top.join("c"), b"changed", 0o644);
    let stack = LayerStack::new(vec![top, bottom], OverlayXattrs::Trusted);

    let exported = temp.path().join("exported");
    stack.export_dir(&exported).unwrap();
    let tree = describe_tree(&exported);
    assert_eq!(tree[&b"a"[..]].link_group.as_deref(), Some(&b"a"[..]));
    assert_eq!(tree[&b"b"[..]].link_group.as_deref(), Some(&b"a"[..]));
    assert_eq!(tree[&b"c"[..]].link_group, None);
    assert_eq!(tree[&b"d"[..]].link_group, None);
    assert_eq!(tree[&b"c"[..]].content.as_deref(), Some(&b"changed"[..]));

    let mut flat = Vec::new();
    stack.write_flat_tar(&mut flat).unwrap();
    let entries = list_tar(&flat);
    let b = entries.iter().find(|e| e.path == b"b").unwrap();
    assert_eq!((b.kind, b.link.as_deref()), ('h', Some(&b"a"[..])));
    assert_eq!(entries.iter().find(|e| e.path == b"d").unwrap().kind, 'f');
}

/// Rootless stacks: `user.overlay.*` xattrs and xattr whiteouts, which need
/// no privilege at all.
#[test]
fn user_xattr_stack_with_xattr_whiteouts() {
    fn xattr_whiteout(path: &Path) {
        write_file(path, b"", 0o644);
        xattr::set(path, "user.overlay.whiteout", b"y").unwrap();
    }
    let temp = tempfile::tempdir().unwrap();
    let stack = build_stack(temp.path(), xattr_whiteout, OverlayXattrs::User);
    assert_eq!(landed(&stack, "/usr/lib/libm.so", true), None);
    assert_eq!(listing(&stack, "/usr/lib"), [("libc.so".to_string(), 2), ("new.so".to_string(), 0)]);
    assert_eq!(listing(&stack, "/opt/app"), [("config".to_string(), 1), ("extra".to_string(), 0)]);
    assert_eq!(landed(&stack, "/opt/old", true), None);

    // The same files read with the other namespace are plain files.
    let trusted = LayerStack::new(stack.dirs.clone(), OverlayXattrs::Trusted);
    assert!(trusted.lookup("/usr/lib/libm.so", true).unwrap().unwrap().metadata.len() == 0);

    // write_layer_tar turns xattr whiteouts into .wh. entries too.
    let mut tar = Vec::new();
    let opts = WriteOptions { xattr_prefix: OverlayXattrs::User, ..Default::default() };
    write_layer_tar(&stack.dirs[1], &mut tar, &opts).unwrap();
    assert_eq!(
        names(&list_tar(&tar)),
        [
            "dir-then-file",
            "etc/",
            "etc/.wh.hosts",
            "etc/passwd",
            "opt/",
            "opt/app/",
            "opt/app/.wh..wh..opq",
            "opt/app/config",
            "opt/.wh.old",
            "usr/",
            "usr/lib/",
            "usr/lib/.wh.libm.so",
        ]
    );
}

#[test]
fn empty_stack_finds_nothing() {
    let stack = LayerStack::new(Vec::new(), OverlayXattrs::Trusted);
    assert!(stack.lookup("/", true).unwrap().is_none());
    assert!(stack.read_file("/etc/passwd").unwrap().is_none());
}
