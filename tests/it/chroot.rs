//! `--isolation=chroot` on the host, where a private mount namespace can
//! still be made: the step is chrooted as its USER with that user's groups,
//! Docker's capabilities, Docker's seccomp filter, `--ulimit`s, umask 022,
//! a mounted /proc and the standard devices; what it leaves running is
//! killed when it ends; and the image is the sandbox's. What it shares
//! (hostname, processes) is said once. The no-mount variant, in a
//! container, is `ci_containers.rs`; here, in such a container too, what
//! a step leaves running is ended as a PID namespace's end would: when
//! its main process exits, when its helper is killed, and when the build
//! is interrupted or rbuild killed.

use std::time::{Duration, Instant};

use crate::containers::{IMAGE, debian_in_docker};
use crate::harness::*;
use crate::isolation::DOCKER_DEFAULT_CAPS;

const PROBE: &str = "FROM busybox:local\n\
RUN mkdir -m 777 /results && echo extra:x:2000:app >> /etc/group\n\
USER app\n\
RUN grep -E '^(SigBlk|CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status | tr -s '\\t ' ' ' > /results/status; \
id > /results/id; umask > /results/umask; ulimit -n > /results/nofile; \
head -c 8 /dev/urandom | wc -c > /results/urandom; echo x > /dev/null; hostname > /results/hostname; \
(sleep 86399 &) ; true\n";

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
        format!(
            "SigBlk: 0000000000000000\nCapEff: 0000000000000000\nCapBnd: {DOCKER_DEFAULT_CAPS}\nNoNewPrivs: 0\nSeccomp: 2"
        )
    );
    assert_eq!(read("id"), "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)");
    assert_eq!(read("umask"), "0022");
    assert_eq!(read("nofile"), "123");
    assert_eq!(read("urandom"), "8");
    let host_name = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    assert_eq!(read("hostname"), host_name, "no UTS namespace: the host's name, as the build said");
    let leftovers = sh("ps -eo args | grep -c '^sleep 86399$' || true");
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

/// A step that leaves processes behind: a writer that waits for the step's
/// helper (its parent) to be gone and then writes into the root, a
/// `setsid`'d daemon double-forked away from the step, and a background
/// sleep holding the step's output open.
const LEAVES_PROCESSES: &str = "FROM busybox:local\n\
RUN helper=$PPID; (while kill -0 $helper 2>/dev/null; do :; done; echo late > /late) >/dev/null 2>&1 & \
(setsid sh -c 'exec sleep 86401' >/dev/null 2>&1 &); sleep 86402 & echo done > /done\n";

/// A step that is still running when its build is interrupted or its
/// helper killed, as USER app (whose processes rbuild, root without
/// CAP_SYS_PTRACE, may signal but not look into), with a `setsid`'d
/// daemon and a background sleep.
const STILL_RUNNING: &str = "FROM busybox:local\nUSER app\n\
RUN (setsid sh -c 'exec sleep 86403' >/dev/null 2>&1 &); sleep 86404 & echo started-$((6*7)); exec sleep 86405\n";

/// Lists the step's processes still alive in the container: the sleeps
/// above, and anything whose root is in the store.
const LIST_LEFTOVERS: &str = r#"for p in /proc/[0-9]*; do
  c=$(tr '\0' ' ' < $p/cmdline 2>/dev/null) || continue
  case "$c" in "sleep 8640"*) echo "alive: ${p#/proc/} $c";; esac
  r=$(readlink $p/root 2>/dev/null) && case "$r" in /store*) echo "alive: ${p#/proc/} rooted at $r";; esac
done; true"#;

/// A container under Docker's default profile (chroot isolation, no
/// mount) running `rbuild build` on `work/ctx` in its foreground, kept
/// alive after the build so that what the build left running can be
/// looked for (the container's end would kill it all).
struct BuildContainer {
    name: String,
    work: std::path::PathBuf,
}

impl BuildContainer {
    fn start(env: &Env) -> BuildContainer {
        let name = format!("rbuild-chroot-test-{}", env.work.path().file_name().unwrap().to_string_lossy());
        let bin = format!("{RBUILD}:/usr/local/bin/rbuild:ro");
        let vol = format!("{}:/work", env.work.path().display());
        let script = "rbuild --root /store load -i /work/busybox.tar >/dev/null
             set +e
             rbuild --root /store build --progress plain -o type=tar,dest=/work/out.tar /work/ctx >/work/log 2>&1
             echo $? > /work/exit.tmp && mv /work/exit.tmp /work/exit
             exec sleep 600";
        sh(&format!("docker rm -f {name} >/dev/null 2>&1 || true"));
        crate::containers::ok(crate::containers::docker_cli(&[
            "run", "-d", "--name", &name, "-v", &bin, "-v", &vol, IMAGE, "sh", "-ec", script,
        ]));
        BuildContainer { name, work: env.work.path().to_path_buf() }
    }

