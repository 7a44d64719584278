//! rbuild as an ordinary user: a throwaway account with subordinate ids
//! imports a base, builds a multi-stage image with RUN (as root and as a
//! USER of the image), `COPY --chown` and deletions, and must get the very
//! image a root build gets from the same inputs and SOURCE_DATE_EPOCH; the
//! layers record the image's ids, not the host's. Without subordinate ids
//! rbuild refuses with a hint. The sandbox is as tight as for root.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::harness::*;
use crate::isolation::{KERNEL_PROBE, check_kernel_probe};

const EPOCH: &str = "1700000000";

/// A user account made for one test, with a home (its store lives there)
/// and optionally 65536 subordinate uids and gids; removed on drop.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    home: tempfile::TempDir,
}

impl TestUser {
    fn create(with_subordinate_ids: bool) -> TestUser {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("rbrl{}x{serial}", pid % 1_000_000);
        let home = tempfile::tempdir().unwrap();
        // Debian's useradd hands out subordinate ids by itself: not here, so
        // that the ranges are known and an account can have none.
        sh(&format!(
            "useradd -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 --no-create-home --home-dir {} --shell /bin/sh \
             --user-group {name}",
            home.path().display()
        ));
        let uid: u32 = sh(&format!("id -u {name}")).trim().parse().unwrap();
        let gid: u32 = sh(&format!("id -g {name}")).trim().parse().unwrap();
        let user = TestUser { name, uid, gid, home };
        if with_subordinate_ids {
            // A range of this process and account alone, far above the usual
            // 100000-based ones.
            let start = 1_000_000 + (u64::from(pid % 8192) * 4 + u64::from(serial % 4)) * 65536;
            let range = format!("{start}-{}", start + 65535);
            sh(&format!("usermod --add-subuids {range} --add-subgids {range} {}", user.name));
        }
        sh(&format!("chown {uid}:{gid} {}", user.home.path().display()));
        user
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.home.path().join(rel)
    }

    /// Writes a file as this user would own it.
    fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        sh(&format!("chown -R {}:{} {}", self.uid, self.gid, self.home.path().display()));
    }

    /// Runs `program` as this user from its home, with a clean environment
    /// whose XDG_DATA_HOME is `$HOME/data`.
    fn command(&self, program: &str, vars: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={}", self.uid),
            &format!("--regid={}", self.gid),
            "--clear-groups",
            "--",
            program,
        ]);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", self.home.path())
            .env("USER", &self.name)
            .env("XDG_DATA_HOME", self.path("data"))
            .envs(vars.iter().copied())
            // The suite may run under the copying snapshotter.
            .envs(std::env::var("RBUILD_SNAPSHOTTER").map(|v| ("RBUILD_SNAPSHOTTER", v)))
            .current_dir(self.home.path())
            .stdin(Stdio::null());
        cmd
    }

    fn rbuild(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let out = self.command(RBUILD, vars).args(args).output().expect("run rbuild as the test user");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("usermod")
            .args(["--del-subuids", "1-4294967294", "--del-subgids", "1-4294967294", &self.name])
            .output();
        let _ = Command::new("userdel").args(["--force", &self.name]).output();
    }
}

/// Whether this machine can run rootless builds: root (to make the test
/// account), setpriv, the setuid id mappers, and a kernel that lets an
/// ordinary user mount overlayfs in a user namespace (5.11+).
fn can_test_rootless() -> Need {
    root()?;
    busybox_static()?;
    rbuild_test_support::prereq::tools(&["setpriv", "useradd", "usermod", "newuidmap", "newgidmap"])?;
    let probe_user = TestUser::create(false);
    for d in ["lower", "upper", "work", "merged"] {
        probe_user.write(&format!("ovl/{d}/.keep"), "");
    }
    let mount = "mount -t overlay overlay -o lowerdir=ovl/lower,upperdir=ovl/upper,workdir=ovl/work,userxattr ovl/merged";
    let out = probe_user
        .command("unshare", &[])
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", mount])
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!(
            "the kernel does not let an ordinary user mount overlayfs in a user namespace: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// A context: a multi-stage build that runs steps as root and as `app`,
/// deletes files in later steps, and copies with --chown.
fn write_context(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM busybox:local AS build\n\
         RUN mkdir /data && echo hello > /data/hello && echo doomed > /data/doomed && chown 1000:1000 /data/hello && id > /data/id-root\n\
         USER app\n\
         RUN id > /tmp/id-app && echo by-app > /tmp/by-app && stat -c '%u:%g' /tmp/by-app > /tmp/by-app.owner\n\
         USER root\n\
         RUN rm /data/doomed && mkdir /gone && rm -r /gone\n\
         FROM busybox:local\n\
         COPY --from=build /data /data\n\
         COPY --from=build /tmp/id-app /tmp/by-app /tmp/by-app.owner /app/\n\
         COPY --chown=app:app file.txt /opt/file.txt\n\
         RUN rm /bin/vi && mkdir -p /var/empty && chown 65534:65534 /var/empty && echo ok > /var/empty/.keep\n",
    )
    .unwrap();
    fs::write(dir.join("file.txt"), "copied with --chown\n").unwrap();
}

/// `owner path` for every entry of every layer tar of a `docker save`
/// archive, in layer order, with numeric ids.
fn layer_entries(archive: &Path) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    sh(&format!("tar -xf {} -C {}", archive.display(), dir.path().display()));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            let listing = sh(&format!(
                "tar --numeric-owner -tvf {} | awk '{{print $2, $6}}'",
                dir.path().join(layer.as_str().unwrap()).display()
            ));
            listing.lines().map(str::to_string).collect()
        })
        .collect()
}

