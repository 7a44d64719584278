//! Multi-platform builds for real: arm64 steps run under QEMU (Debian's
//! qemu-user-static, registered in binfmt_misc with the F flag), the base
//! is a two-platform index on a loopback registry (amd64 busybox pushed by
//! rbuild, arm64 busybox from Debian's busybox-static:arm64 made with umoci
//! and pushed by skopeo), and the result is checked with skopeo (the raw
//! index), umoci (each platform unpacked) and Docker (`uname -m` on arm64).

use crate::harness::*;
use crate::registry::rb;

/// The raw manifest `reference` has in the registry, with its digest, size
/// and media type.
fn manifest_entry(env: &Env, reference: &str, arch: &str) -> serde_json::Value {
    let path = env.path(&format!("manifest-{arch}.json"));
    sh(&format!("skopeo inspect --raw --tls-verify=false docker://{reference} > {}", path.display()));
    let bytes = std::fs::read(&path).unwrap();
    // An OCI manifest may leave its media type out.
    let media_type = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    let digest = sh(&format!("sha256sum {}", path.display())).split_whitespace().next().unwrap().to_string();
    serde_json::json!({
        "mediaType": media_type, "digest": format!("sha256:{digest}"), "size": bytes.len(),
        "platform": {"architecture": arch, "os": "linux"}
    })
}

/// Pushes `bb:amd64` (the test busybox), `bb:arm64` (busybox-static:arm64)
/// and the index `bb:multi` naming both; returns `bb:multi`.
fn two_platform_base(env: &Env, registry: &TestRegistry) -> String {
    let amd64 = registry.at("bb:amd64");
    rb(env, &["tag", "busybox:local", &amd64]).ok();
    rb(env, &["push", &amd64]).ok();
    let arm64_rootfs = base("busybox-arm64-rootfs.tar").unwrap();
    let layout = env.path("arm64-layout");
    let bundle = env.path("arm64-bundle");
    sh(&format!(
        "umoci init --layout {l} && umoci new --image {l}:arm64 && umoci unpack --image {l}:arm64 {b} >/dev/null \
         && tar -xf {r} -C {b}/rootfs && umoci repack --image {l}:arm64 {b} \
         && umoci config --image {l}:arm64 --architecture arm64 --os linux --config.cmd sh",
        l = layout.display(),
        b = bundle.display(),
        r = arm64_rootfs.display()
    ));
    let arm64 = registry.at("bb:arm64");
    sh(&format!("skopeo copy -q --dest-tls-verify=false oci:{}:arm64 docker://{arm64}", layout.display()));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_entry(env, &amd64, "amd64"), manifest_entry(env, &arm64, "arm64")],
    });
    let path = env.path("bb-index.json");
    std::fs::write(&path, index.to_string()).unwrap();
    sh(&format!(
        "curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary @{} http://{}/v2/bb/manifests/multi",
        path.display(),
        registry.addr
    ));
    registry.at("bb:multi")
}

/// The cross-compilation pattern: a stage on the build platform makes a
/// file for the target, a COPY-only scratch stage is shared, and the
/// target stage runs on the target platform.
fn app_dockerfile(base: &str) -> String {
    format!(
        "FROM --platform=$BUILDPLATFORM {base} AS build\nARG TARGETARCH\nRUN echo \"built on $(uname -m) for $TARGETARCH\" > /out\n\
         FROM scratch AS assets\nCOPY assets/ /assets/\n\
         FROM {base}\nCOPY --link --from=build /out /out\nCOPY --link --from=assets /assets /assets\nRUN uname -m > /arch\nCMD [\"uname\", \"-m\"]\n"
    )
}

/// The image of `reference` for `arch`, copied from the registry with
/// skopeo and unpacked with umoci; returns the root filesystem.
fn unpack_platform(env: &Env, reference: &str, arch: &str) -> std::path::PathBuf {
    let layout = env.path(&format!("pulled-{arch}"));
    let bundle = env.path(&format!("bundle-{arch}"));
    sh(&format!(
        "skopeo copy -q --src-tls-verify=false --override-arch {arch} docker://{reference} oci:{}:{arch}",
        layout.display()
    ));
    sh(&format!("umoci unpack --image {}:{arch} {} >/dev/null", layout.display(), bundle.display()));
    bundle.join("rootfs")
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_string()
}

