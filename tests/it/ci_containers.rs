//! rbuild where CI runs: inside `docker run` containers under Docker's
//! default profile (no `--privileged`, no added capability, as root), with
//! the store inside the container. There no namespace and no mount can be
//! made, so `auto` takes `chroot` isolation and the copying snapshotter.
//! The images built there are loaded and run by Docker, match the host's
//! image ID for the same inputs, keep secrets out of layers and store, and
//! share their cache with a second fresh container through a registry on
//! loopback. rbuild's own image (the repository's `Dockerfile`) is built
//! by rbuild and builds in a plain `docker run` too.

use std::process::Command;

use crate::containers::*;
use crate::harness::*;
use crate::registry::{app_context, publish_busybox};

/// Builds `work/app` on the host with the containers' SOURCE_DATE_EPOCH
/// and requires the image ID the container wrote to `work/iid`.
fn assert_host_builds_the_same_image(env: &Env) {
    let host_id = env.path("host-iid");
    env.rbuild_with(
        &["build", "--iidfile", host_id.to_str().unwrap(), "app"],
        None,
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    )
    .ok();
    assert_eq!(read(env.path("iid")), read(host_id), "container and host build the same image ID");
}

#[test]
fn app_builds_in_a_default_profile_container_loads_runs_and_matches_the_host() {
    require!(root(), busybox_static(), docker(), debian_in_docker());
    let env = host_with_app();
    let tag = DockerTag::new("ci-app");
    let built = ok(in_container(
        env.work.path(),
        &[],
        &format!(
            "rbuild --root /store load -i /work/busybox.tar >/dev/null
             rbuild --root /store build --progress plain -t {t} --iidfile /work/iid \
                 -o type=docker,dest=/work/app.tar /work/app",
            t = tag.0
        ),
    ));
    // Said once, at the start: the isolation, what it cannot isolate, and
    // the snapshotter.
    let first_lines: Vec<&str> = built.stderr.lines().take(4).collect();
    assert!(first_lines[0].starts_with("isolation: chroot, without mounts"), "{}", built.stderr);
    assert!(first_lines[0].contains("EPERM"), "says why: {}", built.stderr);
    assert_eq!(built.stderr.matches("processes, network, hostname and IPC").count(), 1, "{}", built.stderr);
    assert!(built.stderr.contains("snapshotter: copy"), "{}", built.stderr);

    sh(&format!("docker load -i {}", env.path("app.tar").display()));
    assert_eq!(sh(&format!("docker run --rm {}", tag.0)), "alpha\nbeta\nbuilt-42\n");

    // The same inputs on the host (namespaces, overlayfs) give the same image.
    assert_host_builds_the_same_image(&env);
}

#[test]
fn secrets_never_reach_layers_or_store_and_cache_mounts_persist_in_a_container() {
    require!(root(), busybox_static(), docker(), debian_in_docker());
    let env = host_with_app();
    let secret = "s3cr3t-value-only-in-the-step";
    std::fs::write(env.path("secret"), secret).unwrap();
    env.context(
        "mounts",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nARG ROUND\n\
                 RUN --mount=type=secret,id=tok,target=/run/secrets/tok \
                     --mount=type=cache,target=/var/cache/c \
                     --mount=type=bind,source=data,target=/data \
                     --mount=type=tmpfs,target=/scratch \
                     cp /run/secrets/tok /scratch/t && wc -c < /scratch/t > /len \
                     && cat /data/in.txt > /from-bind && echo $ROUND >> /var/cache/c/rounds \
                     && cat /var/cache/c/rounds > /rounds-seen\n",
            ),
            ("data/in.txt", "bound\n"),
        ],
    );
    let result = ok(in_container(
        env.work.path(),
        &[],
        "rbuild --root /store load -i /work/busybox.tar >/dev/null
         for round in 1 2; do
           rbuild --root /store build --progress plain --secret id=tok,src=/work/secret \
             --build-arg ROUND=$round -o type=tar,dest=/work/out$round.tar /work/mounts
         done
         echo store-hits: $(grep -rlF 's3cr3t-value' /store | wc -l)",
    ));
    assert!(result.stdout.contains("store-hits: 0"), "the secret is nowhere in the store: {}", result.stdout);
    let out = env.path("out2");
    std::fs::create_dir_all(&out).unwrap();
    sh(&format!("tar -xf {} -C {}", env.path("out2.tar").display(), out.display()));
    assert_eq!(read(out.join("len")), secret.len().to_string(), "the step read the secret");
    assert_eq!(read(out.join("from-bind")), "bound");
    assert_eq!(read(out.join("rounds-seen")), "1\n2", "the cache mount kept the first build's line");
    for gone in ["run/secrets/tok", "scratch", "data", "var/cache/c"] {
        assert!(!out.join(gone).exists(), "/{gone} is not in the image");
    }
    for archive in ["out1.tar", "out2.tar"] {
        let bytes = std::fs::read(env.path(archive)).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret is in {archive}");
    }
}