#[test]
fn rootless_build_gives_the_root_build_image() {
    require!(can_test_rootless());
    let epoch = [("SOURCE_DATE_EPOCH", EPOCH)];
    let busybox = busybox_rootfs().to_str().unwrap();

    // As root.
    let env = Env::new();
    env.rbuild_with(&["import", busybox, "busybox:local"], None, &epoch).ok();
    write_context(&env.path("ctx"));
    let root_iid = env.path("root.iid");
    env.rbuild_with(
        &["build", "-q", "-t", "app:v1", "--iidfile", root_iid.to_str().unwrap(), "ctx"],
        None,
        &epoch,
    )
    .ok();
    let root_id = fs::read_to_string(&root_iid).unwrap();

    // As an ordinary user, with the store in its XDG_DATA_HOME.
    let user = TestUser::create(true);
    fs::copy(busybox, user.path("busybox.tar")).unwrap();
    write_context(&user.path("ctx"));
    sh(&format!("chown -R {}:{} {}", user.uid, user.gid, user.home.path().display()));
    user.rbuild(&["import", "busybox.tar", "busybox:local"], &epoch).ok();
    let build = user
        .rbuild(&["build", "--progress", "plain", "-t", "app:v1", "--iidfile", "user.iid", "ctx"], &epoch)
        .ok();
    assert!(build.stderr.contains("RUN id > /tmp/id-app"), "{}", build.stderr);
    let user_id = fs::read_to_string(user.path("user.iid")).unwrap();
    let version = user.path("data/rbuild/VERSION");
    assert!(version.is_file(), "the store is $XDG_DATA_HOME/rbuild");
    assert_eq!(fs::metadata(&version).unwrap().uid(), user.uid, "the store belongs to the user on the host");

    let root_layers = env.rbuild(&["inspect", "--format", "{{json .RootFS.Layers}}", "app:v1"]).ok().stdout;
    let user_layers =
        user.rbuild(&["inspect", "--format", "{{json .RootFS.Layers}}", "app:v1"], &[]).ok().stdout;
    assert_eq!(user_layers, root_layers, "every layer is byte for byte the root build's");
    assert!(root_id.starts_with("sha256:"), "an image id: {root_id}");
    assert_eq!(user_id, root_id, "the rootless image is the root image");

    // What the layers record: the image's ids, never the host's.
    user.rbuild(&["save", "-o", "app.tar", "app:v1"], &[]).ok();
    let layers = layer_entries(&user.path("app.tar"));
    let entry = |path: &str| -> String {
        layers
            .iter()
            .flatten()
            .rev()
            .find(|l| l.split(' ').nth(1) == Some(path))
            .unwrap_or_else(|| panic!("{path} is in no layer: {layers:#?}"))
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(entry("data/"), "0/0", "root's files are uid 0 in the layer");
    assert_eq!(entry("data/hello"), "1000/1000");
    assert_eq!(entry("app/by-app"), "1000/1000", "COPY --from keeps the owner app gave it");
    assert_eq!(entry("app/id-app"), "1000/1000");
    assert_eq!(entry("opt/file.txt"), "1000/1000", "COPY --chown=app:app");
    assert_eq!(entry("var/empty/"), "65534/65534");
    let last = layers.last().unwrap();
    assert!(last.iter().any(|l| l.ends_with(" bin/.wh.vi")), "rm in a later RUN is a whiteout: {last:?}");
    let all: Vec<&String> = layers.iter().flatten().collect();
    assert!(!all.iter().any(|l| l.contains("data/doomed")), "deleted in the build stage, never copied");
    let owners: std::collections::BTreeSet<&str> = all.iter().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(
        owners.into_iter().collect::<Vec<_>>(),
        ["0/0", "1000/1000", "65534/65534"],
        "only the image's own ids, no host or subordinate id"
    );

    // What the steps saw.
    let out = user.path("rootfs");
    user.rbuild(&["build", "-o", out.to_str().unwrap(), "ctx"], &epoch).ok();
    let read = |p: &str| fs::read_to_string(out.join(p)).unwrap();
    assert!(read("data/id-root").starts_with("uid=0(root) gid=0(root)"), "{}", read("data/id-root"));
    assert!(read("app/id-app").starts_with("uid=1000(app) gid=1000(app)"), "{}", read("app/id-app"));
    assert_eq!(read("app/by-app.owner"), "1000:1000\n", "app's files are app's inside");
    assert_eq!(
        fs::metadata(out.join("opt/file.txt")).unwrap().uid(),
        user.uid,
        "a local export belongs to the user, who can remove it"
    );
}

#[test]
fn rootless_sandbox_is_as_tight_as_roots() {
    require!(can_test_rootless());
    let user = TestUser::create(true);
    fs::copy(busybox_rootfs(), user.path("busybox.tar")).unwrap();
    user.write("probe/Dockerfile", KERNEL_PROBE);
    user.rbuild(&["import", "busybox.tar", "busybox:local"], &[]).ok();
    let out = user.path("probe-out");
    user.rbuild(&["build", "--progress", "plain", "-o", out.to_str().unwrap(), "probe"], &[]).ok();
    check_kernel_probe(&out);
    let none = user.path("none-out");
    let args = ["build", "--progress", "plain", "--no-cache", "-o", none.to_str().unwrap(), "probe"];
    fs::write(
        user.path("probe/Dockerfile"),
        KERNEL_PROBE.replace("\nRUN mkdir", "\nRUN --network=none mkdir"),
    )
    .unwrap();
    user.rbuild(&args, &[]).ok();
    check_kernel_probe(&none);
}

#[test]
fn rootless_builds_forward_ssh_agents_to_any_user() {
    require!(can_test_rootless(), tools(&["ssh-agent", "ssh-add", "ssh-keygen", "ldd"]));
    let user = TestUser::create(true);
    fs::copy(busybox_rootfs(), user.path("busybox.tar")).unwrap();
    let key = user.path("id_rootless");
    sh(&format!("ssh-keygen -q -t ed25519 -N '' -C rootless-key -f {}", key.display()));
    let fingerprint = sh(&format!("ssh-keygen -l -f {}.pub", key.display()));
    let fingerprint = fingerprint.split_whitespace().nth(1).unwrap().to_string();
    crate::build_ssh::write_ssh_add_tools(&user.path("ctx"));
    // The step runs as uid 1000 (subordinate on the host), its socket
    // given to that uid.
    user.write(
        "ctx/Dockerfile",
        "FROM busybox:local\nUSER 1000\nRUN --mount=type=bind,target=/t --mount=type=ssh,uid=1000 id -u && /t/tools/ssh-add -l\n",
    );
    user.rbuild(&["import", "busybox.tar", "busybox:local"], &[]).ok();
    let build =
        user.rbuild(&["build", "--progress", "plain", "--ssh", "default=id_rootless", "ctx"], &[]).ok();
    assert!(build.stderr.contains(&fingerprint) && build.stderr.contains("rootless-key"), "{}", build.stderr);
}

#[test]
fn rootless_without_subordinate_ids_fails_with_a_hint() {
    require!(can_test_rootless());
    let user = TestUser::create(false);
    let run = user.rbuild(&["images"], &[]).failed();
    assert!(run.stderr.contains("/etc/subuid has no entry for"), "{}", run.stderr);
    assert!(run.stderr.contains("hint:") && run.stderr.contains("usermod --add-subuids"), "{}", run.stderr);
    assert!(!user.path("data/rbuild").exists(), "nothing was written");
    let version = user.rbuild(&["--version"], &[]).ok();
    assert!(version.stdout.starts_with("rbuild "), "help and version need no namespace: {}", version.stdout);
}
