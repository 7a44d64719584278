//! The two snapshotters (`--snapshotter overlay|copy|auto`): the copying
//! one gives the same layers, and so the same image ID, as the overlay one
//! for the same inputs; its output loads and runs in Docker; `auto` takes
//! it where overlayfs cannot mount (a store on overlayfs); a RUN never
//! changes the cached base through its copied root; a bad value is a
//! clear error.

use std::fs;
use std::io::Read;

use rbuild_test_support::RawTar;

use crate::harness::*;

const EPOCH: &str = "1700000000";

/// Every kind of change a RUN can make to what its base holds: add,
/// modify, delete, rename, a directory removed and made again, a file
/// replaced by a directory and back, chmod and chown only, symlinks
/// (new, dangling, replaced), hard links made in the step and a write
/// through one name of a base hard link, an xattr of the base kept through
/// a chmod, a file opened for writing and left as it was (overlayfs copies
/// it up),
/// and cache, tmpfs and stage bind mounts whose targets are not in the
/// image.
const EVERY_CHANGE: &str = r#"FROM busybox:local AS base
RUN mkdir -p /data/keep /data/gone /data/re /data/swap \
 && echo a > /data/keep/a && echo b > /data/gone/b && echo r > /data/re/old \
 && echo m > /data/mod && echo d > /data/del && echo x > /data/ren && echo c > /data/chm \
 && echo o > /data/own && echo f > /data/swap/f && echo t > /data/todir \
 && ln -s a /data/keep/link && echo l > /data/lnk1 && ln /data/lnk1 /data/lnk2 && echo o > /data/opened

FROM base
RUN --mount=type=cache,target=/var/cache/t --mount=type=tmpfs,target=/scratch \
    --mount=type=bind,from=base,source=/data/keep,target=/mnt/keep \
    echo m2 >> /data/mod && rm /data/del && mv /data/ren /data/renamed \
 && chmod 600 /data/chm && chown 1:2 /data/own \
 && rm -rf /data/gone && rm -rf /data/re && mkdir /data/re && echo n > /data/re/new \
 && rm -rf /data/swap && echo now-a-file > /data/swap && rm /data/todir && mkdir /data/todir && touch /data/todir/x \
 && echo h > /data/h1 && ln /data/h1 /data/h2 && ln /data/keep/a /data/keep/a-link \
 && ln -s /nowhere /data/dangling && rm /data/keep/link && ln -s b /data/keep/link \
 && echo l2 >> /data/lnk1 && rm /bin/wget && mkdir -p /new/deep/dir && touch /new/deep/dir/f \
 && chmod 700 /xattr/file && cat /mnt/keep/a > /from-bind && : >> /data/opened && echo cached > /var/cache/t/c && echo tmp > /scratch/t
RUN rm -rf /new/deep && echo again > /etc/motd && cat /data/lnk2 /data/lnk1 > /links
CMD ["cat", "/links", "/data/re/new", "/data/swap", "/from-bind"]
"#;

/// A context with [`EVERY_CHANGE`], and a store whose `busybox:local`
/// also has a file with a `user.` xattr (ADD and COPY do not carry xattrs,
/// an imported root filesystem does).
fn every_change_env() -> Env {
    let env = Env::new();
    let mut rootfs = tar::Builder::new(Vec::new());
    let mut busybox = tar::Archive::new(fs::File::open(busybox_rootfs()).unwrap());
    for entry in busybox.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        rootfs.append(&header, &mut entry).unwrap();
    }
    let with_xattr = RawTar::new()
        .dir("xattr/")
        .pax(&[("SCHILY.xattr.user.note", b"kept")])
        .file_mode("xattr/file", 0o644, b"with an xattr\n")
        .unterminated();
    std::io::Write::write_all(rootfs.get_mut(), &with_xattr).unwrap();
    let rootfs_path = env.path("rootfs.tar");
    fs::write(&rootfs_path, rootfs.into_inner().unwrap()).unwrap();
    let vars = [("SOURCE_DATE_EPOCH", EPOCH)];
    env.rbuild_with(&["import", rootfs_path.to_str().unwrap(), "busybox:local"], None, &vars).ok();
    env.context("ctx", &[("Dockerfile", EVERY_CHANGE)]);
    env
}

