//! A file a COPY would write with exactly the bytes, owner, mode and time
//! of a stored layer's file is a hard link to it: a `COPY --from` of
//! another stage's output, and the files an edit rebuild's COPY finds
//! unchanged in the layer the same step made before. Images, exports and
//! later steps see the same files as with copies, and the layers stay
//! independent of each other.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::harness::*;

fn inode(path: &Path) -> (u64, u64) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.dev(), m.ino())
}

/// The image's diffIDs, bottom first.
fn diff_ids(env: &Env, image: &str) -> Vec<String> {
    let layers = env.inspect_json(image, ".RootFS.Layers");
    layers.as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
}

/// `tar -tv` of a layer as the store exports it (written on demand by save).
fn layer_listing(env: &Env, image: &str, diff_id: &str) -> String {
    let saved = env.path("saved.tar");
    env.rbuild(&["save", "-o", saved.to_str().unwrap(), image]).ok();
    let tar = env.layer_fs(diff_id).parent().unwrap().join("layer.tar");
    sh(&format!("tar -tvf {}", tar.display()))
}

#[test]
fn a_copy_from_another_stage_links_its_files_and_a_later_run_leaves_the_source_alone() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local AS build\n\
         RUN mkdir /out && echo payload > /out/big && echo other > /out/other\n\
         FROM busybox:local\n\
         COPY --from=build /out/big /srv/big\n\
         COPY --from=build --chown=1000:1000 /out/other /srv/other\n\
         RUN echo appended >> /srv/big && cat /srv/big > /srv/seen\n",
    );
    env.rbuild(&["build", "--progress", "plain", "--target", "build", "-t", "links:build", "ctx"]).ok();
    let (_, out) = build_local(&env, "ctx", &["-t", "links:v1"]);
    let build_layer = env.layer_fs(diff_ids(&env, "links:build").last().unwrap());
    let ids = diff_ids(&env, "links:v1");
    let [copied, chowned] = [&ids[ids.len() - 3], &ids[ids.len() - 2]].map(|d| env.layer_fs(d));

    // Same owner, mode and time: one inode in both layers.
    assert_eq!(inode(&copied.join("srv/big")), inode(&build_layer.join("out/big")));
    // Another owner: a copy of its own.
    let other = fs::symlink_metadata(chowned.join("srv/other")).unwrap();
    assert_eq!((other.uid(), other.gid(), other.nlink()), (1000, 1000, 1));
    // The RUN changed its own copy; both layers kept what they had.
    assert_contents(&out, &[("srv/big", "payload\nappended\n"), ("srv/seen", "payload\nappended\n")]);
    assert_contents(&build_layer, &[("out/big", "payload\n")]);
    assert_contents(&copied, &[("srv/big", "payload\n")]);
    // The layer's tar holds a plain file, not a link to anything.
    let listing = layer_listing(&env, "links:v1", &ids[ids.len() - 3]);
    let line = listing.lines().find(|l| l.ends_with("srv/big")).unwrap_or_else(|| panic!("{listing}"));
    assert!(line.starts_with("-rw-r--r--"), "a regular file in the layer tar: {line}");
}

