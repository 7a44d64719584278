//! The test harness: a fresh store and work directory per test, the real
//! `rbuild` binary, a busybox base image made from Debian's busybox-static,
//! a Docker tag, a registry and, where a test needs one, a Docker daemon per
//! test. Prerequisite checks, `require!`
//! and the busybox root filesystem come from `rbuild-test-support`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use rbuild_test_support::prereq::{
    arm64_emulation, base, busybox_static, default_network, docker, reachable, registry, root, tool, tools,
};
pub use rbuild_test_support::{Need, busybox_rootfs, require};

pub const RBUILD: &str = env!("CARGO_BIN_EXE_rbuild");

/// A test's private store and scratch directory.
pub struct Env {
    pub root: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

/// The result of one rbuild run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with the whole output unless the command succeeded.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "rbuild failed\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    pub fn failed(self) -> Run {
        assert_ne!(
            self.code, 0,
            "rbuild unexpectedly succeeded\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Lines of stderr (the plain progress) that mention CACHED.
    pub fn cached_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.contains("CACHED")).collect()
    }

    /// Lines announcing a step that ran (`#N [stage i/n] …`).
    pub fn run_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| {
                l.starts_with('#') && l.contains(" [") && !l.contains("CACHED") && !l.contains("ERROR")
            })
            .filter(|l| l.split_whitespace().nth(1).is_some_and(|w| w.starts_with('[')))
            .collect()
    }
}

impl Env {
    pub fn new() -> Env {
        Env {
            root: tempfile::tempdir().expect("temp store"),
            work: tempfile::tempdir().expect("temp work dir"),
        }
    }

    /// A fresh store with `busybox:local` imported.
    pub fn with_busybox() -> Env {
        let env = Env::new();
        env.rbuild(&["import", busybox_rootfs().to_str().unwrap(), "busybox:local"]).ok();
        env
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    /// Runs rbuild with this env's store, in the work directory.
    pub fn rbuild(&self, args: &[&str]) -> Run {
        self.rbuild_stdin(args, None)
    }

    pub fn rbuild_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        self.rbuild_with(args, stdin, &[])
    }

    /// Runs rbuild with extra environment variables.
    pub fn rbuild_with(&self, args: &[&str], stdin: Option<&[u8]>, vars: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(RBUILD);
        cmd.arg("--root").arg(self.root.path()).args(args).current_dir(self.work.path());
        cmd.env_remove("SOURCE_DATE_EPOCH");
        cmd.envs(vars.iter().copied());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start rbuild");
        if let Some(bytes) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes).unwrap();
        }
        Run::from(child.wait_with_output().expect("wait for rbuild"))
    }

    /// Writes a context directory with the given files.
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.path(name);
        for (p, content) in files {
            let path = dir.join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes a context directory holding only this Dockerfile.
    pub fn dockerfile(&self, name: &str, dockerfile: &str) -> PathBuf {
        self.context(name, &[("Dockerfile", dockerfile)])
    }

    /// `rbuild inspect -f '{{json WHAT}}' IMAGE`, parsed (`WHAT` such as
    /// `.Config.Env`, or `.` for the whole image).
    pub fn inspect_json(&self, image: &str, what: &str) -> serde_json::Value {
        let run = self.rbuild(&["inspect", "-f", &format!("{{{{json {what}}}}}"), image]).ok();
        serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
    }

    /// The snapshot directory of a stored layer (`sha256:…` diffID).
    pub fn layer_fs(&self, diff_id: &str) -> PathBuf {
        let hex = diff_id.trim_start_matches("sha256:");
        self.root.path().join("layers").join(&hex[..16]).join("fs")
    }

    /// Everything in the store except scratch space, with sizes: for
    /// checking that a failed command left it exactly as it was.
    pub fn store_snapshot(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for e in walkdir(self.root.path()) {
            let rel = e.strip_prefix(self.root.path()).unwrap().to_string_lossy().into_owned();
            // Scratch space, private state, locks and the empty skeleton of a
            // new store are not content.
            let skeleton =
                matches!(rel.as_str(), "VERSION" | "blobs" | "blobs/sha256" | "cache" | "images" | "layers");
            if skeleton
                || rel.starts_with("tmp")
                || rel.starts_with("state")
                || rel.ends_with(".lock")
                || rel.contains("/fs/")
            {
                continue;
            }
            let len = fs::symlink_metadata(&e).map(|m| if m.is_file() { m.len() } else { 0 }).unwrap_or(0);
            out.insert(rel, len);
        }
        out
    }
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// Builds context directory `ctx` (under the work dir) with `-o type=local`
/// into `<ctx>-out` and the extra build arguments; panics if the build
/// fails. Returns the run and the output directory.
pub fn build_local(env: &Env, ctx: &str, extra: &[&str]) -> (Run, PathBuf) {
    let out = env.path(&format!("{ctx}-out"));
    let _ = fs::remove_dir_all(&out);
    let dest = format!("type=local,dest={}", out.display());
    let mut args = vec!["build", "--progress", "plain", "-o", &dest];
    args.extend_from_slice(extra);
    args.push(ctx);
    (env.rbuild(&args).ok(), out)
}

/// Asserts that each `(path, content)` below `root` is a file with that content.
pub fn assert_contents(root: &Path, expected: &[(&str, &str)]) {
    for (path, want) in expected {
        let got = fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("/{path}: {e}"));
        assert_eq!(&got, want, "content of /{path}");
    }
}

