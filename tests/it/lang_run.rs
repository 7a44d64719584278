//! RUN end to end: heredocs (plain, `#!` scripts, several per line, `<<-`,
//! quoted), every `--mount` type, `--network=none`, proxies.

use std::collections::BTreeSet;
use std::fs;

use crate::harness::*;

/// Runs rbuild with extra environment variables (for `--secret id=…,env=VAR`).
fn rbuild_with_env(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> (i32, String) {
    let out = std::process::Command::new(RBUILD)
        .arg("--root")
        .arg(env.root.path())
        .args(args)
        .current_dir(env.work.path())
        .envs(vars.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run rbuild");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn heredocs_run_as_scripts_programs_and_shell_input() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nARG WHO=world\n\
RUN <<EOF\nset -e\necho \"plain $WHO\" > /plain\nEOF\n\
RUN <<EOF\n#!/bin/sh\necho \"script $0 $WHO\" > /script\nEOF\n\
RUN cat <<A > /a && cat <<'B' > /b\none $WHO\nA\ntwo $WHO\nB\n\
RUN <<-EOT\n\techo tabs-stripped > /tabs\n\tEOT\n\
RUN sh <<EOF\necho \"stdin $WHO\" > /stdin\nEOF\n\
COPY --chmod=0751 <<X <<Y /inline/\nx=$WHO\nX\ny\nY\n",
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    let read = |p: &str| fs::read_to_string(out.join(p)).unwrap();
    assert_eq!(read("plain"), "plain world\n");
    assert_eq!(
        read("script"),
        "script /dev/pipes/EOF world\n",
        "a #! heredoc runs as a file, with its interpreter"
    );
    assert_eq!(read("a"), "one world\n");
    assert_eq!(read("b"), "two $WHO\n", "a quoted delimiter turns expansion off");
    assert_eq!(read("tabs"), "tabs-stripped\n");
    assert_eq!(read("stdin"), "stdin world\n");
    assert_eq!(read("inline/X"), "x=world\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(out.join("inline/Y")).unwrap().permissions().mode() & 0o7777, 0o751);
    assert!(!out.join("dev").exists(), "the heredoc script never lands in a layer");
}

#[test]
fn cache_mounts_persist_across_builds_and_stay_out_of_layers() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let df = |n: &str| {
        format!(
            "FROM busybox:local\nRUN --mount=type=cache,target=/var/cache/app,id=c1,uid=1000,mode=0770 echo {n} >> /var/cache/app/log && cat /var/cache/app/log > /seen && stat -c '%u %a' /var/cache/app > /owner\n\
RUN --mount=type=cache,target=/c2,sharing=locked echo locked > /c2/x && cat /c2/x > /locked\n\
RUN --mount=type=cache,target=/c3,sharing=private touch /c3/p && ls /c3 > /private\n"
        )
    };
    env.dockerfile("ctx", &df("first"));
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(fs::read_to_string(out.join("seen")).unwrap(), "first\n");
    assert_eq!(fs::read_to_string(out.join("owner")).unwrap(), "1000 770\n");
    assert_eq!(fs::read_to_string(out.join("locked")).unwrap(), "locked\n");
    assert!(
        !out.join("var/cache/app").exists() && !out.join("c2").exists(),
        "cache contents never enter a layer"
    );
    fs::write(env.path("ctx/Dockerfile"), df("second")).unwrap();
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(
        fs::read_to_string(out.join("seen")).unwrap(),
        "first\nsecond\n",
        "the cache survived the first build"
    );
    let dirs = fs::read_dir(env.root.path().join("state/cache-mounts")).unwrap().count();
    assert!(dirs >= 3, "cache mounts live in the store's state/cache-mounts");
}

#[test]
fn secrets_reach_the_step_and_nothing_else() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let secret = "hunter2-very-secret";
    fs::write(env.path("token.txt"), secret).unwrap();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nRUN --mount=type=secret,id=token --mount=type=secret,id=envtok,env=TOKEN \
             wc -c < /run/secrets/token > /len && echo \"$TOKEN\" | wc -c > /envlen && cat /run/secrets/token && echo \"env $TOKEN\"\n\
             RUN --mount=type=secret,id=missing test ! -e /run/secrets/missing && echo absent > /optional\n",
    );
    let out = env.path("out.tar");
    let tag = format!("type=docker,dest={}", out.display());
    let token_arg = format!("id=token,src={}", env.path("token.txt").display());
    let (code, stderr) = rbuild_with_env(
        &env,
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "sec:v1",
            "--secret",
            &token_arg,
            "--secret",
            "id=envtok,env=MY_TOKEN",
            "-o",
            &tag,
            "ctx",
        ],
        &[("MY_TOKEN", secret)],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains(secret), "the secret must not appear in the progress:\n{stderr}");
    assert!(stderr.contains("****"), "echoed secrets are masked:\n{stderr}");
    let rootfs = env.path("rootfs");
    let dest = format!("type=local,dest={}", rootfs.display());
    let (code, stderr) = rbuild_with_env(
        &env,
        &["build", "-q", "--secret", &token_arg, "--secret", "id=envtok,env=MY_TOKEN", "-o", &dest, "ctx"],
        &[("MY_TOKEN", secret)],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fs::read_to_string(rootfs.join("len")).unwrap().trim(), secret.len().to_string());
    assert_eq!(
        fs::read_to_string(rootfs.join("optional")).unwrap(),
        "absent\n",
        "an optional secret not given is absent"
    );
    assert!(!rootfs.join("run/secrets").exists(), "the secret mount point is not in the layer");
    let found = sh(&format!("grep -rl {secret} {} {} || true", env.root.path().display(), out.display()));
    assert_eq!(
        found.trim(),
        "",
        "the secret must not be in the store (layers, history, cache records) or the archive"
    );
    env.dockerfile("req", "FROM busybox:local\nRUN --mount=type=secret,id=need,required true\n");
    let run = env.rbuild(&["build", "--progress", "plain", "req"]).failed();
    assert!(run.stderr.contains("secret need is required") && run.stderr.contains("hint:"), "{}", run.stderr);
}

