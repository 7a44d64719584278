//! `--ulimit`: resource limits set on the step's process just before it
//! becomes the command, by Docker's names for them.

use nix::sys::resource::{Resource, setrlimit};

use crate::run_settings::Ulimit;

/// Sets every limit; the first that cannot be set is the error.
pub(super) fn apply(limits: &[Ulimit]) -> Result<(), String> {
    for limit in limits {
        let resource = resource(&limit.name).ok_or_else(|| format!("unknown ulimit {:?}", limit.name))?;
        let value = |v: Option<u64>| v.unwrap_or(libc::RLIM_INFINITY);
        setrlimit(resource, value(limit.soft), value(limit.hard)).map_err(|e| {
            let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |v| v.to_string());
            format!(
                "cannot set --ulimit {}={}:{}: {e} (above what the host allows rbuild?)",
                limit.name,
                show(limit.soft),
                show(limit.hard)
            )
        })?;
    }
    Ok(())
}

fn resource(name: &str) -> Option<Resource> {
    Some(match name {
        "as" => Resource::RLIMIT_AS,
        "core" => Resource::RLIMIT_CORE,
        "cpu" => Resource::RLIMIT_CPU,
        "data" => Resource::RLIMIT_DATA,
        "fsize" => Resource::RLIMIT_FSIZE,
        "locks" => Resource::RLIMIT_LOCKS,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "rss" => Resource::RLIMIT_RSS,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "rttime" => Resource::RLIMIT_RTTIME,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "stack" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_name_docker_accepts_is_a_resource() {
        for name in crate::run_settings::ULIMIT_NAMES {
            assert!(super::resource(name).is_some(), "{name}");
        }
        assert!(super::resource("files").is_none());
    }
}
