//! Archives we write: reproducible to the byte, loadable by us again, and
//! accepted by the real tools (docker load + run, skopeo inspect, umoci
//! unpack).

mod support;

use std::process::Command;

use rbuild_archive::{ExportImage, ExportOptions, LayerBlobCompression};
use rbuild_oci::digest::Digest;
use support::*;

#[test]
fn save_load_save_is_byte_identical() {
    require!(base(BUSYBOX_DOCKER));
    let (_d1, first) = fresh_store();
    let id = load_busybox(&first);
    // (label, docker-archive?, OCI layer compression)
    let formats = [
        ("docker", true, LayerBlobCompression::None),
        ("oci", false, LayerBlobCompression::None),
        ("oci+gzip", false, LayerBlobCompression::Gzip),
        ("oci+zstd", false, LayerBlobCompression::Zstd),
    ];
    let tags = ["app:v1", "app:latest"];
    for (label, docker, compression) in formats {
        let opts = ExportOptions { oci_layer_compression: compression, ..Default::default() };
        let save = |store: &rbuild_cache::Store, id: Digest| {
            if docker { export_docker(store, id, &tags) } else { export_oci(store, id, &tags, &opts) }
        };
        let once = save(&first, id);
        assert_eq!(save(&first, id), once, "{label}: two saves of one store differ");
        let (_d2, second) = fresh_store();
        let loaded = load_bytes(&second, once.clone()).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(loaded.len(), 1, "{label}");
        assert_eq!(loaded[0].id, id, "{label}");
        assert_eq!(
            loaded[0].tags,
            vec!["docker.io/library/app:v1", "docker.io/library/app:latest"],
            "{label}"
        );
        assert!(save(&second, id) == once, "{label}: save after load differs");
    }
}

#[test]
fn docker_archive_layout_and_json() {
    require!(base(BUSYBOX_DOCKER));
    let (_d, store) = fresh_store();
    let id = load_busybox(&store);
    let (_, config) = store.image_config(&id).unwrap();
    let diff_id = config.rootfs.diff_ids[0];
    let bytes = export_docker(&store, id, &["docker.io/library/app:v1"]);
    let all = entries(&bytes);
    let names: Vec<&str> = all.iter().map(|(n, _, _)| n.as_str()).collect();
    let manifest_digest = {
        let index: serde_json::Value = serde_json::from_slice(entry(&all, "index.json")).unwrap();
        assert_eq!(
            index["manifests"][0]["annotations"]["io.containerd.image.name"],
            "docker.io/library/app:v1"
        );
        assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "v1");
        index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string()
    };
    assert_eq!(
        names,
        [
            "index.json".to_string(),
            "manifest.json".into(),
            "oci-layout".into(),
            "repositories".into(),
            "blobs".into(),
            "blobs/sha256".into(),
            format!("blobs/sha256/{}", id.hex()),
            format!("blobs/sha256/{manifest_digest}"),
            format!("blobs/sha256/{}", diff_id.hex()),
        ]
    );
    assert_eq!(
        String::from_utf8(entry(&all, "manifest.json").to_vec()).unwrap(),
        format!(
            "[{{\"Config\":\"blobs/sha256/{}\",\"RepoTags\":[\"app:v1\"],\"Layers\":[\"blobs/sha256/{}\"]}}]\n",
            id.hex(),
            diff_id.hex()
        )
    );
    assert_eq!(
        String::from_utf8(entry(&all, "repositories").to_vec()).unwrap(),
        format!("{{\"app\":{{\"v1\":\"{}\"}}}}\n", diff_id.hex())
    );
    let layer = store.require_layer(&diff_id).unwrap();
    assert!(
        entry(&all, &format!("blobs/sha256/{}", diff_id.hex())) == std::fs::read(layer.tar_path()).unwrap()
    );

    // Every header: owner 0, mtime 0 by default, SOURCE_DATE_EPOCH when set.
    let dated = {
        let mut out = Vec::new();
        let opts = ExportOptions { source_date_epoch: Some(1_700_000_000), ..Default::default() };
        rbuild_archive::write_docker_archive(&store, &[ExportImage { id, tags: vec![] }], &mut out, &opts)
            .unwrap();
        out
    };
    for (archive_bytes, mtime) in [(&bytes, 0), (&dated, 1_700_000_000)] {
        let mut reader = tar::Archive::new(&archive_bytes[..]);
        for e in reader.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().mtime().unwrap(), mtime);
            assert_eq!(e.header().uid().unwrap(), 0);
        }
    }
    // Untagged: RepoTags null, no repositories file, index entry unnamed.
    let untagged = entries(&dated);
    assert!(String::from_utf8_lossy(entry(&untagged, "manifest.json")).contains("\"RepoTags\":null"));
    assert!(!untagged.iter().any(|(n, _, _)| n == "repositories"));
}