#[test]
fn two_fresh_containers_share_build_cache_through_a_registry_on_loopback() {
    require!(root(), busybox_static(), docker(), debian_in_docker(), registry());
    let registry = TestRegistry::start();
    let host = Env::with_busybox();
    let base = publish_busybox(&host, &registry);
    app_context(&host, &base);
    let cache = registry.at("ci/cache:app");
    let image = registry.at("ci/app:1");
    let build = |extra: &str| {
        ok(in_container(
            host.work.path(),
            // A CI image carries CA certificates; debian:bookworm lacks them.
            &["--network", "host", "-v", "/etc/ssl/certs:/etc/ssl/certs:ro"],
            &format!("rbuild --root /store build --progress plain -t {image} --push {extra} /work/app"),
        ))
    };
    let first = build(&format!("--cache-to type=registry,ref={cache},mode=max"));
    assert_eq!(first.run_lines().len(), 4, "the first container runs every step: {}", first.stderr);
    let second = build(&format!("--cache-from type=registry,ref={cache}"));
    assert!(second.run_lines().is_empty(), "no step runs in the second container: {}", second.stderr);
    let cached_runs = second.cached_lines().iter().filter(|l| l.contains(" RUN ")).count();
    assert_eq!(cached_runs, 2, "both RUN steps are CACHED: {}", second.stderr);
    let _pulled = DockerTag(image.clone());
    sh(&format!("docker pull -q {image}"));
    assert_eq!(sh(&format!("docker run --rm {image}")), "alpha\nbeta\nbuilt-42\n");
}

