//! What a RUN step cannot do: read the host's files (by path, through
//! `/proc`, through an inherited descriptor), see the host's processes or
//! network, change the hostname, hold capabilities beyond Docker's default
//! set, mount, remount or write the kernel's knobs; and that it runs as the
//! Dockerfile's USER with that user's groups, in a session of its own.
//! Secrets stay out of logs and failure reports (their absence from layers,
//! history and the cache is checked in `lang_run.rs`). The kernel probe is
//! shared with `rootless.rs`, which runs it as an ordinary user.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::*;

/// Docker's default capability set: CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
/// KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT,
/// MKNOD, AUDIT_WRITE, SETFCAP.
pub const DOCKER_DEFAULT_CAPS: &str = "00000000a80425fb";

/// Builds `dockerfile` and returns the exported root filesystem, where the
/// steps left their findings under `/results`.
fn probe(env: &Env, name: &str, dockerfile: &str, extra: &[&str]) -> PathBuf {
    env.dockerfile(name, dockerfile);
    let out = env.path(&format!("{name}-out"));
    let dest = format!("type=local,dest={}", out.display());
    let mut args = vec!["build", "--progress", "plain", "-o", &dest];
    args.extend_from_slice(extra);
    args.push(name);
    env.rbuild(&args).ok();
    out
}

fn result(out: &Path, name: &str) -> String {
    let path = out.join("results").join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_string()
}

#[test]
fn run_cannot_read_host_files_by_path_proc_or_inherited_descriptor() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let host = tempfile::tempdir().unwrap();
    let canary_text = format!("rbuild-canary-{}", std::process::id());
    let canary = host.path().join("canary.txt");
    fs::write(&canary, &canary_text).unwrap();
    let store = env.root.path().display().to_string();
    let canary_path = canary.display().to_string();
    let dockerfile = "FROM busybox:local\nARG CANARY\nARG STORE\n\
RUN mkdir /results; : > /results/readable; \
for p in \"$CANARY\" \"/proc/1/root$CANARY\" \"/proc/self/root$CANARY\" \"/proc/self/cwd/../../../../..$CANARY\" \
\"/proc/self/fd/7/canary.txt\" \"/proc/self/fd/8\" \"/proc/1/fd/7/canary.txt\" \"/proc/1/fd/8\"; do \
cat \"$p\" >/dev/null 2>&1 && echo \"$p\" >> /results/readable; done; \
for p in /proc/[0-9]*; do cat \"$p/root$CANARY\" \"$p/cwd$CANARY\" >/dev/null 2>&1 && echo \"$p\" >> /results/readable; done; \
cat <&8 >/dev/null 2>&1 && echo 'fd 8' >> /results/readable; \
ls \"$STORE\" >/dev/null 2>&1 && echo store >> /results/readable; \
ls /proc/self/fd > /results/fds; \
find / -xdev -type f ! -path '/results/*' -exec grep -l rbuild-canary {} + > /results/grep; true\n";
    env.dockerfile("ctx", dockerfile);
    let out = env.path("out");
    // rbuild started with descriptors 7 (the canary's directory) and 8 (the
    // canary) open and inheritable: a careless runtime hands them to the step.
    let script = r#"exec 7<"$HOST_DIR" 8<"$HOST_DIR/canary.txt"; exec "$RBUILD_BIN" "$@""#;
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(["--root", &store, "build", "--progress", "plain", "--no-cache"])
        .args(["--build-arg", &format!("CANARY={canary_path}"), "--build-arg", &format!("STORE={store}")])
        .arg("-o")
        .arg(format!("type=local,dest={}", out.display()))
        .arg("ctx")
        .env("HOST_DIR", host.path())
        .env("RBUILD_BIN", RBUILD)
        .env_remove("SOURCE_DATE_EPOCH")
        .current_dir(env.work.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(result(&out, "readable"), "", "these paths reached the host's canary or store");
    assert_eq!(result(&out, "grep"), "", "the canary's content is nowhere in the step's filesystem");
    assert!(!stderr.contains(&canary_text), "nothing of the canary reached the output:\n{stderr}");
    let fds: Vec<String> = result(&out, "fds").lines().map(str::to_string).collect();
    assert!(
        fds.iter().all(|fd| ["0", "1", "2", "3"].contains(&fd.as_str())),
        "the step inherits stdin, stdout and stderr only (3 is ls's own directory handle): {fds:?}"
    );
    assert_eq!(fs::read_to_string(&canary).unwrap(), canary_text);
}

