//! What a build gives every RUN step beyond its Dockerfile line:
//! `--add-host` entries for /etc/hosts, `--ulimit` resource limits and the
//! size of /dev/shm. The values are parsed and checked by the CLI; this
//! module owns their types, what they add to a step's cache key (as
//! BuildKit: host names but not their addresses, limits, shm size) and the
//! /etc/hosts lines they make.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::keys::KeyBuilder;

/// Settings applied to every RUN of one build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSettings {
    /// `--add-host NAME:IP`, in the order given.
    pub extra_hosts: Vec<ExtraHost>,
    /// `--ulimit NAME=SOFT[:HARD]`.
    pub ulimits: Vec<Ulimit>,
    /// `--shm-size`: bytes of the /dev/shm tmpfs (64 MiB when unset).
    pub shm_size: Option<u64>,
}

/// One `--add-host` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    pub name: String,
    pub ip: IpAddr,
}

/// One `--ulimit`: a resource by Docker's name and its limits
/// (`None` is unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// The resource names `docker build --ulimit` accepts.
pub const ULIMIT_NAMES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

impl RunSettings {
    /// Adds these settings to a RUN step's key. Nothing is added when they
    /// are unset, so ordinary steps keep their keys. The addresses of extra
    /// hosts stay out, as in BuildKit: a host moving to another address
    /// does not make the step run again.
    pub fn add_to_key(&self, k: &mut KeyBuilder) {
        if !self.extra_hosts.is_empty() {
            let names: Vec<String> = self.extra_hosts.iter().map(|h| h.name.clone()).collect();
            k.list("extra-hosts", &names);
        }
        if !self.ulimits.is_empty() {
            let limits: Vec<String> = self
                .ulimits
                .iter()
                .map(|u| format!("{}={}:{}", u.name, limit_text(u.soft), limit_text(u.hard)))
                .collect();
            k.list("ulimits", &limits);
        }
        if let Some(size) = self.shm_size {
            k.field("shm-size", &size.to_string());
        }
    }

    /// The lines `--add-host` appends to a step's /etc/hosts.
    pub fn hosts_lines(&self) -> String {
        self.extra_hosts.iter().map(|h| format!("{}\t{}\n", h.ip, h.name)).collect()
    }
}

fn limit_text(limit: Option<u64>) -> String {
    limit.map_or_else(|| "-1".into(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(settings: &RunSettings) -> String {
        let mut k = KeyBuilder::new("run");
        settings.add_to_key(&mut k);
        k.finish().0.to_string()
    }

    #[test]
    fn host_addresses_stay_out_of_the_key_but_names_and_limits_do_not() {
        let host = |name: &str, ip: &str| ExtraHost { name: name.into(), ip: ip.parse().unwrap() };
        let unset = key(&RunSettings::default());
        let a = RunSettings { extra_hosts: vec![host("db", "10.0.0.1")], ..Default::default() };
        let moved = RunSettings { extra_hosts: vec![host("db", "10.0.0.2")], ..Default::default() };
        let other = RunSettings { extra_hosts: vec![host("cache", "10.0.0.1")], ..Default::default() };
        assert_ne!(key(&a), unset);
        assert_eq!(key(&a), key(&moved));
        assert_ne!(key(&a), key(&other));
        let limited = RunSettings {
            ulimits: vec![Ulimit { name: "nofile".into(), soft: Some(100), hard: Some(200) }],
            ..Default::default()
        };
        assert_ne!(key(&limited), unset);
        assert_ne!(key(&RunSettings { shm_size: Some(1 << 20), ..Default::default() }), unset);
        assert_eq!(a.hosts_lines(), "10.0.0.1\tdb\n");
    }
}