/// Builds [`EVERY_CHANGE`] in a fresh store with `snapshotter`, tagged
/// `tag`; returns the image ID, the run's stderr and the docker archive
/// written.
fn build_every_change(snapshotter: &str, tag: &str) -> (String, String, Vec<u8>) {
    build_archive(&every_change_env(), snapshotter, tag, "ctx")
}

/// Builds the context `ctx` of `env` with `snapshotter` (debug log on, to
/// tell which roots were reused), tagged `tag`; returns the image ID, the
/// run's stderr and the docker archive written.
fn build_archive(env: &Env, snapshotter: &str, tag: &str, ctx: &str) -> (String, String, Vec<u8>) {
    let archive = env.path("out.tar");
    let iidfile = env.path("iid");
    let run = env
        .rbuild_with(
            &[
                "build",
                "--progress",
                "plain",
                "--snapshotter",
                snapshotter,
                "--iidfile",
                iidfile.to_str().unwrap(),
                "-t",
                tag,
                "-o",
                &format!("type=docker,dest={}", archive.display()),
                ctx,
            ],
            None,
            &[("SOURCE_DATE_EPOCH", EPOCH), ("RBUILD_LOG", "rbuild_builder=debug")],
        )
        .ok();
    let iid = fs::read_to_string(iidfile).unwrap();
    (iid, run.stderr, fs::read(&archive).unwrap())
}

/// How many RUN steps of a copy build got the previous step's root.
fn reused_roots(log: &str) -> usize {
    log.matches("reused the previous step's root").count()
}

/// Asserts two docker archives hold the same layers, byte for byte.
fn assert_same_layers(overlay_archive: &[u8], copy_archive: &[u8]) {
    let (overlay, copy) = (layers_of(overlay_archive), layers_of(copy_archive));
    assert_eq!(overlay.len(), copy.len());
    for (i, (a, b)) in overlay.iter().zip(&copy).enumerate() {
        assert!(a == b, "layer {i} differs between the snapshotters: {:?}", entries_of(b));
    }
}

/// The layer tars of a docker archive, bottom first.
fn layers_of(archive: &[u8]) -> Vec<Vec<u8>> {
    let member = |name: &str| -> Vec<u8> {
        let mut tar = tar::Archive::new(archive);
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().to_str() == Some(name) {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                return bytes;
            }
        }
        panic!("{name} is not in the archive");
    };
    let manifest: serde_json::Value = serde_json::from_slice(&member("manifest.json")).unwrap();
    manifest[0]["Layers"].as_array().unwrap().iter().map(|l| member(l.as_str().unwrap())).collect()
}

/// (path, xattr names) of each entry of a layer tar.
fn entries_of(layer: &[u8]) -> Vec<(String, Vec<String>)> {
    let mut tar = tar::Archive::new(layer);
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let xattrs = e
                .pax_extensions()
                .unwrap()
                .map(|exts| {
                    exts.filter_map(|x| x.ok())
                        .filter_map(|x| x.key().ok().map(str::to_string))
                        .filter(|k| k.starts_with("SCHILY.xattr."))
                        .collect()
                })
                .unwrap_or_default();
            (path, xattrs)
        })
        .collect()
}

#[test]
fn both_snapshotters_give_the_same_image_id() {
    require!(root(), busybox_static());
    let (overlay_id, overlay_log, overlay_archive) = build_every_change("overlay", "every:change");
    let (copy_id, copy_log, copy_archive) = build_every_change("copy", "every:change");
    assert!(overlay_log.contains("snapshotter: overlay (--snapshotter overlay)"), "{overlay_log}");
    assert!(copy_log.contains("snapshotter: copy (--snapshotter copy)"), "{copy_log}");

    // The step that changes everything made the layer it should: the
    // overlay conventions for each kind of change.
    let layers = layers_of(&copy_archive);
    let changes = entries_of(&layers[layers.len() - 2]);
    let paths: Vec<&str> = changes.iter().map(|(p, _)| p.as_str()).collect();
    for expected in [
        "data/.wh.del",
        "data/.wh.ren",
        "data/renamed",
        "data/.wh.gone",
        "data/re/",
        "data/re/.wh..wh..opq",
        "data/re/new",
        "data/swap",
        "data/todir/.wh..wh..opq",
        "data/chm",
        "data/own",
        "data/h2",
        "data/keep/a",
        "data/keep/a-link",
        "data/lnk1",
        "bin/.wh.wget",
        "data/opened",
        "from-bind",
    ] {
        assert!(paths.contains(&expected), "{expected} missing from the layer: {paths:?}");
    }
    for absent in ["data/lnk2", "var/cache/t/c", "scratch/t", "mnt/keep/a", "data/re/old"] {
        assert!(!paths.contains(&absent), "{absent} must not be in the layer: {paths:?}");
    }
    let xattr_file = changes.iter().find(|(p, _)| p == "xattr/file").expect("the chmod copies the file up");
    assert_eq!(xattr_file.1, ["SCHILY.xattr.user.note"], "its xattr comes along");

    assert_same_layers(&overlay_archive, &copy_archive);
    // Both RUNs of the second stage build on the step before them (the
    // first on the base stage's last one): neither copies its root afresh.
    assert_eq!(reused_roots(&copy_log), 2, "{copy_log}");
    assert_eq!(overlay_id, copy_id, "same inputs, same image, whichever snapshotter ran");
}