#[test]
fn apt_get_install_works_under_chroot_isolation_in_a_container() {
    require!(root(), docker(), debian_in_docker(), reachable("deb.debian.org", 80));
    let env = Env::new();
    env.dockerfile("debian", crate::images_debian::DOCKERFILE);
    let tag = DockerTag::new("ci-debian");
    ok(in_container(
        env.work.path(),
        &["-v", "/opt/bases/bookworm.docker.tar:/bookworm.tar:ro"],
        &format!(
            "rbuild --root /store load -i /bookworm.tar >/dev/null
             rbuild --root /store build --progress plain -t {t} -o type=docker,dest=/work/debian.tar /work/debian",
            t = tag.0
        ),
    ));
    sh(&format!("docker load -i {}", env.path("debian.tar").display()));
    let out = sh(&format!("docker run --rm {}", tag.0));
    assert_eq!(out.split_whitespace().collect::<String>(), r#"{"ok":true}"#);
}

#[test]
fn an_isolation_that_cannot_work_says_why_and_what_would_help() {
    require!(root(), busybox_static(), docker(), debian_in_docker());
    let env = host_with_app();
    let sandbox = in_container(
        env.work.path(),
        &[],
        "rbuild --root /store load -i /work/busybox.tar >/dev/null
         rbuild --root /store build --isolation=sandbox /work/app",
    );
    assert_ne!(sandbox.code, 0);
    assert!(sandbox.stderr.contains("--isolation=sandbox needs new namespaces"), "{}", sandbox.stderr);
    assert!(sandbox.stderr.contains("seccomp=unconfined"), "names the flag that helps: {}", sandbox.stderr);
    // Without CAP_MKNOD no device can be made for the step.
    let no_mknod = in_container(
        env.work.path(),
        &["--cap-drop", "MKNOD"],
        "rbuild --root /store load -i /work/busybox.tar >/dev/null
         rbuild --root /store build /work/app",
    );
    assert_ne!(no_mknod.code, 0);
    assert!(
        no_mknod.stderr.contains("CAP_MKNOD") && no_mknod.stderr.contains("--cap-add=MKNOD"),
        "{}",
        no_mknod.stderr
    );
    let no_chroot = in_container(
        env.work.path(),
        &["--cap-drop", "SYS_CHROOT"],
        "rbuild --root /store load -i /work/busybox.tar >/dev/null
         rbuild --root /store build /work/app",
    );
    assert_ne!(no_chroot.code, 0);
    assert!(no_chroot.stderr.contains("--cap-add=SYS_CHROOT"), "{}", no_chroot.stderr);
    let bogus = env.rbuild_with(&["build", "app"], None, &[("RBUILD_ISOLATION", "jail")]).failed();
    assert!(bogus.stderr.contains("unknown isolation \"jail\""), "{}", bogus.stderr);
}

#[test]
fn rbuilds_own_image_is_built_by_rbuild_and_builds_in_a_plain_docker_run() {
    require!(root(), busybox_static(), docker(), debian_in_docker(), reachable("deb.debian.org", 80));
    let env = host_with_app();
    let tag = DockerTag::new("rbuild-image");
    build_rbuild_image(&env, &tag.0);
    let vol = format!("{}:/work", env.work.path().display());
    let version = sh(&format!("docker run --rm {} --version", tag.0));
    assert!(version.starts_with("rbuild "), "{version}");
    let listing = sh(&format!("docker run --rm --entrypoint ls {} /usr/local/bin /usr/bin", tag.0));
    for tool in ["rbuild", "newuidmap", "newgidmap"] {
        assert!(listing.lines().any(|l| l == tool), "{tool} is in the image: {listing}");
    }
    // In it, a build works in a plain docker run with the store inside.
    let script = "rbuild load -i /work/busybox.tar >/dev/null && rbuild build --progress plain -o type=local,dest=/work/out /work/app";
    let out = Command::new("docker")
        .args(["run", "--rm", "-v", &vol, "--entrypoint", "sh", &tag.0, "-ec", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(env.path("out/app/lines")), "3");
}

#[test]
fn root_without_cap_sys_admin_uses_the_sandbox_through_a_user_namespace_where_seccomp_allows() {
    require!(root(), busybox_static(), docker(), debian_in_docker());
    let env = host_with_app();
    // Kubernetes' Unconfined seccomp profile, as Docker spells it: user
    // namespaces allowed, still no CAP_SYS_ADMIN.
    let built = ok(in_container(
        env.work.path(),
        &["--security-opt", "seccomp=unconfined"],
        "rbuild --root /store load -i /work/busybox.tar >/dev/null
         rbuild --root /store build --progress plain --iidfile /work/iid -o type=local,dest=/work/out /work/app",
    ));
    assert!(
        built.stderr.starts_with("isolation: sandbox (namespaces inside rbuild's user namespace)"),
        "{}",
        built.stderr
    );
    assert!(!built.stderr.contains("chroot isolation"), "{}", built.stderr);
    assert_eq!(read(env.path("out/app/lines")), "3");
    assert_host_builds_the_same_image(&env);
}

/// A bare image (Debian's, without ca-certificates) has no CA certificates:
/// a registry command there stops with an error that says so and how to
/// fix it, not with a panic inside the HTTP client, for a registry on
/// plain HTTP as much as for one on HTTPS. Nothing is contacted.
#[test]
fn registries_without_ca_certificates_are_a_clear_error_not_a_panic() {
    require!(root(), busybox_static(), docker(), debian_in_docker());
    let env = host_with_app();
    for reference in ["registry.example/app:1", "127.0.0.1:5999/app:1"] {
        let run = in_container(
            env.work.path(),
            &[],
            &format!("test ! -e /etc/ssl/certs/ca-certificates.crt; rbuild --root /store pull {reference}"),
        );
        assert_eq!(run.code, 1, "{reference}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{reference}: {}", run.stderr);
        for expected in ["no CA certificates were found on this system", "apt-get install ca-certificates"] {
            assert!(run.stderr.contains(expected), "{reference}: expected {expected:?} in:\n{}", run.stderr);
        }
    }
}
