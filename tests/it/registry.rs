//! Registries for real: Debian's `docker-registry` on 127.0.0.1 (anonymous,
//! and with htpasswd basic auth), checked with skopeo and Docker, plus a
//! tiny lying HTTP server for the digest check. Every rbuild run gets its
//! own `DOCKER_CONFIG`, so no test reads or writes the machine's
//! credentials.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::*;

/// Runs rbuild with a private Docker config directory.
pub fn rb(env: &Env, args: &[&str]) -> Run {
    rb_stdin(env, args, None)
}

pub fn rb_stdin(env: &Env, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let config = env.path("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    env.rbuild_with(args, stdin, &[("DOCKER_CONFIG", config.to_str().unwrap())])
}

fn app_dockerfile(base: &str) -> String {
    format!(
        "FROM {base} AS build\nCOPY src/ /src/\nRUN cat /src/*.txt > /combined && echo built-$((6 * 7)) >> /combined\n\
         FROM {base}\nCOPY --from=build /combined /app/combined\nRUN wc -l < /app/combined > /app/lines\nCMD [\"cat\", \"/app/combined\"]\n"
    )
}

pub fn app_context(env: &Env, base: &str) -> std::path::PathBuf {
    env.context(
        "app",
        &[("Dockerfile", &app_dockerfile(base)), ("src/a.txt", "alpha\n"), ("src/b.txt", "beta\n")],
    )
}

/// Puts the test busybox into `registry` as `ci/busybox:1`, so that
/// stores on "other machines" can pull the very same base image.
pub fn publish_busybox(env: &Env, registry: &TestRegistry) -> String {
    let base = registry.at("ci/busybox:1");
    rb(env, &["tag", "busybox:local", &base]).ok();
    rb(env, &["push", &base]).ok();
    base
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

#[test]
fn pushed_image_is_read_by_skopeo_and_run_by_docker_and_a_second_push_sends_nothing() {
    require!(root(), busybox_static(), registry(), tool("skopeo"), docker());
    let registry = TestRegistry::start();
    let env = Env::with_busybox();
    app_context(&env, "busybox:local");
    let image = registry.at("rbuild-it/app:v1");
    rb(&env, &["build", "-t", &image, "app"]).ok();
    let pushed = rb(&env, &["push", &image]).ok();
    assert!(pushed.stdout.contains(&format!("{image}@sha256:")), "push prints the digest: {}", pushed.stdout);

    let info: serde_json::Value =
        serde_json::from_str(&sh(&format!("skopeo inspect --tls-verify=false docker://{image}"))).unwrap();
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Architecture"], "amd64");
    // busybox's one layer, COPY --from and RUN.
    assert_eq!(info["Layers"].as_array().unwrap().len(), 3, "{info}");

    let _cleanup = DockerTag(image.clone());
    sh(&format!("docker pull -q {image}"));
    assert_eq!(sh(&format!("docker run --rm {image}")), "alpha\nbeta\nbuilt-42\n");

    // The compressed digests were remembered: nothing is compressed or sent again.
    let again = rb(&env, &["push", &image]).ok();
    assert!(!again.stderr.contains("Compressing") && !again.stderr.contains("Pushing"), "{}", again.stderr);
    assert!(again.stderr.contains("Layer already exists"), "{}", again.stderr);
    assert_eq!(again.stdout, pushed.stdout, "same image, same manifest digest");

    // Another repository of the same registry gets the layers by a mount.
    let copy = registry.at("rbuild-it/copy:v1");
    rb(&env, &["tag", &image, &copy]).ok();
    let mounted = rb(&env, &["push", &copy]).ok();
    assert!(mounted.stderr.contains("Mounted from rbuild-it/app"), "{}", mounted.stderr);
    assert!(!mounted.stderr.contains("Pushing"), "{}", mounted.stderr);
    sh(&format!("skopeo inspect --tls-verify=false docker://{copy}"));
}

#[test]
fn images_pushed_by_skopeo_and_docker_are_pulled_and_used_as_from() {
    require!(root(), busybox_static(), registry(), tool("skopeo"), docker());
    let registry = TestRegistry::start();
    let maker = Env::with_busybox();
    let archive = maker.path("busybox.tar");
    rb(&maker, &["save", "-o", archive.to_str().unwrap(), "busybox:local"]).ok();
    let by_skopeo = registry.at("base/busybox:skopeo");
    sh(&format!(
        "skopeo copy -q --dest-tls-verify=false docker-archive:{} docker://{by_skopeo}",
        archive.display()
    ));
    let local = DockerTag::new("busybox-for-push");
    sh(&format!("skopeo copy -q docker-archive:{} docker-daemon:{}", archive.display(), local.0));
    let by_docker = DockerTag(registry.at("base/busybox:docker"));
    sh(&format!("docker tag {} {} && docker push -q {}", local.0, by_docker.0, by_docker.0));

    for reference in [&by_skopeo, &by_docker.0] {
        let env = Env::new();
        let pulled = rb(&env, &["pull", reference]).ok();
        assert_eq!(pulled.stdout.trim(), reference.as_str(), "pull prints the reference");
        let listed = rb(&env, &["images", "--format", "{{.Repository}}:{{.Tag}}"]).ok();
        assert!(listed.stdout.contains(reference.as_str()), "{}", listed.stdout);
        // Pulling again transfers no layer.
        let again = rb(&env, &["pull", reference]).ok();
        assert!(again.stderr.contains("Image is up to date"), "{}", again.stderr);

        // A fresh store builds FROM it: the base is pulled on demand.
        let builder = Env::new();
        builder.dockerfile("ctx", &format!("FROM {reference}\nRUN echo from-$((2 + 3)) > /out\n"));
        let built = rb(&builder, &["build", "--progress", "plain", "-t", "derived:1", "ctx"]).ok();
        assert!(built.stderr.contains(&format!("pulling {reference}")), "{}", built.stderr);
        let out = builder.path("rootfs");
        rb(&builder, &["build", "-o", out.to_str().unwrap(), "ctx"]).ok();
        assert_eq!(read(&out.join("out")), "from-5");
    }
}

#[test]
fn a_manifest_list_gives_the_host_platform_or_names_the_ones_it_has() {
    require!(root(), busybox_static(), registry(), tool("curl"));
    let registry = TestRegistry::start();
    let env = Env::with_busybox();
    let single = registry.at("multi/busybox:single");
    rb(&env, &["tag", "busybox:local", &single]).ok();
    rb(&env, &["push", &single]).ok();
    let manifest_path = env.path("manifest.json");
    sh(&format!(
        "curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o {} http://{}/v2/multi/busybox/manifests/single",
        manifest_path.display(),
        registry.addr
    ));
    let size = std::fs::metadata(&manifest_path).unwrap().len();
    let digest = format!(
        "sha256:{}",
        sh(&format!("sha256sum {}", manifest_path.display())).split_whitespace().next().unwrap()
    );
    let entry = |arch: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "platform": {"architecture": arch, "os": "linux"}
        })
    };
    let put_index = |tag: &str, entries: Vec<serde_json::Value>| {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        });
        let path = env.path(&format!("{tag}.json"));
        std::fs::write(&path, index.to_string()).unwrap();
        sh(&format!(
            "curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary @{} http://{}/v2/multi/busybox/manifests/{tag}",
            path.display(),
            registry.addr
        ));
    };
    put_index("both", vec![entry("s390x"), entry("amd64")]);
    put_index("other", vec![entry("s390x"), entry("ppc64le")]);

    let fresh = Env::new();
    rb(&fresh, &["pull", &registry.at("multi/busybox:both")]).ok();
    let before = fresh.store_snapshot();
    let missing = rb(&fresh, &["pull", &registry.at("multi/busybox:other")]).failed();
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("no image for linux/amd64")
            && missing.stderr.contains("linux/s390x, linux/ppc64le"),
        "{}",
        missing.stderr
    );
    assert_eq!(fresh.store_snapshot(), before, "a failed pull stores nothing");
}

