//! `ADD <git repository>` against real git servers on loopback: `git
//! daemon` for `git://` URLs and `git http-backend` (smart HTTP, behind a
//! small CGI server) for `http://…/repo.git`. Branches, annotated tags,
//! commit ids, subdirectories, `--keep-git-dir`, `--chown`, `--checksum`,
//! the cache keyed by the resolved commit (a moved branch runs again, an
//! unchanged one hits), and errors that name the Dockerfile line.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rbuild_test_support::prereq::file;

use crate::harness::*;

/// A bare repository `repo.git` under `root`, with a work tree to commit from.
struct Repo {
    root: PathBuf,
    work: PathBuf,
}

impl Repo {
    fn new(env: &Env) -> Repo {
        Repo::with_object_format(env, "sha1")
    }

    /// A repository whose object ids are `format` (`sha1` or `sha256`).
    fn with_object_format(env: &Env, format: &str) -> Repo {
        let root = env.path("srv");
        let work = env.path("repo-work");
        fs::create_dir_all(&root).unwrap();
        sh(&format!("git init -q --bare -b main --object-format={format} {}/repo.git", root.display()));
        sh(&format!(
            "git init -q -b main --object-format={format} {w} && git -C {w} remote add origin {}/repo.git",
            root.display(),
            w = work.display()
        ));
        Repo { root, work }
    }

    /// Writes `files`, commits, pushes main (and `tag`, annotated); returns
    /// the commit id.
    fn commit(&self, files: &[(&str, &str)], tag: Option<&str>) -> String {
        for (p, content) in files {
            let path = self.work.join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        let w = self.work.display();
        sh(&format!("git -C {w} add -A && git -C {w} -c user.name=t -c user.email=t@t commit -qm c"));
        if let Some(t) = tag {
            sh(&format!("git -C {w} -c user.name=t -c user.email=t@t tag -a {t} -m {t}"));
        }
        sh(&format!("git -C {w} push -q --tags origin main"));
        sh(&format!("git -C {w} rev-parse HEAD")).trim().to_string()
    }
}

/// A server process on a loopback port, stopped on drop.
struct Server {
    port: u16,
    child: Child,
}

impl Server {
    fn start(mut cmd: Command, port: u16) -> Server {
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start the git server");
        for _ in 0..500 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Server { port, child }
    }

    /// `git daemon` serving every repository under `repo.root`.
    fn git_daemon(repo: &Repo) -> Server {
        let port = free_port();
        // git-daemon itself: `git daemon` would run it as a child that
        // outlives the `git` process this fixture stops.
        let exec_path = sh("git --exec-path");
        let mut cmd = Command::new(Path::new(exec_path.trim()).join("git-daemon"));
        cmd.args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", repo.root.display()))
            .arg(&repo.root);
        Server::start(cmd, port)
    }

