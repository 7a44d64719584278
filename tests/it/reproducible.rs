//! Reproducible images: with SOURCE_DATE_EPOCH, two checkouts of a context
//! (different file times) built in two fresh stores give the same image ID
//! and byte-identical docker and OCI archives.

use std::fs;

use crate::harness::*;

const DOCKERFILE: &str = "FROM busybox:local AS build\nWORKDIR /w\nCOPY src/ ./src/\nRUN cat src/* > all.txt && date > /tmp/when\n\
FROM busybox:local\nCOPY --from=build /w/all.txt /all.txt\nRUN echo built > /built\nCMD [\"cat\", \"/all.txt\"]\n";

fn checkout(env: &Env, name: &str, mtime: &str) {
    env.context(name, &[("Dockerfile", DOCKERFILE), ("src/a.txt", "alpha\n"), ("src/b.txt", "beta\n")]);
    sh(&format!("find {} -exec touch -h -d '{mtime}' {{}} +", env.path(name).display()));
}

#[test]
fn same_inputs_give_byte_identical_images_across_stores_and_checkouts() {
    require!(root(), busybox_static());
    let epoch = "1700000000";
    let mut results = Vec::new();
    for (i, mtime) in ["2024-01-02 03:04:05", "2025-06-07 08:09:10"].into_iter().enumerate() {
        let env = Env::new();
        let vars = [("SOURCE_DATE_EPOCH", epoch)];
        env.rbuild_with(&["import", busybox_rootfs().to_str().unwrap(), "busybox:local"], None, &vars).ok();
        checkout(&env, "ctx", mtime);
        let docker = env.path("out.docker.tar");
        let oci = env.path("out.oci.tar");
        let run = env
            .rbuild_with(
                &[
                    "build",
                    "-q",
                    "-t",
                    "repro:v1",
                    "-o",
                    &format!("type=docker,dest={}", docker.display()),
                    "-o",
                    &format!("type=oci,dest={}", oci.display()),
                    "ctx",
                ],
                None,
                &vars,
            )
            .ok();
        results.push((run.stdout.trim().to_string(), fs::read(&docker).unwrap(), fs::read(&oci).unwrap(), i));
    }
    assert_eq!(results[0].0, results[1].0, "same image ID");
    assert!(results[0].1 == results[1].1, "docker archives must be byte-identical");
    assert!(results[0].2 == results[1].2, "OCI archives must be byte-identical");
}

#[test]
fn identical_steps_give_identical_layers_in_any_store() {
    require!(root(), busybox_static());
    let layers = |env: &Env| {
        env.context(
            "ctx",
            &[
                ("Dockerfile", "FROM busybox:local\nCOPY src/ /src/\nCOPY src/a.txt /etc/\n"),
                ("src/a.txt", "a\n"),
                ("src/b.txt", "b\n"),
            ],
        );
        sh(&format!("find {} -exec touch -h -d '2024-01-02 03:04:05' {{}} +", env.path("ctx").display()));
        let out = env.path("x.tar");
        env.rbuild(&["build", "-o", &format!("type=docker,dest={}", out.display()), "ctx"]).ok();
        let manifest = sh(&format!("tar -xOf {} manifest.json", out.display()));
        let v: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        let config_path = v[0]["Config"].as_str().unwrap().to_string();
        let config: serde_json::Value =
            serde_json::from_str(&sh(&format!("tar -xOf {} {config_path}", out.display()))).unwrap();
        config["rootfs"]["diff_ids"].clone()
    };
    let a = layers(&Env::with_busybox());
    let b = layers(&Env::with_busybox());
    // Without SOURCE_DATE_EPOCH only steps whose inputs fix every file time
    // (COPY from the context) can match; these must, byte for byte.
    assert_eq!(a.as_array().unwrap().len(), 3);
    assert_eq!(a, b, "COPY layers must have the same diffIDs in both stores");
}

