//! Loading archives other tools made: `docker save` output, a skopeo OCI
//! archive, the same compressed, from a pipe, and as an unpacked layout
//! directory; and an old-style archive whose layer is reached by symlink.

mod support;

use std::process::{Command, Stdio};

use rbuild_archive::LoadInput;
use rbuild_oci::digest::Digest;
use support::*;

const BUSYBOX_TAG: &str = "docker.io/library/busybox:local";

/// The config digest `manifest.json` (docker-archive) points at.
fn docker_config_digest(archive_bytes: &[u8]) -> Digest {
    let all = entries(archive_bytes);
    let manifest: serde_json::Value = serde_json::from_slice(entry(&all, "manifest.json")).unwrap();
    let config_name = manifest[0]["Config"].as_str().unwrap();
    Digest::of(entry(&all, config_name))
}

#[test]
fn docker_save_output_loads_with_image_id_equal_to_config_digest() {
    require!(base(BUSYBOX_DOCKER));
    let (_dir, store) = fresh_store();
    let loaded = load_file(&store, bases(BUSYBOX_DOCKER)).unwrap();
    assert_eq!(loaded.len(), 1);
    let expected_id = docker_config_digest(&std::fs::read(bases(BUSYBOX_DOCKER)).unwrap());
    assert_eq!(loaded[0].id, expected_id);
    assert_eq!(loaded[0].tags, vec![BUSYBOX_TAG.to_string()]);
    assert!(loaded[0].replaced.is_empty());
    assert_eq!(store.resolve_image("busybox:local", Some(BUSYBOX_TAG)).unwrap(), expected_id);
    let (_, config) = store.image_config(&expected_id).unwrap();
    for diff_id in &config.rootfs.diff_ids {
        store.require_layer(diff_id).unwrap();
    }

    // Loading again changes nothing and reports no moved tag.
    let again = load_file(&store, bases(BUSYBOX_DOCKER)).unwrap();
    assert_eq!(again[0].id, expected_id);
    assert!(again[0].replaced.is_empty());
}

#[test]
fn skopeo_oci_archive_loads_with_image_id_equal_to_config_digest() {
    require!(base(BUSYBOX_OCI));
    let (_dir, store) = fresh_store();
    let loaded = load_file(&store, bases(BUSYBOX_OCI)).unwrap();
    assert_eq!(loaded.len(), 1);

    let all = entries(&std::fs::read(bases(BUSYBOX_OCI)).unwrap());
    let index: serde_json::Value = serde_json::from_slice(entry(&all, "index.json")).unwrap();
    let manifest_digest = Digest::parse(index["manifests"][0]["digest"].as_str().unwrap()).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(entry(&all, &format!("blobs/sha256/{}", manifest_digest.hex()))).unwrap();
    let config_digest = Digest::parse(manifest["config"]["digest"].as_str().unwrap()).unwrap();

    assert_eq!(loaded[0].id, config_digest);
    assert_eq!(loaded[0].tags, vec![BUSYBOX_TAG.to_string()]);
    assert_eq!(store.resolve_image("busybox:local", Some(BUSYBOX_TAG)).unwrap(), config_digest);
}

#[test]
fn gzip_and_zstd_compressed_archives_load() {
    require!(base(BUSYBOX_DOCKER));
    let plain = std::fs::read(bases(BUSYBOX_DOCKER)).unwrap();
    let expected_id = docker_config_digest(&plain);
    for (label, compressed) in [("gzip", gzip(&plain)), ("zstd", zstd(&plain))] {
        let (_dir, store) = fresh_store();
        let loaded = load_bytes(&store, compressed).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(loaded[0].id, expected_id, "{label}");
        assert_eq!(store.resolve_image("busybox:local", Some(BUSYBOX_TAG)).unwrap(), expected_id);
    }
}

#[test]
fn archive_loads_from_a_pipe() {
    require!(base(BUSYBOX_DOCKER));
    let mut cat = Command::new("cat").arg(bases(BUSYBOX_DOCKER)).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = cat.stdout.take().unwrap();
    let (_dir, store) = fresh_store();
    let loaded = rbuild_archive::load(&store, LoadInput::Reader(Box::new(stdout))).unwrap();
    assert!(cat.wait().unwrap().success());
    assert_eq!(loaded[0].id, docker_config_digest(&std::fs::read(bases(BUSYBOX_DOCKER)).unwrap()));
}

