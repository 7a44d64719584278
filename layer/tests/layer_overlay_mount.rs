//! The whole cycle against the kernel: layers applied by us must mount as
//! overlay lowerdirs, changes made in the mount must come out of the upper
//! directory as the right layer tar, and that tar applied again must show
//! the same tree. Needs root (mount, mknod, trusted.* xattrs).

mod layer_util;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use layer_util::*;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use rbuild_layer::{
    ApplyOptions, LayerError, LayerStack, OverlayXattrs, WriteOptions, apply_layer_tar, write_layer_tar,
};

/// An overlay mount, unmounted when dropped (also when a test fails).
struct OverlayMount {
    target: PathBuf,
}

impl OverlayMount {
    fn new(target: &Path, lowers: &[&Path], upper: Option<(&Path, &Path)>, extra: &str) -> OverlayMount {
        fs::create_dir_all(target).unwrap();
        let lowerdir: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        let mut options = format!("lowerdir={}", lowerdir.join(":"));
        if let Some((upper, work)) = upper {
            fs::create_dir_all(upper).unwrap();
            fs::create_dir_all(work).unwrap();
            options.push_str(&format!(",upperdir={},workdir={}", upper.display(), work.display()));
        }
        if !extra.is_empty() {
            options.push(',');
            options.push_str(extra);
        }
        mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(options.as_str()))
            .unwrap_or_else(|e| panic!("mount overlay with {options}: {e}"));
        OverlayMount { target: target.to_path_buf() }
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        let _ = umount2(&self.target, MntFlags::MNT_DETACH);
    }
}

fn options() -> ApplyOptions {
    ApplyOptions::for_current_user(OverlayXattrs::Trusted)
}

/// Writes `tree` out with our writer and applies it as a snapshot in `dest`.
fn make_layer(tree: &Path, dest: &Path) -> Vec<u8> {
    let mut tar = Vec::new();
    write_layer_tar(tree, &mut tar, &WriteOptions::default()).unwrap();
    apply_layer_tar(&tar[..], dest, &options()).unwrap();
    tar
}

fn entry_names(tar: &[u8]) -> Vec<String> {
    names(&list_tar(tar))
}