    /// `git http-backend` behind a CGI server of a few lines of Python.
    fn smart_http(repo: &Repo, backend: &Path) -> Server {
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(CGI_SERVER).arg(port.to_string()).arg(&repo.root).arg(backend);
        Server::start(cmd, port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs git-http-backend for each request as a CGI program (the protocol
/// header passed through, so git's protocol v2 is spoken).
const CGI_SERVER: &str = r#"
import http.server, subprocess, sys, os
port, root, backend = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def cgi(self):
        path, _, query = self.path.partition('?')
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL='1', PATH_INFO=path,
                   QUERY_STRING=query, REQUEST_METHOD=self.command, REMOTE_ADDR='127.0.0.1',
                   CONTENT_TYPE=self.headers.get('Content-Type') or '', CONTENT_LENGTH=str(len(body)),
                   GIT_PROTOCOL=self.headers.get('Git-Protocol') or '')
        out = subprocess.run([backend], input=body, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b'\r\n\r\n')
        status = 200
        headers = []
        for line in head.decode().split('\r\n'):
            k, _, v = line.partition(':')
            if k.lower() == 'status': status = int(v.split()[0])
            elif k: headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers: self.send_header(k, v)
        self.send_header('Content-Length', str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)
    do_GET = do_POST = cgi
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(('127.0.0.1', port), H).serve_forever()
"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn git_tools() -> Need {
    tools(&["git"])
}

#[test]
fn add_checks_out_branches_tags_commits_and_subdirectories() {
    require!(root(), busybox_static(), git_tools());
    let env = Env::with_busybox();
    let repo = Repo::new(&env);
    let first =
        repo.commit(&[("README", "one\n"), ("docs/api.md", "api\n"), ("tool.sh", "#!/bin/sh\n")], Some("v1"));
    sh(&format!("chmod 755 {}/tool.sh && git -C {0} add -A", repo.work.display()));
    repo.commit(&[("README", "two\n")], None);
    let server = Server::git_daemon(&repo);
    let url = format!("git://127.0.0.1:{}/repo.git", server.port);
    env.dockerfile(
        "ctx",
        &format!(
            "FROM busybox:local\n\
ADD {url} /head\n\
ADD {url}#v1 /tag\n\
ADD {url}#{first} /sha\n\
ADD --chown=1000:100 {url}#main:docs /docs\n\
ADD --keep-git-dir=true {url}#v1 /kept\n\
ADD --link {url}#v1 /linked\n\
RUN stat -c '%u:%g' /docs/api.md /head/README > /owners; test -x /head/tool.sh && echo x > /exec\n"
        ),
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(
        &out,
        &[
            ("head/README", "two\n"),
            ("tag/README", "one\n"),
            ("sha/README", "one\n"),
            ("docs/api.md", "api\n"),
            ("kept/README", "one\n"),
            ("linked/README", "one\n"),
            ("owners", "1000:100\n0:0\n"),
            ("exec", "x\n"),
        ],
    );
    assert!(!out.join("docs/docs").exists() && !out.join("docs/README").exists(), "only the subdirectory");
    assert!(
        !out.join("head/.git").exists() && !out.join("tag/.git").exists(),
        "no .git without --keep-git-dir"
    );
    let kept = sh(&format!("git -C {} rev-parse HEAD", out.join("kept").display()));
    assert_eq!(kept.trim(), first, "--keep-git-dir keeps a working .git at the commit");

    // With SOURCE_DATE_EPOCH the checkout's times are clamped to it, as
    // files from the context are.
    env.dockerfile(
        "epoch",
        &format!("FROM busybox:local\nADD {url}#v1 /src\nRUN stat -c %Y /src/README > /mtime\n"),
    );
    let out = env.path("epoch-out");
    let dest = format!("type=local,dest={}", out.display());
    let epoch = [("SOURCE_DATE_EPOCH", "1000000000")];
    env.rbuild_with(&["build", "--progress", "plain", "-o", &dest, "epoch"], None, &epoch).ok();
    assert_contents(&out, &[("mtime", "1000000000\n")]);
}

#[test]
fn sha256_repositories_resolve_and_check_out() {
    require!(root(), busybox_static(), git_tools());
    let env = Env::with_busybox();
    let repo = Repo::with_object_format(&env, "sha256");
    let first = repo.commit(&[("f", "one\n")], Some("v1"));
    repo.commit(&[("f", "two\n")], None);
    assert_eq!(first.len(), 64);
    let server = Server::git_daemon(&repo);
    let url = format!("git://127.0.0.1:{}/repo.git", server.port);
    env.dockerfile(
        "ctx",
        &format!("FROM busybox:local\nADD {url}#{first} /by-id\nADD --checksum={first} {url}#v1 /by-tag\nADD {url} /head\n"),
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(&out, &[("by-id/f", "one\n"), ("by-tag/f", "one\n"), ("head/f", "two\n")]);
}

#[test]
fn steps_are_cached_by_the_commit_a_branch_names() {
    require!(root(), busybox_static(), git_tools());
    let env = Env::with_busybox();
    let repo = Repo::new(&env);
    let first = repo.commit(&[("VERSION", "1\n")], None);
    let server = Server::git_daemon(&repo);
    let url = format!("git://127.0.0.1:{}/repo.git", server.port);
    env.dockerfile(
        "ctx",
        &format!("FROM busybox:local\nADD {url}#main /src\nRUN cat /src/VERSION > /seen\n"),
    );
    let (built, out) = build_local(&env, "ctx", &[]);
    assert_eq!(built.run_lines().len(), 2, "{}", built.stderr);
    assert_contents(&out, &[("seen", "1\n")]);
    let (again, _) = build_local(&env, "ctx", &[]);
    assert!(again.run_lines().is_empty(), "an unchanged branch hits the cache:\n{}", again.stderr);
    assert_eq!(again.cached_lines().iter().filter(|l| l.contains("ADD")).count(), 1, "{}", again.stderr);

    let second = repo.commit(&[("VERSION", "2\n")], None);
    let (moved, out) = build_local(&env, "ctx", &[]);
    assert_eq!(moved.run_lines().len(), 2, "a moved branch runs the ADD and what follows:\n{}", moved.stderr);
    assert_contents(&out, &[("seen", "2\n")]);

    // --checksum pins the commit: the current one passes (a prefix is
    // enough), the old one is refused at the ADD's line.
    env.dockerfile(
        "pinned",
        &format!("FROM busybox:local\nADD --checksum={} {url}#main /src\n", &second[..12]),
    );
    let (pinned, _) = build_local(&env, "pinned", &[]);
    assert!(
        pinned.run_lines().is_empty(),
        "a --checksum of the same commit hits the cache:\n{}",
        pinned.stderr
    );
    env.dockerfile("stale", &format!("FROM busybox:local\nADD --checksum={first} {url}#main /src\n"));
    let run = env.rbuild(&["build", "--progress", "plain", "stale"]).failed();
    assert!(
        run.stderr.contains(&format!(
            "expected checksum to match {first}, but the ref resolved to commit {second}"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Dockerfile:2"), "{}", run.stderr);
}

#[test]
fn add_fetches_over_smart_and_dumb_http_with_fragment_or_query() {
    let backend = Path::new("/usr/lib/git-core/git-http-backend");
    require!(root(), busybox_static(), git_tools(), tool("python3"), file(backend));
    let env = Env::with_busybox();
    let repo = Repo::new(&env);
    let v2 = repo.commit(&[("docs/guide.md", "guide\n"), ("README", "top\n")], Some("v2"));
    repo.commit(&[("README", "newer\n")], None);
    let smart = Server::smart_http(&repo, backend);
    let url = format!("http://127.0.0.1:{}/repo.git", smart.port);
    // Plain files, as BuildKit's own tests serve repositories: git's dumb
    // HTTP protocol, which has no shallow fetch.
    sh(&format!("git -C {}/repo.git update-server-info", repo.root.display()));
    let port = free_port();
    let mut files = Command::new("python3");
    files
        .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
        .arg(&repo.root)
        .arg(port.to_string());
    let dumb = Server::start(files, port);
    let dumb_url = format!("http://127.0.0.1:{}/repo.git", dumb.port);
    env.dockerfile(
        "ctx",
        &format!(
            "FROM busybox:local\n\
ADD {url}#v2:docs /guide\n\
ADD {url} /all/\n\
ADD {url}?tag=v2&subdir=docs /query\n\
ADD {dumb_url}?commit={v2} /dumb\n\
ADD --keep-git-dir {dumb_url}#main /dumb-kept\n"
        ),
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(
        &out,
        &[
            ("guide/guide.md", "guide\n"),
            ("all/README", "newer\n"),
            ("query/guide.md", "guide\n"),
            ("dumb/README", "top\n"),
            ("dumb-kept/README", "newer\n"),
        ],
    );
    let status = sh(&format!("git -C {} status --porcelain", out.join("dumb-kept").display()));
    assert_eq!(status, "", "a kept .git matches its checkout (BuildKit checks `git status -s`)");
}

#[test]
fn unreachable_repositories_and_unknown_refs_are_errors_at_their_line() {
    require!(root(), busybox_static(), git_tools());
    let env = Env::with_busybox();
    let repo = Repo::new(&env);
    repo.commit(&[("README", "x\n")], None);
    let server = Server::git_daemon(&repo);
    let closed = free_port();
    let cases = [
        (format!("git://127.0.0.1:{closed}/repo.git"), "ADD git://127.0.0.1"),
        (
            format!("git://127.0.0.1:{}/repo.git#no-such-branch", server.port),
            "repository does not contain ref no-such-branch",
        ),
        (format!("git://127.0.0.1:{}/repo.git#main:no/dir", server.port), "has no directory no/dir"),
    ];
    for (i, (src, expected)) in cases.iter().enumerate() {
        let ctx = format!("bad{i}");
        env.dockerfile(&ctx, &format!("FROM busybox:local\nRUN true\nADD {src} /src\n"));
        let run = env.rbuild(&["build", "--progress", "plain", &ctx]).failed();
        assert!(
            run.stderr.contains(expected) && run.stderr.contains("Dockerfile:3"),
            "{src}:\n{}",
            run.stderr
        );
    }
}

#[test]
fn ssh_remotes_authenticate_with_the_builds_ssh_agent() {
    let sshd = Path::new("/usr/sbin/sshd");
    require!(
        root(),
        busybox_static(),
        git_tools(),
        tools(&["ssh", "ssh-keygen", "ssh-agent", "ssh-add"]),
        file(sshd)
    );
    let env = Env::with_busybox();
    let repo = Repo::new(&env);
    repo.commit(&[("secret.txt", "private\n")], None);
    // A server that accepts only a key made for this test, which the build
    // can hold only through its --ssh agent.
    let key = env.path("client_key");
    let host_key = env.path("host_key");
    for k in [&key, &host_key] {
        sh(&format!("ssh-keygen -q -t ed25519 -N '' -f {}", k.display()));
    }
    let authorized = env.path("authorized_keys");
    fs::copy(key.with_extension("pub"), &authorized).unwrap();
    fs::create_dir_all("/run/sshd").unwrap();
    let port = free_port();
    let mut cmd = Command::new(sshd);
    cmd.args([
        "-D",
        "-e",
        "-f",
        "/dev/null",
        "-o",
        "ListenAddress=127.0.0.1",
        "-o",
        "UsePAM=no",
        "-o",
        "StrictModes=no",
    ])
    .args([
        "-o",
        "PidFile=none",
        "-o",
        "PermitRootLogin=prohibit-password",
        "-o",
        "PasswordAuthentication=no",
    ])
    .arg("-o")
    .arg(format!("Port={port}"))
    .arg("-o")
    .arg(format!("HostKey={}", host_key.display()))
    .arg("-o")
    .arg(format!("AuthorizedKeysFile={}", authorized.display()));
    let _server = Server::start(cmd, port);
    let known_hosts = env.path("known_hosts");
    let host_pub = fs::read_to_string(host_key.with_extension("pub")).unwrap();
    fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_pub}")).unwrap();
    // The machine's own ssh configuration and keys stay out of it.
    let ssh_command = format!(
        "ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile={} -p {port}",
        known_hosts.display()
    );
    let url = format!("ssh://root@127.0.0.1:{port}{}/repo.git", repo.root.display());
    // ssh's short form too (`git@github.com:org/repo.git`), the port coming
    // from the ssh command here.
    let short = format!("root@127.0.0.1:{}/repo.git", repo.root.display());
    env.dockerfile("ctx", &format!("FROM busybox:local\nADD {url}#main /src\nADD {short}#main /short\n"));
    let out = env.path("ctx-out");
    let dest = format!("type=local,dest={}", out.display());
    let with_key = format!("default={}", key.display());
    let vars = [("GIT_SSH_COMMAND", ssh_command.as_str()), ("HOME", "/nonexistent")];
    env.rbuild_with(&["build", "--progress", "plain", "--ssh", &with_key, "-o", &dest, "ctx"], None, &vars)
        .ok();
    assert_contents(&out, &[("src/secret.txt", "private\n"), ("short/secret.txt", "private\n")]);

    // Without --ssh the key is out of reach: an error at the ADD's line.
    env.dockerfile("nokey", &format!("FROM busybox:local\nRUN true\nADD {url}#main /src\n"));
    let run = env.rbuild_with(&["build", "--progress", "plain", "nokey"], None, &vars).failed();
    assert!(
        run.stderr.contains("Dockerfile:3") && run.stderr.contains("Permission denied"),
        "{}",
        run.stderr
    );
}
