//! Go's `time.ParseDuration`, the one duration syntax Dockerfiles use
//! (`HEALTHCHECK --interval=1m30s`) and Docker's command line accepts.
//!
//! The grammar is Go's: `[-+]?([0-9]*(\.[0-9]*)?unit)+` with the units `ns`,
//! `us`, `µs` (U+00B5), `μs` (U+03BC), `ms`, `s`, `m`, `h`, and a bare `0`.
//! Values are computed in integer nanoseconds as Go does (a fraction goes
//! through one `f64` product, as in Go, so results match to the nanosecond).

/// Nanoseconds in one of Go's duration units.
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// The largest magnitude a duration may reach before its sign is applied:
/// `i64::MIN` is valid, `i64::MAX + 1` is not.
const LIMIT: u64 = 1 << 63;

/// Parses a duration as Go's `time.ParseDuration` does, in nanoseconds.
/// `None` for anything Go rejects: an empty string, a number without a unit
/// (`"1"`, except a bare `"0"`), an unknown unit, or a value that does not
/// fit in an `i64`.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (nanos, after) = component(rest)?;
        // Go checks the running total after each component; a sum that
        // wraps past 2^64 is an overflow too.
        total = total.checked_add(nanos).filter(|t| *t <= LIMIT)?;
        rest = after;
    }
    if negative { Some((total as i64).wrapping_neg()) } else { i64::try_from(total).ok() }
}

/// One `number[.fraction]unit` at the start of `text`: its nanoseconds and
/// the text after it.
fn component(text: &str) -> Option<(u64, &str)> {
    let (whole, after_whole) = leading_int(text)?;
    let has_whole = after_whole.len() != text.len();
    let (fraction, scale, has_fraction, rest) = match after_whole.strip_prefix('.') {
        Some(after_dot) => {
            let (fraction, scale, rest) = leading_fraction(after_dot);
            (fraction, scale, rest.len() != after_dot.len(), rest)
        }
        None => (0, 1.0, false, after_whole),
    };
    if !has_whole && !has_fraction {
        // No digits at all (`.s`, `-.s`, `s`).
        return None;
    }
    let unit_len = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
    let unit = unit_nanos(&rest[..unit_len])?;
    let mut nanos = whole.checked_mul(unit).filter(|v| *v <= LIMIT)?;
    if fraction > 0 {
        // Go: float64 keeps fractions of hours accurate to the nanosecond.
        nanos += (fraction as f64 * (unit as f64 / scale)) as u64;
        if nanos > LIMIT {
            return None;
        }
    }
    Some((nanos, &rest[unit_len..]))
}

/// The leading `[0-9]*` of `text` as an integer; `None` when it exceeds 2^63.
fn leading_int(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    for b in text[..digits].bytes() {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0')).filter(|v| *v <= LIMIT)?;
    }
    Some((value, &text[digits..]))
}

/// The leading `[0-9]*` after a decimal point: the digits as an integer and
/// the power of ten that divides it. Like Go, digits past what fits are
/// skipped rather than rejected (they only add precision).
fn leading_fraction(text: &str) -> (u64, f64, &str) {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    let mut scale = 1.0;
    for b in text[..digits].bytes() {
        let next = value.checked_mul(10).and_then(|v| v.checked_add(u64::from(b - b'0')));
        match next {
            Some(v) if v <= LIMIT => {
                value = v;
                scale *= 10.0;
            }
            // Once a digit does not fit, the rest are ignored too.
            _ => break,
        }
    }
    (value, scale, &text[digits..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn units_and_sequences() {
        assert_eq!(parse_go_duration("1h30m"), Some(5_400 * S));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("2h45m10s"), Some((2 * 3600 + 45 * 60 + 10) * S));
        assert_eq!(parse_go_duration("1h2m3s4ms5us6ns"), Some(3_723_004_005_006));
        assert_eq!(parse_go_duration("7ns"), Some(7));
        assert_eq!(parse_go_duration("7us"), Some(7_000));
        assert_eq!(parse_go_duration("7µs"), Some(7_000), "U+00B5 micro sign");
        assert_eq!(parse_go_duration("7μs"), Some(7_000), "U+03BC Greek mu");
        assert_eq!(parse_go_duration("1m1m"), Some(120 * S), "a unit may repeat");
    }

    #[test]
    fn fractions_are_exact_to_the_nanosecond() {
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("8.2s"), Some(8_200_000_000), "not 8199999999 (8.2 * 1e9 in f64)");
        assert_eq!(parse_go_duration("1.005s"), Some(1_005_000_000));
        assert_eq!(parse_go_duration(".5s"), Some(500_000_000));
        assert_eq!(parse_go_duration("2.s"), Some(2 * S));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400 * S));
        assert_eq!(parse_go_duration("0.000000001s"), Some(1));
        assert_eq!(parse_go_duration("1.0000000001s"), Some(S), "digits below a nanosecond are dropped");
        assert_eq!(
            parse_go_duration("0.1000000000000000000000000000001s"),
            Some(100_000_000),
            "overlong fractions stop gaining precision instead of failing"
        );
    }

    #[test]
    fn signs_and_zero() {
        assert_eq!(parse_go_duration("-2m"), Some(-120 * S));
        assert_eq!(parse_go_duration("+2m"), Some(120 * S));
        assert_eq!(parse_go_duration("-1.5s"), Some(-1_500_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("-0"), Some(0));
        assert_eq!(parse_go_duration("+0"), Some(0));
        assert_eq!(parse_go_duration("0s"), Some(0));
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for bad in [
            "", "-", "+", "1", "00", "1x", "1S", "s", ".s", "-.s", ".", "1.5", "1h30", "1s 2s", " 1s",
            "1e3s", "--1s", "1d",
        ] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn overflow_is_rejected_and_the_extremes_are_not() {
        assert_eq!(parse_go_duration("9223372036854775807ns"), Some(i64::MAX));
        assert_eq!(parse_go_duration("9223372036854775808ns"), None);
        assert_eq!(parse_go_duration("-9223372036854775808ns"), Some(i64::MIN));
        assert_eq!(parse_go_duration("-9223372036854775809ns"), None);
        assert_eq!(parse_go_duration("2562047h47m16.854775807s"), Some(i64::MAX));
        assert_eq!(parse_go_duration("2562048h"), None);
        assert_eq!(parse_go_duration("99999999999999999999s"), None);
        assert_eq!(parse_go_duration("9223372036854775807ns1ns"), None, "the running total overflows");
        assert_eq!(parse_go_duration("9223372036854775808ns9223372036854775808ns"), None, "no wrap to zero");
    }
}
