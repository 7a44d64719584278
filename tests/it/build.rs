//! Building real Dockerfiles on the busybox base: RUN in the sandbox,
//! COPY, multi-stage, the cache, whiteouts, outputs.

use std::fs;

use crate::harness::*;

const MULTI_STAGE: &str = r#"
FROM busybox:local AS deps
WORKDIR /app
COPY package.json ./
RUN mkdir -p node_modules && for i in 1 2 3; do echo "module $i" > node_modules/m$i.js; done

FROM deps AS build
COPY src/ ./src/
RUN cat src/*.txt | wc -c > /app/build.out && rm -rf src

FROM busybox:local
ENV APP_ENV=production PORT=8080
WORKDIR /srv
COPY --from=build /app/build.out ./
COPY --from=deps /app/node_modules ./node_modules
EXPOSE 8080
USER app
CMD ["cat", "/srv/build.out"]
"#;

fn multi_stage_context(env: &Env) -> std::path::PathBuf {
    env.context(
        "app",
        &[
            ("Dockerfile", MULTI_STAGE),
            ("package.json", "{}\n"),
            ("src/a.txt", "hello\n"),
            ("src/b.txt", "world!\n"),
            ("node_modules/junk.js", "ignored"),
            ("debug.log", "ignored"),
            ("keep.log", "kept"),
            (".dockerignore", "node_modules\n*.log\n!keep.log\n"),
        ],
    )
}

#[test]
fn multi_stage_build_runs_steps_and_copies_between_stages() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    multi_stage_context(&env);
    let out = env.path("rootfs");
    let run = env
        .rbuild(&[
            "build",
            "-t",
            "app:v1",
            "--progress",
            "plain",
            "-o",
            &format!("type=local,dest={}", out.display()),
            "app",
        ])
        .ok();
    assert_eq!(fs::read_to_string(out.join("srv/build.out")).unwrap().trim(), "13");
    assert_eq!(fs::read_to_string(out.join("srv/node_modules/m2.js")).unwrap(), "module 2\n");
    assert!(!out.join("app").exists(), "the final stage must not contain the deps stage's files");
    for step in ["[deps 4/4] RUN", "[build 3/3] RUN", "[stage-2 4/4] COPY --from=deps"] {
        assert!(run.stderr.contains(step), "missing step {step} in:\n{}", run.stderr);
    }
    assert!(run.stderr.contains("DONE"), "per-step durations expected:\n{}", run.stderr);
}

#[test]
fn rebuild_is_all_cached_and_gives_the_same_image() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    multi_stage_context(&env);
    let first = env.rbuild(&["build", "-q", "-t", "app:v1", "app"]).ok();
    let second = env.rbuild(&["build", "--progress", "plain", "-t", "app:v1", "app"]).ok();
    assert!(second.run_lines().is_empty(), "no step may run again:\n{}", second.stderr);
    let cached = second.cached_lines();
    // 3 stages: FROM + 3, FROM + 2, FROM + 3 filesystem steps.
    assert_eq!(cached.len(), 4 + 3 + 4, "every step CACHED:\n{}", second.stderr);
    assert!(cached.iter().any(|l| l.contains("RUN cat src/*.txt")));
    let third = env.rbuild(&["build", "-q", "-t", "app:v1", "app"]).ok();
    assert_eq!(first.stdout.trim(), third.stdout.trim(), "a cached rebuild gives the same image ID");
    assert!(first.stdout.trim().starts_with("sha256:") && first.stdout.trim().len() == 71);
}

#[test]
fn editing_a_file_reruns_only_the_steps_that_read_it() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = multi_stage_context(&env);
    env.rbuild(&["build", "-t", "app:v1", "app"]).ok();
    fs::write(ctx.join("src/b.txt"), "world, again!\n").unwrap();
    let run = env.rbuild(&["build", "--progress", "plain", "-t", "app:v1", "app"]).ok();
    let ran = run.run_lines().join("\n");
    assert!(ran.contains("[build 2/3] COPY src/"), "{}", run.stderr);
    assert!(ran.contains("[build 3/3] RUN"), "{}", run.stderr);
    assert!(!ran.contains("[deps"), "the deps stage does not read src/: {}", run.stderr);
    for cached in ["[deps 3/4] COPY package.json", "[deps 4/4] RUN"] {
        assert!(
            run.cached_lines().iter().any(|l| l.contains(cached)),
            "{cached} should be CACHED:\n{}",
            run.stderr
        );
    }
    // Touching a file without changing it is not a change.
    let f = ctx.join("src/a.txt");
    fs::write(&f, fs::read(&f).unwrap()).unwrap();
    let run = env.rbuild(&["build", "--progress", "plain", "-t", "app:v1", "app"]).ok();
    assert!(run.run_lines().is_empty(), "content did not change:\n{}", run.stderr);
}

#[test]
fn a_file_deleted_in_a_later_step_is_absent_in_the_image() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "wh",
        "FROM busybox:local\nRUN mkdir -p /data/sub && echo a > /data/a && echo b > /data/sub/b && echo keep > /data/keep\n\
             RUN rm /data/a && rm -rf /data/sub && mkdir /data/sub && echo new > /data/sub/c\n",
    );
    let out = env.path("rootfs");
    env.rbuild(&["build", "-o", &format!("type=local,dest={}", out.display()), "wh"]).ok();
    assert!(!out.join("data/a").exists(), "deleted file must be gone");
    assert!(!out.join("data/sub/b").exists(), "the replaced directory's old content must be gone");
    assert_eq!(fs::read_to_string(out.join("data/sub/c")).unwrap(), "new\n");
    assert_eq!(fs::read_to_string(out.join("data/keep")).unwrap(), "keep\n");
    assert!(
        !out.join("proc").exists() && !out.join("etc/resolv.conf").exists(),
        "mount points must not leak into layers"
    );
}

#[test]
fn run_steps_see_env_user_workdir_and_build_args() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nARG GREETING=hi\nENV WHO=world\nWORKDIR /work/dir\nUSER app\n\
             RUN echo \"$GREETING $WHO $(id -u):$(id -g) $(pwd) $HOME $(hostname)\" > /tmp/out\n\
             RUN [\"/bin/sh\", \"-c\", \"ls /proc | grep -c '^[0-9]' > /tmp/procs\"]\n",
    );
    let out = env.path("rootfs");
    env.rbuild(&[
        "build",
        "--build-arg",
        "GREETING=hello",
        "-o",
        &format!("type=local,dest={}", out.display()),
        "ctx",
    ])
    .ok();
    assert_eq!(
        fs::read_to_string(out.join("tmp/out")).unwrap(),
        "hello world 1000:1000 /work/dir /home/app rbuild\n"
    );
    let procs: u32 = fs::read_to_string(out.join("tmp/procs")).unwrap().trim().parse().unwrap();
    assert!(procs <= 4, "a RUN step must not see host processes, saw {procs}");
}

#[test]
fn failing_run_reports_instruction_line_exit_code_and_output() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM busybox:local\n\nRUN echo about to fail && exit 3\n");
    let before = env.store_snapshot();
    let run = env.rbuild(&["build", "--progress", "plain", "ctx"]).failed();
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("exit code: 3"), "{}", run.stderr);
    assert!(run.stderr.contains("Dockerfile:3"), "names the line: {}", run.stderr);
    assert!(run.stderr.contains("about to fail"), "shows the output: {}", run.stderr);
    let after = env.store_snapshot();
    let new_layers: Vec<_> =
        after.keys().filter(|k| !before.contains_key(*k) && k.starts_with("layers/")).collect();
    assert!(new_layers.is_empty(), "a failed step commits nothing: {new_layers:?}");
}

#[test]
fn target_builds_only_the_stages_it_needs() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local AS broken\nRUN exit 1\n\nFROM busybox:local AS good\nRUN echo ok > /ok\n\nFROM good\nCOPY --from=broken /x /x\n",
    );
    let run = env.rbuild(&["build", "--target", "good", "--progress", "plain", "ctx"]).ok();
    assert!(!run.stderr.contains("[broken"), "the broken stage is not needed: {}", run.stderr);
    let run = env.rbuild(&["build", "--target", "nope", "ctx"]).failed();
    assert!(run.stderr.contains("target stage \"nope\" could not be found"), "{}", run.stderr);
    assert!(run.stderr.contains("broken, good"), "lists the stages: {}", run.stderr);
}

#[test]
fn independent_stages_run_at_the_same_time() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let stage = |name: &str| {
        format!(
            "FROM busybox:local AS {name}\nRUN cut -d' ' -f1 /proc/uptime > /start && sleep 1 && cut -d' ' -f1 /proc/uptime > /end\n"
        )
    };
    let dockerfile = format!(
        "{}{}FROM busybox:local\nCOPY --from=a /start /a.start\nCOPY --from=a /end /a.end\nCOPY --from=b /start /b.start\nCOPY --from=b /end /b.end\n",
        stage("a"),
        stage("b")
    );
    env.dockerfile("ctx", &dockerfile);
    let out = env.path("rootfs");
    env.rbuild(&["build", "-o", &format!("type=local,dest={}", out.display()), "ctx"]).ok();
    let read = |n: &str| -> f64 { fs::read_to_string(out.join(n)).unwrap().trim().parse().unwrap() };
    let (a0, a1, b0, b1) = (read("a.start"), read("a.end"), read("b.start"), read("b.end"));
    assert!(a0 < b1 && b0 < a1, "stages a [{a0}, {a1}] and b [{b0}, {b1}] must overlap in time");
}

#[test]
fn quiet_prints_only_the_image_id_and_iidfile_matches() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM busybox:local\nLABEL a=b\n");
    let iid = env.path("iid");
    let run = env.rbuild(&["build", "-q", "--iidfile", iid.to_str().unwrap(), "ctx"]).ok();
    let id = run.stdout.trim();
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert_eq!(fs::read_to_string(&iid).unwrap(), id);
}

#[test]
fn dockerfile_from_stdin_and_default_subcommand() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context("ctx", &[("hello.txt", "hi\n")]);
    let out = env.path("rootfs");
    let dest = format!("type=local,dest={}", out.display());
    env.rbuild_stdin(
        &["-t", "stdin:v1", "-f", "-", "-o", &dest, "ctx"],
        Some(b"FROM busybox:local\nCOPY hello.txt /\n"),
    )
    .ok();
    assert_eq!(fs::read_to_string(out.join("hello.txt")).unwrap(), "hi\n");
}

#[test]
fn add_extracts_local_tar_archives() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox:local\nADD files.tar.gz /opt/\nADD plain.txt /opt/plain.txt\n"),
            ("plain.txt", "p\n"),
        ],
    );
    sh(&format!(
        "mkdir -p {0}/t/dir && echo inside > {0}/t/dir/f && tar -C {0}/t -czf {0}/files.tar.gz dir",
        ctx.display()
    ));
    fs::remove_dir_all(ctx.join("t")).unwrap();
    let out = env.path("rootfs");
    env.rbuild(&["build", "-o", &format!("type=local,dest={}", out.display()), "ctx"]).ok();
    assert_eq!(fs::read_to_string(out.join("opt/dir/f")).unwrap(), "inside\n");
    assert_eq!(fs::read_to_string(out.join("opt/plain.txt")).unwrap(), "p\n");
}

#[test]
fn from_scratch_with_copy_and_chown() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context("ctx", &[("Dockerfile", "FROM busybox:local AS base\nFROM scratch\nCOPY --from=base /etc/passwd /etc/group /etc/\nCOPY --chown=app:app data /data/\n"), ("data/x", "x")]);
    let out = env.path("rootfs");
    env.rbuild(&["build", "-o", &format!("type=local,dest={}", out.display()), "ctx"]).ok();
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(out.join("data/x")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1000));
    assert!(!out.join("bin").exists(), "scratch has nothing else");
}
