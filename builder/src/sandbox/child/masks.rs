//! Docker's masked and read-only paths (moby's `daemon/pkg/oci/defaults.go`,
//! the lists of the moby release the seccomp profile follows): the kernel
//! files a step must not read or write, applied after pivot_root.

use std::fs;
use std::path::Path;

use nix::mount::{MsFlags, mount};

use super::binds::bind;
use super::{SetupResult, ctx};

/// What Docker hides from a container: files that reveal or drive the
/// host's hardware and kernel internals.
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// What Docker leaves visible but read-only: the kernel's tunables. Without
/// this, a step running as root could write `/proc/sys` or
/// `/proc/sysrq-trigger`, which reach the whole machine.
const READ_ONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Masks and write-protects the kernel files above (run after pivot_root).
/// A path that exists but cannot be protected fails the step: running it
/// with the host's kernel knobs writable is not an option.
pub(super) fn mask_kernel_files() -> SetupResult<()> {
    let per_cpu =
        thermal_throttle_paths(&fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default());
    for p in MASKED_PATHS.iter().map(|p| p.to_string()).chain(per_cpu) {
        let path = Path::new(&p);
        let hidden = match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
            }
            Ok(_) => mount(Some("/dev/null"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>),
            Err(_) => continue,
        };
        ctx(hidden, || format!("mask {}", path.display()))?;
    }
    for p in READ_ONLY_PATHS {
        let path = Path::new(p);
        if fs::symlink_metadata(path).is_ok() {
            bind(path, path, true)?;
        }
    }
    Ok(())
}

/// Each possible CPU's `thermal_throttle` directory, whose counters leak
/// what the host's other tenants do (as Docker masks them). `possible` is
/// the kernel's CPU list, e.g. `0-3,8`.
fn thermal_throttle_paths(possible: &str) -> Vec<String> {
    let mut cpus = Vec::new();
    for range in possible.trim().split(',').filter(|r| !r.is_empty()) {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        if let (Ok(first), Ok(last)) = (first.parse::<u32>(), last.parse::<u32>()) {
            cpus.extend(first..=last);
        }
    }
    cpus.into_iter().map(|c| format!("/sys/devices/system/cpu/cpu{c}/thermal_throttle")).collect()
}

#[cfg(test)]
mod tests {
    use super::thermal_throttle_paths;

    #[test]
    fn every_possible_cpu_gets_its_thermal_throttle_masked() {
        let paths = thermal_throttle_paths("0-2,8\n");
        let cpus: Vec<&str> = paths
            .iter()
            .map(|p| p.trim_start_matches("/sys/devices/system/cpu/").trim_end_matches("/thermal_throttle"))
            .collect();
        assert_eq!(cpus, ["cpu0", "cpu1", "cpu2", "cpu8"]);
        assert!(thermal_throttle_paths("").is_empty());
    }
}
