//! The `debian` benchmark context (apt-get inside RUN, a user, jq) on a
//! `debian:bookworm` base loaded from `/opt/bases/bookworm.docker.tar`:
//! builds, saves, and runs in Docker printing `{"ok":true}`. Skips, saying
//! why, without that base image, Docker, or a network path to Debian.

use std::path::Path;

use crate::harness::*;

const BOOKWORM: &str = "/opt/bases/bookworm.docker.tar";

const DOCKERFILE: &str = r#"FROM debian:bookworm
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*
RUN useradd -m -u 1001 builder
USER builder
WORKDIR /home/builder
RUN echo '{"ok":true}' | jq -c . > out.json
CMD ["jq", ".", "/home/builder/out.json"]
"#;

fn have_bookworm() -> bool {
    let ok = Path::new(BOOKWORM).exists();
    if !ok {
        eprintln!("skipping: {BOOKWORM} is not there");
    }
    ok
}

/// Whether Debian's mirror answers (apt-get needs it).
fn have_debian_mirror() -> bool {
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg("timeout 10 bash -c 'exec 3<>/dev/tcp/deb.debian.org/80' 2>/dev/null")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipping: deb.debian.org is not reachable (no network)");
    }
    ok
}

#[test]
fn debian_context_builds_and_runs_in_docker() {
    require!(have_root(), have_bookworm(), have_docker(), have_debian_mirror());
    let env = Env::new();
    env.rbuild(&["load", "-i", BOOKWORM]).ok();
    env.context("debian", &[("Dockerfile", DOCKERFILE)]);
    let tag = DockerTag::new("images-debian");
    env.rbuild(&["build", "--progress", "plain", "-t", &tag.0, "debian"]).ok();
    let archive = env.path("debian.tar");
    env.rbuild(&["save", "-o", archive.to_str().unwrap(), &tag.0]).ok();
    sh(&format!("docker load -i {}", archive.display()));
    let out = sh(&format!("docker run --rm {}", tag.0));
    assert_eq!(out.split_whitespace().collect::<String>(), r#"{"ok":true}"#);
    env.rbuild(&["system", "check"]).ok();
}
