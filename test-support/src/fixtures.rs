//! Fixtures tests build on: the busybox root filesystem (the same tree
//! `scripts/bases.sh` tars as `busybox-rootfs.tar`), made here so a test
//! needs only Debian's busybox-static, not the provisioned bases.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::prereq::BUSYBOX;

/// `/etc/passwd` of the busybox root filesystem.
pub const BUSYBOX_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
    nobody:x:65534:65534:nobody:/:/bin/false\n\
    app:x:1000:1000::/home/app:/bin/sh\n";
/// `/etc/group` of the busybox root filesystem.
pub const BUSYBOX_GROUP: &str = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\n";

/// A root filesystem tarball with Debian's static busybox and its applet
/// links in `/bin`, users root, nobody and app (uid 1000), a 1777 `/tmp`;
/// entries sorted, mtime 0, owned by 0:0. Built once per test process, in
/// the temp directory. Check [`busybox_static`](crate::prereq::busybox_static)
/// first: without it this panics.
pub fn busybox_rootfs() -> &'static Path {
    static TARBALL: OnceLock<PathBuf> = OnceLock::new();
    TARBALL.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rbuild-test-busybox-{}", std::process::id()));
        let tarball = dir.with_extension("tar");
        let _ = fs::remove_dir_all(&dir);
        for d in ["bin", "etc", "tmp", "root", "usr/bin", "sbin", "home/app"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        fs::copy(BUSYBOX, dir.join("bin/busybox")).expect("Debian's busybox-static at /bin/busybox");
        // The applets of the original: running the fresh copy can fail with
        // ETXTBSY while another test thread's fork still holds it open.
        let list = Command::new(BUSYBOX).arg("--list").output().expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let link = dir.join("bin").join(applet);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", link).unwrap();
            }
        }
        fs::write(dir.join("etc/passwd"), BUSYBOX_PASSWD).unwrap();
        fs::write(dir.join("etc/group"), BUSYBOX_GROUP).unwrap();
        fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        let status = Command::new("tar")
            .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C"])
            .arg(&dir)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .status()
            .expect("run tar");
        assert!(status.success(), "tar of the busybox root filesystem failed");
        let _ = fs::remove_dir_all(&dir);
        tarball
    })
}