/// A chain of RUNs in which each builds on what the one before changed
/// (so each gets the previous step's root, with the layers made in
/// between applied): a COPY between two RUNs, a RUN that changes nothing,
/// a file replaced by a directory and back, a chmod alone, deletions of
/// what the step before made, RUN mounts, and a second stage running its
/// own chain.
const RUN_CHAIN: &str = r#"FROM busybox:local AS other
RUN mkdir /o && echo 1 > /o/one
RUN echo 2 >> /o/one && rm -rf /etc/network

FROM busybox:local
RUN mkdir -p /w/d /w/swap /w/ren && echo 1 > /w/a && echo 2 > /w/b && echo 3 > /w/c \
 && echo x > /w/d/x && echo s > /w/swap/s && echo m > /w/mode && echo t > /w/tmp && echo r > /w/ren/r
RUN echo 1b >> /w/a && rm /w/b && mv /w/c /w/c2 && rm -rf /w/swap && echo file > /w/swap \
 && chmod 600 /w/mode && rm /w/tmp && rm -rf /w/d && mkdir /w/d && echo y > /w/d/y && mv /w/ren /w/renamed
COPY added /w/added
RUN rm /w/swap && mkdir /w/swap && echo back > /w/swap/again && rm /w/added/f1 && echo more >> /w/c2 \
 && rm /bin/wget && chmod 700 /w/d && ln /w/a /w/a-link
RUN --mount=type=cache,target=/var/cache/t --mount=type=tmpfs,target=/scratch \
    --mount=type=bind,from=other,source=/o,target=/mnt/o \
    cat /mnt/o/one > /w/from-other && echo c > /var/cache/t/c && echo t > /scratch/t \
 && rm -rf /w/swap/again && chmod 640 /w/a-link
