//! `--ssh ID[=SOCKET|KEYFILE[,KEYFILE…]]`: the SSH agents a build hands to
//! `RUN --mount=type=ssh` (and to `ADD git@…`), by id.
//!
//! As `docker buildx build --ssh`: without a path the id's agent is the one
//! in `$SSH_AUTH_SOCK`; a path to a socket is an agent; other paths are
//! private key files, which an agent rbuild starts for the build serves.
//! That agent is OpenSSH's own (`ssh-agent -D`, keys added with `ssh-add`),
//! so every key type OpenSSH knows works and rbuild carries no key-handling
//! or signing code; it listens in a private directory and is stopped when
//! the build ends (or soon after rbuild dies). A passphrase-protected key is
//! refused up front: a build has nobody to ask for the passphrase.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::unistd::Pid;

use crate::report::Failure;

/// One `--ssh` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSpec {
    pub id: String,
    /// A socket, or key files; empty: `$SSH_AUTH_SOCK`.
    pub paths: Vec<PathBuf>,
}

const EXAMPLE: &str = "e.g. --ssh default, --ssh default=$SSH_AUTH_SOCK or --ssh github=~/.ssh/id_ed25519";

/// Parses every `--ssh` value (no file is read yet); an id given twice is
/// an error, as in buildx.
pub fn parse(raw: &[String]) -> Result<Vec<SshSpec>, Failure> {
    let mut specs: Vec<SshSpec> = Vec::new();
    for value in raw {
        let (id, paths) = match value.split_once('=') {
            Some((id, paths)) => (id, Some(paths)),
            None => (value.as_str(), None),
        };
        let bad = |why: &str| {
            Failure::new(format!("invalid --ssh {value:?}: {why}"))
                .hint(format!("give ID, ID=SOCKET or ID=KEYFILE[,KEYFILE]; {EXAMPLE}"))
        };
        if id.is_empty() || id.contains(',') || id.chars().any(char::is_whitespace) {
            return Err(bad("the id before = must be a non-empty name"));
        }
        let paths: Vec<PathBuf> = match paths {
            None => Vec::new(),
            Some(p) if p.split(',').any(str::is_empty) => return Err(bad("a path after = is empty")),
            Some(p) => p.split(',').map(PathBuf::from).collect(),
        };
        if specs.iter().any(|s| s.id == id) {
            return Err(bad(&format!("agent id {id} is given twice")));
        }
        specs.push(SshSpec { id: id.to_string(), paths });
    }
    Ok(specs)
}

/// The build's agents: sockets by id, and the agents rbuild started,
/// stopped on drop.
#[derive(Default)]
pub struct SshAgents {
    pub sockets: BTreeMap<String, PathBuf>,
    started: Vec<StartedAgent>,
}

struct StartedAgent {
    /// The command the agent runs; its stdin is ours.
    child: Child,
    /// The agent itself.
    pid: Option<Pid>,
    /// The private directory holding its socket, removed with it.
    _dir: tempfile::TempDir,
}

