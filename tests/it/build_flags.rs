//! `rbuild build` flags that shape every RUN, seen from inside the steps:
//! `--add-host` (and `host-gateway`), `--ulimit`, `--shm-size`, `--network`
//! (with `--allow network.host`), `--no-cache-filter`; `--annotation`, seen
//! in the exported and pushed manifests; and a clear error for each
//! malformed value.

use std::fs;

use crate::harness::*;

#[test]
fn add_host_lines_reach_etc_hosts_and_host_gateway_is_the_hosts_address() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM busybox:local\nRUN cat /etc/hosts > /hosts\n");
    // host-gateway: the address the host has on its default route.
    let gateway = sh("ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p' || true");
    let gateway = gateway.trim();
    if gateway.is_empty() {
        let run = env.rbuild(&["build", "--add-host", "gw:host-gateway", "ctx"]).failed();
        assert!(run.stderr.contains("no default route"), "{}", run.stderr);
        return;
    }
    let (_, out) = build_local(
        &env,
        "ctx",
        &[
            "--add-host",
            "db.internal:10.1.2.3",
            "--add-host",
            "v6host=[fd00::7]",
            "--add-host",
            "gw:host-gateway",
        ],
    );
    let hosts = fs::read_to_string(out.join("hosts")).unwrap();
    let lines: Vec<&str> = hosts.lines().collect();
    assert!(lines.contains(&"10.1.2.3\tdb.internal"), "{hosts}");
    assert!(lines.contains(&"fd00::7\tv6host"), "{hosts}");
    assert!(lines.contains(&format!("{gateway}\tgw").as_str()), "{hosts}");
    let host_etc = fs::read_to_string("/etc/hosts").unwrap();
    assert!(!host_etc.contains("db.internal"), "the host's /etc/hosts is untouched");
    assert!(
        !out.join("etc/hosts").exists()
            || !fs::read_to_string(out.join("etc/hosts")).unwrap().contains("db.internal"),
        "the line never reaches the image"
    );

    // As BuildKit: the host name is in the step's key, its address is not.
    env.dockerfile("keyed", "FROM busybox:local\nRUN grep db.internal /etc/hosts > /seen\n");
    let (first, _) = build_local(&env, "keyed", &["--add-host", "db.internal:10.1.2.3"]);
    assert_eq!(first.run_lines().len(), 1, "{}", first.stderr);
    let (moved, _) = build_local(&env, "keyed", &["--add-host", "db.internal:10.9.9.9"]);
    assert!(moved.run_lines().is_empty(), "a new address alone hits the cache:\n{}", moved.stderr);
    let (renamed, _) =
        build_local(&env, "keyed", &["--add-host", "db.internal:10.1.2.3", "--add-host", "x:10.0.0.1"]);
    assert_eq!(renamed.run_lines().len(), 1, "another host name runs the step:\n{}", renamed.stderr);
}

#[test]
fn ulimits_and_shm_size_apply_to_every_run() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nRUN ulimit -n > /nofile-soft && ulimit -Hn > /nofile-hard && ulimit -c > /core\n\
RUN df -k /dev/shm | tail -n 1 | awk '{print $2}' > /shm-kb\n",
    );
    let (_, out) =
        build_local(&env, "ctx", &["--ulimit", "nofile=321:654", "--ulimit", "core=0", "--shm-size", "128m"]);
    let read = |p: &str| fs::read_to_string(out.join(p)).unwrap().trim().to_string();
    assert_eq!(read("nofile-soft"), "321");
    assert_eq!(read("nofile-hard"), "654");
    assert_eq!(read("core"), "0");
    assert_eq!(read("shm-kb"), (128 * 1024).to_string(), "/dev/shm is 128 MiB");

    // Without the flags: Docker's 64 MiB /dev/shm, and the step runs again
    // since limits and shm size are part of its key (as in BuildKit).
    let (again, out) = build_local(&env, "ctx", &[]);
    assert_eq!(again.run_lines().len(), 2, "{}", again.stderr);
    assert_eq!(read_in(&out, "shm-kb"), (64 * 1024).to_string());
    assert_ne!(read_in(&out, "nofile-soft"), "321");

    // More open files than the kernel allows anyone (fs.nr_open): the step
    // fails naming the flag instead of running without the limit.
    let nr_open: u64 = fs::read_to_string("/proc/sys/fs/nr_open").unwrap().trim().parse().unwrap();
    let too_many = format!("nofile={}", nr_open + 1);
    let run = env.rbuild(&["build", "--progress", "plain", "--ulimit", &too_many, "ctx"]).failed();
    assert!(run.stderr.contains(&format!("cannot set --ulimit {too_many}")), "{}", run.stderr);
}

