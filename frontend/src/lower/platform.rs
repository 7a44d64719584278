//! The platforms of a build, BuildKit's way: the build platform (the host,
//! where `FROM --platform=$BUILDPLATFORM` stages run natively) and the
//! target platform (what the image is for), the automatic args naming
//! them, and the platform a stage gets from its `FROM --platform=…`, its
//! base stage, or the target.

pub use rbuild_oci::platform::Platform;

/// The automatic platform args (`TARGETPLATFORM`, `BUILDARCH`, …): in the
/// global scope without a declaration, usable in a stage after `ARG NAME`.
/// They name the build's platforms whatever a stage's own platform is (the
/// cross-compilation pattern reads `TARGETARCH` in a `$BUILDPLATFORM` stage).
pub(crate) fn platform_args(build: &Platform, target: &Platform) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (prefix, p) in [("BUILD", build), ("TARGET", target)] {
        out.push((format!("{prefix}PLATFORM"), p.spec()));
        out.push((format!("{prefix}OS"), p.os.clone()));
        out.push((format!("{prefix}ARCH"), p.architecture.clone()));
        out.push((format!("{prefix}VARIANT"), p.variant.clone().unwrap_or_default()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(spec: &str) -> Platform {
        Platform::parse(spec).unwrap()
    }

    #[test]
    fn platform_args_name_the_build_and_the_target_platform() {
        let args = platform_args(&p("linux/amd64"), &p("linux/arm/v7"));
        let get = |k: &str| args.iter().find(|(name, _)| name == k).map(|(_, v)| v.as_str());
        assert_eq!(args.len(), 8);
        assert_eq!(get("TARGETPLATFORM"), Some("linux/arm/v7"));
        assert_eq!(get("TARGETARCH"), Some("arm"));
        assert_eq!(get("TARGETVARIANT"), Some("v7"));
        assert_eq!(get("BUILDPLATFORM"), Some("linux/amd64"));
        assert_eq!(get("BUILDOS"), Some("linux"));
        assert_eq!(get("BUILDARCH"), Some("amd64"));
        assert_eq!(get("BUILDVARIANT"), Some(""));
    }
}
