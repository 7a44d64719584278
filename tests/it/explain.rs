//! Cache-miss explanations, `--explain` and `--metadata-file`.

use std::fs;

use crate::harness::*;

const DOCKERFILE: &str = "FROM busybox:local\nARG VERSION=1\nCOPY src/ /src/\nRUN echo $VERSION > /version\n";

fn reasons(run: &Run) -> Vec<String> {
    run.stderr.lines().filter_map(|l| l.split_once("running because: ").map(|(_, r)| r.to_string())).collect()
}

#[test]
fn each_rerun_says_why_in_words() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context("ctx", &[("Dockerfile", DOCKERFILE), ("src/a.txt", "a"), ("src/b.txt", "b")]);
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        args.push("ctx");
        env.rbuild(&args).ok()
    };
    assert_eq!(reasons(&build(&[])), vec!["no cache entry (first build)"; 2]);
    fs::write(ctx.join("src/b.txt"), "B").unwrap();
    assert_eq!(reasons(&build(&[])), vec!["file changed: src/b.txt", "parent step changed"]);
    fs::create_dir_all(ctx.join("src/new")).unwrap();
    for f in ["1", "2", "3"] {
        fs::write(ctx.join("src/new").join(f), f).unwrap();
    }
    assert_eq!(reasons(&build(&[]))[0], "3 files added: src/new/1, src/new/2, src/new/3");
    fs::remove_file(ctx.join("src/a.txt")).unwrap();
    assert_eq!(reasons(&build(&[]))[0], "file removed: src/a.txt");
    assert_eq!(reasons(&build(&["--build-arg", "VERSION=2"])), vec!["build arg VERSION changed"]);
    assert_eq!(reasons(&build(&["--build-arg", "VERSION=2", "--no-cache"])), vec!["--no-cache"; 2]);
    // A different base image under the same name.
    let image_id =
        || env.rbuild(&["inspect", "-f", "{{.Id}}", "busybox:local"]).ok().stdout.trim()[..19].to_string();
    let old_base = image_id();
    let other = env.dockerfile("base", "FROM busybox:local\nRUN echo changed > /etc/marker\n");
    let _ = other;
    env.rbuild(&["build", "-t", "busybox:local", "base"]).ok();
    let after_new_base = reasons(&build(&["--build-arg", "VERSION=2"]));
    assert_eq!(after_new_base[1], "parent step changed");
    // Both image IDs, so the user can tell which base each build used.
    assert_eq!(after_new_base[0], format!("base image busybox:local changed ({old_base} → {})", image_id()));
}

#[test]
fn explain_runs_nothing_and_metadata_file_describes_each_step() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context("ctx", &[("Dockerfile", DOCKERFILE), ("src/a.txt", "a")]);
    let plan = env.rbuild(&["build", "--explain", "--progress", "plain", "ctx"]).ok();
    assert_eq!(plan.stderr.matches("WOULD RUN").count(), 2, "{}", plan.stderr);
    assert!(!plan.stderr.contains("DONE"), "nothing may run: {}", plan.stderr);
    let meta_path = env.path("meta.json");
    let built = env
        .rbuild(&["build", "--progress", "plain", "--metadata-file", meta_path.to_str().unwrap(), "ctx"])
        .ok();
    assert_eq!(reasons(&built).len(), 2, "explain must not have filled the cache: {}", built.stderr);
    let meta: serde_json::Value = serde_json::from_str(&fs::read_to_string(&meta_path).unwrap()).unwrap();
    let steps = meta["rbuild.steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["step"], "COPY src/ /src/");
    assert_eq!(steps[0]["cached"], false);
    assert_eq!(steps[0]["reason"], "no cache entry (first build)");
    assert!(steps[0]["layer"].as_str().unwrap().starts_with("sha256:"));
    assert!(steps[0]["layer_size"].as_u64().unwrap() > 0);
    assert!(meta["containerimage.config.digest"].as_str().unwrap().starts_with("sha256:"));
    fs::write(ctx.join("src/a.txt"), "changed").unwrap();
    let plan = env.rbuild(&["build", "--explain", "--progress", "plain", "ctx"]).ok();
    assert!(plan.stderr.contains("because: file changed: src/a.txt"), "{}", plan.stderr);
    env.rbuild(&["build", "--metadata-file", meta_path.to_str().unwrap(), "ctx"]).ok();
    fs::write(ctx.join("src/a.txt"), "changed").unwrap();
    env.rbuild(&["build", "--metadata-file", meta_path.to_str().unwrap(), "ctx"]).ok();
    let meta: serde_json::Value = serde_json::from_str(&fs::read_to_string(&meta_path).unwrap()).unwrap();
    assert!(meta["rbuild.steps"].as_array().unwrap().iter().all(|s| s["cached"] == true), "{meta}");
}
