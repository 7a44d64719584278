//! Manifests as they travel: reading Docker schema2 and OCI image
//! manifests, manifest lists and image indexes (one lenient shape covers
//! all four), choosing the host's entry of a list, and writing the OCI
//! image manifest rbuild pushes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{RegistryError, Result};
use rbuild_oci::digest::Digest;
use rbuild_oci::platform::Platform;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A descriptor: what a manifest says about one blob or child manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            platform: None,
            annotations: None,
        }
    }

    /// The sha256 digest; other algorithms are refused.
    pub fn sha256(&self) -> Result<Digest> {
        Digest::parse(&self.digest).map_err(|_| {
            RegistryError::Unsupported(format!("digest {}: only sha256 digests are supported", self.digest))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PlatformJson {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl PlatformJson {
    fn spec(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// Any of the four manifest kinds, read leniently.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnyManifest {
    pub schema_version: Option<u32>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
}

/// What a manifest turned out to be.
#[derive(Debug, Clone)]
pub(crate) enum Parsed {
    Image { config: Descriptor, layers: Vec<Descriptor> },
    List(Vec<Descriptor>),
}

pub(crate) fn parse(bytes: &[u8], registry: &str, what: &str) -> Result<Parsed> {
    let manifest: AnyManifest = serde_json::from_slice(bytes).map_err(|e| RegistryError::Protocol {
        registry: registry.to_string(),
        message: format!("{what} is not a valid manifest: {e}"),
    })?;
    if manifest.schema_version != Some(2) {
        return Err(RegistryError::Unsupported(format!(
            "{what} has schema version {:?}; only schema 2 (Docker schema2 and OCI) is supported",
            manifest.schema_version
        )));
    }
    match (manifest.media_type.as_deref(), manifest.manifests, manifest.config, manifest.layers) {
        (Some(OCI_INDEX | DOCKER_LIST) | None, Some(entries), _, _) => Ok(Parsed::List(entries)),
        (Some(OCI_MANIFEST | DOCKER_MANIFEST) | None, None, Some(config), layers) => {
            Ok(Parsed::Image { config, layers: layers.unwrap_or_default() })
        }
        (media_type, ..) => Err(RegistryError::Unsupported(format!(
            "{what} has media type {}, which is not an image",
            media_type.unwrap_or("(none)")
        ))),
    }
}

/// The list entry for `wanted` (attestations and other artifacts are
/// never chosen); without a wanted variant the plainest entry wins.
pub(crate) fn choose_platform<'a>(
    entries: &'a [Descriptor],
    reference: &str,
    wanted: &Platform,
) -> Result<&'a Descriptor> {
    let usable: Vec<&Descriptor> = entries
        .iter()
        .filter(|e| !matches!(&e.platform, Some(p) if p.os == "unknown"))
        .filter(|e| e.media_type == OCI_MANIFEST || e.media_type == DOCKER_MANIFEST)
        .collect();
    let mut candidates: Vec<&Descriptor> = usable
        .iter()
        .copied()
        .filter(|e| {
            e.platform.as_ref().is_some_and(|p| wanted.matches(&p.os, &p.architecture, p.variant.as_deref()))
        })
        .collect();
    candidates.sort_by_key(|e| e.platform.as_ref().and_then(|p| p.variant.clone()).is_some());
    if let Some(found) = candidates.first() {
        return Ok(found);
    }
    let available: Vec<String> =
        usable.iter().filter_map(|e| e.platform.as_ref().map(|p| p.spec())).collect();
    Err(RegistryError::NoPlatform {
        reference: reference.to_string(),
        wanted: wanted.spec(),
        available: if available.is_empty() { "no platforms".into() } else { available.join(", ") },
    })
}

/// An OCI image index naming one manifest per platform, serialised with a
/// fixed field order like [`image_manifest_json`]; `media_type` is
/// [`OCI_INDEX`], or [`DOCKER_LIST`] for a registry that takes only Docker
/// manifest lists (the same document under Docker's name).
pub(crate) fn image_index_json(
    manifests: &[Descriptor],
    annotations: &BTreeMap<String, String>,
    media_type: &'static str,
) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ImageIndex<'a> {
        schema_version: u32,
        media_type: &'static str,
        manifests: &'a [Descriptor],
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        annotations: &'a BTreeMap<String, String>,
    }
    serde_json::to_vec(&ImageIndex { schema_version: 2, media_type, manifests, annotations })
        .expect("index serializes")
}

/// An OCI image manifest, serialised with fixed field order (and
/// annotations in key order) so the same image always gets the same
/// manifest digest.
pub(crate) fn image_manifest_json(
    config: &Descriptor,
    layers: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ImageManifest<'a> {
        schema_version: u32,
        media_type: &'static str,
        config: &'a Descriptor,
        layers: &'a [Descriptor],
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        annotations: &'a BTreeMap<String, String>,
    }
    serde_json::to_vec(&ImageManifest {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        config,
        layers,
        annotations,
    })
    .expect("manifest serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, os: &str, media_type: &str) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: Digest::of(arch.as_bytes()).to_string(),
            size: 1,
            platform: Some(PlatformJson { architecture: arch.into(), os: os.into(), variant: None }),
            annotations: None,
        }
    }

    #[test]
    fn the_host_entry_of_a_list_is_chosen_and_a_missing_one_is_named() {
        let host = rbuild_oci::config::host_architecture();
        let list = vec![
            entry("unknown", "unknown", OCI_MANIFEST),
            entry("s390x", "linux", DOCKER_MANIFEST),
            entry(host, "linux", DOCKER_MANIFEST),
        ];
        let host_platform = Platform::host();
        assert_eq!(choose_platform(&list, "x", &host_platform).unwrap().digest, list[2].digest);
        let err = choose_platform(&list[..2], "app:v1", &host_platform).unwrap_err().to_string();
        assert!(err.contains(&format!("linux/{host}")) && err.contains("linux/s390x"), "{err}");
    }

    #[test]
    fn the_wanted_platform_and_variant_are_chosen() {
        let mut v6 = entry("arm", "linux", OCI_MANIFEST);
        v6.platform.as_mut().unwrap().variant = Some("v6".into());
        let mut v7 = entry("arm", "linux", OCI_MANIFEST);
        v7.digest = Digest::of(b"v7").to_string();
        v7.platform.as_mut().unwrap().variant = Some("v7".into());
        let arm64 = entry("arm64", "linux", OCI_MANIFEST);
        let list = vec![v6, v7, arm64];
        let want = |s: &str| Platform::parse(s).unwrap();
        assert_eq!(choose_platform(&list, "x", &want("linux/arm/v7")).unwrap().digest, list[1].digest);
        assert_eq!(choose_platform(&list, "x", &want("linux/arm/v6")).unwrap().digest, list[0].digest);
        assert_eq!(choose_platform(&list, "x", &want("linux/aarch64")).unwrap().digest, list[2].digest);
        let err = choose_platform(&list, "bb:multi", &want("linux/s390x")).unwrap_err().to_string();
        assert_eq!(
            err,
            "bb:multi has no image for linux/s390x; it has: linux/arm/v6, linux/arm/v7, linux/arm64"
        );
    }

    #[test]
    fn an_index_names_each_platform_and_parses_back_as_a_list() {
        let entries = vec![entry("amd64", "linux", OCI_MANIFEST), entry("arm64", "linux", OCI_MANIFEST)];
        for media_type in [OCI_INDEX, DOCKER_LIST] {
            let json = image_index_json(&entries, &BTreeMap::new(), media_type);
            let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(value["mediaType"], media_type);
            assert_eq!(value["manifests"][1]["platform"]["architecture"], "arm64");
            assert!(matches!(parse(&json, "r", "m").unwrap(), Parsed::List(l) if l == entries));
        }
    }

    #[test]
    fn docker_and_oci_manifests_and_lists_parse() {
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},
            "layers":[]}"#;
        assert!(matches!(parse(docker, "r", "m").unwrap(), Parsed::Image { .. }));
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(parse(index, "r", "m").unwrap(), Parsed::List(_)));
        let schema1 = br#"{"schemaVersion":1}"#;
        assert!(parse(schema1, "r", "m").is_err());
    }
}