#[test]
fn login_checks_the_password_and_the_stored_credentials_are_used() {
    require!(root(), busybox_static(), registry());
    let registry = TestRegistry::start_with_user("alice", "s3cret");
    let env = Env::with_busybox();
    let config_file = env.path("docker-config/config.json");

    let wrong =
        rb_stdin(&env, &["login", "-u", "alice", "--password-stdin", &registry.addr], Some(b"wrong\n"))
            .failed();
    assert_eq!(wrong.code, 1);
    assert!(wrong.stderr.contains("unauthorized"), "{}", wrong.stderr);
    assert!(!config_file.exists() || !read(&config_file).contains(&registry.addr), "nothing stored");

    // Without credentials the registry refuses pushes.
    let target = registry.at("private/busybox:1");
    rb(&env, &["tag", "busybox:local", &target]).ok();
    let refused = rb(&env, &["push", &target]).failed();
    assert!(refused.stderr.contains("unauthorized"), "{}", refused.stderr);

    let right =
        rb_stdin(&env, &["login", "-u", "alice", "--password-stdin", &registry.addr], Some(b"s3cret\n")).ok();
    assert!(right.stdout.contains("Login Succeeded"), "{}", right.stdout);
    let config: serde_json::Value = serde_json::from_str(&read(&config_file)).unwrap();
    let expected = sh("printf 'alice:s3cret' | base64").trim().to_string();
    assert_eq!(config["auths"][&registry.addr]["auth"], expected.as_str());

    rb(&env, &["push", &target]).ok();
    let puller = Env::new();
    let config_dir = env.path("docker-config");
    puller.rbuild_with(&["pull", &target], None, &[("DOCKER_CONFIG", config_dir.to_str().unwrap())]).ok();

    let out = rb(&env, &["logout", &registry.addr]).ok();
    assert!(out.stdout.contains("Removing login credentials"), "{}", out.stdout);
    assert!(!read(&config_file).contains(&expected));
    let after = rb(&Env::new(), &["pull", &target]).failed();
    assert!(after.stderr.contains("unauthorized"), "{}", after.stderr);
}