#[test]
fn an_edit_rebuild_links_the_files_it_did_not_change_to_the_previous_layer() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox:local\nCOPY src/ /app/src/\n"),
            ("src/a.txt", "alpha\n"),
            ("src/b.txt", "beta\n"),
            ("src/deep/c.txt", "gamma\n"),
            ("src/mode.txt", "same bytes\n"),
        ],
    );
    let layer_of = |env: &Env| env.layer_fs(diff_ids(env, "edit:v1").last().unwrap());
    build_local(&env, "ctx", &["-t", "edit:v1"]);
    let first = layer_of(&env);

    fs::write(ctx.join("src/b.txt"), "beta, edited\n").unwrap();
    let mode_file = ctx.join("src/mode.txt");
    fs::set_permissions(&mode_file, fs::Permissions::from_mode(0o600)).unwrap();
    let (_, out) = build_local(&env, "ctx", &["-t", "edit:v1"]);
    let second = layer_of(&env);
    assert_ne!(first, second);

    for same in ["app/src/a.txt", "app/src/deep/c.txt"] {
        assert_eq!(inode(&second.join(same)), inode(&first.join(same)), "{same} is the earlier layer's file");
    }
    for changed in ["app/src/b.txt", "app/src/mode.txt"] {
        assert_ne!(inode(&second.join(changed)), inode(&first.join(changed)), "{changed} is written anew");
    }
    let mode = fs::symlink_metadata(second.join("app/src/mode.txt")).unwrap().mode();
    assert_eq!(mode & 0o7777, 0o600);
    assert_contents(&first, &[("app/src/b.txt", "beta\n")]);
    assert_contents(
        &out,
        &[
            ("app/src/a.txt", "alpha\n"),
            ("app/src/b.txt", "beta, edited\n"),
            ("app/src/deep/c.txt", "gamma\n"),
        ],
    );

    // With links turned off every file is a copy of its own.
    fs::write(ctx.join("src/b.txt"), "beta, again\n").unwrap();
    let iid = env.path("iid");
    env.rbuild_with(
        &["build", "--progress", "plain", "--iidfile", iid.to_str().unwrap(), "-t", "edit:v1", "ctx"],
        None,
        &[("RBUILD_COPY_LINKS", "0")],
    )
    .ok();
    let third = layer_of(&env);
    for file in ["app/src/a.txt", "app/src/deep/c.txt"] {
        assert_eq!(fs::symlink_metadata(third.join(file)).unwrap().nlink(), 1, "{file} is a copy");
    }
}

#[test]
fn a_symlink_in_the_previous_layer_never_leads_the_reuse_out_of_the_store() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    // A host file with the very bytes, owner, mode and time the copy will
    // have, where the previous layer's symlink points.
    let host_dir = env.path("host-dir");
    fs::create_dir_all(&host_dir).unwrap();
    let host_file = host_dir.join("a.txt");
    fs::write(&host_file, "same\n").unwrap();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM busybox:local\nCOPY tree/ /\n")]);
    fs::create_dir_all(ctx.join("tree")).unwrap();
    std::os::unix::fs::symlink(&host_dir, ctx.join("tree/app")).unwrap();
    build_local(&env, "ctx", &["-t", "escape:v1"]);

    // Now `app` is a directory holding that file.
    fs::remove_file(ctx.join("tree/app")).unwrap();
    fs::create_dir(ctx.join("tree/app")).unwrap();
    let file = ctx.join("tree/app/a.txt");
    fs::write(&file, "same\n").unwrap();
    for f in [&file, &host_file] {
        sh(&format!("touch -h -d @1600000000.123456789 {}", f.display()));
    }
    let (_, out) = build_local(&env, "ctx", &["-t", "escape:v1"]);
    assert_contents(&out, &[("app/a.txt", "same\n")]);
    assert_eq!(fs::metadata(&host_file).unwrap().nlink(), 1, "the host file was linked into a layer");
    let layer = env.layer_fs(diff_ids(&env, "escape:v1").last().unwrap());
    assert_ne!(inode(&layer.join("app/a.txt")), inode(&host_file));
}

#[test]
fn an_edit_rebuild_whose_copy_writes_a_path_twice_keeps_the_last_source() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY one/ two/ /dst/\nRUN cat /dst/x.txt /dst/y.txt > /seen\n",
            ),
            ("one/x.txt", "from one\n"),
            ("one/y.txt", "y\n"),
            ("two/x.txt", "from two\n"),
            ("two/sub/z.txt", "z\n"),
        ],
    );
    build_local(&env, "ctx", &[]);
    // Another file changes: the COPY runs again with the earlier layer offered.
    fs::write(ctx.join("one/y.txt"), "y, edited\n").unwrap();
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(
        &out,
        &[
            ("dst/x.txt", "from two\n"),
            ("dst/y.txt", "y, edited\n"),
            ("dst/sub/z.txt", "z\n"),
            ("seen", "from two\ny, edited\n"),
        ],
    );
}