impl Drop for StartedAgent {
    fn drop(&mut self) {
        // SIGKILL: the agent inherits rbuild's blocked SIGTERM (held for its
        // own interrupt handling), and OpenSSH's agent waits for signals
        // with the mask it started with. Its socket goes with the directory.
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SshAgents {
    /// Finds or starts each spec's agent.
    pub fn start(specs: &[SshSpec]) -> Result<SshAgents, Failure> {
        let mut agents = SshAgents::default();
        for spec in specs {
            let socket = match spec.paths.as_slice() {
                [] => auth_sock_of_env(&spec.id)?,
                [one] if is_socket(one) => one.clone(),
                keys => {
                    let started = start_agent(&spec.id, keys)?;
                    let socket = started._dir.path().join("agent.sock");
                    agents.started.push(started);
                    socket
                }
            };
            agents.sockets.insert(spec.id.clone(), socket);
        }
        Ok(agents)
    }
}

fn auth_sock_of_env(id: &str) -> Result<PathBuf, Failure> {
    match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
        Some(s) if is_socket(Path::new(&s)) => Ok(PathBuf::from(s)),
        Some(s) => Err(Failure::new(format!(
            "--ssh {id}: SSH_AUTH_SOCK is {}, which is not a socket",
            Path::new(&s).display()
        ))
        .hint("start an agent (eval $(ssh-agent); ssh-add) or give the socket or key files: --ssh ID=PATH")),
        None => Err(Failure::new(format!(
            "--ssh {id} uses the agent in SSH_AUTH_SOCK, but SSH_AUTH_SOCK is not set"
        ))
        .hint(format!(
            "start an agent (eval $(ssh-agent); ssh-add) or give key files: --ssh {id}=~/.ssh/id_ed25519"
        ))),
    }
}

fn is_socket(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// Starts `ssh-agent` in a private directory and adds `keys` to it, each
/// checked first to be a private key without a passphrase.
fn start_agent(id: &str, keys: &[PathBuf]) -> Result<StartedAgent, Failure> {
    for key in keys {
        check_key(id, key)?;
    }
    let dir = tempfile::Builder::new()
        .prefix("rbuild-ssh-")
        .tempdir()
        .map_err(|e| Failure::new(format!("--ssh {id}: cannot make a directory for its agent: {e}")))?;
    let socket = dir.path().join("agent.sock");
    // The agent runs a command of ours and exits when that command ends
    // (OpenSSH checks its parent every 10 s): `cat` reading a pipe only we
    // hold, so an rbuild killed outright still takes its agent with it.
    // The command first tells us the agent's pid, to stop it at once on
    // an ordinary end.
    let mut child = Command::new("ssh-agent")
        .arg("-a")
        .arg(&socket)
        .args(["sh", "-c", "echo \"$SSH_AGENT_PID\"; exec cat >/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            Failure::new(format!("--ssh {id}: cannot start ssh-agent to serve its keys: {e}"))
                .hint("install OpenSSH's client (Debian: apt-get install openssh-client), or pass a running agent's socket")
        })?;
    let mut first_line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut first_line);
    }
    let pid = first_line.trim().parse::<i32>().ok().map(Pid::from_raw);
    let agent = StartedAgent { child, pid, _dir: dir };
    if pid.is_none() || !is_socket(&socket) {
        return Err(Failure::new(format!("--ssh {id}: ssh-agent did not start")));
    }
    let added = Command::new("ssh-add")
        .arg("-q")
        .args(keys)
        .env("SSH_AUTH_SOCK", &socket)
        .env("SSH_ASKPASS_REQUIRE", "never")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::new(format!("--ssh {id}: cannot run ssh-add: {e}")))?;
    if !added.status.success() {
        return Err(Failure::new(format!(
            "--ssh {id}: ssh-add refused the keys: {}",
            String::from_utf8_lossy(&added.stderr).trim()
        )));
    }
    Ok(agent)
}

/// A key file must exist and be a private key that opens without a
/// passphrase (`ssh-keygen -y` derives its public key with an empty one).
fn check_key(id: &str, key: &Path) -> Result<(), Failure> {
    let shown = key.display();
    if !key.is_file() {
        return Err(Failure::new(format!("--ssh {id}={shown}: no such key file or socket"))
            .hint(format!("give a private key file or an agent's socket; {EXAMPLE}")));
    }
    let probe = Command::new("ssh-keygen")
        .args(["-y", "-P", "", "-f"])
        .arg(key)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Failure::new(format!("--ssh {id}: cannot run ssh-keygen to read {shown}: {e}"))
                .hint("install OpenSSH's client (Debian: apt-get install openssh-client)")
        })?;
    if probe.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&probe.stderr);
    if why.contains("passphrase") {
        return Err(Failure::new(format!(
            "--ssh {id}={shown}: the key is protected by a passphrase, which a build cannot ask for"
        ))
        .hint(format!(
            "add it to your agent (ssh-add {shown}) and pass --ssh {id} (the agent in $SSH_AUTH_SOCK)"
        )));
    }
    Err(Failure::new(format!("--ssh {id}={shown}: not a private key: {}", why.trim()))
        .hint(format!("give a private key file (such as ~/.ssh/id_ed25519) or an agent's socket; {EXAMPLE}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_into_ids_and_paths() {
        let specs = parse(&["default".into(), "gh=/k1,/k2".into(), "sock=/run/a.sock".into()]).unwrap();
        assert_eq!(specs[0], SshSpec { id: "default".into(), paths: vec![] });
        assert_eq!(specs[1].paths, [PathBuf::from("/k1"), PathBuf::from("/k2")]);
        assert_eq!(specs[2].id, "sock");
        for bad in ["=/k", "a=", "a=/k,,/j", "two words"] {
            let e = parse(&[bad.into()]).unwrap_err();
            assert!(e.message.starts_with(&format!("invalid --ssh {bad:?}")), "{}", e.message);
            assert!(e.hint.as_deref().unwrap_or("").contains("--ssh default"), "an example: {:?}", e.hint);
        }
        let e = parse(&["a".into(), "a=/k".into()]).unwrap_err();
        assert!(e.message.contains("agent id a is given twice"), "{}", e.message);
    }
}