#[test]
fn amd64_and_arm64_are_built_pushed_as_an_index_and_run_on_their_platforms() {
    require!(
        root(),
        busybox_static(),
        registry(),
        tool("skopeo"),
        tool("umoci"),
        tool("curl"),
        docker(),
        arm64_emulation(),
        base("busybox-arm64-rootfs.tar"),
    );
    let registry = TestRegistry::start();
    let env = Env::with_busybox();
    let base_list = two_platform_base(&env, &registry);
    env.context("app", &[("Dockerfile", &app_dockerfile(&base_list)), ("assets/a.txt", "shared\n")]);
    let image = registry.at("rbuild-it/multi:v1");
    let first =
        rb(&env, &["build", "--platform", "linux/amd64,linux/arm64", "-t", &image, "--push", "app"]).ok();

    // The COPY-only scratch stage has the same key on both platforms: it
    // ran once, and the other platform found it in the cache.
    let assets: Vec<&str> = first.stderr.lines().filter(|l| l.contains("assets 2/2] COPY assets/")).collect();
    assert_eq!(
        assets.iter().filter(|l| l.contains("CACHED")).count(),
        1,
        "one platform's COPY is served by the other's: {assets:#?}\n{}",
        first.stderr
    );

    let raw = sh(&format!("skopeo inspect --raw --tls-verify=false docker://{image}"));
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{raw}");
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{raw}");

    for (arch, machine) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        let rootfs = unpack_platform(&env, &image, arch);
        assert_eq!(read(&rootfs.join("arch")), machine, "RUN ran on {arch}");
        assert_eq!(
            read(&rootfs.join("out")),
            format!("built on x86_64 for {arch}"),
            "the build stage ran natively"
        );
        assert_eq!(read(&rootfs.join("assets/a.txt")), "shared");
        let config = sh(&format!(
            "skopeo inspect --config --tls-verify=false --override-arch {arch} docker://{image}"
        ));
        let config: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["architecture"], arch);
    }

    let tag = DockerTag::new("multi");
    // Docker holds the pushed name too (pulled, then loaded): gone at the end.
    let _pulled = DockerTag(image.clone());
    sh(&format!("docker pull -q --platform linux/arm64 {image} >/dev/null && docker tag {image} {}", tag.0));
    let ran = sh(&format!("docker run --rm --platform linux/arm64 {}", tag.0));
    assert_eq!(ran.trim(), "aarch64");

    let images = rb(&env, &["images", &registry.at("rbuild-it/multi")]).ok();
    let rows: Vec<&str> = images.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "a row per platform:\n{}", images.stdout);
    let header: Vec<&str> = images.stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[..3], ["REPOSITORY", "TAG", "PLATFORM"], "{}", images.stdout);
    assert!(rows.iter().any(|r| r.contains(" v1 ") && r.contains("linux/amd64")), "{}", images.stdout);
    assert!(rows.iter().any(|r| r.contains(" v1 ") && r.contains("linux/arm64")), "{}", images.stdout);
    let inspected = rb(&env, &["inspect", "-f", "{{.Architecture}}", &image]).ok();
    assert_eq!(inspected.stdout.lines().collect::<Vec<_>>(), ["amd64", "arm64"]);
    let archive = env.path("arm64.tar");
    let refused = rb(&env, &["save", "-o", archive.to_str().unwrap(), &image]).failed();
    assert!(
        refused.stderr.contains("multi-platform image (linux/amd64, linux/arm64)")
            && refused.stderr.contains("--platform"),
        "{}",
        refused.stderr
    );
    assert!(!archive.exists());
    rb(&env, &["save", "--platform", "linux/arm64", "-o", archive.to_str().unwrap(), &image]).ok();
    let loaded = sh(&format!(
        "docker load -i {} >/dev/null && docker image inspect -f '{{{{.Architecture}}}}' {image}",
        archive.display()
    ));
    assert_eq!(loaded.trim(), "arm64", "the saved image is the arm64 one");

    let (local, rootfs_tar, oci) = (env.path("out"), env.path("rootfs.tar"), env.path("app.oci.tar"));
    let cache = env.path("cache");
    let again = rb(
        &env,
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &image,
            "-o",
            &format!("type=local,dest={}", local.display()),
            "-o",
            &format!("type=tar,dest={}", rootfs_tar.display()),
            "-o",
            &format!("type=oci,dest={}", oci.display()),
            "--cache-to",
            &format!("type=local,dest={},mode=max", cache.display()),
            "app",
        ],
    )
    .ok();
    assert!(again.run_lines().is_empty(), "an unchanged rebuild runs nothing:\n{}", again.stderr);
    assert!(again.stderr.contains("0 steps run"), "{}", again.stderr);

    // One directory per platform, as BuildKit writes them.
    assert_eq!(read(&local.join("linux_amd64/arch")), "x86_64");
    assert_eq!(read(&local.join("linux_arm64/arch")), "aarch64");
    let listed = sh(&format!("tar -tf {}", rootfs_tar.display()));
    assert!(
        listed.lines().any(|l| l == "linux_arm64/arch") && listed.lines().any(|l| l == "linux_amd64/arch"),
        "{listed}"
    );
    assert_eq!(sh(&format!("tar -xOf {} linux_arm64/arch", rootfs_tar.display())).trim(), "aarch64");
    // The OCI archive names an image index holding both platforms.
    let top: serde_json::Value =
        serde_json::from_str(&sh(&format!("tar -xOf {} index.json", oci.display()))).unwrap();
    let nested = &top["manifests"][0];
    assert_eq!(nested["mediaType"], "application/vnd.oci.image.index.v1+json", "{top}");
    assert_eq!(nested["annotations"]["org.opencontainers.image.ref.name"], image.as_str());
    let blob = nested["digest"].as_str().unwrap().replace("sha256:", "blobs/sha256/");
    let index: serde_json::Value =
        serde_json::from_str(&sh(&format!("tar -xOf {} {blob}", oci.display()))).unwrap();
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"], "{index}");

    let puller = Env::new();
    rb(&puller, &["pull", "--platform", "linux/arm64", &image]).ok();
    let pulled = rb(&puller, &["inspect", "-f", "{{.Architecture}}", &image]).ok();
    assert_eq!(pulled.stdout.trim(), "arm64", "pull --platform takes that platform's entry");

    // The exported cache serves every platform to a fresh store.
    let fresh = Env::new();
    fresh.context("app", &[("Dockerfile", &app_dockerfile(&base_list)), ("assets/a.txt", "shared\n")]);
    let from_cache = rb(
        &fresh,
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--cache-from",
            &format!("type=local,src={}", cache.display()),
            "app",
        ],
    )
    .ok();
    assert!(
        from_cache.run_lines().is_empty(),
        "every platform's steps come from the cache:\n{}",
        from_cache.stderr
    );
}