/// Every path below `dir`, relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = sh(&format!("cd {} && find . -mindepth 1 | sort", dir.display()))
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect();
    out.sort();
    out
}

/// Runs a command and returns its stdout, panicking with its output on failure.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A docker tag unique to this test process, removed from Docker on drop.
pub struct DockerTag(pub String);

impl DockerTag {
    pub fn new(name: &str) -> DockerTag {
        DockerTag(format!("rbuild-it-{name}:{}", std::process::id()))
    }
}

impl Drop for DockerTag {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// A Distribution registry (Debian's `docker-registry`) on 127.0.0.1 at a
/// free port, for one test; stopped and its storage removed on drop.
pub struct TestRegistry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    /// A registry that lets anyone pull and push.
    pub fn start() -> TestRegistry {
        Self::start_inner(None)
    }

    /// A registry that asks for HTTP basic auth (an htpasswd file with one user).
    pub fn start_with_user(user: &str, password: &str) -> TestRegistry {
        Self::start_inner(Some((user, password)))
    }

    fn start_inner(user: Option<(&str, &str)>) -> TestRegistry {
        let dir = tempfile::tempdir().expect("registry dir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = user {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("run htpasswd");
            assert!(out.status.success(), "htpasswd: {}", String::from_utf8_lossy(&out.stderr));
            fs::write(&htpasswd, &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: rbuild-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = TestRegistry { addr, child, _dir: dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(&registry.addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "docker-registry did not start on {}",
                registry.addr
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        registry
    }

    /// `127.0.0.1:PORT/path`
    pub fn at(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Docker daemon of one test's own, for docker commands that act on every
/// image of a daemon (`docker image prune -a`) and so must not run on the
/// shared one: `dockerd` with its own data root, exec root, socket and
/// containerd namespace, started in network and mount namespaces of its
/// own, so nothing it does to interfaces, iptables or mounts reaches the
/// host (a dockerd without a bridge deletes the host's `docker0`).
/// Stopped with SIGTERM and its directory removed on drop.
pub struct TestDockerd {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl TestDockerd {
    pub fn start() -> TestDockerd {
        // Short: the containerd socket under it must fit a unix socket path.
        let dir = tempfile::Builder::new().prefix("rbd").tempdir_in("/tmp").expect("dockerd dir");
        let path = |name: &str| dir.path().join(name);
        fs::write(path("daemon.json"), "{}").unwrap();
        let namespace = format!("rbuild-it-{}", dir.path().file_name().unwrap().to_string_lossy());
        let log = fs::File::create(path("log")).unwrap();
        let child = Command::new("unshare")
            .args(["--net", "--mount", "--propagation", "private", "dockerd"])
            .arg("--config-file")
            .arg(path("daemon.json"))
            .arg("--data-root")
            .arg(path("data"))
            .arg("--exec-root")
            .arg(path("exec"))
            .arg("--pidfile")
            .arg(path("pid"))
            .arg("--host")
            .arg(format!("unix://{}", path("sock").display()))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"])
            .args(["--containerd-namespace", &namespace])
            .args(["--containerd-plugins-namespace", &format!("{namespace}-plugins")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let daemon = TestDockerd { dir, child };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while daemon.docker(&["info", "--format", "{{.ServerVersion}}"], None).code != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "dockerd did not start:\n{}",
                fs::read_to_string(daemon.dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        daemon
    }

    /// Runs `docker` against this daemon, with `stdin` piped in (or none).
    pub fn docker(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut cmd = Command::new("docker");
        cmd.arg("--host").arg(format!("unix://{}", self.dir.path().join("sock").display())).args(args);
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start docker");
        if let Some(bytes) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes).unwrap();
        }
        Run::from(child.wait_with_output().expect("wait for docker"))
    }
}

impl Drop for TestDockerd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Fields of a container's config that Docker's 20.10 client prints in an
/// image's `{{json .Config}}` and current clients do not: they describe the
/// container the classic builder ran (and `Image`, the image it ran on),
/// not the image.
const CONTAINER_ONLY_CONFIG: [&str; 9] = [
    "Hostname",
    "Domainname",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Image",
];

/// What Docker's `{{json …}}` output means, whichever client printed it:
/// the parsed JSON with every field that holds Go's zero value (null, false,
/// 0, "", [], {}) left out, as `omitempty` leaves it out, so a client that
/// prints every empty field and one that prints none read the same. With
/// `config`, the container-only fields of an image's `.Config` are left out
/// too. Object key order never matters.
pub fn docker_json_meaning(text: &str, config: bool) -> serde_json::Value {
    use serde_json::Value;
    fn prune(value: Value) -> Option<Value> {
        match value {
            Value::Null | Value::Bool(false) => None,
            Value::Number(n) if n.as_f64() == Some(0.0) => None,
            Value::String(s) if s.is_empty() => None,
            Value::Array(items) if items.is_empty() => None,
            // Positions in an array matter: an element is kept, only pruned inside.
            Value::Array(items) => {
                Some(Value::Array(items.into_iter().map(|v| prune(v).unwrap_or(Value::Null)).collect()))
            }
            Value::Object(fields) => {
                let fields: serde_json::Map<String, Value> =
                    fields.into_iter().filter_map(|(k, v)| prune(v).map(|v| (k, v))).collect();
                (!fields.is_empty()).then_some(Value::Object(fields))
            }
            other => Some(other),
        }
    }
    let mut value: Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    if let (true, Value::Object(fields)) = (config, &mut value) {
        fields.retain(|k, _| !CONTAINER_ONLY_CONFIG.contains(&k.as_str()));
    }
    prune(value).unwrap_or(Value::Null)
}

/// Asserts that rbuild's output for an inspect `--format` means what
/// Docker's does: `{{json …}}` output compared by [`docker_json_meaning`],
/// any other format as text.
pub fn assert_same_as_docker(format: &str, ours: &str, theirs: &str) {
    if format.starts_with("{{json ") {
        let config = format == "{{json .Config}}";
        assert_eq!(
            docker_json_meaning(ours, config),
            docker_json_meaning(theirs, config),
            "inspect --format '{format}' means something else\n  ours: {ours}\ntheirs: {theirs}"
        );
    } else {
        assert_eq!(ours, theirs, "inspect --format '{format}'");
    }
}
