//! The Dockerfile language checked by Docker itself: a Dockerfile using
//! heredocs, cache and secret mounts, `--chown`, ONBUILD, SHELL,
//! HEALTHCHECK and ARG scoping, loaded and run with `docker run`; the files
//! `.dockerignore` lets into the image, compared with `docker build`; and
//! `rbuild debug graph` rendered by graphviz.

use std::fs;

use crate::harness::*;

const BASE: &str = r#"# syntax=docker/dockerfile:1
FROM busybox:local
ONBUILD COPY greeting.txt /app/greeting.txt
ONBUILD RUN echo "onbuild ran" > /app/onbuild.txt
"#;

const APP: &str = r#"# syntax=docker/dockerfile:1
ARG BASE_IMAGE=lang-base
ARG FLAVOUR=plain
FROM ${BASE_IMAGE}:v1 AS build
ARG FLAVOUR
ARG LOCAL_ONLY=stage-default
SHELL ["/bin/sh", "-e", "-c"]
RUN --mount=type=cache,target=/var/cache/build <<EOF
echo "flavour=${FLAVOUR} local=${LOCAL_ONLY}" > /app/build-info
date +%s >> /var/cache/build/runs
wc -l < /var/cache/build/runs > /app/cache-runs
EOF
RUN --mount=type=secret,id=api_key test -s /run/secrets/api_key && echo "secret seen" > /app/secret-status
RUN <<EOF
#!/bin/sh
echo "shebang $0" > /app/shebang
EOF

