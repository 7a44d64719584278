//! `rbuild image prune` against `docker image prune`: the same images in
//! an rbuild store and in a Docker daemon of the test's own (loaded from
//! `rbuild save`), the same prune run by both, and then the same names
//! untagged, the same images and layers deleted, the same space reclaimed
//! and the same images left. The daemon is private because `docker image
//! prune -a` acts on every image a daemon holds.

use std::collections::BTreeSet;

use crate::harness::*;

/// What a prune printed, order aside: Docker walks its images in Go map
/// order, so only the sets and the counts of lines can be compared.
#[derive(Debug, PartialEq, Eq)]
struct PruneOutput {
    untagged: BTreeSet<String>,
    deleted: BTreeSet<String>,
    /// Lines of the "Deleted Images:" list, to catch a name printed twice.
    lines: usize,
    total: String,
}

fn parse_prune(stdout: &str) -> PruneOutput {
    let mut out =
        PruneOutput { untagged: BTreeSet::new(), deleted: BTreeSet::new(), lines: 0, total: String::new() };
    for line in stdout.lines() {
        // After the question, the answer's newline is the user's, not ours.
        let line = line.strip_prefix("Are you sure you want to continue? [y/N] ").unwrap_or(line);
        if let Some(name) = line.strip_prefix("untagged: ") {
            out.untagged.insert(name.to_string());
            out.lines += 1;
        } else if let Some(id) = line.strip_prefix("deleted: ") {
            out.deleted.insert(id.to_string());
            out.lines += 1;
        } else if let Some(total) = line.strip_prefix("Total reclaimed space: ") {
            out.total = total.to_string();
        } else {
            let known =
                matches!(line, "" | "Deleted Images:") || line.starts_with("WARNING! This will remove");
            assert!(known, "unexpected line {line:?} in\n{stdout}");
        }
    }
    out
}

const LISTING: &str = "{{.ID}} {{.Repository}}:{{.Tag}}";

/// Every image with its names, one line each, sorted.
fn rbuild_images(env: &Env) -> Vec<String> {
    let out = env.rbuild(&["images", "-a", "--no-trunc", "--format", LISTING]).ok().stdout;
    sorted_lines(&out)
}