/// Builds `app` in `env` with plain progress, `FLAG SPEC` (`--cache-to` or
/// `--cache-from`) and `--iidfile`; returns the run and the ID file.
fn build_app_with_cache(env: &Env, flag: &str, spec: &str) -> (Run, std::path::PathBuf) {
    let id_file = env.path("id");
    let args = ["build", "--progress", "plain", flag, spec, "--iidfile", id_file.to_str().unwrap(), "app"];
    (rb(env, &args).ok(), id_file)
}

/// Two stores as two CI machines: the first exports its cache, the second
/// starts empty and runs no step. Returns the first machine and the base
/// image it published.
fn second_machine_reuses_every_step(
    registry: &TestRegistry,
    cache_to: &str,
    cache_from: &str,
) -> (Env, String) {
    let first = Env::with_busybox();
    let base = publish_busybox(&first, registry);
    app_context(&first, &base);
    let (one, id_file) = build_app_with_cache(&first, "--cache-to", cache_to);
    assert_eq!(one.run_lines().len(), 4, "the first build runs every step: {}", one.stderr);
    assert!(one.stderr.contains("exported cache to"), "{}", one.stderr);

    let second = Env::new();
    app_context(&second, &base);
    let (two, id2_file) = build_app_with_cache(&second, "--cache-from", cache_from);
    assert!(two.run_lines().is_empty(), "no step runs on the second machine: {}", two.stderr);
    let cached_runs = two.cached_lines().iter().filter(|l| l.contains(" RUN ")).count();
    assert_eq!(cached_runs, 2, "both RUN steps are CACHED: {}", two.stderr);
    assert_eq!(read(&id_file), read(&id2_file), "the same image");
    let out = second.path("rootfs");
    rb(&second, &["build", "--cache-from", cache_from, "-o", out.to_str().unwrap(), "app"]).ok();
    assert_eq!(read(&out.join("app/lines")), "3");
    (first, base)
}

#[test]
fn cache_through_a_registry_serves_a_fresh_store() {
    require!(root(), busybox_static(), registry());
    let registry = TestRegistry::start();
    let cache = registry.at("ci/cache:main");
    let (first, base) = second_machine_reuses_every_step(
        &registry,
        &format!("type=registry,ref={cache},mode=max"),
        &format!("type=registry,ref={cache}"),
    );

    // mode=min keeps only the final stage's steps: the build stage runs
    // again, the final stage's RUN still comes from the cache.
    let min_cache = registry.at("ci/cache:min");
    rb(&first, &["build", "--cache-to", &format!("type=registry,ref={min_cache}"), "app"]).ok();
    let third = Env::new();
    app_context(&third, &base);
    let three = rb(
        &third,
        &["build", "--progress", "plain", "--cache-from", &format!("type=registry,ref={min_cache}"), "app"],
    )
    .ok();
    let ran: Vec<&str> = three.run_lines();
    assert!(ran.iter().any(|l| l.contains("RUN cat /src")), "{}", three.stderr);
    assert!(three.cached_lines().iter().any(|l| l.contains("RUN wc -l")), "{}", three.stderr);
}

