//! Hostile build contexts, stages and images: symlinks in the context that
//! point outside it (COPY and `RUN --mount=type=bind` resolve them with the
//! context as the root, as Docker does), `..` sources, `COPY --from` stages
//! whose links escape, WORKDIR and COPY destinations through symlinks an
//! image planted (`/work -> /proc/self/cwd`, `/etc -> /`, a link to a host
//! path), and RUN steps that look for the host through leaked descriptors,
//! `/proc`, or device nodes they make themselves.
//!
//! Every case runs in an [`Arena`] and ends with its "nothing escaped"
//! check; the canary's content must also never appear in rbuild's output.

use std::fs;
use std::os::unix::fs::symlink;

use crate::harness::*;
use crate::hostile::build_in;
use crate::hostile_support::*;

/// Asserts a failed build with `expect` in its message, naming the step.
fn build_refused(arena: &Arena, case: &str, run: &Run, expect: &str) {
    assert_eq!(run.code, 1, "case {case}: the build should fail\n{}", run.stderr);
    assert!(run.stderr.contains(expect), "case {case}: expected {expect:?} in:\n{}", run.stderr);
    assert!(!run.stderr.contains(&arena.secret), "case {case}: the canary was printed");
    arena.assert_nothing_escaped(case);
}

fn build_ok(arena: &Arena, case: &str, run: &Run) {
    assert_eq!(run.code, 0, "case {case}: the build should succeed\n{}", run.stderr);
    assert!(!run.stderr.contains(&arena.secret), "case {case}: the canary was printed");
    arena.assert_nothing_escaped(case);
}

/// A context with a link to the canary, a link climbing out of the
/// context, and a directory holding a link to the canary.
fn hostile_context(arena: &Arena, name: &str, dockerfile: &str) {
    let dir = arena.path(name);
    fs::create_dir_all(dir.join("dir")).unwrap();
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    fs::write(dir.join("dir/plain"), "plain\n").unwrap();
    symlink(&arena.canary, dir.join("canary-link")).unwrap();
    symlink(&arena.canary, dir.join("dir/canary-link")).unwrap();
    symlink("../../../../../../../../../../..", dir.join("up")).unwrap();
}

fn build(arena: &Arena, name: &str) -> Run {
    arena.env.rbuild(&["build", "--progress", "plain", name])
}

fn build_local(arena: &Arena, name: &str) -> (Run, std::path::PathBuf) {
    let out = arena.path(&format!("{name}-out"));
    let dest = format!("type=local,dest={}", out.display());
    (arena.env.rbuild(&["build", "--progress", "plain", "-o", &dest, name]), out)
}

#[test]
fn context_links_resolve_inside_the_context() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let rel_canary = arena.canary.to_str().unwrap().trim_start_matches('/').to_string();

    hostile_context(&arena, "copy-link", "FROM busybox:local\nCOPY canary-link /stolen\n");
    let run = build(&arena, "copy-link");
    build_refused(
        &arena,
        "copy-link-to-canary",
        &run,
        "canary-link: no such file or directory in the build context",
    );

    hostile_context(&arena, "copy-up", &format!("FROM busybox:local\nCOPY up/{rel_canary} /stolen\n"));
    let run = build(&arena, "copy-up");
    build_refused(
        &arena,
        "copy-through-climbing-link",
        &run,
        "no such file or directory in the build context",
    );

    hostile_context(&arena, "copy-dotdot", "FROM busybox:local\nCOPY ../sentinel/canary.txt /stolen\n");
    let run = build(&arena, "copy-dotdot");
    build_refused(&arena, "copy-dotdot", &run, "outside the build context");

    // A directory's links are copied as links, never followed.
    hostile_context(&arena, "copy-dir", "FROM busybox:local\nCOPY dir/ /copied/\n");
    let (run, out) = build_local(&arena, "copy-dir");
    build_ok(&arena, "copy-dir-with-link", &run);
    let link = fs::read_link(out.join("copied/canary-link")).unwrap();
    assert_eq!(link, arena.canary, "the link is copied as it is");
    assert!(file_containing(&out, arena.secret.as_bytes()).is_none());
}

