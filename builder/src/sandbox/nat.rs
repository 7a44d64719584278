//! The default RUN network, parent side: a step gets a network namespace
//! of its own whose traffic slirp4netns (user-mode NAT, what rootless
//! podman uses) carries out through the host, as BuildKit gives each RUN a
//! private namespace behind NAT. This module finds slirp4netns and the
//! device it needs, and writes the resolv.conf such a step sees; the
//! helper starts slirp4netns (`child::nat`).
//!
//! Where slirp4netns or its device is missing (a container without
//! `/dev/net/tun`, a machine without the package), the build is told once,
//! at its start, that default-network steps share the host's network and
//! what would give them their own (`find_slirp4netns`): BuildKit falls back
//! the same way when it cannot make its bridge network.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::SandboxError;

/// The Debian (and Fedora, Arch…) package that ships slirp4netns.
pub const SLIRP_PACKAGE: &str = "slirp4netns";
/// slirp4netns's DNS forwarder, as the step sees it: it answers from the
/// host's own resolvers, loopback ones included.
pub const SLIRP_DNS: &str = "10.0.2.3";
/// The device slirp4netns creates the step's `eth0` with.
const TUN_DEVICE: &str = "/dev/net/tun";
/// Used when rbuild runs without a PATH.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a step can do without the default network.
const ELSE: &str = "or give the step the host's network: RUN --network=host, or --network host for the \
whole build, with --allow network.host (or RUN --network=none if the step needs no network)";

/// Why the default network cannot be made here, and what would make it.
#[derive(Debug, Clone)]
pub struct NatUnavailable {
    pub why: String,
    pub remedy: String,
}

/// The slirp4netns executable, looked up once per process in PATH, as a
/// step's error when it cannot be used.
pub fn slirp4netns() -> Result<PathBuf, SandboxError> {
    find_slirp4netns()
        .map_err(|u| SandboxError::Unavailable { message: u.why, hint: format!("{}; {ELSE}", u.remedy) })
}

/// The slirp4netns executable, if it and the device it needs can be used.
pub fn find_slirp4netns() -> Result<PathBuf, NatUnavailable> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
        std::env::split_paths(&path).map(|dir| dir.join("slirp4netns")).find(|p| is_executable(p))
    });
    let Some(exe) = found else {
        return Err(NatUnavailable {
            why: format!(
                "RUN's default network needs slirp4netns (package {SLIRP_PACKAGE}), which is not in PATH"
            ),
            remedy: format!("install it (apt-get install {SLIRP_PACKAGE})"),
        });
    };
    // Opened as slirp4netns will open it; no interface exists until an
    // ioctl asks for one.
    match std::fs::OpenOptions::new().read(true).write(true).open(TUN_DEVICE) {
        Ok(_) => Ok(exe.clone()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NatUnavailable {
            why: format!(
                "RUN's default network needs {TUN_DEVICE} for slirp4netns (package {SLIRP_PACKAGE}), \
                 and this system has none"
            ),
            remedy: "load the tun module (modprobe tun) or pass the device into this container \
                     (docker run --device /dev/net/tun)"
                .into(),
        }),
        Err(e) => Err(NatUnavailable {
            why: format!(
                "RUN's default network needs {TUN_DEVICE} for slirp4netns, which cannot open it: {e}"
            ),
            remedy: format!(
                "distributions let every user open it (mode 0666, set by udev): chmod 0666 {TUN_DEVICE}"
            ),
        }),
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The resolv.conf of a step behind NAT, made from the host's: its
/// nameservers stay when the step can reach them through NAT, that is
/// IPv4 addresses off the host's loopback (the step has a loopback of its
/// own, and no IPv6 route). BuildKit also drops loopback nameservers;
/// where it then falls back to public resolvers, a step here gets
/// slirp4netns's forwarder, which asks the host's own resolvers (a local
/// systemd-resolved or dnsmasq included) and works offline.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut kept = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            match words.next().and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
                Some(std::net::IpAddr::V4(a)) if !a.is_loopback() => kept += 1,
                _ => continue,
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    if kept == 0 {
        out.push_str(&format!("nameserver {SLIRP_DNS}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_ipv6_nameservers_give_way_to_slirps_forwarder() {
        let local = "# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
        assert_eq!(resolv_conf(local), "# stub\noptions edns0 trust-ad\nsearch lan\nnameserver 10.0.2.3\n");
        let mixed = "nameserver 10.1.1.1\nnameserver ::1\nnameserver fd00::53\nnameserver 127.0.0.1\n";
        assert_eq!(resolv_conf(mixed), "nameserver 10.1.1.1\n", "a reachable server is kept as it is");
        assert_eq!(resolv_conf(""), "nameserver 10.0.2.3\n");
    }
}
