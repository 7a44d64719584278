//! Build insight: records of every build (`rbuild builds ls/show/diff/rm`,
//! pruned with the build cache), the `--timings` report checked in a real
//! browser (headless Chromium), the terminal view that keeps every step,
//! and the bad input around them.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::harness::*;

const DOCKERFILE: &str = "FROM busybox:local\nCOPY src/ /src/\nRUN cat /src/* > /all\n";

fn ids(env: &Env) -> Vec<String> {
    env.rbuild(&["builds", "ls", "-q"]).ok().stdout.lines().map(str::to_string).collect()
}

fn seven_files(ctx: &Path, content: &str) {
    for i in 0..7 {
        fs::write(ctx.join(format!("src/f{i}.txt")), format!("{content} {i}")).unwrap();
    }
}

#[test]
fn every_build_is_recorded_and_two_builds_compare_step_by_step() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context("ctx", &[("Dockerfile", DOCKERFILE)]);
    fs::create_dir_all(ctx.join("src")).unwrap();
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "-t", "app:v1", "--progress", "plain"];
        args.extend_from_slice(extra);
        args.push("ctx");
        env.rbuild(&args).ok()
    };
    seven_files(&ctx, "one");
    build(&[]);
    build(&[]);
    seven_files(&ctx, "two");
    let meta = env.path("meta.json");
    let third = build(&["--metadata-file", meta.to_str().unwrap()]);

    // The explanation names five files and counts the rest, everywhere.
    let why = "7 files changed: src/f0.txt, src/f1.txt, src/f2.txt, src/f3.txt, src/f4.txt and 2 more";
    assert!(third.stderr.contains(&format!("running because: {why}")), "{}", third.stderr);
    let meta: serde_json::Value = serde_json::from_str(&fs::read_to_string(&meta).unwrap()).unwrap();
    assert_eq!(meta["rbuild.steps"][0]["reason"], why);

    // Newest first, with its tags and step counts.
    let listed = env.rbuild(&["builds", "ls"]).ok().stdout;
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{listed}");
    assert!(rows[0].contains("2 run, 0 cached") && rows[0].contains("app:v1"), "{listed}");
    assert!(rows[1].contains("0 run, 2 cached"), "{listed}");
    let all = ids(&env);
    assert_eq!(all.len(), 3);
    let formatted =
        env.rbuild(&["builds", "ls", "--format", "{{.ID}} {{.Run}}/{{.Cached}} {{.Status}}"]).ok();
    let expected: Vec<String> =
        all.iter().zip(["2/0", "0/2", "2/0"]).map(|(id, steps)| format!("{id} {steps} completed")).collect();
    assert_eq!(formatted.stdout.lines().collect::<Vec<_>>(), expected);

    // show: the table, by a unique prefix and by `last`.
    let shown = env.rbuild(&["builds", "show", &all[0][..6]]).ok().stdout;
    assert_eq!(shown, env.rbuild(&["builds", "show", "last"]).ok().stdout);
    assert!(shown.contains("STAGE") && shown.contains("CONTEXT READ"), "{shown}");
    let copy_row = shown.lines().find(|l| l.contains("COPY src/ /src/")).unwrap();
    assert!(copy_row.contains(why), "{copy_row}");
    // Seven files of five bytes ("two 0" …).
    assert!(copy_row.contains(" 35B "), "bytes read from the context: {copy_row}");
    let cached = env.rbuild(&["builds", "show", "last~1"]).ok().stdout;
    let run_row = cached.lines().find(|l| l.contains("RUN cat")).unwrap();
    assert!(run_row.contains("CACHED") && run_row.contains("saved "), "the time the cache saved: {run_row}");
    let json: serde_json::Value =
        serde_json::from_str(&env.rbuild(&["builds", "show", "--json", "last"]).ok().stdout).unwrap();
    assert!(json["steps"][0]["key"].as_str().unwrap().starts_with("sha256:"));
    assert!(json["context_digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(json["options"]["context"], ctx.canonicalize().unwrap().to_str().unwrap());

    // diff: per step, cached or ran in each, times, and why B ran it.
    let diff = env.rbuild(&["builds", "diff", "last~1", "last"]).ok().stdout;
    assert!(diff.contains("different files read"), "{diff}");
    let copy = diff.lines().find(|l| l.contains("COPY src/ /src/")).unwrap();
    assert!(copy.contains("CACHED") && copy.contains("ran ") && copy.ends_with(why), "{diff}");
    let run = diff.lines().find(|l| l.contains("RUN cat")).unwrap();
    assert!(run.ends_with("parent step changed"), "{diff}");
    let same = env.rbuild(&["builds", "diff", "last~2", "last~1"]).ok().stdout;
    assert!(same.contains("the same files read"), "{same}");

    // rm by ID; builder prune -a takes the rest with the cache.
    env.rbuild(&["builds", "rm", &all[2]]).ok();
    assert_eq!(ids(&env), all[..2].to_vec());
    let pruned = env.rbuild(&["builder", "prune", "-a", "-f"]).ok().stdout;
    assert!(pruned.contains("Deleted build records: 2"), "{pruned}");
    assert!(ids(&env).is_empty());
}

#[test]
fn build_ids_that_match_nothing_or_several_and_damaged_records_are_reported() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context("ctx", &[("Dockerfile", "FROM busybox:local\nRUN true\n")]);
    // 17 records: two of them must share a first hex digit.
    for _ in 0..17 {
        env.rbuild(&["build", "--progress", "plain", "ctx"]).ok();
    }
    let all = ids(&env);
    let shared = all.iter().find(|id| all.iter().filter(|o| o[..1] == id[..1]).count() > 1).unwrap();
    let ambiguous = env.rbuild(&["builds", "show", &shared[..1]]).failed();
    assert!(ambiguous.stderr.contains("is ambiguous"), "{}", ambiguous.stderr);
    assert!(ambiguous.stderr.contains("hint: give more characters"), "{}", ambiguous.stderr);
    let unknown_prefix = (0..16u8)
        .map(|d| format!("{d:x}"))
        .find_map(|c| (!all.iter().any(|id| id.starts_with(&c))).then_some(c))
        .unwrap_or_else(|| format!("{}0", &all[0][..11]));
    let unknown = env.rbuild(&["builds", "show", &format!("{unknown_prefix}ffffffffff")]).failed();
    assert!(unknown.stderr.contains("no build record with ID"), "{}", unknown.stderr);
    assert!(unknown.stderr.contains("hint:"), "{}", unknown.stderr);
    let too_far = env.rbuild(&["builds", "show", "last~17"]).failed();
    assert!(too_far.stderr.contains("the store has 17 build records"), "{}", too_far.stderr);
    let nonsense = env.rbuild(&["builds", "diff", "last", "not-an-id"]).failed();
    assert!(nonsense.stderr.contains("\"not-an-id\" is not a build ID"), "{}", nonsense.stderr);

    // A damaged record, one from a newer rbuild and one from an older one.
    let dir = env.root.path().join("state/builds");
    let mut files: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    fs::write(&files[16], "{\"version\": 1, \"steps\": [tru").unwrap();
    fs::write(&files[15], r#"{"version": 7, "id": "x", "a_field_from_the_future": {}}"#).unwrap();
    fs::write(
        &files[14],
        r#"{"id": "old", "duration_ms": 1500, "steps": [{"stage": "old", "instruction": "RUN make"}]}"#,
    )
    .unwrap();
    let listed = env.rbuild(&["builds", "ls"]).ok();
    assert_eq!(listed.stdout.matches("unreadable").count(), 2, "{}", listed.stdout);
    assert!(listed.stderr.contains("damaged") && listed.stderr.contains("newer rbuild"), "{}", listed.stderr);
    let damaged = env.rbuild(&["builds", "show", "last"]).failed();
    assert_eq!(damaged.code, 1);
    assert!(damaged.stderr.contains("cannot be read: it is damaged"), "{}", damaged.stderr);
    assert!(damaged.stderr.contains("rbuild builds rm"), "{}", damaged.stderr);
    let newer = env.rbuild(&["builds", "show", "last~1"]).failed();
    assert!(newer.stderr.contains("written by a newer rbuild (record version 7"), "{}", newer.stderr);
    let old = env.rbuild(&["builds", "show", "last~2"]).ok().stdout;
    assert!(old.contains("RUN make") && old.contains("took 1.5s"), "{old}");
    // The damaged one can be removed like any other.
    env.rbuild(&["builds", "rm", "last"]).ok();
    assert_eq!(ids(&env).len(), 16);
}

#[test]
fn an_unwritable_timings_path_fails_the_command_but_the_build_is_stored() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context("ctx", &[("Dockerfile", "FROM busybox:local\nRUN echo hi > /hi\n")]);
    let run = env
        .rbuild(&[
            "build",
            "-t",
            "kept:v1",
            "--progress",
            "plain",
            "--timings=no-such-dir/report.html",
            "ctx",
        ])
        .failed();
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("cannot write the timings report no-such-dir/report.html"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: the build itself succeeded"), "{}", run.stderr);
    assert!(env.rbuild(&["images"]).ok().stdout.contains("kept"), "the image is stored and tagged");
    let listed = env.rbuild(&["builds", "ls"]).ok().stdout;
    assert!(listed.contains("completed") && listed.contains("kept:v1"), "{listed}");
    // The report of that build, written afterwards.
    env.rbuild(&["builds", "show", "last", "--timings=later.html"]).ok();
    assert!(fs::read_to_string(env.path("later.html")).unwrap().contains("RUN echo hi &gt; /hi"));
    // A failed build is recorded too, with why it failed.
    fs::write(env.path("ctx/Dockerfile"), "FROM busybox:local\nRUN echo hi > /hi\nRUN exit 3\n").unwrap();
    env.rbuild(&["build", "--progress", "plain", "ctx"]).failed();
    let failed = env.rbuild(&["builds", "show", "last"]).ok().stdout;
    assert!(
        failed.contains(" failed ") && failed.contains("error    ") && failed.contains("exit code: 3"),
        "{failed}"
    );
    // with the steps that finished before the failure.
    let step_rows: Vec<&str> = failed.lines().filter(|l| l.starts_with("stage-0 ")).collect();
    assert_eq!(step_rows.len(), 1, "{failed}");
    assert!(step_rows[0].contains("RUN echo hi > /hi") && step_rows[0].contains("CACHED"), "{failed}");
}

/// Chromium's rendering of a local page: its DOM after load, and a screenshot.
fn chromium(page: &Path, screenshot: &Path) -> String {
    let url = format!("file://{}", page.display());
    let base = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"];
    let dom = Command::new("chromium").args(base).arg("--dump-dom").arg(&url).output().unwrap();
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let shot = Command::new("chromium")
        .args(base)
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1100,800")
        .arg(&url)
        .output()
        .unwrap();
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    String::from_utf8(dom.stdout).unwrap()
}

#[test]
fn the_timings_report_renders_in_a_browser_with_a_row_per_step() {
    require!(root(), busybox_static(), tool("chromium"));
    let env = Env::with_busybox();
    let two_stages = "FROM busybox:local AS tools\nRUN sleep 0.4 && echo t > /t\n\
                      FROM busybox:local\nRUN echo a > /a\nCOPY --from=tools /t /t\nRUN sleep 0.2\n";
    env.context("ctx", &[("Dockerfile", two_stages)]);
    let built = env.rbuild(&["build", "--progress", "plain", "--timings", "ctx"]).ok();
    let latest = env.path("rbuild-timings/rbuild-timing.html");
    assert!(built.stderr.contains("timings report: rbuild-timings/rbuild-timing-"), "{}", built.stderr);
    let stamped: Vec<_> =
        fs::read_dir(env.path("rbuild-timings")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(stamped.len(), 2, "the stamped report and the latest: {stamped:?}");

    let dom = chromium(&latest, &env.path("shot.png"));
    assert_eq!(dom.matches("<tr class=\"step").count(), 4, "a row per step:\n{dom}");
    assert_eq!(dom.matches("<rect class=\"bar").count(), 4, "a bar per step:\n{dom}");
    assert_eq!(dom.matches("class=\"lane\"").count(), 2, "a lane per stage:\n{dom}");
    // The slow stage and what waited for it form the critical path.
    assert!(dom.contains("step ran critical"), "{dom}");
    let png = fs::read(env.path("shot.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(png.len() > 10_000, "a real rendering, not a blank page ({} bytes)", png.len());

    // Rebuilt: every step cached, each saying what it saved; written for an
    // old build by `builds show --timings`.
    env.rbuild(&["build", "--progress", "plain", "ctx"]).ok();
    env.rbuild(&["builds", "show", "last", "--timings=again.html"]).ok();
    let dom = chromium(&env.path("again.html"), &env.path("again.png"));
    assert_eq!(dom.matches("<tr class=\"step cached").count(), 4, "{dom}");
    // What the cache saved is the time the step took when it ran.
    let step_json = |build: &str| -> serde_json::Value {
        let record: serde_json::Value =
            serde_json::from_str(&env.rbuild(&["builds", "show", "--json", build]).ok().stdout).unwrap();
        record["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["instruction"].as_str().unwrap().contains("sleep 0.4"))
            .unwrap()
            .clone()
    };
    let ran_ms = step_json("last~1")["duration_ms"].as_u64().unwrap();
    assert!(ran_ms >= 400, "{ran_ms}");
    assert_eq!(step_json("last")["saved_ms"].as_u64(), Some(ran_ms));
    let sleep_row = dom.split("<tr class=\"step").skip(1).find(|r| r.contains("sleep 0.4")).unwrap();
    assert!(sleep_row.contains(&format!("saved {:.1}s", ran_ms as f64 / 1000.0)), "{sleep_row}");
}

#[test]
fn the_terminal_view_keeps_every_step_and_says_what_the_cache_saved() {
    require!(root(), busybox_static(), tool("tmux"));
    let env = Env::with_busybox();
    env.context("ctx", &[("Dockerfile", "FROM busybox:local\nRUN sleep 0.3\nRUN echo b > /b\n")]);
    let screen = |name: &str| -> String {
        let session = format!("rbuild-{name}-{}", std::process::id());
        let cmd = format!(
            "{RBUILD} --root {} build --progress tty ctx; echo EXIT=$?; sleep 60",
            env.root.path().display()
        );
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "160", "-y", "40", "-c"])
            .arg(env.work.path())
            .arg(&cmd)
            .status()
            .unwrap();
        assert!(status.success());
        let mut text = String::new();
        for _ in 0..300 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &session]).output().unwrap();
            text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text.contains("EXIT=") {
                break;
            }
        }
        let _ = Command::new("tmux").args(["kill-session", "-t", &session]).status();
        text
    };
    let first = screen("first");
    assert!(first.contains("EXIT=0"), "{first}");
    for step in ["RUN sleep 0.3", "RUN echo b > /b"] {
        let line = first
            .lines()
            .find(|l| l.contains(step))
            .unwrap_or_else(|| panic!("{step} left the screen:\n{first}"));
        assert!(line.contains("ran 0."), "final state and time: {line}");
    }
    let second = screen("second");
    assert_eq!(second.lines().filter(|l| l.contains("CACHED")).count(), 3, "{second}");
    assert!(second.contains("0 steps run, 2 cached; the cache saved 0."), "{second}");
}