#[test]
fn overlay_mount_upper_dir_becomes_the_right_layer() {
    require!(root());
    let temp = tempfile::tempdir().unwrap();
    let t = temp.path();

    // Base layer.
    let base = t.join("base-tree");
    write_files(
        &base,
        &[
            ("etc/passwd", b"root:x:0:0\n", 0o644),
            ("etc/hosts", b"127.0.0.1 localhost\n", 0o644),
            ("etc/group", b"root:x:0:\n", 0o644),
            ("usr/share/doc/a", b"a", 0o644),
            ("usr/share/doc/sub/b", b"b", 0o644),
            ("var/cache/old", b"old", 0o644),
            ("keep/file", b"before", 0o644),
            ("file-to-dir", b"file", 0o644),
            ("dir-to-file/child", b"child", 0o644),
            ("hard/a", b"linked", 0o644),
        ],
    );
    fs::hard_link(base.join("hard/a"), base.join("hard/b")).unwrap();
    set_all_mtimes(&base, 1_500_000_000);
    let lower1 = t.join("lower1");
    make_layer(&base, &lower1);

    // Second layer, written as a tar by hand: deletes etc/hosts and
    // replaces var/cache.
    let tar2 = RawTar::new()
        .dir("etc/")
        .file("etc/.wh.hosts", b"")
        .dir("var/")
        .dir("var/cache/")
        .file("var/cache/.wh..wh..opq", b"")
        .file("var/cache/new", b"new")
        .finish();
    let lower2 = t.join("lower2");
    apply_layer_tar(&tar2[..], &lower2, &options()).unwrap();

    // The kernel reads our snapshots as we meant them.
    let merged = t.join("merged");
    let (upper, work) = (t.join("upper"), t.join("work"));
    let mount_rw = OverlayMount::new(&merged, &[&lower2, &lower1], Some((&upper, &work)), "");
    assert!(!merged.join("etc/hosts").exists());
    assert!(merged.join("etc/passwd").exists());
    assert_eq!(fs::read_dir(merged.join("var/cache")).unwrap().count(), 1);
    assert_eq!(fs::read(merged.join("var/cache/new")).unwrap(), b"new");

    // A RUN step's worth of changes.
    fs::remove_file(merged.join("etc/passwd")).unwrap();
    fs::remove_file(merged.join("etc/group")).unwrap();
    fs::remove_dir_all(merged.join("usr/share/doc")).unwrap();
    fs::create_dir(merged.join("usr/share/doc")).unwrap();
    fs::write(merged.join("usr/share/doc/fresh"), b"fresh").unwrap();
    fs::write(merged.join("keep/file"), b"after").unwrap();
    fs::remove_file(merged.join("file-to-dir")).unwrap();
    fs::create_dir(merged.join("file-to-dir")).unwrap();
    fs::remove_dir_all(merged.join("dir-to-file")).unwrap();
    fs::write(merged.join("dir-to-file"), b"now a file").unwrap();
    fs::set_permissions(merged.join("hard/b"), fs::Permissions::from_mode(0o600)).unwrap();
    write_file(&merged.join("new/x"), b"x", 0o755);
    // Only what the step touched is copied up: no blanket mtime changes.
    let seen_in_mount = describe_tree(&merged);
    drop(mount_rw);

    let mut tar3 = Vec::new();
    write_layer_tar(&upper, &mut tar3, &WriteOptions::default()).unwrap();
    let entries = list_tar(&tar3);
    let names = names(&entries);
    let position =
        |name: &str| names.iter().position(|n| n == name).unwrap_or_else(|| panic!("{name} in {names:?}"));
    // Deletions are whiteouts, never hard links (the kernel shares one
    // whiteout inode between them).
    for whiteout in ["etc/.wh.passwd", "etc/.wh.group"] {
        let entry = &entries[position(whiteout)];
        assert_eq!((entry.kind, entry.size, entry.mode), ('f', 0, 0), "{whiteout}");
    }
    // Re-created directories are opaque, marked right after their entry.
    assert_eq!(position("usr/share/doc/.wh..wh..opq"), position("usr/share/doc/") + 1);
    assert!(names.contains(&"usr/share/doc/fresh".to_string()));
    assert!(!names.iter().any(|n| n.starts_with("usr/share/doc/a") || n.starts_with("usr/share/doc/sub")));
    // A directory where a file was: opaque in overlayfs terms.
    assert_eq!(position("file-to-dir/.wh..wh..opq"), position("file-to-dir/") + 1);
    assert_eq!(entries[position("dir-to-file")].kind, 'f');
    assert_eq!(entries[position("keep/file")].size, 5);
    assert_eq!(entries[position("hard/b")].mode, 0o600);
    // Untouched lower files stay out of the layer.
    for untouched in ["hard/a", "var/cache/new", "etc/hosts"] {
        assert!(!names.iter().any(|n| n == untouched), "{untouched} in {names:?}");
    }
    assert!(entries.iter().all(|e| e.kind != 'h'));
    assert!(entries.iter().all(|e| e.xattrs.iter().all(|(k, _)| !k.contains("overlay"))));

    // The userspace view of the same stack agrees with the kernel's.
    let stack = LayerStack::new(vec![upper.clone(), lower2.clone(), lower1.clone()], OverlayXattrs::Trusted);
    let exported = t.join("exported");
    stack.export_dir(&exported).unwrap();
    assert_eq!(describe_tree(&exported), seen_in_mount);

    // The layer applied as a snapshot and mounted read-only on top of the
    // others shows the same tree again.
    let lower3 = t.join("lower3");
    apply_layer_tar(&tar3[..], &lower3, &options()).unwrap();
    let merged_again = t.join("merged-again");
    let mount_ro = OverlayMount::new(&merged_again, &[&lower3, &lower2, &lower1], None, "");
    assert_eq!(describe_tree(&merged_again), seen_in_mount);
    drop(mount_ro);

    // And writing the applied snapshot reproduces the tar byte for byte.
    let mut tar3_again = Vec::new();
    write_layer_tar(&lower3, &mut tar3_again, &WriteOptions::default()).unwrap();
    assert!(tar3_again == tar3, "re-written layer differs: {:?}", entry_names(&tar3_again));
}

#[test]
fn renamed_directory_with_redirect_dir_is_refused() {
    require!(root());
    let temp = tempfile::tempdir().unwrap();
    let t = temp.path();
    let base = t.join("base-tree");
    write_file(&base.join("olddir/file"), b"content", 0o644);
    let lower = t.join("lower");
    make_layer(&base, &lower);

    let merged = t.join("merged");
    let (upper, work) = (t.join("upper"), t.join("work"));
    let mount = OverlayMount::new(&merged, &[&lower], Some((&upper, &work)), "redirect_dir=on");
    fs::rename(merged.join("olddir"), merged.join("newdir")).unwrap();
    drop(mount);

    let err = write_layer_tar(&upper, &mut Vec::new(), &WriteOptions::default()).unwrap_err();
    assert!(matches!(err, LayerError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("redirect"), "{err}");
}
