//! `--filter key=value` flags as the daemon reads them, and the label
//! filters `images` and `image prune` share.

use std::collections::BTreeMap;

use rbuild_cache::usage::CatalogImage;
use rbuild_oci::timefmt::Timestamp;

use super::units;
use crate::report::Failure;

/// `--filter key=value` flags, grouped by key.
#[derive(Debug, Default)]
pub struct Filters {
    by_key: BTreeMap<String, Vec<String>>,
}

impl Filters {
    /// Parses the flags, refusing keys the command does not know, as the
    /// daemon does (`invalid filter 'x'`).
    pub fn parse(flags: &[String], known: &[&str]) -> Result<Filters, Failure> {
        let mut filters = Filters::default();
        for flag in flags {
            let Some((key, value)) = flag.split_once('=') else {
                return Err(Failure::new(format!("bad format of filter {flag:?} (expected name=value)")));
            };
            let key = key.trim().to_ascii_lowercase();
            if !known.contains(&key.as_str()) {
                return Err(Failure::new(format!("invalid filter '{key}'"))
                    .hint(format!("filters here are: {}", known.join(", "))));
            }
            filters.add(&key, value);
        }
        Ok(filters)
    }

    pub fn add(&mut self, key: &str, value: &str) {
        self.by_key.entry(key.to_string()).or_default().push(value.to_string());
    }

    pub fn values(&self, key: &str) -> &[String] {
        self.by_key.get(key).map_or(&[], Vec::as_slice)
    }

    /// A boolean filter (`dangling=true`); `None` when not given.
    pub fn bool_value(&self, key: &str) -> Result<Option<bool>, Failure> {
        let Some(value) = self.values(key).last() else { return Ok(None) };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(Failure::new(format!("invalid filter '{key}={value}'"))
                .hint(format!("use {key}=true or {key}=false"))),
        }
    }

    /// `until=` as a time: images or entries made before it qualify.
    pub fn until(&self) -> Result<Option<Timestamp>, Failure> {
        self.values("until").last().map(|v| units::parse_until(v).map_err(Failure::new)).transpose()
    }
}

/// Whether an image has every `label=KEY` / `label=KEY=VALUE` asked for.
pub fn labels_match(wanted: &[String], image: &CatalogImage) -> bool {
    let labels = image.config.config.labels.as_ref();
    wanted.iter().all(|filter| {
        let (key, value) = match filter.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (filter.as_str(), None),
        };
        match labels.and_then(|l| l.get(key)) {
            Some(actual) => value.is_none_or(|v| v == actual),
            None => false,
        }
    })
}
