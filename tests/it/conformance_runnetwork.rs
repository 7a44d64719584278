//! Conformance with BuildKit's `RUN --network` tests
//! (`dockerfile_runnetwork_test.go`): the default network is a namespace
//! of the step's own behind NAT (`lo` and `eth0`, the host's loopback out
//! of reach, the host's other addresses reachable), `--network=none` has
//! only `lo`, `--network=host` is the host's and needs `--allow
//! network.host`. And what rbuild adds: without slirp4netns the default
//! network fails with the package's name, never falling back to the host's.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::{Arc, Mutex};

use rbuild_test_support::prereq::Missing;

use crate::harness::*;

/// A TCP server that sends `token` to each client, then closes; it records
/// the address each client came from. It lives as long as the test process.
struct EchoServer {
    port: u16,
    peers: Arc<Mutex<Vec<IpAddr>>>,
}

impl EchoServer {
    fn start(ip: IpAddr, token: &str) -> EchoServer {
        let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}: {e}"));
        let port = listener.local_addr().unwrap().port();
        let peers = Arc::new(Mutex::new(Vec::new()));
        let (seen, token) = (peers.clone(), token.to_string());
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                if let Ok(peer) = conn.peer_addr() {
                    seen.lock().unwrap().push(peer.ip());
                }
                let _ = conn.write_all(token.as_bytes());
            }
        });
        EchoServer { port, peers }
    }
}

/// The host's IPv4 addresses off loopback (`ip -4 -o addr`).
fn host_addresses() -> Vec<Ipv4Addr> {
    sh("ip -4 -o addr show")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3)?.split('/').next()?.parse().ok())
        .filter(|a: &Ipv4Addr| !a.is_loopback())
        .collect()
}

fn host_address() -> Need<Ipv4Addr> {
    host_addresses()
        .into_iter()
        .next()
        .ok_or_else(|| Missing::new("the host has no IPv4 address off loopback"))
}

fn token() -> String {
    format!("rbuild-echo-{}", std::process::id())
}

/// testRunDefaultNetwork and testRunNoNetwork: `eth0` exists by default
/// and not with `--network=none`; beside it only `lo`, with slirp4netns's
/// address and route and none of the host's addresses.
#[test]
fn default_network_has_loopback_and_one_nat_interface_of_its_own() {
    require!(root(), busybox_static(), default_network());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\n\
RUN ip link show eth0 > /dev/null && tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort > /ifaces && \
ls /sys/class/net | sort > /sysfs && ip -o -4 addr show > /addrs && ip route > /routes && \
cat /etc/resolv.conf > /resolv\n\
RUN --network=none ! ip link show eth0 2>/dev/null\n",
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
    assert_eq!(read("ifaces"), "eth0\nlo\n", "loopback and one NAT interface");
    assert_eq!(read("sysfs"), "eth0\nlo\n", "/sys shows the step's own network namespace");
    let addrs = read("addrs");
    assert!(addrs.lines().any(|l| l.contains("eth0") && l.contains("inet 10.0.2.100/24")), "{addrs}");
    for host in host_addresses() {
        assert!(!addrs.contains(&format!("inet {host}/")), "the host's {host} is not the step's:\n{addrs}");
    }
    assert!(read("routes").contains("default via 10.0.2.2 dev eth0"), "{}", read("routes"));
    let resolv = read("resolv");
    let servers: Vec<&str> = resolv.lines().filter_map(|l| l.strip_prefix("nameserver ")).collect();
    assert!(!servers.is_empty(), "a nameserver the step can reach:\n{resolv}");
    assert!(servers.iter().all(|s| !s.starts_with("127.")), "not the step's own loopback:\n{resolv}");
}

/// testRunHostNetwork: a server on the host's 127.0.0.1 answers a
/// `--network=host` step, which needs `--allow network.host`, and not a
/// step on the default network (nor through slirp4netns's gateway, which
/// would otherwise be the host's loopback).
#[test]
fn only_the_host_network_reaches_the_hosts_loopback_and_it_needs_the_entitlement() {
    require!(root(), busybox_static(), default_network());
    let env = Env::with_busybox();
    let token = token();
    let server = EchoServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), &token);
    let port = server.port;
    env.dockerfile(
        "ctx",
        &format!(
            "FROM busybox:local\n\
RUN (nc -w 2 127.0.0.1 {port}; echo rc=$?) > /default 2>&1; (nc -w 2 10.0.2.2 {port}; echo rc=$?) > /gateway 2>&1\n\
RUN --network=host nc -w 2 127.0.0.1 {port} > /host\n"
        ),
    );
    let before = env.store_snapshot();
    let denied = env.rbuild(&["build", "--progress", "plain", "ctx"]).failed();
    assert!(
        denied.stderr.contains("Dockerfile:3")
            && denied.stderr.contains("RUN --network=host is not allowed")
            && denied.stderr.contains("--allow network.host"),
        "{}",
        denied.stderr
    );
    assert!(!denied.stderr.contains("] RUN "), "no step ran:\n{}", denied.stderr);
    assert_eq!(env.store_snapshot(), before, "nothing was built");
    assert!(server.peers.lock().unwrap().is_empty());

    let (_, out) = build_local(&env, "ctx", &["--allow", "network.host"]);
    let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
    assert_eq!(read("host"), token, "the host's network reaches its loopback");
    for probe in ["default", "gateway"] {
        let seen = read(probe);
        assert!(!seen.contains(&token) && seen.contains("rc=1"), "{probe}: {seen}");
    }
    assert_eq!(server.peers.lock().unwrap().len(), 1, "only the host-network step connected");
}

