//! Sizes as Docker's flags write them (`--keep-storage 2GB`), shared by the
//! prune commands and the `max-size=` of cache exports.

/// Parses a size (`--keep-storage`, `max-size=`) the way Docker's RAMInBytes does: a number and
/// an optional unit among b, k, m, g, t, p (with or without a trailing
/// `b`/`ib`, any case), each 1024 times the last.
pub fn parse_ram_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("invalid size: {text:?}"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b')).unwrap_or(&unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(format!("invalid size: {text:?} (use a unit like 512MB or 2GB)")),
    };
    Ok((value * 1024f64.powi(power)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_docker_reads_them() {
        assert_eq!(parse_ram_size("512MB").unwrap(), 512 << 20);
        assert_eq!(parse_ram_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_ram_size("100").unwrap(), 100);
        assert!(parse_ram_size("lots").is_err());
    }
}