#[test]
fn run_has_dockers_umask_whatever_rbuild_was_started_with() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nRUN mkdir /results && umask > /results/umask && touch /results/file && \
             mkdir /results/dir && stat -c %a /results/file /results/dir > /results/modes\n",
    );
    let out = env.path("out");
    let store = env.root.path().display().to_string();
    let dest = format!("type=local,dest={}", out.display());
    let run = Command::new("sh")
        .arg("-c")
        .arg(r#"umask 077; exec "$RBUILD_BIN" "$@""#)
        .arg("sh")
        .args(["--root", &store, "build", "--progress", "plain", "-o", &dest, "ctx"])
        .env("RBUILD_BIN", RBUILD)
        .current_dir(env.work.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(result(&out, "umask"), "0022");
    assert_eq!(result(&out, "modes"), "644\n755", "the same modes, so the same layer, for every user");
}

#[test]
fn run_sees_only_its_own_processes_and_hostname() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let out = probe(
        &env,
        "ctx",
        "FROM busybox:local\nRUN mkdir /results && ls -d /proc/[0-9]* > /results/pids && \
         for p in /proc/[0-9]*; do cat $p/comm; done > /results/comms; \
         hostname > /results/hostname; \
         hostname evil-host 2>/dev/null; echo $? > /results/sethostname; \
         (echo evil-host > /proc/sys/kernel/hostname) 2>/dev/null; echo $? > /results/write_hostname; \
         hostname > /results/hostname_after\n",
        &[],
    );
    let pids: Vec<u32> =
        result(&out, "pids").lines().map(|l| l.trim_start_matches("/proc/").parse().unwrap()).collect();
    assert!(
        pids.len() <= 4 && pids.iter().all(|p| *p < 10),
        "only the step's own few processes are visible, numbered from 1: {pids:?}"
    );
    assert!(pids.contains(&1));
    let ours = std::process::id();
    assert!(!pids.contains(&ours) || ours < 10, "the test process is not visible");
    for comm in result(&out, "comms").lines() {
        assert!(["rbuild", "sh", "cat", "ls"].contains(&comm), "a process that is not the step's: {comm}");
    }
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let step_name = result(&out, "hostname");
    assert!(
        !step_name.is_empty() && step_name != host_name,
        "the step has a hostname of its own: {step_name}"
    );
    assert_ne!(result(&out, "sethostname"), "0", "sethostname needs CAP_SYS_ADMIN, which steps lack");
    assert_ne!(result(&out, "write_hostname"), "0", "/proc/sys is read-only");
    assert_eq!(result(&out, "hostname_after"), step_name);
    assert_eq!(fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim(), host_name);
}

#[test]
fn run_has_a_session_of_its_own() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    // Field 6 of stat is the session; `cut` is the process reading it.
    let out = probe(
        &env,
        "ctx",
        "FROM busybox:local\nRUN mkdir /results && cut -d' ' -f6 /proc/self/stat > /results/session && \
         (cat /proc/self/autogroup 2>/dev/null || echo none) > /results/autogroup\n",
        &[],
    );
    // The step's PID 1 leads it, as runc's container init does: job control
    // never reaches the terminal rbuild runs in.
    assert_eq!(result(&out, "session"), "1", "the step's session is led by its own PID 1");
    // Where the kernel shares CPU time between sessions first (autogroup),
    // the step has a share of its own, not a slice of the caller's.
    if let Ok(ours) = fs::read_to_string("/proc/self/autogroup") {
        let group = |line: &str| line.split_whitespace().next().unwrap_or_default().to_string();
        assert_ne!(group(&result(&out, "autogroup")), group(&ours), "the step is in the caller's autogroup");
    }
}

#[test]
fn network_none_has_only_loopback() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let out = probe(
        &env,
        "ctx",
        "FROM busybox:local\nRUN --network=none mkdir /results && cat /proc/net/dev > /results/netdev && \
         ip -o link > /results/links && ping -c 1 -W 1 127.0.0.1 > /dev/null; echo $? > /results/ping\n",
        &[],
    );
    let interfaces: Vec<String> = result(&out, "netdev")
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_string())
        .collect();
    assert_eq!(interfaces, ["lo"], "a fresh network namespace");
    let links = result(&out, "links");
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "loopback is up: {links}");
    assert_eq!(result(&out, "ping"), "0", "loopback works");
}

