//! Crashes: rbuild is killed with SIGKILL at pseudo-random moments during
//! build, load, save and pull (from a registry the test starts), more than
//! fifty times in all. After every kill the store must check clean
//! (`rbuild system check` exits 0), the dead process's scratch must be gone
//! once the next command has run (`tmp/` empty), no mount and no sandbox
//! process may be left, no temp file may be left among the store's files,
//! a save's destination must be absent or complete, and the same command
//! must then succeed.
//!
//! The delays come from a seeded generator: set `RBUILD_CRASH_SEED` to
//! repeat a failing run; the seed in use is printed.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::hostile_support::*;

/// Kills per command kind: 4 kinds × 13 = 52.
const KILLS_PER_KIND: usize = 13;

/// Starts rbuild on `root` with `args`, kills it after `delay`, and tells
/// whether it was still running then (a kill) or had already finished.
fn kill_after(root: &Path, cwd: &Path, args: &[String], delay: Duration) -> bool {
    let mut child = Command::new(RBUILD)
        .arg("--root")
        .arg(root)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// Runs rbuild to the end, panicking unless it succeeds.
fn run_ok(root: &Path, cwd: &Path, args: &[String], what: &str) -> Duration {
    let started = Instant::now();
    let out = Command::new(RBUILD).arg("--root").arg(root).args(args).current_dir(cwd).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: `rbuild {}` failed after a crash:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

/// Files among the store's own (outside `tmp/` and the layer snapshots)
/// whose names mark them as unfinished writes.
fn stray_temp_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == "tmp" || rel.ends_with("/fs") || rel.starts_with("state/cache-mounts") {
                continue;
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(path);
            } else if rel.contains(".tmp") || rel.contains(".new-") {
                out.push(rel);
            }
        }
    }
    out
}

/// Processes whose command line mentions `root` (sandbox helpers carry
/// their spec's path there).
fn processes_using(root: &Path) -> Vec<String> {
    let needle = root.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(&needle) {
                found.push(format!("{name}: {text}"));
            }
        }
    }
    found
}

