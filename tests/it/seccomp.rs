//! A RUN step runs under Docker's default hardening, checked against Docker
//! itself: one static probe (`seccomp_probe.c`, built here with gcc) tries
//! each syscall family Docker's seccomp profile restricts and reads each
//! path Docker masks or makes read-only; run as a RUN step and by `docker
//! run` of the same image, it must print the same line for each. Also: the
//! step is under a filter (`Seccomp: 2`), `unshare -r` fails, and setuid
//! binaries still work (no_new_privs stays off, as in Docker).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::*;

/// Probes whose Docker result changed in moby after the `docker` a test
/// machine may have (Debian bookworm's is 20.10): (probe, what an older
/// Docker prints, the first major version that agrees with rbuild, why).
/// rbuild follows the moby release named in its profile's `follows`.
const CHANGED_IN_MOBY: &[(&str, &str, u32, &str)] = &[
    ("socket_vsock", "ok", 24, "moby 24 blocks AF_VSOCK sockets"),
    ("name_to_handle_at", "EPERM", 25, "moby 25 allows name_to_handle_at"),
    ("io_uring_setup", "ok", 25, "moby 25 removed io_uring from the default profile"),
    ("read /proc/interrupts", "data", 29, "moby masks /proc/interrupts since 2025 (GHSA-6fw5-f8r9-fgfm)"),
];

/// Builds the probe as a static binary into `dir`.
fn build_probe(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/seccomp_probe.c");
    let out = dir.join("probe");
    sh(&format!("gcc -static -O1 -o {} {}", out.display(), source.display()));
    out
}

/// `name: result` lines as a map, keeping their order for messages.
fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.rsplit_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn docker_major() -> u32 {
    let v = sh("docker version --format '{{.Server.Version}}'");
    v.trim().split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0)
}

#[test]
fn a_run_step_and_docker_run_see_the_same_syscalls_and_kernel_files() {
    require!(root(), busybox_static(), docker(), tool("gcc"));
    let env = Env::with_busybox();
    let ctx = env.dockerfile(
        "ctx",
        "FROM busybox:local\nCOPY probe /probe\nRUN mkdir /results && /probe > /results/probe.txt\n",
    );
    build_probe(&ctx);
    let out = env.path("out");
    env.rbuild(&["build", "--progress", "plain", "-o", &format!("type=local,dest={}", out.display()), "ctx"])
        .ok();
    let ours = parse(&fs::read_to_string(out.join("results/probe.txt")).unwrap());

    let tag = DockerTag::new("seccomp-probe");
    let tar = env.path("probe.tar");
    env.rbuild(&["build", "-t", &tag.0, "-o", &format!("type=docker,dest={}", tar.display()), "ctx"]).ok();
    sh(&format!("docker load -i {}", tar.display()));
    // Docker's default profile and masks: no --privileged, no --security-opt.
    let theirs = parse(&sh(&format!("docker run --rm --network none {} /probe", tag.0)));

    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "the same probes ran");
    let docker_major = docker_major();
    let mut differ = Vec::new();
    for (probe, mine) in &ours {
        let docker = &theirs[probe];
        if mine == docker {
            continue;
        }
        let explained = CHANGED_IN_MOBY
            .iter()
            .any(|(p, old, fixed_in, _)| p == probe && docker == old && docker_major < *fixed_in);
        if !explained {
            differ.push(format!("{probe}: rbuild {mine}, docker {docker}"));
        }
    }
    assert!(
        differ.is_empty(),
        "a RUN step differs from `docker run` (Docker {docker_major}):\n{}",
        differ.join("\n")
    );
    // What both must show, so that two unconfined runs cannot pass.
    let mut expected = vec![
        ("status Seccomp", "2"),
        ("status NoNewPrivs", "0"),
        ("unshare_user", "EPERM"),
        ("clone_newuser", "EPERM"),
        ("clone3", "ENOSYS"),
        ("clone_plain", "ok"),
        ("keyctl", "EPERM"),
        ("bpf", "EPERM"),
        ("mount", "EPERM"),
        ("io_uring_setup", "EPERM"),
        ("personality_no_randomize", "EPERM"),
        ("personality_linux32", "ok"),
        ("read /proc/interrupts", "empty"),
        ("mount /proc/sys", "ro"),
    ];
    if cfg!(target_arch = "x86_64") {
        // A 32-bit binary's syscalls are judged by the i386 table, not killed.
        expected.extend([("i386_getpid", "ok"), ("i386_unshare_user", "EPERM")]);
    }
    for (probe, expected) in expected {
        assert_eq!(ours.get(probe).map(String::as_str), Some(expected), "{probe} in a RUN step");
    }
}