#[test]
fn bad_platform_input_is_a_clear_error_and_stores_and_pushes_nothing() {
    require!(
        root(),
        busybox_static(),
        registry(),
        tool("skopeo"),
        tool("umoci"),
        tool("curl"),
        base("busybox-arm64-rootfs.tar")
    );
    let registry = TestRegistry::start();
    let env = Env::with_busybox();
    let base_list = two_platform_base(&env, &registry);
    env.context("app", &[("Dockerfile", &format!("FROM {base_list}\nRUN uname -m > /arch\n"))]);
    let target = registry.at("rbuild-it/bad:v1");
    let before = env.store_snapshot();
    let nothing_changed = |what: &str| {
        assert_eq!(env.store_snapshot(), before, "{what}: nothing is stored");
        let listed = std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{target}")])
            .output()
            .unwrap();
        assert!(!listed.status.success(), "{what}: nothing is pushed");
    };

    let unknown =
        rb(&env, &["build", "--platform", "linux/amd64,linux/sparc", "-t", &target, "--push", "app"])
            .failed();
    assert!(unknown.stderr.contains("invalid platform \"linux/sparc\""), "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("unknown architecture") && unknown.stderr.contains("arm64"),
        "{}",
        unknown.stderr
    );
    nothing_changed("unknown platform");

    let dest = env.path("app.tar");
    let docker = rb(
        &env,
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            &format!("type=docker,dest={}", dest.display()),
            "app",
        ],
    )
    .failed();
    assert!(docker.stderr.contains("-o type=docker holds one image"), "{}", docker.stderr);
    assert!(
        docker.stderr.contains("--platform linux/amd64") && docker.stderr.contains("type=oci"),
        "{}",
        docker.stderr
    );
    assert!(!dest.exists());
    nothing_changed("a list with type=docker");

    // Annotations for a part this build would not write are refused.
    let multi = ["build", "--platform", "linux/amd64,linux/arm64", "-t", &target];
    let nested =
        rb(&env, &[&multi[..], &["--push", "--annotation", "index-descriptor:k=v", "app"]].concat()).failed();
    assert!(
        nested.stderr.contains("index-descriptor") && nested.stderr.contains("-o type=oci,dest=FILE"),
        "{}",
        nested.stderr
    );
    nothing_changed("an index descriptor without an OCI archive");
    let index = rb(&env, &[&multi[..], &["--annotation", "index:k=v", "app"]].concat()).failed();
    assert!(
        index.stderr.contains("need an image index") && index.stderr.contains("push several platforms"),
        "{}",
        index.stderr
    );
    nothing_changed("an index annotation without a push or an OCI archive");

    // The platform the base lacks comes first: a base pulled for an earlier
    // platform would stay in the store, as a `docker pull` would.
    let lacking =
        rb(&env, &["build", "--platform", "linux/ppc64le,linux/amd64", "-t", &target, "--push", "app"])
            .failed();
    assert!(
        lacking.stderr.contains("has no image for linux/ppc64le; it has: linux/amd64, linux/arm64"),
        "{}",
        lacking.stderr
    );
    nothing_changed("a base without the platform");

    // An architecture with no binfmt_misc entry on this machine: a build
    // whose RUN needs it fails before anything runs.
    let unregistered =
        [("s390x", "s390x"), ("riscv64", "riscv64"), ("ppc64le", "ppc64le"), ("mips64le", "mips64el")]
            .into_iter()
            .find(|(_, qemu)| {
                !std::path::Path::new(&format!("/proc/sys/fs/binfmt_misc/qemu-{qemu}")).exists()
            });
    let Some((arch, qemu)) = unregistered else {
        rbuild_test_support::skip(rbuild_test_support::Missing::new(
            "every architecture this test could use has an emulator registered",
        ));
        return;
    };
    env.context("foreign", &[("Dockerfile", "FROM scratch\nCOPY Dockerfile /\nRUN true\n")]);
    let platform = format!("linux/{arch}");
    let missing = rb(
        &env,
        &["build", "--platform", &format!("linux/amd64,{platform}"), "-t", &target, "--push", "foreign"],
    )
    .failed();
    assert!(missing.stderr.contains(&format!("has RUN steps for {platform}")), "{}", missing.stderr);
    assert!(
        missing.stderr.contains("apt-get install qemu-user-static")
            && missing.stderr.contains(&format!("update-binfmts --enable qemu-{qemu}")),
        "{}",
        missing.stderr
    );
    assert!(missing.run_lines().is_empty(), "nothing ran:\n{}", missing.stderr);
    nothing_changed("a missing emulator");
}

