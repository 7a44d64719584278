//! The flags that shape every RUN of a build, parsed and checked before
//! anything runs: `--add-host`, `--ulimit`, `--shm-size`, `--network` and
//! the `--allow` entitlements; and `--no-cache-filter`'s stages. A malformed value names its flag, says what
//! was expected and shows an example.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};

use rbuild_builder::run_settings::{ExtraHost, RunSettings, ULIMIT_NAMES, Ulimit};
use rbuild_frontend::graph::{Network, StepGraph};

use crate::cli::BuildArgs;
use crate::images::units::parse_ram_size;
use crate::report::Failure;

/// The special `--add-host` address: the host as the build's RUN steps
/// reach it.
const HOST_GATEWAY: &str = "host-gateway";

/// What `--allow` grants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entitlements {
    /// `security.insecure`: `RUN --security=insecure`.
    pub insecure: bool,
    /// `network.host`: `--network host` for the whole build, and
    /// `RUN --network=host`.
    pub network_host: bool,
}

/// The RUN-wide flags of one build.
pub struct RunFlags {
    pub settings: RunSettings,
    /// `--network`: the mode of every RUN without its own `--network`.
    pub network: Network,
    pub entitlements: Entitlements,
}

impl RunFlags {
    pub fn parse(args: &BuildArgs) -> Result<RunFlags, Failure> {
        let entitlements = entitlements(&args.allow)?;
        let settings = RunSettings {
            extra_hosts: args.add_host.iter().map(|h| extra_host(h)).collect::<Result<_, _>>()?,
            ulimits: args.ulimit.iter().map(|u| ulimit(u)).collect::<Result<_, _>>()?,
            shm_size: args.shm_size.as_deref().map(shm_size).transpose()?,
        };
        let network = match args.network.as_deref() {
            None => Network::Default,
            Some(mode) => network(mode, entitlements)?,
        };
        Ok(RunFlags { settings, network, entitlements })
    }
}

fn bad(flag: &str, value: &str, expected: &str, example: &str) -> Failure {
    Failure::new(format!("invalid {flag} value {value:?}: expected {expected}"))
        .hint(format!("for example: {flag} {example}"))
}

/// `--allow ENTITLEMENT`, BuildKit's names.
fn entitlements(raw: &[String]) -> Result<Entitlements, Failure> {
    let mut granted = Entitlements::default();
    for entitlement in raw {
        match entitlement.as_str() {
            "security.insecure" => granted.insecure = true,
            "network.host" => granted.network_host = true,
            other => {
                return Err(bad("--allow", other, "network.host or security.insecure", "network.host"));
            }
        }
    }
    Ok(granted)
}

/// `--add-host NAME:IP` (also `NAME=IP`, as newer Docker accepts; an IPv6
/// address may be in brackets), or `NAME:host-gateway`.
fn extra_host(raw: &str) -> Result<ExtraHost, Failure> {
    let example = "db.internal:10.0.0.5";
    let expected = "HOST:IP (or HOST:host-gateway)";
    let (name, addr) = raw
        .split_once('=')
        .or_else(|| raw.split_once(':'))
        .ok_or_else(|| bad("--add-host", raw, expected, example))?;
    if name.is_empty() || name.contains(|c: char| c.is_whitespace()) {
        return Err(bad("--add-host", raw, "a host name before the ':'", example));
    }
    let ip = if addr == HOST_GATEWAY {
        host_gateway_ip()?
    } else {
        let addr = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(addr);
        addr.parse::<IpAddr>()
            .map_err(|_| bad("--add-host", raw, "an IPv4 or IPv6 address after the host name", example))?
    };
    Ok(ExtraHost { name: name.to_string(), ip })
}

/// The address RUN steps reach the host at: its own address on its default
/// route (the source address the kernel picks towards the default
/// gateway), which a default-network step reaches through slirp4netns's
/// NAT and a host-network step directly. slirp4netns's gateway 10.0.2.2
/// would be the host's loopback, which steps are kept from.
fn host_gateway_ip() -> Result<IpAddr, Failure> {
    let no_route = |why: String| {
        Failure::new(format!("--add-host …:host-gateway: cannot find the host's address ({why})"))
            .hint("give the address instead, e.g. --add-host myhost:192.168.1.10")
    };
    let routes = std::fs::read_to_string("/proc/net/route").map_err(|e| no_route(e.to_string()))?;
    let gateway = default_gateway(&routes).ok_or_else(|| no_route("the host has no default route".into()))?;
    // Connecting a UDP socket sends nothing; it only picks the route.
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| no_route(e.to_string()))?;
    socket.connect((gateway, 9)).map_err(|e| no_route(e.to_string()))?;
    Ok(socket.local_addr().map_err(|e| no_route(e.to_string()))?.ip())
}

/// The gateway of the IPv4 default route in `/proc/net/route`'s table
/// (each address a hex number whose bytes, in memory order, are the
/// address in network order).
fn default_gateway(table: &str) -> Option<Ipv4Addr> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"00000000") {
            return None;
        }
        let raw = u32::from_str_radix(fields.get(2)?, 16).ok()?;
        Some(Ipv4Addr::from(raw.to_ne_bytes()))
    })
}

