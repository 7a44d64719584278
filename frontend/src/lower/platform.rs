//! The platform rbuild builds for: the host's, named the way OCI and
//! BuildKit name platforms, with the automatic platform build args and the
//! check of a `FROM --platform=…` request against it.

#[derive(Debug, Clone)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform { os: "linux".into(), architecture: architecture.into(), variant: None }
    }

    pub fn spec(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{}", self.os, self.architecture, v),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// The automatic platform args (`TARGETPLATFORM`, `BUILDARCH`, …).
    pub(crate) fn args(&self) -> Vec<(String, String)> {
        let variant = self.variant.clone().unwrap_or_default();
        let mut out = Vec::new();
        for prefix in ["BUILD", "TARGET"] {
            out.push((format!("{prefix}PLATFORM"), self.spec()));
            out.push((format!("{prefix}OS"), self.os.clone()));
            out.push((format!("{prefix}ARCH"), self.architecture.clone()));
            out.push((format!("{prefix}VARIANT"), variant.clone()));
        }
        out
    }

    /// True when `FROM --platform=<want>` can be built here: the same OS and,
    /// if given, the same architecture (`x86_64` standing for `amd64`). A
    /// variant is not compared.
    pub(super) fn accepts(&self, want: &str) -> bool {
        let mut parts = want.split('/');
        let os = parts.next().unwrap_or("");
        let arch = parts.next();
        os == self.os
            && arch.is_none_or(|a| a == self.architecture || (a == "x86_64" && self.architecture == "amd64"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm64_v8() -> Platform {
        Platform { os: "linux".into(), architecture: "arm64".into(), variant: Some("v8".into()) }
    }

    #[test]
    fn spec_includes_the_variant_only_when_there_is_one() {
        assert_eq!(arm64_v8().spec(), "linux/arm64/v8");
        let amd64 = Platform { variant: None, architecture: "amd64".into(), ..arm64_v8() };
        assert_eq!(amd64.spec(), "linux/amd64");
    }

    #[test]
    fn platform_args_cover_build_and_target() {
        let args = arm64_v8().args();
        let get = |k: &str| args.iter().find(|(name, _)| name == k).map(|(_, v)| v.as_str());
        assert_eq!(args.len(), 8);
        assert_eq!(get("TARGETPLATFORM"), Some("linux/arm64/v8"));
        assert_eq!(get("BUILDOS"), Some("linux"));
        assert_eq!(get("TARGETARCH"), Some("arm64"));
        assert_eq!(get("BUILDVARIANT"), Some("v8"));
        let plain = Platform { variant: None, ..arm64_v8() };
        assert_eq!(
            plain.args().iter().find(|(k, _)| k == "TARGETVARIANT").map(|(_, v)| v.as_str()),
            Some("")
        );
    }

    #[test]
    fn accepts_the_same_os_and_architecture_only() {
        let amd64 = Platform { os: "linux".into(), architecture: "amd64".into(), variant: None };
        assert!(amd64.accepts("linux"));
        assert!(amd64.accepts("linux/amd64"));
        assert!(amd64.accepts("linux/x86_64"), "x86_64 is another name for amd64");
        assert!(amd64.accepts("linux/amd64/v3"), "the variant is not compared");
        assert!(!amd64.accepts("linux/arm64"));
        assert!(!amd64.accepts("windows/amd64"));
        assert!(!amd64.accepts(""));
        assert!(!arm64_v8().accepts("linux/x86_64"), "x86_64 only stands for amd64");
    }
}