#[test]
fn bind_mounts_from_the_context_and_stages_are_read_only_unless_rw() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local AS build\nRUN mkdir -p /out/bin && echo tool > /out/bin/tool && echo other > /out/other\n\
FROM busybox:local\n\
RUN --mount=type=bind,source=src,target=/src cat /src/a.txt > /from-ctx && ! touch /src/new 2>/dev/null && ls /src > /ctx-list\n\
RUN --mount=type=bind,from=build,source=/out/bin,target=/tools cat /tools/tool > /from-stage && ls /tools > /stage-list\n\
RUN --mount=type=bind,from=build,source=/out/other,target=/one-file cat /one-file > /single\n\
RUN --mount=type=bind,source=.,target=/ctx,rw touch /ctx/scratch && ls /ctx > /rw-list\n\
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch > /tmpfs-list\n",
            ),
            ("src/a.txt", "from the context\n"),
            ("src/ignored.log", "no"),
            (".dockerignore", "*.log\nsrc/*.log\n"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    let read = |p: &str| fs::read_to_string(out.join(p)).unwrap();
    assert_eq!(read("from-ctx"), "from the context\n");
    assert_eq!(read("ctx-list"), "a.txt\n", ".dockerignore applies to bind mounts of the context");
    assert_eq!(read("from-stage"), "tool\n");
    assert_eq!(read("stage-list"), "tool\n", "source= picks a directory inside the stage");
    assert_eq!(read("single"), "other\n");
    assert!(read("rw-list").contains("scratch"));
    assert_eq!(read("tmpfs-list"), "x\n");
    for gone in ["src", "tools", "one-file", "ctx", "scratch"] {
        assert!(!out.join(gone).exists(), "mount point /{gone} must not be in the image");
    }
    assert!(!env.path("ctx/scratch").exists(), "a rw bind never writes the context");
}

#[test]
fn network_none_has_only_loopback_and_a_required_ssh_mount_needs_an_agent() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nRUN --network=none tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /ifaces\n\
RUN --network=host tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /host-ifaces\n",
    );
    // Other tests start containers (veth pairs) meanwhile: the host's
    // interfaces are read before and after, and the step must see exactly
    // the host's, give or take those that came or went during the build.
    let host_ifaces = || -> BTreeSet<String> {
        sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").lines().map(str::to_string).collect()
    };
    let before = host_ifaces();
    let (_, out) = build_local(&env, "ctx", &["--allow", "network.host"]);
    let after = host_ifaces();
    assert_eq!(fs::read_to_string(out.join("ifaces")).unwrap(), "lo\n");
    let seen: BTreeSet<String> =
        fs::read_to_string(out.join("host-ifaces")).unwrap().lines().map(str::to_string).collect();
    let stable: BTreeSet<String> = before.intersection(&after).cloned().collect();
    let ever: BTreeSet<String> = before.union(&after).cloned().collect();
    // A container's veth may also come and go within the build.
    let unknown: Vec<&String> = seen.difference(&ever).filter(|name| !name.starts_with("veth")).collect();
    assert!(
        stable.is_subset(&seen) && unknown.is_empty(),
        "the host's interfaces: the step saw {seen:?}, the host had {before:?} before and {after:?} after"
    );
    env.dockerfile("ssh", "FROM busybox:local\nRUN --mount=type=ssh,required=true ls /run/buildkit\n");
    let run = env.rbuild(&["build", "--progress", "plain", "ssh"]).failed();
    assert!(
        run.stderr.contains("needs SSH agent default") && run.stderr.contains("Dockerfile:2"),
        "{}",
        run.stderr
    );
}
