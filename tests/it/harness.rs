//! The test harness: a fresh store and work directory per test, the real
//! `rbuild` binary, a busybox base image made from Debian's busybox-static,
//! and checks for the real tools (docker, skopeo, umoci) with a printed
//! reason when one is missing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

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

/// A root filesystem tarball with Debian's static busybox, users root,
/// nobody and app (uid 1000), built once per test run.
pub fn busybox_rootfs() -> &'static Path {
    static TARBALL: OnceLock<PathBuf> = OnceLock::new();
    TARBALL.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rbuild-it-busybox-{}", std::process::id()));
        let tarball = dir.with_extension("tar");
        let _ = fs::remove_dir_all(&dir);
        for d in ["bin", "etc", "tmp", "root", "usr/bin", "sbin", "home/app"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("Debian's busybox-static at /bin/busybox");
        let list = Command::new(dir.join("bin/busybox")).arg("--list").output().expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let link = dir.join("bin").join(applet);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", link).unwrap();
            }
        }
        fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\napp:x:1000:\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        let status = Command::new("tar")
            .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C"])
            .arg(&dir)
            .args(["-cf"])
            .arg(&tarball)
            .arg(".")
            .status()
            .expect("tar");
        assert!(status.success());
        tarball
    })
}

/// True when the busybox base can be made; prints why not otherwise.
pub fn have_busybox() -> bool {
    let ok = Command::new("file")
        .arg("/bin/busybox")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("statically linked"))
        .unwrap_or(false)
        || Path::new("/bin/busybox").exists();
    if !ok {
        eprintln!("skipping: /bin/busybox (Debian's busybox-static) is not installed");
    }
    ok
}

/// True when we are root (namespaces and overlay need it); prints why not otherwise.
pub fn have_root() -> bool {
    let root = nix_is_root();
    if !root {
        eprintln!("skipping: this test needs root for namespaces and overlayfs");
    }
    root
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// True when a Docker daemon answers; prints why not otherwise.
pub fn have_docker() -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipping: no Docker daemon (run .ci/run, which starts dockerd)");
    }
    ok
}

pub fn have_tool(name: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipping: {name} is not installed");
    }
    ok
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

macro_rules! require {
    ($($cond:expr),+) => {
        $(if !$cond { return; })+
    };
}
pub(crate) use require;

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

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// True when Debian's registry and htpasswd are installed; prints why not otherwise.
pub fn have_registry() -> bool {
    have_tool("docker-registry") && have_tool("htpasswd")
}