#[test]
fn a_run_step_cannot_make_a_user_namespace_and_setuid_still_works() {
    require!(root(), busybox_static(), tool("gcc"));
    let env = Env::with_busybox();
    let ctx = env.dockerfile(
        "ctx",
        "FROM busybox:local\nCOPY probe /probe\n\
         RUN mkdir -m 777 /results && chmod 4755 /probe && grep ^Seccomp: /proc/self/status > /results/status && \
         (unshare -r -m sh -c id) > /results/unshare 2>&1; echo $? > /results/unshare_code\n\
         USER app\n\
         RUN /probe euid > /results/setuid_euid\n",
    );
    build_probe(&ctx);
    let out = env.path("out");
    env.rbuild(&["build", "--progress", "plain", "-o", &format!("type=local,dest={}", out.display()), "ctx"])
        .ok();
    let read = |name: &str| fs::read_to_string(out.join("results").join(name)).unwrap().trim().to_string();
    assert_eq!(read("status"), "Seccomp:\t2", "a seccomp filter is installed");
    assert_ne!(read("unshare_code"), "0", "unshare -r must fail: {}", read("unshare"));
    assert!(read("unshare").contains("Operation not permitted"), "{}", read("unshare"));
    assert_eq!(read("setuid_euid"), "0", "a setuid-root binary run by `app` gets euid 0");
}

#[test]
fn security_insecure_runs_unconfined_only_with_the_builds_permission() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let dockerfile = "FROM busybox:local\n\
         RUN --security=insecure mkdir /results && grep ^Seccomp: /proc/self/status > /results/insecure_status && \
         wc -c < /proc/timer_list > /results/insecure_timer_list && \
         (unshare -r -m true) 2>/dev/null; echo $? > /results/insecure_unshare\n\
         RUN grep ^Seccomp: /proc/self/status > /results/status && wc -c < /proc/timer_list > /results/timer_list\n";
    env.dockerfile("ctx", dockerfile);
    let refused = env.rbuild(&["build", "--progress", "plain", "ctx"]).failed();
    assert!(
        refused.stderr.contains("Dockerfile:2") && refused.stderr.contains("--allow security.insecure"),
        "{}",
        refused.stderr
    );
    let bogus = env.rbuild(&["build", "--allow", "security.everything", "ctx"]).failed();
    assert!(bogus.stderr.contains("security.everything"), "{}", bogus.stderr);

    let out = env.path("out");
    let dest = format!("type=local,dest={}", out.display());
    env.rbuild(&["build", "--progress", "plain", "--allow", "security.insecure", "-o", &dest, "ctx"]).ok();
    let read = |name: &str| fs::read_to_string(out.join("results").join(name)).unwrap().trim().to_string();
    assert_eq!(read("insecure_status"), "Seccomp:\t0", "no filter for an insecure step");
    assert_eq!(read("insecure_unshare"), "0", "an insecure step may make namespaces");
    assert_ne!(read("insecure_timer_list"), "0", "/proc/timer_list is not masked");
    assert_eq!(read("status"), "Seccomp:\t2", "the next step is sandboxed again");
    assert_eq!(read("timer_list"), "0", "and its /proc/timer_list masked");

    // The same command without the flag is another step: never the
    // insecure one's cached result.
    env.dockerfile("sandboxed", &dockerfile.replace("RUN --security=insecure ", "RUN "));
    let out = env.path("out-sandboxed");
    let dest = format!("type=local,dest={}", out.display());
    env.rbuild(&["build", "--progress", "plain", "--allow", "security.insecure", "-o", &dest, "sandboxed"])
        .ok();
    let status = fs::read_to_string(out.join("results/insecure_status")).unwrap();
    assert_eq!(status.trim(), "Seccomp:\t2", "ran again, under the filter");
}
