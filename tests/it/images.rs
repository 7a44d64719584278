//! The image commands on rbuild's store: listing (rows, filters, formats),
//! tag, rmi, inspect and history, checked against the exact text docker
//! prints for the same situation.

use crate::harness::*;

/// Builds `FROM busybox:local` plus `extra` lines as `tag`, returning the image ID.
pub fn build_image(env: &Env, name: &str, extra: &str, tag: &str) -> String {
    env.dockerfile(name, &format!("FROM busybox:local\n{extra}"));
    env.rbuild(&["build", "-q", "-t", tag, name]).ok().stdout.trim().to_string()
}

/// The 12-hex short ID docker prints.
pub fn short(id: &str) -> String {
    id.trim_start_matches("sha256:")[..12].to_string()
}

/// `images --format` lines.
fn listed(env: &Env, args: &[&str]) -> Vec<String> {
    let mut all = vec!["images"];
    all.extend_from_slice(args);
    env.rbuild(&all).ok().stdout.lines().map(str::to_string).collect()
}

#[test]
fn images_table_matches_docker_layout() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    // Image times are whole seconds: keep the two apart.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let id = build_image(&env, "app", "RUN echo hello > /hello\n", "app:v1");
    let out = env.rbuild(&["images"]).ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    // Column starts as docker's tabwriter puts them (min width 10, padding 3).
    assert!(lines[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED   "), "{out}");
    assert_eq!(lines[0].split_whitespace().last(), Some("SIZE"));
    assert!(lines[1].starts_with(&format!("app          v1        {}   ", short(&id))), "{out}");
    // busybox's 1,984,277 bytes print as docker prints them; app adds 6 bytes.
    assert!(lines[1].ends_with("   1.98MB"), "{out}");
    assert!(lines[2].starts_with("busybox      local     "), "{out}");
    assert!(out.contains("ago"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");

    let q = listed(&env, &["-q"]);
    assert_eq!(q.len(), 2);
    assert_eq!(q[0], short(&id));
    assert_eq!(listed(&env, &["-q", "--no-trunc", "app"]), vec![id.clone()]);

    let json: serde_json::Value =
        serde_json::from_str(&listed(&env, &["--format", "json", "app"])[0]).unwrap();
    assert_eq!(json["Repository"], "app");
    assert_eq!(json["Tag"], "v1");
    assert_eq!(json["ID"], short(&id));
    assert_eq!(json["Digest"], "<none>");
    let raw = &listed(&env, &["--format", "{{json .}}", "app"])[0];
    // docker marshals these rows with HTML escaping and sorted keys.
    assert!(raw.starts_with(r#"{"Containers":"N/A","CreatedAt":""#), "{raw}");
    assert!(raw.contains(r#""Digest":"\u003cnone\u003e""#), "{raw}");

    assert_eq!(
        listed(&env, &["--format", "table {{.Repository}}:{{.Tag}}\t{{.Size}}", "busybox"]),
        vec!["REPOSITORY:TAG   SIZE", "busybox:local    1.98MB"]
    );
    let digests = listed(&env, &["--digests", "app"]);
    assert!(digests[0].starts_with("REPOSITORY   TAG       DIGEST    IMAGE ID"), "{digests:?}");
    assert!(digests[1].starts_with("app          v1        <none>    "), "{digests:?}");
}

#[test]
fn retagging_moves_the_tag_and_leaves_none() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let first = build_image(&env, "one", "RUN echo 1 > /n\n", "app:v1");
    let second = build_image(&env, "two", "RUN echo 2 > /n\n", "app:v2");
    env.rbuild(&["tag", "app:v2", "app:v1"]).ok();
    env.rbuild(&["tag", &second[..19], "other/app:latest"]).ok();
    let rows = listed(&env, &["--format", "{{.Repository}} {{.Tag}} {{.ID}}"]);
    assert!(rows.contains(&format!("<none> <none> {}", short(&first))), "{rows:?}");
    assert!(rows.contains(&format!("app v1 {}", short(&second))), "{rows:?}");
    assert!(rows.contains(&format!("other/app latest {}", short(&second))), "{rows:?}");
    assert_eq!(
        listed(&env, &["-q", "--filter", "dangling=true"]),
        vec![short(&first)],
        "only the untagged image is dangling"
    );
    let tagged = listed(&env, &["-q", "-f", "dangling=false"]);
    assert!(!tagged.contains(&short(&first)) && tagged.contains(&short(&second)));
    assert_eq!(listed(&env, &["--format", "{{.Tag}}", "-f", "reference=*/app"]), vec!["latest"]);
    assert_eq!(listed(&env, &["--format", "{{.Tag}}", "-f", "reference=app:v*"]), vec!["v1", "v2"]);
    env.rbuild(&["tag", "busybox:local", "Bad:Name"]).failed();
    env.rbuild(&["tag", "nothere:v1", "x:y"]).failed();
}

#[test]
fn filters_by_label_and_time() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    // Image times are whole seconds: keep the three apart.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // A RUN gives each image its own creation time (metadata-only images
    // keep their base's).
    build_image(&env, "a", "LABEL team=web tier=front\nRUN echo web > /w\n", "web:1");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    build_image(&env, "b", "LABEL team=db\nRUN echo db > /d\n", "db:1");
    let names = |args: &[&str]| {
        let mut all = vec!["--format", "{{.Repository}}"];
        all.extend_from_slice(args);
        listed(&env, &all)
    };
    assert_eq!(names(&["-f", "label=team=web"]), vec!["web"]);
    assert_eq!(names(&["-f", "label=team"]), vec!["db", "web"]);
    assert_eq!(names(&["-f", "label=team", "-f", "label=tier=front"]), vec!["web"]);
    assert_eq!(names(&["-f", "since=web:1"]), vec!["db"]);
    assert_eq!(names(&["-f", "before=db:1", "-f", "label=team"]), vec!["web"]);
    let bad = env.rbuild(&["images", "-f", "colour=red"]).failed();
    assert!(bad.stderr.contains("invalid filter 'colour'"), "{}", bad.stderr);
    let bad = env.rbuild(&["images", "-f", "dangling=maybe"]).failed();
    assert!(bad.stderr.contains("dangling=maybe"), "{}", bad.stderr);
}

#[test]
fn rmi_untags_refuses_and_forces_like_docker() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let id = build_image(&env, "app", "RUN echo x > /x\n", "app:v1");
    env.rbuild(&["tag", "app:v1", "app:v2"]).ok();

    // By ID with two tags: refused, nothing changes.
    let refused = env.rbuild(&["rmi", &short(&id)]).failed();
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains(&format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            short(&id)
        )),
        "{}",
        refused.stderr
    );
    // By tag with two tags: just untags.
    assert_eq!(env.rbuild(&["rmi", "app:v2"]).ok().stdout, "Untagged: app:v2\n");

    // The base of a tagged image is refused without -f.
    let refused = env.rbuild(&["rmi", "busybox:local"]).failed();
    assert!(refused.stderr.contains("image has dependent child images (app:v1)"), "{}", refused.stderr);
    assert_eq!(listed(&env, &["-q"]).len(), 2);

    // Last tag by name: untagged and deleted. Its RUN layer stays while
    // the build cache holds it, and goes with that.
    let layers = || std::fs::read_dir(env.root.path().join("layers")).unwrap().count();
    assert_eq!(layers(), 2);
    let out = env.rbuild(&["rmi", "app:v1"]).ok().stdout;
    assert_eq!(out, format!("Untagged: app:v1\nDeleted: {id}\n"));
    env.rbuild(&["inspect", &id]).failed();
    assert_eq!(layers(), 2);
    env.rbuild(&["builder", "prune", "-f"]).ok();
    assert_eq!(layers(), 1);

    // Now busybox has no dependants; -f removes a twice-tagged image by ID.
    env.rbuild(&["tag", "busybox:local", "bb:2"]).ok();
    let out = env.rbuild(&["rmi", "-f", "bb:2", "busybox:local"]).ok().stdout;
    assert!(out.starts_with("Untagged: bb:2\n"), "{out}");
    assert!(listed(&env, &["-a", "-q"]).is_empty());
    env.rbuild(&["system", "check"]).ok();
    let missing = env.rbuild(&["rmi", "nothere"]).failed();
    assert!(missing.stderr.contains("No such image: nothere"), "{}", missing.stderr);
}

#[test]
fn rmi_by_unique_and_ambiguous_id_prefix() {
    require!(busybox_static());
    let env = Env::new();
    // Imports with different messages make different image IDs; with 17 of
    // them two must share a first hex digit.
    let mut ids: Vec<String> = Vec::new();
    for i in 0..17 {
        let m = format!("import {i}");
        let out = env.rbuild(&["import", "-m", &m, busybox_rootfs().to_str().unwrap()]).ok();
        ids.push(out.stdout.trim().trim_start_matches("sha256:").to_string());
    }
    let first_chars: Vec<char> = ids.iter().map(|id| id.chars().next().unwrap()).collect();
    let shared = first_chars.iter().find(|c| first_chars.iter().filter(|d| d == c).count() > 1).unwrap();
    let ambiguous = env.rbuild(&["rmi", &shared.to_string()]).failed();
    assert!(ambiguous.stderr.contains("ambiguous"), "{}", ambiguous.stderr);
    assert_eq!(listed(&env, &["-q", "-a"]).len(), 17);
    let victim = &ids[0];
    let out = env.rbuild(&["rmi", &victim[..10]]).ok().stdout;
    assert_eq!(out.lines().next().unwrap(), format!("Deleted: sha256:{victim}"));
    assert_eq!(listed(&env, &["-q", "-a"]).len(), 16);
}

#[test]
fn inspect_prints_a_docker_style_array_and_templates() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let id = build_image(&env, "app", "ENV A=1 B=<b>\nRUN echo x > /x\nCMD [\"cat\", \"/x\"]\n", "app:v1");
    let out = env.rbuild(&["inspect", "app:v1", "busybox:local"]).ok().stdout;
    assert!(out.starts_with("[\n    {\n        \"Id\": \""), "{out}");
    // The daemon's JSON escapes HTML characters; docker prints it as sent.
    assert!(out.contains("\"B=\\u003cb\\u003e\""), "{out}");
    let docs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(docs.as_array().unwrap().len(), 2);
    let app = &docs[0];
    let keys: Vec<&String> = app.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "Id",
            "RepoTags",
            "RepoDigests",
            "Parent",
            "Comment",
            "Created",
            "DockerVersion",
            "Author",
            "Config",
            "Architecture",
            "Os",
            "Size",
            "GraphDriver",
            "RootFS",
            "Metadata"
        ]
    );
    assert_eq!(app["Id"], id.as_str());
    assert_eq!(app["RepoTags"], serde_json::json!(["app:v1"]));
    assert_eq!(app["Comment"], "buildkit.dockerfile.v0");
    assert_eq!(app["Config"]["Cmd"], serde_json::json!(["cat", "/x"]));
    assert_eq!(app["Size"], 1_984_277 + 2);
    assert_eq!(app["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(app["Parent"], docs[1]["Id"], "built on busybox:local");

    let fmt = |f: &str| env.rbuild(&["inspect", "--format", f, "app:v1"]).ok().stdout;
    assert_eq!(fmt("{{.Os}}"), "linux\n");
    assert_eq!(fmt("{{json .Config.Cmd}}"), "[\"cat\",\"/x\"]\n");
    assert_eq!(fmt("{{.Config.Cmd}}"), "[cat /x]\n");
    assert_eq!(fmt("{{.Config.Entrypoint}} {{json .Config.Entrypoint}}"), "[] null\n");
    // The base has no PATH, so the build sets BuildKit's default one first.
    assert_eq!(
        fmt("{{json .Config.Env}}"),
        "[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"A=1\",\"B=<b>\"]\n",
        "json does not escape HTML"
    );
    assert_eq!(fmt("{{index .RepoTags 0}} {{len .RootFS.Layers}} {{upper .Os}}"), "app:v1 2 LINUX\n");
    assert_eq!(fmt(r#"{{join .RepoTags ","}}{{range .Config.Env}}|{{.}}{{end}}"#).lines().count(), 1);
    let two = env.rbuild(&["inspect", "-f", "{{.Id}}", "app:v1", "busybox:local"]).ok().stdout;
    assert_eq!(two.lines().count(), 2, "one line per image: {two}");

    let missing = env.rbuild(&["inspect", "app:v1", "nothere"]).failed();
    assert!(missing.stderr.contains("No such image: nothere"), "{}", missing.stderr);
    assert!(missing.stdout.contains(&id), "found images are still printed");
    let bad = env.rbuild(&["inspect", "--format", "{{.Nope", "app:v1"]).failed();
    assert!(bad.stderr.contains("template"), "{}", bad.stderr);
}

#[test]
fn history_rows_sizes_and_truncation() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let long = "echo 0123456789012345678901234567890123456789 > /long";
    let id = build_image(&env, "app", &format!("ENV A=1\nRUN {long}\nCMD [\"sh\"]\n"), "app:v1");
    let out = env.rbuild(&["history", "app:v1"]).ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("IMAGE          CREATED   "), "{out}");
    assert!(lines[0].ends_with(&format!("CREATED BY{}SIZE      COMMENT", " ".repeat(38))), "{out}");
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[1].starts_with(&format!("{}   ", short(&id))), "{out}");
    assert!(lines[1].contains("/bin/sh -c #(nop) CMD [\"sh\"]"), "{out}");
    assert!(lines[2].starts_with("<missing>      "), "{out}");
    // CREATED BY is cut to 45 characters, the last being "…".
    assert!(lines[2].contains("RUN /bin/sh -c echo 012345678901234567890123…   "), "{out}");
    assert!(lines[2].contains("   41B       buildkit.dockerfile.v0"), "{out}");
    assert!(lines[3].contains("/bin/sh -c #(nop) ENV A=1"), "{out}");
    assert!(lines[3].contains("   0B        "), "{out}");
    assert!(lines[4].contains("   1.98MB    Imported from -"), "{out}");

    let raw = env
        .rbuild(&[
            "history",
            "--no-trunc",
            "-H=false",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
            "app:v1",
        ])
        .ok()
        .stdout;
    let rows: Vec<&str> = raw.lines().collect();
    assert_eq!(rows[0], format!("{id}|/bin/sh -c #(nop) CMD [\"sh\"]|0"));
    assert_eq!(rows[1], format!("<missing>|RUN /bin/sh -c {long}|41"));
    assert!(rows[3].ends_with("|1984277") && rows[3].starts_with("sha256:"), "the base image's row: {raw}");
    let q = env.rbuild(&["history", "-q", "app:v1"]).ok().stdout;
    assert_eq!(q.lines().next().unwrap(), short(&id));
    assert_eq!(q.lines().nth(1).unwrap(), "<missing>");
}