fn docker_images(docker: &TestDockerd) -> Vec<String> {
    sorted_lines(&docker.docker(&["images", "-a", "--no-trunc", "--format", LISTING], None).ok().stdout)
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Runs the same `image prune` in both and checks they did the same.
fn prune_both(env: &Env, docker: &TestDockerd, args: &[&str], stdin: Option<&[u8]>) -> PruneOutput {
    let mut full = vec!["image", "prune"];
    full.extend_from_slice(args);
    let ours = env.rbuild_stdin(&full, stdin).ok();
    let theirs = docker.docker(&full, stdin).ok();
    let (ours_parsed, theirs_parsed) = (parse_prune(&ours.stdout), parse_prune(&theirs.stdout));
    assert_eq!(
        ours_parsed, theirs_parsed,
        "`image prune {args:?}` differs\n--- rbuild\n{}\n--- docker\n{}",
        ours.stdout, theirs.stdout
    );
    assert_eq!(rbuild_images(env), docker_images(docker), "images left after `image prune {args:?}`");
    ours_parsed
}

/// Builds `tag` from a Dockerfile body on busybox:local, created at `epoch`.
fn build_at(env: &Env, tag: &str, body: &str, epoch: &str) -> String {
    let dir = format!("ctx-{}", tag.replace([':', '/'], "-"));
    env.dockerfile(&dir, &format!("FROM busybox:local\n{body}"));
    env.rbuild_with(&["build", "-q", "-t", tag, &dir], None, &[("SOURCE_DATE_EPOCH", epoch)])
        .ok()
        .stdout
        .trim()
        .to_string()
}

const OLD: &str = "1600000000"; // 2020-09-13
const NEWER: &str = "1700000000"; // 2023-11-14

#[test]
fn image_prune_with_filters_does_what_docker_does() {
    require!(root(), busybox_static(), docker(), tool("dockerd"));
    let env = Env::with_busybox();
    build_at(&env, "old:web", "LABEL team=a tier=web\nRUN echo old-web > /f\n", OLD);
    build_at(&env, "old:db", "LABEL team=a tier=db\nRUN echo old-db > /f\n", OLD);
    build_at(&env, "new:b", "LABEL team=b tier=web\nRUN echo new-b > /f\n", NEWER);
    build_at(&env, "labelonly:1", "LABEL team=b\n", NEWER);
    build_at(&env, "plain:1", "RUN echo plain > /f\n", NEWER);
    env.rbuild(&["tag", "plain:1", "plain:2"]).ok();
    // Built now; rebuilding its tag elsewhere leaves the first one dangling.
    let dangling = build_at(&env, "dang:1", "RUN echo first > /f\n", &now_epoch());
    build_at(&env, "dang:1", "RUN echo second > /f\n", &now_epoch());
    // Only images hold layers from here on, as in the daemon, so the same
    // layers are freed and the same space reclaimed.
    env.rbuild(&["builder", "prune", "-a", "-f"]).ok();

    let archive = env.path("all.tar");
    let tags = ["busybox:local", "old:web", "old:db", "new:b", "labelonly:1", "plain:1", "plain:2", "dang:1"];
    let mut save = vec!["save", "-o", archive.to_str().unwrap()];
    save.extend_from_slice(&tags);
    save.push(&dangling);
    env.rbuild(&save).ok();
    let docker = TestDockerd::start();
    docker.docker(&["load", "-i", archive.to_str().unwrap()], None).ok();
    let before = rbuild_images(&env);
    assert_eq!(before, docker_images(&docker), "the same images to start with");
    assert_eq!(before.len(), 9, "eight images, plain with two names: {before:?}");

    // No -f and nothing on stdin: asked, refused, nothing removed.
    let refused = env.rbuild(&["image", "prune", "-a"]).ok();
    let asked = docker.docker(&["image", "prune", "-a"], None).ok();
    assert_eq!(refused.stdout, asked.stdout, "the same question, on stdout");
    assert!(
        refused.stdout.starts_with(
            "WARNING! This will remove all images without at least one container associated to them.\n"
        ),
        "{}",
        refused.stdout
    );
    assert!(refused.stderr.contains("pass -f"), "{}", refused.stderr);
    assert_eq!(rbuild_images(&env), before);
    assert_eq!(docker_images(&docker), before);

    // Dangling only, confirmed on stdin as Docker accepts: the first dang:1.
    let out = prune_both(&env, &docker, &[], Some(b"y\n"));
    assert_eq!(out.untagged, BTreeSet::new());
    assert!(out.deleted.contains(&dangling), "{out:?}");
    assert_eq!(out.deleted.len(), 2, "the image and its own layer: {out:?}");

    // Team a, made before 2021: both old images, names and own layers.
    let out = prune_both(
        &env,
        &docker,
        &["-a", "-f", "--filter", "label=team=a", "--filter", "until=2021-01-01T00:00:00Z"],
        None,
    );
    assert_eq!(out.untagged, ["old:db", "old:web"].map(String::from).into());
    assert_eq!(out.deleted.len(), 4, "{out:?}");

    // Several label!= spare only images with all of them: new:b (team=b,
    // tier=web) stays, labelonly:1 (team=b only) goes.
    let out = prune_both(
        &env,
        &docker,
        &["-a", "-f", "--filter", "label=team", "--filter", "label!=team=b", "--filter", "label!=tier=web"],
        None,
    );
    assert_eq!(out.untagged, ["labelonly:1"].map(String::from).into());
    assert_eq!(out.deleted.len(), 1, "a label adds no layer: {out:?}");

    // Made before 2024: new:b and plain (two names, one image); busybox:local
    // and dang:1 were made today.
    let out = prune_both(&env, &docker, &["-a", "-f", "--filter", "until=2024-01-01T00:00:00Z"], None);
    assert_eq!(out.untagged, ["new:b", "plain:1", "plain:2"].map(String::from).into());
    assert_eq!(out.deleted.len(), 4, "{out:?}");

    // Everything else, tagged or not.
    let out = prune_both(&env, &docker, &["-a", "-f"], None);
    assert_eq!(out.untagged, ["busybox:local", "dang:1"].map(String::from).into());
    assert_eq!(rbuild_images(&env), Vec::<String>::new());
    assert_eq!(std::fs::read_dir(env.root.path().join("layers")).unwrap().count(), 0, "every layer went");
    env.rbuild(&["system", "check"]).ok();
}

#[test]
fn prune_all_removes_built_and_loaded_images_as_docker_does() {
    require!(root(), docker(), tool("dockerd"));
    let busybox = require!(base("busybox.docker.tar"));
    let bookworm = require!(base("bookworm.docker.tar"));
    let env = Env::new();
    for archive in [&busybox, &bookworm] {
        env.rbuild(&["load", "-i", archive.to_str().unwrap()]).ok();
    }
    let built = build_at(&env, "x:1", "RUN echo x > /x\n", &now_epoch());
    let docker = TestDockerd::start();
    let saved = env.path("x.tar");
    env.rbuild(&["save", "-o", saved.to_str().unwrap(), "x:1"]).ok();
    for archive in [busybox.as_path(), bookworm.as_path(), saved.as_path()] {
        docker.docker(&["load", "-i", archive.to_str().unwrap()], None).ok();
    }
    let ids: BTreeSet<String> =
        env.rbuild(&["images", "-q", "--no-trunc"]).ok().stdout.lines().map(String::from).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&built));
    assert_eq!(rbuild_images(&env), docker_images(&docker));

    let ours = parse_prune(&env.rbuild(&["image", "prune", "-a", "-f"]).ok().stdout);
    let theirs = parse_prune(&docker.docker(&["image", "prune", "-a", "-f"], None).ok().stdout);
    assert_eq!(ours.untagged, ["busybox:local", "debian:bookworm", "x:1"].map(String::from).into());
    assert_eq!(ours.untagged, theirs.untagged);
    let images_deleted = |out: &PruneOutput| out.deleted.intersection(&ids).cloned().collect::<BTreeSet<_>>();
    assert_eq!(images_deleted(&ours), ids);
    assert_eq!(images_deleted(&theirs), ids);
    // The build cache still holds x:1's own layer, so rbuild frees the
    // loaded images' layers only; `builder prune` frees the rest.
    assert!(ours.deleted.is_subset(&theirs.deleted), "{ours:?}\n{theirs:?}");
    assert_eq!(theirs.deleted.len() - ours.deleted.len(), 1, "{ours:?}\n{theirs:?}");
    assert_eq!(rbuild_images(&env), Vec::<String>::new());
    assert_eq!(docker_images(&docker), Vec::<String>::new());
    env.rbuild(&["builder", "prune", "-a", "-f"]).ok();
    assert_eq!(std::fs::read_dir(env.root.path().join("layers")).unwrap().count(), 0);
    env.rbuild(&["system", "check"]).ok();
}

fn now_epoch() -> String {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string()
}