#[test]
fn cache_through_a_directory_serves_a_fresh_store() {
    require!(root(), busybox_static(), registry());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    second_machine_reuses_every_step(
        &TestRegistry::start(),
        &format!("type=local,dest={},mode=max", cache.display()),
        &format!("type=local,src={}", cache.display()),
    );
}

#[test]
fn a_registry_that_is_down_fails_quickly_and_stores_nothing() {
    let env = Env::new();
    let before = env.store_snapshot();
    let reference = format!("127.0.0.1:{}/nothing/here:1", free_port());
    let started = Instant::now();
    let out = rb(&env, &["pull", &reference]).failed();
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("cannot reach registry"), "{}", out.stderr);
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert_eq!(env.store_snapshot(), before);
}

#[test]
fn a_missing_tag_is_a_clear_error_and_stores_nothing() {
    require!(registry());
    let registry = TestRegistry::start();
    let env = Env::new();
    let before = env.store_snapshot();
    let out = rb(&env, &["pull", &registry.at("nothing/here:1")]).failed();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("not found"), "{}", out.stderr);
    assert_eq!(env.store_snapshot(), before);
}

/// How [`FakeRegistry`] misbehaves (or what it demands).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quirk {
    /// The layer blob is not the content its digest names.
    WrongLayerDigest,
    /// The first request for the layer blob answers 503.
    FailsOnce,
    /// Bearer tokens from a token service that checks alice:s3cret.
    BearerAuth,
}

const TOKEN: &str = "token-for-alice";

/// A minimal Distribution registry on 127.0.0.1 serving one image,
/// `test/image:v1` (one uncompressed layer with `hello.txt`), with one
/// [`Quirk`]. Stops on drop.
struct FakeRegistry {
    addr: String,
    /// Requests seen, as `METHOD PATH`.
    requests: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A one-file layer tar.
fn tiny_layer() -> Vec<u8> {
    let mut tar = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut tar);
        let mut header = tar::Header::new_ustar();
        header.set_size(6);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, "hello.txt", &b"hello\n"[..]).unwrap();
        builder.finish().unwrap();
    }
    tar
}

