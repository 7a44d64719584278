//! Docker's masked and read-only paths: the kernel files a step must not
//! read or write, applied after pivot_root.

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
    for p in MASKED_PATHS {
        let path = Path::new(p);
        let hidden = match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
            }
            Ok(_) => mount(Some("/dev/null"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>),
            Err(_) => continue,
        };
        ctx(hidden, || format!("mask {p}"))?;
    }
    for p in READ_ONLY_PATHS {
        let path = Path::new(p);
        if fs::symlink_metadata(path).is_ok() {
            bind(path, path, true)?;
        }
    }
    Ok(())
}
