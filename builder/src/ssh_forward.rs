//! `RUN --mount=type=ssh`: a socket of the step's own that forwards every
//! connection to an SSH agent of the build (`--ssh`).
//!
//! The agent's socket is not bound into the step as it is: the mount's
//! `uid`, `gid` and `mode` must apply to the socket the step sees, and an
//! agent refuses peers of another user (OpenSSH's allows only its own user
//! and root), which a `USER` in the Dockerfile may be. rbuild itself
//! connects to the agent instead, as BuildKit's session does, and copies
//! bytes both ways. The forwarding socket lives in a scratch directory of
//! the step, so nothing of it reaches a layer.

use std::io;
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// A listening socket forwarding to an agent until dropped.
pub struct SshForward {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    accepting: Option<JoinHandle<()>>,
}

impl SshForward {
    /// Listens at `socket` (owned by `uid:gid`, with `mode`) and forwards
    /// each connection to the agent listening at `agent`.
    pub fn start(socket: &Path, agent: &Path, (uid, gid, mode): (u32, u32, u32)) -> io::Result<SshForward> {
        let listener = UnixListener::bind(socket)?;
        nix::unistd::chown(socket, Some(uid.into()), Some(gid.into()))?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(mode & 0o777))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (agent, stopping) = (agent.to_path_buf(), stop.clone());
        let accepting = std::thread::Builder::new().name("ssh-forward".into()).spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Acquire) {
                    break;
                }
                // A client that cannot reach the agent sees its connection
                // closed, as with an agent that went away.
                if let (Ok(client), Ok(upstream)) = (conn, UnixStream::connect(&agent)) {
                    pipe_both_ways(client, upstream);
                }
            }
        })?;
        Ok(SshForward { socket: socket.to_path_buf(), stop, accepting: Some(accepting) })
    }
}

/// Copies bytes between the two streams until each side has closed its
/// half; the threads end with the connection.
fn pipe_both_ways(client: UnixStream, upstream: UnixStream) {
    let halves = (client.try_clone(), upstream.try_clone());
    let (Ok(client_w), Ok(upstream_w)) = halves else { return };
    let copy = |mut from: UnixStream, to: UnixStream| {
        move || {
            let mut to_w = &to;
            let _ = io::copy(&mut from, &mut to_w);
            let _ = to.shutdown(Shutdown::Write);
        }
    };
    let _ = std::thread::Builder::new().name("ssh-forward-up".into()).spawn(copy(client, upstream_w));
    let _ = std::thread::Builder::new().name("ssh-forward-down".into()).spawn(copy(upstream, client_w));
}

impl Drop for SshForward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept loop, which then sees the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.accepting.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn forwards_each_connection_and_sets_the_sockets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let agent_path = dir.path().join("agent");
        let agent = UnixListener::bind(&agent_path).unwrap();
        // An echo "agent" that answers each request with its bytes reversed.
        std::thread::spawn(move || {
            for conn in agent.incoming().flatten() {
                let mut conn = conn;
                let mut buf = Vec::new();
                conn.read_to_end(&mut buf).unwrap();
                buf.reverse();
                conn.write_all(&buf).unwrap();
            }
        });
        let me = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
        let socket = dir.path().join("fwd");
        let fwd = SshForward::start(&socket, &agent_path, (me.0, me.1, 0o640)).unwrap();
        assert_eq!(std::fs::metadata(&socket).unwrap().mode() & 0o777, 0o640);
        for request in [&b"abc"[..], b"second connection"] {
            let mut c = UnixStream::connect(&socket).unwrap();
            c.write_all(request).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut answer = Vec::new();
            c.read_to_end(&mut answer).unwrap();
            let mut expected = request.to_vec();
            expected.reverse();
            assert_eq!(answer, expected);
        }
        drop(fwd);
        let late = UnixStream::connect(&socket);
        assert!(late.is_err(), "nothing listens once the step is over");
    }
}