#[test]
fn docker_loads_and_runs_our_docker_archive() {
    require!(base(BUSYBOX_DOCKER));
    require!(docker());
    let (dir, store) = fresh_store();
    let busybox = load_busybox(&store);
    let tag = unique_tag("rbuild-archive-test");
    // Docker already has busybox's layer and would skip loading it; a second
    // layer of our own, unique to this run, makes docker read one from us.
    let layer = store.commit_tar(&mut &tiny_layer("hello.txt", tag.as_bytes())[..], None).unwrap();
    let (_, mut config) = store.image_config(&busybox).unwrap();
    config.rootfs.diff_ids.push(layer.meta.diff_id);
    config.history.push(Default::default());
    let id = store.put_image(&config.to_json(), Some(busybox)).unwrap();
    let path = write_temp(dir.path(), "docker.tar", &export_docker(&store, id, &[&tag]));

    let (ok, stdout, stderr) = run(Command::new("docker").arg("load").arg("-i").arg(&path));
    assert!(ok, "docker load failed: {stdout}{stderr}");
    assert!(stdout.contains(&format!("Loaded image: {tag}")), "{stdout}");
    let (ok_inspect, docker_id, _) =
        run(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &tag]));
    let (ok_run, out, err) =
        run(Command::new("docker").args(["run", "--rm", &tag, "/bin/busybox", "echo", "ok"]));
    let (ok_cat, hello, _) =
        run(Command::new("docker").args(["run", "--rm", &tag, "/bin/busybox", "cat", "/hello.txt"]));
    let _ = run(Command::new("docker").args(["rmi", &tag]));
    assert!(ok_inspect);
    assert_eq!(docker_id.trim(), id.to_string(), "docker gives the image another ID");
    assert!(ok_run, "docker run failed: {err}");
    assert_eq!(out.trim(), "ok");
    assert!(ok_cat);
    assert_eq!(hello, tag, "the layer docker loaded from us has other content");
}

#[test]
fn skopeo_inspects_our_archives() {
    require!(base(BUSYBOX_DOCKER));
    require!(tool("skopeo"));
    let (dir, store) = fresh_store();
    let id = load_busybox(&store);
    let (_, config) = store.image_config(&id).unwrap();
    let docker_path = write_temp(dir.path(), "docker.tar", &export_docker(&store, id, &["app:v1"]));
    let oci_path =
        write_temp(dir.path(), "oci.tar", &export_oci(&store, id, &["app:v1"], &Default::default()));
    let gzip_opts = ExportOptions { oci_layer_compression: LayerBlobCompression::Gzip, ..Default::default() };
    let gz_path = write_temp(dir.path(), "oci-gz.tar", &export_oci(&store, id, &["app:v1"], &gzip_opts));
    for source in [
        format!("docker-archive:{}", docker_path.display()),
        format!("oci-archive:{}", oci_path.display()),
        format!("oci-archive:{}:app:v1", oci_path.display()),
        format!("oci-archive:{}", gz_path.display()),
    ] {
        let (ok, stdout, stderr) = run(Command::new("skopeo").args(["inspect", &source]));
        assert!(ok, "skopeo inspect {source}: {stderr}");
        let info: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(info["Architecture"], config.architecture.as_str(), "{source}");
        assert_eq!(info["Layers"].as_array().unwrap().len(), 1, "{source}");
        let (ok, stdout, stderr) = run(Command::new("skopeo").args(["inspect", "--config", &source]));
        assert!(ok, "skopeo inspect --config {source}: {stderr}");
        let seen: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(seen["rootfs"]["diff_ids"][0], config.rootfs.diff_ids[0].to_string(), "{source}");
    }
    // The docker-archive is an OCI layout too, as Docker 25's is.
    let (ok, _, stderr) =
        run(Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", docker_path.display())]));
    assert!(ok, "docker-archive read as OCI: {stderr}");
}

#[test]
fn umoci_unpacks_our_oci_archive() {
    require!(base(BUSYBOX_DOCKER));
    require!(tool("umoci"));
    let (dir, store) = fresh_store();
    let id = load_busybox(&store);
    for (label, opts) in [
        ("plain", ExportOptions::default()),
        ("gzip", ExportOptions { oci_layer_compression: LayerBlobCompression::Gzip, ..Default::default() }),
    ] {
        let layout = dir.path().join(format!("layout-{label}"));
        let bundle = dir.path().join(format!("bundle-{label}"));
        let bytes = export_oci(&store, id, &["app:v1"], &opts);
        tar::Archive::new(&bytes[..]).unpack(&layout).unwrap();
        let image = format!("{}:app:v1", layout.display());
        let (ok, stdout, stderr) =
            run(Command::new("umoci").args(["unpack", "--image", &image]).arg(&bundle));
        assert!(ok, "umoci unpack ({label}): {stdout}{stderr}");
        assert!(bundle.join("rootfs/bin/busybox").is_file(), "{label}: no busybox in the bundle");
        assert!(bundle.join("config.json").is_file());
    }
}