fn read_in(dir: &std::path::Path, p: &str) -> String {
    fs::read_to_string(dir.join(p)).unwrap().trim().to_string()
}

#[test]
fn build_network_applies_to_runs_without_their_own_and_host_needs_the_entitlement() {
    require!(root(), busybox_static(), default_network());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nRUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /build-wide\n\
RUN --network=default tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /own\n",
    );
    let host_ifaces = sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort");
    let sorted = |text: String| {
        let mut l: Vec<String> = text.lines().map(str::to_string).collect();
        l.sort();
        l
    };
    let (_, out) = build_local(&env, "ctx", &["--network", "none"]);
    assert_eq!(read_in(&out, "build-wide"), "lo", "--network none leaves only loopback");
    assert_eq!(
        sorted(read_in(&out, "own")),
        ["eth0", "lo"],
        "a RUN's own --network wins: the default network, behind NAT"
    );

    let before = env.store_snapshot();
    let denied = env.rbuild(&["build", "--progress", "plain", "--network", "host", "ctx"]).failed();
    assert!(
        denied.stderr.contains("--network host") && denied.stderr.contains("--allow network.host"),
        "{}",
        denied.stderr
    );
    assert_eq!(env.store_snapshot(), before, "nothing was built");
    let (_, out) = build_local(&env, "ctx", &["--network", "host", "--allow", "network.host"]);
    assert_eq!(sorted(read_in(&out, "build-wide")), sorted(host_ifaces.trim().to_string()));
}

#[test]
fn no_cache_filter_runs_the_named_stages_and_lets_the_others_hit() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local AS Deps\nRUN echo deps > /deps\n\
FROM busybox:local AS other\nRUN echo other > /other\n\
FROM busybox:local\nCOPY --from=deps /deps /deps\nCOPY --from=other /other /other\nRUN cat /deps /other > /all\n",
    );
    let (first, _) = build_local(&env, "ctx", &[]);
    assert_eq!(first.run_lines().len(), 5, "{}", first.stderr);
    let (filtered, out) = build_local(&env, "ctx", &["--no-cache-filter", "deps"]);
    let ran = filtered.run_lines();
    assert_eq!(ran.len(), 1, "only the filtered stage's step runs:\n{}", filtered.stderr);
    assert!(ran[0].contains("[deps 2/2] RUN echo deps"), "{}", filtered.stderr);
    let cached_steps = filtered.cached_lines().iter().filter(|l| !l.contains("] FROM ")).count();
    assert_eq!(cached_steps, 4, "the other stages' steps hit the cache:\n{}", filtered.stderr);
    assert_eq!(read_in(&out, "all"), "deps\nother");
    let (both, _) = build_local(&env, "ctx", &["--no-cache-filter", "deps,other"]);
    assert_eq!(both.run_lines().len(), 2, "{}", both.stderr);
    // A name no stage has is ignored, as BuildKit does, with a warning
    // that names it and the stages there are.
    let (typo, _) = build_local(&env, "ctx", &["--no-cache-filter", "deps,tests"]);
    assert_eq!(typo.run_lines().len(), 1, "{}", typo.stderr);
    assert!(
        typo.stderr.contains("warning: --no-cache-filter: the Dockerfile has no stage named \"tests\"")
            && typo.stderr.contains("deps, other"),
        "{}",
        typo.stderr
    );
}

