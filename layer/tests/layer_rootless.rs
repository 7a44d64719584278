//! Applying a layer without privileges and with `user.overlay.` xattrs, as
//! a rootless build does. Since Linux 5.8 anyone may create a 0/0 whiteout
//! device; where that is refused, whiteouts fall back to the xattr form
//! overlayfs reads since 6.7 (that fallback has its own unit test). When
//! run as root, the test re-runs itself as `nobody` (through `setpriv`) and
//! then checks with a real `userxattr` overlay mount that the kernel agrees.

mod layer_util;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use layer_util::*;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use rbuild_layer::{ApplyOptions, LayerStack, OverlayXattrs, WriteOptions, apply_layer_tar, write_layer_tar};

const TEST_NAME: &str = "unprivileged_apply_makes_a_mountable_snapshot";
const CHILD_DIR_ENV: &str = "RBUILD_LAYER_TEST_ROOTLESS_DIR";
const NOBODY: u32 = 65534;

#[test]
fn unprivileged_apply_makes_a_mountable_snapshot() {
    if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
        apply_and_check_unprivileged(Path::new(&dir));
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    if !is_root() {
        apply_and_check_unprivileged(temp.path());
        // The kernel half below mounts overlayfs, which needs root.
        require!(root());
    }
    require!(tool("setpriv"));
    lchown(temp.path(), NOBODY, NOBODY);
    let status = Command::new("setpriv")
        .args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".into(),
            "--".into(),
        ])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, temp.path())
        .status()
        .unwrap();
    assert!(status.success(), "the unprivileged run failed");

    // The kernel reads the fallback whiteouts as deletions.
    let merged = temp.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let options = format!(
        "lowerdir={}:{},userxattr",
        temp.path().join("snapshot").display(),
        temp.path().join("base").display()
    );
    if let Err(e) =
        mount(Some("overlay"), &merged, Some("overlay"), MsFlags::MS_RDONLY, Some(options.as_str()))
    {
        rbuild_test_support::skip(format!("the kernel cannot mount overlayfs with userxattr: {e}"));
        return;
    }
    let listing = |dir: &str| {
        let mut names: Vec<String> = fs::read_dir(merged.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let seen = (listing("etc"), listing("opq"), listing("mixed"));
    umount2(&merged, MntFlags::MNT_DETACH).unwrap();
    assert_eq!(seen, (vec!["passwd".to_string()], vec!["new".to_string()], Vec::<String>::new()));
}

/// Runs without privileges: builds a base snapshot, applies a layer with
/// deletions on top of it, and checks the result three ways.
fn apply_and_check_unprivileged(dir: &Path) {
    assert!(!is_root());
    let base = dir.join("base");
    write_file(&base.join("etc/hosts"), b"hosts", 0o644);
    write_file(&base.join("etc/passwd"), b"old passwd", 0o644);
    write_file(&base.join("opq/old"), b"old", 0o644);
    write_file(&base.join("mixed/a"), b"a", 0o644);

    // In `mixed/`, a whiteout comes before the opaque marker: the marker
    // makes it redundant, and it goes.
    let tar = RawTar::new()
        .dir("etc/")
        .file("etc/.wh.hosts", b"")
        .file("etc/passwd", b"new passwd")
        .dir("mixed/")
        .file("mixed/.wh.a", b"")
        .file("mixed/.wh..wh..opq", b"")
        .dir("opq/")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"new")
        .finish();
    let snapshot = dir.join("snapshot");
    let options = ApplyOptions { xattr_prefix: OverlayXattrs::User, same_owner: false, skip_devices: true };
    apply_layer_tar(&tar[..], &snapshot, &options).unwrap();

    let hosts = fs::symlink_metadata(snapshot.join("etc/hosts")).unwrap();
    let device_whiteout = hosts.file_type().is_char_device() && hosts.rdev() == 0;
    let xattr_whiteout = hosts.is_file()
        && hosts.len() == 0
        && xattr::get(snapshot.join("etc/hosts"), "user.overlay.whiteout").unwrap().is_some();
    assert!(device_whiteout || xattr_whiteout, "etc/hosts is not a whiteout: {hosts:?}");
    assert_eq!(hosts.uid(), nix::unistd::geteuid().as_raw(), "files belong to the caller without same_owner");
    assert_eq!(xattr::get(snapshot.join("opq"), "user.overlay.opaque").unwrap().as_deref(), Some(&b"y"[..]));
    assert_eq!(
        xattr::get(snapshot.join("mixed"), "user.overlay.opaque").unwrap().as_deref(),
        Some(&b"y"[..])
    );
    // The kernel would list a whiteout inside a lower opaque directory.
    assert!(fs::symlink_metadata(snapshot.join("mixed/a")).is_err());

    // Our merged view agrees.
    let stack = LayerStack::new(vec![snapshot.clone(), base], OverlayXattrs::User);
    assert!(stack.lookup("/etc/hosts", true).unwrap().is_none());
    assert_eq!(stack.read_file("/etc/passwd").unwrap().unwrap(), b"new passwd");
    assert_eq!(stack.read_dir("/opq").unwrap().len(), 1);
    assert!(stack.read_dir("/mixed").unwrap().is_empty());

    // And the snapshot writes back as the layer it came from.
    let mut again = Vec::new();
    let write = WriteOptions { xattr_prefix: OverlayXattrs::User, ..Default::default() };
    write_layer_tar(&snapshot, &mut again, &write).unwrap();
    assert_eq!(
        names(&list_tar(&again)),
        [
            "etc/",
            "etc/.wh.hosts",
            "etc/passwd",
            "mixed/",
            "mixed/.wh..wh..opq",
            "opq/",
            "opq/.wh..wh..opq",
            "opq/new"
        ]
    );
}
