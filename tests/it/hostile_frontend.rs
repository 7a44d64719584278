//! Dockerfiles and ignore files built to exhaust the parser: 100,000 lines,
//! one 10 MB line, variable substitution nested thousands deep, and
//! `.dockerignore` patterns that make a naive matcher take exponential
//! time. Each must end, in seconds, with a result or a clear error — never
//! a crash (a signal) and never a hang.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::hostile_support::*;

/// Runs rbuild in `arena` and kills it after `limit`; returns the exit code
/// (`None` when killed by a signal) and stderr, and how long it took.
fn run_bounded(arena: &Arena, args: &[&str], limit: Duration) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(RBUILD)
        .arg("--root")
        .arg(arena.env.root.path())
        .args(args)
        .current_dir(arena.env.work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut text);
        text
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let text = reader.join().unwrap();
            return (status.code(), text, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rbuild {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Builds `dockerfile` (with an optional `.dockerignore`) and expects an
/// exit code of 0 or 1, within `limit`.
fn bounded_build(
    arena: &Arena,
    case: &str,
    dockerfile: &[u8],
    ignore: Option<&[u8]>,
    limit: Duration,
) -> (i32, String) {
    let dir = arena.path(case);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    if let Some(ignore) = ignore {
        fs::write(dir.join(".dockerignore"), ignore).unwrap();
    }
    let (code, stderr, took) = run_bounded(arena, &["build", "--progress", "plain", case], limit);
    let code =
        code.unwrap_or_else(|| panic!("case {case}: rbuild was killed by a signal\n{}", tail(&stderr)));
    assert!(code == 0 || code == 1, "case {case}: exit code {code}\n{}", tail(&stderr));
    eprintln!("case {case}: exit {code} in {took:?}");
    arena.assert_nothing_escaped(case);
    (code, stderr)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[test]
fn a_dockerfile_of_100000_lines_builds_in_seconds() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let mut text = String::from("FROM busybox:local\n");
    for i in 0..99_998 {
        match i % 4 {
            0 => text.push_str(&format!("# comment {i}\n")),
            1 => text.push_str(&format!("LABEL l{i}=v{i}\n")),
            2 => text.push_str(&format!("ARG A{i}=x\n")),
            _ => text.push('\n'),
        }
    }
    text.push_str("RUN echo done\n");
    assert_eq!(text.lines().count(), 100_000);
    let (code, stderr) = bounded_build(&arena, "lines", text.as_bytes(), None, Duration::from_secs(60));
    assert_eq!(code, 0, "{}", tail(&stderr));
}

#[test]
fn a_10_megabyte_line_is_handled() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let big = "a".repeat(10 << 20);
    // In a label: stored in the image config.
    let text = format!("FROM busybox:local\nLABEL big={big}\n");
    let (code, stderr) = bounded_build(&arena, "label", text.as_bytes(), None, Duration::from_secs(60));
    assert_eq!(code, 0, "{}", tail(&stderr));
    // As a command: more than the kernel takes for one argument.
    let text = format!("FROM busybox:local\nRUN echo {big}\n");
    let (code, stderr) = bounded_build(&arena, "run", text.as_bytes(), None, Duration::from_secs(60));
    assert_eq!(code, 1, "a 10 MB argument cannot be executed");
    assert!(stderr.contains("Dockerfile:2"), "the error names the step:\n{}", tail(&stderr));
    // As a comment: ignored.
    let text = format!("FROM busybox:local\n# {big}\nRUN true\n");
    let (code, stderr) = bounded_build(&arena, "comment", text.as_bytes(), None, Duration::from_secs(60));
    assert_eq!(code, 0, "{}", tail(&stderr));
}

#[test]
fn deeply_nested_substitution_ends_with_a_result_or_an_error() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    for depth in [1_000usize, 100_000] {
        let nested = format!("{}x{}", "${A:-".repeat(depth), "}".repeat(depth));
        let text = format!("FROM busybox:local\nARG B={nested}\nRUN echo \"$B\"\n");
        let case = format!("nested-{depth}");
        bounded_build(&arena, &case, text.as_bytes(), None, Duration::from_secs(60));
        // Unclosed: a syntax error, not a crash.
        let text = format!("FROM busybox:local\nENV B={}\n", "${A:-".repeat(depth));
        let case = format!("unclosed-{depth}");
        let (code, _) = bounded_build(&arena, &case, text.as_bytes(), None, Duration::from_secs(60));
        assert_eq!(code, 1);
    }
    // Many continuation lines make one instruction.
    let text = format!("FROM busybox:local\nRUN echo {}end\n", "a \\\n".repeat(100_000));
    bounded_build(&arena, "continuations", text.as_bytes(), None, Duration::from_secs(60));
}

#[test]
fn pathological_dockerignore_patterns_take_no_exponential_time() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let deep = format!("{}leaf", "a/".repeat(40));
    let long_name = "a".repeat(200);
    let dir = arena.path("ignore");
    fs::create_dir_all(dir.join(&deep)).unwrap();
    fs::write(dir.join(&deep).join("f"), "f").unwrap();
    fs::write(dir.join(&long_name), "long").unwrap();
    for i in 0..500 {
        fs::write(dir.join(format!("file{i}")), "x").unwrap();
    }
    let mut patterns = String::new();
    patterns.push_str(&format!("{}x\n", "**/".repeat(30)));
    patterns.push_str(&format!("{}b\n", "*a".repeat(40)));
    patterns.push_str(&format!("{}\n", "a*".repeat(60)));
    patterns.push_str(&format!("!{}leaf/f\n", "**/".repeat(30)));
    for i in 0..20_000 {
        patterns.push_str(&format!("nomatch{i}/**/*.tmp\n"));
    }
    let text = b"FROM busybox:local\nCOPY . /ctx/\nRUN ls /ctx | wc -l\n";
    let (code, stderr) =
        bounded_build(&arena, "ignore", text, Some(patterns.as_bytes()), Duration::from_secs(60));
    assert_eq!(code, 0, "{}", tail(&stderr));
}