/// The manifest (and, for an OCI archive, the index) of `--annotation`:
/// in `-o type=oci`, kept with the image in the store (so a later `rbuild
/// push` writes them too) and in the manifest `--push` sends, read back by
/// skopeo. An annotation for another platform is left out.
#[test]
fn annotations_reach_the_oci_archive_the_store_and_the_pushed_manifest() {
    require!(root(), busybox_static(), registry(), tool("skopeo"));
    let registry = TestRegistry::start();
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM busybox:local\nRUN echo a > /a\n");
    let image = registry.at("rbuild-it/annotated:v1");
    let oci = env.path("image.oci.tar");
    let dest = format!("type=oci,dest={}", oci.display());
    let config = env.path("docker-config");
    fs::create_dir_all(&config).unwrap();
    let docker_config = [("DOCKER_CONFIG", config.to_str().unwrap())];
    #[rustfmt::skip]
    let args = [
        "build", "--progress", "plain", "-t", &image, "--push", "-o", &dest,
        "--annotation", "org.opencontainers.image.title=app",
        "--annotation", "index,manifest:org.opencontainers.image.vendor=Acme",
        "--annotation", "manifest-descriptor:com.example.doc=https://docs.example",
        "--annotation", "manifest[linux/s390x]:com.example.other=platform",
        "ctx",
    ];
    env.rbuild_with(&args, None, &docker_config).ok();

    let layout = env.path("layout");
    fs::create_dir_all(&layout).unwrap();
    sh(&format!("tar -xf {} -C {}", oci.display(), layout.display()));
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["annotations"],
        serde_json::json!({"org.opencontainers.image.vendor": "Acme"}),
        "{index}"
    );
    let entry = &index["manifests"][0];
    assert_eq!(entry["annotations"]["com.example.doc"], "https://docs.example", "{index}");
    let digest = entry["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(&digest)).unwrap()).unwrap();
    let wanted = serde_json::json!({
        "org.opencontainers.image.title": "app",
        "org.opencontainers.image.vendor": "Acme",
    });
    assert_eq!(manifest["annotations"], wanted, "{manifest}");

    let raw = sh(&format!("skopeo inspect --raw --tls-verify=false docker://{image}"));
    let pushed: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(pushed["annotations"], wanted, "the pushed manifest:\n{raw}");
    assert_eq!(
        pushed["config"]["digest"], manifest["config"]["digest"],
        "the same image (its layers gzipped)"
    );
    // A later push of the stored image keeps them.
    let again = registry.at("rbuild-it/again:v1");
    env.rbuild_with(&["tag", &image, &again], None, &docker_config).ok();
    env.rbuild_with(&["push", &again], None, &docker_config).ok();
    let raw = sh(&format!("skopeo inspect --raw --tls-verify=false docker://{again}"));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&raw).unwrap()["annotations"], wanted);

    // The same build without the flag writes a manifest without them.
    env.rbuild_with(&["build", "--progress", "plain", "-t", &image, "--push", "ctx"], None, &docker_config)
        .ok();
    let raw = sh(&format!("skopeo inspect --raw --tls-verify=false docker://{image}"));
    assert!(serde_json::from_str::<serde_json::Value>(&raw).unwrap().get("annotations").is_none(), "{raw}");
}

/// A build that must fail on a flag before building anything.
fn refused(env: &Env, flags: &[&str], expect: &[&str]) {
    let before = env.store_snapshot();
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(flags);
    args.push("ctx");
    let run = env.rbuild(&args).failed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    for e in expect {
        assert!(run.stderr.contains(e), "expected {e:?} in:\n{}", run.stderr);
    }
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    assert!(!run.stderr.contains("RUN touch"), "no step started:\n{}", run.stderr);
    assert_eq!(env.store_snapshot(), before, "the store must be unchanged");
}

#[test]
fn malformed_values_name_the_flag_what_was_expected_and_an_example() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM busybox:local AS app\nRUN touch /x\n");
    refused(
        &env,
        &["--add-host", "db"],
        &["--add-host", "HOST:IP", "for example: --add-host db.internal:10.0.0.5"],
    );
    refused(&env, &["--add-host", "db:300.1.1.1"], &["--add-host", "an IPv4 or IPv6 address"]);
    refused(
        &env,
        &["--ulimit", "nofile"],
        &["--ulimit", "TYPE=SOFT[:HARD]", "for example: --ulimit nofile=1024:2048"],
    );
    refused(&env, &["--ulimit", "openfiles=10"], &["--ulimit", "nofile, nproc"]);
    refused(&env, &["--ulimit", "nofile=20:10"], &["--ulimit", "no higher than the hard limit"]);
    refused(&env, &["--ulimit", "nofile=many"], &["--ulimit", "whole numbers"]);
    refused(&env, &["--shm-size", "lots"], &["--shm-size", "for example: --shm-size 128m"]);
    refused(&env, &["--shm-size", "0"], &["--shm-size", "greater than zero"]);
    refused(
        &env,
        &["--network", "bridge"],
        &["--network", "default, none or host", "for example: --network none"],
    );
    refused(&env, &["--allow", "network.any"], &["--allow", "network.host or security.insecure"]);
    refused(
        &env,
        &["--annotation", "title"],
        &["--annotation", "no '='", "for example: --annotation org.opencontainers.image.title=app"],
    );
    refused(
        &env,
        &["--annotation", "manifests:k=v"],
        &["--annotation", "unknown annotation type \"manifests\""],
    );
    refused(&env, &["--annotation", "manifest[amd64]:k=v"], &["--annotation", "os/arch"]);
    refused(&env, &["--annotation", "index:k=v"], &["--annotation index:", "-o type=oci"]);
    refused(&env, &["--annotation", "index-descriptor:k=v"], &["index-descriptor", "hint:"]);
    refused(
        &env,
        &["--no-cache-filter", "app,"],
        &["--no-cache-filter", "for example: --no-cache-filter deps,test"],
    );
}