/// `--annotation` in a multi-platform build, as buildx places them: the
/// manifest ones (one only for arm64) in each platform's manifest, `index`
/// on the pushed index and the OCI archive's nested index,
/// `manifest-descriptor[linux/amd64]` on that platform's entry only, and
/// `index-descriptor` on `index.json`'s entry for the nested index. All
/// read back with skopeo and tar. COPY-only, so no emulator is needed.
#[test]
fn annotations_reach_each_platform_manifest_the_pushed_index_and_the_oci_index() {
    require!(
        root(),
        busybox_static(),
        registry(),
        tool("skopeo"),
        tool("umoci"),
        tool("curl"),
        base("busybox-arm64-rootfs.tar"),
    );
    let registry = TestRegistry::start();
    let env = Env::with_busybox();
    let base_list = two_platform_base(&env, &registry);
    env.context(
        "app",
        &[("Dockerfile", &format!("FROM {base_list}\nCOPY a.txt /a.txt\n")), ("a.txt", "a\n")],
    );
    let image = registry.at("rbuild-it/annotated:v1");
    let oci = env.path("annotated.oci.tar");
    #[rustfmt::skip]
    rb(&env, &[
        "build", "--platform", "linux/amd64,linux/arm64", "-t", &image, "--push",
        "-o", &format!("type=oci,dest={}", oci.display()),
        "--annotation", "org.opencontainers.image.title=app",
        "--annotation", "manifest[linux/arm64]:com.example.arch=arm64-only",
        "--annotation", "index:org.opencontainers.image.vendor=Acme",
        "--annotation", "manifest-descriptor[linux/amd64]:com.example.doc=amd64-doc",
        "--annotation", "index-descriptor:com.example.nested=yes",
        "app",
    ])
    .ok();

    let raw = sh(&format!("skopeo inspect --raw --tls-verify=false docker://{image}"));
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["annotations"], serde_json::json!({"org.opencontainers.image.vendor": "Acme"}), "{raw}");
    assert_eq!(index["manifests"][0]["platform"]["architecture"], "amd64", "{raw}");
    assert_eq!(
        index["manifests"][0]["annotations"],
        serde_json::json!({"com.example.doc": "amd64-doc"}),
        "{raw}"
    );
    assert!(index["manifests"][1].get("annotations").is_none(), "arm64's entry has none: {raw}");
    let repository = image.rsplit_once(':').unwrap().0;
    let manifest_of = |entry: &serde_json::Value| -> serde_json::Value {
        let digest = entry["digest"].as_str().unwrap();
        let raw = sh(&format!("skopeo inspect --raw --tls-verify=false docker://{repository}@{digest}"));
        serde_json::from_str(&raw).unwrap()
    };
    assert_eq!(
        manifest_of(&index["manifests"][1])["annotations"],
        serde_json::json!({"org.opencontainers.image.title": "app", "com.example.arch": "arm64-only"}),
    );
    assert_eq!(
        manifest_of(&index["manifests"][0])["annotations"],
        serde_json::json!({"org.opencontainers.image.title": "app"}),
        "the arm64-only annotation stays off amd64's manifest"
    );

    let top: serde_json::Value =
        serde_json::from_str(&sh(&format!("tar -xOf {} index.json", oci.display()))).unwrap();
    let nested = &top["manifests"][0];
    assert_eq!(nested["annotations"]["com.example.nested"], "yes", "{top}");
    assert_eq!(nested["annotations"]["org.opencontainers.image.ref.name"], image.as_str(), "{top}");
    assert!(top.get("annotations").is_none(), "index annotations go on the image's index: {top}");
    let blob = nested["digest"].as_str().unwrap().replace("sha256:", "blobs/sha256/");
    let archived: serde_json::Value =
        serde_json::from_str(&sh(&format!("tar -xOf {} {blob}", oci.display()))).unwrap();
    assert_eq!(archived["annotations"], index["annotations"], "{archived}");
    assert_eq!(archived["manifests"][0]["annotations"], index["manifests"][0]["annotations"], "{archived}");
    assert!(archived["manifests"][1].get("annotations").is_none(), "{archived}");
    let arm64_blob = archived["manifests"][1]["digest"].as_str().unwrap().replace("sha256:", "blobs/sha256/");
    let arm64: serde_json::Value =
        serde_json::from_str(&sh(&format!("tar -xOf {} {arm64_blob}", oci.display()))).unwrap();
    assert_eq!(arm64["annotations"]["com.example.arch"], "arm64-only", "{arm64}");

    // The manifest annotations live in the store's image records: a later
    // push of the (amd64) image writes them again.
    let again = registry.at("rbuild-it/annotated:again");
    rb(&env, &["tag", &image, &again]).ok();
    rb(&env, &["push", &again]).ok();
    let raw = sh(&format!("skopeo inspect --raw --tls-verify=false docker://{again}"));
    let pushed: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(pushed["annotations"], serde_json::json!({"org.opencontainers.image.title": "app"}), "{raw}");
}
