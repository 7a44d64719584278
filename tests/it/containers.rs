//! Running the rbuild under test inside `docker run` containers under
//! Docker's default profile (no `--privileged`, no added capability, as
//! root): what the CI-container, chroot and recipe tests share.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;
use crate::registry::app_context;

/// The image the containers run: Debian bookworm from the provisioned
/// bases (`scripts/bases.sh`), loaded into Docker when it lacks it.
pub const IMAGE: &str = "debian:bookworm";

pub fn debian_in_docker() -> Need<()> {
    let tar = base("bookworm.docker.tar")?;
    let have =
        Command::new("docker").args(["image", "inspect", IMAGE]).output().is_ok_and(|o| o.status.success());
    if !have {
        sh(&format!("docker load -i {}", tar.display()));
    }
    Ok(())
}

/// A `docker run --rm` of `IMAGE` with the rbuild under test at
/// /usr/local/bin/rbuild, `/work` bound read-write from `work`, and
/// `extra` docker flags; runs `script` with sh and returns how it went.
pub fn in_container(work: &Path, extra: &[&str], script: &str) -> Run {
    let bin = format!("{RBUILD}:/usr/local/bin/rbuild:ro");
    let vol = format!("{}:/work", work.display());
    let mut args = vec!["run", "--rm", "-v", &bin, "-v", &vol, "-e", "SOURCE_DATE_EPOCH=1700000000"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "sh", "-ec", script]);
    docker_cli(&args)
}

/// `docker ARGS`, waited for.
pub fn docker_cli(args: &[&str]) -> Run {
    let out = Command::new("docker").args(args).output().expect("run docker");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "the container failed\n--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
    run
}

/// The host's store with busybox, saved to `work/busybox.tar` for the
/// containers, and the app context under `work/app`.
pub fn host_with_app() -> Env {
    let env = Env::with_busybox();
    let tar = env.path("busybox.tar");
    env.rbuild(&["save", "-o", tar.to_str().unwrap(), "busybox:local"]).ok();
    app_context(&env, "busybox:local");
    env
}

pub fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_string()
}

/// Builds rbuild's own image (the repository's `Dockerfile` and
/// `.dockerignore`, on `debian:bookworm` from the bases) with the rbuild
/// under test, the binary under test where a release build puts it and
/// other build output beside it, and loads it into Docker as `tag`.
/// Needs Debian's mirror (the Dockerfile installs packages).
pub fn build_rbuild_image(env: &Env, tag: &str) {
    let repo = rbuild_test_support::prereq::workspace_root();
    let ctx = env.path("self");
    std::fs::create_dir_all(ctx.join("target/release")).unwrap();
    std::fs::create_dir_all(ctx.join("target/debug")).unwrap();
    for f in ["Dockerfile", ".dockerignore"] {
        std::fs::copy(repo.join(f), ctx.join(f)).unwrap();
    }
    std::fs::copy(RBUILD, ctx.join("target/release/rbuild")).unwrap();
    std::fs::write(ctx.join("target/debug/huge-object"), vec![7u8; 1 << 20]).unwrap();
    env.rbuild(&["load", "-i", base("bookworm.docker.tar").unwrap().to_str().unwrap()]).ok();
    let archive = env.path("rbuild-image.tar");
    env.rbuild(&[
        "build",
        "--progress",
        "plain",
        "--build-arg",
        "BASE=debian:bookworm",
        "-t",
        tag,
        "-o",
        &format!("type=docker,dest={}", archive.display()),
        "self",
    ])
    .ok();
    sh(&format!("docker load -i {}", archive.display()));
}
