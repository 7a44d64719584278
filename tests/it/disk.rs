//! A full disk: the store on a small tmpfs. A build whose RUN output, COPY
//! or layer commit does not fit, and a load that does not fit, must fail
//! with "no space left on device" and the step (or file) it was at, leave
//! the store consistent and without scratch, and work again once space is
//! freed — by deleting a file that filled the disk, or by growing it.

use std::fs;
use std::path::Path;

use crate::harness::*;
use crate::hostile_support::*;

/// A tmpfs mounted on a temp dir for one test, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u64) -> Need<SmallDisk> {
        let dir = tempfile::Builder::new().prefix("rbuild-disk-").tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m,mode=0700"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(format!("cannot mount a tmpfs here: {}", why.trim()).into());
        }
        Ok(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, megabytes: u64) {
        sh(&format!("mount -o remount,size={megabytes}m {}", self.path().display()));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// An env whose store is on `disk` (the work dir stays on the real disk).
fn env_on(disk: &SmallDisk) -> Env {
    let root = tempfile::Builder::new().prefix("store-").tempdir_in(disk.path()).unwrap();
    let env = Env { root, work: tempfile::tempdir().unwrap() };
    env.rbuild(&["import", busybox_rootfs().to_str().unwrap(), "busybox:local"]).ok();
    env
}

/// Expects a failure that says the disk is full and names `at`; then the
/// store must be as before, consistent, and free of scratch.
fn fails_for_space(env: &Env, args: &[&str], at: &str, case: &str) {
    let before = env.store_snapshot();
    let run = env.rbuild(args);
    assert_eq!(run.code, 1, "case {case}: should fail for lack of space\n{}", run.stderr);
    let text = run.stderr.to_lowercase();
    assert!(
        text.contains("hint: the disk holding the store"),
        "case {case}: a hint about space:\n{}",
        run.stderr
    );
    assert!(
        text.contains("no space left on device"),
        "case {case}: the error must say the disk is full:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains(at), "case {case}: the error must name {at:?}:\n{}", run.stderr);
    assert_eq!(env.store_snapshot(), before, "case {case}: a failed command changed the store");
    assert_store_consistent(env, case);
    assert_eq!(scratch_left(env.root.path()), Vec::<String>::new(), "case {case}: scratch left");
}

fn write_filler(path: &Path, megabytes: usize) {
    fs::write(path, vec![7u8; megabytes << 20]).unwrap();
}

#[test]
fn a_full_store_disk_fails_cleanly_and_recovers() {
    require!(root(), busybox_static());
    let disk = require!(SmallDisk::mount(40));
    let env = env_on(&disk);

    // RUN output larger than the disk: the step's own command fails.
    env.dockerfile("run", "FROM busybox:local\nRUN dd if=/dev/zero of=/big bs=1M count=60\n");
    fails_for_space(&env, &["build", "--progress", "plain", "run"], "RUN dd", "run-output");

    // RUN output that fits, but not twice: the build commits the layer
    // without writing its tar, and the first export, which must write it
    // into the store, fails and leaves the store as it was.
    env.dockerfile("commit", "FROM busybox:local\nRUN dd if=/dev/zero of=/big bs=1M count=22\n");
    env.rbuild(&["build", "-t", "commit:1", "commit"]).ok();
    let saved = env.path("commit.tar");
    fails_for_space(
        &env,
        &["save", "-o", saved.to_str().unwrap(), "commit:1"],
        "layer",
        "deferred-layer-tar",
    );
    assert!(!saved.exists(), "a failed save leaves no archive");

    // A context file larger than the disk.
    let copy = env.dockerfile("copy", "FROM busybox:local\nCOPY big /big\n");
    write_filler(&copy.join("big"), 60);
    fails_for_space(&env, &["build", "--progress", "plain", "copy"], "COPY big", "copy");

    // A load larger than the disk.
    let archive = env.path("big.tar");
    let layer = RawTar::new().file("big", &vec![1u8; 50 << 20]).finish();
    fs::write(&archive, docker_archive("big:1", &[layer])).unwrap();
    fails_for_space(&env, &["load", "-i", archive.to_str().unwrap()], "", "load");

    // A small build fails while a file fills the disk, and works once it
    // is deleted.
    env.dockerfile("small", "FROM busybox:local\nRUN dd if=/dev/zero of=/small bs=1M count=4\n");
    let filler = disk.path().join("filler");
    let free_mb = sh(&format!("df -m --output=avail {} | tail -1", disk.path().display()))
        .trim()
        .parse::<usize>()
        .unwrap();
    write_filler(&filler, free_mb.saturating_sub(1));
    fails_for_space(&env, &["build", "--progress", "plain", "small"], "RUN dd", "filled-by-another-file");
    fs::remove_file(&filler).unwrap();
    env.rbuild(&["build", "--progress", "plain", "small"]).ok();

    // With a larger disk everything that failed works (the store then
    // holds about 200 MB of layers, and a load needs room for its archive's
    // layer while it unpacks it).
    disk.resize(600);
    for ctx in ["run", "commit", "copy"] {
        env.rbuild(&["build", "--progress", "plain", ctx]).ok();
    }
    env.rbuild(&["save", "-o", saved.to_str().unwrap(), "commit:1"]).ok();
    env.rbuild(&["load", "-i", archive.to_str().unwrap()]).ok();
    assert_store_consistent(&env, "recovery");
}
