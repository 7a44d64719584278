//! `rbuild build --ssh` with real OpenSSH agents and keys: `ssh-add -l`
//! inside a RUN lists the agent's keys (through `$SSH_AUTH_SOCK` at the
//! mount's target), key files are served by an agent rbuild starts, ids
//! select agents, the socket never reaches a layer nor the cache key, and
//! each misuse is a clear error.
//!
//! The busybox base has no `ssh-add`, so the step runs the host's own
//! (OpenSSH's client, from Debian) with its shared libraries through a
//! bind mount of the context: a real agent client inside the sandbox.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::harness::*;

/// An `ssh-agent` of the test's own, stopped on drop.
struct Agent {
    socket: PathBuf,
    child: Child,
}

impl Agent {
    fn start(env: &Env, name: &str) -> Agent {
        let socket = env.path(&format!("{name}.sock"));
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        // The socket file appears before the agent listens on it.
        for _ in 0..500 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Agent { socket, child }
    }

    fn add(&self, key: &Path) {
        sh(&format!("SSH_AUTH_SOCK={} ssh-add -q {}", self.socket.display(), key.display()));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new ed25519 key without a passphrase (or with `passphrase`) and its
/// SHA256 fingerprint as `ssh-add -l` prints it.
fn new_key(env: &Env, name: &str, passphrase: &str) -> (PathBuf, String) {
    let key = env.path(name);
    sh(&format!("ssh-keygen -q -t ed25519 -N '{passphrase}' -C {name} -f {}", key.display()));
    let listed = sh(&format!("ssh-keygen -l -f {}.pub", key.display()));
    let fingerprint = listed.split_whitespace().nth(1).expect("a fingerprint").to_string();
    (key, fingerprint)
}

/// A context whose `tools/ssh-add` runs the host's ssh-add with its own
/// libraries (mounted at /t), and this Dockerfile.
fn ssh_add_context(env: &Env, name: &str, dockerfile: &str) -> PathBuf {
    let dir = env.dockerfile(name, dockerfile);
    write_ssh_add_tools(&dir);
    dir
}

/// Writes `tools/` into context `dir`: the host's ssh-add, its libraries
/// and loader, and a `tools/ssh-add` that runs them from `/t/tools`.
pub(crate) fn write_ssh_add_tools(dir: &Path) {
    let tools = dir.join("tools");
    fs::create_dir_all(&tools).unwrap();
    let ldd = sh("ldd \"$(command -v ssh-add)\"");
    let mut loader = String::new();
    for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        let file = Path::new(lib).file_name().unwrap().to_string_lossy().into_owned();
        fs::copy(lib, tools.join(&file)).unwrap();
        if file.starts_with("ld-linux") {
            loader = file;
        }
    }
    assert!(!loader.is_empty(), "the dynamic loader of ssh-add: {ldd}");
    fs::copy(sh("command -v ssh-add").trim(), tools.join("ssh-add.bin")).unwrap();
    fs::write(
        tools.join("ssh-add"),
        format!("#!/bin/sh\nexec /t/tools/{loader} --library-path /t/tools /t/tools/ssh-add.bin \"$@\"\n"),
    )
    .unwrap();
    sh(&format!("chmod 755 {}", tools.join("ssh-add").display()));
}

fn build_with(env: &Env, ctx: &str, extra: &[&str], agent: Option<&Agent>) -> (Run, PathBuf) {
    let out = env.path(&format!("{ctx}-out"));
    let _ = fs::remove_dir_all(&out);
    let dest = format!("type=local,dest={}", out.display());
    let mut args = vec!["build", "--progress", "plain", "-o", &dest];
    args.extend_from_slice(extra);
    args.push(ctx);
    let sock = agent.map(|a| a.socket.to_string_lossy().into_owned()).unwrap_or_default();
    // A temporary directory of this test's own, where an agent the build
    // starts for key files lives (and must be gone from afterwards).
    let tmp = env.path("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let tmp = tmp.to_string_lossy().into_owned();
    (env.rbuild_with(&args, None, &[("SSH_AUTH_SOCK", &sock), ("TMPDIR", &tmp)]).ok(), out)
}

#[test]
fn the_default_agent_lists_its_keys_inside_run_and_stays_out_of_layers_and_keys() {
    require!(root(), busybox_static(), tools(&["ssh-agent", "ssh-add", "ssh-keygen", "ldd"]));
    let env = Env::with_busybox();
    let (key, fingerprint) = new_key(&env, "id_one", "");
    let agent = Agent::start(&env, "agent");
    agent.add(&key);
    ssh_add_context(
        &env,
        "ctx",
        "FROM busybox:local\n\
RUN --mount=type=ssh --mount=type=bind,target=/t /t/tools/ssh-add -l > /keys; echo \"$SSH_AUTH_SOCK\" > /sock\n",
    );
    let (first, out) = build_with(&env, "ctx", &["--ssh", "default"], Some(&agent));
    let keys = fs::read_to_string(out.join("keys")).unwrap();
    assert!(keys.contains(&fingerprint) && keys.contains("id_one"), "ssh-add -l in the RUN: {keys:?}");
    assert_eq!(fs::read_to_string(out.join("sock")).unwrap(), "/run/buildkit/ssh_agent.0\n");
    assert!(!out.join("run").exists(), "the socket and the directories made for it are not in the layer");
    assert_eq!(first.run_lines().len(), 1, "{}", first.stderr);

    // Another agent with another key: the step's key is the same (BuildKit
    // keeps agents out of it), so it is not run again.
    let (other_key, _) = new_key(&env, "id_two", "");
    let (again, _) = build_with(&env, "ctx", &["--ssh", &format!("default={}", other_key.display())], None);
    assert!(again.run_lines().is_empty(), "changing the agent hits the cache:\n{}", again.stderr);
}

#[test]
fn key_files_are_served_by_an_agent_of_the_build_and_ids_select_agents() {
    require!(root(), busybox_static(), tools(&["ssh-agent", "ssh-add", "ssh-keygen", "ldd"]));
    let env = Env::with_busybox();
    let (deploy, deploy_print) = new_key(&env, "deploy_key", "");
    let (extra, extra_print) = new_key(&env, "extra_key", "");
    let (mine, mine_print) = new_key(&env, "mine", "");
    let agent = Agent::start(&env, "agent");
    agent.add(&mine);
    ssh_add_context(
        &env,
        "ctx",
        "FROM busybox:local\n\
RUN --mount=type=bind,target=/t \\\n\
    --mount=type=ssh,id=deploy,target=/agents/deploy.sock,uid=1000,gid=100,mode=0640 \\\n\
    --mount=type=ssh \\\n\
    /t/tools/ssh-add -l > /deploy-keys; SSH_AUTH_SOCK=/run/buildkit/ssh_agent.1 /t/tools/ssh-add -l > /default-keys; \\\n\
    stat -c '%u:%g %a' /agents/deploy.sock > /owner; echo \"$SSH_AUTH_SOCK\" > /sock\n",
    );
    let ssh_deploy = format!("deploy={},{}", deploy.display(), extra.display());
    let (_, out) = build_with(&env, "ctx", &["--ssh", &ssh_deploy, "--ssh", "default"], Some(&agent));
    let tmp = env.path("tmp");
    let left: Vec<_> = fs::read_dir(&tmp).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "the build's agent directory is removed: {left:?}");
    let agents =
        sh(&format!("ps -eo args | grep -F 'ssh-agent -a {}' | grep -v grep || true", tmp.display()));
    assert!(agents.trim().is_empty(), "the agent the build started is stopped: {agents}");
    let deploy_keys = fs::read_to_string(out.join("deploy-keys")).unwrap();
    assert!(deploy_keys.contains(&deploy_print) && deploy_keys.contains(&extra_print), "{deploy_keys}");
    assert!(!deploy_keys.contains(&mine_print), "id=deploy is that agent only: {deploy_keys}");
    let default_keys = fs::read_to_string(out.join("default-keys")).unwrap();
    assert!(default_keys.contains(&mine_print) && !default_keys.contains(&deploy_print), "{default_keys}");
    assert_eq!(
        fs::read_to_string(out.join("owner")).unwrap(),
        "1000:100 640\n",
        "the mount's uid, gid, mode"
    );
    assert_eq!(
        fs::read_to_string(out.join("sock")).unwrap(),
        "/agents/deploy.sock\n",
        "SSH_AUTH_SOCK names the first ssh mount; the second is numbered ssh_agent.1"
    );
    assert!(!out.join("agents").exists() && !out.join("run").exists(), "no mount target in the layer");
}

#[test]
fn ssh_misuse_is_a_clear_error_and_optional_mounts_run_without_a_socket() {
    require!(root(), busybox_static(), tools(&["ssh-agent", "ssh-add", "ssh-keygen"]));
    let env = Env::with_busybox();
    env.dockerfile(
        "optional",
        "FROM busybox:local\nRUN --mount=type=ssh test ! -e \"$SSH_AUTH_SOCK\" && echo none > /seen\n",
    );
    let (_, out) = build_with(&env, "optional", &[], None);
    assert_eq!(
        fs::read_to_string(out.join("seen")).unwrap(),
        "none\n",
        "no agent given: no socket, as BuildKit"
    );

    env.dockerfile("required", "FROM busybox:local\nRUN --mount=type=ssh,id=gh,required=true true\n");
    let before = env.store_snapshot();
    let run = env.rbuild(&["build", "--progress", "plain", "required"]).failed();
    assert!(
        run.stderr.contains("needs SSH agent gh") && run.stderr.contains("Dockerfile:2"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--ssh gh"), "the hint names the flag: {}", run.stderr);

    let fails = |args: &[&str], sock: &str| {
        let mut all = vec!["build", "--progress", "plain"];
        all.extend_from_slice(args);
        all.push("required");
        env.rbuild_with(&all, None, &[("SSH_AUTH_SOCK", sock)]).failed().stderr
    };
    let e = fails(&["--ssh", "default"], "");
    assert!(e.contains("--ssh default") && e.contains("SSH_AUTH_SOCK is not set"), "{e}");
    let e = fails(&["--ssh", "=/some/key"], "");
    assert!(e.contains("invalid --ssh \"=/some/key\"") && e.contains("e.g. --ssh default"), "{e}");
    let e = fails(&["--ssh", "gh=/does/not/exist"], "");
    assert!(e.contains("--ssh gh=/does/not/exist: no such key file or socket"), "{e}");
    let (locked, _) = new_key(&env, "locked", "a passphrase");
    let e = fails(&["--ssh", &format!("gh={}", locked.display())], "");
    assert!(e.contains("protected by a passphrase"), "{e}");
    let not_a_key = env.path("not-a-key");
    fs::write(&not_a_key, "hello\n").unwrap();
    let e = fails(&["--ssh", &format!("gh={}", not_a_key.display())], "");
    assert!(e.contains("not a private key"), "{e}");
    assert_eq!(env.store_snapshot(), before, "nothing was built");
}