#[test]
fn bind_mounts_of_the_context_resolve_inside_it() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();

    hostile_context(
        &arena,
        "bind-link",
        "FROM busybox:local\nRUN --mount=type=bind,source=canary-link,target=/m cat /m > /stolen; true\n",
    );
    let run = build(&arena, "bind-link");
    assert!(!run.stderr.contains(&arena.secret));
    arena.assert_nothing_escaped("bind-source-link-to-canary");

    hostile_context(
        &arena,
        "bind-dotdot",
        "FROM busybox:local\nRUN --mount=type=bind,source=../,target=/m ls /m\n",
    );
    let run = build(&arena, "bind-dotdot");
    build_refused(&arena, "bind-source-dotdot", &run, "outside the build context");

    // Inside the mount, the link points into the step's own root.
    hostile_context(
        &arena,
        "bind-dir",
        "FROM busybox:local\nRUN --mount=type=bind,source=dir,target=/m cat /m/canary-link > /stolen 2>&1; cat /stolen\n",
    );
    let run = build(&arena, "bind-dir");
    build_ok(&arena, "bind-dir-reading-link", &run);

    // A writable bind: writes through the link stay in the step's root and
    // are thrown away.
    hostile_context(
        &arena,
        "bind-rw",
        "FROM busybox:local\nRUN --mount=type=bind,source=dir,target=/m,rw mkdir -p $(dirname $(readlink /m/canary-link)) && echo overwritten > /m/canary-link && echo x > /m/pwned-rw\n",
    );
    let run = build(&arena, "bind-rw");
    build_ok(&arena, "bind-rw-writing-through-link", &run);
    assert!(!arena.path("bind-rw/dir/pwned-rw").exists(), "a rw bind never writes to the context");
    assert!(fs::symlink_metadata(arena.path("bind-rw/dir/canary-link")).unwrap().file_type().is_symlink());
}

#[test]
fn escaping_links_in_stages_resolve_inside_the_stage() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let s = arena.sentinel.display().to_string();
    let rel_canary = arena.canary.to_str().unwrap().trim_start_matches('/').to_string();

    let run = build_in(
        &arena,
        "from-link",
        &format!(
            "FROM busybox:local AS s\nRUN ln -s {s} /link\nFROM busybox:local\nCOPY --from=s /link/canary.txt /stolen\n"
        ),
        &[],
    );
    build_refused(&arena, "copy-from-through-stage-link", &run, "no such file or directory");

    let run = build_in(
        &arena,
        "from-root-link",
        &format!(
            "FROM busybox:local AS s\nRUN ln -s / /root-link\nFROM busybox:local\nCOPY --from=s /root-link/{rel_canary} /stolen\n"
        ),
        &[],
    );
    build_refused(&arena, "copy-from-through-root-link", &run, "no such file or directory");

    let run = build_in(
        &arena,
        "from-bind-link",
        &format!(
            "FROM busybox:local AS s\nRUN ln -s {s} /link\nFROM busybox:local\nRUN --mount=type=bind,from=s,source=/link,target=/m ls /m\n"
        ),
        &[],
    );
    build_refused(&arena, "bind-from-through-stage-link", &run, "does not exist in the source stage");
}

#[test]
fn destinations_through_planted_symlinks_stay_in_the_image() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let s = arena.sentinel.display().to_string();
    let files: &[(&str, &[u8])] = &[("f", b"payload\n")];

    // CVE-2024-21626's shape: a working directory that is /proc/self/cwd.
    let (run, out) = {
        build_in(
            &arena,
            "proc-cwd",
            "FROM busybox:local\nRUN ln -s /proc/self/cwd /work\nWORKDIR /work\nCOPY f .\nRUN pwd; ls -la /proc/self/cwd/ > /listing\n",
            files,
        );
        build_local(&arena, "proc-cwd")
    };
    assert!(!run.stderr.contains(&arena.secret));
    arena.assert_nothing_escaped("workdir-proc-self-cwd");
    if run.code == 0 {
        assert!(out.join("proc/self/cwd/f").is_file(), "COPY . lands under the image's own /proc/self/cwd");
    }

    // `/etc -> /`: writes to /etc/... land at the image's root, and RUN's
    // own /etc/hosts and /etc/resolv.conf go there too.
    let etc_root = RawTar::new().symlink("etc", "/").finish();
    let archive = arena.path("etc-root.tar");
    fs::write(&archive, docker_archive("etc-root:1", &[etc_root])).unwrap();
    arena.env.rbuild(&["load", "-i", archive.to_str().unwrap()]).ok();
    let (run, out) = {
        build_in(
            &arena,
            "etc-root",
            "FROM etc-root:1\nCOPY --from=busybox:local /bin/ /bin/\nCOPY f /etc/pwned-etc\nRUN cat /etc/pwned-etc /etc/hosts > /seen\n",
            files,
        );
        build_local(&arena, "etc-root")
    };
    build_ok(&arena, "copy-and-run-through-etc-to-root", &run);
    assert!(out.join("pwned-etc").is_file(), "the file lands at the image's /");

    // A link to a host path: COPY and WORKDIR through it write into the
    // image's own copy of that path.
    let (run, out) = {
        build_in(
            &arena,
            "host-link",
            &format!(
                "FROM busybox:local\nRUN ln -s {s} /target\nCOPY f /target/pwned-copy\nWORKDIR /target/pwned-workdir\nCOPY f ./\nADD f /target/sub/pwned-add\n"
            ),
            files,
        );
        build_local(&arena, "host-link")
    };
    build_ok(&arena, "copy-workdir-add-through-host-link", &run);
    let inside = out.join(s.trim_start_matches('/'));
    assert!(inside.join("pwned-copy").is_file() && inside.join("pwned-workdir/f").is_file());
    assert!(inside.join("sub/pwned-add").is_file());
}