RUN true
RUN rm -rf /w/renamed && echo 4 >> /w/a && cat /w/a /w/c2 /w/swap/* > /w/all 2>&1 || true
COPY --from=other /o /o
RUN cat /o/one >> /w/all && rm -rf /w/d
CMD ["cat", "/w/all"]
"#;

#[test]
fn reused_roots_give_the_same_layers_as_overlay_along_a_chain_of_runs() {
    require!(root(), busybox_static());
    let build = |snapshotter: &str| {
        let env = Env::new();
        let import = ["import", busybox_rootfs().to_str().unwrap(), "busybox:local"];
        env.rbuild_with(&import, None, &[("SOURCE_DATE_EPOCH", EPOCH)]).ok();
        env.context("chain", &[("Dockerfile", RUN_CHAIN), ("added/f1", "f1\n"), ("added/f2", "f2\n")]);
        build_archive(&env, snapshotter, "run:chain", "chain")
    };
    let (overlay_id, _, overlay_archive) = build("overlay");
    let (copy_id, copy_log, copy_archive) = build("copy");
    // Every RUN but each stage's first gets the root of the step before:
    // 1 in `other`, 6 in the last stage.
    assert_eq!(reused_roots(&copy_log), 7, "{copy_log}");
    let layers = layers_of(&copy_archive);
    let paths = |layer: &[u8]| -> Vec<String> { entries_of(layer).into_iter().map(|(p, _)| p).collect() };
    // Deleting what the previous RUN made, and a directory made again where
    // the step before put a file: the same whiteouts and opaque markers.
    let third_run = paths(&layers[4]);
    for expected in ["w/added/.wh.f1", "w/swap/", "w/swap/.wh..wh..opq", "w/swap/again", "bin/.wh.wget"] {
        assert!(third_run.contains(&expected.to_string()), "{expected} missing: {third_run:?}");
    }
    assert_same_layers(&overlay_archive, &copy_archive);
    assert_eq!(overlay_id, copy_id, "same inputs, same image, whichever snapshotter ran");
}

#[test]
fn a_failed_run_after_a_reused_root_leaves_the_next_build_correct() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let first = "FROM busybox:local\nRUN echo a > /a && rm /bin/wget\n";
    env.dockerfile("broken", &format!("{first}RUN echo half > /half && rm /etc/passwd /a && false\n"));
    let failed = env
        .rbuild_with(
            &["build", "--snapshotter", "copy", "broken"],
            None,
            &[("RBUILD_LOG", "rbuild_builder=debug")],
        )
        .failed();
    assert_eq!(reused_roots(&failed.stderr), 1, "the failed RUN ran in the kept root:\n{}", failed.stderr);
    let fixed = format!("{first}RUN ls / > /seen && cat /a /etc/passwd >> /seen\n");
    env.dockerfile("fixed", &fixed);
    let out = env.path("out");
    let run = env.rbuild(&["build", "--snapshotter", "copy", "-o", out.to_str().unwrap(), "fixed"]).ok();
    assert!(run.cached_lines().iter().any(|l| l.contains("RUN echo a")), "{}", run.stderr);
    let seen = fs::read_to_string(out.join("seen")).unwrap();
    assert!(!seen.contains("half"), "the failed step's file is in the next build:\n{seen}");
    assert!(seen.contains("root:x:0:0"), "the failed step's deletion is in the next build:\n{seen}");
    assert!(seen.lines().any(|l| l == "a"), "{seen}");
    env.rbuild(&["system", "check"]).ok();
}

#[test]
fn a_copy_build_loads_and_runs_in_docker() {
    require!(root(), busybox_static(), docker());
    let tag = DockerTag::new("every");
    let (_, _, archive) = build_every_change("copy", &tag.0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("every.tar");
    fs::write(&path, archive).unwrap();
    let loaded = sh(&format!("docker load -i {}", path.display()));
    assert!(loaded.contains(&tag.0), "{loaded}");
    let out = sh(&format!("docker run --rm {}", tag.0));
    // lnk2 kept the base's content: a write through one name of a base hard
    // link copies that name up alone, as under overlayfs.
    assert_eq!(out, "l\nl\nl2\nn\nnow-a-file\na\n");
}

#[test]
fn a_run_cannot_change_the_cached_base_through_a_copied_root() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let original = sh(&format!("tar -xOf {} ./etc/group", busybox_rootfs().display()));
    // In-place writes (same inode): a root sharing inodes with the base's
    // snapshot would change the base itself. The second RUN gets the first
    // one's root with /made and /dir/f put back from the first RUN's layer:
    // writing them in place must not reach that layer either.
    let made = "FROM busybox:local\nRUN echo made > /made && mkdir /dir && echo in > /dir/f\n";
    env.dockerfile(
        "writer",
        &format!(
            "{made}RUN echo changed > /etc/group && echo more >> /etc/passwd && chmod 600 /etc/passwd \\\n \
             && echo more >> /made && chmod 600 /made && echo more >> /dir/f\n"
        ),
    );
    let written = env
        .rbuild_with(
            &["build", "--snapshotter", "copy", "writer"],
            None,
            &[("RBUILD_LOG", "rbuild_builder=debug")],
        )
        .ok();
    assert_eq!(reused_roots(&written.stderr), 1, "{}", written.stderr);
    env.dockerfile(
        "reader",
        &format!("{made}RUN cat /etc/group /made /dir/f > /seen && ls -l /etc/passwd /made >> /seen\n"),
    );
    let out = env.path("out");
    env.rbuild(&["build", "--snapshotter", "copy", "-o", out.to_str().unwrap(), "reader"]).ok();
    let seen = fs::read_to_string(out.join("seen")).unwrap();
    assert!(seen.starts_with(&original), "the base's /etc/group changed:\n{seen}");
    assert!(!seen.contains("-rw-------"), "a mode in the base or the first RUN's layer changed:\n{seen}");
    assert!(seen.contains("\nmade\nin\n"), "the first RUN's layer changed:\n{seen}");
    env.rbuild(&["system", "check"]).ok();
}

#[test]
fn a_killed_copy_build_leaves_no_prepared_root_behind() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM busybox:local\nRUN sleep 60\n");
    let mut child = std::process::Command::new(RBUILD)
        .args(["--root", env.root.path().to_str().unwrap(), "build", "--snapshotter", "copy", "ctx"])
        .current_dir(env.work.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let prepared =
        || sh(&format!("find {}/tmp -mindepth 3 -maxdepth 3 -name root", env.root.path().display()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while prepared().trim().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no prepared root appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The step is running in its prepared root: kill the build there.
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!prepared().trim().is_empty(), "the killed build left its root (what this test is about)");
    env.dockerfile("next", "FROM busybox:local\nRUN echo next > /next\n");
    env.rbuild(&["build", "--snapshotter", "copy", "next"]).ok();
    assert_eq!(prepared().trim(), "", "the next build removes a dead build's prepared root");
    env.rbuild(&["system", "check"]).ok();
}

#[test]
fn a_bad_snapshotter_is_a_clear_error() {
    let env = Env::new();
    env.dockerfile("ctx", "FROM scratch\nCOPY Dockerfile /\n");
    let run = env.rbuild(&["build", "--snapshotter", "zfs", "ctx"]).failed();
    assert!(run.stderr.contains("--snapshotter"), "{}", run.stderr);
    assert!(run.stderr.contains("expected auto, overlay or copy"), "{}", run.stderr);
    let run = env.rbuild_with(&["build", "ctx"], None, &[("RBUILD_SNAPSHOTTER", "vfs")]).failed();
    assert!(run.stderr.contains("expected auto, overlay or copy"), "{}", run.stderr);
    assert_eq!(env.rbuild(&["images", "-q"]).ok().stdout.trim(), "", "nothing was built");
}

/// An overlay mount for a test's store, unmounted on drop.
struct OverlayStore {
    merged: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl OverlayStore {
    fn mount() -> OverlayStore {
        let dir = tempfile::tempdir().unwrap();
        let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|d| dir.path().join(d));
        for d in [&lower, &upper, &work, &merged] {
            fs::create_dir(d).unwrap();
        }
        sh(&format!(
            "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {}",
            lower.display(),
            upper.display(),
            work.display(),
            merged.display()
        ));
        OverlayStore { merged, _dir: dir }
    }
}

impl Drop for OverlayStore {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.merged).status();
    }
}

#[test]
fn auto_takes_copy_for_a_store_on_overlayfs_and_overlay_elsewhere() {
    require!(root(), busybox_static());
    let dockerfile = "FROM busybox:local\nRUN echo hi > /hi && rm /bin/wget\n";
    let vars = [("SOURCE_DATE_EPOCH", EPOCH)];
    let iid =
        |run: &Run| run.stderr.lines().find_map(|l| l.strip_prefix("writing image ")).map(str::to_string);
    let build = |env: &Env| {
        env.rbuild_with(&["import", busybox_rootfs().to_str().unwrap(), "busybox:local"], None, &vars).ok();
        env.dockerfile("ctx", dockerfile);
        env.rbuild_with(&["build", "--progress", "plain", "--snapshotter", "auto", "ctx"], None, &vars).ok()
    };
    let on_host = build(&Env::new());
    assert!(
        on_host.stderr.contains("snapshotter: overlay (overlayfs mounts on the store's filesystem)"),
        "{}",
        on_host.stderr
    );

    // As in a container whose root filesystem is overlayfs: no overlay
    // upper dir can live there.
    let overlay = OverlayStore::mount();
    let inner =
        Env { root: tempfile::tempdir_in(&overlay.merged).unwrap(), work: tempfile::tempdir().unwrap() };
    let inside = build(&inner);
    assert!(
        inside.stderr.contains("snapshotter: copy (overlayfs refused by the store's filesystem: "),
        "{}",
        inside.stderr
    );
    assert!(iid(&on_host).is_some(), "{}", on_host.stderr);
    assert_eq!(iid(&inside), iid(&on_host), "the same image either way");
    // The answer is kept: the next build does not probe again.
    let store = inner.root.path();
    assert!(store.join("state/overlay-probe.json").exists());
    let again = inner
        .rbuild_with(
            &["build", "--progress", "plain", "--no-cache", "--snapshotter", "auto", "ctx"],
            None,
            &vars,
        )
        .ok();
    assert!(again.stderr.contains("snapshotter: copy"), "{}", again.stderr);
}