    fn exec(&self, script: &str) -> String {
        crate::containers::ok(crate::containers::docker_cli(&["exec", &self.name, "sh", "-c", script])).stdout
    }

    /// Waits until the step has printed its line and its three sleeps run.
    fn wait_for_step(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = std::fs::read_to_string(self.work.join("log")).unwrap_or_default();
            if log.contains("started-42") && self.leftovers().matches("sleep 8640").count() == 3 {
                return;
            }
            assert!(Instant::now() < deadline, "the step did not start:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` to the container's processes whose command line
    /// starts with `command`.
    fn signal(&self, signal: &str, command: &str) {
        self.exec(&format!(
            r#"for p in /proc/[0-9]*; do case "$(tr '\0' ' ' < $p/cmdline)" in "{command}"*) kill -{signal} ${{p#/proc/}};; esac; done"#
        ));
    }

    /// rbuild's exit code and output, once it has ended (at most a
    /// minute: a step's process holding its output open must not hold
    /// the build).
    fn finish(&self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let log = || std::fs::read_to_string(self.work.join("log")).unwrap_or_default();
        while !self.work.join("exit").exists() {
            assert!(Instant::now() < deadline, "rbuild did not end:\n{}", log());
            std::thread::sleep(Duration::from_millis(100));
        }
        let code = std::fs::read_to_string(self.work.join("exit")).unwrap().trim().parse().unwrap();
        (code, log())
    }

    fn leftovers(&self) -> String {
        self.exec(LIST_LEFTOVERS)
    }
}

impl Drop for BuildContainer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

fn container_with(dockerfile: &str) -> (Env, BuildContainer) {
    let env = crate::containers::host_with_app();
    env.dockerfile("ctx", dockerfile);
    let container = BuildContainer::start(&env);
    (env, container)
}

#[test]
fn chroot_steps_in_a_container_end_what_they_leave_running_before_the_layer_is_made() {
    require!(root(), busybox_static(), docker(), debian_in_docker());
    let (env, container) = container_with(LEAVES_PROCESSES);
    let (code, log) = container.finish();
    assert_eq!(code, 0, "{log}");
    assert!(log.starts_with("isolation: chroot, without mounts"), "{log}");
    assert_eq!(container.leftovers(), "", "no process of the step is alive after the build");
    let files = sh(&format!("tar -tf {}", env.path("out.tar").display()));
    assert!(files.lines().any(|f| f.trim_start_matches("./") == "done"), "{files}");
    assert!(
        !files.lines().any(|f| f.trim_start_matches("./") == "late"),
        "the background writer was killed before it could write into the layer: {files}"
    );
}

#[test]
fn a_killed_chroot_helper_leaves_no_process_of_its_step() {
    require!(root(), busybox_static(), docker(), debian_in_docker());
    let (_env, container) = container_with(STILL_RUNNING);
    container.wait_for_step();
    container.signal("KILL", "/usr/local/bin/rbuild __sandbox");
    let (code, log) = container.finish();
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("the sandbox helper was killed by signal 9 before the step ended"), "{log}");
    assert_eq!(container.leftovers(), "", "no process of the step is alive after the build");
}

fn interrupted_chroot_build_leaves_nothing_running(signal: &str, exit_code: i32) {
    let (_env, container) = container_with(STILL_RUNNING);
    container.wait_for_step();
    container.signal(signal, "rbuild --root /store build");
    let (code, log) = container.finish();
    assert_eq!(code, exit_code, "{log}");
    assert_eq!(container.leftovers(), "", "no process of the step is alive after SIG{signal}");
}

#[test]
fn a_chroot_build_interrupted_by_sigint_leaves_no_process_of_its_step() {
    require!(root(), busybox_static(), docker(), debian_in_docker());
    interrupted_chroot_build_leaves_nothing_running("INT", 130);
}

#[test]
fn a_chroot_build_interrupted_by_sigterm_leaves_no_process_of_its_step() {
    require!(root(), busybox_static(), docker(), debian_in_docker());
    interrupted_chroot_build_leaves_nothing_running("TERM", 143);
}

#[test]
fn a_chroot_build_killed_with_sigkill_leaves_no_process_of_its_step() {
    require!(root(), busybox_static(), docker(), debian_in_docker());
    interrupted_chroot_build_leaves_nothing_running("KILL", 137);
}
