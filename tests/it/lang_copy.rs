//! COPY and ADD end to end: Docker's wildcard and destination rules,
//! `--chown`/`--chmod`, `--exclude`, `--parents`, `--link` caching, ADD of
//! URLs from a local HTTP server and of compressed archives.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Child, Command, Stdio};

use crate::harness::*;

#[test]
fn wildcards_directories_and_destinations_follow_docker() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nWORKDIR /w\n\
COPY *.txt one/\nCOPY src/*/main.go gos/\nCOPY src /tree\nCOPY a.txt renamed.txt\nCOPY [ab].txt {x}.md /class/\nCOPY --from=busybox:local /etc/pass* /fromimage/\n",
            ),
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("{x}.md", "literal braces"),
            ("src/p1/main.go", "p1"),
            ("src/p2/main.go", "p2"),
            ("src/p2/util.go", "u"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(files_under(&out.join("w/one")), vec!["a.txt", "b.txt"]);
    assert_eq!(files_under(&out.join("w/gos")), vec!["main.go"], "same-named matches overwrite each other");
    assert_eq!(
        files_under(&out.join("tree")),
        vec!["p1", "p1/main.go", "p2", "p2/main.go", "p2/util.go"],
        "a directory's contents are copied"
    );
    assert_eq!(fs::read_to_string(out.join("w/renamed.txt")).unwrap(), "a");
    assert_eq!(files_under(&out.join("class")), vec!["a.txt", "b.txt", "{x}.md"]);
    assert!(out.join("fromimage/passwd").is_file(), "COPY --from an image that is no stage");
    env.context(
        "bad",
        &[("Dockerfile", "FROM busybox:local\nCOPY a.txt b.txt /nodir\n"), ("a.txt", ""), ("b.txt", "")],
    );
    let run = env.rbuild(&["build", "bad"]).failed();
    assert!(
        run.stderr.contains("must be a directory and end with a /") && run.stderr.contains("Dockerfile:2:"),
        "{}",
        run.stderr
    );
}

#[test]
fn chown_names_chmod_exclude_and_parents() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\n\
COPY --chown=app:app app /owned/\nCOPY --chown=1234:5678 app/run.sh /numeric\n\
COPY --chmod=640 app/run.sh /octal\nCOPY --chmod=u+x,g=u,o= app/run.sh /symbolic\n\
COPY --exclude=*.log --exclude=cache/ app /excluded/\n\
COPY --parents app/./lib/*.so web/index.html /parents/\n",
            ),
            ("app/run.sh", "#!/bin/sh\n"),
            ("app/debug.log", "log"),
            ("app/cache/x", "c"),
            ("app/lib/a.so", "so"),
            ("app/lib/b.txt", "txt"),
            ("web/index.html", "<html>"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    let meta = |p: &str| fs::symlink_metadata(out.join(p)).unwrap();
    assert_eq!(
        (meta("owned/run.sh").uid(), meta("owned/run.sh").gid()),
        (1000, 1000),
        "names resolve in the image"
    );
    assert_eq!((meta("numeric").uid(), meta("numeric").gid()), (1234, 5678));
    let orig = fs::metadata(env.path("ctx/app/run.sh")).unwrap().permissions().mode() & 0o777;
    assert_eq!(meta("octal").permissions().mode() & 0o7777, 0o640);
    let u = (orig >> 6) | 1;
    assert_eq!(meta("symbolic").permissions().mode() & 0o777, (u << 6) | (u << 3));
    assert_eq!(files_under(&out.join("excluded")), vec!["lib", "lib/a.so", "lib/b.txt", "run.sh"]);
    assert_eq!(files_under(&out.join("parents")), vec!["lib", "lib/a.so", "web", "web/index.html"]);
}

#[test]
fn link_copies_are_cached_independently_of_their_parent() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let df = |n: u32| {
        format!("FROM busybox:local\nRUN echo {n} > /n\nCOPY --link big/ /big/\nRUN cat /n /big/f > /both\n")
    };
    env.context("ctx", &[("Dockerfile", &df(1)), ("big/f", "payload\n")]);
    build_local(&env, "ctx", &[]);
    fs::write(env.path("ctx/Dockerfile"), df(2)).unwrap();
    let (run, out) = build_local(&env, "ctx", &[]);
    assert!(
        run.cached_lines().iter().any(|l| l.contains("COPY --link big/")),
        "the linked copy does not depend on the changed RUN above it:\n{}",
        run.stderr
    );
    assert!(
        run.run_lines().iter().any(|l| l.contains("RUN cat /n")),
        "steps after it see the new parent:\n{}",
        run.stderr
    );
    assert_eq!(fs::read_to_string(out.join("both")).unwrap(), "2\npayload\n");
}

/// A `python3 -m http.server` on 127.0.0.1, stopped on drop.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start(dir: &std::path::Path) -> HttpServer {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 http.server");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        // "Serving HTTP on 127.0.0.1 port 41235 (http://127.0.0.1:41235/) ..."
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok());
        HttpServer { child, port: port.unwrap_or_else(|| panic!("no port in {line:?}")) }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn add_downloads_urls_with_checksums_and_a_download_cache() {
    require!(root(), busybox_static(), tool("python3"));
    let env = Env::with_busybox();
    let www = env.path("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("tool.sh"), "echo downloaded\n").unwrap();
    let server = HttpServer::start(&www);
    let sum = sh(&format!("sha256sum {} | cut -d' ' -f1", www.join("tool.sh").display())).trim().to_string();
    let url = format!("http://127.0.0.1:{}/tool.sh", server.port);
    env.dockerfile(
        "ctx",
        &format!("FROM busybox:local\nADD --checksum=sha256:{sum} {url} /opt/\nADD {url} /plain/renamed.sh\nADD --chmod=755 {url} /exec.sh\n"),
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(fs::read_to_string(out.join("opt/tool.sh")).unwrap(), "echo downloaded\n");
    assert_eq!(
        fs::metadata(out.join("plain/renamed.sh")).unwrap().permissions().mode() & 0o777,
        0o600,
        "downloads are 0600 as in Docker"
    );
    assert_eq!(fs::metadata(out.join("exec.sh")).unwrap().permissions().mode() & 0o777, 0o755);
    let (again, _) = build_local(&env, "ctx", &[]);
    assert!(again.run_lines().is_empty(), "unchanged downloads are cached:\n{}", again.stderr);
    fs::write(www.join("tool.sh"), "echo changed!\n").unwrap();
    // The server's Last-Modified has whole seconds: move the change clearly
    // past the first download, or an If-Modified-Since in the same second
    // would rightly get 304.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    fs::File::options().write(true).open(www.join("tool.sh")).unwrap().set_modified(later).unwrap();
    let (changed, out) = build_local(&env, "ctx", &[]);
    assert_eq!(fs::read_to_string(out.join("plain/renamed.sh")).unwrap(), "echo changed!\n");
    assert!(
        changed.cached_lines().iter().any(|l| l.contains("--checksum")),
        "the checksummed step is known without a download:\n{}",
        changed.stderr
    );
    // Now the checksum no longer matches what the server has: a fresh store must refuse it.
    let fresh = Env::with_busybox();
    fresh.dockerfile("ctx", &format!("FROM busybox:local\nADD --checksum=sha256:{sum} {url} /opt/\n"));
    let run = fresh.rbuild(&["build", "ctx"]).failed();
    assert!(
        run.stderr.contains("checksum mismatch") && run.stderr.contains("Dockerfile:2"),
        "{}",
        run.stderr
    );
    env.dockerfile("missing", &format!("FROM busybox:local\nADD {url}.nope /x\n"));
    let run = env.rbuild(&["build", "missing"]).failed();
    assert!(run.stderr.contains("404"), "{}", run.stderr);
}

#[test]
fn add_extracts_bzip2_and_xz_archives_recognised_by_content() {
    require!(root(), busybox_static(), tool("bzip2"), tool("xz"));
    let env = Env::with_busybox();
    let ctx = env.dockerfile(
        "ctx",
        "FROM busybox:local\nADD b.tar.bz2 /bz/\nADD x.tar.xz /xz/\nADD disguised.bin /d/\nCOPY b.tar.bz2 /copied/\n",
    );
    sh(&format!(
        "cd {0} && mkdir -p t/pkg && echo in-archive > t/pkg/f && tar -C t -cjf b.tar.bz2 pkg && tar -C t -cJf x.tar.xz pkg && cp x.tar.xz disguised.bin && rm -r t",
        ctx.display()
    ));
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(fs::read_to_string(out.join("bz/pkg/f")).unwrap(), "in-archive\n");
    assert_eq!(fs::read_to_string(out.join("xz/pkg/f")).unwrap(), "in-archive\n");
    assert_eq!(
        fs::read_to_string(out.join("d/pkg/f")).unwrap(),
        "in-archive\n",
        "archives are recognised by content, not name"
    );
    assert!(out.join("copied/b.tar.bz2").is_file(), "COPY never extracts");
}