/// What must hold after a kill, checked with the next commands.
fn check_after_kill(root: &Path, cwd: &Path, what: &str) {
    let check = Command::new(RBUILD).arg("--root").arg(root).args(["system", "check"]).output().unwrap();
    assert!(
        check.status.success(),
        "{what}: system check after the kill:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(scratch_left(root), Vec::<String>::new(), "{what}: scratch left in tmp/");
    assert_eq!(mounts_under(root), Vec::<String>::new(), "{what}: mounts left under the store");
    assert_eq!(stray_temp_files(root), Vec::<String>::new(), "{what}: unfinished writes left in the store");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_using(root);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{what}: processes left running: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = cwd;
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A layer tar holding `size` pseudo-random bytes.
fn random_layer(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        data.extend_from_slice(&rng.next().to_le_bytes());
    }
    RawTar::new().dir("data/").file("data/blob", &data).finish()
}

#[test]
fn sigkill_at_random_moments_leaves_a_consistent_store() {
    require!(root(), busybox_static(), registry());
    let seed: u64 =
        std::env::var("RBUILD_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_c0de);
    eprintln!("crash test seed: {seed} (set RBUILD_CRASH_SEED to repeat)");
    let mut rng = Rng::new(seed);
    let started = Instant::now();

    let env = Env::with_busybox();
    let root = env.root.path().to_path_buf();
    let cwd = env.work.path().to_path_buf();
    let mut big = Vec::new();
    while big.len() < 3 << 20 {
        big.extend_from_slice(&rng.next().to_le_bytes());
    }
    fs::create_dir_all(env.path("ctx")).unwrap();
    fs::write(env.path("ctx/big"), &big).unwrap();
    fs::write(
        env.path("ctx/Dockerfile"),
        "FROM busybox:local\nCOPY big /big\nARG N\n\
RUN echo $N > /n && cp -a /bin /bin-copy && dd if=/dev/zero of=/zeros bs=64k count=16 2>/dev/null\n\
RUN echo second-$N > /second\nCOPY --from=busybox:local /etc /etc-copy\n",
    )
    .unwrap();

    // One untouched run of each command, to time it.
    let build_args = |n: usize| {
        strings(&[
            "build",
            "--progress",
            "plain",
            "--build-arg",
            &format!("N={n}"),
            "-t",
            "crash:latest",
            "ctx",
        ])
    };
    let build_time = run_ok(&root, &cwd, &build_args(0), "first build");
    let saved = env.path("saved.tar");
    let save_args = strings(&["save", "-o", saved.to_str().unwrap(), "crash:latest"]);
    let save_time = run_ok(&root, &cwd, &save_args, "first save");
    // What the last complete save wrote (builds below retag crash:latest,
    // so each complete save may differ from the one before).
    let mut last_complete_save = fs::read(&saved).unwrap();
    let load_file = env.path("load.tar");
    let load_args = strings(&["load", "-i", load_file.to_str().unwrap()]);
    fs::write(&load_file, docker_archive("loaded:0", &[random_layer(&mut rng, 4 << 20)])).unwrap();
    let load_time = run_ok(&root, &cwd, &load_args, "first load");

    let registry = TestRegistry::start();
    let remote = registry.at("crash/app:1");
    run_ok(&root, &cwd, &strings(&["tag", "crash:latest", &remote]), "tag for push");
    run_ok(&root, &cwd, &strings(&["push", "-q", &remote]), "push");
    // Pulls go to a store of their own, emptied before each one so every
    // pull downloads.
    let pull_env = Env::new();
    let pull_root = pull_env.root.path().to_path_buf();
    let pull_args = strings(&["pull", "-q", &remote]);
    let pull_time = run_ok(&pull_root, &cwd, &pull_args, "first pull");
    let empty_pull_store = |what: &str| {
        let _ = Command::new(RBUILD).arg("--root").arg(&pull_root).args(["rmi", "-f", &remote]).output();
        run_ok(&pull_root, &cwd, &strings(&["builder", "prune", "-a", "-f"]), what);
    };
    eprintln!("untouched: build {build_time:?}, save {save_time:?}, load {load_time:?}, pull {pull_time:?}");

    let mut kills = [0usize; 4];
    let mut attempts = 0;
    while kills.iter().any(|k| *k < KILLS_PER_KIND) {
        attempts += 1;
        assert!(attempts < 400, "could not land {KILLS_PER_KIND} kills per command: {kills:?}");
        let kind = attempts % 4;
        if kills[kind] >= KILLS_PER_KIND {
            continue;
        }
        let n = attempts;
        let (store, args, typical) = match kind {
            0 => (&root, build_args(n), build_time),
            1 => (&root, save_args.clone(), save_time),
            2 => {
                let layer = random_layer(&mut rng, 4 << 20);
                fs::write(&load_file, docker_archive(&format!("loaded:{n}"), &[layer])).unwrap();
                (&root, load_args.clone(), load_time)
            }
            _ => {
                empty_pull_store("emptying the pull store");
                (&pull_root, pull_args.clone(), pull_time)
            }
        };
        let window = typical.as_millis().max(20) as u64;
        let delay = Duration::from_millis(rng.below(window));
        let what = format!("{} #{} killed after {delay:?}", args[0], kills[kind] + 1);
        if !kill_after(store, &cwd, &args, delay) {
            // It finished first: a complete save like any other.
            if kind == 1 {
                last_complete_save = fs::read(&saved).unwrap();
            }
            continue;
        }
        kills[kind] += 1;
        check_after_kill(store, &cwd, &what);
        let after_kill = if kind == 1 { fs::read(&saved).ok() } else { None };
        if kind == 3 {
            empty_pull_store("emptying the pull store after a kill");
        }
        run_ok(store, &cwd, &args, &what);
        if let Some(after_kill) = after_kill {
            // The destination is a complete archive, never a part: the one
            // before, or (the kill came as it finished) the one the same
            // save writes again now.
            let complete_now = fs::read(&saved).unwrap();
            assert!(
                after_kill == last_complete_save || after_kill == complete_now,
                "{what}: save left a partial archive ({} bytes, first difference at {:?}; complete ones have {} and {} bytes)",
                after_kill.len(),
                after_kill.iter().zip(&complete_now).position(|(a, b)| a != b),
                last_complete_save.len(),
                complete_now.len()
            );
            last_complete_save = complete_now;
        }
        assert_eq!(scratch_left(store), Vec::<String>::new(), "{what}: scratch left after the next command");
    }
    let leftovers: Vec<String> = fs::read_dir(&cwd)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("rbuild-save"))
        .collect();
    eprintln!(
        "crash test: {} kills ({kills:?} build/save/load/pull) in {attempts} attempts, {:?}; temp files a killed save left beside its destination: {leftovers:?}",
        kills.iter().sum::<usize>(),
        started.elapsed()
    );
    assert_store_consistent(&env, "all kills");
}