/// A RUN that reads file times (tar, as the app context's build stage
/// does; .pyc and jar files do the same) sees COPY's files no newer than
/// SOURCE_DATE_EPOCH, so two checkouts made at different times give the
/// same image; without the variable the files keep their own times, as
/// with Docker.
#[test]
fn run_steps_that_read_file_times_are_reproducible_with_source_date_epoch() {
    require!(root(), busybox_static());
    let dockerfile = "FROM busybox:local\nWORKDIR /w\nCOPY src/ ./src/\n\
        RUN tar -cf /bundle.tar src && stat -c '%n %Y' src src/a.txt > /times\n";
    let build = |mtime: &str, epoch: Option<&str>| {
        let env = Env::new();
        // The base made at the same epoch too, so only the context differs.
        let base_vars = [("SOURCE_DATE_EPOCH", "1600000000")];
        env.rbuild_with(&["import", busybox_rootfs().to_str().unwrap(), "busybox:local"], None, &base_vars)
            .ok();
        env.context("ctx", &[("Dockerfile", dockerfile), ("src/a.txt", "alpha\n"), ("src/b.txt", "beta\n")]);
        sh(&format!("find {} -exec touch -h -d '{mtime}' {{}} +", env.path("ctx").display()));
        let dest = env.path("out");
        let vars: Vec<(&str, &str)> = epoch.map(|e| ("SOURCE_DATE_EPOCH", e)).into_iter().collect();
        let id = env
            .rbuild_with(
                &["build", "-q", "-o", &format!("type=local,dest={}", dest.display()), "ctx"],
                None,
                &vars,
            )
            .ok()
            .stdout
            .trim()
            .to_string();
        let times = fs::read_to_string(dest.join("times")).unwrap();
        (id, times, fs::read(dest.join("bundle.tar")).unwrap())
    };
    let epoch = "1700000000";
    let first = build("2024-01-02 03:04:05", Some(epoch));
    let second = build("2025-06-07 08:09:10", Some(epoch));
    assert_eq!(first.1, format!("src {epoch}\nsrc/a.txt {epoch}\n"), "RUN must see clamped times");
    assert!(first.2 == second.2, "the tar a RUN makes must not depend on the checkout's times");
    assert_eq!(first.0, second.0, "same image ID from both checkouts");

    // Files older than the epoch keep their own time (clamping, not setting).
    let older = build("2020-01-01 00:00:00", Some(epoch));
    let old_secs = sh("date -d '2020-01-01 00:00:00' +%s").trim().to_string();
    assert_eq!(older.1, format!("src {old_secs}\nsrc/a.txt {old_secs}\n"));

    let unclamped = build("2025-06-07 08:09:10", None);
    let own_secs = sh("date -d '2025-06-07 08:09:10' +%s").trim().to_string();
    assert_eq!(
        unclamped.1,
        format!("src {own_secs}\nsrc/a.txt {own_secs}\n"),
        "without the variable, as Docker"
    );
}

/// The sandbox's mount targets leave no trace in a RUN's layer: the helper
/// makes `/etc/hosts` and `/etc/resolv.conf` in the base's `/etc`, and a
/// step that changed nothing there must not carry `etc/` with the time it
/// ran. So `RUN true` adds no layer, and equal steps run seconds apart make
/// equal layers, as with Docker, with either snapshotter. A step that does
/// change `/etc` keeps it.
#[test]
fn run_layers_hold_only_what_the_step_changed() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN true\nRUN echo x > /x && touch -d @1000000000 /x\n\
             RUN chmod 0750 /etc\nRUN mkdir /etc/new && touch -d @1000000000 /etc/new /etc\n",
        )],
    );
    let build = |name: &str, extra: &[&str]| {
        let out = env.path(name);
        let mut args = vec!["build", "-q", "-o"];
        let dest = format!("type=docker,dest={}", out.display());
        args.push(&dest);
        args.extend_from_slice(extra);
        args.push("ctx");
        env.rbuild(&args).ok();
        let manifest: serde_json::Value =
            serde_json::from_str(&sh(&format!("tar -xOf {} manifest.json", out.display()))).unwrap();
        let config_path = manifest[0]["Config"].as_str().unwrap().to_string();
        let config: serde_json::Value =
            serde_json::from_str(&sh(&format!("tar -xOf {} {config_path}", out.display()))).unwrap();
        let listings: Vec<String> = manifest[0]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| sh(&format!("tar -xOf {} {} | tar -tvf -", out.display(), l.as_str().unwrap())))
            .collect();
        (config["rootfs"]["diff_ids"].clone(), listings)
    };
    let (first, listings) = build("a.tar", &[]);
    // The base's one layer, then one per RUN that changed something.
    assert_eq!(listings.len(), 4, "RUN true must add no layer: {listings:#?}");
    let names = |listing: &str| -> Vec<String> {
        listing
            .lines()
            .map(|l| l.split_whitespace().last().unwrap().trim_end_matches('/').to_string())
            .collect()
    };
    assert_eq!(names(&listings[1]), ["x"], "a step that left /etc alone: {}", listings[1]);
    assert_eq!(names(&listings[2]), ["etc"], "chmod keeps the directory: {}", listings[2]);
    assert!(listings[2].starts_with("drwxr-x---"), "with the new mode: {}", listings[2]);
    assert_eq!(names(&listings[3]), ["etc", "etc/new"], "{}", listings[3]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (second, _) = build("b.tar", &["--no-cache"]);
    assert_eq!(first, second, "the same steps a second later must make the same layers");
    let (copied, _) = build("c.tar", &["--no-cache", "--snapshotter", "copy"]);
    assert_eq!(first, copied, "the copying snapshotter must make the same layers");
}
