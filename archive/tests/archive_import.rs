//! `docker import`: a rootfs tarball becomes a one-layer image whose diffID
//! is the sha256 of the uncompressed tarball.

mod support;

use std::process::Command;

use rbuild_archive::ImportOptions;
use rbuild_oci::config::RunConfig;
use rbuild_oci::digest::Digest;
use rbuild_oci::timefmt::Timestamp;
use support::*;

#[test]
fn import_keeps_the_tarball_as_the_single_layer() {
    require!(base(BUSYBOX_ROOTFS));
    let tarball = std::fs::read(bases(BUSYBOX_ROOTFS)).unwrap();
    let (_d, store) = fresh_store();
    let opts = ImportOptions {
        changes: RunConfig { cmd: Some(vec!["/bin/sh".into()]), ..Default::default() },
        message: Some("from a test".into()),
        created: Timestamp::from_secs(1_700_000_000),
    };
    let id = rbuild_archive::import_rootfs(&store, &mut &tarball[..], &opts).unwrap();

    let (config_json, config) = store.image_config(&id).unwrap();
    assert_eq!(Digest::of(&config_json), id);
    assert_eq!(config.rootfs.diff_ids, vec![Digest::of(&tarball)]);
    assert_eq!(config.config.cmd, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(config.created.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(config.history.len(), 1);
    assert_eq!(config.history[0].comment.as_deref(), Some("from a test"));
    assert_eq!(config.os, "linux");
    let layer = store.require_layer(&config.rootfs.diff_ids[0]).unwrap();
    assert!(std::fs::read(layer.tar_path()).unwrap() == tarball);
    assert!(layer.fs_path().join("bin/busybox").is_file());

    // Same tarball gzip-compressed: same layer; same options: same image.
    let gz = gzip(&tarball);
    assert_eq!(rbuild_archive::import_rootfs(&store, &mut &gz[..], &opts).unwrap(), id);
    // No message: Docker's default comment.
    let plain = ImportOptions { created: Timestamp::from_secs(0), ..Default::default() };
    let other = rbuild_archive::import_rootfs(&store, &mut &tarball[..], &plain).unwrap();
    let (_, config) = store.image_config(&other).unwrap();
    assert_eq!(config.history[0].comment.as_deref(), Some("Imported from -"));
}

#[test]
fn imported_image_runs_in_docker() {
    require!(base(BUSYBOX_ROOTFS));
    require!(docker());
    let (dir, store) = fresh_store();
    let tag = unique_tag("rbuild-import-test");
    let opts = ImportOptions {
        changes: RunConfig {
            cmd: Some(vec!["/bin/busybox".into(), "echo".into(), "imported".into()]),
            ..Default::default()
        },
        ..Default::default()
    };
    let tarball = std::fs::File::open(bases(BUSYBOX_ROOTFS)).unwrap();
    let id = rbuild_archive::import_rootfs(&store, &mut std::io::BufReader::new(tarball), &opts).unwrap();
    let path = write_temp(dir.path(), "imported.tar", &export_docker(&store, id, &[&tag]));
    let (ok, stdout, stderr) = run(Command::new("docker").arg("load").arg("-i").arg(&path));
    assert!(ok, "docker load: {stdout}{stderr}");
    let (ok, out, err) = run(Command::new("docker").args(["run", "--rm", &tag]));
    let _ = run(Command::new("docker").args(["rmi", &tag]));
    assert!(ok, "docker run: {err}");
    assert_eq!(out.trim(), "imported");
}
