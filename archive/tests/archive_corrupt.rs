//! Broken archives must fail with a message naming the fault and leave the
//! store as it was: no new image record and no new tag (layers committed
//! while streaming may stay; they are complete and valid).

mod support;

use rbuild_archive::ArchiveError;
use rbuild_cache::Store;
use rbuild_oci::digest::Digest;
use support::*;

/// `ours`: a docker-archive (our layout) of "victim", an image on
/// busybox's layer that the target store does not have. The target store
/// already holds busybox itself, so its layer is there (a load takes the
/// shortcut of only hashing it) and so is a tag a failed load must not move.
struct Fixture {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    ours: Vec<u8>,
    target: Store,
    id: Digest,
    layer_blob: String,
}

fn fixture() -> Need<Fixture> {
    base(BUSYBOX_DOCKER)?;
    let (source_dir, source) = fresh_store();
    let busybox = load_busybox(&source);
    let (_, mut config) = source.image_config(&busybox).unwrap();
    config.config.cmd = Some(vec!["victim".into()]);
    let id = source.put_image(&config.to_json(), None).unwrap();
    let ours = export_docker(&source, id, &["victim:v1"]);
    let layer_blob = format!("blobs/sha256/{}", config.rootfs.diff_ids[0].hex());
    let (target_dir, target) = fresh_store();
    load_busybox(&target);
    Ok(Fixture { _dirs: (source_dir, target_dir), ours, target, id, layer_blob })
}

/// Loads `bytes` into the fixture's target store and checks the visible
/// state did not move.
fn load_fails(fx: &Fixture, bytes: Vec<u8>) -> ArchiveError {
    let before = visible_state(&fx.target);
    let err = load_bytes(&fx.target, bytes).expect_err("load should fail");
    assert_eq!(visible_state(&fx.target), before, "store changed after failed load: {err}");
    assert!(fx.target.image_record(&fx.id).unwrap().is_none());
    eprintln!("error, as expected: {err}");
    err
}

#[test]
fn empty_input_is_refused() {
    let fx = require!(fixture());
    let err = load_fails(&fx, Vec::new());
    assert!(matches!(err, ArchiveError::Empty), "{err:?}");
}

#[test]
fn input_that_is_not_a_tar_is_refused() {
    let fx = require!(fixture());
    let err = load_fails(&fx, b"this is not an archive at all, just words".repeat(40));
    assert!(matches!(err, ArchiveError::NotAnArchive(_)), "{err:?}");
}

#[test]
fn truncated_archive_is_refused() {
    let fx = require!(fixture());
    for cut in [fx.ours.len() / 2, fx.ours.len() - 2048, 700] {
        let err = load_fails(&fx, fx.ours[..cut].to_vec());
        assert!(
            matches!(err, ArchiveError::Truncated { .. } | ArchiveError::NoManifest),
            "cut at {cut}: {err:?}"
        );
    }
    // Cut inside the layer: always reported as truncation.
    let err = load_fails(&fx, fx.ours[..fx.ours.len() / 2].to_vec());
    assert!(err.to_string().starts_with("truncated archive"), "{err}");
    // Same through gzip.
    let gz = gzip(&fx.ours);
    let err = load_fails(&fx, gz[..gz.len() / 2].to_vec());
    assert!(matches!(err, ArchiveError::Truncated { .. }), "{err:?}");
}

#[test]
fn layer_whose_bytes_do_not_match_its_diff_id_is_refused() {
    let fx = require!(fixture());
    let other_layer = tiny_layer("evil.txt", b"not busybox");

    // Old layout (`<id>/layer.tar`): nothing but the config names the layer.
    let original = std::fs::read(bases(BUSYBOX_DOCKER)).unwrap();
    let swapped = rewrite(&original, |name, data| {
        Some((name.to_string(), if name.ends_with("/layer.tar") { other_layer.clone() } else { data }))
    });
    let err = load_fails(&fx, swapped);
    assert!(matches!(err, ArchiveError::LayerDiffIdMismatch { index: 1, .. }), "{err:?}");
    assert!(err.to_string().starts_with("layer 1 of busybox:local: content has diffID"), "{err}");

    // Our layout (`blobs/sha256/<diffID>`): the blob's own name catches it,
    // whether or not the store already has the layer it names.
    let swapped = rewrite(&fx.ours, |name, data| {
        Some((name.to_string(), if name == fx.layer_blob { other_layer.clone() } else { data }))
    });
    let err = load_fails(&fx, swapped.clone());
    assert!(matches!(err, ArchiveError::BlobDigestMismatch { .. }), "{err:?}");
    let (_d, empty) = fresh_store();
    let err = load_bytes(&empty, swapped).expect_err("load should fail");
    assert!(matches!(err, ArchiveError::BlobDigestMismatch { .. }), "{err:?}");
    assert!(empty.list_images().unwrap().is_empty());
}

