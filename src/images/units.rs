//! Sizes, durations and times printed, and read back from flags, the way
//! the docker CLI does (its `go-units` package and Go's `fmt`/`time`).
//!
//! * Sizes print in decimal units (`B`, `kB`, `MB`, …) with Go's `%.Ng`:
//!   `docker images` uses 3 significant digits ("199MB", "1.98MB"), `docker
//!   system df` and prune summaries 4 ("198.9MB").
//! * Ages print as "About an hour ago", "3 days ago", …
//! * `--keep-storage 512MB` reads binary units (Docker's RAMInBytes: 1KB = 1024 B).
//! * `until=24h` reads Go durations; `until=2024-01-02T…` and Unix seconds too.

use rbuild_frontend::duration::parse_go_duration;
use rbuild_oci::timefmt::Timestamp;

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// `units.HumanSizeWithPrecision(size, precision)`.
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    let mut value = size;
    let mut unit = 0;
    while value >= 1000.0 && unit < DECIMAL_UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_format_g(value, precision), DECIMAL_UNITS[unit])
}

/// Sizes in `docker images` and `docker history`.
pub fn image_size(bytes: u64) -> String {
    human_size_with_precision(bytes as f64, 3)
}

/// Sizes in `docker system df` and the prune summaries (`units.HumanSize`).
pub fn human_size(bytes: u64) -> String {
    human_size_with_precision(bytes as f64, 4)
}

/// Go's `fmt.Sprintf("%.*g", precision, value)` for finite, non-negative
/// values: the shortest of fixed and exponent notation with `precision`
/// significant digits, trailing zeros dropped.
pub fn go_format_g(value: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if value == 0.0 {
        return "0".to_string();
    }
    // Round to the significant digits first: the exponent is that of the
    // rounded value (999.6 with 3 digits is 1.00e3).
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is a number");
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
    trim_fraction(&format!("{value:.decimals$}")).to_string()
}

fn trim_fraction(number: &str) -> &str {
    if number.contains('.') { number.trim_end_matches('0').trim_end_matches('.') } else { number }
}

/// `units.HumanDuration`: how long ago, in the words `docker images` uses.
pub fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go rounds hours to the nearest here, half away from zero.
    let hours = (seconds as f64 / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// "2 hours ago", measured from now.
pub fn time_ago(then: Timestamp) -> String {
    format!("{} ago", human_duration(Timestamp::now().secs - then.secs))
}

/// Go's `time.Time.String()` for a UTC time, without the fraction:
/// `2024-05-01 12:34:56 +0000 UTC` (the CreatedAt of `docker images`).
pub fn go_time_string(t: Timestamp) -> String {
    let rfc = Timestamp::from_secs(t.secs).to_rfc3339();
    format!("{} {} +0000 UTC", &rfc[..10], &rfc[11..19])
}

/// RFC 3339 in UTC, whole seconds (`time.RFC3339`).
pub fn rfc3339_seconds(t: Timestamp) -> String {
    Timestamp::from_secs(t.secs).to_rfc3339()
}

pub use rbuild_oci::size::parse_ram_size;

/// Reads an `until=` value: a Go duration before now (`24h`, `1h30m`,
/// `90s`), an RFC 3339 time, a `YYYY-MM-DD` date, or Unix seconds.
pub fn parse_until(text: &str) -> Result<Timestamp, String> {
    // Docker reads "0" as Unix seconds (the epoch), not as no time at all.
    if text != "0"
        && let Some(nanos) = parse_go_duration(text)
    {
        return Ok(Timestamp::from_secs(Timestamp::now().secs - nanos / 1_000_000_000));
    }
    if let Some(t) = Timestamp::parse_rfc3339(text) {
        return Ok(t);
    }
    if text.len() == 10
        && let Some(t) = Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z"))
    {
        return Ok(t);
    }
    if let Ok(secs) = text.split('.').next().unwrap_or(text).parse::<i64>() {
        return Ok(Timestamp::from_secs(secs));
    }
    Err(format!("invalid time {text:?}: use a duration like 24h or 30m, an RFC 3339 time, or Unix seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_go_durations_times_and_seconds_as_docker_does() {
        let now = Timestamp::now().secs;
        let day_ago = parse_until("24h").unwrap().secs;
        assert!((now - 86_400 - day_ago).abs() <= 1, "{day_ago}");
        assert!((now - 5_400 - parse_until("1h30m").unwrap().secs).abs() <= 1);
        // "0" is Unix time zero, as in Docker, not "now".
        assert_eq!(parse_until("0").unwrap().secs, 0);
        assert_eq!(parse_until("1700000000").unwrap().secs, 1_700_000_000);
        assert_eq!(parse_until("2024-01-02").unwrap().secs, 1_704_153_600);
        assert!(parse_until("yesterday").is_err());
    }

    #[test]
    fn sizes_match_go_units() {
        // Figures docker printed for the same images.
        assert_eq!(image_size(1_984_277), "1.98MB");
        assert_eq!(human_size(1_984_277), "1.984MB");
        assert_eq!(image_size(198_900_000), "199MB");
        assert_eq!(human_size(198_900_000), "198.9MB");
        assert_eq!(image_size(5_390), "5.39kB");
        assert_eq!(image_size(5), "5B");
        assert_eq!(image_size(0), "0B");
        assert_eq!(image_size(1000), "1kB");
        // Go switches to exponent form when rounding reaches 1000.
        assert_eq!(image_size(999_600), "1e+03kB");
        assert_eq!(image_size(35_800_000), "35.8MB");
        assert_eq!(human_size(2_500_000_000), "2.5GB");
    }

    #[test]
    fn go_g_format() {
        assert_eq!(go_format_g(0.000012345, 3), "1.23e-05");
        assert_eq!(go_format_g(123456.0, 3), "1.23e+05");
        assert_eq!(go_format_g(12.0, 3), "12");
        assert_eq!(go_format_g(1.5, 4), "1.5");
    }

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(119), "About a minute");
        assert_eq!(human_duration(120), "2 minutes");
        assert_eq!(human_duration(3599), "59 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5399), "About an hour");
        assert_eq!(human_duration(5400), "2 hours");
        assert_eq!(human_duration(47 * 3600), "47 hours");
        assert_eq!(human_duration(48 * 3600), "2 days");
        assert_eq!(human_duration(14 * 24 * 3600), "2 weeks");
        assert_eq!(human_duration(60 * 24 * 3600), "2 months");
        assert_eq!(human_duration(2 * 365 * 24 * 3600), "2 years");
    }

    #[test]
    fn flag_values() {
        let now = Timestamp::now().secs;
        let t = parse_until("1h30m").unwrap().secs;
        assert!((now - 5400 - t).abs() <= 1);
        assert_eq!(parse_until("2023-11-14T22:13:20Z").unwrap().secs, 1_700_000_000);
        assert_eq!(parse_until("1700000000").unwrap().secs, 1_700_000_000);
        assert!(parse_until("yesterday").is_err());
        assert_eq!(go_time_string(Timestamp::from_secs(1_700_000_000)), "2023-11-14 22:13:20 +0000 UTC");
    }
}
