//! Our output checked by the real tools: docker load/inspect/run, skopeo
//! inspect, umoci unpack.

use std::fs;

use crate::harness::*;

const APP: &str = r#"FROM busybox:local AS build
RUN echo computed-$((6 * 7)) > /result
FROM busybox:local
ENV APP_ENV=production PORT=8080
WORKDIR /srv
COPY --from=build /result ./
EXPOSE 8080
USER app
CMD ["cat", "/srv/result"]
"#;

#[test]
fn docker_loads_and_runs_our_docker_archive() {
    require!(root(), busybox_static(), docker());
    let env = Env::with_busybox();
    env.dockerfile("app", APP);
    let tag = DockerTag::new("app");
    let tar = env.path("app.tar");
    env.rbuild(&["build", "-t", &tag.0, "-o", &format!("type=docker,dest={}", tar.display()), "app"]).ok();
    let loaded = sh(&format!("docker load -i {}", tar.display()));
    assert!(loaded.contains(&tag.0), "docker load should name the tag: {loaded}");
    let out = sh(&format!("docker run --rm {}", tag.0));
    assert_eq!(out, "computed-42\n");
    let who = sh(&format!("docker run --rm {} sh -c 'id -un; pwd'", tag.0));
    assert_eq!(who, "app\n/srv\n");
    let inspect = |f: &str| sh(&format!("docker inspect --format '{f}' {}", tag.0)).trim().to_string();
    assert_eq!(inspect("{{.Config.User}}"), "app");
    assert_eq!(inspect("{{.Config.WorkingDir}}"), "/srv");
    assert_eq!(inspect("{{json .Config.ExposedPorts}}"), r#"{"8080/tcp":{}}"#);
    assert_eq!(inspect("{{json .Config.Cmd}}"), r#"["cat","/srv/result"]"#);
    let env_json = inspect("{{json .Config.Env}}");
    assert!(env_json.contains("APP_ENV=production") && env_json.contains("PORT=8080"), "{env_json}");
    assert_eq!(inspect("{{.Os}}/{{.Architecture}}"), "linux/amd64");
}

#[test]
fn skopeo_and_umoci_accept_our_oci_archive() {
    require!(root(), busybox_static(), tool("skopeo"), tool("umoci"));
    let env = Env::with_busybox();
    env.dockerfile("app", APP);
    let tar = env.path("app.oci.tar");
    env.rbuild(&["build", "-t", "app:v1", "-o", &format!("type=oci,dest={}", tar.display()), "app"]).ok();
    let info = sh(&format!("skopeo inspect --config oci-archive:{}", tar.display()));
    let config: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(config["config"]["User"], "app");
    assert_eq!(config["os"], "linux");
    let layout = env.path("layout");
    fs::create_dir(&layout).unwrap();
    sh(&format!("tar -C {} -xf {}", layout.display(), tar.display()));
    let bundle = env.path("bundle");
    sh(&format!("umoci unpack --image {}:app:v1 {}", layout.display(), bundle.display()));
    assert_eq!(fs::read_to_string(bundle.join("rootfs/srv/result")).unwrap(), "computed-42\n");
    let docker_archive = env.path("app.docker.tar");
    env.rbuild(&[
        "build",
        "-t",
        "app:v1",
        "-o",
        &format!("type=docker,dest={}", docker_archive.display()),
        "app",
    ])
    .ok();
    let raw = sh(&format!("skopeo inspect --raw docker-archive:{}", docker_archive.display()));
    assert!(raw.contains("layers"), "{raw}");
}

#[test]
fn an_image_docker_built_serves_as_our_base() {
    require!(root(), busybox_static(), docker());
    let env = Env::new();
    let base = DockerTag::new("dockerbase");
    let ctx = env.dockerfile("dctx", "FROM scratch\nCOPY rootfs.tar /\n");
    let _ = ctx;
    sh(&format!("docker import {} {}", busybox_rootfs().display(), base.0));
    let saved = env.path("base.tar");
    sh(&format!("docker save -o {} {}", saved.display(), base.0));
    let loaded = env.rbuild(&["load", "-i", saved.to_str().unwrap()]).ok();
    assert!(loaded.stdout.contains(&format!("Loaded image: {}", base.0)), "{}", loaded.stdout);
    env.dockerfile("app", &format!("FROM {}\nRUN echo built-on-docker-base > /x\n", base.0));
    let out = env.path("rootfs");
    env.rbuild(&["build", "-o", &format!("type=local,dest={}", out.display()), "app"]).ok();
    assert_eq!(fs::read_to_string(out.join("x")).unwrap(), "built-on-docker-base\n");
}
