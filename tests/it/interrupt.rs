//! Interrupting a build: the step's processes die, its mounts go, rbuild
//! exits 130 (SIGINT) or 143 (SIGTERM), and nothing is half-committed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

fn interrupt_during_run(signal: nix_signal::Sig) {
    let env = Env::with_busybox();
    // A sleep whose argument no other process on the machine is likely to use.
    let seconds = format!("{}", 100_000 + std::process::id() * 2 + signal.exit_code() as u32);
    // The step prints "42-started", which its command line (shown in the
    // step's header) does not contain.
    env.dockerfile("ctx", &format!("FROM busybox:local\nRUN echo $((6 * 7))-started; sleep {seconds}\n"));
    let before = env.store_snapshot();
    let mut child = Command::new(RBUILD)
        .args(["--root", env.root.path().to_str().unwrap(), "build", "--progress", "plain", "ctx"])
        .current_dir(env.work.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = lines.next().expect("rbuild ended before the step started").unwrap();
        if line.contains("42-started") || Instant::now() > deadline {
            break;
        }
    }
    // The shell runs sleep next; on a loaded machine that can take a while.
    while sleepers(&seconds) == 0 {
        assert!(Instant::now() < deadline, "the step should be running");
        std::thread::sleep(Duration::from_millis(20));
    }
    sh(&format!("kill -{} {}", signal.name(), child.id()));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(signal.exit_code()), "exit code for SIG{}", signal.name());
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleepers(&seconds) > 0 {
        assert!(Instant::now() < deadline, "the step's processes must be killed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(env.root.path().to_str().unwrap()), "no mount of the store may be left");
    assert_eq!(env.store_snapshot(), before, "nothing half-committed");
    // The next build works.
    std::fs::write(env.path("ctx/Dockerfile"), "FROM busybox:local\nRUN echo ok > /ok\n").unwrap();
    env.rbuild(&["build", "ctx"]).ok();
}

/// Processes whose command line is exactly `sleep SECONDS`.
fn sleepers(seconds: &str) -> usize {
    let want = format!("sleep\0{seconds}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes()))
        .count()
}

mod nix_signal {
    #[derive(Clone, Copy)]
    pub enum Sig {
        Int,
        Term,
    }
    impl Sig {
        pub fn name(self) -> &'static str {
            match self {
                Sig::Int => "INT",
                Sig::Term => "TERM",
            }
        }
        pub fn exit_code(self) -> i32 {
            match self {
                Sig::Int => 130,
                Sig::Term => 143,
            }
        }
    }
}

#[test]
fn sigint_during_run_kills_the_step_and_exits_130() {
    require!(root(), busybox_static());
    interrupt_during_run(nix_signal::Sig::Int);
}

#[test]
fn sigterm_during_run_kills_the_step_and_exits_143() {
    require!(root(), busybox_static());
    interrupt_during_run(nix_signal::Sig::Term);
}