#[test]
fn oci_layout_directory_loads() {
    require!(base(BUSYBOX_OCI));
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    tar::Archive::new(std::fs::File::open(bases(BUSYBOX_OCI)).unwrap()).unpack(&layout).unwrap();
    let (_store_dir, store) = fresh_store();
    let from_dir = rbuild_archive::load(&store, LoadInput::Dir(layout)).unwrap();
    let (_other_dir, other) = fresh_store();
    let from_tar = load_file(&other, bases(BUSYBOX_OCI)).unwrap();
    assert_eq!(from_dir, from_tar);
}

#[test]
fn old_layout_with_symlinked_layer_loads() {
    require!(base(BUSYBOX_DOCKER));
    // Older `docker save` writes a layer once and symlinks other layer
    // directories to it: `<id>/layer.tar -> ../<other id>/layer.tar`.
    let original = std::fs::read(bases(BUSYBOX_DOCKER)).unwrap();
    let mut layer_name = String::new();
    let mut moved = rewrite(&original, |name, data| {
        if name.ends_with("/layer.tar") {
            layer_name = name.to_string();
            Some(("shared/layer.tar".to_string(), data))
        } else {
            Some((name.to_string(), data))
        }
    });
    assert!(!layer_name.is_empty());
    moved.truncate(moved.len() - 1024);
    let mut with_link = RawTar::new().symlink(&layer_name, "../shared/layer.tar").finish();
    with_link.truncate(with_link.len() - 1024);
    moved.extend_from_slice(&with_link);
    moved.extend_from_slice(&[0u8; 1024]);

    let (_dir, store) = fresh_store();
    let loaded = load_bytes(&store, moved).unwrap();
    assert_eq!(loaded[0].id, docker_config_digest(&original));
}

#[test]
fn two_images_in_one_archive_share_their_layer() {
    require!(base(BUSYBOX_DOCKER));
    let (_dir, store) = fresh_store();
    let busybox = load_busybox(&store);
    // A second image: same layer, different config.
    let (mut config_json, mut config) = store.image_config(&busybox).unwrap();
    config.config.cmd = Some(vec!["/bin/sh".into()]);
    config_json.clear();
    config_json.extend(config.to_json());
    let second = store.put_image(&config_json, None).unwrap();

    let images = [
        rbuild_archive::ExportImage { id: busybox, tags: vec!["first:v1".into()] },
        rbuild_archive::ExportImage { id: second, tags: vec!["second:v1".into(), "second:v2".into()] },
    ];
    let mut bytes = Vec::new();
    rbuild_archive::write_docker_archive(&store, &images, &mut bytes, &Default::default()).unwrap();
    let all = entries(&bytes);
    let layer_blob = format!("blobs/sha256/{}", config.rootfs.diff_ids[0].hex());
    assert_eq!(all.iter().filter(|(n, _, _)| *n == layer_blob).count(), 1, "layer written once");

    let (_dir2, fresh) = fresh_store();
    let loaded = load_bytes(&fresh, bytes).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].id, busybox);
    assert_eq!(loaded[1].id, second);
    assert_eq!(loaded[1].tags, vec!["docker.io/library/second:v1", "docker.io/library/second:v2"]);
}

#[test]
fn skopeo_docker_archive_loads() {
    require!(base(BUSYBOX_OCI));
    require!(tool("skopeo"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("skopeo-docker.tar");
    let (ok, _, stderr) = run(Command::new("skopeo").args([
        "copy",
        &format!("oci-archive:{}", bases(BUSYBOX_OCI).display()),
        &format!("docker-archive:{}:skopeo/busybox:v1", out.display()),
    ]));
    assert!(ok, "skopeo copy: {stderr}");
    let (_d, store) = fresh_store();
    let loaded = load_file(&store, out.to_str().unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].tags, vec!["docker.io/skopeo/busybox:v1".to_string()]);
    assert_eq!(loaded[0].id, docker_config_digest(&std::fs::read(&out).unwrap()));
}