/// Outbound access without the internet: a server on one of the host's own
/// addresses (not loopback) answers a default-network step, and sees the
/// connection come from the host, as NAT makes it.
#[test]
fn default_network_reaches_the_hosts_other_addresses_through_nat() {
    require!(root(), busybox_static(), default_network());
    let address = require!(host_address());
    let env = Env::with_busybox();
    let token = token();
    let server = EchoServer::start(IpAddr::V4(address), &token);
    env.dockerfile("ctx", &format!("FROM busybox:local\nRUN nc -w 5 {address} {} > /reply\n", server.port));
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(std::fs::read_to_string(out.join("reply")).unwrap(), token);
    let peers = server.peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_ne!(peers[0], IpAddr::V4(Ipv4Addr::new(10, 0, 2, 100)), "the step's own address stays behind NAT");
}

/// Without slirp4netns, default-network steps share the host's network (as
/// BuildKit's do without its bridge) and the build says so once, before any
/// step, naming the package that would give each its own; `--network=none`
/// still has only loopback.
#[test]
fn default_network_without_slirp4netns_shares_the_hosts_and_says_so_first() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nRUN --network=none tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort > /none\n\
RUN awk '$2 == \"00000000\" {print $1, $3}' /proc/net/route > /default\n",
    );
    let empty = env.path("no-tools");
    std::fs::create_dir_all(&empty).unwrap();
    let out = env.path("out");
    let dest = format!("type=local,dest={}", out.display());
    let path = [("PATH", empty.to_str().unwrap())];
    let run = env.rbuild_with(&["build", "--progress", "plain", "-o", &dest, "ctx"], None, &path).ok();
    let note = run
        .stderr
        .lines()
        .position(|l| l.contains("RUN steps on the default network share the host's network here"))
        .unwrap_or_else(|| panic!("no network note in:\n{}", run.stderr));
    let first_step = run.stderr.lines().position(|l| l.contains("] RUN ")).expect("a RUN step");
    assert!(note < first_step, "the note comes before any step:\n{}", run.stderr);
    for expected in ["needs slirp4netns (package slirp4netns)", "apt-get install slirp4netns"] {
        assert!(run.stderr.contains(expected), "expected {expected:?} in:\n{}", run.stderr);
    }
    assert_eq!(std::fs::read_to_string(out.join("none")).unwrap(), "lo\n");
    // The host's default route (interface and gateway), not slirp4netns's
    // (eth0 via 10.0.2.2, 0202000A).
    let host = sh("awk '$2 == \"00000000\" {print $1, $3}' /proc/net/route");
    assert!(!host.trim().is_empty(), "the host has a default route");
    assert_eq!(std::fs::read_to_string(out.join("default")).unwrap(), host, "the host's default route");
}

/// A default-network step leaves the host's mounts alone: slirp4netns
/// confines itself in a mount namespace and detaches its old root there,
/// which, for a shared mount of the host (dockerd's container roots are
/// such), would unmount it on the host too unless rbuild gives it a private
/// copy first. Found when `docker run` failed with "sh: not found" next to
/// a build.
#[test]
fn a_default_network_step_unmounts_nothing_of_the_hosts() {
    require!(root(), busybox_static(), default_network());
    let env = Env::with_busybox();
    let shared = env.path("shared-mount");
    std::fs::create_dir_all(&shared).unwrap();
    // As dockerd's: a shared mount (its /var/lib/docker) with a mount
    // below it (a container's root); an unmount propagates to the peers of
    // the parent mount.
    let child = shared.join("child");
    sh(&format!(
        "mount -t tmpfs rbuild-it {0} && mount --make-shared {0} && mkdir {1} && \
         mount -t tmpfs rbuild-it-child {1} && echo here > {1}/mark",
        shared.display(),
        child.display()
    ));
    env.dockerfile("ctx", "FROM busybox:local\nRUN true\n");
    let run = env.rbuild(&["build", "--progress", "plain", "ctx"]);
    let still = std::fs::read_to_string(child.join("mark"));
    let _ = std::process::Command::new("umount").arg("-R").arg("-l").arg(&shared).status();
    run.ok();
    assert_eq!(
        still.ok().as_deref(),
        Some("here\n"),
        "the mount below the host's shared mount is still there"
    );
}