impl FakeRegistry {
    fn start(quirk: Quirk) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let layer = tiny_layer();
        let layer_digest = sha256_hex(&layer);
        let served_layer = match quirk {
            Quirk::WrongLayerDigest => {
                let mut other = layer.clone();
                other[0] = b'j';
                other
            }
            _ => layer.clone(),
        };
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["cat","/hello.txt"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{layer_digest}"]}}}}"#
        );
        let config_digest = sha256_hex(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","digest":"sha256:{layer_digest}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        let manifest_digest = sha256_hex(manifest.as_bytes());
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let this_addr = addr.clone();
        let thread = std::thread::spawn(move || {
            let mut layer_requests = 0;
            while !stopping.load(Ordering::SeqCst) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                let mut authorization = String::new();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if line.to_ascii_lowercase().starts_with("authorization:") {
                        authorization = line[14..].trim().to_string();
                    }
                    line.clear();
                }
                let method = request.split_whitespace().next().unwrap_or("").to_string();
                let target = request.split_whitespace().nth(1).unwrap_or("").to_string();
                let path = target.split('?').next().unwrap_or("").to_string();
                seen.lock().unwrap().push(format!("{method} {path}"));
                let not_found: (&str, Vec<(String, String)>, Vec<u8>) = (
                    "404 Not Found",
                    vec![("Content-Type".into(), "application/json".into())],
                    br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#.to_vec(),
                );
                let alice = format!("Basic {}", sh("printf 'alice:s3cret' | base64").trim());
                let challenge = (
                    "401 Unauthorized",
                    vec![(
                        "WWW-Authenticate".to_string(),
                        format!(r#"Bearer realm="http://{this_addr}/token",service="fake""#),
                    )],
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
                );
                let authorized = quirk != Quirk::BearerAuth || authorization == format!("Bearer {TOKEN}");
                let (status, headers, body) = if path == "/token" {
                    if authorization == alice {
                        ("200 OK", vec![], format!(r#"{{"token":"{TOKEN}"}}"#).into_bytes())
                    } else {
                        (
                            "401 Unauthorized",
                            vec![],
                            br#"{"details":"incorrect username or password"}"#.to_vec(),
                        )
                    }
                } else if !authorized {
                    challenge
                } else if path == "/v2/" {
                    ("200 OK", vec![], b"{}".to_vec())
                } else if path == "/v2/test/image/manifests/v1" {
                    (
                        "200 OK",
                        vec![
                            (
                                "Content-Type".into(),
                                "application/vnd.docker.distribution.manifest.v2+json".into(),
                            ),
                            ("Docker-Content-Digest".into(), format!("sha256:{manifest_digest}")),
                        ],
                        manifest.clone().into_bytes(),
                    )
                } else if path == format!("/v2/test/image/blobs/sha256:{config_digest}") {
                    ("200 OK", vec![], config.clone().into_bytes())
                } else if path == format!("/v2/test/image/blobs/sha256:{layer_digest}") {
                    layer_requests += 1;
                    if quirk == Quirk::FailsOnce && layer_requests == 1 {
                        ("503 Service Unavailable", vec![], b"try again".to_vec())
                    } else {
                        ("200 OK", vec![], served_layer.clone())
                    }
                } else {
                    not_found
                };
                let mut stream = stream;
                let mut head =
                    format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        FakeRegistry { addr, requests, stop, thread: Some(thread) }
    }

    fn image(&self) -> String {
        format!("{}/test/image:v1", self.addr)
    }

    fn count(&self, what: &str) -> usize {
        self.requests.lock().unwrap().iter().filter(|r| r.contains(what)).count()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    std::fs::write(&path, bytes).unwrap();
    sh(&format!("sha256sum {}", path.display())).split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_blob_whose_digest_is_wrong_is_refused_and_stores_nothing() {
    let server = FakeRegistry::start(Quirk::WrongLayerDigest);
    let env = Env::new();
    let before = env.store_snapshot();
    let started = Instant::now();
    let out = rb(&env, &["pull", &server.image()]).failed();
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert_eq!(out.code, 1);
    assert!(out.stderr.to_lowercase().contains("digest"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was stored"), "{}", out.stderr);
    assert_eq!(env.store_snapshot(), before);
}

#[test]
fn a_server_error_is_retried() {
    let server = FakeRegistry::start(Quirk::FailsOnce);
    let env = Env::new();
    rb(&env, &["pull", &server.image()]).ok();
    assert_eq!(
        server.count("/blobs/sha256:"),
        3,
        "config once, layer twice: {:?}",
        server.requests.lock().unwrap()
    );
    let out = env.path("rootfs");
    env.dockerfile("ctx", &format!("FROM {}\n", server.image()));
    rb(&env, &["build", "-o", out.to_str().unwrap(), "ctx"]).ok();
    assert_eq!(read(&out.join("hello.txt")), "hello");
}

#[test]
fn bearer_token_auth_works_for_login_and_pull() {
    let server = FakeRegistry::start(Quirk::BearerAuth);
    let env = Env::new();
    let anonymous = rb(&env, &["pull", &server.image()]).failed();
    assert!(anonymous.stderr.contains("unauthorized"), "{}", anonymous.stderr);
    let wrong =
        rb_stdin(&env, &["login", "-u", "alice", "--password-stdin", &server.addr], Some(b"nope")).failed();
    assert!(wrong.stderr.contains("unauthorized"), "{}", wrong.stderr);
    rb_stdin(&env, &["login", "-u", "alice", "--password-stdin", &server.addr], Some(b"s3cret")).ok();
    rb(&env, &["pull", &server.image()]).ok();
    assert!(server.count("GET /token") >= 3, "tokens came from the token service");
}

#[test]
fn search_lists_matching_repositories_with_their_tags() {
    require!(root(), busybox_static(), registry());
    let registry = TestRegistry::start();
    let env = Env::with_busybox();
    for name in ["team/app:v1", "team/app:v2", "team/api:1", "other/tool:1"] {
        let target = registry.at(name);
        rb(&env, &["tag", "busybox:local", &target]).ok();
    }
    // -a pushes every tag of one repository.
    rb(&env, &["push", "-a", &registry.at("team/app")]).ok();
    rb(&env, &["push", &registry.at("team/api:1")]).ok();
    rb(&env, &["push", &registry.at("other/tool:1")]).ok();
    let out = rb(&env, &["search", &registry.at("team")]).ok();
    let app_line = out.stdout.lines().find(|l| l.contains("team/app")).unwrap_or_default();
    assert!(app_line.contains("v1, v2"), "{}", out.stdout);
    assert!(out.stdout.contains(&registry.at("team/api")), "{}", out.stdout);
    assert!(!out.stdout.contains("other/tool"), "{}", out.stdout);
    let limited = rb(&env, &["search", "--limit", "1", &registry.at("team")]).ok();
    assert_eq!(limited.stdout.lines().count(), 2, "a header and one repository: {}", limited.stdout);
}

#[test]
fn build_pushes_with_push_flag_and_image_output() {
    require!(root(), busybox_static(), registry(), tool("skopeo"));
    let registry = TestRegistry::start();
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM busybox:local\nRUN echo pushed > /marker\n");
    let by_flag = registry.at("built/flag:v1");
    rb(&env, &["build", "--push", "-t", &by_flag, "ctx"]).ok();
    let by_output = registry.at("built/output:v1");
    rb(&env, &["build", "-o", &format!("type=image,name={by_output},push=true"), "ctx"]).ok();
    for image in [&by_flag, &by_output] {
        let raw = sh(&format!("skopeo inspect --tls-verify=false --raw docker://{image}"));
        assert!(raw.contains("application/vnd.oci.image.layer.v1.tar+gzip"), "{raw}");
    }
    let without_tag = rb(&env, &["build", "--push", "ctx"]).failed();
    assert!(without_tag.stderr.contains("--push needs a name"), "{}", without_tag.stderr);
}

#[test]
fn build_pull_picks_up_a_newer_base_and_a_plain_build_keeps_the_stored_one() {
    require!(root(), busybox_static(), registry());
    let registry = TestRegistry::start();
    let publisher = Env::with_busybox();
    let base = registry.at("moving/base:latest");
    rb(&publisher, &["tag", "busybox:local", &base]).ok();
    rb(&publisher, &["push", &base]).ok();

    let user = Env::new();
    user.dockerfile("ctx", &format!("FROM {base}\nRUN (cat /version 2>/dev/null || echo v1) > /seen\n"));
    let seen = |run: usize, extra: &[&str]| {
        let out = user.path(&format!("out{run}"));
        let mut args = vec!["build", "--progress", "plain", "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push("ctx");
        let result = rb(&user, &args).ok();
        (read(&out.join("seen")), result)
    };
    assert_eq!(seen(1, &[]).0, "v1", "the missing base is pulled");

    publisher.dockerfile("v2", "FROM busybox:local\nRUN echo v2 > /version\n");
    rb(&publisher, &["build", "--push", "-t", &base, "v2"]).ok();

    let (kept, plain) = seen(2, &[]);
    assert_eq!(kept, "v1", "without --pull the stored base is used");
    assert!(plain.run_lines().is_empty(), "{}", plain.stderr);
    let (newer, pulled) = seen(3, &["--pull"]);
    assert_eq!(newer, "v2", "--pull fetches the newer base: {}", pulled.stderr);
    assert_eq!(pulled.run_lines().len(), 1, "the RUN on the new base runs: {}", pulled.stderr);

    // An image only the store has cannot be re-checked: --pull says so.
    let unpublished = registry.at("never/pushed:1");
    rb(&publisher, &["tag", "busybox:local", &unpublished]).ok();
    publisher.dockerfile("local", &format!("FROM {unpublished}\n"));
    let out = rb(&publisher, &["build", "--pull", "local"]).failed();
    assert!(
        out.stderr.contains("--pull: cannot check") && out.stderr.contains("not found"),
        "{}",
        out.stderr
    );
    rb(&publisher, &["build", "local"]).ok();
}