#[test]
fn run_steps_see_no_host_descriptors_or_roots() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let dockerfile = "FROM busybox:local\nRUN ls /proc/self/fd/ > /fds; for l in /proc/self/root /proc/1/root /proc/1/cwd; do readlink $l || echo denied; done > /roots\n";
    build_in(&arena, "fds", dockerfile, &[]);
    let (run, out) = build_local(&arena, "fds");
    build_ok(&arena, "no-leaked-fds", &run);
    let fds = fs::read_to_string(out.join("fds")).unwrap();
    assert_eq!(
        fds.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "only stdio and ls's own directory"
    );
    let roots = fs::read_to_string(out.join("roots")).unwrap();
    // The sandbox's init (PID 1) keeps capabilities the step lacks, so the
    // kernel may refuse the step a look at its root: also safe.
    let roots: Vec<&str> = roots.split_whitespace().collect();
    assert_eq!(roots.len(), 3, "{roots:?}");
    assert_eq!(roots[0], "/", "the step's own root is its own");
    assert!(roots.iter().all(|r| *r == "/" || *r == "denied"), "no host path is visible: {roots:?}");
}

/// A loop device whose content is the canary, removed on drop.
struct CanaryDisk {
    dev: String,
    major: u64,
    minor: u64,
}

impl CanaryDisk {
    fn new(arena: &Arena) -> Need<CanaryDisk> {
        tool("losetup")?;
        let image = arena.base.path().join("disk.img");
        fs::write(&image, arena.secret.repeat(4096 / arena.secret.len() + 1)).unwrap();
        let out = std::process::Command::new("losetup").args(["-f", "--show"]).arg(&image).output().unwrap();
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(format!("losetup cannot attach a loop device: {}", why.trim()).into());
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let hex = sh(&format!("stat -c '%t %T' {dev}"));
        let mut parts = hex.split_whitespace().map(|h| u64::from_str_radix(h, 16).unwrap());
        Ok(CanaryDisk { dev, major: parts.next().unwrap(), minor: parts.next().unwrap() })
    }
}

impl Drop for CanaryDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// A step may make device nodes (images ship them), but never open one:
/// not one it made on its root, in a cache mount, nor one an image brought.
/// Otherwise a step could read the host's disks.
#[test]
fn device_nodes_cannot_be_opened_in_run_steps() {
    require!(root(), busybox_static());
    let mut arena = Arena::with_busybox();
    let disk = require!(CanaryDisk::new(&arena));
    // The disk image is the arena's own file; the listing must allow it.
    arena = arena.rebaseline();
    let (major, minor) = (disk.major, disk.minor);
    let image =
        RawTar::new().device("disk", tar::EntryType::Block, major as u32, minor as u32, 0o666).finish();
    let archive = arena.path("disk-image.tar");
    fs::write(&archive, docker_archive("disk-image:1", &[image])).unwrap();
    arena.env.rbuild(&["load", "-i", archive.to_str().unwrap()]).ok();
    let dockerfile = format!(
        "FROM busybox:local\n\
RUN mknod /made b {major} {minor} && (head -c 4096 /made > /leak-root || true)\n\
RUN --mount=type=cache,target=/c mknod /c/made b {major} {minor} 2>/dev/null; (head -c 4096 /c/made > /leak-cache || true)\n\
RUN --mount=type=tmpfs,target=/t mknod /t/made b {major} {minor} && (head -c 4096 /t/made > /leak-tmpfs || true)\n\
RUN --mount=type=bind,from=disk-image:1,target=/i (head -c 4096 /i/disk > /leak-bind || true)\n\
FROM disk-image:1\n\
COPY --from=0 /bin/ /bin/\n\
RUN (head -c 4096 /disk > /leak-image || true)\n"
    );
    let run = build_in(&arena, "devices", &dockerfile, &[]);
    build_ok(&arena, "device-nodes-not-openable", &run);
    drop(disk);
}