/// `--ulimit NAME=SOFT[:HARD]`; -1 is unlimited, a missing HARD is SOFT.
fn ulimit(raw: &str) -> Result<Ulimit, Failure> {
    let example = "nofile=1024:2048";
    let (name, values) =
        raw.split_once('=').ok_or_else(|| bad("--ulimit", raw, "TYPE=SOFT[:HARD]", example))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(bad("--ulimit", raw, &format!("a TYPE among {}", ULIMIT_NAMES.join(", ")), example));
    }
    let number = |text: &str| -> Result<Option<u64>, Failure> {
        match text.parse::<i64>() {
            Ok(-1) => Ok(None),
            Ok(v) if v >= 0 => Ok(Some(v as u64)),
            _ => Err(bad("--ulimit", raw, "limits that are whole numbers (or -1 for unlimited)", example)),
        }
    };
    let (soft, hard) = match values.split_once(':') {
        Some((soft, hard)) => (number(soft)?, number(hard)?),
        None => {
            let v = number(values)?;
            (v, v)
        }
    };
    let above = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (None, Some(_)) => true,
        (Some(a), Some(b)) => a > b,
        _ => false,
    };
    if above(soft, hard) {
        return Err(bad("--ulimit", raw, "a soft limit no higher than the hard limit", example));
    }
    Ok(Ulimit { name: name.to_string(), soft, hard })
}

/// `--shm-size SIZE`, Docker's units (b, k, m, g).
fn shm_size(raw: &str) -> Result<u64, Failure> {
    match parse_ram_size(raw) {
        Ok(bytes) if bytes > 0 => Ok(bytes),
        _ => {
            Err(bad("--shm-size", raw, "a size greater than zero, in bytes or with a unit (k, m, g)", "128m"))
        }
    }
}

/// `--network default|none|host`; `host` needs `--allow network.host`.
fn network(raw: &str, granted: Entitlements) -> Result<Network, Failure> {
    match raw {
        "default" => Ok(Network::Default),
        "none" => Ok(Network::None),
        "host" if granted.network_host => Ok(Network::Host),
        "host" => Err(Failure::new(
            "--network host is not allowed: the build was not started with --allow network.host",
        )
        .hint("add --allow network.host to give every RUN the host's network")),
        other => Err(bad("--network", other, "default, none or host", "none")),
    }
}

/// The stages `--no-cache-filter` names: their indexes, and the names no
/// stage has.
pub struct NoCacheStages {
    pub stages: BTreeSet<usize>,
    pub unknown: Vec<String>,
}

/// `--no-cache-filter STAGE[,STAGE]` (repeatable). Names are matched as
/// BuildKit stores them, lower-cased. A name no stage has is reported, not
/// refused: BuildKit ignores it, and a pipeline that passes one filter to
/// several Dockerfiles must keep working when swapped to rbuild.
pub fn no_cache_stages(raw: &[String], graph: &StepGraph) -> Result<NoCacheStages, Failure> {
    let mut found = NoCacheStages { stages: BTreeSet::new(), unknown: Vec::new() };
    for name in raw.iter().flat_map(|r| r.split(',')) {
        let name = name.trim();
        if name.is_empty() {
            let given = raw.join(",");
            return Err(bad("--no-cache-filter", &given, "stage names separated by commas", "deps,test"));
        }
        let wanted = name.to_ascii_lowercase();
        match graph.stages.iter().find(|s| s.name.as_deref() == Some(wanted.as_str())) {
            Some(stage) => {
                found.stages.insert(stage.index);
            }
            None => found.unknown.push(name.to_string()),
        }
    }
    Ok(found)
}

/// The warning for a `--no-cache-filter` name no stage has, with the names
/// there are (a typo is the likeliest cause).
pub fn unknown_stage_warning(name: &str, graph: &StepGraph) -> String {
    let named: Vec<&str> = graph.stages.iter().filter_map(|s| s.name.as_deref()).collect();
    let known = if named.is_empty() {
        "the Dockerfile names no stage (FROM … AS NAME)".to_string()
    } else {
        format!("its named stages are: {}", named.join(", "))
    };
    format!("warning: --no-cache-filter: the Dockerfile has no stage named {name:?}; ignored ({known})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_route_gateway_is_read_from_the_route_table() {
        let table = "Iface\tDestination\tGateway\tFlags\n\
                     eth0\t0010A8C0\t00000000\t0001\n\
                     eth0\t00000000\t0110A8C0\t0003\n";
        assert_eq!(default_gateway(table), Some(Ipv4Addr::new(192, 168, 16, 1)));
        assert_eq!(default_gateway("Iface\tDestination\tGateway\n"), None);
    }

    #[test]
    fn ulimits_take_docker_forms() {
        assert_eq!(ulimit("nofile=10:20").unwrap().hard, Some(20));
        assert_eq!(ulimit("core=-1").unwrap().soft, None);
        assert_eq!(ulimit("nproc=5").unwrap().hard, Some(5));
        assert!(ulimit("nofile=20:10").is_err());
        assert!(ulimit("files=1").is_err());
        assert!(ulimit("nofile").is_err());
    }

    #[test]
    fn hosts_take_names_and_addresses() {
        let h = extra_host("db:10.0.0.5").unwrap();
        assert_eq!((h.name.as_str(), h.ip.to_string().as_str()), ("db", "10.0.0.5"));
        assert_eq!(extra_host("v6=[::1]").unwrap().ip.to_string(), "::1");
        assert!(extra_host("db:not-an-ip").is_err());
        assert!(extra_host("db").is_err());
    }
}
