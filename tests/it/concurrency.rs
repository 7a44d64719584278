//! Concurrency: eight builds at once on one store (four of one Dockerfile,
//! four of others, all sharing a tag with each other and with the images
//! being removed) while `rbuild rmi`, `rbuild image prune -f`, `rbuild
//! builder prune -f` and `rbuild image prune -a` (of a labelled image, built
//! over and over too) run over and over. Every build must succeed, no
//! command may crash, every tag must name an image afterwards, and
//! `rbuild system check` must find the store consistent.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::hostile_support::*;

const BUILDS: usize = 8;
const ROUNDS: usize = 2;

fn dockerfile(variant: usize) -> String {
    // Variant 0 is shared by half the builds; the others differ from it
    // after a common first step, so they share some layers and not others.
    format!(
        "FROM busybox:local\nCOPY common /common\n\
RUN mkdir -p /out && for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=/out/f$i bs=16k count=2 2>/dev/null; done\n\
RUN echo variant-{variant} > /variant\n\
COPY --from=busybox:local /bin/busybox /bb-{variant}\n"
    )
}

#[test]
fn eight_builds_with_rmi_and_prunes_running_against_them() {
    require!(root(), busybox_static());
    let started = Instant::now();
    let env = Env::with_busybox();
    let root = env.root.path().to_path_buf();
    for v in 0..=4 {
        env.context(&format!("ctx{v}"), &[("Dockerfile", &dockerfile(v)), ("common", "shared input\n")]);
    }
    // Images for rmi to take away while builds make the same ones again.
    env.rbuild(&["build", "-q", "-t", "conc:shared", "-t", "conc:victim", "ctx0"]).ok();
    // And one for `image prune -a` to select by its label, sharing the
    // builds' first layers, made again and again while the builds run.
    env.context(
        "ctx-victim",
        &[("Dockerfile", &format!("{}LABEL conc.victim=1\n", dockerfile(0))), ("common", "shared input\n")],
    );

    let stop = AtomicBool::new(false);
    let mut build_times = Vec::new();
    let mut cleaner_runs = 0usize;
    std::thread::scope(|scope| {
        let cleaner = scope.spawn(|| {
            let mut runs = 0usize;
            let commands: [&[&str]; 6] = [
                &["rmi", "-f", "conc:shared"],
                &["image", "prune", "-f"],
                &["builder", "prune", "-f"],
                &["rmi", "conc:victim"],
                &["image", "prune", "-a", "-f", "--filter", "label=conc.victim"],
                &["build", "-q", "-t", "conc:labelled-victim", "ctx-victim"],
            ];
            while !stop.load(Ordering::SeqCst) {
                let args = commands[runs % commands.len()];
                let out = Command::new(RBUILD)
                    .arg("--root")
                    .arg(&root)
                    .args(args)
                    .current_dir(env.work.path())
                    .output()
                    .unwrap();
                let code = out.status.code();
                assert!(
                    code == Some(0) || code == Some(1),
                    "rbuild {args:?} crashed ({code:?}):\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                runs += 1;
                std::thread::sleep(Duration::from_millis(30));
            }
            runs
        });
        for round in 0..ROUNDS {
            let builds: Vec<_> = (0..BUILDS)
                .map(|i| {
                    let variant = if i < BUILDS / 2 { 0 } else { i - BUILDS / 2 + 1 };
                    let own = format!("conc:r{round}-b{i}");
                    Command::new(RBUILD)
                        .arg("--root")
                        .arg(&root)
                        .args(["build", "--progress", "plain", "-t", &own, "-t", "conc:shared"])
                        .args(if round == 1 && i % 2 == 0 { &["--no-cache"][..] } else { &[][..] })
                        .arg(format!("ctx{variant}"))
                        .current_dir(env.work.path())
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let round_started = Instant::now();
            for (i, child) in builds.into_iter().enumerate() {
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "round {round}, build {i} failed while rmi and prunes ran:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            build_times.push(round_started.elapsed());
        }
        stop.store(true, Ordering::SeqCst);
        cleaner_runs = cleaner.join().unwrap();
    });
    assert_store_consistent(&env, "concurrent builds, rmi and prunes");
    // Every build's own tag survives (only conc:shared and conc:victim were
    // removed) and names a complete image.
    for round in 0..ROUNDS {
        for i in 0..BUILDS {
            let tag = format!("conc:r{round}-b{i}");
            env.rbuild(&["inspect", "--format", "{{.Id}}", &tag]).ok();
        }
    }
    assert_eq!(scratch_left(env.root.path()), Vec::<String>::new());
    eprintln!(
        "concurrency: {ROUNDS} rounds of {BUILDS} builds took {build_times:?}; {cleaner_runs} rmi/prune runs; {:?} in all",
        started.elapsed()
    );
}
