//! `rbuild save` and `load`: round trips (plain, gzip on all cores, zstd,
//! piped through gzip), byte-identical re-saves, atomic writes, and the
//! real docker on both sides: our save loads and runs in docker and
//! inspects the same; docker's save loads here, keeps its ID and builds on.

use std::fs;

use crate::harness::*;
use crate::images::{build_image, short};

#[test]
fn save_load_round_trips_in_every_compression() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let id = build_image(&env, "app", "RUN echo saved > /s\nCMD [\"cat\", \"/s\"]\n", "app:v1");
    env.rbuild(&["tag", "app:v1", "app:v2"]).ok();
    let plain = env.path("a.tar");
    env.rbuild(&["save", "-o", plain.to_str().unwrap(), "app"]).ok();
    let gz = env.path("a.tar.gz");
    env.rbuild(&["save", "-o", gz.to_str().unwrap(), "app:v1", "app:v2"]).ok();
    sh(&format!("gzip -t {}", gz.display()));
    assert_eq!(&fs::read(&gz).unwrap()[..2], &[0x1f, 0x8b]);
    let zst = env.path("a.tar.zst");
    env.rbuild(&["save", "-o", zst.to_str().unwrap(), "app:v1", "app:v2"]).ok();
    let to_stdout = env.path("stdout.tar.gz");
    sh(&format!(
        "{RBUILD} --root {} save --compress gzip app:v1 > {}",
        env.root.path().display(),
        to_stdout.display()
    ));
    assert_eq!(&fs::read(&to_stdout).unwrap()[..2], &[0x1f, 0x8b]);
    let piped = env.path("piped.tar.gz");
    sh(&format!(
        "{RBUILD} --root {} save app:v1 app:v2 | gzip > {}",
        env.root.path().display(),
        piped.display()
    ));
    // `gzip -d` reads our multi-member gzip back to the plain archive.
    let unzipped = sh(&format!("gzip -dc {} | sha256sum", gz.display()));
    assert_eq!(unzipped, sh(&format!("sha256sum < {}", plain.display())));

    for archive in [&plain, &gz, &zst, &piped, &to_stdout] {
        let fresh = Env::new();
        let out = fresh.rbuild(&["load", "-i", archive.to_str().unwrap()]).ok().stdout;
        assert!(out.contains("Loaded image: app:v1"), "{out}");
        let ids = fresh.rbuild(&["images", "-q", "--no-trunc", "app:v1"]).ok().stdout;
        assert_eq!(ids, format!("{id}\n"), "from {}", archive.display());
        // Saving again from the fresh store gives the same bytes.
        let again = fresh.path("again.tar");
        fresh.rbuild(&["save", "-o", again.to_str().unwrap(), "app"]).ok();
        if archive != &to_stdout {
            assert!(
                fs::read(&again).unwrap() == fs::read(&plain).unwrap(),
                "re-save of {} differs",
                archive.display()
            );
        }
        fresh.rbuild(&["system", "check"]).ok();
    }
}

