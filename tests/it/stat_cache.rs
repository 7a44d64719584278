//! The context's stat cache seen from outside: a rebuild reads no context
//! file the cache vouches for, and sees every edit, also one made right
//! after a build that keeps the file's size and modification time (within
//! a coarse clock tick its ctime may be all that moves, or not even that).

use std::fs;
use std::time::Duration;

use crate::harness::*;

const DOCKERFILE: &str = "FROM busybox:local\nCOPY src/ /src/\nRUN cat /src/* > /all\n";

/// A context of `Dockerfile` and `src/f00`…`src/f19`, written just now
/// (as a fresh checkout is).
fn fresh_checkout(env: &Env) {
    let mut files = vec![("Dockerfile".to_string(), DOCKERFILE.to_string())];
    files.extend((0..20).map(|i| (format!("src/f{i:02}"), format!("file {i:02}\n"))));
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    env.context("ctx", &refs);
}

/// `rbuild build` with the debug log; returns the run and how many context
/// files it read (the `context stat cache` line of the log).
fn build_counting_reads(env: &Env, extra: &[&str]) -> (Run, usize) {
    let mut args = vec!["build", "--progress", "plain", "-t", "sc:1"];
    args.extend_from_slice(extra);
    args.push("ctx");
    let run = env.rbuild_with(&args, None, &[("RBUILD_LOG", "rbuild_builder=debug")]).ok();
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("context stat cache"))
        .unwrap_or_else(|| panic!("no stat cache summary in the debug log:\n{}", run.stderr));
    let read = field(line, "files_hashed") + field(line, "racy_files_reread");
    (run, read)
}

fn field(line: &str, name: &str) -> usize {
    let value = line.split(&format!("{name}=")).nth(1).unwrap_or_else(|| panic!("no {name} in {line}"));
    value.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

fn copy_ran(run: &Run) -> bool {
    run.run_lines().iter().any(|l| l.contains("COPY src/"))
}

#[test]
fn the_first_rebuild_after_a_fresh_checkout_reads_no_file() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    fresh_checkout(&env);
    let (_, cold) = build_counting_reads(&env, &["--no-cache"]);
    assert!(cold >= 20, "the cold build reads every source file: {cold}");
    let (noop, read) = build_counting_reads(&env, &[]);
    assert!(noop.run_lines().is_empty(), "nothing changed:\n{}", noop.stderr);
    assert_eq!(read, 0, "the first no-op rebuild read context files:\n{}", noop.stderr);
}

/// Rewrites `path` in place with `content` (the same size), then puts the
/// modification time back to `mtime`.
fn rewrite_keeping_mtime(path: &std::path::Path, content: &str, mtime: std::time::SystemTime) {
    fs::write(path, content).unwrap();
    fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
}

#[test]
fn a_same_size_edit_right_after_a_build_is_seen_whatever_its_mtime() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    fresh_checkout(&env);
    let file = env.path("ctx/src/f07");
    build_counting_reads(&env, &[]);
    // Same size, the very same mtime: only the ctime can tell.
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    rewrite_keeping_mtime(&file, "FILE 07\n", mtime);
    let (run, _) = build_counting_reads(&env, &[]);
    assert!(copy_ran(&run), "an edit keeping size and mtime went unseen:\n{}", run.stderr);
    // Same size, the same second, other nanoseconds.
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    let since_epoch = mtime.duration_since(std::time::UNIX_EPOCH).unwrap();
    let nanos = (since_epoch.subsec_nanos() + 1) % 1_000_000_000;
    let same_second = std::time::UNIX_EPOCH + Duration::new(since_epoch.as_secs(), nanos);
    rewrite_keeping_mtime(&file, "fIlE 07\n", same_second);
    let (run, _) = build_counting_reads(&env, &[]);
    assert!(copy_ran(&run), "an edit within the same mtime second went unseen:\n{}", run.stderr);
    let out = env.path("out");
    env.rbuild(&["build", "-q", "-o", &format!("type=local,dest={}", out.display()), "ctx"]).ok();
    assert!(fs::read_to_string(out.join("all")).unwrap().contains("fIlE 07\n"));
}

#[test]
fn a_file_replaced_by_a_rename_right_after_a_build_is_seen() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    fresh_checkout(&env);
    let file = env.path("ctx/src/f11");
    build_counting_reads(&env, &[]);
    // An editor's save: a new file of the same size and mtime renamed over it.
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    let replacement = env.path("ctx/src/.f11.swp");
    rewrite_keeping_mtime(&replacement, "FILE 11\n", mtime);
    fs::rename(&replacement, &file).unwrap();
    let (run, read) = build_counting_reads(&env, &[]);
    assert!(copy_ran(&run), "a replaced file went unseen:\n{}", run.stderr);
    assert!(read >= 1, "the replaced file must be read:\n{}", run.stderr);
}
