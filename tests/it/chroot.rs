//! `--isolation=chroot` on the host, where a private mount namespace can
//! still be made: the step is chrooted as its USER with that user's groups,
//! Docker's capabilities, Docker's seccomp filter, `--ulimit`s, umask 022,
//! a mounted /proc and the standard devices; what it leaves running is
//! killed when it ends; and the image is the sandbox's. What it shares
//! (hostname, processes) is said once. The no-mount variant, in a
//! container, is `ci_containers.rs`.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::isolation::DOCKER_DEFAULT_CAPS;

const PROBE: &str = "FROM busybox:local\n\
RUN mkdir -m 777 /results && echo extra:x:2000:app >> /etc/group\n\
USER app\n\
RUN grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status | tr -s '\\t ' ' ' > /results/status; \
id > /results/id; umask > /results/umask; ulimit -n > /results/nofile; \
head -c 8 /dev/urandom | wc -c > /results/urandom; echo x > /dev/null; hostname > /results/hostname; \
(sleep 300 &) ; true\n";

#[test]
fn chroot_steps_keep_user_capabilities_seccomp_and_limits_and_leave_nothing_running() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", PROBE);
    let out = env.path("out");
    let dest = format!("type=local,dest={}", out.display());
    let started = Instant::now();
    let run = env
        .rbuild_with(
            &["build", "--progress", "plain", "--ulimit", "nofile=123:456", "-o", &dest, "ctx"],
            None,
            &[("RBUILD_ISOLATION", "chroot")],
        )
        .ok();
    assert!(started.elapsed() < Duration::from_secs(60), "the background sleep did not hold the build");
    assert!(run.stderr.starts_with("isolation: chroot, with a mount namespace"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("can see and signal rbuild's own processes").count(), 1, "{}", run.stderr);
    let read =
        |name: &str| std::fs::read_to_string(out.join("results").join(name)).unwrap().trim().to_string();
    assert_eq!(
        read("status"),
        format!("CapEff: 0000000000000000\nCapBnd: {DOCKER_DEFAULT_CAPS}\nNoNewPrivs: 0\nSeccomp: 2")
    );
    assert_eq!(read("id"), "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)");
    assert_eq!(read("umask"), "0022");
    assert_eq!(read("nofile"), "123");
    assert_eq!(read("urandom"), "8");
    let host_name = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    assert_eq!(read("hostname"), host_name, "no UTS namespace: the host's name, as the build said");
    let leftovers = sh("ps -eo args | grep -c '^sleep 300$' || true");
    assert_eq!(leftovers.trim(), "0", "the step's background process was killed");

    // The same image as under the sandbox.
    crate::registry::app_context(&env, "busybox:local");
    let ids: Vec<String> = ["chroot", "sandbox"]
        .iter()
        .map(|iso| {
            let file = env.path(&format!("{iso}.iid"));
            env.rbuild_with(
                // --no-cache: the isolation is not in the cache key, so
                // the second build must run its steps again to compare.
                &["build", "--no-cache", "--isolation", iso, "--iidfile", file.to_str().unwrap(), "app"],
                None,
                &[("SOURCE_DATE_EPOCH", "1700000000")],
            )
            .ok();
            std::fs::read_to_string(file).unwrap()
        })
        .collect::<Vec<_>>();
    assert_eq!(ids[0], ids[1], "chroot and sandbox build the same image");
}