#[test]
fn run_uses_the_dockerfile_user_and_its_groups() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let out = probe(
        &env,
        "ctx",
        "FROM busybox:local\n\
         RUN echo 'extra:x:1234:root,app' >> /etc/group && echo 'other:x:2345:root' >> /etc/group && \
         mkdir -m 777 /results\n\
         RUN id -G > /results/root_groups\n\
         USER app\n\
         RUN id -u > /results/uid && id -g > /results/gid && id -G > /results/groups && \
         grep -E '^(Uid|Gid|Groups):' /proc/self/status > /results/status && \
         (touch /etc/passwd 2>/dev/null; echo $? > /results/write_etc)\n\
         USER 4321:5432\n\
         RUN id -u > /results/numeric_uid && id -G > /results/numeric_groups\n",
        &[],
    );
    assert_eq!(result(&out, "root_groups"), "0 1234 2345", "root gets its groups from /etc/group too");
    assert_eq!(result(&out, "uid"), "1000");
    assert_eq!(result(&out, "gid"), "1000");
    assert_eq!(result(&out, "groups"), "1000 1234", "app's supplementary groups come from the image");
    let status = result(&out, "status");
    assert!(status.contains("Uid:\t1000\t1000\t1000\t1000"), "real, effective, saved and fs uid: {status}");
    assert!(status.contains("Groups:\t1000 1234"), "{status}");
    assert_ne!(result(&out, "write_etc"), "0", "app cannot write root's files");
    assert_eq!(result(&out, "numeric_uid"), "4321");
    assert_eq!(result(&out, "numeric_groups"), "5432", "an id not in /etc/passwd gets just its gid");
}

/// Runs as root and as `app`; records capabilities, the seccomp mode, and
/// every attempt to make a user namespace, mount or reach the kernel's
/// knobs. Shared with `rootless.rs`.
pub const KERNEL_PROBE: &str = "FROM busybox:local\n\
RUN mkdir -p -m 777 /results /mnt/t && grep ^Cap /proc/self/status > /results/caps_root && \
grep ^Seccomp: /proc/self/status > /results/seccomp; \
(unshare -r -m true) 2>/dev/null; echo $? > /results/unshare_user; \
(mount -o remount,rw /proc/sys) 2>/dev/null; echo $? > /results/remount_proc_sys; \
(mount -t tmpfs none /mnt/t) 2>/dev/null; echo $? > /results/mount_tmpfs; \
(mount --bind /bin /mnt/t) 2>/dev/null; echo $? > /results/mount_bind; \
(mount -t proc proc /mnt/t) 2>/dev/null; echo $? > /results/mount_proc; \
(umount /proc/sys) 2>/dev/null; echo $? > /results/umount_proc_sys; \
(umount -l /proc/sysrq-trigger) 2>/dev/null; echo $? > /results/umount_sysrq; \
(echo h > /proc/sysrq-trigger) 2>/dev/null; echo $? > /results/sysrq; \
(echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null; echo $? > /results/proc_sys_write; \
wc -c < /proc/interrupts > /results/interrupts; \
for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger; do [ -e $p ] && echo $p $(grep \" $p \" /proc/self/mounts); done > /results/ro_mounts; \
grep -E ' /sys ' /proc/self/mounts > /results/sys_mount; \
(mknod /tmp/null c 1 3 && echo x > /tmp/null) 2>/dev/null; echo $? > /results/device_in_root; \
(mknod /dev/null2 c 1 3 && echo x > /dev/null2) 2>/dev/null; echo $? > /results/device_in_dev; \
rm -f /tmp/null; true\n\
USER app\n\
RUN grep ^Cap /proc/self/status > /results/caps_app\n";

fn capability(caps: &str, name: &str) -> String {
    caps.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:\t")))
        .unwrap_or_else(|| panic!("no {name} in {caps}"))
        .to_string()
}

