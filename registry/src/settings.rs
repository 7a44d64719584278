//! Which registries may be reached without verified TLS, and where Docker's
//! credentials live.
//!
//! A registry on this machine (`localhost`, 127.0.0.0/8, `[::1]`) is tried
//! over HTTPS without certificate checks and then plain HTTP, as Docker
//! does for its default insecure ranges. Any other registry gets that only
//! when it is named by `--insecure-registry HOST[:PORT]` or listed in
//! rbuild's config file (`$XDG_CONFIG_HOME/rbuild/config.json`, else
//! `~/.config/rbuild/config.json`, and `/etc/rbuild/config.json`):
//!
//! ```json
//! { "insecure-registries": ["registry.lan:5000"] }
//! ```

use std::path::{Path, PathBuf};

use rbuild_oci::reference::Reference;

/// How to reach registries, for one command.
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    /// Registries (`host` or `host:port`) that may use HTTP or unverified TLS.
    pub insecure: Vec<String>,
    /// Docker's config directory (`$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config_dir: PathBuf,
    /// How many blobs move at once.
    pub parallel_transfers: usize,
}

/// Blobs in flight at once: Docker's default for downloads.
pub const DEFAULT_PARALLEL_TRANSFERS: usize = 3;

impl RegistrySettings {
    /// Settings from the environment and rbuild's config files, plus the
    /// `--insecure-registry` values given on the command line.
    pub fn from_environment(cli_insecure: &[String]) -> RegistrySettings {
        let mut insecure: Vec<String> = cli_insecure.to_vec();
        for path in config_files() {
            insecure.extend(insecure_registries_in(&path));
        }
        RegistrySettings {
            insecure,
            docker_config_dir: docker_config_dir(),
            parallel_transfers: DEFAULT_PARALLEL_TRANSFERS,
        }
    }

    /// Whether `registry` may be reached over plain HTTP or unverified TLS.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let on_this_machine =
            Reference { registry: registry.to_string(), repository: "x".into(), tag: None, digest: None }
                .is_localhost();
        let host = registry.rsplit_once(':').map_or(registry, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') { h } else { registry }
        });
        on_this_machine || self.insecure.iter().any(|i| i == registry || i == host)
    }
}

/// `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    home_dir().join(".docker")
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"))
}

fn config_files() -> Vec<PathBuf> {
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".config"));
    vec![user.join("rbuild/config.json"), PathBuf::from("/etc/rbuild/config.json")]
}

/// The `insecure-registries` of one config file; a missing or unreadable
/// file lists none (a broken one is reported, since the user meant it).
fn insecure_registries_in(path: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(path) else { return Vec::new() };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(value) => value
            .get("insecure-registries")
            .and_then(|v| v.as_array())
            .map(|items| items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!("ignoring {}: not valid JSON ({e})", path.display());
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_insecure_without_flags_and_others_only_when_listed() {
        let settings = RegistrySettings { insecure: vec!["reg.lan".into()], ..Default::default() };
        assert!(settings.is_insecure("127.0.0.1:5000"));
        assert!(settings.is_insecure("localhost"));
        assert!(settings.is_insecure("[::1]:5000"));
        assert!(settings.is_insecure("reg.lan:5000"));
        assert!(settings.is_insecure("reg.lan"));
        assert!(!settings.is_insecure("docker.io"));
        assert!(!settings.is_insecure("other.lan:5000"));
    }

    #[test]
    fn config_file_lists_insecure_registries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"insecure-registries": ["a.lan:5000", "b.lan"]}"#).unwrap();
        assert_eq!(insecure_registries_in(&path), vec!["a.lan:5000".to_string(), "b.lan".to_string()]);
        std::fs::write(&path, "not json").unwrap();
        assert!(insecure_registries_in(&path).is_empty());
    }
}
