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
