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
    let env = every_change_env();
    let archive = env.path("out.tar");
    let run = env
        .rbuild_with(
            &[
                "build",
                "--progress",
                "plain",
                "--snapshotter",
                snapshotter,
                "--iidfile",
                env.path("iid").to_str().unwrap(),
                "-t",
                tag,
                "-o",
                &format!("type=docker,dest={}", archive.display()),
                "ctx",
            ],
            None,
            &[("SOURCE_DATE_EPOCH", EPOCH)],
        )
        .ok();
    let iid = fs::read_to_string(env.path("iid")).unwrap();
    (iid, run.stderr, fs::read(&archive).unwrap())
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

    assert_eq!(layers_of(&overlay_archive).len(), layers.len());
    for (i, (a, b)) in layers_of(&overlay_archive).iter().zip(&layers).enumerate() {
        assert!(a == b, "layer {i} differs between the snapshotters: {:?}", entries_of(b));
    }
    assert_eq!(overlay_id, copy_id, "same inputs, same image, whichever snapshotter ran");
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
    // snapshot would change the base itself.
    env.dockerfile(
        "writer",
        "FROM busybox:local\nRUN echo changed > /etc/group && echo more >> /etc/passwd && chmod 600 /etc/passwd\n",
    );
    env.rbuild(&["build", "--snapshotter", "copy", "writer"]).ok();
    env.dockerfile(
        "reader",
        "FROM busybox:local\nRUN cat /etc/group > /seen && ls -l /etc/passwd >> /seen\n",
    );
    let out = env.path("out");
    env.rbuild(&["build", "--snapshotter", "copy", "-o", out.to_str().unwrap(), "reader"]).ok();
    let seen = fs::read_to_string(out.join("seen")).unwrap();
    assert!(seen.starts_with(&original), "the base's /etc/group changed:\n{seen}");
    assert!(seen.contains("-rw-r--r--"), "the base's /etc/passwd mode changed:\n{seen}");
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
