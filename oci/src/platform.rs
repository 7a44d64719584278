//! Platforms (`linux/arm64`, `linux/arm/v7`): parsing what users write,
//! normalised the way containerd does (`aarch64` is `arm64`, `armhf` is
//! `arm/v7`, `x86_64` is `amd64`), the host's platform, and matching a
//! wanted platform against what an image or a manifest list offers.

use std::fmt;

/// An OS, an architecture and, for some architectures, a variant, in their
/// normal (OCI) names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// The operating systems rbuild can build for (it runs Linux containers).
const KNOWN_OS: &[&str] = &["linux"];

/// Architectures, after normalisation, that a Linux image can be for.
const KNOWN_ARCHITECTURES: &[&str] =
    &["amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"];

impl Platform {
    /// The platform this machine runs natively.
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: crate::config::host_architecture().into(),
            variant: None,
        }
    }

    /// Parses `os[/arch[/variant]]` (an `os` alone means the host's
    /// architecture on it), normalising names; unknown ones are errors.
    pub fn parse(text: &str) -> Result<Platform, PlatformError> {
        let bad = |why: String| PlatformError { text: text.to_string(), why };
        let lower = text.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad("a platform is os/arch or os/arch/variant".into()));
        }
        let os = if parts[0] == "macos" { "darwin" } else { parts[0] };
        if !KNOWN_OS.contains(&os) {
            return Err(bad(format!("unknown operating system {os:?} (rbuild builds linux images)")));
        }
        let (architecture, variant) = match parts.get(1) {
            None => (crate::config::host_architecture().to_string(), None),
            Some(arch) => normalise_arch(arch, parts.get(2).copied()),
        };
        if !KNOWN_ARCHITECTURES.contains(&architecture.as_str()) {
            return Err(bad(format!(
                "unknown architecture {:?}; known: {}",
                parts[1],
                KNOWN_ARCHITECTURES.join(", ")
            )));
        }
        Ok(Platform { os: os.to_string(), architecture, variant })
    }

    /// A comma-separated list (`--platform linux/amd64,linux/arm64`), in
    /// order, duplicates (after normalisation) dropped.
    pub fn parse_list(text: &str) -> Result<Vec<Platform>, PlatformError> {
        let mut out: Vec<Platform> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let p = Platform::parse(item)?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(PlatformError { text: text.to_string(), why: "no platform given".into() });
        }
        Ok(out)
    }

    /// `os/arch[/variant]`.
    pub fn spec(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{}", self.os, self.architecture, v),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// `os_arch[_variant]`: a directory name for this platform's output, as
    /// BuildKit names them.
    pub fn dir_name(&self) -> String {
        self.spec().replace('/', "_")
    }

    /// Whether an image or list entry for (`os`, `architecture`, `variant`)
    /// serves this platform. A wanted variant must match, except that
    /// arm64's `v8` is the same as none; without a wanted variant any
    /// variant is fine.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let (arch, variant) = normalise_arch(&architecture.to_ascii_lowercase(), variant);
        if os != self.os || arch != self.architecture {
            return false;
        }
        match (&self.variant, variant) {
            (None, _) => true,
            (Some(want), have) => have.as_deref().unwrap_or_else(|| default_variant(&arch)) == want,
        }
    }

    /// Whether binaries for this platform run on the host without an
    /// emulator.
    pub fn is_native(&self) -> bool {
        let host = Platform::host();
        self.os == host.os
            && (self.architecture == host.architecture
                || (host.architecture == "amd64" && self.architecture == "386")
                || (host.architecture == "arm64" && self.architecture == "arm"))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec())
    }
}

/// The variant an architecture has when none is written (containerd's
/// defaults).
fn default_variant(arch: &str) -> &'static str {
    match arch {
        "arm64" => "v8",
        "arm" => "v7",
        _ => "",
    }
}

/// containerd's architecture aliases; arm64's `v8` variant is dropped (it
/// is the only one), arm's missing variant is `v7`.
fn normalise_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let variant = variant.map(str::to_ascii_lowercase);
    let (arch, variant) = match (arch, variant.as_deref()) {
        ("i386" | "i686", _) => ("386", None),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v.filter(|v| *v != "v1")),
        ("aarch64" | "arm64", Some("8" | "v8") | None) => ("arm64", None),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", _) => ("arm", Some("v7")),
        ("armel", _) => ("arm", Some("v6")),
        ("arm", None | Some("7" | "v7")) => ("arm", Some("v7")),
        ("arm", Some(v @ ("5" | "6" | "8"))) => return ("arm".into(), Some(format!("v{v}"))),
        (a, v) => (a, v),
    };
    (arch.to_string(), variant.map(str::to_string))
}

/// A platform string rbuild cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {text:?}: {why}")]
pub struct PlatformError {
    pub text: String,
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> String {
        Platform::parse(text).unwrap().spec()
    }

    #[test]
    fn names_are_normalised_like_containerd() {
        assert_eq!(spec("linux/aarch64"), "linux/arm64");
        assert_eq!(spec("linux/arm64/v8"), "linux/arm64");
        assert_eq!(spec("linux/armhf"), "linux/arm/v7");
        assert_eq!(spec("linux/arm"), "linux/arm/v7");
        assert_eq!(spec("linux/arm/6"), "linux/arm/v6");
        assert_eq!(spec("linux/x86_64"), "linux/amd64");
        assert_eq!(spec("Linux/AMD64"), "linux/amd64");
        assert_eq!(spec("linux/i686"), "linux/386");
        assert_eq!(spec("linux"), Platform::host().spec(), "an OS alone is the host's architecture");
    }

    #[test]
    fn unknown_or_malformed_platforms_are_errors_saying_why() {
        let e = Platform::parse("linux/sparc").unwrap_err();
        assert!(e.to_string().contains("unknown architecture \"sparc\""), "{e}");
        assert!(e.to_string().contains("arm64"), "the known ones are listed: {e}");
        let e = Platform::parse("windows/amd64").unwrap_err();
        assert!(e.to_string().contains("unknown operating system \"windows\""), "{e}");
        assert!(Platform::parse("linux//v7").is_err());
        assert!(Platform::parse("linux/arm/v7/x").is_err());
        assert!(Platform::parse("").is_err());
    }

    #[test]
    fn a_list_keeps_order_and_drops_duplicates() {
        let list = Platform::parse_list("linux/amd64, linux/aarch64,linux/x86_64").unwrap();
        let specs: Vec<String> = list.iter().map(Platform::spec).collect();
        assert_eq!(specs, ["linux/amd64", "linux/arm64"]);
        assert!(Platform::parse_list(" , ").is_err());
        assert!(Platform::parse_list("linux/amd64,linux/nope").is_err());
    }

    #[test]
    fn matching_honours_the_variant_and_its_defaults() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert!(arm64.matches("linux", "arm64", None));
        assert!(arm64.matches("linux", "arm64", Some("v8")));
        assert!(!arm64.matches("linux", "amd64", None));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(v7.matches("linux", "arm", Some("v7")));
        assert!(v7.matches("linux", "arm", None), "arm without a variant is v7");
        assert!(!v7.matches("linux", "arm", Some("v6")));
        assert_eq!(Platform::parse("linux/arm64").unwrap().dir_name(), "linux_arm64");
        assert_eq!(v7.dir_name(), "linux_arm_v7");
    }
}
