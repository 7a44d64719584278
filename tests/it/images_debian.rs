//! The `debian` benchmark context (apt-get inside RUN, a user, jq) on a
//! `debian:bookworm` base loaded from `/opt/bases/bookworm.docker.tar`
//! (made by `scripts/bases.sh`): builds, saves, and runs in Docker printing
//! `{"ok":true}`. Needs that base image, Docker, and Debian's mirror.

use crate::harness::*;

pub const DOCKERFILE: &str = r#"FROM debian:bookworm
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*
RUN useradd -m -u 1001 builder
USER builder
WORKDIR /home/builder
RUN echo '{"ok":true}' | jq -c . > out.json
CMD ["jq", ".", "/home/builder/out.json"]
"#;

#[test]
fn debian_context_builds_and_runs_in_docker() {
    require!(root(), docker(), reachable("deb.debian.org", 80));
    let bookworm = require!(base("bookworm.docker.tar"));
    let env = Env::new();
    env.rbuild(&["load", "-i", bookworm.to_str().unwrap()]).ok();
    env.dockerfile("debian", DOCKERFILE);
    let tag = DockerTag::new("images-debian");
    env.rbuild(&["build", "--progress", "plain", "-t", &tag.0, "debian"]).ok();
    let archive = env.path("debian.tar");
    env.rbuild(&["save", "-o", archive.to_str().unwrap(), &tag.0]).ok();
    sh(&format!("docker load -i {}", archive.display()));
    let out = sh(&format!("docker run --rm {}", tag.0));
    assert_eq!(out.split_whitespace().collect::<String>(), r#"{"ok":true}"#);
    env.rbuild(&["system", "check"]).ok();
}