FROM busybox:local
ARG FLAVOUR
COPY --from=build --chown=app:app /app /srv/app
COPY --chown=app <<EOF /srv/app/config.ini
flavour=${FLAVOUR}
EOF
SHELL ["/bin/sh", "-c"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=2 CMD test -f /srv/app/build-info
USER app
WORKDIR /srv/app
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat build-info onbuild.txt greeting.txt shebang secret-status config.ini; stat -c %U config.ini"]
"#;

#[test]
fn a_dockerfile_using_the_whole_language_runs_in_docker() {
    require!(root(), busybox_static(), docker());
    let env = Env::with_busybox();
    env.dockerfile("base", BASE);
    env.rbuild(&["build", "-t", "lang-base:v1", "base"]).ok();
    env.context("app", &[("Dockerfile", APP), ("greeting.txt", "hello from the context\n")]);
    fs::write(env.path("api_key"), "k-123").unwrap();
    let tag = DockerTag::new("lang");
    let tar = env.path("app.tar");
    let secret = format!("id=api_key,src={}", env.path("api_key").display());
    env.rbuild(&[
        "build",
        "-t",
        &tag.0,
        "--build-arg",
        "FLAVOUR=spicy",
        "--secret",
        &secret,
        "-o",
        &format!("type=docker,dest={}", tar.display()),
        "app",
    ])
    .ok();
    sh(&format!("docker load -i {}", tar.display()));
    let out = sh(&format!("docker run --rm {}", tag.0));
    assert_eq!(
        out,
        "flavour=spicy local=stage-default\nonbuild ran\nhello from the context\nshebang /dev/pipes/EOF\nsecret seen\nflavour=spicy\napp\n"
    );
    let inspect = |f: &str| sh(&format!("docker inspect --format '{f}' {}", tag.0)).trim().to_string();
    assert_eq!(
        inspect("{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD-SHELL","test -f /srv/app/build-info"],"Interval":30000000000,"Timeout":3000000000,"StartPeriod":5000000000,"Retries":2}"#
    );
    assert_eq!(inspect("{{json .Config.Entrypoint}}"), r#"["/bin/sh","-c"]"#);
    assert_eq!(inspect("{{json .Config.Shell}}"), r#"["/bin/sh","-c"]"#);
    assert_eq!(inspect("{{.Config.User}}"), "app");
    let env_json = inspect("{{json .Config.Env}}");
    assert!(
        !env_json.contains("FLAVOUR") && !env_json.contains("k-123"),
        "ARGs and secrets stay out of the config: {env_json}"
    );
    let history = sh(&format!("docker history --no-trunc {}", tag.0));
    assert!(!history.contains("k-123"), "{history}");
    // The base's ONBUILD triggers are consumed by the stage that uses it.
    assert_eq!(inspect("{{json .Config.OnBuild}}"), "null");
}

#[test]
fn dockerignore_selects_the_same_files_as_docker_build() {
    require!(root(), busybox_static(), docker());
    let env = Env::with_busybox();
    let files = [
        ("Dockerfile", "FROM busybox:local\nCOPY . /ctx\n"),
        (
            ".dockerignore",
            "# comment\n*.log\n!keep.log\n**/tmp\ndocs/*\n!docs/README.md\nnode_modules\n/build/\nsecret?.txt\n.git\nDockerfile*\n",
        ),
        ("a.txt", "a"),
        ("x.log", "x"),
        ("keep.log", "k"),
        ("sub/y.log", "y"),
        ("sub/tmp/t", "t"),
        ("tmp/t", "t"),
        ("docs/README.md", "r"),
        ("docs/other.md", "o"),
        ("node_modules/m/index.js", "m"),
        ("sub/node_modules/n.js", "n"),
        ("build/out", "o"),
        ("sub/build/out", "o"),
        ("secret1.txt", "s"),
        ("secret12.txt", "s"),
        (".git/HEAD", "h"),
        (".hidden", "h"),
        ("dir with space/f", "f"),
    ];
    let ctx = env.context("ctx", &files);
    let out = env.path("rbuild-out");
    env.rbuild(&["build", "-o", &format!("type=local,dest={}", out.display()), "ctx"]).ok();
    let ours = sh(&format!("cd {} && find . | sort", out.join("ctx").display()));
    // Docker gets the same context with its own base image name, in a
    // Dockerfile that the ignore file keeps out like the first one.
    let base = format!("rbuild-it-ignore-base:{}", std::process::id());
    let built = format!("rbuild-it-ignore:{}", std::process::id());
    fs::write(ctx.join("Dockerfile.docker"), format!("FROM {base}\nCOPY . /ctx\n")).unwrap();
    sh(&format!("docker import {} {base} >/dev/null", busybox_rootfs().display()));
    sh(&format!(
        "cd {} && DOCKER_BUILDKIT=0 docker build -q -t {built} -f Dockerfile.docker . >/dev/null",
        ctx.display()
    ));
    let docker_list = sh(&format!("docker run --rm {built} sh -c 'cd /ctx && find . | sort'"));
    let _ = std::process::Command::new("docker").args(["rmi", "-f", &built, &base]).output();
    assert_eq!(ours, docker_list, "rbuild and docker build must copy the same files");
    assert!(ours.contains("./keep.log") && !ours.contains("./x.log") && !ours.contains("Dockerfile"));
}

#[test]
fn debug_graph_prints_dot_that_graphviz_renders_and_json() {
    require!(busybox_static(), tool("dot"));
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local AS deps\nRUN echo \"quoted\" > /d\nFROM busybox:local AS unused\nRUN true\nFROM deps\nCOPY --from=deps /d /e\nRUN --mount=type=bind,from=deps,target=/m cat /m/d\n",
    );
    let dot = env.rbuild(&["debug", "graph", "ctx"]).ok().stdout;
    assert!(dot.starts_with("digraph rbuild {"), "{dot}");
    assert!(dot.contains("style=dashed; color=gray"), "the unused stage is drawn dimmed: {dot}");
    let svg_path = env.path("g.dot");
    fs::write(&svg_path, &dot).unwrap();
    let svg = sh(&format!("dot -Tsvg {}", svg_path.display()));
    assert!(svg.contains("<svg") && svg.contains("from=deps /d /e"), "{svg}");
    let json = env.rbuild(&["debug", "graph", "--format", "json", "--target", "deps", "ctx"]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["target"], "deps");
    assert_eq!(v["stages"][0]["steps"][0]["kind"], "run");
    assert_eq!(v["stages"][2]["needed"], false);
    let bad = env.dockerfile("bad", "FROM busybox:local\nRUN --mount=type=cahce,target=/x true\n");
    let _ = bad;
    let run = env.rbuild(&["debug", "graph", "bad"]).failed();
    assert!(
        run.stderr.contains("Dockerfile:2") && run.stderr.contains("did you mean type=cache?"),
        "{}",
        run.stderr
    );
}