#[test]
fn layer_that_is_not_a_tar_is_refused() {
    let fx = require!(fixture());
    let original = std::fs::read(bases(BUSYBOX_DOCKER)).unwrap();
    // gzip magic, then garbage: taken for a layer, fails to unpack.
    let mut garbage = vec![0x1f, 0x8b];
    garbage.extend(b"definitely not deflate data".repeat(50));
    let broken = rewrite(&original, |name, data| {
        Some((name.to_string(), if name.ends_with("/layer.tar") { garbage.clone() } else { data }))
    });
    let err = load_fails(&fx, broken);
    assert!(matches!(err, ArchiveError::BadLayer { index: 1, .. }), "{err:?}");
}

#[test]
fn config_whose_digest_does_not_match_is_refused() {
    let fx = require!(fixture());
    let config_blob = format!("blobs/sha256/{}", fx.id.hex());
    assert!(entries(&fx.ours).iter().any(|(n, _, _)| *n == config_blob));
    let tampered = rewrite(&fx.ours, |name, mut data| {
        if name == config_blob {
            data.push(b' ');
        }
        Some((name.to_string(), data))
    });
    let err = load_fails(&fx, tampered);
    assert!(matches!(err, ArchiveError::ConfigDigestMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("victim:v1"), "{err}");
}

#[test]
fn oci_manifest_blob_that_does_not_match_is_refused() {
    let fx = require!(fixture());
    let (_d, source) = fresh_store();
    load_bytes(&source, fx.ours.clone()).unwrap();
    let oci = export_oci(&source, fx.id, &["victim:v1"], &Default::default());
    let all = entries(&oci);
    let index: serde_json::Value = serde_json::from_slice(entry(&all, "index.json")).unwrap();
    let manifest_blob = format!(
        "blobs/sha256/{}",
        index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:")
    );
    let tampered = rewrite(&oci, |name, mut data| {
        if name == manifest_blob {
            data.push(b'\n');
        }
        Some((name.to_string(), data))
    });
    let err = load_fails(&fx, tampered);
    assert!(matches!(err, ArchiveError::BlobDigestMismatch { .. }), "{err:?}");
    // And untampered, it loads.
    load_bytes(&fx.target, oci).unwrap();
}

#[test]
fn entry_escaping_the_archive_is_refused() {
    let fx = require!(fixture());
    let mut evil = rewrite(&fx.ours, |name, data| Some((name.to_string(), data)));
    evil.truncate(evil.len() - 1024);
    evil.extend(RawTar::new().file("../evil", b"gotcha").finish());
    let err = load_fails(&fx, evil);
    assert!(matches!(err, ArchiveError::UnsafeName { ref name, .. } if name == "../evil"), "{err:?}");

    let absolute = RawTar::new().file("/etc/evil", b"x").finish();
    let err = load_fails(&fx, absolute);
    assert!(matches!(err, ArchiveError::UnsafeName { .. }), "{err:?}");

    let escaping_link = RawTar::new().symlink("layer.tar", "../../etc/shadow").finish();
    let err = load_fails(&fx, escaping_link);
    assert!(matches!(err, ArchiveError::UnsafeName { .. }), "{err:?}");
}

#[test]
fn archive_without_manifest_or_index_is_refused() {
    let fx = require!(fixture());
    let stripped = rewrite(&fx.ours, |name, data| {
        (name != "manifest.json" && name != "index.json").then(|| (name.to_string(), data))
    });
    let err = load_fails(&fx, stripped);
    assert!(matches!(err, ArchiveError::NoManifest), "{err:?}");
    assert_eq!(err.to_string(), "archive has no manifest.json or index.json");
}

#[test]
fn missing_layer_file_is_refused() {
    let fx = require!(fixture());
    let stripped = rewrite(&fx.ours, |name, data| (name != fx.layer_blob).then(|| (name.to_string(), data)));
    let err = load_fails(&fx, stripped);
    assert!(matches!(err, ArchiveError::MissingFile { .. }), "{err:?}");
}

#[test]
fn invalid_repo_tag_is_refused() {
    let fx = require!(fixture());
    let bad = rewrite(&fx.ours, |name, data| {
        let data = if name == "manifest.json" {
            String::from_utf8(data).unwrap().replace("victim:v1", "Victim:v1").into_bytes()
        } else {
            data
        };
        Some((name.to_string(), data))
    });
    let err = load_fails(&fx, bad);
    assert!(matches!(err, ArchiveError::InvalidTag { .. }), "{err:?}");
}