/// Checks what [`KERNEL_PROBE`] recorded.
pub fn check_kernel_probe(out: &Path) {
    let root = result(out, "caps_root");
    assert_eq!(capability(&root, "CapEff"), DOCKER_DEFAULT_CAPS, "root's effective set is Docker's default");
    assert_eq!(capability(&root, "CapPrm"), DOCKER_DEFAULT_CAPS);
    assert_eq!(capability(&root, "CapBnd"), DOCKER_DEFAULT_CAPS, "nothing more can ever be gained");
    assert_eq!(capability(&root, "CapInh"), "0000000000000000");
    assert_eq!(capability(&root, "CapAmb"), "0000000000000000");
    let app = result(out, "caps_app");
    assert_eq!(capability(&app, "CapEff"), "0000000000000000", "a non-root USER holds no capability");
    assert_eq!(capability(&app, "CapPrm"), "0000000000000000");
    assert_eq!(capability(&app, "CapBnd"), DOCKER_DEFAULT_CAPS);
    assert_eq!(result(out, "seccomp"), "Seccomp:\t2", "Docker's seccomp profile filters the step");
    for attempt in [
        "unshare_user",
        "remount_proc_sys",
        "mount_tmpfs",
        "mount_bind",
        "mount_proc",
        "umount_proc_sys",
        "umount_sysrq",
        "sysrq",
        "proc_sys_write",
        "device_in_root",
        "device_in_dev",
    ] {
        assert_ne!(result(out, attempt), "0", "{attempt} must fail");
    }
    assert_eq!(result(out, "interrupts"), "0", "/proc/interrupts is masked, as in Docker");
    // `path device path type options …` for each that exists on this kernel.
    let ro = result(out, "ro_mounts");
    assert!(ro.lines().any(|l| l.starts_with("/proc/sys ")), "{ro}");
    for line in ro.lines() {
        let options = line.split(' ').nth(4).unwrap_or_default();
        assert!(options.split(',').any(|f| f == "ro"), "a read-only mount of its own: {line}");
    }
    let sys = result(out, "sys_mount");
    assert!(
        sys.split(' ').nth(3).is_some_and(|o| o.split(',').any(|f| f == "ro")),
        "/sys is read-only: {sys}"
    );
}

#[test]
fn run_has_docker_default_capabilities_and_cannot_mount_or_touch_kernel_knobs() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let out = probe(&env, "ctx", KERNEL_PROBE, &[]);
    check_kernel_probe(&out);
    let isolated = KERNEL_PROBE.replace("\nRUN mkdir", "\nRUN --network=none mkdir");
    let out = probe(&env, "none", &isolated, &[]);
    check_kernel_probe(&out);
}

#[test]
fn secrets_stay_out_of_trace_logs_and_failure_reports() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let secret = "correct-horse-battery-staple";
    fs::write(env.path("token.txt"), secret).unwrap();
    let token = format!("id=token,src={}", env.path("token.txt").display());
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nRUN --mount=type=secret,id=token --mount=type=secret,id=envtok,env=TOKEN \
             cat /run/secrets/token; echo \"env=$TOKEN\"; echo \"$TOKEN\" >&2; exit 3\n",
    );
    let args = [
        "--log-level",
        "trace",
        "build",
        "--progress",
        "plain",
        "--secret",
        &token,
        "--secret",
        "id=envtok,env=MY_TOKEN",
        "ctx",
    ];
    let run = env.rbuild_with(&args, None, &[("MY_TOKEN", secret)]).failed();
    assert!(run.stderr.contains("exit code: 3") || run.stderr.contains("code 3"), "{}", run.stderr);
    for (what, text) in
        [("stdout", &run.stdout), ("stderr (trace log, progress, failure report)", &run.stderr)]
    {
        assert!(!text.contains(secret), "the secret leaked into {what}:\n{text}");
    }
    assert!(run.stderr.contains("****"), "the step's echo of the secret is masked:\n{}", run.stderr);
    let found = sh(&format!("grep -rl {secret} {} || true", env.root.path().display()));
    assert_eq!(found.trim(), "", "a failed step leaves the secret nowhere in the store");
}

/// A RUN step's root is a volatile overlay where the kernel has the option
/// (5.10+): the step's own fsyncs and the syncfs at the end of its mount
/// namespace cost nothing, and the layer it makes is the same.
#[test]
fn the_run_root_is_a_volatile_overlay_on_kernels_that_have_it() {
    require!(root(), busybox_static());
    let release = sh("uname -r");
    let mut numbers = release.trim().split(['.', '-']).map(|n| n.parse::<u32>().unwrap_or(0));
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    let env = Env::with_busybox();
    let out = probe(
        &env,
        "volatile",
        "FROM busybox:local\nRUN mkdir /results && grep ' / overlay ' /proc/mounts > /results/root && sync && echo ok > /results/synced\n",
        // About the overlay snapshotter, also when the suite runs with
        // RBUILD_SNAPSHOTTER=copy.
        &["--snapshotter", "overlay"],
    );
    let root = result(&out, "root");
    assert_eq!(result(&out, "synced"), "ok");
    if version >= (5, 10) {
        assert!(root.contains("volatile"), "kernel {release}: {root}");
    } else {
        assert!(!root.contains("volatile"), "kernel {release} has no volatile overlays: {root}");
    }
}