/// The class of CVE-2024-23651: a cache mount is shared with steps that
/// may run at the same time, so while a step's mounts are being set up,
/// a directory inside the cache can be swapped for a symlink to a host
/// path. Mount targets below the cache (tmpfs dirs, secret files) must
/// still be created and mounted inside the step's root. The swapping is
/// done here from the host side, as fast as the kernel allows, with
/// `renameat2(RENAME_EXCHANGE)` between an empty directory and a link.
#[test]
fn mount_targets_in_a_cache_being_swapped_for_symlinks_stay_inside() {
    require!(root(), busybox_static());
    let arena = Arena::with_busybox();
    let secret = arena.path("secret");
    fs::write(&secret, "not the canary\n").unwrap();
    let mut dockerfile = String::from("FROM busybox:local\nARG N\n");
    let mut mounts = String::from("--mount=type=cache,id=race,target=/c ");
    for i in 0..12 {
        mounts.push_str(&format!("--mount=type=tmpfs,target=/c/d/t{i} "));
    }
    mounts
        .push_str("--mount=type=secret,id=s,target=/c/d/file --mount=type=secret,id=s,target=/c/d/deeper/x ");
    for i in 0..6 {
        dockerfile.push_str(&format!("RUN {mounts}echo $N-{i}\n"));
    }
    let dir = arena.path("race");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Dockerfile"), &dockerfile).unwrap();
    let secret_arg = format!("id=s,src={}", secret.display());
    let build = |n: usize| {
        arena.env.rbuild(&[
            "build",
            "--progress",
            "plain",
            "--build-arg",
            &format!("N={n}"),
            "--secret",
            &secret_arg,
            "race",
        ])
    };
    // The first build creates the cache directory.
    build(0).ok();
    let cache =
        arena.env.root.path().join("state/cache-mounts").join(rbuild_oci::digest::Digest::of(b"race").hex());
    assert!(cache.is_dir(), "cache mount directory {}", cache.display());
    let (d, alt) = (cache.join("d"), cache.join("alt"));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir(&d).unwrap();
    symlink(arena.sentinel.join("sub"), &alt).unwrap();

    let stop = std::sync::atomic::AtomicBool::new(false);
    let (mut ok, mut failed, mut swaps) = (0, 0, 0u64);
    std::thread::scope(|scope| {
        let swapper = scope.spawn(|| {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &d,
                    nix::fcntl::AT_FDCWD,
                    &alt,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                );
                // Keep the directory empty, so every mount target must be
                // created again.
                empty_dir_without_following(&d);
                empty_dir_without_following(&alt);
                n += 1;
            }
            n
        });
        // Stops the swapper however the loop ends: a failed assertion
        // unwinds through here, and the scope waits for the swapper.
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let stopper = StopOnDrop(&stop);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
        let mut n = 1;
        while std::time::Instant::now() < deadline && n <= 20 {
            let run = build(n);
            if run.code == 0 {
                ok += 1
            } else {
                failed += 1
            }
            assert!(run.code == 0 || run.code == 1, "build {n}: {}", run.stderr);
            arena.assert_nothing_escaped(&format!("cache-symlink-swap build {n}"));
            n += 1;
        }
        drop(stopper);
        swaps = swapper.join().unwrap();
    });
    eprintln!("cache symlink swap: {ok} builds succeeded, {failed} failed cleanly, {swaps} swaps");
    arena.assert_nothing_escaped("cache-symlink-swap");
}

/// Removes what is in `dir` (two levels deep) unless `dir` is not a
/// directory; never follows a symlink, even one swapped in meanwhile.
fn empty_dir_without_following(dir: &std::path::Path) {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    use nix::unistd::{UnlinkatFlags, unlinkat};
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Ok(mut handle) = nix::dir::Dir::open(dir, flags, Mode::empty()) else { return };
    let names: Vec<std::ffi::CString> = handle
        .iter()
        .flatten()
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        if unlinkat(&handle, name.as_c_str(), UnlinkatFlags::NoRemoveDir).is_ok() {
            continue;
        }
        if let Ok(mut sub) = nix::dir::Dir::openat(&handle, name.as_c_str(), flags, Mode::empty()) {
            let inner: Vec<std::ffi::CString> = sub
                .iter()
                .flatten()
                .map(|e| e.file_name().to_owned())
                .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
                .collect();
            for child in inner {
                let _ = unlinkat(&sub, child.as_c_str(), UnlinkatFlags::NoRemoveDir);
            }
        }
        let _ = unlinkat(&handle, name.as_c_str(), UnlinkatFlags::RemoveDir);
    }
}