#[test]
fn failed_saves_leave_no_file() {
    require!(busybox_static());
    let env = Env::with_busybox();
    let dest = env.path("out.tar");
    let run = env.rbuild(&["save", "-o", dest.to_str().unwrap(), "busybox:local", "nothere:v1"]).failed();
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("No such image: nothere:v1"), "{}", run.stderr);
    assert!(!dest.exists());
    let no_dir = env.path("no/such/dir/out.tar");
    env.rbuild(&["save", "-o", no_dir.to_str().unwrap(), "busybox:local"]).failed();
    // An existing file is left as it was when the save fails.
    fs::write(&dest, "keep me").unwrap();
    env.rbuild(&["save", "-o", dest.to_str().unwrap(), "Bad:Ref"]).failed();
    assert_eq!(fs::read_to_string(&dest).unwrap(), "keep me");
    let leftovers: Vec<_> = fs::read_dir(env.work.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("rbuild-save"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn docker_loads_our_save_and_inspects_the_same() {
    require!(root(), busybox_static(), docker());
    let env = Env::with_busybox();
    let tag = DockerTag::new("images-save");
    let dockerfile =
        "ENV GREETING=hi PORT=8080\nRUN echo from-rbuild > /msg\nLABEL team=web\nCMD [\"cat\", \"/msg\"]\n";
    build_image(&env, "app", dockerfile, &tag.0);
    let archive = env.path("app.tar");
    env.rbuild(&["save", "-o", archive.to_str().unwrap(), &tag.0]).ok();
    sh(&format!("docker load -i {}", archive.display()));
    assert_eq!(sh(&format!("docker run --rm {}", tag.0)), "from-rbuild\n");
    for format in [
        "{{json .RootFS.Layers}}",
        "{{.Os}}",
        "{{.Architecture}}",
        "{{json .Config.Env}}",
        "{{json .Config.Cmd}}",
        "{{.Config.Cmd}}",
        "{{.Id}}",
        "{{.Size}}",
        "{{.Comment}}",
        "{{json .Config}}",
        "{{.Config.Labels}}",
        "{{json .RepoTags}}",
    ] {
        let theirs = sh(&format!("docker image inspect --format '{format}' {}", tag.0));
        let ours = env.rbuild(&["inspect", "--format", format, &tag.0]).ok().stdout;
        assert_same_as_docker(format, &ours, &theirs);
    }
    let history = "{{.CreatedBy}}|{{.Size}}|{{.Comment}}";
    let theirs = sh(&format!("docker history --format '{history}' {}", tag.0));
    let ours = env.rbuild(&["history", "--format", history, &tag.0]).ok().stdout;
    assert_eq!(ours, theirs);
    let theirs = sh(&format!("docker history --no-trunc -H=false --format '{history}' {}", tag.0));
    let ours = env.rbuild(&["history", "--no-trunc", "-H=false", "--format", history, &tag.0]).ok().stdout;
    assert_eq!(ours, theirs);
    let theirs = sh(&format!(
        "docker images --format '{{{{.Repository}}}} {{{{.Tag}}}} {{{{.ID}}}} {{{{.Size}}}}' {}",
        tag.0
    ));
    let ours =
        env.rbuild(&["images", "--format", "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}", &tag.0]).ok().stdout;
    assert_eq!(ours, theirs);
}

#[test]
fn docker_saved_image_keeps_its_id_and_serves_as_from() {
    require!(root(), busybox_static(), docker());
    let env = Env::new();
    // A base made by docker itself from the same busybox root filesystem.
    let base = DockerTag::new("images-docker-base");
    sh(&format!("docker import -c 'CMD [\"sh\"]' {} {}", busybox_rootfs().display(), base.0));
    let ctx = env.dockerfile("dctx", &format!("FROM {}\nRUN echo docker-made > /made\n", base.0));
    let built = DockerTag::new("images-docker-built");
    sh(&format!("DOCKER_BUILDKIT=0 docker build -q -t {} {}", built.0, ctx.display()));
    let docker_id =
        sh(&format!("docker image inspect --format '{{{{.Id}}}}' {}", built.0)).trim().to_string();
    let archive = env.path("docker.tar");
    sh(&format!("docker save -o {} {}", archive.display(), built.0));
    let out = env.rbuild(&["load", "-i", archive.to_str().unwrap()]).ok().stdout;
    assert!(out.contains(&built.0), "{out}");
    let ours = env.rbuild(&["inspect", "--format", "{{.Id}}", &built.0]).ok().stdout;
    assert_eq!(ours.trim(), docker_id);
    for format in ["{{json .RootFS.Layers}}", "{{json .Config.Cmd}}", "{{.Size}}", "{{json .Config}}"] {
        let theirs = sh(&format!("docker image inspect --format '{format}' {}", built.0));
        let ours = env.rbuild(&["inspect", "--format", format, &built.0]).ok().stdout;
        assert_same_as_docker(format, &ours, &theirs);
    }
    env.dockerfile("on", &format!("FROM {}\nRUN cat /made > /copy\n", built.0));
    env.rbuild(&["build", "-q", "-t", "on-docker:1", "on"]).ok();
    let history = env.rbuild(&["history", "--format", "{{.CreatedBy}}", "on-docker:1"]).ok().stdout;
    assert!(history.lines().next().unwrap().contains("cat /made > /copy"), "{history}");
    env.rbuild(&["system", "check"]).ok();
    assert!(short(&docker_id).len() == 12);
}

/// Docker 20.10's client prints an image's `.Config` with every empty field
/// and the container-only ones; a current client prints neither. Both mean
/// the same config, and a real difference still shows.
#[test]
fn docker_json_is_compared_by_meaning() {
    let old = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"Tty":false,"Env":["PATH=/bin"],"Cmd":["sh"],"Image":"sha256:10203a15","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#;
    let new = r#"{"Cmd":["sh"],"Env":["PATH=/bin"]}"#;
    assert_eq!(docker_json_meaning(old, true), docker_json_meaning(new, true));
    assert_ne!(
        docker_json_meaning(old, false),
        docker_json_meaning(new, false),
        "Image is kept outside .Config"
    );
    for differs in [
        r#"{"Cmd":["sh","-c"],"Env":["PATH=/bin"]}"#,
        r#"{"Cmd":["sh"],"Env":["PATH=/bin"],"User":"app"}"#,
        r#"{"Cmd":["sh"],"Env":["PATH=/bin"],"ArgsEscaped":true}"#,
        r#"{"Cmd":["sh"],"Env":["PATH=/bin"],"Labels":{"a":"b"}}"#,
        r#"{"Cmd":["","sh"],"Env":["PATH=/bin"]}"#,
    ] {
        assert_ne!(docker_json_meaning(differs, true), docker_json_meaning(old, true), "{differs}");
    }
}
